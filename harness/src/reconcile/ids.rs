//! Dense numbers for the run's transfer ids and idempotency keys: each distinct value gets
//! a slot, in the order first met, and every per-transfer table is a vector indexed by it.
//!
//! At a million transfers the table of ids is tens of megabytes, and each lookup is a cache
//! miss. So a lookup goes by a 95-bit fingerprint of the text (two different hashes) kept
//! in the table itself, never following a pointer to compare strings, and values are
//! numbered in batches: the next batch's buckets are read while this one is numbered, so
//! their misses overlap. Two different values share a fingerprint with a chance of about
//! n²/2⁹⁶: near 10⁻¹⁶ at a few million.

use std::hash::{BuildHasher, Hash};

/// A value's number in a [`Numbering`].
pub type Slot = u32;

/// The fingerprint of a value: a tag (never zero) and a check word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    tag: u64,
    check: u32,
}

impl Fingerprint {
    /// The tag from a strong hash, the check word from a different, cheaper one.
    fn of<T: Hash + ?Sized>(value: &T) -> Fingerprint {
        let tag = foldhash::quality::FixedState::with_seed(0x243f_6a88_85a3_08d3).hash_one(value);
        let check = rustc_hash::FxBuildHasher.hash_one(value);
        Fingerprint {
            tag: tag | 1,
            check: (check >> 32) as u32,
        }
    }
}

/// One place of the table: empty while `tag` is zero.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    tag: u64,
    check: u32,
    slot: Slot,
}

/// An open-addressing table from fingerprints to slots, at most half full.
#[derive(Debug, Default)]
struct Table {
    buckets: Vec<Bucket>,
    len: usize,
}

impl Table {
    fn with_capacity(capacity: usize) -> Table {
        Table {
            buckets: vec![Bucket::default(); (capacity.max(8) * 2).next_power_of_two()],
            len: 0,
        }
    }

    /// Where `fingerprint` is looked for first (out of range in an empty table).
    fn home(&self, fingerprint: Fingerprint) -> usize {
        (fingerprint.tag >> 8) as usize & self.buckets.len().wrapping_sub(1)
    }

    /// Reads the bucket where `fingerprint` would be, so a later lookup finds it in cache.
    fn touch(&self, fingerprint: Fingerprint) {
        if let Some(bucket) = self.buckets.get(self.home(fingerprint)) {
            std::hint::black_box(bucket.tag);
        }
    }

    /// The bucket holding `fingerprint`, or the empty one where it would go.
    fn probe(&self, fingerprint: Fingerprint) -> usize {
        let mask = self.buckets.len() - 1;
        let mut i = self.home(fingerprint);
        loop {
            let bucket = &self.buckets[i];
            if bucket.tag == 0
                || (bucket.tag == fingerprint.tag && bucket.check == fingerprint.check)
            {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    fn get(&self, fingerprint: Fingerprint) -> Option<Slot> {
        if self.buckets.is_empty() {
            return None;
        }
        let bucket = self.buckets[self.probe(fingerprint)];
        (bucket.tag != 0).then_some(bucket.slot)
    }

    /// The slot of `fingerprint`, or `next` when it is new.
    fn get_or_insert(&mut self, fingerprint: Fingerprint, next: Slot) -> Slot {
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow();
        }
        let i = self.probe(fingerprint);
        let bucket = &mut self.buckets[i];
        if bucket.tag == 0 {
            *bucket = Bucket {
                tag: fingerprint.tag,
                check: fingerprint.check,
                slot: next,
            };
            self.len += 1;
        }
        bucket.slot
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        self.buckets = vec![Bucket::default(); (old.len() * 2).max(16)];
        for bucket in old.into_iter().filter(|b| b.tag != 0) {
            let fingerprint = Fingerprint {
                tag: bucket.tag,
                check: bucket.check,
            };
            let i = self.probe(fingerprint);
            self.buckets[i] = bucket;
        }
    }
}

/// Values fingerprinted at once, then numbered.
const BATCH: usize = 32;

/// Fingerprints the next batch of `items` (by their first part) into `batch` and reads the
/// buckets they would be in, so their cache misses overlap.
fn next_batch<K: Hash, X>(
    items: &mut impl Iterator<Item = (K, X)>,
    batch: &mut Vec<(Fingerprint, X)>,
    table: &Table,
) {
    batch.clear();
    batch.extend(items.take(BATCH).map(|(k, x)| (Fingerprint::of(&k), x)));
    for &(fingerprint, _) in batch.iter() {
        table.touch(fingerprint);
    }
}

/// Calls `each` on `state` with every item's fingerprint and payload, a batch at a time:
/// the next batch's buckets (in the table `table` finds in `state`) are on their way while
/// this one is handled.
fn in_batches<S, K: Hash, X>(
    state: &mut S,
    table: fn(&S) -> &Table,
    mut items: impl Iterator<Item = (K, X)>,
    mut each: impl FnMut(&mut S, Fingerprint, X),
) {
    let (mut now, mut ahead) = (Vec::with_capacity(BATCH), Vec::with_capacity(BATCH));
    next_batch(&mut items, &mut ahead, table(state));
    loop {
        std::mem::swap(&mut now, &mut ahead);
        if now.is_empty() {
            return;
        }
        next_batch(&mut items, &mut ahead, table(state));
        for (fingerprint, payload) in now.drain(..) {
            each(state, fingerprint, payload);
        }
    }
}

/// Keys numbered densely, in the order first met, each slot with a value kept from the
/// item that gave it (the key itself, or where to find it). One numbering always takes its
/// keys of one type.
#[derive(Debug)]
pub struct Numbering<T> {
    table: Table,
    values: Vec<T>,
}

impl<T> Default for Numbering<T> {
    fn default() -> Self {
        Numbering {
            table: Table::default(),
            values: Vec::new(),
        }
    }
}

impl<T: Copy> Numbering<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        Numbering {
            table: Table::with_capacity(capacity),
            values: Vec::with_capacity(capacity),
        }
    }

    /// The slot of `key`, given one (keeping `value`) if it has none yet.
    pub fn number<K: Hash>(&mut self, key: K, value: T) -> Slot {
        self.number_by(Fingerprint::of(&key), value)
    }

    fn number_by(&mut self, fingerprint: Fingerprint, value: T) -> Slot {
        let next = self.values.len() as Slot;
        let slot = self.table.get_or_insert(fingerprint, next);
        if slot == next {
            self.values.push(value);
        }
        slot
    }

    /// Numbers each item's key (giving a new one a slot and keeping the item's value), and
    /// calls `each` with the slot and the item's payload, in order.
    pub fn number_with<K: Hash, X>(
        &mut self,
        items: impl IntoIterator<Item = (K, T, X)>,
        mut each: impl FnMut(Slot, X),
    ) {
        let items = items.into_iter().map(|(k, v, x)| (k, (v, x)));
        in_batches(
            self,
            |n| &n.table,
            items,
            |n, fingerprint, (value, payload)| {
                each(n.number_by(fingerprint, value), payload);
            },
        );
    }

    /// Calls `each` with the slot of each item's key (None without one) and its payload.
    pub fn find_with<K: Hash, X>(
        &self,
        items: impl IntoIterator<Item = (K, X)>,
        mut each: impl FnMut(Option<Slot>, X),
    ) {
        let mut this = self;
        in_batches(
            &mut this,
            |n| &n.table,
            items.into_iter(),
            |n, fingerprint, payload| {
                each(n.table.get(fingerprint), payload);
            },
        );
    }

    /// The slot of `key`, if it has one.
    pub fn find<K: Hash + ?Sized>(&self, key: &K) -> Option<Slot> {
        self.table.get(Fingerprint::of(key))
    }

    /// The value kept for `slot`.
    pub fn value(&self, slot: Slot) -> T {
        self.values[slot as usize]
    }

    /// Every slot's value, in slot order.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_numbered_in_the_order_first_met_and_found_again() {
        let mut ids = Numbering::default();
        assert_eq!(ids.number("t-b", "t-b"), 0);
        assert_eq!(ids.number("t-a", "t-a"), 1);
        assert_eq!(ids.number("t-b", "t-b"), 0);
        assert_eq!(ids.find("t-a"), Some(1));
        assert_eq!(ids.find("t-c"), None);
        assert_eq!(ids.value(1), "t-a");
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn pairs_do_not_run_into_each_other() {
        let mut keys = Numbering::default();
        let ab = keys.number(("a", "bc"), 0);
        let abc = keys.number(("ab", "c"), 1);
        assert_ne!(ab, abc);
    }

    #[test]
    fn batches_number_as_one_at_a_time_does_across_growth() {
        let names: Vec<String> = (0..100_000)
            .map(|n| format!("t-{:032x}", n % 60_000))
            .collect();
        let mut batched = Numbering::default();
        let mut slots = Vec::new();
        let items = names.iter().map(|n| (n.as_str(), n.as_str(), ()));
        batched.number_with(items, |slot, ()| slots.push(slot));
        let mut single = Numbering::with_capacity(4);
        let one_by_one: Vec<Slot> = names.iter().map(|n| single.number(n, n.as_str())).collect();
        assert_eq!(slots, one_by_one);
        assert_eq!(batched.len(), 60_000);
        assert_eq!(slots[60_000 + 7], 7);
        let mut found = Vec::new();
        let asked = [("t-nope", 0), (names[123].as_str(), 1)];
        batched.find_with(asked, |slot, i| found.push((slot, i)));
        assert_eq!(found, vec![(None, 0), (Some(123), 1)]);
    }
}

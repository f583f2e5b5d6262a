//! What the live reconciler closed: the transfer ids and the requests it judged and let go,
//! kept as 64-bit hashes (8 bytes each once merged), so that a fact arriving for one of them
//! afterwards is known late.

use rustc_hash::FxHashSet;
use std::hash::{Hash, Hasher};

/// How many hashes wait unsorted before they are merged into the sorted list.
const MERGE_EVERY: usize = 1 << 16;

/// A set of closed names, by hash.
#[derive(Debug, Default)]
pub struct Closed {
    sorted: Vec<u64>,
    recent: FxHashSet<u64>,
}

/// The hash of a name of kind `kind` (a transfer id, a request): kinds never collide.
pub fn hash_of(kind: u8, parts: &[&str]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    kind.hash(&mut hasher);
    parts.hash(&mut hasher);
    hasher.finish()
}

impl Closed {
    pub fn insert(&mut self, hash: u64) {
        self.recent.insert(hash);
        if self.recent.len() >= MERGE_EVERY {
            self.sorted.extend(self.recent.drain());
            self.sorted.sort_unstable();
            self.sorted.dedup();
        }
    }

    pub fn contains(&self, hash: u64) -> bool {
        self.recent.contains(&hash) || self.sorted.binary_search(&hash).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_name_is_found_before_and_after_the_merge_and_kinds_stay_apart() {
        let mut closed = Closed::default();
        for i in 0..(MERGE_EVERY as u64 + 10) {
            closed.insert(hash_of(0, &[&i.to_string()]));
        }
        assert!(closed.contains(hash_of(0, &["3"])));
        assert!(closed.contains(hash_of(0, &[&(MERGE_EVERY + 5).to_string()])));
        assert!(!closed.contains(hash_of(1, &["3"])));
        assert!(!closed.contains(hash_of(0, &["-1"])));
        assert_eq!(closed.sorted.len() + closed.recent.len(), MERGE_EVERY + 10);
    }
}

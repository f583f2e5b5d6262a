//! What the live reconciler closed lately: the transfer ids and the requests it judged and
//! let go, kept as 64-bit hashes for a while, so that a fact arriving for one of them soon
//! after is known late. Memory follows the rate, not the run's length.

use rustc_hash::FxHashSet;
use std::hash::{Hash, Hasher};

/// The hash of a name of kind `kind` (a transfer id, a request): kinds never collide.
pub fn hash_of(kind: u8, parts: &[&str]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    kind.hash(&mut hasher);
    parts.hash(&mut hasher);
    hasher.finish()
}

/// Names closed lately: kept for at least `keep_ms` after they closed, in two generations
/// (a request's last attempt is answered within a bounded time, so its name need not be
/// kept for the whole run).
#[derive(Debug, Default)]
pub struct Lately {
    keep_ms: u64,
    rotated_ms: u64,
    current: FxHashSet<u64>,
    previous: FxHashSet<u64>,
}

impl Lately {
    pub fn new(keep_ms: u64) -> Lately {
        Lately {
            keep_ms,
            ..Lately::default()
        }
    }

    pub fn insert(&mut self, hash: u64, now_ms: u64) {
        self.at(now_ms);
        self.current.insert(hash);
    }

    /// Forgets what closed long enough before `now_ms`.
    pub fn at(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.rotated_ms) >= self.keep_ms {
            self.previous = std::mem::take(&mut self.current);
            self.rotated_ms = now_ms;
        }
    }

    pub fn contains(&self, hash: u64) -> bool {
        self.current.contains(&hash) || self.previous.contains(&hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_closed_lately_is_kept_at_least_its_time_then_forgotten() {
        let mut lately = Lately::new(100);
        lately.insert(1, 0);
        lately.insert(2, 150);
        assert!(lately.contains(1) && lately.contains(2));
        lately.insert(3, 260);
        assert!(!lately.contains(1) && lately.contains(2) && lately.contains(3));
    }
}

//! Which arrival rate to try next: doubling from the start until a step misses the SLO or
//! the error budget, then halving the gap between the highest rate that met both and the
//! lowest that did not, until the knee is known within the resolution.

/// The search's state: the highest rate that met its targets and the lowest that did not.
#[derive(Debug, Clone)]
pub struct Search {
    max: u32,
    resolution: f64,
    pass: Option<u32>,
    fail: Option<u32>,
    next: Option<u32>,
}

impl Search {
    /// A search starting at `start` requests/s, never above `max`, ending when the knee is
    /// known within `resolution` (a fraction of the knee).
    pub fn new(start: u32, max: u32, resolution: f64) -> Search {
        let start = start.clamp(1, max.max(1));
        Search {
            max: max.max(1),
            resolution,
            pass: None,
            fail: None,
            next: Some(start),
        }
    }

    /// The rate of the next step, or None when the search is over.
    pub fn next_rate(&self) -> Option<u32> {
        self.next
    }

    /// The highest rate that met the targets: the knee, once the search is over.
    pub fn knee(&self) -> Option<u32> {
        self.pass
    }

    /// The lowest rate that missed them.
    pub fn first_miss(&self) -> Option<u32> {
        self.fail
    }

    /// Records whether the step at `rate` met the targets, and picks the next rate.
    pub fn record(&mut self, rate: u32, meets: bool) {
        if meets {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
        self.next = match (self.pass, self.fail) {
            (_, None) if rate >= self.max => None,
            (_, None) => Some(rate.saturating_mul(2).min(self.max)),
            (None, Some(_)) => None,
            (Some(p), Some(f)) if f <= p => None,
            (Some(p), Some(f)) => {
                let gap = f - p;
                (gap > 1 && f64::from(gap) > self.resolution * f64::from(p)).then(|| p + gap / 2)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a system that meets its targets up to `capacity`.
    fn search(start: u32, max: u32, capacity: u32) -> (Search, Vec<u32>) {
        let mut s = Search::new(start, max, 0.1);
        let mut tried = Vec::new();
        while let Some(rate) = s.next_rate() {
            tried.push(rate);
            s.record(rate, rate <= capacity);
            assert!(tried.len() < 40, "the search ends");
        }
        (s, tried)
    }

    #[test]
    fn it_doubles_then_bisects_to_within_the_resolution() {
        let (s, tried) = search(250, 20_000, 1_180);
        assert_eq!(&tried[..4], [250, 500, 1_000, 2_000]);
        let knee = s.knee().expect("a knee");
        let miss = s.first_miss().expect("a miss");
        assert!(knee <= 1_180 && miss > 1_180);
        assert!(
            f64::from(miss - knee) <= 0.1 * f64::from(knee),
            "{knee}..{miss}"
        );
        assert!(tried.len() <= 9, "{tried:?}");
    }

    #[test]
    fn a_system_that_meets_every_rate_stops_at_the_maximum() {
        let (s, tried) = search(100, 700, 1_000_000);
        assert_eq!(tried, [100, 200, 400, 700]);
        assert_eq!(s.knee(), Some(700));
        assert_eq!(s.first_miss(), None);
    }

    #[test]
    fn a_system_that_misses_the_first_step_has_no_knee() {
        let (s, tried) = search(100, 1_000, 50);
        assert_eq!(tried, [100]);
        assert_eq!(s.knee(), None);
        assert_eq!(s.first_miss(), Some(100));
    }
}

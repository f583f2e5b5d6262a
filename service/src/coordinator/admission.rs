//! Admission: how many transfers the coordinator handles at once, a bound that follows what
//! it can finish.
//!
//! Every 100 ms window is judged on two readings:
//! - the **fastest answer** given to an admitted transfer in the window (a `pending` answer
//!   counts at the deadline). When even the fastest one took longer than the target, the
//!   delay is standing, not a burst;
//! - the **host's idle CPU** (`host_load`): below a few percent, the machine cannot do more.
//!
//! When both say so, admitting less finishes more: the limit on transfers in flight falls by a
//! factor. When a window's limit held transfers back (its peak reached the limit) without
//! that, the limit rises by a factor, up to the ceiling (`max_in_flight`). A limit standing
//! far above what is used settles, a little each window, to a few times the window's peak
//! (never below `SETTLED_LIMIT`): a spike then meets a limit near what the machine was
//! doing, not the ceiling, and is cut at once instead of after the hundreds of transfers it
//! admitted have swamped the CPU for a few windows. A transfer over the limit is shed with
//! 503 before anything is written, in microseconds.
//!
//! Why a limit on transfers in flight and not a share of arrivals: a bound on concurrency is
//! self-clocking (a transfer is admitted when one finishes), so the work admitted never
//! outgrows what is finished. Why the host's CPU as well as latency: an institution that is
//! slow or unreachable makes every answer slow while this machine idles, and shedding then
//! would turn a slow dependency into refusals without finishing anything more. Why not the
//! coordinator's own queue: on a saturated machine the time goes to the institutions and the
//! proxies as much as to this process, so its own queue stays short while answers miss the
//! deadline.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long one judgement lasts.
pub const WINDOW: Duration = Duration::from_millis(100);
/// The limit after a window with a standing delay on a saturated host, relative to the
/// transfers that were in flight at most (the limit may stand far above them).
const DECREASE: f64 = 0.75;
/// The same after a window whose fastest answer took more than `DEEP` targets: a queue
/// that deep is cut faster, before it runs into the deadline.
const DECREASE_DEEP: f64 = 0.5;
const DEEP: u32 = 4;
/// The limit after a window the limit held transfers back without one.
const INCREASE: f64 = 1.2;
/// The lowest limit: enough transfers in flight to keep measuring.
pub const MIN_LIMIT: usize = 4;
/// A window's peak in flight this close to the limit counts as the limit holding back.
const NEAR_LIMIT: f64 = 0.9;
/// A limit more than this many times a window's peak in flight settles toward it...
const HEADROOM: f64 = 4.0;
/// ...by this factor per window...
const SETTLE: f64 = 0.9;
/// ...never below this (nor above the ceiling): enough for a slow institution at a few
/// hundred transfers a second (each handler waits out the deadline) or a stall of a commit
/// at the knee without shedding.
pub const SETTLED_LIMIT: usize = 256;
/// The host is saturated when less than this share of its CPU time was idle.
pub const SATURATED_IDLE_SHARE: f64 = 0.15;

struct State {
    window_started: Instant,
    /// The fastest answer given in this window (None: no answer yet).
    window_fastest: Option<Duration>,
    /// The most transfers in flight at once in this window.
    window_peak: usize,
    /// The host's idle share of CPU time, last read (1.0 until read).
    host_idle: f64,
    in_flight: usize,
    limit: f64,
}

/// The admission controller. A zero target keeps the limit at the ceiling.
pub struct Admission {
    target: Duration,
    ceiling: usize,
    state: Mutex<State>,
}

/// One admitted transfer; dropping it frees its place.
pub struct Permit {
    admission: Arc<Admission>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.admission.state();
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

impl Admission {
    pub fn new(target: Duration, ceiling: usize) -> Admission {
        let ceiling = ceiling.max(1);
        Admission {
            target,
            ceiling,
            state: Mutex::new(State {
                window_started: Instant::now(),
                window_fastest: None,
                window_peak: 0,
                host_idle: 1.0,
                in_flight: 0,
                limit: ceiling as f64,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn floor(&self) -> f64 {
        MIN_LIMIT.min(self.ceiling) as f64
    }

    /// Closes the window if it is over and moves the limit.
    fn judge(&self, s: &mut State, now: Instant) {
        if now.saturating_duration_since(s.window_started) < WINDOW {
            return;
        }
        if !self.target.is_zero() {
            let saturated = s.host_idle < SATURATED_IDLE_SHARE;
            let fastest = s.window_fastest.unwrap_or(Duration::ZERO);
            if saturated && fastest > self.target {
                let factor = if fastest > self.target * DEEP {
                    DECREASE_DEEP
                } else {
                    DECREASE
                };
                let used = s.limit.min(s.window_peak as f64);
                s.limit = (used * factor).max(self.floor());
            } else if s.window_peak as f64 >= s.limit.floor() * NEAR_LIMIT {
                s.limit = (s.limit * INCREASE).min(self.ceiling as f64);
            } else {
                let settled = (s.window_peak as f64 * HEADROOM)
                    .max(SETTLED_LIMIT as f64)
                    .min(self.ceiling as f64);
                if s.limit > settled {
                    s.limit = (s.limit * SETTLE).max(settled);
                }
            }
        }
        s.window_started = now;
        s.window_fastest = None;
        s.window_peak = s.in_flight;
    }

    /// A place for a transfer arriving now, or None: shed it.
    pub fn admit(self: &Arc<Self>) -> Option<Permit> {
        let mut s = self.state();
        self.judge(&mut s, Instant::now());
        if s.in_flight as f64 >= s.limit.floor() {
            return None;
        }
        s.in_flight += 1;
        s.window_peak = s.window_peak.max(s.in_flight);
        Some(Permit {
            admission: self.clone(),
        })
    }

    /// Records how long an admitted transfer took to get its answer.
    pub fn record(&self, answered_after: Duration) {
        let mut s = self.state();
        s.window_fastest = Some(
            s.window_fastest
                .map_or(answered_after, |f| f.min(answered_after)),
        );
    }

    /// Records the host's idle share of CPU time since the last reading.
    pub fn record_host_idle(&self, idle_share: f64) {
        self.state().host_idle = idle_share;
    }

    /// The limit on transfers in flight now.
    pub fn limit(&self) -> usize {
        self.state().limit.floor() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close_window(a: &Admission, fastest: Duration) {
        a.record(fastest);
        let mut s = a.state();
        let later = s.window_started + WINDOW;
        a.judge(&mut s, later);
    }

    fn fill(a: &Arc<Admission>) -> Vec<Permit> {
        std::iter::from_fn(|| a.admit()).collect()
    }

    #[test]
    fn the_limit_bounds_transfers_in_flight_and_a_finished_one_frees_its_place() {
        let a = Arc::new(Admission::new(Duration::from_millis(10), 8));
        let mut held = fill(&a);
        assert_eq!(held.len(), 8);
        assert!(a.admit().is_none(), "the ninth is shed");
        held.pop();
        assert!(a.admit().is_some(), "a finished transfer frees its place");
    }

    #[test]
    fn a_standing_delay_on_a_saturated_host_lowers_the_limit_and_a_held_back_window_raises_it() {
        let a = Arc::new(Admission::new(Duration::from_millis(10), 512));
        a.record_host_idle(0.02);
        // The first cut starts from what was in flight, not from a limit standing far above.
        let held: Vec<Permit> = (0..100).filter_map(|_| a.admit()).collect();
        close_window(&a, Duration::from_millis(40));
        drop(held);
        assert_eq!(a.limit(), 75);
        for _ in 0..2 {
            let held = fill(&a);
            close_window(&a, Duration::from_millis(40));
            drop(held);
        }
        assert_eq!(a.limit(), (75.0 * DECREASE * DECREASE) as usize);
        // A queue more than four targets deep is cut by half.
        let before = a.limit();
        let held = fill(&a);
        close_window(&a, Duration::from_millis(41));
        drop(held);
        assert_eq!(a.limit(), (before as f64 * DECREASE_DEEP) as usize);
        for _ in 0..100 {
            let held = fill(&a);
            close_window(&a, Duration::from_secs(1));
            drop(held);
        }
        assert_eq!(a.limit(), MIN_LIMIT, "never below the floor");
        // Without demand at the limit, a quiet window leaves it where it is.
        close_window(&a, Duration::from_millis(1));
        assert_eq!(a.limit(), MIN_LIMIT);
        // With the limit holding transfers back and fast answers, it climbs to the ceiling.
        for _ in 0..100 {
            let held = fill(&a);
            close_window(&a, Duration::from_millis(1));
            drop(held);
        }
        assert_eq!(a.limit(), 512);
    }

    #[test]
    fn an_unused_limit_settles_near_the_peak_so_a_spike_is_cut_at_once() {
        let a = Arc::new(Admission::new(Duration::from_millis(10), 512));
        a.record_host_idle(0.5);
        // A quiet machine with at most 10 transfers in flight: the limit comes down from the
        // ceiling, a tenth a window, and stops at the settled floor.
        let window = |in_flight: usize| {
            let held: Vec<Permit> = (0..in_flight).filter_map(|_| a.admit()).collect();
            close_window(&a, Duration::from_millis(2));
            drop(held);
        };
        window(10);
        assert_eq!(a.limit(), (512.0 * SETTLE) as usize);
        for _ in 0..30 {
            window(10);
        }
        assert_eq!(a.limit(), SETTLED_LIMIT);
        // Busier, with 100 in flight: it stands at four times that.
        for _ in 0..30 {
            window(100);
        }
        assert_eq!(a.limit(), SETTLED_LIMIT, "never raised by settling");
        for _ in 0..30 {
            let held = fill(&a);
            close_window(&a, Duration::from_millis(2));
            drop(held);
        }
        assert_eq!(
            a.limit(),
            512,
            "demand at the limit raises it to the ceiling"
        );
        for _ in 0..30 {
            window(100);
        }
        assert_eq!(a.limit(), 400);
        // A spike is admitted up to the settled limit, the rest shed at once.
        assert_eq!(fill(&a).len(), 400);
    }

    #[test]
    fn slow_answers_on_an_idle_host_shed_nothing() {
        // A slow or unreachable institution: every answer is late, the machine idles.
        let a = Arc::new(Admission::new(Duration::from_millis(10), 64));
        a.record_host_idle(0.6);
        for _ in 0..50 {
            let held = fill(&a);
            close_window(&a, Duration::from_millis(150));
            drop(held);
        }
        assert_eq!(a.limit(), 64);
    }

    #[test]
    fn a_zero_target_keeps_the_ceiling_whatever_the_delay() {
        let a = Arc::new(Admission::new(Duration::ZERO, 16));
        a.record_host_idle(0.0);
        for _ in 0..10 {
            close_window(&a, Duration::from_secs(5));
        }
        assert_eq!(a.limit(), 16);
        assert_eq!(fill(&a).len(), 16);
    }
}

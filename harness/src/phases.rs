//! The run cut into phases, because one overall p99 hides what a fault did: `steady` (no
//! fault active and none healed within the last `RECOVERY_WINDOW_S`), `during_faults` (at
//! least one fault active), `recovery` (no fault active, one healed within the window), and
//! for each fault its own `during` and `recovery` windows. An operation belongs to the phase
//! of its scheduled send time; only measured operations with an answer count, as in the
//! overall latency.

use crate::faults::FaultRecord;
use crate::history::{HistoryRecord, Outcome};
use crate::profile::plan::PhaseGroup;
use crate::stats::{latency_of, new_histogram, Latency};
use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How long after a fault heals its `recovery` phase lasts (cut short by the next fault or
/// the end of the load).
pub const RECOVERY_WINDOW_S: f64 = 5.0;

/// What one phase measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PhaseFigures {
    /// Measured operations with an answer, scheduled in this phase.
    pub operations: u64,
    pub completed: u64,
    /// Answers of outcome `error` (timeout, transport error, 5xx).
    pub errors: u64,
    pub latency_ms: Latency,
}

/// One fault's own windows, in seconds from the start of the load.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FaultPhases {
    pub fault: String,
    pub from_s: f64,
    pub to_s: f64,
    /// `to_s` to the end of its recovery window.
    pub recovery_to_s: f64,
    pub during: PhaseFigures,
    pub recovery: PhaseFigures,
}

/// `summary.json`'s `phases`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Phases {
    pub recovery_window_s: f64,
    pub steady: PhaseFigures,
    pub during_faults: PhaseFigures,
    pub recovery: PhaseFigures,
    /// Each fault that was applied, in the order of the profile.
    pub faults: Vec<FaultPhases>,
}

impl Phases {
    pub fn group(&self, group: PhaseGroup) -> &PhaseFigures {
        match group {
            PhaseGroup::Steady => &self.steady,
            PhaseGroup::DuringFaults => &self.during_faults,
            PhaseGroup::Recovery => &self.recovery,
        }
    }
}

/// A phase's figures as they accumulate.
struct Tally {
    latency_us: Histogram<u64>,
    completed: u64,
    errors: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency_us: new_histogram(),
            completed: 0,
            errors: 0,
        }
    }

    fn add(&mut self, outcome: Outcome, latency_us: u64) {
        self.latency_us.saturating_record(latency_us.max(1));
        self.completed += u64::from(outcome == Outcome::Completed);
        self.errors += u64::from(outcome == Outcome::Error);
    }

    fn figures(&self) -> PhaseFigures {
        PhaseFigures {
            operations: self.latency_us.len(),
            completed: self.completed,
            errors: self.errors,
            latency_ms: latency_of(&self.latency_us),
        }
    }
}

/// A fault's active window and recovery window, in seconds from the start of the load.
struct Window {
    from_s: f64,
    to_s: f64,
    recovery_to_s: f64,
}

/// The windows of every fault that was applied; a fault never healed lasts to `end_s`.
fn windows(faults: &[FaultRecord], end_s: f64) -> Vec<(String, Window)> {
    let mut applied: Vec<(String, f64, f64)> = faults
        .iter()
        .filter_map(|f| {
            let from = f.applied_at_s?;
            Some((
                f.name.clone(),
                from,
                f.healed_at_s.unwrap_or(end_s).min(end_s),
            ))
        })
        .collect();
    let starts: Vec<f64> = applied.iter().map(|(_, from, _)| *from).collect();
    applied
        .drain(..)
        .map(|(name, from_s, to_s)| {
            let next_start = starts
                .iter()
                .copied()
                .filter(|s| *s >= to_s)
                .fold(end_s, f64::min);
            let recovery_to_s = (to_s + RECOVERY_WINDOW_S).min(next_start).min(end_s);
            (
                name,
                Window {
                    from_s,
                    to_s,
                    recovery_to_s: recovery_to_s.max(to_s),
                },
            )
        })
        .collect()
}

/// Cuts the measured operations of `history` into phases by the windows of `faults`.
/// `end_s` is the end of the load, in seconds from its start.
pub fn phases(history: &[HistoryRecord], faults: &[FaultRecord], end_s: f64) -> Phases {
    let mut tally = PhaseTally::new(faults, end_s);
    for record in history {
        tally.add(record);
    }
    tally.phases()
}

/// The phases tallied one operation at a time (a history read as a stream).
pub struct PhaseTally {
    windows: Vec<(String, Window)>,
    steady: Tally,
    during_faults: Tally,
    recovery: Tally,
    per_fault: Vec<(Tally, Tally)>,
}

impl PhaseTally {
    pub fn new(faults: &[FaultRecord], end_s: f64) -> PhaseTally {
        let windows = windows(faults, end_s);
        let per_fault = windows
            .iter()
            .map(|_| (Tally::new(), Tally::new()))
            .collect();
        PhaseTally {
            windows,
            steady: Tally::new(),
            during_faults: Tally::new(),
            recovery: Tally::new(),
            per_fault,
        }
    }

    /// Counts `record` in its phases, when it is measured and answered.
    pub fn add(&mut self, record: &HistoryRecord) {
        if !record.measured {
            return;
        }
        let Some(latency_us) = record.latency_us else {
            return;
        };
        let at_s = record.scheduled_us as f64 / 1e6;
        let mut active = false;
        for ((_, w), (during, _)) in self.windows.iter().zip(self.per_fault.iter_mut()) {
            if w.from_s <= at_s && at_s < w.to_s {
                during.add(record.outcome, latency_us);
                active = true;
            }
        }
        if active {
            self.during_faults.add(record.outcome, latency_us);
            return;
        }
        let mut recovering = false;
        for ((_, w), (_, after)) in self.windows.iter().zip(self.per_fault.iter_mut()) {
            if w.to_s <= at_s && at_s < w.recovery_to_s {
                after.add(record.outcome, latency_us);
                recovering = true;
            }
        }
        if recovering {
            self.recovery.add(record.outcome, latency_us);
        } else {
            self.steady.add(record.outcome, latency_us);
        }
    }

    pub fn phases(self) -> Phases {
        Phases {
            recovery_window_s: RECOVERY_WINDOW_S,
            steady: self.steady.figures(),
            during_faults: self.during_faults.figures(),
            recovery: self.recovery.figures(),
            faults: self
                .windows
                .into_iter()
                .zip(self.per_fault)
                .map(|((fault, w), (during, after))| FaultPhases {
                    fault,
                    from_s: w.from_s,
                    to_s: w.to_s,
                    recovery_to_s: w.recovery_to_s,
                    during: during.figures(),
                    recovery: after.figures(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(at_s: f64, latency_ms: u64, outcome: Outcome) -> HistoryRecord {
        let scheduled_us = (at_s * 1e6) as u64;
        crate::history::test_record(scheduled_us, Some(latency_ms * 1000), outcome, true)
    }

    fn fault(name: &str, applied: f64, healed: Option<f64>) -> FaultRecord {
        FaultRecord {
            name: name.into(),
            kind: "toxic".into(),
            target: "ledger".into(),
            detail: String::new(),
            requested_start_s: applied,
            requested_end_s: healed.unwrap_or(100.0),
            applied_at_s: Some(applied),
            healed_at_s: healed,
            error: None,
        }
    }

    #[test]
    fn operations_fall_in_the_phase_of_their_scheduled_time() {
        let history = vec![
            op(1.0, 5, Outcome::Completed),
            op(10.5, 300, Outcome::Error),
            op(11.0, 250, Outcome::Pending),
            op(12.5, 40, Outcome::Completed),
            op(20.0, 6, Outcome::Completed),
        ];
        let faults = vec![fault("cut", 10.0, Some(12.0))];
        let p = phases(&history, &faults, 30.0);
        assert_eq!(p.steady.operations, 2);
        assert_eq!(p.during_faults.operations, 2);
        assert_eq!(p.during_faults.errors, 1);
        assert_eq!(p.recovery.operations, 1);
        assert_eq!(p.faults.len(), 1);
        assert_eq!(p.faults[0].during.operations, 2);
        assert_eq!(p.faults[0].recovery_to_s, 12.0 + RECOVERY_WINDOW_S);
        assert_eq!(p.faults[0].recovery.completed, 1);
        let max = p.during_faults.latency_ms.max.expect("a max");
        assert!((299.0..301.0).contains(&max), "{max}");
    }

    #[test]
    fn overlapping_faults_share_their_operations_and_cut_recovery_short() {
        let history = vec![
            op(5.5, 10, Outcome::Completed),
            op(8.0, 10, Outcome::Completed),
        ];
        let faults = vec![
            fault("a", 5.0, Some(7.0)),
            fault("b", 5.0, None),
            fault("c", 9.0, Some(9.5)),
        ];
        let p = phases(&history, &faults, 10.0);
        assert_eq!(p.faults[0].during.operations, 1);
        assert_eq!(p.faults[1].during.operations, 2);
        assert_eq!(
            p.faults[1].to_s, 10.0,
            "a fault never healed lasts to the end"
        );
        assert_eq!(p.during_faults.operations, 2, "counted once in the group");
        assert_eq!(
            p.faults[0].recovery_to_s, 9.0,
            "the next fault ends a recovery"
        );
        assert_eq!(p.steady.operations, 0);
    }

    #[test]
    fn a_run_without_faults_is_all_steady() {
        let history = vec![op(1.0, 5, Outcome::Completed), op(2.0, 7, Outcome::Failed)];
        let p = phases(&history, &[], 10.0);
        assert_eq!(p.steady.operations, 2);
        assert_eq!(p.steady.completed, 1);
        assert_eq!(p.during_faults.operations, 0);
        assert!(p.faults.is_empty());
    }
}

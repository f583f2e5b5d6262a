//! The seeded request schedule: when each request is due (from the profile's rate segments),
//! which user sends it and for how much. The same plan and seed give the same schedule,
//! request for request. Generated lazily, so long runs do not hold it in memory.

use crate::interrupt::Interrupt;
use crate::profile::plan::{RateSegment, RunPlan, Shard};
use crate::profile::AmountDistribution;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use service::money::AmountCents;
use std::time::Duration;

/// One scheduled request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledOp {
    /// Position in the schedule, from 0.
    pub index: u64,
    /// When it is due, from the start of the load.
    pub offset: Duration,
    /// User number: user `u-N`, external account `a-N`.
    pub user: u32,
    pub amount: AmountCents,
}

/// The arrivals of the plan's shard: every arrival of the one schedule is drawn (so the
/// random draws stay those of the whole run), and those of other shards' users are skipped.
#[derive(Clone)]
pub struct Schedule {
    segments: Vec<RateSegment>,
    segment: usize,
    /// Start of the current segment, from the start of the load.
    segment_start: Duration,
    /// Arrivals (a real number) counted at the current segment's start.
    count_at_segment_start: f64,
    next_index: u64,
    rng: StdRng,
    users: u32,
    amount_min: u64,
    amount_max: u64,
    distribution: AmountDistribution,
    shard: Shard,
    /// A request to end the run early: the schedule ends there.
    stop: Interrupt,
}

impl Schedule {
    pub fn new(plan: &RunPlan) -> Schedule {
        Schedule {
            segments: plan.rate.clone(),
            segment: 0,
            segment_start: Duration::ZERO,
            count_at_segment_start: 0.0,
            next_index: 0,
            rng: StdRng::seed_from_u64(plan.seed),
            users: plan.users,
            amount_min: plan.amount_min.get(),
            amount_max: plan.amount_max.get(),
            distribution: plan.amount_distribution,
            shard: plan.shard,
            stop: Interrupt::default(),
        }
    }

    /// The same schedule, ending early when `interrupt` is requested.
    pub fn until(self, interrupt: Interrupt) -> Schedule {
        Schedule {
            stop: interrupt,
            ..self
        }
    }

    fn amount(&mut self) -> AmountCents {
        let cents = match self.distribution {
            AmountDistribution::Uniform => self.rng.gen_range(self.amount_min..=self.amount_max),
            AmountDistribution::LogUniform => {
                // Sampling only: the drawn value is rounded to whole cents at once.
                let (lo, hi) = ((self.amount_min as f64).ln(), (self.amount_max as f64).ln());
                let drawn = self.rng.gen_range(lo..=hi).exp().round() as u64;
                drawn.clamp(self.amount_min, self.amount_max)
            }
        };
        AmountCents::new(cents)
    }
}

/// Time into a segment at which `k` arrivals have happened: solves
/// `from*t + (to-from)*t²/(2T) = k` for t.
fn time_of_arrival(segment: &RateSegment, k: f64) -> f64 {
    let t_total = segment.duration.as_secs_f64();
    let a = (segment.to_per_s - segment.from_per_s) / (2.0 * t_total);
    let b = segment.from_per_s;
    if a.abs() < 1e-12 {
        return k / b;
    }
    (-b + (b * b + 4.0 * a * k).sqrt()) / (2.0 * a)
}

fn arrivals_in(segment: &RateSegment) -> f64 {
    (segment.from_per_s + segment.to_per_s) / 2.0 * segment.duration.as_secs_f64()
}

impl Iterator for Schedule {
    type Item = ScheduledOp;

    fn next(&mut self) -> Option<ScheduledOp> {
        loop {
            if self.stop.requested() {
                return None;
            }
            let op = self.next_of_all()?;
            if self.shard.owns(op.user) {
                return Some(op);
            }
        }
    }
}

impl Schedule {
    /// The next arrival of the whole run, whichever shard's user sends it.
    fn next_of_all(&mut self) -> Option<ScheduledOp> {
        loop {
            let segment = *self.segments.get(self.segment)?;
            let k = self.next_index as f64 - self.count_at_segment_start;
            if k < arrivals_in(&segment) - 1e-9 {
                let offset =
                    self.segment_start + Duration::from_secs_f64(time_of_arrival(&segment, k));
                let op = ScheduledOp {
                    index: self.next_index,
                    offset,
                    user: self.rng.gen_range(0..self.users),
                    amount: self.amount(),
                };
                self.next_index += 1;
                return Some(op);
            }
            self.count_at_segment_start += arrivals_in(&segment);
            self.segment_start += segment.duration;
            self.segment += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile;
    use std::path::Path;

    fn plan(arrival: &str) -> RunPlan {
        let text = format!(
            "name: t\nseed: 7\nduration_s: 10\n{arrival}\nusers: {{count: 5, opening_balance_cents: 1000}}\namounts: {{min_cents: 1, max_cents: 100}}\nslo: {{p99_ms: 200}}\n"
        );
        profile::parse(Path::new("t.yaml"), &text).expect("valid").1
    }

    #[test]
    fn constant_rate_is_evenly_spaced_and_reproducible() {
        let p = plan("arrival: {rate_per_s: 100}");
        let ops: Vec<_> = Schedule::new(&p).collect();
        assert_eq!(ops.len(), 1000);
        assert_eq!(ops[1].offset, Duration::from_millis(10));
        assert_eq!(ops[999].offset, Duration::from_millis(9990));
        assert_eq!(
            ops,
            Schedule::new(&p).collect::<Vec<_>>(),
            "same seed, same schedule"
        );
        assert!(ops
            .iter()
            .all(|o| o.user < 5 && (1..=100).contains(&o.amount.get())));
    }

    #[test]
    fn ramps_follow_the_rate() {
        let p = plan("arrival:\n  stages:\n    - {duration_s: 5, from_per_s: 0, to_per_s: 200}\n    - {duration_s: 5, rate_per_s: 200}");
        let ops: Vec<_> = Schedule::new(&p).collect();
        // 0→200 over 5 s is 500 arrivals, then 1000 more.
        assert_eq!(ops.len(), 1500);
        let first_half = ops
            .iter()
            .filter(|o| o.offset < Duration::from_millis(2500))
            .count();
        assert!(
            (120..=130).contains(&first_half),
            "a quarter of the ramp's 500: {first_half}"
        );
        assert!(ops.windows(2).all(|w| w[0].offset <= w[1].offset));
    }
}

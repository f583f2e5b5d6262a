//! The fault timeline a run executes: every fault of the profile checked (what it does is
//! `fault_action`'s), its repeats laid
//! out, its seeded start jitter drawn, and the result checked for overlaps that could not be
//! healed in order (two pauses of one service, say). A timeline that exists can run.

use super::fault_action::{action_of, check_fields_of_kind, resource, FaultAction};
use super::fault_spec::{FaultKind, FaultSpec};
use super::locate::{err, FieldError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// One occurrence of a fault on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultOccurrence {
    /// The fault's name, with `#N` for the N-th repeat.
    pub name: String,
    pub kind: FaultKind,
    pub target: String,
    pub action: FaultAction,
    /// What it does, for a person.
    pub detail: String,
    /// From the start of the load.
    pub start: Duration,
    /// From the start of the load; the load's end for a fault without an end of its own.
    pub end: Duration,
}

fn seconds(field: String, value: f64, max_s: f64) -> Result<Duration, FieldError> {
    if !value.is_finite() || value < 0.0 || value > max_s {
        return err(
            field,
            format!("must be a number of seconds from 0 to {max_s}, got {value}"),
        );
    }
    Ok(Duration::from_secs_f64(value))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// When a fault's occurrences start and how long each lasts.
struct Timing {
    start: Duration,
    /// None: until the load ends.
    length: Option<Duration>,
    jitter: Duration,
    times: u32,
    every: Duration,
}

fn timing_of(
    at: &dyn Fn(&str) -> String,
    f: &FaultSpec,
    total: Duration,
) -> Result<Timing, FieldError> {
    let total_s = total.as_secs_f64();
    let start = seconds(at("at_s"), f.at_s, total_s)?;
    if start >= total {
        return err(
            at("at_s"),
            format!("starts after the load ends ({total_s} s with warm-up)"),
        );
    }
    let length = match (f.duration_s, f.end_s) {
        (Some(_), Some(_)) => return err(at("end_s"), "give duration_s or end_s, not both"),
        (Some(d), None) => {
            let d = seconds(at("duration_s"), d, 86_400.0)?;
            if d.is_zero() {
                return err(at("duration_s"), "must be above 0");
            }
            Some(d)
        }
        (None, Some(e)) => {
            let end = seconds(at("end_s"), e, 86_400.0)?;
            if end <= start {
                return err(at("end_s"), "must be after at_s");
            }
            Some(end - start)
        }
        (None, None) => None,
    };
    let jitter = seconds(at("jitter_s"), f.jitter_s, 3_600.0)?;
    let (times, every) = match &f.repeat {
        None => (1, Duration::ZERO),
        Some(r) => {
            if r.times == 0 || r.times > 1_000 {
                return err(
                    at("repeat.times"),
                    format!("must be between 1 and 1000, got {}", r.times),
                );
            }
            let every = seconds(at("repeat.every_s"), r.every_s, 86_400.0)?;
            if every.is_zero() {
                return err(at("repeat.every_s"), "must be above 0");
            }
            if length.is_none() && r.times > 1 {
                return err(at("repeat"), "a repeated fault needs duration_s or end_s");
            }
            (r.times, every)
        }
    };
    Ok(Timing {
        start,
        length,
        jitter,
        times,
        every,
    })
}

/// The occurrences of one fault named `name`, with their start jitter drawn from `rng`;
/// those that would start after the load ends are left out.
fn occurrences_of(
    name: &str,
    f: &FaultSpec,
    action: &FaultAction,
    detail: &str,
    timing: &Timing,
    total: Duration,
    rng: &mut StdRng,
) -> Vec<FaultOccurrence> {
    let mut laid_out = Vec::new();
    for n in 0..timing.times {
        let shift = if timing.jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(rng.gen_range(0.0..=timing.jitter.as_secs_f64()))
        };
        let begin = timing.start + timing.every * n + shift;
        if begin >= total {
            break;
        }
        let end = timing.length.map_or(total, |l| (begin + l).min(total));
        let occurrence_name = if timing.times > 1 {
            format!("{name}#{}", n + 1)
        } else {
            name.to_owned()
        };
        let mut action = action.clone();
        if let FaultAction::Toxic { toxic, .. } = &mut action {
            // A toxic's name may not hold `#` in a URL path.
            toxic.name = occurrence_name.replace('#', "_");
        }
        laid_out.push(FaultOccurrence {
            name: occurrence_name,
            kind: f.kind,
            target: f.target.clone(),
            action,
            detail: detail.to_owned(),
            start: begin,
            end,
        });
    }
    laid_out
}

/// Refuses two occurrences that hold one resource at once; `occurrences` pairs each with
/// the index of its fault in the profile.
fn check_overlaps(occurrences: &[(usize, FaultOccurrence)]) -> Result<(), FieldError> {
    for (a, (i, x)) in occurrences.iter().enumerate() {
        for (j, y) in occurrences.iter().skip(a + 1) {
            let same = resource(&x.action).is_some() && resource(&x.action) == resource(&y.action);
            if same && x.start < y.end && y.start < x.end {
                let (later, earlier) = if y.start >= x.start {
                    ((j, y), x)
                } else {
                    ((i, x), y)
                };
                return err(
                    format!("faults[{}].at_s", later.0),
                    format!(
                        "`{}` overlaps `{}` on the {} ({:.1}-{:.1} s and {:.1}-{:.1} s); faults holding one proxy, process or set of knobs must take turns",
                        later.1.name,
                        earlier.name,
                        resource(&x.action).unwrap_or_default(),
                        earlier.start.as_secs_f64(),
                        earlier.end.as_secs_f64(),
                        later.1.start.as_secs_f64(),
                        later.1.end.as_secs_f64(),
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The name of the profile's fault `f` at `index`: its own, or `<kind>-<target>-<index>`.
pub fn fault_name(f: &FaultSpec, index: usize) -> String {
    f.name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-{index}", f.kind.as_str(), f.target))
}

/// Checks the profile's faults and lays them out on a load of `total`, with start jitter
/// drawn from `seed`.
pub fn validate(
    faults: &[FaultSpec],
    total: Duration,
    seed: u64,
) -> Result<Vec<FaultOccurrence>, FieldError> {
    let mut occurrences: Vec<(usize, FaultOccurrence)> = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, f) in faults.iter().enumerate() {
        let at = |field: &str| format!("faults[{i}].{field}");
        let name = fault_name(f, i);
        if !valid_name(&name) {
            return err(at("name"), "must be 1-64 characters of a-z, 0-9, - and _");
        }
        if !names.insert(name.clone()) {
            return err(
                at("name"),
                format!("another fault is already named `{name}`"),
            );
        }
        check_fields_of_kind(&at, f)?;
        let (action, detail) = action_of(&at, f)?;
        let timing = timing_of(&at, f, total)?;
        // One generator per fault, so adding a fault does not move the others.
        let mut rng =
            StdRng::seed_from_u64(seed ^ (0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1)));
        let laid_out = occurrences_of(&name, f, &action, &detail, &timing, total, &mut rng);
        occurrences.extend(laid_out.into_iter().map(|o| (i, o)));
    }
    check_overlaps(&occurrences)?;
    let mut timeline: Vec<FaultOccurrence> = occurrences.into_iter().map(|(_, o)| o).collect();
    timeline.sort_by_key(|o| o.start);
    Ok(timeline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::fault_spec::Repeat;

    fn flapping(jitter_s: f64) -> FaultSpec {
        FaultSpec {
            name: Some("flap".into()),
            kind: FaultKind::Down,
            target: "ledger".into(),
            at_s: 1.0,
            duration_s: Some(0.5),
            end_s: None,
            repeat: Some(Repeat {
                every_s: 2.0,
                times: 4,
            }),
            jitter_s,
            toxic: None,
            stream: None,
            toxicity: None,
            attributes: Default::default(),
            set: None,
            disk: None,
        }
    }

    fn starts(timeline: &[FaultOccurrence]) -> Vec<f64> {
        timeline.iter().map(|o| o.start.as_secs_f64()).collect()
    }

    #[test]
    fn a_repeat_lays_out_its_occurrences_and_stops_at_the_end_of_the_load() {
        let timeline =
            validate(&[flapping(0.0)], Duration::from_secs(6), 1).expect("valid timeline");
        assert_eq!(
            starts(&timeline),
            [1.0, 3.0, 5.0],
            "the fourth would start at 7 s"
        );
        assert_eq!(timeline[2].name, "flap#3");
        assert_eq!(timeline[2].end, Duration::from_millis(5500));
    }

    #[test]
    fn start_jitter_comes_from_the_seed() {
        let total = Duration::from_secs(20);
        let a = validate(&[flapping(0.4)], total, 7).expect("valid");
        let again = validate(&[flapping(0.4)], total, 7).expect("valid");
        let other = validate(&[flapping(0.4)], total, 8).expect("valid");
        assert_eq!(
            starts(&a),
            starts(&again),
            "the same seed gives the same times"
        );
        assert_ne!(starts(&a), starts(&other), "another seed moves them");
        for (n, start) in starts(&a).into_iter().enumerate() {
            let planned = 1.0 + 2.0 * n as f64;
            assert!((planned..=planned + 0.4).contains(&start), "{start}");
        }
    }

    #[test]
    fn a_repeat_that_overlaps_itself_on_one_proxy_is_refused() {
        let mut spec = flapping(0.0);
        spec.duration_s = Some(3.0);
        let (field, message) = validate(&[spec], Duration::from_secs(20), 1).expect_err("overlap");
        assert_eq!(field, "faults[0].at_s");
        assert!(message.contains("`flap#2` overlaps `flap#1`"), "{message}");
    }
}

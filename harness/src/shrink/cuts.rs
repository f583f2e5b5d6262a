//! The cuts `harness shrink` tries on a profile, one dimension at a time: the warm-up and
//! the duration, the faults (half of them, then each one; a service fault is a knob or
//! policy rule the profile sets away from its default), each fault's window and severity,
//! the rate, the users and the client's retries. Each cut is a whole profile,
//! checked by the profile's own rules before it is run.

use crate::profile::fault_plan::fault_name;
use crate::profile::settings::StartSettings;
use crate::profile::{Arrival, Profile, ServiceSettings};
use serde_json::Value;

/// A candidate: what was cut, and the profile without it.
#[derive(Debug, Clone)]
pub struct Cut {
    pub what: String,
    pub profile: Profile,
}

/// One fault of a profile: an entry of its timeline, or a service setting away from its
/// default (which holds for the whole run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultItem {
    Timeline(usize),
    Setting { role: Role, key: String },
}

/// The services whose settings can be faults (the coordinator's are its design).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    External,
    Ledger,
}

impl Role {
    fn section(self, settings: &mut ServiceSettings) -> &mut serde_json::Map<String, Value> {
        match self {
            Role::External => &mut settings.external,
            Role::Ledger => &mut settings.ledger,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::External => "external",
            Role::Ledger => "ledger",
        }
    }
}

/// Every setting as the services start without a profile.
fn defaults() -> ServiceSettings {
    ServiceSettings::written_out(&StartSettings {
        coordinator: Default::default(),
        coordinator_knobs: Default::default(),
        external_knobs: Default::default(),
        ledger_knobs: Default::default(),
        ledger_policy: Default::default(),
    })
}

/// The profile's faults: its timeline, then its settings away from their defaults.
pub fn faults(profile: &Profile) -> Vec<FaultItem> {
    let defaults = defaults();
    let mut items: Vec<FaultItem> = (0..profile.faults.len()).map(FaultItem::Timeline).collect();
    for (role, section, default) in [
        (
            Role::External,
            &profile.service.external,
            &defaults.external,
        ),
        (Role::Ledger, &profile.service.ledger, &defaults.ledger),
    ] {
        for (key, value) in section {
            if default.get(key) != Some(value) {
                items.push(FaultItem::Setting {
                    role,
                    key: key.clone(),
                });
            }
        }
    }
    items
}

/// A fault's name, for the steps: the timeline's name, or `service.ROLE.KEY`.
pub fn fault_label(profile: &Profile, item: &FaultItem) -> String {
    match item {
        FaultItem::Timeline(i) => format!("`{}`", fault_name(&profile.faults[*i], *i)),
        FaultItem::Setting { role, key } => format!("`service.{}.{key}`", role.name()),
    }
}

/// `profile` without the faults `drop`.
fn without(profile: &Profile, drop: &[FaultItem]) -> Profile {
    let defaults = defaults();
    let mut p = profile.clone();
    let mut timeline: Vec<usize> = Vec::new();
    for item in drop {
        match item {
            FaultItem::Timeline(i) => timeline.push(*i),
            FaultItem::Setting { role, key } => {
                let mut d = defaults.clone();
                let default = role.section(&mut d).get(key).cloned();
                let section = role.section(&mut p.service);
                match default {
                    Some(v) => {
                        section.insert(key.clone(), v);
                    }
                    None => {
                        section.remove(key);
                    }
                }
            }
        }
    }
    p.faults = p
        .faults
        .iter()
        .enumerate()
        .filter(|(i, _)| !timeline.contains(i))
        .map(|(_, f)| f.clone())
        .collect();
    p
}

/// The highest rate the profile's arrival asks for.
pub fn peak_rate(arrival: &Arrival) -> u32 {
    let staged = arrival.stages.iter().flatten().map(|s| {
        [s.rate_per_s, s.from_per_s, s.to_per_s]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0)
    });
    arrival
        .rate_per_s
        .into_iter()
        .chain(staged)
        .max()
        .unwrap_or(0)
}

/// Every cut of `profile`, in the order they are tried: the warm-up and the duration first
/// (every later run is then shorter), then the faults, their windows and severities, then
/// the rate, the users and the retries.
pub fn cuts(profile: &Profile) -> Vec<Cut> {
    let mut out = Vec::new();
    let mut push = |what: String, p: Profile| {
        if p != *profile {
            out.push(Cut { what, profile: p });
        }
    };
    if profile.warmup_s > 0 {
        let mut p = profile.clone();
        p.warmup_s = 0;
        push("no warm-up".to_owned(), p);
    }
    if profile.duration_s > 1 {
        let mut p = profile.clone();
        p.duration_s = (profile.duration_s / 2).max(1);
        // A staged arrival is one constant rate from here on: its stages fix the duration.
        if p.arrival.stages.is_some() {
            p.arrival = Arrival {
                rate_per_s: Some(peak_rate(&profile.arrival)),
                stages: None,
            };
        }
        push(format!("{} s of load", p.duration_s), p);
    }
    let items = faults(profile);
    if items.len() > 1 {
        let half = items.len() / 2;
        for (part, drop) in [("first", &items[..half]), ("second", &items[half..])] {
            let names: Vec<String> = drop.iter().map(|i| fault_label(profile, i)).collect();
            push(
                format!("drop the {part} half of the faults ({})", names.join(", ")),
                without(profile, drop),
            );
        }
    }
    for item in &items {
        push(
            format!("drop fault {}", fault_label(profile, item)),
            without(profile, std::slice::from_ref(item)),
        );
    }
    // Each timeline fault's window halved (its start kept), its repeats halved.
    for (i, fault) in profile.faults.iter().enumerate() {
        let label = fault_label(profile, &FaultItem::Timeline(i));
        if let Some(d) = fault.duration_s.filter(|d| *d >= 1.0) {
            let mut p = profile.clone();
            p.faults[i].duration_s = Some((d / 2.0).floor().max(0.5));
            push(
                format!(
                    "narrow {label} to {} s",
                    p.faults[i].duration_s.unwrap_or(d)
                ),
                p,
            );
        }
        if let Some(end) = fault.end_s.filter(|end| end - fault.at_s >= 1.0) {
            let mut p = profile.clone();
            p.faults[i].end_s = Some(fault.at_s + ((end - fault.at_s) / 2.0).floor().max(0.5));
            push(
                format!(
                    "narrow {label} to end at {} s",
                    p.faults[i].end_s.unwrap_or(end)
                ),
                p,
            );
        }
        if fault.at_s >= 1.0 {
            // Earlier, so that a shorter load still holds it.
            let mut p = profile.clone();
            let at = (fault.at_s / 2.0).floor();
            p.faults[i].at_s = at;
            if let Some(end) = fault.end_s {
                p.faults[i].end_s = Some(end - (fault.at_s - at));
            }
            push(format!("start {label} at {at} s"), p);
        }
        if let Some(repeat) = fault.repeat.as_ref().filter(|r| r.times > 1) {
            let mut p = profile.clone();
            if let Some(r) = p.faults[i].repeat.as_mut() {
                r.times = repeat.times / 2;
            }
            push(format!("repeat {label} {} times", repeat.times / 2), p);
        }
        if let Some(t) = fault.toxicity.filter(|t| *t > 0.1) {
            let mut p = profile.clone();
            p.faults[i].toxicity = Some((t / 2.0 * 100.0).round() / 100.0);
            push(format!("halve {label}'s toxicity"), p);
        }
    }
    // Each service fault's rate halved (a rate that fires less is a milder fault).
    for item in &items {
        let FaultItem::Setting { role, key } = item else {
            continue;
        };
        let mut p = profile.clone();
        let section = role.section(&mut p.service);
        if let Some(rate) = section.get(key).and_then(Value::as_f64) {
            if key.ends_with("_rate") && rate > 0.02 {
                section.insert(
                    key.clone(),
                    Value::from((rate / 2.0 * 100.0).round() / 100.0),
                );
                push(format!("halve {}", fault_label(profile, item)), p);
            }
        }
    }
    let rate = peak_rate(&profile.arrival);
    if rate > 1 {
        let mut p = profile.clone();
        p.arrival = Arrival {
            rate_per_s: Some((rate / 2).max(1)),
            stages: None,
        };
        push(format!("{} requests a second", (rate / 2).max(1)), p);
    }
    if profile.users.count > 1 {
        let mut p = profile.clone();
        p.users.count = (profile.users.count / 2).max(1);
        push(format!("{} users", p.users.count), p);
    }
    let retries = profile.client.retries.max;
    if retries > 0 {
        let mut p = profile.clone();
        p.client.retries.max = 0;
        push("no retries".to_owned(), p);
        if retries > 1 {
            let mut p = profile.clone();
            p.client.retries.max = retries / 2;
            push(format!("{} retries", retries / 2), p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(extra: &str) -> Profile {
        let text = format!("{}{extra}", crate::profile::TEST_PROFILE_HEAD);
        crate::profile::parse(std::path::Path::new("t.yaml"), &text)
            .expect("a profile")
            .0
    }

    #[test]
    fn settings_away_from_their_defaults_are_faults_and_a_drop_puts_the_default_back() {
        let p = profile(
            "service:\n  ledger: {error_before_rate: 0.3}\n  external: {service_time_ms: 0}\n",
        );
        let items = faults(&p);
        assert_eq!(
            items,
            vec![FaultItem::Setting {
                role: Role::Ledger,
                key: "error_before_rate".to_owned()
            }]
        );
        let cut = without(&p, &items);
        assert!(faults(&cut).is_empty());
    }

    #[test]
    fn every_cut_is_smaller_on_one_dimension_and_faults_come_first() {
        let p = profile(
            "warmup_s: 2\nclient: {retries: {max: 3}}\nfaults:\n  - {kind: kill, target: ledger, at_s: 1}\n  - {kind: toxic, target: external, at_s: 2, duration_s: 4, toxic: latency, attributes: {latency: 100}}\n",
        );
        let cuts = cuts(&p);
        let whats: Vec<&str> = cuts.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(whats[..2], ["no warm-up", "5 s of load"], "{whats:?}");
        assert!(whats[2].starts_with("drop the first half"), "{whats:?}");
        assert!(whats.contains(&"no warm-up"), "{whats:?}");
        assert!(whats.contains(&"5 s of load"), "{whats:?}");
        assert!(whats.contains(&"50 requests a second"), "{whats:?}");
        assert!(whats.contains(&"5 users"), "{whats:?}");
        assert!(whats.contains(&"no retries"), "{whats:?}");
        assert!(whats.iter().any(|w| w.starts_with("narrow")), "{whats:?}");
        for cut in &cuts {
            assert_ne!(cut.profile, p, "{}", cut.what);
        }
        // A profile at its smallest has nothing left to cut.
        let mut least = p.clone();
        least.faults.clear();
        least.warmup_s = 0;
        least.duration_s = 1;
        least.arrival.rate_per_s = Some(1);
        least.users.count = 1;
        least.client.retries.max = 0;
        assert!(cuts_of_len(&least) == 0);
    }

    fn cuts_of_len(p: &Profile) -> usize {
        cuts(p).len()
    }
}

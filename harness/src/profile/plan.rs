//! The validated plan a run executes: every value checked, every choice explicit. A plan that
//! exists is a plan that can run.

use super::fault_plan::FaultOccurrence;
use super::locate::FieldError;
use super::{
    AmountDistribution, Amounts, Arrival, Client, Profile, RetryKey, RetryOn, Slo, Stage, Users,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use service::coordinator::CoordinatorSettings;
use service::knobs::FaultKnobs;
use service::ledger_policy::LedgerPolicy;
use service::money::AmountCents;
use service::settings::{self, SettingError};
use std::time::Duration;

service::named_enum! {
    /// The phases an SLO may bound (`slo.<phase>.p99_ms` in a profile); `phases` measures each.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
    pub enum PhaseGroup {
        /// No fault active, and none healed within the recovery window.
        Steady = "steady",
        /// At least one fault active.
        DuringFaults = "during_faults",
        /// No fault active, one healed within the recovery window.
        Recovery = "recovery",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub name: String,
    pub seed: u64,
    pub warmup: Duration,
    pub duration: Duration,
    /// Arrival-rate segments covering warm-up plus duration, in order.
    pub rate: Vec<RateSegment>,
    pub users: u32,
    pub opening_balance: AmountCents,
    pub amount_min: AmountCents,
    pub amount_max: AmountCents,
    pub amount_distribution: AmountDistribution,
    pub client_timeout: Duration,
    pub client_max_in_flight: u32,
    /// HTTP/2 connections to the coordinator; 0 for HTTP/1.1.
    pub client_http2_connections: u32,
    pub retries: Option<RetryPlan>,
    /// Each service's settings at start (`service:`, over the services' defaults).
    pub coordinator: CoordinatorSettings,
    pub coordinator_knobs: FaultKnobs,
    pub external_knobs: FaultKnobs,
    pub ledger_knobs: FaultKnobs,
    pub ledger_policy: LedgerPolicy,
    /// The `service:` section as the profile writes it (what a target must be given).
    pub service_section: super::ServiceSettings,
    pub slo: SloPlan,
    pub convergence_window: Duration,
    /// The fault timeline, in start order.
    pub faults: Vec<FaultOccurrence>,
    /// The part of the run this process drives (the whole run unless `--shard`).
    pub shard: Shard,
}

/// The part of a run one harness process drives: shard `index` of `count`, from 0. User `n`
/// belongs to shard `n % count`: a shard seeds its own users and sends their arrivals of the
/// one seeded schedule, so the shards' schedules together are the unsharded schedule,
/// arrival for arrival, and no two shards share a user, an account or an idempotency key.
/// Shard 0 owns the fault timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole run, in one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };
    /// The most shards a run is cut into.
    pub const MAX_COUNT: u32 = 1024;

    /// `I/N`, 0-based.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "--shard takes I/N (0 <= I < N <= {}), got `{text}`",
                Shard::MAX_COUNT
            )
        };
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > Shard::MAX_COUNT || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether user `n` is this shard's.
    pub fn owns(self, user: u32) -> bool {
        user % self.count == self.index
    }

    /// Whether this shard applies the fault timeline (the others only record it).
    pub fn owns_faults(self) -> bool {
        self.index == 0
    }

    /// How many of `users` are this shard's.
    pub fn users_of(self, users: u32) -> u32 {
        users / self.count + u32::from(users % self.count > self.index)
    }
}

impl Default for Shard {
    fn default() -> Shard {
        Shard::WHOLE
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A rate that moves linearly from `from_per_s` to `to_per_s` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSegment {
    pub duration: Duration,
    pub from_per_s: f64,
    pub to_per_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPlan {
    pub max: u32,
    pub after: Duration,
    pub key: RetryKey,
    pub on: Vec<RetryOn>,
}

impl RetryPlan {
    /// Whether the impatient user tries again after attempt `attempt` ended in `outcome`.
    pub fn retries(&self, outcome: crate::history::Outcome, attempt: u32) -> bool {
        use crate::history::Outcome;
        let trigger = match outcome {
            Outcome::Failed => RetryOn::Failed,
            Outcome::Pending => RetryOn::Pending,
            Outcome::Shed => RetryOn::Shed,
            Outcome::Error => RetryOn::Error,
            Outcome::Completed | Outcome::Overflow => return false,
        };
        attempt < self.max && self.on.contains(&trigger)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SloPlan {
    pub p99: Duration,
    /// (name, quantile in 0..1, bound)
    pub percentiles: Vec<(String, f64, Duration)>,
    pub error_budget: f64,
    /// Largest fraction of requests that may be shed (None: not judged).
    pub shed_budget: Option<f64>,
    /// p99 bounds on phases of the run.
    pub phases: Vec<(PhaseGroup, Duration)>,
}

impl RunPlan {
    pub fn total(&self) -> Duration {
        self.warmup + self.duration
    }

    /// Requests the schedule will hold (before retries).
    pub fn expected_requests(&self) -> f64 {
        self.rate
            .iter()
            .map(|s| (s.from_per_s + s.to_per_s) / 2.0 * s.duration.as_secs_f64())
            .sum()
    }
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, FieldError> {
    Err((field.to_owned(), message.into()))
}

fn field_error(e: SettingError) -> FieldError {
    (e.field().to_owned(), e.message())
}

fn check_range(field: &str, value: u64, min: u64, max: u64) -> Result<(), FieldError> {
    settings::check_range(field, value, min, max).map_err(field_error)
}

fn check_fraction(field: &str, value: f64) -> Result<(), FieldError> {
    settings::check_fraction(field, value).map_err(field_error)
}

/// The highest arrival rate a profile may ask for.
pub const MAX_RATE_PER_S: u64 = 1_000_000;

/// The quantile a percentile name stands for: `p50` → 0.5, `p999` → 0.999.
pub fn quantile_of(name: &str) -> Option<f64> {
    let digits = name.strip_prefix('p')?;
    let well_formed = digits.len() >= 2
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
        // p999 is 99.9 %; p100 would read as 10 %, so longer names must start with 9.
        && (digits.len() == 2 || digits.starts_with('9'));
    if !well_formed {
        return None;
    }
    format!("0.{digits}").parse().ok()
}

fn name(name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return err("name", "must be 1-64 characters of a-z, 0-9, - and _");
    }
    Ok(())
}

/// The arrival rate as segments covering `total_s` seconds.
fn arrival(arrival: &Arrival, total_s: u32) -> Result<Vec<RateSegment>, FieldError> {
    match (&arrival.rate_per_s, &arrival.stages) {
        (Some(_), Some(_)) => err("arrival", "give rate_per_s or stages, not both"),
        (None, None) => err("arrival", "give rate_per_s or stages"),
        (Some(r), None) => {
            check_range("arrival.rate_per_s", u64::from(*r), 1, MAX_RATE_PER_S)?;
            Ok(vec![RateSegment {
                duration: Duration::from_secs(u64::from(total_s)),
                from_per_s: f64::from(*r),
                to_per_s: f64::from(*r),
            }])
        }
        (None, Some(stages)) => stages_of(stages, total_s),
    }
}

fn stages_of(stages: &[Stage], total_s: u32) -> Result<Vec<RateSegment>, FieldError> {
    if stages.is_empty() {
        return err("arrival.stages", "must hold at least one stage");
    }
    let mut segments = Vec::new();
    let mut sum_s = 0u32;
    for (i, stage) in stages.iter().enumerate() {
        let at = |f: &str| format!("arrival.stages[{i}].{f}");
        check_range(&at("duration_s"), u64::from(stage.duration_s), 1, 86_400)?;
        sum_s = sum_s.saturating_add(stage.duration_s);
        let (from, to) = match (stage.rate_per_s, stage.from_per_s, stage.to_per_s) {
            (Some(r), None, None) => {
                check_range(&at("rate_per_s"), u64::from(r), 1, MAX_RATE_PER_S)?;
                (r, r)
            }
            (None, Some(from), Some(to)) => {
                check_range(&at("from_per_s"), u64::from(from), 0, MAX_RATE_PER_S)?;
                check_range(&at("to_per_s"), u64::from(to), 0, MAX_RATE_PER_S)?;
                if from == 0 && to == 0 {
                    return err(&at("to_per_s"), "a ramp from 0 to 0 sends nothing");
                }
                (from, to)
            }
            _ => {
                return err(
                    &format!("arrival.stages[{i}]"),
                    "give rate_per_s, or from_per_s and to_per_s",
                )
            }
        };
        segments.push(RateSegment {
            duration: Duration::from_secs(u64::from(stage.duration_s)),
            from_per_s: f64::from(from),
            to_per_s: f64::from(to),
        });
    }
    if sum_s != total_s {
        return err(
            "arrival.stages",
            format!("stages last {sum_s} s but warmup_s + duration_s is {total_s} s"),
        );
    }
    Ok(segments)
}

fn users_and_amounts(users: &Users, amounts: &Amounts) -> Result<(), FieldError> {
    check_range("users.count", u64::from(users.count), 1, 1_000_000)?;
    let opening = users.opening_balance_cents.get();
    if opening == 0 || opening > i64::MAX as u64 / u64::from(users.count) {
        return err(
            "users.opening_balance_cents",
            "must be positive and small enough that all balances sum without overflow",
        );
    }
    if amounts.min_cents.get() == 0 {
        return err("amounts.min_cents", "must be at least 1");
    }
    if amounts.max_cents < amounts.min_cents {
        return err("amounts.max_cents", "must be at least min_cents");
    }
    if amounts.max_cents > AmountCents::MAX_TRANSFER {
        return err(
            "amounts.max_cents",
            format!("must be at most {}", AmountCents::MAX_TRANSFER),
        );
    }
    Ok(())
}

fn retries(client: &Client) -> Result<Option<RetryPlan>, FieldError> {
    check_range("client.timeout_ms", client.timeout_ms, 1, 600_000)?;
    check_range(
        "client.max_in_flight",
        u64::from(client.max_in_flight),
        1,
        1_000_000,
    )?;
    check_range(
        "client.http2_connections",
        u64::from(client.http2_connections),
        0,
        service::http_client::MAX_CONNECTIONS as u64,
    )?;
    let r = &client.retries;
    check_range("client.retries.max", u64::from(r.max), 0, 10)?;
    check_range("client.retries.after_ms", r.after_ms, 0, 60_000)?;
    if r.max > 0 && r.on.is_empty() {
        return err(
            "client.retries.on",
            "must name at least one answer when max > 0",
        );
    }
    Ok((r.max > 0).then(|| RetryPlan {
        max: r.max,
        after: Duration::from_millis(r.after_ms),
        key: r.key,
        on: r.on.clone(),
    }))
}

fn slo(slo: &Slo) -> Result<SloPlan, FieldError> {
    check_range("slo.p99_ms", slo.p99_ms, 1, 600_000)?;
    check_fraction("slo.error_budget", slo.error_budget)?;
    if let Some(shed_budget) = slo.shed_budget {
        check_fraction("slo.shed_budget", shed_budget)?;
    }
    let mut percentiles = Vec::new();
    for (name, bound_ms) in &slo.percentiles_ms {
        let field = format!("slo.percentiles_ms.{name}");
        let Some(q) = quantile_of(name) else {
            return err(
                &field,
                "a percentile is named p50, p90, p95, p99, p999, p9999, ...",
            );
        };
        check_range(&field, *bound_ms, 1, 600_000)?;
        percentiles.push((name.clone(), q, Duration::from_millis(*bound_ms)));
    }
    let mut phases = Vec::new();
    for (group, bound) in [
        (PhaseGroup::Steady, &slo.steady),
        (PhaseGroup::DuringFaults, &slo.during_faults),
        (PhaseGroup::Recovery, &slo.recovery),
    ] {
        if let Some(bound) = bound {
            let field = format!("slo.{}.p99_ms", group.as_str());
            check_range(&field, bound.p99_ms, 1, 600_000)?;
            phases.push((group, Duration::from_millis(bound.p99_ms)));
        }
    }
    Ok(SloPlan {
        p99: Duration::from_millis(slo.p99_ms),
        percentiles,
        error_budget: slo.error_budget,
        shed_budget: slo.shed_budget,
        phases,
    })
}

/// Checks every field of `p` and makes the plan; an error names the field.
pub fn validate(p: &Profile) -> Result<RunPlan, FieldError> {
    name(&p.name)?;
    check_range("duration_s", u64::from(p.duration_s), 1, 86_400)?;
    check_range("warmup_s", u64::from(p.warmup_s), 0, 3_600)?;
    let total_s = p.warmup_s + p.duration_s;
    let rate = arrival(&p.arrival, total_s)?;
    users_and_amounts(&p.users, &p.amounts)?;
    let retries = retries(&p.client)?;
    let services = p.service.start_settings().map_err(field_error)?;
    let slo = slo(&p.slo)?;
    check_range(
        "convergence_window_s",
        u64::from(p.convergence_window_s),
        1,
        3_600,
    )?;
    let faults =
        super::fault_plan::validate(&p.faults, Duration::from_secs(u64::from(total_s)), p.seed)?;

    Ok(RunPlan {
        name: p.name.clone(),
        seed: p.seed,
        warmup: Duration::from_secs(u64::from(p.warmup_s)),
        duration: Duration::from_secs(u64::from(p.duration_s)),
        rate,
        users: p.users.count,
        opening_balance: p.users.opening_balance_cents,
        amount_min: p.amounts.min_cents,
        amount_max: p.amounts.max_cents,
        amount_distribution: p.amounts.distribution,
        client_timeout: Duration::from_millis(p.client.timeout_ms),
        client_max_in_flight: p.client.max_in_flight,
        client_http2_connections: p.client.http2_connections,
        retries,
        coordinator: services.coordinator,
        coordinator_knobs: services.coordinator_knobs,
        service_section: p.service.clone(),
        external_knobs: services.external_knobs,
        ledger_knobs: services.ledger_knobs,
        ledger_policy: services.ledger_policy,
        slo,
        convergence_window: Duration::from_secs(u64::from(p.convergence_window_s)),
        faults,
        shard: Shard::WHOLE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_names() {
        assert_eq!(quantile_of("p50"), Some(0.5));
        assert_eq!(quantile_of("p999"), Some(0.999));
        assert_eq!(quantile_of("p9999"), Some(0.9999));
        assert_eq!(quantile_of("p5"), None);
        assert_eq!(quantile_of("p100"), None);
        assert_eq!(quantile_of("median"), None);
    }
}

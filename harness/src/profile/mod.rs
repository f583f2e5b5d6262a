//! Chaos profiles: the YAML a run is described by (`chaos-profiles/*.yaml`), parsed strictly
//! (unknown fields are errors) and validated into a [`RunPlan`] before anything starts.
//! Every error names the file, the line and the field.
//!
//! - `locate`: finds a field's line for errors found after parsing.
//! - `plan`: the validated, closed plan a run executes.
//! - `settings`: the `service:` section, in the services' own settings types.
//! - `fault_spec`, `fault_action`, `fault_plan`: the `faults:` list as written, what each
//!   fault does, and the faults laid out as a timeline.

pub mod fault_action;
pub mod fault_plan;
pub mod fault_spec;
pub mod locate;
pub mod plan;
pub mod settings;

pub use fault_spec::{FaultKind, FaultSpec};
pub use plan::RunPlan;
pub use settings::ServiceSettings;

use serde::{Deserialize, Serialize};
use service::money::AmountCents;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A profile's required fields, for unit tests to add their own (`faults:`, …) to.
#[cfg(test)]
pub const TEST_PROFILE_HEAD: &str = "name: t
seed: 1
duration_s: 10
arrival: {rate_per_s: 100}
users: {count: 10, opening_balance_cents: 100000}
amounts: {min_cents: 100, max_cents: 500}
slo: {p99_ms: 200}
";

/// A profile error: `FILE:LINE: FIELD: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {field}: {message}", file.display(), line.map_or_else(|| "?".to_owned(), |l| l.to_string()))]
pub struct ProfileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// The field's path, like `arrival.stages[1].to_per_s` (`(profile)` for the whole file).
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name, used in the results folder's name.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seed of the request schedule (and of the services' random fault decisions).
    pub seed: u64,
    /// Seconds of load before measuring starts.
    #[serde(default)]
    pub warmup_s: u32,
    /// Measured seconds of load.
    pub duration_s: u32,
    pub arrival: Arrival,
    pub users: Users,
    pub amounts: Amounts,
    #[serde(default)]
    pub client: Client,
    #[serde(default)]
    pub service: ServiceSettings,
    pub slo: Slo,
    /// Seconds allowed, after the load ends and faults heal, for every saga to be final.
    #[serde(default = "default_convergence_window_s")]
    pub convergence_window_s: u32,
    /// Faults on a timeline (see `chaos-profiles/README.md`).
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
}

fn default_convergence_window_s() -> u32 {
    30
}

/// Arrival rate: constant (`rate_per_s`) or stages that hold or ramp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    pub rate_per_s: Option<u32>,
    pub stages: Option<Vec<Stage>>,
}

/// A stage: `rate_per_s` for a constant rate, or `from_per_s` → `to_per_s` for a linear ramp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub duration_s: u32,
    pub rate_per_s: Option<u32>,
    pub from_per_s: Option<u32>,
    pub to_per_s: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    pub count: u32,
    /// Each user's opening balance at the external institution.
    pub opening_balance_cents: AmountCents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AmountDistribution {
    /// Every amount in [min, max] equally likely.
    #[default]
    Uniform,
    /// Amounts spread evenly over orders of magnitude (many small, few large).
    LogUniform,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amounts {
    pub min_cents: AmountCents,
    pub max_cents: AmountCents,
    #[serde(default)]
    pub distribution: AmountDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The client gives up on an answer after this long (outcome `error`, kind `timeout`).
    #[serde(default = "default_client_timeout_ms")]
    pub timeout_ms: u64,
    /// Requests in flight at most; a scheduled send beyond it is counted as overflow.
    #[serde(default = "default_client_max_in_flight")]
    pub max_in_flight: u32,
    /// 0: HTTP/1.1 to the coordinator, a connection per request in flight. 1–64: that many
    /// HTTP/2 (h2c) connections, requests spread over them; the coordinator under test must
    /// speak h2c, and a network fault on the client hop then hits every request on a
    /// connection.
    #[serde(default)]
    pub http2_connections: u32,
    #[serde(default)]
    pub retries: Retries,
}

fn default_client_timeout_ms() -> u64 {
    2000
}

fn default_client_max_in_flight() -> u32 {
    20_000
}

impl Default for Client {
    fn default() -> Self {
        Client {
            timeout_ms: default_client_timeout_ms(),
            max_in_flight: default_client_max_in_flight(),
            http2_connections: 0,
            retries: Retries::default(),
        }
    }
}

/// The impatient user (the seed's "button mash"): after an answer in `on`, try again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retries {
    /// Retries per request at most (0 = patient users).
    #[serde(default)]
    pub max: u32,
    /// Wait this long after the answer before retrying.
    #[serde(default = "default_retry_after_ms")]
    pub after_ms: u64,
    /// Retry with the same idempotency key, or a new one (a new transfer).
    #[serde(default)]
    pub key: RetryKey,
    /// Which answers make the user retry.
    #[serde(default = "default_retry_on")]
    pub on: Vec<RetryOn>,
}

fn default_retry_after_ms() -> u64 {
    100
}

fn default_retry_on() -> Vec<RetryOn> {
    vec![RetryOn::Error, RetryOn::Pending, RetryOn::Shed]
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max: 0,
            after_ms: default_retry_after_ms(),
            key: RetryKey::Same,
            on: default_retry_on(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetryKey {
    /// Retry with the same idempotency key (the same transfer).
    #[default]
    Same,
    /// Retry with a new key (a new transfer, as a user pressing the button again).
    New,
    /// Even-numbered requests retry with the same key, odd-numbered with a new one.
    Mixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryOn {
    Failed,
    Pending,
    Shed,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// The synchronous answer's p99 must be at most this.
    pub p99_ms: u64,
    /// Further percentiles to hold, by name (`p50`, `p90`, `p95`, `p999`, `p9999`).
    #[serde(default)]
    pub percentiles_ms: BTreeMap<String, u64>,
    /// Largest fraction of requests that may end as `error` (transport error, 5xx, timeout).
    #[serde(default)]
    pub error_budget: f64,
    /// Largest fraction of requests the system may shed (503 `overloaded`, nothing written).
    /// Shed answers are not errors: each keeps its promise and is safe to retry. Without this
    /// field they are counted, not judged.
    #[serde(default)]
    pub shed_budget: Option<f64>,
    /// The p99 bound of the phase with no fault active and none recovering.
    #[serde(default)]
    pub steady: Option<PhaseSlo>,
    /// The p99 bound of every operation scheduled while a fault is active.
    #[serde(default)]
    pub during_faults: Option<PhaseSlo>,
    /// The p99 bound of the recovery windows after each fault heals.
    #[serde(default)]
    pub recovery: Option<PhaseSlo>,
}

/// A latency bound on one phase of the run (`harness/src/phases.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSlo {
    pub p99_ms: u64,
}

/// Reads and validates a profile file.
pub fn load(path: &Path) -> Result<(Profile, RunPlan), ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
        file: path.to_owned(),
        line: None,
        field: "(profile)".into(),
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text)
}

/// Parses and validates profile `text` (read from `file`, for messages).
pub fn parse(file: &Path, text: &str) -> Result<(Profile, RunPlan), ProfileError> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let profile: Profile = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let line = inner.location().map(|l| l.line());
        let message = strip_location(&inner.to_string());
        ProfileError {
            file: file.to_owned(),
            line,
            // `.` is the whole file; an empty path is an unknown key with no name (`: 1`).
            field: if path == "." || path.is_empty() {
                "(profile)".into()
            } else {
                path
            },
            message,
        }
    })?;
    let plan = plan::validate(&profile).map_err(|(field, message)| ProfileError {
        file: file.to_owned(),
        line: locate::line_of(text, &field),
        field,
        message,
    })?;
    Ok((profile, plan))
}

/// serde_yaml appends " at line L column C"; the line is reported separately.
pub fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

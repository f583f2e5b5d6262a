//! The fault knobs of every service, defined once (see `settings`): errors before the work,
//! errors after the work committed (the "applied but the answer was lost" case), service
//! time, and CPU burnt or a thread stalled per request (a known slowdown, as a slow release
//! would bring). They
//! are each service's flags, the body of `GET|PUT /admin/knobs`, a profile's
//! `service.<role>` fields and a knobs fault's `set:`. `fault_injection` applies them to each
//! money-moving operation (the coordinator's: each `POST /transfers` it admits).

use crate::settings::{check_fraction, check_range, SettingError, Settings};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How an answer is lost after the work committed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LostAnswer {
    /// Answer 500 although the work is applied.
    #[default]
    #[value(name = "status500")]
    Status500,
    /// Start the answer and break the connection mid-body.
    Drop,
}

/// The longest service time a knob may ask for; anything longer is a mistake.
pub const MAX_SERVICE_TIME_MS: u64 = 60_000;

/// The most CPU time a knob may burn, or a thread stall, per request: a second is already
/// a mistake.
pub const MAX_CPU_BURN_US: u64 = 1_000_000;

/// Faults a service injects into its own money-moving operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, clap::Args, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FaultKnobs {
    /// Probability (0..=1) that an operation fails with 500 before doing anything.
    #[arg(long, default_value_t)]
    pub error_before_rate: f64,
    /// Probability (0..=1) that an operation is applied and committed, and then its answer is
    /// lost (see error_after_mode).
    #[arg(long, default_value_t)]
    pub error_after_rate: f64,
    /// How a lost answer is lost: a 500 (status500) or a connection broken mid-answer (drop).
    #[arg(long, value_enum, default_value_t)]
    pub error_after_mode: LostAnswer,
    /// Fixed time added before every money-moving operation, in ms (at most 60000).
    #[arg(long, default_value_t)]
    pub service_time_ms: u64,
    /// Uniform extra time, 0..=this many ms, on top of service_time_ms (at most 60000).
    #[arg(long, default_value_t)]
    pub service_jitter_ms: u64,
    /// CPU time burnt on the request's own thread before every money-moving operation, in
    /// µs (at most 1000000): a known CPU regression, for proving that regression checks see
    /// one.
    #[arg(long, default_value_t)]
    pub cpu_burn_us: u64,
    /// Time the request's thread is blocked, asleep, before every money-moving operation,
    /// in µs (at most 1000000): a slow release that waits on a lock or a blocking call. The
    /// other requests that thread serves wait too; no CPU is spent.
    #[arg(long, default_value_t)]
    pub stall_us: u64,
}

impl Settings for FaultKnobs {
    fn validate(&self) -> Result<(), SettingError> {
        check_fraction("error_before_rate", self.error_before_rate)?;
        check_fraction("error_after_rate", self.error_after_rate)?;
        check_range(
            "service_time_ms",
            self.service_time_ms,
            0,
            MAX_SERVICE_TIME_MS,
        )?;
        check_range(
            "service_jitter_ms",
            self.service_jitter_ms,
            0,
            MAX_SERVICE_TIME_MS,
        )?;
        check_range("cpu_burn_us", self.cpu_burn_us, 0, MAX_CPU_BURN_US)?;
        check_range("stall_us", self.stall_us, 0, MAX_CPU_BURN_US)
    }
}

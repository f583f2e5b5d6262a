//! Fault knobs of the simulated external institution and the ledger: errors before the work,
//! errors after the work committed (the "applied but the answer was lost" case) and service
//! time. Set by flags at start and changed at run time with `PUT /admin/knobs`.

use crate::api_error::ApiError;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;

/// How an answer is lost after the work committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "snake_case")]
pub enum LostAnswer {
    /// Answer 500 although the work is applied.
    #[default]
    Status500,
    /// Start the answer and break the connection mid-body.
    Drop,
}

/// Faults a service injects into its own operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultKnobs {
    /// Probability (0..=1) that an operation fails with 500 before doing anything.
    pub error_before_rate: f64,
    /// Probability (0..=1) that an operation is applied and committed, and then its answer
    /// is lost (see `error_after_mode`).
    pub error_after_rate: f64,
    pub error_after_mode: LostAnswer,
    /// Fixed time added to every money-moving operation before it runs.
    pub service_time_ms: u64,
    /// Uniform extra time, 0..=service_jitter_ms, added on top of `service_time_ms`.
    pub service_jitter_ms: u64,
}

/// A partial update of [`FaultKnobs`]: fields left out keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultKnobsPatch {
    pub error_before_rate: Option<f64>,
    pub error_after_rate: Option<f64>,
    pub error_after_mode: Option<LostAnswer>,
    pub service_time_ms: Option<u64>,
    pub service_jitter_ms: Option<u64>,
}

/// The largest service time a knob may ask for; anything longer is a mistake.
const MAX_SERVICE_TIME_MS: u64 = 60_000;

pub fn check_rate(field: &'static str, rate: f64) -> Result<f64, ApiError> {
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(ApiError::bad_request(
            "invalid_knob",
            format!("{field} must be between 0 and 1, got {rate}"),
        ))
    }
}

fn check_time(field: &'static str, ms: u64) -> Result<u64, ApiError> {
    if ms <= MAX_SERVICE_TIME_MS {
        Ok(ms)
    } else {
        Err(ApiError::bad_request(
            "invalid_knob",
            format!("{field} must be at most {MAX_SERVICE_TIME_MS} ms, got {ms}"),
        ))
    }
}

impl FaultKnobs {
    pub fn validate(self) -> Result<Self, ApiError> {
        check_rate("error_before_rate", self.error_before_rate)?;
        check_rate("error_after_rate", self.error_after_rate)?;
        check_time("service_time_ms", self.service_time_ms)?;
        check_time("service_jitter_ms", self.service_jitter_ms)?;
        Ok(self)
    }

    /// The knobs with `patch` applied, validated as a whole before anything changes.
    pub fn patched(&self, patch: FaultKnobsPatch) -> Result<Self, ApiError> {
        FaultKnobs {
            error_before_rate: patch.error_before_rate.unwrap_or(self.error_before_rate),
            error_after_rate: patch.error_after_rate.unwrap_or(self.error_after_rate),
            error_after_mode: patch.error_after_mode.unwrap_or(self.error_after_mode),
            service_time_ms: patch.service_time_ms.unwrap_or(self.service_time_ms),
            service_jitter_ms: patch.service_jitter_ms.unwrap_or(self.service_jitter_ms),
        }
        .validate()
    }
}

/// What the knobs decided for one operation.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    pub delay: Duration,
    pub fail_before: bool,
    pub lose_answer: Option<LostAnswer>,
}

/// A seeded random source shared by a service's fault decisions, so a seed replays them.
pub struct SeededRng(Mutex<StdRng>);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng(Mutex::new(StdRng::seed_from_u64(seed)))
    }

    /// True with probability `rate`.
    pub fn chance(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        if rate >= 1.0 {
            return true;
        }
        match self.0.lock() {
            Ok(mut rng) => rng.gen_bool(rate),
            Err(poisoned) => poisoned.into_inner().gen_bool(rate),
        }
    }

    /// Uniform in 0..=max.
    pub fn up_to(&self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        match self.0.lock() {
            Ok(mut rng) => rng.gen_range(0..=max),
            Err(poisoned) => poisoned.into_inner().gen_range(0..=max),
        }
    }
}

impl FaultKnobs {
    pub fn plan(&self, rng: &SeededRng) -> FaultPlan {
        let delay_ms = self.service_time_ms + rng.up_to(self.service_jitter_ms);
        let fail_before = rng.chance(self.error_before_rate);
        let lose_answer =
            (!fail_before && rng.chance(self.error_after_rate)).then_some(self.error_after_mode);
        FaultPlan {
            delay: Duration::from_millis(delay_ms),
            fail_before,
            lose_answer,
        }
    }
}

/// The answer for an operation whose knobs said "fail before doing anything".
pub fn injected_error_before() -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "injected_fault",
        "fault injected before the operation; nothing was applied",
    )
    .into_response()
}

/// The answer for an operation that committed but whose answer the knobs say to lose.
pub fn lost_answer(mode: LostAnswer) -> Response {
    match mode {
        LostAnswer::Status500 => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected_fault",
            "fault injected after the operation",
        )
        .into_response(),
        LostAnswer::Drop => {
            // A body that fails on its first chunk: the server aborts the connection after
            // the status line, and the client sees a broken answer.
            let failing = futures_like_error_stream();
            Response::builder()
                .status(StatusCode::OK)
                .body(failing)
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

fn futures_like_error_stream() -> Body {
    let failing = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "answer dropped by fault injection",
        ))
    });
    Body::from_stream(failing)
}

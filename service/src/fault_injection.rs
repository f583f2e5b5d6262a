//! Applying fault knobs to one operation: a seeded random source (so a seed replays every
//! decision), the plan the knobs make for an operation, and the answers a fault gives
//! instead of the real one.

use crate::api_error::ApiError;
use crate::contract::ErrorCode;
use crate::knobs::{FaultKnobs, LostAnswer};
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Mutex;
use std::time::Duration;

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
    /// What the knobs decide for one operation, drawn from `rng`.
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
        ErrorCode::InjectedFault,
        "fault injected before the operation; nothing was applied",
    )
    .into_response()
}

/// The answer for an operation that committed but whose answer the knobs say to lose.
pub fn lost_answer(mode: LostAnswer) -> Response {
    match mode {
        LostAnswer::Status500 => ApiError::new(
            ErrorCode::InjectedFault,
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

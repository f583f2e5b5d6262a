//! Applying fault knobs to one operation: a seeded random source (so a seed replays every
//! decision), the plan the knobs make for an operation, the wrapper that carries the plan
//! out around the operation, and the answers a fault gives instead of the real one.

use crate::api_error::ApiError;
use crate::contract::ErrorCode;
use crate::knobs::{FaultKnobs, LostAnswer};
use crate::metrics::Counters;
use crate::settings::Live;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the knobs decided for one operation.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    pub delay: Duration,
    /// CPU time to burn on the request's thread before the work.
    pub cpu_burn: Duration,
    /// Time the request's thread sleeps, blocked, before the work.
    pub stall: Duration,
    pub fail_before: bool,
    pub lose_answer: Option<LostAnswer>,
}

/// A service's live fault knobs and the seeded source of their decisions.
pub struct FaultInjector {
    /// Read on every operation, patched by `PUT /admin/knobs`.
    pub knobs: Arc<Live<FaultKnobs>>,
    /// Seeded source for every random decision of this process.
    pub rng: SeededRng,
}

impl FaultInjector {
    pub fn new(knobs: FaultKnobs, seed: u64) -> Self {
        FaultInjector {
            knobs: Arc::new(Live::new(knobs)),
            rng: SeededRng::new(seed),
        }
    }

    /// Runs a money-moving operation under the knobs: service time first, then maybe an
    /// error before any work, then the CPU burn and the stall, then the work, then maybe a lost answer
    /// (only for work that took effect or recorded an outcome: 2xx, 422, 429).
    pub async fn run<Fut>(
        &self,
        counters: &Counters,
        operation: &'static str,
        work: Fut,
    ) -> Response
    where
        Fut: std::future::Future<Output = Result<Response, ApiError>>,
    {
        let plan = self.knobs.get().plan(&self.rng);
        if !plan.delay.is_zero() {
            tokio::time::sleep(plan.delay).await;
        }
        if plan.fail_before {
            counters.inc(operation, "injected_error_before");
            return injected_error_before();
        }
        burn_cpu(plan.cpu_burn);
        if !plan.stall.is_zero() {
            // Blocking on purpose: what a lock or a blocking call in async code costs.
            std::thread::sleep(plan.stall);
        }
        let response = work.await.unwrap_or_else(IntoResponse::into_response);
        let status = response.status();
        let recorded = status.is_success()
            || status == StatusCode::UNPROCESSABLE_ENTITY
            || status == StatusCode::TOO_MANY_REQUESTS;
        match plan.lose_answer {
            Some(mode) if recorded => {
                counters.inc(operation, "injected_lost_answer");
                lost_answer(mode)
            }
            _ => response,
        }
    }
}

/// CPU time this thread has used; None where the clock cannot be read.
fn thread_cpu_time() -> Option<Duration> {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .ok()
        .map(Duration::from)
}

/// Spins on this thread until it has used `cpu` more CPU time: what slower code costs, not
/// a sleep, so other work on the host waits for it as it would for a slow release. Wall
/// time bounds the spin at ten times `cpu` where the thread clock cannot be read or the
/// thread is starved.
pub fn burn_cpu(cpu: Duration) {
    if cpu.is_zero() {
        return;
    }
    let wall_limit = std::time::Instant::now() + cpu * 10;
    let Some(start) = thread_cpu_time() else {
        return;
    };
    let mut spin = 0_u64;
    loop {
        for _ in 0..64 {
            spin = std::hint::black_box(spin.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let used = thread_cpu_time().map_or(cpu, |now| now.saturating_sub(start));
        if used >= cpu || std::time::Instant::now() >= wall_limit {
            return;
        }
    }
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
        let cpu_burn = Duration::from_micros(self.cpu_burn_us);
        let stall = Duration::from_micros(self.stall_us);
        let fail_before = rng.chance(self.error_before_rate);
        let lose_answer =
            (!fail_before && rng.chance(self.error_after_rate)).then_some(self.error_after_mode);
        FaultPlan {
            delay: Duration::from_millis(delay_ms),
            cpu_burn,
            stall,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burn_uses_the_cpu_time_it_asks_for() {
        let asked = Duration::from_millis(20);
        let (cpu_before, wall_before) = (thread_cpu_time(), std::time::Instant::now());
        burn_cpu(asked);
        let used = thread_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let wall = wall_before.elapsed();
        // The spin ends early only when its wall-time bound (ten times the ask) is reached,
        // on a thread starved of CPU.
        assert!(
            used.is_some_and(|used| used >= asked) || wall >= asked * 10,
            "used {used:?} of CPU in {wall:?}"
        );
        let (cpu_before, wall_before) = (thread_cpu_time(), std::time::Instant::now());
        burn_cpu(Duration::ZERO);
        assert!(thread_cpu_time().zip(cpu_before).map(|(a, b)| a - b) < Some(asked));
        assert!(wall_before.elapsed() < asked * 10);
    }
}

//! The coordinator's settings, defined once (see `settings`): its flags and a profile's
//! `service.coordinator` fields.

use crate::settings::{check_range, SettingError, Settings};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

crate::named_enum! {
    /// Which coordinator design runs: the correct one, the seed's, or a single-bug mutant of the
    /// correct one. A mutant is kept on purpose, to show that the harness catches its bug; each
    /// is a few lines away from the real code (`coordinator::mutant`).
    #[derive(
        Debug,
        Clone,
        Copy,
        PartialEq,
        Eq,
        PartialOrd,
        Ord,
        Hash,
        Serialize,
        Deserialize,
        clap::ValueEnum,
        JsonSchema,
    )]
    pub enum Design {
        /// The correct design: idempotency, write-ahead saga log, recovery worker.
        Saga = "saga",
        /// The seed's design, known to lose or create money under faults.
        Naive = "naive",
        /// MUTANT: a reversal owed is kept in memory only (a job works the queue off every
        /// 200 ms) and the saga is marked failed at once: a crash loses the reversal.
        VolatileQueue = "volatile-queue",
        /// MUTANT: the external institution leaves no tombstone, so a debit that arrives after
        /// its abort takes money nobody gives back.
        NoTombstone = "no-tombstone",
        /// MUTANT: a replayed idempotency key starts a new transfer.
        NoIdempotency = "no-idempotency",
        /// MUTANT: a credit whose answer is unknown is taken as refused, and its debit reversed.
        TimeoutIsFailure = "timeout-is-failure",
        /// MUTANT: the saga log answers each write at once and commits every 200 ms: a crash
        /// loses what it acknowledged.
        AckBeforeDurable = "ack-before-durable",
        /// MUTANT: the shedding decision is taken after the transfer: one over the limit is
        /// carried out anyway, then answered 503 `overloaded`, which promises that nothing
        /// was written.
        LateShed = "late-shed",
    }
}

impl Design {
    /// Whether the design is the correct one.
    pub const fn is_correct(self) -> bool {
        matches!(self, Design::Saga)
    }

    /// Whether the external institution keeps tombstones under this design.
    pub const fn external_keeps_tombstones(self) -> bool {
        !matches!(self, Design::NoTombstone)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinatorSettings {
    /// The coordinator design: saga (correct) or naive (the seed's, known to lose money).
    #[arg(long, value_enum, default_value_t = CoordinatorSettings::DEFAULT.design)]
    pub design: Design,
    /// Budget of the synchronous answer in ms (1..=10000); past it the answer is `pending`.
    #[arg(long, default_value_t = CoordinatorSettings::DEFAULT.deadline_ms)]
    pub deadline_ms: u64,
    /// The most transfers handled at once (the ceiling of the adaptive limit); more are shed
    /// with 503 before anything is written.
    #[arg(long, default_value_t = CoordinatorSettings::DEFAULT.max_in_flight)]
    pub max_in_flight: u32,
    /// Timeout of each remote call the recovery worker makes, in ms (1..=60000).
    #[arg(long, default_value_t = CoordinatorSettings::DEFAULT.recovery_call_timeout_ms)]
    pub recovery_call_timeout_ms: u64,
    /// Answer time in ms (0..=10000; 0 keeps the limit at `max_in_flight`): when even the
    /// fastest answer of a 100 ms window took longer than this while the host's CPU was
    /// saturated, the limit on transfers in flight falls (`admission.rs`).
    #[arg(long, default_value_t = CoordinatorSettings::DEFAULT.admission_target_ms)]
    pub admission_target_ms: u64,
    /// 0 (HTTP/1.1, a connection per call in flight), or how many HTTP/2 connections the
    /// coordinator keeps to each institution, its calls spread over them (1..=64). Over
    /// HTTP/2 a fault on a connection hits every call it carries (`multiplex.rs`).
    #[arg(long, default_value_t = CoordinatorSettings::DEFAULT.institution_h2_connections)]
    pub institution_h2_connections: u32,
}

impl CoordinatorSettings {
    pub const DEFAULT: CoordinatorSettings = CoordinatorSettings {
        design: Design::Saga,
        deadline_ms: 150,
        max_in_flight: 512,
        recovery_call_timeout_ms: 1000,
        admission_target_ms: 20,
        institution_h2_connections: 0,
    };
}

impl Default for CoordinatorSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Settings for CoordinatorSettings {
    fn validate(&self) -> Result<(), SettingError> {
        check_range("deadline_ms", self.deadline_ms, 1, 10_000)?;
        check_range("max_in_flight", self.max_in_flight, 1, 1_000_000)?;
        check_range("admission_target_ms", self.admission_target_ms, 0, 10_000)?;
        check_range(
            "institution_h2_connections",
            self.institution_h2_connections,
            0,
            crate::multiplex::MAX_CONNECTIONS as u32,
        )?;
        check_range(
            "recovery_call_timeout_ms",
            self.recovery_call_timeout_ms,
            1,
            60_000,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each bound of a setting that limits work or connections, at its edge.
    #[test]
    fn the_settings_take_their_bounds_and_refuse_one_past() {
        let with = |change: fn(&mut CoordinatorSettings)| {
            let mut settings = CoordinatorSettings::DEFAULT;
            change(&mut settings);
            settings.validate()
        };
        assert!(with(|s| s.max_in_flight = 1).is_ok());
        assert!(with(|s| s.max_in_flight = 0).is_err());
        assert!(with(|s| s.max_in_flight = 1_000_000).is_ok());
        assert!(with(|s| s.max_in_flight = 1_000_001).is_err());
        assert!(with(|s| s.institution_h2_connections = 64).is_ok());
        assert!(with(|s| s.institution_h2_connections = 65).is_err());
        assert_eq!(crate::multiplex::MAX_CONNECTIONS, 64);
        assert!(with(|s| s.deadline_ms = 10_000).is_ok());
        assert!(with(|s| s.deadline_ms = 10_001).is_err());
        assert!(with(|s| s.recovery_call_timeout_ms = 60_000).is_ok());
        assert!(with(|s| s.recovery_call_timeout_ms = 60_001).is_err());
    }
}

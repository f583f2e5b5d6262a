//! The money in flight (`GET /admin/in-flight`), kept in memory as sagas begin and end
//! instead of summed over the saga log on every read: a sampler reads it four times a second,
//! and a sum over the log costs in proportion to every transfer ever made (about 30 ms of
//! CPU at 60,000 sagas, on the coordinator's own cores while it carries the load).
//!
//! Loaded once from the log when the coordinator starts, before it serves. Each change is
//! counted after its write is durable, by the task that made it; that task sends the debit
//! only after counting its saga, and counts a saga's end only after the credit or reversal
//! it waited for. So the tally may count a saga for a moment longer than the log does, never
//! for a moment less: the bound on money missing it gives the sampler stays a bound.

use super::saga_log::{InFlight, SagaState};
use crate::money::AmountCents;
use std::sync::Mutex;

#[derive(Debug)]
pub struct InFlightTally {
    now: Mutex<InFlight>,
}

impl InFlightTally {
    /// Starts from what the log holds (`saga_log::in_flight`).
    pub fn new(loaded: InFlight) -> InFlightTally {
        InFlightTally {
            now: Mutex::new(loaded),
        }
    }

    /// What is in flight now.
    pub fn read(&self) -> InFlight {
        *self.lock()
    }

    /// A new saga's intent is durable.
    pub fn begun(&self, amount: AmountCents) {
        let cents = amount.get();
        let mut now = self.lock();
        now.sagas = now.sagas.saturating_add(1);
        now.amount_cents = now.amount_cents.saturating_add(cents);
        now.begun_sagas = now.begun_sagas.saturating_add(1);
        now.begun_amount_cents = now.begun_amount_cents.saturating_add(cents);
    }

    /// A saga moved from `from` to `to` (durably).
    pub fn moved(&self, from: SagaState, to: SagaState, amount: AmountCents) {
        if from.is_final() || !to.is_final() {
            return;
        }
        let mut now = self.lock();
        now.sagas = now.sagas.saturating_sub(1);
        now.amount_cents = now.amount_cents.saturating_sub(amount.get());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        match self.now.lock() {
            Ok(now) => now,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saga_counts_from_its_intent_until_it_is_final() {
        let tally = InFlightTally::new(InFlight {
            sagas: 1,
            amount_cents: 500,
            begun_sagas: 3,
            begun_amount_cents: 900,
        });
        let amount = AmountCents::new(250);
        tally.begun(amount);
        tally.moved(SagaState::Started, SagaState::Debited, amount);
        tally.moved(SagaState::Debited, SagaState::Reversing, amount);
        assert_eq!(
            tally.read(),
            InFlight {
                sagas: 2,
                amount_cents: 750,
                begun_sagas: 4,
                begun_amount_cents: 1150,
            }
        );
        tally.moved(SagaState::Reversing, SagaState::Reversed, amount);
        let after = tally.read();
        assert_eq!((after.sagas, after.amount_cents), (1, 500));
        assert_eq!((after.begun_sagas, after.begun_amount_cents), (4, 1150));
    }
}

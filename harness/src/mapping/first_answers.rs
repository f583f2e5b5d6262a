//! The mapping judged on the first answers of a run. A template or a query is checked before
//! anything starts; an outcome rule or the `transfer_id` pointer can only be judged against
//! what the system answers. A run watches its first `FIRST_ANSWERS` answers that carry a
//! status: when no rule sorts any of them, or the pointer finds an id in none of those sorted
//! `succeeded` or `pending`, the mapping does not describe the system and the run stops with
//! exit 2, naming the field and showing an answer. After that window the watch costs one
//! atomic load per answer.

use super::outcome::{MappedOutcome, Sorted};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use tokio::sync::Notify;

/// How many answers with a status a run sorts before it trusts its mapping.
pub const FIRST_ANSWERS: usize = 20;

/// How much of an answer's body a fault shows.
const SHOWN_BYTES: usize = 200;

/// The watch over a run's first answers.
pub struct FirstAnswers {
    /// The `transfer_id` pointer, when the mapping has one.
    pointer: Option<String>,
    watching: AtomicBool,
    seen: Mutex<Seen>,
    fault: OnceLock<String>,
    faulted: Notify,
}

#[derive(Default)]
struct Seen {
    answers: usize,
    sorted: usize,
    /// Answers sorted `succeeded` or `pending`, and how many of them named an id.
    accepted: usize,
    with_id: usize,
    first_unsorted: Option<String>,
    first_accepted: Option<String>,
}

fn shown(status: u16, body: &[u8]) -> String {
    let end = body.len().min(SHOWN_BYTES);
    format!("{status} {}", String::from_utf8_lossy(&body[..end]))
}

impl FirstAnswers {
    pub fn new(pointer: Option<&str>) -> FirstAnswers {
        FirstAnswers {
            pointer: pointer.map(str::to_owned),
            watching: AtomicBool::new(true),
            seen: Mutex::new(Seen::default()),
            fault: OnceLock::new(),
            faulted: Notify::new(),
        }
    }

    /// Takes one answer with its status, as the rules sorted it.
    pub fn see(&self, status: u16, sorted: &Sorted, body: &[u8]) {
        if !self.watching.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.answers >= FIRST_ANSWERS {
            return;
        }
        seen.answers += 1;
        match sorted.outcome {
            None => {
                seen.first_unsorted
                    .get_or_insert_with(|| shown(status, body));
            }
            Some(outcome) => {
                seen.sorted += 1;
                if matches!(outcome, MappedOutcome::Succeeded | MappedOutcome::Pending) {
                    seen.accepted += 1;
                    seen.with_id += usize::from(sorted.transfer_id.is_some());
                    seen.first_accepted
                        .get_or_insert_with(|| shown(status, body));
                }
            }
        }
        if seen.answers < FIRST_ANSWERS {
            return;
        }
        self.watching.store(false, Ordering::Relaxed);
        if let Some(fault) = self.judge(&seen) {
            let _ = self.fault.set(fault);
            self.faulted.notify_waiters();
        }
    }

    fn judge(&self, seen: &Seen) -> Option<String> {
        if seen.sorted == 0 {
            return Some(format!(
                "api.outcome: no rule matches any of the first {} answers (the first: {})",
                seen.answers,
                seen.first_unsorted.as_deref().unwrap_or("")
            ));
        }
        match &self.pointer {
            Some(pointer) if seen.accepted > 0 && seen.with_id == 0 => Some(format!(
                "api.transfer_id: `{pointer}` matches nothing in the first {} answers sorted succeeded or pending (the first: {})",
                seen.accepted,
                seen.first_accepted.as_deref().unwrap_or("")
            )),
            _ => None,
        }
    }

    /// The mapping's fault, once the first answers showed one.
    pub fn fault(&self) -> Option<&str> {
        self.fault.get().map(String::as_str)
    }

    /// Returns once the first answers show a fault (never, when they show none).
    pub async fn faulted(&self) {
        loop {
            let notified = self.faulted.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.fault().is_some() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(outcome: Option<MappedOutcome>, id: Option<&str>) -> Sorted {
        Sorted {
            outcome,
            transfer_id: id.map(str::to_owned),
        }
    }

    fn watch(answers: &[Sorted], pointer: Option<&str>) -> Option<String> {
        let watch = FirstAnswers::new(pointer);
        for (n, answer) in answers.iter().cycle().take(FIRST_ANSWERS).enumerate() {
            assert!(watch.fault().is_none(), "judged after {n} answers only");
            watch.see(201, answer, b"{\"payment\":{}}");
        }
        watch.fault().map(str::to_owned)
    }

    #[test]
    fn answers_no_rule_sorts_are_the_outcome_rules_fault() {
        let fault = watch(&[sorted(None, None)], None).expect("a fault");
        assert!(fault.starts_with("api.outcome:"), "{fault}");
        assert!(fault.contains("201 {\"payment\":{}}"), "{fault}");
    }

    #[test]
    fn a_pointer_that_finds_no_id_in_any_accepted_answer_is_its_fault() {
        let answers = [
            sorted(Some(MappedOutcome::Succeeded), None),
            sorted(None, None),
        ];
        let fault = watch(&answers, Some("/payment/id")).expect("a fault");
        assert!(
            fault.starts_with("api.transfer_id: `/payment/id`"),
            "{fault}"
        );
        // Without a pointer the same answers are no fault.
        assert_eq!(watch(&answers, None), None);
    }

    #[test]
    fn one_answer_that_names_its_id_or_is_sorted_clears_the_mapping() {
        let answers = [
            sorted(Some(MappedOutcome::Succeeded), Some("p-1")),
            sorted(Some(MappedOutcome::Pending), None),
            sorted(None, None),
        ];
        assert_eq!(watch(&answers, Some("/payment/id")), None);
        // Failures that name no id say nothing of the pointer.
        let failed = [sorted(Some(MappedOutcome::Failed), None)];
        assert_eq!(watch(&failed, Some("/payment/id")), None);
    }
}

//! Model checking with stateright (tests only). `docs/model-checking.md` maps every model
//! step to the function of the service that implements it.
//!
//! - `seed_spec`: the seed's PlusCal spec of the naive design, step for step.
//! - `saga_protocol`: the saga protocol as the service implements it, over a network that
//!   delays, reorders, duplicates and loses messages, with coordinator crashes; and the
//!   service's mutants, each of which must yield a counterexample.

mod saga_protocol;
mod seed_spec;

use stateright::Path;
use std::fmt::{Debug, Display, Write};

/// A counterexample cut at the first state that breaks the property, as numbered lines:
/// each state, then the action taken from it. Returns the text and the actions taken.
pub fn render_until<S: Display, A: Debug + Clone>(
    path: Path<S, A>,
    broken: impl Fn(&S) -> bool,
) -> (String, Vec<A>) {
    let mut out = String::new();
    let mut taken = Vec::new();
    for (step, (state, action)) in path.into_vec().into_iter().enumerate() {
        let _ = writeln!(out, "  {step:>2}. {state}");
        if broken(&state) {
            let _ = writeln!(out, "      ^ the property breaks here");
            break;
        }
        if let Some(action) = action {
            let _ = writeln!(out, "      then {action:?}");
            taken.push(action);
        }
    }
    (out, taken)
}

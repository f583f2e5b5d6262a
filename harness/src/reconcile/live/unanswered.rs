//! Requests judged with no answer of the client's, looked up in the run folder at the end.

use super::part::Unanswered;
use service::contract::Saga;

/// The requests of `unanswered` that the run folder `dir` shows were requests of the run
/// after all (the history names the transfer or the key, or the saga log the transfer): each
/// a fact that came for a transfer judged long before, described.
pub fn named_in(dir: &std::path::Path, unanswered: &Unanswered) -> std::io::Result<Vec<String>> {
    use rustc_hash::FxHashSet;
    let mut named = Vec::new();
    if unanswered.is_empty() {
        return Ok(named);
    }
    let ids: FxHashSet<&str> = unanswered.ids.iter().map(String::as_str).collect();
    let keys: FxHashSet<(&str, &str)> = unanswered
        .keys
        .iter()
        .map(|(u, k)| (u.as_str(), k.as_str()))
        .collect();
    crate::history::each_in(dir, |r| {
        let id = r.transfer_id.as_deref().filter(|id| ids.contains(id));
        if let Some(id) = id {
            named.push(format!(
                "an effect of transfer {id}, answered, came after it was judged"
            ));
        } else if keys.contains(&(r.user_id.as_str(), r.key.as_str())) {
            named.push(format!(
                "a saga of user {}, key {} changed after the request was judged",
                r.user_id, r.key
            ));
        }
        Ok(())
    })?;
    let sagas = dir.join(crate::reconcile::evidence::SAGAS_FILE);
    if sagas.exists() && !ids.is_empty() {
        crate::compressed::each_line(&sagas, |saga: Saga| {
            if ids.contains(saga.transfer_id.as_str()) {
                named.push(format!(
                    "an effect of transfer {} came after its saga was judged",
                    saga.transfer_id.as_str()
                ));
            }
            Ok(())
        })?;
    }
    named.sort();
    named.dedup();
    Ok(named)
}

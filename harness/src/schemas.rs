//! The JSON Schemas of the files a run writes, generated from the types that write them:
//! `summary.json`, one line of `history.jsonl.zst`, and `reconciliation.json`. They are committed
//! under `harness/schema/`; a test fails when the committed files and the types differ (run
//! it with `UPDATE_SCHEMAS=1` to write them again).

use crate::history::HistoryRecord;
use crate::reconcile::Reconciliation;
use crate::summary::Summary;

/// Each committed schema: its file name under `harness/schema/`, and its text.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        (
            "summary.schema.json",
            render(schemars::schema_for!(Summary)),
        ),
        (
            "history-line.schema.json",
            render(schemars::schema_for!(HistoryRecord)),
        ),
        (
            "reconciliation.schema.json",
            render(schemars::schema_for!(Reconciliation)),
        ),
    ]
}

fn render(schema: schemars::Schema) -> String {
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schemas are the ones the types generate. `UPDATE_SCHEMAS=1` writes them.
    #[test]
    fn committed_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        for (file, generated) in all() {
            let path = dir.join(file);
            if update {
                std::fs::write(&path, &generated).expect("write schema");
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == generated,
                "{} differs from what the types generate; run `UPDATE_SCHEMAS=1 cargo test -p harness --lib schemas` and commit it",
                path.display()
            );
        }
    }
}

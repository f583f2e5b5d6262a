//! The JSON Schemas of the files a run writes, generated from the types that write them:
//! `summary.json`, one line of `history.jsonl`, and `reconciliation.json`. They are committed
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

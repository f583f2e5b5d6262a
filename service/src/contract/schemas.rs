//! The JSON Schemas of the contract's bodies, generated from the types and committed under
//! `docs/schema/` for anyone who writes a system against the contract. A test fails when the
//! committed files and the types differ (run it with `UPDATE_SCHEMAS=1` to write them again).

use super::*;
use crate::disk_fault::DiskFault;
use crate::knobs::FaultKnobs;
use crate::ledger_policy::LedgerPolicy;
use schemars::{schema_for, Schema};

/// Each body's schema file name under `docs/schema/`, and its text.
pub fn all() -> Vec<(&'static str, String)> {
    let schemas: [(&'static str, Schema); 18] = [
        ("transfer-request.schema.json", schema_for!(TransferRequest)),
        ("transfer-view.schema.json", schema_for!(TransferView)),
        ("saga-dump.schema.json", schema_for!(SagaDump)),
        ("saga-page.schema.json", schema_for!(SagaPage)),
        ("user-links.schema.json", schema_for!(UserLinks)),
        ("created.schema.json", schema_for!(Created)),
        ("debit-request.schema.json", schema_for!(DebitRequest)),
        ("credit-request.schema.json", schema_for!(CreditRequest)),
        ("transfer-record.schema.json", schema_for!(TransferRecord)),
        ("dump.schema.json", schema_for!(Dump)),
        ("dump-page.schema.json", schema_for!(DumpPage)),
        ("seed-accounts.schema.json", schema_for!(SeedAccounts)),
        ("error-body.schema.json", schema_for!(ErrorBody)),
        ("fault-knobs.schema.json", schema_for!(FaultKnobs)),
        ("ledger-policy.schema.json", schema_for!(LedgerPolicy)),
        ("totals.schema.json", schema_for!(Totals)),
        ("in-flight.schema.json", schema_for!(InFlight)),
        ("disk-fault.schema.json", schema_for!(DiskFault)),
    ];
    schemas
        .into_iter()
        .map(|(file, schema)| {
            let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
            (file, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schemas are the ones the types generate. `UPDATE_SCHEMAS=1` writes them.
    #[test]
    fn committed_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        if update {
            std::fs::create_dir_all(&dir).expect("docs/schema");
        }
        for (file, generated) in all() {
            let path = dir.join(file);
            if update {
                std::fs::write(&path, &generated).expect("write schema");
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == generated,
                "{} differs from what the types generate; run `UPDATE_SCHEMAS=1 cargo test -p service --lib schemas` and commit it",
                path.display()
            );
        }
    }
}

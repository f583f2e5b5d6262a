//! Everything a reconciliation reads: the books before and after the run, the client
//! history, the saga log at the end, what the coordinator said after the run of every
//! indeterminate answer, and the totals sampled during the run. A run saves it in its
//! folder, so `harness reconcile DIR` can check the run again without running it.

use super::Convergence;
use crate::compressed;
use crate::history::{self, HistoryRecord, Outcome};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use service::contract::{
    AccountBalance, ClientStatus, Dump, Entry, Saga, TransferRecord, TransferStatus,
};
use std::path::{Path, PathBuf};

/// The books before and after the run (absent for a system whose dumps are not reachable).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Books {
    pub external_before: Dump,
    pub ledger_before: Dump,
    pub external_after: Dump,
    pub ledger_after: Dump,
    /// The books read again once nothing may move money, as what changed since the final
    /// read (`read_again`); absent in folders written before the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_again: Option<super::read_again::ReadAgain>,
}

/// An operation whose answer was indeterminate (pending, a timeout, a transport error), and
/// what became of it: the transfer it is, and the status `GET /transfers/{id}` gave after
/// the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Resolution {
    pub op: u64,
    pub attempt: u32,
    /// What the client saw.
    pub outcome: Outcome,
    pub user_id: String,
    pub key: String,
    /// The transfer, as the answer, another answer with the same key, or the saga log named
    /// it; None when nothing named one.
    pub transfer_id: Option<String>,
    /// The final status after the run; None when the coordinator did not know the id (404).
    pub final_status: Option<ClientStatus>,
    /// Whether the coordinator answered at all.
    pub asked: bool,
}

/// The system's totals sampled during the run: the ledger read before the external side,
/// and the money in flight read from the saga log around both reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Sample {
    /// Seconds from the start of the load.
    pub at_s: f64,
    pub ledger_total_cents: u64,
    pub external_total_cents: u64,
    /// The lowest balance either side reported.
    pub lowest_balance_cents: i64,
    /// The most money that can have been in flight while the totals were read: the
    /// non-final sagas' amounts before the reads, plus every saga begun while they ran. None
    /// when the coordinator does not report it.
    pub in_flight_bound_cents: Option<u64>,
    /// The faults active when the sample was taken.
    pub active_faults: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Everything a reconciliation reads.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub books: Option<Books>,
    pub history: Vec<HistoryRecord>,
    pub convergence: Convergence,
    pub resolutions: Vec<Resolution>,
    pub samples: Vec<Sample>,
}

/// The files of a run folder that hold the evidence (beside the history). The books and the
/// saga log are zstd-compressed JSON; folders written before hold them plain
/// (`books.json`, `convergence.json`) and still read.
pub const BOOKS_FILE: &str = "books.json.zst";
pub const CONVERGENCE_FILE: &str = "convergence.json.zst";
pub const RESOLUTIONS_FILE: &str = "resolutions.json";
pub const SAMPLES_FILE: &str = "samples.json";
pub use crate::history::HISTORY_FILE;

/// The facts a run followed as it went, written as they were read: each institution's
/// entries appended during the run, in commit order, and each saga as it was last seen. A
/// folder with them keeps the books' and the saga log's lists here instead of in
/// `books.json.zst` and `convergence.json.zst`.
pub const EXTERNAL_ENTRIES_FILE: &str = "external-entries.jsonl.zst";
pub const LEDGER_ENTRIES_FILE: &str = "ledger-entries.jsonl.zst";
pub const SAGAS_FILE: &str = "sagas.jsonl.zst";
/// The indeterminate answers' resolutions of a run reconciled as it went, written as each
/// part was judged (`resolutions.json` then holds none).
pub const RESOLUTIONS_LINES_FILE: &str = "resolutions.jsonl.zst";

/// The files of the facts followed during a run, being written.
pub struct FactFiles {
    external: compressed::LinesWriter,
    ledger: compressed::LinesWriter,
    sagas: compressed::LinesWriter,
    resolutions: compressed::LinesWriter,
}

impl FactFiles {
    pub fn create(dir: &Path) -> Result<FactFiles, EvidenceError> {
        let create = |file: &str| {
            let path = dir.join(file);
            compressed::LinesWriter::create(&path)
                .map_err(|source| EvidenceError::Io { path, source })
        };
        Ok(FactFiles {
            external: create(EXTERNAL_ENTRIES_FILE)?,
            ledger: create(LEDGER_ENTRIES_FILE)?,
            sagas: create(SAGAS_FILE)?,
            resolutions: create(RESOLUTIONS_LINES_FILE)?,
        })
    }

    /// Entries of the external side (`external`) or of the ledger, in commit order.
    pub fn entries(&mut self, external: bool, entries: &[Entry]) -> std::io::Result<()> {
        let out = if external {
            &mut self.external
        } else {
            &mut self.ledger
        };
        entries.iter().try_for_each(|e| out.write(e))
    }

    /// Sagas in their final form (each written once).
    pub fn sagas(&mut self, sagas: &[Saga]) -> std::io::Result<()> {
        sagas.iter().try_for_each(|s| self.sagas.write(s))
    }

    /// What the lookups after the answers found, as each part is judged.
    pub fn resolutions(&mut self, resolutions: &[Resolution]) -> std::io::Result<()> {
        resolutions
            .iter()
            .try_for_each(|r| self.resolutions.write(r))
    }

    /// Ends the frames, so that what was written so far reads back.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.external.flush()?;
        self.ledger.flush()?;
        self.sagas.flush()?;
        self.resolutions.flush()
    }

    pub fn finish(self) -> std::io::Result<()> {
        self.external.finish()?;
        self.ledger.finish()?;
        self.sagas.finish()?;
        self.resolutions.finish()
    }
}

/// The lines of the compressed file `file` in `dir`, when it exists.
fn lines_in<T: serde::de::DeserializeOwned>(
    dir: &Path,
    file: &str,
) -> Result<Option<Vec<T>>, EvidenceError> {
    let path = dir.join(file);
    if !path.exists() {
        return Ok(None);
    }
    let mut all = Vec::new();
    compressed::each_line(&path, |value| {
        all.push(value);
        Ok(())
    })
    .map_err(|source| EvidenceError::Io { path, source })?;
    Ok(Some(all))
}

/// A compressed file's name in folders written before it was compressed.
fn plain_name(file: &str) -> &str {
    file.strip_suffix(".zst").unwrap_or(file)
}

fn write<T: Serialize>(dir: &Path, file: &str, value: &T) -> Result<(), EvidenceError> {
    let path = dir.join(file);
    if file.ends_with(".zst") {
        return compressed::write_json(&path, value)
            .map_err(|source| EvidenceError::Io { path, source });
    }
    let bytes = serde_json::to_vec(value).map_err(|source| EvidenceError::Json {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&path, bytes).map_err(|source| EvidenceError::Io { path, source })
}

/// Reads the JSON file `file` of the run folder `dir`: compressed when its name ends in
/// `.zst`, or its plain form in a folder written before.
pub fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    file: &str,
) -> Result<T, EvidenceError> {
    let path = dir.join(file);
    if file.ends_with(".zst") && (path.exists() || !dir.join(plain_name(file)).exists()) {
        return compressed::read_json(&path).map_err(|source| EvidenceError::Io { path, source });
    }
    let path = dir.join(plain_name(file));
    let bytes = std::fs::read(&path).map_err(|source| EvidenceError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| EvidenceError::Json { path, source })
}

/// How the run folder keeps the books: each entry once. The dumps after the run hold the
/// entries appended during it (the earlier ones are in the dumps before), and of the
/// transfer records only the tombstones, the one record the checks read that no entry
/// implies.
#[derive(Serialize)]
struct StoredBooks<'a> {
    external_before: &'a Dump,
    ledger_before: &'a Dump,
    external_after: StoredDump<'a>,
    ledger_after: StoredDump<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_again: Option<&'a super::read_again::ReadAgain>,
}

#[derive(Serialize)]
struct StoredDump<'a> {
    accounts: &'a [AccountBalance],
    entries: &'a [Entry],
    transfers: Vec<&'a TransferRecord>,
}

impl<'a> StoredDump<'a> {
    fn of(after: &'a Dump, before: &Dump) -> StoredDump<'a> {
        let last_before = super::effects::last_seq(before);
        let first_new = after.entries.partition_point(|e| e.seq <= last_before);
        StoredDump {
            accounts: &after.accounts,
            entries: &after.entries[first_new..],
            transfers: after
                .transfers
                .iter()
                .filter(|t| t.status == TransferStatus::Tombstone)
                .collect(),
        }
    }
}

impl Books {
    fn stored(&self) -> StoredBooks<'_> {
        StoredBooks {
            external_before: &self.external_before,
            ledger_before: &self.ledger_before,
            external_after: StoredDump::of(&self.external_after, &self.external_before),
            ledger_after: StoredDump::of(&self.ledger_after, &self.ledger_before),
            read_again: self.read_again.as_ref(),
        }
    }

    /// The dumps after the run whole again, from the stored form: the entries before the run
    /// put back in front of those appended during it.
    fn restored(mut self) -> Books {
        for (after, before) in [
            (&mut self.external_after, &self.external_before),
            (&mut self.ledger_after, &self.ledger_before),
        ] {
            let last_before = super::effects::last_seq(before);
            if after.entries.first().is_none_or(|e| e.seq > last_before) {
                let appended = std::mem::take(&mut after.entries);
                after.entries = before.entries.iter().cloned().chain(appended).collect();
            }
        }
        self
    }
}

impl Evidence {
    /// Saves what the run folder does not hold yet (the history is written during the run).
    pub fn save(&self, dir: &Path) -> Result<(), EvidenceError> {
        write(dir, BOOKS_FILE, &self.books.as_ref().map(Books::stored))?;
        write(dir, CONVERGENCE_FILE, &self.convergence)?;
        write(dir, RESOLUTIONS_FILE, &self.resolutions)?;
        write(dir, SAMPLES_FILE, &self.samples)
    }

    /// Reads a run folder's evidence back.
    pub fn load(dir: &Path) -> Result<Evidence, EvidenceError> {
        let history = history::read_in(dir).map_err(|source| EvidenceError::Io {
            path: history::file_in(dir),
            source,
        })?;
        let mut books: Option<Books> = read_json(dir, BOOKS_FILE)?;
        let mut convergence: Convergence = read_json(dir, CONVERGENCE_FILE)?;
        if let Some(books) = &mut books {
            for (file, dump) in [
                (EXTERNAL_ENTRIES_FILE, &mut books.external_after),
                (LEDGER_ENTRIES_FILE, &mut books.ledger_after),
            ] {
                if let Some(entries) = lines_in(dir, file)? {
                    dump.entries = entries;
                }
            }
        }
        if let (Some(log), Some(sagas)) = (&mut convergence.sagas, lines_in(dir, SAGAS_FILE)?) {
            log.sagas = sagas;
        }
        Ok(Evidence {
            books: books.map(Books::restored),
            history,
            convergence,
            resolutions: match lines_in(dir, RESOLUTIONS_LINES_FILE)? {
                Some(followed) => followed,
                None => read_json(dir, RESOLUTIONS_FILE)?,
            },
            samples: read_json(dir, SAMPLES_FILE)?,
        })
    }
}

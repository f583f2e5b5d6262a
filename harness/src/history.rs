//! The client history: one JSON line per operation the generator scheduled or retried, with
//! Jepsen's meaning of each outcome (`ok`: it happened; `fail`: it did not; `info`: unknown).

use crate::compressed::{self, LinesWriter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use service::contract::ClientStatus;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

service::named_enum! {
    /// What the client saw.
    #[derive(
        Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, JsonSchema,
    )]
    pub enum Outcome {
        /// 200: both sides applied.
        Completed = "completed",
        /// 422 with status `failed`: neither side holds any effect.
        Failed = "failed",
        /// 202: not known yet; the system promises to finish it.
        Pending = "pending",
        /// 503: refused before any effect; safe to retry.
        Shed = "shed",
        /// No usable answer: timeout, transport error, 5xx, or an unexpected answer.
        Error = "error",
        /// Never sent: the generator's in-flight cap was full at its scheduled time.
        Overflow = "overflow",
    }
}

impl Outcome {
    /// Jepsen's op type: `ok` (happened), `fail` (did not), `info` (indeterminate).
    pub fn jepsen(self) -> &'static str {
        match self {
            Outcome::Completed => "ok",
            Outcome::Failed | Outcome::Shed | Outcome::Overflow => "fail",
            Outcome::Pending | Outcome::Error => "info",
        }
    }
}

impl From<ClientStatus> for Outcome {
    fn from(status: ClientStatus) -> Outcome {
        match status {
            ClientStatus::Completed => Outcome::Completed,
            ClientStatus::Failed => Outcome::Failed,
            ClientStatus::Pending => Outcome::Pending,
        }
    }
}

/// One line of `history.jsonl.zst` (schema: `harness/schema/history-line.schema.json`). Times are
/// µs from the start of the load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HistoryRecord {
    /// Schedule index of the request this operation belongs to.
    pub op: u64,
    /// 0 for the scheduled request, 1.. for the user's retries.
    pub attempt: u32,
    pub key: String,
    pub user_id: String,
    pub external_account_id: String,
    pub amount_cents: u64,
    pub scheduled_us: u64,
    /// Absent when the request was never sent (overflow).
    pub sent_us: Option<u64>,
    pub answered_us: Option<u64>,
    /// From the scheduled time to the answer.
    pub latency_us: Option<u64>,
    pub outcome: Outcome,
    #[serde(rename = "type")]
    pub jepsen_type: String,
    pub http_status: Option<u16>,
    pub error_kind: Option<String>,
    pub transfer_id: Option<String>,
    /// Why the system said the transfer failed, when it said.
    pub reason: Option<String>,
    /// Whether this operation is inside the measured window (after warm-up).
    pub measured: bool,
}

/// An operation of user `u-0` for tests: scheduled at `scheduled_us`, answered `latency_us`
/// later (or never), ending in `outcome`.
#[cfg(test)]
pub fn test_record(
    scheduled_us: u64,
    latency_us: Option<u64>,
    outcome: Outcome,
    measured: bool,
) -> HistoryRecord {
    HistoryRecord {
        op: 0,
        attempt: 0,
        key: "k".into(),
        user_id: "u-0".into(),
        external_account_id: "a-0".into(),
        amount_cents: 100,
        scheduled_us,
        sent_us: latency_us.map(|_| scheduled_us),
        answered_us: latency_us.map(|l| scheduled_us + l),
        latency_us,
        outcome,
        jepsen_type: outcome.jepsen().into(),
        http_status: None,
        error_kind: None,
        transfer_id: None,
        reason: None,
        measured,
    }
}

const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(5);

/// The history's file in a run folder: zstd-compressed JSON lines, a frame a second.
pub const HISTORY_FILE: &str = "history.jsonl.zst";

/// The history's file in folders written before it was compressed.
pub const PLAIN_HISTORY_FILE: &str = "history.jsonl";

/// Writes history lines on a thread of its own, off the async runtime.
pub struct HistoryWriter {
    tx: mpsc::Sender<HistoryRecord>,
    thread: std::thread::JoinHandle<std::io::Result<u64>>,
}

impl HistoryWriter {
    /// Writes `history.jsonl.zst` into the folder `dir`.
    pub fn create(dir: &Path) -> std::io::Result<HistoryWriter> {
        HistoryWriter::create_with(dir, None)
    }

    /// Writes `history.jsonl.zst` into the folder `dir`, and hands each record to `tap`
    /// once written (the live reconciler follows the history so).
    pub fn create_with(
        dir: &Path,
        tap: Option<tokio::sync::mpsc::UnboundedSender<HistoryRecord>>,
    ) -> std::io::Result<HistoryWriter> {
        let mut out = LinesWriter::create(&dir.join(HISTORY_FILE))?;
        let (tx, rx) = mpsc::channel::<HistoryRecord>();
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || {
                let mut lines = 0;
                let mut flushed = std::time::Instant::now();
                // The writer polls instead of blocking in `recv`: a blocked receiver makes
                // every send a futex wake-up and a context switch on the generator's core.
                // It drains what arrived every few milliseconds and ends a frame once a
                // second, so the history can be followed live.
                loop {
                    let mut closed = false;
                    loop {
                        match rx.try_recv() {
                            Ok(record) => {
                                out.write(&record)?;
                                lines += 1;
                                if let Some(tap) = &tap {
                                    // A follower that stopped listening misses nothing the
                                    // file does not keep.
                                    let _ = tap.send(record);
                                }
                            }
                            Err(mpsc::TryRecvError::Empty) => break,
                            Err(mpsc::TryRecvError::Disconnected) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                    if closed {
                        break;
                    }
                    if flushed.elapsed() >= FLUSH_EVERY {
                        out.flush()?;
                        flushed = std::time::Instant::now();
                    }
                    std::thread::sleep(POLL_EVERY);
                }
                out.finish()?;
                Ok(lines)
            })?;
        Ok(HistoryWriter { tx, thread })
    }

    pub fn sender(&self) -> mpsc::Sender<HistoryRecord> {
        self.tx.clone()
    }

    /// Closes the history and returns how many lines it holds. Every sender must be dropped.
    pub fn finish(self) -> std::io::Result<u64> {
        drop(self.tx);
        self.thread
            .join()
            .map_err(|_| std::io::Error::other("history writer panicked"))?
    }
}

/// The history file of the run folder `dir`: the compressed one, or the plain one of a
/// folder written before.
pub fn file_in(dir: &Path) -> PathBuf {
    let plain = dir.join(PLAIN_HISTORY_FILE);
    match !dir.join(HISTORY_FILE).exists() && plain.exists() {
        true => plain,
        false => dir.join(HISTORY_FILE),
    }
}

/// Calls `each` with every record of the run folder `dir`'s history, in order, as a stream.
pub fn each_in(
    dir: &Path,
    mut each: impl FnMut(HistoryRecord) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let path = file_in(dir);
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if path.extension().is_some_and(|x| x == "zst") {
        return compressed::each_line(&path, each).map_err(named);
    }
    let reader = std::io::BufReader::new(std::fs::File::open(&path).map_err(named)?);
    for (number, line) in (1u64..).zip(reader.lines()) {
        let line = line.map_err(named)?;
        let record = serde_json::from_str(&line)
            .map_err(|e| named(std::io::Error::other(format!("line {number}: {e}"))))?;
        each(record)?;
    }
    Ok(())
}

/// The history of the run folder `dir`, whole.
pub fn read_in(dir: &Path) -> std::io::Result<Vec<HistoryRecord>> {
    let mut history = Vec::new();
    each_in(dir, |record| {
        history.push(record);
        Ok(())
    })?;
    Ok(history)
}

/// Writes `history` as the run folder `dir`'s history, whole (a merged run's).
pub fn write_in(dir: &Path, history: &[HistoryRecord]) -> std::io::Result<()> {
    let mut out = LinesWriter::create(&dir.join(HISTORY_FILE))?;
    for record in history {
        out.write(record)?;
    }
    out.finish()
}

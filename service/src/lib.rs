//! The BankTransfer reference system: the coordinator (API gateway) and the two
//! institutions it moves money between, each an HTTP service over its own SQLite file.
//!
//! - `cli`: the command line of each service role, shared by every binary that runs one.
//! - `money`, `ids`: the domain newtypes (amounts in cents, validated ids).
//! - `api_error`, `json_body`: the HTTP error format and the JSON body extractor.
//! - `store`: SQLite with a group-committing writer thread.
//! - `book`: accounts, transfer records and entries, shared by both institutions.
//! - `knobs`: fault injection (errors before/after the work, service time).
//! - `institution`: HTTP parts both institutions share (admin, dump, knobs, metrics).
//! - `external`: the external institution (debits, reversals, tombstones).
//! - `ledger`: the internal ledger (credits, antifraud, rate limit).
//! - `coordinator`: the saga and naive coordinator designs.
//! - `metrics`: Prometheus text counters.
//! - `launch`: starting services as child processes that never outlive their owner.
//! - `server`: listening, the admin guard, graceful shutdown, logging.
//! - `hang_up`: connections that show a caller's hang-up late, so a request received is
//!   carried out.

pub mod api_error;
pub mod book;
pub mod cli;
pub mod coordinator;
pub mod external;
pub mod hang_up;
pub mod ids;
pub mod institution;
pub mod json_body;
pub mod knobs;
pub mod launch;
pub mod ledger;
pub mod metrics;
#[cfg(test)]
mod model;
pub mod money;
pub mod server;
pub mod store;

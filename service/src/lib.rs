//! The BankTransfer reference system: the coordinator (API gateway) and the two
//! institutions it moves money between, each an HTTP service over its own SQLite file.
//!
//! - `contract`: every JSON body the services and the harness exchange (the wire).
//! - `money`, `ids`: the domain newtypes (amounts in cents, validated ids).
//! - `named_enum`: enums whose values each have one name, written once.
//! - `settings`: how a service's settings are defined once (flags, admin bodies, patches).
//! - `knobs`, `ledger_policy`: the institutions' fault knobs and the ledger's rules.
//! - `cli`: the command line of each service role, shared by every binary that runs one.
//! - `api_error`, `json_body`: the HTTP error answer and the JSON body extractor.
//! - `store`: SQLite with a group-committing writer thread.
//! - `disk_fault`: a store's disk made full or read-only (`/admin/disk`).
//! - `book`: accounts, transfer records and entries, shared by both institutions.
//! - `fault_injection`: what the knobs decide for one operation, and the answers they fake.
//! - `institution`: HTTP parts both institutions share (admin, dump, knobs, metrics).
//! - `external`: the external institution (debits, reversals, tombstones).
//! - `ledger`: the internal ledger (credits, antifraud, rate limit).
//! - `coordinator`: the saga and naive coordinator designs.
//! - `metrics`: Prometheus text counters.
//! - `keep_alive`: an HTTP/1.1 client over keep-alive connections, one request per call.
//! - `launch`: starting services as child processes that never outlive their owner.
//! - `server`: listening, the admin guard, graceful shutdown, logging.
//! - `hang_up`: connections that show a caller's hang-up late, so a request received is
//!   carried out.

pub mod api_error;
pub mod book;
pub mod cli;
pub mod contract;
pub mod coordinator;
pub mod disk_fault;
pub mod external;
pub mod fault_injection;
pub mod hang_up;
pub mod host_load;
pub mod http_client;
pub mod ids;
pub mod institution;
pub mod json_body;
pub mod keep_alive;
pub mod knobs;
pub mod launch;
pub mod ledger;
pub mod ledger_policy;
pub mod metrics;
#[cfg(test)]
mod model;
pub mod money;
pub mod multiplex;
pub mod named_enum;
pub mod server;
pub mod settings;
pub mod store;

//! The BankTransfer harness: runs a chaos profile against the reference system (or any
//! system that follows `docs/contract.md`) and writes a verdict.
//!
//! - `bench`: `harness bench-generator` (the generator against oha) and `harness bench-proxy`
//!   (wrk through a hop, through HAProxy, and direct).
//! - `cli`: the command line.
//! - `proxy`: the embedded Toxiproxy-compatible TCP proxy and its REST API.
//! - `profile`: chaos profiles, parsed strictly and validated into a `RunPlan`.
//! - `schedule`: the seeded request schedule.
//! - `system`: starting the services (as `harness serve <role>`), seeding, dumps.
//! - `client`: `POST /transfers` and the outcome of each answer.
//! - `loadgen`: the open-loop generator (dispatcher, workers, retries).
//! - `stats`: HdrHistograms, the interval log, live counters.
//! - `faults`: the fault timeline (toxics, down proxies, signals, knobs), applied and read back.
//! - `hops`: the proxies on the gateway, external and ledger hops.
//! - `history`: the client history (`history.jsonl`).
//! - `reconcile`: the invariants, checked per transfer id.
//! - `verdict`: the verdict from the invariants, the error budget and the generator's lag.
//! - `summary`, `report`: `summary.json` and `report.md`.
//! - `progress`: the live progress line.
//! - `provenance`: git revision and UTC time.
//! - `run`: one run, end to end.

pub mod bench;
pub mod cli;
pub mod client;
pub mod faults;
pub mod history;
pub mod hops;
pub mod loadgen;
pub mod profile;
pub mod progress;
pub mod provenance;
pub mod proxy;
pub mod reconcile;
pub mod report;
pub mod run;
pub mod schedule;
pub mod stats;
pub mod summary;
pub mod system;
pub mod verdict;

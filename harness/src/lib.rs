//! The BankTransfer harness: runs a chaos profile against the reference system (or any
//! system that follows `docs/contract.md`) and writes a verdict.
//!
//! - `bench`: `harness bench-generator` (the generator against oha) and `harness bench-proxy`
//!   (wrk through a hop, through HAProxy, and direct).
//! - `cli`: the command line.
//! - `proxy`: the embedded Toxiproxy-compatible TCP proxy and its REST API.
//! - `profile`: chaos profiles, parsed strictly and validated into a `RunPlan`.
//! - `schedule`: the seeded request schedule.
//! - `population`: the users a run drives, and how they are named.
//! - `system`: the system under test: launching the services (as `harness serve <role>`)
//!   with a proxy on every hop, and the admin client (seeding, dumps, the saga log).
//! - `hops`: the proxies on the gateway, external and ledger hops.
//! - `client`: `POST /transfers` and the outcome of each answer.
//! - `loadgen`: the open-loop generator (drivers, retries, overflow, send lag).
//! - `cpu`: the CPU each process used while the load ran, per operation.
//! - `stats`: HdrHistograms, the interval log, live counters.
//! - `faults`: the fault timeline (toxics, down proxies, signals, knobs), applied and read back.
//! - `history`: the client history (`history.jsonl`).
//! - `reconcile`: the invariants, checked per transfer id.
//! - `phases`: the run cut into steady state, fault windows and recoveries.
//! - `slo`: the latency bounds and the error budget, judged.
//! - `verdict`: the verdict from the invariants, the error budget and the generator's lag.
//! - `summary`: `summary.json`.
//! - `report`: `report.md` and `report.html` (charts drawn with plotters), and `harness report`.
//! - `schemas`: the JSON Schemas of the files a run writes, generated from their types.
//! - `progress`: the live progress line.
//! - `provenance`: git revision and UTC time.
//! - `run`: one run, end to end.
//! - `mutants`: every profile against `saga` and every known-bad design, as a matrix.
//! - `compare`: `harness compare`: a run judged against a baseline, metric by metric.
//! - `baseline`: `harness baseline`: a profile's run kept as its baseline.
//! - `check_target`: `harness check-target`: the contract walked against a running system.
//! - `capacity`: `harness capacity`: the highest rate that meets the SLO, and what lies past it.

pub mod baseline;
pub mod bench;
pub mod capacity;
pub mod check_target;
pub mod cli;
pub mod client;
pub mod compare;
pub mod cpu;
pub mod faults;
pub mod history;
pub mod hops;
pub mod loadgen;
pub mod mutants;
pub mod phases;
pub mod population;
pub mod profile;
pub mod progress;
pub mod provenance;
pub mod proxy;
pub mod reconcile;
pub mod report;
pub mod run;
pub mod schedule;
pub mod schemas;
pub mod slo;
pub mod stats;
pub mod summary;
pub mod system;
pub mod verdict;

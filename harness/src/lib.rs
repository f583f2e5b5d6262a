//! The BankTransfer harness: runs a chaos profile against the reference system (or any
//! system that follows `docs/contract.md`) and writes a verdict.
//!
//! Its modules stand in layers, input to output: shared parts (`topology`, `proxy`,
//! `provenance`, `compressed`, `history`, `stats`) → what a run is told (`profile`, `cli`) → `population`
//! and `schedule` → the `system` → what drives it (`client`, `loadgen`, `faults`, `progress`,
//! `cpu`, `usage`) → evidence (`reconcile`, `phases`) → judgement (`slo`, `verdict`, `regression`)
//! → `summary` and `schemas` → `report` and `compare` → `run` → the commands built on runs
//! (`baseline`, `capacity`, `mutants`, `check_target`, `bench`, `trend`, `ab`). `ARCHITECTURE.md` gives
//! each module's job; its Layers block is the order, which `tests/it/layers.rs` holds every
//! import to.

pub mod ab;
pub mod baseline;
pub mod bench;
pub mod capacity;
pub mod check_target;
pub mod cli;
pub mod client;
pub mod compare;
pub mod compressed;
pub mod cpu;
pub mod faults;
pub mod history;
pub mod interrupt;
pub mod loadgen;
pub mod mapping;
pub mod mutants;
pub mod phases;
pub mod population;
pub mod profile;
pub mod progress;
pub mod provenance;
pub mod proxy;
pub mod reconcile;
pub mod regression;
pub mod replay;
pub mod report;
pub mod run;
pub mod schedule;
pub mod schemas;
pub mod shrink;
pub mod slo;
pub mod stats;
pub mod summary;
pub mod system;
pub mod topology;
pub mod trend;
pub mod usage;
pub mod verdict;

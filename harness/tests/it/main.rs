//! Integration tests of the harness binary: real runs on loopback, real child processes,
//! real signals.

mod ab;
mod baseline;
mod browser;
mod capacity;
mod clients;
mod compare;
mod damaged;
mod deploy;
mod faults;
mod foreign;
mod fuzz;
mod layers;
mod limits;
mod mutants;
mod mysql;
mod postgres;
mod profiles;
mod proxy;
mod report;
mod runs;
mod shards;
mod shrink;
mod signals;
mod support;
mod target;
mod target_file;
mod trend;

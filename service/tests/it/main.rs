//! Integration tests of the reference system: real `bank-service` processes on loopback,
//! real SQLite files, real signals. No test sleeps to synchronise; waits poll a condition
//! with a bound.

mod bad_input;
mod crash;
mod disk;
mod fuzz;
mod hang_up;
mod limits;
mod naive;
mod overload;
mod pages;
mod saga;
mod support;

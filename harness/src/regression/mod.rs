//! Telling a regression from noise, without assuming how the figures are distributed:
//! - `paired`: two builds run interleaved, judged pair by pair (the median ratio with a
//!   bootstrap interval, and a sign test; a regression needs both to agree);
//! - `pooled`: a latency quantile of two builds run interleaved, each arm's latencies
//!   pooled over the rounds, with a bootstrap interval over whole rounds;
//! - `change_points`: where a history of runs' figures changed level (E-Divisive means).

pub mod change_points;
pub mod paired;
pub mod pooled;

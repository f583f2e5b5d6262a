//! `harness compare BASELINE CURRENT`: is the current run a performance regression of the
//! baseline? Each side is a run folder or a summary file.
//!
//! - `load`: a run's summary and its measured latency histogram.
//! - `judge`: every metric with its change, judged against the tolerances.
//! - `cpu`: each process's CPU per operation, alone and against the machine's drift.
//! - `row`: one line of the comparison and its judgement.
//! - `distributions`: the two latency distributions side by side.
//! - `render`: the comparison as text or as Markdown (for a CI job summary).
//!
//! Exit codes: 0 no regression, 1 a regression, 2 the runs cannot tell (too few samples, a
//! change inside the sampling noise, another profile, an unusable generator) or cannot be
//! read.

pub mod cpu;
pub mod distributions;
pub mod judge;
pub mod load;
pub mod render;
pub mod row;

pub use judge::{compare, Comparison};
pub use row::Judgement;

use crate::cli::{CompareArgs, Format};

/// Runs `harness compare`; returns the exit code.
pub fn run(args: &CompareArgs) -> i32 {
    let runs = load::run(&args.baseline).and_then(|b| Ok((b, load::run(&args.current)?)));
    let (base, cur) = match runs {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("harness compare: error: {e}");
            return 2;
        }
    };
    let comparison = compare(&base, &cur, &args.tolerances);
    let text = match args.format {
        Format::Text => render::text(&base, &cur, &comparison),
        Format::Markdown => render::markdown(&base, &cur, &comparison),
    };
    print!("{text}");
    comparison.exit_code()
}

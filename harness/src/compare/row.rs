//! One line of a comparison and its judgement, shared by every kind of row (`judge`'s
//! latency, throughput, errors and invariants; `cpu`'s processes).

/// A metric's judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Judgement {
    /// Within its tolerance.
    Ok,
    /// Not judged: neither run has what it needs (a p99.9 of a short run).
    NotJudged,
    /// Worse than its tolerance, but the runs cannot tell (too few samples, or the change
    /// is inside the sampling noise).
    CannotJudge,
    Regression,
}

impl Judgement {
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Ok => "ok",
            Judgement::NotJudged => "not judged",
            Judgement::CannotJudge => "cannot judge",
            Judgement::Regression => "REGRESSION",
        }
    }
}

/// One line of the comparison.
#[derive(Debug, Clone)]
pub struct Row {
    pub metric: String,
    pub baseline: String,
    pub current: String,
    pub change: String,
    pub limit: String,
    pub judgement: Judgement,
    pub why: String,
}

impl Row {
    /// A row judged against a plain threshold: a regression, saying `why`, or ok.
    pub(super) fn against_threshold(
        metric: String,
        (baseline, current): (String, String),
        change: String,
        limit: String,
        regression: bool,
        why: impl FnOnce() -> String,
    ) -> Row {
        Row {
            metric,
            baseline,
            current,
            change,
            limit,
            judgement: if regression {
                Judgement::Regression
            } else {
                Judgement::Ok
            },
            why: if regression { why() } else { String::new() },
        }
    }
}

/// A ratio as a signed percent change: `+12.5 %`.
pub(super) fn pct(ratio: f64) -> String {
    format!("{:+.1} %", (ratio - 1.0) * 100.0)
}

//! The `faults:` list of a profile as written: one flat entry per fault, checked strictly
//! (unknown fields are errors) and turned into a timeline by `fault_plan`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use service::disk_fault::DiskState;
use std::collections::BTreeMap;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A Toxiproxy toxic on a proxy (`gateway`, `external`, `ledger`).
    Toxic,
    /// The proxy disabled: connections refused, open ones closed.
    Down,
    /// SIGKILL the service; start it again (same port, same data files) when it ends.
    Kill,
    /// SIGSTOP the service; SIGCONT when it ends.
    Pause,
    /// SIGTERM the service (graceful stop); start it again when it ends.
    Restart,
    /// Change the service's own fault knobs (and the ledger's policy); restore them at the end.
    Knobs,
    /// Make the service's store fail its commits as a full or read-only disk does
    /// (`PUT /admin/disk`); a healthy disk again at the end.
    Disk,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Toxic => "toxic",
            FaultKind::Down => "down",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
            FaultKind::Knobs => "knobs",
            FaultKind::Disk => "disk",
        }
    }
}

/// One fault on the timeline. Times are seconds from the start of the load (warm-up
/// included); without `duration_s` or `end_s` a fault lasts until the load ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Names the fault in results; defaults to `<kind>-<target>`.
    pub name: Option<String>,
    pub kind: FaultKind,
    /// A proxy for `toxic` and `down`; a service (`coordinator`, `external`, `ledger`) for the rest.
    pub target: String,
    pub at_s: f64,
    pub duration_s: Option<f64>,
    pub end_s: Option<f64>,
    /// Starts again every `every_s`, `times` times in all (flapping).
    pub repeat: Option<Repeat>,
    /// Each start moves later by a seeded random amount in `0..=jitter_s`.
    #[serde(default)]
    pub jitter_s: f64,
    /// `toxic`: the toxic type (`latency`, `bandwidth`, `slow_close`, `timeout`,
    /// `reset_peer`, `slicer`, `limit_data`).
    pub toxic: Option<String>,
    /// `toxic`: `upstream` (towards the server) or `downstream` (towards the client).
    pub stream: Option<String>,
    /// `toxic`: the fraction of connections it acts on (default 1).
    pub toxicity: Option<f64>,
    /// `toxic`: the type's attributes, as Toxiproxy names them.
    #[serde(default)]
    pub attributes: BTreeMap<String, i64>,
    /// `knobs`: the values to set while the fault lasts, by the names the target's flags and
    /// admin routes use (see `service.<target>` in a profile); any subset of them.
    pub set: Option<Map<String, Value>>,
    /// `disk`: `full` (the default) or `read_only`.
    pub disk: Option<DiskState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    pub every_s: f64,
    pub times: u32,
}

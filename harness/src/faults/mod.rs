//! The fault timeline of a run: each occurrence applied at its time from the start of the
//! load and healed at its end, every step read back from the thing it changed. A step that
//! does not read back stops the run (exit 2) after everything applied so far is healed.
//! At the load's end whatever is still active is healed, so the system can converge.
//!
//! - `proxies`: toxics and down proxies through the Toxiproxy API.
//! - `process`: SIGKILL, SIGSTOP/SIGCONT, SIGTERM, and starting a service again.
//! - `commands`: the same faults through a system owner's commands (a target file's).

pub mod commands;
pub mod process;
pub mod proxies;

use crate::interrupt::Interrupt;
use crate::profile::fault_action::FaultAction;
use crate::profile::fault_plan::FaultOccurrence;
use crate::stats::LiveStats;
use crate::system::knobs;
use crate::system::Endpoints;
use crate::topology::ServiceRole;
use process::{ProcessControl, ProcessError};
use proxies::{ProxyControl, ProxyFaultError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use service::contract::routes;
use service::disk_fault::DiskFault;
use service::knobs::FaultKnobs;
use service::ledger_policy::LedgerPolicy;
use service::settings::Patch;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One fault occurrence as it happened, for `summary.json` and `report.md`. Times are
/// seconds from the start of the load; `applied_at_s` and `healed_at_s` are set once the
/// change read back from the server or process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FaultRecord {
    pub name: String,
    pub kind: String,
    pub target: String,
    pub detail: String,
    pub requested_start_s: f64,
    pub requested_end_s: f64,
    pub applied_at_s: Option<f64>,
    pub healed_at_s: Option<f64>,
    /// Why the fault could not be applied or healed.
    pub error: Option<String>,
}

/// What a run can act on. A part that is missing makes the faults that need it fail.
#[derive(Clone)]
pub struct FaultControl {
    pub proxies: Option<ProxyControl>,
    pub processes: Option<ProcessControl>,
    pub http: reqwest::Client,
    /// The services' own addresses (not their hops), for knobs.
    pub endpoints: Endpoints,
}

/// Why a fault could not be applied or healed.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error(transparent)]
    Proxy(#[from] ProxyFaultError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Command(#[from] commands::CommandError),
    #[error(transparent)]
    Knobs(#[from] knobs::KnobsError),
    #[error("proxy faults need the harness's proxies")]
    NoProxies,
    #[error("process faults need the services the harness starts, or commands in a target file")]
    NoProcesses,
    #[error("no address for the {0} knobs")]
    NoAddress(&'static str),
    #[error("internal error: the undo does not match the fault")]
    UndoMismatch,
}

/// How to undo an applied occurrence.
enum Undo {
    RemoveToxic,
    Enable,
    StartAgain,
    Resume,
    RestoreKnobs {
        knobs: Option<FaultKnobs>,
        policy: Option<LedgerPolicy>,
    },
    RestoreDisk(DiskFault),
}

/// A fault that did not apply or heal: the run stops with this reason.
#[derive(Debug, thiserror::Error)]
#[error("fault {name}: {source}")]
pub struct FaultFailed {
    pub name: String,
    pub source: FaultError,
    pub records: Vec<FaultRecord>,
}

pub struct Timeline {
    /// False for a shard that does not own the faults: it records the timeline it was told.
    applies: bool,
    /// A request to end the run early: everything applied is healed there.
    interrupt: Interrupt,
    occurrences: Vec<FaultOccurrence>,
    records: Vec<FaultRecord>,
    active: Vec<(usize, Undo)>,
    control: FaultControl,
    live: Arc<LiveStats>,
    start: Instant,
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Timeline {
    pub fn new(
        occurrences: Vec<FaultOccurrence>,
        control: FaultControl,
        live: Arc<LiveStats>,
        start: Instant,
    ) -> Timeline {
        let records = occurrences
            .iter()
            .map(|o| FaultRecord {
                name: o.name.clone(),
                kind: o.kind.as_str().to_owned(),
                target: o.target.clone(),
                detail: o.detail.clone(),
                requested_start_s: seconds(o.start),
                requested_end_s: seconds(o.end),
                applied_at_s: None,
                healed_at_s: None,
                error: None,
            })
            .collect();
        Timeline {
            applies: true,
            interrupt: Interrupt::default(),
            occurrences,
            records,
            active: Vec::new(),
            control,
            live,
            start,
        }
    }

    /// The same timeline, ending (everything applied healed) when `interrupt` is requested.
    pub fn until(mut self, interrupt: Interrupt) -> Timeline {
        self.interrupt = interrupt;
        self
    }

    /// A timeline that applies nothing and records each occurrence as requested (a shard
    /// of a run whose faults another shard applies).
    pub fn recording_only(mut self) -> Timeline {
        self.applies = false;
        self
    }

    fn now_s(&self) -> f64 {
        seconds(Instant::now().saturating_duration_since(self.start))
    }

    fn publish_active(&self) {
        let names = self
            .active
            .iter()
            .map(|(i, _)| self.occurrences[*i].name.clone())
            .collect();
        self.live.set_active_faults(names);
    }

    /// Applies and heals every occurrence at its time; heals everything still active at
    /// the end (or on a failure, before returning it).
    pub async fn run(mut self) -> Result<Vec<FaultRecord>, Box<FaultFailed>> {
        if !self.applies {
            return Ok(self.records);
        }
        // (time, heal before apply at the same instant, occurrence)
        let mut events: Vec<(Duration, bool, usize)> = Vec::new();
        for (i, o) in self.occurrences.iter().enumerate() {
            events.push((o.start, true, i));
            events.push((o.end, false, i));
        }
        events.sort_by_key(|(at, apply, i)| (*at, *apply, *i));
        for (at, apply, i) in events {
            tokio::select! {
                () = tokio::time::sleep_until(self.start + at) => {}
                () = self.interrupt.wait() => break,
            }
            let step = if apply {
                self.apply(i).await
            } else {
                self.heal(i).await
            };
            if let Err(source) = step {
                let name = self.occurrences[i].name.clone();
                self.records[i].error = Some(source.to_string());
                self.heal_all().await;
                return Err(Box::new(FaultFailed {
                    name,
                    source,
                    records: self.records,
                }));
            }
        }
        self.heal_all().await;
        Ok(self.records)
    }

    /// Heals whatever is still active, recording (not stopping on) failures.
    async fn heal_all(&mut self) {
        while let Some((i, _)) = self.active.last() {
            let i = *i;
            if let Err(err) = self.heal(i).await {
                tracing::error!(fault = %self.occurrences[i].name, %err, "could not heal");
                self.records[i].error.get_or_insert(err.to_string());
                self.active.retain(|(j, _)| *j != i);
            }
        }
        self.publish_active();
    }

    fn processes(&self) -> Result<&ProcessControl, FaultError> {
        self.control
            .processes
            .as_ref()
            .ok_or(FaultError::NoProcesses)
    }

    fn proxies(&self) -> Result<&ProxyControl, FaultError> {
        self.control.proxies.as_ref().ok_or(FaultError::NoProxies)
    }

    fn base_of(&self, service: ServiceRole) -> Result<String, FaultError> {
        self.control
            .endpoints
            .of(service)
            .map(str::to_owned)
            .ok_or(FaultError::NoAddress(service.as_str()))
    }

    async fn apply(&mut self, i: usize) -> Result<(), FaultError> {
        let occurrence = self.occurrences[i].clone();
        let undo = match &occurrence.action {
            FaultAction::Toxic { hop, toxic } => {
                self.proxies()?.add_toxic(*hop, toxic).await?;
                Undo::RemoveToxic
            }
            FaultAction::Down { hop } => {
                self.proxies()?.set_enabled(*hop, false).await?;
                Undo::Enable
            }
            FaultAction::Kill { service } => {
                self.processes()?.kill(*service).await?;
                Undo::StartAgain
            }
            FaultAction::Restart { service } => {
                self.processes()?.restart(*service).await?;
                Undo::StartAgain
            }
            FaultAction::Pause { service } => {
                self.processes()?.pause(*service, true).await?;
                Undo::Resume
            }
            FaultAction::Knobs {
                service,
                knobs: knob_patch,
                policy,
            } => {
                let base = self.base_of(*service)?;
                let http = &self.control.http;
                let knobs_before = if knob_patch.is_empty() {
                    None
                } else {
                    Some(knobs::set(http, &base, routes::ADMIN_KNOBS, knob_patch).await?)
                };
                let policy_before = if policy.is_empty() {
                    None
                } else {
                    match knobs::set(http, &base, routes::ADMIN_POLICY, policy).await {
                        Ok(before) => Some(before),
                        Err(e) => {
                            if let Some(before) = &knobs_before {
                                let _ =
                                    knobs::restore(http, &base, routes::ADMIN_KNOBS, before).await;
                            }
                            return Err(e.into());
                        }
                    }
                };
                Undo::RestoreKnobs {
                    knobs: knobs_before,
                    policy: policy_before,
                }
            }
            FaultAction::Disk { service, disk } => {
                let base = self.base_of(*service)?;
                let patch = Patch::of_value(&DiskFault { disk: *disk });
                let before = knobs::set(&self.control.http, &base, routes::ADMIN_DISK, &patch);
                Undo::RestoreDisk(before.await?)
            }
        };
        self.records[i].applied_at_s = Some(self.now_s());
        self.active.push((i, undo));
        self.publish_active();
        tracing::info!(fault = %occurrence.name, detail = %occurrence.detail, "fault applied");
        Ok(())
    }

    async fn heal(&mut self, i: usize) -> Result<(), FaultError> {
        let Some(slot) = self.active.iter().position(|(j, _)| *j == i) else {
            return Ok(());
        };
        let occurrence = self.occurrences[i].clone();
        let (_, undo) = &self.active[slot];
        match (undo, &occurrence.action) {
            (Undo::RemoveToxic, FaultAction::Toxic { hop, toxic }) => {
                self.proxies()?.remove_toxic(*hop, &toxic.name).await?;
            }
            (Undo::Enable, FaultAction::Down { hop }) => {
                self.proxies()?.set_enabled(*hop, true).await?;
            }
            (Undo::StartAgain, FaultAction::Kill { service }) => {
                (self.processes()?)
                    .start_again(*service, true, &self.control.http)
                    .await?;
            }
            (Undo::StartAgain, FaultAction::Restart { service }) => {
                (self.processes()?)
                    .start_again(*service, false, &self.control.http)
                    .await?;
            }
            (Undo::Resume, FaultAction::Pause { service }) => {
                self.processes()?.pause(*service, false).await?;
            }
            (Undo::RestoreKnobs { knobs, policy }, FaultAction::Knobs { service, .. }) => {
                let base = self.base_of(*service)?;
                if let Some(before) = knobs {
                    knobs::restore(&self.control.http, &base, routes::ADMIN_KNOBS, before).await?;
                }
                if let Some(before) = policy {
                    knobs::restore(&self.control.http, &base, routes::ADMIN_POLICY, before).await?;
                }
            }
            (Undo::RestoreDisk(before), FaultAction::Disk { service, .. }) => {
                let base = self.base_of(*service)?;
                knobs::restore(&self.control.http, &base, routes::ADMIN_DISK, before).await?;
            }
            _ => return Err(FaultError::UndoMismatch),
        }
        self.active.remove(slot);
        self.records[i].healed_at_s = Some(self.now_s());
        self.publish_active();
        tracing::info!(fault = %occurrence.name, "fault healed");
        Ok(())
    }
}

//! Why a run could not happen (exit code 2): every error a run's steps can meet, each with
//! the sentence the harness prints.

use crate::faults::FaultFailed;
use crate::profile::ProfileError;
use crate::reconcile;
use crate::system::admin::AdminError;
use crate::system::knobs::KnobsError;
use crate::system::BringUpError;
use std::path::PathBuf;

/// Why a run could not happen (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("{file} lacks what the profile's faults need:\n  {missing}")]
    TargetLacks { file: String, missing: String },
    #[error("some of the profile's service settings cannot be applied to the target (run with --ignore-service-settings to run without them):\n  {0}")]
    SettingsNotApplied(String),
    #[error("the target's settings: {0}")]
    Settings(#[from] KnobsError),
    #[error("the users to reuse: {0}; with seed: reuse, run once with seed: create or seed the users by the names docs/contract.md gives; with api.users.reuse, list users the books hold")]
    NothingToReuse(String),
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the system: {0}")]
    BringUp(#[from] BringUpError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("the coordinator's address: {0}")]
    Gateway(#[source] anyhow::Error),
    #[error(transparent)]
    Fault(#[from] Box<FaultFailed>),
    #[error("reading the history back: {0}")]
    History(std::io::Error),
    #[error("the run's files: {0}")]
    Evidence(#[from] reconcile::evidence::EvidenceError),
    #[error("cannot read {path}: {detail}")]
    Input { path: PathBuf, detail: String },
    #[error("a task of the run failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Shard(String),
    #[error("{0}")]
    AdminToken(String),
    #[error("--start-at was {0:.1} s ago when this process was ready to load: start the shards with an instant far enough ahead for every one to start its system and seed")]
    LateStart(f64),
    #[error("the mapping does not describe the system's answers: {0}; the load was stopped (run check-target for the whole walk)")]
    Mapping(String),
}

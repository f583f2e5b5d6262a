//! What the command line says about a run, and the plan it makes of the profile: the profile
//! file with the command line's overrides applied, validated like the file itself.

use crate::profile::{self, plan::RunPlan, Profile, ProfileError};
use service::coordinator::Design;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub profile: PathBuf,
    pub out: Option<PathBuf>,
    pub seed: Option<u64>,
    pub duration_s: Option<u32>,
    pub rate: Option<u32>,
    pub design: Option<Design>,
    pub target: Option<String>,
    pub external_url: Option<String>,
    pub ledger_url: Option<String>,
    /// An existing Toxiproxy server's API (`host:port` or URL) instead of the embedded one.
    pub toxiproxy: Option<String>,
    pub quiet: bool,
}

/// The profile with the overrides applied, and its plan. The profile comes back with every
/// service setting written out as the plan starts the services (the profile as run).
pub fn plan(options: &RunOptions) -> Result<(Profile, RunPlan), ProfileError> {
    let (mut profile, _) = profile::load(&options.profile)?;
    if let Some(seed) = options.seed {
        profile.seed = seed;
    }
    if let Some(duration) = options.duration_s {
        profile.duration_s = duration;
    }
    if let Some(rate) = options.rate {
        profile.arrival = profile::Arrival {
            rate_per_s: Some(rate),
            stages: None,
        };
    }
    if let Some(design) = options.design {
        profile.service.coordinator.insert(
            "design".to_owned(),
            serde_json::Value::from(design.as_str()),
        );
    }
    let plan = profile::plan::validate(&profile).map_err(|(field, message)| ProfileError {
        file: options.profile.clone(),
        line: None,
        field,
        message: format!("{message} (with command-line overrides)"),
    })?;
    profile.service = profile::ServiceSettings::written_out(&profile::settings::StartSettings {
        coordinator: plan.coordinator.clone(),
        external_knobs: plan.external_knobs.clone(),
        ledger_knobs: plan.ledger_knobs.clone(),
        ledger_policy: plan.ledger_policy.clone(),
    });
    Ok((profile, plan))
}

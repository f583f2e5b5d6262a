//! The run's folder: created with the profile as run written into it, and the files a run
//! writes there (`services.json`, and any JSON or text file, each write's failure named by
//! its path).

use super::error::RunError;
use super::options::RunOptions;
use crate::profile::{plan::RunPlan, Profile};
use crate::provenance;
use crate::system::hops::Hops;
use crate::system::Endpoints;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub(super) fn write_file(path: &Path, text: String) -> Result<(), RunError> {
    std::fs::write(path, text).map_err(|source| RunError::Output {
        path: path.to_owned(),
        source,
    })
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| RunError::Output {
        path: path.to_owned(),
        source: e.into(),
    })?;
    write_file(path, text + "\n")
}

/// Creates the run's folder and writes the profile as run into it.
pub(super) fn results_folder(
    options: &RunOptions,
    profile: &Profile,
    plan: &RunPlan,
    started_at: SystemTime,
) -> Result<PathBuf, RunError> {
    let out = options.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("{}-{}", provenance::compact(started_at), plan.name))
    });
    std::fs::create_dir_all(&out).map_err(|source| RunError::Output {
        path: out.clone(),
        source,
    })?;
    let as_run = serde_yaml::to_string(profile).map_err(|e| RunError::Output {
        path: out.join(PROFILE_FILE),
        source: std::io::Error::other(e),
    })?;
    write_file(
        &out.join(PROFILE_FILE),
        format!(
            "# The profile as run: {} with overrides applied and every service setting written out.\n{as_run}",
            options.profile.display()
        ),
    )?;
    write_system_as_run(options, &out)?;
    Ok(out)
}

/// The profile as run, in a run's folder.
pub const PROFILE_FILE: &str = "profile.yaml";
/// How the run reached its system, in a run's folder: with `profile.yaml`, all `harness
/// replay` needs.
pub const SYSTEM_FILE: &str = "system.json";
/// A copy of the target file a run drove, in its folder.
pub const TARGET_FILE_COPY: &str = "target.yaml";

/// How a run reached the system it drove: started by the harness, or a target (by URL, or
/// by a target file, copied into the run's folder); and the Toxiproxy server it used.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemAsRun {
    /// The target file, as given (its copy is `target.yaml` beside this file).
    pub target_file: Option<PathBuf>,
    pub target: Option<String>,
    pub external_url: Option<String>,
    pub ledger_url: Option<String>,
    pub toxiproxy: Option<String>,
    pub ignore_service_settings: bool,
}

impl SystemAsRun {
    pub fn of(options: &RunOptions) -> SystemAsRun {
        SystemAsRun {
            target_file: options.target_file.clone(),
            target: options.target.clone(),
            external_url: options.external_url.clone(),
            ledger_url: options.ledger_url.clone(),
            toxiproxy: options.toxiproxy.clone(),
            ignore_service_settings: options.ignore_service_settings,
        }
    }
}

fn write_system_as_run(options: &RunOptions, out: &Path) -> Result<(), RunError> {
    if let Some(file) = &options.target_file {
        let copy = out.join(TARGET_FILE_COPY);
        std::fs::copy(file, &copy).map_err(|source| RunError::Output { path: copy, source })?;
        copy_users_to_reuse(file, out)?;
    }
    write_json(&out.join(SYSTEM_FILE), &SystemAsRun::of(options))
}

/// The list of users a target file reuses, when it names it relative to its folder: copied
/// to the same place beside the file's copy, so that the run's folder replays as it is.
fn copy_users_to_reuse(target_file: &Path, out: &Path) -> Result<(), RunError> {
    let Ok(text) = std::fs::read_to_string(target_file) else {
        return Ok(());
    };
    let Ok(target) = crate::system::target_file::parse(target_file, &text) else {
        return Ok(());
    };
    let Some(relative) = target.api.and_then(|api| api.users.reuse) else {
        return Ok(());
    };
    let inside = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside {
        return Ok(());
    }
    let from = target_file
        .parent()
        .unwrap_or(Path::new("."))
        .join(&relative);
    let to = out.join(&relative);
    let output = |source| RunError::Output {
        path: to.clone(),
        source,
    };
    if let Some(folder) = to.parent() {
        std::fs::create_dir_all(folder).map_err(output)?;
    }
    std::fs::copy(&from, &to).map_err(output)?;
    Ok(())
}

/// `services.json`: where the services answer, their first process ids (of a system the
/// harness started) and the hops.
pub(super) fn write_services(
    out: &Path,
    endpoints: &Endpoints,
    hops: &Hops,
    pids: Option<BTreeMap<&'static str, u32>>,
) -> Result<(), RunError> {
    #[derive(serde::Serialize)]
    struct Services<'a> {
        endpoints: &'a Endpoints,
        pids: Option<BTreeMap<&'static str, u32>>,
        proxies: Option<&'a Hops>,
    }
    write_json(
        &out.join("services.json"),
        &Services {
            endpoints,
            pids,
            proxies: Some(hops),
        },
    )
}

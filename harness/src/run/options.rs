//! What the command line says about a run, and the plan it makes of the profile: the profile
//! file with the command line's overrides applied, validated like the file itself.

use crate::cli::RunArgs;
use crate::profile::fault_plan::fault_name;
use crate::profile::plan::{RunPlan, Shard};
use crate::profile::{self, Profile, ProfileError};
use crate::system::target_file::{self, TargetFile};
use service::coordinator::Design;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub profile: PathBuf,
    pub out: Option<PathBuf>,
    pub seed: Option<u64>,
    pub duration_s: Option<u32>,
    pub rate: Option<u32>,
    pub design: Option<Design>,
    /// A system already running, by its coordinator's URL (with `external_url` and
    /// `ledger_url` for the institutions' dumps).
    pub target: Option<String>,
    pub external_url: Option<String>,
    pub ledger_url: Option<String>,
    /// A system already running, described by a target file (hops, commands, seeding).
    pub target_file: Option<PathBuf>,
    /// Run a profile on a target even when some of its `service:` settings cannot be
    /// applied there; the summary lists them.
    pub ignore_service_settings: bool,
    /// Accounts that exist already are taken as they are, and only the missing ones created,
    /// whatever the target file's `seed` says: a replay or a shrink runs again on a system
    /// its original run seeded (money is judged from the books read before each run).
    pub take_existing_accounts: bool,
    /// Keep the started services' SQLite files after a run that passes.
    pub keep_service_data: bool,
    /// An existing Toxiproxy server's API (`host:port` or URL) instead of the embedded one.
    pub toxiproxy: Option<String>,
    pub quiet: bool,
    /// Nothing printed: no progress and no closing table (a step of another command).
    pub silent: bool,
    /// Overrides the profile's warm-up, in seconds.
    pub warmup_s: Option<u32>,
    /// Overrides the profile's `client.http2_connections`.
    pub client_http2_connections: Option<u32>,
    /// Overrides how long the run waits for every saga to be final.
    pub convergence_window_s: Option<u32>,
    /// The profile's faults, none, or one held active through the whole load.
    pub faults: FaultsOverride,
    /// The part of the run this process drives.
    pub shard: Shard,
    /// When the load starts, on the wall clock (every shard of a run the same); None: as
    /// soon as the system is ready.
    pub start_at: Option<SystemTime>,
    /// A request to end the run early (the harness's SIGTERM and Ctrl-C).
    pub interrupt: crate::interrupt::Interrupt,
}

impl RunOptions {
    /// The system the run drives when the harness does not start it: the target file, or
    /// `--target` and its URLs as one.
    pub fn target_system(&self) -> Result<Option<TargetFile>, ProfileError> {
        if let Some(file) = &self.target_file {
            return target_file::load(file).map(Some);
        }
        Ok(self.target.as_deref().map(|coordinator| {
            TargetFile::from_urls(
                coordinator,
                self.external_url.as_deref(),
                self.ledger_url.as_deref(),
            )
        }))
    }

    /// How the run shows its progress.
    pub fn display(&self) -> crate::progress::Display {
        use crate::progress::Display;
        match (self.silent, self.quiet) {
            (true, _) => Display::Off,
            (false, true) => Display::Plain,
            (false, false) => Display::Auto,
        }
    }
}

/// What a run does with the profile's fault timeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum FaultsOverride {
    /// The timeline as the profile writes it.
    #[default]
    AsProfile,
    /// No faults at all.
    None,
    /// Only the fault of this name, active from the start of the load to its end.
    Hold(String),
}

/// The profile's faults as `how` says.
fn override_faults(
    profile: &mut Profile,
    how: &FaultsOverride,
    file: &Path,
) -> Result<(), ProfileError> {
    match how {
        FaultsOverride::AsProfile => Ok(()),
        FaultsOverride::None => {
            profile.faults.clear();
            Ok(())
        }
        FaultsOverride::Hold(name) => {
            let names: Vec<String> = profile
                .faults
                .iter()
                .enumerate()
                .map(|(i, f)| fault_name(f, i))
                .collect();
            let Some(i) = names.iter().position(|n| n == name) else {
                return Err(ProfileError {
                    file: file.to_owned(),
                    line: None,
                    field: "faults".into(),
                    message: format!(
                        "no fault named `{name}`; the profile's faults are: {}",
                        if names.is_empty() {
                            "(none)".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                });
            };
            let mut held = profile.faults[i].clone();
            held.name = Some(names[i].clone());
            held.at_s = 0.0;
            held.duration_s = Some(f64::from(profile.warmup_s + profile.duration_s));
            held.end_s = None;
            held.repeat = None;
            held.jitter_s = 0.0;
            profile.faults = vec![held];
            Ok(())
        }
    }
}

/// The profile with the overrides applied, and its plan. The profile comes back with every
/// service setting written out as the plan starts the services, when the harness starts
/// them (the profile as run); a target's keeps the profile's section.
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
    if let Some(warmup) = options.warmup_s {
        profile.warmup_s = warmup;
    }
    if let Some(window) = options.convergence_window_s {
        profile.convergence_window_s = window;
    }
    if let Some(connections) = options.client_http2_connections {
        profile.client.http2_connections = connections;
    }
    override_faults(&mut profile, &options.faults, &options.profile)?;
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
    // A system the harness starts runs with every setting: the profile as run says them all.
    // A target is given only the profile's own (the rest are its own business): written
    // out, its defaults would ask a replay for settings no route sets.
    if options.target.is_none() && options.target_file.is_none() {
        profile.service =
            profile::ServiceSettings::written_out(&profile::settings::StartSettings {
                coordinator: plan.coordinator.clone(),
                coordinator_knobs: plan.coordinator_knobs.clone(),
                external_knobs: plan.external_knobs.clone(),
                ledger_knobs: plan.ledger_knobs.clone(),
                ledger_policy: plan.ledger_policy.clone(),
            });
    }
    let mut plan = plan;
    plan.shard = options.shard;
    Ok((profile, plan))
}

/// The environment variables a shard reads its part from when `--shard` is absent: a
/// Kubernetes Indexed Job's pod index, and the shard count the Job sets beside it.
pub const SHARD_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
pub const SHARD_COUNT_ENV: &str = "HARNESS_SHARD_COUNT";

impl RunOptions {
    /// Why this sharded run cannot go ahead, when it cannot: a shard drives a system it did
    /// not start, starts at the agreed instant, and has users of its own.
    pub fn shard_problem(&self, plan: &RunPlan) -> Option<String> {
        let shard = self.shard;
        if shard.is_whole() {
            return None;
        }
        if self.target.is_none() && self.target_file.is_none() {
            return Some(format!(
                "shard {shard}: the shards of a run drive one system: give it with --target-file (or --target)"
            ));
        }
        if self.start_at.is_none() {
            return Some(format!(
                "shard {shard}: the shards of a run start together: give --start-at (the same instant to every shard)"
            ));
        }
        if plan.users < shard.count {
            return Some(format!(
                "shard {shard}: {} users cannot be shared among {} shards",
                plan.users, shard.count
            ));
        }
        plan.faults
            .iter()
            .find(|f| f.target == crate::topology::Hop::Gateway.as_str() && matches!(f.action, crate::profile::fault_action::FaultAction::Toxic { .. } | crate::profile::fault_action::FaultAction::Down { .. }))
            .map(|f| {
                format!(
                    "shard {shard}: fault `{}` acts on the gateway hop, which each shard has its own of; a sharded run takes faults on the upstream hops and the services",
                    f.name
                )
            })
    }
}

impl RunArgs {
    /// The options of a run from its command line.
    pub fn into_options(self) -> Result<RunOptions, String> {
        let profile = self
            .profile
            .ok_or_else(|| "--profile FILE is required (see chaos-profiles/)".to_owned())?;
        let shard = match &self.shard {
            Some(text) => Shard::parse(text)?,
            None => shard_from_env(|name| std::env::var(name).ok())?,
        };
        let start_at = match &self.start_at {
            Some(text) => Some(crate::provenance::parse_instant(text).ok_or_else(|| {
                format!("--start-at takes 2026-12-04T17:30:00Z or seconds since the Unix epoch, got `{text}`")
            })?),
            None => None,
        };
        Ok(RunOptions {
            shard,
            start_at,
            profile,
            out: self.out,
            seed: self.seed,
            duration_s: self.duration,
            rate: self.rate,
            design: self.design,
            client_http2_connections: self.client_http2_connections,
            target: self.target,
            external_url: self.external_url,
            ledger_url: self.ledger_url,
            target_file: self.target_file,
            ignore_service_settings: self.ignore_service_settings,
            keep_service_data: self.keep_service_data,
            toxiproxy: self.toxiproxy,
            quiet: self.quiet,
            ..RunOptions::default()
        })
    }
}

/// The shard an Indexed Job's pod is, from `JOB_COMPLETION_INDEX` and
/// `HARNESS_SHARD_COUNT`; the whole run when neither is set.
fn shard_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
    match (var(SHARD_INDEX_ENV), var(SHARD_COUNT_ENV)) {
        (None, None) => Ok(Shard::WHOLE),
        (Some(index), Some(count)) => Shard::parse(&format!("{index}/{count}"))
            .map_err(|e| format!("{e} (from {SHARD_INDEX_ENV} and {SHARD_COUNT_ENV})")),
        (Some(_), None) => Err(format!(
            "{SHARD_INDEX_ENV} is set but {SHARD_COUNT_ENV} is not: set both, or give --shard I/N"
        )),
        (None, Some(_)) => Err(format!(
            "{SHARD_COUNT_ENV} is set but {SHARD_INDEX_ENV} is not: set both, or give --shard I/N"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_indexed_jobs_pod_is_its_shard() {
        let env = |index: Option<&str>, count: Option<&str>| {
            let (index, count) = (index.map(str::to_owned), count.map(str::to_owned));
            move |name: &str| match name {
                SHARD_INDEX_ENV => index.clone(),
                SHARD_COUNT_ENV => count.clone(),
                _ => None,
            }
        };
        assert_eq!(shard_from_env(env(None, None)), Ok(Shard::WHOLE));
        assert_eq!(
            shard_from_env(env(Some("2"), Some("3"))),
            Ok(Shard { index: 2, count: 3 })
        );
        let err = shard_from_env(env(Some("3"), Some("3"))).expect_err("index past the count");
        assert!(err.contains("JOB_COMPLETION_INDEX"), "{err}");
        let err = shard_from_env(env(Some("0"), None)).expect_err("no count");
        assert!(err.contains("HARNESS_SHARD_COUNT is not"), "{err}");
    }

    const FAULTS: &str = "warmup_s: 2
faults:
  - {name: cut, kind: down, target: ledger, at_s: 3, duration_s: 1, repeat: {every_s: 2, times: 3}}
  - {kind: pause, target: external, at_s: 6, duration_s: 1}
";

    fn parsed() -> Profile {
        let text = format!("{}{FAULTS}", profile::TEST_PROFILE_HEAD);
        profile::parse(Path::new("t.yaml"), &text)
            .expect("the test profile is valid")
            .0
    }

    #[test]
    fn a_held_fault_lasts_the_whole_load_and_is_the_only_one() {
        let mut p = parsed();
        override_faults(
            &mut p,
            &FaultsOverride::Hold("pause-external-1".into()),
            Path::new("t.yaml"),
        )
        .expect("the fault exists");
        assert_eq!(p.faults.len(), 1);
        let held = &p.faults[0];
        assert_eq!(held.name.as_deref(), Some("pause-external-1"));
        assert_eq!((held.at_s, held.duration_s), (0.0, Some(12.0)));
        assert!(held.repeat.is_none());
        profile::plan::validate(&p).expect("a held fault still makes a valid plan");
    }

    #[test]
    fn no_faults_clears_the_timeline_and_an_unknown_name_is_refused() {
        let mut p = parsed();
        override_faults(&mut p, &FaultsOverride::None, Path::new("t.yaml")).expect("none");
        assert!(p.faults.is_empty());
        let mut p = parsed();
        let err = override_faults(
            &mut p,
            &FaultsOverride::Hold("cutt".into()),
            Path::new("t.yaml"),
        )
        .expect_err("no such fault");
        assert!(
            err.message
                .contains("no fault named `cutt`; the profile's faults are: cut, pause-external-1"),
            "{err}"
        );
    }
}

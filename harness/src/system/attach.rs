//! A system the harness did not start, brought into a run from its target file: what the
//! profile needs of it is checked before anything is created, then the hops' proxies are
//! created (the gateway hop always, the upstream hops the file names, each on the address
//! the owner's coordinator is configured with).

use super::hops::{self, Embedded, Hops};
use super::target_file::{ProcessAction, TargetFile};
use super::{proxy_server, BringUpError, Endpoints};
use crate::profile::fault_action::FaultAction;
use crate::profile::fault_plan::FaultOccurrence;
use crate::profile::plan::Shard;
use crate::topology::{Hop, ServiceRole};

/// A target with its hops in place. Dropping it stops the embedded proxy server (a
/// `--toxiproxy` server is the user's: the run removes its proxies from it).
pub struct AttachedSystem {
    pub hops: Hops,
    pub embedded: Option<Embedded>,
    pub endpoints: Endpoints,
}

/// What the fault timeline needs of the target and the file does not give, one line each,
/// named as in the file (empty when nothing is missing).
pub fn missing_for_faults(faults: &[FaultOccurrence], target: &TargetFile) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for occurrence in faults {
        let needs: Vec<String> = match &occurrence.action {
            FaultAction::Toxic { hop, .. } | FaultAction::Down { hop } => match hop {
                Hop::Gateway => Vec::new(),
                hop if target.hop(*hop).is_some() => Vec::new(),
                hop => vec![format!("hops.{}", hop.as_str())],
            },
            FaultAction::Kill { service } => commands_missing(
                target,
                *service,
                &[ProcessAction::Kill, ProcessAction::Start],
            ),
            FaultAction::Restart { service } => {
                commands_missing(target, *service, &[ProcessAction::Restart])
            }
            FaultAction::Pause { service } => commands_missing(
                target,
                *service,
                &[ProcessAction::Pause, ProcessAction::Resume],
            ),
            FaultAction::Knobs { service, .. } => {
                if url_of(target, *service).is_some() {
                    Vec::new()
                } else {
                    vec![format!("{} (its URL, for its knobs)", service.as_str())]
                }
            }
            FaultAction::Disk { service, .. } => {
                if url_of(target, *service).is_some() {
                    Vec::new()
                } else {
                    vec![format!("{} (its URL, for /admin/disk)", service.as_str())]
                }
            }
        };
        for need in needs {
            let line = format!("{need}: needed by fault `{}`", occurrence.name);
            if !missing.iter().any(|m| m.starts_with(&format!("{need}:"))) {
                missing.push(line);
            }
        }
    }
    missing
}

fn url_of(target: &TargetFile, role: ServiceRole) -> Option<&str> {
    match role {
        ServiceRole::Coordinator => Some(&target.coordinator),
        ServiceRole::External => target.external.as_deref(),
        ServiceRole::Ledger => target.ledger.as_deref(),
    }
}

fn commands_missing(
    target: &TargetFile,
    role: ServiceRole,
    actions: &[ProcessAction],
) -> Vec<String> {
    let mut missing: Vec<String> = actions
        .iter()
        .filter(|a| target.commands.of(role).get(**a).is_none())
        .map(|a| format!("commands.{}.{}", role.as_str(), a.as_str()))
        .collect();
    if url_of(target, role).is_none() {
        missing.push(format!(
            "{} (its URL, to read its process faults back)",
            role.as_str()
        ));
    }
    missing
}

/// The endpoints of a target whose hops are `hops`.
pub fn endpoints(target: &TargetFile, hops: &Hops) -> Endpoints {
    Endpoints {
        coordinator: target.coordinator.clone(),
        gateway: hops.gateway_url(),
        external: target.external.clone(),
        ledger: target.ledger.clone(),
        books: super::books::BookSources::from(&target.books),
        api: target.compiled_api().map(std::sync::Arc::new),
    }
}

/// Creates the target's hops in the embedded proxy server (or the user's Toxiproxy at
/// `toxiproxy`), each read back: `shard`'s gateway hop, and the upstream hops the file names
/// when the shard owns the faults (the whole run does).
pub async fn attach(
    target: &TargetFile,
    seed: u64,
    toxiproxy: Option<&str>,
    shard: Shard,
) -> Result<AttachedSystem, BringUpError> {
    let (api, embedded) = proxy_server(seed, toxiproxy).await?;
    let mut upstream_hops = [None, None];
    let upstream_roles = if shard.owns_faults() {
        &[Hop::External, Hop::Ledger][..]
    } else {
        &[]
    };
    for (slot, &hop) in upstream_hops.iter_mut().zip(upstream_roles) {
        if let (Some(spec), Some(upstream)) = (target.hop(hop), target.upstream_of(hop)) {
            *slot = Some(hops::create(&api, hop.as_str(), &spec.listen, &upstream).await?);
        }
    }
    let gateway = hops::create(
        &api,
        &hops::proxy_name(Hop::Gateway, shard),
        hops::ANY_LOOPBACK_PORT,
        &target.coordinator,
    )
    .await?;
    let [external, ledger] = upstream_hops;
    let hops = Hops {
        api,
        gateway,
        external,
        ledger,
    };
    Ok(AttachedSystem {
        endpoints: endpoints(target, &hops),
        hops,
        embedded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile;
    use crate::system::target_file;
    use std::path::Path;

    const FAULTS: &str = "faults:
  - {name: hole, kind: toxic, target: external, at_s: 1, duration_s: 1, toxic: timeout, attributes: {timeout: 0}}
  - {name: front, kind: down, target: gateway, at_s: 2, duration_s: 1}
  - {name: crash, kind: kill, target: coordinator, at_s: 3, duration_s: 1}
  - {name: freeze, kind: pause, target: ledger, at_s: 5, duration_s: 1}
";

    fn faults() -> Vec<FaultOccurrence> {
        let text = format!("{}{FAULTS}", profile::TEST_PROFILE_HEAD);
        profile::parse(Path::new("t.yaml"), &text)
            .expect("valid profile")
            .1
            .faults
    }

    #[test]
    fn every_missing_hop_command_and_url_is_named_with_its_fault() {
        let bare = TargetFile::from_urls("http://127.0.0.1:1", None, None);
        let missing = missing_for_faults(&faults(), &bare);
        assert_eq!(
            missing,
            [
                "hops.external: needed by fault `hole`",
                "commands.coordinator.kill: needed by fault `crash`",
                "commands.coordinator.start: needed by fault `crash`",
                "commands.ledger.pause: needed by fault `freeze`",
                "commands.ledger.resume: needed by fault `freeze`",
                "ledger (its URL, to read its process faults back): needed by fault `freeze`",
            ]
        );
    }

    #[test]
    fn a_file_that_gives_everything_misses_nothing() {
        let text = "coordinator: http://127.0.0.1:1
external: http://127.0.0.1:2
ledger: http://127.0.0.1:3
hops:
  external: {listen: 127.0.0.1:4}
commands:
  coordinator: {kill: 'true', start: 'true'}
  ledger: {pause: 'true', resume: 'true'}
";
        let full = target_file::parse(Path::new("f.yaml"), text).expect("valid");
        assert!(missing_for_faults(&faults(), &full).is_empty());
    }
}

//! A profile's `service:` section on a system the harness did not start. Fault knobs (every
//! service's) and the ledger's policy are set through `PUT /admin/knobs` and `PUT
//! /admin/policy` where the service answers them, read back, and put back as they were after
//! the run. The coordinator's other settings are start-up settings the contract has no route
//! for: one counts only when the target file states the coordinator runs with it.
//! Whatever cannot be applied is named: the run refuses the profile, or, with
//! `--ignore-service-settings`, lists it in the summary and both reports.

use super::target_file::TargetFile;
use crate::profile::settings::patches_of;
use crate::profile::ServiceSettings;
use crate::system::knobs::{self, KnobsError};
use crate::topology::ServiceRole;
use serde_json::{Map, Value};
use service::contract::routes;
use service::coordinator::CoordinatorSettings;
use service::knobs::FaultKnobs;
use service::ledger_policy::LedgerPolicy;
use service::settings::{Patch, Settings};

/// What the run changed on the target, to put back, and what it could not apply.
#[derive(Default)]
pub struct SettingsOnTarget {
    restore: Vec<Restore>,
    /// One sentence per setting not applied: `service.<role>.<name>: <value>: <why>`.
    pub not_applied: Vec<String>,
}

enum Restore {
    Knobs { base: String, before: FaultKnobs },
    Policy { base: String, before: LedgerPolicy },
}

/// `service.<role>.<name>: <value>: <why>` for every field of `fields`.
fn refuse_all(role: ServiceRole, fields: &Map<String, Value>, why: &str) -> Vec<String> {
    fields
        .iter()
        .map(|(name, value)| format!("service.{}.{name}: {value}: {why}", role.as_str()))
        .collect()
}

/// Sets `patch` at `{base}{path}` unless it is empty; None when the institution has no such
/// route (404 or 405): the reason, nothing changed.
async fn set_if_answered<T: Settings + std::fmt::Debug>(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    patch: &Patch<T>,
) -> Result<Result<Option<T>, String>, KnobsError> {
    if patch.is_empty() {
        return Ok(Ok(None));
    }
    match knobs::set(http, base, path, patch).await {
        Ok(before) => Ok(Ok(Some(before))),
        Err(KnobsError::Refused { method, status, .. })
            if status == reqwest::StatusCode::NOT_FOUND
                || status == reqwest::StatusCode::METHOD_NOT_ALLOWED =>
        {
            Ok(Err(format!("{method} {base}{path} answered {status}")))
        }
        Err(e) => Err(e),
    }
}

impl SettingsOnTarget {
    /// Applies what it can of `section` to `target`, reading each change back.
    pub async fn apply(
        http: &reqwest::Client,
        section: &ServiceSettings,
        target: &TargetFile,
    ) -> Result<SettingsOnTarget, KnobsError> {
        let mut done = SettingsOnTarget::default();
        // Valid by now: the profile was checked against the same types.
        let (coordinator_knobs, coordinator_settings) =
            Patch::<FaultKnobs>::split::<CoordinatorSettings>(&section.coordinator)
                .unwrap_or_default();
        for (name, value) in coordinator_settings.fields() {
            if target.coordinator_settings.get(name) != Some(value) {
                done.not_applied.push(format!(
                    "service.coordinator.{name}: {value}: no route sets it on a running \
                     coordinator; state it in the target file's coordinator_settings if the \
                     coordinator runs with it"
                ));
            }
        }
        let coordinator_knobs = coordinator_knobs.fields().clone();
        for (role, fields, base) in [
            (
                ServiceRole::Coordinator,
                &coordinator_knobs,
                Some(target.coordinator.as_str()),
            ),
            (
                ServiceRole::External,
                &section.external,
                target.external.as_deref(),
            ),
            (
                ServiceRole::Ledger,
                &section.ledger,
                target.ledger.as_deref(),
            ),
        ] {
            if fields.is_empty() {
                continue;
            }
            let Some(base) = base else {
                let why = format!("the target file gives no {} URL", role.as_str());
                done.not_applied.extend(refuse_all(role, fields, &why));
                continue;
            };
            // Valid by now: the profile was checked against the same types.
            let (knob_patch, policy_patch) = patches_of(role, fields).unwrap_or_default();
            if let Err(e) = done
                .apply_one(http, role, base, knob_patch, policy_patch)
                .await
            {
                done.restore(http).await;
                return Err(e);
            }
        }
        Ok(done)
    }

    async fn apply_one(
        &mut self,
        http: &reqwest::Client,
        role: ServiceRole,
        base: &str,
        knob_patch: Patch<FaultKnobs>,
        policy_patch: Patch<LedgerPolicy>,
    ) -> Result<(), KnobsError> {
        match set_if_answered(http, base, routes::ADMIN_KNOBS, &knob_patch).await? {
            Ok(Some(before)) => self.restore.push(Restore::Knobs {
                base: base.to_owned(),
                before,
            }),
            Ok(None) => {}
            Err(why) => self
                .not_applied
                .extend(refuse_all(role, knob_patch.fields(), &why)),
        }
        match set_if_answered(http, base, routes::ADMIN_POLICY, &policy_patch).await? {
            Ok(Some(before)) => self.restore.push(Restore::Policy {
                base: base.to_owned(),
                before,
            }),
            Ok(None) => {}
            Err(why) => self
                .not_applied
                .extend(refuse_all(role, policy_patch.fields(), &why)),
        }
        Ok(())
    }

    /// Puts back what `apply` changed (last first). A failure is logged: the run is over.
    pub async fn restore(&mut self, http: &reqwest::Client) {
        while let Some(change) = self.restore.pop() {
            let result = match &change {
                Restore::Knobs { base, before } => {
                    knobs::restore(http, base, routes::ADMIN_KNOBS, before).await
                }
                Restore::Policy { base, before } => {
                    knobs::restore(http, base, routes::ADMIN_POLICY, before).await
                }
            };
            if let Err(err) = result {
                tracing::warn!(%err, "could not put a target's setting back");
            }
        }
    }
}

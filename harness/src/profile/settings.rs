//! A profile's `service:` section and a knobs fault's `set:`: each service's settings by the
//! names its flags and admin routes use, any subset of them, with the service's own types
//! and rules (`service::settings`): nothing about a knob is written again here. What a
//! section leaves out keeps the service's default.

use crate::topology::ServiceRole;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use service::coordinator::CoordinatorSettings;
use service::knobs::FaultKnobs;
use service::ledger_policy::LedgerPolicy;
use service::settings::{Patch, SettingError};

/// `service:` in a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// The coordinator's settings: `design`, `deadline_ms`, `max_in_flight`,
    /// `recovery_call_timeout_ms` (`bank-service coordinator --help`), and its fault knobs
    /// (`GET /admin/knobs`), in one map.
    #[serde(default)]
    pub coordinator: Map<String, Value>,
    /// The external institution's fault knobs (`GET /admin/knobs`).
    #[serde(default)]
    pub external: Map<String, Value>,
    /// The ledger's fault knobs and its policy (`GET /admin/knobs`, `GET /admin/policy`),
    /// in one map.
    #[serde(default)]
    pub ledger: Map<String, Value>,
}

/// The settings each service starts with: its defaults, with the profile's section applied.
#[derive(Debug, Clone, PartialEq)]
pub struct StartSettings {
    pub coordinator: CoordinatorSettings,
    pub coordinator_knobs: FaultKnobs,
    pub external_knobs: FaultKnobs,
    pub ledger_knobs: FaultKnobs,
    pub ledger_policy: LedgerPolicy,
}

impl ServiceSettings {
    /// Checks every service's section; an error names its field under `service.`.
    pub fn start_settings(&self) -> Result<StartSettings, SettingError> {
        let (coordinator_knobs, coordinator) =
            Patch::<FaultKnobs>::split::<CoordinatorSettings>(&self.coordinator)
                .and_then(|(knobs, settings)| {
                    Ok((
                        knobs.apply(&FaultKnobs::default())?,
                        settings.apply(&CoordinatorSettings::default())?,
                    ))
                })
                .map_err(|e| e.under("service.coordinator"))?;
        let external_knobs = patches_of(ServiceRole::External, &self.external)
            .and_then(|(knobs, _)| knobs.apply(&FaultKnobs::default()))
            .map_err(|e| e.under("service.external"))?;
        let (knobs, policy) =
            patches_of(ServiceRole::Ledger, &self.ledger).map_err(|e| e.under("service.ledger"))?;
        let ledger_knobs = knobs
            .apply(&FaultKnobs::default())
            .map_err(|e| e.under("service.ledger"))?;
        let ledger_policy = policy
            .apply(&LedgerPolicy::default())
            .map_err(|e| e.under("service.ledger"))?;
        Ok(StartSettings {
            coordinator,
            coordinator_knobs,
            external_knobs,
            ledger_knobs,
            ledger_policy,
        })
    }

    /// The section that starts the services with `settings`, every field written out: what
    /// the results folder keeps as the profile as run.
    pub fn written_out(settings: &StartSettings) -> ServiceSettings {
        let mut ledger = Patch::of_value(&settings.ledger_knobs).fields().clone();
        ledger.extend(Patch::of_value(&settings.ledger_policy).fields().clone());
        let mut coordinator = Patch::of_value(&settings.coordinator).fields().clone();
        coordinator.extend(
            Patch::of_value(&settings.coordinator_knobs)
                .fields()
                .clone(),
        );
        ServiceSettings {
            coordinator,
            external: Patch::of_value(&settings.external_knobs).fields().clone(),
            ledger,
        }
    }
}

/// `fields` of `role`'s knobs fault as a patch of its fault knobs and one of its policy (the
/// ledger's alone has a policy), each checked against the service's defaults. The
/// coordinator's settings other than its knobs are fixed at start, so they are not here.
pub fn patches_of(
    role: ServiceRole,
    fields: &Map<String, Value>,
) -> Result<(Patch<FaultKnobs>, Patch<LedgerPolicy>), SettingError> {
    let (knobs, policy) = match role {
        ServiceRole::Ledger => Patch::<FaultKnobs>::split::<LedgerPolicy>(fields)?,
        ServiceRole::External | ServiceRole::Coordinator => {
            (Patch::new(fields.clone()), Patch::default())
        }
    };
    knobs.apply(&FaultKnobs::default())?;
    policy.apply(&LedgerPolicy::default())?;
    Ok((knobs, policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(yaml: &str) -> Map<String, Value> {
        serde_yaml::from_str(yaml).expect("a YAML map")
    }

    #[test]
    fn a_section_starts_from_the_service_defaults() {
        let section = ServiceSettings {
            coordinator: map("deadline_ms: 90"),
            external: Map::new(),
            ledger: map("error_after_rate: 0.2\nantifraud_refusal_rate: 0.1"),
        };
        let start = section.start_settings().expect("valid");
        assert_eq!(start.coordinator.deadline_ms, 90);
        assert_eq!(
            start.coordinator.max_in_flight,
            CoordinatorSettings::default().max_in_flight
        );
        assert_eq!(start.external_knobs, FaultKnobs::default());
        assert_eq!(start.ledger_knobs.error_after_rate, 0.2);
        assert_eq!(start.ledger_policy.antifraud_refusal_rate, 0.1);
        let again = ServiceSettings::written_out(&start)
            .start_settings()
            .expect("valid");
        assert_eq!(
            again, start,
            "the written-out section starts the same services"
        );
    }

    #[test]
    fn errors_name_the_field_under_its_service() {
        let typo = ServiceSettings {
            ledger: map("antifraud_refusal: 0.1"),
            ..ServiceSettings::default()
        };
        let err = typo.start_settings().expect_err("a typo");
        assert_eq!(err.field(), "service.ledger.antifraud_refusal");
        let range = ServiceSettings {
            external: map("error_before_rate: 2"),
            ..ServiceSettings::default()
        };
        let err = range.start_settings().expect_err("out of range");
        assert_eq!(err.field(), "service.external.error_before_rate");
        assert!(err.message().contains("between 0 and 1"), "{err}");
        let policy_on_external =
            patches_of(ServiceRole::External, &map("antifraud_refusal_rate: 0.1"));
        assert!(
            policy_on_external.is_err(),
            "the external side has no policy"
        );
    }
}

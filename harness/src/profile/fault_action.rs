//! What one fault of a profile does: its kind's fields checked (a toxic's type, stream,
//! toxicity and attributes; a knobs fault's settings; the hop or service it targets) into the
//! `FaultAction` that applying it performs, and the resource it holds while it lasts. When it
//! happens is `fault_plan`'s.

use super::fault_spec::{FaultKind, FaultSpec};
use super::locate::{err, FieldError};
use crate::proxy::toxic::{attribute_names, Stream, ToxicBody};
use crate::topology::{Hop, ServiceRole};
use serde_json::{Map, Value};
use service::disk_fault::DiskState;
use service::knobs::FaultKnobs;
use service::ledger_policy::LedgerPolicy;
use service::settings::Patch;
use std::collections::BTreeMap;

/// What applying a fault does (healing undoes it).
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Add the toxic (named for the occurrence); remove it to heal.
    Toxic {
        hop: Hop,
        toxic: ToxicBody,
    },
    Down {
        hop: Hop,
    },
    Kill {
        service: ServiceRole,
    },
    Pause {
        service: ServiceRole,
    },
    Restart {
        service: ServiceRole,
    },
    /// `PUT /admin/knobs` and (ledger) `PUT /admin/policy` patches.
    Knobs {
        service: ServiceRole,
        knobs: Patch<FaultKnobs>,
        policy: Patch<LedgerPolicy>,
    },
    /// `PUT /admin/disk`: the service's store fails its commits as `disk` says.
    Disk {
        service: ServiceRole,
        disk: DiskState,
    },
}

fn hop_named(field: String, name: &str) -> Result<Hop, FieldError> {
    Hop::from_name(name).map_or_else(
        || {
            err(
                field,
                format!("`{name}` is not a proxy; use gateway, external or ledger"),
            )
        },
        Ok,
    )
}

fn service_named(field: String, name: &str) -> Result<ServiceRole, FieldError> {
    ServiceRole::from_name(name).map_or_else(
        || {
            err(
                field,
                format!("`{name}` is not a service; use coordinator, external or ledger"),
            )
        },
        Ok,
    )
}

/// Fields that belong to one kind only must not appear on another.
pub(super) fn check_fields_of_kind(
    at: &dyn Fn(&str) -> String,
    f: &FaultSpec,
) -> Result<(), FieldError> {
    let toxic_only = [
        ("toxic", f.toxic.is_some()),
        ("stream", f.stream.is_some()),
        ("toxicity", f.toxicity.is_some()),
        ("attributes", !f.attributes.is_empty()),
    ];
    for (field, given) in toxic_only {
        if given && f.kind != FaultKind::Toxic {
            return err(at(field), "only a fault of kind toxic takes this field");
        }
    }
    if f.set.is_some() && f.kind != FaultKind::Knobs {
        return err(at("set"), "only a fault of kind knobs takes this field");
    }
    if f.disk.is_some() && f.kind != FaultKind::Disk {
        return err(at("disk"), "only a fault of kind disk takes this field");
    }
    Ok(())
}

/// The toxic's attributes, each one its type takes, none negative.
fn toxic_attributes(
    at: &dyn Fn(&str) -> String,
    kind: &str,
    names: &[&str],
    attributes: &BTreeMap<String, i64>,
) -> Result<BTreeMap<String, i64>, FieldError> {
    for (attribute, value) in attributes {
        if !names.contains(&attribute.as_str()) {
            return err(
                at(&format!("attributes.{attribute}")),
                format!(
                    "{kind} has no attribute `{attribute}`; it takes {}",
                    names.join(", ")
                ),
            );
        }
        if *value < 0 {
            return err(
                at(&format!("attributes.{attribute}")),
                format!("must not be negative, got {value}"),
            );
        }
    }
    if kind == "bandwidth" && attributes.get("rate").copied().unwrap_or(0) == 0 {
        return err(
            at("attributes.rate"),
            "bandwidth needs a rate above 0 (KB/s)",
        );
    }
    Ok(attributes.clone())
}

/// The toxic a fault adds (each occurrence names it after itself).
fn toxic_action(
    at: &dyn Fn(&str) -> String,
    f: &FaultSpec,
    hop: Hop,
) -> Result<(FaultAction, String), FieldError> {
    let Some(kind) = &f.toxic else {
        return err(
            at("toxic"),
            "a toxic fault names its type: latency, bandwidth, slow_close, timeout, reset_peer, slicer or limit_data",
        );
    };
    let names = match attribute_names(kind) {
        Some(names) if kind != "noop" => names,
        _ => {
            return err(
                at("toxic"),
                format!("`{kind}` is not a toxic; use latency, bandwidth, slow_close, timeout, reset_peer, slicer or limit_data"),
            )
        }
    };
    let stream = match f.stream.as_deref() {
        None | Some("downstream") => Stream::Downstream,
        Some("upstream") => Stream::Upstream,
        Some(_) => return err(at("stream"), "must be upstream or downstream"),
    };
    let toxicity = f.toxicity.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&toxicity) {
        return err(
            at("toxicity"),
            format!("must be between 0 and 1, got {toxicity}"),
        );
    }
    let attributes = toxic_attributes(at, kind, names, &f.attributes)?;
    let shown: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let detail = format!(
        "{kind} on {} ({}), toxicity {toxicity}",
        stream.as_str(),
        if shown.is_empty() {
            "defaults".to_owned()
        } else {
            shown.join(" ")
        }
    );
    let toxic = ToxicBody {
        name: String::new(),
        kind: kind.clone(),
        stream,
        toxicity,
        attributes,
    };
    Ok((FaultAction::Toxic { hop, toxic }, detail))
}

fn knobs_action(
    at: &dyn Fn(&str) -> String,
    change: Option<&Map<String, Value>>,
    service: ServiceRole,
) -> Result<(FaultAction, String), FieldError> {
    let Some(change) = change else {
        return err(at("set"), "a knobs fault says what to set");
    };
    let (knobs, policy) = super::settings::patches_of(service, change)
        .map_err(|e| (at(&format!("set.{}", e.field())), e.message()))?;
    if knobs.is_empty() && policy.is_empty() {
        return err(at("set"), "sets nothing");
    }
    let shown: Vec<String> = knobs
        .fields()
        .iter()
        .chain(policy.fields().iter())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Ok((
        FaultAction::Knobs {
            service,
            knobs,
            policy,
        },
        shown.join(" "),
    ))
}

/// The resource an occurrence holds while it lasts; two occurrences holding one must not
/// overlap (a toxic holds nothing: toxics stack).
pub(super) fn resource(action: &FaultAction) -> Option<String> {
    match action {
        FaultAction::Toxic { .. } => None,
        FaultAction::Down { hop } => Some(format!("proxy {}", hop.as_str())),
        FaultAction::Kill { service }
        | FaultAction::Pause { service }
        | FaultAction::Restart { service } => Some(format!("process {}", service.as_str())),
        FaultAction::Knobs { service, .. } => Some(format!("knobs of {}", service.as_str())),
        FaultAction::Disk { service, .. } => Some(format!("disk of {}", service.as_str())),
    }
}

/// The fault's action and its description, from its kind and target.
pub(super) fn action_of(
    at: &dyn Fn(&str) -> String,
    f: &FaultSpec,
) -> Result<(FaultAction, String), FieldError> {
    let service = || service_named(at("target"), &f.target);
    Ok(match f.kind {
        FaultKind::Toxic => toxic_action(at, f, hop_named(at("target"), &f.target)?)?,
        FaultKind::Down => (
            FaultAction::Down {
                hop: hop_named(at("target"), &f.target)?,
            },
            "proxy disabled: connections refused, open ones closed".to_owned(),
        ),
        FaultKind::Kill => (
            FaultAction::Kill {
                service: service()?,
            },
            "SIGKILL; started again on the same port and data files at the end".to_owned(),
        ),
        FaultKind::Pause => (
            FaultAction::Pause {
                service: service()?,
            },
            "SIGSTOP; SIGCONT at the end".to_owned(),
        ),
        FaultKind::Restart => (
            FaultAction::Restart {
                service: service()?,
            },
            "SIGTERM (graceful stop); started again at the end".to_owned(),
        ),
        FaultKind::Knobs => knobs_action(at, f.set.as_ref(), service()?)?,
        FaultKind::Disk => {
            let disk = f.disk.unwrap_or(DiskState::Full);
            if disk == DiskState::Ok {
                return err(at("disk"), "a disk fault is full or read_only");
            }
            let detail = match disk {
                DiskState::ReadOnly => "read-only disk",
                _ => "full disk",
            };
            (
                FaultAction::Disk {
                    service: service()?,
                    disk,
                },
                format!("{detail}: every commit of its store fails (injected at the commit) and is rolled back; healthy again at the end"),
            )
        }
    })
}

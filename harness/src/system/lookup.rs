//! What became of one transfer, asked of the coordinator after the fact: the contract's
//! `GET /transfers/{id}`, or the mapped API's `status` request, by the id or by the key,
//! sorted by its own rules. Convergence and the resolution of indeterminate answers ask
//! through it.

use super::admin::AdminClient;
use super::Endpoints;
use crate::history::HistoryRecord;
use crate::mapping::outcome::MappedOutcome;
use crate::mapping::template::{decimal, var, Vars};
use crate::mapping::CompiledApi;
use service::contract::ClientStatus;
use std::sync::Arc;

/// What a lookup found of a transfer the system knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Looked {
    pub status: ClientStatus,
    /// The system's id for it, when the answer gives one.
    pub transfer_id: Option<String>,
}

#[derive(Clone)]
pub struct TransferLookup {
    admin: AdminClient,
    pub coordinator: String,
    api: Option<Arc<CompiledApi>>,
}

impl TransferLookup {
    pub fn new(admin: &AdminClient, endpoints: &Endpoints) -> TransferLookup {
        TransferLookup {
            admin: admin.clone(),
            coordinator: endpoints.coordinator.clone(),
            api: endpoints.api.clone(),
        }
    }

    /// Whether a transfer can be looked up with no id: the mapped lookup goes by the key.
    pub fn by_key(&self) -> bool {
        self.api.as_ref().is_some_and(|api| {
            api.status.as_ref().is_some_and(|(request, _)| {
                request.uses(var::IDEMPOTENCY_KEY) && !request.uses(var::TRANSFER_ID)
            })
        })
    }

    /// The transfer `record` asked for, known by `id` when one is: Ok(None) when the system
    /// does not know it; Err when the lookup could not be made or answered nothing usable.
    pub async fn look(
        &self,
        record: &HistoryRecord,
        id: Option<&str>,
    ) -> Result<Option<Looked>, String> {
        let Some(api) = &self.api else {
            let id = id.ok_or("no transfer id to ask about")?;
            let view = self
                .admin
                .transfer(&self.coordinator, id)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(view.map(|v| Looked {
                status: v.status,
                transfer_id: Some(v.transfer_id.to_string()),
            }));
        };
        let (template, rules) = api
            .status
            .as_ref()
            .ok_or("the api: section has no status lookup")?;
        if template.uses(var::TRANSFER_ID) && id.is_none() {
            return Err("no transfer id to ask about".into());
        }
        let mut vars = Vars::default()
            .with(var::USER_ID, record.user_id.as_str())
            .with(
                var::EXTERNAL_ACCOUNT_ID,
                record.external_account_id.as_str(),
            )
            .with(var::AMOUNT_CENTS, record.amount_cents)
            .with(
                var::AMOUNT,
                decimal(record.amount_cents, api.currency_exponent),
            )
            .with(var::CURRENCY, api.currency.as_str())
            .with(var::IDEMPOTENCY_KEY, record.key.as_str())
            .with(var::REQUEST_N, record.op);
        if let Some(id) = id {
            vars = vars.with(var::TRANSFER_ID, id);
        }
        let rendered = template.render(&vars)?;
        let (status, body) = self
            .admin
            .exchange(&self.coordinator, rendered)
            .await
            .map_err(|e| e.to_string())?;
        let sorted = rules.sort(status, &body);
        let status = match sorted.outcome {
            Some(MappedOutcome::Succeeded) => ClientStatus::Completed,
            Some(MappedOutcome::Failed) => ClientStatus::Failed,
            Some(MappedOutcome::Pending) => ClientStatus::Pending,
            Some(MappedOutcome::NotFound) => return Ok(None),
            Some(other) => {
                return Err(format!(
                    "the status lookup answered {status}, `{}`",
                    other.as_str()
                ))
            }
            None => {
                return Err(format!(
                    "the status lookup's answer {status} matches no rule"
                ))
            }
        };
        Ok(Some(Looked {
            status,
            transfer_id: sorted.transfer_id.or_else(|| id.map(str::to_owned)),
        }))
    }
}

//! A system that does not speak `docs/contract.md`, described as it is: the `api:` and
//! `books:` sections of a target file. Parsed with the target file (strictly: an unknown
//! field is an error naming its file, line and field) and compiled here, once, before
//! anything starts: a template that names an unknown variable, a pointer that is not RFC 6901
//! or a rule that cannot match is an error of the file.
//!
//! - `template`: requests as templates (`{{ amount }}`), rendered per request;
//! - `outcome`: the ordered rules that turn an answer into an outcome;
//! - `books`: where each institution's books are read when it has no `/admin/dump`;
//! - `users`: how the run's users come to exist (HTTP, SQL, or a CSV file of existing ones);
//! - `first_answers`: the rules judged on a run's first answers, where only answers can.
//!
//! `docs/your-own-system.md` documents every field.

pub mod books;
pub mod first_answers;
pub mod outcome;
pub mod template;
pub mod users;

use crate::profile::locate::{err, FieldError};
use outcome::{MappedOutcome, OutcomeRule, Rules};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use template::{RequestTemplate, Scope};
use users::{UserSource, UsersSpec};

/// `api:`: the coordinator's own API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiMapping {
    /// The `currency` variable (an ISO 4217 code as the API wants it).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// How many minor units a major unit has, as a power of ten: `amount` is
    /// `amount_cents / 10^currency_exponent` written as a decimal string.
    #[serde(default = "default_currency_exponent")]
    pub currency_exponent: u8,
    /// The request that asks for a transfer.
    pub submit: RequestSpec,
    /// The ordered rules that sort its answers; the first that matches decides.
    pub outcome: Vec<OutcomeRule>,
    /// A JSON Pointer to the system's own id for the transfer in an answer, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// The request that looks a transfer up after the fact, by key or by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusSpec>,
    /// How the run's users come to exist.
    #[serde(default)]
    pub users: UsersSpec,
}

fn default_currency() -> String {
    "USD".into()
}

fn default_currency_exponent() -> u8 {
    2
}

/// The largest `currency_exponent`: 10^18 still fits the amount's 64 bits.
pub const MAX_CURRENCY_EXPONENT: u8 = 18;

/// One HTTP request, as templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// `POST` unless said (a status lookup: `GET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The path and query under the coordinator's URL, a template (`/v1/payments/{{ transfer_id }}`).
    pub path: String,
    /// Headers, each value a template (`Idempotency-Key: "{{ idempotency_key }}"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The JSON body as a YAML tree whose string leaves may be templates; a leaf that is one
    /// placeholder alone keeps its variable's JSON type (an amount stays a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// `api.status`: the lookup of one transfer, with its own rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Rules as for a submission; `not_found` says the system does not know the transfer.
    pub outcome: Vec<OutcomeRule>,
    /// A pointer to the transfer's id in the answer (by default `api.transfer_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
}

impl StatusSpec {
    fn request(&self) -> RequestSpec {
        RequestSpec {
            method: self.method.clone(),
            path: self.path.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }
}

/// The mapping compiled: every template parsed and checked against the variables its
/// request has, every pointer and rule checked.
#[derive(Debug, Clone)]
pub struct CompiledApi {
    pub currency: String,
    pub currency_exponent: u8,
    pub submit: RequestTemplate,
    pub submit_rules: Rules,
    pub status: Option<(RequestTemplate, Rules)>,
    pub users: Option<UserSource>,
}

impl ApiMapping {
    /// Compiles the mapping; an error names the field under `api.`.
    pub fn compile(&self) -> Result<CompiledApi, FieldError> {
        if self.currency.trim().is_empty() {
            return err("api.currency".into(), "is empty");
        }
        if self.currency_exponent > MAX_CURRENCY_EXPONENT {
            return err(
                "api.currency_exponent".into(),
                format!("must be between 0 and {MAX_CURRENCY_EXPONENT}"),
            );
        }
        let submit = RequestTemplate::compile("api.submit", &self.submit, "POST", Scope::Submit)?;
        let submit_rules = Rules::compile(
            "api.outcome",
            &self.outcome,
            self.transfer_id.as_deref(),
            "api.transfer_id",
            false,
        )?;
        if !submit.uses(template::var::IDEMPOTENCY_KEY) {
            return err(
                "api.submit".into(),
                "the idempotency key travels nowhere: name {{ idempotency_key }} in a header, \
                 the path or the body",
            );
        }
        let status = match &self.status {
            None => None,
            Some(spec) => {
                let request =
                    RequestTemplate::compile("api.status", &spec.request(), "GET", Scope::Status)?;
                let (pointer, field) = match &spec.transfer_id {
                    Some(p) => (Some(p.as_str()), "api.status.transfer_id"),
                    None => (self.transfer_id.as_deref(), "api.transfer_id"),
                };
                let rules =
                    Rules::compile("api.status.outcome", &spec.outcome, pointer, field, true)?;
                if !rules.decides(MappedOutcome::Succeeded) {
                    return err(
                        "api.status.outcome".into(),
                        "no rule answers `succeeded`: a lookup could never settle a transfer",
                    );
                }
                Some((request, rules))
            }
        };
        let users = self.users.compile()?;
        Ok(CompiledApi {
            currency: self.currency.clone(),
            currency_exponent: self.currency_exponent,
            submit,
            submit_rules,
            status,
            users,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(exponent: u8) -> ApiMapping {
        let text = format!(
            "currency_exponent: {exponent}\nsubmit: {{path: /p, headers: {{K: '{{{{ idempotency_key }}}}'}}}}\noutcome: [{{status: 201, outcome: succeeded}}]\n"
        );
        serde_yaml::from_str(&text).expect("a mapping")
    }

    #[test]
    fn the_currency_exponent_takes_its_ceiling_and_refuses_one_past() {
        assert!(mapping(MAX_CURRENCY_EXPONENT).compile().is_ok());
        let refused = mapping(MAX_CURRENCY_EXPONENT + 1)
            .compile()
            .expect_err("19");
        assert_eq!(refused.0, "api.currency_exponent");
    }

    #[test]
    fn a_submission_that_carries_no_key_is_refused() {
        let text = "submit: {path: /p}\noutcome: [{status: 201, outcome: succeeded}]\n";
        let api: ApiMapping = serde_yaml::from_str(text).expect("a mapping");
        assert_eq!(api.compile().expect_err("no key").0, "api.submit");
    }
}

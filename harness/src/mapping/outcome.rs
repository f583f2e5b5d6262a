//! The ordered rules that sort an answer of the mapped API: by HTTP status, and optionally
//! by the value a JSON Pointer (RFC 6901, `serde_json`'s own) finds in the body. The first
//! rule that matches decides; an answer no rule matches is left unmapped, which the client
//! counts as an error of kind `unmapped` and never as a success.

use crate::profile::locate::{err, FieldError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an answer means, as the mapping names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappedOutcome {
    /// The money moved: both sides hold the transfer.
    Succeeded,
    /// It did not, and never will: neither side holds any effect.
    Failed,
    /// Not known yet; the system promises to finish it.
    Pending,
    /// Refused before any effect (overload); safe to retry.
    Shed,
    /// Refused as a bad request (a key reused with another payload, validation): no effect.
    Rejected,
    /// Status lookups only: the system does not know the transfer.
    NotFound,
}

impl MappedOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            MappedOutcome::Succeeded => "succeeded",
            MappedOutcome::Failed => "failed",
            MappedOutcome::Pending => "pending",
            MappedOutcome::Shed => "shed",
            MappedOutcome::Rejected => "rejected",
            MappedOutcome::NotFound => "not_found",
        }
    }
}

/// Which statuses a rule takes: one (`201`), a list (`[200, 201]`) or a class (`4xx`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StatusMatch {
    One(u16),
    Many(Vec<u16>),
    Class(String),
}

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRule {
    pub status: StatusMatch,
    /// A JSON Pointer into the answer's body; alone, the rule needs the value to be there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The value the pointer must find (`equals: settled`), compared as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    pub outcome: MappedOutcome,
}

#[derive(Debug, Clone)]
enum Statuses {
    Listed(Vec<u16>),
    /// `4xx`: the hundreds digit.
    Class(u16),
}

#[derive(Debug, Clone)]
struct Rule {
    statuses: Statuses,
    pointer: Option<String>,
    equals: Option<Value>,
    outcome: MappedOutcome,
}

impl Rule {
    fn takes(&self, status: u16) -> bool {
        match &self.statuses {
            Statuses::Listed(list) => list.contains(&status),
            Statuses::Class(hundreds) => status / 100 == *hundreds,
        }
    }
}

/// The rules of one request, compiled, with the pointer to the system's id.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    transfer_id: Option<String>,
    /// Whether any rule or the id needs the body parsed.
    reads_body: bool,
}

/// What the rules made of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Sorted {
    /// None: no rule matched (`unmapped`).
    pub outcome: Option<MappedOutcome>,
    /// The system's id for the transfer, when the answer gives one where the pointer says.
    pub transfer_id: Option<String>,
}

/// Checks `pointer` is a JSON Pointer (RFC 6901): empty, or `/` segments whose `~` is `~0`
/// or `~1`.
pub fn check_pointer(field: &str, pointer: &str) -> Result<(), FieldError> {
    if pointer.is_empty() {
        return Ok(());
    }
    if !pointer.starts_with('/') {
        return err(
            field.to_owned(),
            format!("`{pointer}` is not a JSON Pointer: it starts with / (like /payment/id)"),
        );
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return err(
                field.to_owned(),
                format!(
                    "`{pointer}` is not a JSON Pointer: `~` is written `~0`, `/` in a name `~1`"
                ),
            );
        }
    }
    Ok(())
}

impl Rules {
    /// Compiles `rules` (named `field[i]`), with `transfer_id` (named `id_field`);
    /// `not_found` is allowed in a status lookup's rules only.
    pub fn compile(
        field: &str,
        rules: &[OutcomeRule],
        transfer_id: Option<&str>,
        id_field: &str,
        lookup: bool,
    ) -> Result<Rules, FieldError> {
        if rules.is_empty() {
            return err(field.to_owned(), "no rules: every answer would be unmapped");
        }
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let statuses = match &rule.status {
                StatusMatch::One(s) => Statuses::Listed(vec![*s]),
                StatusMatch::Many(list) if !list.is_empty() => Statuses::Listed(list.clone()),
                StatusMatch::Many(_) => {
                    return err(format!("{at}.status"), "an empty list matches nothing")
                }
                StatusMatch::Class(class) => match class.as_bytes() {
                    [d @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => {
                        Statuses::Class(u16::from(d - b'0'))
                    }
                    _ => {
                        return err(
                            format!("{at}.status"),
                            format!(
                                "`{class}` is not a status, a list of them or a class like 4xx"
                            ),
                        )
                    }
                },
            };
            if let Statuses::Listed(list) = &statuses {
                if let Some(bad) = list.iter().find(|s| !(100..=599).contains(*s)) {
                    return err(
                        format!("{at}.status"),
                        format!("{bad} is not an HTTP status"),
                    );
                }
            }
            if let Some(pointer) = &rule.pointer {
                check_pointer(&format!("{at}.pointer"), pointer)?;
            } else if rule.equals.is_some() {
                return err(
                    format!("{at}.equals"),
                    "needs a pointer: the value it is compared with",
                );
            }
            if rule.outcome == MappedOutcome::NotFound && !lookup {
                return err(
                    format!("{at}.outcome"),
                    "`not_found` belongs to a status lookup's rules",
                );
            }
            compiled.push(Rule {
                statuses,
                pointer: rule.pointer.clone(),
                equals: rule.equals.clone(),
                outcome: rule.outcome,
            });
        }
        if let Some(pointer) = transfer_id {
            check_pointer(id_field, pointer)?;
        }
        let reads_body = transfer_id.is_some() || compiled.iter().any(|r| r.pointer.is_some());
        Ok(Rules {
            rules: compiled,
            transfer_id: transfer_id.map(str::to_owned),
            reads_body,
        })
    }

    /// Whether some rule answers `outcome`.
    pub fn decides(&self, outcome: MappedOutcome) -> bool {
        self.rules.iter().any(|r| r.outcome == outcome)
    }

    /// The pointers of the rules and the id, for checks of live answers.
    pub fn transfer_id_pointer(&self) -> Option<&str> {
        self.transfer_id.as_deref()
    }

    /// Sorts one answer.
    pub fn sort(&self, status: u16, body: &[u8]) -> Sorted {
        let parsed: Option<Value> = match self.reads_body {
            true => serde_json::from_slice(body).ok(),
            false => None,
        };
        let found = |pointer: &str| parsed.as_ref().and_then(|v| v.pointer(pointer));
        let outcome = self
            .rules
            .iter()
            .find(|rule| {
                rule.takes(status)
                    && match (&rule.pointer, &rule.equals) {
                        (None, _) => true,
                        (Some(p), None) => found(p).is_some_and(|v| !v.is_null()),
                        (Some(p), Some(expected)) => found(p) == Some(expected),
                    }
            })
            .map(|rule| rule.outcome);
        let transfer_id = self
            .transfer_id
            .as_deref()
            .and_then(found)
            .and_then(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        Sorted {
            outcome,
            transfer_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str, id: Option<&str>) -> Result<Rules, FieldError> {
        let written: Vec<OutcomeRule> = serde_yaml::from_str(yaml).expect("rules");
        Rules::compile("api.outcome", &written, id, "api.transfer_id", false)
    }

    #[test]
    fn the_first_matching_rule_decides_and_the_id_is_found() {
        let sorted = rules(
            "- {status: 201, outcome: succeeded}\n\
             - {status: 202, pointer: /payment/state, equals: declined, outcome: failed}\n\
             - {status: 202, outcome: pending}\n\
             - {status: [409, 400], outcome: rejected}\n\
             - {status: 422, pointer: /error/code, outcome: failed}\n\
             - {status: 5xx, outcome: shed}\n",
            Some("/payment/id"),
        )
        .expect("compiles");
        let body = br#"{"payment": {"id": "pay_1", "state": "declined"}}"#;
        assert_eq!(
            sorted.sort(201, body).outcome,
            Some(MappedOutcome::Succeeded)
        );
        assert_eq!(sorted.sort(201, body).transfer_id.as_deref(), Some("pay_1"));
        assert_eq!(sorted.sort(202, body).outcome, Some(MappedOutcome::Failed));
        let processing = br#"{"payment": {"id": 17, "state": "processing"}}"#;
        assert_eq!(
            sorted.sort(202, processing).outcome,
            Some(MappedOutcome::Pending)
        );
        assert_eq!(
            sorted.sort(202, processing).transfer_id.as_deref(),
            Some("17")
        );
        assert_eq!(
            sorted.sort(400, b"not json").outcome,
            Some(MappedOutcome::Rejected)
        );
        // A pointer with nothing behind it does not match: 422 with no code is unmapped.
        assert_eq!(sorted.sort(422, b"{}").outcome, None);
        assert_eq!(sorted.sort(503, b"").outcome, Some(MappedOutcome::Shed));
        assert_eq!(sorted.sort(200, body).outcome, None, "200 is no rule's");
    }

    #[test]
    fn bad_rules_and_pointers_name_their_field() {
        let cases = [
            (
                "- {status: 201, pointer: payment/id, outcome: succeeded}\n",
                None,
                "api.outcome[0].pointer",
            ),
            (
                "- {status: 201, pointer: /a~2b, outcome: succeeded}\n",
                None,
                "api.outcome[0].pointer",
            ),
            (
                "- {status: 201, outcome: succeeded}\n- {status: 6xx, outcome: failed}\n",
                None,
                "api.outcome[1].status",
            ),
            (
                "- {status: 700, outcome: failed}\n",
                None,
                "api.outcome[0].status",
            ),
            (
                "- {status: [], outcome: failed}\n",
                None,
                "api.outcome[0].status",
            ),
            (
                "- {status: 201, equals: x, outcome: failed}\n",
                None,
                "api.outcome[0].equals",
            ),
            (
                "- {status: 404, outcome: not_found}\n",
                None,
                "api.outcome[0].outcome",
            ),
            ("[]\n", None, "api.outcome"),
            (
                "- {status: 201, outcome: succeeded}\n",
                Some("id"),
                "api.transfer_id",
            ),
        ];
        for (yaml, id, field) in cases {
            let error = rules(yaml, id).expect_err(yaml);
            assert_eq!(error.0, field, "{yaml}: {}", error.1);
        }
    }
}

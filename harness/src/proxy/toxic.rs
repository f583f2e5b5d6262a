//! Toxics as Toxiproxy 2.x defines them: JSON shape, defaults and validation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Which direction a toxic acts on: `upstream` (client → server) or `downstream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Upstream,
    Downstream,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

/// A toxic's behaviour with its attributes (Toxiproxy's integer JSON fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Delay every chunk by `latency` ± rand(`jitter`) ms.
    Latency {
        latency_ms: i64,
        jitter_ms: i64,
    },
    /// Limit the rate to `rate` KB/s (1 KB = 1000 bytes).
    Bandwidth {
        rate_kb_s: i64,
    },
    /// Delay the close of the socket by `delay` ms.
    SlowClose {
        delay_ms: i64,
    },
    /// Drop all data; close the connection after `timeout` ms (0: never).
    Timeout {
        timeout_ms: i64,
    },
    /// Reset the connection (TCP RST) `timeout` ms after the first data.
    ResetPeer {
        timeout_ms: i64,
    },
    /// Split data into chunks of `average_size` ± `size_variation` bytes, `delay` µs apart.
    Slicer {
        average_size: i64,
        size_variation: i64,
        delay_us: i64,
    },
    /// Close the connection once `bytes` have passed in this direction.
    LimitData {
        bytes: i64,
    },
    Noop,
}

/// The attribute names of each type, in the order Toxiproxy reports them.
pub fn attribute_names(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "latency" => &["latency", "jitter"],
        "bandwidth" => &["rate"],
        "slow_close" => &["delay"],
        "timeout" => &["timeout"],
        "reset_peer" => &["timeout"],
        "slicer" => &["average_size", "size_variation", "delay"],
        "limit_data" => &["bytes"],
        "noop" => &[],
        _ => return None,
    })
}

/// A toxic's JSON, as Toxiproxy's API lists it and as a client creates one: what the
/// harness sends to the embedded server or a real Toxiproxy, and what the server answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToxicBody {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub stream: Stream,
    /// Probability (0..=1) that the toxic applies to a new connection.
    pub toxicity: f64,
    /// Attribute values by name (integers, as Toxiproxy names them).
    pub attributes: BTreeMap<String, i64>,
}

/// A toxic as the API holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    pub name: String,
    pub kind_name: String,
    pub stream: Stream,
    /// Probability (0..=1) that the toxic applies to a new connection.
    pub toxicity: f64,
    /// Attribute values by name (integers).
    pub attributes: Map<String, Value>,
}

/// Errors a toxic body can have, with Toxiproxy's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToxicError {
    BadBody(String),
    InvalidType,
    InvalidStream,
    /// A toxic of that name is on the proxy already.
    Exists,
}

/// Go's words for a JSON value of the wrong type in field `field` of `go_type`.
fn wrong_type(value: &Value, field: &str, go_type: &str) -> ToxicError {
    ToxicError::BadBody(format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        json_type(value)
    ))
}

/// The string in `field` of `object`: `None` when absent or null (Go leaves its default).
fn text_field<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, ToxicError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(
            other,
            &format!("ToxicWrapper.{field}"),
            "string",
        )),
    }
}

/// The toxicity in `object`: `None` when absent or null.
fn toxicity_field(object: &Map<String, Value>) -> Result<Option<f64>, ToxicError> {
    match object.get("toxicity") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| wrong_type(v, "ToxicWrapper.toxicity", "float32")),
    }
}

impl Toxic {
    /// Builds a toxic from a `POST /proxies/{p}/toxics` body as Toxiproxy 2.8.0 does
    /// (`AddToxicJson`), checked in its order: the body's shape, the stream, the type, the
    /// name (`taken` says whether the proxy has it), then the attributes. Absent or null
    /// fields take Toxiproxy's defaults: stream `downstream`, toxicity 1, every attribute 0,
    /// and the name `<type>_<stream>` when absent or empty.
    pub fn from_create(body: &Value, taken: impl Fn(&str) -> bool) -> Result<Toxic, ToxicError> {
        let object = body.as_object().ok_or_else(|| {
            ToxicError::BadBody(format!(
                "json: cannot unmarshal {} into Go value of type toxics.ToxicWrapper",
                json_type(body)
            ))
        })?;
        let kind_name = text_field(object, "type")?.unwrap_or_default().to_owned();
        let given_name = text_field(object, "name")?.unwrap_or_default();
        let stream_text = text_field(object, "stream")?.unwrap_or("downstream");
        let toxicity = toxicity_field(object)?.unwrap_or(1.0);
        match object.get("attributes") {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(other) => {
                return Err(wrong_type(
                    other,
                    "ToxicWrapper.attributes",
                    "toxics.NoopToxic",
                ))
            }
        }
        let stream = match stream_text.to_ascii_lowercase().as_str() {
            "upstream" => Stream::Upstream,
            "downstream" => Stream::Downstream,
            _ => return Err(ToxicError::InvalidStream),
        };
        let name = if given_name.is_empty() {
            format!("{kind_name}_{stream_text}")
        } else {
            given_name.to_owned()
        };
        let names = attribute_names(&kind_name).ok_or(ToxicError::InvalidType)?;
        if taken(&name) {
            return Err(ToxicError::Exists);
        }
        let mut attributes = Map::new();
        for attr in names {
            attributes.insert((*attr).to_owned(), Value::from(0));
        }
        let mut toxic = Toxic {
            name,
            kind_name,
            stream,
            toxicity,
            attributes,
        };
        if let Some(given) = object.get("attributes") {
            toxic.merge_attributes(given)?;
        }
        Ok(toxic)
    }

    /// Applies a `POST`/`PATCH /proxies/{p}/toxics/{t}` body as Toxiproxy's
    /// `UpdateToxicJson` does: attributes merged onto the current ones, toxicity replaced;
    /// what is absent or null stays. Nothing changes when the body is refused.
    pub fn update(&mut self, body: &Value) -> Result<(), ToxicError> {
        let object = body.as_object().ok_or_else(|| {
            ToxicError::BadBody(format!(
                "json: cannot unmarshal {} into Go value of type struct {{ Attributes interface {{}}; Toxicity float32 }}",
                json_type(body)
            ))
        })?;
        let toxicity = toxicity_field(object)?;
        let mut changed = self.clone();
        if let Some(given) = object.get("attributes") {
            changed.merge_attributes(given)?;
        }
        if let Some(toxicity) = toxicity {
            changed.toxicity = toxicity;
        }
        *self = changed;
        Ok(())
    }

    /// Merges `attributes` onto the current ones. As Go's decoder does: null leaves them,
    /// names match without regard to case, unknown names are ignored, a null value leaves
    /// its attribute, and a value that is not an integer is refused.
    fn merge_attributes(&mut self, given: &Value) -> Result<(), ToxicError> {
        let given = match given {
            Value::Null => return Ok(()),
            Value::Object(given) => given,
            other => return Err(wrong_type(other, "attributes", "toxic attributes")),
        };
        for (key, value) in given {
            let Some(name) = self
                .attributes
                .keys()
                .find(|name| name.eq_ignore_ascii_case(key))
                .cloned()
            else {
                continue;
            };
            let int = match value {
                Value::Null => continue,
                Value::Number(n) => n.as_i64().ok_or_else(|| {
                    ToxicError::BadBody(format!(
                        "json: cannot unmarshal number {n} into Go struct field .{name} of type int64"
                    ))
                })?,
                other => return Err(wrong_type(other, &format!(".{name}"), "int64")),
            };
            self.attributes.insert(name, Value::from(int));
        }
        Ok(())
    }

    fn attr(&self, name: &str) -> i64 {
        self.attributes
            .get(name)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    pub fn kind(&self) -> Kind {
        match self.kind_name.as_str() {
            "latency" => Kind::Latency {
                latency_ms: self.attr("latency"),
                jitter_ms: self.attr("jitter"),
            },
            "bandwidth" => Kind::Bandwidth {
                rate_kb_s: self.attr("rate"),
            },
            "slow_close" => Kind::SlowClose {
                delay_ms: self.attr("delay"),
            },
            "timeout" => Kind::Timeout {
                timeout_ms: self.attr("timeout"),
            },
            "reset_peer" => Kind::ResetPeer {
                timeout_ms: self.attr("timeout"),
            },
            "slicer" => Kind::Slicer {
                average_size: self.attr("average_size"),
                size_variation: self.attr("size_variation"),
                delay_us: self.attr("delay"),
            },
            "limit_data" => Kind::LimitData {
                bytes: self.attr("bytes"),
            },
            _ => Kind::Noop,
        }
    }

    pub fn to_body(&self) -> ToxicBody {
        ToxicBody {
            name: self.name.clone(),
            kind: self.kind_name.clone(),
            stream: self.stream,
            toxicity: self.toxicity,
            attributes: self
                .attributes
                .iter()
                .map(|(name, value)| (name.clone(), value.as_i64().unwrap_or(0)))
                .collect(),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.to_body()).unwrap_or(Value::Null)
    }
}

pub(super) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
        Value::Number(_) => "number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(body: Value) -> Result<Toxic, ToxicError> {
        Toxic::from_create(&body, |name| name == "taken")
    }

    #[test]
    fn defaults_are_filled_like_toxiproxy() {
        let t = create(json!({"type": "latency", "attributes": {"latency": 100}})).expect("valid");
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(t.toxicity, 1.0);
        assert_eq!(
            t.to_json()["attributes"],
            json!({"latency": 100, "jitter": 0})
        );
        assert_eq!(
            create(json!({"type": "nope"})),
            Err(ToxicError::InvalidType)
        );
        assert_eq!(
            create(json!({"type": "latency", "stream": "sideways"})),
            Err(ToxicError::InvalidStream)
        );
        assert!(matches!(
            create(json!({"type": "latency", "attributes": {"latency": "x"}})),
            Err(ToxicError::BadBody(_))
        ));
    }

    /// What the official clients send: Go's `AddToxic("", "latency", "downstream", 1, nil)`
    /// sends an empty name and null attributes; others leave fields out or null.
    #[test]
    fn null_and_absent_fields_take_the_defaults_and_an_empty_name_is_type_and_stream() {
        let go = create(json!({"name": "", "type": "latency", "stream": "upstream", "toxicity": 1, "attributes": null}))
            .expect("Go client's body");
        assert_eq!(
            go.to_json(),
            json!({"name": "latency_upstream", "type": "latency", "stream": "upstream", "toxicity": 1.0, "attributes": {"latency": 0, "jitter": 0}})
        );
        let bare =
            create(json!({"type": "bandwidth", "name": null, "stream": null, "toxicity": null}))
                .expect("nulls");
        assert_eq!(
            (bare.name.as_str(), bare.stream, bare.toxicity),
            ("bandwidth_downstream", Stream::Downstream, 1.0)
        );
        let some = create(json!({"type": "latency", "attributes": {"Latency": 7, "jitter": null}}))
            .expect("a name in another case, a null value");
        assert_eq!(
            some.to_json()["attributes"],
            json!({"latency": 7, "jitter": 0})
        );
        // Toxiproxy's order: the stream before the type, the name before the attributes.
        assert_eq!(
            create(json!({"type": "melt", "stream": ""})),
            Err(ToxicError::InvalidStream)
        );
        assert_eq!(
            create(json!({"name": "taken", "type": "latency", "attributes": {"latency": "x"}})),
            Err(ToxicError::Exists)
        );
        assert_eq!(
            create(json!({"type": "latency", "attributes": {"latency": 1.5}})),
            Err(ToxicError::BadBody(
                "json: cannot unmarshal number 1.5 into Go struct field .latency of type int64"
                    .into()
            ))
        );
        assert_eq!(
            create(json!({"type": 3})),
            Err(ToxicError::BadBody(
                "json: cannot unmarshal number into Go struct field ToxicWrapper.type of type string"
                    .into()
            ))
        );
    }

    #[test]
    fn an_update_changes_what_it_names_and_nothing_when_refused() {
        let mut t = create(json!({"type": "latency", "toxicity": 0.5, "attributes": {"latency": 100, "jitter": 5}}))
            .expect("valid");
        t.update(&json!({"attributes": {"latency": 200}}))
            .expect("partial attributes");
        assert_eq!(
            (t.to_json()["attributes"].clone(), t.toxicity),
            (json!({"latency": 200, "jitter": 5}), 0.5)
        );
        t.update(&json!({"attributes": null, "toxicity": 1}))
            .expect("toxicity alone");
        assert_eq!(
            t.to_json()["attributes"],
            json!({"latency": 200, "jitter": 5})
        );
        assert_eq!(t.toxicity, 1.0);
        let before = t.clone();
        assert!(t
            .update(&json!({"attributes": {"latency": 1}, "toxicity": "all"}))
            .is_err());
        assert!(t
            .update(&json!({"attributes": {"latency": 1, "jitter": "x"}}))
            .is_err());
        assert_eq!(t, before, "a refused update changes nothing");
    }
}

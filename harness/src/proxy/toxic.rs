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
}

impl Toxic {
    /// Builds a toxic from a `POST /proxies/{p}/toxics` body, filling Toxiproxy's defaults.
    pub fn from_create(body: &Value) -> Result<Toxic, ToxicError> {
        let object = body
            .as_object()
            .ok_or_else(|| ToxicError::BadBody("json: cannot unmarshal into toxic".into()))?;
        let kind_name = match object.get("type") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(ToxicError::BadBody(
                    "json: cannot unmarshal into Go struct field Toxic.type of type string".into(),
                ))
            }
        };
        let names = attribute_names(&kind_name).ok_or(ToxicError::InvalidType)?;
        let stream = match object.get("stream") {
            None | Some(Value::Null) => Stream::Downstream,
            Some(Value::String(s)) if s == "upstream" => Stream::Upstream,
            Some(Value::String(s)) if s == "downstream" || s.is_empty() => Stream::Downstream,
            Some(_) => return Err(ToxicError::InvalidStream),
        };
        let toxicity = match object.get("toxicity") {
            None | Some(Value::Null) => 1.0,
            Some(v) => v.as_f64().ok_or_else(|| {
                ToxicError::BadBody(
                    "json: cannot unmarshal into Go struct field Toxic.toxicity of type float32"
                        .into(),
                )
            })?,
        };
        let name = match object.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => format!("{kind_name}_{}", stream.as_str()),
        };
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

    /// Merges `attributes` onto the current ones (`PATCH`); unknown names are ignored.
    pub fn merge_attributes(&mut self, given: &Value) -> Result<(), ToxicError> {
        let Some(given) = given.as_object() else {
            return Err(ToxicError::BadBody(
                "json: cannot unmarshal attributes".into(),
            ));
        };
        for (key, value) in given {
            if !self.attributes.contains_key(key) {
                continue;
            }
            let Some(int) = value.as_i64().or_else(|| value.as_f64().map(|f| f as i64)) else {
                return Err(ToxicError::BadBody(format!(
                    "json: cannot unmarshal {} into Go struct field .{key} of type int64",
                    json_type(value)
                )));
            };
            self.attributes.insert(key.clone(), Value::from(int));
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

fn json_type(value: &Value) -> &'static str {
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

    #[test]
    fn defaults_are_filled_like_toxiproxy() {
        let t = Toxic::from_create(&json!({"type": "latency", "attributes": {"latency": 100}}))
            .expect("valid");
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(t.toxicity, 1.0);
        assert_eq!(
            t.to_json()["attributes"],
            json!({"latency": 100, "jitter": 0})
        );
        assert_eq!(
            Toxic::from_create(&json!({"type": "nope"})),
            Err(ToxicError::InvalidType)
        );
        assert_eq!(
            Toxic::from_create(&json!({"type": "latency", "stream": "sideways"})),
            Err(ToxicError::InvalidStream)
        );
        assert!(matches!(
            Toxic::from_create(&json!({"type": "latency", "attributes": {"latency": "x"}})),
            Err(ToxicError::BadBody(_))
        ));
    }
}

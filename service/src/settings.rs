//! Settings a service takes as command-line flags and changes over HTTP at run time, each
//! defined once as a struct: its serde form is the admin route's body and a profile's
//! section, its clap form is the service's flags (the field's doc is the flag's help), its
//! `Default` is every default, and [`Settings::validate`] holds every range.
//!
//! A [`Patch`] names some of a struct's fields. Applying one re-reads the whole value
//! strictly, so a patch cannot name a field the struct lacks or give one the wrong type, and
//! the result is validated as a whole before anything changes. [`Settings::to_flags`] turns a
//! value back into the flags that start a service with it, so a launcher never spells a flag
//! by hand.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::marker::PhantomData;

/// Why a setting was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("{field}: unknown setting; the known ones are {known}")]
    Unknown { field: String, known: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{field}: {message}")]
    OutOfRange { field: String, message: String },
}

impl SettingError {
    /// The field the error is about.
    pub fn field(&self) -> &str {
        match self {
            SettingError::Unknown { field, .. }
            | SettingError::Invalid { field, .. }
            | SettingError::OutOfRange { field, .. } => field,
        }
    }

    /// The same error with its field under `prefix` (`service.ledger`, say).
    pub fn under(self, prefix: &str) -> SettingError {
        let prefixed = |field: String| format!("{prefix}.{field}");
        match self {
            SettingError::Unknown { field, known } => SettingError::Unknown {
                field: prefixed(field),
                known,
            },
            SettingError::Invalid { field, message } => SettingError::Invalid {
                field: prefixed(field),
                message,
            },
            SettingError::OutOfRange { field, message } => SettingError::OutOfRange {
                field: prefixed(field),
                message,
            },
        }
    }

    /// The message without the field, for callers that report the field apart.
    pub fn message(&self) -> String {
        match self {
            SettingError::Unknown { known, .. } => {
                format!("unknown setting; the known ones are {known}")
            }
            SettingError::Invalid { message, .. } | SettingError::OutOfRange { message, .. } => {
                message.clone()
            }
        }
    }
}

/// Refuses `value` outside `min..=max`.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), SettingError> {
    if value < min || value > max {
        return Err(SettingError::OutOfRange {
            field: field.to_owned(),
            message: format!("must be between {min} and {max}, got {value}"),
        });
    }
    Ok(())
}

/// Refuses a probability outside 0..=1 (and NaN).
pub fn check_fraction(field: &str, value: f64) -> Result<(), SettingError> {
    if !(0.0..=1.0).contains(&value) {
        return Err(SettingError::OutOfRange {
            field: field.to_owned(),
            message: format!("must be between 0 and 1, got {value}"),
        });
    }
    Ok(())
}

/// A settings struct (see the module docs).
pub trait Settings: Serialize + DeserializeOwned + Default + Clone + PartialEq {
    /// Checks every field's range.
    fn validate(&self) -> Result<(), SettingError>;

    /// The fields' names, as the wire, the profile and (with `-` for `_`) the flags spell them.
    fn field_names() -> Vec<String> {
        match serde_json::to_value(Self::default()) {
            Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The flags that start a service with these values: `--field-name=value` for every field
    /// that holds a value (an absent optional rule is left out).
    fn to_flags(&self) -> Vec<String> {
        let Ok(Value::Object(fields)) = serde_json::to_value(self) else {
            return Vec::new();
        };
        fields
            .into_iter()
            .filter_map(|(name, value)| {
                let flag = name.replace('_', "-");
                match value {
                    Value::Null => None,
                    Value::String(text) => Some(format!("--{flag}={text}")),
                    other => Some(format!("--{flag}={other}")),
                }
            })
            .collect()
    }
}

/// Some of `T`'s fields with new values: the body of `PUT /admin/knobs`, a profile's section
/// of a service, a knobs fault's `set:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct Patch<T> {
    fields: Map<String, Value>,
    #[serde(skip)]
    of: PhantomData<fn() -> T>,
}

impl<T> Default for Patch<T> {
    fn default() -> Self {
        Patch {
            fields: Map::new(),
            of: PhantomData,
        }
    }
}

impl<T: Settings> Patch<T> {
    /// A patch of the fields `fields` holds (checked when applied).
    pub fn new(fields: Map<String, Value>) -> Self {
        Patch {
            fields,
            of: PhantomData,
        }
    }

    /// A patch that sets every field to `value`'s.
    pub fn of_value(value: &T) -> Self {
        match serde_json::to_value(value) {
            Ok(Value::Object(fields)) => Patch::new(fields),
            _ => Patch::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// `base` with this patch's fields replaced, validated as a whole.
    pub fn apply(&self, base: &T) -> Result<T, SettingError> {
        let known = T::field_names();
        if let Some(unknown) = self.fields.keys().find(|k| !known.contains(k)) {
            return Err(SettingError::Unknown {
                field: unknown.clone(),
                known: known.join(", "),
            });
        }
        let mut merged = match serde_json::to_value(base) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        merged.extend(self.fields.clone());
        let next: T = serde_path_to_error::deserialize(Value::Object(merged)).map_err(|err| {
            SettingError::Invalid {
                field: err.path().to_string(),
                message: err.into_inner().to_string(),
            }
        })?;
        next.validate()?;
        Ok(next)
    }

    /// Splits a flat map of two settings structs' fields (the ledger's knobs and its policy
    /// share one section of a profile) into a patch of each.
    pub fn split<U: Settings>(
        fields: &Map<String, Value>,
    ) -> Result<(Patch<T>, Patch<U>), SettingError> {
        let (mine, theirs) = (T::field_names(), U::field_names());
        let (mut first, mut second) = (Map::new(), Map::new());
        for (name, value) in fields {
            if mine.contains(name) {
                first.insert(name.clone(), value.clone());
            } else if theirs.contains(name) {
                second.insert(name.clone(), value.clone());
            } else {
                let known: Vec<String> = mine.iter().chain(theirs.iter()).cloned().collect();
                return Err(SettingError::Unknown {
                    field: name.clone(),
                    known: known.join(", "),
                });
            }
        }
        Ok((Patch::new(first), Patch::new(second)))
    }
}

/// Settings a running service reads on every operation and an admin route replaces.
pub struct Live<T> {
    current: std::sync::RwLock<T>,
}

impl<T: Settings> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live {
            current: std::sync::RwLock::new(value),
        }
    }

    pub fn get(&self) -> T {
        match self.current.read() {
            Ok(value) => value.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Applies `patch` to the current value, under one lock so two patches never lose each
    /// other's fields, and returns the new value. A refused patch changes nothing.
    pub fn apply(&self, patch: &Patch<T>) -> Result<T, SettingError> {
        let mut current = match self.current.write() {
            Ok(value) => value,
            Err(poisoned) => poisoned.into_inner(),
        };
        let next = patch.apply(&current)?;
        *current = next.clone();
        Ok(next)
    }
}

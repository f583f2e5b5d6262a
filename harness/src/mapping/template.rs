//! A request of the mapping as templates: the method, the path, each header and each string
//! leaf of the body. Templates are MiniJinja (`{{ name }}`, filters like `| upper`), parsed
//! once at load time and checked against the variables of their request, so a misspelt
//! variable is an error of the file, never a request sent with a hole in it. A string that
//! is one placeholder alone takes its variable's JSON type; text with no placeholder is sent
//! as written; rendering never goes through the engine for either.

use super::RequestSpec;
use crate::profile::locate::{err, FieldError};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Which request a template belongs to, and so the variables it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `api.submit`.
    Submit,
    /// `api.status`: a submission's variables and the system's id for it.
    Status,
    /// `api.users.create`.
    User,
}

impl Scope {
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Scope::Submit => &[
                var::USER_ID,
                var::EXTERNAL_ACCOUNT_ID,
                var::AMOUNT_CENTS,
                var::AMOUNT,
                var::CURRENCY,
                var::IDEMPOTENCY_KEY,
                var::REQUEST_N,
            ],
            Scope::Status => &[
                var::USER_ID,
                var::EXTERNAL_ACCOUNT_ID,
                var::AMOUNT_CENTS,
                var::AMOUNT,
                var::CURRENCY,
                var::IDEMPOTENCY_KEY,
                var::REQUEST_N,
                var::TRANSFER_ID,
            ],
            Scope::User => &[
                var::USER_ID,
                var::EXTERNAL_ACCOUNT_ID,
                var::OPENING_BALANCE_CENTS,
                var::OPENING_BALANCE,
                var::CURRENCY,
            ],
        }
    }
}

/// The variables' names, as templates write them.
pub mod var {
    pub const USER_ID: &str = "user_id";
    pub const EXTERNAL_ACCOUNT_ID: &str = "external_account_id";
    pub const AMOUNT_CENTS: &str = "amount_cents";
    pub const AMOUNT: &str = "amount";
    pub const CURRENCY: &str = "currency";
    pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
    pub const REQUEST_N: &str = "request_n";
    pub const TRANSFER_ID: &str = "transfer_id";
    pub const OPENING_BALANCE_CENTS: &str = "opening_balance_cents";
    pub const OPENING_BALANCE: &str = "opening_balance";
}

/// `cents` in major units as a decimal string: 12345 with exponent 2 is `123.45`.
pub fn decimal(cents: u64, exponent: u8) -> String {
    if exponent == 0 {
        return cents.to_string();
    }
    let digits = format!("{cents:0>width$}", width = usize::from(exponent) + 1);
    let (major, minor) = digits.split_at(digits.len() - usize::from(exponent));
    format!("{major}.{minor}")
}

/// One variable's value: text (borrowed where it can be) or a whole number.
#[derive(Debug, Clone)]
pub enum VarValue<'a> {
    Text(std::borrow::Cow<'a, str>),
    Number(u64),
}

impl<'a> From<&'a str> for VarValue<'a> {
    fn from(text: &'a str) -> VarValue<'a> {
        VarValue::Text(std::borrow::Cow::Borrowed(text))
    }
}

impl From<String> for VarValue<'_> {
    fn from(text: String) -> Self {
        VarValue::Text(std::borrow::Cow::Owned(text))
    }
}

impl From<u64> for VarValue<'_> {
    fn from(n: u64) -> Self {
        VarValue::Number(n)
    }
}

impl VarValue<'_> {
    fn text(&self) -> String {
        match self {
            VarValue::Text(s) => s.to_string(),
            VarValue::Number(n) => n.to_string(),
        }
    }

    /// Its JSON, appended to `out`: a string or a number.
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            VarValue::Text(s) => serde_json::to_writer(out, s.as_ref()).map_err(|e| e.to_string()),
            VarValue::Number(n) => {
                out.extend_from_slice(n.to_string().as_bytes());
                Ok(())
            }
        }
    }

    fn engine_value(&self) -> minijinja::Value {
        match self {
            VarValue::Text(s) => minijinja::Value::from(s.as_ref()),
            VarValue::Number(n) => minijinja::Value::from(*n),
        }
    }
}

/// The values of one request's variables.
#[derive(Debug, Clone, Default)]
pub struct Vars<'a> {
    values: Vec<(&'static str, VarValue<'a>)>,
}

impl<'a> Vars<'a> {
    pub fn with(mut self, name: &'static str, value: impl Into<VarValue<'a>>) -> Vars<'a> {
        self.values.push((name, value.into()));
        self
    }

    /// The value of variable `name`, when it has one.
    pub fn get(&self, name: &str) -> Option<&VarValue<'a>> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn context(&self) -> minijinja::Value {
        minijinja::Value::from_pairs(
            self.values
                .iter()
                .map(|(name, value)| (*name, value.engine_value())),
        )
    }
}

/// One string of a request, ready to render.
#[derive(Debug, Clone)]
enum Text {
    /// No placeholder: sent as written.
    Fixed(String),
    /// One placeholder alone: the variable's value.
    Var(&'static str),
    /// Anything else: a template of the environment, by name.
    Template(String),
}

/// A body as a tree of rendered parts.
#[derive(Debug, Clone)]
enum Node {
    Literal(Value),
    Text(Text),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// One request, compiled.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    pub method: http::Method,
    path: Text,
    headers: Vec<(http::HeaderName, Text)>,
    body: Option<Node>,
    env: Arc<minijinja::Environment<'static>>,
    /// Every variable some part names.
    uses: BTreeSet<&'static str>,
}

/// A request rendered for one exchange.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub method: http::Method,
    /// The path and query, starting with `/`.
    pub path: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The JSON body, when the request has one.
    pub body: Option<Vec<u8>>,
}

struct Compiler<'a> {
    scope: Scope,
    env: minijinja::Environment<'static>,
    uses: BTreeSet<&'static str>,
    field_prefix: &'a str,
}

impl Compiler<'_> {
    fn text(&mut self, field: String, source: &str) -> Result<Text, FieldError> {
        if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
            return Ok(Text::Fixed(source.to_owned()));
        }
        let name = field.clone();
        self.env
            .add_template_owned(name.clone(), source.to_owned())
            .or_else(|e| {
                err(
                    field.clone(),
                    format!("not a template: {}", e.detail().unwrap_or(&e.to_string())),
                )
            })?;
        let template = self
            .env
            .get_template(&name)
            .or_else(|e| err(field.clone(), format!("not a template: {e}")))?;
        let mut named: Vec<String> = template.undeclared_variables(false).into_iter().collect();
        named.sort();
        let known = self.scope.variables();
        for variable in &named {
            match known.iter().find(|k| *k == variable) {
                Some(k) => {
                    self.uses.insert(k);
                }
                None => {
                    return err(
                        field,
                        format!(
                            "unknown variable `{variable}`: {} knows {}",
                            self.field_prefix,
                            known.join(", ")
                        ),
                    )
                }
            }
        }
        // One placeholder alone keeps its variable's type.
        let inner = source.trim();
        if let Some(name) = inner
            .strip_prefix("{{")
            .and_then(|s| s.strip_suffix("}}"))
            .map(str::trim)
        {
            if let Some(k) = known.iter().find(|k| **k == name) {
                return Ok(Text::Var(k));
            }
        }
        Ok(Text::Template(name))
    }

    fn node(&mut self, field: String, value: &Value) -> Result<Node, FieldError> {
        Ok(match value {
            Value::String(s) => match self.text(field, s)? {
                Text::Fixed(s) => Node::Literal(Value::String(s)),
                text => Node::Text(text),
            },
            Value::Array(items) => Node::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.node(format!("{field}[{i}]"), item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Node::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.node(format!("{field}.{k}"), v)?)))
                    .collect::<Result<_, FieldError>>()?,
            ),
            other => Node::Literal(other.clone()),
        })
    }
}

impl RequestTemplate {
    /// Compiles `spec`, whose fields are named under `field` (`api.submit`); the method is
    /// `default_method` unless the spec says.
    pub fn compile(
        field: &str,
        spec: &RequestSpec,
        default_method: &str,
        scope: Scope,
    ) -> Result<RequestTemplate, FieldError> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let mut compiler = Compiler {
            scope,
            env,
            uses: BTreeSet::new(),
            field_prefix: field,
        };
        let method_text = spec.method.as_deref().unwrap_or(default_method);
        let method = http::Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
            .or_else(|_| {
                err(
                    format!("{field}.method"),
                    format!("`{method_text}` is not an HTTP method"),
                )
            })?;
        if !spec.path.starts_with('/') {
            return err(
                format!("{field}.path"),
                format!(
                    "`{}` does not start with / (it is a path under the coordinator's URL)",
                    spec.path
                ),
            );
        }
        let path = compiler.text(format!("{field}.path"), &spec.path)?;
        let mut headers = Vec::with_capacity(spec.headers.len());
        for (name, value) in &spec.headers {
            let header_field = format!("{field}.headers.{name}");
            let header = http::HeaderName::from_bytes(name.as_bytes()).or_else(|_| {
                err(
                    header_field.clone(),
                    format!("`{name}` is not a header name"),
                )
            })?;
            headers.push((header, compiler.text(header_field, value)?));
        }
        let body = match &spec.body {
            None => None,
            Some(body) => Some(compiler.node(format!("{field}.body"), body)?),
        };
        Ok(RequestTemplate {
            method,
            path,
            headers,
            body,
            env: Arc::new(compiler.env),
            uses: compiler.uses,
        })
    }

    /// Whether some part of the request names `variable`.
    pub fn uses(&self, variable: &str) -> bool {
        self.uses.contains(variable)
    }

    fn render_text(&self, text: &Text, vars: &Vars<'_>) -> Result<String, String> {
        match text {
            Text::Fixed(s) => Ok(s.clone()),
            Text::Var(name) => vars
                .get(name)
                .map(VarValue::text)
                .ok_or_else(|| format!("`{name}` has no value here")),
            Text::Template(name) => self
                .env
                .get_template(name)
                .and_then(|t| t.render(vars.context()))
                .map_err(|e| format!("{name}: {e}")),
        }
    }

    /// Writes `node` as JSON into `out`, straight from the variables (no tree is built).
    fn write_node(&self, node: &Node, vars: &Vars<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<(), String> {
            serde_json::to_writer(out, v).map_err(|e| e.to_string())
        }
        match node {
            Node::Literal(v) => json(out, v)?,
            Node::Text(Text::Var(name)) => vars
                .get(name)
                .ok_or_else(|| format!("`{name}` has no value here"))?
                .write_json(out)?,
            Node::Text(text) => json(out, &self.render_text(text, vars)?)?,
            Node::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_node(item, vars, out)?;
                }
                out.push(b']');
            }
            Node::Object(fields) => {
                out.push(b'{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json(out, key)?;
                    out.push(b':');
                    self.write_node(value, vars, out)?;
                }
                out.push(b'}');
            }
        }
        Ok(())
    }

    /// The request for `vars`; an error says which part could not be rendered.
    pub fn render(&self, vars: &Vars<'_>) -> Result<Rendered, String> {
        let path = self.render_text(&self.path, vars)?;
        if !path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err() {
            return Err(format!(
                "the path renders as `{path}`, not a path and query"
            ));
        }
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, text) in &self.headers {
            let value = self.render_text(text, vars)?;
            let value = http::HeaderValue::from_str(&value)
                .map_err(|_| format!("header {name} renders as `{value}`, not a header value"))?;
            headers.push((name.clone(), value));
        }
        let body = match &self.body {
            None => None,
            Some(node) => {
                let mut out = Vec::with_capacity(256);
                self.write_node(node, vars, &mut out)?;
                Some(out)
            }
        };
        Ok(Rendered {
            method: self.method.clone(),
            path,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(yaml: &str) -> RequestSpec {
        serde_yaml::from_str(yaml).expect("a request spec")
    }

    fn vars() -> Vars<'static> {
        Vars::default()
            .with(var::USER_ID, "u-1")
            .with(var::EXTERNAL_ACCOUNT_ID, "a-1")
            .with(var::AMOUNT_CENTS, 1205u64)
            .with(var::AMOUNT, decimal(1205, 2))
            .with(var::CURRENCY, "EUR")
            .with(var::IDEMPOTENCY_KEY, "k-7")
            .with(var::REQUEST_N, 7u64)
    }

    #[test]
    fn amounts_are_written_in_major_units_exactly() {
        assert_eq!(decimal(1205, 2), "12.05");
        assert_eq!(decimal(5, 2), "0.05");
        assert_eq!(decimal(0, 2), "0.00");
        assert_eq!(decimal(5, 3), "0.005");
        assert_eq!(decimal(1205, 0), "1205");
        assert_eq!(decimal(u64::MAX, 18), "18.446744073709551615");
    }

    #[test]
    fn a_lone_placeholder_keeps_its_type_and_text_is_rendered() {
        let template = RequestTemplate::compile(
            "api.submit",
            &spec(
                "path: /v1/users/{{ user_id }}/payments\n\
                 headers: {X-Request-Id: 'req-{{ request_n }}'}\n\
                 body:\n  amount: '{{ amount }}'\n  minor: '{{ amount_cents }}'\n  \
                 note: 'for {{ user_id | upper }}'\n  fixed: [1, 'two', {k: '{{ idempotency_key }}'}]\n",
            ),
            "POST",
            Scope::Submit,
        )
        .expect("compiles");
        let rendered = template.render(&vars()).expect("renders");
        assert_eq!(rendered.method, http::Method::POST);
        assert_eq!(rendered.path, "/v1/users/u-1/payments");
        assert_eq!(rendered.headers[0].1, "req-7");
        let body: Value = serde_json::from_slice(&rendered.body.expect("a body")).expect("json");
        assert_eq!(
            body,
            json!({"amount": "12.05", "minor": 1205, "note": "for U-1", "fixed": [1, "two", {"k": "k-7"}]})
        );
        assert!(template.uses(var::IDEMPOTENCY_KEY));
        assert!(!template.uses(var::CURRENCY));
    }

    #[test]
    fn an_unknown_variable_or_a_broken_template_names_its_field() {
        let unknown = RequestTemplate::compile(
            "api.submit",
            &spec("path: /p\nbody: {amount: '{{ amout }}'}\n"),
            "POST",
            Scope::Submit,
        )
        .expect_err("amout");
        assert_eq!(unknown.0, "api.submit.body.amount");
        assert!(
            unknown.1.contains("unknown variable `amout`"),
            "{}",
            unknown.1
        );
        // transfer_id is a status lookup's, not a submission's.
        let out_of_scope = RequestTemplate::compile(
            "api.submit",
            &spec("path: /p/{{ transfer_id }}\n"),
            "POST",
            Scope::Submit,
        )
        .expect_err("transfer_id");
        assert_eq!(out_of_scope.0, "api.submit.path");
        let broken = RequestTemplate::compile(
            "api.submit",
            &spec("path: /p\nheaders: {K: '{{ user_id '}\n"),
            "POST",
            Scope::Submit,
        )
        .expect_err("unclosed");
        assert_eq!(broken.0, "api.submit.headers.K");
        let method = RequestTemplate::compile(
            "api.submit",
            &spec("method: 'PO ST'\npath: /p\n"),
            "POST",
            Scope::Submit,
        )
        .expect_err("method");
        assert_eq!(method.0, "api.submit.method");
        let path =
            RequestTemplate::compile("api.submit", &spec("path: p\n"), "POST", Scope::Submit)
                .expect_err("path");
        assert_eq!(path.0, "api.submit.path");
    }
}

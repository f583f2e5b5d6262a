//! `--target-file`: a system the harness did not start, described by its owner. Parsed as
//! strictly as a profile (an unknown field is an error naming its file, line and field).
//! `docs/your-own-system.md` walks through writing one; `docs/target-example.yaml` is one.
//!
//! `--target URL` (with `--external-url`, `--ledger-url`) is the same thing with no hops,
//! no commands and the users created.

use crate::mapping::books::BooksSpec;
use crate::mapping::{ApiMapping, CompiledApi};
use crate::profile::{locate, ProfileError};
use crate::topology::Hop;
use crate::topology::ServiceRole;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    /// The coordinator's URL (`http://host:port`): the gateway hop forwards the load to it;
    /// seeding, the saga log and `GET /transfers/{id}` go to it directly.
    pub coordinator: String,
    /// The external institution's own URL: its dump, totals and knobs (never through a hop).
    #[serde(default)]
    pub external: Option<String>,
    /// The ledger's own URL, as for `external`.
    #[serde(default)]
    pub ledger: Option<String>,
    /// The proxies the coordinator is configured to reach its upstreams through.
    #[serde(default)]
    pub hops: TargetHops,
    /// `create` (the harness creates the run's users) or `reuse` (they exist already).
    #[serde(default)]
    pub seed: SeedMode,
    /// Shell commands that act on each service's process, for process faults.
    #[serde(default)]
    pub commands: RoleCommandSet,
    /// How long a command may run before it is killed and its fault fails.
    #[serde(default = "default_command_timeout_s")]
    pub command_timeout_s: u32,
    /// How long after the final read of the books they are read again, with no load and no
    /// fault, to see that no money moved once every saga was final (a reversal queue still
    /// working, a retry that wakes late): any difference is `moved_after_final_read`.
    #[serde(default = "default_settle_s")]
    pub settle_s: u32,
    /// The coordinator's settings as its owner states them (`deadline_ms: 150`), by the
    /// names a profile's `service.coordinator` uses. The contract has no route to change
    /// them, so a profile's coordinator setting is accepted only when stated here alike.
    #[serde(default)]
    pub coordinator_settings: Map<String, Value>,
    /// The name of the environment variable that holds the bearer token of the services'
    /// admin routes, for a system that asks one of the harness's machine. The token itself
    /// is never written in the file, the run folder or the reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_env: Option<String>,
    /// The coordinator's own API, for a system that does not speak `docs/contract.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiMapping>,
    /// Where each institution's books are read when it has no `/admin/dump`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub books: BooksSpec,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl TargetFile {
    /// The `api:` section compiled (checked when the file was read), when there is one.
    pub fn compiled_api(&self) -> Option<CompiledApi> {
        self.api.as_ref().and_then(|api| api.compile().ok())
    }

    /// The headers every request of a run to this system carries: its admin token, read
    /// from the environment variable the file names (marked sensitive, so no log shows it).
    pub fn admin_headers(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<reqwest::header::HeaderMap, String> {
        let mut headers = reqwest::header::HeaderMap::new();
        let Some(name) = &self.admin_token_env else {
            return Ok(headers);
        };
        let token = var(name).filter(|t| !t.is_empty()).ok_or_else(|| {
            format!("the target file's admin_token_env names {name}, which is not set")
        })?;
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| format!("{name} holds characters a header cannot carry"))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        Ok(headers)
    }
}

fn default_command_timeout_s() -> u32 {
    30
}

fn default_settle_s() -> u32 {
    5
}

/// The longest `settle_s` a target file may ask for.
const MAX_SETTLE_S: u32 = 600;

/// The two upstream hops; the gateway hop is always the harness's own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetHops {
    #[serde(default)]
    pub external: Option<HopSpec>,
    #[serde(default)]
    pub ledger: Option<HopSpec>,
}

/// One hop: the address its proxy listens on (the coordinator is configured with it) and
/// where it forwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopSpec {
    /// `host:port` the proxy listens on.
    pub listen: String,
    /// `host:port` (or URL) it forwards to; by default the institution's own URL.
    #[serde(default)]
    pub upstream: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedMode {
    /// Create the profile's users: accounts at both institutions and links at the
    /// coordinator (`account_exists` if a run did it before: use `reuse`).
    #[default]
    Create,
    /// The users exist already (a previous run created them, or their owner did with the
    /// same names): nothing is written before the load, and the money is judged by its
    /// change from the books read just before it.
    Reuse,
}

/// Commands per role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleCommandSet {
    #[serde(default)]
    pub coordinator: RoleCommands,
    #[serde(default)]
    pub external: RoleCommands,
    #[serde(default)]
    pub ledger: RoleCommands,
}

impl RoleCommandSet {
    pub fn of(&self, role: ServiceRole) -> &RoleCommands {
        match role {
            ServiceRole::Coordinator => &self.coordinator,
            ServiceRole::External => &self.external,
            ServiceRole::Ledger => &self.ledger,
        }
    }
}

/// What a process fault does to one service, as shell commands (`sh -c`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleCommands {
    /// Kills the service at once (a `kill` fault), like `docker kill svc`.
    #[serde(default)]
    pub kill: Option<String>,
    /// Starts it again on the same address and data (the end of a `kill` fault).
    #[serde(default)]
    pub start: Option<String>,
    /// Freezes it (a `pause` fault), like `docker pause svc` or `kill -STOP $(cat pid)`.
    #[serde(default)]
    pub pause: Option<String>,
    /// Thaws it (the end of a `pause` fault).
    #[serde(default)]
    pub resume: Option<String>,
    /// Stops it gracefully and starts it again (a `restart` fault), like `systemctl restart`.
    #[serde(default)]
    pub restart: Option<String>,
}

/// A process action, named as in the target file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessAction {
    Kill,
    Start,
    Pause,
    Resume,
    Restart,
}

impl ProcessAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProcessAction::Kill => "kill",
            ProcessAction::Start => "start",
            ProcessAction::Pause => "pause",
            ProcessAction::Resume => "resume",
            ProcessAction::Restart => "restart",
        }
    }
}

impl RoleCommands {
    pub fn get(&self, action: ProcessAction) -> Option<&str> {
        match action {
            ProcessAction::Kill => self.kill.as_deref(),
            ProcessAction::Start => self.start.as_deref(),
            ProcessAction::Pause => self.pause.as_deref(),
            ProcessAction::Resume => self.resume.as_deref(),
            ProcessAction::Restart => self.restart.as_deref(),
        }
    }
}

impl TargetFile {
    /// A system given by URLs alone (`--target`): no hops, no commands, users created.
    pub fn from_urls(
        coordinator: &str,
        external: Option<&str>,
        ledger: Option<&str>,
    ) -> TargetFile {
        TargetFile {
            coordinator: trim_url(coordinator),
            external: external.map(trim_url),
            ledger: ledger.map(trim_url),
            hops: TargetHops::default(),
            seed: SeedMode::Create,
            commands: RoleCommandSet::default(),
            command_timeout_s: default_command_timeout_s(),
            settle_s: default_settle_s(),
            coordinator_settings: Map::new(),
            admin_token_env: None,
            api: None,
            books: BooksSpec::default(),
        }
    }

    /// The hop's spec, for the two upstream hops.
    pub fn hop(&self, hop: Hop) -> Option<&HopSpec> {
        match hop {
            Hop::Gateway => None,
            Hop::External => self.hops.external.as_ref(),
            Hop::Ledger => self.hops.ledger.as_ref(),
        }
    }

    /// Where the hop's proxy forwards: its `upstream`, else the institution's own URL.
    pub fn upstream_of(&self, hop: Hop) -> Option<String> {
        let spec = self.hop(hop)?;
        let own = match hop {
            Hop::External => self.external.as_deref(),
            Hop::Ledger => self.ledger.as_deref(),
            Hop::Gateway => None,
        };
        spec.upstream.as_deref().or(own).map(trim_url)
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.command_timeout_s))
    }

    /// How long the books are left alone before they are read again.
    pub fn settle(&self) -> Duration {
        Duration::from_secs(u64::from(self.settle_s))
    }

    /// The rules serde cannot say: `(field, message)` of the first broken one.
    fn validate(&self) -> Result<(), (String, String)> {
        let url = |field: &str, value: &str| {
            let rest = value.strip_prefix("http://").ok_or_else(|| {
                (
                    field.to_owned(),
                    format!("`{value}` is not an http:// URL (like http://127.0.0.1:8080)"),
                )
            })?;
            host_port(field, rest.trim_end_matches('/'))
        };
        url("coordinator", &self.coordinator)?;
        if let Some(external) = &self.external {
            url("external", external)?;
        }
        if let Some(ledger) = &self.ledger {
            url("ledger", ledger)?;
        }
        for hop in [Hop::External, Hop::Ledger] {
            let Some(spec) = self.hop(hop) else { continue };
            let field = format!("hops.{}", hop.as_str());
            host_port(&format!("{field}.listen"), &spec.listen)?;
            match &spec.upstream {
                Some(upstream) => host_port(
                    &format!("{field}.upstream"),
                    upstream.trim_start_matches("http://").trim_end_matches('/'),
                )?,
                None if self.upstream_of(hop).is_none() => {
                    return Err((
                        format!("{field}.upstream"),
                        format!(
                            "no upstream: give hops.{0}.upstream or the {0} institution's URL",
                            hop.as_str()
                        ),
                    ))
                }
                None => {}
            }
        }
        if self.command_timeout_s == 0 || self.command_timeout_s > 600 {
            return Err((
                "command_timeout_s".into(),
                "must be between 1 and 600 seconds".into(),
            ));
        }
        if self.settle_s > MAX_SETTLE_S {
            return Err((
                "settle_s".into(),
                format!("must be between 0 and {MAX_SETTLE_S} seconds"),
            ));
        }
        for role in ServiceRole::ALL {
            let commands = self.commands.of(role);
            for action in [
                ProcessAction::Kill,
                ProcessAction::Start,
                ProcessAction::Pause,
                ProcessAction::Resume,
                ProcessAction::Restart,
            ] {
                if commands.get(action).is_some_and(|c| c.trim().is_empty()) {
                    return Err((
                        format!("commands.{}.{}", role.as_str(), action.as_str()),
                        "is empty: leave it out instead".into(),
                    ));
                }
            }
        }
        if let Some(api) = &self.api {
            api.compile()?;
        }
        self.books.validate()?;
        Ok(())
    }
}

fn trim_url(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

/// `host:port` with a port that is a number above 0.
fn host_port(field: &str, value: &str) -> Result<(), (String, String)> {
    let bad = || {
        (
            field.to_owned(),
            format!("`{value}` is not host:port with a port above 0 (like 127.0.0.1:18081)"),
        )
    };
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 && !host.is_empty() => Ok(()),
        _ => Err(bad()),
    }
}

/// Reads and checks a target file; errors name the file, the line and the field.
pub fn load(path: &Path) -> Result<TargetFile, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
        file: path.to_owned(),
        line: None,
        field: "(target file)".into(),
        message: format!("cannot read: {e}"),
    })?;
    let mut target = parse(path, &text)?;
    // A list of users to reuse is named relative to the target file's folder.
    let reuse = target.api.as_mut().and_then(|api| api.users.reuse.as_mut());
    if let (Some(reuse), Some(folder)) = (reuse, path.parent()) {
        if reuse.is_relative() {
            *reuse = folder.join(&*reuse);
        }
    }
    Ok(target)
}

pub fn parse(file: &Path, text: &str) -> Result<TargetFile, ProfileError> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let target: TargetFile = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        ProfileError {
            file: file.to_owned(),
            line: inner.location().map(|l| l.line()),
            field: if path == "." || path.is_empty() {
                "(target file)".into()
            } else {
                path
            },
            message: crate::profile::strip_location(&inner.to_string()),
        }
    })?;
    target.validate().map_err(|(field, message)| ProfileError {
        file: file.to_owned(),
        line: locate::line_of(text, &field),
        field,
        message,
    })?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<TargetFile, ProfileError> {
        parse(Path::new("t.yaml"), text)
    }

    #[test]
    fn the_documented_example_parses() {
        let text = include_str!("../../../docs/target-example.yaml");
        let target = parsed(text).expect("docs/target-example.yaml is valid");
        assert_eq!(target.seed, SeedMode::Reuse);
        assert!(target.commands.coordinator.kill.is_some());
        assert_eq!(
            target.upstream_of(Hop::External).as_deref(),
            Some("http://127.0.0.1:9001")
        );
    }

    #[test]
    fn the_documented_mappings_parse_and_compile() {
        for text in [
            include_str!("../../../docs/target-api-example.yaml"),
            include_str!("../../../docs/target-contract-as-api.yaml"),
        ] {
            let target = parsed(text).expect("a documented target file is valid");
            let api = target.compiled_api().expect("its api: compiles");
            assert!(api.status.is_some() && api.users.is_some());
        }
    }

    #[test]
    fn a_mapping_error_names_its_line_and_field() {
        let text = "coordinator: http://127.0.0.1:1\napi:\n  submit:\n    path: /p\n    body:\n      k: '{{ idempotency_key }}'\n      amount: '{{ amout }}'\n  outcome:\n    - {status: 201, outcome: succeeded}\n";
        let err = parsed(text).expect_err("amout");
        assert_eq!(err.field, "api.submit.body.amount", "{err}");
        assert_eq!(err.line, Some(7), "{err}");
        let books = "coordinator: http://127.0.0.1:1\nbooks:\n  ledger:\n    sql:\n      dsn: postgres://u:secret@h:5432/db\n      balances: SELECT 1\n      entries: SELECT 1\n";
        let err = parsed(books).expect_err("a password in the DSN");
        assert_eq!(err.field, "books.ledger.sql.dsn", "{err}");
        assert_eq!(err.line, Some(5), "{err}");
        let both = "coordinator: http://127.0.0.1:1\nbooks:\n  ledger: {}\n";
        assert_eq!(parsed(both).expect_err("no source").field, "books.ledger");
    }

    #[test]
    fn a_typo_names_its_line_and_field() {
        let err =
            parsed("coordinator: http://127.0.0.1:1\ncommands:\n  coordinator:\n    kil: x\n")
                .expect_err("typo");
        assert_eq!(err.line, Some(4), "{err}");
        assert!(err.field.starts_with("commands.coordinator"), "{err}");
        assert!(err.message.contains("unknown field `kil`"), "{err}");
    }

    #[test]
    fn bad_addresses_and_timeouts_are_refused_with_their_field() {
        let cases = [
            ("coordinator: 127.0.0.1:1\n", "coordinator", 1),
            (
                "coordinator: http://127.0.0.1:1\nhops:\n  external: {listen: 127.0.0.1}\n",
                "hops.external.listen",
                3,
            ),
            (
                "coordinator: http://127.0.0.1:1\nhops:\n  ledger: {listen: 127.0.0.1:5}\n",
                "hops.ledger.upstream",
                3,
            ),
            (
                "coordinator: http://127.0.0.1:1\ncommand_timeout_s: 0\n",
                "command_timeout_s",
                2,
            ),
            (
                "coordinator: http://127.0.0.1:1\nsettle_s: 601\n",
                "settle_s",
                2,
            ),
            ("coordinator: http://127.0.0.1:1\nseed: keep\n", "seed", 2),
        ];
        for (text, field, line) in cases {
            let err = parsed(text).expect_err(text);
            assert_eq!(err.field, field, "{err}");
            assert_eq!(err.line, Some(line), "{err}");
        }
    }

    #[test]
    fn the_admin_token_comes_from_the_variable_the_file_names() {
        let text = "coordinator: http://127.0.0.1:1\nadmin_token_env: BANK_TOKEN\n";
        let target = parse(Path::new("t.yaml"), text).expect("valid");
        let set = |name: &str| (name == "BANK_TOKEN").then(|| "s3cret".to_owned());
        let headers = target.admin_headers(set).expect("the token is set");
        let value = &headers[reqwest::header::AUTHORIZATION];
        assert_eq!(value.to_str().ok(), Some("Bearer s3cret"));
        assert!(value.is_sensitive());
        let err = target.admin_headers(|_| None).expect_err("unset");
        assert!(err.contains("BANK_TOKEN"), "{err}");
        let plain = parse(Path::new("t.yaml"), "coordinator: http://127.0.0.1:1\n").expect("valid");
        assert!(plain.admin_headers(|_| None).expect("no token").is_empty());
    }
}

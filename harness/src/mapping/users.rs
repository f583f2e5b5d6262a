//! `api.users`: how the run's users come to exist, one of
//! - `create`: an HTTP request per user, a template;
//! - `create_sql`: SQL statements per user, for each of the system's databases in turn, one
//!   transaction per user and database, the variables bound as parameters (never pasted
//!   into the text);
//! - `reuse`: a CSV file of users that exist already, `user_id,external_account_id`; the
//!   run's user `n` is the file's row `n`.
//!
//! Without any of them the users are taken to exist by the names `docs/contract.md` gives.

use super::books::Database;
use super::template::{decimal, var, RequestTemplate, Scope, Vars};
use super::{CompiledApi, RequestSpec};
use crate::profile::locate::{err, FieldError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersSpec {
    /// A request sent once per user before the load, with the user's variables and
    /// `opening_balance_cents` / `opening_balance`. Any 2xx is success; 409 means the user
    /// exists already and is taken as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<RequestSpec>,
    /// SQL statements run once per user before the load, database by database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_sql: Option<Vec<SqlStatements>>,
    /// A CSV file of existing users (a path relative to the target file's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<PathBuf>,
}

/// One database of `create_sql`: the statements, and where they run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStatements {
    /// As the books' `dsn`: no password in it.
    pub dsn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    pub statements: Vec<SqlStatement>,
}

/// One statement, with its parameters in the engine's own syntax (`$1` on PostgreSQL and
/// SQLite, `?` on MySQL) and the variables bound to them, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStatement {
    pub sql: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<String>,
}

/// How the users come to exist, compiled.
#[derive(Debug, Clone)]
pub enum UserSource {
    Http(RequestTemplate),
    /// One entry per database, in the file's order.
    Sql(Vec<CompiledStatements>),
    Reuse(PathBuf),
}

/// `create_sql`, its variables checked.
#[derive(Debug, Clone)]
pub struct CompiledStatements {
    pub dsn: String,
    pub password_env: Option<String>,
    /// Each statement with the variables it binds, in order.
    pub statements: Vec<(String, Vec<&'static str>)>,
}

impl CompiledStatements {
    pub fn database(&self) -> Database<'_> {
        Database {
            dsn: &self.dsn,
            password_env: self.password_env.as_deref(),
        }
    }
}

impl UsersSpec {
    /// The source, checked: at most one of the three, every bound variable known.
    pub fn compile(&self) -> Result<Option<UserSource>, FieldError> {
        let given = [
            self.create.is_some(),
            self.create_sql.is_some(),
            self.reuse.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return err(
                "api.users".into(),
                "give at most one of create:, create_sql: and reuse:",
            );
        }
        if let Some(spec) = &self.create {
            let template = RequestTemplate::compile("api.users.create", spec, "POST", Scope::User)?;
            return Ok(Some(UserSource::Http(template)));
        }
        if let Some(databases) = &self.create_sql {
            if databases.is_empty() {
                return err("api.users.create_sql".into(), "is empty");
            }
            let compiled = databases
                .iter()
                .enumerate()
                .map(|(i, sql)| sql.compile(&format!("api.users.create_sql[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Some(UserSource::Sql(compiled)));
        }
        if let Some(path) = &self.reuse {
            if path.as_os_str().is_empty() {
                return err("api.users.reuse".into(), "is empty");
            }
            return Ok(Some(UserSource::Reuse(path.clone())));
        }
        Ok(None)
    }
}

impl SqlStatements {
    fn compile(&self, field: &str) -> Result<CompiledStatements, FieldError> {
        Database {
            dsn: &self.dsn,
            password_env: self.password_env.as_deref(),
        }
        .validate(field)?;
        if self.statements.is_empty() {
            return err(format!("{field}.statements"), "is empty");
        }
        let known = Scope::User.variables();
        let statements = self
            .statements
            .iter()
            .enumerate()
            .map(|(i, statement)| {
                let at = format!("{field}.statements[{i}]");
                if statement.sql.trim().is_empty() {
                    return err(format!("{at}.sql"), "is empty");
                }
                let binds = statement
                    .binds
                    .iter()
                    .enumerate()
                    .map(|(j, name)| match known.iter().find(|k| **k == name) {
                        Some(k) => Ok(*k),
                        None => err(
                            format!("{at}.binds[{j}]"),
                            format!(
                                "unknown variable `{name}`: api.users knows {}",
                                known.join(", ")
                            ),
                        ),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((statement.sql.clone(), binds))
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        Ok(CompiledStatements {
            dsn: self.dsn.clone(),
            password_env: self.password_env.clone(),
            statements,
        })
    }
}

/// The variables of one user's creation: its names, its opening balance (in minor units and
/// as a decimal string), the currency.
pub fn user_vars<'a>(
    api: &'a CompiledApi,
    user_id: &'a str,
    external_account_id: &'a str,
    opening_balance_cents: u64,
) -> Vars<'a> {
    Vars::default()
        .with(var::USER_ID, user_id)
        .with(var::EXTERNAL_ACCOUNT_ID, external_account_id)
        .with(var::OPENING_BALANCE_CENTS, opening_balance_cents)
        .with(
            var::OPENING_BALANCE,
            decimal(opening_balance_cents, api.currency_exponent),
        )
        .with(var::CURRENCY, api.currency.as_str())
}

/// One user of a `reuse` file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserRow {
    pub user_id: String,
    pub external_account_id: String,
}

/// Reads a `reuse` file: a header naming `user_id` and `external_account_id` (other columns
/// are left alone), then one user per row. An empty or repeated id is an error naming its line.
pub fn read_users(path: &Path) -> Result<Vec<UserRow>, String> {
    let shown = path.display();
    let mut reader = csv::Reader::from_path(path).map_err(|e| format!("{shown}: {e}"))?;
    let mut users = Vec::new();
    let mut seen = HashSet::new();
    for row in reader.deserialize::<UserRow>() {
        let row = row.map_err(|e| format!("{shown}: {e}"))?;
        let line = users.len() + 2;
        if row.user_id.trim().is_empty() || row.external_account_id.trim().is_empty() {
            return Err(format!("{shown}, line {line}: an id is empty"));
        }
        if !seen.insert(row.user_id.clone()) {
            return Err(format!(
                "{shown}, line {line}: user {} is listed twice",
                row.user_id
            ));
        }
        users.push(row);
    }
    if users.is_empty() {
        return Err(format!("{shown}: lists no user"));
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(text: &str) -> Result<Option<UserSource>, FieldError> {
        serde_yaml::from_str::<UsersSpec>(text)
            .expect("a users section")
            .compile()
    }

    #[test]
    fn statements_bind_known_variables_only() {
        let good = "create_sql:\n  - dsn: sqlite:///tmp/x.db\n    statements:\n      - {sql: 'INSERT INTO a VALUES ($1, $2)', binds: [external_account_id, opening_balance_cents]}\n";
        match users(good).expect("compiles") {
            Some(UserSource::Sql(sql)) => {
                assert_eq!(
                    sql[0].statements[0].1,
                    ["external_account_id", "opening_balance_cents"]
                )
            }
            other => panic!("not SQL: {other:?}"),
        }
        let unknown = good.replace("opening_balance_cents", "balance");
        let fault = users(&unknown).expect_err("unknown variable");
        assert_eq!(fault.0, "api.users.create_sql[0].statements[0].binds[1]");
        let password = good.replace("sqlite:///tmp/x.db", "postgres://u:pw@h/db");
        assert_eq!(
            users(&password).expect_err("a password").0,
            "api.users.create_sql[0].dsn"
        );
        let two = format!("{good}reuse: users.csv\n");
        assert_eq!(users(&two).expect_err("two").0, "api.users");
    }

    #[test]
    fn a_reuse_file_is_read_by_its_header_and_refuses_repeats() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("users.csv");
        std::fs::write(
            &path,
            "external_account_id,user_id,segment\nacct-9,cust-9,retail\nacct-7,cust-7,retail\n",
        )
        .expect("written");
        let rows = read_users(&path).expect("read");
        assert_eq!(rows[1].user_id, "cust-7");
        assert_eq!(rows[1].external_account_id, "acct-7");
        std::fs::write(&path, "user_id,external_account_id\nc-1,a-1\nc-1,a-2\n").expect("w");
        let repeated = read_users(&path).expect_err("repeated");
        assert!(
            repeated.contains("line 3") && repeated.contains("c-1"),
            "{repeated}"
        );
        std::fs::write(&path, "user_id\nc-1\n").expect("w");
        let missing = read_users(&path).expect_err("a column missing");
        assert!(missing.contains("external_account_id"), "{missing}");
    }
}

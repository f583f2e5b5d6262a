//! `books:`: where an institution's books are read when it has no `/admin/dump`: an HTTP
//! answer read through JSON Pointers, or two SQL queries read in one snapshot. Amounts are
//! integers in minor units; an entry's amount is signed as its account sees it (a debit of
//! the external account is negative, a credit of the user's ledger account positive).
//! `system::books` reads them.

use super::outcome::check_pointer;
use crate::profile::locate::{err, FieldError};
use serde::{Deserialize, Serialize};

/// `books:`, one source per institution; an institution left out is read from its
/// `/admin/dump` when the target gives its URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BooksSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<BookSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<BookSource>,
}

/// One institution's books: `http:` or `sql:`, exactly one of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpBooks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlBooks>,
}

/// Where one institution's books are read.
#[derive(Debug, Clone, Copy)]
pub enum BookRead<'a> {
    Http(&'a HttpBooks),
    Sql(&'a SqlBooks),
}

impl BookSource {
    /// The source (checked when the file was read to be exactly one).
    pub fn read(&self) -> Option<BookRead<'_>> {
        match (&self.http, &self.sql) {
            (Some(http), None) => Some(BookRead::Http(http)),
            (None, Some(sql)) => Some(BookRead::Sql(sql)),
            _ => None,
        }
    }
}

/// Books read from one HTTP answer (`GET url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpBooks {
    pub url: String,
    /// A pointer to the array of accounts.
    pub accounts: String,
    /// Pointers inside one account: its id and its balance in minor units.
    pub account_id: String,
    pub balance_cents: String,
    /// A pointer to the array of entries, in the order they were written.
    pub entries: String,
    /// Pointers inside one entry: the transfer it belongs to (the system's id or the
    /// client's key), its account, and its signed amount in minor units.
    pub reference: String,
    pub entry_account_id: String,
    pub amount_cents: String,
}

/// Books read by SQL, both queries in one snapshot (`REPEATABLE READ` on PostgreSQL and
/// MySQL, one read transaction on SQLite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlBooks {
    /// `postgres://user@host:port/db`, `mysql://user@host:port/db` or `sqlite:///path/file.db`,
    /// with no password in it.
    pub dsn: String,
    /// The environment variable that holds the password; it is never written anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Returns (account id, balance in minor units as an integer), one row per account.
    pub balances: String,
    /// Returns (transfer reference, account id, signed amount in minor units as an
    /// integer), one row per entry, in the order they were written (`ORDER BY`).
    pub entries: String,
}

/// The SQL engines the books can be read from, by the DSN's scheme.
pub const SQL_SCHEMES: [&str; 4] = ["postgres", "postgresql", "mysql", "sqlite"];

impl BooksSpec {
    pub fn validate(&self) -> Result<(), FieldError> {
        for (name, source) in [("external", &self.external), ("ledger", &self.ledger)] {
            let field = format!("books.{name}");
            match source.as_ref().map(|s| (s, s.read())) {
                None => {}
                Some((_, Some(BookRead::Http(http)))) => http.validate(&format!("{field}.http"))?,
                Some((_, Some(BookRead::Sql(sql)))) => sql.validate(&format!("{field}.sql"))?,
                Some((_, None)) => {
                    return err(field, "give exactly one of http: and sql:");
                }
            }
        }
        Ok(())
    }
}

impl HttpBooks {
    fn validate(&self, field: &str) -> Result<(), FieldError> {
        if !self.url.starts_with("http://") {
            return err(
                format!("{field}.url"),
                format!("`{}` is not an http:// URL", self.url),
            );
        }
        for (name, pointer) in [
            ("accounts", &self.accounts),
            ("account_id", &self.account_id),
            ("balance_cents", &self.balance_cents),
            ("entries", &self.entries),
            ("reference", &self.reference),
            ("entry_account_id", &self.entry_account_id),
            ("amount_cents", &self.amount_cents),
        ] {
            check_pointer(&format!("{field}.{name}"), pointer)?;
        }
        Ok(())
    }
}

impl SqlBooks {
    /// The database the queries run on.
    pub fn database(&self) -> Database<'_> {
        Database {
            dsn: &self.dsn,
            password_env: self.password_env.as_deref(),
        }
    }

    fn validate(&self, field: &str) -> Result<(), FieldError> {
        self.database().validate(field)?;
        for (name, query) in [("balances", &self.balances), ("entries", &self.entries)] {
            if query.trim().is_empty() {
                return err(format!("{field}.{name}"), "is empty");
            }
        }
        Ok(())
    }
}

/// Where a SQL database is reached: a DSN with no password in it, and the environment
/// variable that holds the password. The books' queries and the users' statements name
/// their database the same way.
#[derive(Debug, Clone, Copy)]
pub struct Database<'a> {
    pub dsn: &'a str,
    pub password_env: Option<&'a str>,
}

impl Database<'_> {
    /// The engine the DSN names (`postgres`, `mysql`, `sqlite`).
    pub fn engine(&self) -> &str {
        match self.dsn.split_once(':').map(|(scheme, _)| scheme) {
            Some("postgresql") => "postgres",
            Some(scheme) => scheme,
            None => "",
        }
    }

    /// Checks the DSN and the variable's name; `field` holds `dsn` and `password_env`.
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        let dsn_field = format!("{field}.dsn");
        let Some((scheme, rest)) = self.dsn.split_once(':') else {
            return err(
                dsn_field,
                "not a DSN (like postgres://bank@127.0.0.1:5432/ledger)",
            );
        };
        if !SQL_SCHEMES.contains(&scheme) {
            return err(
                dsn_field,
                format!(
                    "`{scheme}` is not an engine the harness reaches: {}",
                    SQL_SCHEMES.join(", ")
                ),
            );
        }
        if scheme != "sqlite" {
            let authority = rest
                .trim_start_matches("//")
                .split('/')
                .next()
                .unwrap_or("");
            if authority
                .rsplit_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
            {
                return err(
                    dsn_field,
                    "holds a password: name the variable that holds it in password_env instead",
                );
            }
        }
        if let Some(name) = self.password_env {
            if name.is_empty() || name.contains('=') {
                return err(
                    format!("{field}.password_env"),
                    "is not an environment variable's name",
                );
            }
        }
        Ok(())
    }
}

//! A SQL database of the system's, reached through sqlx's `any` driver (PostgreSQL, MySQL,
//! SQLite, picked by the DSN's scheme), the password taken from its environment variable and
//! never shown; and the users' `create_sql` statements run on it.

use crate::mapping::books::Database;
use crate::mapping::template::{VarValue, Vars};
use crate::mapping::users::CompiledStatements;
use sqlx::{AssertSqlSafe, Connection};
use std::sync::Once;

/// A connection to `database`, the password taken from its variable.
pub async fn connect(database: Database<'_>) -> Result<sqlx::AnyConnection, String> {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let dsn = dsn_with_password(database)?;
    // The error of a failed connection never shows the DSN (it may hold the password).
    sqlx::AnyConnection::connect(&dsn).await.map_err(|e| {
        format!(
            "connecting to {}: {}",
            database.engine(),
            scrub(&e.to_string(), &dsn)
        )
    })
}

/// The DSN with the password from its variable, when the file names one.
fn dsn_with_password(database: Database<'_>) -> Result<String, String> {
    let Some(name) = database.password_env else {
        return Ok(database.dsn.to_owned());
    };
    let password =
        std::env::var(name).map_err(|_| format!("password_env names {name}, which is not set"))?;
    let mut url = url::Url::parse(database.dsn).map_err(|e| format!("the DSN: {e}"))?;
    url.set_password(Some(&password))
        .map_err(|()| "the DSN cannot carry a password".to_owned())?;
    Ok(url.into())
}

fn scrub(message: &str, dsn: &str) -> String {
    message.replace(dsn, "(the DSN)")
}

/// Whether the users' statements created a user or found it there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// A statement broke a unique constraint: the user exists (as a 409 says over HTTP).
    Existed,
}

/// Runs `create_sql`'s statements for each user in `users` (their variables), one
/// transaction per user, on one connection. An error names the user (by `user_id`).
pub async fn create_users<'a>(
    sql: &CompiledStatements,
    users: impl IntoIterator<Item = (String, Vars<'a>)>,
) -> Result<Vec<Created>, (String, String)> {
    let mut connection = connect(sql.database())
        .await
        .map_err(|e| (String::new(), e))?;
    let mut created = Vec::new();
    for (user, vars) in users {
        let outcome = create_one(&mut connection, sql, &vars)
            .await
            .map_err(|e| (user, e))?;
        created.push(outcome);
    }
    let _ = connection.close().await;
    Ok(created)
}

async fn create_one(
    connection: &mut sqlx::AnyConnection,
    sql: &CompiledStatements,
    vars: &Vars<'_>,
) -> Result<Created, String> {
    let mut transaction = connection
        .begin()
        .await
        .map_err(|e| format!("opening a transaction: {e}"))?;
    for (n, (text, binds)) in sql.statements.iter().enumerate() {
        let mut query = sqlx::query(AssertSqlSafe(text.clone()));
        for name in binds {
            query = match vars.get(name) {
                Some(VarValue::Text(value)) => query.bind(value.to_string()),
                Some(VarValue::Number(value)) => query.bind(
                    i64::try_from(*value)
                        .map_err(|_| format!("{name} is past a signed 64-bit integer"))?,
                ),
                None => return Err(format!("statement {n}: {name} has no value")),
            };
        }
        match query.execute(&mut *transaction).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let _ = transaction.rollback().await;
                return Ok(Created::Existed);
            }
            Err(e) => return Err(format!("statement {n} failed: {e}")),
        }
    }
    transaction
        .commit()
        .await
        .map_err(|e| format!("committing: {e}"))?;
    Ok(Created::Created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::template::var;

    #[test]
    fn the_password_comes_from_its_variable_and_never_shows() {
        let database = Database {
            dsn: "postgres://bank@127.0.0.1:5432/ledger",
            password_env: Some("BOOKS_TEST_PASSWORD_UNSET"),
        };
        let unset = dsn_with_password(database).expect_err("unset");
        assert!(unset.contains("BOOKS_TEST_PASSWORD_UNSET"), "{unset}");
        let dsn = "postgres://bank:s3cret@127.0.0.1:5432/ledger";
        assert_eq!(
            scrub(&format!("cannot reach {dsn}"), dsn),
            "cannot reach (the DSN)"
        );
    }

    #[tokio::test]
    async fn statements_bind_each_users_variables_and_a_repeat_is_found_existing() {
        let dir = tempfile::tempdir().expect("a folder");
        let file = dir.path().join("bank.db");
        let dsn = format!("sqlite://{}?mode=rwc", file.display());
        let setup = CompiledStatements {
            dsn: dsn.clone(),
            password_env: None,
            statements: vec![(
                "CREATE TABLE accounts (id TEXT PRIMARY KEY, owner TEXT, cents INTEGER)".into(),
                vec![],
            )],
        };
        let user = |n: u64| {
            Vars::default()
                .with(var::USER_ID, format!("c-{n}"))
                .with(var::EXTERNAL_ACCOUNT_ID, format!("acct-{n}"))
                .with(var::OPENING_BALANCE_CENTS, 1_000 * n)
        };
        create_users(&setup, [("setup".to_owned(), Vars::default())])
            .await
            .expect("the table");
        let insert = CompiledStatements {
            statements: vec![(
                "INSERT INTO accounts (id, owner, cents) VALUES ($1, $2, $3)".into(),
                vec![
                    var::EXTERNAL_ACCOUNT_ID,
                    var::USER_ID,
                    var::OPENING_BALANCE_CENTS,
                ],
            )],
            ..setup
        };
        let users = [1, 2, 1].map(|n| (format!("c-{n}"), user(n)));
        let created = create_users(&insert, users).await.expect("created");
        assert_eq!(
            created,
            [Created::Created, Created::Created, Created::Existed]
        );
        let mut connection = connect(insert.database()).await.expect("connects");
        let total: i64 = sqlx::query_scalar("SELECT SUM(cents) FROM accounts")
            .fetch_one(&mut connection)
            .await
            .expect("sums");
        assert_eq!(total, 3_000);
        let bad = CompiledStatements {
            statements: vec![("INSERT INTO nowhere VALUES ($1)".into(), vec![var::USER_ID])],
            ..insert
        };
        let (who, why) = create_users(&bad, [("c-3".to_owned(), user(3))])
            .await
            .expect_err("no such table");
        assert_eq!(who, "c-3");
        assert!(why.contains("statement 0 failed"), "{why}");
    }
}

//! `harness bench-reconcile`: builds the evidence of a run of one million transfers, with a
//! few of every violation class planted among them, reconciles it and prints how long that
//! took (and whether every planted class was found, so the figure is of a reconciler that
//! works).

use crate::cli::ReconcileBenchArgs;
use crate::history::{HistoryRecord, Outcome};
use crate::reconcile::read_again::{BooksChange, ReadAgain};
use crate::reconcile::{self, Books, Convergence, Evidence, Resolution, Sample, ViolationClass};
use service::contract::{
    AccountBalance, ClientStatus, Dump, Entry, EntryKind, Saga, SagaDump, SagaState,
    TransferRecord, TransferStatus,
};
use service::ids::{AccountId, IdempotencyKey, TransferId, UserId};
use service::money::AmountCents;
use std::time::Instant;

/// Each external account's opening balance: enough for every transfer of a user.
const OPENING: u64 = 1_000_000_000_000;

/// The books, history and saga log of a synthetic run, built one transfer at a time.
struct Synthetic {
    users: u32,
    external: Dump,
    ledger: Dump,
    history: Vec<HistoryRecord>,
    sagas: Vec<Saga>,
    resolutions: Vec<Resolution>,
    /// Entries that appear only when the books are read again.
    late_external: Vec<Entry>,
}

fn parse<T>(made: Result<T, service::ids::IdError>) -> T {
    made.unwrap_or_else(|e| panic!("a synthetic id is valid: {e}"))
}

impl Synthetic {
    fn new(users: u32, transfers: u32) -> Synthetic {
        let accounts = |name: fn(u32) -> String, balance: u64| Dump {
            accounts: (0..users)
                .map(|n| AccountBalance {
                    account_id: name(n),
                    balance_cents: AmountCents::new(balance),
                })
                .collect(),
            entries: Vec::with_capacity(transfers as usize + 64),
            transfers: Vec::new(),
        };
        Synthetic {
            users,
            external: accounts(crate::population::account_id, OPENING),
            ledger: accounts(crate::population::user_id, 0),
            history: Vec::with_capacity(transfers as usize),
            sagas: Vec::with_capacity(transfers as usize),
            resolutions: Vec::new(),
            late_external: Vec::new(),
        }
    }

    fn entry(dump: &mut Dump, id: &str, n: u32, kind: EntryKind, amount: u64) {
        let account = &mut dump.accounts[n as usize];
        let balance = account.balance_cents.get();
        let after = match kind {
            EntryKind::Debit => balance.saturating_sub(amount),
            EntryKind::Reversal | EntryKind::Credit => balance + amount,
        };
        account.balance_cents = AmountCents::new(after);
        let seq = dump.entries.len() as i64 + 1;
        dump.entries.push(Entry {
            seq,
            transfer_id: id.to_owned(),
            account_id: account.account_id.clone(),
            kind,
            amount_cents: AmountCents::new(amount),
            balance_after_cents: account.balance_cents,
            at_ms: seq,
        });
    }

    fn answer(&mut self, op: u32, n: u32, amount: u64, outcome: Outcome, id: Option<&str>) {
        self.history.push(HistoryRecord {
            op: u64::from(op),
            attempt: 0,
            key: format!("k-{op}"),
            user_id: crate::population::user_id(n),
            external_account_id: crate::population::account_id(n),
            amount_cents: amount,
            scheduled_us: u64::from(op),
            sent_us: Some(u64::from(op)),
            answered_us: Some(u64::from(op) + 5),
            latency_us: Some(5),
            outcome,
            jepsen_type: outcome.jepsen().to_owned(),
            http_status: None,
            error_kind: None,
            transfer_id: id.map(str::to_owned),
            reason: None,
            measured: true,
        });
    }

    fn saga(&mut self, op: u32, id: &str, n: u32, amount: u64, state: SagaState) {
        self.sagas.push(Saga {
            transfer_id: parse(TransferId::parse(id)),
            user_id: parse(UserId::parse(&crate::population::user_id(n))),
            idempotency_key: parse(IdempotencyKey::parse(&format!("k-{op}"))),
            external_account_id: parse(AccountId::parse(&crate::population::account_id(n))),
            amount_cents: AmountCents::new(amount),
            state,
            reason: (state == SagaState::Failed).then(|| "aborted".to_owned()),
            created_ms: 0,
            updated_ms: 0,
        });
    }

    /// Transfer `op`, done right or with one planted violation.
    fn transfer(&mut self, op: u32, plant: Option<ViolationClass>) {
        use ViolationClass::*;
        let n = op % self.users;
        let id = format!("t-{op}");
        let amount = 100 + u64::from(op % 9_900);
        let (ext, led) = (&mut self.external, &mut self.ledger);
        let mut outcome = Outcome::Completed;
        let mut state = SagaState::Completed;
        let mut answered_id = Some(id.clone());
        let mut retried_as = None;
        match plant {
            None => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
            }
            Some(LostDebit) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                outcome = Outcome::Error;
                answered_id = None;
                state = SagaState::Reversed;
            }
            Some(CreditWithoutDebit | ContractBroken) => {
                Self::entry(led, &id, n, EntryKind::Credit, amount);
            }
            Some(ReversalAfterCredit) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
                Self::entry(ext, &id, n, EntryKind::Reversal, amount);
                outcome = Outcome::Error;
                answered_id = None;
                state = SagaState::Reversed;
            }
            Some(UnequalEffects | AmountMismatch) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount - 1);
            }
            Some(WrongAccount) => {
                Self::entry(ext, &id, (n + 1) % self.users, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
            }
            Some(Overdraft) => {
                Self::entry(ext, &id, n, EntryKind::Debit, OPENING * 2);
                Self::entry(led, &id, n, EntryKind::Credit, OPENING * 2);
            }
            Some(DoubleDebit) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
            }
            Some(DoubleReversal) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(ext, &id, n, EntryKind::Reversal, amount);
                Self::entry(ext, &id, n, EntryKind::Reversal, amount);
                outcome = Outcome::Failed;
                state = SagaState::Reversed;
            }
            Some(DoubleCredit) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
            }
            Some(DoubleCharge | SplitKey) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
                let again = format!("{id}-again");
                if plant == Some(DoubleCharge) {
                    Self::entry(ext, &again, n, EntryKind::Debit, amount);
                    Self::entry(led, &again, n, EntryKind::Credit, amount);
                }
                retried_as = Some(again);
            }
            Some(OrphanEntry) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
                let ghost = format!("ghost-{op}");
                Self::entry(ext, &ghost, n, EntryKind::Debit, amount);
                Self::entry(led, &ghost, n, EntryKind::Credit, amount);
            }
            Some(ReversalWithoutDebit) => {
                Self::entry(ext, &id, n, EntryKind::Reversal, amount);
                outcome = Outcome::Error;
                answered_id = None;
                state = SagaState::Failed;
            }
            Some(LateOriginal) => {
                ext.transfers.push(TransferRecord {
                    transfer_id: id.clone(),
                    account_id: None,
                    amount_cents: None,
                    status: TransferStatus::Tombstone,
                    reason: None,
                });
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                outcome = Outcome::Error;
                answered_id = None;
                state = SagaState::Failed;
            }
            Some(WrongFinalStatus | LostTransfer) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                outcome = Outcome::Pending;
                state = SagaState::Failed;
                self.resolutions.push(Resolution {
                    op: u64::from(op),
                    attempt: 0,
                    outcome,
                    user_id: crate::population::user_id(n),
                    key: format!("k-{op}"),
                    transfer_id: Some(id.clone()),
                    // Said to be completed, though the debit was given back and nothing
                    // credited; or not known at all.
                    final_status: (plant == Some(WrongFinalStatus))
                        .then_some(ClientStatus::Completed),
                    asked: true,
                });
                Self::entry(ext, &id, n, EntryKind::Reversal, amount);
            }
            Some(Stuck) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                outcome = Outcome::Pending;
                state = SagaState::Debited;
            }
            Some(ShedWithEffect) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
                outcome = Outcome::Shed;
                answered_id = None;
            }
            Some(MovedAfterFinalRead) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
                // A reversal that lands after the final read.
                let seq = i64::from(u32::MAX) + self.late_external.len() as i64;
                self.late_external.push(Entry {
                    seq,
                    transfer_id: id.clone(),
                    account_id: crate::population::account_id(n),
                    kind: EntryKind::Reversal,
                    amount_cents: AmountCents::new(amount),
                    balance_after_cents: AmountCents::new(OPENING),
                    at_ms: seq,
                });
            }
            Some(CreatedDuringRun | LostDuringRun | NegativeBalance) => {
                Self::entry(ext, &id, n, EntryKind::Debit, amount);
                Self::entry(led, &id, n, EntryKind::Credit, amount);
            }
        }
        self.answer(op, n, amount, outcome, answered_id.as_deref());
        if let Some(again) = retried_as {
            self.answer(op, n, amount, Outcome::Failed, Some(&again));
        }
        if plant != Some(LostTransfer) {
            self.saga(op, &id, n, amount, state);
        }
    }
}

/// The classes planted, and how many transfers of each.
const PLANTED_EACH: u32 = 3;

pub fn run(runtime: &tokio::runtime::Runtime, args: &ReconcileBenchArgs) -> i32 {
    let built = Instant::now();
    let users = args.users.max(2);
    let mut run = Synthetic::new(users, args.transfers);
    let before = (run.external.clone(), run.ledger.clone());
    let planted: Vec<ViolationClass> = ViolationClass::ALL
        .into_iter()
        .filter(|c| {
            !matches!(
                c,
                ViolationClass::CreatedDuringRun
                    | ViolationClass::LostDuringRun
                    | ViolationClass::NegativeBalance
            )
        })
        .collect();
    let spacing = (args.transfers / (planted.len() as u32 * PLANTED_EACH + 1)).max(1);
    for op in 0..args.transfers {
        let slot = op / spacing;
        let plant = (op % spacing == spacing / 2)
            .then(|| planted.get((slot % planted.len() as u32) as usize).copied())
            .flatten()
            .filter(|_| slot < planted.len() as u32 * PLANTED_EACH);
        run.transfer(op, plant);
    }
    let initial = users as u64 * OPENING;
    let sample = |at_s, ledger, external, lowest| Sample {
        at_s,
        ledger_total_cents: ledger,
        external_total_cents: external,
        lowest_balance_cents: lowest,
        in_flight_bound_cents: Some(0),
        active_faults: vec!["synthetic".into()],
    };
    let evidence = Evidence {
        books: Some(Books {
            external_before: before.0,
            ledger_before: before.1,
            external_after: run.external,
            ledger_after: run.ledger,
            read_again: Some(ReadAgain {
                when: "after the synthetic run".into(),
                error: None,
                external: BooksChange {
                    entries_added: run.late_external,
                    ..BooksChange::default()
                },
                ledger: BooksChange::default(),
            }),
        }),
        history: run.history,
        convergence: Convergence {
            polled: None,
            sagas: Some(SagaDump {
                design: "synthetic".into(),
                sagas: run.sagas,
            }),
            converged: false,
            convergence_ms: None,
        },
        resolutions: run.resolutions,
        samples: vec![
            sample(1.0, 10, initial, 0),
            sample(2.0, 0, initial - 10, 0),
            sample(3.0, 0, initial, -1),
        ],
    };
    let mut evidence = evidence;
    let build_s = built.elapsed().as_secs_f64();
    let sql = match &args.books_dsn {
        None => None,
        Some(dsn) => match runtime.block_on(sql_books::write(dsn, args, &evidence)) {
            Ok(source) => Some(source),
            Err(e) => {
                eprintln!("harness bench-reconcile: error: writing the books to {dsn}: {e}");
                return 2;
            }
        },
    };
    let mut times_s = Vec::new();
    let mut read_times_s = Vec::new();
    let mut reconciliation = None;
    for _ in 0..args.repeat {
        let started = Instant::now();
        if let Some(source) = &sql {
            match runtime.block_on(sql_books::read(source)) {
                Ok((external, ledger)) => {
                    if let Some(books) = evidence.books.as_mut() {
                        // SQL books hold entries only: the tombstones stay the dump's.
                        let tombstones = std::mem::take(&mut books.external_after.transfers);
                        books.external_after = Dump {
                            transfers: tombstones,
                            ..external
                        };
                        books.ledger_after = ledger;
                    }
                }
                Err(e) => {
                    eprintln!("harness bench-reconcile: error: reading the books back: {e}");
                    return 2;
                }
            }
            read_times_s.push(started.elapsed().as_secs_f64());
        }
        let found = reconcile::reconcile(&evidence);
        times_s.push(started.elapsed().as_secs_f64());
        // Dropped outside the timing, as a run's would be after writing it.
        reconciliation = Some(found);
    }
    if !read_times_s.is_empty() {
        read_times_s.sort_by(f64::total_cmp);
        let each: Vec<String> = read_times_s.iter().map(|t| format!("{t:.3}")).collect();
        println!(
            "books read back by SQL in {:.3} s (median of {}: {} s); the times below include the read",
            read_times_s[read_times_s.len() / 2],
            read_times_s.len(),
            each.join(", ")
        );
    }
    let Some(reconciliation) = reconciliation else {
        return 2;
    };
    times_s.sort_by(f64::total_cmp);
    let median_s = times_s[times_s.len() / 2];
    let missing: Vec<&str> = ViolationClass::ALL
        .into_iter()
        .filter(|c| !reconciliation.anomalies.contains_key(c))
        .map(ViolationClass::as_str)
        .collect();
    println!(
        "bench-reconcile: {} transfers ({} entries, {} history lines, {} sagas) built in {build_s:.1} s",
        args.transfers,
        evidence.books.as_ref().map_or(0, |b| b.external_after.entries.len() + b.ledger_after.entries.len()),
        evidence.history.len(),
        evidence.convergence.sagas.as_ref().map_or(0, |d| d.sagas.len()),
    );
    let each: Vec<String> = times_s.iter().map(|t| format!("{t:.3}")).collect();
    println!(
        "reconciled in {median_s:.3} s (median of {}: {} s): {} violations in {} classes",
        times_s.len(),
        each.join(", "),
        reconciliation.violations.len(),
        reconciliation.anomalies.len()
    );
    if missing.is_empty() {
        println!("every violation class planted was found");
        0
    } else {
        println!("classes planted but not found: {}", missing.join(", "));
        1
    }
}

/// The synthetic books written into a database and read back through a `books: sql` source.
mod sql_books {
    use crate::cli::ReconcileBenchArgs;
    use crate::mapping::books::{BookSource, SqlBooks};
    use crate::reconcile::Evidence;
    use crate::topology::ServiceRole;
    use service::contract::{Dump, EntryKind};
    use sqlx::{AssertSqlSafe, Connection};

    /// Rows per INSERT statement.
    const ROWS_PER_INSERT: usize = 1_000;

    /// The tables of `side` (`external`, `ledger`).
    fn tables(side: &str) -> (String, String) {
        (
            format!("bench_books_{side}_accounts"),
            format!("bench_books_{side}_entries"),
        )
    }

    /// Writes the run's final books into tables of their own; the source that reads them.
    pub async fn write(
        dsn: &str,
        args: &ReconcileBenchArgs,
        evidence: &Evidence,
    ) -> Result<(BookSource, BookSource), String> {
        sqlx::any::install_default_drivers();
        let books = evidence
            .books
            .as_ref()
            .ok_or("the synthetic run has no books")?;
        let sql = |side: &str| {
            let (accounts, entries) = tables(side);
            BookSource {
                http: None,
                sql: Some(SqlBooks {
                    dsn: dsn.to_owned(),
                    password_env: args.books_password_env.clone(),
                    balances: format!("SELECT id, balance_cents FROM {accounts} ORDER BY id"),
                    entries: format!(
                        "SELECT reference, account, amount_cents FROM {entries} ORDER BY n"
                    ),
                }),
            }
        };
        let external = sql("external");
        let Some(spec) = &external.sql else {
            return Err("no SQL source".into());
        };
        let mut connection = crate::system::sql::connect(spec.database()).await?;
        for (side, dump) in [
            ("external", &books.external_after),
            ("ledger", &books.ledger_after),
        ] {
            insert(&mut connection, side, dump).await?;
        }
        let _ = connection.close().await;
        Ok((external, sql("ledger")))
    }

    async fn execute(connection: &mut sqlx::AnyConnection, text: String) -> Result<(), String> {
        sqlx::raw_sql(AssertSqlSafe(text))
            .execute(&mut *connection)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn insert(
        connection: &mut sqlx::AnyConnection,
        side: &str,
        dump: &Dump,
    ) -> Result<(), String> {
        let (accounts, entries) = tables(side);
        for table in [&accounts, &entries] {
            execute(connection, format!("DROP TABLE IF EXISTS {table}")).await?;
        }
        execute(
            connection,
            // VARCHAR, not TEXT: MySQL keys no TEXT column without a length.
            format!(
                "CREATE TABLE {accounts} (id VARCHAR(64) PRIMARY KEY, balance_cents BIGINT NOT NULL)"
            ),
        )
        .await?;
        execute(
            connection,
            format!(
                "CREATE TABLE {entries} (n BIGINT PRIMARY KEY, reference TEXT NOT NULL, \
                 account TEXT NOT NULL, amount_cents BIGINT NOT NULL)"
            ),
        )
        .await?;
        // The synthetic ids are letters, digits and dashes: written as literals.
        for chunk in dump.accounts.chunks(ROWS_PER_INSERT) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|a| format!("('{}', {})", a.account_id, a.balance_cents.get()))
                .collect();
            execute(
                connection,
                format!("INSERT INTO {accounts} VALUES {}", rows.join(",")),
            )
            .await?;
        }
        for chunk in dump.entries.chunks(ROWS_PER_INSERT) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|e| {
                    let amount = i128::from(e.amount_cents.get());
                    let signed = match (side, e.kind) {
                        ("external", EntryKind::Debit) => -amount,
                        ("ledger", EntryKind::Reversal | EntryKind::Debit) => -amount,
                        _ => amount,
                    };
                    format!(
                        "({}, '{}', '{}', {signed})",
                        e.seq, e.transfer_id, e.account_id
                    )
                })
                .collect();
            execute(
                connection,
                format!("INSERT INTO {entries} VALUES {}", rows.join(",")),
            )
            .await?;
        }
        Ok(())
    }

    /// Both institutions' books read back, as a run reads them.
    pub async fn read(source: &(BookSource, BookSource)) -> Result<(Dump, Dump), String> {
        let http = reqwest::Client::new();
        let external = crate::system::books::read(&source.0, ServiceRole::External, &http).await?;
        let ledger = crate::system::books::read(&source.1, ServiceRole::Ledger, &http).await?;
        Ok((external, ledger))
    }
}

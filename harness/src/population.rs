//! The users a run drives, named in one place: user `n` is `u-n` in the ledger and at the
//! coordinator, linked to external account `a-n`; or, when a mapping's `users.reuse` lists
//! existing users, the list's row `n` (`Names`). Seeding, the generator and the reconciler
//! all name users through here, with the contract's bodies.

use crate::mapping::users::{read_users, UserRow, UserSource};
use crate::mapping::CompiledApi;
use crate::profile::plan::RunPlan;
use service::contract::{Dump, SeedAccount, SeedAccounts, TransferRequest, UserLink, UserLinks};
use service::money::AmountCents;
use std::sync::Arc;

pub fn user_id(n: u32) -> String {
    format!("u-{n}")
}

pub fn account_id(n: u32) -> String {
    format!("a-{n}")
}

/// The names of a run's users: numbered (`u-n`, `a-n`), or the rows of a list of existing
/// users. Cloning shares the list.
#[derive(Debug, Clone, Default)]
pub struct Names {
    listed: Option<Arc<[UserRow]>>,
}

impl Names {
    /// The names `api`'s users have: its `users.reuse` file's rows, or numbered. An error
    /// names the file and what is wrong with it.
    pub fn of(plan: &RunPlan, api: Option<&CompiledApi>) -> Result<Names, String> {
        match api.and_then(|api| api.users.as_ref()) {
            Some(UserSource::Reuse(path)) => {
                let rows = read_users(path)?;
                Names::listed(rows, plan).map_err(|e| format!("{}: {e}", path.display()))
            }
            _ => Ok(Names::default()),
        }
    }

    /// The plan's users as `rows` lists them, user `n` being row `n`; the list must hold
    /// every user of the plan.
    pub fn listed(rows: Vec<UserRow>, plan: &RunPlan) -> Result<Names, String> {
        if rows.len() < plan.users as usize {
            return Err(format!(
                "lists {} users; the profile drives {}",
                rows.len(),
                plan.users
            ));
        }
        Ok(Names {
            listed: Some(rows.into()),
        })
    }

    pub fn is_listed(&self) -> bool {
        self.listed.is_some()
    }

    fn row(&self, n: u32) -> Option<&UserRow> {
        self.listed.as_ref().and_then(|rows| rows.get(n as usize))
    }

    pub fn user_id(&self, n: u32) -> String {
        self.row(n)
            .map_or_else(|| user_id(n), |r| r.user_id.clone())
    }

    pub fn account_id(&self, n: u32) -> String {
        self.row(n)
            .map_or_else(|| account_id(n), |r| r.external_account_id.clone())
    }

    /// User `n`'s transfer of `amount` from their external account into their ledger account.
    pub fn transfer_request(&self, n: u32, amount: AmountCents) -> TransferRequest {
        TransferRequest {
            user_id: self.user_id(n),
            external_account_id: self.account_id(n),
            amount_cents: amount.into(),
        }
    }
}

/// The users this process drives: the plan's, or its shard's part of them.
pub fn users_of(plan: &RunPlan) -> impl Iterator<Item = u32> + '_ {
    (0..plan.users).filter(|n| plan.shard.owns(*n))
}

/// One account per user of the plan's shard, named by `name`, each opening with `balance`.
fn accounts(plan: &RunPlan, name: fn(u32) -> String, balance: AmountCents) -> SeedAccounts {
    SeedAccounts {
        accounts: users_of(plan)
            .map(|n| SeedAccount {
                account_id: name(n),
                balance_cents: balance.into(),
            })
            .collect(),
    }
}

/// The external institution's accounts: every user's (of the shard), with the plan's opening balance.
pub fn external_accounts(plan: &RunPlan) -> SeedAccounts {
    accounts(plan, account_id, plan.opening_balance)
}

/// The ledger's accounts: every user's, at zero.
pub fn ledger_accounts(plan: &RunPlan) -> SeedAccounts {
    accounts(plan, user_id, AmountCents::ZERO)
}

/// `accounts` less those `dump` holds already.
pub fn not_in(accounts: SeedAccounts, dump: &Dump) -> SeedAccounts {
    let held: std::collections::HashSet<&str> = dump
        .accounts
        .iter()
        .map(|a| a.account_id.as_str())
        .collect();
    SeedAccounts {
        accounts: accounts
            .accounts
            .into_iter()
            .filter(|a| !held.contains(a.account_id.as_str()))
            .collect(),
    }
}

/// The coordinator's links from each user to their external account.
pub fn links(plan: &RunPlan) -> UserLinks {
    UserLinks {
        users: users_of(plan)
            .map(|n| UserLink {
                user_id: user_id(n),
                external_account_id: account_id(n),
            })
            .collect(),
    }
}

/// With `seed: reuse` or a list of existing users: which of the plan's users (as `names`
/// names them) have no account in the books read before the load (`external`, `ledger`), as
/// a sentence naming the first few; None when all do.
pub fn missing_accounts(
    plan: &RunPlan,
    names: &Names,
    external: &Dump,
    ledger: &Dump,
) -> Option<String> {
    let has = |dump: &Dump| -> std::collections::HashSet<String> {
        dump.accounts.iter().map(|a| a.account_id.clone()).collect()
    };
    let (in_external, in_ledger) = (has(external), has(ledger));
    let missing: Vec<String> = users_of(plan)
        .flat_map(|n| {
            let (user, account) = (names.user_id(n), names.account_id(n));
            let external = (!in_external.contains(&account)).then(|| format!("external {account}"));
            let ledger = (!in_ledger.contains(&user)).then(|| format!("ledger {user}"));
            external.into_iter().chain(ledger)
        })
        .collect();
    if missing.is_empty() {
        return None;
    }
    let first: Vec<&str> = missing.iter().take(3).map(String::as_str).collect();
    Some(format!(
        "{} of the profile's {} users' accounts do not exist (first: {})",
        missing.len(),
        plan.shard.users_of(plan.users) * 2,
        first.join(", ")
    ))
}

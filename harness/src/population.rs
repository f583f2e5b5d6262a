//! The users a run drives, named in one place: user `n` is `u-n` in the ledger and at the
//! coordinator, linked to external account `a-n`. Seeding, the generator and the reconciler
//! all name users through here, with the contract's bodies.

use crate::profile::plan::RunPlan;
use service::contract::{Dump, SeedAccount, SeedAccounts, TransferRequest, UserLink, UserLinks};
use service::money::AmountCents;

pub fn user_id(n: u32) -> String {
    format!("u-{n}")
}

pub fn account_id(n: u32) -> String {
    format!("a-{n}")
}

/// User `n`'s transfer of `amount` from their external account into their ledger account.
pub fn transfer_request(n: u32, amount: AmountCents) -> TransferRequest {
    TransferRequest {
        user_id: user_id(n),
        external_account_id: account_id(n),
        amount_cents: amount.into(),
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

/// With `seed: reuse`: which of the plan's users have no account in the books read before
/// the load (`external`, `ledger`), as a sentence naming the first few; None when all do.
pub fn missing_accounts(plan: &RunPlan, external: &Dump, ledger: &Dump) -> Option<String> {
    let has = |dump: &Dump| -> std::collections::HashSet<String> {
        dump.accounts.iter().map(|a| a.account_id.clone()).collect()
    };
    let (in_external, in_ledger) = (has(external), has(ledger));
    let missing: Vec<String> = users_of(plan)
        .flat_map(|n| {
            let external = (!in_external.contains(&account_id(n)))
                .then(|| format!("external {}", account_id(n)));
            let ledger =
                (!in_ledger.contains(&user_id(n))).then(|| format!("ledger {}", user_id(n)));
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

//! The users a run drives, named in one place: user `n` is `u-n` in the ledger and at the
//! coordinator, linked to external account `a-n`. Seeding, the generator and the reconciler
//! all name users through here, with the contract's bodies.

use crate::profile::plan::RunPlan;
use service::contract::{SeedAccount, SeedAccounts, TransferRequest, UserLink, UserLinks};
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

/// The external institution's accounts: every user's, with the plan's opening balance.
pub fn external_accounts(plan: &RunPlan) -> SeedAccounts {
    SeedAccounts {
        accounts: (0..plan.users)
            .map(|n| SeedAccount {
                account_id: account_id(n),
                balance_cents: plan.opening_balance.into(),
            })
            .collect(),
    }
}

/// The ledger's accounts: every user's, at zero.
pub fn ledger_accounts(plan: &RunPlan) -> SeedAccounts {
    SeedAccounts {
        accounts: (0..plan.users)
            .map(|n| SeedAccount {
                account_id: user_id(n),
                balance_cents: AmountCents::ZERO.into(),
            })
            .collect(),
    }
}

/// The coordinator's links from each user to their external account.
pub fn links(plan: &RunPlan) -> UserLinks {
    UserLinks {
        users: (0..plan.users)
            .map(|n| UserLink {
                user_id: user_id(n),
                external_account_id: account_id(n),
            })
            .collect(),
    }
}

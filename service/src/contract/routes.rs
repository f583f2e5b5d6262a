//! The routes of the three services and the header that scopes a transfer request. A path
//! with `{transfer_id}` is filled in with [`with_transfer_id`].

/// The client's idempotency key, scoped to the user (`POST /transfers`).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

// The coordinator.
pub const TRANSFERS: &str = "/transfers";
pub const TRANSFER: &str = "/transfers/{transfer_id}";
pub const ADMIN_USERS: &str = "/admin/users";
pub const ADMIN_SAGAS: &str = "/admin/sagas";
pub const ADMIN_IN_FLIGHT: &str = "/admin/in-flight";

// The external institution.
pub const DEBITS: &str = "/debits";
pub const DEBIT: &str = "/debits/{transfer_id}";
pub const REVERSE: &str = "/debits/{transfer_id}/reverse";

// The internal ledger.
pub const CREDITS: &str = "/credits";
pub const CREDIT: &str = "/credits/{transfer_id}";
pub const ADMIN_POLICY: &str = "/admin/policy";

// Both institutions.
pub const ADMIN_ACCOUNTS: &str = "/admin/accounts";
pub const ADMIN_DUMP: &str = "/admin/dump";
pub const ADMIN_KNOBS: &str = "/admin/knobs";
pub const ADMIN_TOTALS: &str = "/admin/totals";

// Every service.
pub const ADMIN_DISK: &str = "/admin/disk";
pub const HEALTHZ: &str = "/healthz";
pub const METRICS: &str = "/metrics";

/// Every route, for the test that holds `docs/contract.md` to them.
pub const ALL: [&str; 18] = [
    TRANSFERS,
    TRANSFER,
    ADMIN_USERS,
    ADMIN_SAGAS,
    ADMIN_IN_FLIGHT,
    DEBITS,
    DEBIT,
    REVERSE,
    CREDITS,
    CREDIT,
    ADMIN_POLICY,
    ADMIN_ACCOUNTS,
    ADMIN_DUMP,
    ADMIN_KNOBS,
    ADMIN_TOTALS,
    ADMIN_DISK,
    HEALTHZ,
    METRICS,
];

/// `route` with its `{transfer_id}` filled in.
pub fn with_transfer_id(route: &str, transfer_id: &str) -> String {
    route.replace("{transfer_id}", transfer_id)
}

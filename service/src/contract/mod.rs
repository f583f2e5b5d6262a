//! The wire: every JSON body the three services and the harness exchange, as plain serde
//! types with no SQL or HTTP in them. The services parse their requests into these types and
//! build their answers from them; the harness sends and reads the same types, so a change on
//! one side that the other cannot read does not compile. `docs/contract.md` says the same for
//! people, and a test holds the two together; `docs/schema/` holds the JSON Schemas generated
//! from these types.
//!
//! - `transfer`: the coordinator's bodies: a transfer request and its answer, the saga log
//!   dump, user links.
//! - `books`: the institutions' bodies: debits, credits, transfer records, dumps, seeding.
//! - `error`: the error body and its codes, each with its HTTP status.
//! - `sampling`: the totals and the money in flight the harness samples during a run.
//! - `reasons`: the reasons of a failed transfer that other parts rely on.
//! - `routes`: the paths and the idempotency header.
//! - `wire_amount`: an amount as a request carries it.
//! - `schemas`: the JSON Schemas of the bodies, committed under `docs/schema/`.
//!
//! Requests carry what the sender wrote (ids as text, amounts as the exact JSON number), so
//! the receiver can validate each field into its domain type and name the one that is wrong;
//! answers carry validated values.

pub mod books;
#[cfg(test)]
mod doc_check;
pub mod error;
pub mod reasons;
pub mod routes;
pub mod sampling;
pub mod schemas;
pub mod transfer;
pub mod wire_amount;

pub use books::{
    AccountBalance, Created, CreditRequest, DebitRequest, Dump, DumpCursor, DumpPage, DumpQuery,
    Entry, EntryKind, SeedAccount, SeedAccounts, TransferRecord, TransferStatus, DUMP_PAGE_MAX,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use sampling::{InFlight, Totals};
pub use transfer::{
    ClientStatus, Saga, SagaDump, SagaPage, SagaQuery, SagaState, TransferRequest, TransferView,
    UserLink, UserLinks,
};
pub use wire_amount::WireAmount;

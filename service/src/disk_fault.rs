//! The disk fault a service's store can be put under (`GET|PUT /admin/disk`): its disk full,
//! or read-only. The store's writer runs each batch as usual and then, where a real disk
//! would fail the WAL append at `COMMIT`, fails the commit with an injected `SQLITE_FULL`
//! ("database or disk is full") or `SQLITE_READONLY` and rolls the batch back: nothing of it
//! is written, every write in it is answered 503 `storage_unavailable`, and the next batch
//! after the fault is lifted commits as usual. Injected, not a real small file system:
//! mounting one needs privileges a test machine does not give; the write path from the
//! failed commit on is the real one. The fault lives in the process's memory: a service
//! started again starts with a healthy disk.

use crate::settings::{SettingError, Settings};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the disk does with a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiskState {
    /// Commits are written and synced.
    #[default]
    Ok,
    /// Every commit fails as on a full disk (`SQLITE_FULL`).
    Full,
    /// Every commit fails as on a disk remounted read-only (`SQLITE_READONLY`).
    ReadOnly,
}

impl DiskState {
    /// The SQLite error a commit fails with on such a disk, or `None` when it succeeds.
    pub fn commit_error(self) -> Option<&'static str> {
        match self {
            DiskState::Ok => None,
            DiskState::Full => Some("injected SQLITE_FULL: database or disk is full"),
            DiskState::ReadOnly => {
                Some("injected SQLITE_READONLY: attempt to write a readonly database")
            }
        }
    }
}

/// The body of `GET|PUT /admin/disk`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DiskFault {
    pub disk: DiskState,
}

impl Settings for DiskFault {
    fn validate(&self) -> Result<(), SettingError> {
        Ok(())
    }
}

//! Which sagas a live task of this process is driving. The recovery worker skips them, so a
//! request handler and the worker never drive one saga at once; the compare-and-set on the
//! saga row stays the last line of defence.

use crate::ids::TransferId;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Ownership {
    owned: Arc<Mutex<HashSet<TransferId>>>,
}

/// Held while a task drives a saga; releases it on drop, even if the task is cancelled.
pub struct OwnerGuard {
    id: TransferId,
    owned: Arc<Mutex<HashSet<TransferId>>>,
}

impl Ownership {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<TransferId>> {
        match self.owned.lock() {
            Ok(set) => set,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Claims `id`, or None when another task holds it.
    pub fn try_claim(&self, id: &TransferId) -> Option<OwnerGuard> {
        self.set().insert(id.clone()).then(|| OwnerGuard {
            id: id.clone(),
            owned: self.owned.clone(),
        })
    }

    pub fn is_owned(&self, id: &TransferId) -> bool {
        self.set().contains(id)
    }
}

impl OwnerGuard {
    /// The saga held.
    pub fn id(&self) -> &TransferId {
        &self.id
    }
}

impl Drop for OwnerGuard {
    fn drop(&mut self) {
        let mut set = match self.owned.lock() {
            Ok(set) => set,
            Err(poisoned) => poisoned.into_inner(),
        };
        set.remove(&self.id);
    }
}

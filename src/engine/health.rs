//! Whether the daemon can write its database. While it cannot (a full disk,
//! a read-only file, another writer holding the lock past the busy timeout)
//! no sweep starts and no request is sent: the result of a call that cannot
//! be recorded would be lost. The heartbeat probes the database every few
//! seconds and clears the fault by itself once a write succeeds again.

use chrono::{DateTime, Utc};

use super::Engine;

/// Why, and since when, the database cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFault {
    /// When the first failed write of this spell was seen.
    pub since: DateTime<Utc>,
    /// The latest error.
    pub error: String,
}

impl Engine {
    /// The current storage fault, if the database cannot be written.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        self.storage_fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records the result of a write probe: an error starts (or continues) a
    /// fault, a success ends it. Logs each change once.
    pub fn note_storage(&self, result: Result<(), String>) {
        let mut fault = self.storage_fault.lock().unwrap_or_else(|p| p.into_inner());
        match (result, fault.as_mut()) {
            (Ok(()), None) => {}
            (Ok(()), Some(f)) => {
                tracing::info!(
                    since = %crate::clock::to_db_text(f.since),
                    "the database is writable again; dispatching resumes"
                );
                *fault = None;
            }
            (Err(error), Some(f)) => f.error = error,
            (Err(error), None) => {
                tracing::error!(%error, "DATABASE NOT WRITABLE: dispatching nothing until it is (full disk? read-only? locked by another writer?)");
                *fault = Some(StorageFault {
                    since: self.clock.now(),
                    error,
                });
            }
        }
    }
}

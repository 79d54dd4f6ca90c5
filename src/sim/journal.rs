//! The journal: one entry per dispatch request received, kept in memory and,
//! with `--journal FILE`, appended to the file as one JSON line, flushed per
//! line so a test can read it while the server runs.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the simulator did with one dispatch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DispatchResult {
    /// Placed, answered 200 with a `requestId`.
    #[serde(rename = "dispatched")]
    Dispatched,
    /// Over `--rate-limit`: 429, not placed.
    #[serde(rename = "rate_limited")]
    RateLimited,
    /// `--fault-429`: 429, not placed.
    #[serde(rename = "fault_429")]
    Fault429,
    /// `--fault-drop`: connection closed without an answer, not placed.
    #[serde(rename = "fault_drop")]
    FaultDrop,
    /// `--fault-500`: 500, not placed.
    #[serde(rename = "fault_500")]
    Fault500,
    /// `--fault-500-placed`: placed, then 500.
    #[serde(rename = "fault_500_placed")]
    Fault500Placed,
    /// `--fault-timeout`: placed, the answer withheld.
    #[serde(rename = "fault_timeout")]
    FaultTimeout,
    /// `--fault-garbage`: placed, 200 with a body that is not JSON.
    #[serde(rename = "fault_garbage")]
    FaultGarbage,
    /// Wrong or missing key: 401.
    #[serde(rename = "unauthorized")]
    Unauthorized,
    /// A body that fails validation: 400 or 422.
    #[serde(rename = "invalid")]
    Invalid,
}

impl DispatchResult {
    /// Every result, in declaration order.
    pub const ALL: [DispatchResult; 10] = [
        Self::Dispatched,
        Self::RateLimited,
        Self::Fault429,
        Self::FaultDrop,
        Self::Fault500,
        Self::Fault500Placed,
        Self::FaultTimeout,
        Self::FaultGarbage,
        Self::Unauthorized,
        Self::Invalid,
    ];

    /// The journal's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dispatched => "dispatched",
            Self::RateLimited => "rate_limited",
            Self::Fault429 => "fault_429",
            Self::FaultDrop => "fault_drop",
            Self::Fault500 => "fault_500",
            Self::Fault500Placed => "fault_500_placed",
            Self::FaultTimeout => "fault_timeout",
            Self::FaultGarbage => "fault_garbage",
            Self::Unauthorized => "unauthorized",
            Self::Invalid => "invalid",
        }
    }

    /// Whether a call was placed.
    pub fn placed(self) -> bool {
        matches!(
            self,
            Self::Dispatched | Self::Fault500Placed | Self::FaultTimeout | Self::FaultGarbage
        )
    }
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When the request was received, RFC 3339 UTC with milliseconds.
    pub at: String,
    /// The request's `to_number`, when it had a string one.
    pub to_number: Option<String>,
    /// The request's `agent_id`, when it had an integer one.
    pub agent_id: Option<i64>,
    /// The request's `call_context` as sent (`null` when absent).
    pub call_context: Value,
    /// What the simulator did.
    pub result: DispatchResult,
    /// Whether a call was placed (and a call log created).
    pub placed: bool,
    /// The `requestId` of the placed call; `null` when not placed.
    pub request_id: Option<i64>,
    /// The request's `from_number_id`, when it had an integer one.
    #[serde(default)]
    pub from_number_id: Option<i64>,
}

/// `2026-11-25T08:00:00.123Z`.
pub(crate) fn journal_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The in-memory copy and the optional file, behind one lock so both get the
/// same entries in the same order.
pub(crate) struct Journal {
    // A std Mutex: nothing awaits while it is held.
    inner: Mutex<Inner>,
}

struct Inner {
    file: Option<BufWriter<File>>,
    /// The newest `keep` entries.
    entries: VecDeque<JournalEntry>,
    keep: usize,
}

impl Journal {
    /// A journal appending to `path` when given, and keeping the newest
    /// `keep` entries in memory.
    pub(crate) fn open(path: Option<&Path>, keep: usize) -> anyhow::Result<Journal> {
        let file = match path {
            Some(p) => Some(BufWriter::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open the journal {}", p.display()))?,
            )),
            None => None,
        };
        Ok(Journal {
            inner: Mutex::new(Inner {
                file,
                entries: VecDeque::new(),
                keep: keep.max(1),
            }),
        })
    }

    /// Appends an entry (and its line, flushed).
    pub(crate) fn record(&self, entry: JournalEntry) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = inner.file.as_mut() {
            let written = serde_json::to_writer(&mut *file, &entry)
                .map_err(std::io::Error::from)
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.flush());
            if let Err(e) = written {
                tracing::warn!(error = %e, "the simulator could not write its journal");
            }
        }
        if inner.entries.len() >= inner.keep {
            inner.entries.pop_front();
        }
        inner.entries.push_back(entry);
    }

    /// A copy of the entries kept (every one, up to `--max-calls`).
    pub(crate) fn entries(&self) -> Vec<JournalEntry> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.entries.iter().cloned().collect()
    }
}

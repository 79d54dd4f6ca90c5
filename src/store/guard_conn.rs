//! The dial guard's read on the try's own thread.
//!
//! Every query through sqlx goes to a connection's worker thread and back:
//! two thread wake-ups, and a task wake-up for each try a batched read
//! answers. For the guard (one indexed row per try, microseconds of SQLite
//! work) those wake-ups cost several times the read itself. So the guard
//! has a read-only connection of its own, opened with SQLite's C API, and a
//! try runs its one prepared statement synchronously, under a mutex, at the
//! instant it is about to send. Every statement is its own read transaction
//! (autocommit), reset at once, so the connection never holds a snapshot
//! open and never holds back a checkpoint. Any error here only sends the
//! try to the full read through the pool.

use std::ffi::{CStr, CString, c_int};
use std::path::Path;
use std::ptr;
use std::sync::Mutex;

use libsqlite3_sys as ffi;

/// The stamp, and the attempt's facts (`super::dial::GUARD_FACTS`, the
/// same columns in the same order; a test compares the two reads) when it
/// is still `sending` and its contact `in_progress`.
const SQL: &CStr =
    c"SELECT (SELECT stamp FROM dial_guard WHERE id = 1), a.contact_id, a.to_number, \
     CASE WHEN typeof(c.timezone) IN ('text', 'null') THEN c.timezone ELSE quote(c.timezone) END, \
     CASE WHEN typeof(c.agent_id) = 'integer' THEN c.agent_id END, \
     CASE WHEN typeof(c.attempts) = 'integer' THEN c.attempts END \
    FROM attempts a JOIN contacts c ON c.id = a.contact_id \
    WHERE a.id = ?1 AND a.state = 'sending' AND c.state = 'in_progress'";

/// How long a read waits for a lock (SQLite's busy handler) before the try
/// falls back to the pool: in WAL mode a reader waits only while the WAL
/// index is rebuilt after a crash.
const BUSY_MS: c_int = 50;

/// The dial guard as one try read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRow {
    /// The stamp (`None` if its row is gone).
    pub stamp: Option<i64>,
    /// The attempt's and its contact's facts, if it is still `sending`
    /// and its contact `in_progress`.
    pub attempt: Option<super::dial::GuardFacts>,
}

struct Raw {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
}

// SAFETY: the handles are used only under the mutex of `GuardConn`, by one
// thread at a time, and SQLite's default threading mode (serialized, as
// compiled by libsqlite3-sys) allows a connection to move between threads.
unsafe impl Send for Raw {}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: both were created by `open` and are finalized once, here.
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
            ffi::sqlite3_close(self.db);
        }
    }
}

/// A read-only connection for the dial guard.
pub struct GuardConn {
    /// `None` once closed.
    raw: Mutex<Option<Raw>>,
}

impl std::fmt::Debug for GuardConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuardConn")
    }
}

impl GuardConn {
    /// Opens the database at `path` read-only and prepares the statement;
    /// `None` if either fails (an older schema, a path SQLite cannot open):
    /// tries then use the pool.
    pub fn open(path: &Path) -> Option<Self> {
        let path = CString::new(path.to_str()?).ok()?;
        let mut db = ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_FULLMUTEX;
        // SAFETY: valid C strings and out-pointers; a handle returned with an
        // error is closed by `Raw`'s drop (sqlite3_close accepts it, after the statement is finalized).
        unsafe {
            let rc = ffi::sqlite3_open_v2(path.as_ptr(), &mut db, flags, ptr::null());
            let mut raw = Raw {
                db,
                stmt: ptr::null_mut(),
            };
            if rc != ffi::SQLITE_OK {
                return None;
            }
            ffi::sqlite3_busy_timeout(db, BUSY_MS);
            let rc = ffi::sqlite3_prepare_v3(
                db,
                SQL.as_ptr(),
                -1,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut raw.stmt,
                ptr::null_mut(),
            );
            if rc != ffi::SQLITE_OK || raw.stmt.is_null() {
                return None;
            }
            Some(Self {
                raw: Mutex::new(Some(raw)),
            })
        }
    }

    /// Closes the connection (with the store's pool, so that the last
    /// connection to close is the pool's and SQLite can checkpoint and
    /// remove the WAL); later reads answer `None`.
    pub fn close(&self) {
        self.raw.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// The guard and attempt `attempt_id`, read now; `None` on any error,
    /// or once closed.
    pub fn read(&self, attempt_id: i64) -> Option<GuardRow> {
        let guard = self.raw.lock().unwrap_or_else(|p| p.into_inner());
        let raw = guard.as_ref()?;
        // SAFETY: the statement belongs to this connection and is used by
        // one thread at a time (the mutex). Column values are read before
        // the reset that invalidates them, and text is copied out.
        unsafe {
            let stmt = raw.stmt;
            let row = if ffi::sqlite3_bind_int64(stmt, 1, attempt_id) != ffi::SQLITE_OK {
                None
            } else {
                match ffi::sqlite3_step(stmt) {
                    ffi::SQLITE_ROW => Some(GuardRow {
                        stamp: int(stmt, 0),
                        attempt: facts(stmt),
                    }),
                    // No row: the attempt is not sending (or its contact is
                    // not in progress); the stamp does not matter then.
                    ffi::SQLITE_DONE => Some(GuardRow {
                        stamp: None,
                        attempt: None,
                    }),
                    _ => None,
                }
            };
            // Ends the statement's read transaction at once.
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
            row
        }
    }
}

/// The attempt's facts from columns 1 to 5 of the current row; `None` if
/// its contact or number is not of its type (then nothing is as claimed).
///
/// # Safety
/// `stmt` must be a statement positioned on a row.
unsafe fn facts(stmt: *mut ffi::sqlite3_stmt) -> Option<super::dial::GuardFacts> {
    // SAFETY: as the caller promises.
    unsafe {
        let timezone = match ffi::sqlite3_column_type(stmt, 3) {
            ffi::SQLITE_NULL => None,
            _ => Some(text(stmt, 3)?),
        };
        Some(super::dial::GuardFacts {
            contact_id: int(stmt, 1)?,
            to_number: text(stmt, 2)?,
            timezone,
            agent_id: int(stmt, 4),
            attempts: int(stmt, 5),
        })
    }
}

/// Column `i` of the current row as an integer, `None` unless it is one.
///
/// # Safety
/// `stmt` must be a statement positioned on a row.
unsafe fn int(stmt: *mut ffi::sqlite3_stmt, i: c_int) -> Option<i64> {
    // SAFETY: as the caller promises.
    unsafe {
        (ffi::sqlite3_column_type(stmt, i) == ffi::SQLITE_INTEGER)
            .then(|| ffi::sqlite3_column_int64(stmt, i))
    }
}

/// Column `i` of the current row as text (copied), `None` unless it is text.
///
/// # Safety
/// `stmt` must be a statement positioned on a row.
unsafe fn text(stmt: *mut ffi::sqlite3_stmt, i: c_int) -> Option<String> {
    // SAFETY: as the caller promises; the pointer and length come from
    // SQLite for this column and stay valid until the next step or reset.
    unsafe {
        if ffi::sqlite3_column_type(stmt, i) != ffi::SQLITE_TEXT {
            return None;
        }
        let p = ffi::sqlite3_column_text(stmt, i);
        let n = usize::try_from(ffi::sqlite3_column_bytes(stmt, i)).ok()?;
        if p.is_null() {
            return None;
        }
        let bytes = std::slice::from_raw_parts(p, n);
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    }
}

//! Opening a source: the file checked (missing, a directory, unreadable),
//! its kind told by content, its sha256 computed in a streaming first pass,
//! its header mapped; then a reader task that validates rows and sends them
//! to the writer over a bounded channel.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use phonenumber::country::Id;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::header::{Mapping, map_header};
use super::rows::{Item, Locator, Validator};
use super::{ImportError, SqliteSelect, csv_source, sqlite_source};

/// Chunks in flight between reader and writer: two batches' worth, so the
/// reader keeps reading while the writer commits a batch (with fewer, the
/// two would take turns instead of overlapping); it bounds memory too.
const CHANNEL_CHUNKS: usize = 2 * super::BATCH_ROWS / super::CHUNK_ROWS;

/// The reader's end: its result once it has sent every row.
pub(crate) type Producer = JoinHandle<Result<(), ImportError>>;

enum Kind {
    Csv(csv_source::CsvSource),
    Sqlite(sqlite_source::SqliteSource),
}

/// A source opened and hashed, its header mapped.
pub(crate) struct Opened {
    /// What the `imports` row records: the path as given, plus `#table` or `?query`.
    pub source: String,
    /// sha256 of the file's bytes (for SQLite, followed by the table or query text).
    pub sha256: String,
    mapping: Mapping,
    kind: Kind,
}

/// Checks that `path` names a readable file (exit 66 otherwise), without
/// reading it; lets the command line fail before touching the database.
pub fn check_input(path: &Path) -> Result<(), ImportError> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ImportError::NoInput(format!("{shown}: no such file")),
        _ => ImportError::NoInput(format!("cannot read {shown}: {e}")),
    })?;
    if meta.is_dir() {
        return Err(ImportError::NoInput(format!(
            "{shown} is a directory, not a file"
        )));
    }
    File::open(path).map_err(|e| ImportError::NoInput(format!("cannot read {shown}: {e}")))?;
    Ok(())
}

/// Opens `path`: CSV, or an SQLite database when its first 16 bytes say so.
pub(crate) async fn open(path: &Path, select: &SqliteSelect) -> Result<Opened, ImportError> {
    check_input(path)?;
    let shown = path.display().to_string();
    let mut file =
        File::open(path).map_err(|e| ImportError::NoInput(format!("cannot read {shown}: {e}")))?;
    let mut magic = [0u8; 16];
    let n = read_up_to(&mut file, &mut magic)
        .map_err(|e| ImportError::NoInput(format!("cannot read {shown}: {e}")))?;
    let is_sqlite = n == 16 && &magic == sqlite_source::MAGIC;
    if !is_sqlite && *select != SqliteSelect::Auto {
        return Err(ImportError::Usage(format!(
            "--table and --query read SQLite databases; {shown} is not one"
        )));
    }
    if is_sqlite {
        let src = sqlite_source::open(path, &shown, select).await?;
        let sha256 = hash_file(path, Some(src.label.clone())).await?;
        let mapping = map(&src.header, &format!("{shown}{}", src.label))?;
        Ok(Opened {
            source: format!("{shown}{}", src.label),
            sha256,
            mapping,
            kind: Kind::Sqlite(src),
        })
    } else {
        let sha256 = hash_file(path, None).await?;
        let file = File::open(path)
            .map_err(|e| ImportError::NoInput(format!("cannot read {shown}: {e}")))?;
        let shown2 = shown.clone();
        let src = tokio::task::spawn_blocking(move || csv_source::open(file, &shown2))
            .await
            .map_err(|e| ImportError::Other(e.into()))??;
        let mapping = map(&src.header, &shown)?;
        Ok(Opened {
            source: shown,
            sha256,
            mapping,
            kind: Kind::Csv(src),
        })
    }
}

fn map(header: &[String], shown: &str) -> Result<Mapping, ImportError> {
    map_header(header).map_err(|m| ImportError::data(format!("{shown}: {m}")))
}

impl Opened {
    /// Starts the reader: rows are validated (numbers without a country code
    /// read in `region`) and sent to the returned receiver.
    pub(crate) fn spawn(self, region: Option<Id>) -> (mpsc::Receiver<Vec<Item>>, Producer) {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let handle = match self.kind {
            Kind::Csv(src) => {
                let v = Validator {
                    mapping: self.mapping,
                    region,
                    locator: Locator::Line,
                    delimiter: src.delimiter,
                };
                tokio::task::spawn_blocking(move || {
                    src.produce(&v, &tx);
                    Ok(())
                })
            }
            Kind::Sqlite(src) => {
                let v = Validator {
                    mapping: self.mapping,
                    region,
                    locator: Locator::Row,
                    delimiter: b',',
                };
                tokio::spawn(src.produce(v, tx))
            }
        };
        (rx, handle)
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// sha256 of the file's bytes, then of `extra` (the table or query of an
/// SQLite source), read in 64 KiB blocks on a blocking thread.
async fn hash_file(path: &Path, extra: Option<String>) -> Result<String, ImportError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| ImportError::NoInput(format!("cannot read {shown}: {e}"));
        let mut file = File::open(&path).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        if let Some(extra) = extra {
            hasher.update([0u8]);
            hasher.update(extra.as_bytes());
        }
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    })
    .await
    .map_err(|e| ImportError::Other(e.into()))?
}

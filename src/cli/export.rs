//! `dialerd export [--campaign NAME] [--format csv|jsonl] [--output FILE]`:
//! one row per contact from the `contact_outcomes` view, streamed page by
//! page (short statements, bounded memory).
//!
//! CSV is made for spreadsheets: each `call_context` key also gets a
//! `context.KEY` column, and text that a spreadsheet would run as a formula
//! (`=`, `+`, `-`, `@`, TAB or CR first) is prefixed with `'`, except an E.164
//! number. JSONL is data: nothing is altered and `call_context` is embedded
//! as JSON. `--output` replaces the file atomically (temp file + rename).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::{ExportArgs, ExportFormat};
use crate::error::{CliError, Exit};
use crate::store::{EXPORT_COLUMNS, Record, Store, value_text};

/// Contacts fetched per statement.
const PAGE: i64 = 500;

/// At most this many `context.KEY` columns; further keys stay in `call_context`.
const MAX_CONTEXT_COLUMNS: i64 = 200;

/// Runs `export`.
pub async fn run(store: &Store, args: ExportArgs) -> Result<(), CliError> {
    let campaign = match &args.campaign {
        Some(name) => Some(super::campaigns::find(store, name).await?.id),
        None => None,
    };
    let Some(path) = &args.output else {
        let mut out = StdoutSink {
            out: BufWriter::new(io::stdout()),
            closed: false,
        };
        return match export(store, campaign, args.format, &mut out).await {
            // A reader that stopped early (`| head`) is not a failure.
            Err(_) if out.closed => Ok(()),
            other => other.map(|_| ()),
        };
    };
    let tmp = temp_path(path, store.clock().now().timestamp_subsec_nanos())?;
    let written = write_atomically(store, campaign, args.format, path, &tmp).await;
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let rows = written?;
    outln!("exported {rows} contacts to {}", path.display());
    Ok(())
}

async fn write_atomically(
    store: &Store,
    campaign: Option<i64>,
    format: ExportFormat,
    path: &Path,
    tmp: &Path,
) -> Result<u64, CliError> {
    let file = create_private(tmp).with_context(|| format!("cannot write {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let rows = export(store, campaign, format, &mut out).await?;
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the export")?;
    file.sync_all().context("writing the export")?;
    std::fs::rename(tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(rows)
}

/// Creates `path` new, readable by its owner only: an export holds personal data.
fn create_private(path: &Path) -> io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// A fresh name beside `path`, so the final rename stays on one filesystem.
fn temp_path(path: &Path, nanos: u32) -> Result<PathBuf, CliError> {
    let name = path.file_name().ok_or_else(|| {
        CliError::msg(
            Exit::Usage,
            format!("--output {} is not a file name", path.display()),
        )
    })?;
    let tmp = format!(
        ".{}.{}-{nanos}.tmp",
        name.to_string_lossy(),
        std::process::id()
    );
    Ok(path.with_file_name(tmp))
}

/// Standard output that remembers a closed pipe. The CSV and JSON writers
/// wrap I/O errors in their own types, so the kind is noted here, at the source.
struct StdoutSink {
    out: BufWriter<io::Stdout>,
    closed: bool,
}

impl StdoutSink {
    fn note<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if r.as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
            self.closed = true;
        }
        r
    }
}

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.out.write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.out.flush();
        self.note(r)
    }
}

/// Writes every contact (of one campaign, or all) to `out`; returns the count.
async fn export(
    store: &Store,
    campaign: Option<i64>,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<u64, CliError> {
    let reports = store.reports();
    let mut sink = match format {
        ExportFormat::Csv => {
            let keys = reports
                .context_keys(campaign, MAX_CONTEXT_COLUMNS)
                .await
                .context("reading call_context keys")?;
            Sink::Csv(Box::new(csv::Writer::from_writer(out)), keys)
        }
        ExportFormat::Jsonl => Sink::Jsonl(out),
    };
    sink.header()?;
    let (mut after, mut rows) = (0, 0);
    loop {
        let page = reports
            .export_page(campaign, after, PAGE)
            .await
            .context("reading contact_outcomes")?;
        for r in &page {
            sink.row(r)?;
        }
        rows += page.len() as u64;
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = last.int("contact_id"),
            _ => break,
        }
    }
    sink.finish()?;
    Ok(rows)
}

/// Where rows go: a CSV writer with the context keys, or JSON lines.
enum Sink<'a> {
    Csv(Box<csv::Writer<&'a mut dyn Write>>, Vec<String>),
    Jsonl(&'a mut dyn Write),
}

impl Sink<'_> {
    fn header(&mut self) -> Result<(), CliError> {
        if let Sink::Csv(w, keys) = self {
            let context = keys.iter().map(|k| format!("context.{k}"));
            let names: Vec<String> = EXPORT_COLUMNS
                .iter()
                .map(|c| c.to_string())
                .chain(context)
                .collect();
            w.write_record(names.iter().map(|n| neutralise(n).into_owned()))
                .context("writing the export")?;
        }
        Ok(())
    }

    fn row(&mut self, r: &Record) -> Result<(), CliError> {
        match self {
            Sink::Csv(w, keys) => {
                let context = parse_context(r);
                let fixed = EXPORT_COLUMNS.iter().map(|c| csv_cell(r.get(c)));
                let keyed = keys
                    .iter()
                    .map(|k| csv_cell(context.get(k).unwrap_or(&Value::Null)));
                w.write_record(fixed.chain(keyed))
                    .context("writing the export")?;
            }
            Sink::Jsonl(w) => {
                let columns = EXPORT_COLUMNS.iter().map(|c| {
                    let v = if *c == "call_context" {
                        parse_context(r)
                    } else {
                        r.get(c).clone()
                    };
                    ((*c).to_string(), v)
                });
                let record = Record::from_columns(columns.collect());
                serde_json::to_writer(&mut *w, &record).context("writing the export")?;
                w.write_all(b"\n").context("writing the export")?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), CliError> {
        match self {
            Sink::Csv(mut w, _) => w.flush(),
            Sink::Jsonl(w) => w.flush(),
        }
        .context("writing the export")?;
        Ok(())
    }
}

/// The contact's `call_context` as JSON (text that is not JSON stays text).
fn parse_context(r: &Record) -> Value {
    match r.get("call_context") {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        other => other.clone(),
    }
}

/// A value as a CSV cell: empty for NULL, numbers as they are, text neutralised.
fn csv_cell(v: &Value) -> String {
    match v {
        Value::String(s) => neutralise(s).into_owned(),
        Value::Number(_) | Value::Bool(_) | Value::Null => value_text(v).unwrap_or_default(),
        // Nested context values: JSON text, which starts with `{` or `[`.
        other => other.to_string(),
    }
}

/// Prefixes `'` to text a spreadsheet would execute, keeping E.164 numbers.
fn neutralise(s: &str) -> Cow<'_, str> {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !is_e164(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// `+` and 8 to 15 digits, nothing else.
fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_text_is_neutralised_but_e164_numbers_are_not() {
        assert_eq!(neutralise("=1+2"), "'=1+2");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("-2"), "'-2");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("+14155552671"), "+14155552671");
        assert_eq!(neutralise("+1415555267"), "+1415555267");
        assert_eq!(neutralise("+1234567"), "'+1234567");
        assert_eq!(neutralise("+1415 555"), "'+1415 555");
        assert_eq!(neutralise("plain"), "plain");
    }

    #[test]
    fn numbers_are_written_as_numbers() {
        assert_eq!(csv_cell(&serde_json::json!(-1.5)), "-1.5");
        assert_eq!(csv_cell(&Value::Null), "");
    }
}

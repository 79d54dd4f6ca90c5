//! `dialerd dnc add|remove|import|list`: the do-not-call list shared by all
//! campaigns. Numbers are normalised to E.164 at the edge; an invalid one is
//! reported with its reason and the valid ones still go in. Adding a number
//! suppresses the contacts waiting to dial it (the store does that).

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use phonenumber::country::Id;

use super::DncCmd;
use super::status::{Table, clean};
use crate::config::{Settings, parse_region};
use crate::error::{CliError, Exit};
use crate::import::{PHONE_COLUMNS, normalise_header};
use crate::phone::PhoneNumber;
use crate::store::{DncSource, Store};

/// Delimiters a CSV file may use.
const DELIMITERS: &[u8] = b",;\t|";

/// Numbers per store call, so no write transaction holds the database for long.
const BATCH: usize = 1000;

/// Rejections printed before "... and N more".
const SHOWN_REJECTS: usize = 20;

/// Runs a `dnc` subcommand.
pub async fn run(store: &Store, settings: &Settings, cmd: DncCmd) -> Result<(), CliError> {
    match cmd {
        DncCmd::Add {
            numbers,
            reason,
            region,
        } => {
            let parsed = parse_args(&numbers, region_of(settings, region)?);
            add(
                store,
                parsed,
                reason.as_deref(),
                "the command line",
                DncSource::Operator,
            )
            .await
        }
        DncCmd::Remove { numbers, region } => {
            remove(store, parse_args(&numbers, region_of(settings, region)?)).await
        }
        DncCmd::Import {
            file,
            reason,
            region,
        } => {
            let parsed = parse_file(&file, region_of(settings, region)?)?;
            let reason = reason.unwrap_or_else(|| format!("imported from {}", file.display()));
            add(
                store,
                parsed,
                Some(&reason),
                &file.display().to_string(),
                DncSource::Import,
            )
            .await
        }
        DncCmd::List => list(store).await,
    }
}

/// The region for numbers without a country code: the flag, else the default.
fn region_of(settings: &Settings, flag: Option<String>) -> Result<Option<Id>, CliError> {
    match flag {
        Some(r) => parse_region(&r)
            .map(Some)
            .map_err(|m| CliError::msg(Exit::Usage, m)),
        None => Ok(settings.campaign_defaults.region),
    }
}

/// Numbers read from the input: the valid ones (deduplicated, in input
/// order) and the rejected ones with where and why.
#[derive(Debug, Default)]
struct Parsed {
    valid: Vec<PhoneNumber>,
    rejected: Vec<String>,
    seen: HashSet<PhoneNumber>,
}

impl Parsed {
    /// Parses one number; `line` says where it came from in a file.
    fn take(&mut self, raw: &str, region: Option<Id>, line: Option<u64>) {
        match PhoneNumber::parse(raw, region) {
            Ok(n) => {
                if self.seen.insert(n.clone()) {
                    self.valid.push(n);
                }
            }
            Err(e) => self.rejected.push(match line {
                Some(l) => format!("line {l}: {e}"),
                None => e.to_string(),
            }),
        }
    }

    /// Prints the rejections (to stderr); fails with exit 65 when nothing was valid.
    fn report_rejects(&self, source: &str) -> Result<(), CliError> {
        for r in self.rejected.iter().take(SHOWN_REJECTS) {
            errln!("rejected {}", clean(r));
        }
        if self.rejected.len() > SHOWN_REJECTS {
            errln!(
                "... and {} more rejected",
                self.rejected.len() - SHOWN_REJECTS
            );
        }
        if self.valid.is_empty() {
            return Err(CliError::msg(
                Exit::DataErr,
                format!("no valid phone number in {source}; the do-not-call list is unchanged"),
            ));
        }
        Ok(())
    }
}

fn parse_args(numbers: &[String], region: Option<Id>) -> Parsed {
    let mut parsed = Parsed::default();
    for raw in numbers {
        parsed.take(raw, region, None);
    }
    parsed
}

/// Reads a file of numbers: a CSV when its first line is a header naming a
/// phone column, else one number per line (`#` starts a comment).
fn parse_file(path: &Path, region: Option<Id>) -> Result<Parsed, CliError> {
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::msg(
            Exit::NoInput,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let text = decode(&bytes);
    let first = text.lines().next().unwrap_or("");
    let mut parsed = Parsed::default();
    match csv_header(first) {
        Some((delimiter, column)) => parse_csv(&text, delimiter, column, region, &mut parsed),
        None => {
            for (i, line) in text.lines().enumerate() {
                let number = line.split('#').next().unwrap_or("").trim();
                if !number.is_empty() {
                    parsed.take(number, region, Some(i as u64 + 1));
                }
            }
        }
    }
    Ok(parsed)
}

/// UTF-8 (a BOM dropped), or Windows-1252 when the bytes are not UTF-8.
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

/// The delimiter and phone-column index when `first` is a CSV header.
fn csv_header(first: &str) -> Option<(u8, usize)> {
    for &d in DELIMITERS {
        let cells: Vec<String> = first
            .split(d as char)
            .map(|h| normalise_header(h.trim().trim_matches('"')))
            .collect();
        for want in PHONE_COLUMNS {
            if let Some(i) = cells.iter().position(|c| c == want) {
                return Some((d, i));
            }
        }
    }
    None
}

fn parse_csv(text: &str, delimiter: u8, column: usize, region: Option<Id>, parsed: &mut Parsed) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        match record {
            Ok(r) => {
                let line = r.position().map(|p| p.line());
                parsed.take(r.get(column).unwrap_or(""), region, line);
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                parsed
                    .rejected
                    .push(format!("line {line}: unreadable CSV: {e}"));
            }
        }
    }
}

/// Adds the valid numbers in short batches and prints what changed.
async fn add(
    store: &Store,
    parsed: Parsed,
    reason: Option<&str>,
    source: &str,
    kind: DncSource,
) -> Result<(), CliError> {
    parsed.report_rejects(source)?;
    let waiting = store
        .reports()
        .open_contacts_with(&parsed.valid)
        .await
        .context("counting contacts to suppress")?;
    let mut added = 0;
    for batch in parsed.valid.chunks(BATCH) {
        added += store
            .dnc_add_from(batch, reason, kind, None)
            .await
            .context("adding to the do-not-call list")?;
    }
    let valid = parsed.valid.len() as u64;
    if valid <= SHOWN_REJECTS as u64 {
        outln!("added to the do-not-call list: {}", joined(&parsed.valid));
    }
    outln!(
        "valid: {valid} ({added} new on the list, {} already listed); rejected: {}; waiting contacts suppressed: {waiting}",
        valid - added,
        parsed.rejected.len()
    );
    Ok(())
}

/// Removes the valid numbers and prints what changed.
async fn remove(store: &Store, parsed: Parsed) -> Result<(), CliError> {
    parsed.report_rejects("the command line")?;
    let mut removed = 0;
    for batch in parsed.valid.chunks(BATCH) {
        removed += store
            .dnc_remove(batch)
            .await
            .context("removing from the do-not-call list")?;
    }
    outln!(
        "removed from the do-not-call list: {}",
        joined(&parsed.valid)
    );
    outln!(
        "removed: {removed}; not listed: {}; contacts already suppressed stay suppressed",
        parsed.valid.len() as u64 - removed
    );
    Ok(())
}

/// `dnc list`.
async fn list(store: &Store) -> Result<(), CliError> {
    let entries = store
        .dnc_list()
        .await
        .context("reading the do-not-call list")?;
    if entries.is_empty() {
        outln!("the do-not-call list is empty");
        return Ok(());
    }
    let mut table = Table::new(&["NUMBER", "ADDED", "SOURCE", "ATTEMPT", "REASON"]);
    for e in &entries {
        table.push(vec![
            e.phone_number.clone(),
            e.added_at.clone(),
            e.source.clone(),
            e.attempt_id.map_or_else(|| "-".into(), |a| a.to_string()),
            e.reason.clone().unwrap_or_default(),
        ]);
    }
    out!("{}", table.render());
    outln!("total: {}", entries.len());
    Ok(())
}

fn joined(numbers: &[PhoneNumber]) -> String {
    numbers
        .iter()
        .map(PhoneNumber::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_line_naming_a_phone_column_makes_the_file_a_csv() {
        assert_eq!(csv_header("Name;Phone Number;Note"), Some((b';', 1)));
        assert_eq!(csv_header("msisdn"), Some((b',', 0)));
        assert_eq!(csv_header("+14155552671"), None);
        assert_eq!(csv_header("# numbers to never call"), None);
    }
}

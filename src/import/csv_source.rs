//! CSV files: the delimiter sniffed from the header line, a UTF-8 BOM
//! dropped, RFC 4180 quoting (with newlines inside quotes) parsed by the `csv`
//! crate on bytes, and each record decoded on its own: UTF-8 when it is valid
//! UTF-8, else Windows-1252 (an Excel export). Decoding per record keeps the
//! reader streaming and lets a mostly-ASCII file with one "Café" work.
//!
//! Memory stays flat: records are read one at a time, and a [`Guard`] under
//! the parser refuses to feed it more than [`MAX_RECORD_BYTES`] for a single
//! record, so an unclosed quote in a huge file cannot swallow it whole.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Cursor, Read};

use csv::ByteRecord;
use encoding_rs::WINDOWS_1252;
use tokio::sync::mpsc;

use super::rows::{Item, Locator, Reject, Validator};
use super::{CHUNK_ROWS, ImportError};

/// The most bytes one record may span before the rest of the file is given up.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;
/// How much of the file's start is read to sniff its format.
const SNIFF_BYTES: usize = 64 * 1024;
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

type Inner = io::Chain<Cursor<Vec<u8>>, File>;

/// An opened CSV file positioned after its header.
pub struct CsvSource {
    reader: csv::Reader<Guard<Inner>>,
    /// The sniffed delimiter.
    pub delimiter: u8,
    /// The header's fields as written.
    pub header: Vec<String>,
}

/// Limits how far the parser may read past the start of the current record.
struct Guard<R> {
    inner: R,
    delivered: u64,
    limit: u64,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.delivered);
        if room == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, RecordTooLong));
        }
        let cap = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        self.delivered += n as u64;
        Ok(n)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a record is longer than 16 MiB (probably a quote that is never closed)")]
struct RecordTooLong;

/// Opens `file` as CSV: sniffs encoding markers and the delimiter, reads the header.
pub fn open(mut file: File, shown: &str) -> Result<CsvSource, ImportError> {
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    (&mut file)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(|e| ImportError::NoInput(format!("cannot read {shown}: {e}")))?;
    let data_err = |m: String| ImportError::data(format!("{shown}: {m}"));
    if prefix.starts_with(&[0xFF, 0xFE]) || prefix.starts_with(&[0xFE, 0xFF]) {
        return Err(data_err(
            "the file is UTF-16 text; save it as \"CSV UTF-8\" and import it again".into(),
        ));
    }
    if prefix.starts_with(b"PK\x03\x04") {
        return Err(data_err(
            "this is a spreadsheet workbook (.xlsx), not CSV; save it as CSV and import it again"
                .into(),
        ));
    }
    if prefix.contains(&0) {
        return Err(data_err(
            "this is not a text file (it contains NUL bytes); expected CSV or an SQLite database"
                .into(),
        ));
    }
    if prefix.starts_with(b"\xEF\xBB\xBF") {
        prefix.drain(..3);
    }
    if prefix.iter().all(u8::is_ascii_whitespace) {
        return Err(data_err(
            "the file is empty; expected a header row and at least one row".into(),
        ));
    }
    let delimiter = sniff_delimiter(&prefix);
    let guard = Guard {
        inner: Cursor::new(prefix).chain(file),
        delivered: 0,
        limit: MAX_RECORD_BYTES,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(guard);
    let mut rec = ByteRecord::new();
    match reader.read_byte_record(&mut rec) {
        Ok(true) => {}
        Ok(false) => return Err(data_err("the file is empty; expected a header row".into())),
        Err(e) => return Err(data_err(format!("cannot read the header: {e}"))),
    }
    let header = decode(&rec).into_iter().map(Cow::into_owned).collect();
    let mut src = CsvSource {
        reader,
        delimiter,
        header,
    };
    src.rearm();
    Ok(src)
}

impl CsvSource {
    /// Lets the parser read up to [`MAX_RECORD_BYTES`] past the current position.
    fn rearm(&mut self) {
        let at = self.reader.position().byte();
        // The parser's own buffer reads a little ahead of the record it parses.
        self.reader.get_mut().limit = at + MAX_RECORD_BYTES + 64 * 1024;
    }

    /// Reads every row, validates it and sends the results in chunks; stops
    /// early when the receiver is gone. Runs on a blocking thread.
    pub fn produce(mut self, v: &Validator, tx: &mpsc::Sender<Vec<Item>>) {
        let mut rec = ByteRecord::new();
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        loop {
            // Where the next record starts, for an error that cuts it short.
            let next_line = self.reader.position().line();
            match self.reader.read_byte_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    let line = rec.position().map_or(0, |p| p.line());
                    if let Some(item) = v.check(line, &decode(&rec)) {
                        chunk.push(item);
                    }
                    if rec.as_slice().len() > 1024 * 1024 {
                        // Give back the memory a huge record made the buffer grow to.
                        rec = ByteRecord::new();
                    }
                    self.rearm();
                }
                Err(e) => {
                    let line = next_line;
                    let cause = match e.kind() {
                        csv::ErrorKind::Io(io) => io.to_string(),
                        _ => e.to_string(),
                    };
                    chunk.push(Item::Reject(Reject {
                        line,
                        location: Locator::Line.describe(line),
                        reason: format!("{cause}; the rest of the file was not read"),
                        raw: String::new(),
                    }));
                    break;
                }
            }
            if chunk.len() >= CHUNK_ROWS && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
    }
}

/// The record's fields as text: borrowed when the record is UTF-8, else
/// every field decoded as Windows-1252.
fn decode(rec: &ByteRecord) -> Vec<Cow<'_, str>> {
    let utf8: Option<Vec<Cow<'_, str>>> = rec
        .iter()
        .map(|f| std::str::from_utf8(f).ok().map(Cow::Borrowed))
        .collect();
    utf8.unwrap_or_else(|| {
        rec.iter()
            .map(|f| WINDOWS_1252.decode_without_bom_handling(f).0)
            .collect()
    })
}

/// The candidate delimiter that occurs most often outside quotes on the
/// first line; `,` when none does (a single-column file).
fn sniff_delimiter(prefix: &[u8]) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &b in prefix {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = DELIMITERS.iter().position(|d| *d == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best =
        (0..DELIMITERS.len()).fold(0, |best, i| if counts[i] > counts[best] { i } else { best });
    DELIMITERS[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_most_frequent_candidate_outside_quotes() {
        assert_eq!(sniff_delimiter(b"phone;name;\"a,b,c,d\"\n1,2,3,4,5"), b';');
        assert_eq!(sniff_delimiter(b"phone\tname\n"), b'\t');
        assert_eq!(sniff_delimiter(b"phone|name|x\n"), b'|');
        assert_eq!(sniff_delimiter(b"phone\n"), b',');
    }

    #[test]
    fn a_record_that_is_not_utf8_is_decoded_as_windows_1252() {
        let rec = ByteRecord::from(vec![&b"Zo\xEB"[..], &b"Caf\xE9"[..]]);
        assert_eq!(decode(&rec), vec!["Zoë", "Café"]);
        let rec = ByteRecord::from(vec!["Zoë"]);
        assert!(matches!(decode(&rec)[0], Cow::Borrowed("Zoë")));
    }
}

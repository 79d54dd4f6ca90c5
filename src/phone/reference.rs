//! The differential test of number validation against libphonenumber itself
//! (its Python port `phonenumbers`, pinned in `.ci/run` to the metadata
//! version `phonenumber` ships): every example number of every region, with
//! digits appended and removed, must get libphonenumber's answer from both
//! the parser ([`PhoneNumber::parse`]) and the import's fast path.
//!
//! libphonenumber's answers are kept in `tests/data/phonenumbers-reference.tsv`,
//! so the comparison runs wherever `cargo test` runs, Python or not. An
//! ignored test (which `.ci/run` runs, with the pinned package installed)
//! asks libphonenumber again and fails if the kept answers differ; run it with
//! `DIALERD_WRITE_REFERENCE=1` to write them anew after a metadata update.

use std::io::Write;
use std::process::{Command, Stdio};

use phonenumber::metadata::DATABASE;

use super::PhoneNumber;
use super::fast::parse_phone;

/// The metadata version of the `phonenumber` crate in Cargo.lock.
const METADATA_VERSION: &str = "9.0.33";

/// Example national numbers of every kind of every region's metadata.
fn examples() -> Vec<(u16, String, String)> {
    let mut out = Vec::new();
    for meta in DATABASE.iter() {
        let d = meta.descriptors();
        let kinds = [
            Some(d.general()),
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        for ex in kinds.into_iter().flatten().filter_map(|k| k.example()) {
            out.push((meta.country_code(), meta.id().to_string(), ex.to_string()));
        }
    }
    out
}

/// The numbers to compare: each example as E.164 as it is, with one or two
/// digits appended, with one or two removed, and one in national form read
/// in its region.
fn generated() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, (cc, region, ex)) in examples().into_iter().enumerate() {
        let mut variants = vec![
            ex.clone(),
            format!("{ex}0"),
            format!("{ex}{}", i % 10),
            format!("{ex}00"),
        ];
        for cut in 1..=2 {
            if ex.len() > cut {
                variants.push(ex[..ex.len() - cut].to_string());
            }
        }
        for v in variants {
            out.push((format!("+{cc}{v}"), String::new()));
        }
        if region != "001" {
            out.push((ex.clone(), region.clone()));
            out.push((format!("{ex}1"), region));
        }
    }
    out
}

/// libphonenumber's answer for each number, from the reference script.
fn reference(numbers: &[(String, String)]) -> Vec<String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/phonenumbers_reference.py"
    );
    // A private copy of the pinned version (`.ci/run` installs it there),
    // so another version installed for other tools does not interfere.
    let pinned = concat!(env!("CARGO_MANIFEST_DIR"), "/target/phonenumbers-9.0.33");
    let mut child = Command::new("python3")
        .arg(script)
        .env("PYTHONPATH", pinned)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 {script} ({e}); install Python 3 and `python3 -m pip install --target {pinned} phonenumbers=={METADATA_VERSION}` (.ci/run does)"));
    let mut stdin = child.stdin.take().unwrap();
    let input: String = numbers.iter().map(|(n, r)| format!("{n}\t{r}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "the reference script failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default();
    assert_eq!(
        version,
        format!("VERSION {METADATA_VERSION}"),
        "the reference must use the metadata `phonenumber` ships: python3 -m pip install --target {pinned} phonenumbers=={METADATA_VERSION}"
    );
    let answers: Vec<String> = lines.map(String::from).collect();
    assert_eq!(answers.len(), numbers.len(), "one answer per number");
    answers
}

/// The kept answers file, relative to the crate.
const KEPT: &str = "tests/data/phonenumbers-reference.tsv";

/// The file's lines for `numbers`: `RAW<TAB>REGION<TAB>ANSWER`, after a
/// `# VERSION` line.
fn kept_text(numbers: &[(String, String)], answers: &[String]) -> String {
    let mut out = format!(
        "# libphonenumber's answers (Python phonenumbers {METADATA_VERSION}) for the numbers\n\
         # src/phone/reference.rs generates; written by that file's ignored test.\n\
         # Copyright (C) 2009 The Libphonenumber Authors (the metadata), Apache-2.0.\n"
    );
    for ((raw, region), answer) in numbers.iter().zip(answers) {
        out.push_str(&format!("{raw}\t{region}\t{answer}\n"));
    }
    out
}

/// libphonenumber's kept answer for each of `numbers`; the kept file must list
/// exactly these numbers (a metadata update changes them: write it anew).
fn kept_answers(numbers: &[(String, String)]) -> Vec<String> {
    let text = include_str!("../../tests/data/phonenumbers-reference.tsv");
    let rows: Vec<(&str, &str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let mut next = || f.next().unwrap_or_default();
            (next(), next(), next())
        })
        .collect();
    let listed: Vec<(&str, &str)> = rows.iter().map(|r| (r.0, r.1)).collect();
    let wanted: Vec<(&str, &str)> = numbers
        .iter()
        .map(|(n, r)| (n.as_str(), r.as_str()))
        .collect();
    assert!(
        listed == wanted,
        "{KEPT} lists other numbers than the generator makes from this metadata; \
         write it anew: DIALERD_WRITE_REFERENCE=1 cargo test --lib phone::reference -- --ignored"
    );
    rows.into_iter().map(|r| r.2.to_string()).collect()
}

/// The kept answers are libphonenumber's own: asks it again (Python
/// `phonenumbers` at the pinned version, which `.ci/run` installs).
#[test]
#[ignore = "needs Python phonenumbers at the crate's metadata version; .ci/run runs it"]
fn the_kept_answers_are_what_libphonenumber_says() {
    let numbers = generated();
    let answers = reference(&numbers);
    let text = kept_text(&numbers, &answers);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/phonenumbers-reference.tsv"
    );
    if std::env::var_os("DIALERD_WRITE_REFERENCE").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        kept == text,
        "{KEPT} differs from libphonenumber's answers; write it anew with DIALERD_WRITE_REFERENCE=1"
    );
}

/// Valid numbers that `phonenumber` 0.3.10's parser refuses: reading a
/// number, it strips a national prefix (`8` in Russia, Belarus, Lithuania;
/// a repeated country code in the French overseas regions, Rwanda, Turkey)
/// when the rest matches a *prefix* of the region's pattern, where
/// libphonenumber strips only when the rest matches whole. Refusing a valid
/// number is the safe direction (the import reports it with its line); a
/// disagreement not listed here fails the test.
const KNOWN_REFUSED: &[(&str, &str)] = &[
    ("+3758011234567", ""),
    ("+37080012345", ""),
    ("+37080123456", ""),
    ("+37080812345", ""),
    ("+78001234567", ""),
    ("+78081234567", ""),
    ("+78091234567", ""),
    ("250123456", "RW"),
    ("262161234", "RE"),
    ("590201234", "GP"),
    ("590271234", "BL"),
    ("590271234", "MF"),
    ("594101234", "GF"),
    ("596301234", "MQ"),
    ("7123456789", "KZ"),
    ("7511234567", "KZ"),
    ("7710009998", "KZ"),
    ("80012345", "LT"),
    ("8001234567", "KZ"),
    ("8001234567", "RU"),
    ("80123456", "LT"),
    ("80812345", "LT"),
    ("8011234567", "BY"),
    ("8081234567", "KZ"),
    ("8081234567", "RU"),
    ("8091234567", "KZ"),
    ("8091234567", "RU"),
    ("9001234567", "TR"),
];

/// Numbers with digits appended (`+3161234567800`) are invalid, as
/// libphonenumber says, on both paths: no number libphonenumber finds
/// invalid is accepted, and every accepted number has its E.164 form.
#[test]
fn validation_agrees_with_libphonenumber_on_every_example_with_digits_added_and_removed() {
    let numbers = generated();
    assert!(numbers.len() > 3000, "{} numbers", numbers.len());
    let answers = kept_answers(&numbers);
    let mut accepted_wrongly = Vec::new();
    let mut refused = std::collections::BTreeSet::new();
    let (mut valid, mut invalid) = (0, 0);
    for ((raw, region), want) in numbers.iter().zip(&answers) {
        let region_id = (!region.is_empty()).then(|| region.parse().unwrap());
        let want_ok = want.starts_with('+').then_some(want.as_str());
        if want_ok.is_some() {
            valid += 1;
        } else {
            invalid += 1;
        }
        let slow = PhoneNumber::parse(raw, region_id).map(|p| p.as_str().to_string());
        let fast = parse_phone(raw, region_id);
        for (path, got) in [("parser", &slow), ("fast path", &fast)] {
            match (got.as_deref().ok(), want_ok) {
                (a, b) if a == b => {}
                (None, Some(_)) => {
                    refused.insert((raw.as_str(), region.as_str()));
                }
                _ => accepted_wrongly.push(format!(
                    "{raw} (region {region:?}): {path} {got:?}, libphonenumber {want}"
                )),
            }
        }
    }
    assert!(
        valid > 500 && invalid > 500,
        "{valid} valid, {invalid} invalid"
    );
    assert!(
        accepted_wrongly.is_empty(),
        "{} numbers accepted that libphonenumber refuses or writes otherwise: {:#?}",
        accepted_wrongly.len(),
        &accepted_wrongly[..accepted_wrongly.len().min(40)]
    );
    let known: std::collections::BTreeSet<_> = KNOWN_REFUSED.iter().copied().collect();
    let new: Vec<_> = refused.difference(&known).collect();
    assert!(
        new.is_empty(),
        "valid numbers refused, beyond the known parser quirks: {new:?}"
    );
}

/// The number from the report: two digits too many for a Dutch mobile.
#[test]
fn a_number_with_trailing_digits_is_invalid() {
    assert!(PhoneNumber::parse("+31612345678", None).is_ok());
    assert!(PhoneNumber::parse("+3161234567800", None).is_err());
    assert!(parse_phone("+3161234567800", None).is_err());
    assert!(parse_phone("+442079460958", None).is_ok());
    assert!(parse_phone("+4420794609580", None).is_err());
}

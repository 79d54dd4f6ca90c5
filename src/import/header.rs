//! The header row: which column holds the phone number, which hold the
//! optional `timezone`, `agent_id` and `external_id`, and which go into the
//! contact's `call_context`.

use std::collections::HashMap;

/// Phone column names, in priority order: the first one present wins.
pub const PHONE_COLUMNS: [&str; 6] = [
    "phone_number",
    "to_number",
    "phone",
    "number",
    "mobile",
    "msisdn",
];

/// The header of a source, mapped to what each column means.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Index of the phone column.
    pub phone: usize,
    /// Index of the `timezone` column.
    pub timezone: Option<usize>,
    /// Index of the `agent_id` column.
    pub agent_id: Option<usize>,
    /// Index of the `external_id` column.
    pub external_id: Option<usize>,
    /// Every other column: its index and its name as written (trimmed),
    /// already JSON-encoded with the colon (`"First name":`), so each row
    /// only appends values.
    pub context: Vec<(usize, String)>,
    /// Column names as written (trimmed), for messages.
    pub names: Vec<String>,
}

impl Mapping {
    /// How many fields every row must have.
    pub fn width(&self) -> usize {
        self.names.len()
    }
}

/// A header name for matching: trimmed, lowercased, spaces and hyphens as `_`.
pub fn normalise(name: &str) -> String {
    name.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Maps a header row.
///
/// Rules: names are compared after [`normalise`]; the phone column is the
/// first of [`PHONE_COLUMNS`] present; an empty name becomes `column_N`
/// (N counted from 1). Two columns with the same normalised name make the
/// whole source unusable: which one holds the data would be a guess, so the
/// error names the duplicate and asks for a rename rather than silently
/// renaming or dropping a column.
pub fn map_header(raw: &[String]) -> Result<Mapping, String> {
    let names: Vec<String> = raw
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let t = n.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
            if t.is_empty() {
                format!("column_{}", i + 1)
            } else {
                t.to_string()
            }
        })
        .collect();
    let keys: Vec<String> = names.iter().map(|n| normalise(n)).collect();
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
    for (j, k) in keys.iter().enumerate() {
        if let Some(i) = first.insert(k, j) {
            return Err(format!(
                "the header has two columns named {:?} (columns {} and {}); rename one of them",
                names[i],
                i + 1,
                j + 1
            ));
        }
    }
    let find = |name: &str| first.get(name).copied();
    let Some(phone) = PHONE_COLUMNS.iter().find_map(|c| find(c)) else {
        let found = if names.iter().all(|n| n.starts_with("column_"))
            && raw.iter().all(|n| n.trim().is_empty())
        {
            "an empty header".to_string()
        } else {
            format!("the header has {}", quoted_list(&names))
        };
        return Err(format!(
            "no phone column: {found}; name one column {} (or {})",
            PHONE_COLUMNS[0],
            PHONE_COLUMNS[1..].join(", ")
        ));
    };
    let timezone = find("timezone");
    let agent_id = find("agent_id");
    let external_id = find("external_id");
    let special = [Some(phone), timezone, agent_id, external_id];
    let context = names
        .iter()
        .enumerate()
        .filter(|(i, _)| !special.contains(&Some(*i)))
        .map(|(i, n)| {
            let mut key = String::with_capacity(n.len() + 3);
            super::rows::push_json_str(&mut key, n);
            key.push(':');
            (i, key)
        })
        .collect();
    Ok(Mapping {
        phone,
        timezone,
        agent_id,
        external_id,
        context,
        names,
    })
}

/// `"a", "b", "c"`, at most 20 names.
pub(crate) fn quoted_list(names: &[String]) -> String {
    let mut shown: Vec<String> = names.iter().take(20).map(|n| format!("{n:?}")).collect();
    if names.len() > 20 {
        shown.push(format!("and {} more", names.len() - 20));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_trimmed_lowercased_and_spaces_and_hyphens_become_underscores() {
        assert_eq!(normalise("  Phone Number "), "phone_number");
        assert_eq!(normalise("To-Number"), "to_number");
        assert_eq!(normalise("\u{feff}MSISDN"), "msisdn");
    }

    #[test]
    fn the_phone_column_is_chosen_by_priority_not_position() {
        let m = map_header(&h(&["Mobile", "name", "Phone"])).unwrap();
        assert_eq!(m.phone, 2);
        assert_eq!(
            m.context.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(m.context[0].1, "\"Mobile\":");
    }

    #[test]
    fn optional_columns_are_not_context() {
        let m = map_header(&h(&[
            "phone",
            "Time Zone",
            "timezone",
            "agent-id",
            "External ID",
        ]))
        .unwrap();
        assert_eq!(
            (m.timezone, m.agent_id, m.external_id),
            (Some(2), Some(3), Some(4))
        );
        assert_eq!(m.context.len(), 1);
    }

    #[test]
    fn a_duplicate_header_is_refused_by_name() {
        let e = map_header(&h(&["phone", "Notes", "notes"])).unwrap_err();
        assert!(
            e.contains("\"Notes\"") && e.contains("columns 2 and 3"),
            "{e}"
        );
    }

    #[test]
    fn without_a_phone_column_the_error_lists_the_headers_found() {
        let e = map_header(&h(&["name", "email"])).unwrap_err();
        assert!(e.contains("\"name\", \"email\""), "{e}");
    }
}

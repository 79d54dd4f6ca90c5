//! Turns the API's `call_conversation` HTML fragment (`" <br/> LLM: Hi <br/> user: yes <br/>"`)
//! into plain text, one turn per line.

/// Cleans a transcript: `<br>` variants become line breaks, other tags are
/// dropped, HTML entities are decoded, lines are trimmed and empty ones
/// removed. `None` when nothing is left.
pub fn clean_transcript(raw: &str) -> Option<String> {
    let text = decode_entities(&strip_tags(raw));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Replaces `<br>`, `<br/>`, `<br />` with `\n` and removes every other tag.
/// A `<` that does not open a tag (`a < b`) is kept.
fn strip_tags(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let tag_end = after
            .find(['>', '<', '\n'])
            .filter(|&i| after.as_bytes()[i] == b'>');
        let looks_like_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        match tag_end {
            Some(end) if looks_like_tag => {
                let name: String = after[..end]
                    .trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                if name.eq_ignore_ascii_case("br") || name.eq_ignore_ascii_case("p") {
                    out.push('\n');
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes named (`&amp;` `&lt;` `&gt;` `&quot;` `&apos;` `&nbsp;`) and numeric
/// (`&#39;`, `&#x27;`) entities; anything else is left as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // Looked for within the longest entity only: searching the whole
        // rest for every `&` made a text of many `&` cost quadratic time.
        let decoded = after
            .bytes()
            .take(11)
            .position(|b| b == b';')
            .and_then(|semi| Some((entity(&after[..semi])?, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character an entity name (without `&` and `;`) stands for.
fn entity(name: &str) -> Option<char> {
    let named = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse::<u32>().ok()?,
            };
            return char::from_u32(code);
        }
    };
    Some(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_shape_becomes_one_turn_per_line() {
        let raw = " <br/> LLM: Hi Ann, is now a good time? <br/> user: yes, go ahead <br/>";
        assert_eq!(
            clean_transcript(raw).unwrap(),
            "LLM: Hi Ann, is now a good time?\nuser: yes, go ahead"
        );
    }

    #[test]
    fn every_br_spelling_breaks_lines_and_other_tags_vanish() {
        let raw = "LLM: <b>Hello</b><br>user: hi<BR />LLM: <span class=\"x\">bye</span><br/>";
        assert_eq!(
            clean_transcript(raw).unwrap(),
            "LLM: Hello\nuser: hi\nLLM: bye"
        );
    }

    #[test]
    fn entities_are_decoded_after_tags_are_stripped() {
        let raw = "user: Tom &amp; Jerry &lt;3 &quot;ok&quot; it&#39;s &#x263A; &#233;<br/>LLM: &lt;b&gt;";
        assert_eq!(
            clean_transcript(raw).unwrap(),
            "user: Tom & Jerry <3 \"ok\" it's ☺ é\nLLM: <b>"
        );
    }

    #[test]
    fn a_stray_less_than_or_ampersand_is_kept() {
        assert_eq!(clean_transcript("a < b & c >d").unwrap(), "a < b & c >d");
        assert_eq!(clean_transcript("x <3 y").unwrap(), "x <3 y");
        assert_eq!(
            clean_transcript("&bogus; &#xZZ; &#99999999;").unwrap(),
            "&bogus; &#xZZ; &#99999999;"
        );
        assert_eq!(clean_transcript("unclosed <b").unwrap(), "unclosed <b");
    }

    #[test]
    fn an_empty_or_blank_transcript_is_none() {
        assert_eq!(clean_transcript(""), None);
        assert_eq!(clean_transcript(" <br/> <br/>  "), None);
    }
}

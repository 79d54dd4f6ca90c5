//! Bytes → JSON → the call-log readers: `CallLog::from_value` on the value and
//! on each element, `parse_log_page` on the value and on the value wrapped as
//! a page, and the transcript cleaner on any text. Nothing may panic.
#![no_main]

use dialerd::provider::{CallLog, clean_transcript, parse_log_page};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = clean_transcript(text);
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = CallLog::from_value(&v);
    if let Ok(page) = parse_log_page(&v) {
        for log in &page.logs {
            // A log the reader accepted must keep its raw JSON.
            assert!(log.raw.is_object());
        }
    }
    if let Some(items) = v.as_array() {
        for item in items {
            let _ = CallLog::from_value(item);
        }
    }
    let wrapped = json!({"call_log_data": [v.clone()], "total_records": v.clone()});
    let page = parse_log_page(&wrapped).expect("a list of call_log_data always parses");
    assert_eq!(page.logs.len() + page.skipped, 1);
});

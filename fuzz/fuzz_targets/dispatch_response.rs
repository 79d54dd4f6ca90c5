//! An arbitrary HTTP answer to `POST /calls/dispatch` → `Client::dispatch`'s
//! classification, through a raw TCP server on loopback (the body parser is
//! private, so the client is driven end to end). Input: byte 0 picks the
//! status, byte 1 whether a `Retry-After` header follows (its value is the
//! input up to the first newline), the rest is the body.
//!
//! Besides "no panic", the safety rule's classifications are asserted: a 2xx
//! whose body is not JSON and a 500/502/504 may have placed the call, so they
//! must be `Ambiguous`; 401/403 must be `Unauthorized`; `Ok` only for a 2xx.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dialerd::provider::{Client, DispatchRequest, ErrorKind};
use dialerd::secret::ApiKey;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STATUSES: [u16; 16] = [
    200, 201, 202, 204, 400, 401, 403, 404, 408, 422, 429, 500, 502, 503, 504, 302,
];

struct World {
    rt: tokio::runtime::Runtime,
    client: Client,
    answer: Arc<Mutex<Vec<u8>>>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = Arc::new(Mutex::new(Vec::new()));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = answer.clone();
        rt.spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let reply = shared.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    // The request head, then its declared body.
                    loop {
                        let Ok(n) = sock.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        req.extend_from_slice(&buf[..n]);
                        if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            if req.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    let _ = sock.write_all(&reply).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        let client = Client::new(
            &format!("http://{addr}/api/v1"),
            ApiKey::new("fuzz-key").unwrap(),
            Duration::from_secs(5),
        )
        .unwrap();
        World { rt, client, answer }
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = STATUSES[data[0] as usize % STATUSES.len()];
    let mut rest = &data[2..];
    let mut retry_after = None;
    if data[1] & 1 == 1 {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        // Header values: visible ASCII and spaces only (anything else is not sendable).
        let value: String = rest[..end]
            .iter()
            .filter(|b| (0x20..0x7f).contains(*b))
            .map(|&b| b as char)
            .collect();
        retry_after = Some(value);
        rest = rest.get(end + 1..).unwrap_or(&[]);
    }
    let body = if status == 204 { &[][..] } else { rest };
    let mut reply =
        format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nConnection: close\r\n");
    if let Some(ra) = &retry_after {
        reply.push_str(&format!("Retry-After: {ra}\r\n"));
    }
    if status != 204 {
        reply.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    reply.push_str("\r\n");
    let mut bytes = reply.into_bytes();
    bytes.extend_from_slice(body);

    let w = world();
    *w.answer.lock().unwrap() = bytes;
    let req = DispatchRequest {
        agent_id: 1,
        to_number: "+14155552671".into(),
        call_context: Default::default(),
        from_number_id: None,
    };
    let result = w.rt.block_on(w.client.dispatch(&req));
    let json_body = serde_json::from_slice::<serde_json::Value>(body).is_ok();
    match result {
        Ok(acc) => {
            assert!((200..300).contains(&status), "accepted on HTTP {status}");
            assert!(
                !acc.request_id.trim().is_empty(),
                "accepted without a request id"
            );
        }
        Err(e) => {
            let kind = e.kind();
            if (200..300).contains(&status) && !json_body {
                assert_eq!(
                    kind,
                    ErrorKind::Ambiguous,
                    "2xx with a body that is not JSON: {e}"
                );
            }
            if matches!(status, 500 | 502 | 504) {
                assert_eq!(kind, ErrorKind::Ambiguous, "HTTP {status}: {e}");
            }
            if matches!(status, 401 | 403) {
                assert_eq!(kind, ErrorKind::Unauthorized, "HTTP {status}: {e}");
            }
        }
    }
});

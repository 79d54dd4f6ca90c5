//! A hostile or broken API cannot make the daemon buffer without bound or
//! spend quadratic time: bodies are read up to `provider.max_response_bytes`,
//! transcripts decode in linear time.

use std::time::{Duration, Instant};

use dialerd::provider::{Client, DispatchRequest, ErrorKind, LogQuery, clean_transcript};
use dialerd::secret::ApiKey;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LIMIT: usize = 64 * 1024;

fn client(base: &str) -> Client {
    Client::new(
        base,
        ApiKey::new("sim-key-local").unwrap(),
        Duration::from_secs(10),
    )
    .unwrap()
    .with_max_response_bytes(LIMIT)
}

fn call() -> DispatchRequest {
    DispatchRequest {
        agent_id: 7,
        to_number: "+14155552671".into(),
        call_context: serde_json::Map::new(),
        from_number_id: None,
    }
}

fn query() -> LogQuery {
    LogQuery {
        page: 1,
        page_size: 100,
        agent_id: Some(7),
        call_status: None,
    }
}

/// A JSON page of logs a little over `bytes` long.
fn big_page(bytes: usize) -> Vec<u8> {
    let text = "x".repeat(bytes);
    serde_json::to_vec(&json!({
        "call_log_data": [{"id": 1, "call_conversation": text}],
        "total_records": 1
    }))
    .unwrap()
}

#[tokio::test]
async fn a_dispatch_answer_over_the_size_limit_is_uncertain_never_read_whole() {
    let server = MockServer::start().await;
    let mut body = br#"{"success": true, "requestId": 5, "pad": ""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', 2 * LIMIT));
    body.extend(br#""}"#);
    Mock::given(method("POST"))
        .and(path("/api/v1/calls/dispatch"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
        .mount(&server)
        .await;
    let err = client(&format!("{}/api/v1", server.uri()))
        .dispatch(&call())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
}

#[tokio::test]
async fn a_log_page_over_the_size_limit_is_refused_and_one_within_it_is_read() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/calls/logs"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(big_page(2 * LIMIT)))
        .mount(&server)
        .await;
    let base = format!("{}/api/v1", server.uri());
    let err = client(&base).list_logs(&query()).await.unwrap_err();
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
    let roomy = client(&base).with_max_response_bytes(4 * LIMIT);
    let page = roomy.list_logs(&query()).await.unwrap();
    assert_eq!(page.logs.len(), 1);
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_at_the_limit() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = sock.read(&mut buf).await;
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        sock.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("{:x}\r\n{}\r\n", 8192, "[".repeat(8192));
        let mut sent = 0usize;
        // Far more than the limit; the client must hang up long before.
        while sent < 512 * 1024 * 1024 {
            if sock.write_all(chunk.as_bytes()).await.is_err() {
                return sent;
            }
            sent += 8192;
        }
        sent
    });
    let err = client(&format!("http://{addr}/api/v1"))
        .list_logs(&query())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
    let sent = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("the client kept reading")
        .unwrap();
    assert!(sent < 64 * 1024 * 1024, "the client read {sent} bytes");
}

#[test]
fn a_transcript_of_a_million_ampersands_decodes_in_linear_time() {
    for text in [
        "&".repeat(1_000_000),
        "&amp".repeat(250_000),
        "&#".repeat(500_000),
    ] {
        let start = Instant::now();
        let out = clean_transcript(&text).unwrap();
        let took = start.elapsed();
        assert_eq!(out.len(), text.len(), "nothing decodes in {:.10}", text);
        // Linear: milliseconds. Quadratic: minutes.
        assert!(took < Duration::from_secs(2), "{:.10}… took {took:?}", text);
    }
}

// ---------------------------------------------------------------- the simulator's key

async fn status_with_key(sim: &dialerd::sim::SimHandle, key: &str) -> Option<ErrorKind> {
    let c = Client::new(
        &sim.base_url(),
        ApiKey::new(key).unwrap(),
        Duration::from_secs(5),
    )
    .unwrap();
    c.dispatch(&call()).await.err().map(|e| e.kind())
}

#[tokio::test]
async fn the_simulator_accepts_its_default_key_and_the_old_one_until_a_key_is_given() {
    use dialerd::sim::{self, SimOptions};
    let sim = sim::spawn(SimOptions::default()).await.unwrap();
    assert!(
        "sim-key-local".len() >= 8,
        "the official SDK refuses shorter keys"
    );
    assert_eq!(status_with_key(&sim, "sim-key-local").await, None);
    assert_eq!(
        status_with_key(&sim, "sim-key").await,
        None,
        "old scripts keep working"
    );
    assert_eq!(
        status_with_key(&sim, "another-key").await,
        Some(ErrorKind::Unauthorized)
    );

    let given = sim::spawn(SimOptions {
        api_key: "my-own-key-123".into(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(status_with_key(&given, "my-own-key-123").await, None);
    assert_eq!(
        status_with_key(&given, "sim-key").await,
        Some(ErrorKind::Unauthorized)
    );
    assert_eq!(
        status_with_key(&given, "sim-key-local").await,
        Some(ErrorKind::Unauthorized)
    );
}

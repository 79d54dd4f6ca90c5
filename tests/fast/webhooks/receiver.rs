//! A webhook receiver on loopback: records every request it gets and answers
//! as told (200, 503, 429 with Retry-After, slowly, or never).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Ok = 0,
    Unavailable = 1,
    RateLimited = 2,
    Hang = 3,
    Slow = 4,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub delivery: i64,
    pub event: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub answered: u16,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Clone, Default)]
struct Shared {
    mode: Arc<AtomicU8>,
    got: Arc<Mutex<Vec<Received>>>,
}

/// The receiver; it runs on a runtime of its own until dropped.
pub struct Receiver {
    pub url: String,
    shared: Shared,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    /// Starts on a free loopback port.
    pub fn start() -> Receiver {
        let shared = Shared::default();
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                url_tx.send(format!("http://{addr}/hook")).unwrap();
                let app = axum::Router::new()
                    .route("/hook", axum::routing::post(handle))
                    .with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
            // Hanging handlers are dropped with the runtime.
            rt.shutdown_background();
        });
        let url = url_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the receiver's address");
        Receiver {
            url,
            shared,
            _stop: stop_tx,
        }
    }

    /// Changes how the next requests are answered.
    pub fn set(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn got(&self) -> Vec<Received> {
        self.shared
            .got
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Records the request first, as a receiver that acts on an event before it
/// answers: an answer lost after that (a hang, a sender killed while
/// waiting) makes the sender try again, a duplicate the receiver must spot by
/// its delivery id.
async fn handle(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mode = s.mode.load(Ordering::SeqCst);
    let (status, extra): (StatusCode, Option<(&str, &str)>) = match mode {
        1 => (StatusCode::SERVICE_UNAVAILABLE, None),
        2 => (StatusCode::TOO_MANY_REQUESTS, Some(("retry-after", "120"))),
        _ => (StatusCode::OK, None),
    };
    s.got
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Received {
            delivery: header(&headers, "x-dialerd-delivery").parse().unwrap_or(-1),
            event: header(&headers, "x-dialerd-event"),
            timestamp: header(&headers, "x-dialerd-timestamp"),
            signature: header(&headers, "x-dialerd-signature"),
            body: body.to_vec(),
            answered: if mode == 3 { 0 } else { status.as_u16() },
        });
    match mode {
        3 => std::future::pending::<()>().await,
        4 => tokio::time::sleep(Duration::from_millis(300)).await,
        _ => {}
    }
    match extra {
        Some((k, v)) => (status, [(k, v)], "slow down").into_response(),
        None => (status, "").into_response(),
    }
}

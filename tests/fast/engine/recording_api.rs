//! A dispatch API on loopback (wiremock) that records the number of every
//! request and answers each as a test's rule says (else accepts it), and
//! the helpers the dial-time tests share around it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialerd::provider::Client;
use dialerd::secret::ApiKey;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::world::*;

/// How a test answers a request: the number it dials and the numbers of
/// the requests before it; `None` accepts it.
type Answer = dyn Fn(&str, &[String]) -> Option<ResponseTemplate> + Send + Sync;

/// The API, and the number of every dispatch request it received.
pub(super) struct RecordingApi {
    server: MockServer,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RecordingApi {
    /// Starts it; `answer` decides each response (`None`: accepted).
    pub(super) async fn start(answer: Box<Answer>) -> Self {
        let server = MockServer::start().await;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let respond = move |req: &Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let number = body["to_number"].as_str().unwrap_or_default().to_string();
            let mut seen = seen.lock().unwrap();
            let answered = answer(&number, &seen);
            seen.push(number);
            answered.unwrap_or_else(|| {
                ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "success": true, "status": "dispatched", "requestId": 1000 + seen.len(),
                }))
            })
        };
        Mock::given(method("POST"))
            .and(path("/api/v1/calls/dispatch"))
            .respond_with(respond)
            .mount(&server)
            .await;
        Self { server, requests }
    }

    /// Points the world's engine at this API.
    pub(super) fn serve(&self, w: &World) {
        let client = Client::new(
            &format!("{}/api/v1", self.server.uri()),
            ApiKey::new(KEY).unwrap(),
            REQUEST_TIMEOUT,
        )
        .unwrap()
        .with_clock(w.clock.shared());
        w.engine.set_client(client);
    }

    /// Requests received.
    pub(super) fn total(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Requests received for number `n`.
    pub(super) fn for_number(&self, n: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| *r == n)
            .count()
    }
}

/// A 429 asking to wait `secs` seconds.
pub(super) fn too_many(secs: u64) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("Retry-After", secs.to_string().as_str())
        .set_body_json(serde_json::json!({"error": "rate limited"}))
}

/// Polls (real time) until `cond` holds, for at most five seconds.
pub(super) async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    for _ in 0..500 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Starts a sweep of campaign `id` in the background.
pub(super) fn spawn_sweep(
    w: &World,
    id: i64,
) -> tokio::task::JoinHandle<dialerd::engine::SweepReport> {
    let engine = w.engine.clone();
    let store = w.store.clone();
    tokio::spawn(async move {
        let c = store.campaign(id).await.unwrap().unwrap();
        engine.sweep_campaign(&c).await.unwrap()
    })
}

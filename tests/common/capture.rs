//! An HTTP capture server for notification tests: axum on 127.0.0.1, records
//! every request exactly and answers as scripted (200 unless told otherwise).
//! A real receiver for lagwatch's webhooks, and for Alertmanager's.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Captured {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Captured {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .to_str()
            .expect("ASCII header")
    }
}

#[derive(Default)]
struct CaptureState {
    requests: Vec<Captured>,
    /// Scripted answers (status, Retry-After), used first; then `default_status`.
    script: VecDeque<(u16, Option<&'static str>)>,
    default_status: u16,
}

type Shared = Arc<Mutex<CaptureState>>;

/// Records every request and answers as told (200 unless scripted otherwise).
pub struct Capture {
    pub addr: SocketAddr,
    state: Shared,
}

async fn record(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = s.lock().unwrap();
    s.requests.push(Captured {
        path: uri.path().to_string(),
        headers,
        body,
        at: Instant::now(),
    });
    let (status, retry_after) = s.script.pop_front().unwrap_or((s.default_status, None));
    let status = StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(ra) => (status, [("retry-after", ra)], "scripted").into_response(),
        None => (status, "recorded").into_response(),
    }
}

impl Capture {
    pub fn start(rt: &tokio::runtime::Runtime) -> Capture {
        Self::start_on(rt, 0)
    }

    pub fn start_on(rt: &tokio::runtime::Runtime, port: u16) -> Capture {
        let state: Shared = Arc::new(Mutex::new(CaptureState {
            default_status: 200,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .expect("bind the capture server");
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move { axum::serve(listener, app).await });
        Capture { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn answer(&self, status: u16) {
        self.state.lock().unwrap().default_status = status;
    }

    pub fn script(&self, answers: &[(u16, Option<&'static str>)]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().copied());
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits for at least `n` requests; fails with what arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Captured> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            let r = self.requests();
            if r.len() >= n {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = self.requests();
        panic!(
            "expected {n} requests within {timeout:?}, got {}: {:?}",
            r.len(),
            r.iter().map(|c| &c.path).collect::<Vec<_>>()
        );
    }
}

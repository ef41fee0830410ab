//! The HTTP surface (axum): /metrics, /healthz, /readyz. Handlers only read the
//! latest snapshot; nothing here ever calls a broker.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::engine::Snapshot;

/// Shared, read-only state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
}

impl AppState {
    fn latest(&self) -> Arc<Snapshot> {
        // Clone the Arc and release the watch's read lock at once.
        self.snapshots.borrow().clone()
    }
}

/// The router: unknown paths answer 404, known paths with a wrong method 405.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(state)
}

/// Content type of the Prometheus text exposition format 0.0.4.
const PROM_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snap = state.latest();
    if accepts_gzip(&headers) {
        (
            [
                (header::CONTENT_TYPE, PROM_TEXT),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            snap.metrics_gzip(),
        )
            .into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, PROM_TEXT),
                (header::VARY, "accept-encoding"),
            ],
            snap.metrics_text.clone(),
        )
            .into_response()
    }
}

/// Whether the client listed gzip in Accept-Encoding (without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    let snap = state.latest();
    if snap.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let waiting: Vec<&str> = snap
            .sources
            .iter()
            .filter(|s| !s.polled)
            .map(|s| s.id.as_str())
            .collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: waiting for the first poll of {}\n",
                waiting.join(", ")
            ),
        )
            .into_response()
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found; try /metrics, /healthz or /readyz\n",
    )
        .into_response()
}

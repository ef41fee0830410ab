//! The HTTP surface (axum): /metrics, /healthz, /readyz, the JSON API and the
//! status page. Handlers only read the latest snapshot; nothing here ever calls
//! a broker, so a slow broker never slows a scrape.

pub mod api;
pub mod page;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use tokio::sync::watch;

use axum::body::{Body, Bytes};
use prometheus::Registry;

use crate::export::encode_registry;
use crate::snapshot::Snapshot;

/// Shared, read-only state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Bearer token the API requires; None: open.
    pub api_token: Option<Arc<str>>,
    /// Metrics of other owners (the notifier), gathered at each scrape and
    /// appended to the snapshot's pre-rendered body.
    pub live_metrics: Vec<Registry>,
    /// The process's liveness (see [`crate::health`]).
    pub health: Arc<crate::health::Health>,
    /// Dead letters for the API.
    pub state: Arc<crate::state::StateStore>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("api_token", &self.api_token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl AppState {
    fn latest(&self) -> Arc<Snapshot> {
        // Clone the Arc and release the watch's read lock at once.
        self.snapshots.borrow().clone()
    }
}

/// The router: unknown paths answer 404, known paths with a wrong method 405.
/// /metrics and the health endpoints stay open, as Prometheus and kubelet
/// expect; the API requires the bearer token when one is configured.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/sources", get(api::sources))
        .route("/api/v1/groups", get(api::groups))
        .route("/api/v1/groups/{source}/{group}", get(api::group))
        .route("/api/v1/dead_letters", get(api::dead_letters))
        .route("/api", any(api::not_found))
        .route("/api/{*rest}", any(api::not_found))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/", get(page::index))
        .merge(api)
        .fallback(not_found)
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` completes. Every connection gets
/// TCP_NODELAY: a response written in pieces (the /metrics body and its live
/// tail) must not wait for the client's delayed ACK between them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Checks `Authorization: Bearer <token>` in constant time.
async fn require_token(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let Some(token) = &state.api_token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let a = given.as_bytes();
    let b = token.as_bytes();
    let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    if same {
        next.run(request).await
    } else {
        let mut r = api::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer ...)",
        )
        .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"lagwatch\""),
        );
        r
    }
}

/// Content type of the Prometheus text exposition format 0.0.4.
const PROM_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The snapshot's body (rendered once per poll) followed by the live metrics,
/// as a stream of pieces so the large body is never copied; gzip as one member
/// whose large part was compressed once per snapshot.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snap = state.latest();
    let mut live = String::new();
    for r in &state.live_metrics {
        encode_registry(r, &mut live);
    }
    let (pieces, gzip): (Vec<Bytes>, bool) = if accepts_gzip(&headers) {
        (
            snap.metrics_gzip().with_tail(live.as_bytes()).to_vec(),
            true,
        )
    } else {
        (vec![snap.metrics_text.clone(), Bytes::from(live)], false)
    };
    let length: usize = pieces.iter().map(Bytes::len).sum();
    let body = Body::from_stream(futures::stream::iter(
        pieces.into_iter().map(Ok::<_, std::convert::Infallible>),
    ));
    let mut response = (
        [
            (header::CONTENT_TYPE, PROM_TEXT),
            (header::VARY, "accept-encoding"),
        ],
        body,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(length));
    if gzip {
        h.insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
    }
    response
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

/// 200 while the engine and the notifier run and snapshots keep coming; 503
/// with the reason otherwise, so that Kubernetes restarts a process that can
/// no longer do its job instead of letting it serve frozen data.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.health.check(crate::model::Millis::now()) {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => {
            tracing::error!(reason = %why, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("unhealthy: {why}\n"),
            )
                .into_response()
        }
    }
}

/// Ready once every source has finished its first poll, and while healthy.
async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(why) = state.health.check(crate::model::Millis::now()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response();
    }
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
        "not found; try /, /metrics, /healthz, /readyz or /api/v1/groups\n",
    )
        .into_response()
}

//! The HTTP surface (axum): /metrics, /healthz, /readyz, the JSON API and the
//! status page. Handlers only read the latest snapshot; nothing here ever calls
//! a broker, so a slow broker never slows a scrape.

pub mod api;
pub mod dead_letters;
pub mod page;
pub mod server;

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

/// Longest request target (path and query) accepted; longer answers 414.
pub const MAX_URI_BYTES: usize = 4096;
/// Requests carry no body here; anything larger than this is refused (413).
const MAX_BODY_BYTES: usize = 16 * 1024;
/// JSON API requests answered at once; more answer 503 at once instead of
/// queueing, so that a burst of expensive `/api/v1/groups` calls cannot take
/// the worker threads the scrape and the probes need.
pub const API_CONCURRENCY: usize = 4;

/// Content-Security-Policy of everything but the page: nothing loads, nothing
/// frames it.
const CSP_NONE: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The router: unknown paths answer 404, known paths with a wrong method 405.
/// /metrics and the health endpoints stay open, as Prometheus and kubelet
/// expect; the API requires the bearer token when one is configured.
/// `request_timeout` bounds each request's handling (408 when exceeded).
pub fn router(state: AppState, request_timeout: std::time::Duration) -> Router {
    use axum::error_handling::HandleErrorLayer;
    use tower::ServiceBuilder;
    use tower_http::set_header::SetResponseHeaderLayer;

    let api = Router::new()
        .route("/api/v1/sources", get(api::sources))
        .route("/api/v1/groups", get(api::groups))
        .route("/api/v1/groups/{source}/{group}", get(api::group))
        .route("/api/v1/group", get(api::group_by_query))
        .route("/api/v1/dead_letters", get(api::dead_letters))
        .route("/api/v1/dead_letter_queues", get(dead_letters::queues))
        .route("/api", any(api::not_found))
        .route("/api/{*rest}", any(api::not_found))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(api_overloaded))
                .load_shed()
                // One semaphore for every API route, not one per route.
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    API_CONCURRENCY,
                )),
        );
    let header = |name, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, header::HeaderValue::from_static(value))
    };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/", get(page::index))
        .route("/page.js", get(page::script))
        .route("/page.css", get(page::style))
        .merge(api)
        .fallback(not_found)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .layer(header(header::X_FRAME_OPTIONS, "DENY"))
                .layer(header(header::REFERRER_POLICY, "no-referrer"))
                .layer(header(header::CONTENT_SECURITY_POLICY, CSP_NONE))
                .layer(header(header::CACHE_CONTROL, "no-store"))
                .layer(middleware::from_fn(bounded_uri))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(
                    MAX_BODY_BYTES,
                ))
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    request_timeout,
                )),
        )
}

/// The API's answer when [`API_CONCURRENCY`] requests are already running.
async fn api_overloaded(e: tower::BoxError) -> Response {
    if e.is::<tower::load_shed::error::Overloaded>() {
        let mut r = api::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many API requests at once (limit {API_CONCURRENCY}); retry in a second"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        r
    } else {
        api::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("API error: {e}"))
            .into_response()
    }
}

/// 414 for a request target longer than [`MAX_URI_BYTES`].
async fn bounded_uri(request: axum::extract::Request, next: middleware::Next) -> Response {
    let len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if len > MAX_URI_BYTES {
        return (
            StatusCode::URI_TOO_LONG,
            format!("request target is {len} bytes; at most {MAX_URI_BYTES} are accepted\n"),
        )
            .into_response();
    }
    next.run(request).await
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
        .and_then(bearer)
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

/// The credentials of an `Authorization` value with the Bearer scheme, whose
/// name is case-insensitive (RFC 9110 section 11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start_matches(' '))
}

/// Content type of the Prometheus text exposition format 0.0.4.
const PROM_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The snapshot's body (rendered once per poll) followed by the live metrics,
/// as a stream of pieces so the large body is never copied: gzip as one member
/// whose large part was compressed once per snapshot; plain (a scraper that
/// does not ask for gzip) inflated on the fly, 64 KiB at a time.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snap = state.latest();
    let mut live = String::new();
    for r in &state.live_metrics {
        encode_registry(r, &mut live);
    }
    type Pieces = Box<dyn Iterator<Item = std::io::Result<Bytes>> + Send>;
    let gzip = accepts_gzip(&headers);
    let (pieces, length): (Pieces, u64) = if gzip {
        let pieces = snap.metrics().with_tail(live.as_bytes());
        let length = pieces.iter().map(|p| p.len() as u64).sum();
        (Box::new(pieces.into_iter().map(Ok)), length)
    } else {
        let length = snap.metrics().plain_len() + live.len() as u64;
        let tail = std::iter::once(Ok(Bytes::from(live)));
        (Box::new(snap.metrics().inflate().chain(tail)), length)
    };
    let body = Body::from_stream(futures::stream::iter(pieces));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Millis;
    use std::time::Duration;
    use tower::ServiceExt as _;

    const TOKEN: &str = "0123456789abcdef-token";

    /// The real router over an empty snapshot.
    fn app() -> Router {
        let snap = Snapshot::new(
            Millis(0),
            Vec::new(),
            0,
            Arc::new(Vec::new()),
            crate::snapshot::gzip::prefix(b""),
        );
        let (_tx, rx) = watch::channel(Arc::new(snap));
        router(
            AppState {
                snapshots: rx,
                api_token: Some(Arc::from(TOKEN)),
                live_metrics: Vec::new(),
                health: crate::health::Health::new(Duration::from_secs(3600)),
                state: crate::state::StateStore::open(None).0,
            },
            Duration::from_secs(5),
        )
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    }

    /// (status, body) of GET `target` with `authorization`.
    async fn get(app: &Router, target: &str, authorization: &str) -> (StatusCode, String) {
        let request = axum::http::Request::get(target)
            .header(header::AUTHORIZATION, authorization)
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("request {target}: {e}"));
        let response = app
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let rt = runtime();
        let app = app();
        for auth in [
            format!("Bearer {TOKEN}"),
            format!("bearer {TOKEN}"),
            format!("BEARER  {TOKEN}"),
        ] {
            assert_eq!(
                rt.block_on(get(&app, "/api/v1/groups", &auth)).0,
                StatusCode::OK,
                "{auth}"
            );
        }
        for auth in [
            "",
            "Bearer",
            "Basic abc",
            TOKEN,
            "Bearer 0123456789abcdef-toke",
        ] {
            assert_eq!(
                rt.block_on(get(&app, "/api/v1/groups", auth)).0,
                StatusCode::UNAUTHORIZED,
                "{auth}"
            );
        }
    }

    /// Every answer of the API is JSON; a 4xx says what is wrong in `error`.
    fn check_json_answer(status: StatusCode, body: &str) -> Result<(), String> {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("{status}: not JSON ({e}): {body}"))?;
        if status.is_client_error() && v["error"].as_str().is_none_or(str::is_empty) {
            return Err(format!("{status} without an error message: {body}"));
        }
        if status.is_server_error() {
            return Err(format!("{status}: {body}"));
        }
        Ok(())
    }

    #[test]
    fn any_query_string_gets_200_or_a_clear_400() {
        let rt = runtime();
        let app = app();
        let auth = format!("Bearer {TOKEN}");
        let param = proptest::prop_oneof![
            proptest::strategy::Just("sort".to_string()),
            proptest::strategy::Just("order".to_string()),
            proptest::strategy::Just("status".to_string()),
            proptest::strategy::Just("system".to_string()),
            proptest::strategy::Just("limit".to_string()),
            proptest::strategy::Just("source".to_string()),
            "[a-z%]{0,6}",
        ];
        let pair = (param, "[a-zA-Z0-9_%+.-]{0,12}");
        proptest::proptest!(|(pairs in proptest::collection::vec(pair, 0..5))| {
            let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let target = format!("/api/v1/groups?{}", query.join("&"));
            let (status, body) = rt.block_on(get(&app, &target, &auth));
            proptest::prop_assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
                "{target}: {status} {body}"
            );
            check_json_answer(status, &body).map_err(proptest::test_runner::TestCaseError::fail)?;
        });
    }

    #[test]
    fn any_group_path_gets_a_json_answer() {
        let rt = runtime();
        let app = app();
        let auth = format!("Bearer {TOKEN}");
        proptest::proptest!(|(source in "\\PC{0,12}", group in "\\PC{0,12}", stream in proptest::option::of("\\PC{0,8}"))| {
            let enc = |s: &str| -> String {
                s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
            };
            let q = stream.as_deref().map(|s| format!("?stream={}", enc(s))).unwrap_or_default();
            let target = format!("/api/v1/groups/{}/{}{q}", enc(&source), enc(&group));
            let (status, body) = rt.block_on(get(&app, &target, &auth));
            proptest::prop_assert!(status.is_client_error(), "{target}: {status} {body}");
            check_json_answer(status, &body).map_err(proptest::test_runner::TestCaseError::fail)?;
        });
    }
}

//! The status page: one HTML file with its script and style beside it (no CDN,
//! no build step) that reads the JSON API and refreshes itself. The page holds
//! no data itself, so it is served without the API token; its requests carry
//! the token when needed.
//!
//! The script and the style are separate files so that the Content-Security-
//! Policy can forbid inline script: a broker name that slipped into the markup
//! could not run. The script only ever puts names into text nodes.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// Only this origin's script and style; fetches to this origin; no framing.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidate: a new version of lagwatch brings a new page.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        body,
    )
}

pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", PAGE)
}

pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}

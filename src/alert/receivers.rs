//! Receiver kinds and the exact request each one gets for a notification: the
//! generic webhook (signed with HMAC-SHA256 when a secret is set), Slack incoming
//! webhooks, Alertmanager's `/api/v2/alerts`, PagerDuty Events v2, and `log`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use sha2::Sha256;

use super::payload::{self, RenderContext};
use super::{rfc3339, EventKind, Millis, Notification};

/// `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Lagwatch-Signature";
/// Unix seconds when the request was signed; part of the signed message.
pub const TIMESTAMP_HEADER: &str = "X-Lagwatch-Timestamp";
/// The payload's eventId, repeated as a header for dedup without parsing.
pub const EVENT_ID_HEADER: &str = "X-Lagwatch-Event-Id";

/// The signature header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header in constant time (what a receiver does).
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// [`verify_signature`], and the timestamp within `tolerance_s` seconds of
/// `now_unix` either way: a request captured and sent again later is refused
/// (the replay window; 300 s is usual).
pub fn verify_signed_request(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    header: &str,
    now_unix: i64,
    tolerance_s: i64,
) -> bool {
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| now_unix.abs_diff(t) <= tolerance_s.unsigned_abs());
    fresh && verify_signature(secret, timestamp, body, header)
}

/// What a receiver is, ready to render requests.
#[derive(Clone)]
pub enum ReceiverKind {
    Webhook { hmac_secret: Option<Arc<[u8]>> },
    Slack { blocks: bool },
    Alertmanager { generator_url: Option<String> },
    PagerDuty { routing_key: String },
    Log,
}

impl std::fmt::Debug for ReceiverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReceiverKind::Webhook { .. } => "webhook",
            ReceiverKind::Slack { .. } => "slack",
            ReceiverKind::Alertmanager { .. } => "alertmanager",
            ReceiverKind::PagerDuty { .. } => "pagerduty",
            ReceiverKind::Log => "log",
        })
    }
}

/// One configured receiver with its defaults applied, built by the config's
/// validation pass.
#[derive(Clone)]
pub struct Receiver {
    pub name: Arc<str>,
    pub kind: ReceiverKind,
    /// None for `log`.
    pub url: Option<reqwest::Url>,
    /// Custom headers (values are secrets: never logged).
    pub headers: HeaderMap,
    pub queue_capacity: usize,
    pub timeout: Duration,
    /// CA certificates trusted besides the system's (`tls.ca_file`).
    pub ca_certs: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url.as_ref().map(|u| redact_url(u.as_str())))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("queue_capacity", &self.queue_capacity)
            .field("timeout", &self.timeout)
            .field("ca_certs", &self.ca_certs.len())
            .finish_non_exhaustive()
    }
}

/// A request body ready to send (and re-send, byte for byte, on retry).
#[derive(Clone, Debug)]
pub(crate) struct Rendered {
    pub body: axum::body::Bytes,
    /// For the `log` kind: the line to print.
    pub summary: String,
}

impl Receiver {
    /// Every secret this receiver sends: header values, the signing secret,
    /// the PagerDuty routing key, the URL's password and query values.
    pub(crate) fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .headers
            .values()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| {
                // `Bearer abc`: the credential alone too.
                let last = v.rsplit(' ').next().unwrap_or(v);
                [v.to_string(), last.to_string()]
            })
            .collect();
        match &self.kind {
            ReceiverKind::Webhook {
                hmac_secret: Some(secret),
            } => out.push(String::from_utf8_lossy(secret).into_owned()),
            ReceiverKind::PagerDuty { routing_key } => out.push(routing_key.clone()),
            _ => {}
        }
        if let Some(url) = &self.url {
            out.extend(url.password().map(str::to_string));
            out.extend(url.query_pairs().map(|(_, v)| v.into_owned()));
            // Slack's webhook URL is itself the credential.
            if matches!(self.kind, ReceiverKind::Slack { .. }) {
                out.push(url.path().to_string());
            }
        }
        out.retain(|v| !v.is_empty());
        out
    }

    /// The body this receiver gets for `n`.
    pub(crate) fn render(&self, n: &Notification, ctx: &RenderContext) -> Rendered {
        let summary = payload::summary(n);
        let body = match &self.kind {
            ReceiverKind::Webhook { .. } | ReceiverKind::Log => payload::event_json(n, ctx),
            ReceiverKind::Slack { blocks } => to_vec(&slack(n, ctx, *blocks)),
            ReceiverKind::Alertmanager { generator_url } => {
                to_vec(&alertmanager(n, ctx, generator_url.as_deref()))
            }
            ReceiverKind::PagerDuty { routing_key } => to_vec(&pagerduty(n, ctx, routing_key)),
        };
        Rendered {
            body: body.into(),
            summary,
        }
    }

    /// Headers added per attempt: the signature covers the attempt's timestamp, so
    /// a receiver can refuse replays older than a few minutes.
    pub fn attempt_headers(&self, n: &Notification, body: &[u8], now_unix: i64) -> HeaderMap {
        let mut h = self.headers.clone();
        h.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(concat!("lagwatch/", env!("CARGO_PKG_VERSION"))),
        );
        if let ReceiverKind::Webhook { hmac_secret } = &self.kind {
            if let Ok(v) = HeaderValue::from_str(&n.event_id.to_string()) {
                h.insert(EVENT_ID_HEADER, v);
            }
            if let Some(secret) = hmac_secret {
                let sig = sign(secret, now_unix, body);
                if let (Ok(ts), Ok(sig)) = (
                    HeaderValue::from_str(&now_unix.to_string()),
                    HeaderValue::from_str(&sig),
                ) {
                    h.insert(TIMESTAMP_HEADER, ts);
                    h.insert(SIGNATURE_HEADER, sig);
                }
            }
        }
        h
    }
}

fn to_vec(v: &Value) -> Vec<u8> {
    // A serde_json::Value always serializes.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: readable `text` (also the notification
/// fallback) and, optionally, Block Kit blocks with the details.
pub(crate) fn slack(n: &Notification, ctx: &RenderContext, blocks: bool) -> Value {
    let inc = &n.incident;
    let o = &inc.observation;
    let who = slack_escape(&payload::consumer_phrase(n));
    let (icon, head) = match n.kind {
        EventKind::Fired => (":rotating_light:", "FIRING"),
        EventKind::Repeated => (":warning:", "STILL FIRING"),
        EventKind::Resolved => (":white_check_mark:", "RESOLVED"),
    };
    let what = match n.resolution {
        Some(super::Resolution::ConsumerVanished) => {
            "vanished (no longer reported by its source)".to_string()
        }
        Some(super::Resolution::RuleRemoved) => {
            "the rule was removed from lagwatch's config".to_string()
        }
        _ => slack_escape(&inc.condition.describe(o)),
    };
    let link = payload::dashboard_link(n, ctx);
    let mut text = format!(
        "{icon} *{head}* `{}` ({})\n{who}: {what}",
        slack_escape(&inc.rule),
        inc.severity
    );
    if let (Some(why), false) = (&o.diagnosis, n.kind == EventKind::Resolved) {
        text.push_str(&format!("\nWhy: {}", slack_escape(why)));
    }
    if let Some(l) = &link {
        text.push_str(&format!("\n<{l}|Dashboard>"));
    }
    if !blocks {
        return json!({ "text": text });
    }
    let mut details = vec![
        format!("*Status:* {}", o.status),
        format!("*Lag:* {} messages", o.lag_messages),
    ];
    if let Some(s) = o.lag_seconds.filter(|s| s.is_finite()) {
        details.push(format!("*Behind:* {}", super::rules::fmt_secs(s)));
    }
    if let Some(g) = o.growth_per_second.filter(|g| g.is_finite()) {
        details.push(format!("*Growth:* {g:.1} msg/s"));
    }
    if let Some(reason) = &o.recommendation_reason {
        details.push(format!("*Recommendation:* {}", slack_escape(reason)));
    }
    json!({
        "text": text,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": details.join("  ·  ") },
                { "type": "mrkdwn", "text": format!("incident `{}`", inc.id) }
            ] }
        ]
    })
}

/// One alert for Alertmanager's `POST /api/v2/alerts`, labelled as a Prometheus
/// rule would be. A firing alert's `endsAt` is two repeat intervals ahead (each
/// repeat pushes it out), so Alertmanager keeps it active between repeats but
/// expires it if lagwatch stops; a resolve sets `endsAt` to the resolve time.
pub(crate) fn alertmanager(
    n: &Notification,
    ctx: &RenderContext,
    generator_url: Option<&str>,
) -> Value {
    let inc = &n.incident;
    let o = &inc.observation;
    let mut labels = serde_json::Map::new();
    let mut label = |k: &str, v: &str| {
        // Alertmanager drops empty label values; leave them out.
        if !v.is_empty() {
            labels.insert(k.to_string(), Value::String(v.to_string()));
        }
    };
    label("alertname", &inc.rule);
    label("severity", inc.severity.as_str());
    label("source", o.group.source.as_str());
    label("system", o.system.as_str());
    label("group", &o.group.group);
    let topics: Vec<&str> = o.topics.iter().map(|t| &**t).collect();
    label("topic", &topics.join(","));
    if let Some(stream) = o.group.scope.as_deref() {
        label("stream", stream);
    }
    let link = payload::dashboard_link(n, ctx);
    let mut annotations = serde_json::Map::new();
    annotations.insert("summary".into(), Value::String(payload::summary(n)));
    annotations.insert(
        "description".into(),
        Value::String(inc.condition.describe(o)),
    );
    annotations.insert("incident_id".into(), Value::String(inc.id.to_string()));
    annotations.insert("status".into(), Value::String(o.status.as_str().into()));
    if let Some(r) = &o.recommendation_reason {
        annotations.insert("recommendation".into(), Value::String(r.clone()));
    }
    if let Some(l) = &link {
        annotations.insert("dashboard".into(), Value::String(l.clone()));
    }
    let ends = match n.kind {
        EventKind::Resolved => n.at,
        EventKind::Fired | EventKind::Repeated => {
            let ahead = inc.repeat_interval.saturating_mul(2).as_millis();
            Millis(
                n.at.0
                    .saturating_add(i64::try_from(ahead).unwrap_or(i64::MAX / 2)),
            )
        }
    };
    let mut alert = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(inc.started_at),
        "endsAt": rfc3339(ends),
    });
    if let Some(g) = link.as_deref().or(generator_url) {
        alert["generatorURL"] = Value::String(g.to_string());
    }
    json!([alert])
}

/// PagerDuty's summary limit.
const PD_SUMMARY_MAX: usize = 1024;

/// A PagerDuty Events v2 event: trigger on fire and repeat (same dedup_key, so
/// PagerDuty folds them into one incident), resolve on resolve.
pub(crate) fn pagerduty(n: &Notification, ctx: &RenderContext, routing_key: &str) -> Value {
    let inc = &n.incident;
    let o = &inc.observation;
    let mut summary = payload::summary(n);
    if summary.len() > PD_SUMMARY_MAX {
        let mut cut = PD_SUMMARY_MAX - '…'.len_utf8();
        while !summary.is_char_boundary(cut) {
            cut -= 1;
        }
        summary.truncate(cut);
        summary.push('…');
    }
    let details = serde_json::to_value(payload::event(n, ctx).data).unwrap_or(Value::Null);
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": if n.kind == EventKind::Resolved { "resolve" } else { "trigger" },
        "dedup_key": inc.id.to_string(),
        "client": "lagwatch",
        "payload": {
            "summary": summary,
            "source": format!("{}/{}", o.group.source, o.group.group),
            "severity": inc.severity.as_str(),
            "timestamp": rfc3339(n.at),
            "component": o.group.group.to_string(),
            "group": o.group.source.to_string(),
            "class": inc.rule.to_string(),
            "custom_details": details,
        },
    });
    if let Some(l) = payload::dashboard_link(n, ctx) {
        event["client_url"] = Value::String(l.clone());
        event["links"] = json!([{ "href": l, "text": "Dashboard" }]);
    }
    event
}

/// PagerDuty's documented Events API v2 endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Scheme, host and port only: paths and queries of webhook URLs often hold tokens.
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/…", u.scheme()),
            (Some(h), None) => format!("{}://{h}/…", u.scheme()),
            _ => "***".into(),
        },
        Err(_) => "***".into(),
    }
}

//! The generic webhook payload: a self-contained, versioned event (schema in
//! docs/webhook-payload.schema.json), plus the texts and links every receiver
//! kind shares.

use serde::Serialize;
use serde_json::Value;

use super::{rfc3339, EventKind, Notification};
use crate::model::System;

/// The payload's `eventVersion`; bumped on any incompatible change.
pub const EVENT_VERSION: &str = "1";
/// The payload's `source`.
pub const EVENT_SOURCE: &str = "lagwatch";

/// How links are made (from `alerts.dashboard_url`).
#[derive(Clone, Debug, Default)]
pub struct RenderContext {
    pub dashboard_url: Option<String>,
}

/// The generic webhook event.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: String,
    pub event_type: &'static str,
    pub event_version: &'static str,
    pub timestamp: String,
    pub source: &'static str,
    pub correlation_id: String,
    pub data: EventData,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    pub incident_id: String,
    /// `firing` or `resolved`.
    pub state: &'static str,
    pub rule: String,
    pub severity: &'static str,
    pub summary: String,
    pub condition: ConditionData,
    pub source: String,
    pub system: &'static str,
    pub group: String,
    /// JetStream: the consumer's stream. Kafka: null.
    pub stream: Option<String>,
    /// Kafka: the group's topics. JetStream: the stream.
    pub topics: Vec<String>,
    pub lag: LagData,
    pub status: &'static str,
    pub retention: RetentionData,
    pub recommendation: Option<RecommendationData>,
    /// Why the group is behind, in one sentence; null when not known or not behind.
    pub diagnosis: Option<String>,
    /// The group's dead letters in the window (the `dead_letters` condition's
    /// figure); null when not watched.
    pub dead_letters: Option<DeadLetterData>,
    pub pending_since: String,
    pub started_at: String,
    pub resolved_at: Option<String>,
    /// `condition_cleared`, `consumer_vanished` or `rule_removed` on LagAlertResolved; else null.
    pub resolution: Option<&'static str>,
    pub dashboard_url: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionData {
    pub kind: &'static str,
    /// Messages, messages per second, seconds, or a list of statuses; null for replicas_short.
    pub threshold: Value,
    pub description: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LagData {
    pub messages: u64,
    pub seconds: Option<f64>,
    pub growth_per_second: Option<f64>,
    pub eta_seconds: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionData {
    pub lost_messages: u64,
    pub seconds_until_loss: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterData {
    /// Dead letters linked to the group within the window.
    pub recent: u64,
    pub window_seconds: f64,
    /// At least `recent`: part of the window was not watched.
    pub lower_bound: bool,
    /// Where they went: the dead-letter topic, or the advisory and its last event.
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationData {
    pub current_replicas: Option<u32>,
    pub recommended_replicas: Option<u32>,
    pub reason: Option<String>,
}

/// JSON has no NaN or infinity: such values become null.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// Builds the generic event for one notification.
pub fn event(n: &Notification, ctx: &RenderContext) -> Event {
    let inc = &n.incident;
    let o = &inc.observation;
    let recommendation = (o.current_replicas.is_some()
        || o.recommended_replicas.is_some()
        || o.recommendation_reason.is_some())
    .then(|| RecommendationData {
        current_replicas: o.current_replicas,
        recommended_replicas: o.recommended_replicas,
        reason: o.recommendation_reason.clone(),
    });
    Event {
        event_id: n.event_id.to_string(),
        event_type: n.kind.event_type(),
        event_version: EVENT_VERSION,
        timestamp: rfc3339(n.at),
        source: EVENT_SOURCE,
        correlation_id: inc.id.to_string(),
        data: EventData {
            incident_id: inc.id.to_string(),
            state: state(n.kind),
            rule: inc.rule.to_string(),
            severity: inc.severity.as_str(),
            summary: summary(n),
            condition: ConditionData {
                kind: inc.condition.kind().as_str(),
                threshold: inc.condition.threshold_json(),
                description: inc.condition.describe(o),
            },
            source: o.group.source.to_string(),
            system: o.system.as_str(),
            group: o.group.group.to_string(),
            stream: o.group.scope.as_deref().map(str::to_string),
            topics: o.topics.iter().map(|t| t.to_string()).collect(),
            lag: LagData {
                messages: o.lag_messages,
                seconds: finite(o.lag_seconds),
                growth_per_second: finite(o.growth_per_second),
                eta_seconds: finite(o.eta_seconds),
            },
            status: o.status.as_str(),
            retention: RetentionData {
                lost_messages: o.lost_messages,
                seconds_until_loss: finite(o.seconds_until_loss),
            },
            recommendation,
            diagnosis: o.diagnosis.clone(),
            dead_letters: o.dead_letters.as_ref().map(|d| DeadLetterData {
                recent: d.recent,
                window_seconds: d.window_seconds,
                lower_bound: d.lower_bound,
                detail: d.detail.clone(),
            }),
            pending_since: rfc3339(inc.pending_since),
            started_at: rfc3339(inc.started_at),
            resolved_at: inc.resolved_at.map(rfc3339),
            resolution: n.resolution.map(|r| r.as_str()),
            dashboard_url: dashboard_link(n, ctx),
        },
    }
}

/// The event serialized: the exact bytes sent (and signed).
pub fn event_json(n: &Notification, ctx: &RenderContext) -> Vec<u8> {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_vec(&event(n, ctx)).unwrap_or_default()
}

pub(crate) fn state(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Fired | EventKind::Repeated => "firing",
        EventKind::Resolved => "resolved",
    }
}

/// Who is behind: "Kafka group `orders` on `prod`" or
/// "JetStream consumer `c` of stream `S` on `nats`".
pub fn consumer_phrase(n: &Notification) -> String {
    let o = &n.incident.observation;
    match (o.system, o.group.scope.as_deref()) {
        (System::Jetstream, Some(stream)) => format!(
            "JetStream consumer `{}` of stream `{stream}` on `{}`",
            o.group.group, o.group.source
        ),
        (System::Jetstream, None) => format!(
            "JetStream consumer `{}` on `{}`",
            o.group.group, o.group.source
        ),
        (System::Kafka, _) => format!("Kafka group `{}` on `{}`", o.group.group, o.group.source),
    }
}

/// One line for humans, the same in every receiver kind.
pub fn summary(n: &Notification) -> String {
    let inc = &n.incident;
    let who = consumer_phrase(n);
    match (n.kind, n.resolution) {
        (EventKind::Resolved, Some(super::Resolution::ConsumerVanished)) => format!(
            "RESOLVED {}: {who} vanished (no longer reported by its source)",
            inc.rule
        ),
        (EventKind::Resolved, Some(super::Resolution::RuleRemoved)) => format!(
            "RESOLVED {}: {who}: the rule was removed from lagwatch's config",
            inc.rule
        ),
        (EventKind::Resolved, _) => format!(
            "RESOLVED {}: {who}: {}",
            inc.rule,
            inc.condition.describe(&inc.observation)
        ),
        (EventKind::Fired | EventKind::Repeated, _) => format!(
            "{} {} ({}): {who}: {}{}",
            if n.kind == EventKind::Fired {
                "FIRING"
            } else {
                "STILL FIRING"
            },
            inc.rule,
            inc.severity,
            inc.condition.describe(&inc.observation),
            inc.observation
                .diagnosis
                .as_ref()
                .map_or(String::new(), |d| format!(" (why: {d})"))
        ),
    }
}

/// Placeholders `dashboard_url` may use; each is filled with its URL-encoded value.
pub const DASHBOARD_PLACEHOLDERS: &[&str] = &[
    "source", "system", "group", "stream", "topic", "rule", "incident",
];

/// `dashboard_url` with its placeholders filled in (URL-encoded).
pub fn dashboard_link(n: &Notification, ctx: &RenderContext) -> Option<String> {
    let t = ctx.dashboard_url.as_deref()?;
    let o = &n.incident.observation;
    let first_topic = o.topics.first().map(|t| t.to_string()).unwrap_or_default();
    let id = n.incident.id.to_string();
    let values: [(&str, &str); 7] = [
        ("source", o.group.source.as_str()),
        ("system", o.system.as_str()),
        ("group", &o.group.group),
        ("stream", o.group.scope.as_deref().unwrap_or("")),
        ("topic", &first_topic),
        ("rule", &n.incident.rule),
        ("incident", &id),
    ];
    let mut out = String::with_capacity(t.len() + 32);
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return Some(out);
        };
        let name = &after[..close];
        match values.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => percent_encode(&mut out, v),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(out: &mut String, v: &str) {
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

//! Dead letters in the JSON API: each group's summary (in the group JSON) and
//! `/api/v1/dead_letter_queues`, every dead-letter queue and advisory count.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::AppState;
use crate::model::Millis;
use crate::snapshot::{DeadLetterView, GroupView, SourceView};

/// A group's dead letters (see `snapshot::GroupDeadLetters`).
#[derive(Serialize)]
pub(super) struct GroupDeadLettersJson {
    /// Added within the window.
    recent: u64,
    window_seconds: f64,
    /// How much of the window lagwatch watched.
    covered_seconds: f64,
    per_second: Option<f64>,
    /// `exact` or `lower_bound` (at least `recent`).
    quality: &'static str,
    /// Not read at the last poll: the last known figures.
    stale: bool,
    detail: String,
}

/// Redeliveries per second and how sure that is.
#[derive(Serialize)]
pub(super) struct RedeliveredJson {
    per_second: f64,
    /// `exact`, or `upper_bound` (a filtered consumer: every delivery counted).
    quality: &'static str,
}

pub(super) fn group(g: &GroupView) -> Option<GroupDeadLettersJson> {
    g.dead_letters.as_ref().map(|d| GroupDeadLettersJson {
        recent: d.recent,
        window_seconds: d.window_seconds,
        covered_seconds: d.covered_seconds,
        per_second: d.per_second,
        quality: d.quality.as_str(),
        stale: d.stale,
        detail: d.detail.clone(),
    })
}

pub(super) fn redelivered(g: &GroupView) -> Option<RedeliveredJson> {
    g.redelivered.map(|(r, q)| RedeliveredJson {
        per_second: r,
        quality: q.as_str(),
    })
}

#[derive(Serialize)]
struct QueueJson {
    source: String,
    system: &'static str,
    reason: &'static str,
    topic: String,
    dead_letter_topic: Option<String>,
    group: Option<String>,
    /// Groups consuming `topic` (Kafka).
    consumers: Vec<String>,
    total: u64,
    recent: u64,
    covered_seconds: f64,
    per_second: Option<f64>,
    quality: &'static str,
    stored: Option<u64>,
    /// Groups consuming the dead-letter topic, with their lag on it.
    drained_by: Vec<DrainJson>,
    undrained: Option<u64>,
    last: Option<String>,
    last_added_at: Option<String>,
    read_at: String,
    stale: bool,
}

#[derive(Serialize)]
struct DrainJson {
    group: String,
    lag: u64,
}

fn queue(src: &SourceView, v: &DeadLetterView) -> QueueJson {
    QueueJson {
        source: src.id.to_string(),
        system: src.system.as_str(),
        reason: v.reason.as_str(),
        topic: v.topic.to_string(),
        dead_letter_topic: v.dead_letter_topic.as_deref().map(str::to_string),
        group: v.group.as_deref().map(str::to_string),
        consumers: v.consumers.iter().map(|c| c.to_string()).collect(),
        total: v.total,
        recent: v.recent,
        covered_seconds: v.covered_seconds,
        per_second: v.per_second,
        quality: v.quality.as_str(),
        stored: v.stored,
        drained_by: v
            .drained_by
            .iter()
            .map(|(g, l)| DrainJson {
                group: g.to_string(),
                lag: *l,
            })
            .collect(),
        undrained: v.undrained,
        last: v.last.clone(),
        last_added_at: v.last_added.map(Millis::rfc3339),
        read_at: v.read_at.rfc3339(),
        stale: src.last_poll.is_some_and(|p| v.read_at < p),
    }
}

/// `/api/v1/dead_letter_queues`: every source's dead-letter queues and
/// advisory counts, most recent dead letters first.
pub async fn queues(State(state): State<AppState>) -> Response {
    let snap = state.latest();
    let mut list: Vec<QueueJson> = snap
        .sources
        .iter()
        .flat_map(|s| s.dead_letters.iter().map(move |v| queue(s, v)))
        .collect();
    list.sort_by_key(|q| std::cmp::Reverse(q.recent));
    let advisories: Vec<serde_json::Value> = snap
        .sources
        .iter()
        .filter_map(|s| {
            s.advisories.map(|a| {
                serde_json::json!({
                    "source": s.id.as_str(),
                    "subscribed": a.subscribed,
                    "since": a.since.map(Millis::rfc3339),
                    "gaps": a.gaps,
                })
            })
        })
        .collect();
    Json(serde_json::json!({ "dead_letter_queues": list, "advisories": advisories }))
        .into_response()
}

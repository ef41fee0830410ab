//! The read-only JSON API (`/api/v1/...`), served from the latest snapshot.
//! Errors are JSON `{"error": "..."}` with a fitting status code.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::analysis::{Analysis, GroupAnalysis};
use crate::model::{Millis, Status};
use crate::snapshot::{GroupView, PartitionView, Snapshot, SourceView};

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

fn rfc3339(m: Millis) -> String {
    m.rfc3339()
}

#[derive(Serialize)]
struct SourceJson {
    name: String,
    system: &'static str,
    up: bool,
    polled: bool,
    last_poll: Option<String>,
    last_success: Option<String>,
    last_error: Option<ErrorJson>,
    groups: usize,
    partitions: usize,
}

#[derive(Serialize)]
struct ErrorJson {
    kind: &'static str,
    message: String,
}

fn source_json(s: &SourceView) -> SourceJson {
    SourceJson {
        name: s.id.to_string(),
        system: s.system.as_str(),
        up: s.up,
        polled: s.polled,
        last_poll: s.last_poll.map(rfc3339),
        last_success: s.last_success.map(rfc3339),
        last_error: s.last_error.as_ref().map(|e| ErrorJson {
            kind: e.kind.as_str(),
            message: e.message.clone(),
        }),
        groups: s.groups.len(),
        partitions: s.partitions.len(),
    }
}

pub async fn sources(State(state): State<AppState>) -> Response {
    let snap = state.latest();
    let list: Vec<SourceJson> = snap.sources.iter().map(source_json).collect();
    Json(serde_json::json!({ "sources": list })).into_response()
}

/// Time lag as JSON: the estimate (null when unknown), how it was obtained,
/// and the bounds the truth is certainly within.
#[derive(Serialize)]
struct TimeLagJson {
    seconds: Option<f64>,
    quality: &'static str,
    /// Certainly at least this old (also when unknown).
    at_least_seconds: f64,
    /// Certainly at most this old; null when nothing bounds it.
    at_most_seconds: Option<f64>,
}

impl TimeLagJson {
    fn of(t: &crate::analysis::TimeLag) -> TimeLagJson {
        TimeLagJson {
            seconds: t.seconds(),
            quality: t.quality().as_str(),
            at_least_seconds: t.at_least(),
            at_most_seconds: t.at_most(),
        }
    }
}

/// Retention risk as JSON: seconds, and the configured limit it comes from.
#[derive(Serialize)]
struct LossJson {
    /// null: never (keeping pace, or no limit deletes anything) or unknown.
    seconds: Option<f64>,
    /// `max_age`, `max_messages`, `max_bytes`; null with `seconds`.
    basis: Option<&'static str>,
    /// False when the topic's or stream's retention is not known.
    known: bool,
}

impl LossJson {
    fn of(p: crate::analysis::Projection) -> LossJson {
        LossJson {
            seconds: p.seconds(),
            basis: p.basis().map(|b| b.as_str()),
            known: !matches!(p, crate::analysis::Projection::Unknown),
        }
    }
}

#[derive(Serialize)]
struct GroupJson {
    source: String,
    /// When this group's figures were read: its source's last poll, or, when
    /// stale, when its oldest figure was (the answer's `at` is the newest
    /// poll of any source).
    polled_at: Option<String>,
    /// Some figures could not be read at the source's last poll (the source is
    /// down, or some partitions failed): they are the last known ones.
    stale: bool,
    /// Age of the oldest figure; 0 when fresh.
    stale_seconds: f64,
    /// Partitions whose figures are the last known ones.
    stale_partitions: usize,
    /// Some partitions stale, some fresh: sums mix them.
    partial: bool,
    system: &'static str,
    group: String,
    /// JetStream: the stream of the consumer.
    stream: Option<String>,
    topics: Vec<String>,
    state: Option<String>,
    members: Option<u32>,
    partitions: usize,
    lag: Option<u64>,
    max_lag: Option<u64>,
    lag_seconds: Option<TimeLagJson>,
    produce_rate: Option<f64>,
    consume_rate: Option<f64>,
    lag_growth: Option<f64>,
    eta_seconds: Option<f64>,
    status: Option<&'static str>,
    /// Why the status is ERR.
    err_reason: Option<&'static str>,
    lost_messages: Option<u64>,
    /// If the group stopped now, seconds until retention deletes an
    /// unconsumed message (headroom; information).
    seconds_to_loss: Option<f64>,
    /// Headroom with its basis.
    headroom: Option<LossJson>,
    /// At the current rates (what alerts).
    projected_loss: Option<LossJson>,
    committed_beyond_end_partitions: Option<usize>,
    /// Messages the committed offsets skipped since lagwatch started (suspected
    /// offset resets and purges).
    skipped_messages_total: u64,
    /// Lag in messages at recent polls, oldest first: [unix ms, lag].
    trend: Vec<(i64, u64)>,
    recommendation: Option<RecommendationJson>,
    /// Why the group is behind, most explaining first; empty when it is not.
    causes: Vec<CauseJson>,
    /// The causes in one sentence, for people; null when not behind.
    diagnosis: Option<String>,
    /// Dead letters linked to the group within `dead_letters.window`; null
    /// when not watched.
    dead_letters: Option<super::dead_letters::GroupDeadLettersJson>,
    /// JetStream: redeliveries per second; null until known, and for Kafka.
    redelivered: Option<super::dead_letters::RedeliveredJson>,
    /// Open notification incidents of this group.
    incidents: Vec<IncidentJson>,
}

#[derive(Serialize)]
struct CauseJson {
    cause: &'static str,
    /// Share of the lag this cause explains, 0 to 1.
    share: f64,
    evidence: String,
}

#[derive(Serialize)]
struct RecommendationJson {
    mode: &'static str,
    current: Option<u32>,
    recommended: Option<u32>,
    reason: &'static str,
    message: String,
    partitions: Option<u32>,
    per_replica_capacity: Option<f64>,
    capacity_estimated: bool,
}

#[derive(Serialize)]
struct IncidentJson {
    id: String,
    rule: String,
    severity: String,
    since: String,
}

fn group_json(src: &SourceView, g: &GroupView, snap: &Snapshot) -> GroupJson {
    let a: Option<&GroupAnalysis> = g.analysis.as_ref();
    let incidents = &snap.incidents;
    let staleness = src.staleness(g, snap.at);
    GroupJson {
        source: src.id.to_string(),
        polled_at: Some(rfc3339(g.read_at)),
        stale: staleness.stale,
        stale_seconds: staleness.seconds,
        stale_partitions: staleness.partitions,
        partial: staleness.partial(g.partitions.len()),
        system: src.system.as_str(),
        group: g.key.group.to_string(),
        stream: g.key.scope.as_ref().map(|s| s.to_string()),
        topics: g.topics.iter().map(|t| t.to_string()).collect(),
        state: g.info.as_ref().and_then(|i| i.state.clone()),
        members: g.info.as_ref().and_then(|i| i.members),
        partitions: g.partitions.len(),
        lag: a.map(|a| a.lag_sum),
        max_lag: a.map(|a| a.lag_max),
        lag_seconds: a.map(|a| TimeLagJson::of(&a.time_lag_max)),
        produce_rate: a.and_then(|a| a.produce_rate),
        consume_rate: a.and_then(|a| a.consume_rate),
        lag_growth: a.and_then(|a| a.lag_growth),
        eta_seconds: a.and_then(|a| a.eta_seconds),
        status: a.map(|a| a.status.as_str()),
        err_reason: a.and_then(|a| a.err).map(|e| e.as_str()),
        lost_messages: a.map(|a| a.lost_messages),
        seconds_to_loss: a.and_then(|a| a.headroom.seconds()),
        headroom: a.map(|a| LossJson::of(a.headroom)),
        projected_loss: a.map(|a| LossJson::of(a.projected_loss)),
        committed_beyond_end_partitions: a.map(|a| a.committed_beyond_end),
        skipped_messages_total: g.skipped_total,
        trend: g.trend.iter().map(|(t, l)| (t.0, *l)).collect(),
        recommendation: g.recommendation.as_ref().map(|r| RecommendationJson {
            mode: match r.mode {
                crate::recommend::Mode::Keda => "keda",
                crate::recommend::Mode::RateAware => "rate_aware",
            },
            current: r.current,
            recommended: r.recommended,
            reason: r.reason.as_str(),
            message: r.message.clone(),
            partitions: r.partitions,
            per_replica_capacity: r.per_replica_capacity,
            capacity_estimated: r.capacity_estimated,
        }),
        causes: g
            .causes
            .iter()
            .map(|f| CauseJson {
                cause: f.cause.as_str(),
                share: f.share,
                evidence: f.evidence.clone(),
            })
            .collect(),
        diagnosis: crate::analysis::diagnosis::sentence(&g.causes),
        dead_letters: super::dead_letters::group(g),
        redelivered: super::dead_letters::redelivered(g),
        incidents: incidents
            .iter()
            .filter(|i| i.group() == &g.key)
            .map(|i| IncidentJson {
                id: i.id.to_string(),
                rule: i.rule.to_string(),
                severity: i.severity.as_str().to_string(),
                since: rfc3339(i.started_at),
            })
            .collect(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsQuery {
    source: Option<String>,
    system: Option<SystemParam>,
    #[serde(default, deserialize_with = "status_param")]
    status: Option<Status>,
    /// Default `lag_seconds`.
    #[serde(default)]
    sort: SortKey,
    /// Default: worst first (`desc`), names A to Z.
    order: Option<Order>,
    limit: Option<usize>,
}

/// `?system=`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum SystemParam {
    Kafka,
    Jetstream,
}

impl SystemParam {
    fn as_str(self) -> &'static str {
        match self {
            SystemParam::Kafka => "kafka",
            SystemParam::Jetstream => "jetstream",
        }
    }
}

/// `?sort=`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SortKey {
    #[default]
    LagSeconds,
    Lag,
    Status,
    Name,
}

/// `?order=`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Order {
    Asc,
    Desc,
}

/// `?status=`, in any case (`stop`, `STOP`).
fn status_param<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Status>, D::Error> {
    let s = String::deserialize(d)?;
    Status::ALL
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(&s))
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown status `{s}`, expected one of OK, WARN, REWIND, STALL, STOP, ERR"
            ))
        })
}

/// `/api/v1/groups`: every group, worst first by default.
pub async fn groups(
    State(state): State<AppState>,
    query: Result<Query<GroupsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "bad query: {}; parameters are source, system, status, sort, order, limit",
                query_problem(&e)
            ),
        )
    })?;
    crate::fault::api_delay().await;
    let snap = state.latest();
    off_the_workers(move || groups_answer(&snap, &q)).await
}

/// Runs an answer's CPU work (filtering, sorting, JSON of thousands of groups)
/// on the blocking pool, so that the async workers stay free for /metrics and
/// the health checks; the API's concurrency limit bounds how many run at once.
async fn off_the_workers(
    work: impl FnOnce() -> Result<Response, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the API request failed: {e}"),
        ))
    })
}

/// The body of `/api/v1/groups`.
fn groups_answer(snap: &Snapshot, q: &GroupsQuery) -> Result<Response, ApiError> {
    let wanted = Selection {
        sort: q.sort,
        ascending: q.order.map_or(q.sort == SortKey::Name, |o| o == Order::Asc),
    };
    if let Some(source) = &q.source {
        if !snap.sources.iter().any(|s| s.id.as_str() == source) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no source named `{source}`"),
            ));
        }
    }
    let mut rows: Vec<(&SourceView, &GroupView)> = snap
        .sources
        .iter()
        .filter(|s| q.source.as_deref().is_none_or(|n| s.id.as_str() == n))
        .filter(|s| q.system.is_none_or(|n| s.system.as_str() == n.as_str()))
        .flat_map(|s| s.groups.iter().map(move |g| (s, g)))
        .filter(|(_, g)| {
            q.status
                .is_none_or(|st| g.analysis.is_some_and(|a| a.status == st))
        })
        .collect();
    wanted.sort(&mut rows);
    let list: Vec<GroupJson> = rows
        .into_iter()
        .take(q.limit.unwrap_or(usize::MAX))
        .map(|(s, g)| group_json(s, g, snap))
        .collect();
    Ok(Json(serde_json::json!({ "at": rfc3339(snap.at), "groups": list })).into_response())
}

/// What is wrong with a query string, without the extractor's preamble:
/// ``sort: unknown variant `size`, expected one of `lag_seconds`, ...``.
fn query_problem(e: &axum::extract::rejection::QueryRejection) -> String {
    let text = e.body_text();
    text.strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text)
        .to_string()
}

/// How `/api/v1/groups` orders its rows.
struct Selection {
    sort: SortKey,
    ascending: bool,
}

impl Selection {
    /// Worst first unless ascending was asked for.
    fn sort(&self, rows: &mut [(&SourceView, &GroupView)]) {
        let time_key = |g: &GroupView| {
            g.analysis.map_or(-1.0, |a| {
                a.time_lag_max
                    .seconds()
                    .unwrap_or(a.time_lag_max.at_least())
            })
        };
        rows.sort_by(|(sa, a), (sb, b)| {
            let ord = match self.sort {
                SortKey::Lag => a
                    .analysis
                    .map(|x| x.lag_sum)
                    .cmp(&b.analysis.map(|x| x.lag_sum)),
                SortKey::Status => a
                    .analysis
                    .map(|x| x.status)
                    .cmp(&b.analysis.map(|x| x.status)),
                SortKey::Name => {
                    (sa.id.as_str(), &a.key.group).cmp(&(sb.id.as_str(), &b.key.group))
                }
                SortKey::LagSeconds => time_key(a).total_cmp(&time_key(b)),
            };
            if self.ascending {
                ord
            } else {
                ord.reverse()
            }
        });
    }
}

#[derive(Serialize)]
struct PartitionJson {
    /// When these figures were read.
    read_at: String,
    /// Not read at the source's last poll: the last known values.
    stale: bool,
    topic: String,
    partition: Option<i32>,
    committed: Option<i64>,
    latest: i64,
    earliest: Option<i64>,
    lag: u64,
    lag_seconds: TimeLagJson,
    produce_rate: Option<f64>,
    consume_rate: Option<f64>,
    lag_growth: Option<f64>,
    eta_seconds: Option<f64>,
    status: &'static str,
    err_reason: Option<&'static str>,
    lost_messages: u64,
    seconds_to_loss: Option<f64>,
    headroom: LossJson,
    projected_loss: LossJson,
    jetstream: Option<serde_json::Value>,
}

fn partition_json(src: &SourceView, p: &PartitionView) -> PartitionJson {
    let a: &Analysis = &p.analysis;
    PartitionJson {
        read_at: rfc3339(p.read_at),
        stale: src.last_poll.is_some_and(|l| p.read_at < l),
        topic: p.sample.key.topic.to_string(),
        partition: p.sample.key.partition,
        committed: p.sample.committed,
        latest: p.sample.head,
        earliest: p.sample.low,
        lag: p.sample.lag,
        lag_seconds: TimeLagJson::of(&a.time_lag),
        produce_rate: a.produce_rate,
        consume_rate: a.consume_rate,
        lag_growth: a.lag_growth,
        eta_seconds: a.eta_seconds,
        status: a.status.as_str(),
        err_reason: a.err.map(|e| e.as_str()),
        lost_messages: a.retention.lost_messages,
        seconds_to_loss: a.retention.headroom.seconds(),
        headroom: LossJson::of(a.retention.headroom),
        projected_loss: LossJson::of(a.retention.projected),
        jetstream: p.sample.jetstream.as_ref().map(|j| {
            serde_json::json!({
                "num_pending": j.num_pending,
                "num_ack_pending": j.num_ack_pending,
                "num_redelivered": j.num_redelivered,
                "num_waiting": j.num_waiting,
                "delivered_stream_seq": j.delivered_stream_seq,
                "ack_floor_stream_seq": j.ack_floor_stream_seq,
                "max_ack_pending": j.max_ack_pending,
                "push": j.push,
                "deliver_group": j.deliver_group,
                "push_bound": j.push_bound,
                "filtered": j.filtered,
            })
        }),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupQuery {
    /// JetStream: the stream, when consumers of the same name exist in several.
    stream: Option<String>,
}

/// Finds one group of a source; JetStream names may need `?stream=`.
pub fn find_group<'a>(
    snap: &'a Snapshot,
    source: &str,
    group: &str,
    stream: Option<&str>,
) -> Result<(&'a SourceView, &'a GroupView), ApiError> {
    let src = snap
        .sources
        .iter()
        .find(|s| s.id.as_str() == source)
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("no source named `{source}`"))
        })?;
    let matches: Vec<&GroupView> = src
        .groups
        .iter()
        .filter(|g| &*g.key.group == group)
        .filter(|g| stream.is_none_or(|s| g.key.scope.as_deref() == Some(s)))
        .collect();
    match matches.as_slice() {
        [] => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            if src.polled {
                format!("source `{source}` has no group `{group}`")
            } else {
                format!("source `{source}` has not been polled yet")
            },
        )),
        [g] => Ok((src, g)),
        many => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "`{group}` exists in several streams ({}); add ?stream=NAME",
                many.iter()
                    .filter_map(|g| g.key.scope.as_deref())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `/api/v1/groups/{source}/{group}`: the group with its partitions.
pub async fn group(
    State(state): State<AppState>,
    Path((source, group)): Path<(String, String)>,
    query: Result<Query<GroupQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "bad query: {}; the only parameter is stream",
                query_problem(&e)
            ),
        )
    })?;
    group_answer(state.latest(), source, group, q.stream).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupByQuery {
    source: String,
    group: String,
    stream: Option<String>,
}

/// `/api/v1/group?source=S&group=G[&stream=N]`: the same as the path form, for
/// any name: browsers (the WHATWG URL rules) turn a path segment `..`, and even
/// `%2E%2E`, into a step up, so the status page asks with the query form.
pub async fn group_by_query(
    State(state): State<AppState>,
    query: Result<Query<GroupByQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "bad query: {}; parameters are source and group (required) and stream",
                query_problem(&e)
            ),
        )
    })?;
    group_answer(state.latest(), q.source, q.group, q.stream).await
}

/// One group with its partitions, as JSON.
async fn group_answer(
    snap: Arc<Snapshot>,
    source: String,
    group: String,
    stream: Option<String>,
) -> Result<Response, ApiError> {
    off_the_workers(move || {
        let (src, g) = find_group(&snap, &source, &group, stream.as_deref())?;
        let partitions: Vec<PartitionJson> = g
            .partitions
            .iter()
            .map(|i| partition_json(src, &src.partitions[*i]))
            .collect();
        Ok(Json(serde_json::json!({
            "at": rfc3339(snap.at),
            "group": group_json(src, g, &snap),
            "partitions": partitions,
        }))
        .into_response())
    })
    .await
}

/// `/api/v1/dead_letters`: notifications given up on, newest last (at most
/// [`crate::state::MAX_DEAD_LETTERS`]; kept in the state file when there is one).
pub async fn dead_letters(State(state): State<AppState>) -> Response {
    let letters: Vec<serde_json::Value> = state
        .state
        .dead_letters()
        .iter()
        .map(|d| {
            let n = &d.notification;
            serde_json::json!({
                "receiver": d.receiver,
                "event": n.kind.event_type(),
                "event_id": n.event_id.to_string(),
                "incident": n.incident.id.to_string(),
                "rule": &*n.incident.rule,
                "source": n.incident.group().source.as_str(),
                "group": &*n.incident.group().group,
                "reason": d.reason,
                "detail": d.detail,
                "attempts": d.attempts,
                "first_attempt": d.first_attempt.map(rfc3339),
                "given_up_at": rfc3339(d.given_up_at),
            })
        })
        .collect();
    Json(serde_json::json!({ "dead_letters": letters })).into_response()
}

/// Unknown paths under /api answer JSON, not the plain-text 404.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such API path; see /api/v1/sources, /api/v1/groups, /api/v1/groups/{source}/{group}, /api/v1/group?source=S&group=G, /api/v1/dead_letters, /api/v1/dead_letter_queues",
    )
}

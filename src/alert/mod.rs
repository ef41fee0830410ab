//! Threshold notifications: rules over what the engine observed, the incident
//! lifecycle (pending, firing, resolved), and reliable delivery to receivers.
//!
//! Two owners, one channel between them:
//! - [`AlertEvaluator`] (owned by the engine) is pure: observations and `now` in,
//!   [`Notification`]s out, no I/O and no clock.
//! - [`Notifier`] (its own task) owns the receivers: one bounded, ordered queue and
//!   one worker per receiver, retries with backoff, metrics.
//!
//! ```text
//! engine --evaluate()--> Vec<Notification> --mpsc--> Notifier --> queue per receiver --> HTTP / log
//! ```
//! See docs/notifications.md for the config, the lifecycle and the payloads.

mod incident;
mod notifier;
pub mod payload;
mod receivers;
mod rules;

use std::sync::Arc;
use std::time::Duration;

pub use incident::{AlertEvaluator, Incident};
pub use notifier::{channel, Notifier, SetupError, CHANNEL_CAPACITY};
pub use payload::DASHBOARD_PLACEHOLDERS;
pub use receivers::{
    sign, verify_signature, verify_signed_request, Receiver, ReceiverKind, PAGERDUTY_URL,
    SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
pub use rules::{Condition, ConditionKind, Rule, Severity};

use crate::analysis::TimeLag;
use crate::model::{GroupKey, Millis, Status, System};

/// The `alerts:` section, validated: receivers and rules ready to run, and the
/// delivery settings every receiver shares.
#[derive(Clone, Debug, Default)]
pub struct AlertSettings {
    /// Link put into every notification; placeholders ([`DASHBOARD_PLACEHOLDERS`])
    /// are replaced by their URL-encoded values.
    pub dashboard_url: Option<String>,
    pub receivers: Vec<Receiver>,
    pub rules: Vec<Rule>,
    /// First wait before retrying a failed delivery; doubles up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// On shutdown, time queued notifications get to be delivered.
    pub flush_timeout: Duration,
    /// A Fired or Repeated notification is given up on (dead-lettered) after
    /// this many failed attempts or this long since its first attempt.
    pub retry_max_attempts: u32,
    pub retry_max_age: Duration,
}

/// Failed attempts before a notification is dead-lettered.
pub const DEFAULT_RETRY_MAX_ATTEMPTS: u32 = 20;
/// Time since the first attempt before a notification is dead-lettered.
pub const DEFAULT_RETRY_MAX_AGE: Duration = Duration::from_secs(3600);
/// A Resolved is retried at least this long, whatever `retry_max_attempts`
/// and `retry_max_age` say: dropping it leaves the incident open at the
/// receiver for good.
pub const RESOLVED_MIN_RETRY_AGE: Duration = Duration::from_secs(24 * 3600);

/// What the engine knows about one consumer group (Kafka group / JetStream consumer) after a poll.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    /// Source, scope (JetStream stream), group.
    pub group: GroupKey,
    pub system: System,
    /// Topics (Kafka) or the stream (JetStream).
    pub topics: Vec<Arc<str>>,
    /// Sum over partitions.
    pub lag_messages: u64,
    /// Max time lag over partitions (the best estimate); None = unknown.
    pub lag_seconds: Option<f64>,
    /// The same with its quality and bounds: what `lag_seconds` conditions
    /// decide on (an estimate that could be either side decides nothing).
    pub time_lag: TimeLag,
    pub growth_per_second: Option<f64>,
    /// None: caught up (lag 0) or never at the current rates.
    pub eta_seconds: Option<f64>,
    pub status: Status,
    /// Retention: messages already lost unconsumed.
    pub lost_messages: u64,
    /// At the current rates, seconds until retention deletes an unconsumed
    /// message (projected loss); None: never, or not known.
    pub seconds_until_loss: Option<f64>,
    pub current_replicas: Option<u32>,
    pub recommended_replicas: Option<u32>,
    pub recommendation_reason: Option<String>,
    /// Why the group is behind, in one sentence (analysis::diagnosis); None
    /// when it is not. Absent from state files written before it existed.
    #[serde(default)]
    pub diagnosis: Option<String>,
    /// Dead letters linked to the group within `dead_letters.window`; None
    /// when not watched. Absent from state files written before it existed.
    #[serde(default)]
    pub dead_letters: Option<DeadLetterObservation>,
}

/// A group's dead letters as the `dead_letters` condition sees them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetterObservation {
    /// Added within the window.
    pub recent: u64,
    pub window_seconds: f64,
    /// At least `recent`: part of the window was not watched (lagwatch
    /// started inside it, advisories were missed) or was not read this poll.
    /// Such a count can open an incident, never resolve one.
    pub lower_bound: bool,
    /// Where they went: `12 orders.created to orders.created.dlq`.
    pub detail: String,
}

/// The three moments an incident is notified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EventKind {
    /// The condition held for `for`: a new incident.
    Fired,
    /// Still open after `repeat_interval` since the last notification.
    Repeated,
    /// The condition was false for `resolve_after`, or the consumer vanished.
    Resolved,
}

impl EventKind {
    /// The payload's `eventType`.
    pub fn event_type(self) -> &'static str {
        match self {
            EventKind::Fired => "LagAlertFired",
            EventKind::Repeated => "LagAlertRepeated",
            EventKind::Resolved => "LagAlertResolved",
        }
    }
}

/// Why an incident resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Resolution {
    /// The condition was false for the rule's `resolve_after`.
    ConditionCleared,
    /// The consumer is no longer reported by its (successfully polled) source.
    ConsumerVanished,
    /// The incident was open when lagwatch stopped, and its rule is no longer
    /// in the config it restarted with.
    RuleRemoved,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::ConditionCleared => "condition_cleared",
            Resolution::ConsumerVanished => "consumer_vanished",
            Resolution::RuleRemoved => "rule_removed",
        }
    }
}

/// One event for the receivers of one incident.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    /// Unique per event (the same for every receiver and every retry): for dedup.
    pub event_id: uuid::Uuid,
    pub kind: EventKind,
    /// The evaluation time that produced it.
    pub at: Millis,
    /// The incident as of `at` (for Resolved: with `resolved_at` set).
    pub incident: Arc<Incident>,
    /// Set on Resolved only.
    pub resolution: Option<Resolution>,
    /// Receiver names, from the rule.
    pub receivers: Arc<[Arc<str>]>,
}

/// RFC 3339 UTC with milliseconds (`2024-05-01T12:00:00.000Z`).
pub(crate) fn rfc3339(m: Millis) -> String {
    m.rfc3339()
}

#[cfg(test)]
mod tests;

/// Values for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A Fired notification of a lag incident of group `g` on source `prod`.
    pub fn notification() -> Notification {
        let observation = Observation {
            group: GroupKey {
                source: crate::model::SourceId::new("prod"),
                scope: None,
                group: Arc::from("g"),
            },
            system: System::Kafka,
            topics: vec![Arc::from("orders")],
            lag_messages: 500,
            lag_seconds: Some(12.0),
            time_lag: TimeLag::interpolated(12.0, 10.0, 14.0),
            growth_per_second: Some(1.0),
            eta_seconds: None,
            status: Status::Warn,
            lost_messages: 0,
            seconds_until_loss: None,
            current_replicas: None,
            recommended_replicas: None,
            recommendation_reason: None,
            diagnosis: None,
            dead_letters: None,
        };
        Notification {
            event_id: uuid::Uuid::new_v4(),
            kind: EventKind::Fired,
            at: Millis(1_800_000_000_000),
            incident: Arc::new(Incident {
                id: uuid::Uuid::new_v4(),
                rule: Arc::from("lag"),
                severity: Severity::Warning,
                condition: Condition::LagMessagesAbove(100.0),
                pending_since: Millis(1_800_000_000_000),
                started_at: Millis(1_800_000_000_000),
                resolved_at: None,
                last_notified: Millis(1_800_000_000_000),
                clearing_since: None,
                repeat_interval: Duration::from_secs(600),
                observation,
            }),
            resolution: None,
            receivers: Arc::from(vec![Arc::from("hook")]),
        }
    }
}

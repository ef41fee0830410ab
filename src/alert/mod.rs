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
    sign, verify_signature, Receiver, ReceiverKind, PAGERDUTY_URL, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
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
}

/// What the engine knows about one consumer group (Kafka group / JetStream consumer) after a poll.
#[derive(Clone, Debug, PartialEq)]
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
}

/// The three moments an incident is notified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// The condition was false for the rule's `resolve_after`.
    ConditionCleared,
    /// The consumer is no longer reported by its (successfully polled) source.
    ConsumerVanished,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::ConditionCleared => "condition_cleared",
            Resolution::ConsumerVanished => "consumer_vanished",
        }
    }
}

/// One event for the receivers of one incident.
#[derive(Clone, Debug, PartialEq)]
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

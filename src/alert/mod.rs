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

mod config;
mod incident;
mod notifier;
pub mod payload;
pub(crate) mod receivers;
mod rules;

use std::sync::Arc;

use tokio::sync::mpsc;

pub use config::{
    AlertConfig, AlertDefaults, AlertmanagerConfig, ConditionKind, LogReceiverConfig,
    OverrideConfig, PagerDutyConfig, ReceiverConfig, RuleConfig, Severity, SlackConfig, SystemName,
    ThresholdValue, WebhookConfig, PAGERDUTY_URL,
};
pub use incident::{AlertEvaluator, Incident};
pub use notifier::Notifier;
pub use receivers::{sign, verify_signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use rules::Condition;

use crate::config::Problem;
use crate::model::{GroupKey, Millis, Status, System};

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
    /// Max time lag over partitions; None = unknown.
    pub lag_seconds: Option<f64>,
    pub growth_per_second: Option<f64>,
    /// None: caught up (lag 0) or never at the current rates.
    pub eta_seconds: Option<f64>,
    pub status: Status,
    /// Retention: messages already lost unconsumed.
    pub lost_messages: u64,
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

/// Why alerting could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid alerts config: {}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    #[error("cannot register notification metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot build the HTTP client for receivers: {0}")]
    Client(String),
}

/// Notifications waiting between the engine and the notifier. The notifier moves
/// them to its per-receiver queues at once, so this stays nearly empty; the engine
/// uses `try_send` and never waits (a full channel is logged and counted by it).
pub const CHANNEL_CAPACITY: usize = 1024;

/// The channel the engine sends [`Notification`]s on.
pub fn channel() -> (mpsc::Sender<Notification>, mpsc::Receiver<Notification>) {
    mpsc::channel(CHANNEL_CAPACITY)
}

/// Builds both halves of alerting from one config.
#[derive(Debug)]
pub struct Alerting;

impl Alerting {
    /// Validates `config` (under the path `alerts`), compiles its rules, builds the
    /// receivers and registers the notification metrics on `registry`.
    #[allow(
        clippy::new_ret_no_self,
        reason = "one config builds both halves, which go to different owners (engine, notifier task)"
    )]
    pub fn new(
        config: &AlertConfig,
        registry: &prometheus::Registry,
    ) -> Result<(AlertEvaluator, Notifier), SetupError> {
        let problems = config.validate("alerts");
        if !problems.is_empty() {
            return Err(SetupError::Invalid(problems));
        }
        let evaluator = AlertEvaluator::new(config).map_err(|message| {
            SetupError::Invalid(vec![Problem {
                path: "alerts.rules".into(),
                line: None,
                message,
            }])
        })?;
        let notifier = Notifier::new(config, registry)?;
        Ok((evaluator, notifier))
    }
}

/// RFC 3339 UTC with milliseconds (`2024-05-01T12:00:00.000Z`).
pub(crate) fn rfc3339(m: Millis) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(m.0.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests;

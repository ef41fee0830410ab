//! Compiled rules: which consumers a rule selects, and whether its condition holds
//! for one [`Observation`]. Pure functions of their inputs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use serde::Deserialize;

use super::Observation;
use crate::model::{Status, System};

/// PagerDuty's four severities; also the `severity` label for Alertmanager.
#[derive(
    Clone, Copy, Debug, Default, serde::Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule looks at. Each needs a particular kind of `threshold`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    /// lag_messages > threshold (a number of messages).
    LagMessages,
    /// lag_seconds > threshold (a duration).
    LagSeconds,
    /// growth_per_second > threshold (messages per second).
    Growth,
    /// eta_seconds > threshold (a duration); never catching up counts as above.
    Eta,
    /// status is one of threshold (a list such as `[STALL, STOP]`).
    Status,
    /// lost_messages > threshold (a number; default 0).
    LostMessages,
    /// seconds_until_loss < threshold (a duration).
    LossWithin,
    /// recommended_replicas > current_replicas (no threshold).
    ReplicasShort,
    /// Dead letters within `dead_letters.window` > threshold (a number; default 0).
    DeadLetters,
}

impl ConditionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionKind::LagMessages => "lag_messages",
            ConditionKind::LagSeconds => "lag_seconds",
            ConditionKind::Growth => "growth",
            ConditionKind::Eta => "eta",
            ConditionKind::Status => "status",
            ConditionKind::LostMessages => "lost_messages",
            ConditionKind::LossWithin => "loss_within",
            ConditionKind::ReplicasShort => "replicas_short",
            ConditionKind::DeadLetters => "dead_letters",
        }
    }

    /// What `threshold` must look like, for error messages.
    pub fn expects(self) -> &'static str {
        match self {
            ConditionKind::LagMessages => "a number of messages, like `10000`",
            ConditionKind::Growth => "messages per second, like `50`",
            ConditionKind::LostMessages | ConditionKind::DeadLetters => {
                "a number of messages, like `0`"
            }
            ConditionKind::LagSeconds | ConditionKind::Eta | ConditionKind::LossWithin => {
                "a duration, like `5m`"
            }
            ConditionKind::Status => "a list of statuses, like `[STALL, STOP]`",
            ConditionKind::ReplicasShort => "no threshold",
        }
    }
}

/// A rule's condition with the threshold it compares against.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Condition {
    LagMessagesAbove(f64),
    LagSecondsAbove(f64),
    GrowthAbove(f64),
    EtaAbove(f64),
    StatusIn(Vec<Status>),
    LostMessagesAbove(f64),
    LossWithin(f64),
    ReplicasShort,
    DeadLettersAbove(f64),
}

impl Condition {
    pub fn kind(&self) -> ConditionKind {
        match self {
            Condition::LagMessagesAbove(_) => ConditionKind::LagMessages,
            Condition::LagSecondsAbove(_) => ConditionKind::LagSeconds,
            Condition::GrowthAbove(_) => ConditionKind::Growth,
            Condition::EtaAbove(_) => ConditionKind::Eta,
            Condition::StatusIn(_) => ConditionKind::Status,
            Condition::LostMessagesAbove(_) => ConditionKind::LostMessages,
            Condition::LossWithin(_) => ConditionKind::LossWithin,
            Condition::ReplicasShort => ConditionKind::ReplicasShort,
            Condition::DeadLettersAbove(_) => ConditionKind::DeadLetters,
        }
    }

    /// Some(true) when the condition holds, Some(false) when it does not, None
    /// when the observation lacks the value (unknown time lag, no replica count):
    /// unknown neither starts nor clears an incident.
    pub fn holds(&self, o: &Observation) -> Option<bool> {
        match self {
            Condition::LagMessagesAbove(t) => Some(o.lag_messages as f64 > *t),
            // Decided on what is certain: the lower bound above the threshold
            // fires, the upper bound below it clears, an estimate decides only
            // within a bounded error (an incident never resolves on a guess).
            Condition::LagSecondsAbove(t) => o.time_lag.above(*t),
            Condition::GrowthAbove(t) => o.growth_per_second.map(|g| g > *t),
            Condition::EtaAbove(t) => match o.eta_seconds {
                Some(eta) => Some(eta > *t),
                // Caught up: nothing to wait for.
                None if o.lag_messages == 0 => Some(false),
                // Lag that is not shrinking never catches up: above any threshold.
                None => o.growth_per_second.map(|g| g >= 0.0),
            },
            Condition::StatusIn(list) => Some(list.contains(&o.status)),
            Condition::LostMessagesAbove(t) => Some(o.lost_messages as f64 > *t),
            Condition::LossWithin(t) => Some(o.seconds_until_loss.is_some_and(|s| s < *t)),
            Condition::ReplicasShort => match (o.recommended_replicas, o.current_replicas) {
                (Some(r), Some(c)) => Some(r > c),
                _ => None,
            },
            // A lower bound above the threshold is certain; below it, the
            // events not seen could still be there: unknown, not cleared.
            Condition::DeadLettersAbove(t) => o.dead_letters.as_ref().and_then(|d| {
                let above = d.recent as f64 > *t;
                (above || !d.lower_bound).then_some(above)
            }),
        }
    }

    /// The threshold as JSON (number of messages, seconds, or status names).
    pub fn threshold_json(&self) -> serde_json::Value {
        match self {
            Condition::LagMessagesAbove(t)
            | Condition::LagSecondsAbove(t)
            | Condition::GrowthAbove(t)
            | Condition::EtaAbove(t)
            | Condition::LostMessagesAbove(t)
            | Condition::DeadLettersAbove(t)
            | Condition::LossWithin(t) => serde_json::json!(t),
            Condition::StatusIn(list) => {
                serde_json::json!(list.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            }
            Condition::ReplicasShort => serde_json::Value::Null,
        }
    }

    /// One readable line: the observed value against the threshold.
    pub fn describe(&self, o: &Observation) -> String {
        match self {
            Condition::LagMessagesAbove(t) => format!(
                "lag {} messages (threshold {})",
                o.lag_messages,
                fmt_num(*t)
            ),
            Condition::LagSecondsAbove(t) => format!(
                "lag {} behind (threshold {})",
                o.lag_seconds.map_or("unknown".into(), fmt_secs),
                fmt_secs(*t)
            ),
            Condition::GrowthAbove(t) => format!(
                "lag growing {} messages/s (threshold {})",
                o.growth_per_second
                    .map_or("unknown".into(), |g| format!("{g:.1}")),
                fmt_num(*t)
            ),
            Condition::EtaAbove(t) => format!(
                "catch-up ETA {} (threshold {})",
                match o.eta_seconds {
                    Some(e) => fmt_secs(e),
                    None if o.lag_messages == 0 => "caught up".into(),
                    None => "never at the current rates".into(),
                },
                fmt_secs(*t)
            ),
            Condition::StatusIn(list) => format!(
                "status {} (alerting on {})",
                o.status,
                list.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Condition::LostMessagesAbove(t) => format!(
                "{} messages lost to retention before being consumed (threshold {})",
                o.lost_messages,
                fmt_num(*t)
            ),
            Condition::LossWithin(t) => format!(
                "retention deletes unconsumed messages in {} (threshold {})",
                o.seconds_until_loss.map_or("no risk".into(), fmt_secs),
                fmt_secs(*t)
            ),
            Condition::ReplicasShort => format!(
                "{} replicas running, {} recommended",
                o.current_replicas
                    .map_or("unknown".into(), |c| c.to_string()),
                o.recommended_replicas
                    .map_or("unknown".into(), |c| c.to_string())
            ),
            Condition::DeadLettersAbove(t) => match &o.dead_letters {
                Some(d) => format!(
                    "{}{} dead letters in the last {} (threshold {}){}",
                    if d.lower_bound { "at least " } else { "" },
                    d.recent,
                    fmt_secs(d.window_seconds),
                    fmt_num(*t),
                    if d.detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", d.detail)
                    }
                ),
                None => format!("dead letters not watched (threshold {})", fmt_num(*t)),
            },
        }
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n:.1}")
    }
}

/// Whole seconds in humantime form (`1h 5m 3s`); sub-second values as `0.4s`.
pub(crate) fn fmt_secs(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return format!("{s}s");
    }
    if s < 1.0 {
        return format!("{s:.1}s");
    }
    humantime::format_duration(Duration::from_secs(s.round() as u64)).to_string()
}

/// A rule ready to evaluate, built by the config's validation pass.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: Arc<str>,
    pub severity: Severity,
    /// Regexes (unanchored, as the source filters) on the source name, the group
    /// (Kafka group / JetStream consumer) and any topic (Kafka) or stream (JetStream).
    pub source: Option<Regex>,
    pub system: Option<System>,
    pub group: Option<Regex>,
    pub topic: Option<Regex>,
    pub condition: Condition,
    /// Per-group conditions; the first whose regex matches the group wins.
    pub overrides: Vec<(Regex, Condition)>,
    pub for_: Duration,
    pub resolve_after: Duration,
    pub repeat_interval: Duration,
    pub receivers: Arc<[Arc<str>]>,
}

impl Rule {
    /// Whether the rule watches this consumer at all.
    pub fn selects(&self, o: &Observation) -> bool {
        self.system.is_none_or(|s| s == o.system)
            && self
                .source
                .as_ref()
                .is_none_or(|r| r.is_match(o.group.source.as_str()))
            && self
                .group
                .as_ref()
                .is_none_or(|r| r.is_match(&o.group.group))
            && self.topic.as_ref().is_none_or(|r| {
                o.topics.iter().any(|t| r.is_match(t))
                    || o.group.scope.as_deref().is_some_and(|s| r.is_match(s))
            })
    }

    /// The condition for this group: the first matching override, else the rule's.
    pub fn condition_for(&self, group: &str) -> &Condition {
        self.overrides
            .iter()
            .find(|(re, _)| re.is_match(group))
            .map_or(&self.condition, |(_, c)| c)
    }
}

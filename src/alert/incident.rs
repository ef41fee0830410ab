//! The incident lifecycle, as a pure state machine per (rule, consumer group):
//! inactive → pending (condition holds, `for` not yet over) → open (fired; repeats
//! every `repeat_interval`) → resolved (condition false for `resolve_after`, or
//! the consumer vanished). Observations and `now` in, notifications out.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::rules::{Condition, Rule, Severity};
use super::{EventKind, Notification, Observation, Resolution};
use crate::model::{GroupKey, Millis, SourceId};

/// One open (or, inside a Resolved notification, just resolved) incident.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    /// Stable from fire to resolve: the payloads' correlationId, PagerDuty's dedup_key.
    pub id: Uuid,
    pub rule: Arc<str>,
    pub severity: Severity,
    /// The condition in force for this group (a matching override applied).
    pub condition: Condition,
    /// When the condition was first seen holding.
    pub pending_since: Millis,
    /// When it fired.
    pub started_at: Millis,
    pub resolved_at: Option<Millis>,
    /// The last Fired or Repeated notification.
    pub last_notified: Millis,
    /// Since when the condition has been false (None while it holds).
    pub clearing_since: Option<Millis>,
    /// The rule's repeat interval (receivers such as Alertmanager derive expiry from it).
    pub repeat_interval: Duration,
    /// The latest observation of the consumer.
    pub observation: Observation,
}

impl Incident {
    pub fn group(&self) -> &GroupKey {
        &self.observation.group
    }
}

#[derive(Clone, Debug)]
enum Track {
    /// The condition holds since `since`; not yet for `for`.
    Pending {
        since: Millis,
    },
    Open(Box<Incident>),
}

/// Evaluates every rule against each poll's observations. Owned by the engine.
#[derive(Debug)]
pub struct AlertEvaluator {
    rules: Vec<Rule>,
    tracks: BTreeMap<(usize, GroupKey), Track>,
}

fn elapsed(from: Millis, to: Millis) -> Duration {
    Duration::from_millis(u64::try_from(to.0.saturating_sub(from.0)).unwrap_or(0))
}

impl AlertEvaluator {
    /// An evaluator of `rules` (from the validated `alerts:` section).
    pub fn new(rules: Vec<Rule>) -> AlertEvaluator {
        AlertEvaluator {
            rules,
            tracks: BTreeMap::new(),
        }
    }

    /// Evaluates one round. `observations` is everything known now; every source
    /// that appears in it counts as polled (see [`Self::evaluate_polled`]).
    pub fn evaluate(&mut self, observations: &[Observation], now: Millis) -> Vec<Notification> {
        let polled: Vec<SourceId> = observations
            .iter()
            .map(|o| o.group.source.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        self.evaluate_polled(observations, &[], &polled, now)
    }

    /// Evaluates one round. `polled` lists the sources whose poll succeeded: a group
    /// of such a source missing from `observations` and `held` has vanished and
    /// its incidents resolve. `held` are groups that exist but could not be read
    /// this round (stale): their incidents and pending timers are left as they
    /// are, as are those of a source not in `polled` (down): an outage of
    /// lagwatch's view is not a recovery, and not a new incident either.
    pub fn evaluate_polled(
        &mut self,
        observations: &[Observation],
        held: &[GroupKey],
        polled: &[SourceId],
        now: Millis,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut seen: HashSet<&GroupKey> = held.iter().collect();
        for o in observations {
            seen.insert(&o.group);
            for (ri, rule) in self.rules.iter().enumerate() {
                let key = (ri, o.group.clone());
                let selected = rule.selects(o);
                if !selected && !self.tracks.contains_key(&key) {
                    continue;
                }
                let condition = rule.condition_for(&o.group.group);
                // A consumer the rule no longer selects (topics changed) counts as clear.
                let holds = if selected {
                    condition.holds(o)
                } else {
                    Some(false)
                };
                step(
                    &mut self.tracks,
                    key,
                    rule,
                    condition,
                    holds,
                    o,
                    now,
                    &mut out,
                );
            }
        }
        let vanished: Vec<(usize, GroupKey)> = self
            .tracks
            .keys()
            .filter(|(_, g)| polled.contains(&g.source) && !seen.contains(g))
            .cloned()
            .collect();
        for key in vanished {
            if let Some(Track::Open(mut inc)) = self.tracks.remove(&key) {
                inc.resolved_at = Some(now);
                out.push(notification(
                    EventKind::Resolved,
                    now,
                    *inc,
                    Some(Resolution::ConsumerVanished),
                    &self.rules[key.0],
                ));
            }
        }
        out
    }

    /// Takes back the incidents open when lagwatch last stopped (from the state
    /// file), so that they keep their ids and resolve when their condition is
    /// seen false. An incident whose rule is gone from the config resolves now
    /// (`rule_removed`) to the receivers it had that still exist.
    pub fn restore(
        &mut self,
        open: Vec<crate::state::OpenIncident>,
        receivers: &[Arc<str>],
        now: Millis,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        for o in open {
            let key = o.incident.group().clone();
            match self.rules.iter().position(|r| r.name == o.incident.rule) {
                Some(ri) => {
                    tracing::info!(
                        incident = %o.incident.id,
                        rule = %o.incident.rule,
                        group = %crate::telemetry::Escaped(&key.group),
                        "incident resumed from the state file"
                    );
                    self.tracks
                        .insert((ri, key), Track::Open(Box::new(o.incident)));
                }
                None => {
                    let mut inc = o.incident;
                    inc.resolved_at = Some(now);
                    let to: Vec<Arc<str>> = o
                        .receivers
                        .iter()
                        .filter_map(|r| receivers.iter().find(|k| &***k == r.as_str()).cloned())
                        .collect();
                    tracing::warn!(
                        incident = %inc.id,
                        rule = %inc.rule,
                        "the rule of an incident open before the restart is gone from the config: resolving it"
                    );
                    out.push(Notification {
                        event_id: Uuid::new_v4(),
                        kind: EventKind::Resolved,
                        at: now,
                        incident: Arc::new(inc),
                        resolution: Some(Resolution::RuleRemoved),
                        receivers: Arc::from(to),
                    });
                }
            }
        }
        out
    }

    /// The open incidents with their rule's receivers (for the state file).
    pub fn open_for_state(&self) -> Vec<crate::state::OpenIncident> {
        self.tracks
            .iter()
            .filter_map(|((ri, _), t)| match t {
                Track::Open(i) => Some(crate::state::OpenIncident {
                    incident: (**i).clone(),
                    receivers: self.rules[*ri]
                        .receivers
                        .iter()
                        .map(|r| r.to_string())
                        .collect(),
                }),
                Track::Pending { .. } => None,
            })
            .collect()
    }

    /// The open incidents, ordered by rule then group (for the API and status page).
    pub fn open_incidents(&self) -> Vec<Incident> {
        self.tracks
            .values()
            .filter_map(|t| match t {
                Track::Open(i) => Some((**i).clone()),
                Track::Pending { .. } => None,
            })
            .collect()
    }
}

fn notification(
    kind: EventKind,
    at: Millis,
    incident: Incident,
    resolution: Option<Resolution>,
    rule: &Rule,
) -> Notification {
    Notification {
        event_id: Uuid::new_v4(),
        kind,
        at,
        incident: Arc::new(incident),
        resolution,
        receivers: rule.receivers.clone(),
    }
}

/// Advances one (rule, group) track by one observation.
#[allow(
    clippy::too_many_arguments,
    reason = "one step of the state machine needs the track, the rule and the observation; a struct would only rename them"
)]
fn step(
    tracks: &mut BTreeMap<(usize, GroupKey), Track>,
    key: (usize, GroupKey),
    rule: &Rule,
    condition: &Condition,
    holds: Option<bool>,
    o: &Observation,
    now: Millis,
    out: &mut Vec<Notification>,
) {
    let open = |pending_since: Millis| Incident {
        id: Uuid::new_v4(),
        rule: rule.name.clone(),
        severity: rule.severity,
        condition: condition.clone(),
        pending_since,
        started_at: now,
        resolved_at: None,
        last_notified: now,
        clearing_since: None,
        repeat_interval: rule.repeat_interval,
        observation: o.clone(),
    };
    match tracks.get_mut(&key) {
        None => {
            if holds == Some(true) {
                if rule.for_.is_zero() {
                    let inc = open(now);
                    out.push(notification(EventKind::Fired, now, inc.clone(), None, rule));
                    tracks.insert(key, Track::Open(Box::new(inc)));
                } else {
                    tracks.insert(key, Track::Pending { since: now });
                }
            }
        }
        Some(Track::Pending { since }) => match holds {
            Some(true) if elapsed(*since, now) >= rule.for_ => {
                let inc = open(*since);
                out.push(notification(EventKind::Fired, now, inc.clone(), None, rule));
                tracks.insert(key, Track::Open(Box::new(inc)));
            }
            Some(true) | None => {}
            Some(false) => {
                tracks.remove(&key);
            }
        },
        Some(Track::Open(inc)) => {
            inc.observation = o.clone();
            inc.condition = condition.clone();
            match holds {
                Some(true) => inc.clearing_since = None,
                Some(false) => {
                    let since = *inc.clearing_since.get_or_insert(now);
                    if elapsed(since, now) >= rule.resolve_after {
                        let mut inc = (**inc).clone();
                        inc.resolved_at = Some(now);
                        tracks.remove(&key);
                        out.push(notification(
                            EventKind::Resolved,
                            now,
                            inc,
                            Some(Resolution::ConditionCleared),
                            rule,
                        ));
                        return;
                    }
                }
                None => {}
            }
            // "Still firing" only while it is: not while clearing, not on unknown values.
            if holds == Some(true) && elapsed(inc.last_notified, now) >= rule.repeat_interval {
                inc.last_notified = now;
                out.push(notification(
                    EventKind::Repeated,
                    now,
                    (**inc).clone(),
                    None,
                    rule,
                ));
            }
        }
    }
}

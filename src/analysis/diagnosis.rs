//! Why a group is behind: a cause from a small fixed set, each with its
//! evidence in numbers, ordered by how much of the lag it explains. Pure: the
//! group's figures at this poll and a little memory per group
//! ([`DiagnosisState`]: a long produce-rate baseline, membership changes, when
//! a stop began) in, findings out. `unknown` when nothing fits: never a guess.
//!
//! The causes (docs/analysis.md, "Why a group is behind"):
//! - `stopped` / `stalled`: the status says so; evidence: for how long.
//! - `ack_limit` (JetStream): `num_ack_pending` at `max_ack_pending`: the
//!   server gives the consumer no more work until it acks.
//! - `hot_partition`: at most a quarter of the partitions hold at least
//!   `hot_share` of the lag: more consumers will not help.
//! - `producer_spike`: produce rate at least `spike_factor` times its own
//!   baseline (an average over `baseline_window`, known once the group has
//!   been watched for `baseline_min`).
//! - `consumer_slowdown`: consume rate per member at most `slowdown_factor`
//!   of the learned per-replica capacity, with produce within its baseline.
//! - `rebalancing`: the member count or the group state changed at least
//!   `rebalance_changes` times within `baseline_min`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{Millis, Status};

/// Thresholds (analysis.diagnosis in the config).
#[derive(Clone, Debug, PartialEq)]
pub struct DiagnosisSettings {
    pub spike_factor: f64,
    pub slowdown_factor: f64,
    pub hot_share: f64,
    pub rebalance_changes: usize,
    /// Time constant of the produce-rate baseline.
    pub baseline_window: Duration,
    /// Watched at least this long before a baseline is trusted; also the
    /// window in which membership changes are counted.
    pub baseline_min: Duration,
}

impl Default for DiagnosisSettings {
    fn default() -> Self {
        DiagnosisSettings {
            spike_factor: 2.0,
            slowdown_factor: 0.5,
            hot_share: 0.8,
            rebalance_changes: 3,
            baseline_window: Duration::from_secs(3600),
            baseline_min: Duration::from_secs(600),
        }
    }
}

/// The fixed set of causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    Stopped,
    Stalled,
    AckLimit,
    HotPartition,
    ProducerSpike,
    ConsumerSlowdown,
    Rebalancing,
    Unknown,
}

impl Cause {
    pub const ALL: [Cause; 8] = [
        Cause::Stopped,
        Cause::Stalled,
        Cause::AckLimit,
        Cause::HotPartition,
        Cause::ProducerSpike,
        Cause::ConsumerSlowdown,
        Cause::Rebalancing,
        Cause::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Stopped => "stopped",
            Cause::Stalled => "stalled",
            Cause::AckLimit => "ack_limit",
            Cause::HotPartition => "hot_partition",
            Cause::ProducerSpike => "producer_spike",
            Cause::ConsumerSlowdown => "consumer_slowdown",
            Cause::Rebalancing => "rebalancing",
            Cause::Unknown => "unknown",
        }
    }
}

/// One cause with its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub cause: Cause,
    /// How much of the lag this cause explains, 0 to 1 (the order).
    pub share: f64,
    /// The numbers, in words: "produce 2,400/s, 3.1x its 1h baseline of 780/s".
    pub evidence: String,
}

/// A group's figures at this poll.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub status: Option<Status>,
    pub lag: u64,
    pub lag_growth: Option<f64>,
    pub produce_rate: Option<f64>,
    pub consume_rate: Option<f64>,
    pub members: Option<u32>,
    pub state: Option<String>,
    /// Per partition: (topic, partition, lag).
    pub partition_lags: Vec<(Arc<str>, Option<i32>, u64)>,
    /// JetStream: (num_ack_pending, max_ack_pending).
    pub ack_pending: Option<(u64, i64)>,
    /// Learned messages per second one consumer handles.
    pub capacity_per_member: Option<f64>,
    /// A group is STOP after this long without progress, STALL after its
    /// commits stood still for this long (the analysis window): the least a
    /// stuck group has been stuck when its status turns.
    pub stop_after: Duration,
    pub window: Duration,
}

/// What diagnosis remembers of a group between polls.
#[derive(Clone, Debug, Default)]
pub struct DiagnosisState {
    /// Time-weighted average produce rate (msgs/s) and when it was updated.
    baseline: Option<(f64, Millis)>,
    /// When the group was first seen with a produce rate.
    watched_since: Option<Millis>,
    /// Poll times at which members or state changed.
    changes: VecDeque<Millis>,
    last_membership: Option<(Option<u32>, Option<String>)>,
    /// Since when the status has been STOP or STALL.
    stuck_since: Option<(Status, Millis)>,
}

impl DiagnosisState {
    /// Folds this poll in: the baseline moves toward the produce rate with
    /// time constant `baseline_window`; a membership or state change is noted.
    fn observe(&mut self, i: &Inputs, at: Millis, s: &DiagnosisSettings) {
        if let Some(rate) = i.produce_rate.filter(|r| r.is_finite() && *r >= 0.0) {
            self.watched_since.get_or_insert(at);
            self.baseline = Some(match self.baseline {
                None => (rate, at),
                Some((b, t)) => {
                    let dt = ((at.0 - t.0).max(0) as f64) / 1000.0;
                    let w = 1.0 - (-dt / s.baseline_window.as_secs_f64().max(1.0)).exp();
                    (b + (rate - b) * w, at)
                }
            });
        }
        let membership = (i.members, i.state.clone());
        if let Some(last) = &self.last_membership {
            if *last != membership {
                self.changes.push_back(at);
            }
        }
        self.last_membership = Some(membership);
        let horizon = at.0 - i64::try_from(s.baseline_min.as_millis()).unwrap_or(i64::MAX);
        while self.changes.front().is_some_and(|t| t.0 < horizon) {
            self.changes.pop_front();
        }
        self.stuck_since = match (i.status, self.stuck_since) {
            (Some(st @ (Status::Stop | Status::Stall)), Some((prev, since))) if prev == st => {
                Some((st, since))
            }
            (Some(st @ (Status::Stop | Status::Stall)), _) => Some((st, at)),
            _ => None,
        };
    }

    /// The baseline, once the group has been watched long enough.
    fn trusted_baseline(&self, at: Millis, s: &DiagnosisSettings) -> Option<f64> {
        let since = self.watched_since?;
        let long_enough = (at.0 - since.0) as f64 / 1000.0 >= s.baseline_min.as_secs_f64();
        self.baseline.map(|(b, _)| b).filter(|_| long_enough)
    }
}

/// Whether a group is behind enough to ask why: a status other than OK, or
/// lag that is growing.
fn lagging(i: &Inputs) -> bool {
    i.lag > 0
        && (i.status.is_some_and(|s| s != Status::Ok) || i.lag_growth.is_some_and(|g| g > 0.0))
}

/// Updates `state` with this poll and says why the group is behind (empty
/// when it is not), most explaining cause first.
pub fn diagnose(
    i: &Inputs,
    state: &mut DiagnosisState,
    at: Millis,
    s: &DiagnosisSettings,
) -> Vec<Finding> {
    // The baseline is read before this poll moves it.
    let baseline = state.trusted_baseline(at, s);
    state.observe(i, at, s);
    if !lagging(i) {
        return Vec::new();
    }
    let mut out: Vec<Finding> = [
        // The ack limit first: it explains why a consumer is stuck.
        ack_limit(i),
        stuck(i, state, at),
        hot_partition(i, s),
        producer_spike(i, baseline, s),
        consumer_slowdown(i, baseline, s),
        rebalancing(state, s),
    ]
    .into_iter()
    .flatten()
    .collect();
    if out.is_empty() {
        out.push(Finding {
            cause: Cause::Unknown,
            share: 0.0,
            evidence: "behind, but no cause fits the evidence".into(),
        });
    }
    out.sort_by(|a, b| b.share.total_cmp(&a.share));
    out
}

/// JetStream: as many messages awaiting ack as the consumer may have.
fn ack_limit(i: &Inputs) -> Option<Finding> {
    let (pending, max) = i.ack_pending?;
    (max > 0 && pending >= max.unsigned_abs()).then(|| Finding {
        cause: Cause::AckLimit,
        share: 1.0,
        evidence: format!(
            "{pending} messages awaiting ack, the consumer's max_ack_pending of {max}: \
             the server sends no more until they are acked"
        ),
    })
}

/// STOP or STALL, and since when.
fn stuck(i: &Inputs, state: &DiagnosisState, at: Millis) -> Option<Finding> {
    let (st, since) = state.stuck_since?;
    let in_status = ((at.0 - since.0).max(0) as f64) / 1000.0;
    let (cause, word, floor) = if st == Status::Stop {
        (Cause::Stopped, "no progress", i.stop_after)
    } else {
        (Cause::Stalled, "commits standing still", i.window)
    };
    let secs = in_status + floor.as_secs_f64();
    Some(Finding {
        cause,
        share: 1.0,
        evidence: format!(
            "{word} for at least {}, lag {}",
            dur(secs),
            count(i.lag as f64)
        ),
    })
}

/// Produce rate at least `spike_factor` times its trusted baseline.
fn producer_spike(i: &Inputs, baseline: Option<f64>, s: &DiagnosisSettings) -> Option<Finding> {
    let (rate, b) = (i.produce_rate?, baseline?);
    (b > 0.0 && rate >= s.spike_factor * b).then(|| Finding {
        cause: Cause::ProducerSpike,
        share: ((rate - b) / rate).clamp(0.0, 1.0),
        evidence: format!(
            "produce {}/s, {:.1}x its {} baseline of {}/s",
            count(rate),
            rate / b,
            dur(s.baseline_window.as_secs_f64()),
            count(b)
        ),
    })
}

/// Each member well below its learned capacity while produce is steady.
fn consumer_slowdown(i: &Inputs, baseline: Option<f64>, s: &DiagnosisSettings) -> Option<Finding> {
    let (consume, m, cap) = (i.consume_rate?, i.members?, i.capacity_per_member?);
    let (rate, b) = (i.produce_rate?, baseline?);
    let produce_steady = b > 0.0 && rate <= 1.5 * b;
    let per = consume / f64::from(m.max(1));
    (m > 0 && cap > 0.0 && produce_steady && per <= s.slowdown_factor * cap).then(|| Finding {
        cause: Cause::ConsumerSlowdown,
        share: ((cap - per) / cap).clamp(0.0, 1.0),
        evidence: format!(
            "consume {}/s per member ({m} members), {:.1}x their learned capacity of {}/s, with produce steady",
            count(per),
            per / cap,
            count(cap)
        ),
    })
}

/// Membership or state changed often within `baseline_min`.
fn rebalancing(state: &DiagnosisState, s: &DiagnosisSettings) -> Option<Finding> {
    (state.changes.len() >= s.rebalance_changes).then(|| Finding {
        cause: Cause::Rebalancing,
        share: 0.5,
        evidence: format!(
            "membership or state changed {} times in {}",
            state.changes.len(),
            dur(s.baseline_min.as_secs_f64())
        ),
    })
}

/// The smallest set of partitions holding `hot_share` of the lag, when it is
/// at most a quarter of them (and fewer than all).
fn hot_partition(i: &Inputs, s: &DiagnosisSettings) -> Option<Finding> {
    let n = i.partition_lags.len();
    let total: u64 = i.partition_lags.iter().map(|p| p.2).sum();
    if n < 2 || total == 0 {
        return None;
    }
    let mut lags: Vec<&(Arc<str>, Option<i32>, u64)> = i.partition_lags.iter().collect();
    lags.sort_by_key(|p| std::cmp::Reverse(p.2));
    let allowed = (n / 4).max(1);
    let mut held = 0u64;
    let mut hot = Vec::new();
    for p in lags {
        held += p.2;
        hot.push(p);
        if held as f64 >= s.hot_share * total as f64 {
            break;
        }
        if hot.len() >= allowed {
            return None;
        }
    }
    let one_topic = i
        .partition_lags
        .iter()
        .all(|p| p.0 == i.partition_lags[0].0);
    let names: Vec<String> = hot
        .iter()
        .map(|(topic, partition, _)| {
            let number = partition.map_or("-".to_string(), |p| p.to_string());
            if one_topic {
                number
            } else {
                format!("{topic}/{number}")
            }
        })
        .collect();
    let share = held as f64 / total as f64;
    Some(Finding {
        cause: Cause::HotPartition,
        share,
        evidence: format!(
            "{} {} of {n} {} {:.0}% of the lag: more consumers will not help",
            if hot.len() == 1 {
                "partition"
            } else {
                "partitions"
            },
            names.join(", "),
            if hot.len() == 1 { "holds" } else { "hold" },
            share * 100.0
        ),
    })
}

/// One sentence for people: the findings' evidence, joined.
pub fn sentence(findings: &[Finding]) -> Option<String> {
    if findings.is_empty() {
        return None;
    }
    Some(
        findings
            .iter()
            .map(|f| format!("{}: {}", f.cause.as_str(), f.evidence))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// 2,400 / 12.5 / 0.25.
fn count(v: f64) -> String {
    if v >= 100.0 {
        let n = v.round() as u64;
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn dur(secs: f64) -> String {
    humantime::format_duration(Duration::from_secs(secs.max(0.0).round() as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DiagnosisSettings {
        DiagnosisSettings {
            baseline_window: Duration::from_secs(600),
            baseline_min: Duration::from_secs(60),
            ..DiagnosisSettings::default()
        }
    }

    fn base() -> Inputs {
        Inputs {
            status: Some(Status::Ok),
            lag: 100,
            lag_growth: Some(5.0),
            produce_rate: Some(100.0),
            consume_rate: Some(95.0),
            members: Some(2),
            state: Some("Stable".into()),
            partition_lags: (0..8).map(|p| (Arc::from("t"), Some(p), 12)).collect(),
            ack_pending: None,
            capacity_per_member: Some(60.0),
            stop_after: Duration::from_secs(60),
            window: Duration::from_secs(30),
        }
    }

    /// Feeds `warm` for two minutes at 10 s polls, then `now`; the causes.
    fn run(warm: &Inputs, now: &Inputs) -> Vec<Finding> {
        let s = settings();
        let mut st = DiagnosisState::default();
        for t in 0..12 {
            diagnose(warm, &mut st, Millis(t * 10_000), &s);
        }
        diagnose(now, &mut st, Millis(120_000), &s)
    }

    fn causes(f: &[Finding]) -> Vec<Cause> {
        f.iter().map(|f| f.cause).collect()
    }

    /// Numbered cases: (inputs now, expected causes in order, a fragment).
    #[test]
    fn diagnosis_table() {
        let steady = base();
        let cases: Vec<(u32, Inputs, Vec<Cause>, &str)> = vec![
            // 1. Not behind: nothing to explain.
            (
                1,
                Inputs {
                    lag: 0,
                    lag_growth: Some(0.0),
                    ..base()
                },
                vec![],
                "",
            ),
            // 2. The producer tripled its rate.
            (
                2,
                Inputs {
                    produce_rate: Some(300.0),
                    lag_growth: Some(200.0),
                    ..base()
                },
                vec![Cause::ProducerSpike],
                "3.0x its 10m baseline of 100/s",
            ),
            // 3. Each member consumes a third of its learned capacity.
            (
                3,
                Inputs {
                    consume_rate: Some(40.0),
                    ..base()
                },
                vec![Cause::ConsumerSlowdown],
                "20/s per member (2 members), 0.3x",
            ),
            // 4. One partition of eight holds 93% of the lag.
            (
                4,
                Inputs {
                    partition_lags: (0..8)
                        .map(|p| (Arc::from("t"), Some(p), if p == 3 { 700 } else { 7 }))
                        .collect(),
                    ..base()
                },
                vec![Cause::HotPartition],
                "partition 3 of 8 holds 93% of the lag: more consumers will not help",
            ),
            // 5. JetStream at its ack limit.
            (
                5,
                Inputs {
                    ack_pending: Some((1000, 1000)),
                    ..base()
                },
                vec![Cause::AckLimit],
                "max_ack_pending of 1000",
            ),
            // 6. Behind, nothing fits: unknown, never a guess.
            (6, base(), vec![Cause::Unknown], "no cause fits"),
            // 7. A spike on a hot partition: both, the larger share first.
            (
                7,
                Inputs {
                    produce_rate: Some(250.0),
                    partition_lags: (0..8)
                        .map(|p| (Arc::from("t"), Some(p), if p == 0 { 990 } else { 1 }))
                        .collect(),
                    ..base()
                },
                vec![Cause::HotPartition, Cause::ProducerSpike],
                "partition 0 of 8",
            ),
        ];
        for (n, now, want, fragment) in cases {
            let got = run(&steady, &now);
            assert_eq!(causes(&got), want, "case {n}: {got:?}");
            let text = sentence(&got).unwrap_or_default();
            assert!(text.contains(fragment), "case {n}: {text}");
        }
    }

    #[test]
    fn a_spike_needs_a_baseline_watched_long_enough() {
        let s = settings();
        let mut st = DiagnosisState::default();
        diagnose(&base(), &mut st, Millis(0), &s);
        let spike = Inputs {
            produce_rate: Some(500.0),
            ..base()
        };
        // 30 s of watching is less than baseline_min: no spike claimed.
        let got = diagnose(&spike, &mut st, Millis(30_000), &s);
        assert_eq!(causes(&got), vec![Cause::Unknown]);
    }

    #[test]
    fn stopped_says_for_how_long_and_rebalancing_counts_changes() {
        let s = settings();
        let mut st = DiagnosisState::default();
        let stop = Inputs {
            status: Some(Status::Stop),
            lag_growth: Some(0.0),
            ..base()
        };
        diagnose(&stop, &mut st, Millis(0), &s);
        let got = diagnose(&stop, &mut st, Millis(90_000), &s);
        assert_eq!(got[0].cause, Cause::Stopped);
        assert!(
            got[0].evidence.contains("no progress for at least 2m 30s"),
            "{got:?}"
        );

        let mut st = DiagnosisState::default();
        let mut got = Vec::new();
        for (t, members) in [(0, 2), (10, 3), (20, 2), (30, 3), (40, 2)] {
            got = diagnose(
                &Inputs {
                    members: Some(members),
                    ..base()
                },
                &mut st,
                Millis(t * 1000),
                &s,
            );
        }
        assert_eq!(causes(&got), vec![Cause::Rebalancing]);
        assert!(got[0].evidence.contains("changed 4 times in 1m"), "{got:?}");
        // A minute later without changes: no longer rebalancing.
        let got = diagnose(
            &Inputs {
                members: Some(2),
                ..base()
            },
            &mut st,
            Millis(200_000),
            &s,
        );
        assert!(!causes(&got).contains(&Cause::Rebalancing), "{got:?}");
    }
}

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
//!   of the most it has shown (the learned per-replica capacity, or its own
//!   baseline when higher), with produce within its baseline.
//! - `rebalancing`: the group rebalanced (its members, by id where the broker
//!   names them, their count or its state changed; the polls of one rebalance
//!   in progress count once) at least `rebalance_changes` times
//!   within `baseline_min`.

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
    /// JetStream: (num_ack_pending, max_ack_pending).
    pub ack_pending: Option<(u64, i64)>,
    /// Kafka: a fingerprint of each member id (DescribeGroups), so a member
    /// replaced by another (a crash loop) counts as a change even when the
    /// count stays the same. None when the broker does not name members.
    pub member_ids: Option<Vec<u64>>,
    /// The partitions holding most of the lag, when few do (the engine finds
    /// them once with [`hot_partitions`] for diagnosis and recommendation).
    pub hot: Option<Hot>,
    /// Learned messages per second one consumer handles.
    pub capacity_per_member: Option<f64>,
    /// A group is STOP after this long without progress, STALL after its
    /// commits stood still for this long (the analysis window): the least a
    /// stuck group has been stuck when its status turns.
    pub stop_after: Duration,
    pub window: Duration,
}

/// A time-weighted average of a rate, and since when it has been watched.
#[derive(Clone, Copy, Debug, Default)]
struct Baseline {
    /// The average and when it was last moved.
    value: Option<(f64, Millis)>,
    since: Option<Millis>,
}

impl Baseline {
    /// Moves toward `rate` with time constant `window`.
    fn observe(&mut self, rate: f64, at: Millis, window: Duration) {
        if !rate.is_finite() || rate < 0.0 {
            return;
        }
        self.since.get_or_insert(at);
        self.value = Some(match self.value {
            None => (rate, at),
            Some((b, t)) => {
                let dt = ((at.0 - t.0).max(0) as f64) / 1000.0;
                let w = 1.0 - (-dt / window.as_secs_f64().max(1.0)).exp();
                (b + (rate - b) * w, at)
            }
        });
    }

    /// The average, once watched for at least `min`.
    fn trusted(&self, at: Millis, min: Duration) -> Option<f64> {
        let since = self.since?;
        let long_enough = (at.0 - since.0) as f64 / 1000.0 >= min.as_secs_f64();
        self.value.map(|(b, _)| b).filter(|_| long_enough)
    }
}

/// One membership change: when, and how many members joined and left (by id;
/// from the count when the broker names no members).
#[derive(Clone, Copy, Debug)]
struct Change {
    at: Millis,
    joined: u32,
    left: u32,
}

/// Whether a group in `state` may be in the middle of a rebalance: any state
/// but the settled ones (the classic protocol's PreparingRebalance and
/// CompletingRebalance, KIP-848's Assigning and Reconciling, and the Unknown
/// that tansu answers while members join; JetStream's states are settled).
fn in_rebalance(state: Option<&str>) -> bool {
    state.is_some_and(|s| {
        !["Stable", "Empty", "Dead", "active", "missing", "offline"]
            .iter()
            .any(|r| r.eq_ignore_ascii_case(s))
    })
}

/// The longest one rebalance is taken to last: changes seen later count again
/// even when the state never settled.
const REBALANCE_MAX_MS: i64 = 60_000;

/// What the group looked like at the last poll, to see it change.
#[derive(Clone, Debug, Default, PartialEq)]
struct Membership {
    members: Option<u32>,
    state: Option<String>,
    ids: Option<Vec<u64>>,
}

/// What diagnosis remembers of a group between polls.
#[derive(Clone, Debug, Default)]
pub struct DiagnosisState {
    /// The produce rate's baseline (msgs/s).
    produce: Baseline,
    /// The consume rate's baseline, per member when the member count is known
    /// (`per_member` says which; it restarts when that changes).
    consume: Baseline,
    per_member: bool,
    /// The last member count the broker gave.
    last_members: Option<u32>,
    /// Membership or state changes within `baseline_min`.
    changes: VecDeque<Change>,
    last_membership: Option<Membership>,
    /// Since when the status has been STOP or STALL.
    stuck_since: Option<(Status, Millis)>,
}

/// Baselines read before this poll moves them.
#[derive(Clone, Copy, Debug, Default)]
struct Baselines {
    produce: Option<f64>,
    /// Per member when `per_member`, else the group's.
    consume: Option<f64>,
    per_member: bool,
    /// The last member count the broker gave, for a poll that has none.
    last_members: Option<u32>,
}

impl DiagnosisState {
    /// Forgets changes older than `baseline_min` and follows STOP/STALL.
    fn trim_and_track_status(&mut self, i: &Inputs, at: Millis, s: &DiagnosisSettings) {
        let horizon = at.0 - i64::try_from(s.baseline_min.as_millis()).unwrap_or(i64::MAX);
        while self.changes.front().is_some_and(|c| c.at.0 < horizon) {
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

    /// Folds this poll in: the baselines move toward this poll's rates with
    /// time constant `baseline_window`; a membership or state change is noted.
    fn observe(&mut self, i: &Inputs, at: Millis, s: &DiagnosisSettings) {
        if let Some(rate) = i.produce_rate {
            self.produce.observe(rate, at, s.baseline_window);
        }
        if let Some(rate) = i.consume_rate {
            // A poll without a member count (DescribeGroups failed or skipped)
            // keeps the mode it had: only a count seen to change mode restarts
            // the baseline.
            let per_member = i.members.map_or(self.per_member, |m| m > 0);
            if per_member != self.per_member {
                self.consume = Baseline::default();
                self.per_member = per_member;
            }
            let members = match (per_member, i.members) {
                (true, Some(m)) => Some(m),
                (true, None) => self.last_members,
                (false, _) => None,
            };
            let per = rate / f64::from(members.filter(|&m| m > 0).unwrap_or(1));
            if per_member && members.is_none() {
                // Members unknown and never known: nothing to divide by.
                self.consume = Baseline::default();
            }
            self.consume.observe(per, at, s.baseline_window);
        }
        if i.members.is_some() {
            self.last_members = i.members;
        }
        // Without members (DescribeGroups failed or was skipped this poll) the
        // group did not change as far as anyone knows: nothing to compare.
        if i.members.is_none() && i.member_ids.is_none() {
            self.trim_and_track_status(i, at, s);
            return;
        }
        let now = Membership {
            members: i.members,
            state: i.state.clone(),
            ids: i.member_ids.as_ref().map(|ids| {
                let mut ids = ids.clone();
                ids.sort_unstable();
                ids.dedup();
                ids
            }),
        };
        if let Some(last) = &self.last_membership {
            if *last != now {
                let (joined, left) = match (&last.ids, &now.ids) {
                    (Some(a), Some(b)) => (
                        count_u32(b.iter().filter(|id| a.binary_search(id).is_err()).count()),
                        count_u32(a.iter().filter(|id| b.binary_search(id).is_err()).count()),
                    ),
                    _ => {
                        let (a, b) = (last.members.unwrap_or(0), now.members.unwrap_or(0));
                        (b.saturating_sub(a), a.saturating_sub(b))
                    }
                };
                // A rebalance seen over several polls (the state still
                // PreparingRebalance or CompletingRebalance at the last one) is
                // one rebalance, whatever it looked like on the way.
                match self.changes.back_mut() {
                    Some(c)
                        if in_rebalance(last.state.as_deref())
                            && at.0 - c.at.0 <= REBALANCE_MAX_MS =>
                    {
                        c.joined += joined;
                        c.left += left;
                    }
                    _ => self.changes.push_back(Change { at, joined, left }),
                }
            }
        }
        self.last_membership = Some(now);
        self.trim_and_track_status(i, at, s);
    }

    /// The baselines, each once the group has been watched long enough.
    fn baselines(&self, at: Millis, s: &DiagnosisSettings) -> Baselines {
        Baselines {
            produce: self.produce.trusted(at, s.baseline_min),
            consume: self.consume.trusted(at, s.baseline_min),
            per_member: self.per_member,
            last_members: self.last_members,
        }
    }
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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
    // The baselines are read before this poll moves them.
    let baseline = state.baselines(at, s);
    state.observe(i, at, s);
    if !lagging(i) {
        return Vec::new();
    }
    let mut out: Vec<Finding> = [
        // The ack limit first: it explains why a consumer is stuck.
        ack_limit(i),
        stuck(i, state, at),
        hot_partition(i),
        producer_spike(i, baseline.produce, s),
        consumer_slowdown(i, baseline, s),
        rebalancing(i, state, s),
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

/// Consumers well below the most they have shown (learned capacity, or their
/// own baseline when higher) while produce is steady.
fn consumer_slowdown(i: &Inputs, baseline: Baselines, s: &DiagnosisSettings) -> Option<Finding> {
    let consume = i.consume_rate?;
    let (rate, b) = (i.produce_rate?, baseline.produce?);
    if b <= 0.0 || rate > 1.5 * b {
        return None;
    }
    // Per member when the count is known (and the baseline is per member).
    let members = i
        .members
        .or(baseline.last_members)
        .filter(|&m| m > 0 && baseline.per_member);
    let per = consume / f64::from(members.unwrap_or(1));
    let learned = i.capacity_per_member.filter(|_| members.is_some());
    let reference = match (learned, baseline.consume) {
        (Some(c), Some(b)) => c.max(b),
        (c, b) => c.or(b)?,
    };
    if !(reference > 0.0 && per <= s.slowdown_factor * reference) {
        return None;
    }
    let against = match (learned, baseline.consume) {
        (Some(c), Some(b)) if c >= b => format!(
            "their learned capacity of {}/s (baseline {}/s)",
            count(c),
            count(b)
        ),
        (Some(c), Some(b)) => format!(
            "their {} baseline of {}/s (learned capacity {}/s)",
            dur(s.baseline_window.as_secs_f64()),
            count(b),
            count(c)
        ),
        (Some(c), None) => format!("their learned capacity of {}/s", count(c)),
        (None, _) => format!(
            "{} {} baseline of {}/s",
            if members.is_some() { "their" } else { "its" },
            dur(s.baseline_window.as_secs_f64()),
            count(reference)
        ),
    };
    let who = match members {
        Some(m) => format!(
            "consume {}/s per member ({m} member{})",
            count(per),
            if m == 1 { "" } else { "s" }
        ),
        None => format!(
            "consume {}/s (member count unknown: fewer consumers or slower ones)",
            count(per)
        ),
    };
    Some(Finding {
        cause: Cause::ConsumerSlowdown,
        share: ((reference - per) / reference).clamp(0.0, 1.0),
        evidence: format!(
            "{who}, {:.1}x {against}, with produce steady at {}/s",
            per / reference,
            count(rate)
        ),
    })
}

/// Membership or state changed often within `baseline_min`.
fn rebalancing(i: &Inputs, state: &DiagnosisState, s: &DiagnosisSettings) -> Option<Finding> {
    let n = state.changes.len();
    if n < s.rebalance_changes {
        return None;
    }
    let joined: u32 = state.changes.iter().map(|c| c.joined).sum();
    let left: u32 = state.changes.iter().map(|c| c.left).sum();
    let now = i.members.map_or(String::new(), |m| format!(", {m} now"));
    Some(Finding {
        cause: Cause::Rebalancing,
        share: 0.5,
        evidence: format!(
            "rebalanced {n} times in {} ({joined} joined, {left} left{now}): each rebalance \
             pauses consumption; a crash loop or a too-short max.poll.interval.ms?",
            dur(s.baseline_min.as_secs_f64())
        ),
    })
}

/// The partitions holding most of a group's lag.
#[derive(Clone, Debug, PartialEq)]
pub struct Hot {
    /// (topic, partition) of each hot partition, most lag first.
    pub partitions: Vec<(Arc<str>, Option<i32>)>,
    /// How many partitions the group has.
    pub of: usize,
    /// The hot partitions' share of the lag, 0 to 1.
    pub share: f64,
    /// "3" (one topic) or "orders/3, orders/5".
    pub names: String,
}

/// The smallest set of partitions holding `hot_share` of the lag, when it is
/// at most a quarter of them (and fewer than all). Input: (topic, partition,
/// lag) per partition.
pub fn hot_partitions(lags: &[(Arc<str>, Option<i32>, u64)], hot_share: f64) -> Option<Hot> {
    let n = lags.len();
    let total: u64 = lags.iter().map(|p| p.2).sum();
    if n < 2 || total == 0 {
        return None;
    }
    let mut sorted: Vec<&(Arc<str>, Option<i32>, u64)> = lags.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.2));
    let allowed = (n / 4).max(1);
    let mut held = 0u64;
    let mut hot = Vec::new();
    for p in sorted {
        held += p.2;
        hot.push(p);
        if held as f64 >= hot_share * total as f64 {
            break;
        }
        if hot.len() >= allowed {
            return None;
        }
    }
    let one_topic = lags.iter().all(|p| p.0 == lags[0].0);
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
    Some(Hot {
        partitions: hot.iter().map(|p| (p.0.clone(), p.1)).collect(),
        of: n,
        share: held as f64 / total as f64,
        names: names.join(", "),
    })
}

impl Hot {
    /// "partition 3 of 8 holds 93% of the lag".
    pub fn describe(&self) -> String {
        let one = self.partitions.len() == 1;
        format!(
            "{} {} of {} {} {:.0}% of the lag",
            if one { "partition" } else { "partitions" },
            self.names,
            self.of,
            if one { "holds" } else { "hold" },
            self.share * 100.0
        )
    }
}

fn hot_partition(i: &Inputs) -> Option<Finding> {
    let hot = i.hot.as_ref()?;
    Some(Finding {
        cause: Cause::HotPartition,
        share: hot.share,
        evidence: format!("{}: more consumers will not help", hot.describe()),
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

    /// The hot partitions of eight on topic "t" with these lags.
    fn lags(lag: impl Fn(i32) -> u64) -> Option<Hot> {
        let l: Vec<_> = (0..8).map(|p| (Arc::from("t"), Some(p), lag(p))).collect();
        hot_partitions(&l, 0.8)
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
            ack_pending: None,
            member_ids: None,
            hot: lags(|_| 12),
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
                    hot: lags(|p| if p == 3 { 700 } else { 7 }),
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
                    hot: lags(|p| if p == 0 { 990 } else { 1 }),
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
        assert!(
            got[0].evidence.contains("rebalanced 4 times in 1m"),
            "{got:?}"
        );
        // One rebalance seen over three polls (members leave and join while
        // the state says it is rebalancing) counts once; tansu says Unknown.
        let mut one = DiagnosisState::default();
        let mut got = Vec::new();
        for (t, members, state) in [
            (0, 2, "Stable"),
            (10, 2, "PreparingRebalance"),
            (20, 1, "Unknown"),
            (30, 3, "Stable"),
            (40, 3, "Stable"),
        ] {
            got = diagnose(
                &Inputs {
                    members: Some(members),
                    state: Some(state.to_string()),
                    ..base()
                },
                &mut one,
                Millis(t * 1000),
                &s,
            );
        }
        assert_eq!(one.changes.len(), 1, "{:?}", one.changes);
        assert_eq!((one.changes[0].joined, one.changes[0].left), (2, 1));
        assert!(!causes(&got).contains(&Cause::Rebalancing), "{got:?}");
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

    #[test]
    fn a_poll_without_members_is_no_change_and_keeps_the_per_member_baseline() {
        let s = settings();
        let mut st = DiagnosisState::default();
        let with = |members: Option<u32>, ids: Option<Vec<u64>>| Inputs {
            members,
            member_ids: ids,
            state: Some("Stable".into()),
            ..base()
        };
        // DescribeGroups fails every other poll: no members, no ids, Stable
        // from ListGroups. Nothing changed as far as anyone knows.
        for t in 0..8 {
            let i = if t % 2 == 0 {
                with(Some(2), Some(vec![11, 22]))
            } else {
                with(None, None)
            };
            let got = diagnose(&i, &mut st, Millis(t * 10_000), &s);
            assert!(!causes(&got).contains(&Cause::Rebalancing), "{got:?}");
        }
        assert!(st.changes.is_empty(), "{:?}", st.changes);
        assert!(st.per_member);
        assert_eq!(st.last_members, Some(2));
    }
}

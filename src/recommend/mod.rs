//! Scale-out recommendation per Kafka group and JetStream consumer: how many
//! consumer replicas, why (a bounded [`Reason`], usable as a metric label), and a
//! sentence saying so.
//!
//! Two modes ([`Mode`]): rate-aware (default) sizes the group from its produce
//! rate, its backlog, a drain target and a per-replica capacity learned while the
//! group was behind; KEDA parity ([`keda`]) gives exactly what KEDA's Kafka or NATS
//! JetStream scaler plus the HPA would run. Pure: no I/O, no clock (`now` is a
//! parameter); what must survive between polls lives in a [`RecommendState`] the
//! engine keeps per group and passes back. Formulas and reasons: docs/scaling.md.

pub mod keda;
pub mod settings;
pub mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use crate::analysis::diagnosis::Hot;
use crate::analysis::{Analysis, GroupAnalysis};
use crate::model::{GroupKey, JetstreamParts, Millis, Sample, System};

pub use keda::{hpa_replicas, keda_jetstream, keda_kafka, KedaOptions, OffsetResetPolicy};
pub use settings::{Mode, Resolved, Resolver};
pub use state::{Capacity, Hysteresis, RecommendState};

/// Why the recommendation is what it is. A bounded set: the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The advised count is what runs (or, with nothing known to run, what is needed).
    KeepsUp,
    /// More replicas are needed just to match the produce rate.
    ScaleOutToKeepUp,
    /// The current replicas keep up with new messages but not within the drain
    /// target for the backlog.
    ScaleOutToDrain,
    /// More replicas than partitions would be needed: capped at the partition
    /// count; add partitions. Also KEDA's partition cap in parity mode.
    PartitionBound,
    /// Capped at `max_replicas` (KEDA mode: `maxReplicaCount`).
    MaxReplicasBound,
    /// Kafka: a few partitions hold most of the lag, and a partition is read
    /// by one consumer at a time: capped at what the other partitions need
    /// plus one per hot partition; spread the hot key or speed up its consumer.
    HotPartition,
    /// Fewer replicas suffice, and lag has been near zero and steady for
    /// `scale_in_after`.
    ScaleInSafe,
    /// JetStream: num_ack_pending reached max_ack_pending; more replicas cannot
    /// take more messages in flight: raise max_ack_pending.
    AckPendingLimited,
    /// JetStream: a push consumer without a deliver group delivers to one
    /// subscriber; it cannot be scaled out.
    PushWithoutDeliverGroup,
    /// Rates, capacity or the replica count are not known yet: no number is given.
    NotEnoughData,
    /// Nothing produced and nothing behind: `min_replicas`.
    Idle,
    /// KEDA mode: `ceil(lag / lagThreshold)` as the HPA computes it.
    KedaLag,
    /// KEDA mode: lag at or below `activationLagThreshold`: KEDA scales to zero.
    KedaInactive,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::KeepsUp,
        Reason::ScaleOutToKeepUp,
        Reason::ScaleOutToDrain,
        Reason::PartitionBound,
        Reason::MaxReplicasBound,
        Reason::HotPartition,
        Reason::ScaleInSafe,
        Reason::AckPendingLimited,
        Reason::PushWithoutDeliverGroup,
        Reason::NotEnoughData,
        Reason::Idle,
        Reason::KedaLag,
        Reason::KedaInactive,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::KeepsUp => "keeps_up",
            Reason::ScaleOutToKeepUp => "scale_out_to_keep_up",
            Reason::ScaleOutToDrain => "scale_out_to_drain",
            Reason::PartitionBound => "partition_bound",
            Reason::MaxReplicasBound => "max_replicas_bound",
            Reason::HotPartition => "hot_partition",
            Reason::ScaleInSafe => "scale_in_safe",
            Reason::AckPendingLimited => "ack_pending_limited",
            Reason::PushWithoutDeliverGroup => "push_without_deliver_group",
            Reason::NotEnoughData => "not_enough_data",
            Reason::Idle => "idle",
            Reason::KedaLag => "keda_lag",
            Reason::KedaInactive => "keda_inactive",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One partition (Kafka) or the consumer itself (JetStream) as of this poll.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionInput {
    /// Kafka topic; JetStream stream.
    pub topic: Arc<str>,
    /// Kafka partition; None for JetStream.
    pub partition: Option<i32>,
    /// Lag as the source reported it.
    pub lag: u64,
    /// Next offset to consume; None: no commit (Kafka's -1).
    pub committed: Option<i64>,
    /// Next offset to be written (JetStream: stream last sequence + 1).
    pub head: i64,
    pub consume_rate: Option<f64>,
    pub produce_rate: Option<f64>,
    pub jetstream: Option<JetstreamParts>,
}

impl PartitionInput {
    pub fn new(sample: &Sample, analysis: &Analysis) -> Self {
        Self {
            topic: sample.key.topic.clone(),
            partition: sample.key.partition,
            lag: sample.lag,
            committed: sample.committed,
            head: sample.head,
            consume_rate: analysis.consume_rate,
            produce_rate: analysis.produce_rate,
            jetstream: sample.jetstream.as_deref().cloned(),
        }
    }
}

/// Everything one recommendation looks at. The group's own history is not
/// needed: its rates are in `group` and what must outlive the window (the
/// learned capacity) is in [`RecommendState`].
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub key: &'a GroupKey,
    pub system: System,
    pub partitions: &'a [PartitionInput],
    /// Active members (Kafka `GroupInfo.members`; JetStream: 1/0 for a push
    /// consumer without deliver group, the ephemeral count, else None).
    pub members: Option<u32>,
    pub group: &'a GroupAnalysis,
    /// Kafka: the few partitions holding most of the lag, when there are
    /// such (a hot key): more consumers than one per hot partition plus what
    /// the others need cannot help.
    pub hot: Option<&'a Hot>,
}

/// The advice for one group at one poll.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    pub mode: Mode,
    /// Replicas running: members, else the configured `replicas`.
    pub current: Option<u32>,
    /// None with [`Reason::NotEnoughData`] (never a guess), and with
    /// [`Reason::AckPendingLimited`] when the replica count is unknown (there is
    /// no count to keep).
    pub recommended: Option<u32>,
    pub reason: Reason,
    pub message: String,
    /// Kafka: partitions of the group's topics (the most replicas that can
    /// work); None for JetStream.
    pub partitions: Option<u32>,
    /// msgs/s per replica in use (configured, else learned, else estimated).
    pub per_replica_capacity: Option<f64>,
    /// `per_replica_capacity` is the first estimate from about a minute of
    /// saturation, not yet the learned value.
    pub capacity_estimated: bool,
    /// KEDA mode: the metric value KEDA's scaler would export.
    pub keda_metric: Option<i64>,
}

/// The recommendation for one group at `now`, updating its `state`.
pub fn recommend(
    input: &Input,
    state: &mut RecommendState,
    now: Millis,
    s: &Resolved,
) -> Recommendation {
    let current = input.members.or(s.replicas);
    let partitions = (input.system == System::Kafka)
        .then(|| u32::try_from(input.partitions.len()).unwrap_or(u32::MAX));
    // Learned in both modes, so switching modes finds it ready.
    state.capacity.observe(
        input.partitions,
        input.group,
        current,
        now,
        s.learn_after_ms(),
        s.min_backlog_secs(),
    );
    let rec = Recommendation {
        mode: s.mode,
        current,
        recommended: None,
        reason: Reason::NotEnoughData,
        message: String::new(),
        partitions,
        per_replica_capacity: s
            .capacity_per_replica
            .or(state.capacity.per_replica())
            .or(state.capacity.estimate()),
        capacity_estimated: s.capacity_per_replica.is_none()
            && state.capacity.per_replica().is_none()
            && state.capacity.estimate().is_some(),
        keda_metric: None,
    };
    match s.mode {
        Mode::Keda => keda_mode(input, state, s, rec),
        Mode::RateAware => rate_aware(input, state, now, s, rec),
    }
}

/// num_ack_pending has reached a (finite) max_ack_pending.
pub fn ack_limited(js: &JetstreamParts) -> bool {
    u64::try_from(js.max_ack_pending).is_ok_and(|m| m > 0 && js.num_ack_pending >= m)
}

/// Lag growing by at most this fraction of the input rate (or of 1 msg/s on a
/// near-idle topic) is least-squares noise, not a trend.
const STEADY_GROWTH: f64 = 0.05;

/// Lag near zero and steady: the oldest unconsumed message is younger than
/// `scale_in_max_time_lag` and lag is not growing.
fn calm(g: &GroupAnalysis, s: &Resolved) -> bool {
    let near_zero = g.lag_sum == 0
        || g.time_lag_max
            .seconds()
            .is_some_and(|t| t <= s.scale_in_max_time_lag_secs());
    let steady = g
        .lag_growth
        .is_some_and(|d| d <= STEADY_GROWTH * g.produce_rate.unwrap_or(0.0).max(1.0));
    near_zero && steady
}

/// `ceil(x)` as a replica count; a hair below an integer stays that integer
/// (5 x 1.2 is 6.000000000000001 in floats, and must not ask for 7).
fn ceil_replicas(x: f64) -> u32 {
    if !x.is_finite() || x <= 0.0 {
        return if x.is_infinite() && x > 0.0 {
            u32::MAX
        } else {
            0
        };
    }
    let c = (x - 1e-9).ceil();
    if c >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        // In range and integral: the cast is exact.
        c as u32
    }
}

/// A duration as people write it (`10m`, `1h 30m`).
fn human(d: std::time::Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// What the replicas have to do, in words.
fn task(produce: f64, lag: u64, s: &Resolved) -> String {
    let drain = human(s.target_drain_time);
    match (lag > 0, produce > 0.0) {
        (true, true) => format!(
            "keep up with {} and drain {} messages within {drain}",
            rate(produce),
            count(lag)
        ),
        (true, false) => format!("drain {} messages within {drain}", count(lag)),
        _ => format!("keep up with {}", rate(produce)),
    }
}

/// Rate-aware mode: the cases that give no sized advice first (ack-pending
/// limit, not enough data, idle, capacity unknown), then the sizing decision,
/// then its explanation.
fn rate_aware(
    input: &Input,
    state: &mut RecommendState,
    now: Millis,
    s: &Resolved,
    mut rec: Recommendation,
) -> Recommendation {
    let g = input.group;
    let js = match input.system {
        System::Jetstream => input.partitions.first().and_then(|p| p.jetstream.as_ref()),
        System::Kafka => None,
    };
    if let Some(j) = js.filter(|j| ack_limited(j) && j.num_pending > 0) {
        return ack_pending_limited(j, state, rec);
    }
    let (Some(produce), Some(growth)) = (g.produce_rate, g.lag_growth) else {
        rec.message = "not enough data: rates need more samples in the analysis window \
                       (analysis.min_samples over analysis.min_span)"
            .into();
        return rec;
    };
    let produce = produce.max(0.0);
    let lag = g.lag_sum;
    let calm = calm(g, s);
    if lag == 0 && produce == 0.0 {
        return idle(state, now, s, calm, rec);
    }
    let push_single = js.is_some_and(|j| j.push && j.deliver_group.is_none());
    let Some(cap) = rec.per_replica_capacity else {
        return capacity_unknown(push_single, lag, growth, state, s, rec);
    };
    let mut sizing = Sizing::new(produce, lag, cap, rec.partitions, s);
    if let Some(h) = input.hot.filter(|_| input.system == System::Kafka) {
        sizing.limit_hot(h, input.partitions, cap, s);
    }
    if rec.capacity_estimated {
        sizing.at = format!(
            "at an estimated {} per consumer (from its first minute behind; refined as \
             capacity is learned) (+{}% headroom)",
            rate(cap),
            (s.headroom * 100.0).round()
        );
    }
    if push_single && sizing.needed > 1 {
        state.hysteresis.force(1);
        rec.recommended = Some(1);
        rec.reason = Reason::PushWithoutDeliverGroup;
        rec.message = format!(
            "needs {} to {} {}, but a push consumer without a deliver group delivers \
             to one subscriber: recreate it with a deliver group, or as a pull consumer, \
             to scale out",
            consumers(sizing.needed),
            sizing.task,
            sizing.at
        );
        return rec;
    }
    let d = state.hysteresis.step(
        sizing.raw,
        rec.current,
        calm,
        now,
        s.scale_in_after_ms(),
        s.tolerance,
    );
    rec.recommended = Some(d.replicas);
    rec.reason = sizing.reason(&d, rec.current);
    rec.message = sizing.explain(rec.reason, &d, rec.current, input.partitions, now, s);
    rec
}

/// A consumer at max_ack_pending with messages waiting: in-flight is the limit,
/// and it is per consumer, not per replica.
fn ack_pending_limited(
    j: &JetstreamParts,
    state: &RecommendState,
    mut rec: Recommendation,
) -> Recommendation {
    rec.recommended = rec.current.or(state.hysteresis.emitted());
    rec.reason = Reason::AckPendingLimited;
    rec.message = format!(
        "num_ack_pending {} has reached max_ack_pending {} with {} messages waiting: \
         more consumers will not help; raise max_ack_pending (or ack faster)",
        count(j.num_ack_pending),
        count(u64::try_from(j.max_ack_pending).unwrap_or(0)),
        count(j.num_pending)
    );
    rec
}

/// Nothing produced and nothing behind: the floor.
fn idle(
    state: &mut RecommendState,
    now: Millis,
    s: &Resolved,
    calm: bool,
    mut rec: Recommendation,
) -> Recommendation {
    let d = state.hysteresis.step(
        s.min_replicas,
        rec.current,
        calm,
        now,
        s.scale_in_after_ms(),
        s.tolerance,
    );
    rec.recommended = Some(d.replicas);
    rec.reason = Reason::Idle;
    rec.message = format!(
        "idle: nothing produced and nothing behind; {} is the floor (min_replicas){}",
        consumers(s.min_replicas),
        pending_note(&d, now, s)
    );
    rec
}

/// No per-replica capacity yet: no number, except for a push consumer without a
/// deliver group, which can only ever have one.
fn capacity_unknown(
    push_single: bool,
    lag: u64,
    growth: f64,
    state: &mut RecommendState,
    s: &Resolved,
    mut rec: Recommendation,
) -> Recommendation {
    if push_single && lag > 0 && growth > 0.0 {
        state.hysteresis.force(1);
        rec.recommended = Some(1);
        rec.reason = Reason::PushWithoutDeliverGroup;
        rec.message = format!(
            "falling behind ({} messages, growing {}), but a push consumer without a \
             deliver group delivers to one subscriber: recreate it with a deliver group, \
             or as a pull consumer, to scale out",
            count(lag),
            rate(growth)
        );
        return rec;
    }
    rec.message = match rec.current {
        None => "not enough data: how many consumers this consumer has is unknown \
                 (a pull consumer, or a push consumer with a deliver group); set \
                 recommend.replicas for it, or recommend.capacity_per_replica"
            .into(),
        Some(_) => format!(
            "not enough data: per-consumer capacity is learned while every partition \
             is behind (at least {} of backlog) for {}, and that has not happened yet; \
             or set recommend.capacity_per_replica",
            human(s.min_backlog),
            human(s.learn_after)
        ),
    };
    rec
}

/// How many replicas the rates ask for, and what bounds that.
struct Sizing {
    /// Replicas to keep up and drain within the target, with headroom.
    needed: u32,
    /// Replicas to keep up with production alone.
    keep_up: u32,
    /// The most replicas that can work (partitions, then max_replicas).
    limit: u32,
    bound: Option<Reason>,
    /// `needed` within `limit`: what the hysteresis is given.
    raw: u32,
    partitions: Option<u32>,
    /// "keep up with 40 msg/s and drain 1,000 messages within 10m".
    task: String,
    /// "at 12 msg/s per consumer (+20% headroom)".
    at: String,
    /// Capped by hot partitions: what they hold, their produce rate, how many.
    hot: Option<(String, f64, u32)>,
    cap: f64,
}

impl Sizing {
    fn new(produce: f64, lag: u64, cap: f64, partitions: Option<u32>, s: &Resolved) -> Sizing {
        let factor = 1.0 + s.headroom;
        let demand = produce + lag as f64 / s.target_drain_secs();
        let needed = ceil_replicas(demand / cap * factor).max(s.min_replicas);
        let keep_up = ceil_replicas(produce / cap * factor);
        let mut limit = u32::MAX;
        let mut bound = None;
        if let Some(p) = partitions.filter(|&p| needed > p) {
            limit = p;
            bound = Some(Reason::PartitionBound);
        }
        if let Some(m) = s.max_replicas.filter(|&m| needed > m && m < limit) {
            limit = m;
            bound = Some(Reason::MaxReplicasBound);
        }
        Sizing {
            needed,
            keep_up,
            limit,
            bound,
            raw: needed.min(limit),
            partitions,
            task: task(produce, lag, s),
            at: format!(
                "at {} per consumer (+{}% headroom)",
                rate(cap),
                (s.headroom * 100.0).round()
            ),
            cap,
            hot: None,
        }
    }

    /// A hot partition is read by one consumer however many there are: at most
    /// what the other partitions need plus one per hot partition can work.
    fn limit_hot(&mut self, hot: &Hot, parts: &[PartitionInput], cap: f64, s: &Resolved) {
        let is_hot = |p: &PartitionInput| {
            hot.partitions
                .iter()
                .any(|(t, n)| *t == p.topic && *n == p.partition)
        };
        let cold: f64 = parts
            .iter()
            .filter(|p| !is_hot(p))
            .map(|p| p.produce_rate.unwrap_or(0.0).max(0.0) + p.lag as f64 / s.target_drain_secs())
            .sum();
        let hot_count = u32::try_from(hot.partitions.len()).unwrap_or(u32::MAX);
        let useful = ceil_replicas(cold / cap * (1.0 + s.headroom))
            .saturating_add(hot_count)
            .max(s.min_replicas);
        if self.needed > useful && useful < self.limit {
            let hot_produce: f64 = parts
                .iter()
                .filter(|p| is_hot(p))
                .map(|p| p.produce_rate.unwrap_or(0.0).max(0.0))
                .sum();
            self.limit = useful;
            self.bound = Some(Reason::HotPartition);
            self.raw = self.needed.min(useful);
            self.hot = Some((hot.describe(), hot_produce, hot_count));
        }
    }

    /// The reason for the advice `d` the hysteresis settled on.
    fn reason(&self, d: &state::Decision, current: Option<u32>) -> Reason {
        let n = d.replicas;
        match (self.bound, current.or(d.previous)) {
            (Some(b), _) if n == self.raw => b,
            (_, Some(b)) if n > b && self.keep_up > b => Reason::ScaleOutToKeepUp,
            (_, Some(b)) if n > b => Reason::ScaleOutToDrain,
            (_, Some(b)) if n < b => Reason::ScaleInSafe,
            _ => Reason::KeepsUp,
        }
    }

    /// The hot-partition sentence: why more consumers than `n` would not help.
    fn explain_hot(&self, n: u32) -> String {
        let (held, hot_produce, k) = self.hot.clone().unwrap_or_default();
        let (it, its) = if k == 1 {
            ("it", "its")
        } else {
            ("they", "their")
        };
        let pace = if hot_produce > self.cap {
            format!(
                "{it} receive{} {} and one consumer handles {}: {it} will not catch up \
                 until the hot key is spread over more partitions",
                if k == 1 { "s" } else { "" },
                rate(hot_produce),
                rate(self.cap)
            )
        } else {
            format!(
                "{it} drain{} only as fast as one consumer each ({} per consumer): \
                 spread the hot key over more partitions, or make {its} consumer faster",
                if k == 1 { "s" } else { "" },
                rate(self.cap)
            )
        };
        format!(
            "{held}, and a partition is read by one consumer at a time: the {} the \
             rates ask for would not drain {it} faster; {} cover{} the other partitions \
             plus one per hot partition; {pace}",
            consumers(self.needed),
            consumers(n),
            if n == 1 { "s" } else { "" },
        )
    }

    /// The sentence for `reason`, with the numbers that led to it.
    fn explain(
        &self,
        reason: Reason,
        d: &state::Decision,
        current: Option<u32>,
        parts: &[PartitionInput],
        now: Millis,
        s: &Resolved,
    ) -> String {
        let (n, what, at) = (d.replicas, &self.task, &self.at);
        match reason {
            Reason::PartitionBound => {
                let p = self.partitions.unwrap_or(0);
                let topics = distinct_topics(parts);
                let has = if topics == 1 {
                    "the topic has".to_string()
                } else {
                    format!("its {topics} topics have")
                };
                let add = self.needed - p;
                format!(
                    "needs {} to {what} {at}; {has} {p} partitions: add at least {add} partition{}",
                    consumers(self.needed),
                    if add == 1 { "" } else { "s" }
                )
            }
            Reason::HotPartition => self.explain_hot(n),
            Reason::MaxReplicasBound => format!(
                "needs {} to {what} {at}; capped at max_replicas {}",
                consumers(self.needed),
                self.limit
            ),
            Reason::ScaleOutToKeepUp | Reason::ScaleOutToDrain => {
                let running = current.map_or(String::new(), |c| {
                    format!("; {c} running: add {}", n.saturating_sub(c))
                });
                format!("needs {} to {what} {at}{running}", consumers(n))
            }
            Reason::ScaleInSafe => {
                let running = current.filter(|&c| c > n).map_or(String::new(), |c| {
                    format!("; {c} running: remove {}", c - n)
                });
                format!(
                    "{} enough to {what} {at}, and lag has stayed near zero for {}{running}",
                    are(n),
                    human(s.scale_in_after)
                )
            }
            _ => {
                let ignored = if d.within_tolerance {
                    format!(
                        "; {} would be within the {}% tolerance, so it is ignored",
                        self.raw,
                        (s.tolerance * 100.0).round()
                    )
                } else {
                    String::new()
                };
                format!(
                    "{} right to {what} {at}{ignored}{}",
                    are(n),
                    pending_note(d, now, s)
                )
            }
        }
    }
}

/// "; 3 would do once lag has stayed near zero for 10m (4m so far)".
fn pending_note(d: &state::Decision, now: Millis, s: &Resolved) -> String {
    let Some(p) = d.pending else {
        return String::new();
    };
    let so_far = match p.since {
        Some(t) => format!(
            " ({} so far)",
            human(std::time::Duration::from_secs(
                u64::try_from(now.0.saturating_sub(t.0) / 1000).unwrap_or(0)
            ))
        ),
        None => String::new(),
    };
    format!(
        "; {} would do once lag has stayed near zero for {}{so_far}",
        p.to,
        human(s.scale_in_after)
    )
}

/// KEDA parity mode: the metric KEDA's scaler would export, the HPA's count
/// for it, then the sentence.
fn keda_mode(
    input: &Input,
    state: &mut RecommendState,
    s: &Resolved,
    mut rec: Recommendation,
) -> Recommendation {
    let o = &s.keda;
    let m = keda_metric(input, state, o);
    rec.keda_metric = Some(m.metric);
    let h = hpa_replicas(m.metric, m.active, rec.current, o);
    rec.recommended = Some(h.replicas);
    state.hysteresis.force(h.replicas);
    (rec.reason, rec.message) = keda_explain(&m, &h, rec.partitions, o);
    rec
}

/// What KEDA's scaler reports for this group.
struct KedaMetric {
    metric: i64,
    active: bool,
    /// Kafka: why the metric was capped, and the lag before the cap.
    capped: Option<(String, i64)>,
}

fn keda_metric(input: &Input, state: &mut RecommendState, o: &KedaOptions) -> KedaMetric {
    match input.system {
        System::Kafka => {
            let k = keda_kafka(input.partitions, o, &mut state.keda_previous);
            let why = k.capped.then(|| {
                if o.limit_to_partitions_with_lag {
                    format!(
                        "{} partitions with lag (limitToPartitionsWithLag)",
                        k.partitions_with_lag
                    )
                } else {
                    format!("{} partitions", k.partitions)
                }
            });
            let lag = if k.capped { k.total_lag } else { k.metric };
            KedaMetric {
                metric: k.metric,
                active: k.active,
                capped: why.map(|w| (w, lag)),
            }
        }
        System::Jetstream => {
            let p = input.partitions.first();
            let j = keda_jetstream(
                p.and_then(|p| p.jetstream.as_ref()),
                p.map_or(0, |p| p.head.saturating_sub(1)),
                o,
            );
            KedaMetric {
                metric: j.metric,
                active: j.active,
                capped: None,
            }
        }
    }
}

fn keda_explain(
    m: &KedaMetric,
    h: &keda::HpaOutcome,
    partitions: Option<u32>,
    o: &KedaOptions,
) -> (Reason, String) {
    let t = o.lag_threshold.max(1);
    let metric = m.metric;
    if h.scaled_to_zero {
        return (
            Reason::KedaInactive,
            format!(
                "KEDA: lag {} is not above activationLagThreshold {}: inactive, scaled to 0",
                signed(metric),
                o.activation_lag_threshold
            ),
        );
    }
    if h.max_bound {
        return (
            Reason::MaxReplicasBound,
            format!(
                "KEDA: ceil({} / lagThreshold {t}) = {}, capped at maxReplicaCount {}",
                signed(metric),
                h.desired,
                o.max_replica_count
            ),
        );
    }
    if let Some((why, lag)) = &m.capped {
        return (
            Reason::PartitionBound,
            format!(
                "KEDA: lag {} / lagThreshold {t} would ask {}; capped at {why}: {}",
                signed(*lag),
                ceil_replicas(*lag as f64 / t as f64),
                consumers(h.replicas)
            ),
        );
    }
    let mut msg = format!(
        "KEDA: ceil({} / lagThreshold {t}) = {}",
        signed(metric),
        h.desired
    );
    if let Some(p) = partitions.filter(|&p| h.desired > p) {
        // getTotalLag caps only from (partitions + 1) x threshold on
        // (integer division), so the HPA can ask one more than partitions.
        msg.push_str(&format!(
            " for {p} partitions (KEDA's cap uses integer division)"
        ));
    }
    if h.held_by_tolerance {
        msg.push_str(&format!(
            "; the HPA keeps {}: within its {}% tolerance",
            h.replicas,
            (o.hpa_tolerance * 100.0).round()
        ));
    } else if h.replicas != h.desired {
        msg.push_str(&format!(
            "; {} within minReplicaCount {} / maxReplicaCount {}",
            h.replicas,
            o.min_replica_count.max(1),
            o.max_replica_count
        ));
    }
    (Reason::KedaLag, msg)
}

fn distinct_topics(parts: &[PartitionInput]) -> usize {
    let mut t: Vec<&str> = parts.iter().map(|p| &*p.topic).collect();
    t.sort_unstable();
    t.dedup();
    t.len()
}

fn consumers(n: u32) -> String {
    if n == 1 {
        "1 consumer".into()
    } else {
        format!("{n} consumers")
    }
}

fn are(n: u32) -> String {
    if n == 1 {
        "1 consumer is".into()
    } else {
        format!("{n} consumers are")
    }
}

/// 48000 -> "48,000".
fn count(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn signed(n: i64) -> String {
    if n < 0 {
        format!("-{}", count(n.unsigned_abs()))
    } else {
        count(n.unsigned_abs())
    }
}

/// 800 -> "800 msg/s", 2800.4 -> "2,800 msg/s", 12.25 -> "12.2 msg/s" (ties to even).
fn rate(r: f64) -> String {
    if r >= 99.5 {
        // Rounded and in range: the cast is exact enough for a sentence.
        format!("{} msg/s", count(r.round() as u64))
    } else if r >= 0.995 {
        format!("{:.1} msg/s", r).replace(".0 ", " ")
    } else {
        format!("{:.2} msg/s", r)
    }
}

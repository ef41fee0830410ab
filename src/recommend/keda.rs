//! KEDA parity: what KEDA's Kafka and NATS JetStream scalers report for the same
//! offsets, and the replica count KEDA plus the HorizontalPodAutoscaler make of it.
//!
//! Sources read (kedacore/keda, 2.x `main`):
//! - `pkg/scalers/kafka_scaler.go`: `getLagForPartition`, `getTotalLag`,
//!   `getNextFactorThatBalancesConsumersToTopicPartitions`, `FindFactors`,
//!   `GetMetricsAndActivity` (activity is `totalLagWithPersistent >
//!   activationLagThreshold`), `parseKafkaMetadata` (defaults and the option
//!   conflicts checked in [`KedaOptions::problems`]).
//! - `pkg/scalers/nats_jetstream_scaler.go`: `getMaxMsgLag` (num_pending +
//!   num_ack_pending, or the stream's last sequence when the consumer is not
//!   found), `GetMetricsAndActivity` (`totalLag > activationLagThreshold`).
//! - Kubernetes `pkg/controller/podautoscaler/replica_calculator.go`:
//!   `GetExternalPerPodMetricReplicas` (AverageValue target: keep the current count
//!   while `|1 - usage / (target * current)| <= tolerance`, else
//!   `ceil(usage / target)`), then clamped to `[minReplicas, maxReplicas]`.
//!
//! Nothing here is copied: the behaviour is re-derived and each quirk is named
//! where it is reproduced, so a reader can check it against those files.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::PartitionInput;
use crate::model::JetstreamParts;

/// KEDA's `offsetResetPolicy`: what a partition without a committed offset counts as.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OffsetResetPolicy {
    /// KEDA's default (`defaultOffsetResetPolicy = latest`).
    #[default]
    Latest,
    Earliest,
}

/// The trigger metadata of a KEDA `kafka` / `nats-jetstream` trigger and the
/// ScaledObject bounds that change the resulting replica count. Key names are
/// KEDA's, in snake_case; defaults are KEDA's.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KedaOptions {
    /// `lagThreshold`: target lag per replica (AverageValue). Both scalers default to 10.
    #[serde(default = "default_lag_threshold")]
    pub lag_threshold: i64,
    /// `activationLagThreshold`: at or below it the scaler is inactive. Default 0.
    #[serde(default)]
    pub activation_lag_threshold: i64,
    /// Kafka `offsetResetPolicy`. Default latest.
    #[serde(default)]
    pub offset_reset_policy: OffsetResetPolicy,
    /// Kafka `allowIdleConsumers`: no cap at the partition count. Default false.
    #[serde(default)]
    pub allow_idle_consumers: bool,
    /// Kafka `limitToPartitionsWithLag`: cap at the partitions with lag > 0.
    #[serde(default)]
    pub limit_to_partitions_with_lag: bool,
    /// Kafka `ensureEvenDistributionOfPartitions`: round up to a factor of the
    /// partition count.
    #[serde(default)]
    pub ensure_even_distribution_of_partitions: bool,
    /// Kafka `scaleToZeroOnInvalidOffset`: a partition without a commit counts 0.
    #[serde(default)]
    pub scale_to_zero_on_invalid_offset: bool,
    /// Kafka `excludePersistentLag`: a partition whose committed offset did not move
    /// since the previous evaluation counts 0 towards the metric (not activation).
    #[serde(default)]
    pub exclude_persistent_lag: bool,
    /// ScaledObject `minReplicaCount` (KEDA default 0: scale to zero when inactive).
    #[serde(default)]
    pub min_replica_count: u32,
    /// ScaledObject `maxReplicaCount` (KEDA default 100).
    #[serde(default = "default_max_replica_count")]
    pub max_replica_count: u32,
    /// kube-controller-manager `--horizontal-pod-autoscaler-tolerance` (default 0.1).
    #[serde(default = "default_hpa_tolerance")]
    pub hpa_tolerance: f64,
}

impl Default for KedaOptions {
    fn default() -> Self {
        Self {
            lag_threshold: default_lag_threshold(),
            activation_lag_threshold: 0,
            offset_reset_policy: OffsetResetPolicy::Latest,
            allow_idle_consumers: false,
            limit_to_partitions_with_lag: false,
            ensure_even_distribution_of_partitions: false,
            scale_to_zero_on_invalid_offset: false,
            exclude_persistent_lag: false,
            min_replica_count: 0,
            max_replica_count: default_max_replica_count(),
            hpa_tolerance: default_hpa_tolerance(),
        }
    }
}

fn default_lag_threshold() -> i64 {
    // kafka_scaler.go `defaultKafkaLagThreshold = 10`; nats_jetstream_scaler.go
    // `defaultJetStreamLagThreshold = 10`.
    10
}
fn default_max_replica_count() -> u32 {
    // KEDA ScaledObject `maxReplicaCount` default.
    100
}
fn default_hpa_tolerance() -> f64 {
    // Kubernetes `--horizontal-pod-autoscaler-tolerance` default.
    0.1
}

impl KedaOptions {
    /// Problems as (key, message); KEDA refuses the same combinations when it
    /// parses the trigger (`parseKafkaMetadata`).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.lag_threshold <= 0 {
            out.push((
                "lag_threshold",
                format!(
                    "must be a positive number, as KEDA requires (got {})",
                    self.lag_threshold
                ),
            ));
        }
        if self.activation_lag_threshold < 0 {
            out.push((
                "activation_lag_threshold",
                format!("must be 0 or more (got {})", self.activation_lag_threshold),
            ));
        }
        if self.allow_idle_consumers && self.limit_to_partitions_with_lag {
            out.push((
                "limit_to_partitions_with_lag",
                "cannot be set together with allow_idle_consumers (KEDA refuses it)".into(),
            ));
        }
        if self.limit_to_partitions_with_lag && self.ensure_even_distribution_of_partitions {
            out.push((
                "ensure_even_distribution_of_partitions",
                "cannot be set together with limit_to_partitions_with_lag (KEDA refuses it)".into(),
            ));
        }
        if self.max_replica_count == 0 {
            out.push(("max_replica_count", "must be at least 1".into()));
        }
        if self.min_replica_count > self.max_replica_count {
            out.push((
                "min_replica_count",
                format!(
                    "must not exceed max_replica_count ({}) (got {})",
                    self.max_replica_count, self.min_replica_count
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.hpa_tolerance) {
            out.push((
                "hpa_tolerance",
                format!("must be in [0, 1) (got {})", self.hpa_tolerance),
            ));
        }
        out
    }
}

/// KEDA's `previousOffsets` for `excludePersistentLag`: the committed offset of each
/// (topic, partition) at the previous evaluation. Kept per group across polls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreviousOffsets(BTreeMap<(Arc<str>, i32), i64>);

impl PreviousOffsets {
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(&(Arc::from(topic), partition)).copied()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One partition's lag as KEDA counts it: `(lag, lag_with_persistent)`, and the
/// offset to remember for `excludePersistentLag` (None: leave the memory alone).
///
/// Follows `getLagForPartition`: a missing commit (-1) is 1 (latest; 0 with
/// `scaleToZeroOnInvalidOffset`) or the latest offset (earliest; 0 with
/// `scaleToZeroOnInvalidOffset`), and never touches the persistent-lag memory;
/// otherwise `head - committed`, which KEDA does not clamp at 0.
pub fn lag_for_partition(
    committed: Option<i64>,
    head: i64,
    previous: Option<i64>,
    o: &KedaOptions,
) -> (i64, i64, Option<i64>) {
    let Some(c) = committed.filter(|&c| c != -1) else {
        let lag = match (o.offset_reset_policy, o.scale_to_zero_on_invalid_offset) {
            (_, true) => 0,
            (OffsetResetPolicy::Latest, false) => 1,
            (OffsetResetPolicy::Earliest, false) => head,
        };
        return (lag, lag, None);
    };
    let lag = head - c;
    if o.exclude_persistent_lag {
        match previous {
            // Same offset as last time: "there may be some issue with consuming
            // this offset" -- counts for activation only.
            Some(p) if p == c => return (0, lag, None),
            _ => return (lag, lag, Some(c)),
        }
    }
    (lag, lag, None)
}

/// KEDA's Kafka scaler reading of one group: the metric it reports and whether it
/// is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KafkaLag {
    /// Sum of per-partition lag (persistent lag excluded when configured).
    pub total_lag: i64,
    /// Sum including persistent lag: what activation compares.
    pub total_lag_with_persistent: i64,
    pub partitions: i64,
    pub partitions_with_lag: i64,
    /// The value KEDA exports (`totalLag` after the caps of `getTotalLag`).
    pub metric: i64,
    /// The partition cap (or the partitions-with-lag cap) changed the metric.
    pub capped: bool,
    /// `totalLagWithPersistent > activationLagThreshold`.
    pub active: bool,
}

/// `getTotalLag` + activity, for the partitions of one group (every topic it has
/// offsets in, as KEDA does without `topic`). Updates `previous` the way KEDA
/// updates `previousOffsets`, once per call: KEDA's own memory moves on every
/// query (operator loop and metrics adapter), so over time it sees the offsets
/// of whichever query came last; lagwatch evaluates once per poll.
pub fn keda_kafka(
    parts: &[PartitionInput],
    o: &KedaOptions,
    previous: &mut PreviousOffsets,
) -> KafkaLag {
    let mut total = 0_i64;
    let mut with_persistent = 0_i64;
    let mut with_lag = 0_i64;
    for p in parts {
        let id = p.partition.unwrap_or(0);
        let prev = previous.0.get(&(p.topic.clone(), id)).copied();
        let (lag, lag_p, remember) = lag_for_partition(p.committed, p.head, prev, o);
        if let Some(c) = remember {
            previous.0.insert((p.topic.clone(), id), c);
        }
        total = total.saturating_add(lag);
        with_persistent = with_persistent.saturating_add(lag_p);
        if lag > 0 {
            with_lag += 1;
        }
    }
    let partitions = i64::try_from(parts.len()).unwrap_or(i64::MAX);
    let t = o.lag_threshold.max(1);
    let mut metric = total;
    let mut capped = false;
    if !o.allow_idle_consumers
        || o.limit_to_partitions_with_lag
        || o.ensure_even_distribution_of_partitions
    {
        let mut upper = partitions;
        if o.ensure_even_distribution_of_partitions {
            metric = next_even_factor(total, partitions, t).saturating_mul(t);
        }
        if o.limit_to_partitions_with_lag {
            upper = with_lag;
        }
        // Integer division, as in Go: the cap only applies from (upper + 1) *
        // threshold on, so a lag just above upper * threshold is left alone and
        // the HPA's ceil() then asks for upper + 1 replicas (reproduced, not fixed).
        if metric / t > upper {
            metric = upper.saturating_mul(t);
            capped = true;
        }
    }
    KafkaLag {
        total_lag: total,
        total_lag_with_persistent: with_persistent,
        partitions,
        partitions_with_lag: with_lag,
        metric,
        capped,
        active: with_persistent > o.activation_lag_threshold,
    }
}

/// `FindFactors`: the divisors of `n` in ascending order (none for n < 1).
pub fn find_factors(n: i64) -> Vec<i64> {
    if n < 1 {
        return Vec::new();
    }
    let mut f = Vec::new();
    let mut i = 1_i64;
    while i.saturating_mul(i) <= n {
        if n % i == 0 {
            f.push(i);
            if i != n / i {
                f.push(n / i);
            }
        }
        i += 1;
    }
    f.sort_unstable();
    f
}

/// `getNextFactorThatBalancesConsumersToTopicPartitions`: the smallest divisor of
/// the partition count whose replicas cover the lag, else the partition count.
pub fn next_even_factor(total_lag: i64, partitions: i64, threshold: i64) -> i64 {
    find_factors(partitions)
        .into_iter()
        .find(|f| f.saturating_mul(threshold) >= total_lag)
        .unwrap_or(partitions)
}

/// KEDA's NATS JetStream scaler reading of one consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JetstreamLag {
    /// num_pending + num_ack_pending; the stream's last sequence when the
    /// consumer was not found (`getMaxMsgLag`). No partition cap exists here.
    pub metric: i64,
    /// `totalLag > activationLagThreshold`.
    pub active: bool,
}

/// `getMaxMsgLag` + activity. `consumer` None: KEDA did not find the consumer in
/// the stream and falls back to the stream's last sequence.
pub fn keda_jetstream(
    consumer: Option<&JetstreamParts>,
    stream_last_seq: i64,
    o: &KedaOptions,
) -> JetstreamLag {
    let metric = match consumer {
        Some(c) => {
            i64::try_from(c.num_pending.saturating_add(c.num_ack_pending)).unwrap_or(i64::MAX)
        }
        None => stream_last_seq,
    };
    JetstreamLag {
        metric,
        active: metric > o.activation_lag_threshold,
    }
}

/// What KEDA + the HPA do with one metric reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HpaOutcome {
    pub replicas: u32,
    /// `ceil(metric / lagThreshold)` before tolerance and bounds (0 when negative).
    pub desired: u32,
    /// The HPA kept the current count: the change was within its tolerance.
    pub held_by_tolerance: bool,
    /// Inactive with `minReplicaCount` 0: KEDA scales the target to zero.
    pub scaled_to_zero: bool,
    /// `maxReplicaCount` cut the count.
    pub max_bound: bool,
}

/// The replica count KEDA and the HPA settle on for one reading, given the
/// current count (None or 0: the HPA's tolerance cannot apply; KEDA first
/// scales a zero target to `max(minReplicaCount, 1)` and the HPA goes on from
/// there, so the result is `ceil(metric / lagThreshold)` within the bounds).
///
/// Not modelled: the HPA's scale-down stabilization window (300 s by default)
/// and scaling policies, and KEDA's `cooldownPeriod` before scaling to zero:
/// they delay the count, they do not change it.
pub fn hpa_replicas(
    metric: i64,
    active: bool,
    current: Option<u32>,
    o: &KedaOptions,
) -> HpaOutcome {
    let t = o.lag_threshold.max(1);
    let desired_f = (metric as f64 / t as f64).ceil();
    let desired = if desired_f <= 0.0 {
        0
    } else {
        // A float beyond u32 is more replicas than any bound; saturate.
        u32::try_from(desired_f as u64).unwrap_or(u32::MAX)
    };
    if !active && o.min_replica_count == 0 {
        return HpaOutcome {
            replicas: 0,
            desired,
            held_by_tolerance: false,
            scaled_to_zero: true,
            max_bound: false,
        };
    }
    let mut held = false;
    let mut n = desired;
    if let Some(c) = current.filter(|&c| c > 0) {
        let ratio = metric as f64 / (t as f64 * f64::from(c));
        if (1.0 - ratio).abs() <= o.hpa_tolerance {
            n = c;
            held = true;
        }
    }
    // The HPA's floor is minReplicaCount, but at least 1 (an HPA never scales to
    // zero; KEDA does that itself when inactive).
    let min = o.min_replica_count.max(1);
    let max = o.max_replica_count.max(min);
    let max_bound = n > max;
    HpaOutcome {
        replicas: n.clamp(min, max),
        desired,
        held_by_tolerance: held,
        scaled_to_zero: false,
        max_bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(topic: &str, partition: i32, committed: Option<i64>, head: i64) -> PartitionInput {
        PartitionInput {
            topic: Arc::from(topic),
            partition: Some(partition),
            lag: 0,
            committed,
            head,
            consume_rate: None,
            produce_rate: None,
            jetstream: None,
        }
    }

    fn opts(f: impl FnOnce(&mut KedaOptions)) -> KedaOptions {
        let mut o = KedaOptions::default();
        f(&mut o);
        o
    }

    /// Three partitions of one topic with the given (committed, head).
    fn three(offsets: [(Option<i64>, i64); 3]) -> Vec<PartitionInput> {
        offsets
            .iter()
            .enumerate()
            .map(|(i, &(c, h))| part("t", i32::try_from(i).unwrap(), c, h))
            .collect()
    }

    #[test]
    fn keda_kafka_parity_table_matches_kedas_scaler_and_e2e_tests() {
        // (case, partitions, options, metric, active, replicas from 0 current)
        // Sources: kafka_scaler.go getLagForPartition/getTotalLag (code), and
        // tests/scalers/kafka/kafka_test.go (e2e, lagThreshold 1, topics of 3
        // partitions unless said otherwise).
        type Case = (u32, Vec<PartitionInput>, KedaOptions, i64, bool, u32);
        let e2e = |f: fn(&mut KedaOptions)| {
            opts(|o| {
                o.lag_threshold = 1;
                o.activation_lag_threshold = 1;
                f(o);
            })
        };
        let ten: Vec<PartitionInput> = (0..10)
            .map(|i| part("even", i, Some(0), i64::from(u8::from(i < 5))))
            .collect();
        let ten_lag8: Vec<PartitionInput> = (0..10)
            .map(|i| part("even", i, Some(0), i64::from(u8::from(i < 8))))
            .collect();
        let cases: Vec<Case> = vec![
            // case 1: e2e testEarliestPolicy: no commits, earliest, empty topic:
            // lag = latest offset = 0 everywhere: inactive, stays at 0.
            (
                1,
                three([(None, 0), (None, 0), (None, 0)]),
                e2e(|o| o.offset_reset_policy = OffsetResetPolicy::Earliest),
                0,
                false,
                0,
            ),
            // case 2: same, one message: lag 1 is not > activationLagThreshold 1.
            (
                2,
                three([(None, 1), (None, 0), (None, 0)]),
                e2e(|o| o.offset_reset_policy = OffsetResetPolicy::Earliest),
                1,
                false,
                0,
            ),
            // case 3: two messages: lag 2 > 1: active, ceil(2 / 1) = 2 replicas.
            (
                3,
                three([(None, 1), (None, 1), (None, 0)]),
                e2e(|o| o.offset_reset_policy = OffsetResetPolicy::Earliest),
                2,
                true,
                2,
            ),
            // case 4: seven messages on 3 partitions: 7 / 1 > 3, capped to 3 * 1:
            // "Scale application beyond partition max" ends at 3 replicas.
            (
                4,
                three([(None, 3), (None, 2), (None, 2)]),
                e2e(|o| o.offset_reset_policy = OffsetResetPolicy::Earliest),
                3,
                true,
                3,
            ),
            // case 5: e2e testLatestPolicy after commits: 2 new messages -> 2.
            (
                5,
                three([(Some(10), 11), (Some(4), 5), (Some(7), 7)]),
                e2e(|_| {}),
                2,
                true,
                2,
            ),
            // case 6: e2e testOneOnInvalidOffsetWithLatestOffsetResetPolicy: one
            // partition, no commit, latest: lag 1 (not the head), activation
            // default 0 -> active, 1 replica.
            (
                6,
                vec![part("one", 0, None, 500)],
                opts(|o| o.lag_threshold = 1),
                1,
                true,
                1,
            ),
            // case 7: e2e testZeroOnInvalidOffsetWithLatestOffsetResetPolicy:
            // scaleToZeroOnInvalidOffset -> lag 0 -> stays at 0.
            (
                7,
                vec![part("zero", 0, None, 500)],
                opts(|o| {
                    o.lag_threshold = 1;
                    o.scale_to_zero_on_invalid_offset = true;
                }),
                0,
                false,
                0,
            ),
            // case 8: e2e testZeroOnInvalidOffsetWithEarliestOffsetResetPolicy:
            // earliest + scaleToZeroOnInvalidOffset -> 0, not the head.
            (
                8,
                vec![part("zero", 0, None, 500)],
                opts(|o| {
                    o.lag_threshold = 1;
                    o.offset_reset_policy = OffsetResetPolicy::Earliest;
                    o.scale_to_zero_on_invalid_offset = true;
                }),
                0,
                false,
                0,
            ),
            // case 9: e2e testOneOnInvalidOffsetWithEarliestOffsetResetPolicy: one
            // message published, no commit, earliest: lag = latest offset = 1.
            (
                9,
                vec![part("one", 0, None, 1)],
                opts(|o| {
                    o.lag_threshold = 1;
                    o.offset_reset_policy = OffsetResetPolicy::Earliest;
                }),
                1,
                true,
                1,
            ),
            // case 10: e2e testScalingOnlyPartitionsWithLag: 6 messages on one
            // partition, limitToPartitionsWithLag: capped at 1 partition with lag.
            (
                10,
                three([(Some(0), 6), (Some(0), 0), (Some(0), 0)]),
                e2e(|o| {
                    o.offset_reset_policy = OffsetResetPolicy::Earliest;
                    o.limit_to_partitions_with_lag = true;
                }),
                1,
                true,
                1,
            ),
            // case 11: then 5 more on a second partition: capped at 2.
            (
                11,
                three([(Some(0), 6), (Some(0), 5), (Some(0), 0)]),
                e2e(|o| {
                    o.offset_reset_policy = OffsetResetPolicy::Earliest;
                    o.limit_to_partitions_with_lag = true;
                }),
                2,
                true,
                2,
            ),
            // case 12: e2e testScalingEnsureEvenDistributionOfPartitions: 10
            // partitions, lag 5 -> factor 5 of 10 -> 5 replicas.
            (
                12,
                ten,
                e2e(|o| o.ensure_even_distribution_of_partitions = true),
                5,
                true,
                5,
            ),
            // case 13: lag 8 -> next factor of 10 covering 8 is 10 -> 10 replicas.
            (
                13,
                ten_lag8,
                e2e(|o| o.ensure_even_distribution_of_partitions = true),
                10,
                true,
                10,
            ),
            // case 14: e2e testMultiTopic (no topic: every topic of the group):
            // one message in each of two topics -> total 2 -> 2 replicas.
            (
                14,
                vec![
                    part("t1", 0, Some(3), 4),
                    part("t1", 1, Some(3), 3),
                    part("t2", 0, Some(9), 10),
                ],
                opts(|o| o.lag_threshold = 1),
                2,
                true,
                2,
            ),
            // case 15: code, defaults (threshold 10): 4 partitions, lag 45:
            // 45 / 10 = 4 (integer division) is not > 4, so no cap, and the HPA
            // asks ceil(4.5) = 5 replicas for 4 partitions. KEDA's quirk, kept.
            (
                15,
                vec![
                    part("t", 0, Some(0), 45),
                    part("t", 1, Some(0), 0),
                    part("t", 2, Some(0), 0),
                    part("t", 3, Some(0), 0),
                ],
                KedaOptions::default(),
                45,
                true,
                5,
            ),
            // case 16: code: lag 50 on 4 partitions: 5 > 4 -> metric 40 -> 4.
            (
                16,
                vec![
                    part("t", 0, Some(0), 50),
                    part("t", 1, Some(0), 0),
                    part("t", 2, Some(0), 0),
                    part("t", 3, Some(0), 0),
                ],
                KedaOptions::default(),
                40,
                true,
                4,
            ),
            // case 17: allowIdleConsumers: no cap, 500 / 10 = 50 replicas on 4
            // partitions (docs: "the number of replicas can exceed partitions").
            (
                17,
                vec![
                    part("t", 0, Some(0), 500),
                    part("t", 1, Some(0), 0),
                    part("t", 2, Some(0), 0),
                    part("t", 3, Some(0), 0),
                ],
                opts(|o| o.allow_idle_consumers = true),
                500,
                true,
                50,
            ),
            // case 18: ... but maxReplicaCount (default 100) still bounds the HPA.
            (
                18,
                vec![part("t", 0, Some(0), 5000)],
                opts(|o| o.allow_idle_consumers = true),
                5000,
                true,
                100,
            ),
            // case 19: code: committed above head (KEDA does not clamp): -5 + 3
            // = -2, inactive, 0 replicas.
            (
                19,
                vec![part("t", 0, Some(10), 5), part("t", 1, Some(0), 3)],
                KedaOptions::default(),
                -2,
                false,
                0,
            ),
            // case 20: activationLagThreshold with minReplicaCount 1: inactive
            // does not mean zero; the HPA floor of 1 applies.
            (
                20,
                vec![part("t", 0, Some(0), 3)],
                opts(|o| {
                    o.activation_lag_threshold = 5;
                    o.min_replica_count = 1;
                }),
                3,
                false,
                1,
            ),
        ];
        for (case, parts, o, metric, active, replicas) in cases {
            assert!(o.problems().is_empty(), "case {case}: {:?}", o.problems());
            let mut prev = PreviousOffsets::default();
            let k = keda_kafka(&parts, &o, &mut prev);
            assert_eq!(k.metric, metric, "case {case} metric {k:?}");
            assert_eq!(k.active, active, "case {case} active {k:?}");
            let h = hpa_replicas(k.metric, k.active, Some(0), &o);
            assert_eq!(h.replicas, replicas, "case {case} replicas {h:?}");
        }
    }

    #[test]
    fn exclude_persistent_lag_counts_a_stuck_partition_for_activation_only() {
        // e2e testPersistentLag (excludePersistentLag, a group that stopped
        // committing): the first evaluation counts the lag (no previous offset),
        // later ones see the same offset and count 0, but the scaler stays active
        // (lagWithPersistent), so the target stays at its minimum instead of
        // scaling out. Threshold 10 here so the partition cap stays out of it.
        let o = opts(|o| o.exclude_persistent_lag = true);
        let mut prev = PreviousOffsets::default();
        // (case, partition 0 (committed, head), partition 1 (committed, head),
        //  metric, with persistent, active)
        let steps = [
            // case 1: first sight: counted, remembered.
            (1, (Some(1), 6), (Some(0), 0), 5, 5, true),
            // case 2: same committed offset, more messages: excluded.
            (2, (Some(1), 9), (Some(0), 0), 0, 8, true),
            // case 3: partition 1 moves (first sight was 0, now 4 of 7): counted;
            // partition 0 still stuck: excluded.
            (3, (Some(1), 9), (Some(4), 7), 3, 11, true),
            // case 4: partition 0 finally moves: counted again.
            (4, (Some(5), 9), (Some(4), 7), 4, 7, true),
        ];
        for (case, (c0, h0), (c1, h1), metric, persistent, active) in steps {
            let parts = vec![part("t", 0, c0, h0), part("t", 1, c1, h1)];
            let k = keda_kafka(&parts, &o, &mut prev);
            assert_eq!(k.metric, metric, "case {case} {k:?}");
            assert_eq!(k.total_lag_with_persistent, persistent, "case {case}");
            assert_eq!(k.active, active, "case {case}");
        }
        assert_eq!(prev.get("t", 0), Some(5));
        assert_eq!(prev.get("t", 1), Some(4));
    }

    #[test]
    fn a_partition_without_a_commit_never_enters_the_persistent_lag_memory() {
        // getLagForPartition returns before the excludePersistentLag block on -1.
        let o = opts(|o| o.exclude_persistent_lag = true);
        let mut prev = PreviousOffsets::default();
        let k = keda_kafka(&[part("t", 0, None, 100)], &o, &mut prev);
        assert_eq!((k.metric, k.active), (1, true));
        assert!(prev.is_empty());
    }

    #[test]
    fn find_factors_lists_divisors_in_ascending_order() {
        // (case, n, factors): kafka_scaler.go FindFactors.
        let cases: [(u32, i64, &[i64]); 5] = [
            (1, 10, &[1, 2, 5, 10]),
            (2, 1, &[1]),
            (3, 12, &[1, 2, 3, 4, 6, 12]),
            (4, 0, &[]),
            (5, 49, &[1, 7, 49]),
        ];
        for (case, n, want) in cases {
            assert_eq!(find_factors(n), want, "case {case}");
        }
        // No divisor of 0 partitions: the partition count (0) is returned.
        assert_eq!(next_even_factor(5, 0, 1), 0);
    }

    #[test]
    fn keda_jetstream_parity_table_matches_kedas_scaler_tests() {
        // nats_jetstream_scaler_test.go testNATSJetStreamMockResponses use
        // activationLagThreshold 10.
        let o = opts(|o| o.activation_lag_threshold = 10);
        let js = |pending: u64, ack: u64| JetstreamParts {
            num_pending: pending,
            num_ack_pending: ack,
            ..JetstreamParts::default()
        };
        // (case, consumer, stream last seq, metric, active, replicas from 0)
        let cases: [(u32, Option<JetstreamParts>, i64, i64, bool, u32); 5] = [
            // case 1: "All Good - no messages waiting (not active)".
            (1, Some(js(0, 0)), 0, 0, false, 0),
            // case 2: "All Good - messages waiting (active)": 100 pending,
            // default lagThreshold 10 -> 10 replicas (no partition cap).
            (2, Some(js(100, 0)), 0, 100, true, 10),
            // case 3: "Not Active - Bad consumer name uses stream last sequence":
            // consumer not found, last_seq 1 -> 1 is not > 10.
            (3, None, 1, 1, false, 0),
            // case 4: code getMaxMsgLag: ack pending counts too: 7 + 8 = 15 ->
            // ceil(1.5) = 2.
            (4, Some(js(7, 8)), 0, 15, true, 2),
            // case 5: exactly the activation threshold is inactive (strict >).
            (5, Some(js(10, 0)), 0, 10, false, 0),
        ];
        for (case, consumer, last, metric, active, replicas) in cases {
            let j = keda_jetstream(consumer.as_ref(), last, &o);
            assert_eq!((j.metric, j.active), (metric, active), "case {case}");
            let h = hpa_replicas(j.metric, j.active, None, &o);
            assert_eq!(h.replicas, replicas, "case {case}");
        }
    }

    #[test]
    fn the_hpa_keeps_the_current_count_within_its_tolerance() {
        let o = KedaOptions::default();
        // (case, metric, current, replicas, held): AverageValue 10 per replica.
        let cases = [
            // case 1: 4 replicas, lag 42: ratio 1.05 within 0.1 -> stays 4.
            (1, 42, Some(4), 4, true),
            // case 2: lag 45: ratio 1.125 -> ceil(4.5) = 5.
            (2, 45, Some(4), 5, false),
            // case 3: lag 36: ratio 0.9, |1 - 0.9| <= 0.1 (float: 0.0999..) -> 4.
            (3, 36, Some(4), 4, true),
            // case 4: lag 30: ratio 0.75 -> 3.
            (4, 30, Some(4), 3, false),
            // case 5: unknown current: no tolerance, ceil(4.2) = 5.
            (5, 42, None, 5, false),
            // case 6: lag 0 while active (activation 0 needs > 0, so inactive):
            // scaled to zero.
            (6, 0, Some(4), 0, false),
        ];
        for (case, metric, current, replicas, held) in cases {
            let h = hpa_replicas(metric, metric > o.activation_lag_threshold, current, &o);
            assert_eq!(
                (h.replicas, h.held_by_tolerance),
                (replicas, held),
                "case {case} {h:?}"
            );
        }
    }

    #[test]
    fn keda_refuses_conflicting_options_and_so_does_validation() {
        let o = opts(|o| {
            o.allow_idle_consumers = true;
            o.limit_to_partitions_with_lag = true;
            o.lag_threshold = 0;
        });
        let keys: Vec<&str> = o.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(keys, ["lag_threshold", "limit_to_partitions_with_lag"]);
    }
}

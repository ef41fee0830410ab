//! Table tests of [`recommend`] in both modes: every reason, the sentences, and
//! the memory across polls (capacity learning, hysteresis after a manual scale).

use std::collections::BTreeSet;

use super::*;
use crate::analysis::TimeLag;
use crate::model::{SourceId, Status};

const MIN: i64 = 60_000;

fn key() -> GroupKey {
    GroupKey {
        source: SourceId::new("k"),
        scope: None,
        group: Arc::from("g"),
    }
}

/// `n` Kafka partitions sharing `lag` and `consume` (msgs/s) evenly, the
/// remainder of the lag on the first ones.
fn kafka(n: u32, lag: u64, consume: f64) -> Vec<PartitionInput> {
    (0..n)
        .map(|i| {
            let l = lag / u64::from(n) + u64::from(u64::from(i) < lag % u64::from(n));
            PartitionInput {
                topic: Arc::from("orders"),
                partition: Some(i32::try_from(i).unwrap()),
                lag: l,
                committed: Some(1_000),
                head: 1_000 + i64::try_from(l).unwrap(),
                consume_rate: Some(consume / f64::from(n)),
                produce_rate: None,
                jetstream: None,
            }
        })
        .collect()
}

/// `n` Kafka partitions where partition 0 holds all `lag` and receives
/// `produce` msgs/s (a hot key); the others are caught up and idle.
fn hot_kafka(n: u32, lag: u64, produce: f64, consume: f64) -> Vec<PartitionInput> {
    let mut parts = kafka(n, 0, 0.0);
    parts[0].lag = lag;
    parts[0].head += i64::try_from(lag).unwrap();
    parts[0].produce_rate = Some(produce);
    parts[0].consume_rate = Some(consume);
    parts
}

/// One JetStream consumer: (num_pending, num_ack_pending, max_ack_pending,
/// push, deliver group).
fn js(
    pending: u64,
    ack: u64,
    max_ack: i64,
    push: bool,
    group: Option<&str>,
) -> Vec<PartitionInput> {
    vec![PartitionInput {
        topic: Arc::from("EVENTS"),
        partition: None,
        lag: pending + ack,
        committed: Some(5_001),
        head: 5_001 + i64::try_from(pending + ack).unwrap(),
        consume_rate: Some(10.0),
        produce_rate: None,
        jetstream: Some(JetstreamParts {
            num_pending: pending,
            num_ack_pending: ack,
            max_ack_pending: max_ack,
            push,
            deliver_group: group.map(str::to_string),
            push_bound: push,
            ..JetstreamParts::default()
        }),
    }]
}

fn analysis(
    parts: &[PartitionInput],
    produce: Option<f64>,
    growth: Option<f64>,
    time_lag: f64,
) -> GroupAnalysis {
    let lag_sum: u64 = parts.iter().map(|p| p.lag).sum();
    GroupAnalysis {
        partitions: parts.len(),
        lag_sum,
        lag_max: parts.iter().map(|p| p.lag).max().unwrap_or(0),
        time_lag_max: if lag_sum == 0 {
            TimeLag::CAUGHT_UP
        } else {
            TimeLag::interpolated(time_lag, time_lag - 15.0, time_lag + 15.0)
        },
        status: Status::Ok,
        err: None,
        status_complete: true,
        produce_rate: produce,
        consume_rate: parts.iter().map(|p| p.consume_rate).sum(),
        lag_growth: growth,
        eta_seconds: None,
        lost_messages: 0,
        headroom: crate::analysis::Projection::Never,
        projected_loss: crate::analysis::Projection::Never,
        committed_beyond_end: 0,
        skipped: 0,
    }
}

fn settings(yaml: &str) -> Resolved {
    crate::config::section_for_tests("recommend", yaml)
        .unwrap_or_else(|e| panic!("{yaml}: {e}"))
        .recommend
        .for_group(&key())
        .clone()
}

struct Case {
    n: u32,
    system: System,
    parts: Vec<PartitionInput>,
    members: Option<u32>,
    produce: Option<f64>,
    growth: Option<f64>,
    /// Seconds of time lag when lag > 0.
    time_lag: f64,
    settings: &'static str,
    recommended: Option<u32>,
    reason: Reason,
    /// The message contains this.
    says: &'static str,
}

fn run(c: &Case, state: &mut RecommendState, now: Millis) -> Recommendation {
    let g = analysis(&c.parts, c.produce, c.growth, c.time_lag);
    let k = key();
    // As the engine does: the hot partitions from the partitions' lags.
    let lags: Vec<_> = c
        .parts
        .iter()
        .map(|p| (p.topic.clone(), p.partition, p.lag))
        .collect();
    let hot = crate::analysis::diagnosis::hot_partitions(&lags, 0.8);
    let input = Input {
        key: &k,
        system: c.system,
        partitions: &c.parts,
        members: c.members,
        group: &g,
        hot: hot.as_ref(),
    };
    recommend(&input, state, now, &settings(c.settings))
}

fn cases() -> Vec<Case> {
    use System::{Jetstream, Kafka};
    let cap1000 = "capacity_per_replica: 1000";
    vec![
        // case 1: no rates yet (too few samples): no number, never a guess.
        Case {
            n: 1,
            system: Kafka,
            parts: kafka(4, 0, 0.0),
            members: Some(2),
            produce: None,
            growth: None,
            time_lag: 0.0,
            settings: "{}",
            recommended: None,
            reason: Reason::NotEnoughData,
            says: "rates need more samples",
        },
        // case 2: rates known, but the group was never behind, so its
        // per-consumer capacity is unknown: its consume rate only mirrors the
        // produce rate.
        Case {
            n: 2,
            system: Kafka,
            parts: kafka(4, 100, 50.0),
            members: Some(2),
            produce: Some(50.0),
            growth: Some(0.0),
            time_lag: 2.0,
            settings: "{}",
            recommended: None,
            reason: Reason::NotEnoughData,
            says: "capacity is learned while every partition is behind",
        },
        // case 3: a JetStream pull consumer: how many pull is unknown and not
        // configured: say what to set.
        Case {
            n: 3,
            system: Jetstream,
            parts: js(10, 0, 1000, false, None),
            members: None,
            produce: Some(50.0),
            growth: Some(0.0),
            time_lag: 1.0,
            settings: "{}",
            recommended: None,
            reason: Reason::NotEnoughData,
            says: "set recommend.replicas",
        },
        // case 4: nothing in, nothing behind: min_replicas, no capacity needed.
        Case {
            n: 4,
            system: Kafka,
            parts: kafka(4, 0, 0.0),
            members: Some(1),
            produce: Some(0.0),
            growth: Some(0.0),
            time_lag: 0.0,
            settings: "{}",
            recommended: Some(1),
            reason: Reason::Idle,
            says: "idle: nothing produced and nothing behind; 1 consumer is the floor",
        },
        // case 5: 3,000 msg/s at 1,000 per consumer + 20 %: ceil(3.6) = 4, as run.
        Case {
            n: 5,
            system: Kafka,
            parts: kafka(8, 0, 3000.0),
            members: Some(4),
            produce: Some(3000.0),
            growth: Some(0.0),
            time_lag: 0.0,
            settings: cap1000,
            recommended: Some(4),
            reason: Reason::KeepsUp,
            says: "4 consumers are right to keep up with 3,000 msg/s at 1,000 msg/s per \
                   consumer (+20% headroom)",
        },
        // case 6: 5,000 msg/s: ceil(5 x 1.2) = 6 (not 7: float care) > 4 running,
        // and the produce rate alone needs them.
        Case {
            n: 6,
            system: Kafka,
            parts: kafka(8, 0, 4000.0),
            members: Some(4),
            produce: Some(5000.0),
            growth: Some(1000.0),
            time_lag: 0.0,
            settings: cap1000,
            recommended: Some(6),
            reason: Reason::ScaleOutToKeepUp,
            says: "needs 6 consumers to keep up with 5,000 msg/s at 1,000 msg/s per consumer \
                   (+20% headroom); 4 running: add 2",
        },
        // case 7: 3 keep up with 2,000 msg/s (ceil 2.4), but the 1.2 M backlog
        // within 10 m adds 2,000 msg/s: ceil(4,000 / 1,000 x 1.2) = 5.
        Case {
            n: 7,
            system: Kafka,
            parts: kafka(8, 1_200_000, 2000.0),
            members: Some(3),
            produce: Some(2000.0),
            growth: Some(0.0),
            time_lag: 600.0,
            settings: cap1000,
            recommended: Some(5),
            reason: Reason::ScaleOutToDrain,
            says: "needs 5 consumers to keep up with 2,000 msg/s and drain 1,200,000 messages \
                   within 10m at 1,000 msg/s per consumer (+20% headroom); 3 running: add 2",
        },
        // case 8: (2,800 + 480,000 / 600) / 800 x 1.2 = 5.4 -> 6 > 4 partitions:
        // capped at 4, add 2 partitions.
        Case {
            n: 8,
            system: Kafka,
            parts: kafka(4, 480_000, 2800.0),
            members: Some(4),
            produce: Some(2800.0),
            growth: Some(0.0),
            time_lag: 170.0,
            settings: "capacity_per_replica: 800",
            recommended: Some(4),
            reason: Reason::PartitionBound,
            says: "needs 6 consumers to keep up with 2,800 msg/s and drain 480,000 messages \
                   within 10m at 800 msg/s per consumer (+20% headroom); the topic has 4 \
                   partitions: add at least 2 partitions",
        },
        // case 9: case 7 with max_replicas 4: capped by config, not partitions.
        Case {
            n: 9,
            system: Kafka,
            parts: kafka(8, 1_200_000, 2000.0),
            members: Some(3),
            produce: Some(2000.0),
            growth: Some(0.0),
            time_lag: 600.0,
            settings: "capacity_per_replica: 1000\nmax_replicas: 4",
            recommended: Some(4),
            reason: Reason::MaxReplicasBound,
            says: "needs 5 consumers to keep up with 2,000 msg/s and drain 1,200,000 messages \
                   within 10m at 1,000 msg/s per consumer (+20% headroom); capped at \
                   max_replicas 4",
        },
        // case 10: 6 running, 2 needed (ceil 1.2), caught up and steady, and
        // scale_in_after 0s: scale in now.
        Case {
            n: 10,
            system: Kafka,
            parts: kafka(8, 0, 1000.0),
            members: Some(6),
            produce: Some(1000.0),
            growth: Some(0.0),
            time_lag: 0.0,
            settings: "capacity_per_replica: 1000\nscale_in_after: 0s",
            recommended: Some(2),
            reason: Reason::ScaleInSafe,
            says: "2 consumers are enough to keep up with 1,000 msg/s at 1,000 msg/s per \
                   consumer (+20% headroom), and lag has stayed near zero for 0s; 6 running: \
                   remove 4",
        },
        // case 11: the same with the default 10 m: held at 6, and saying why.
        Case {
            n: 11,
            system: Kafka,
            parts: kafka(8, 0, 1000.0),
            members: Some(6),
            produce: Some(1000.0),
            growth: Some(0.0),
            time_lag: 0.0,
            settings: cap1000,
            recommended: Some(6),
            reason: Reason::KeepsUp,
            says: "6 consumers are right to keep up with 1,000 msg/s at 1,000 msg/s per \
                   consumer (+20% headroom); 2 would do once lag has stayed near zero for \
                   10m (0s so far)",
        },
        // case 12: pull consumer with 1000 of 1000 acks outstanding and 5,000
        // waiting: raise max_ack_pending; the advice stays at the 3 running.
        Case {
            n: 12,
            system: Jetstream,
            parts: js(5000, 1000, 1000, false, None),
            members: None,
            produce: Some(100.0),
            growth: Some(5.0),
            time_lag: 60.0,
            settings: "replicas: 3",
            recommended: Some(3),
            reason: Reason::AckPendingLimited,
            says: "num_ack_pending 1,000 has reached max_ack_pending 1,000 with 5,000 messages \
                   waiting: more consumers will not help; raise max_ack_pending",
        },
        // case 13: push consumer without deliver group needing ceil((300 + 50)
        // / 100 x 1.2) = 5: it cannot have more than one subscriber.
        Case {
            n: 13,
            system: Jetstream,
            parts: js(30_000, 0, 1000, true, None),
            members: Some(1),
            produce: Some(300.0),
            growth: Some(200.0),
            time_lag: 100.0,
            settings: "capacity_per_replica: 100",
            recommended: Some(1),
            reason: Reason::PushWithoutDeliverGroup,
            says: "needs 5 consumers to keep up with 300 msg/s and drain 30,000 messages within \
                   10m at 100 msg/s per consumer (+20% headroom), but a push consumer without a \
                   deliver group delivers to one subscriber",
        },
        // case 14: the same consumer when one is enough: a plain keeps_up.
        Case {
            n: 14,
            system: Jetstream,
            parts: js(0, 0, 1000, true, None),
            members: Some(1),
            produce: Some(50.0),
            growth: Some(0.0),
            time_lag: 0.0,
            settings: "capacity_per_replica: 100",
            recommended: Some(1),
            reason: Reason::KeepsUp,
            says: "1 consumer is right to keep up with 50 msg/s",
        },
        // case 15: pull consumer, replicas from a group override: no partition
        // cap on JetStream: (500 + 1,000) / 100 x 1.2 = 18.
        Case {
            n: 15,
            system: Jetstream,
            parts: js(599_990, 10, 1000, false, None),
            members: None,
            produce: Some(500.0),
            growth: Some(400.0),
            time_lag: 900.0,
            settings: "capacity_per_replica: 100\ngroups: [{pattern: '^g$', replicas: 2}]",
            recommended: Some(18),
            reason: Reason::ScaleOutToKeepUp,
            says: "needs 18 consumers to keep up with 500 msg/s and drain 600,000 messages \
                   within 10m at 100 msg/s per consumer (+20% headroom); 2 running: add 16",
        },
        // case 16: KEDA mode, 4 partitions, lag 25: ceil(25 / 10) = 3.
        Case {
            n: 16,
            system: Kafka,
            parts: kafka(4, 25, 1.0),
            members: None,
            produce: None,
            growth: None,
            time_lag: 1.0,
            settings: "mode: keda",
            recommended: Some(3),
            reason: Reason::KedaLag,
            says: "KEDA: ceil(25 / lagThreshold 10) = 3",
        },
        // case 17: KEDA mode, lag 500 on 4 partitions: KEDA's partition cap.
        Case {
            n: 17,
            system: Kafka,
            parts: kafka(4, 500, 1.0),
            members: None,
            produce: None,
            growth: None,
            time_lag: 1.0,
            settings: "mode: keda",
            recommended: Some(4),
            reason: Reason::PartitionBound,
            says: "KEDA: lag 500 / lagThreshold 10 would ask 50; capped at 4 partitions: 4 \
                   consumers",
        },
        // case 18: KEDA mode, caught up: inactive, minReplicaCount 0: zero.
        Case {
            n: 18,
            system: Kafka,
            parts: kafka(4, 0, 1.0),
            members: Some(2),
            produce: None,
            growth: None,
            time_lag: 0.0,
            settings: "mode: keda",
            recommended: Some(0),
            reason: Reason::KedaInactive,
            says: "inactive, scaled to 0",
        },
        // case 19: KEDA mode, allowIdleConsumers, lag 5,000: maxReplicaCount 100.
        Case {
            n: 19,
            system: Kafka,
            parts: kafka(4, 5000, 1.0),
            members: None,
            produce: None,
            growth: None,
            time_lag: 1.0,
            settings: "mode: keda\nkeda: {allow_idle_consumers: true}",
            recommended: Some(100),
            reason: Reason::MaxReplicasBound,
            says: "capped at maxReplicaCount 100",
        },
        // case 20: KEDA mode, JetStream: 95 pending + 10 ack pending = 105 ->
        // ceil(10.5) = 11, no partition cap.
        Case {
            n: 20,
            system: Jetstream,
            parts: js(95, 10, 1000, false, None),
            members: None,
            produce: None,
            growth: None,
            time_lag: 1.0,
            settings: "mode: keda",
            recommended: Some(11),
            reason: Reason::KedaLag,
            says: "KEDA: ceil(105 / lagThreshold 10) = 11",
        },
        // case 21: KEDA mode, 4 running, lag 42: the HPA's tolerance keeps 4.
        Case {
            n: 21,
            system: Kafka,
            parts: kafka(8, 42, 1.0),
            members: Some(4),
            produce: None,
            growth: None,
            time_lag: 1.0,
            settings: "mode: keda",
            recommended: Some(4),
            reason: Reason::KedaLag,
            says: "= 5; the HPA keeps 4: within its 10% tolerance",
        },
        // case 22: KEDA mode, lag 45 on 4 partitions: not capped (integer
        // division), 5 replicas, and the sentence says why.
        Case {
            n: 22,
            system: Kafka,
            parts: kafka(4, 45, 1.0),
            members: None,
            produce: None,
            growth: None,
            time_lag: 1.0,
            settings: "mode: keda",
            recommended: Some(5),
            reason: Reason::KedaLag,
            says: "= 5 for 4 partitions (KEDA's cap uses integer division)",
        },
        // case 23: all 120,000 lag and 2,000 msg/s on partition 0 of 8, one
        // consumer at 1,000 msg/s: the rates ask (2,000 + 200) / 1,000 x 1.2 =
        // 3, but a partition is read by one consumer: 0 for the cold ones + 1.
        Case {
            n: 23,
            system: Kafka,
            parts: hot_kafka(8, 120_000, 2000.0, 1000.0),
            members: Some(1),
            produce: Some(2000.0),
            growth: Some(1000.0),
            time_lag: 60.0,
            settings: cap1000,
            recommended: Some(1),
            reason: Reason::HotPartition,
            says: "partition 0 of 8 holds 100% of the lag, and a partition is read by one \
                   consumer at a time",
        },
    ]
}

#[test]
fn recommend_table_covers_both_modes_and_every_reason() {
    let mut seen = BTreeSet::new();
    for c in cases() {
        let mut state = RecommendState::default();
        let r = run(&c, &mut state, Millis(0));
        assert_eq!(r.recommended, c.recommended, "case {}: {r:?}", c.n);
        assert_eq!(r.reason, c.reason, "case {}: {r:?}", c.n);
        assert!(
            r.message.contains(c.says),
            "case {}: message {:?} lacks {:?}",
            c.n,
            r.message,
            c.says
        );
        assert_eq!(
            r.recommended.is_none(),
            r.reason == Reason::NotEnoughData,
            "case {}",
            c.n
        );
        seen.insert(r.reason);
    }
    let all: BTreeSet<Reason> = Reason::ALL.into_iter().collect();
    assert_eq!(seen, all, "a reason has no case");
}

#[test]
fn reason_labels_are_distinct_snake_case() {
    let labels: BTreeSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), Reason::ALL.len());
    assert!(labels
        .iter()
        .all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
}

#[test]
fn capacity_learned_while_behind_drives_the_recommendation() {
    // 4 partitions each 100,000 behind, 2 consumers at 250 msg/s per partition
    // (500 each), 1,200 msg/s coming in. Polls every 30 s.
    let mut state = RecommendState::default();
    let c = Case {
        n: 1,
        system: System::Kafka,
        parts: kafka(4, 400_000, 1000.0),
        members: Some(2),
        produce: Some(1200.0),
        growth: Some(200.0),
        time_lag: 400.0,
        settings: "{}",
        recommended: None,
        reason: Reason::NotEnoughData,
        says: "",
    };
    for i in 0..2 {
        let r = run(&c, &mut state, Millis(i * 30_000));
        // case 1: under a minute behind: no capacity, no number.
        assert_eq!(r.reason, Reason::NotEnoughData, "poll {i}");
    }
    for i in 2..10 {
        // case 1b (issue 20, item 12): after a minute behind, a first
        // estimate (1,000 / 2 = 500 per consumer) gives sized advice, and
        // says it is an estimate.
        let r = run(&c, &mut state, Millis(i * 30_000));
        assert_eq!(r.per_replica_capacity, Some(500.0), "poll {i}");
        assert!(r.capacity_estimated, "poll {i}");
        assert_eq!(
            (r.recommended, r.reason),
            (Some(4), Reason::PartitionBound),
            "poll {i}"
        );
        assert!(
            r.message.contains("an estimated 500 msg/s per consumer"),
            "{}",
            r.message
        );
    }
    // case 2: at 5 m: capacity 1,000 / 2 = 500; (1,200 + 400,000 / 600) / 500
    // x 1.2 = 4.48 -> 5 > 4 partitions.
    let r = run(&c, &mut state, Millis(10 * 30_000));
    assert_eq!(r.per_replica_capacity, Some(500.0));
    assert!(!r.capacity_estimated, "learned now");
    assert!(!r.message.contains("estimated"), "{}", r.message);
    assert_eq!((r.recommended, r.reason), (Some(4), Reason::PartitionBound));
    assert!(
        r.message.ends_with("add at least 1 partition"),
        "{}",
        r.message
    );
}

#[test]
fn a_manual_scale_up_is_taken_back_only_after_the_delay() {
    let mut state = RecommendState::default();
    let mut c = Case {
        n: 1,
        system: System::Kafka,
        parts: kafka(8, 0, 3000.0),
        members: Some(4),
        produce: Some(3000.0),
        growth: Some(0.0),
        time_lag: 0.0,
        settings: "capacity_per_replica: 1000",
        recommended: None,
        reason: Reason::KeepsUp,
        says: "",
    };
    // case 1: 4 running, 4 needed.
    let r = run(&c, &mut state, Millis(0));
    assert_eq!((r.recommended, r.reason), (Some(4), Reason::KeepsUp));
    // case 2: someone runs 8: the advice follows them up, and holds.
    c.members = Some(8);
    let r = run(&c, &mut state, Millis(MIN));
    assert_eq!((r.recommended, r.reason), (Some(8), Reason::KeepsUp));
    // case 3: 9 m later: still held.
    let r = run(&c, &mut state, Millis(10 * MIN));
    assert_eq!(r.recommended, Some(8));
    // case 4: 10 m of calm: back to 4, saying to remove 4.
    let r = run(&c, &mut state, Millis(11 * MIN));
    assert_eq!((r.recommended, r.reason), (Some(4), Reason::ScaleInSafe));
    assert!(r.message.ends_with("8 running: remove 4"), "{}", r.message);
    // case 5: still 8 running next poll: the advice does not bounce back.
    let r = run(&c, &mut state, Millis(11 * MIN + 30_000));
    assert_eq!((r.recommended, r.reason), (Some(4), Reason::ScaleInSafe));
}

#[test]
fn rising_lag_scales_out_at_once_and_a_drained_backlog_waits_to_scale_in() {
    let mut state = RecommendState::default();
    let base = |lag: u64, growth: f64, time_lag: f64| Case {
        n: 0,
        system: System::Kafka,
        parts: kafka(16, lag, 1000.0),
        members: Some(2),
        produce: Some(1000.0),
        growth: Some(growth),
        time_lag,
        settings: "capacity_per_replica: 1000",
        recommended: None,
        reason: Reason::KeepsUp,
        says: "",
    };
    // (case, minute, lag, growth, time lag, advice)
    let steps = [
        // case 1: caught up: ceil(1.2) = 2.
        (1, 0, 0, 0.0, 0.0, 2),
        // case 2: a 1.8 M backlog: (1,000 + 3,000) x 1.2 = 4.8 -> 5 at once.
        (2, 1, 1_800_000, 0.0, 900.0, 5),
        // case 3: drained, but only just: lower need, wait starts.
        (3, 20, 0, 0.0, 0.0, 5),
        // case 4: a burst, 600,000 behind but only 10 s old (< 30 s): still
        // calm, and it needs (1,000 + 1,000) x 1.2 = 2.4 -> 3: the run goes on.
        (4, 25, 600_000, 0.0, 10.0, 5),
        // case 5: 10 m after case 3: scale in to the highest of the run (3).
        (5, 30, 0, 0.0, 0.0, 3),
    ];
    for (case, minute, lag, growth, time_lag, advice) in steps {
        let r = run(
            &base(lag, growth, time_lag),
            &mut state,
            Millis(minute * MIN),
        );
        assert_eq!(r.recommended, Some(advice), "case {case}: {r:?}");
    }
}

#[test]
fn numbers_in_sentences_are_grouped_and_rounded_for_reading() {
    assert_eq!(count(0), "0");
    assert_eq!(count(999), "999");
    assert_eq!(count(48_000), "48,000");
    assert_eq!(count(1_200_000), "1,200,000");
    assert_eq!(signed(-12_345), "-12,345");
    assert_eq!(rate(2800.4), "2,800 msg/s");
    assert_eq!(rate(12.25), "12.2 msg/s");
    assert_eq!(rate(5.0), "5 msg/s");
    assert_eq!(rate(0.25), "0.25 msg/s");
    assert_eq!(ceil_replicas(5.0 * 1.2), 6);
    assert_eq!(ceil_replicas(4.48), 5);
    assert_eq!(ceil_replicas(0.0), 0);
    assert_eq!(ceil_replicas(f64::NAN), 0);
}

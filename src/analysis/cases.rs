//! The workloads that made the analysis lie or go silent (issue 20), one
//! numbered row each with the numbers that broke it, run the way the engine
//! runs them: every poll is recorded into a [`History`], analyzed, its skips
//! remembered, and the group's partitions rolled up. The truth of each row is
//! what the row itself wrote, committed and deleted.
//!
//! Item 10's config check is in `src/config/tests.rs`, item 12 (first
//! scale-out estimate) in `src/recommend/tests.rs`; the same workloads on real
//! brokers are in `tests/truth.rs`.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::history::History;
use crate::model::{ConsumerKey, GroupKey, JetstreamParts, Sample, SourceId};

/// One partition (Kafka) or consumer (JetStream) at one poll, `t` seconds after
/// the row's start.
#[derive(Clone, Copy)]
struct Poll {
    t: i64,
    committed: Option<i64>,
    head: i64,
    low: Option<i64>,
    lag: u64,
    /// The broker's timestamp of the oldest unconsumed message, as
    /// (offset, seconds after the start; negative: before).
    written: Option<(i64, i64)>,
}

/// A Kafka reading: lag = head - committed, clamped at 0 (what the source
/// reports; never committed: 0).
fn kafka(t: i64, committed: Option<i64>, head: i64, low: i64) -> Poll {
    let lag = committed.map_or(0, |c| u64::try_from(head - c).unwrap_or(0));
    Poll {
        t,
        committed,
        head,
        low: Some(low),
        lag,
        written: None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Kafka,
    Jetstream,
}

/// Polls every `every` seconds from 0 to `until`, each made by `f(t)`.
fn polls(every: i64, until: i64, f: impl Fn(i64) -> Poll) -> Vec<Poll> {
    (0..=until / every).map(|i| f(i * every)).collect()
}

/// What a rate must be: unchecked, absent, or within 1 % (1e-6 near 0).
#[derive(Clone, Copy, Debug)]
enum Rate {
    Any,
    Absent,
    About(f64),
}

impl Rate {
    fn holds(self, got: Option<f64>) -> bool {
        match (self, got) {
            (Rate::Any, _) | (Rate::Absent, None) => true,
            (Rate::About(want), Some(got)) => (got - want).abs() <= 1e-6 + 0.01 * want.abs(),
            _ => false,
        }
    }
}

/// What the group's time lag must be: its quality, and the estimate (for
/// Unknown: the lower bound) within a range. The truth must lie within the
/// bounds lagwatch states, checked separately where the row knows it.
#[derive(Clone, Debug)]
struct Lag {
    quality: TimeLagQuality,
    seconds: RangeInclusive<f64>,
}

/// What a loss projection must be.
#[derive(Clone, Debug)]
enum Loss {
    Any,
    Never,
    In(RangeInclusive<f64>, LossBasis),
}

impl Loss {
    fn holds(&self, got: Projection) -> bool {
        match (self, got) {
            (Loss::Any, _) | (Loss::Never, Projection::Never) => true,
            (Loss::In(range, basis), Projection::In(s, b)) => range.contains(&s) && *basis == b,
            _ => false,
        }
    }
}

struct Case {
    item: &'static str,
    kind: Kind,
    /// Every partition's polls, all at the same times.
    partitions: Vec<Vec<Poll>>,
    limits: Option<RetentionLimits>,
    error_time_lag: Option<f64>,
    // What the group must read after the last poll:
    produce: Rate,
    consume: Rate,
    growth: Rate,
    eta: Rate,
    time_lag: Option<Lag>,
    /// The truth of the time lag at the last poll, when the row knows it: it
    /// must be within the stated bounds.
    truth: Option<f64>,
    status: Status,
    err: Option<ErrReason>,
    lost: u64,
    headroom: Loss,
    projected: Loss,
    /// Messages skipped by offset jumps, over all polls.
    skipped: u64,
    /// History restarts, over all polls.
    restarts: u32,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            item: "",
            kind: Kind::Kafka,
            partitions: Vec::new(),
            limits: None,
            error_time_lag: None,
            produce: Rate::Any,
            consume: Rate::Any,
            growth: Rate::Any,
            eta: Rate::Any,
            time_lag: None,
            truth: None,
            status: Status::Ok,
            err: None,
            lost: 0,
            headroom: Loss::Any,
            projected: Loss::Any,
            skipped: 0,
            restarts: 0,
        }
    }
}

struct Outcome {
    group: GroupAnalysis,
    skipped: u64,
    restarts: u32,
}

fn sample(kind: Kind, partition: usize, p: &Poll) -> Sample {
    Sample {
        key: ConsumerKey {
            group: GroupKey {
                source: SourceId::new("s"),
                scope: None,
                group: Arc::from("g"),
            },
            topic: Arc::from("orders.created"),
            partition: (kind == Kind::Kafka).then(|| i32::try_from(partition).unwrap_or(0)),
        },
        committed: p.committed,
        head: p.head,
        low: p.low,
        lag: p.lag,
        jetstream: (kind == Kind::Jetstream).then(|| {
            Box::new(JetstreamParts {
                filtered: false,
                ..JetstreamParts::default()
            })
        }),
        oldest_written: p.written.map(|(o, t)| (o, Millis((START + t) * 1000))),
    }
}

/// Seconds since the epoch of every row's t = 0.
const START: i64 = 1_800_000_000;

/// Runs a row through History, analyze and rollup as the engine does.
fn run(c: &Case) -> Outcome {
    let s = Settings::default();
    let t = Thresholds {
        error_time_lag_secs: c.error_time_lag,
        ..Thresholds::default()
    };
    let first = &c.partitions[0];
    let every = first.get(1).map_or(30, |p| p.t - first[0].t);
    let mut history = History::new(s.capacity_for(Duration::from_secs(every.unsigned_abs())));
    let mut out = Outcome {
        group: rollup(std::iter::empty()),
        skipped: 0,
        restarts: 0,
    };
    let mut points = std::collections::VecDeque::new();
    for i in 0..first.len() {
        let mut analyses = Vec::new();
        for (partition, polls) in c.partitions.iter().enumerate() {
            let p = &polls[i];
            let at = Millis((START + p.t) * 1000);
            let sample = sample(c.kind, partition, p);
            let (h, restart) = history.record(&sample, at);
            out.restarts += u32::from(restart.is_some());
            h.decode_into(&mut points);
            let a = analyze(h, &points, at, &s, &t, c.limits.as_ref());
            if a.skipped > 0 {
                history.note_skip(&sample.key, at, a.skipped);
            }
            out.skipped += a.skipped;
            analyses.push(a);
        }
        out.group = rollup(analyses.iter());
    }
    out
}

fn check(c: &Case) -> Vec<String> {
    let o = run(c);
    let g = &o.group;
    let mut wrong = Vec::new();
    let mut want = |ok: bool, what: &str| {
        if !ok {
            wrong.push(what.to_string());
        }
    };
    want(c.produce.holds(g.produce_rate), "produce rate");
    want(c.consume.holds(g.consume_rate), "consume rate");
    want(c.growth.holds(g.lag_growth), "lag growth");
    want(c.eta.holds(g.eta_seconds), "eta");
    if let Some(lag) = &c.time_lag {
        let tl = g.time_lag_max;
        let value = tl.seconds().unwrap_or(tl.at_least());
        want(tl.quality() == lag.quality, "time lag quality");
        want(lag.seconds.contains(&value), "time lag seconds");
    }
    if let Some(truth) = c.truth {
        let tl = g.time_lag_max;
        want(tl.at_least() <= truth + 1e-9, "truth below the lower bound");
        want(
            tl.at_most().is_none_or(|m| truth <= m + 1e-9),
            "truth above the upper bound",
        );
    }
    want(g.status == c.status, "status");
    want(g.err == c.err, "err reason");
    want(g.lost_messages == c.lost, "lost messages");
    want(c.headroom.holds(g.headroom), "headroom");
    want(c.projected.holds(g.projected_loss), "projected loss");
    want(o.skipped == c.skipped, "skipped");
    want(o.restarts == c.restarts, "restarts");
    if wrong.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "item {}: wrong {}: {g:#?}, skipped {}, restarts {}",
            c.item,
            wrong.join(", "),
            o.skipped,
            o.restarts
        )]
    }
}

fn cases() -> Vec<Case> {
    vec![
        // 1: a WorkQueue stream at 10 msg/s, its consumer 20 messages (2 s)
        // behind and keeping pace, polled every 10 s for 200 s. Acked messages
        // are deleted, so everything stored at one poll is gone by the next:
        // that used to restart the history every poll (no rates, no status,
        // time lag Unknown with a lower bound of 0).
        Case {
            item: "1",
            kind: Kind::Jetstream,
            partitions: vec![polls(10, 200, |t| Poll {
                t,
                committed: Some(5_000 + 10 * t - 20),
                head: 5_000 + 10 * t,
                low: Some(5_000 + 10 * t - 20),
                lag: 20,
                written: None,
            })],
            produce: Rate::About(10.0),
            consume: Rate::About(10.0),
            growth: Rate::About(0.0),
            time_lag: Some(Lag {
                quality: TimeLagQuality::Interpolated,
                seconds: 1.85..=2.01,
            }),
            truth: Some(2.0),
            ..Case::default()
        },
        // 1b: a Kafka Streams repartition topic (DeleteRecords after every
        // commit): low follows committed; same answer.
        Case {
            item: "1b",
            partitions: vec![polls(30, 300, |t| {
                kafka(
                    t,
                    Some(5_000 + 10 * t - 20),
                    5_000 + 10 * t,
                    5_000 + 10 * t - 20,
                )
            })],
            produce: Rate::About(10.0),
            consume: Rate::About(10.0),
            growth: Rate::About(0.0),
            time_lag: Some(Lag {
                quality: TimeLagQuality::Interpolated,
                seconds: 1.85..=2.01,
            }),
            truth: Some(2.0),
            ..Case::default()
        },
        // 2: a group 10 s behind on partition 0 of four (10 msg/s), the three
        // others never written and so never committed by librdkafka: the
        // group's time lag and consume rate used to vanish.
        Case {
            item: "2",
            partitions: vec![
                polls(30, 300, |t| {
                    kafka(t, Some(1_000 + 10 * t - 100), 1_000 + 10 * t, 0)
                }),
                polls(30, 300, |t| kafka(t, None, 0, 0)),
                polls(30, 300, |t| kafka(t, None, 0, 0)),
                polls(30, 300, |t| kafka(t, None, 0, 0)),
            ],
            produce: Rate::About(10.0),
            consume: Rate::About(10.0),
            growth: Rate::About(0.0),
            time_lag: Some(Lag {
                quality: TimeLagQuality::Interpolated,
                seconds: 9.85..=10.01,
            }),
            truth: Some(10.0),
            ..Case::default()
        },
        // 3: a consumer stuck at 340 on a topic idle (head 1,000) since before
        // lagwatch started, polled 20 minutes: the lower bound used to stop at
        // the ring's span (660 s), so a 15 m error_time_lag never fired.
        Case {
            item: "3",
            partitions: vec![polls(30, 1_200, |t| kafka(t, Some(340), 1_000, 0))],
            error_time_lag: Some(900.0),
            produce: Rate::About(0.0),
            consume: Rate::About(0.0),
            time_lag: Some(Lag {
                quality: TimeLagQuality::Unknown,
                seconds: 1_200.0..=1_200.0,
            }),
            status: Status::Err,
            err: Some(ErrReason::TimeLagAbove),
            ..Case::default()
        },
        // 3b: the same with the broker's timestamp of message 340 (written an
        // hour before the start) read: exact, 3,600 + 1,200 s.
        Case {
            item: "3b",
            partitions: vec![polls(30, 1_200, |t| Poll {
                written: Some((340, -3_600)),
                ..kafka(t, Some(340), 1_000, 0)
            })],
            error_time_lag: Some(900.0),
            time_lag: Some(Lag {
                quality: TimeLagQuality::Exact,
                seconds: 4_800.0..=4_800.0,
            }),
            truth: Some(4_800.0),
            status: Status::Err,
            err: Some(ErrReason::TimeLagAbove),
            ..Case::default()
        },
        // 4: a stream at max_msgs 1,000 (discard old), 10 msg/s published, its
        // consumer stuck at 500: num_pending stays 1,000 as unread messages
        // expire, and produce derived from it read 0.
        Case {
            item: "4",
            kind: Kind::Jetstream,
            partitions: vec![polls(30, 600, |t| Poll {
                t,
                committed: Some(500),
                head: 5_000 + 10 * t,
                low: Some(4_000 + 10 * t),
                lag: 1_000,
                written: None,
            })],
            limits: Some(RetentionLimits {
                max_messages: Some(1_000),
                messages: 1_000,
                ..RetentionLimits::default()
            }),
            produce: Rate::About(10.0),
            consume: Rate::About(0.0),
            status: Status::Stall,
            lost: 4_000 + 10 * 600 - 500,
            headroom: Loss::In(0.0..=0.0, LossBasis::MaxMessages),
            projected: Loss::In(0.0..=0.0, LossBasis::MaxMessages),
            ..Case::default()
        },
        // 5: a consumer 50 messages (5 s) behind on a 30 m stream, 80 s in,
        // nothing deleted yet: there used to be no loss figure at all. Now:
        // 1,795 s of headroom if it stopped, and no projected loss.
        Case {
            item: "5",
            kind: Kind::Jetstream,
            partitions: vec![polls(10, 80, |t| Poll {
                t,
                committed: Some(1_000 + 10 * t - 50),
                head: 1_000 + 10 * t,
                low: Some(1),
                lag: 50,
                written: None,
            })],
            limits: Some(RetentionLimits {
                max_age_seconds: Some(1_800.0),
                ..RetentionLimits::default()
            }),
            headroom: Loss::In(1_794.8..=1_795.2, LossBasis::MaxAge),
            projected: Loss::Never,
            ..Case::default()
        },
        // 5b: the same consumer once max_age deletes 10 msg/s: the old "time
        // to loss if stopped" was ~1,800 s for any lag > 0, so the shipped 1 h
        // ConsumerDataLossRisk fired for ever on a healthy consumer. The
        // projection at the current rates is never.
        Case {
            item: "5b",
            kind: Kind::Jetstream,
            partitions: vec![polls(30, 600, |t| Poll {
                t,
                committed: Some(20_000 + 10 * t - 50),
                head: 20_000 + 10 * t,
                low: Some(2_000 + 10 * t),
                lag: 50,
                written: None,
            })],
            limits: Some(RetentionLimits {
                max_age_seconds: Some(1_800.0),
                ..RetentionLimits::default()
            }),
            produce: Rate::About(10.0),
            consume: Rate::About(10.0),
            headroom: Loss::In(1_794.8..=1_795.2, LossBasis::MaxAge),
            projected: Loss::Never,
            ..Case::default()
        },
        // 5c: Kafka deletes a 20,000-message segment at once (low steps at
        // 300 s): no loss projected for a consumer keeping pace 100 behind;
        // headroom from retention.ms (1 h) minus its 10 s time lag.
        Case {
            item: "5c",
            partitions: vec![polls(30, 600, |t| {
                let low = if t >= 300 { 20_000 } else { 0 };
                kafka(t, Some(40_000 + 10 * t - 100), 40_000 + 10 * t, low)
            })],
            limits: Some(RetentionLimits {
                max_age_seconds: Some(3_600.0),
                ..RetentionLimits::default()
            }),
            headroom: Loss::In(3_589.8..=3_590.2, LossBasis::MaxAge),
            projected: Loss::Never,
            ..Case::default()
        },
        // 5d: falling behind: 10 in, 5 out, 100 behind at the start. At 600 s
        // the oldest unconsumed message (12,900) was written at 290 s: 310 s
        // old, aging at 1 - 5/10 = 0.5 s per second: lost in
        // (1,800 - 310) / 0.5 = 2,980 s; in 1,490 s if the consumer stopped.
        Case {
            item: "5d",
            partitions: vec![polls(30, 600, |t| {
                kafka(t, Some(9_900 + 5 * t), 10_000 + 10 * t, 0)
            })],
            limits: Some(RetentionLimits {
                max_age_seconds: Some(1_800.0),
                ..RetentionLimits::default()
            }),
            produce: Rate::About(10.0),
            consume: Rate::About(5.0),
            growth: Rate::About(5.0),
            time_lag: Some(Lag {
                quality: TimeLagQuality::Interpolated,
                seconds: 309.8..=310.1,
            }),
            truth: Some(310.0),
            status: Status::Warn,
            headroom: Loss::In(1_489.8..=1_490.2, LossBasis::MaxAge),
            projected: Loss::In(2_979.0..=2_981.0, LossBasis::MaxAge),
            ..Case::default()
        },
        // 6: a consumer keeping pace 1,000,000 behind resets to latest at
        // 300 s (committed 3,700 -> 1,003,980; 300 of that is 30 s of its
        // consumption): it used to read thousands of msg/s consumed and a huge
        // negative growth for a whole window.
        Case {
            item: "6",
            partitions: vec![polls(30, 600, |t| {
                let head = 1_001_000 + 10 * t;
                let committed = if t < 300 { 1_000 + 10 * t } else { head - 20 };
                kafka(t, Some(committed), head, 0)
            })],
            produce: Rate::About(10.0),
            consume: Rate::About(10.0),
            growth: Rate::About(0.0),
            skipped: 1_003_980 - 3_700 - 300,
            ..Case::default()
        },
        // 7: a new group at offset 0 of a topic with one write in the window
        // (head 999 -> 1,000): extrapolating 999 messages at that rate read
        // years, and a 15 m error_time_lag fired. The age is an extrapolation
        // with a lower bound of the 600 s seen; it decides no ERR.
        Case {
            item: "7",
            partitions: vec![polls(30, 600, |t| {
                kafka(t, Some(0), if t < 300 { 999 } else { 1_000 }, 0)
            })],
            error_time_lag: Some(900.0),
            time_lag: Some(Lag {
                quality: TimeLagQuality::Extrapolated,
                seconds: 600.0..=f64::MAX,
            }),
            status: Status::Stall,
            ..Case::default()
        },
        // 7b: the same on a JetStream stream with max_age 1 h: nothing stored
        // is older, so the extrapolation is capped at 3,600 s; the truth is
        // somewhere in 600-3,600 s, so a 15 m error_time_lag does not fire
        // (its lower bound will, once it passes 900 s).
        Case {
            item: "7b",
            kind: Kind::Jetstream,
            partitions: vec![polls(30, 600, |t| {
                let head = if t < 300 { 1_000 } else { 1_001 };
                Poll {
                    t,
                    committed: Some(1),
                    head,
                    low: Some(1),
                    lag: u64::try_from(head - 1).unwrap_or(0),
                    written: None,
                }
            })],
            limits: Some(RetentionLimits {
                max_age_seconds: Some(3_600.0),
                ..RetentionLimits::default()
            }),
            error_time_lag: Some(900.0),
            time_lag: Some(Lag {
                quality: TimeLagQuality::Extrapolated,
                seconds: 600.0..=3_600.0,
            }),
            status: Status::Stall,
            ..Case::default()
        },
        // 8: right after a start, three polls spanning 60 s of a consumer that
        // commits every 90 s: it used to read STALL.
        Case {
            item: "8",
            partitions: vec![polls(30, 60, |t| kafka(t, Some(1_000), 1_100 + 10 * t, 0))],
            status: Status::Ok,
            ..Case::default()
        },
        // 9: lag rising 10 per poll with one dip of 15: any decrease used to
        // suppress WARN.
        Case {
            item: "9",
            partitions: vec![polls(30, 600, |t| {
                let i = t / 30;
                kafka(
                    t,
                    Some(1_000 + 10 * i),
                    1_005 + 20 * i - if i == 10 { 15 } else { 0 },
                    0,
                )
            })],
            status: Status::Warn,
            ..Case::default()
        },
        // 9b: lag read against a commit every 60 s while polling every 30 s: a
        // sawtooth 100, 400, 100, ... with no trend: not WARN.
        Case {
            item: "9b",
            partitions: vec![polls(30, 600, |t| {
                let i = t / 30;
                kafka(t, Some(900 + 300 * (i - i % 2)), 1_000 + 300 * i, 0)
            })],
            status: Status::Ok,
            ..Case::default()
        },
        // 9c: the same sawtooth on a lag that grows 50 per poll: WARN.
        Case {
            item: "9c",
            partitions: vec![polls(30, 600, |t| {
                let i = t / 30;
                kafka(t, Some(900 + 300 * (i - i % 2)), 1_000 + 350 * i, 0)
            })],
            status: Status::Warn,
            ..Case::default()
        },
        // 10: the ETA's 2 % rule: 10.1 msg/s drained against 10 produced is
        // within the noise of keeping pace: no ETA (it would read 10,000 s).
        Case {
            item: "10",
            partitions: vec![polls(30, 600, |t| {
                kafka(t, Some(9_000 + 101 * t / 10), 10_000 + 10 * t, 0)
            })],
            eta: Rate::Absent,
            ..Case::default()
        },
        // 10b: 10.5 drained against 10 produced is catching up: lag 700 at
        // 600 s, ETA 700 / 0.5 = 1,400 s.
        Case {
            item: "10b",
            partitions: vec![polls(30, 600, |t| {
                kafka(t, Some(9_000 + 105 * t / 10), 10_000 + 10 * t, 0)
            })],
            eta: Rate::About(1_400.0),
            ..Case::default()
        },
        // 11: the topic is deleted and recreated (head 5,300 -> 30) while the
        // group keeps committing its old position 5,300: lag reads 0, and it
        // used to read OK with 0 s of time lag.
        Case {
            item: "11",
            partitions: vec![polls(30, 600, |t| {
                let head = if t < 300 { 5_000 + t } else { t - 270 };
                kafka(t, Some(if t < 300 { head } else { 5_300 }), head, 0)
            })],
            time_lag: Some(Lag {
                quality: TimeLagQuality::Unknown,
                seconds: 0.0..=0.0,
            }),
            status: Status::Err,
            err: Some(ErrReason::CommittedBeyondEnd),
            restarts: 1,
            ..Case::default()
        },
    ]
}

#[test]
fn the_workloads_that_made_the_analysis_lie_read_true() {
    let wrong: Vec<String> = cases().iter().flat_map(check).collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn committed_beyond_end_is_counted_per_partition() {
    let c = Case {
        partitions: vec![
            polls(30, 60, |t| kafka(t, Some(50), 5, 0)),
            polls(30, 60, |t| kafka(t, Some(5), 5, 0)),
        ],
        ..Case::default()
    };
    assert_eq!(run(&c).group.committed_beyond_end, 1);
}

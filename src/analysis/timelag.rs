//! Time lag: the age of the oldest unconsumed message, read off the history of
//! (time seen, head offset) as a table of when each offset was written, with a
//! statement of how good the number is.

use std::collections::VecDeque;

use crate::history::{KeyHistory, Point};
use crate::model::Millis;

/// How a time lag was obtained, best first (derives `Ord` for "worst of").
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TimeLagQuality {
    /// Caught up (0 s), or the broker's own timestamp of the oldest unconsumed
    /// message: no estimate involved.
    Exact,
    /// Between two samples of head: the true age is between the bounds, which
    /// are the two samples' times.
    Interpolated,
    /// Older than the history, extrapolated with the current head rate: only
    /// the lower bound is certain.
    Extrapolated,
    /// Not known; never a made-up number. The lower bound still holds.
    Unknown,
}

impl TimeLagQuality {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeLagQuality::Exact => "exact",
            TimeLagQuality::Interpolated => "interpolated",
            TimeLagQuality::Extrapolated => "extrapolated",
            TimeLagQuality::Unknown => "unknown",
        }
    }
}

/// The age of the oldest unconsumed message: the best estimate, how it was
/// obtained, and the bounds the truth is certainly within.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeLag {
    quality: TimeLagQuality,
    /// Best estimate in seconds; None when Unknown.
    seconds: Option<f64>,
    /// The oldest unconsumed message is certainly at least this old.
    at_least: f64,
    /// ... and certainly at most this old, where anything bounds it.
    at_most: Option<f64>,
}

impl TimeLag {
    /// Nothing unconsumed: 0 s, exactly.
    pub const CAUGHT_UP: TimeLag = TimeLag {
        quality: TimeLagQuality::Exact,
        seconds: Some(0.0),
        at_least: 0.0,
        at_most: Some(0.0),
    };

    /// From the broker's timestamp of the message itself.
    pub fn exact(seconds: f64) -> TimeLag {
        let s = seconds.max(0.0);
        TimeLag {
            quality: TimeLagQuality::Exact,
            seconds: Some(s),
            at_least: s,
            at_most: Some(s),
        }
    }

    /// An estimate between two certain bounds.
    pub fn interpolated(seconds: f64, at_least: f64, at_most: f64) -> TimeLag {
        let (lo, hi) = (at_least.max(0.0), at_most.max(at_least).max(0.0));
        TimeLag {
            quality: TimeLagQuality::Interpolated,
            seconds: Some(seconds.clamp(lo, hi)),
            at_least: lo,
            at_most: Some(hi),
        }
    }

    /// An estimate with a certain lower bound (and an upper one, where known).
    pub fn extrapolated(seconds: f64, at_least: f64, at_most: Option<f64>) -> TimeLag {
        let lo = at_least.max(0.0);
        let hi = at_most.map(|m| m.max(lo));
        TimeLag {
            quality: TimeLagQuality::Extrapolated,
            seconds: Some(hi.map_or(seconds.max(lo), |h| seconds.clamp(lo, h))),
            at_least: lo,
            at_most: hi,
        }
    }

    /// No estimate; the bounds still hold.
    pub fn unknown(at_least: f64, at_most: Option<f64>) -> TimeLag {
        let lo = at_least.max(0.0);
        TimeLag {
            quality: TimeLagQuality::Unknown,
            seconds: None,
            at_least: lo,
            at_most: at_most.map(|m| m.max(lo)),
        }
    }

    /// The best estimate in seconds (0 when caught up); None when unknown.
    pub fn seconds(&self) -> Option<f64> {
        self.seconds
    }
    pub fn quality(&self) -> TimeLagQuality {
        self.quality
    }
    /// A lower bound that holds whatever the quality.
    pub fn at_least(&self) -> f64 {
        self.at_least
    }
    /// An upper bound, where one is known.
    pub fn at_most(&self) -> Option<f64> {
        self.at_most
    }
    /// How far the truth can be from the estimate: the distance to the farther
    /// bound. None when unknown or unbounded above.
    pub fn error_seconds(&self) -> Option<f64> {
        let s = self.seconds?;
        Some((s - self.at_least).max(self.at_most? - s))
    }

    /// Whether the oldest unconsumed message is older than `limit`, as far as
    /// can be told: Some(true) when certain (the bounds) or measured (an exact
    /// or interpolated estimate, whose error is at most a poll interval),
    /// Some(false) likewise, None when the value could be either side. An
    /// extrapolation decides nothing but what its bounds decide: it assumes
    /// the current rate held in the past, and one write in the window, or a
    /// clamp to `max_age`, makes it anything. The shipped alerts read time lag
    /// the same way (estimate when exact or interpolated, else lower bound).
    pub fn above(&self, limit: f64) -> Option<bool> {
        if self.at_least > limit {
            return Some(true);
        }
        if self.at_most.is_some_and(|m| m <= limit) {
            return Some(false);
        }
        match (self.quality, self.seconds) {
            (TimeLagQuality::Exact | TimeLagQuality::Interpolated, Some(s)) => Some(s > limit),
            _ => None,
        }
    }
}

fn secs_between(later: Millis, earlier_ms: f64) -> f64 {
    ((later.0 as f64 - earlier_ms) / 1000.0).max(0.0)
}

/// When the message at `offset` was written, assuming the messages that made
/// head go from `a` to `b` were written evenly over `(a.at, b.at]`: the message
/// exists once head passes it, i.e. once head reaches `offset + 1`.
fn written_at(a: (Millis, i64), b: (Millis, i64), offset: i64) -> f64 {
    let (ta, ha) = (a.0 .0 as f64, a.1 as f64);
    let (tb, hb) = (b.0 .0 as f64, b.1 as f64);
    ta + (offset as f64 + 1.0 - ha) / (hb - ha) * (tb - ta)
}

/// The estimate for a message written between samples `a` and `b`, bounded by
/// their times: it did not exist at `a` (head had not passed it) and did at `b`.
fn between(now: Millis, a: (Millis, i64), b: (Millis, i64), offset: i64) -> TimeLag {
    TimeLag::interpolated(
        secs_between(now, written_at(a, b, offset)),
        secs_between(now, b.0 .0 as f64),
        secs_between(now, a.0 .0 as f64),
    )
}

/// Time lag of one key at `now`. `head_rate` is the slope of head (msgs/s, the
/// whole stream for JetStream: head is in stream sequences), used only to
/// extrapolate before the oldest sample. `max_age` bounds the age of anything
/// still stored (JetStream's `max_age`, enforced on time; Kafka's retention is
/// not a bound, segments outlive it). `points` is `h`'s ring, decoded.
pub fn time_lag(
    h: &KeyHistory,
    points: &VecDeque<Point>,
    now: Millis,
    head_rate: Option<f64>,
    max_age: Option<f64>,
) -> TimeLag {
    let Some(last) = h.last() else {
        return TimeLag::unknown(0.0, max_age);
    };
    // Committed above the log end (topic recreated under a group that kept its
    // position, or data lost): the source clamps the lag to 0, but nothing
    // says the messages now in the log will ever be read, nor how old the
    // first of them is. Status says ERR (committed_beyond_end); the age is
    // unknown, not 0.
    if last.committed.is_some_and(|c| c > last.head) {
        return TimeLag::unknown(0.0, max_age);
    }
    // Caught up, including an idle topic where head has not moved for hours
    // (kafka-lag-exporter reports a growing time lag there), a filtered
    // JetStream consumer whose lag is 0 while other subjects move head, and a
    // Kafka partition the group never committed on (its lag is 0 by policy, so
    // it must not hide the group's time lag).
    if last.lag == 0 {
        return TimeLag::CAUGHT_UP;
    }
    // Behind but no commit to date the position from.
    let Some(committed) = last.committed else {
        return TimeLag::unknown(0.0, max_age);
    };
    if committed >= last.head {
        return TimeLag::CAUGHT_UP;
    }
    // Messages below `low` are gone: the oldest unconsumed one that still
    // exists is at `low`.
    let oldest = last.low.map_or(committed, |l| committed.max(l));
    if oldest >= last.head {
        return TimeLag::CAUGHT_UP;
    }
    // The broker's own timestamp, when it was read for this very offset.
    if let Some((offset, written)) = h.written() {
        if offset == oldest {
            return TimeLag::exact(secs_between(now, written.0 as f64));
        }
    }
    // First point where head had passed `oldest`; head is sorted in a ring.
    let i = points.partition_point(|p| p.head <= oldest);
    if i > 0 {
        if let (Some(a), Some(b)) = (points.get(i - 1), points.get(i)) {
            return between(now, (a.at, a.head), (b.at, b.head), oldest);
        }
    }
    let Some(front) = points.front() else {
        return TimeLag::unknown(0.0, max_age);
    };
    older_than_ring(h, (front.at, front.head), oldest, now, head_rate, max_age)
}

/// The oldest unconsumed message was written before the ring's first point.
fn older_than_ring(
    h: &KeyHistory,
    front: (Millis, i64),
    oldest: i64,
    now: Millis,
    head_rate: Option<f64>,
    max_age: Option<f64>,
) -> TimeLag {
    // It existed at the ring's first point, and, if it is below the head this
    // run started with, at that start: a lower bound that grows with the clock.
    let (first_at, first_head) = h.first();
    let mut at_least = secs_between(now, front.0 .0 as f64);
    if oldest < first_head {
        at_least = at_least.max(secs_between(now, first_at.0 as f64));
    }
    // The last rise of head that fell off the ring may cover it.
    let mut anchor = front;
    if let Some(rise) = h.earlier_rise() {
        if rise.from.1 <= oldest && oldest < rise.to.1 {
            return between(now, rise.from, rise.to, oldest);
        }
        if oldest < rise.from.1 {
            anchor = rise.from;
            at_least = at_least.max(secs_between(now, rise.from.0 .0 as f64));
        }
    }
    // Reprocessing from far back, or lagwatch just started: go back from the
    // oldest known point at the current head rate, if head moves at all.
    match head_rate {
        Some(rate) if rate > 0.0 => {
            let behind = (anchor.1 - oldest - 1) as f64;
            let t = anchor.0 .0 as f64 - behind / rate * 1000.0;
            TimeLag::extrapolated(secs_between(now, t), at_least, max_age)
        }
        _ => TimeLag::unknown(at_least, max_age),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::model::{ConsumerKey, GroupKey, Sample, SourceId};
    use std::sync::Arc;

    fn key() -> ConsumerKey {
        ConsumerKey {
            group: GroupKey {
                source: SourceId::new("k"),
                scope: None,
                group: Arc::from("g"),
            },
            topic: Arc::from("t"),
            partition: Some(0),
        }
    }

    /// (seconds, committed, head, low)
    type Row = (i64, Option<i64>, i64, Option<i64>);

    fn history(capacity: usize, rows: &[Row]) -> KeyHistory {
        let mut h = History::new(capacity);
        for &(t, committed, head, low) in rows {
            let s = Sample {
                key: key(),
                committed,
                head,
                low,
                lag: u64::try_from(head - committed.unwrap_or(head)).unwrap_or(0),
                jetstream: None,
                oldest_written: None,
            };
            h.record(&s, Millis(t * 1000));
        }
        h.get(&key()).cloned().unwrap()
    }

    fn steady(n: i64, committed: impl Fn(i64) -> i64) -> Vec<Row> {
        // 10 msg/s from t=1000 s, sampled every 30 s.
        (0..n)
            .map(|i| (1000 + i * 30, Some(committed(i)), 5000 + i * 300, Some(0)))
            .collect()
    }

    /// Expected: (quality, estimate, at least, at most).
    type Want = (TimeLagQuality, Option<f64>, f64, Option<f64>);

    fn check(case: u32, got: TimeLag, want: Want) {
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-6,
            (x, y) => x == y,
        };
        assert_eq!(got.quality(), want.0, "case {case}: {got:?}");
        assert!(close(got.seconds(), want.1), "case {case}: {got:?}");
        assert!(
            (got.at_least() - want.2).abs() < 1e-6,
            "case {case}: {got:?}"
        );
        assert!(close(got.at_most(), want.3), "case {case}: {got:?}");
    }

    use TimeLagQuality::{Exact, Extrapolated, Interpolated, Unknown};

    #[test]
    fn time_lag_table() {
        // (case, capacity, rows, now s, head rate, max_age, expected)
        type Case = (u32, usize, Vec<Row>, i64, Option<f64>, Option<f64>, Want);
        let cases: Vec<Case> = vec![
            // case 1: steady state, consumer 600 messages (60 s) behind: the
            // message at committed was written when head reached committed + 1,
            // 59.9 s before the last sample at 10 msg/s; certainly between the
            // two samples around it, 30 and 60 s ago.
            (
                1,
                32,
                steady(21, |i| 5000 + i * 300 - 600),
                1600,
                Some(10.0),
                None,
                (Interpolated, Some(59.9), 30.0, Some(60.0)),
            ),
            // case 2: caught up on an idle topic for an hour: 0, exact.
            (
                2,
                32,
                (0..5).map(|i| (i * 900, Some(42), 42, Some(0))).collect(),
                3600,
                Some(0.0),
                None,
                (Exact, Some(0.0), 0.0, Some(0.0)),
            ),
            // case 3: never committed, lag 0 by policy (librdkafka consumers do
            // not commit partitions that got no message): caught up, so it
            // cannot hide the group's time lag (issue 20, item 2).
            (
                3,
                32,
                (0..5).map(|i| (i * 30, None, 100 + i, Some(0))).collect(),
                120,
                None,
                None,
                (Exact, Some(0.0), 0.0, Some(0.0)),
            ),
            // case 4: burst: idle at head 100, then 1000 messages between the
            // samples at 60 s and 90 s; consumer stuck at 100 (first of burst).
            // Interpolation puts it at 60.03 s; the truth is in [30, 60].
            (
                4,
                32,
                vec![
                    (0, Some(100), 100, Some(0)),
                    (30, Some(100), 100, Some(0)),
                    (60, Some(100), 100, Some(0)),
                    (90, Some(100), 1100, Some(0)),
                    (120, Some(100), 1100, Some(0)),
                ],
                120,
                Some(0.0),
                None,
                (Interpolated, Some(120.0 - 60.03), 30.0, Some(60.0)),
            ),
            // case 5: reprocessing from offset 0 right after lagwatch started:
            // extrapolated with the head rate (5000 messages at 10/s = 500 s
            // before t=1000, less the message itself); certainly at least as old
            // as lagwatch's first sample (60 s), no upper bound.
            (
                5,
                32,
                steady(3, |_| 0),
                1060,
                Some(10.0),
                None,
                (Extrapolated, Some(60.0 + 499.9), 60.0, None),
            ),
            // case 6: same, but head does not move (no rate): unknown, at least
            // as old as the first sample.
            (
                6,
                32,
                (0..3)
                    .map(|i| (1000 + i * 30, Some(0), 5000, Some(0)))
                    .collect(),
                1060,
                Some(0.0),
                None,
                (Unknown, None, 60.0, None),
            ),
            // case 7: stalled consumer on a topic that then went idle, ring too
            // short to hold the write: the remembered earlier rise still
            // interpolates it (written between 0 and 30 s).
            (
                7,
                3,
                {
                    let mut r = vec![(0, Some(0), 0, Some(0)), (30, Some(0), 300, Some(0))];
                    r.extend((2..10).map(|i| (i * 30, Some(0), 300, Some(0))));
                    r
                },
                270,
                Some(0.0),
                None,
                (Interpolated, Some(270.0 - 0.1), 240.0, Some(270.0)),
            ),
            // case 8: retention deleted messages below committed: the oldest
            // unconsumed message that exists is at low (600 messages, 59.9 s
            // behind, instead of 900 messages).
            (
                8,
                32,
                steady(21, |i| 5000 + i * 300 - 900)
                    .into_iter()
                    .map(|(t, c, h, _)| (t, c, h, Some(h - 600)))
                    .collect(),
                1600,
                Some(10.0),
                None,
                (Interpolated, Some(59.9), 30.0, Some(60.0)),
            ),
            // case 9 (item 11): committed above head (topic recreated under a
            // group that kept its position; status ERR, see status.rs): the
            // lag reads 0, but whether and when the log's messages will be
            // read is unknown: not "0 s behind".
            (
                9,
                32,
                vec![(0, Some(12), 10, None), (30, Some(12), 10, None)],
                30,
                None,
                None,
                (Unknown, None, 0.0, None),
            ),
            // case 10: two missed polls: samples 90 s apart around the
            // message; still interpolated, and the bounds say 0 to 90 s.
            (
                10,
                32,
                vec![
                    (0, Some(600), 0, None),
                    (30, Some(600), 300, None),
                    (120, Some(600), 1200, None),
                ],
                120,
                Some(10.0),
                None,
                (Interpolated, Some(59.9), 0.0, Some(90.0)),
            ),
            // case 11: a consumer stuck on a topic idle since before lagwatch
            // started, ring of 3: the lower bound keeps growing with the clock
            // (900 s, not the ring's 60 s span; issue 20, item 3).
            (
                11,
                3,
                (0..=30).map(|i| (i * 30, Some(0), 100, Some(0))).collect(),
                900,
                Some(0.0),
                None,
                (Unknown, None, 900.0, None),
            ),
            // case 12: case 5 on a JetStream stream with max_age 2 m: nothing
            // stored is older, so the extrapolation is capped at 120 s (the
            // 13-years-from-one-write case of issue 20, item 7).
            (
                12,
                32,
                steady(3, |_| 0),
                1060,
                Some(10.0),
                Some(120.0),
                (Extrapolated, Some(120.0), 60.0, Some(120.0)),
            ),
            // case 13: case 6 with max_age: unknown, between 60 s and 120 s.
            (
                13,
                32,
                (0..3)
                    .map(|i| (1000 + i * 30, Some(0), 5000, Some(0)))
                    .collect(),
                1060,
                Some(0.0),
                Some(120.0),
                (Unknown, None, 60.0, Some(120.0)),
            ),
        ];
        for (case, cap, rows, now, rate, max_age, want) in cases {
            let h = history(cap, &rows);
            let got = time_lag(&h, &h.points(), Millis(now * 1000), rate, max_age);
            check(case, got, want);
        }
    }

    #[test]
    fn the_brokers_timestamp_of_the_oldest_message_makes_it_exact() {
        // A consumer stuck at offset 0 of an idle topic; the broker says the
        // message at 0 was written at t=100 s: exact, and it grows with the clock.
        let mut h = History::new(8);
        for i in 0..3 {
            let mut s = Sample {
                key: key(),
                committed: Some(0),
                head: 50,
                low: Some(0),
                lag: 50,
                jetstream: None,
                oldest_written: None,
            };
            if i == 2 {
                s.oldest_written = Some((0, Millis(100_000)));
            }
            h.record(&s, Millis(1_000_000 + i * 30_000));
        }
        let kh = h.get(&key()).unwrap();
        for now in [1060, 5000] {
            let got = time_lag(kh, &kh.points(), Millis(now * 1000), Some(0.0), None);
            check(
                1,
                got,
                (
                    Exact,
                    Some((now - 100) as f64),
                    (now - 100) as f64,
                    Some((now - 100) as f64),
                ),
            );
        }
        // The consumer moves on: the timestamp is for another offset, unused.
        let s = Sample {
            key: key(),
            committed: Some(10),
            head: 50,
            low: Some(0),
            lag: 40,
            jetstream: None,
            oldest_written: None,
        };
        h.record(&s, Millis(1_090_000));
        let kh = h.get(&key()).unwrap();
        let got = time_lag(kh, &kh.points(), Millis(1_090_000), Some(0.0), None);
        assert_eq!(got.quality(), Unknown, "{got:?}");
    }

    #[test]
    fn above_decides_only_what_the_bounds_or_a_measured_estimate_can() {
        // (case, time lag, limit, expected)
        let cases = [
            // case 1: interpolated 90 s (bounds 60-120) against 100 s: the
            // estimate decides (its error is one poll interval).
            (
                1,
                TimeLag::interpolated(90.0, 60.0, 120.0),
                100.0,
                Some(false),
            ),
            (
                2,
                TimeLag::interpolated(110.0, 60.0, 120.0),
                100.0,
                Some(true),
            ),
            // case 3: the lower bound alone is above: certain.
            (3, TimeLag::unknown(700.0, None), 600.0, Some(true)),
            // case 4: unknown below the limit: undecided, never "fine".
            (4, TimeLag::unknown(60.0, None), 600.0, None),
            // case 5: an extrapolation of 13 years whose lower bound is 60 s:
            // its error is larger than itself: undecided (no ERR, no page).
            (5, TimeLag::extrapolated(4.1e8, 60.0, None), 600.0, None),
            // case 6: an extrapolation capped by max_age, its estimate above
            // the limit and the limit within its bounds: undecided (the
            // estimate is a guess at the past's rate; the bounds are facts).
            (
                6,
                TimeLag::extrapolated(100.0, 60.0, Some(120.0)),
                90.0,
                None,
            ),
            // case 6b: ... its bounds above the limit: certain.
            (
                6,
                TimeLag::extrapolated(100.0, 95.0, Some(120.0)),
                90.0,
                Some(true),
            ),
            // case 7: the upper bound is below the limit: certainly not above.
            (7, TimeLag::unknown(10.0, Some(50.0)), 60.0, Some(false)),
            (8, TimeLag::CAUGHT_UP, 0.0, Some(false)),
        ];
        for (case, tl, limit, want) in cases {
            assert_eq!(tl.above(limit), want, "case {case}: {tl:?}");
        }
    }

    #[test]
    fn the_truth_is_always_within_the_bounds_of_an_interpolation() {
        // Whatever instant inside (60 s, 90 s] the burst really happened at, the
        // true age is within the bounds.
        let rows = vec![
            (60, Some(100), 100, None),
            (90, Some(100), 1100, None),
            (120, Some(100), 1100, None),
        ];
        let h = history(8, &rows);
        let tl = time_lag(&h, &h.points(), Millis(120_000), None, None);
        assert_eq!(tl.quality(), Interpolated);
        for true_write in [60.001, 75.0, 90.0] {
            let true_age = 120.0 - true_write;
            assert!(tl.at_least() <= true_age && true_age <= tl.at_most().unwrap());
            assert!((tl.seconds().unwrap() - true_age).abs() <= tl.error_seconds().unwrap());
        }
    }
}

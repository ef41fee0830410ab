//! Time lag: the age of the oldest unconsumed message, read off the history of
//! (time seen, head offset) as a table of when each offset was written, with a
//! statement of how good the number is.

use std::collections::VecDeque;

use crate::history::{KeyHistory, Point};
use crate::model::Millis;

/// How a time lag was obtained, best first (derives `Ord` for "worst of").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeLagQuality {
    /// Caught up: 0 s, no estimate involved.
    Exact,
    /// Between two samples of head: wrong by at most the time between them.
    Interpolated,
    /// Before the oldest sample, extrapolated with the current head rate.
    Extrapolated,
    /// Not known; never a made-up number.
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

/// The age of the oldest unconsumed message, with how it was obtained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeLag {
    /// Caught up: nothing unconsumed, 0 s.
    Exact,
    /// The message was written between two samples `max_error_seconds` apart,
    /// so the true age is within that many seconds of `seconds` (below it,
    /// never above: the message existed at the later sample).
    Interpolated {
        seconds: f64,
        max_error_seconds: f64,
    },
    /// Written before the oldest sample; assumes the current head rate held.
    Extrapolated { seconds: f64 },
    /// Not known. `at_least_seconds`: the message already existed at the oldest
    /// sample, so it is at least this old (None when there is no commit).
    Unknown { at_least_seconds: Option<f64> },
}

impl TimeLag {
    /// Seconds when known (0 when caught up).
    pub fn seconds(&self) -> Option<f64> {
        match *self {
            TimeLag::Exact => Some(0.0),
            TimeLag::Interpolated { seconds, .. } | TimeLag::Extrapolated { seconds } => {
                Some(seconds)
            }
            TimeLag::Unknown { .. } => None,
        }
    }
    pub fn quality(&self) -> TimeLagQuality {
        match self {
            TimeLag::Exact => TimeLagQuality::Exact,
            TimeLag::Interpolated { .. } => TimeLagQuality::Interpolated,
            TimeLag::Extrapolated { .. } => TimeLagQuality::Extrapolated,
            TimeLag::Unknown { .. } => TimeLagQuality::Unknown,
        }
    }
    /// A lower bound that holds whatever the quality: the value when known,
    /// else what Unknown can still promise.
    pub fn at_least(&self) -> Option<f64> {
        match *self {
            TimeLag::Unknown { at_least_seconds } => at_least_seconds,
            _ => self.seconds(),
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

/// Time lag of one key at `now`. `head_rate` is the slope of head (msgs/s, the
/// whole stream for JetStream: head is in stream sequences), used only to
/// extrapolate before the oldest sample. `points` is `h`'s ring, decoded.
pub fn time_lag(
    h: &KeyHistory,
    points: &VecDeque<Point>,
    now: Millis,
    head_rate: Option<f64>,
) -> TimeLag {
    let Some(last) = h.last() else {
        return TimeLag::Unknown {
            at_least_seconds: None,
        };
    };
    time_lag_of(h, points, last, now, head_rate)
}

fn time_lag_of(
    h: &KeyHistory,
    points: &VecDeque<Point>,
    last: &Point,
    now: Millis,
    head_rate: Option<f64>,
) -> TimeLag {
    // No commit: there is no "oldest unconsumed" to date.
    let Some(committed) = last.committed else {
        return TimeLag::Unknown {
            at_least_seconds: None,
        };
    };
    // Caught up, including an idle topic where head has not moved for hours
    // (kafka-lag-exporter reports a growing time lag there), and a filtered
    // JetStream consumer whose lag is 0 while other subjects move head.
    if last.lag == 0 || committed >= last.head {
        return TimeLag::Exact;
    }
    // Messages below `low` are gone: the oldest unconsumed one that still
    // exists is at `low`.
    let oldest = last.low.map_or(committed, |l| committed.max(l));
    if oldest >= last.head {
        return TimeLag::Exact;
    }
    // First point where head had passed `oldest`; head is sorted in a ring.
    let i = points.partition_point(|p| p.head <= oldest);
    if i > 0 {
        if let (Some(a), Some(b)) = (points.get(i - 1), points.get(i)) {
            let t = written_at((a.at, a.head), (b.at, b.head), oldest);
            return TimeLag::Interpolated {
                seconds: secs_between(now, t),
                max_error_seconds: (b.at.0 - a.at.0) as f64 / 1000.0,
            };
        }
    }
    let Some(first) = points.front() else {
        return TimeLag::Unknown {
            at_least_seconds: None,
        };
    };
    // Older than the ring: the last rise of head that fell off it may cover it.
    let mut anchor = (first.at, first.head);
    if let Some(rise) = h.earlier_rise() {
        if rise.from.1 <= oldest && oldest < rise.to.1 {
            let t = written_at(rise.from, rise.to, oldest);
            return TimeLag::Interpolated {
                seconds: secs_between(now, t),
                max_error_seconds: (rise.to.0 .0 - rise.from.0 .0) as f64 / 1000.0,
            };
        }
        if oldest < rise.from.1 {
            anchor = rise.from;
        }
    }
    // Reprocessing from far back, or lagwatch just started: go back from the
    // oldest known point at the current head rate, if head moves at all.
    match head_rate {
        Some(rate) if rate > 0.0 => {
            let behind = (anchor.1 - oldest - 1) as f64;
            let t = anchor.0 .0 as f64 - behind / rate * 1000.0;
            TimeLag::Extrapolated {
                seconds: secs_between(now, t),
            }
        }
        _ => TimeLag::Unknown {
            at_least_seconds: Some(secs_between(now, anchor.0 .0 as f64)),
        },
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

    #[test]
    fn time_lag_table() {
        // (case, capacity, rows, now s, head rate, expected)
        type Case = (u32, usize, Vec<Row>, i64, Option<f64>, TimeLag);
        let cases: Vec<Case> = vec![
            // case 1: steady state, consumer 600 messages (60 s) behind: the
            // message at committed was written when head reached committed + 1,
            // 59.9 s before the last sample at 10 msg/s.
            (
                1,
                32,
                steady(21, |i| 5000 + i * 300 - 600),
                1600,
                Some(10.0),
                TimeLag::Interpolated {
                    seconds: 59.9,
                    max_error_seconds: 30.0,
                },
            ),
            // case 2: caught up on an idle topic for an hour: 0, Exact.
            (
                2,
                32,
                (0..5).map(|i| (i * 900, Some(42), 42, Some(0))).collect(),
                3600,
                Some(0.0),
                TimeLag::Exact,
            ),
            // case 3: no commit: Unknown, no bound.
            (
                3,
                32,
                (0..5).map(|i| (i * 30, None, 100 + i, Some(0))).collect(),
                120,
                None,
                TimeLag::Unknown {
                    at_least_seconds: None,
                },
            ),
            // case 4: burst: idle at head 100, then 1000 messages between the
            // samples at 60 s and 90 s; consumer stuck at 100 (first of burst).
            // Interpolation puts it at 60.03 s; the truth is in (60, 90]: the
            // error is bounded by the 30 s between the samples.
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
                TimeLag::Interpolated {
                    seconds: 120.0 - 60.03,
                    max_error_seconds: 30.0,
                },
            ),
            // case 5: reprocessing from offset 0 right after lagwatch started:
            // offset 0 is far older than the oldest sample; extrapolated with
            // the head rate: 5000 messages at 10/s = 500 s before t=1000,
            // less the message itself (0.1 s).
            (
                5,
                32,
                steady(3, |_| 0),
                1060,
                Some(10.0),
                TimeLag::Extrapolated {
                    seconds: 60.0 + 499.9,
                },
            ),
            // case 6: same, but head does not move (no rate): Unknown, but at
            // least as old as the oldest sample.
            (
                6,
                32,
                (0..3)
                    .map(|i| (1000 + i * 30, Some(0), 5000, Some(0)))
                    .collect(),
                1060,
                Some(0.0),
                TimeLag::Unknown {
                    at_least_seconds: Some(60.0),
                },
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
                TimeLag::Interpolated {
                    seconds: 270.0 - 0.1,
                    max_error_seconds: 30.0,
                },
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
                TimeLag::Interpolated {
                    seconds: 59.9,
                    max_error_seconds: 30.0,
                },
            ),
            // case 9: committed above head (a reading anomaly): lag 0, Exact.
            (
                9,
                32,
                vec![(0, Some(12), 10, None), (30, Some(12), 10, None)],
                30,
                None,
                TimeLag::Exact,
            ),
            // case 10: two missed polls: samples 90 s apart around the
            // message; still interpolated, and the bound says 90 s.
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
                TimeLag::Interpolated {
                    seconds: 59.9,
                    max_error_seconds: 90.0,
                },
            ),
        ];
        for (case, cap, rows, now, rate, want) in cases {
            let h = history(cap, &rows);
            let got = time_lag(&h, &h.points(), Millis(now * 1000), rate);
            assert_eq!(got.quality(), want.quality(), "case {case}: {got:?}");
            match (got, want) {
                (
                    TimeLag::Interpolated {
                        seconds: g,
                        max_error_seconds: ge,
                    },
                    TimeLag::Interpolated {
                        seconds: w,
                        max_error_seconds: we,
                    },
                ) => {
                    assert!((g - w).abs() < 1e-6, "case {case}: {g} vs {w}");
                    assert!((ge - we).abs() < 1e-9, "case {case}: {ge} vs {we}");
                }
                (TimeLag::Extrapolated { seconds: g }, TimeLag::Extrapolated { seconds: w }) => {
                    assert!((g - w).abs() < 1e-6, "case {case}: {g} vs {w}")
                }
                (g, w) => assert_eq!(g, w, "case {case}"),
            }
        }
    }

    #[test]
    fn a_burst_estimate_is_never_off_by_more_than_the_poll_interval() {
        // Whatever instant inside (60 s, 90 s] the burst really happened at, the
        // interpolated write time is in the same interval, so |error| <= 30 s.
        let rows = vec![
            (60, Some(100), 100, None),
            (90, Some(100), 1100, None),
            (120, Some(100), 1100, None),
        ];
        let h = history(8, &rows);
        let TimeLag::Interpolated {
            seconds,
            max_error_seconds,
        } = time_lag(&h, &h.points(), Millis(120_000), None)
        else {
            panic!("expected an interpolation");
        };
        for true_write in [60.001, 75.0, 90.0] {
            let true_age = 120.0 - true_write;
            assert!((seconds - true_age).abs() <= max_error_seconds);
        }
    }
}

//! Rates from the window: least-squares slopes of head, committed, lag and low,
//! each fitted only over the trailing stretch where its series is continuous.

use std::collections::VecDeque;

use crate::history::{KeyKind, Point};

/// Which points of a ring fall in the window `[now - window, now]`, and whether
/// there are enough of them (count and span) to say anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Index range into the ring.
    pub start: usize,
    pub end: usize,
    /// The window's start, `now - window`, in ms.
    pub from_ms: i64,
}

impl Window {
    pub fn of(points: &VecDeque<Point>, now_ms: i64, window_ms: i64) -> Self {
        let from = now_ms.saturating_sub(window_ms);
        let start = points.partition_point(|p| p.at.0 < from);
        let end = points.partition_point(|p| p.at.0 <= now_ms);
        Self {
            start,
            end: end.max(start),
            from_ms: from,
        }
    }
}

/// Limits under which a fit is "not enough data".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enough {
    pub min_samples: usize,
    pub min_span_ms: i64,
}

/// Start (index into the ring) of the trailing run within `w` where `f` is
/// Some and never decreases: a counter that went back (consumer recreated or
/// rewound, low moved back) or vanished (commit deleted) starts a new run, so no
/// slope straddles the discontinuity.
pub fn continuous_from(
    points: &VecDeque<Point>,
    w: Window,
    f: impl Fn(&Point) -> Option<i64>,
) -> usize {
    let mut start = w.end;
    let mut next: Option<i64> = None;
    for i in (w.start..w.end).rev() {
        let Some(v) = points.get(i).and_then(&f) else {
            break;
        };
        if next.is_some_and(|n| v > n) {
            break;
        }
        next = Some(v);
        start = i;
    }
    start
}

/// Least-squares slope, per second, of `f` over ring indices `from..to`, or None
/// when those points are too few or span too little time.
///
/// One pass, Welford-style co-moments, with x and y taken relative to the first
/// point so that epoch milliseconds and 10^12 offsets do not eat the precision.
/// Least squares over the real timestamps makes a missed poll harmless: the
/// points are simply further apart.
pub fn slope(
    points: &VecDeque<Point>,
    from: usize,
    to: usize,
    enough: Enough,
    f: impl Fn(&Point) -> Option<f64>,
) -> Option<f64> {
    slope_indexed(points, from, to, enough, |_, p| f(p))
}

/// [`slope`] with the value a function of the point and its index in the ring.
fn slope_indexed(
    points: &VecDeque<Point>,
    from: usize,
    to: usize,
    enough: Enough,
    f: impl Fn(usize, &Point) -> Option<f64>,
) -> Option<f64> {
    let first = points.get(from)?;
    let last = points.get(to.checked_sub(1)?)?;
    if to - from < enough.min_samples || last.at.0 - first.at.0 < enough.min_span_ms {
        return None;
    }
    fit(points
        .range(from..to)
        .enumerate()
        .map(|(k, p)| Some((p.at.0, f(from + k, p)?))))
}

/// The least-squares slope, per second, of (time ms, value) pairs; None if any
/// value is missing or the times do not vary. One pass (Welford co-moments),
/// times and values taken relative to the first pair, so epoch milliseconds and
/// 10^12 offsets keep full precision.
fn fit(xy: impl Iterator<Item = Option<(i64, f64)>>) -> Option<f64> {
    let mut origin: Option<(i64, f64)> = None;
    let (mut n, mut mx, mut my, mut cxy, mut cxx) = (0.0_f64, 0.0, 0.0, 0.0, 0.0);
    for pair in xy {
        let (t, v) = pair?;
        let (x0, y0) = *origin.get_or_insert((t, v));
        let x = (t - x0) as f64 / 1000.0;
        let y = v - y0;
        n += 1.0;
        let dx = x - mx;
        mx += dx / n;
        my += (y - my) / n;
        cxy += dx * (y - my);
        cxx += dx * (x - mx);
    }
    (cxx > 0.0).then(|| cxy / cxx)
}

/// The rates of one key, msgs/s; None means "not enough data".
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Messages produced per second (JetStream filtered consumers: consume + lag
    /// growth, see [`rates`]).
    pub produce: Option<f64>,
    /// Messages consumed per second (slope of `committed`; 0 when the group has
    /// never committed on the key in the window: nothing was consumed).
    pub consume: Option<f64>,
    /// Slope of the lag.
    pub lag_growth: Option<f64>,
    /// Slope of `head` itself: the whole stream for JetStream. Time lag
    /// extrapolates head backwards with it.
    pub head: Option<f64>,
    /// Slope of `low`: how fast retention eats the log (information only: it
    /// moves in segment-sized steps on Kafka).
    pub low: Option<f64>,
    /// Messages the committed offset jumped past at the newest point, beyond
    /// what the consumer was ever seen to consume (see [`SKIP_FACTOR`]).
    pub skipped: u64,
}

/// A forward jump of the committed offset is a skip (an offset reset, a purge)
/// rather than consumption when it is this many times larger than the most the
/// consumer was seen to consume in an interval of the same length (or the
/// produce rate, if higher), and at least [`SKIP_MIN_MESSAGES`]. A consumer that
/// catches up a backlog ten times faster than it ever consumed, within one poll,
/// is counted as a skip too: the count says "suspected".
pub const SKIP_FACTOR: f64 = 10.0;
/// Jumps smaller than this are never skips: a commit interval's worth of
/// messages can always arrive at once.
pub const SKIP_MIN_MESSAGES: i64 = 1000;

/// All rates of one ring over the window `w`.
///
/// JetStream: `head` is the stream's last_seq + 1, which counts every subject
/// and only grows (retention does not move it). An unfiltered consumer's produce
/// rate is its slope; a filtered consumer's is derived as consume + lag growth
/// instead (the stream's sequence counts subjects it never gets), which under
/// `max_msgs`/`max_age` retention can under-read while unread messages expire.
/// `skips` are the ones judged at earlier polls (see [`committed_run`]).
pub fn rates(
    points: &VecDeque<Point>,
    w: Window,
    enough: Enough,
    kind: KeyKind,
    skips: &[(crate::model::Millis, i64)],
) -> Rates {
    // Head never decreases within a ring (History restarts it), so the whole
    // window is one run.
    let head = slope(points, w.start, w.end, enough, |p| Some(p.head as f64));
    let run = committed_run(points, w, head.unwrap_or(0.0), skips);
    let no_commit = trailing_uncommitted(points, w);
    // The run's committed and lag with the skips taken out.
    let adjusted = |value: &dyn Fn(&Point, i64) -> f64| -> Option<f64> {
        slope_indexed(points, run.start, w.end, enough, |i, p| {
            Some(value(p, run.skipped_until(i)))
        })
    };
    let consume = if no_commit == w.start && w.end > w.start {
        // Never committed in the window: nothing consumed, once the window
        // holds enough points to say so at all.
        slope(points, w.start, w.end, enough, |_| Some(0.0))
    } else {
        adjusted(&|p, skipped| p.committed.unwrap_or(0) as f64 - skipped as f64)
    };
    // Lag is fitted over the same run as committed: a rewind makes lag jump,
    // and a slope across the jump would be the "wild spike" we must not show;
    // a skip is taken out of it as out of committed. With no commit at all, the
    // run of no-commit points is used.
    let lag_growth = if no_commit < w.end {
        slope(points, no_commit, w.end, enough, |p| Some(p.lag as f64))
    } else {
        adjusted(&|p, skipped| p.lag as f64 + skipped as f64)
    };
    let produce = match kind {
        KeyKind::Jetstream { filtered: true } => consume.zip(lag_growth).map(|(c, g)| c + g),
        KeyKind::Kafka | KeyKind::Jetstream { filtered: false } => head,
    };
    let low_from = continuous_from(points, w, |p| p.low);
    let low = slope(points, low_from, w.end, enough, |p| p.low.map(|l| l as f64));
    Rates {
        produce,
        consume,
        lag_growth,
        head,
        low,
        skipped: w.end.checked_sub(1).map_or(0, |i| run.skipped_at(i)),
    }
}

/// The trailing run of the window over which `committed` is one continuous
/// series: it starts after the last point where committed went back or
/// vanished. Skips inside it (forward jumps no consumption explains) are taken
/// out of the series, so the rates fitted over it are the consumer's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommittedRun {
    pub start: usize,
    /// (index of the point the jump landed on, messages skipped).
    pub skips: Vec<(usize, i64)>,
}

impl CommittedRun {
    /// Messages skipped up to and including point `i`.
    fn skipped_until(&self, i: usize) -> i64 {
        self.skips
            .iter()
            .filter(|(at, _)| *at <= i)
            .map(|(_, n)| n)
            .sum()
    }

    /// Messages skipped by a jump onto point `i`.
    pub fn skipped_at(&self, i: usize) -> u64 {
        self.skips
            .iter()
            .find(|(at, _)| *at == i)
            .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0))
    }
}

/// See [`CommittedRun`]. `head_rate` is the produce rate: a floor for what a
/// consumer can plausibly consume. A skip is judged once, when the point it
/// landed on is the newest (with everything before it as context); `known` are
/// the skips judged so far, by the time of that point, and are taken as they
/// are (a window that has slid past the context would judge them differently).
pub fn committed_run(
    points: &VecDeque<Point>,
    w: Window,
    head_rate: f64,
    known: &[(crate::model::Millis, i64)],
) -> CommittedRun {
    let mut run = CommittedRun {
        start: w.start,
        skips: Vec::new(),
    };
    let mut fastest: f64 = 0.0;
    let mut pairs = 0usize;
    for i in w.start + 1..w.end {
        let (Some(a), Some(b)) = (points.get(i - 1), points.get(i)) else {
            continue;
        };
        let (Some(ca), Some(cb)) = (a.committed, b.committed) else {
            run = CommittedRun {
                start: i,
                skips: Vec::new(),
            };
            pairs = 0;
            continue;
        };
        let secs = (b.at.0 - a.at.0) as f64 / 1000.0;
        let jump = cb - ca;
        if jump < 0 {
            run = CommittedRun {
                start: i,
                skips: Vec::new(),
            };
            pairs = 0;
            continue;
        }
        if let Some(&(_, n)) = known.iter().find(|(at, _)| *at == b.at) {
            run.skips.push((i, n));
            continue;
        }
        // Judged only at the newest point, against at least two earlier
        // intervals of this key.
        let plausible = fastest.max(head_rate.max(0.0)) * secs;
        let newest = i + 1 == w.end;
        if newest
            && pairs >= 2
            && jump >= SKIP_MIN_MESSAGES
            && jump as f64 > SKIP_FACTOR * plausible
        {
            // What the consumer would have consumed meanwhile at its usual
            // rate is consumption; the rest was skipped.
            let consumed = (fastest * secs).round() as i64;
            run.skips.push((i, (jump - consumed).max(0)));
            continue;
        }
        if secs > 0.0 {
            fastest = fastest.max(jump as f64 / secs);
        }
        pairs += 1;
    }
    run
}

fn trailing_uncommitted(points: &VecDeque<Point>, w: Window) -> usize {
    let mut start = w.end;
    for i in (w.start..w.end).rev() {
        if points.get(i).is_some_and(|p| p.committed.is_none()) {
            start = i;
        } else {
            break;
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Millis;

    const ENOUGH: Enough = Enough {
        min_samples: 3,
        min_span_ms: 30_000,
    };

    fn ring(rows: &[(i64, Option<i64>, i64, Option<i64>)]) -> VecDeque<Point> {
        rows.iter()
            .map(|&(t_ms, committed, head, low)| Point {
                at: Millis(t_ms),
                committed,
                head,
                low,
                lag: u64::try_from(head - committed.unwrap_or(0)).unwrap_or(0),
            })
            .collect()
    }

    fn all(points: &VecDeque<Point>) -> Window {
        Window {
            start: 0,
            end: points.len(),
            from_ms: points.front().map_or(0, |p| p.at.0),
        }
    }

    #[test]
    fn slope_table_recovers_the_rate_of_synthetic_series() {
        // (case, timestamps ms, values, expected slope per second)
        type Case = (u32, Vec<i64>, Vec<f64>, Option<f64>);
        let cases: Vec<Case> = vec![
            // case 1: steady 12.5 msg/s at a 30 s poll, epoch-sized timestamps
            // and 10^12-sized offsets.
            (
                1,
                (0..21).map(|i| 1_700_000_000_000 + i * 30_000).collect(),
                (0..21).map(|i| 1e12 + 375.0 * i as f64).collect(),
                Some(12.5),
            ),
            // case 2: missed polls (irregular spacing) do not bias the slope.
            (
                2,
                vec![0, 30_000, 90_000, 100_000, 210_000],
                vec![0.0, 300.0, 900.0, 1000.0, 2100.0],
                Some(10.0),
            ),
            // case 3: idle: slope 0.
            (3, vec![0, 30_000, 60_000], vec![7.0; 3], Some(0.0)),
            // case 4: two points are too few (min 3).
            (4, vec![0, 30_000], vec![0.0, 10.0], None),
            // case 5: three points within 20 s span too little (min 30 s).
            (5, vec![0, 10_000, 20_000], vec![0.0, 1.0, 2.0], None),
            // case 6: noisy points: the least-squares answer, not the endpoints'.
            (
                6,
                vec![0, 30_000, 60_000, 90_000],
                vec![0.0, 330.0, 570.0, 900.0],
                Some(9.8),
            ),
        ];
        for (case, ts, ys, want) in cases {
            let pts: VecDeque<Point> = ts
                .iter()
                .zip(&ys)
                .map(|(&t, _)| Point {
                    at: Millis(t),
                    committed: None,
                    head: 0,
                    low: None,
                    lag: 0,
                })
                .collect();
            let got = slope(&pts, 0, pts.len(), ENOUGH, |p| {
                let i = pts.iter().position(|q| q.at == p.at)?;
                ys.get(i).copied()
            });
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-6, "case {case}: {g} vs {w}"),
                (g, w) => assert_eq!(g, w, "case {case}"),
            }
        }
    }

    #[test]
    fn continuous_from_table_starts_after_the_last_discontinuity() {
        // (case, committed per point, expected start index)
        type Case = (u32, Vec<Option<i64>>, usize);
        let cases: Vec<Case> = vec![
            // case 1: monotone: the whole window.
            (1, vec![Some(1), Some(2), Some(3)], 0),
            // case 2: rewound at index 2: the run starts there.
            (2, vec![Some(5), Some(6), Some(0), Some(1)], 2),
            // case 3: commit missing at index 1: starts after it.
            (3, vec![Some(1), None, Some(2), Some(3)], 2),
            // case 4: the newest point has no commit: empty run.
            (4, vec![Some(1), Some(2), None], 3),
            // case 5: constant values are continuous.
            (5, vec![Some(4), Some(4), Some(4)], 0),
        ];
        for (case, cs, want) in cases {
            let rows: Vec<_> = cs
                .iter()
                .enumerate()
                .map(|(i, &c)| (i as i64 * 30_000, c, 100, None))
                .collect();
            let pts = ring(&rows);
            assert_eq!(
                continuous_from(&pts, all(&pts), |p| p.committed),
                want,
                "case {case}"
            );
        }
    }

    #[test]
    fn rates_table_for_kafka_and_jetstream_shapes() {
        // (case, rows (t ms, committed, head, low), jetstream, produce, consume, growth)
        type Row = (i64, Option<i64>, i64, Option<i64>);
        let steady: Vec<Row> = (0..21)
            .map(|i| (i * 30_000, Some(i * 240), 1000 + i * 300, Some(i * 60)))
            .collect();
        let rewound: Vec<Row> = (0..10)
            .map(|i| {
                let c = if i < 5 { 5000 + i * 100 } else { (i - 5) * 100 };
                (i * 30_000, Some(c), 10_000 + i * 100, None)
            })
            .collect();
        // A consumer keeping pace 1,000,000 messages behind, reset to the log
        // end at the last poll (issue 20, item 6).
        let reset: Vec<Row> = (0..21)
            .map(|i| {
                let head = 1_000_000 + i * 300;
                (
                    i * 30_000,
                    Some(if i < 20 { i * 300 } else { head }),
                    head,
                    None,
                )
            })
            .collect();
        // The same consumer catching up 2,000 messages in one poll: 67/s, well
        // within ten times what it was seen to do: consumption, not a skip.
        let fast: Vec<Row> = (0..21)
            .map(|i| {
                let head = 10_000 + i * 300;
                (
                    i * 30_000,
                    Some(if i < 20 { i * 300 } else { i * 300 + 2000 }),
                    head,
                    None,
                )
            })
            .collect();
        type Case = (u32, Vec<Row>, bool, Option<f64>, Option<f64>, Option<f64>);
        let cases: Vec<Case> = vec![
            // case 1: steady Kafka: 10 msg/s in, 8 out, lag grows 2/s.
            (1, steady.clone(), false, Some(10.0), Some(8.0), Some(2.0)),
            // case 2: same numbers as a filtered JetStream consumer: produce
            // derived = 8 + 2.
            (2, steady, true, Some(10.0), Some(8.0), Some(2.0)),
            // case 3: consumer rewound at t=150 s: consume fitted after it (3.33/s),
            // not a huge negative spike; lag growth fitted on the same run (0).
            (
                3,
                rewound,
                false,
                Some(100.0 / 30.0),
                Some(100.0 / 30.0),
                Some(0.0),
            ),
            // case 4: too few samples: everything None.
            (
                4,
                vec![(0, Some(0), 10, None), (30_000, Some(5), 20, None)],
                false,
                None,
                None,
                None,
            ),
            // case 5: no commit: nothing consumed (0, not "unknown": the group
            // sums it; issue 20, item 2), produce from head, growth from the lag
            // the source reported (here the whole log, growing 10/s).
            (
                5,
                (0..5).map(|i| (i * 30_000, None, i * 300, None)).collect(),
                false,
                Some(10.0),
                Some(0.0),
                Some(10.0),
            ),
            // case 6: the reset is a skip: taken out of the series, consume stays
            // 10/s (not 33,000/s) and lag growth 0 (not -33,000/s).
            (6, reset.clone(), false, Some(10.0), Some(10.0), Some(0.0)),
            // case 7: a fast catch-up is consumption: the slope carries it
            // (2,000 extra at the last of 21 points adds 600,000 / 693,000 per s).
            (
                7,
                fast,
                false,
                Some(10.0),
                Some(10.0 + 600_000.0 / 693_000.0),
                Some(-600_000.0 / 693_000.0),
            ),
        ];
        for (case, rows, js, produce, consume, growth) in cases {
            let pts = ring(&rows);
            let kind = if js {
                KeyKind::Jetstream { filtered: true }
            } else {
                KeyKind::Kafka
            };
            let r = rates(&pts, all(&pts), ENOUGH, kind, &[]);
            for (name, got, want) in [
                ("produce", r.produce, produce),
                ("consume", r.consume, consume),
                ("lag_growth", r.lag_growth, growth),
            ] {
                match (got, want) {
                    (Some(g), Some(w)) => {
                        assert!((g - w).abs() < 1e-6, "case {case} {name}: {g} vs {w}")
                    }
                    (g, w) => assert_eq!(g, w, "case {case} {name}"),
                }
            }
        }
    }

    #[test]
    fn a_reset_forward_is_counted_once_at_the_poll_it_happened() {
        // (case, committed series (head 1e6 + 300 i), skipped at the newest point)
        let at = |cs: Vec<i64>| -> u64 {
            let rows: Vec<_> = cs
                .iter()
                .enumerate()
                .map(|(i, &c)| (i as i64 * 30_000, Some(c), 1_000_000 + i as i64 * 300, None))
                .collect();
            let pts = ring(&rows);
            rates(&pts, all(&pts), ENOUGH, KeyKind::Kafka, &[]).skipped
        };
        // case 1: the jump is onto the newest point: 1,000,300 - 300 consumed.
        assert_eq!(at(vec![0, 300, 600, 1_000_900]), 1_000_000);
        // case 2: one poll later the jump is history: not counted again.
        assert_eq!(at(vec![0, 300, 600, 1_000_900, 1_001_200]), 0);
        // case 2b: and a jump that is not the newest point is never judged
        // afresh (it is remembered from when it was).
        assert_eq!(at(vec![0, 300, 600, 1_000_900, 1_001_200, 1_001_500]), 0);
        // case 3: too little history to judge (one interval before it).
        assert_eq!(at(vec![0, 300, 1_000_600]), 0);
        // case 4: a rewind is not a skip.
        assert_eq!(at(vec![5000, 5300, 5600, 0]), 0);
    }

    #[test]
    fn the_window_selects_points_between_now_minus_window_and_now() {
        let pts = ring(
            &(0..10)
                .map(|i| (i * 60_000, Some(0), 0, None))
                .collect::<Vec<_>>(),
        );
        // now = 540 s, window 300 s: points at 240..=540 s, indices 4..10.
        assert_eq!(
            Window::of(&pts, 540_000, 300_000),
            Window {
                start: 4,
                end: 10,
                from_ms: 240_000
            }
        );
        // now before a point (clock skew): later points are left out.
        assert_eq!(
            Window::of(&pts, 150_000, 300_000),
            Window {
                start: 0,
                end: 3,
                from_ms: -150_000
            }
        );
    }
}

//! Rates from the window: least-squares slopes of head, committed, lag and low,
//! each fitted only over the trailing stretch where its series is continuous.

use std::collections::VecDeque;

use crate::history::Point;

/// Which points of a ring fall in the window `[now - window, now]`, and whether
/// there are enough of them (count and span) to say anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Index range into the ring.
    pub start: usize,
    pub end: usize,
}

impl Window {
    pub fn of(points: &VecDeque<Point>, now_ms: i64, window_ms: i64) -> Self {
        let from = now_ms.saturating_sub(window_ms);
        let start = points.partition_point(|p| p.at.0 < from);
        let end = points.partition_point(|p| p.at.0 <= now_ms);
        Self {
            start,
            end: end.max(start),
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
    let first = points.get(from)?;
    let last = points.get(to.checked_sub(1)?)?;
    if to - from < enough.min_samples || last.at.0 - first.at.0 < enough.min_span_ms {
        return None;
    }
    let (x0, y0) = (first.at.0, f(first)?);
    let (mut n, mut mx, mut my, mut cxy, mut cxx) = (0.0_f64, 0.0, 0.0, 0.0, 0.0);
    for p in points.range(from..to) {
        let x = (p.at.0 - x0) as f64 / 1000.0;
        let y = f(p)? - y0;
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
    /// Messages produced per second (for JetStream: consume + lag growth).
    pub produce: Option<f64>,
    /// Messages consumed per second (slope of `committed`).
    pub consume: Option<f64>,
    /// Slope of the lag.
    pub lag_growth: Option<f64>,
    /// Slope of `head` itself: the whole stream for JetStream. Time lag
    /// extrapolates head backwards with it.
    pub head: Option<f64>,
    /// Slope of `low`: how fast retention eats the log.
    pub low: Option<f64>,
}

/// All rates of one ring over the window `w`.
///
/// JetStream: `head` is the stream's last_seq + 1, which counts every subject,
/// while a filtered consumer's lag counts only its own; so the produce rate for
/// the consumer is derived as consume + lag growth instead of the head slope.
pub fn rates(points: &VecDeque<Point>, w: Window, enough: Enough, jetstream: bool) -> Rates {
    // Head never decreases within a ring (History restarts it), so the whole
    // window is one run.
    let head = slope(points, w.start, w.end, enough, |p| Some(p.head as f64));
    let c_from = continuous_from(points, w, |p| p.committed);
    let consume = slope(points, c_from, w.end, enough, |p| {
        p.committed.map(|c| c as f64)
    });
    // Lag is fitted over the same run as committed: a rewind makes lag jump,
    // and a slope across the jump would be the "wild spike" we must not show.
    // With no commit at all, the run of no-commit points is used instead.
    let lag_from = if consume.is_some() || c_from < w.end {
        c_from
    } else {
        trailing_uncommitted(points, w)
    };
    let lag_growth = slope(points, lag_from, w.end, enough, |p| Some(p.lag as f64));
    let produce = if jetstream {
        consume.zip(lag_growth).map(|(c, g)| c + g)
    } else {
        head
    };
    let low_from = continuous_from(points, w, |p| p.low);
    let low = slope(points, low_from, w.end, enough, |p| p.low.map(|l| l as f64));
    Rates {
        produce,
        consume,
        lag_growth,
        head,
        low,
    }
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
        type Case = (u32, Vec<Row>, bool, Option<f64>, Option<f64>, Option<f64>);
        let cases: Vec<Case> = vec![
            // case 1: steady Kafka: 10 msg/s in, 8 out, lag grows 2/s.
            (1, steady.clone(), false, Some(10.0), Some(8.0), Some(2.0)),
            // case 2: same numbers as JetStream: produce derived = 8 + 2.
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
            // case 5: no commit: consume None, produce from head, growth from
            // the lag the source reported (here the whole log, growing 10/s).
            (
                5,
                (0..5).map(|i| (i * 30_000, None, i * 300, None)).collect(),
                false,
                Some(10.0),
                None,
                Some(10.0),
            ),
        ];
        for (case, rows, js, produce, consume, growth) in cases {
            let pts = ring(&rows);
            let r = rates(&pts, all(&pts), ENOUGH, js);
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
    fn the_window_selects_points_between_now_minus_window_and_now() {
        let pts = ring(
            &(0..10)
                .map(|i| (i * 60_000, Some(0), 0, None))
                .collect::<Vec<_>>(),
        );
        // now = 540 s, window 300 s: points at 240..=540 s, indices 4..10.
        assert_eq!(
            Window::of(&pts, 540_000, 300_000),
            Window { start: 4, end: 10 }
        );
        // now before a point (clock skew): later points are left out.
        assert_eq!(
            Window::of(&pts, 150_000, 300_000),
            Window { start: 0, end: 3 }
        );
    }
}

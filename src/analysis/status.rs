//! Partition status after Burrow's evaluator (linkedin/Burrow,
//! core/internal/evaluator/caching.go, `calculatePartitionStatus`), translated
//! from Burrow's ring of commits to lagwatch's ring of polls, plus the ERR
//! thresholds Burrow refuses to have.

use std::collections::VecDeque;

use crate::history::{KeyHistory, Point};
use crate::model::{Millis, Status};

use super::rates::{Enough, Window};
use super::settings::Thresholds;
use super::timelag::TimeLag;

/// A status and whether the window held enough data for every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub status: Status,
    /// False when the window was too thin for the window rules (REWIND, STALL,
    /// WARN): the status is then OK, ERR or STOP only (Burrow's `Complete` < 1).
    pub complete: bool,
}

/// Evaluates one key at `now` over window `w` of `points`, `h`'s ring decoded.
///
/// Rules in order; the first that holds decides:
/// 0. ERR (lagwatch): lag above `error_lag`, or time lag above `error_time_lag`.
/// 1. OK (Burrow rule 1, "if the lag is ever zero, the period is OK"): current
///    lag, or any lag in the window, at or below `allowed_lag`.
/// 2. REWIND (Burrow rule 2): committed went back between two samples.
/// 3. STOP (Burrow rule 3, "no commit for longer than the ring spans"): with
///    polls we see offsets, not commit events, so it becomes: the committed
///    offset has not changed for longer than `stop_after`.
/// 4. STALL (Burrow rule 4, "committing offsets that do not change"): committed
///    constant across the whole window.
/// 5. WARN (Burrow rule 5, "lag is not decreasing"): lag never decreased across
///    the window and ended higher than it started. Burrow also warns on constant
///    lag; a consumer keeping pace at a constant lag is not slow, so we do not.
/// 6. OK.
///
/// Burrow checks REWIND before STOP (the code, not its wiki's list), and so do
/// we. Without enough window samples only rules 0, 1 (current lag) and 3 run.
pub fn evaluate(
    h: &KeyHistory,
    points: &VecDeque<Point>,
    now: Millis,
    w: Window,
    enough: Enough,
    t: &Thresholds,
    time_lag: &TimeLag,
) -> Evaluation {
    let done = |status| Evaluation {
        status,
        complete: true,
    };
    let Some(last) = h.last() else {
        return Evaluation {
            status: Status::Ok,
            complete: false,
        };
    };
    // Rule 0.
    let over_lag = t.error_lag.is_some_and(|e| last.lag > e);
    let over_time = t
        .error_time_lag_secs
        .zip(time_lag.at_least())
        .is_some_and(|(limit, age)| age > limit);
    if over_lag || over_time {
        return done(Status::Err);
    }
    // Rule 1, current lag (Burrow: `currentLag > 0` before any rule).
    if last.lag <= t.allowed_lag {
        return done(Status::Ok);
    }
    // Burrow drops the nil offsets at the start of the ring; we take the
    // trailing run of committed samples in the window.
    let mut from = w.end;
    while from > w.start && points.get(from - 1).is_some_and(|p| p.committed.is_some()) {
        from -= 1;
    }
    // Every point in `from..w.end` has a commit (the loop above), so the
    // default is never used; iterating avoids a per-key allocation.
    let window = || {
        points
            .range(from..w.end)
            .map(|p| (p.committed.unwrap_or_default(), p.lag))
    };
    let count = w.end - from;
    let span_ms = match (
        points.get(from),
        w.end.checked_sub(1).and_then(|i| points.get(i)),
    ) {
        (Some(a), Some(b)) => b.at.0 - a.at.0,
        _ => 0,
    };
    let stopped =
        last.committed.is_some() && now.0.saturating_sub(h.committed_since().0) > t.stop_after_ms;
    if count < enough.min_samples || span_ms < enough.min_span_ms {
        // Rule 3 needs only the age of the committed offset.
        return Evaluation {
            status: if stopped { Status::Stop } else { Status::Ok },
            complete: false,
        };
    }
    // Rule 1, window.
    if window().any(|(_, lag)| lag <= t.allowed_lag) {
        return done(Status::Ok);
    }
    let pairs = || window().zip(window().skip(1));
    // Rule 2.
    if pairs().any(|(a, b)| b.0 < a.0) {
        return done(Status::Rewind);
    }
    // Rule 3.
    if stopped {
        return done(Status::Stop);
    }
    // Rule 4.
    if pairs().all(|(a, b)| b.0 == a.0) {
        return done(Status::Stall);
    }
    // Rule 5.
    let rising = window()
        .next()
        .zip(window().next_back())
        .is_some_and(|(a, b)| b.1 > a.1);
    if rising && pairs().all(|(a, b)| b.1 >= a.1) {
        return done(Status::Warn);
    }
    done(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{History, KeyHistory};
    use crate::model::{ConsumerKey, GroupKey, Sample, SourceId};
    use std::sync::Arc;

    const ENOUGH: Enough = Enough {
        min_samples: 3,
        min_span_ms: 30_000,
    };
    const WINDOW_MS: i64 = 600_000;

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

    /// (seconds, committed, head)
    type Row = (i64, Option<i64>, i64);

    fn history(rows: &[Row]) -> KeyHistory {
        let mut h = History::new(64);
        for &(t, committed, head) in rows {
            let s = Sample {
                key: key(),
                committed,
                head,
                low: None,
                lag: u64::try_from(head - committed.unwrap_or(0)).unwrap_or(0),
                jetstream: None,
            };
            h.record(&s, Millis(t * 1000));
        }
        h.get(&key()).cloned().unwrap()
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            allowed_lag: 0,
            error_lag: None,
            error_time_lag_secs: None,
            stop_after_ms: 1_200_000,
        }
    }

    #[test]
    fn status_table_after_burrows_rules() {
        let n = 21; // ten minutes of 30 s polls
                    // Samples every 30 s from t=0.
        let seq_n = |n: i64, f: &dyn Fn(i64) -> (Option<i64>, i64)| {
            (0..n)
                .map(|i| {
                    let (c, h) = f(i);
                    (i * 30, c, h)
                })
                .collect::<Vec<Row>>()
        };
        let seq = |f: &dyn Fn(i64) -> (Option<i64>, i64)| seq_n(n, f);
        let with_err = Thresholds {
            error_lag: Some(1000),
            ..thresholds()
        };
        let allow_50 = Thresholds {
            allowed_lag: 50,
            ..thresholds()
        };
        let err_time = Thresholds {
            error_time_lag_secs: Some(60.0),
            ..thresholds()
        };
        // (case, rows, extra seconds after the last sample, thresholds, time lag, expected, complete)
        type Case = (u32, Vec<Row>, i64, Thresholds, TimeLag, Status, bool);
        let cases: Vec<Case> = vec![
            // case 1: steady consumer with a small varying lag: OK.
            (
                1,
                seq(&|i| (Some(i * 100 - (i % 2) * 5), i * 100 + 10)),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Ok,
                true,
            ),
            // case 2: idle topic, caught up: lag 0: OK.
            (
                2,
                seq(&|_| (Some(500), 500)),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Ok,
                true,
            ),
            // case 3: lag was 0 once in the window (Burrow rule 1): OK even though
            // it grew since.
            (
                3,
                seq(&|i| (Some(100), 100 + i * 3)),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Ok,
                true,
            ),
            // case 4: consumer rewound mid-window, lag > 0 all along: REWIND.
            (
                4,
                seq(&|i| {
                    (
                        Some(if i < 10 { 1000 + i * 10 } else { 500 + i * 10 }),
                        2000 + i * 10,
                    )
                }),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Rewind,
                true,
            ),
            // case 5: stalled: committed constant across the window, lag > 0,
            // unchanged for 10 min (< stop_after 20 min): STALL.
            (
                5,
                seq(&|i| (Some(100), 200 + i)),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Stall,
                true,
            ),
            // case 6: stopped: the same for 25 min (51 polls): unchanged for
            // longer than stop_after (20 min): STOP.
            (
                6,
                seq_n(51, &|i| (Some(100), 200 + i)),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Stop,
                true,
            ),
            // case 7: slow consumer, commits move, lag grows every poll: WARN.
            (
                7,
                seq(&|i| (Some(i * 10), i * 20 + 5)),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Warn,
                true,
            ),
            // case 8: keeping pace at a constant lag of 5: OK (Burrow would WARN).
            (
                8,
                seq(&|i| (Some(i * 10), i * 10 + 5)),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Ok,
                true,
            ),
            // case 9: lag above error_lag: ERR wins over everything.
            (
                9,
                seq(&|i| (Some(100), 2000 + i)),
                0,
                with_err,
                TimeLag::Exact,
                Status::Err,
                true,
            ),
            // case 10: lag 40 within allowed_lag 50: OK even though stalled.
            (
                10,
                seq(&|_| (Some(100), 140)),
                0,
                allow_50,
                TimeLag::Exact,
                Status::Ok,
                true,
            ),
            // case 11: time lag above error_time_lag: ERR.
            (
                11,
                seq(&|i| (Some(i * 10), i * 10 + 5)),
                0,
                err_time,
                TimeLag::Interpolated {
                    seconds: 90.0,
                    max_error_seconds: 30.0,
                },
                Status::Err,
                true,
            ),
            // case 12: too few samples (2): window rules skipped, OK, incomplete.
            (
                12,
                vec![(0, Some(100), 200), (30, Some(100), 300)],
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Ok,
                false,
            ),
            // case 13: too few samples but the commit is 25 min old: STOP.
            (
                13,
                vec![(0, Some(100), 200), (30, Some(100), 300)],
                1500,
                thresholds(),
                TimeLag::Exact,
                Status::Stop,
                false,
            ),
            // case 14: no commit at all: nothing to evaluate, OK, incomplete.
            (
                14,
                seq(&|i| (None, i * 10 + 5)),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Ok,
                false,
            ),
            // case 15: unknown time lag still ERRs on its lower bound.
            (
                15,
                seq(&|i| (Some(i * 10), i * 10 + 5)),
                0,
                err_time,
                TimeLag::Unknown {
                    at_least_seconds: Some(61.0),
                },
                Status::Err,
                true,
            ),
            // case 16: missed polls: the same stalled shape with gaps still
            // STALLs: the rules look at order and at real timestamps.
            (
                16,
                seq(&|i| (Some(100), 200 + i))
                    .into_iter()
                    .filter(|r| r.0 % 90 != 30)
                    .collect(),
                0,
                thresholds(),
                TimeLag::Exact,
                Status::Stall,
                true,
            ),
        ];
        for (case, rows, extra_s, t, tl, want, complete) in cases {
            let h = history(&rows);
            let now = h.last().unwrap().at.0 + extra_s * 1000;
            let points = h.points();
            let w = Window::of(&points, now, WINDOW_MS);
            let got = evaluate(&h, &points, Millis(now), w, ENOUGH, &t, &tl);
            assert_eq!(got.status, want, "case {case}");
            assert_eq!(got.complete, complete, "case {case}");
        }
    }
}

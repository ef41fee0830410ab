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

/// Why a key is ERR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrReason {
    /// Lag above `error_lag`.
    LagAbove,
    /// Time lag (its certain lower bound, or a bounded estimate) above
    /// `error_time_lag`.
    TimeLagAbove,
    /// The committed offset is above the log end: the topic was deleted and
    /// recreated under the same name while the group kept (and commits) its old
    /// position, or the broker lost data. The group reads nothing until the
    /// log passes it again: its lag of 0 is not "caught up".
    CommittedBeyondEnd,
}

impl ErrReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrReason::LagAbove => "lag_above_threshold",
            ErrReason::TimeLagAbove => "time_lag_above_threshold",
            ErrReason::CommittedBeyondEnd => "committed_beyond_end",
        }
    }
}

/// A status, why it is ERR, and whether the window held enough data for every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub status: Status,
    /// Set when `status` is ERR.
    pub err: Option<ErrReason>,
    /// False when the window was too thin or too short for the window rules
    /// (STALL, WARN): the status is then OK, ERR, REWIND or STOP only
    /// (Burrow's `Complete` < 1).
    pub complete: bool,
}

/// A lag-growth slope is a trend, not noise, when it is this many standard
/// errors above zero (about 99.9 % one-sided for normal residuals).
pub const WARN_T_STAT: f64 = 3.0;

/// Evaluates one key at `now` over window `w` of `points`, `h`'s ring decoded.
///
/// Rules in order; the first that holds decides:
/// 0. ERR (lagwatch): committed above the log end; lag above `error_lag`; time
///    lag above `error_time_lag` (by its lower bound, or by an estimate whose
///    error is bounded: an extrapolation cannot page on its own).
/// 1. OK (Burrow rule 1, "if the lag is ever zero, the period is OK"): current
///    lag, or any lag in the window, at or below `allowed_lag`.
/// 2. REWIND (Burrow rule 2): committed went back between two samples.
/// 3. STOP (Burrow rule 3, "no commit for longer than the ring spans"): with
///    polls we see offsets, not commit events, so it becomes: the committed
///    offset has not changed for longer than `stop_after`.
/// 4. STALL (Burrow rule 4, "committing offsets that do not change"): committed
///    constant across the whole window, which must span the whole window
///    (Burrow requires its whole ring; three polls a minute apart do not tell
///    a stalled consumer from one that commits every 90 s).
/// 5. WARN (Burrow rule 5, "lag is not decreasing"): the lag's least-squares
///    slope over the whole window is positive by [`WARN_T_STAT`] standard
///    errors. Burrow's "never decreased between any two samples" is fragile:
///    one dip hides a rising trend, and lag read against a stale commit is a
///    sawtooth. Burrow also warns on constant lag; a consumer keeping pace at a
///    constant lag is not slow, so we do not.
/// 6. OK.
///
/// Burrow checks REWIND before STOP (the code, not its wiki's list), and so do
/// we. Without enough window samples only rules 0, 1 (current lag), 2 and 3 run.
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
        err: None,
        complete: true,
    };
    let Some(last) = h.last() else {
        return Evaluation {
            status: Status::Ok,
            err: None,
            complete: false,
        };
    };
    if let Some(err) = error(last, t, time_lag) {
        return Evaluation {
            status: Status::Err,
            err: Some(err),
            complete: true,
        };
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
    let run = Run {
        points,
        from,
        to: w.end,
    };
    let stopped =
        last.committed.is_some() && now.0.saturating_sub(h.committed_since().0) > t.stop_after_ms;
    if run.len() < enough.min_samples || run.span_ms() < enough.min_span_ms {
        // Rule 3 needs only the age of the committed offset.
        return Evaluation {
            status: if stopped { Status::Stop } else { Status::Ok },
            err: None,
            complete: false,
        };
    }
    // Rule 1, window.
    if run.lags().any(|lag| lag <= t.allowed_lag) {
        return done(Status::Ok);
    }
    // Rule 2.
    if run.pairs().any(|(a, b)| b.0 < a.0) {
        return done(Status::Rewind);
    }
    // Rule 3.
    if stopped {
        return done(Status::Stop);
    }
    // Rules 4 and 5 need the whole window.
    if run.from != w.start || !run.reaches_back_to(w.from_ms) {
        return Evaluation {
            status: Status::Ok,
            err: None,
            complete: false,
        };
    }
    // Rule 4.
    if run.pairs().all(|(a, b)| b.0 == a.0) {
        return done(Status::Stall);
    }
    // Rule 5.
    if run.lag_trend_rises() {
        return done(Status::Warn);
    }
    done(Status::Ok)
}

/// Rule 0.
fn error(last: &Point, t: &Thresholds, time_lag: &TimeLag) -> Option<ErrReason> {
    if last.committed.is_some_and(|c| c > last.head) {
        return Some(ErrReason::CommittedBeyondEnd);
    }
    if t.error_lag.is_some_and(|e| last.lag > e) {
        return Some(ErrReason::LagAbove);
    }
    let over_time = t
        .error_time_lag_secs
        .is_some_and(|limit| time_lag.above(limit) == Some(true));
    over_time.then_some(ErrReason::TimeLagAbove)
}

/// The trailing run of committed samples in the window.
struct Run<'a> {
    points: &'a VecDeque<Point>,
    from: usize,
    to: usize,
}

impl Run<'_> {
    fn len(&self) -> usize {
        self.to - self.from
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &Point> + Clone + '_ {
        self.points.range(self.from..self.to)
    }

    fn span_ms(&self) -> i64 {
        match (self.iter().next(), self.iter().next_back()) {
            (Some(a), Some(b)) => b.at.0 - a.at.0,
            _ => 0,
        }
    }

    fn lags(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|p| p.lag)
    }

    /// (committed, lag) of consecutive samples. Every point of the run has a
    /// commit (see `evaluate`), so the default is never used.
    fn pairs(&self) -> impl Iterator<Item = ((i64, u64), (i64, u64))> + '_ {
        let cl = |p: &Point| (p.committed.unwrap_or_default(), p.lag);
        self.iter().map(cl).zip(self.iter().skip(1).map(cl))
    }

    /// The run's first sample is within the widest gap between its samples
    /// (one poll interval, or a missed poll), plus a quarter of it for the
    /// jitter of poll times, of `start_ms`: the samples cover the time since
    /// then. (Without the allowance a window of exactly N polls missed its
    /// first sample by a millisecond of jitter and read "not covered".)
    fn reaches_back_to(&self, start_ms: i64) -> bool {
        let widest = self
            .iter()
            .zip(self.iter().skip(1))
            .map(|(a, b)| b.at.0 - a.at.0)
            .max()
            .unwrap_or(0);
        self.iter()
            .next()
            .is_some_and(|first| first.at.0 - start_ms <= widest + widest / 4)
    }

    /// The lag's least-squares slope is positive by [`WARN_T_STAT`] standard
    /// errors (exactly rising lag has no error: any positive slope).
    fn lag_trend_rises(&self) -> bool {
        let Some(first) = self.iter().next() else {
            return false;
        };
        let xy: Vec<(f64, f64)> = self
            .iter()
            .map(|p| ((p.at.0 - first.at.0) as f64 / 1000.0, p.lag as f64))
            .collect();
        let n = xy.len() as f64;
        if n < 3.0 {
            return false;
        }
        let mx = xy.iter().map(|p| p.0).sum::<f64>() / n;
        let my = xy.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if sxx <= 0.0 {
            return false;
        }
        let slope = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
        let rss: f64 = xy
            .iter()
            .map(|p| (p.1 - my - slope * (p.0 - mx)).powi(2))
            .sum();
        let se = (rss / (n - 2.0) / sxx).sqrt();
        slope > 0.0 && (se == 0.0 || slope / se >= WARN_T_STAT)
    }
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
                oldest_written: None,
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
                TimeLag::CAUGHT_UP,
                Status::Ok,
                true,
            ),
            // case 2: idle topic, caught up: lag 0: OK.
            (
                2,
                seq(&|_| (Some(500), 500)),
                0,
                thresholds(),
                TimeLag::CAUGHT_UP,
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
                TimeLag::CAUGHT_UP,
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
                TimeLag::CAUGHT_UP,
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
                TimeLag::CAUGHT_UP,
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
                TimeLag::CAUGHT_UP,
                Status::Stop,
                true,
            ),
            // case 7: slow consumer, commits move, lag grows every poll: WARN.
            (
                7,
                seq(&|i| (Some(i * 10), i * 20 + 5)),
                0,
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Warn,
                true,
            ),
            // case 8: keeping pace at a constant lag of 5: OK (Burrow would WARN).
            (
                8,
                seq(&|i| (Some(i * 10), i * 10 + 5)),
                0,
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Ok,
                true,
            ),
            // case 9: lag above error_lag: ERR wins over everything.
            (
                9,
                seq(&|i| (Some(100), 2000 + i)),
                0,
                with_err,
                TimeLag::CAUGHT_UP,
                Status::Err,
                true,
            ),
            // case 10: lag 40 within allowed_lag 50: OK even though stalled.
            (
                10,
                seq(&|_| (Some(100), 140)),
                0,
                allow_50,
                TimeLag::CAUGHT_UP,
                Status::Ok,
                true,
            ),
            // case 11: time lag above error_time_lag: ERR.
            (
                11,
                seq(&|i| (Some(i * 10), i * 10 + 5)),
                0,
                err_time,
                TimeLag::interpolated(90.0, 60.0, 120.0),
                Status::Err,
                true,
            ),
            // case 12: too few samples (2): window rules skipped, OK, incomplete.
            (
                12,
                vec![(0, Some(100), 200), (30, Some(100), 300)],
                0,
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Ok,
                false,
            ),
            // case 13: too few samples but the commit is 25 min old: STOP.
            (
                13,
                vec![(0, Some(100), 200), (30, Some(100), 300)],
                1500,
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Stop,
                false,
            ),
            // case 14: no commit at all: nothing to evaluate, OK, incomplete.
            (
                14,
                seq(&|i| (None, i * 10 + 5)),
                0,
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Ok,
                false,
            ),
            // case 15: unknown time lag still ERRs on its lower bound.
            (
                15,
                seq(&|i| (Some(i * 10), i * 10 + 5)),
                0,
                err_time,
                TimeLag::unknown(61.0, None),
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
                TimeLag::CAUGHT_UP,
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

    /// Evaluates rows (seconds, committed, head) at the last sample, window 10 m.
    fn eval(rows: &[Row], t: &Thresholds, tl: &TimeLag) -> Evaluation {
        let h = history(rows);
        let now = h.last().unwrap().at.0;
        let points = h.points();
        let w = Window::of(&points, now, WINDOW_MS);
        evaluate(&h, &points, Millis(now), w, ENOUGH, t, tl)
    }

    #[test]
    fn status_table_of_the_cases_issue_20_found() {
        let every = |secs: i64, n: i64, f: &dyn Fn(i64) -> (Option<i64>, i64)| -> Vec<Row> {
            (0..n)
                .map(|i| {
                    let (c, h) = f(i);
                    (i * secs, c, h)
                })
                .collect()
        };
        let err_time = Thresholds {
            error_time_lag_secs: Some(600.0),
            ..thresholds()
        };
        // (case, rows, thresholds, time lag, status, err reason, complete)
        type Case = (
            u32,
            Vec<Row>,
            Thresholds,
            TimeLag,
            Status,
            Option<ErrReason>,
            bool,
        );
        let cases: Vec<Case> = vec![
            // case 1 (item 8): right after a start, three polls a minute apart
            // of a consumer that commits every 90 s: not STALL, the window is
            // not covered yet.
            (
                1,
                every(30, 3, &|i| (Some(100), 200 + i)),
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Ok,
                None,
                false,
            ),
            // case 2: the same once ten minutes are covered: STALL.
            (
                2,
                every(30, 21, &|i| (Some(100), 200 + i)),
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Stall,
                None,
                true,
            ),
            // case 3 (item 9): lag rising 10 per poll with one dip of 15: Burrow's
            // strict rule says OK; the trend says WARN.
            (
                3,
                every(30, 21, &|i| {
                    (Some(i * 10), i * 20 + 5 - if i == 10 { 15 } else { 0 })
                }),
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Warn,
                None,
                true,
            ),
            // case 4: a sawtooth (lag read against a commit every other poll)
            // with no trend: OK.
            (
                4,
                every(30, 21, &|i| (Some(i * 10 - (i % 2) * 10), i * 10 + 5)),
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Ok,
                None,
                true,
            ),
            // case 5 (item 11): committed above the log end (topic recreated,
            // group kept its position): ERR, not "caught up".
            (
                5,
                every(30, 5, &|_| (Some(5000), 30)),
                thresholds(),
                TimeLag::CAUGHT_UP,
                Status::Err,
                Some(ErrReason::CommittedBeyondEnd),
                true,
            ),
            // case 6 (item 7): a 13-year extrapolation from one write, certainly
            // at least 60 s: no ERR on a 10 m threshold.
            (
                6,
                every(30, 21, &|i| (Some(i * 10), i * 10 + 5)),
                err_time,
                TimeLag::extrapolated(4.1e8, 60.0, None),
                Status::Ok,
                None,
                true,
            ),
            // case 7: its lower bound above the threshold: ERR, certainly.
            (
                7,
                every(30, 21, &|i| (Some(i * 10), i * 10 + 5)),
                err_time,
                TimeLag::unknown(700.0, None),
                Status::Err,
                Some(ErrReason::TimeLagAbove),
                true,
            ),
        ];
        for (case, rows, t, tl, status, err, complete) in cases {
            let got = eval(&rows, &t, &tl);
            assert_eq!(got.status, status, "case {case}: {got:?}");
            assert_eq!(got.err, err, "case {case}: {got:?}");
            assert_eq!(got.complete, complete, "case {case}: {got:?}");
        }
    }
}

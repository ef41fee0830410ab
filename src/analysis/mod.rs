//! Pure analysis of one key's history at a given `now`: rates, time lag, ETA,
//! retention risk and Burrow-style status, and their rollup per group. No I/O,
//! no clock: `now` is a parameter. Formulas and their limits: docs/analysis.md.

pub mod dead_letters;
pub mod diagnosis;
pub mod rates;
pub mod retention;
pub mod rollup;
pub mod settings;
pub mod status;
pub mod timelag;

#[cfg(test)]
mod cases;

use std::collections::VecDeque;

use crate::history::{KeyHistory, KeyKind, Point};
use crate::model::{Millis, RetentionLimits, Status};

pub use rates::Rates;
pub use retention::{LossBasis, Projection, Retention};
pub use rollup::{rollup, GroupAnalysis};
pub use settings::{Settings, ThresholdResolver, Thresholds};
pub use status::ErrReason;
pub use timelag::{TimeLag, TimeLagQuality};

/// Everything lagwatch says about one partition (Kafka) or consumer (JetStream).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Analysis {
    /// Lag in messages, as the source reported it in the newest sample.
    pub lag: u64,
    /// msgs/s; None: not enough data in the window.
    pub produce_rate: Option<f64>,
    pub consume_rate: Option<f64>,
    pub lag_growth: Option<f64>,
    pub time_lag: TimeLag,
    /// Seconds to catch up, present only while actually catching up.
    pub eta_seconds: Option<f64>,
    pub retention: Retention,
    pub status: Status,
    /// Why the status is ERR.
    pub err: Option<ErrReason>,
    /// The window held enough data for every status rule.
    pub status_complete: bool,
    /// Messages the committed offset skipped at this poll (an offset reset, a
    /// purge; see [`rates::SKIP_FACTOR`]).
    pub skipped: u64,
}

impl Analysis {
    /// The committed offset is above the log end.
    pub fn committed_beyond_end(&self) -> bool {
        self.err == Some(ErrReason::CommittedBeyondEnd)
    }
}

/// Analyzes one key at `now` with the thresholds of its group (see
/// [`ThresholdResolver::for_group`]) and the retention of its topic or stream
/// (None: not known). `points` is `h`'s ring, decoded (the engine decodes into
/// one reused buffer).
pub fn analyze(
    h: &KeyHistory,
    points: &VecDeque<Point>,
    now: Millis,
    s: &Settings,
    t: &Thresholds,
    limits: Option<&RetentionLimits>,
) -> Analysis {
    let w = rates::Window::of(points, now.0, s.window_ms());
    let enough = rates::Enough {
        min_samples: s.min_samples,
        min_span_ms: s.min_span_ms(),
    };
    let r = rates::rates(points, w, enough, h.kind(), h.skips());
    // JetStream enforces max_age on time: nothing stored is older. Kafka deletes
    // whole segments, which outlive retention.ms: no bound there.
    let max_age = match h.kind() {
        KeyKind::Jetstream { .. } => limits.and_then(|l| l.max_age_seconds),
        KeyKind::Kafka => None,
    };
    let time_lag = timelag::time_lag(h, points, now, r.head, max_age);
    let eval = status::evaluate(h, points, now, w, enough, t, &time_lag);
    let (lag, retention) = match h.last() {
        Some(last) => (last.lag, retention::retention(last, &r, &time_lag, limits)),
        None => (0, Retention::default()),
    };
    Analysis {
        lag,
        produce_rate: r.produce,
        consume_rate: r.consume,
        lag_growth: r.lag_growth,
        time_lag,
        eta_seconds: eta(lag, r.consume, r.produce),
        retention,
        status: eval.status,
        err: eval.err,
        status_complete: eval.complete,
        skipped: r.skipped,
    }
}

/// `lag / (consume - produce)`, only while that is positive and lag > 0.
/// The drain must beat production by [`ETA_MIN_DRAIN_SHARE`] of the consume
/// rate to count as catching up: a caught-up group keeping pace (a commit
/// interval's worth of lag, slopes equal up to noise) would otherwise get an ETA
/// of days (docs/analysis.md, "ETA").
pub const ETA_MIN_DRAIN_SHARE: f64 = 0.02;

pub fn eta(lag: u64, consume: Option<f64>, produce: Option<f64>) -> Option<f64> {
    let (consume, produce) = (consume?, produce?);
    let drain = consume - produce;
    (lag > 0 && drain > 0.0 && drain >= ETA_MIN_DRAIN_SHARE * consume).then(|| lag as f64 / drain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::model::{ConsumerKey, GroupKey, JetstreamParts, Sample, SourceId};
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

    /// One poll: (seconds, committed, head, low, lag override for JetStream).
    type Row = (i64, Option<i64>, i64, Option<i64>);

    fn run(rows: &[Row], jetstream: Option<&dyn Fn(i64) -> u64>) -> KeyHistory {
        let mut h = History::new(64);
        for &(t, committed, head, low) in rows {
            let lag = match jetstream {
                Some(f) => f(t),
                None => u64::try_from(head - committed.unwrap_or(head)).unwrap_or(0),
            };
            let s = Sample {
                key: key(),
                committed,
                head,
                low,
                lag,
                jetstream: jetstream.map(|_| {
                    Box::new(JetstreamParts {
                        filtered: true,
                        ..JetstreamParts::default()
                    })
                }),
                oldest_written: None,
            };
            h.record(&s, Millis(t * 1000));
        }
        h.get(&key()).cloned().unwrap()
    }

    /// Ten minutes of 30 s polls: head = 10,000 + R t, committed = c(t).
    fn polls(r: i64, c: impl Fn(i64) -> Option<i64>, low: impl Fn(i64) -> Option<i64>) -> Vec<Row> {
        (0..=20)
            .map(|i| {
                let t = 10_000 + i * 30;
                let head = 10_000 + r * (t - 10_000);
                (t, c(t - 10_000), head, low(t - 10_000))
            })
            .collect()
    }

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-6,
            (x, y) => x == y,
        }
    }

    #[test]
    fn analyze_table_end_to_end() {
        let s = Settings::default();
        let t = Thresholds::default();
        // (case, rows, jetstream lag fn, produce, consume, growth, time-lag
        //  quality, eta, lost, status)
        type Case<'a> = (
            u32,
            Vec<Row>,
            Option<&'a dyn Fn(i64) -> u64>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            TimeLagQuality,
            Option<f64>,
            u64,
            Status,
        );
        let js_lag = |_t: i64| 500_u64;
        let cases: Vec<Case> = vec![
            // case 1: steady producer of 7 msg/s, consumer keeping pace 70
            // messages behind: rates exact, 9.9 s time lag, no ETA (not
            // catching up), OK.
            (
                1,
                polls(7, |t| Some(10_000 + 7 * t - 70), |_| Some(0)),
                None,
                Some(7.0),
                Some(7.0),
                Some(0.0),
                TimeLagQuality::Interpolated,
                None,
                0,
                Status::Ok,
            ),
            // case 2: idle topic, caught up: rates 0, time lag Exact 0.
            (
                2,
                polls(0, |_| Some(10_000), |_| Some(0)),
                None,
                Some(0.0),
                Some(0.0),
                Some(0.0),
                TimeLagQuality::Exact,
                None,
                0,
                Status::Ok,
            ),
            // case 3: catching up: 5 in, 8 out, lag 3000 at the end shrinking
            // 3/s: ETA = 3000 / (8 - 5) = 1000 s.
            (
                3,
                polls(5, |t| Some(10_000 - 4800 + 8 * t), |_| Some(0)),
                None,
                Some(5.0),
                Some(8.0),
                Some(-3.0),
                TimeLagQuality::Interpolated,
                Some(1000.0),
                0,
                Status::Ok,
            ),
            // case 4: stalled consumer: committed fixed, lag grows: STALL.
            (
                4,
                polls(5, |_| Some(9_000), |_| Some(0)),
                None,
                Some(5.0),
                Some(0.0),
                Some(5.0),
                TimeLagQuality::Extrapolated,
                None,
                0,
                Status::Stall,
            ),
            // case 5: no commit (the source then reports lag 0, as for a
            // partition a librdkafka consumer never committed): nothing
            // consumed (0), caught up (exact 0 s): it must not blank the
            // group's rates and time lag (issue 20, item 2).
            (
                5,
                polls(5, |_| None, |_| Some(0)),
                None,
                Some(5.0),
                Some(0.0),
                Some(0.0),
                TimeLagQuality::Exact,
                None,
                0,
                Status::Ok,
            ),
            // case 6: retention passed committed: 1000 lost; the time lag is that
            // of the oldest message still stored (at low).
            (
                6,
                polls(5, |_| Some(9_000), |_| Some(10_000)),
                None,
                Some(5.0),
                Some(0.0),
                Some(5.0),
                TimeLagQuality::Interpolated,
                None,
                1000,
                Status::Stall,
            ),
            // case 7: JetStream filtered consumer: head moves 50/s for the
            // whole stream, consumer's ack floor 4/s, its own lag constant 500:
            // produce = consume + growth = 4, not 50.
            (
                7,
                polls(50, |t| Some(10_000 + 4 * t - 400), |_| Some(0)),
                Some(&js_lag),
                Some(4.0),
                Some(4.0),
                Some(0.0),
                TimeLagQuality::Interpolated,
                None,
                0,
                Status::Ok,
            ),
        ];
        for (case, rows, js, produce, consume, growth, q, eta, lost, status) in cases {
            let h = run(&rows, js);
            let now = h.last().unwrap().at;
            let a = analyze(&h, &h.points(), now, &s, &t, None);
            assert!(
                close(a.produce_rate, produce),
                "case {case} produce {:?}",
                a.produce_rate
            );
            assert!(
                close(a.consume_rate, consume),
                "case {case} consume {:?}",
                a.consume_rate
            );
            assert!(
                close(a.lag_growth, growth),
                "case {case} growth {:?}",
                a.lag_growth
            );
            assert_eq!(a.time_lag.quality(), q, "case {case} {:?}", a.time_lag);
            assert!(
                close(a.eta_seconds, eta),
                "case {case} eta {:?}",
                a.eta_seconds
            );
            assert_eq!(a.retention.lost_messages, lost, "case {case}");
            assert_eq!(a.status, status, "case {case}");
        }
    }

    #[test]
    fn a_steady_producer_comes_out_within_a_millionth_of_its_rate() {
        let s = Settings::default();
        for rate in [1, 13, 250, 100_000] {
            let h = run(&polls(rate, |t| Some(10_000 + rate * t), |_| None), None);
            let a = analyze(
                &h,
                &h.points(),
                h.last().unwrap().at,
                &s,
                &Thresholds::default(),
                None,
            );
            let got = a.produce_rate.unwrap();
            assert!((got - rate as f64).abs() < 1e-6, "{rate}: {got}");
        }
    }

    #[test]
    fn a_missed_poll_does_not_move_the_rate() {
        let s = Settings::default();
        let rows: Vec<Row> = polls(9, |t| Some(10_000 + 9 * t - 90), |_| None)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| ![3, 4, 11].contains(i))
            .map(|(_, r)| r)
            .collect();
        let h = run(&rows, None);
        let a = analyze(
            &h,
            &h.points(),
            h.last().unwrap().at,
            &s,
            &Thresholds::default(),
            None,
        );
        assert!(close(a.produce_rate, Some(9.0)));
        assert!(close(a.consume_rate, Some(9.0)));
    }

    #[test]
    fn a_recreated_topic_restarts_the_history_without_a_spike() {
        let s = Settings::default();
        let mut rows = polls(10, |t| Some(10_000 + 10 * t), |_| Some(0));
        // Topic deleted and recreated: head back to 0, then 10 msg/s again.
        let t0 = rows.last().unwrap().0;
        rows.extend((1..=4).map(|i| (t0 + i * 30, Some(i * 300), i * 300, Some(0))));
        let h = run(&rows, None);
        let a = analyze(
            &h,
            &h.points(),
            h.last().unwrap().at,
            &s,
            &Thresholds::default(),
            None,
        );
        assert_eq!(h.len(), 4);
        assert!(close(a.produce_rate, Some(10.0)), "{:?}", a.produce_rate);
        assert!(close(a.consume_rate, Some(10.0)), "{:?}", a.consume_rate);
    }

    #[test]
    fn eta_table() {
        // (case, lag, consume, produce, expected)
        let cases = [
            // case 1: catching up at 2/s: 50 s.
            (1, 100, Some(5.0), Some(3.0), Some(50.0)),
            // case 2: falling behind: None.
            (2, 100, Some(3.0), Some(5.0), None),
            // case 3: keeping pace exactly: None (never, not infinity).
            (3, 100, Some(3.0), Some(3.0), None),
            // case 4: caught up: None.
            (4, 0, Some(5.0), Some(3.0), None),
            // case 5: not enough data: None.
            (5, 100, None, Some(3.0), None),
            // case 6: keeping pace up to noise (a 0.001% difference): not
            // catching up, no ETA of days.
            (6, 1, Some(1.236412), Some(1.236404), None),
            // case 7: 2% faster than production is catching up.
            (7, 100, Some(100.0), Some(98.0), Some(50.0)),
        ];
        for (case, lag, c, p, want) in cases {
            assert_eq!(eta(lag, c, p), want, "case {case}");
        }
    }
}

//! Per-group rollup of partition analyses: sums, maxima, worst status.

use crate::model::Status;

use super::timelag::TimeLag;
use super::Analysis;

/// One group (Kafka group, or a JetStream consumer: a "group" of one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupAnalysis {
    /// Partitions (keys) rolled up.
    pub partitions: usize,
    pub lag_sum: u64,
    pub lag_max: u64,
    /// The oldest unconsumed message of the group. Unknown when any partition's
    /// is, with the largest lower bound known; otherwise the largest value, with
    /// that partition's quality.
    pub time_lag_max: TimeLag,
    /// Worst partition status (`Status` is ordered best to worst).
    pub status: Status,
    /// Every partition had enough data for every status rule.
    pub status_complete: bool,
    /// Sums over partitions, present only when every partition has one: a sum
    /// with a missing term would silently under-report.
    pub produce_rate: Option<f64>,
    pub consume_rate: Option<f64>,
    pub lag_growth: Option<f64>,
    /// When the last lagging partition catches up: the largest ETA, present
    /// only when every lagging partition has one.
    pub eta_seconds: Option<f64>,
    /// Messages lost unconsumed, summed.
    pub lost_messages: u64,
    /// The soonest any partition starts losing messages.
    pub seconds_to_loss: Option<f64>,
}

fn sum_all(acc: Option<f64>, v: Option<f64>) -> Option<f64> {
    acc.zip(v).map(|(a, b)| a + b)
}

/// The larger of two time lags, Unknown absorbing everything (keeping the
/// largest lower bound), ties going to the worse quality.
fn max_time_lag(a: TimeLag, b: TimeLag) -> TimeLag {
    match (a, b) {
        (TimeLag::Unknown { .. }, _) | (_, TimeLag::Unknown { .. }) => TimeLag::Unknown {
            at_least_seconds: match (a.at_least(), b.at_least()) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            },
        },
        _ => {
            let (x, y) = (a.seconds().unwrap_or(0.0), b.seconds().unwrap_or(0.0));
            if y > x || (y == x && b.quality() > a.quality()) {
                b
            } else {
                a
            }
        }
    }
}

/// Rolls partition analyses up into one group.
pub fn rollup<'a>(parts: impl Iterator<Item = &'a Analysis>) -> GroupAnalysis {
    let mut g = GroupAnalysis {
        partitions: 0,
        lag_sum: 0,
        lag_max: 0,
        time_lag_max: TimeLag::Exact,
        status: Status::Ok,
        status_complete: true,
        produce_rate: Some(0.0),
        consume_rate: Some(0.0),
        lag_growth: Some(0.0),
        eta_seconds: None,
        lost_messages: 0,
        seconds_to_loss: None,
    };
    let mut eta_known = true;
    for a in parts {
        g.partitions += 1;
        g.lag_sum = g.lag_sum.saturating_add(a.lag);
        g.lag_max = g.lag_max.max(a.lag);
        g.time_lag_max = max_time_lag(g.time_lag_max, a.time_lag);
        g.status = g.status.max(a.status);
        g.status_complete &= a.status_complete;
        g.produce_rate = sum_all(g.produce_rate, a.produce_rate);
        g.consume_rate = sum_all(g.consume_rate, a.consume_rate);
        g.lag_growth = sum_all(g.lag_growth, a.lag_growth);
        if a.lag > 0 {
            match a.eta_seconds {
                Some(e) => g.eta_seconds = Some(g.eta_seconds.map_or(e, |m| m.max(e))),
                None => eta_known = false,
            }
        }
        g.lost_messages = g.lost_messages.saturating_add(a.retention.lost_messages);
        if let Some(s) = a.retention.seconds_to_loss {
            g.seconds_to_loss = Some(g.seconds_to_loss.map_or(s, |m| m.min(s)));
        }
    }
    if !eta_known {
        g.eta_seconds = None;
    }
    if g.partitions == 0 {
        g.produce_rate = None;
        g.consume_rate = None;
        g.lag_growth = None;
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::retention::Retention;

    fn part(
        lag: u64,
        status: Status,
        tl: TimeLag,
        rate: Option<f64>,
        eta: Option<f64>,
    ) -> Analysis {
        Analysis {
            lag,
            produce_rate: rate,
            consume_rate: rate,
            lag_growth: rate.map(|_| 0.0),
            time_lag: tl,
            eta_seconds: eta,
            retention: Retention::default(),
            status,
            status_complete: true,
        }
    }

    #[test]
    fn rollup_table() {
        let interp = |s| TimeLag::Interpolated {
            seconds: s,
            max_error_seconds: 30.0,
        };
        // (case, partitions, lag sum, lag max, time lag, status, produce, eta)
        type Case = (
            u32,
            Vec<Analysis>,
            u64,
            u64,
            TimeLag,
            Status,
            Option<f64>,
            Option<f64>,
        );
        let cases: Vec<Case> = vec![
            // case 1: two steady partitions: sums, max, worst status.
            (
                1,
                vec![
                    part(10, Status::Ok, interp(5.0), Some(2.0), Some(10.0)),
                    part(30, Status::Warn, interp(9.0), Some(3.0), Some(20.0)),
                ],
                40,
                30,
                interp(9.0),
                Status::Warn,
                Some(5.0),
                Some(20.0),
            ),
            // case 2: one partition has no rate yet: group rate None, and one
            // lagging partition without ETA makes the group ETA None.
            (
                2,
                vec![
                    part(10, Status::Ok, interp(5.0), Some(2.0), Some(10.0)),
                    part(5, Status::Stall, interp(1.0), None, None),
                ],
                15,
                10,
                interp(5.0),
                Status::Stall,
                None,
                None,
            ),
            // case 3: an Unknown time lag makes the group's Unknown, keeping the
            // best lower bound; a caught-up partition (lag 0) needs no ETA.
            (
                3,
                vec![
                    part(10, Status::Ok, interp(50.0), Some(1.0), Some(7.0)),
                    part(
                        3,
                        Status::Ok,
                        TimeLag::Unknown {
                            at_least_seconds: Some(20.0),
                        },
                        Some(1.0),
                        Some(3.0),
                    ),
                    part(0, Status::Ok, TimeLag::Exact, Some(1.0), None),
                ],
                13,
                10,
                TimeLag::Unknown {
                    at_least_seconds: Some(50.0),
                },
                Status::Ok,
                Some(3.0),
                Some(7.0),
            ),
            // case 4: all caught up: time lag Exact, no ETA.
            (
                4,
                vec![
                    part(0, Status::Ok, TimeLag::Exact, Some(0.0), None),
                    part(0, Status::Ok, TimeLag::Exact, Some(0.0), None),
                ],
                0,
                0,
                TimeLag::Exact,
                Status::Ok,
                Some(0.0),
                None,
            ),
            // case 5: no partitions: nothing known.
            (5, vec![], 0, 0, TimeLag::Exact, Status::Ok, None, None),
        ];
        for (case, parts, sum, max, tl, status, produce, eta) in cases {
            let g = rollup(parts.iter());
            assert_eq!(g.partitions, parts.len(), "case {case}");
            assert_eq!((g.lag_sum, g.lag_max), (sum, max), "case {case}");
            assert_eq!(g.time_lag_max, tl, "case {case}");
            assert_eq!(g.status, status, "case {case}");
            assert_eq!(g.produce_rate, produce, "case {case}");
            assert_eq!(g.eta_seconds, eta, "case {case}");
        }
    }
}

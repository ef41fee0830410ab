//! Per-group rollup of partition analyses: sums, maxima, worst status, the
//! oldest unconsumed message with its bounds, the soonest retention loss.

use crate::model::Status;

use super::retention::Projection;
use super::status::ErrReason;
use super::timelag::{TimeLag, TimeLagQuality};
use super::Analysis;

/// One group (Kafka group, or a JetStream consumer: a "group" of one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupAnalysis {
    /// Partitions (keys) rolled up.
    pub partitions: usize,
    pub lag_sum: u64,
    pub lag_max: u64,
    /// The oldest unconsumed message of the group: see [`group_time_lag`].
    pub time_lag_max: TimeLag,
    /// Worst partition status (`Status` is ordered best to worst).
    pub status: Status,
    /// Why, when the worst status is ERR (the first reason by severity).
    pub err: Option<ErrReason>,
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
    /// If the group stopped now: the soonest any partition loses a message.
    pub headroom: Projection,
    /// At the current rates: the soonest any partition loses a message.
    pub projected_loss: Projection,
    /// Partitions whose committed offset is above the log end.
    pub committed_beyond_end: usize,
    /// Messages skipped at this poll, summed.
    pub skipped: u64,
}

fn sum_all(acc: Option<f64>, v: Option<f64>) -> Option<f64> {
    acc.zip(v).map(|(a, b)| a + b)
}

/// The sooner of two projections; Unknown only when neither says when.
fn soonest(a: Projection, b: Projection) -> Projection {
    match (a, b) {
        (Projection::In(x, _), Projection::In(y, _)) if y < x => b,
        (Projection::In(..), _) => a,
        (_, Projection::In(..)) => b,
        (Projection::Unknown, _) | (_, Projection::Unknown) => Projection::Unknown,
        _ => Projection::Never,
    }
}

/// The group's oldest unconsumed message: certainly at least as old as the
/// largest lower bound, at most as old as the largest upper bound (when every
/// partition has one). The estimate is the largest estimate among the
/// partitions that could be the oldest (upper bound not below that lower
/// bound), with the worst quality among them; if any of those is unknown, so is
/// the group's. A caught-up partition (never committed included) can never be
/// the oldest unless all are caught up.
pub fn group_time_lag<'a>(parts: impl Iterator<Item = &'a TimeLag> + Clone) -> TimeLag {
    let mut parts = parts.peekable();
    if parts.peek().is_none() {
        return TimeLag::CAUGHT_UP;
    }
    let at_least = parts.clone().map(TimeLag::at_least).fold(0.0, f64::max);
    let at_most = parts
        .clone()
        .map(TimeLag::at_most)
        .try_fold(0.0_f64, |m, v| v.map(|v| m.max(v)));
    let mut estimate: Option<f64> = Some(0.0);
    let mut quality = TimeLagQuality::Exact;
    for p in parts.filter(|p| p.at_most().is_none_or(|m| m >= at_least)) {
        estimate = estimate.zip(p.seconds()).map(|(e, s)| e.max(s));
        quality = quality.max(p.quality());
    }
    match (estimate, quality) {
        (Some(0.0), TimeLagQuality::Exact) if at_least == 0.0 => TimeLag::CAUGHT_UP,
        (Some(e), TimeLagQuality::Exact) if at_most == Some(e) && at_least == e => {
            TimeLag::exact(e)
        }
        (Some(e), TimeLagQuality::Exact | TimeLagQuality::Interpolated) => {
            TimeLag::interpolated(e, at_least, at_most.unwrap_or(e))
        }
        (Some(e), _) => TimeLag::extrapolated(e, at_least, at_most),
        (None, _) => TimeLag::unknown(at_least, at_most),
    }
}

/// Rolls partition analyses up into one group.
pub fn rollup<'a>(parts: impl Iterator<Item = &'a Analysis> + Clone) -> GroupAnalysis {
    let mut g = GroupAnalysis {
        partitions: 0,
        lag_sum: 0,
        lag_max: 0,
        time_lag_max: group_time_lag(parts.clone().map(|a| &a.time_lag)),
        status: Status::Ok,
        err: None,
        status_complete: true,
        produce_rate: Some(0.0),
        consume_rate: Some(0.0),
        lag_growth: Some(0.0),
        eta_seconds: None,
        lost_messages: 0,
        headroom: Projection::Never,
        projected_loss: Projection::Never,
        committed_beyond_end: 0,
        skipped: 0,
    };
    let mut eta_known = true;
    for a in parts {
        g.partitions += 1;
        g.lag_sum = g.lag_sum.saturating_add(a.lag);
        g.lag_max = g.lag_max.max(a.lag);
        g.status = g.status.max(a.status);
        g.err = match (g.err, a.err) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
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
        g.headroom = soonest(g.headroom, a.retention.headroom);
        g.projected_loss = soonest(g.projected_loss, a.retention.projected);
        g.committed_beyond_end += usize::from(a.committed_beyond_end());
        g.skipped = g.skipped.saturating_add(a.skipped);
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
            err: None,
            status_complete: true,
            skipped: 0,
        }
    }

    /// An interpolated time lag, certainly within 15 s of `s`.
    fn interp(s: f64) -> TimeLag {
        TimeLag::interpolated(s, s - 15.0, s + 15.0)
    }

    #[test]
    fn rollup_table() {
        use TimeLagQuality::{Exact, Interpolated, Unknown};
        // (case, partitions, lag sum, lag max, time lag (quality, estimate,
        // at least), status, produce, eta)
        type Case = (
            u32,
            Vec<Analysis>,
            u64,
            u64,
            (TimeLagQuality, Option<f64>, f64),
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
                (Interpolated, Some(9.0), 0.0),
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
                (Interpolated, Some(5.0), 0.0),
                Status::Stall,
                None,
                None,
            ),
            // case 3: an unknown partition that could be the oldest makes the
            // group's unknown, with the largest certain lower bound (35 s:
            // the interpolated 50 s is certainly at least 35 s); a caught-up
            // partition (lag 0) needs no ETA.
            (
                3,
                vec![
                    part(10, Status::Ok, interp(50.0), Some(1.0), Some(7.0)),
                    part(
                        3,
                        Status::Ok,
                        TimeLag::unknown(20.0, None),
                        Some(1.0),
                        Some(3.0),
                    ),
                    part(0, Status::Ok, TimeLag::CAUGHT_UP, Some(1.0), None),
                ],
                13,
                10,
                (Unknown, None, 35.0),
                Status::Ok,
                Some(3.0),
                Some(7.0),
            ),
            // case 4: all caught up: exact 0, no ETA.
            (
                4,
                vec![
                    part(0, Status::Ok, TimeLag::CAUGHT_UP, Some(0.0), None),
                    part(0, Status::Ok, TimeLag::CAUGHT_UP, Some(0.0), None),
                ],
                0,
                0,
                (Exact, Some(0.0), 0.0),
                Status::Ok,
                Some(0.0),
                None,
            ),
            // case 5: no partitions: nothing known.
            (
                5,
                vec![],
                0,
                0,
                (Exact, Some(0.0), 0.0),
                Status::Ok,
                None,
                None,
            ),
            // case 6 (issue 20, item 2): one partition 10 s behind and three the
            // group never committed on (caught up by policy, consume 0): the
            // group's time lag is the committed partition's, its consume rate
            // the sum.
            (
                6,
                vec![
                    part(100, Status::Ok, interp(10.0), Some(10.0), None),
                    part(0, Status::Ok, TimeLag::CAUGHT_UP, Some(0.0), None),
                    part(0, Status::Ok, TimeLag::CAUGHT_UP, Some(0.0), None),
                    part(0, Status::Ok, TimeLag::CAUGHT_UP, Some(0.0), None),
                ],
                100,
                100,
                (Interpolated, Some(10.0), 0.0),
                Status::Ok,
                Some(10.0),
                None,
            ),
            // case 7: an unknown partition certainly younger than another's
            // certain age cannot be the oldest: the group stays interpolated.
            (
                7,
                vec![
                    part(10, Status::Ok, interp(100.0), Some(1.0), None),
                    part(
                        3,
                        Status::Ok,
                        TimeLag::unknown(5.0, Some(30.0)),
                        Some(1.0),
                        None,
                    ),
                ],
                13,
                10,
                (Interpolated, Some(100.0), 85.0),
                Status::Ok,
                Some(2.0),
                None,
            ),
        ];
        for (case, parts, sum, max, tl, status, produce, eta) in cases {
            let g = rollup(parts.iter());
            assert_eq!(g.partitions, parts.len(), "case {case}");
            assert_eq!((g.lag_sum, g.lag_max), (sum, max), "case {case}");
            let got = (
                g.time_lag_max.quality(),
                g.time_lag_max.seconds(),
                g.time_lag_max.at_least(),
            );
            assert_eq!(got, tl, "case {case}: {:?}", g.time_lag_max);
            assert_eq!(g.status, status, "case {case}");
            assert_eq!(g.produce_rate, produce, "case {case}");
            assert_eq!(g.eta_seconds, eta, "case {case}");
        }
    }
}

//! Retention risk: unconsumed messages already deleted by retention, how long
//! the consumer could stop before retention deletes its oldest unconsumed
//! message ("headroom", information), and, what alerts, when that happens at the
//! current rates ("projected loss", never while the consumer keeps pace).
//!
//! Both come from the configured retention of the topic or stream (Kafka
//! `retention.ms`, JetStream `max_age`, `max_msgs`, `max_bytes`), not from the
//! fitted movement of `low`: Kafka deletes whole segments, so `low` moves in
//! steps that a slope reads as bursts of deletion, and before anything has been
//! deleted it says nothing at all.

use crate::history::Point;
use crate::model::RetentionLimits;

use super::rates::Rates;
use super::timelag::TimeLag;

/// A consumer within this share of the produce rate keeps pace: least-squares
/// slopes of a consumer keeping pace differ by noise, and a loss projected at a
/// 0.1 % shortfall (years away) is not a risk anyone acts on. The same share
/// decides "catching up" for the ETA (`ETA_MIN_DRAIN_SHARE`).
pub const KEEPING_PACE_SHARE: f64 = 0.02;

/// Which configured limit a figure comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossBasis {
    /// Messages older than the age limit are deleted.
    MaxAge,
    /// The stream deletes its oldest messages beyond a message count.
    MaxMessages,
    /// The stream deletes its oldest messages beyond a size.
    MaxBytes,
}

impl LossBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            LossBasis::MaxAge => "max_age",
            LossBasis::MaxMessages => "max_messages",
            LossBasis::MaxBytes => "max_bytes",
        }
    }
}

/// When retention will delete the oldest unconsumed message, under an assumption.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Projection {
    /// Nothing unconsumed is at risk (caught up, or keeping pace at least as
    /// fast as retention advances), or no limit deletes anything.
    Never,
    /// In this many seconds (0: it is happening), by this limit.
    In(f64, LossBasis),
    /// The retention of the topic or stream is not known, or a rate needed is
    /// missing: nothing is claimed either way.
    Unknown,
}

impl Projection {
    pub fn seconds(self) -> Option<f64> {
        match self {
            Projection::In(s, _) => Some(s),
            _ => None,
        }
    }
    pub fn basis(self) -> Option<LossBasis> {
        match self {
            Projection::In(_, b) => Some(b),
            _ => None,
        }
    }
    /// The sooner of two.
    fn min(self, other: Projection) -> Projection {
        match (self, other) {
            (Projection::In(a, _), Projection::In(b, _)) if b < a => other,
            (Projection::In(..), _) => self,
            (_, Projection::In(..)) => other,
            (Projection::Unknown, _) | (_, Projection::Unknown) => Projection::Unknown,
            _ => Projection::Never,
        }
    }
}

/// Retention risk of one key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retention {
    /// Messages deleted before being consumed: `low - committed` when `low`
    /// has passed `committed`, else 0.
    pub lost_messages: u64,
    /// If the consumer stopped now (production going on at its rate).
    pub headroom: Projection,
    /// At the current produce and consume rates.
    pub projected: Projection,
    /// How fast `low` advances, msgs/s (least-squares slope; information).
    pub low_rate: Option<f64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            lost_messages: 0,
            headroom: Projection::Unknown,
            projected: Projection::Unknown,
            low_rate: None,
        }
    }
}

/// Retention risk from the newest point, the rates and time lag of the window,
/// and the configured limits (None: not known).
pub fn retention(
    last: &Point,
    r: &Rates,
    time_lag: &TimeLag,
    limits: Option<&RetentionLimits>,
) -> Retention {
    let lost_messages = match (last.committed, last.low) {
        (Some(c), Some(l)) => u64::try_from(l.saturating_sub(c)).unwrap_or(0),
        _ => 0,
    };
    let base = Retention {
        lost_messages,
        low_rate: r.low,
        ..Retention::default()
    };
    let Some(limits) = limits else {
        return base;
    };
    // Nothing unconsumed, or nothing to date a position from: nothing at risk.
    let Some(committed) = last.committed.filter(|_| last.lag > 0) else {
        return Retention {
            headroom: Projection::Never,
            projected: Projection::Never,
            ..base
        };
    };
    let age = age_limit(limits, r, time_lag);
    let count = count_limits(limits, last, committed, r);
    Retention {
        headroom: age.0.min(count.0),
        projected: age.1.min(count.1),
        ..base
    }
}

/// (headroom, projected) by the age limit. The oldest unconsumed message is
/// `a` old; it is deleted at `max_age`. Stopped, it ages at 1 s per second; at
/// the current rates the age of the oldest unconsumed message grows at
/// `1 - consume / produce` (the consumer moves through messages written
/// `1 / produce` apart), which is 0 or less while it keeps pace.
fn age_limit(limits: &RetentionLimits, r: &Rates, time_lag: &TimeLag) -> (Projection, Projection) {
    let Some(max_age) = limits.max_age_seconds else {
        return (Projection::Never, Projection::Never);
    };
    let a = time_lag.seconds().unwrap_or(time_lag.at_least());
    let left = (max_age - a).max(0.0);
    let headroom = Projection::In(left, LossBasis::MaxAge);
    let projected = match (r.consume, r.produce) {
        (Some(c), Some(p)) => {
            let c = c.max(0.0);
            let growth = if p > 0.0 {
                let g = (1.0 - c / p).min(1.0);
                if g < KEEPING_PACE_SHARE {
                    0.0
                } else {
                    g
                }
            } else if c > 0.0 {
                // Draining an idle topic: the oldest unconsumed message gets
                // younger with every message consumed.
                0.0
            } else {
                1.0
            };
            if left == 0.0 {
                Projection::In(0.0, LossBasis::MaxAge)
            } else if growth <= 0.0 {
                Projection::Never
            } else {
                Projection::In(left / growth, LossBasis::MaxAge)
            }
        }
        _ => Projection::Unknown,
    };
    (headroom, projected)
}

/// (headroom, projected) by a message-count or byte limit of a stream that
/// discards its oldest messages: the oldest kept sequence is `head - M` once
/// the stream is full, so the message at `committed` goes when `head` passes
/// `committed + M`. Stopped, head gains on it at the stream's write rate; at the
/// current rates, at write rate minus the consumer's rate (in stream sequences).
fn count_limits(
    limits: &RetentionLimits,
    last: &Point,
    committed: i64,
    r: &Rates,
) -> (Projection, Projection) {
    let per_message = (limits.messages > 0).then(|| limits.bytes as f64 / limits.messages as f64);
    let by_bytes = limits
        .max_bytes
        .zip(per_message.filter(|b| *b > 0.0))
        .map(|(max, size)| ((max as f64 / size).floor(), LossBasis::MaxBytes));
    let by_count = limits
        .max_messages
        .map(|m| (m as f64, LossBasis::MaxMessages));
    let mut out = (Projection::Never, Projection::Never);
    for (max, basis) in [by_count, by_bytes].into_iter().flatten() {
        let gap = committed as f64 + max - last.head as f64;
        let (headroom, projected) = match r.head {
            _ if gap <= 0.0 => (Projection::In(0.0, basis), Projection::In(0.0, basis)),
            Some(w) if w > 0.0 => {
                let closing = w - r.consume.unwrap_or(0.0).max(0.0);
                let projected = if r.consume.is_none() {
                    Projection::Unknown
                } else if closing > KEEPING_PACE_SHARE * w {
                    Projection::In(gap / closing, basis)
                } else {
                    Projection::Never
                };
                (Projection::In(gap / w, basis), projected)
            }
            // Nothing written: nothing is pushed out.
            Some(_) => (Projection::Never, Projection::Never),
            None => (Projection::Unknown, Projection::Unknown),
        };
        out = (out.0.min(headroom), out.1.min(projected));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Millis;

    fn point(committed: Option<i64>, head: i64, low: Option<i64>) -> Point {
        Point {
            at: Millis(0),
            committed,
            head,
            low,
            lag: u64::try_from(head - committed.unwrap_or(head)).unwrap_or(0),
        }
    }

    fn rates(produce: f64, consume: f64) -> Rates {
        Rates {
            produce: Some(produce),
            consume: Some(consume),
            lag_growth: Some(produce - consume),
            head: Some(produce),
            low: None,
            skipped: 0,
        }
    }

    fn age(max_age: f64) -> RetentionLimits {
        RetentionLimits {
            max_age_seconds: Some(max_age),
            ..RetentionLimits::default()
        }
    }

    fn count(max: u64) -> RetentionLimits {
        RetentionLimits {
            max_messages: Some(max),
            ..RetentionLimits::default()
        }
    }

    #[test]
    fn retention_table() {
        use LossBasis::{MaxAge, MaxMessages};
        use Projection::{In, Never, Unknown};
        let tl = |s: f64| TimeLag::interpolated(s, s - 1.0, s + 1.0);
        // (case, point, rates, time lag, limits, lost, headroom, projected)
        type Case = (
            u32,
            Point,
            Rates,
            TimeLag,
            Option<RetentionLimits>,
            u64,
            Projection,
            Projection,
        );
        let cases: Vec<Case> = vec![
            // case 1: the healthy consumer: 50 messages (5 s) behind on a
            // 30 m stream, keeping pace: headroom 30 m - 5 s if it stopped, no
            // projected loss (the shipped alert used to fire here forever).
            (
                1,
                point(Some(950), 1000, Some(0)),
                rates(10.0, 10.0),
                tl(5.0),
                Some(age(1800.0)),
                0,
                In(1795.0, MaxAge),
                Never,
            ),
            // case 2: the same stream with a consumer at half the rate: its oldest
            // message ages at 0.5 s/s: 1795 / 0.5 = 3590 s to loss.
            (
                2,
                point(Some(950), 1000, Some(0)),
                rates(10.0, 5.0),
                tl(5.0),
                Some(age(1800.0)),
                0,
                In(1795.0, MaxAge),
                In(3590.0, MaxAge),
            ),
            // case 3: stopped consumer: ages at 1 s/s.
            (
                3,
                point(Some(950), 1000, Some(0)),
                rates(10.0, 0.0),
                tl(5.0),
                Some(age(1800.0)),
                0,
                In(1795.0, MaxAge),
                In(1795.0, MaxAge),
            ),
            // case 4: before anything is deleted there is still an estimate
            // (the issue: "no loss figure after 80 s").
            (
                4,
                point(Some(0), 50, Some(0)),
                rates(0.0, 0.0),
                tl(80.0),
                Some(age(1800.0)),
                0,
                In(1720.0, MaxAge),
                In(1720.0, MaxAge),
            ),
            // case 5: retention passed committed: 300 lost, loss ongoing.
            (
                5,
                point(Some(1000), 5000, Some(1300)),
                rates(10.0, 0.0),
                tl(2000.0),
                Some(age(1800.0)),
                300,
                In(0.0, MaxAge),
                In(0.0, MaxAge),
            ),
            // case 6: max_msgs 1000, 600 behind, 10/s in, 4/s out: head passes
            // committed + 1000 in 400 / 6 s; stopped, in 400 / 10 s.
            (
                6,
                point(Some(400), 1000, Some(0)),
                rates(10.0, 4.0),
                tl(60.0),
                Some(count(1000)),
                0,
                In(40.0, MaxMessages),
                In(400.0 / 6.0, MaxMessages),
            ),
            // case 7b: keeping pace up to the slopes' noise (1 % short): never.
            (
                12,
                point(Some(950), 1000, Some(0)),
                rates(10.0, 9.9),
                tl(5.0),
                Some(age(1800.0)),
                0,
                In(1795.0, MaxAge),
                Never,
            ),
            // case 7: the same consumer keeping pace: never.
            (
                7,
                point(Some(400), 1000, Some(0)),
                rates(10.0, 10.0),
                tl(60.0),
                Some(count(1000)),
                0,
                In(40.0, MaxMessages),
                Never,
            ),
            // case 8: caught up: nothing at risk.
            (
                8,
                point(Some(1000), 1000, Some(0)),
                rates(10.0, 10.0),
                TimeLag::CAUGHT_UP,
                Some(age(60.0)),
                0,
                Never,
                Never,
            ),
            // case 9: retention not known: nothing claimed, lost still counted.
            (
                9,
                point(Some(1000), 5000, Some(1200)),
                rates(10.0, 0.0),
                tl(9.0),
                None,
                200,
                Unknown,
                Unknown,
            ),
            // case 10: no limits at all (infinite retention): never.
            (
                10,
                point(Some(0), 5000, Some(0)),
                rates(10.0, 0.0),
                tl(9.0),
                Some(RetentionLimits::default()),
                0,
                Never,
                Never,
            ),
            // case 11: the sooner of two limits wins: age 100 s left vs count
            // 40 s left when stopped.
            (
                11,
                point(Some(400), 1000, Some(0)),
                rates(10.0, 0.0),
                tl(1700.0),
                Some(RetentionLimits {
                    max_age_seconds: Some(1800.0),
                    max_messages: Some(1000),
                    ..RetentionLimits::default()
                }),
                0,
                In(40.0, MaxMessages),
                In(40.0, MaxMessages),
            ),
        ];
        for (case, p, r, tl, limits, lost, headroom, projected) in cases {
            let got = retention(&p, &r, &tl, limits.as_ref());
            assert_eq!(got.lost_messages, lost, "case {case}");
            for (name, g, w) in [
                ("headroom", got.headroom, headroom),
                ("projected", got.projected, projected),
            ] {
                match (g, w) {
                    (In(a, ba), In(b, bb)) => {
                        assert!(
                            (a - b).abs() < 1e-6 && ba == bb,
                            "case {case} {name}: {g:?} vs {w:?}"
                        )
                    }
                    _ => assert_eq!(g, w, "case {case} {name}"),
                }
            }
        }
    }
}

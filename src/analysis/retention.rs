//! Retention risk: unconsumed messages already deleted by retention, and the
//! time until retention starts deleting unconsumed ones.

use crate::history::Point;

/// Retention risk of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Retention {
    /// Messages deleted before being consumed: `low - committed` when `low`
    /// has passed `committed`, else 0.
    pub lost_messages: u64,
    /// Seconds until `low` reaches `committed` if the consumer stopped now:
    /// `(committed - low) / low_rate`; 0 once loss has begun. None when low or
    /// committed is unknown, when low does not advance, or when nothing is
    /// unconsumed (lag 0).
    pub seconds_to_loss: Option<f64>,
    /// How fast `low` advances, msgs/s (least-squares slope).
    pub low_rate: Option<f64>,
}

/// Retention risk from the newest point and the slope of `low`.
pub fn retention(last: &Point, low_rate: Option<f64>) -> Retention {
    let (Some(committed), Some(low)) = (last.committed, last.low) else {
        return Retention {
            lost_messages: 0,
            seconds_to_loss: None,
            low_rate,
        };
    };
    let lost_messages = u64::try_from(low.saturating_sub(committed)).unwrap_or(0);
    let seconds_to_loss = match low_rate {
        Some(rate) if rate > 0.0 && last.lag > 0 => {
            Some((committed.saturating_sub(low)).max(0) as f64 / rate)
        }
        _ => None,
    };
    Retention {
        lost_messages,
        seconds_to_loss,
        low_rate,
    }
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

    #[test]
    fn retention_table() {
        // (case, committed, head, low, low rate, lost, seconds to loss)
        type Case = (
            u32,
            Option<i64>,
            i64,
            Option<i64>,
            Option<f64>,
            u64,
            Option<f64>,
        );
        let cases: Vec<Case> = vec![
            // case 1: 1000 unconsumed above low, low advances 10/s: 100 s left.
            (1, Some(2000), 5000, Some(1000), Some(10.0), 0, Some(100.0)),
            // case 2: low passed committed by 300: 300 lost, loss ongoing (0 s).
            (2, Some(1000), 5000, Some(1300), Some(10.0), 300, Some(0.0)),
            // case 3: lost, and low no longer moves: count, no time.
            (3, Some(1000), 5000, Some(1300), Some(0.0), 300, None),
            // case 4: low does not advance (retention not reached): no time.
            (4, Some(2000), 5000, Some(0), Some(0.0), 0, None),
            // case 5: broker did not give low: nothing known.
            (5, Some(2000), 5000, None, None, 0, None),
            // case 6: no commit: nothing to lose "unconsumed" from.
            (6, None, 5000, Some(10), Some(1.0), 0, None),
            // case 7: caught up: nothing unconsumed is at risk.
            (7, Some(5000), 5000, Some(4000), Some(10.0), 0, None),
            // case 8: too few samples for a low rate: count only.
            (8, Some(1000), 5000, Some(1200), None, 200, None),
        ];
        for (case, committed, head, low, rate, lost, secs) in cases {
            let r = retention(&point(committed, head, low), rate);
            assert_eq!(r.lost_messages, lost, "case {case}");
            assert_eq!(r.seconds_to_loss, secs, "case {case}");
        }
    }
}

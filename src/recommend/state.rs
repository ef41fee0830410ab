//! What the recommendation remembers about one group between polls: the advice
//! last given (hysteresis), the learned per-replica capacity, and KEDA's
//! persistent-lag memory. The engine keeps one [`RecommendState`] per group and
//! passes it back each poll; everything here is plain data and pure updates.

use super::keda::PreviousOffsets;
use super::PartitionInput;
use crate::analysis::GroupAnalysis;
use crate::model::Millis;

/// Per-group memory, owned by the engine, one per group key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecommendState {
    pub hysteresis: Hysteresis,
    pub capacity: Capacity,
    /// KEDA parity mode, `excludePersistentLag`.
    pub keda_previous: PreviousOffsets,
}

/// Keeps the advice from flapping: scale-out takes effect at once, scale-in only
/// after `scale_in_after` of continuously lower recommendations while lag is near
/// zero and steady, and then to the highest of those lower recommendations (as
/// the HPA's scale-down stabilization takes the highest recommendation in its
/// window); changes within the relative tolerance are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hysteresis {
    /// The advice last given; None before the first.
    emitted: Option<u32>,
    /// The replicas running at the previous step.
    seen_current: Option<u32>,
    /// Start of the current unbroken run of lower, calm recommendations.
    lower_since: Option<Millis>,
    /// The highest recommendation in that run.
    lower_max: u32,
}

/// A scale-in the hysteresis is holding back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// What the advice would drop to.
    pub to: u32,
    /// Since when lag has been calm with lower recommendations; None: lag is not
    /// near zero and steady, so the wait has not started.
    pub since: Option<Millis>,
}

/// The outcome of one hysteresis step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub replicas: u32,
    /// The advice given at the previous poll.
    pub previous: Option<u32>,
    pub pending: Option<Pending>,
    /// The raw recommendation differed by no more than the tolerance: ignored.
    pub within_tolerance: bool,
}

fn within(raw: u32, base: u32, tolerance: f64) -> bool {
    // The HPA's test, |1 - ratio| <= tolerance, with a hair of slack so that
    // 22 / 20 counts as the 10 % it is (in floats it is 10.000000000000009 %);
    // from zero any change counts.
    base > 0 && (1.0 - f64::from(raw) / f64::from(base)).abs() <= tolerance + 1e-9
}

impl Hysteresis {
    /// The advice last given.
    pub fn emitted(&self) -> Option<u32> {
        self.emitted
    }

    /// One poll: `raw` is this poll's recommendation, `current` the replicas
    /// running (the first advice never starts below them, so a scale-in waits
    /// even right after a restart of lagwatch), `calm` whether lag is near zero
    /// and steady.
    pub fn step(
        &mut self,
        raw: u32,
        current: Option<u32>,
        calm: bool,
        now: Millis,
        scale_in_after_ms: i64,
        tolerance: f64,
    ) -> Decision {
        // Someone scaled up beyond the advice: re-anchor there, so taking those
        // replicas away again waits like any scale-in. (A scale-down below the
        // advice leaves it alone: the advice stands.)
        if current != self.seen_current {
            if let (Some(c), Some(e)) = (current, self.emitted) {
                if c > e {
                    self.emitted = Some(c);
                    self.lower_since = None;
                }
            }
            self.seen_current = current;
        }
        let previous = self.emitted;
        let base = self
            .emitted
            .unwrap_or_else(|| current.map_or(raw, |c| c.max(raw)));
        let mut d = Decision {
            replicas: base,
            previous,
            pending: None,
            within_tolerance: false,
        };
        if raw != base && within(raw, base, tolerance) {
            d.within_tolerance = true;
            self.lower_since = None;
        } else if raw > base {
            d.replicas = raw;
            self.lower_since = None;
        } else if raw < base {
            if !calm {
                self.lower_since = None;
                d.pending = Some(Pending {
                    to: raw,
                    since: None,
                });
            } else {
                let since = match self.lower_since {
                    Some(s) => {
                        self.lower_max = self.lower_max.max(raw);
                        s
                    }
                    None => {
                        self.lower_since = Some(now);
                        self.lower_max = raw;
                        now
                    }
                };
                if now.0.saturating_sub(since.0) >= scale_in_after_ms {
                    d.replicas = self.lower_max;
                    self.lower_since = None;
                } else {
                    d.pending = Some(Pending {
                        to: self.lower_max,
                        since: Some(since),
                    });
                }
            }
        } else {
            self.lower_since = None;
        }
        self.emitted = Some(d.replicas);
        d
    }

    /// Sets the advice without the hysteresis rules (a fixed answer such as
    /// "a push consumer without deliver group runs one").
    pub fn force(&mut self, replicas: u32) {
        self.emitted = Some(replicas);
        self.lower_since = None;
    }
}

/// Per-replica consume capacity, learned from the group's own history.
///
/// Rule: a poll is a capacity sample when the group is saturated -- every
/// partition has lag, a positive consume rate, and a backlog of at least
/// `min_backlog` at that rate (its consumer never ran out of work), and no
/// JetStream consumer is held back by max_ack_pending -- and has been saturated,
/// with the same number of replicas, for at least `learn_after` (so the
/// windowed consume rate is mostly a saturated one). The sample is the group's
/// consume rate divided by its replicas; the estimate is a moving average that
/// moves [`CAPACITY_WEIGHT`] of the way to each new sample. A caught-up group's
/// consume rate only mirrors its produce rate, so it teaches nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capacity {
    per_replica: Option<f64>,
    samples: u32,
    saturated_since: Option<(Millis, u32)>,
    /// Before `learn_after`: the consume rate per replica after
    /// [`ESTIMATE_AFTER_MS`] of saturation, a first, rougher figure.
    estimate: Option<f64>,
}

/// A first capacity estimate is made after this much saturation (or
/// `learn_after`, if shorter): a group saturated since a flash sale began gets
/// sized advice within about a minute, not after five.
pub const ESTIMATE_AFTER_MS: i64 = 60_000;

/// How far one saturated poll moves the estimate: one noisy poll cannot swing
/// it, and a faster release is learned within a handful of polls.
pub const CAPACITY_WEIGHT: f64 = 0.25;

impl Capacity {
    /// msgs/s one replica consumes when it has work; None until learned.
    pub fn per_replica(&self) -> Option<f64> {
        self.per_replica
    }
    pub fn samples(&self) -> u32 {
        self.samples
    }
    /// The first estimate, until capacity is learned.
    pub fn estimate(&self) -> Option<f64> {
        self.per_replica
            .is_none()
            .then_some(self.estimate)
            .flatten()
    }
    /// Since when the group has been saturated (with the replicas then).
    pub fn saturated_since(&self) -> Option<Millis> {
        self.saturated_since.map(|(t, _)| t)
    }

    /// One poll. Returns the sample taken, if any.
    pub fn observe(
        &mut self,
        parts: &[PartitionInput],
        group: &GroupAnalysis,
        replicas: Option<u32>,
        now: Millis,
        learn_after_ms: i64,
        min_backlog_secs: f64,
    ) -> Option<f64> {
        let replicas = replicas.filter(|&r| r > 0);
        let (Some(r), true) = (replicas, saturated(parts, min_backlog_secs)) else {
            self.saturated_since = None;
            return None;
        };
        let since = match self.saturated_since {
            Some((t, n)) if n == r => t,
            // Start, or the replica count changed: a rate over a window with
            // two different counts divides wrongly; start again.
            _ => {
                self.saturated_since = Some((now, r));
                now
            }
        };
        let saturated_for = now.0.saturating_sub(since.0);
        let consume = group.consume_rate.filter(|c| c.is_finite() && *c > 0.0);
        if saturated_for >= ESTIMATE_AFTER_MS.min(learn_after_ms) {
            if let Some(c) = consume {
                self.estimate = Some(c / f64::from(r));
            }
        }
        if saturated_for < learn_after_ms {
            return None;
        }
        let sample = consume? / f64::from(r);
        self.per_replica = Some(match self.per_replica {
            Some(old) => old + CAPACITY_WEIGHT * (sample - old),
            None => sample,
        });
        self.samples = self.samples.saturating_add(1);
        Some(sample)
    }
}

/// The group is working flat out: every partition has a backlog of at least
/// `min_backlog_secs` of work at its own consume rate, and the group consumes.
/// A partition with lag but no consume rate in the window counts as behind: a
/// consumer fetches its partitions unevenly (librdkafka reads batches from one
/// partition at a time), so a partition it has not reached yet waits with a
/// rate of 0 — that is saturation, not its absence. A partition holding only
/// the few messages of a commit interval at a high rate is caught up. For
/// JetStream the backlog is the undelivered messages (num_pending), and a
/// consumer at max_ack_pending is held back by the ack limit, not its replicas.
pub fn saturated(parts: &[PartitionInput], min_backlog_secs: f64) -> bool {
    let mut group_consume = 0.0;
    let all_behind = !parts.is_empty()
        && parts.iter().all(|p| {
            let backlog = match &p.jetstream {
                Some(js) => {
                    if super::ack_limited(js) {
                        return false;
                    }
                    js.num_pending
                }
                None => p.lag,
            };
            let rate = p.consume_rate.unwrap_or(0.0).max(0.0);
            group_consume += rate;
            backlog > 0 && backlog as f64 >= rate * min_backlog_secs
        });
    all_behind && group_consume > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const MIN: i64 = 60_000;

    #[test]
    fn scale_out_takes_effect_at_once_and_scale_in_only_after_the_delay() {
        let mut h = Hysteresis::default();
        // (case, minute, raw, current, calm, advice, pending to)
        let steps = [
            // case 1: first advice from 4 running, 6 needed: 6 at once.
            (1, 0, 6, Some(4), true, 6, None),
            // case 2: need drops to 3 while lag is still high: held, not started.
            (2, 1, 3, Some(6), false, 6, Some(3)),
            // case 3: calm from now on: the 10 m wait starts.
            (3, 2, 3, Some(6), true, 6, Some(3)),
            // case 4: 4 in the middle of the run: still lower, the run goes on,
            // and the scale-in will go to 4, the highest of the run.
            (4, 6, 4, Some(6), true, 6, Some(4)),
            // case 5: 9 m 59 s... still waiting at minute 11 (9 m after start).
            (5, 11, 3, Some(6), true, 6, Some(4)),
            // case 6: minute 12: 10 m of calm, lower advice: scale in to 4.
            (6, 12, 3, Some(6), true, 4, None),
            // case 7: a burst: 8 needed: at once.
            (7, 13, 8, Some(4), false, 8, None),
        ];
        for (case, minute, raw, current, calm, advice, pending) in steps {
            let d = h.step(raw, current, calm, Millis(minute * MIN), 10 * MIN, 0.1);
            assert_eq!(d.replicas, advice, "case {case} {d:?}");
            assert_eq!(d.pending.map(|p| p.to), pending, "case {case} {d:?}");
        }
    }

    #[test]
    fn alternating_recommendations_do_not_flap() {
        let mut h = Hysteresis::default();
        // 6, 3, 6, 3, ... every 30 s for an hour, calm throughout: every 3 breaks
        // no run because every 6 ends it; the advice stays 6 throughout.
        for i in 0..120 {
            let raw = if i % 2 == 0 { 6 } else { 3 };
            let d = h.step(raw, Some(6), true, Millis(i * 30_000), 10 * MIN, 0.1);
            assert_eq!(d.replicas, 6, "poll {i}");
        }
    }

    #[test]
    fn changes_within_the_tolerance_are_ignored() {
        let mut h = Hysteresis::default();
        // (case, raw, advice, within tolerance)
        let steps = [
            // case 1: first: 20.
            (1, 20, 20, false),
            // case 2: 22 is +10 %: ignored.
            (2, 22, 20, true),
            // case 3: 18 is -10 %: ignored.
            (3, 18, 20, true),
            // case 4: 23 is +15 %: taken.
            (4, 23, 23, false),
            // case 5: from 1, +1 is +100 %: small counts always move.
            (5, 23, 23, false),
        ];
        for (case, raw, advice, tol) in steps {
            let d = h.step(raw, None, true, Millis(0), 10 * MIN, 0.1);
            assert_eq!(
                (d.replicas, d.within_tolerance),
                (advice, tol),
                "case {case}"
            );
        }
        let mut h = Hysteresis::default();
        h.step(1, None, true, Millis(0), 0, 0.1);
        assert_eq!(h.step(2, None, true, Millis(1), 0, 0.1).replicas, 2);
    }

    #[test]
    fn the_first_advice_never_scales_in_before_the_delay() {
        let mut h = Hysteresis::default();
        // 8 running, 2 needed, calm: start at 8 and wait.
        let d = h.step(2, Some(8), true, Millis(0), 10 * MIN, 0.1);
        assert_eq!((d.replicas, d.pending.map(|p| p.to)), (8, Some(2)));
        let d = h.step(2, Some(8), true, Millis(10 * MIN), 10 * MIN, 0.1);
        assert_eq!((d.replicas, d.pending), (2, None));
    }

    fn part(lag: u64, consume: Option<f64>) -> PartitionInput {
        PartitionInput {
            topic: Arc::from("t"),
            partition: Some(0),
            lag,
            committed: Some(0),
            head: i64::try_from(lag).unwrap(),
            consume_rate: consume,
            produce_rate: None,
            jetstream: None,
        }
    }

    fn group(consume: f64) -> GroupAnalysis {
        let mut g = crate::analysis::rollup(std::iter::empty());
        g.consume_rate = Some(consume);
        g
    }

    #[test]
    fn capacity_is_learned_only_while_every_partition_is_behind_for_a_while() {
        let mut c = Capacity::default();
        let behind = [part(90_000, Some(400.0)), part(60_000, Some(400.0))];
        let one_caught_up = [part(90_000, Some(400.0)), part(5, Some(400.0))];
        // (case, minute, partitions, replicas, group consume, sample, estimate)
        type Step<'a> = (
            u32,
            i64,
            &'a [PartitionInput],
            Option<u32>,
            f64,
            Option<f64>,
            Option<f64>,
        );
        let steps: [Step; 7] = [
            // case 1: behind, 2 replicas, clock starts: no sample yet.
            (1, 0, &behind, Some(2), 800.0, None, None),
            // case 2: 4 m: still under learn_after (5 m).
            (2, 4, &behind, Some(2), 800.0, None, None),
            // case 3: 5 m: sample 800 / 2 = 400.
            (3, 5, &behind, Some(2), 800.0, Some(400.0), Some(400.0)),
            // case 4: one partition caught up (backlog 5 < 30 s x 400): that
            // consumer idles: no sample, and the clock stops.
            (4, 6, &one_caught_up, Some(2), 600.0, None, Some(400.0)),
            // case 5: behind again with 4 replicas: clock restarts.
            (5, 7, &behind, Some(4), 2000.0, None, Some(400.0)),
            // case 6: 5 m later: sample 2000 / 4 = 500: moves 25 % of the way.
            (6, 12, &behind, Some(4), 2000.0, Some(500.0), Some(425.0)),
            // case 7: replicas unknown: nothing can be divided.
            (7, 13, &behind, None, 2000.0, None, Some(425.0)),
        ];
        for (case, minute, parts, replicas, consume, sample, estimate) in steps {
            let s = c.observe(
                parts,
                &group(consume),
                replicas,
                Millis(minute * MIN),
                5 * MIN,
                30.0,
            );
            assert_eq!(s, sample, "case {case}");
            assert_eq!(c.per_replica(), estimate, "case {case}");
        }
        assert_eq!(c.samples(), 2);
    }

    #[test]
    fn a_jetstream_consumer_at_max_ack_pending_is_not_saturated_by_its_replicas() {
        let js = |pending: u64, ack: u64| {
            let mut p = part(pending + ack, Some(100.0));
            p.jetstream = Some(crate::model::JetstreamParts {
                num_pending: pending,
                num_ack_pending: ack,
                max_ack_pending: 1000,
                ..Default::default()
            });
            p
        };
        // case 1: 50,000 waiting, 10 in flight: saturated.
        assert!(saturated(&[js(50_000, 10)], 30.0));
        // case 2: the same backlog with 1000 of 1000 in flight: the ack limit.
        assert!(!saturated(&[js(50_000, 1000)], 30.0));
        // case 3: nothing waiting, only in flight: not behind.
        assert!(!saturated(&[js(0, 900)], 30.0));
    }
}

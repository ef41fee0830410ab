//! The engine's half of dead letters and redeliveries: the counters of every
//! dead-letter queue and advisory count (owned here, like the history), the
//! views a poll makes of them, their links to the groups, and each group's
//! summary for the API, the page and the notification rules.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::{Absence, Engine};
use crate::analysis::dead_letters::{Counter, Quality};
use crate::model::{
    AdvisoryState, ConsumerKey, DeadLetterReading, DeadLetterReason, GroupKey, Millis, SourceId,
    System,
};
use crate::snapshot::{DeadLetterView, GroupDeadLetters, GroupView, PartitionView};

/// One dead-letter count: (source, reason, topic, dead-letter topic, group).
pub(super) type DeadKey = (
    SourceId,
    DeadLetterReason,
    Arc<str>,
    Option<Arc<str>>,
    Option<Arc<str>>,
);

/// What the engine remembers of one source's advisory subscription: the gap
/// count last seen, and when it last grew.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Gaps {
    seen: u64,
    last: Option<Millis>,
}

/// Groups of one poll that consume each topic, with their lag on it.
type Consumers = HashMap<Arc<str>, Vec<(Arc<str>, u64)>>;

fn consumers(groups: &BTreeMap<GroupKey, GroupView>, partitions: &[PartitionView]) -> Consumers {
    let mut out: Consumers = HashMap::new();
    for g in groups.values().filter(|g| g.key.scope.is_none()) {
        let mut lag: BTreeMap<&Arc<str>, u64> = BTreeMap::new();
        for p in g.partitions.iter().filter_map(|&i| partitions.get(i)) {
            let l = lag.entry(&p.sample.key.topic).or_default();
            *l = l.saturating_add(p.sample.lag);
        }
        for (topic, l) in lag {
            out.entry(topic.clone())
                .or_default()
                .push((g.key.group.clone(), l));
        }
    }
    out
}

impl Engine {
    /// Folds one successful poll's dead-letter readings into the counters and
    /// makes the source's views: this poll's, plus the previous ones it did
    /// not read (stale) until they are gone; then each group's summary.
    #[allow(
        clippy::too_many_arguments,
        reason = "one poll's pieces, each owned by the caller"
    )]
    pub(super) fn fold_dead_letters(
        &mut self,
        source: &SourceId,
        system: System,
        at: Millis,
        readings: Vec<DeadLetterReading>,
        advisories: Option<AdvisoryState>,
        groups: &mut BTreeMap<GroupKey, GroupView>,
        partitions: &[PartitionView],
        absence: Absence,
    ) -> Vec<DeadLetterView> {
        let d = self.settings.dead_letters.clone();
        self.fold_redeliveries(source, groups, partitions, at);
        if !d.enabled {
            return Vec::new();
        }
        let window = d.window;
        let keep = window.max(self.settings.window);
        let gap_at = self.note_gaps(source, advisories, at);
        let by_topic = consumers(groups, partitions);
        let mut views = Vec::with_capacity(readings.len());
        let mut seen: HashSet<DeadKey> = HashSet::new();
        for r in readings {
            let (topic, group) = link(&r, &by_topic);
            if group.is_none() && !r.owned {
                continue;
            }
            let key: DeadKey = (
                source.clone(),
                r.reason,
                topic.clone(),
                r.dead_letter_topic.clone(),
                group.clone(),
            );
            if !seen.insert(key.clone()) {
                continue;
            }
            let since = advisories.and_then(|a| a.since).unwrap_or(at);
            let counter = self.dead.entry(key).or_insert_with(|| {
                if r.reason == DeadLetterReason::DeadLetterTopic {
                    // A topic's head counts what came before lagwatch too:
                    // the first reading is the baseline.
                    Counter::default()
                } else {
                    // Advisories are counted from the subscription on.
                    Counter::starting(since, 0)
                }
            });
            counter.record(at, i64::try_from(r.total).unwrap_or(i64::MAX), keep);
            let (recent, covered) = counter.added_within(at, window);
            let window_start = at.0 - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            let missed = r.reason != DeadLetterReason::DeadLetterTopic
                && (advisories.is_none_or(|a| !a.subscribed)
                    || gap_at.is_some_and(|g| g.0 > window_start));
            let quality = if missed || covered + 1.0 < window.as_secs_f64() {
                Quality::LowerBound
            } else {
                Quality::Exact
            };
            let drained_by = r
                .dead_letter_topic
                .as_ref()
                .and_then(|t| by_topic.get(t))
                .cloned()
                .unwrap_or_default();
            let undrained = match drained_by.iter().map(|(_, l)| *l).min() {
                Some(l) => Some(l),
                None if r.reason == DeadLetterReason::DeadLetterTopic => r.stored,
                None => None,
            };
            views.push(DeadLetterView {
                reason: r.reason,
                consumers: by_topic
                    .get(&topic)
                    .map(|v| v.iter().map(|(g, _)| g.clone()).collect())
                    .unwrap_or_default(),
                topic,
                dead_letter_topic: r.dead_letter_topic,
                group,
                total: r.total,
                recent,
                covered_seconds: covered,
                per_second: counter.rate(at, self.settings.window),
                quality,
                stored: r.stored,
                drained_by,
                undrained,
                last: r.last,
                last_added: counter.last_added,
                read_at: at,
                absent_since: None,
            });
        }
        self.carry_dead_letters(source, &mut views, &seen, absence);
        views.sort_by(|a, b| view_key(a).cmp(&view_key(b)));
        summarise(system, &views, groups, advisories, gap_at, window, at);
        views
    }

    /// Keeps the previous poll's views this one did not read, stale, until a
    /// clean poll has missed them for `gone_after`; forgets the counters of
    /// those that are gone.
    fn carry_dead_letters(
        &mut self,
        source: &SourceId,
        views: &mut Vec<DeadLetterView>,
        seen: &HashSet<DeadKey>,
        absence: Absence,
    ) {
        let previous = self.sources.get(source).map(|s| s.dead_letters.clone());
        let mut live: HashSet<DeadKey> = seen.clone();
        for old in previous.iter().flat_map(|v| v.iter()) {
            let key = key_of(source, old);
            if seen.contains(&key) {
                continue;
            }
            let (absent_since, gone) = absence.judge(old.absent_since);
            if !gone {
                let mut v = old.clone();
                v.absent_since = absent_since;
                views.push(v);
                live.insert(key);
            }
        }
        self.dead.retain(|k, _| &k.0 != source || live.contains(k));
    }

    /// Records the advisory subscription's gap count; the time it last grew.
    fn note_gaps(
        &mut self,
        source: &SourceId,
        advisories: Option<AdvisoryState>,
        at: Millis,
    ) -> Option<Millis> {
        let a = advisories?;
        let g = self.advisory_gaps.entry(source.clone()).or_default();
        if a.gaps > g.seen {
            g.seen = a.gaps;
            g.last = Some(at);
        }
        g.last
    }

    /// JetStream redeliveries per second of every consumer read fresh this
    /// poll: from `delivered.consumer_seq - delivered.stream_seq` (exact for
    /// a consumer that sees its whole stream), else from every delivery (an
    /// upper bound).
    fn fold_redeliveries(
        &mut self,
        source: &SourceId,
        groups: &mut BTreeMap<GroupKey, GroupView>,
        partitions: &[PartitionView],
        at: Millis,
    ) {
        let keep = self.settings.window;
        let mut live: HashSet<ConsumerKey> = HashSet::new();
        for g in groups.values_mut() {
            let Some(p) = g.partitions.first().and_then(|&i| partitions.get(i)) else {
                continue;
            };
            let Some(js) = p.sample.jetstream.as_ref() else {
                continue;
            };
            let reading = match (js.redelivery_marker, js.deliveries) {
                (Some(m), _) => Some((Quality::Exact, m)),
                (None, Some(d)) => Some((Quality::UpperBound, i64::try_from(d).unwrap_or(0))),
                (None, None) => None,
            };
            let Some((quality, raw)) = reading else {
                continue;
            };
            live.insert(p.sample.key.clone());
            if p.read_at != at {
                // Stale: keep what was known, add nothing.
                continue;
            }
            let entry = self
                .redeliveries
                .entry(p.sample.key.clone())
                .or_insert_with(|| (quality, Counter::default()));
            if entry.0 != quality {
                *entry = (quality, Counter::default());
            }
            entry.1.record(at, raw, keep);
            g.redelivered = entry.1.rate(at, keep).map(|r| (r, quality));
        }
        self.redeliveries
            .retain(|k, _| &k.group.source != source || live.contains(k));
    }
}

/// The topic a reading is about and the group it is linked to: an explicit
/// link or the JetStream consumer; else the only group consuming the topic;
/// else `<topic>.<group>` when that group consumes `<topic>`.
fn link(r: &DeadLetterReading, by_topic: &Consumers) -> (Arc<str>, Option<Arc<str>>) {
    if r.group.is_some() {
        return (r.topic.clone(), r.group.clone());
    }
    match by_topic.get(&r.topic).map(Vec::as_slice) {
        Some([(only, _)]) => (r.topic.clone(), Some(only.clone())),
        Some([_, _, ..]) => (r.topic.clone(), None),
        _ => {
            if let Some((base, group)) = r.topic.rsplit_once('.') {
                if let Some(list) = by_topic.get(base) {
                    if let Some((g, _)) = list.iter().find(|(g, _)| &**g == group) {
                        return (Arc::from(base), Some(g.clone()));
                    }
                }
            }
            (r.topic.clone(), None)
        }
    }
}

fn key_of(source: &SourceId, v: &DeadLetterView) -> DeadKey {
    (
        source.clone(),
        v.reason,
        v.topic.clone(),
        v.dead_letter_topic.clone(),
        v.group.clone(),
    )
}

type ViewKey<'a> = (
    &'a Option<Arc<str>>,
    &'a Arc<str>,
    DeadLetterReason,
    &'a Option<Arc<str>>,
);

fn view_key(v: &DeadLetterView) -> ViewKey<'_> {
    (&v.group, &v.topic, v.reason, &v.dead_letter_topic)
}

/// Each group's dead letters: the sum of the views linked to it. A group with
/// none linked has none: exactly none on Kafka (no dead-letter topic names
/// it), and on JetStream as sure as the advisory subscription is.
fn summarise(
    system: System,
    views: &[DeadLetterView],
    groups: &mut BTreeMap<GroupKey, GroupView>,
    advisories: Option<AdvisoryState>,
    gap_at: Option<Millis>,
    window: std::time::Duration,
    at: Millis,
) {
    let window_s = window.as_secs_f64();
    for g in groups.values_mut() {
        let none_quality = match system {
            System::Kafka => Quality::Exact,
            System::Jetstream => {
                let window_start = at.0 - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
                let watched = advisories
                    .is_some_and(|a| a.subscribed && a.since.is_some_and(|s| s.0 <= window_start))
                    && gap_at.is_none_or(|t| t.0 <= window_start);
                if watched {
                    Quality::Exact
                } else {
                    Quality::LowerBound
                }
            }
        };
        let mut sum = GroupDeadLetters {
            recent: 0,
            window_seconds: window_s,
            covered_seconds: window_s,
            per_second: Some(0.0),
            quality: none_quality,
            stale: false,
            detail: String::new(),
        };
        let mut details = Vec::new();
        let mut linked = false;
        for v in views.iter().filter(|v| {
            v.group.as_ref() == Some(&g.key.group)
                && match &g.key.scope {
                    Some(stream) => *stream == v.topic,
                    None => v.reason == DeadLetterReason::DeadLetterTopic,
                }
        }) {
            linked = true;
            sum.recent = sum.recent.saturating_add(v.recent);
            sum.covered_seconds = sum.covered_seconds.min(v.covered_seconds);
            sum.per_second = match (sum.per_second, v.per_second) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            if v.quality != Quality::Exact {
                sum.quality = v.quality;
            }
            sum.stale |= v.read_at < at;
            if v.recent == 0 {
                continue;
            }
            let place = match &v.dead_letter_topic {
                Some(t) => format!("{} to {t}", v.topic),
                None => format!("{} of {}", v.reason.as_str(), v.topic),
            };
            details.push(match &v.last {
                Some(last) => format!("{} {place} ({last})", v.recent),
                None => format!("{} {place}", v.recent),
            });
        }
        if !linked && system == System::Jetstream && advisories.is_none() {
            // Advisories are not watched for this source: nothing to say.
            continue;
        }
        sum.detail = details.join("; ");
        g.dead_letters = Some(sum);
    }
}

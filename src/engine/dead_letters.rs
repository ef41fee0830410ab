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

/// One dead-letter count: (source, reason, stream, dead-letter topic,
/// consumer); see [`dead_key`].
pub(super) type DeadKey = (
    SourceId,
    DeadLetterReason,
    Arc<str>,
    Option<Arc<str>>,
    Option<Arc<str>>,
);

/// What the engine remembers of one source's advisory subscription: the gap
/// count and start last seen, and when a gap was last noticed.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Gaps {
    seen: u64,
    since: Option<Millis>,
    last: Option<Millis>,
}

/// What the engine remembers of dead letters between polls, besides the
/// counters: sticky links, links lost, and each source's last clean poll.
#[derive(Debug, Default)]
pub(super) struct Links {
    /// The (topic, group) each count was last linked to by the rules: kept
    /// while that group still consumes that topic, so a second reader of the
    /// topic does not take the dead letters away from the first.
    sticky: HashMap<DeadKey, (Arc<str>, Arc<str>)>,
    /// Groups that lost a link, and when: their dead letters are a lower
    /// bound for a window (what went to the queue they lost is not theirs
    /// any more, nor known to be none).
    lost: HashMap<(SourceId, Arc<str>), Millis>,
    /// Per source: its last poll with no partial error.
    last_clean: HashMap<SourceId, Millis>,
}

/// Groups of one poll that consume each topic: (group, lag on it,
/// partitions it has offsets on).
type Consumers = HashMap<Arc<str>, Vec<(Arc<str>, u64, u32)>>;

fn consumers(groups: &BTreeMap<GroupKey, GroupView>, partitions: &[PartitionView]) -> Consumers {
    let mut out: Consumers = HashMap::new();
    for g in groups.values().filter(|g| g.key.scope.is_none()) {
        let mut lag: BTreeMap<&Arc<str>, (u64, u32)> = BTreeMap::new();
        for p in g.partitions.iter().filter_map(|&i| partitions.get(i)) {
            let l = lag.entry(&p.sample.key.topic).or_default();
            l.0 = l.0.saturating_add(p.sample.lag);
            l.1 += 1;
        }
        for (topic, (l, n)) in lag {
            out.entry(topic.clone())
                .or_default()
                .push((g.key.group.clone(), l, n));
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
        let window_start =
            at.0.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        let keep = window.max(self.settings.window);
        let gap_at = self.note_gaps(source, advisories, at);
        // A dead-letter topic first seen after a clean poll is new since
        // then: what it holds was parked since then (a topic auto-created
        // by its first dead letter). Otherwise its first reading is the
        // baseline.
        let previous = self.sources.get(source).and_then(|v| v.last_success);
        let new_since = previous.filter(|p| self.dead_links.last_clean.get(source) == Some(p));
        if absence.clean {
            self.dead_links.last_clean.insert(source.clone(), at);
        }
        let by_topic = consumers(groups, partitions);
        let mut views = Vec::with_capacity(readings.len());
        let mut seen: HashSet<DeadKey> = HashSet::new();
        for r in readings {
            if !r.owned {
                continue;
            }
            let key = dead_key(source, r.reason, &r.topic, &r.dead_letter_topic, &r.group);
            if !seen.insert(key.clone()) {
                continue;
            }
            let (topic, group) = self.link(source, &key, &r, &by_topic, at);
            let since = advisories.and_then(|a| a.since).unwrap_or(at);
            let counter = self.dead.entry(key).or_insert_with(|| {
                match (r.reason, new_since) {
                    (DeadLetterReason::DeadLetterTopic, Some(p)) => Counter::starting(p, 0),
                    // A topic's head counts what came before lagwatch too:
                    // the first reading is the baseline.
                    (DeadLetterReason::DeadLetterTopic, None) => Counter::default(),
                    // Advisories are counted from the subscription on.
                    _ => Counter::starting(since, 0),
                }
            });
            counter.record_count(at, i64::try_from(r.total).unwrap_or(i64::MAX), keep);
            let missed = counter.last_reset.is_some_and(|t| t.0 > window_start)
                || (r.reason != DeadLetterReason::DeadLetterTopic
                    && (advisories.is_none_or(|a| !a.subscribed)
                        || gap_at.is_some_and(|g| g.0 > window_start)));
            let consumers = by_topic
                .get(&topic)
                .map(|v| v.iter().map(|(g, _, _)| g.clone()).collect())
                .unwrap_or_default();
            let drained_by = drainers(&r, &by_topic);
            views.push(view(
                r,
                topic,
                group,
                consumers,
                drained_by,
                counter,
                missed,
                at,
                window,
                self.settings.window,
            ));
        }
        self.carry_dead_letters(source, &mut views, &seen, absence);
        views.sort_by(|a, b| view_key(a).cmp(&view_key(b)));
        self.forget_lost(source, groups);
        let links = Summary {
            system,
            window,
            at,
            lost: &self.dead_links.lost,
            source,
        };
        links.summarise(&views, groups);
        views
    }

    /// Forgets the lost links of this source's groups that are gone.
    fn forget_lost(&mut self, source: &SourceId, groups: &BTreeMap<GroupKey, GroupView>) {
        self.dead_links.lost.retain(|(s, g), _| {
            s != source
                || groups.contains_key(&GroupKey {
                    source: s.clone(),
                    scope: None,
                    group: g.clone(),
                })
        });
    }

    /// The topic a reading is about and the group it is linked to (see
    /// [`link`]), kept while the group it was linked to still consumes the
    /// topic; a group that loses its link is remembered in `lost`.
    fn link(
        &mut self,
        source: &SourceId,
        key: &DeadKey,
        r: &DeadLetterReading,
        by_topic: &Consumers,
        at: Millis,
    ) -> (Arc<str>, Option<Arc<str>>) {
        let (topic, group) = link(r, by_topic);
        if r.group.is_some() {
            return (topic, group);
        }
        let links = &mut self.dead_links;
        let before = links.sticky.get(key).cloned();
        if let Some((t, g)) = &before {
            let still = by_topic
                .get(t)
                .is_some_and(|v| v.iter().any(|(c, _, _)| c == g));
            if still {
                return (t.clone(), Some(g.clone()));
            }
            if group.as_ref() != Some(g) {
                links.lost.insert((source.clone(), g.clone()), at);
            }
        }
        match &group {
            Some(g) => {
                links.sticky.insert(key.clone(), (topic.clone(), g.clone()));
            }
            None => {
                links.sticky.remove(key);
            }
        }
        (topic, group)
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
        self.dead_links
            .sticky
            .retain(|k, _| &k.0 != source || live.contains(k));
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
        // More gaps; or fewer, or a new start: the source task restarted,
        // and what was published meanwhile was not seen.
        let restarted = g.since.is_some() && (a.gaps < g.seen || a.since != g.since);
        if a.gaps > g.seen || restarted {
            g.last = Some(at);
        }
        g.seen = a.gaps;
        g.since = a.since;
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

/// The view of one reading, its counter just updated. `missed`: advisories
/// may have been lost in the window.
#[allow(
    clippy::too_many_arguments,
    reason = "the pieces of one view, worked out by the caller"
)]
fn view(
    r: DeadLetterReading,
    topic: Arc<str>,
    group: Option<Arc<str>>,
    consumers: Vec<Arc<str>>,
    drained_by: Option<Vec<(Arc<str>, u64)>>,
    counter: &Counter,
    missed: bool,
    at: Millis,
    window: std::time::Duration,
    rate_span: std::time::Duration,
) -> DeadLetterView {
    let (recent, covered) = counter.added_within(at, window);
    let quality = if missed || covered + 1.0 < window.as_secs_f64() {
        Quality::LowerBound
    } else {
        Quality::Exact
    };
    // Unknown when this process does not see every group.
    let undrained = drained_by
        .as_ref()
        .and_then(|d| match d.iter().map(|(_, l)| *l).min() {
            Some(l) => Some(l),
            None if r.reason == DeadLetterReason::DeadLetterTopic => r.stored,
            None => None,
        });
    DeadLetterView {
        reason: r.reason,
        consumers,
        topic,
        dead_letter_topic: r.dead_letter_topic,
        group,
        total: r.total,
        recent,
        covered_seconds: covered,
        per_second: counter.rate(at, rate_span),
        quality,
        stored: r.stored,
        drained_by: drained_by.unwrap_or_default(),
        undrained,
        last: r.last,
        last_added: counter.last_added,
        read_at: at,
        absent_since: None,
    }
}

/// Who drains a dead-letter topic, with their lag on it: only a process that
/// sees every group can say (None), and only a group with offsets on every
/// partition drains it all.
fn drainers(r: &DeadLetterReading, by_topic: &Consumers) -> Option<Vec<(Arc<str>, u64)>> {
    r.sees_all_groups.then(|| {
        r.dead_letter_topic
            .as_ref()
            .and_then(|t| by_topic.get(t))
            .map(|v| {
                v.iter()
                    .filter(|(_, _, n)| *n >= r.partitions)
                    .map(|(g, l, _)| (g.clone(), *l))
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The topic a reading is about and the group it is linked to: an explicit
/// link or the JetStream consumer; else the only group consuming the topic;
/// else `<topic>.<group>` when that group consumes `<topic>`.
fn link(r: &DeadLetterReading, by_topic: &Consumers) -> (Arc<str>, Option<Arc<str>>) {
    if r.group.is_some() || !r.sees_all_groups {
        // Named outright (JetStream, an explicit link); or this process sees
        // only some groups (sharded, filtered): "the only one" is unknown.
        return (r.topic.clone(), r.group.clone());
    }
    match by_topic.get(&r.topic).map(Vec::as_slice) {
        Some([(only, _, _)]) => (r.topic.clone(), Some(only.clone())),
        Some([_, _, ..]) => (r.topic.clone(), None),
        _ => {
            if let Some((base, group)) = r.topic.rsplit_once('.') {
                if let Some(list) = by_topic.get(base) {
                    if let Some((g, _, _)) = list.iter().find(|(g, _, _)| &**g == group) {
                        return (Arc::from(base), Some(g.clone()));
                    }
                }
            }
            (r.topic.clone(), None)
        }
    }
}

/// What identifies a count whatever it is linked to (a link changes when a
/// group starts or stops consuming the topic; the count goes on): the
/// dead-letter topic (Kafka), or the stream and consumer (JetStream).
fn dead_key(
    source: &SourceId,
    reason: DeadLetterReason,
    topic: &Arc<str>,
    dead_letter_topic: &Option<Arc<str>>,
    group: &Option<Arc<str>>,
) -> DeadKey {
    match dead_letter_topic {
        Some(t) => (source.clone(), reason, Arc::from(""), Some(t.clone()), None),
        None => (source.clone(), reason, topic.clone(), None, group.clone()),
    }
}

fn key_of(source: &SourceId, v: &DeadLetterView) -> DeadKey {
    dead_key(source, v.reason, &v.topic, &v.dead_letter_topic, &v.group)
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

/// What each group's summary is made from, besides the views.
struct Summary<'a> {
    system: System,
    window: std::time::Duration,
    at: Millis,
    lost: &'a HashMap<(SourceId, Arc<str>), Millis>,
    source: &'a SourceId,
}

impl Summary<'_> {
    /// Each group's dead letters: the sum of the views linked to it. A group
    /// with none linked has none known (None), unless it lost a link: then
    /// at least none for a window after the loss, none after it.
    fn summarise(&self, views: &[DeadLetterView], groups: &mut BTreeMap<GroupKey, GroupView>) {
        let window_s = self.window.as_secs_f64();
        let window_ms = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        for g in groups.values_mut() {
            let mut sum = GroupDeadLetters {
                recent: 0,
                window_seconds: window_s,
                covered_seconds: window_s,
                per_second: Some(0.0),
                quality: Quality::Exact,
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
                sum.stale |= v.read_at < self.at;
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
            let lost = (self.system == System::Kafka)
                .then(|| self.lost.get(&(self.source.clone(), g.key.group.clone())))
                .flatten();
            if let Some(t) = lost {
                if self.at.0.saturating_sub(t.0) < window_ms {
                    sum.quality = Quality::LowerBound;
                    details.push(
                        "a dead-letter queue linked to it until recently is not any more".into(),
                    );
                }
            } else if !linked {
                // No dead-letter queue is known to be this group's.
                continue;
            }
            sum.detail = details.join("; ");
            g.dead_letters = Some(sum);
        }
    }
}

//! Dead letters and redeliveries: which Kafka topics are dead-letter queues and
//! what they name, and counters turned into "added in the window" and rates.
//! Pure: names and readings in, values out; the tables below are the proof.
//!
//! A count that only ever grows (a dead-letter topic's head, advisories
//! received, redeliveries) is kept as points of an accumulated total: a reading
//! that goes down (a topic recreated, a consumer recreated, a stream sequence
//! that skipped) adds nothing and the count goes on from the new reading.

use std::collections::VecDeque;
use std::time::Duration;

use crate::model::Millis;

/// The Kafka conventions recognised by default: Spring Kafka's `.DLT`, the
/// usual `.dlq` spellings, and a `dlq.` prefix.
pub const DEFAULT_SUFFIXES: [&str; 6] = [".dlq", ".DLQ", "-dlq", ".DLT", "-dlt", ".deadletter"];
pub const DEFAULT_PREFIXES: [&str; 1] = ["dlq."];
/// "How many did we give up on in the last hour".
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);
/// Dead-letter topics (Kafka) or consumers with advisories (JetStream) tracked
/// per source at most: a cluster with more is cut, with a warning.
pub const DEFAULT_MAX_TRACKED: usize = 1000;

/// A dead-letter topic named outright, for names no convention covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub dead_letter_topic: String,
    /// The topic whose events it holds.
    pub topic: String,
    /// The group that writes to it, when known.
    pub group: Option<String>,
}

/// `dead_letters:` of the config, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterSettings {
    pub enabled: bool,
    /// "Recent" counts cover this long.
    pub window: Duration,
    pub suffixes: Vec<String>,
    pub prefixes: Vec<String>,
    pub links: Vec<Link>,
    /// Subscribe to JetStream's MAX_DELIVERIES and MSG_TERMINATED advisories.
    pub advisories: bool,
    pub max_tracked: usize,
}

impl Default for DeadLetterSettings {
    fn default() -> Self {
        DeadLetterSettings {
            enabled: true,
            window: DEFAULT_WINDOW,
            suffixes: DEFAULT_SUFFIXES.iter().map(ToString::to_string).collect(),
            prefixes: DEFAULT_PREFIXES.iter().map(ToString::to_string).collect(),
            links: Vec::new(),
            advisories: true,
            max_tracked: DEFAULT_MAX_TRACKED,
        }
    }
}

/// What a dead-letter topic's name says: the topic it holds events of, and
/// the group when an explicit link names one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub topic: String,
    pub group: Option<String>,
}

impl DeadLetterSettings {
    /// Whether `topic` is a dead-letter topic, and of what. An explicit link
    /// wins; then the longest matching suffix, then prefix. A name that is
    /// only the convention (`.dlq`) is not one.
    pub fn classify(&self, topic: &str) -> Option<Named> {
        if !self.enabled {
            return None;
        }
        if let Some(l) = self.links.iter().find(|l| l.dead_letter_topic == topic) {
            return Some(Named {
                topic: l.topic.clone(),
                group: l.group.clone(),
            });
        }
        let by_suffix = self
            .suffixes
            .iter()
            .filter_map(|s| topic.strip_suffix(s.as_str()).map(|rest| (s.len(), rest)))
            .max_by_key(|(len, _)| *len);
        let by_prefix = || {
            self.prefixes
                .iter()
                .filter_map(|p| topic.strip_prefix(p.as_str()).map(|rest| (p.len(), rest)))
                .max_by_key(|(len, _)| *len)
        };
        let (_, rest) = by_suffix.or_else(by_prefix)?;
        (!rest.is_empty()).then(|| Named {
            topic: rest.to_string(),
            group: None,
        })
    }
}

/// How sure a count or rate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Every event of the span was seen.
    Exact,
    /// At least this many: part of the span was not watched (lagwatch started
    /// inside the window, or its advisory subscription was down).
    LowerBound,
    /// At most this many (JetStream redeliveries of a filtered consumer:
    /// every delivery counted).
    UpperBound,
}

impl Quality {
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Exact => "exact",
            Quality::LowerBound => "lower_bound",
            Quality::UpperBound => "upper_bound",
        }
    }
}

/// Points kept per counter at most: points are at least `keep / MAX_POINTS`
/// apart, so a window of any length costs the same, and its edge is that
/// coarse (10 s for an hour).
const MAX_POINTS: usize = 360;

/// One growing count's recent history: (time, accumulated count) points.
#[derive(Clone, Debug, Default)]
pub struct Counter {
    points: VecDeque<(Millis, u64)>,
    /// The latest reading, also when too close to the last point to be one.
    head: Option<(Millis, u64)>,
    last_raw: Option<i64>,
    total: u64,
    /// Times the reading went down (recreated, restarted, skipped).
    pub resets: u64,
    /// When it last went down: what happened around then may be missing.
    pub last_reset: Option<Millis>,
    /// When the count last grew.
    pub last_added: Option<Millis>,
}

impl Counter {
    /// A counter that starts at `raw` at `at` (the first reading is the
    /// baseline: nothing before it is known to lagwatch).
    pub fn starting(at: Millis, raw: i64) -> Self {
        Counter {
            points: VecDeque::from([(at, 0)]),
            head: Some((at, 0)),
            last_raw: Some(raw),
            ..Counter::default()
        }
    }

    /// Adds a reading of a difference that may go down without anything
    /// being undone (a stream sequence that skipped): a fall adds nothing.
    /// `keep` is the longest span asked about later.
    pub fn record(&mut self, at: Millis, raw: i64, keep: Duration) {
        self.add(at, raw, keep, false);
    }

    /// Adds a reading of a count that only grows until it starts again from
    /// 0 (a topic recreated, a subscription made again): after a fall the
    /// new reading is all new.
    pub fn record_count(&mut self, at: Millis, raw: i64, keep: Duration) {
        self.add(at, raw, keep, true);
    }

    fn add(&mut self, at: Millis, raw: i64, keep: Duration, restarts: bool) {
        let Some(prev) = self.last_raw else {
            *self = Counter::starting(at, raw);
            return;
        };
        self.last_raw = Some(raw);
        let mut delta = raw.saturating_sub(prev);
        if delta < 0 {
            self.resets += 1;
            self.last_reset = Some(at);
            delta = if restarts { raw.max(0) } else { 0 };
        }
        if delta > 0 {
            self.total = self.total.saturating_add(u64::try_from(delta).unwrap_or(0));
            self.last_added = Some(at);
        }
        self.head = Some((at, self.total));
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let spacing = keep_ms / MAX_POINTS as i64;
        if self
            .points
            .back()
            .is_none_or(|(t, _)| at.0.saturating_sub(t.0) >= spacing.max(1))
        {
            self.points.push_back((at, self.total));
        }
        // Keep one point at or before the cutoff: the window's start.
        let cutoff = at.0.saturating_sub(keep_ms);
        while self.points.len() >= 2 && self.points[1].0 .0 <= cutoff {
            self.points.pop_front();
        }
    }

    /// Accumulated count since the first reading.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The last point at or before `start`, else the first.
    fn base(&self, start: i64) -> Option<(Millis, u64)> {
        self.points
            .iter()
            .rev()
            .find(|(t, _)| t.0 <= start)
            .or_else(|| self.points.front())
            .copied()
    }

    /// Added in the `span` before `now`, and how much of the span the points
    /// cover (seconds): less than the span when lagwatch has not watched that
    /// long (then the count is a lower bound).
    pub fn added_within(&self, now: Millis, span: Duration) -> (u64, f64) {
        let span_ms = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
        let Some(base) = self.base(now.0.saturating_sub(span_ms)) else {
            return (0, 0.0);
        };
        let covered = ((now.0 - base.0 .0).max(0) as f64 / 1000.0).min(span.as_secs_f64());
        (self.total.saturating_sub(base.1), covered)
    }

    /// Events per second over the `span` before `now` (from the point at or
    /// before its start to the latest reading); None with one reading or no
    /// time between them.
    pub fn rate(&self, now: Millis, span: Duration) -> Option<f64> {
        let span_ms = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
        let last = self.head?;
        let first = self.base(now.0.saturating_sub(span_ms))?;
        let dt = (last.0 .0 - first.0 .0) as f64 / 1000.0;
        (dt > 0.0).then(|| last.1.saturating_sub(first.1) as f64 / dt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeadLetterSettings {
        DeadLetterSettings {
            links: vec![Link {
                dead_letter_topic: "billing-failures".into(),
                topic: "orders.created".into(),
                group: Some("billing".into()),
            }],
            ..DeadLetterSettings::default()
        }
    }

    #[test]
    fn dead_letter_topics_are_recognised_by_convention_or_by_link() {
        let s = settings();
        let named = |topic: &str, group: Option<&str>| {
            Some(Named {
                topic: topic.into(),
                group: group.map(Into::into),
            })
        };
        // (case, topic, what it names)
        let cases = [
            // case 1-6: the default suffixes.
            (1, "orders.created.dlq", named("orders.created", None)),
            (2, "orders.created.DLQ", named("orders.created", None)),
            (3, "orders-dlq", named("orders", None)),
            (4, "orders.created.DLT", named("orders.created", None)),
            (5, "orders-dlt", named("orders", None)),
            (6, "payments.deadletter", named("payments", None)),
            // case 7: the prefix.
            (7, "dlq.orders.created", named("orders.created", None)),
            // case 8: an explicit link wins, with its group.
            (
                8,
                "billing-failures",
                named("orders.created", Some("billing")),
            ),
            // case 9: not one.
            (9, "orders.created", None),
            // case 10: only the convention: not a dead-letter topic of anything.
            (10, ".dlq", None),
            // case 11: a suffix wins over the prefix (dlq.x.dlq holds dlq.x).
            (11, "dlq.x.dlq", named("dlq.x", None)),
            // case 12: case matters, as Kafka topic names do.
            (12, "orders.Dlq", None),
        ];
        for (case, topic, want) in cases {
            assert_eq!(s.classify(topic), want, "case {case}: {topic}");
        }
        let off = DeadLetterSettings {
            enabled: false,
            ..settings()
        };
        assert_eq!(off.classify("orders.created.dlq"), None);
    }

    const T0: i64 = 1_800_000_000_000;
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_counter_gives_the_count_added_in_a_window_and_the_rate() {
        let mut c = Counter::default();
        // A dead-letter topic at offset 1000 when first seen, then 2 messages
        // every 10 s for 10 minutes.
        for i in 0..=60 {
            c.record(Millis(T0 + i * 10_000), 1000 + 2 * i, HOUR);
        }
        let now = Millis(T0 + 600_000);
        // The first reading is the baseline: what was there before is not "added".
        assert_eq!(c.total(), 120);
        // The window (1 h) is longer than watched (10 min): a lower bound.
        assert_eq!(c.added_within(now, HOUR), (120, 600.0));
        // The last 5 minutes: 60, fully covered.
        assert_eq!(c.added_within(now, Duration::from_secs(300)), (60, 300.0));
        let r = c.rate(now, Duration::from_secs(300)).unwrap();
        assert!((r - 0.2).abs() < 1e-9, "{r}");
        assert_eq!(c.last_added, Some(now));
    }

    #[test]
    fn a_difference_that_goes_down_adds_nothing_and_a_count_that_restarts_adds_all() {
        let mut c = Counter::default();
        c.record(Millis(T0), 500, HOUR);
        c.record(Millis(T0 + 10_000), 510, HOUR);
        // A stream sequence skipped: the difference falls; nothing undone.
        c.record(Millis(T0 + 20_000), 0, HOUR);
        c.record(Millis(T0 + 30_000), 4, HOUR);
        assert_eq!(c.total(), 14);
        assert_eq!((c.resets, c.last_reset), (1, Some(Millis(T0 + 20_000))));
        let mut c = Counter::default();
        c.record_count(Millis(T0), 500, HOUR);
        c.record_count(Millis(T0 + 10_000), 510, HOUR);
        // The topic was recreated and 3 written before the next poll.
        c.record_count(Millis(T0 + 20_000), 3, HOUR);
        c.record_count(Millis(T0 + 30_000), 4, HOUR);
        assert_eq!(c.total(), 14);
        assert_eq!(c.resets, 1);
    }

    #[test]
    fn points_older_than_kept_are_dropped_and_long_windows_are_spaced() {
        let mut c = Counter::default();
        // One reading a second for 3 hours, one event each.
        for i in 0..(3 * 3600) {
            c.record(Millis(T0 + i * 1000), i, HOUR);
        }
        let now = Millis(T0 + (3 * 3600 - 1) * 1000);
        assert!(c.points.len() <= MAX_POINTS + 1, "{}", c.points.len());
        let (added, covered) = c.added_within(now, HOUR);
        assert_eq!(covered, 3600.0);
        // The window's edge is as coarse as the points' spacing (10 s).
        assert!((3600..=3610).contains(&added), "{added}");
        let r = c.rate(now, Duration::from_secs(600)).unwrap();
        assert!((r - 1.0).abs() < 0.01, "{r}");
    }

    #[test]
    fn a_counter_with_one_point_has_no_rate() {
        let c = Counter::starting(Millis(T0), 7);
        assert_eq!(c.rate(Millis(T0), HOUR), None);
        assert_eq!(c.added_within(Millis(T0), HOUR), (0, 0.0));
    }
}

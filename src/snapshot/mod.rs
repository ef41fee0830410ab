//! What readers see: the immutable [`Snapshot`] the engine publishes after each
//! poll, with one [`SourceView`] per source, its [`GroupView`]s and
//! [`PartitionView`]s. The engine builds them; /metrics, the JSON API, the status
//! page, the recommender's inputs and the demo only read them.

pub mod gzip;

use std::sync::Arc;

use crate::alert::Incident;

use crate::analysis::{Analysis, GroupAnalysis};
use crate::model::{
    GroupInfo, GroupKey, Millis, PollFailure, Sample, SourceId, StreamState, System,
};
use crate::recommend::Recommendation;

/// One partition (Kafka) or consumer (JetStream) as of its source's last poll.
#[derive(Clone, Debug)]
pub struct PartitionView {
    pub sample: Sample,
    pub analysis: Analysis,
    /// When these figures were read. Older than its source's last poll: the
    /// partition could not be read since (stale), its last values kept.
    pub read_at: Millis,
    /// The first clean poll of its source (no partial error) that did not
    /// report it; it is gone once that is `gone_after` ago.
    pub absent_since: Option<Millis>,
}

impl PartitionView {
    /// Read at `at`, this poll.
    pub fn fresh(sample: Sample, analysis: Analysis, at: Millis) -> PartitionView {
        PartitionView {
            sample,
            analysis,
            read_at: at,
            absent_since: None,
        }
    }
}

/// One group (Kafka group, JetStream consumer) as of its source's last poll.
#[derive(Clone, Debug)]
pub struct GroupView {
    pub key: GroupKey,
    pub system: System,
    /// Broker-reported state and members, where the broker said.
    pub info: Option<GroupInfo>,
    /// Topics (Kafka) or the stream (JetStream) the group has offsets in.
    pub topics: Vec<Arc<str>>,
    /// Indexes into the source's `partitions` of this group's partitions.
    pub partitions: Vec<usize>,
    /// None when the group has no partitions with data (e.g. a JetStream
    /// consumer listed as missing).
    pub analysis: Option<GroupAnalysis>,
    /// Recent (poll time, lag in messages) of the group, oldest first, for
    /// sparklines; at most [`TREND_POINTS`].
    pub trend: Vec<(Millis, u64)>,
    /// Scale-out advice; None when the group has no analysis.
    pub recommendation: Option<Recommendation>,
    /// Why the group is behind, most explaining first; empty when it is not.
    pub causes: Vec<crate::analysis::diagnosis::Finding>,
    /// Messages the group's committed offsets skipped since lagwatch started
    /// (offset resets, purges; suspected, see `analysis::rates::SKIP_FACTOR`).
    pub skipped_total: u64,
    /// When the oldest of its figures was read (see [`SourceView::staleness`]).
    pub read_at: Millis,
    /// Partitions whose figures are the last known ones, not this poll's.
    pub stale_partitions: usize,
    /// For a group with no partitions: the first clean poll that missed it.
    pub absent_since: Option<Millis>,
    /// The dead letters linked to this group (None: none linked, or not
    /// watched).
    pub dead_letters: Option<GroupDeadLetters>,
    /// JetStream: redeliveries per second and how sure that is (None: not
    /// known yet, or Kafka).
    pub redelivered: Option<(f64, crate::analysis::dead_letters::Quality)>,
}

/// The dead letters of one group, summed over what is linked to it.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupDeadLetters {
    /// Added within the window.
    pub recent: u64,
    /// The window's length and how much of it was watched (seconds).
    pub window_seconds: f64,
    pub covered_seconds: f64,
    pub per_second: Option<f64>,
    /// `Exact` or `LowerBound` (lagwatch watched less than the window, or
    /// missed advisories in it).
    pub quality: crate::analysis::dead_letters::Quality,
    /// Some of it is the last known value: not read at this poll.
    pub stale: bool,
    /// Where they went or why, in words: `orders.created.dlq`,
    /// `max_deliveries`, with the last event when known.
    pub detail: String,
}

/// One dead-letter queue (Kafka) or one consumer's advisories of one reason
/// (JetStream), as of its source's last poll.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetterView {
    pub reason: crate::model::DeadLetterReason,
    /// The topic (Kafka, as named by the dead-letter topic) or stream.
    pub topic: Arc<str>,
    pub dead_letter_topic: Option<Arc<str>>,
    /// The group it is linked to (an explicit link, the JetStream consumer,
    /// the only group that consumes `topic`); None: no group, or several.
    pub group: Option<Arc<str>>,
    /// Every group of this source that consumes `topic` (Kafka).
    pub consumers: Vec<Arc<str>>,
    /// Kafka: messages ever written to the topic; JetStream: advisories since
    /// lagwatch subscribed.
    pub total: u64,
    pub recent: u64,
    pub covered_seconds: f64,
    pub per_second: Option<f64>,
    pub quality: crate::analysis::dead_letters::Quality,
    /// Kafka: messages stored now.
    pub stored: Option<u64>,
    /// Kafka: groups consuming the dead-letter topic and their lag.
    pub drained_by: Vec<(Arc<str>, u64)>,
    /// Kafka: messages no group has consumed yet (the least lag of those
    /// draining it; all stored when nobody does).
    pub undrained: Option<u64>,
    pub last: Option<String>,
    pub last_added: Option<Millis>,
    /// When it was read; older than the source's last poll: stale.
    pub read_at: Millis,
    pub absent_since: Option<Millis>,
}

impl GroupView {
    /// A group seen at `at`, before its partitions and analysis are added.
    pub fn empty(key: GroupKey, system: System, at: Millis) -> Self {
        GroupView {
            key,
            system,
            info: None,
            topics: Vec::new(),
            partitions: Vec::new(),
            analysis: None,
            trend: Vec::new(),
            recommendation: None,
            causes: Vec::new(),
            skipped_total: 0,
            read_at: at,
            stale_partitions: 0,
            absent_since: None,
            dead_letters: None,
            redelivered: None,
        }
    }
}

/// How old a group's figures are, as of a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Staleness {
    /// Some figures could not be read at the source's last poll: they are the
    /// last known ones.
    pub stale: bool,
    /// Age of the oldest figure, seconds; 0 when everything is this poll's.
    pub seconds: f64,
    /// Partitions whose figures are stale.
    pub partitions: usize,
}

impl Staleness {
    /// Some partitions are stale and some fresh: sums mix the two.
    pub fn partial(&self, of: usize) -> bool {
        self.partitions > 0 && self.partitions < of
    }
}

/// Points kept per group for the trend sparkline (an hour at a 1 m poll).
pub const TREND_POINTS: usize = 60;

/// What the rest of the process knows about one source.
#[derive(Clone, Debug)]
pub struct SourceView {
    pub id: SourceId,
    pub system: System,
    /// The last poll succeeded.
    pub up: bool,
    /// At least one poll has finished (success or failure).
    pub polled: bool,
    pub last_poll: Option<Millis>,
    pub last_success: Option<Millis>,
    pub last_error: Option<PollFailure>,
    /// Partitions as of the last successful poll, sorted by key, with those it
    /// could not read kept (stale) until they are gone; kept, stale, while the
    /// source is down (see [`SourceView::staleness`]).
    pub partitions: Arc<Vec<PartitionView>>,
    /// Groups likewise, sorted by key.
    pub groups: Arc<Vec<GroupView>>,
    pub streams: Arc<Vec<StreamState>>,
    /// Dead-letter queues and advisory counts, sorted; kept stale like groups.
    pub dead_letters: Arc<Vec<DeadLetterView>>,
    /// JetStream: the advisory subscription (None: not subscribed; Kafka).
    pub advisories: Option<crate::model::AdvisoryState>,
}

impl SourceView {
    /// A source not polled yet.
    pub fn new(id: SourceId, system: System) -> SourceView {
        SourceView {
            id,
            system,
            up: false,
            polled: false,
            last_poll: None,
            last_success: None,
            last_error: None,
            partitions: Arc::default(),
            groups: Arc::default(),
            streams: Arc::default(),
            dead_letters: Arc::default(),
            advisories: None,
        }
    }
}

impl SourceView {
    /// How stale `g`'s figures are at `now`: stale when read before this
    /// source's last poll (the source is down, or could not read them).
    pub fn staleness(&self, g: &GroupView, now: Millis) -> Staleness {
        let stale = self.last_poll.is_some_and(|p| g.read_at < p);
        if !stale {
            return Staleness::default();
        }
        Staleness {
            stale,
            seconds: (now.0.saturating_sub(g.read_at.0)).max(0) as f64 / 1000.0,
            partitions: if self.up {
                g.stale_partitions
            } else {
                g.partitions.len()
            },
        }
    }
}

/// The latest state of everything, immutable once published.
#[derive(Debug)]
pub struct Snapshot {
    pub at: Millis,
    pub sources: Vec<SourceView>,
    /// Keys whose history the engine holds (all sources).
    pub history_keys: usize,
    /// Open incidents of the notification rules.
    pub incidents: Arc<Vec<Incident>>,
    /// The Prometheus text exposition of this snapshot, rendered once and kept
    /// only compressed (see [`gzip`]).
    metrics: gzip::Prefix,
}

impl Snapshot {
    /// A snapshot with its /metrics body rendered.
    pub fn new(
        at: Millis,
        sources: Vec<SourceView>,
        history_keys: usize,
        incidents: Arc<Vec<Incident>>,
        metrics: gzip::Prefix,
    ) -> Snapshot {
        Snapshot {
            at,
            sources,
            history_keys,
            incidents,
            metrics,
        }
    }

    /// Ready once every source has finished its first poll, success or failure: a
    /// source that is down at start must still be visible (as down) to Prometheus.
    pub fn ready(&self) -> bool {
        self.sources.iter().all(|s| s.polled)
    }

    /// The /metrics body, deflated as it was rendered; each scrape appends its
    /// live tail.
    pub fn metrics(&self) -> &gzip::Prefix {
        &self.metrics
    }

    /// The /metrics body as text (tests and in-process readers; a scrape
    /// streams it instead).
    pub fn metrics_text(&self) -> String {
        String::from_utf8_lossy(&self.metrics.plain()).into_owned()
    }
}

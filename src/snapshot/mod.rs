//! What readers see: the immutable [`Snapshot`] the engine publishes after each
//! poll, with one [`SourceView`] per source, its [`GroupView`]s and
//! [`PartitionView`]s. The engine builds them; /metrics, the JSON API, the status
//! page, the recommender's inputs and the demo only read them.

pub mod gzip;

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;

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
    /// Messages the group's committed offsets skipped since lagwatch started
    /// (offset resets, purges; suspected, see `analysis::rates::SKIP_FACTOR`).
    pub skipped_total: u64,
}

impl GroupView {
    /// A group seen this poll, before its partitions and analysis are added.
    pub fn empty(key: GroupKey, system: System) -> Self {
        GroupView {
            key,
            system,
            info: None,
            topics: Vec::new(),
            partitions: Vec::new(),
            analysis: None,
            trend: Vec::new(),
            recommendation: None,
            skipped_total: 0,
        }
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
    /// Partitions of the last successful poll, sorted by key; empty while the
    /// source is down, so nothing stale is presented as fresh.
    pub partitions: Arc<Vec<PartitionView>>,
    /// Groups of the last successful poll, sorted by key.
    pub groups: Arc<Vec<GroupView>>,
    pub streams: Arc<Vec<StreamState>>,
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
    /// The Prometheus text exposition of this snapshot, rendered once.
    pub metrics_text: Bytes,
    /// The same, deflated on the first scrape that asks for gzip.
    metrics_gzip: OnceLock<gzip::Prefix>,
}

impl Snapshot {
    /// A snapshot with its /metrics body rendered.
    pub fn new(
        at: Millis,
        sources: Vec<SourceView>,
        history_keys: usize,
        incidents: Arc<Vec<Incident>>,
        metrics_text: Bytes,
    ) -> Snapshot {
        Snapshot {
            at,
            sources,
            history_keys,
            incidents,
            metrics_text,
            metrics_gzip: OnceLock::new(),
        }
    }

    /// Ready once every source has finished its first poll, success or failure: a
    /// source that is down at start must still be visible (as down) to Prometheus.
    pub fn ready(&self) -> bool {
        self.sources.iter().all(|s| s.polled)
    }

    /// The /metrics body deflated, computed at most once per snapshot (on the
    /// first scrape that asks for gzip); each scrape appends its live tail.
    pub fn metrics_gzip(&self) -> &gzip::Prefix {
        self.metrics_gzip
            .get_or_init(|| gzip::prefix(&self.metrics_text))
    }
}

//! The engine task: sole owner of per-source state and of the sample history.
//! Each poll batch is folded into the history, analysed once (rates, time lag,
//! ETA, status, retention risk, per-group rollups), and published as a new
//! immutable [`Snapshot`] with the /metrics body rendered once.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use tokio::sync::{mpsc, watch};

use crate::alert::{AlertEvaluator, Incident, Notification, Observation};
use crate::analysis::{self, Analysis, GroupAnalysis, Settings, ThresholdResolver};
use crate::history::History;
use crate::metrics::{self, SelfMetrics};
use crate::model::{
    GroupInfo, GroupKey, Millis, PollBatch, PollData, PollFailure, Sample, SourceId, StreamState,
    System,
};
use crate::recommend::{self, RecommendState, Recommendation};

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
}

impl GroupView {
    /// A group seen this poll, before its partitions and analysis are added.
    fn empty(key: GroupKey, system: System) -> Self {
        GroupView {
            key,
            system,
            info: None,
            topics: Vec::new(),
            partitions: Vec::new(),
            analysis: None,
            trend: Vec::new(),
            recommendation: None,
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
    /// The same, gzip-compressed on the first scrape that asks for it.
    metrics_gzip: std::sync::OnceLock<Bytes>,
}

impl Snapshot {
    /// Ready once every source has finished its first poll, success or failure: a
    /// source that is down at start must still be visible (as down) to Prometheus.
    pub fn ready(&self) -> bool {
        self.sources.iter().all(|s| s.polled)
    }

    /// The exposition gzip-compressed, computed at most once per snapshot
    /// (fast compression level: scrapes are frequent, bodies compress ~10x anyway).
    pub fn metrics_gzip(&self) -> Bytes {
        self.metrics_gzip
            .get_or_init(|| {
                use std::io::Write as _;
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.metrics_text.len() / 8),
                    flate2::Compression::fast(),
                );
                // Writing to a Vec cannot fail.
                let _ = enc.write_all(&self.metrics_text);
                Bytes::from(enc.finish().unwrap_or_default())
            })
            .clone()
    }
}

/// Owns the state; see the module docs.
pub struct Engine {
    sources: BTreeMap<SourceId, SourceView>,
    order: Vec<SourceId>,
    history: History,
    settings: Settings,
    thresholds: ThresholdResolver,
    trends: std::collections::HashMap<GroupKey, std::collections::VecDeque<(Millis, u64)>>,
    recommend: recommend::Resolver,
    recommend_states: std::collections::HashMap<GroupKey, RecommendState>,
    alerts: Option<Alerts>,
    incidents: Arc<Vec<Incident>>,
    metrics: SelfMetrics,
    plan: metrics::Plan,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
}

/// The engine's half of notifications: the pure evaluator and the queue to
/// the notifier task.
pub struct Alerts {
    pub evaluator: AlertEvaluator,
    pub tx: mpsc::Sender<Notification>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").finish_non_exhaustive()
    }
}

/// What the engine is built from.
#[derive(Debug)]
pub struct EngineConfig {
    pub sources: Vec<(SourceId, System)>,
    pub analysis: Settings,
    /// Samples kept per key.
    pub ring: usize,
    pub plan: metrics::Plan,
    pub recommend: recommend::Settings,
    pub alerts: Option<Alerts>,
    pub metrics: SelfMetrics,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("sources", &self.order)
            .field("history_keys", &self.history.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the engine and the watch channel its snapshots go out on.
    /// `ring` is the number of samples kept per key.
    pub fn new(cfg: EngineConfig) -> (Engine, watch::Receiver<Arc<Snapshot>>) {
        let EngineConfig {
            sources,
            analysis: settings,
            ring,
            plan,
            recommend,
            alerts,
            metrics,
        } = cfg;
        let mut map = BTreeMap::new();
        for (id, system) in &sources {
            map.insert(
                id.clone(),
                SourceView {
                    id: id.clone(),
                    system: *system,
                    up: false,
                    polled: false,
                    last_poll: None,
                    last_success: None,
                    last_error: None,
                    partitions: Arc::new(Vec::new()),
                    groups: Arc::new(Vec::new()),
                    streams: Arc::new(Vec::new()),
                },
            );
        }
        let order = sources.iter().map(|(id, _)| id.clone()).collect();
        let initial = Arc::new(Snapshot {
            at: Millis::now(),
            sources: Vec::new(),
            history_keys: 0,
            incidents: Arc::new(Vec::new()),
            metrics_text: Bytes::new(),
            metrics_gzip: std::sync::OnceLock::new(),
        });
        let (snapshot_tx, rx) = watch::channel(initial);
        let mut engine = Engine {
            sources: map,
            order,
            history: History::new(ring),
            thresholds: settings.resolver(),
            trends: std::collections::HashMap::new(),
            recommend: recommend.resolver(),
            recommend_states: std::collections::HashMap::new(),
            alerts,
            incidents: Arc::new(Vec::new()),
            settings,
            metrics,
            plan,
            snapshot_tx,
        };
        engine.publish(Millis::now());
        (engine, rx)
    }

    /// Applies batches until every sender is gone, publishing after each.
    pub async fn run(mut self, mut rx: mpsc::Receiver<PollBatch>) {
        while let Some(batch) = rx.recv().await {
            let at = batch.at;
            self.apply(batch);
            self.evaluate_alerts(at);
            self.publish(at);
            // The previous generation of views is gone now that nobody but
            // in-flight readers holds the old snapshot: give its memory back.
            crate::memory::trim();
        }
        tracing::debug!("engine drained; all sources stopped");
    }

    /// Folds one batch into the state. Unknown sources are ignored (cannot happen:
    /// sources are built from the same config).
    pub fn apply(&mut self, batch: PollBatch) {
        if !self.sources.contains_key(&batch.source) {
            tracing::warn!(source = %batch.source, "batch from an unconfigured source ignored");
            return;
        }
        self.metrics.record_poll(&batch);
        let PollBatch {
            source, at, result, ..
        } = batch;
        let analysed = match result {
            Ok(data) => Ok(self.analyse(&source, at, data)),
            Err(f) => Err(f),
        };
        let Some(view) = self.sources.get_mut(&source) else {
            return;
        };
        view.polled = true;
        view.last_poll = Some(at);
        match analysed {
            Ok((partitions, groups, streams)) => {
                if !view.up {
                    tracing::info!(source = %view.id, system = %view.system, "source is up");
                }
                view.up = true;
                view.last_success = Some(at);
                view.last_error = None;
                view.partitions = Arc::new(partitions);
                view.groups = Arc::new(groups);
                view.streams = Arc::new(streams);
            }
            Err(failure) => {
                if view.up || view.last_error.is_none() {
                    tracing::warn!(
                        source = %view.id,
                        system = %view.system,
                        kind = failure.kind.as_str(),
                        error = %failure.message,
                        "source is down"
                    );
                } else {
                    tracing::debug!(source = %view.id, error = %failure.message, "source still down");
                }
                view.up = false;
                view.last_error = Some(failure);
                view.partitions = Arc::new(Vec::new());
                view.groups = Arc::new(Vec::new());
                view.streams = Arc::new(Vec::new());
            }
        }
    }

    /// Records a successful poll in the history and analyses every key of it at
    /// the poll's time.
    fn analyse(
        &mut self,
        source: &SourceId,
        at: Millis,
        data: PollData,
    ) -> (Vec<PartitionView>, Vec<GroupView>, Vec<StreamState>) {
        let PollData {
            mut samples,
            groups: infos,
            streams,
            ..
        } = data;
        samples.sort_by(|a, b| a.key.cmp(&b.key));
        let mut partitions = Vec::with_capacity(samples.len());
        for sample in samples {
            let thresholds = self.thresholds.for_group(&sample.key.group);
            let h = self.history.record(&sample, at);
            let analysis = analysis::analyze(h, at, &self.settings, thresholds);
            partitions.push(PartitionView { sample, analysis });
        }
        let gone = self
            .history
            .expire_source(source, at, self.settings.expire_after_ms());
        if gone > 0 {
            tracing::debug!(%source, keys = gone, "expired the history of vanished partitions");
        }

        let system = self.sources.get(source).map_or(System::Kafka, |s| s.system);
        let mut groups: BTreeMap<GroupKey, GroupView> = BTreeMap::new();
        for (i, p) in partitions.iter().enumerate() {
            let g = groups
                .entry(p.sample.key.group.clone())
                .or_insert_with(|| GroupView::empty(p.sample.key.group.clone(), system));
            g.partitions.push(i);
            if g.topics.last() != Some(&p.sample.key.topic) {
                g.topics.push(p.sample.key.topic.clone());
            }
        }
        for info in infos {
            let key = info.key.clone();
            groups
                .entry(key.clone())
                .or_insert_with(|| GroupView::empty(key, system))
                .info = Some(info);
        }
        for g in groups.values_mut() {
            if !g.partitions.is_empty() {
                let a = analysis::rollup(g.partitions.iter().map(|i| &partitions[*i].analysis));
                let trend = self.trends.entry(g.key.clone()).or_default();
                if trend.len() == TREND_POINTS {
                    trend.pop_front();
                }
                trend.push_back((at, a.lag_sum));
                g.trend = trend.iter().copied().collect();
                g.analysis = Some(a);
            }
        }
        // Trends of this source's groups that vanished go with them.
        self.trends
            .retain(|k, _| &k.source != source || groups.contains_key(k));
        for g in groups.values_mut() {
            let Some(a) = &g.analysis else { continue };
            let inputs = recommend::partition_inputs(g, &partitions);
            let input = recommend::Input {
                key: &g.key,
                system: g.system,
                partitions: &inputs,
                members: g.info.as_ref().and_then(|i| i.members),
                group: a,
            };
            let state = self.recommend_states.entry(g.key.clone()).or_default();
            g.recommendation = Some(recommend::recommend(
                &input,
                state,
                at,
                self.recommend.for_group(&g.key),
            ));
        }
        self.recommend_states
            .retain(|k, _| &k.source != source || groups.contains_key(k));
        (partitions, groups.into_values().collect(), streams)
    }

    /// Runs the notification rules over every source's latest groups and queues
    /// the notifications; never waits for the notifier.
    fn evaluate_alerts(&mut self, at: Millis) {
        let Some(alerts) = &mut self.alerts else {
            return;
        };
        let mut observations = Vec::new();
        let mut polled = Vec::new();
        for src in self.sources.values().filter(|s| s.up) {
            polled.push(src.id.clone());
            for g in src.groups.iter() {
                let Some(a) = &g.analysis else { continue };
                let rec = g.recommendation.as_ref();
                observations.push(Observation {
                    group: g.key.clone(),
                    system: g.system,
                    topics: g.topics.clone(),
                    lag_messages: a.lag_sum,
                    lag_seconds: a.time_lag_max.seconds(),
                    growth_per_second: a.lag_growth,
                    eta_seconds: a.eta_seconds,
                    status: a.status,
                    lost_messages: a.lost_messages,
                    seconds_until_loss: a.seconds_to_loss,
                    current_replicas: rec.and_then(|r| r.current),
                    recommended_replicas: rec.and_then(|r| r.recommended),
                    recommendation_reason: rec.map(|r| r.message.clone()),
                });
            }
        }
        for n in alerts.evaluator.evaluate_polled(&observations, &polled, at) {
            if let Err(e) = alerts.tx.try_send(n) {
                // The notifier has its own bounded queues; this only fills if it
                // has stopped. Count it where deliveries are counted: in the log.
                tracing::error!(error = %e, "notification dropped: the notifier is not accepting");
            }
        }
        self.incidents = Arc::new(alerts.evaluator.open_incidents());
    }

    fn publish(&mut self, at: Millis) {
        let sources: Vec<SourceView> = self
            .order
            .iter()
            .filter_map(|id| self.sources.get(id).cloned())
            .collect();
        let metrics_text = metrics::render(&self.metrics, &sources, &self.plan, self.history.len());
        let snapshot = Snapshot {
            at,
            sources,
            history_keys: self.history.len(),
            incidents: self.incidents.clone(),
            metrics_text: Bytes::from(metrics_text),
            metrics_gzip: std::sync::OnceLock::new(),
        };
        // send_replace: publishing must not fail just because no reader is left.
        self.snapshot_tx.send_replace(Arc::new(snapshot));
    }
}

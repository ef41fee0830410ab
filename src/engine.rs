//! The engine task: sole owner of per-source state and history. It turns each
//! poll batch into a new immutable [`Snapshot`] (with the /metrics body rendered
//! once) and publishes it on a watch channel.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use tokio::sync::{mpsc, watch};

use crate::metrics::{self, SelfMetrics};
use crate::model::{
    GroupInfo, Millis, PollBatch, PollFailure, Sample, SourceId, StreamState, System,
};

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
    /// Samples of the last successful poll; empty while the source is down, so
    /// nothing stale is presented as fresh.
    pub samples: Arc<Vec<Sample>>,
    pub groups: Arc<Vec<GroupInfo>>,
    pub streams: Arc<Vec<StreamState>>,
}

/// The latest state of everything, immutable once published.
#[derive(Debug)]
pub struct Snapshot {
    pub at: Millis,
    pub sources: Vec<SourceView>,
    /// The Prometheus text exposition of this snapshot, rendered once.
    pub metrics_text: Bytes,
}

impl Snapshot {
    /// Ready once every source has finished its first poll, success or failure: a
    /// source that is down at start must still be visible (as down) to Prometheus.
    pub fn ready(&self) -> bool {
        self.sources.iter().all(|s| s.polled)
    }
}

/// The engine's inputs: the configured sources, in config order.
pub struct Engine {
    sources: BTreeMap<SourceId, SourceView>,
    order: Vec<SourceId>,
    metrics: SelfMetrics,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("sources", &self.order)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the engine and the watch channel its snapshots go out on.
    pub fn new(sources: &[(SourceId, System)]) -> (Engine, watch::Receiver<Arc<Snapshot>>) {
        let metrics = SelfMetrics::new(sources);
        let mut map = BTreeMap::new();
        for (id, system) in sources {
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
                    samples: Arc::new(Vec::new()),
                    groups: Arc::new(Vec::new()),
                    streams: Arc::new(Vec::new()),
                },
            );
        }
        let order = sources.iter().map(|(id, _)| id.clone()).collect();
        let initial = Arc::new(Snapshot {
            at: Millis::now(),
            sources: Vec::new(),
            metrics_text: Bytes::new(),
        });
        let (snapshot_tx, rx) = watch::channel(initial);
        let mut engine = Engine {
            sources: map,
            order,
            metrics,
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
            self.publish(at);
        }
        tracing::debug!("engine drained; all sources stopped");
    }

    /// Folds one batch into the state. Unknown sources are ignored (cannot happen:
    /// sources are built from the same config).
    pub fn apply(&mut self, batch: PollBatch) {
        let Some(view) = self.sources.get_mut(&batch.source) else {
            tracing::warn!(source = %batch.source, "batch from an unconfigured source ignored");
            return;
        };
        self.metrics.record_poll(&batch);
        view.polled = true;
        view.last_poll = Some(batch.at);
        match batch.result {
            Ok(data) => {
                if !view.up {
                    tracing::info!(source = %view.id, system = %view.system, "source is up");
                }
                view.up = true;
                view.last_success = Some(batch.at);
                view.last_error = None;
                view.samples = Arc::new(data.samples);
                view.groups = Arc::new(data.groups);
                view.streams = Arc::new(data.streams);
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
                }
                view.up = false;
                view.last_error = Some(failure);
                view.samples = Arc::new(Vec::new());
                view.groups = Arc::new(Vec::new());
                view.streams = Arc::new(Vec::new());
            }
        }
    }

    fn publish(&mut self, at: Millis) {
        let sources: Vec<SourceView> = self
            .order
            .iter()
            .filter_map(|id| self.sources.get(id).cloned())
            .collect();
        let metrics_text = metrics::render(&self.metrics, &sources);
        let snapshot = Snapshot {
            at,
            sources,
            metrics_text: Bytes::from(metrics_text),
        };
        // send_replace: publishing must not fail just because no reader is left.
        self.snapshot_tx.send_replace(Arc::new(snapshot));
    }
}

//! The engine task: sole owner of per-source state, of the sample history and of
//! the per-group state (trend, recommendation memory). Each poll batch is folded
//! into the history, analysed once (rates, time lag, ETA, status, retention risk,
//! per-group rollups), recommended on, evaluated by the alert rules, and
//! published as a new immutable [`Snapshot`] with the /metrics body rendered once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::alert::{AlertEvaluator, Incident, Notification, Observation};
use crate::analysis::{self, Settings, TimeLagQuality};
use crate::export::{self, SelfMetrics};
use crate::history::{History, Point, RestartReason};
use crate::model::{
    ConsumerKey, ExactRequest, ExactRequests, GroupInfo, GroupKey, Millis, PollBatch, PollData,
    PollFailure, RetentionLimits, Sample, SourceId, StreamState, System,
};
use crate::recommend::{self, PartitionInput, RecommendState};
use crate::snapshot::{
    DeadLetterView, GroupView, PartitionView, Snapshot, SourceView, TREND_POINTS,
};

mod dead_letters;

/// What the engine remembers about one group between polls. One map, expired in
/// one place when the group vanishes from its source's successful poll.
#[derive(Debug, Default)]
struct GroupState {
    /// Recent (poll time, lag) for the sparkline, oldest first.
    trend: VecDeque<(Millis, u64)>,
    /// Hysteresis, learned capacity, KEDA's persistent-lag memory.
    recommend: RecommendState,
    /// Messages the group's committed offsets skipped, since lagwatch started.
    skipped: u64,
    /// Baselines and membership changes for the diagnosis.
    diagnosis: analysis::diagnosis::DiagnosisState,
}

/// Owns the state; see the module docs.
pub struct Engine {
    sources: BTreeMap<SourceId, SourceView>,
    order: Vec<SourceId>,
    history: History,
    settings: Settings,
    groups: crate::model::FastMap<GroupKey, GroupState>,
    recommend: recommend::Resolver,
    alerts: Option<Alerts>,
    incidents: Arc<Vec<Incident>>,
    metrics: SelfMetrics,
    plan: export::Plan,
    /// The decoded ring of the key being analysed, reused for every key so
    /// decoding allocates nothing in steady state.
    scratch: VecDeque<Point>,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    /// Per source: the keys whose oldest unconsumed message the source should
    /// read the broker's timestamp of at its next poll, and for how many more
    /// polls each stays asked for (see `request_exact`).
    exact_requests: HashMap<SourceId, (watch::Sender<ExactRequests>, HashMap<ConsumerKey, u8>)>,
    /// Per source: how long a clean poll must miss a group before it is gone.
    gone_after: HashMap<SourceId, std::time::Duration>,
    health: Option<Arc<crate::health::Health>>,
    state: Option<Arc<crate::state::StateStore>>,
    /// Dead-letter counts (see `dead_letters`), expired with their views.
    dead: HashMap<dead_letters::DeadKey, analysis::dead_letters::Counter>,
    /// JetStream redeliveries per consumer, and how sure they are.
    redeliveries: HashMap<
        ConsumerKey,
        (
            analysis::dead_letters::Quality,
            analysis::dead_letters::Counter,
        ),
    >,
    advisory_gaps: HashMap<SourceId, dead_letters::Gaps>,
    dead_links: dead_letters::Links,
}

/// What one successful poll made of a source.
struct Analysed {
    partitions: Vec<PartitionView>,
    groups: Vec<GroupView>,
    streams: Vec<StreamState>,
    dead_letters: Vec<DeadLetterView>,
    advisories: Option<crate::model::AdvisoryState>,
}

/// A key whose time lag needed reading exactly stays asked for this many polls,
/// caught up or not: a bursty partition is read exactly from the first poll of
/// its next burst on, not from the second.
const EXACT_STICKY_POLLS: u8 = 10;

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
    pub plan: export::Plan,
    pub recommend: recommend::Resolver,
    pub alerts: Option<Alerts>,
    pub metrics: SelfMetrics,
    /// Per source: `gone_after` (missing: 3 default poll intervals).
    pub gone_after: HashMap<SourceId, std::time::Duration>,
    /// Told of every snapshot published (None: nobody checks).
    pub health: Option<Arc<crate::health::Health>>,
    /// Told of the open incidents after each evaluation (None: not kept).
    pub state: Option<Arc<crate::state::StateStore>>,
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
    pub fn new(cfg: EngineConfig) -> (Engine, watch::Receiver<Arc<Snapshot>>) {
        let sources = cfg
            .sources
            .iter()
            .map(|(id, system)| (id.clone(), SourceView::new(id.clone(), *system)))
            .collect();
        let order = cfg.sources.iter().map(|(id, _)| id.clone()).collect();
        let initial = Snapshot::new(
            Millis::now(),
            Vec::new(),
            0,
            Arc::default(),
            crate::snapshot::gzip::prefix(b""),
        );
        let (snapshot_tx, rx) = watch::channel(Arc::new(initial));
        let mut engine = Engine {
            sources,
            order,
            history: History::new(cfg.ring),
            settings: cfg.analysis,
            groups: crate::model::FastMap::default(),
            recommend: cfg.recommend,
            alerts: cfg.alerts,
            incidents: Arc::default(),
            metrics: cfg.metrics,
            plan: cfg.plan,
            scratch: VecDeque::new(),
            snapshot_tx,
            exact_requests: HashMap::new(),
            gone_after: cfg.gone_after,
            health: cfg.health,
            state: cfg.state,
            dead: HashMap::new(),
            redeliveries: HashMap::new(),
            advisory_gaps: HashMap::new(),
            dead_links: dead_letters::Links::default(),
        };
        engine.publish(Millis::now());
        (engine, rx)
    }

    /// `gone_after` of `source`, in ms.
    fn gone_after_ms(&self, source: &SourceId) -> i64 {
        let d = self.gone_after.get(source).copied().unwrap_or(
            crate::config::DEFAULT_POLL_INTERVAL * crate::config::DEFAULT_GONE_AFTER_POLLS,
        );
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }

    /// The channel the engine tells `source` which keys to read exactly on.
    pub fn exact_requests(&mut self, source: &SourceId) -> watch::Receiver<ExactRequests> {
        self.exact_requests
            .entry(source.clone())
            .or_insert_with(|| (watch::channel(Arc::default()).0, HashMap::new()))
            .0
            .subscribe()
    }

    /// Applies batches until every sender is gone, publishing after each.
    pub async fn run(mut self, mut rx: mpsc::Receiver<PollBatch>) {
        while let Some(batch) = rx.recv().await {
            crate::fault::before_batch();
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
        let Some(system) = self.sources.get(&batch.source).map(|v| v.system) else {
            tracing::warn!(source = %batch.source, "batch from an unconfigured source ignored");
            return;
        };
        self.metrics.record_poll(&batch);
        let PollBatch {
            source, at, result, ..
        } = batch;
        // Points are stamped when the head was read, where the source says.
        let at = match &result {
            Ok(data) => data.read_at.unwrap_or(at),
            Err(_) => at,
        };
        let analysed = result.map(|data| self.analyse(&source, system, at, data));
        if let Some(view) = self.sources.get_mut(&source) {
            match analysed {
                Ok(a) => succeeded(view, at, a),
                Err(failure) => failed(view, at, failure),
            }
        }
    }

    /// Records a successful poll in the history and analyses every key of it at
    /// the poll's time.
    fn analyse(
        &mut self,
        source: &SourceId,
        system: System,
        at: Millis,
        data: PollData,
    ) -> Analysed {
        let PollData {
            samples,
            groups: infos,
            streams,
            retention,
            partial_errors,
            dead_letters,
            advisories,
            ..
        } = data;
        let limits: HashMap<Arc<str>, RetentionLimits> = retention.into_iter().collect();
        let fresh = self.analyse_partitions(source, system, at, samples, &limits);
        self.request_exact(source, &fresh);
        // What this poll did not read is kept, stale, until a clean poll (one
        // with no partial error that could have hidden it) has missed it for
        // `gone_after`: a coordinator moving must not read as "vanished".
        let absence = Absence {
            at,
            clean: partial_errors.is_empty(),
            gone_after: self.gone_after_ms(source),
        };
        let previous = self.sources.get(source);
        let partitions = carry_partitions(previous, fresh, absence);
        let mut groups = group_views(system, &partitions, infos, at);
        carry_groups(previous, &mut groups, absence);
        for g in groups.values_mut() {
            self.roll_up(g, &partitions, at);
        }
        let dead_letters = self.fold_dead_letters(
            source,
            system,
            at,
            dead_letters,
            advisories,
            &mut groups,
            &partitions,
            absence,
        );
        // The per-group state of this source's groups that vanished goes with them.
        self.groups
            .retain(|k, _| &k.source != source || groups.contains_key(k));
        Analysed {
            partitions,
            groups: groups.into_values().collect(),
            streams,
            dead_letters,
            advisories,
        }
    }

    /// One view per sample, analysed at `at`; counts history restarts and expires
    /// the history of this source's keys that were not seen for a while.
    fn analyse_partitions(
        &mut self,
        source: &SourceId,
        system: System,
        at: Millis,
        mut samples: Vec<Sample>,
        limits: &HashMap<Arc<str>, RetentionLimits>,
    ) -> Vec<PartitionView> {
        samples.sort_by(|a, b| a.key.cmp(&b.key));
        // A paged list that repeated an entry under churn: one sample per key.
        let before = samples.len();
        samples.dedup_by(|a, b| a.key == b.key);
        if samples.len() < before {
            tracing::debug!(%source, duplicates = before - samples.len(), "duplicate readings of one key in a poll ignored");
        }
        let mut restarts: BTreeMap<RestartReason, u64> = BTreeMap::new();
        let mut partitions = Vec::with_capacity(samples.len());
        for sample in samples {
            let thresholds = self.settings.thresholds.for_group(&sample.key.group);
            let (h, restarted) = self.history.record(&sample, at);
            if let Some(reason) = restarted {
                *restarts.entry(reason).or_default() += 1;
            }
            h.decode_into(&mut self.scratch);
            let limits = limits.get(&sample.key.topic);
            let analysis =
                analysis::analyze(h, &self.scratch, at, &self.settings, thresholds, limits);
            if analysis.skipped > 0 {
                self.history.note_skip(&sample.key, at, analysis.skipped);
            }
            partitions.push(PartitionView::fresh(sample, analysis, at));
        }
        for (reason, n) in restarts {
            tracing::info!(
                %source,
                reason = reason.as_str(),
                keys = n,
                "sample history restarted; rates and status need a new window"
            );
            self.metrics.record_restarts(source, system, reason, n);
        }
        let gone = self
            .history
            .expire_source(source, at, self.settings.expire_after_ms());
        if gone > 0 {
            tracing::debug!(%source, keys = gone, "expired the history of vanished partitions");
        }
        partitions
    }

    /// Asks the source to read, at its next poll, the broker's timestamp of the
    /// oldest unconsumed message of the keys interpolation answers worst, and of
    /// those it did lately (see [`EXACT_STICKY_POLLS`]).
    fn request_exact(&mut self, source: &SourceId, partitions: &[PartitionView]) {
        let e = self.settings.exact_time_lag;
        let Some((tx, sticky)) = self.exact_requests.get_mut(source) else {
            return;
        };
        if !e.enabled {
            return;
        }
        // Room for caught-up keys among the lagging ones; the source reads at
        // most `max_per_poll`. Keys past the cap are neither asked nor kept.
        let cap = e.max_per_poll.saturating_mul(4);
        let now = exact_wanted(partitions, e.max_error.as_secs_f64(), cap);
        sticky.retain(|_, left| {
            *left = left.saturating_sub(1);
            *left > 0
        });
        for k in &now {
            sticky.insert(k.clone(), EXACT_STICKY_POLLS);
        }
        let mut keys = now;
        let asked: std::collections::HashSet<&ConsumerKey> = keys.iter().collect();
        let mut rest: Vec<ConsumerKey> = sticky
            .keys()
            .filter(|k| !asked.contains(k))
            .cloned()
            .collect();
        rest.sort();
        keys.extend(rest);
        keys.truncate(cap);
        if !(keys.is_empty() && tx.borrow().is_empty()) {
            tx.send_replace(Arc::new(ExactRequest {
                keys,
                budget: e.max_per_poll,
            }));
        }
    }

    /// The group's rollup, trend point and recommendation.
    fn roll_up(&mut self, g: &mut GroupView, partitions: &[PartitionView], at: Millis) {
        if g.partitions.is_empty() {
            return;
        }
        let a = analysis::rollup(g.partitions.iter().map(|i| &partitions[*i].analysis));
        let state = self.groups.entry(g.key.clone()).or_default();
        if state.trend.len() == TREND_POINTS {
            state.trend.pop_front();
        }
        state.trend.push_back((at, a.lag_sum));
        g.trend = state.trend.iter().copied().collect();
        if a.skipped > 0 {
            tracing::warn!(
                source = %g.key.source,
                group = %crate::telemetry::Escaped(&g.key.group),
                skipped = a.skipped,
                "committed offsets jumped past messages no consumption explains (an offset reset or a purge?)"
            );
        }
        state.skipped = state.skipped.saturating_add(a.skipped);
        g.skipped_total = state.skipped;
        let inputs = partition_inputs(g, partitions);
        let lags: Vec<_> = inputs
            .iter()
            .map(|p| (p.topic.clone(), p.partition, p.lag))
            .collect();
        let hot = analysis::diagnosis::hot_partitions(&lags, self.settings.diagnosis.hot_share);
        let input = recommend::Input {
            key: &g.key,
            system: g.system,
            partitions: &inputs,
            members: g.info.as_ref().and_then(|i| i.members),
            group: &a,
            hot: hot.as_ref(),
        };
        let recommendation = recommend::recommend(
            &input,
            &mut state.recommend,
            at,
            self.recommend.for_group(&g.key),
        );
        let mut why = diagnosis_inputs(g, partitions, &a, recommendation.per_replica_capacity);
        why.hot = hot;
        let stop_after_ms = self.settings.thresholds.for_group(&g.key).stop_after_ms;
        why.stop_after =
            std::time::Duration::from_millis(u64::try_from(stop_after_ms).unwrap_or(0));
        why.window = self.settings.window;
        g.causes =
            analysis::diagnosis::diagnose(&why, &mut state.diagnosis, at, &self.settings.diagnosis);
        g.recommendation = Some(recommendation);
        g.analysis = Some(a);
    }

    /// Runs the notification rules over every source's latest groups and queues
    /// the notifications; never waits for the notifier.
    fn evaluate_alerts(&mut self, at: Millis) {
        let Some(alerts) = &mut self.alerts else {
            return;
        };
        let mut observations = Vec::new();
        let mut held = Vec::new();
        let mut polled = Vec::new();
        for src in self.sources.values() {
            if src.up {
                polled.push(src.id.clone());
            }
            for g in src.groups.iter() {
                // Stale (in part or whole): held, neither resolved nor
                // re-opened on last-known values. Fresh without figures (no
                // offsets left): as vanished.
                if src.staleness(g, at).stale {
                    held.push(g.key.clone());
                } else if let Some(o) = observation(g) {
                    observations.push(o);
                }
            }
        }
        for n in alerts
            .evaluator
            .evaluate_polled(&observations, &held, &polled, at)
        {
            if let Err(e) = alerts.tx.try_send(n) {
                // The notifier has its own bounded queues; this only fills if it
                // has stopped.
                self.metrics.record_notification_dropped();
                tracing::error!(error = %e, "notification dropped: the notifier is not accepting");
            }
        }
        self.incidents = Arc::new(alerts.evaluator.open_incidents());
        if let Some(state) = &self.state {
            state.set_incidents(alerts.evaluator.open_for_state());
        }
    }

    fn publish(&mut self, at: Millis) {
        let sources: Vec<SourceView> = self
            .order
            .iter()
            .filter_map(|id| self.sources.get(id).cloned())
            .collect();
        let body = export::render(&self.metrics, &sources, &self.plan, self.history.len(), at);
        let snapshot = Snapshot::new(
            at,
            sources,
            self.history.len(),
            self.incidents.clone(),
            body,
        );
        // send_replace: publishing must not fail just because no reader is left.
        self.snapshot_tx.send_replace(Arc::new(snapshot));
        if let Some(h) = &self.health {
            h.published(Millis::now());
        }
    }
}

/// A successful poll replaces the source's views.
fn succeeded(view: &mut SourceView, at: Millis, a: Analysed) {
    if !view.up {
        tracing::info!(source = %view.id, system = %view.system, "source is up");
    }
    view.polled = true;
    view.last_poll = Some(at);
    view.up = true;
    view.last_success = Some(at);
    view.last_error = None;
    view.partitions = Arc::new(a.partitions);
    view.groups = Arc::new(a.groups);
    view.streams = Arc::new(a.streams);
    view.dead_letters = Arc::new(a.dead_letters);
    view.advisories = a.advisories;
}

/// A failed poll keeps the source's views: they are now stale (read before
/// its last poll, see [`SourceView::staleness`]), exported and served with
/// their age, and their incidents are held, neither resolved nor re-opened.
fn failed(view: &mut SourceView, at: Millis, failure: PollFailure) {
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
    view.polled = true;
    view.last_poll = Some(at);
    view.up = false;
    view.last_error = Some(failure);
}

/// How the absence of a key or group from one poll counts.
#[derive(Clone, Copy, Debug)]
struct Absence {
    at: Millis,
    /// The poll reported no partial error: what it missed, it did not hide.
    clean: bool,
    gone_after: i64,
}

impl Absence {
    /// The first clean poll that missed it, and whether it is gone now.
    fn judge(self, absent_since: Option<Millis>) -> (Option<Millis>, bool) {
        let since = if self.clean {
            absent_since.or(Some(self.at))
        } else {
            absent_since
        };
        let gone = self.clean && since.is_some_and(|s| self.at.0 - s.0 >= self.gone_after);
        (since, gone)
    }
}

/// This poll's partitions, plus the previous poll's that this one did not
/// read and that are not gone yet (stale: their last values), sorted by key.
fn carry_partitions(
    previous: Option<&SourceView>,
    mut fresh: Vec<PartitionView>,
    absence: Absence,
) -> Vec<PartitionView> {
    let Some(previous) = previous else {
        return fresh;
    };
    let seen: std::collections::HashSet<&ConsumerKey> =
        fresh.iter().map(|p| &p.sample.key).collect();
    let mut carried = Vec::new();
    for p in previous.partitions.iter() {
        if seen.contains(&p.sample.key) {
            continue;
        }
        let (absent_since, gone) = absence.judge(p.absent_since);
        if !gone {
            let mut p = p.clone();
            p.absent_since = absent_since;
            carried.push(p);
        }
    }
    if !carried.is_empty() {
        fresh.extend(carried);
        fresh.sort_by(|a, b| a.sample.key.cmp(&b.sample.key));
    }
    fresh
}

/// Gives the groups of this poll the broker info of their previous view when
/// this poll had none (stale), and keeps the previous poll's groups without
/// partitions (a JetStream consumer listed as missing) that this one missed,
/// until they are gone.
fn carry_groups(
    previous: Option<&SourceView>,
    groups: &mut BTreeMap<GroupKey, GroupView>,
    absence: Absence,
) {
    let Some(previous) = previous else {
        return;
    };
    for old in previous.groups.iter() {
        match groups.get_mut(&old.key) {
            Some(g) => {
                if g.info.is_none() && old.info.is_some() {
                    g.info.clone_from(&old.info);
                    g.read_at = g.read_at.min(old.read_at);
                }
            }
            // A group with partitions lives as long as they do (carried above).
            None if !old.partitions.is_empty() => {}
            None => {
                let (absent_since, gone) = absence.judge(old.absent_since);
                if !gone {
                    let mut g = GroupView::empty(old.key.clone(), old.system, old.read_at);
                    g.info.clone_from(&old.info);
                    g.absent_since = absent_since;
                    groups.insert(g.key.clone(), g);
                }
            }
        }
    }
}

/// The groups of one poll: every group with partitions, plus every group the
/// broker described, sorted by key.
fn group_views(
    system: System,
    partitions: &[PartitionView],
    infos: Vec<GroupInfo>,
    at: Millis,
) -> BTreeMap<GroupKey, GroupView> {
    let mut groups: BTreeMap<GroupKey, GroupView> = BTreeMap::new();
    for (i, p) in partitions.iter().enumerate() {
        let g = groups
            .entry(p.sample.key.group.clone())
            .or_insert_with(|| GroupView::empty(p.sample.key.group.clone(), system, at));
        g.partitions.push(i);
        if g.topics.last() != Some(&p.sample.key.topic) {
            g.topics.push(p.sample.key.topic.clone());
        }
        if p.read_at < at {
            g.stale_partitions += 1;
            g.read_at = g.read_at.min(p.read_at);
        }
    }
    for info in infos {
        let key = info.key.clone();
        groups
            .entry(key.clone())
            .or_insert_with(|| GroupView::empty(key, system, at))
            .info = Some(info);
    }
    groups
}

/// The keys whose time lag interpolation cannot give within `max_error`:
/// unknown and extrapolated first (oldest lower bound first), then
/// interpolations by their error.
fn exact_wanted(partitions: &[PartitionView], max_error: f64, cap: usize) -> Vec<ConsumerKey> {
    let mut wanted: Vec<(u8, f64, &ConsumerKey)> = partitions
        .iter()
        .filter(|p| p.sample.lag > 0 && p.sample.committed.is_some())
        .filter_map(|p| {
            let t = &p.analysis.time_lag;
            let rank = match t.quality() {
                TimeLagQuality::Exact => return None,
                TimeLagQuality::Unknown | TimeLagQuality::Extrapolated => (0, t.at_least()),
                TimeLagQuality::Interpolated => {
                    let err = t.error_seconds().unwrap_or(f64::INFINITY);
                    if err <= max_error {
                        return None;
                    }
                    (1, err)
                }
            };
            Some((rank.0, rank.1, &p.sample.key))
        })
        .collect();
    let order = |a: &(u8, f64, &ConsumerKey), b: &(u8, f64, &ConsumerKey)| {
        // Ties in key order, as the partitions come: the same choice at
        // every poll.
        a.0.cmp(&b.0)
            .then(b.1.total_cmp(&a.1))
            .then_with(|| a.2.cmp(b.2))
    };
    // The `cap` most needed, in order (at a large cluster most keys qualify).
    if wanted.len() > cap && cap > 0 {
        wanted.select_nth_unstable_by(cap - 1, order);
    }
    wanted.truncate(cap);
    wanted.sort_by(order);
    wanted.into_iter().map(|(_, _, k)| k.clone()).collect()
}

/// A group's figures for [`analysis::diagnosis::diagnose`] (the hot
/// partitions are filled in by the caller, which shares them with the
/// recommender).
fn diagnosis_inputs(
    g: &GroupView,
    parts: &[PartitionView],
    a: &analysis::GroupAnalysis,
    capacity_per_member: Option<f64>,
) -> analysis::diagnosis::Inputs {
    let mine = || g.partitions.iter().map(|i| &parts[*i]);
    analysis::diagnosis::Inputs {
        status: Some(a.status),
        lag: a.lag_sum,
        lag_growth: a.lag_growth,
        produce_rate: a.produce_rate,
        consume_rate: a.consume_rate,
        members: g.info.as_ref().and_then(|i| i.members),
        state: g.info.as_ref().and_then(|i| i.state.clone()),
        ack_pending: mine()
            .find_map(|p| p.sample.jetstream.as_ref())
            .map(|j| (j.num_ack_pending, j.max_ack_pending)),
        member_ids: g.info.as_ref().and_then(|i| {
            i.assignments.as_ref().map(|members| {
                members
                    .iter()
                    .map(|m| {
                        use std::hash::{BuildHasher as _, BuildHasherDefault};
                        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                            .hash_one(&m.member_id)
                    })
                    .collect()
            })
        }),
        hot: None,
        capacity_per_member,
        stop_after: std::time::Duration::ZERO,
        window: std::time::Duration::ZERO,
    }
}

/// The partitions of one group view, as the recommender's inputs.
fn partition_inputs(group: &GroupView, parts: &[PartitionView]) -> Vec<PartitionInput> {
    group
        .partitions
        .iter()
        .filter_map(|&i| parts.get(i))
        .map(|v| PartitionInput::new(&v.sample, &v.analysis))
        .collect()
}

/// What the alert rules see of one group; None while it has no analysis.
fn observation(g: &GroupView) -> Option<Observation> {
    let a = g.analysis.as_ref()?;
    let rec = g.recommendation.as_ref();
    Some(Observation {
        group: g.key.clone(),
        system: g.system,
        topics: g.topics.clone(),
        lag_messages: a.lag_sum,
        lag_seconds: a.time_lag_max.seconds(),
        time_lag: a.time_lag_max,
        growth_per_second: a.lag_growth,
        eta_seconds: a.eta_seconds,
        status: a.status,
        lost_messages: a.lost_messages,
        seconds_until_loss: a.projected_loss.seconds(),
        current_replicas: rec.and_then(|r| r.current),
        recommended_replicas: rec.and_then(|r| r.recommended),
        recommendation_reason: rec.map(|r| r.message.clone()),
        diagnosis: analysis::diagnosis::sentence(&g.causes),
        // A count not read at this poll is not one to decide on.
        dead_letters: g.dead_letters.as_ref().filter(|d| !d.stale).map(|d| {
            crate::alert::DeadLetterObservation {
                recent: d.recent,
                window_seconds: d.window_seconds,
                lower_bound: d.quality != analysis::dead_letters::Quality::Exact,
                detail: d.detail.clone(),
            }
        }),
    })
}

#[cfg(test)]
mod tests {
    //! What a partial or whole failure of a source does to its groups: kept,
    //! stale, their incidents held; gone only after clean polls missed them.

    use super::*;
    use crate::model::{ErrorKind, Status};

    const S: &str = "k";

    fn key(group: &str, partition: i32) -> ConsumerKey {
        ConsumerKey {
            group: GroupKey {
                source: SourceId::new(S),
                scope: None,
                group: Arc::from(group),
            },
            topic: Arc::from("orders"),
            partition: Some(partition),
        }
    }

    fn sample(group: &str, partition: i32, lag: i64) -> Sample {
        Sample {
            key: key(group, partition),
            committed: Some(1_000),
            head: 1_000 + lag,
            low: Some(0),
            lag: u64::try_from(lag).unwrap_or(0),
            jetstream: None,
            oldest_written: None,
        }
    }

    /// An engine with one Kafka source `k` (gone_after 90 s) and a rule that
    /// fires at once on lag > 100 and resolves once it is seen false for 1 s.
    fn engine() -> (Engine, mpsc::Receiver<Notification>) {
        let ids = vec![(SourceId::new(S), System::Kafka)];
        let alerts = crate::config::section_for_tests(
            "alerts",
            "defaults:\n  for: 0s\n  resolve_after: 1s\nreceivers:\n  - name: log\n    log: {}\nrules:\n  - name: lagging\n    condition: lag_messages\n    threshold: 100\n    receivers: [log]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .alerts;
        let (tx, rx) = mpsc::channel(64);
        let (engine, _snapshots) = Engine::new(EngineConfig {
            analysis: Settings::default(),
            ring: 23,
            plan: export::Plan::default(),
            recommend: recommend::Resolver::uniform(recommend::Resolved::default()),
            alerts: Some(Alerts {
                evaluator: AlertEvaluator::new(alerts.rules),
                tx,
            }),
            metrics: SelfMetrics::new(&ids, &[]).unwrap_or_else(|e| panic!("{e}")),
            gone_after: [(SourceId::new(S), std::time::Duration::from_secs(90))].into(),
            health: None,
            state: None,
            sources: ids,
        });
        (engine, rx)
    }

    /// Applies one successful poll of source `S` at `t` seconds.
    fn apply_at(e: &mut Engine, t: i64, data: PollData) -> Millis {
        let at = Millis(1_800_000_000_000 + t * 1000);
        e.apply(PollBatch {
            source: SourceId::new(S),
            system: System::Kafka,
            at,
            duration: std::time::Duration::ZERO,
            result: Ok(data),
        });
        at
    }

    fn poll(e: &mut Engine, t: i64, samples: Vec<Sample>, partial: bool) {
        let data = PollData {
            samples,
            partial_errors: if partial {
                vec![(ErrorKind::OffsetFetch, 1)]
            } else {
                Vec::new()
            },
            ..PollData::default()
        };
        let at = apply_at(e, t, data);
        e.evaluate_alerts(at);
    }

    fn fail(e: &mut Engine, t: i64) {
        let at = Millis(1_800_000_000_000 + t * 1000);
        e.apply(PollBatch {
            source: SourceId::new(S),
            system: System::Kafka,
            at,
            duration: std::time::Duration::ZERO,
            result: Err(PollFailure {
                kind: ErrorKind::Connect,
                message: "down".into(),
            }),
        });
        e.evaluate_alerts(at);
    }

    /// (group, lag sum, partitions, staleness) of the source's groups.
    fn groups(e: &Engine, t: i64) -> Vec<(String, u64, usize, crate::snapshot::Staleness)> {
        let now = Millis(1_800_000_000_000 + t * 1000);
        let src = &e.sources[&SourceId::new(S)];
        src.groups
            .iter()
            .map(|g| {
                (
                    g.key.group.to_string(),
                    g.analysis.map_or(0, |a| a.lag_sum),
                    g.partitions.len(),
                    src.staleness(g, now),
                )
            })
            .collect()
    }

    fn kinds(rx: &mut mpsc::Receiver<Notification>) -> Vec<(String, crate::alert::EventKind)> {
        let mut out = Vec::new();
        while let Ok(n) = rx.try_recv() {
            out.push((n.incident.group().group.to_string(), n.kind));
        }
        out
    }

    #[test]
    fn a_group_one_poll_could_not_read_is_kept_stale_and_its_incident_held() {
        use crate::alert::EventKind::*;
        let (mut e, mut rx) = engine();
        // t=0: g lags 150 + 50 on two partitions (fires), h lags 5.
        poll(
            &mut e,
            0,
            vec![sample("g", 0, 150), sample("g", 1, 50), sample("h", 0, 5)],
            false,
        );
        assert_eq!(kinds(&mut rx), vec![("g".into(), Fired)]);
        // t=30: OffsetFetch failed for g's partition 1 and for h (a coordinator
        // moved): both kept with their last values, marked stale; g's sum is
        // partial, not smaller; no resolve, no new incident.
        poll(&mut e, 30, vec![sample("g", 0, 160)], true);
        let got = groups(&e, 30);
        assert_eq!(got[0].0, "g");
        assert_eq!((got[0].1, got[0].2), (210, 2), "{got:?}");
        assert!(got[0].3.stale && got[0].3.partial(2), "{got:?}");
        assert_eq!(got[0].3.seconds, 30.0);
        assert_eq!(got[1].0, "h");
        assert!(got[1].3.stale && got[1].3.partitions == 1, "{got:?}");
        assert_eq!(kinds(&mut rx), vec![]);
        // t=60..120: clean polls without h: kept until 90 s after the first
        // clean poll that missed it, then gone.
        for t in [60, 90, 120] {
            poll(
                &mut e,
                t,
                vec![sample("g", 0, 160), sample("g", 1, 50)],
                false,
            );
            assert_eq!(groups(&e, t).len(), 2, "t={t}");
        }
        poll(
            &mut e,
            150,
            vec![sample("g", 0, 160), sample("g", 1, 50)],
            false,
        );
        let got = groups(&e, 150);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(!got[0].3.stale, "g is read whole again: {got:?}");
        // g's incident is the same one all along: no new Fired.
        assert_eq!(kinds(&mut rx), vec![]);
    }

    #[test]
    fn a_source_that_is_down_keeps_its_groups_stale_and_resolves_nothing() {
        use crate::alert::EventKind::*;
        let (mut e, mut rx) = engine();
        poll(&mut e, 0, vec![sample("g", 0, 150)], false);
        assert_eq!(kinds(&mut rx), vec![("g".into(), Fired)]);
        for t in [30, 60, 600] {
            fail(&mut e, t);
            let got = groups(&e, t);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].1, 150, "last known lag kept");
            assert!(got[0].3.stale && got[0].3.partitions == 1);
            assert_eq!(got[0].3.seconds, t as f64);
        }
        assert_eq!(kinds(&mut rx), vec![]);
        // Back, and the condition seen false (twice, 1 s apart at least):
        // only now does it resolve.
        poll(&mut e, 630, vec![sample("g", 0, 10)], false);
        poll(&mut e, 660, vec![sample("g", 0, 10)], false);
        assert_eq!(kinds(&mut rx), vec![("g".into(), Resolved)]);
        let got = groups(&e, 660);
        assert!(!got[0].3.stale);
        assert_eq!(
            e.sources[&SourceId::new(S)].groups[0]
                .analysis
                .map(|a| a.status),
            Some(Status::Ok)
        );
    }

    /// A dead-letter topic of `orders` (which only `g` consumes): counted
    /// from its first reading, linked to `g`, kept stale (and not decided on)
    /// when a poll could not read it.
    #[test]
    fn dead_letters_are_linked_counted_from_the_first_reading_and_held_when_not_read() {
        use crate::analysis::dead_letters::Quality;
        use crate::model::{DeadLetterReading, DeadLetterReason};
        let (mut e, _rx) = engine();
        let batch = |e: &mut Engine, t: i64, total: Option<u64>| {
            apply_at(
                e,
                t,
                PollData {
                    samples: vec![sample("g", 0, 5)],
                    dead_letters: total
                        .map(|total| DeadLetterReading {
                            reason: DeadLetterReason::DeadLetterTopic,
                            topic: Arc::from("orders"),
                            dead_letter_topic: Some(Arc::from("orders.dlq")),
                            group: None,
                            total,
                            stored: Some(total),
                            last: None,
                            owned: true,
                            sees_all_groups: true,
                            partitions: 1,
                        })
                        .into_iter()
                        .collect(),
                    partial_errors: if total.is_none() {
                        vec![(ErrorKind::ListOffsets, 1)]
                    } else {
                        Vec::new()
                    },
                    ..PollData::default()
                },
            );
            let src = &e.sources[&SourceId::new(S)];
            (
                src.dead_letters.first().cloned(),
                src.groups[0].dead_letters.clone(),
                observation(&src.groups[0]).and_then(|o| o.dead_letters),
            )
        };
        // t=0: 100 messages were there before lagwatch: none is recent.
        let (v, g, o) = batch(&mut e, 0, Some(100));
        let v = v.unwrap();
        assert_eq!((v.total, v.recent, v.undrained), (100, 0, Some(100)));
        assert_eq!(
            v.group.as_deref(),
            Some("g"),
            "the only group reading orders"
        );
        let g = g.unwrap();
        assert_eq!(
            (g.recent, g.quality),
            (0, Quality::LowerBound),
            "1h not watched yet"
        );
        assert!(o.is_some_and(|o| o.lower_bound));
        // t=10: 4 more, 0.4/s.
        let (v, g, _) = batch(&mut e, 10, Some(104));
        let v = v.unwrap();
        assert_eq!(v.recent, 4);
        assert!((v.per_second.unwrap() - 0.4).abs() < 1e-9);
        assert!(g.unwrap().detail.contains("orders to orders.dlq"));
        // t=20: not read: the last figures, stale; the rules decide nothing.
        let (v, g, o) = batch(&mut e, 20, None);
        assert_eq!(v.unwrap().recent, 4);
        assert!(g.unwrap().stale);
        assert_eq!(o, None);
    }

    /// A second reader of the topic does not take the dead letters away from
    /// the group that had them; a dead-letter topic that appears after a
    /// clean poll is new, all of it.
    #[test]
    fn dead_letter_links_stay_and_a_new_dead_letter_topic_counts_whole() {
        use crate::model::{DeadLetterReading, DeadLetterReason};
        let (mut e, _rx) = engine();
        let dlq = |name: &str, total: u64| DeadLetterReading {
            reason: DeadLetterReason::DeadLetterTopic,
            topic: Arc::from("orders"),
            dead_letter_topic: Some(Arc::from(name)),
            group: None,
            total,
            stored: Some(total),
            last: None,
            owned: true,
            sees_all_groups: true,
            partitions: 1,
        };
        let batch = |e: &mut Engine, t: i64, samples: Vec<Sample>, dead: Vec<DeadLetterReading>| {
            apply_at(
                e,
                t,
                PollData {
                    samples,
                    dead_letters: dead,
                    ..PollData::default()
                },
            );
            let src = &e.sources[&SourceId::new(S)];
            src.dead_letters
                .iter()
                .map(|v| {
                    (
                        v.dead_letter_topic.as_deref().unwrap_or("").to_string(),
                        v.group.as_deref().unwrap_or("").to_string(),
                        v.recent,
                    )
                })
                .collect::<Vec<_>>()
        };
        let got = batch(
            &mut e,
            0,
            vec![sample("g", 0, 5)],
            vec![dlq("orders.dlq", 10)],
        );
        assert_eq!(got, vec![("orders.dlq".into(), "g".into(), 0)]);
        // h starts reading orders too: the queue stays g's.
        let both = || vec![sample("g", 0, 5), sample("h", 0, 5)];
        let got = batch(&mut e, 10, both(), vec![dlq("orders.dlq", 12)]);
        assert_eq!(got, vec![("orders.dlq".into(), "g".into(), 2)]);
        // A Spring .DLT created by its first 3 dead letters since the last
        // (clean) poll: all 3 are recent. It is not linked: two groups read
        // orders and nothing says whose it is.
        let got = batch(
            &mut e,
            20,
            both(),
            vec![dlq("orders.dlq", 12), dlq("orders.DLT", 3)],
        );
        assert_eq!(
            got,
            vec![
                ("orders.DLT".into(), "".into(), 3),
                ("orders.dlq".into(), "g".into(), 2)
            ]
        );
        // g's summary only has its own; h has none known.
        let src = &e.sources[&SourceId::new(S)];
        let summary = |name: &str| {
            src.groups
                .iter()
                .find(|g| &*g.key.group == name)
                .and_then(|g| g.dead_letters.as_ref().map(|d| d.recent))
        };
        assert_eq!((summary("g"), summary("h")), (Some(2), None));
    }

    /// kafka-lag-exporter's per-partition series name the owning member
    /// (from DescribeGroups' assignments) when asked, as its dashboards show
    /// them; tansu answers without assignments, so this is tested here.
    #[test]
    fn compat_series_carry_the_owning_member_when_asked() {
        let render = |member_labels: bool| -> String {
            let ids = vec![(SourceId::new(S), System::Kafka)];
            let (mut engine, snapshots) = Engine::new(EngineConfig {
                analysis: Settings::default(),
                ring: 23,
                plan: export::Plan {
                    kafka_lag_exporter: true,
                    kafka_lag_exporter_member_labels: member_labels,
                    ..export::Plan::default()
                },
                recommend: recommend::Resolver::uniform(recommend::Resolved::default()),
                alerts: None,
                metrics: SelfMetrics::new(&ids, &[]).unwrap_or_else(|e| panic!("{e}")),
                gone_after: [(SourceId::new(S), std::time::Duration::from_secs(90))].into(),
                health: None,
                state: None,
                sources: ids,
            });
            let member =
                |id: &str, client: &str, host: &str, p: i32| crate::model::MemberAssignment {
                    member_id: id.into(),
                    client_id: client.into(),
                    host: host.into(),
                    group_instance_id: None,
                    partitions: vec![(Arc::from("orders"), p)],
                };
            let mut info = GroupInfo::new(key("billing", 0).group, Some("Stable".into()), Some(2));
            info.assignments = Some(vec![
                member("m-1", "billing-1", "/10.0.0.7", 0),
                member("m-2", "billing-2", "/10.0.0.8", 1),
            ]);
            engine.apply(PollBatch {
                source: SourceId::new(S),
                system: System::Kafka,
                at: Millis(1_800_000_000_000),
                duration: std::time::Duration::ZERO,
                result: Ok(PollData {
                    samples: vec![
                        sample("billing", 0, 5),
                        sample("billing", 1, 7),
                        sample("billing", 2, 0),
                    ],
                    groups: vec![info],
                    ..PollData::default()
                }),
            });
            engine.publish(Millis(1_800_000_000_000));
            let text = snapshots.borrow().metrics_text();
            text.lines()
                .filter(|l| l.starts_with("kafka_consumergroup_group_lag{"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let with = render(true);
        assert!(with.contains(r#"kafka_consumergroup_group_lag{cluster_name="k",group="billing",topic="orders",partition="0",member_host="/10.0.0.7",consumer_id="m-1",client_id="billing-1"} 5"#), "{with}");
        assert!(with.contains(r#"partition="1",member_host="/10.0.0.8",consumer_id="m-2",client_id="billing-2"} 7"#), "{with}");
        // Partition 2 is owned by nobody: no member labels.
        assert!(with.contains(r#"kafka_consumergroup_group_lag{cluster_name="k",group="billing",topic="orders",partition="2"} 0"#), "{with}");
        let without = render(false);
        assert!(!without.contains("consumer_id"), "{without}");
        assert_eq!(without.lines().count(), 3, "{without}");
    }
}

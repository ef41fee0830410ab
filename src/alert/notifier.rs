//! Delivery: one bounded FIFO queue and one worker per receiver. The worker
//! retries the head of its queue (network errors, 5xx, 429 with Retry-After) with
//! exponential backoff and jitter, so a receiver's notifications arrive in order and
//! a resolve never overtakes its fire. Retries are bounded (`retry_max_attempts`,
//! `retry_max_age`; a Resolved at least [`RESOLVED_MIN_RETRY_AGE`]): past them, or
//! when the receiver refuses (4xx), the notification becomes a dead letter:
//! counted, logged, kept in the state file and shown by the API. Taking a
//! notification off the channel never waits on the network. A full queue drops,
//! in order: a repeat (the oldest queued, else the incoming one); a Fired not yet
//! delivered, with its Resolved if queued (the receiver never heard of that
//! incident); never a Resolved whose Fired may have been delivered (the queue
//! grows past its capacity for those instead). The queues are mirrored into the
//! state file, so what is undelivered at shutdown is delivered after a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use rand::Rng;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::payload::RenderContext;
use super::receivers::{Receiver, Rendered};
use super::{AlertSettings, EventKind, Notification, RESOLVED_MIN_RETRY_AGE};
use crate::model::Millis;
use crate::state::{DeadLetter, Pending, StateStore};

/// Longest wait a Retry-After header can impose; past it a receiver's queue would
/// stall for longer than anyone would want to wait for a lag alert.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Failed-attempt reasons (the `reason` label). Bounded set.
const REASONS: [&str; 7] = [
    "timeout",
    "connect",
    "network",
    "http_429",
    "http_5xx",
    "http_4xx",
    "unexpected_status",
];

/// Delivery metrics, registered on the notifier's own registry.
#[derive(Clone, Debug)]
struct Metrics {
    sent: IntCounterVec,
    failed: IntCounterVec,
    retries: IntCounterVec,
    dropped: IntCounterVec,
    dead: IntCounterVec,
    depth: IntGaugeVec,
}

impl Metrics {
    fn new(registry: &Registry, receivers: &[Receiver]) -> Result<Metrics, prometheus::Error> {
        let sent = IntCounterVec::new(
            Opts::new(
                "lagwatch_notifications_sent_total",
                "Notifications this receiver accepted (HTTP 2xx; for a `log` receiver, lines written).",
            ),
            &["receiver"],
        )?;
        let failed = IntCounterVec::new(
            Opts::new(
                "lagwatch_notifications_failed_total",
                "Delivery attempts to this receiver that failed, by reason. timeout, connect, network, http_429 and http_5xx are retried with backoff; http_4xx and unexpected_status are not: that notification is lost (check the receiver's URL, credentials and payload).",
            ),
            &["receiver", "reason"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "lagwatch_notifications_retries_total",
                "Delivery attempts that repeated a failed one. Rising steadily: the receiver is down or throttling, and its later notifications wait in its queue.",
            ),
            &["receiver"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "lagwatch_notifications_dropped_total",
                "Notifications discarded without delivery: the receiver's queue was full (repeats go first, then the oldest notification), or the shutdown flush deadline passed.",
            ),
            &["receiver"],
        )?;
        let dead = IntCounterVec::new(
            Opts::new(
                "lagwatch_notifications_dead_letters_total",
                "Notifications given up on, by the last failure's reason: retries exhausted (retry_max_attempts, retry_max_age) or refused by the receiver (http_4xx, unexpected_status). Each is logged at error level and listed at /api/v1/dead_letters.",
            ),
            &["receiver", "reason"],
        )?;
        let depth = IntGaugeVec::new(
            Opts::new(
                "lagwatch_notification_queue_depth",
                "Notifications waiting for this receiver, the one being delivered included. Near the receiver's queue_capacity, drops are next.",
            ),
            &["receiver"],
        )?;
        for c in [
            Box::new(sent.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failed.clone()),
            Box::new(retries.clone()),
            Box::new(dropped.clone()),
            Box::new(dead.clone()),
            Box::new(depth.clone()),
        ] {
            registry.register(c)?;
        }
        // Every series exists from the start, at zero, so rate() and absence work.
        for r in receivers {
            let n = &*r.name;
            sent.with_label_values(&[n]);
            retries.with_label_values(&[n]);
            dropped.with_label_values(&[n]);
            depth.with_label_values(&[n]).set(0);
            for reason in REASONS {
                failed.with_label_values(&[n, reason]);
                dead.with_label_values(&[n, reason]);
            }
        }
        Ok(Metrics {
            sent,
            failed,
            retries,
            dropped,
            dead,
            depth,
        })
    }
}

/// Delivers notifications to the receivers. Run it as its own task.
#[derive(Debug)]
pub struct Notifier {
    receivers: Vec<Receiver>,
    metrics: Metrics,
    registry: Registry,
    client: reqwest::Client,
    /// Receivers with their own CA certificates (`tls.ca_file`).
    own_clients: HashMap<Arc<str>, reqwest::Client>,
    ctx: RenderContext,
    backoff: Duration,
    backoff_max: Duration,
    flush_timeout: Duration,
    max_attempts: u32,
    max_age: Duration,
    state: Arc<StateStore>,
    /// Notifications undelivered when lagwatch last stopped.
    restored: Vec<Pending>,
}

/// One queued notification with its body rendered for this receiver, and its
/// delivery so far.
#[derive(Clone, Debug)]
struct Item {
    notification: Arc<Notification>,
    rendered: Rendered,
    attempts: u32,
    first_attempt: Option<Millis>,
}

#[derive(Debug, Default)]
struct QueueState {
    /// The head is being delivered while `in_flight`; it leaves the queue only
    /// once delivered or dead-lettered, so a shutdown mid-delivery keeps it.
    items: VecDeque<Item>,
    in_flight: bool,
    closed: bool,
}

/// A receiver's queue, shared by the dispatcher (push) and its worker (pop).
/// The lock is never held across an await.
#[derive(Debug)]
struct Queue {
    receiver: Receiver,
    state: Mutex<QueueState>,
    wake: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A poisoned lock only means a worker panicked mid-update; the queue is
        // still a valid VecDeque, so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    Retry {
        reason: &'static str,
        retry_after: Option<Duration>,
        detail: String,
    },
    GiveUp {
        reason: &'static str,
        detail: String,
    },
}

/// Why the notifier could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot register notification metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot build the HTTP client for receivers: {0}")]
    Client(String),
}

/// Notifications waiting between the engine and the notifier. The notifier moves
/// them to its per-receiver queues at once, so this stays nearly empty; the engine
/// uses `try_send` and never waits (a full channel is logged and counted by it).
pub const CHANNEL_CAPACITY: usize = 1024;

/// The channel the engine sends [`Notification`]s on.
pub fn channel() -> (mpsc::Sender<Notification>, mpsc::Receiver<Notification>) {
    mpsc::channel(CHANNEL_CAPACITY)
}

impl Notifier {
    /// The notifier of a validated `alerts:` section, with its own metrics
    /// registry (gathered at scrape time, so delivery counters are never a poll
    /// old). `state` keeps its queues and dead letters across restarts;
    /// `restored` is what was undelivered when lagwatch last stopped.
    pub fn new(
        settings: &AlertSettings,
        state: Arc<StateStore>,
        restored: Vec<Pending>,
    ) -> Result<Notifier, SetupError> {
        let registry = Registry::new();
        let receivers = settings.receivers.clone();
        let metrics = Metrics::new(&registry, &receivers)?;
        let client = http_client(&[])?;
        let mut own_clients = HashMap::new();
        for r in receivers.iter().filter(|r| !r.ca_certs.is_empty()) {
            own_clients.insert(r.name.clone(), http_client(&r.ca_certs)?);
        }
        Ok(Notifier {
            receivers,
            metrics,
            registry,
            client,
            own_clients,
            ctx: RenderContext {
                dashboard_url: settings.dashboard_url.clone(),
            },
            backoff: settings.retry_backoff,
            backoff_max: settings.retry_backoff_max,
            flush_timeout: settings.flush_timeout,
            max_attempts: settings.retry_max_attempts,
            max_age: settings.retry_max_age,
            state,
            restored,
        })
    }

    /// The notifier's own metrics (deliveries, failures, drops, queue depth).
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// Moves notifications from `rx` to the receivers' queues until `shutdown` is
    /// cancelled or `rx` closes; then gives the queues `flush_timeout` to drain and
    /// counts whatever is left as dropped.
    pub async fn run(self, mut rx: mpsc::Receiver<Notification>, shutdown: CancellationToken) {
        let queues: Vec<Arc<Queue>> = self
            .receivers
            .iter()
            .map(|r| {
                Arc::new(Queue {
                    receiver: r.clone(),
                    state: Mutex::new(QueueState::default()),
                    wake: Notify::new(),
                })
            })
            .collect();
        self.restore(&queues);
        let worker = Arc::new(Worker {
            metrics: self.metrics.clone(),
            client: self.client.clone(),
            own_clients: self.own_clients.clone(),
            backoff: self.backoff,
            backoff_max: self.backoff_max,
            max_attempts: self.max_attempts,
            max_age: self.max_age,
            state: self.state.clone(),
        });
        let mut workers = tokio::task::JoinSet::new();
        for q in &queues {
            workers.spawn(worker.clone().run(q.clone()));
        }
        loop {
            tokio::select! {
                biased;
                n = rx.recv() => match n {
                    Some(n) => self.dispatch(&queues, n),
                    None => break,
                },
                () = shutdown.cancelled() => {
                    // What the engine already handed over still gets its chance.
                    while let Ok(n) = rx.try_recv() {
                        self.dispatch(&queues, n);
                    }
                    break;
                }
            }
        }
        for q in &queues {
            q.lock().closed = true;
            q.wake.notify_one();
        }
        let pending: usize = queues.iter().map(|q| depth(&q.lock())).sum();
        if pending > 0 {
            tracing::info!(
                pending,
                timeout = %humantime::format_duration(self.flush_timeout),
                "flushing queued notifications"
            );
        }
        let drained = tokio::time::timeout(self.flush_timeout, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            workers.abort_all();
            while workers.join_next().await.is_some() {}
            self.left_at_deadline(&queues);
        }
        tracing::debug!("notifier stopped");
    }

    /// What is undelivered when the flush deadline passed: kept in the state
    /// file when there is one, else dropped and counted.
    fn left_at_deadline(&self, queues: &[Arc<Queue>]) {
        for q in queues {
            let left = q.lock().items.len();
            if left == 0 {
                continue;
            }
            if self.state.persistent() {
                persist(&self.state, q);
                tracing::warn!(
                    receiver = %q.receiver.name,
                    kept = left,
                    "notifications undelivered at the shutdown deadline are kept in the state file and delivered after the restart"
                );
            } else {
                self.metrics
                    .dropped
                    .with_label_values(&[&q.receiver.name])
                    .inc_by(left as u64);
                tracing::warn!(
                    receiver = %q.receiver.name,
                    dropped = left,
                    "notifications still undelivered at the shutdown deadline were dropped (set state.path to keep them)"
                );
            }
        }
    }

    /// Queues what was undelivered when lagwatch last stopped, first, in order.
    fn restore(&self, queues: &[Arc<Queue>]) {
        for p in &self.restored {
            let Some(q) = queues.iter().find(|q| *q.receiver.name == p.receiver) else {
                tracing::warn!(receiver = %p.receiver, incident = %p.notification.incident.id, "an undelivered notification's receiver is gone from the config; dropped");
                continue;
            };
            let n = Arc::new(p.notification.clone());
            let rendered = q.receiver.render(&n, &self.ctx);
            q.lock().items.push_back(Item {
                notification: n,
                rendered,
                attempts: p.attempts,
                first_attempt: p.first_attempt,
            });
        }
        for q in queues {
            let d = depth(&q.lock());
            self.metrics
                .depth
                .with_label_values(&[&q.receiver.name])
                .set(d as i64);
            if d > 0 {
                tracing::info!(receiver = %q.receiver.name, pending = d, "resuming the delivery of notifications from before the restart");
                persist(&self.state, q);
            }
        }
    }

    /// Renders `n` for each of its receivers and queues it; never waits.
    fn dispatch(&self, queues: &[Arc<Queue>], n: Notification) {
        let n = Arc::new(n);
        for name in n.receivers.iter() {
            let Some(q) = queues.iter().find(|q| &q.receiver.name == name) else {
                tracing::warn!(receiver = %name, "notification for an unknown receiver ignored");
                continue;
            };
            let rendered = q.receiver.render(&n, &self.ctx);
            let evicted = {
                let mut s = q.lock();
                let incoming = Item {
                    notification: n.clone(),
                    rendered,
                    attempts: 0,
                    first_attempt: None,
                };
                let evicted = admit(&mut s, incoming, q.receiver.queue_capacity);
                self.metrics
                    .depth
                    .with_label_values(&[&q.receiver.name])
                    .set(depth(&s) as i64);
                evicted
            };
            persist(&self.state, q);
            q.wake.notify_one();
            for e in evicted {
                self.metrics
                    .dropped
                    .with_label_values(&[&q.receiver.name])
                    .inc();
                tracing::warn!(
                    receiver = %q.receiver.name,
                    capacity = q.receiver.queue_capacity,
                    event = e.notification.kind.event_type(),
                    incident = %e.notification.incident.id,
                    "receiver queue full: dropped a notification"
                );
            }
        }
    }
}

/// Notifications waiting, the one being delivered included.
fn depth(s: &QueueState) -> usize {
    s.items.len()
}

/// Queues `incoming`, making room when the queue is at `capacity`; returns
/// what was dropped. See the module docs for the order; the head being
/// delivered is never touched.
fn admit(s: &mut QueueState, incoming: Item, capacity: usize) -> Vec<Item> {
    // `capacity` counts the notifications waiting, not the one being delivered.
    let first = usize::from(s.in_flight);
    if s.items.len() - first.min(s.items.len()) < capacity {
        s.items.push_back(incoming);
        return Vec::new();
    }
    let position = |s: &QueueState, kind: EventKind| {
        s.items
            .iter()
            .enumerate()
            .skip(first)
            .find(|(_, i)| i.notification.kind == kind)
            .map(|(at, _)| at)
    };
    // 1. A repeat carries no state change: the oldest queued, else the incoming.
    if let Some(at) = position(s, EventKind::Repeated) {
        let out = s.items.remove(at).into_iter().collect();
        s.items.push_back(incoming);
        return out;
    }
    if incoming.notification.kind == EventKind::Repeated {
        return vec![incoming];
    }
    // 2. The oldest Fired not being delivered: the receiver never heard of the
    //    incident, so its queued Resolved (and later ones) go with it.
    if let Some(at) = position(s, EventKind::Fired) {
        let mut out: Vec<Item> = s.items.remove(at).into_iter().collect();
        let gone = out.first().map(|i| i.notification.incident.id);
        let mut kept = VecDeque::with_capacity(s.items.len() + 1);
        for (k, item) in std::mem::take(&mut s.items).into_iter().enumerate() {
            if k >= first && Some(item.notification.incident.id) == gone {
                out.push(item);
            } else {
                kept.push_back(item);
            }
        }
        s.items = kept;
        if Some(incoming.notification.incident.id) == gone {
            out.push(incoming);
        } else {
            s.items.push_back(incoming);
        }
        return out;
    }
    // 3. Only Resolveds (and the head): a Resolved is never dropped; the queue
    //    grows past its capacity, by at most one per open incident.
    s.items.push_back(incoming);
    Vec::new()
}

/// Writes the head's delivery so far back into the queue (it stays there
/// until delivered or given up on).
fn record_attempt(q: &Queue, item: &Item) {
    let mut s = q.lock();
    if let Some(head) = s.items.front_mut() {
        if Arc::ptr_eq(&head.notification, &item.notification) {
            head.attempts = item.attempts;
            head.first_attempt = item.first_attempt;
        }
    }
}

/// Mirrors `q` into the state file.
fn persist(state: &StateStore, q: &Queue) {
    if !state.persistent() {
        return;
    }
    let pending: Vec<Pending> = q
        .lock()
        .items
        .iter()
        .map(|i| Pending {
            receiver: q.receiver.name.to_string(),
            notification: (*i.notification).clone(),
            attempts: i.attempts,
            first_attempt: i.first_attempt,
        })
        .collect();
    state.set_pending(&q.receiver.name, pending);
}

/// What every receiver's worker shares.
#[derive(Debug)]
struct Worker {
    metrics: Metrics,
    client: reqwest::Client,
    /// Receivers with their own CA certificates have their own client.
    own_clients: HashMap<Arc<str>, reqwest::Client>,
    backoff: Duration,
    backoff_max: Duration,
    max_attempts: u32,
    max_age: Duration,
    state: Arc<StateStore>,
}

/// How the delivery of one notification ended.
enum Outcome {
    Delivered,
    /// Given up on: refused, or retries exhausted.
    Dead {
        reason: &'static str,
        detail: String,
    },
}

impl Worker {
    /// Delivers the queue's head until it is accepted or given up on, then the
    /// next; ends once the queue is closed and empty.
    async fn run(self: Arc<Self>, q: Arc<Queue>) {
        let name = q.receiver.name.clone();
        loop {
            let next = {
                let mut s = q.lock();
                match s.items.front().cloned() {
                    Some(item) => {
                        s.in_flight = true;
                        Some(item)
                    }
                    None if s.closed => return,
                    None => None,
                }
            };
            let Some(item) = next else {
                q.wake.notified().await;
                continue;
            };
            let outcome = self.deliver(&q, item).await;
            let done = {
                let mut s = q.lock();
                s.in_flight = false;
                let done = s.items.pop_front();
                self.metrics
                    .depth
                    .with_label_values(&[&name])
                    .set(depth(&s) as i64);
                done
            };
            if let (Outcome::Dead { reason, detail }, Some(item)) = (outcome, done) {
                self.dead_letter(&q.receiver, &item, reason, detail);
            }
            persist(&self.state, &q);
        }
    }

    async fn deliver(&self, q: &Queue, mut item: Item) -> Outcome {
        let r = &q.receiver;
        let n = item.notification.clone();
        loop {
            if item.attempts > 0 {
                self.metrics.retries.with_label_values(&[&r.name]).inc();
            }
            let first = *item.first_attempt.get_or_insert_with(Millis::now);
            match self.attempt(r, &item).await {
                Attempt::Delivered => {
                    self.metrics.sent.with_label_values(&[&r.name]).inc();
                    tracing::debug!(
                        receiver = %r.name,
                        event = n.kind.event_type(),
                        incident = %n.incident.id,
                        attempts = item.attempts + 1,
                        "notification delivered"
                    );
                    return Outcome::Delivered;
                }
                Attempt::GiveUp { reason, detail } => {
                    self.failed(r, &n, reason, &detail, None);
                    item.attempts += 1;
                    record_attempt(q, &item);
                    return Outcome::Dead { reason, detail };
                }
                Attempt::Retry {
                    reason,
                    retry_after,
                    detail,
                } => {
                    item.attempts = item.attempts.saturating_add(1);
                    record_attempt(q, &item);
                    persist(&self.state, q);
                    let age = Duration::from_millis(
                        u64::try_from(Millis::now().0 - first.0).unwrap_or(0),
                    );
                    if self.exhausted(n.kind, item.attempts, age) {
                        self.failed(r, &n, reason, &detail, None);
                        return Outcome::Dead { reason, detail };
                    }
                    let wait = self.backoff_for(item.attempts - 1, retry_after);
                    self.failed(r, &n, reason, &detail, Some(wait));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Whether a notification that failed `attempts` times over `age` is given
    /// up on. A Resolved is kept at least [`RESOLVED_MIN_RETRY_AGE`], whatever
    /// the attempts: dropping it would leave the incident open for good.
    fn exhausted(&self, kind: EventKind, attempts: u32, age: Duration) -> bool {
        match kind {
            EventKind::Resolved => age >= self.max_age.max(RESOLVED_MIN_RETRY_AGE),
            EventKind::Fired | EventKind::Repeated => {
                attempts >= self.max_attempts || age >= self.max_age
            }
        }
    }

    fn dead_letter(&self, r: &Receiver, item: &Item, reason: &'static str, detail: String) {
        let n = &item.notification;
        self.metrics
            .dead
            .with_label_values(&[&r.name, reason])
            .inc();
        tracing::error!(
            receiver = %r.name,
            event = n.kind.event_type(),
            incident = %n.incident.id,
            rule = %n.incident.rule,
            attempts = item.attempts,
            reason,
            detail = %detail,
            "notification given up on (dead letter; see /api/v1/dead_letters)"
        );
        self.state.add_dead_letter(DeadLetter {
            receiver: r.name.to_string(),
            notification: (**n).clone(),
            reason: reason.to_string(),
            detail,
            attempts: item.attempts,
            first_attempt: item.first_attempt,
            given_up_at: Millis::now(),
        });
    }

    /// Logs and counts one failed attempt, in one place.
    fn failed(
        &self,
        r: &Receiver,
        n: &Notification,
        reason: &'static str,
        detail: &str,
        retry_in: Option<Duration>,
    ) {
        self.metrics
            .failed
            .with_label_values(&[&r.name, reason])
            .inc();
        match retry_in {
            Some(wait) => tracing::warn!(
                receiver = %r.name,
                event = n.kind.event_type(),
                incident = %n.incident.id,
                reason,
                detail,
                retry_in = %humantime::format_duration(Duration::from_millis(wait.as_millis() as u64)),
                "notification attempt failed; will retry"
            ),
            None => tracing::error!(
                receiver = %r.name,
                event = n.kind.event_type(),
                incident = %n.incident.id,
                reason,
                detail,
                "notification refused by the receiver; not retried"
            ),
        }
    }

    /// `backoff × 2^failures`, capped at `backoff_max`, times a random factor in
    /// [0.5, 1] so that many lagwatch replicas do not retry in lockstep; a
    /// Retry-After from the receiver is honored when longer.
    fn backoff_for(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .backoff
            .saturating_mul(2u32.saturating_pow(failures.min(20)))
            .min(self.backoff_max);
        let jittered = exp.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
        match retry_after {
            Some(ra) => ra.min(MAX_RETRY_AFTER).max(jittered),
            None => jittered,
        }
    }

    async fn attempt(&self, r: &Receiver, item: &Item) -> Attempt {
        let n = &item.notification;
        let Some(url) = &r.url else {
            log_line(r, item);
            return Attempt::Delivered;
        };
        let now_unix = Millis::now().0.div_euclid(1000);
        let headers = r.attempt_headers(n, &item.rendered.body, now_unix);
        let sent = self
            .own_clients
            .get(&r.name)
            .unwrap_or(&self.client)
            .post(url.clone())
            .headers(headers)
            .timeout(r.timeout)
            .body(item.rendered.body.clone())
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => return send_failed(e),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read a bounded amount of the answer (a receiver's body is outside
        // input: at most MAX_ANSWER_BYTES, within the timeout).
        let body = tokio::time::timeout(r.timeout, read_bounded(resp, MAX_ANSWER_BYTES))
            .await
            .unwrap_or_default();
        answered(status, retry_after, answer_detail(status, &body, r))
    }
}

/// The notifier's HTTP client, trusting `ca_certs` besides the system's roots.
fn http_client(ca_certs: &[reqwest::Certificate]) -> Result<reqwest::Client, SetupError> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("lagwatch/", env!("CARGO_PKG_VERSION")))
        // A webhook that redirects is misconfigured; say so instead of following.
        .redirect(reqwest::redirect::Policy::none());
    for c in ca_certs {
        b = b.add_root_certificate(c.clone());
    }
    b.build().map_err(|e| SetupError::Client(e.to_string()))
}

/// Bytes of a failed answer kept for the log (receivers explain a 400 there).
const ANSWER_SNIPPET_BYTES: usize = 120;

/// What the log and the dead letter say of an answer: its status and size,
/// and for a failure the start of the body on one line, without control
/// characters and without any of the receiver's secrets (a receiver that
/// echoes the request would otherwise put its headers in the log).
fn answer_detail(status: reqwest::StatusCode, body: &[u8], r: &Receiver) -> String {
    let head = format!("HTTP {status}, {} bytes", body.len());
    if status.is_success() || body.is_empty() {
        return head;
    }
    let cut = body.len().min(ANSWER_SNIPPET_BYTES);
    let text: String = String::from_utf8_lossy(&body[..cut])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = crate::config::secret::redact(&text, r.secret_values().iter().map(String::as_str));
    format!(
        "{head}: {}{}",
        text.trim(),
        if cut < body.len() { "…" } else { "" }
    )
}

/// Most of a receiver's answer read; the rest is discarded with the connection.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Up to `limit` bytes of the answer's body; errors end the read.
async fn read_bounded(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - out.len());
                out.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// The `log` kind: one line per notification.
fn log_line(r: &Receiver, item: &Item) {
    let n = &item.notification;
    let inc = &n.incident;
    tracing::info!(
        receiver = %r.name,
        event = n.kind.event_type(),
        incident = %inc.id,
        rule = %inc.rule,
        severity = %inc.severity,
        source = %inc.observation.group.source,
        group = %inc.observation.group.group,
        "{}",
        item.rendered.summary
    );
}

/// A request that got no answer: retried.
fn send_failed(e: reqwest::Error) -> Attempt {
    let reason = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "network"
    };
    Attempt::Retry {
        reason,
        retry_after: None,
        // Never print the URL: Slack's path and many query strings are credentials.
        detail: error_chain(&e.without_url()),
    }
}

/// What an HTTP answer means for the delivery: 2xx delivered; 429 and 5xx
/// retried (honouring Retry-After); anything else given up.
fn answered(status: reqwest::StatusCode, retry_after: Option<Duration>, detail: String) -> Attempt {
    if status.is_success() {
        Attempt::Delivered
    } else if status.as_u16() == 429 {
        Attempt::Retry {
            reason: "http_429",
            retry_after,
            detail,
        }
    } else if status.is_server_error() {
        Attempt::Retry {
            reason: "http_5xx",
            retry_after,
            detail,
        }
    } else if status.is_client_error() {
        Attempt::GiveUp {
            reason: "http_4xx",
            detail,
        }
    } else {
        Attempt::GiveUp {
            reason: "unexpected_status",
            detail,
        }
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests_support::notification;

    fn item(kind: EventKind, incident: u128) -> Item {
        let mut n = notification();
        n.kind = kind;
        let mut inc = (*n.incident).clone();
        inc.id = uuid::Uuid::from_u128(incident);
        n.incident = Arc::new(inc);
        Item {
            notification: Arc::new(n),
            rendered: Rendered {
                body: Vec::new().into(),
                summary: String::new(),
            },
            attempts: 0,
            first_attempt: None,
        }
    }

    fn names(items: &VecDeque<Item>) -> Vec<String> {
        items.iter().map(label).collect()
    }

    fn label(i: &Item) -> String {
        let k = match i.notification.kind {
            EventKind::Fired => "F",
            EventKind::Repeated => "R",
            EventKind::Resolved => "C",
        };
        format!("{k}{}", i.notification.incident.id.as_u128())
    }

    #[test]
    fn a_full_queue_drops_repeats_then_unannounced_fires_never_a_resolve() {
        use EventKind::{Fired as F, Repeated as R, Resolved as C};
        // (case, queue (the first in flight), incoming, capacity, queue after,
        //  dropped)
        type Case = (
            u32,
            Vec<(EventKind, u128)>,
            (EventKind, u128),
            usize,
            &'static [&'static str],
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            // case 1: room: appended.
            (1, vec![(F, 1)], (C, 1), 2, &["F1", "C1"], &[]),
            // case 2: full: the oldest repeat goes, not the head in flight.
            (
                2,
                vec![(R, 1), (R, 2), (F, 3)],
                (C, 3),
                2,
                &["R1", "F3", "C3"],
                &["R2"],
            ),
            // case 3: full of state changes: an incoming repeat goes.
            (
                3,
                vec![(F, 1), (F, 2), (F, 3)],
                (R, 4),
                2,
                &["F1", "F2", "F3"],
                &["R4"],
            ),
            // case 4: the oldest fire not in flight goes, with its queued resolve.
            (
                4,
                vec![(F, 1), (F, 2), (C, 2)],
                (F, 3),
                2,
                &["F1", "F3"],
                &["F2", "C2"],
            ),
            // case 5: only resolves queued: a resolve is never dropped; the
            // queue grows past its capacity.
            (
                5,
                vec![(F, 1), (C, 2), (C, 3)],
                (C, 4),
                2,
                &["F1", "C2", "C3", "C4"],
                &[],
            ),
            // case 6: the incoming resolve of the fire that goes, goes too
            // (the receiver never heard of that incident).
            (
                6,
                vec![(C, 9), (F, 2), (C, 5)],
                (C, 2),
                2,
                &["C9", "C5"],
                &["F2", "C2"],
            ),
        ];
        for (case, queue, incoming, capacity, after, dropped) in cases {
            let mut s = QueueState {
                items: queue.iter().map(|(k, i)| item(*k, *i)).collect(),
                in_flight: true,
                closed: false,
            };
            let out = admit(&mut s, item(incoming.0, incoming.1), capacity);
            assert_eq!(names(&s.items), after, "case {case}");
            let out: Vec<String> = out.iter().map(label).collect();
            assert_eq!(out, dropped, "case {case}");
        }
    }

    #[test]
    fn retries_end_by_attempts_or_age_and_a_resolve_gets_a_day() {
        let (state, _) = StateStore::open(None);
        let w = Worker {
            metrics: Metrics::new(&Registry::new(), &[]).unwrap_or_else(|e| panic!("{e}")),
            client: reqwest::Client::new(),
            own_clients: HashMap::new(),
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
            state,
        };
        let min = Duration::from_secs(60);
        assert!(!w.exhausted(EventKind::Fired, 4, min));
        assert!(w.exhausted(EventKind::Fired, 5, min));
        assert!(w.exhausted(EventKind::Repeated, 1, min * 60));
        assert!(!w.exhausted(EventKind::Resolved, 1_000, min * 60 * 23));
        assert!(w.exhausted(EventKind::Resolved, 1, min * 60 * 24));
    }
}

//! Delivery: one bounded FIFO queue and one worker per receiver. The worker
//! retries the head of its queue (network errors, 5xx, 429 with Retry-After) with
//! exponential backoff and jitter, so a receiver's notifications arrive in order and
//! a resolve never overtakes its fire. Taking a notification off the channel never
//! waits on the network; a full queue drops a repeat (the oldest queued, else the incoming one),
//! else its oldest notification.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use rand::Rng;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::payload::RenderContext;
use super::receivers::{Receiver, Rendered};
use super::{AlertSettings, EventKind, Notification};
use crate::model::Millis;

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
            }
        }
        Ok(Metrics {
            sent,
            failed,
            retries,
            dropped,
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
    ctx: RenderContext,
    backoff: Duration,
    backoff_max: Duration,
    flush_timeout: Duration,
}

/// One queued notification with its body rendered for this receiver.
#[derive(Debug)]
struct Item {
    notification: Arc<Notification>,
    rendered: Rendered,
}

#[derive(Debug, Default)]
struct QueueState {
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
    /// registry (gathered at scrape time, so delivery counters are never a poll old).
    pub fn new(settings: &AlertSettings) -> Result<Notifier, SetupError> {
        let registry = Registry::new();
        let receivers = settings.receivers.clone();
        let metrics = Metrics::new(&registry, &receivers)?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("lagwatch/", env!("CARGO_PKG_VERSION")))
            // A webhook that redirects is misconfigured; say so instead of following.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(Notifier {
            receivers,
            metrics,
            registry,
            client,
            ctx: RenderContext {
                dashboard_url: settings.dashboard_url.clone(),
            },
            backoff: settings.retry_backoff,
            backoff_max: settings.retry_backoff_max,
            flush_timeout: settings.flush_timeout,
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
        let worker = Arc::new(Worker {
            metrics: self.metrics.clone(),
            client: self.client.clone(),
            backoff: self.backoff,
            backoff_max: self.backoff_max,
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
            for q in &queues {
                let left = depth(&q.lock());
                if left > 0 {
                    self.metrics
                        .dropped
                        .with_label_values(&[&q.receiver.name])
                        .inc_by(left as u64);
                    tracing::warn!(
                        receiver = %q.receiver.name,
                        dropped = left,
                        "notifications still undelivered at the shutdown deadline were dropped"
                    );
                }
            }
        }
        tracing::debug!("notifier stopped");
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
                let mut evicted = None;
                let mut incoming = Some(Item {
                    notification: n.clone(),
                    rendered,
                });
                if s.items.len() >= q.receiver.queue_capacity {
                    // Repeats carry no state change: they go first, the oldest queued
                    // one, else the incoming one. Else the oldest notification goes.
                    let oldest_repeat = s
                        .items
                        .iter()
                        .position(|i| i.notification.kind == EventKind::Repeated);
                    evicted = match oldest_repeat {
                        Some(at) => s.items.remove(at),
                        None if n.kind == EventKind::Repeated => incoming.take(),
                        None => s.items.pop_front(),
                    };
                }
                if let Some(item) = incoming {
                    s.items.push_back(item);
                }
                self.metrics
                    .depth
                    .with_label_values(&[&q.receiver.name])
                    .set(depth(&s) as i64);
                evicted
            };
            q.wake.notify_one();
            if let Some(e) = evicted {
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

fn depth(s: &QueueState) -> usize {
    s.items.len() + usize::from(s.in_flight)
}

/// What every receiver's worker shares.
#[derive(Debug)]
struct Worker {
    metrics: Metrics,
    client: reqwest::Client,
    backoff: Duration,
    backoff_max: Duration,
}

impl Worker {
    /// Delivers the queue's head until it is accepted or refused, then the next;
    /// ends once the queue is closed and empty.
    async fn run(self: Arc<Self>, q: Arc<Queue>) {
        let name = q.receiver.name.clone();
        loop {
            let next = {
                let mut s = q.lock();
                match s.items.pop_front() {
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
            self.deliver(&q.receiver, &item).await;
            let mut s = q.lock();
            s.in_flight = false;
            self.metrics
                .depth
                .with_label_values(&[&name])
                .set(depth(&s) as i64);
        }
    }

    async fn deliver(&self, r: &Receiver, item: &Item) {
        let n = &item.notification;
        let mut failures: u32 = 0;
        loop {
            if failures > 0 {
                self.metrics.retries.with_label_values(&[&r.name]).inc();
            }
            match self.attempt(r, item).await {
                Attempt::Delivered => {
                    self.metrics.sent.with_label_values(&[&r.name]).inc();
                    tracing::debug!(
                        receiver = %r.name,
                        event = n.kind.event_type(),
                        incident = %n.incident.id,
                        attempts = failures + 1,
                        "notification delivered"
                    );
                    return;
                }
                Attempt::GiveUp { reason, detail } => {
                    self.failed(r, n, reason, &detail, None);
                    return;
                }
                Attempt::Retry {
                    reason,
                    retry_after,
                    detail,
                } => {
                    let wait = self.backoff_for(failures, retry_after);
                    self.failed(r, n, reason, &detail, Some(wait));
                    failures = failures.saturating_add(1);
                    tokio::time::sleep(wait).await;
                }
            }
        }
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
            .client
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
        // Read (a bounded amount of) the answer so the connection can be reused, and
        // keep a little of it for the log: receivers explain a 400 in the body.
        let body = tokio::time::timeout(r.timeout, resp.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let snippet: String = String::from_utf8_lossy(&body[..body.len().min(200)]).into();
        answered(status, retry_after, format!("HTTP {status}: {snippet}"))
    }
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

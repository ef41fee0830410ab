//! Source tasks: the only code that talks to brokers. One task per configured
//! source polls on its own interval (polls of one source never overlap; a slow
//! source never delays another) and sends one [`PollBatch`] per poll.

pub mod advisories;
pub mod exact;
pub mod jetstream;
pub mod kafka;
pub mod names;

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::config::{Settings, SourceKind, SourceSettings, Timing};
use crate::model::{ErrorKind, Millis, PollBatch, PollData, PollFailure, SourceId, System};

/// Something that can poll one source once.
pub trait Poller: Send + 'static {
    fn poll(&mut self) -> impl Future<Output = Result<PollData, PollFailure>> + Send;
}

/// First wait before restarting a source task that panicked; doubles up to
/// [`RESTART_BACKOFF_MAX`], and starts again after a task ran this long.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(60);
const RESTART_BACKOFF_RESET: Duration = Duration::from_secs(300);

/// The future of one source's supervised task: the poll loop runs in a task of
/// its own, and when it panics it is counted, logged, reported to the engine
/// as a failed poll (its groups turn stale, not frozen "up"), and started
/// again with a fresh poller after a backoff. It returns when `cancel` fires
/// or the engine is gone.
pub fn spawn(
    settings: &Settings,
    source: &SourceSettings,
    exact: tokio::sync::watch::Receiver<crate::model::ExactRequests>,
    tx: mpsc::Sender<PollBatch>,
    cancel: CancellationToken,
    health: std::sync::Arc<crate::health::Health>,
) -> impl Future<Output = ()> + Send + 'static {
    let id = source.id.clone();
    let system = source.system();
    let shard = settings.shard;
    let dead_letters = std::sync::Arc::new(settings.analysis.dead_letters.clone());
    let source = source.clone();
    async move {
        let mut backoff = RESTART_BACKOFF;
        loop {
            let started = Instant::now();
            let task = tokio::spawn(run_source(
                source.clone(),
                shard,
                dead_letters.clone(),
                exact.clone(),
                tx.clone(),
                cancel.clone(),
            ));
            let panic = match task.await {
                Ok(()) => break,
                Err(e) if e.is_panic() => panic_message(e.into_panic()),
                Err(_) => break,
            };
            if started.elapsed() >= RESTART_BACKOFF_RESET {
                backoff = RESTART_BACKOFF;
            }
            health.restarted(id.as_str());
            tracing::error!(
                source = %id,
                panic = %panic,
                restart_in = %humantime::format_duration(backoff),
                "source task panicked; restarting it"
            );
            let failed = PollBatch {
                source: id.clone(),
                system,
                at: Millis::now(),
                duration: started.elapsed(),
                result: Err(PollFailure {
                    kind: ErrorKind::Other,
                    message: format!("the source task panicked ({panic}); restarting it"),
                }),
            };
            if tx.send(failed).await.is_err() {
                break;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
        }
    }
}

/// One life of a source's poll loop, with a new poller.
async fn run_source(
    source: SourceSettings,
    shard: crate::config::Shard,
    dead_letters: std::sync::Arc<crate::analysis::dead_letters::DeadLetterSettings>,
    exact: tokio::sync::watch::Receiver<crate::model::ExactRequests>,
    tx: mpsc::Sender<PollBatch>,
    cancel: CancellationToken,
) {
    let (id, timing) = (source.id.clone(), source.timing);
    match source.kind {
        SourceKind::Kafka(k) => {
            let poller = kafka::KafkaPoller::new(id.clone(), k, timing)
                .with_shard(shard)
                .with_dead_letters(dead_letters)
                .with_exact_requests(exact);
            poll_loop(poller, id, System::Kafka, timing, tx, cancel).await
        }
        SourceKind::Jetstream(j) => {
            let poller = jetstream::JetstreamPoller::new(id.clone(), j, timing)
                .with_shard(shard)
                .with_dead_letters(dead_letters)
                .with_exact_requests(exact);
            poll_loop(poller, id, System::Jetstream, timing, tx, cancel).await
        }
    }
}

/// The message a panic was raised with.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The deadline of one whole poll: a poll may use its interval plus one request
/// timeout; every broker call is cut to end by then.
pub fn poll_deadline(t: Timing) -> Duration {
    t.poll_interval + t.request_timeout
}

/// How long past its deadline a poll is abandoned and counted as a timeout:
/// room for a blocking call cut to the deadline to return (its result queue is
/// waited on for one second more), so the poll ends itself first.
const ABANDON_GRACE: Duration = Duration::from_secs(2);

/// Polls every `timing.poll_interval` until cancelled. A poll that overruns
/// delays the next tick instead of overlapping it.
pub async fn poll_loop<P: Poller>(
    mut poller: P,
    id: SourceId,
    system: System,
    timing: Timing,
    tx: mpsc::Sender<PollBatch>,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(timing.poll_interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let at = Millis::now();
        let started = Instant::now();
        crate::fault::before_poll(id.as_str());
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            r = tokio::time::timeout(poll_deadline(timing) + ABANDON_GRACE, poller.poll()) => match r {
                Ok(r) => r,
                Err(_) => Err(PollFailure {
                    kind: ErrorKind::Timeout,
                    message: format!(
                        "poll did not finish within {}",
                        humantime::format_duration(poll_deadline(timing))
                    ),
                }),
            },
        };
        let batch = PollBatch {
            source: id.clone(),
            system,
            at,
            duration: started.elapsed(),
            result,
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            r = tx.send(batch) => if r.is_err() {
                tracing::error!(source = %id, "the engine is gone; this source stops polling");
                break;
            },
        }
    }
    tracing::debug!(source = %id, "source task stopped");
}

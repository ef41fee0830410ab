//! Source tasks: the only code that talks to brokers. One task per configured
//! source polls on its own interval (polls of one source never overlap; a slow
//! source never delays another) and sends one [`PollBatch`] per poll.

pub mod exact;
pub mod jetstream;
pub mod kafka;

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

/// The future of one source's task. It returns when `cancel` fires.
pub fn spawn(
    settings: &Settings,
    source: &SourceSettings,
    exact: tokio::sync::watch::Receiver<crate::model::ExactRequests>,
    tx: mpsc::Sender<PollBatch>,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let id = source.id.clone();
    let timing = source.timing;
    let shard = settings.shard;
    let kind = source.kind.clone();
    async move {
        match kind {
            SourceKind::Kafka(k) => {
                let poller = kafka::KafkaPoller::new(id.clone(), k, timing)
                    .with_shard(shard)
                    .with_exact_requests(exact);
                poll_loop(poller, id, System::Kafka, timing, tx, cancel).await
            }
            SourceKind::Jetstream(j) => {
                let poller = jetstream::JetstreamPoller::new(id.clone(), j, timing)
                    .with_shard(shard)
                    .with_exact_requests(exact);
                poll_loop(poller, id, System::Jetstream, timing, tx, cancel).await
            }
        }
    }
}

/// The deadline of one whole poll: a poll may use its interval plus one request
/// timeout; past that it is abandoned and counted as a timeout.
pub fn poll_deadline(t: Timing) -> Duration {
    t.poll_interval + t.request_timeout
}

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
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            r = tokio::time::timeout(poll_deadline(timing), poller.poll()) => match r {
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
            r = tx.send(batch) => if r.is_err() { break },
        }
    }
    tracing::debug!(source = %id, "source task stopped");
}

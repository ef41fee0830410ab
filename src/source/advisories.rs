//! JetStream dead letters: the server's MAX_DELIVERIES advisory (it gave up on
//! a message after `max_deliver` deliveries) and MSG_TERMINATED (a client
//! terminated one), counted per stream, consumer and reason by a subscription
//! of the JetStream source's connection.
//!
//! Advisories are plain core-NATS messages: one published while lagwatch is
//! not subscribed (not started yet, disconnected) is never seen. Each
//! disconnect is counted as a gap, and the counts say they are lower bounds
//! from then on (see `AdvisoryState`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde::Deserialize;

use crate::model::{AdvisoryState, DeadLetterReading, DeadLetterReason, Millis, SourceId};

pub const MAX_DELIVERIES_SUBJECT: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>";
pub const TERMINATED_SUBJECT: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>";

/// An advisory larger than this is not one the server sends: ignored.
const MAX_ADVISORY_BYTES: usize = 16 * 1024;
/// Stream and consumer names longer than this are not the server's: ignored.
const MAX_NAME_BYTES: usize = 256;

/// What the subscription has counted; shared with the connection's event
/// callback, which counts the gaps.
#[derive(Debug, Default)]
pub struct Counts {
    by: HashMap<(Arc<str>, Arc<str>, DeadLetterReason), Entry>,
    /// When the first subscription started.
    since: Option<Millis>,
    gaps: u64,
    /// The server refused the subscription (a permissions violation).
    denied: Option<String>,
    /// Advisories not counted: for consumers past `max_tracked`, or malformed.
    dropped: u64,
}

#[derive(Debug)]
struct Entry {
    count: u64,
    last: String,
    at: Millis,
}

/// Which (stream, consumer) this process counts: its filters and shard.
pub type Keep = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// A refused subscription is tried again this often (permissions fixed).
const DENIED_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// The counts and their subscription task.
#[derive(Debug, Default)]
pub struct Advisories {
    counts: Arc<Mutex<Counts>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// When the subscription was last made.
    subscribed_at: Option<std::time::Instant>,
}

impl Drop for Advisories {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl Advisories {
    /// The shared counts, for the connection's event callback.
    pub fn counts(&self) -> Arc<Mutex<Counts>> {
        self.counts.clone()
    }

    /// Subscribes, unless a subscription is running. A subscription that
    /// ended (the client closed it), or that the server refused a while ago
    /// (its permissions may be fixed), is made again, counted as a gap.
    /// Only advisories `keep` allows are counted.
    pub async fn ensure(
        &mut self,
        client: &async_nats::Client,
        id: &SourceId,
        max: usize,
        keep: Keep,
    ) {
        let running = self.task.as_ref().is_some_and(|t| !t.is_finished());
        let retry_denied = self.counts.lock().is_ok_and(|c| c.denied.is_some())
            && self
                .subscribed_at
                .is_none_or(|t| t.elapsed() >= DENIED_RETRY);
        if running && !retry_denied {
            return;
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let subs = futures::future::try_join(
            client.subscribe(MAX_DELIVERIES_SUBJECT),
            client.subscribe(TERMINATED_SUBJECT),
        )
        .await;
        self.subscribed_at = Some(std::time::Instant::now());
        let Ok(mut c) = self.counts.lock() else {
            return;
        };
        // Whatever was published since the last subscription ended is lost.
        if c.since.is_some() {
            c.gaps += 1;
        }
        c.denied = None;
        let (a, b) = match subs {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(source = %id, error = %e, "cannot subscribe to JetStream advisories; dead letters are not counted");
                return;
            }
        };
        c.since.get_or_insert_with(Millis::now);
        drop(c);
        let counts = self.counts.clone();
        let id = id.clone();
        self.task = Some(tokio::spawn(async move {
            let mut both = futures::stream::select(a, b);
            while let Some(m) = both.next().await {
                let Ok(mut c) = counts.lock() else { return };
                c.record(&m.subject, &m.payload, max, &keep, &id);
            }
        }));
    }

    /// The client dropped messages it could not keep up with (slow
    /// consumer): advisories may be among them.
    pub fn slow(counts: &Mutex<Counts>) {
        Advisories::disconnected(counts);
    }

    /// The connection dropped: advisories published until it is back are lost.
    pub fn disconnected(counts: &Mutex<Counts>) {
        if let Ok(mut c) = counts.lock() {
            if c.since.is_some() {
                c.gaps += 1;
            }
        }
    }

    /// A server error on the connection; a refused subscription to the
    /// advisories is remembered (and said at every poll).
    pub fn server_error(counts: &Mutex<Counts>, message: &str) {
        if message.contains("Permissions Violation") && message.contains("$JS.EVENT.ADVISORY") {
            if let Ok(mut c) = counts.lock() {
                c.denied = Some(message.to_string());
            }
        }
    }

    /// The counts as readings, a zero for every reason of every consumer in
    /// `consumers` with none yet (so a counter's first dead letter is an
    /// increase, as Prometheus' `increase()` needs), and the subscription's
    /// state. Entries quiet for longer than `forget_after` are forgotten (a
    /// count that comes back starts again; the engine adds it whole).
    pub fn readings(
        &self,
        connected: bool,
        consumers: &[(Arc<str>, Arc<str>)],
        forget_after_ms: i64,
        id: &SourceId,
    ) -> (Vec<DeadLetterReading>, AdvisoryState) {
        let running = self.task.as_ref().is_some_and(|t| !t.is_finished());
        let Ok(mut c) = self.counts.lock() else {
            return (Vec::new(), AdvisoryState::default());
        };
        if let Some(why) = &c.denied {
            tracing::warn!(source = %id, error = %why, "JetStream advisories refused: dead letters are not counted; allow lagwatch's user to subscribe to $JS.EVENT.ADVISORY.CONSUMER.>");
        }
        let now = Millis::now();
        c.by.retain(|_, e| now.0.saturating_sub(e.at.0) < forget_after_ms);
        let reading =
            |stream: &Arc<str>, consumer: &Arc<str>, reason, total, last| DeadLetterReading {
                reason,
                topic: stream.clone(),
                dead_letter_topic: None,
                group: Some(consumer.clone()),
                total,
                stored: None,
                last,
                owned: true,
                sees_all_groups: true,
                partitions: 0,
            };
        let mut readings: Vec<DeadLetterReading> =
            c.by.iter()
                .map(|((stream, consumer, reason), e)| {
                    reading(stream, consumer, *reason, e.count, Some(e.last.clone()))
                })
                .collect();
        if c.since.is_some() {
            for (stream, consumer) in consumers {
                for reason in [
                    DeadLetterReason::MaxDeliveries,
                    DeadLetterReason::Terminated,
                ] {
                    let key = (stream.clone(), consumer.clone(), reason);
                    if !c.by.contains_key(&key) {
                        readings.push(reading(stream, consumer, reason, 0, None));
                    }
                }
            }
        }
        let state = AdvisoryState {
            subscribed: running && connected && c.denied.is_none(),
            since: c.since,
            gaps: c.gaps,
        };
        (readings, state)
    }
}

/// The fields of an advisory lagwatch reads; the rest is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Wire {
    stream: String,
    consumer: String,
    stream_seq: u64,
    deliveries: u64,
}

impl Counts {
    fn record(&mut self, subject: &str, payload: &[u8], max: usize, keep: &Keep, id: &SourceId) {
        let reason = if subject.contains(".MAX_DELIVERIES.") {
            DeadLetterReason::MaxDeliveries
        } else {
            DeadLetterReason::Terminated
        };
        let wire: Option<Wire> = (payload.len() <= MAX_ADVISORY_BYTES)
            .then(|| serde_json::from_slice(payload).ok())
            .flatten();
        let Some(w) = wire.filter(|w| {
            !w.stream.is_empty()
                && !w.consumer.is_empty()
                && w.stream.len() <= MAX_NAME_BYTES
                && w.consumer.len() <= MAX_NAME_BYTES
        }) else {
            self.dropped += 1;
            tracing::debug!(source = %id, subject, "advisory skipped: not the shape the server sends");
            return;
        };
        if !keep(&w.stream, &w.consumer) {
            // Another shard's, or filtered out: not ours to count.
            return;
        }
        let key = (
            Arc::<str>::from(w.stream.as_str()),
            Arc::<str>::from(w.consumer.as_str()),
            reason,
        );
        let at = Millis::now();
        let last = match reason {
            DeadLetterReason::MaxDeliveries => format!(
                "stream sequence {} given up on after {} deliveries",
                w.stream_seq, w.deliveries
            ),
            _ => format!(
                "stream sequence {} terminated by the client after {} deliveries",
                w.stream_seq, w.deliveries
            ),
        };
        if let Some(e) = self.by.get_mut(&key) {
            e.count += 1;
            e.last = last;
            e.at = at;
        } else if self.by.len() < max {
            self.by.insert(key, Entry { count: 1, last, at });
        } else {
            // A consumer of ours left out: its count is a lower bound now.
            self.dropped += 1;
            self.gaps += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(source = %id, max_tracked = max, dropped = self.dropped, "advisories of more consumers than dead_letters.max_tracked; the rest are not counted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisories_are_counted_per_stream_consumer_and_reason_and_bounded() {
        let id = SourceId::new("n");
        let mut c = Counts::default();
        let keep: Keep = Arc::new(|_: &str, consumer: &str| consumer != "filtered-out");
        let max = br#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"ORDERS","consumer":"billing","stream_seq":7,"deliveries":3}"#;
        let term = br#"{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"ORDERS","consumer":"billing","stream_seq":9,"deliveries":2}"#;
        c.record(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.billing",
            max,
            2,
            &keep,
            &id,
        );
        c.record(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.billing",
            max,
            2,
            &keep,
            &id,
        );
        c.record(
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.ORDERS.billing",
            term,
            2,
            &keep,
            &id,
        );
        // A third consumer is past the limit of 2; garbage is skipped.
        let other = br#"{"stream":"ORDERS","consumer":"shipping","stream_seq":1,"deliveries":3}"#;
        c.record(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.shipping",
            other,
            2,
            &keep,
            &id,
        );
        c.record(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.x.y",
            b"not json",
            2,
            &keep,
            &id,
        );
        c.record(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.x.y",
            &[b' '; 20_000],
            2,
            &keep,
            &id,
        );
        // Filtered out (another shard's): not counted, not a gap.
        let other =
            br#"{"stream":"ORDERS","consumer":"filtered-out","stream_seq":1,"deliveries":3}"#;
        c.record(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.filtered-out",
            other,
            2,
            &keep,
            &id,
        );
        let key = |r| (Arc::from("ORDERS"), Arc::from("billing"), r);
        assert_eq!(c.by[&key(DeadLetterReason::MaxDeliveries)].count, 2);
        assert_eq!(
            c.by[&key(DeadLetterReason::MaxDeliveries)].last,
            "stream sequence 7 given up on after 3 deliveries"
        );
        assert_eq!(c.by[&key(DeadLetterReason::Terminated)].count, 1);
        assert_eq!(c.by.len(), 2);
        assert_eq!(c.dropped, 3);
        // shipping was ours and left out: a gap.
        assert_eq!(c.gaps, 1);
    }
}

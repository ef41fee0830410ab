//! Step 7, Fetch: the broker's timestamp of the oldest unconsumed message of
//! the partitions the engine asked about (time lag that interpolation cannot
//! answer within `analysis.exact_time_lag.max_error`). One record per
//! (partition, offset), read with a consumer of its own that never joins a
//! group and never commits; each (partition, offset) is fetched once and kept.
//!
//! The timestamp is the record's (CreateTime, set by the producer, unless the
//! topic uses LogAppendTime): as good as the producers' clocks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::context::LagwatchContext;
use crate::model::Millis;
use crate::source::exact;

/// A message of one partition: (topic, partition, offset).
pub(super) type At = (Arc<str>, i32, i64);

/// The consumer that reads single records.
pub(super) type Fetcher = BaseConsumer<LagwatchContext>;

/// Timestamps already read, and whether reading is allowed now. Each poll
/// keeps only the entries that are still some lagging partition's oldest
/// unconsumed message ([`Cache::keep_only`]), so it holds at most one entry per
/// lagging (partition, position); [`CACHE_MAX`] bounds it besides.
#[derive(Debug, Default)]
pub(super) struct Cache {
    read: crate::model::FastMap<At, Millis>,
    pub backoff: exact::Backoff,
}

/// Entries kept at most: 100,000 is about 8 MB.
const CACHE_MAX: usize = 100_000;

/// Partitions a fetch round asks for offsets of at most: a partition asked at
/// several offsets (several groups behind on it) takes one round per offset.
const MAX_ROUNDS: usize = 3;

impl Cache {
    pub fn get(&self, at: &At) -> Option<Millis> {
        self.read.get(at).copied()
    }

    fn insert(&mut self, at: At, written: Millis) {
        if self.read.len() >= CACHE_MAX {
            self.read.clear();
        }
        self.read.insert(at, written);
    }

    /// Forgets every entry `live` does not hold: offsets consumed past, and
    /// partitions caught up or gone.
    pub fn keep_only(&mut self, live: &std::collections::HashSet<At>) {
        self.read.retain(|at, _| live.contains(at));
    }

    pub fn is_empty(&self) -> bool {
        self.read.is_empty()
    }
}

/// What one fetch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Fetched {
    /// Records read.
    pub read: usize,
    /// Reading failed: the broker refused it (authorization), or a record
    /// could not be read. The rest of the poll goes on; the time lag of those
    /// partitions stays interpolated.
    pub failure: Option<Failure>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// Not allowed to read the topic: will repeat until the ACLs change.
    Refused(String),
    /// Anything else (logged at debug level).
    Other(String),
}

/// Reads the timestamps of `wanted` not in `cache` into it, within `timeout`
/// (at most [`exact::READ_TIMEOUT`]).
pub(super) fn fetch(
    fetcher: &Fetcher,
    wanted: &[At],
    cache: &mut Cache,
    timeout: Duration,
) -> Fetched {
    let deadline = Instant::now() + timeout.min(exact::READ_TIMEOUT);
    // Per partition, the offsets still to read, lowest first.
    let mut todo: BTreeMap<(Arc<str>, i32), Vec<i64>> = BTreeMap::new();
    for at in wanted.iter().filter(|at| cache.get(at).is_none()) {
        todo.entry((at.0.clone(), at.1)).or_default().push(at.2);
    }
    for offsets in todo.values_mut() {
        offsets.sort_unstable();
        offsets.dedup();
    }
    let mut out = Fetched::default();
    for round in 0..MAX_ROUNDS {
        let batch: Vec<At> = todo
            .iter()
            .filter_map(|((t, p), offs)| offs.get(round).map(|o| (t.clone(), *p, *o)))
            .collect();
        if batch.is_empty() || Instant::now() >= deadline {
            break;
        }
        let (read, failure) = fetch_round(fetcher, &batch, cache, deadline);
        out.read += read;
        if let Some(f) = failure {
            let refused = matches!(f, Failure::Refused(_));
            out.failure = Some(f);
            if refused {
                break;
            }
        }
    }
    out
}

/// librdkafka's answer to a fetch the credentials do not allow.
fn is_refusal(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        )
    )
}

/// One record at each (partition, offset) of `batch` (one offset per partition).
fn fetch_round(
    fetcher: &Fetcher,
    batch: &[At],
    cache: &mut Cache,
    deadline: Instant,
) -> (usize, Option<Failure>) {
    let mut tpl = TopicPartitionList::with_capacity(batch.len());
    for (t, p, o) in batch {
        if let Err(e) = tpl.add_partition_offset(t, *p, Offset::Offset(*o)) {
            tracing::debug!(topic = %t, partition = p, error = %e, "cannot ask for a record");
        }
    }
    if let Err(e) = fetcher.assign(&tpl) {
        tracing::debug!(error = %e, "cannot assign partitions to read record timestamps");
        return (0, Some(Failure::Other(e.to_string())));
    }
    let mut failure = None;
    let wanted: HashMap<(&str, i32), i64> =
        batch.iter().map(|(t, p, o)| ((&**t, *p), *o)).collect();
    let mut done: std::collections::HashSet<(String, i32)> = std::collections::HashSet::new();
    while done.len() < batch.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let m = match fetcher.poll(left.min(Duration::from_millis(100))) {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "reading a record for its timestamp failed");
                if is_refusal(&e) {
                    failure = Some(Failure::Refused(e.to_string()));
                    break;
                }
                failure = Some(Failure::Other(e.to_string()));
                continue;
            }
            None => continue,
        };
        let Some(&asked) = wanted.get(&(m.topic(), m.partition())) else {
            continue;
        };
        // The first record at or after the offset asked: when that offset no
        // longer exists (compacted, deleted), this is the oldest unconsumed
        // message that does.
        if m.offset() < asked || done.contains(&(m.topic().to_string(), m.partition())) {
            continue;
        }
        if let Some(ms) = m.timestamp().to_millis() {
            let topic = batch
                .iter()
                .find(|(t, p, _)| &**t == m.topic() && *p == m.partition())
                .map(|(t, _, _)| t.clone());
            if let Some(topic) = topic {
                cache.insert((topic, m.partition(), asked), Millis(ms));
            }
        }
        done.insert((m.topic().to_string(), m.partition()));
    }
    if let Err(e) = fetcher.unassign() {
        tracing::debug!(error = %e, "cannot unassign after reading record timestamps");
    }
    (done.len(), failure)
}

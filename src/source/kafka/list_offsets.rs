//! Step 5, ListOffsets: latest and earliest offsets of every measured
//! partition, two calls in flight together, split per leader by librdkafka.

use std::collections::HashMap;
use std::time::Instant;

use super::admin::{AdminError, OffsetSpec};
use super::lag::{self, Tp};
use super::metadata::Topics;
use super::offset_fetch::Readings;
use super::poll::{count, Partial, Poll};
use crate::model::{ErrorKind, PollFailure};

pub(super) struct Offsets {
    pub latest: HashMap<Tp, i64>,
    pub earliest: HashMap<Tp, i64>,
    /// The partitions asked about.
    pub measured: Vec<Tp>,
}

impl Poll<'_> {
    pub fn list_offsets(
        &mut self,
        readings: &Readings,
        topics: &Topics,
        dead_letters: &[super::dead_letters::Found],
    ) -> Result<Offsets, PollFailure> {
        let mut wanted = lag::partitions_to_list(readings, topics);
        // Dead-letter topics no group consumes are read too (their heads).
        let known: std::collections::HashSet<Tp> = wanted.iter().cloned().collect();
        let extra: Vec<Tp> = super::dead_letters::partitions(dead_letters)
            .filter(|tp| !known.contains(tp))
            .collect();
        wanted.extend(extra);
        self.trace.partitions = wanted.len();
        let started = Instant::now();
        let timeout = self.plan.step("ListOffsets")?;
        // Step 5a: one request per leader and 2,500 partitions, where it can.
        if let Some((latest, earliest)) = self.batched_offsets(&wanted, topics, timeout) {
            return Ok(Offsets {
                latest,
                earliest,
                measured: wanted,
            });
        }
        let list: Vec<(String, i32)> = wanted.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        let mut results = self
            .admin
            .list_offsets(
                &list,
                &[OffsetSpec::Latest, OffsetSpec::Earliest],
                self.plan.isolation,
            )
            .into_iter();
        self.trace.phase("list_offsets", started, 2);
        let latest = match results.next() {
            Some(Ok(m)) => intern(m, topics, &mut self.partial),
            Some(Err(e)) => {
                return Err(self.fail(ErrorKind::ListOffsets, "cannot read latest offsets", &e))
            }
            None => HashMap::new(),
        };
        let earliest = match results.next() {
            Some(Ok(m)) => intern(m, topics, &mut self.partial),
            Some(Err(e)) => {
                self.count(ErrorKind::ListOffsets, 1);
                tracing::debug!(source = %self.plan.source, error = %e, "cannot read earliest offsets");
                HashMap::new()
            }
            None => HashMap::new(),
        };
        Ok(Offsets {
            latest,
            earliest,
            measured: wanted,
        })
    }
}

/// The answers keyed by the poll's shared topic names; a partition whose answer
/// is an error or negative is counted and left out.
fn intern(
    m: HashMap<(String, i32), Result<i64, AdminError>>,
    topics: &Topics,
    partial: &mut Partial,
) -> HashMap<Tp, i64> {
    let mut out = HashMap::with_capacity(m.len());
    for ((t, p), v) in m {
        let Some((topic, _)) = topics.get_key_value(t.as_str()) else {
            continue;
        };
        match v {
            Ok(o) if o >= 0 => {
                out.insert((topic.clone(), p), o);
            }
            _ => count(partial, ErrorKind::ListOffsets, 1),
        }
    }
    out
}

impl Poll<'_> {
    /// Step 5a: latest and earliest offsets of `wanted` in batched
    /// ListOffsets v6 requests; None when not tried or failed (step 5 then
    /// reads them all). A partition whose answer is an error is counted and
    /// left out, as in step 5.
    fn batched_offsets(
        &mut self,
        wanted: &[Tp],
        topics: &Topics,
        timeout: std::time::Duration,
    ) -> Option<(HashMap<Tp, i64>, HashMap<Tp, i64>)> {
        let direct = self.plan.direct.clone()?;
        if self.direct.as_ref().is_some_and(Result::is_err) {
            // Step 3a failed this poll: the connections are being remade.
            return None;
        }
        let mut by_leader: std::collections::BTreeMap<i32, Vec<(&str, i32)>> =
            std::collections::BTreeMap::new();
        for tp in wanted {
            // A partition without a known leader: step 5 reads them all.
            let leader = self.leaders.get(tp)?;
            by_leader.entry(*leader).or_default().push((&tp.0, tp.1));
        }
        let isolation = i8::from(
            self.plan.isolation
                == rdkafka::bindings::rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_COMMITTED,
        );
        let started = Instant::now();
        let mut d = direct.lock().ok()?;
        let mut read = |timestamp: i64| {
            d.list_offsets(&self.brokers, &by_leader, isolation, timestamp, timeout / 3)
        };
        let latest = read(-1);
        let earliest = latest.as_ref().ok().map(|_| read(-2));
        drop(d);
        let (latest, earliest) = match (latest, earliest) {
            (Ok(l), Some(Ok(e))) => (l, e),
            (Err(e), _) | (_, Some(Err(e))) => {
                self.direct = Some(Err(e));
                return None;
            }
            (Ok(_), None) => return None,
        };
        let calls = latest.1 + earliest.1;
        self.trace.phase("list_offsets_batched", started, calls);
        *self.trace.direct_requests.entry("ListOffsets").or_default() += calls;
        let mut keep = |answers: Vec<super::wire::PartitionOffset>| {
            let mut out = HashMap::with_capacity(answers.len());
            for a in answers {
                let Some((topic, _)) = topics.get_key_value(a.topic.as_str()) else {
                    continue;
                };
                if a.error_code == 0 && a.offset >= 0 {
                    out.insert((topic.clone(), a.partition), a.offset);
                } else {
                    count(&mut self.partial, ErrorKind::ListOffsets, 1);
                }
            }
            out
        };
        Some((keep(latest.0), keep(earliest.0)))
    }
}

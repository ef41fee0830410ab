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
        self.plan.step("ListOffsets")?;
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

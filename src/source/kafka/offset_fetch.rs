//! Step 3, OffsetFetch (ListConsumerGroupOffsets): the committed offsets of
//! every group, all requests in flight together.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::admin::AdminError;
use super::lag::{GroupReading, Tp};
use super::metadata::Topics;
use super::poll::Poll;
use crate::model::{ErrorKind, PollFailure};

/// Each group's reading, by group id.
pub(super) type Readings = BTreeMap<Arc<str>, GroupReading>;

impl Poll<'_> {
    pub fn offset_fetch(
        &mut self,
        groups: &[String],
        topics: &Topics,
    ) -> Result<Readings, PollFailure> {
        let timeout = self.plan.step("OffsetFetch")?;
        // Step 3a: batched, where it can; what it leaves is read below.
        let (mut readings, leftover) = match self.batched(groups, topics, timeout) {
            Some((readings, leftover)) => (readings, std::borrow::Cow::Owned(leftover)),
            None => (Readings::new(), std::borrow::Cow::Borrowed(groups)),
        };
        let groups = &leftover[..];
        if groups.is_empty() {
            return Ok(readings);
        }
        let started = Instant::now();
        // Discovered groups: ask for every partition each committed on (null
        // topics). Configured groups: ask for every partition of every allowed
        // topic, because some brokers (librdkafka's MockCluster) answer null
        // topics with nothing.
        let all_partitions: Option<Vec<(String, i32)>> =
            (!self.plan.groups.is_empty()).then(|| {
                topics
                    .iter()
                    .flat_map(|(t, n)| (0..*n).map(move |p| (t.to_string(), p)))
                    .collect()
            });
        let fetched = self
            .admin
            .list_group_offsets(groups, all_partitions.as_deref());
        self.trace.phase("offset_fetch", started, groups.len());
        let mut first_error: Option<AdminError> = None;
        for (group, result) in groups.iter().zip(fetched) {
            match result {
                Ok(committed) => {
                    let mut r = GroupReading::default();
                    for c in committed {
                        let Some((topic, _)) = topics.get_key_value(c.topic.as_str()) else {
                            continue;
                        };
                        let tp: Tp = (topic.clone(), c.partition);
                        if c.error.is_some() {
                            self.count(ErrorKind::OffsetFetch, 1);
                            r.unknown.insert(tp);
                        } else {
                            r.committed.insert(tp, c.offset);
                        }
                    }
                    readings.insert(Arc::from(group.as_str()), r);
                }
                Err(e) => {
                    self.count(ErrorKind::OffsetFetch, 1);
                    tracing::debug!(source = %self.plan.source, group, error = %e, "cannot read committed offsets");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if readings.is_empty() => Err(self.fail(
                ErrorKind::OffsetFetch,
                "cannot read committed offsets of any group",
                &e,
            )),
            _ => Ok(readings),
        }
    }
}

impl Poll<'_> {
    /// Step 3a: the committed offsets of `groups` in batched requests; the
    /// readings it got and the groups left for step 3. None when not tried or
    /// failed (then step 3 reads them all).
    fn batched(
        &mut self,
        groups: &[String],
        topics: &Topics,
        timeout: std::time::Duration,
    ) -> Option<(Readings, Vec<String>)> {
        let direct = self.plan.direct.clone()?;
        if groups.is_empty() {
            return None;
        }
        let started = Instant::now();
        // A third of the step: when a coordinator does not answer, step 3
        // still has the rest to read the groups one by one (a batch fails
        // for all its groups; librdkafka's requests fail one group each).
        let fetched = {
            let mut d = direct.lock().ok()?;
            d.fetch(&self.brokers, groups, timeout / 3)
        };
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                self.direct = Some(Err(e));
                return None;
            }
        };
        self.direct = Some(Ok(()));
        let calls: usize = fetched.requests.values().sum();
        self.trace.phase("offset_fetch_batched", started, calls);
        for (api, n) in &fetched.requests {
            *self.trace.direct_requests.entry(api).or_default() += n;
        }
        let mut readings = Readings::new();
        for g in fetched.answered {
            let mut r = GroupReading::default();
            for c in g.partitions {
                let Some((topic, _)) = topics.get_key_value(c.topic.as_str()) else {
                    continue;
                };
                let tp: Tp = (topic.clone(), c.partition);
                if c.error_code != 0 {
                    self.count(ErrorKind::OffsetFetch, 1);
                    r.unknown.insert(tp);
                } else {
                    // -1: the broker says "no commit".
                    r.committed.insert(tp, (c.offset >= 0).then_some(c.offset));
                }
            }
            readings.insert(Arc::from(g.group.as_str()), r);
        }
        // A group the broker answered for but lagwatch did not ask about is
        // ignored; one asked about and not answered is read one by one.
        let asked: std::collections::HashSet<&str> = groups.iter().map(String::as_str).collect();
        readings.retain(|g, _| asked.contains(&**g));
        let mut leftover = fetched.leftover;
        leftover.extend(
            groups
                .iter()
                .filter(|g| !readings.contains_key(g.as_str()))
                .cloned(),
        );
        leftover.sort();
        leftover.dedup();
        Some((readings, leftover))
    }
}

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
        let started = Instant::now();
        self.plan.step("OffsetFetch")?;
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
        let mut readings = Readings::new();
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
            Some(e) if readings.is_empty() && !groups.is_empty() => Err(self.fail(
                ErrorKind::OffsetFetch,
                "cannot read committed offsets of any group",
                &e,
            )),
            _ => Ok(readings),
        }
    }
}

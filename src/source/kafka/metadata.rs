//! Step 1, Metadata: every topic the topic filter allows, with its partition
//! count, in one request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;

use super::poll::{failure, Poll};
use crate::model::{ErrorKind, PollFailure};

/// Topic name -> partition count.
pub(super) type Topics = BTreeMap<Arc<str>, i32>;

impl Poll<'_> {
    pub fn metadata(&mut self) -> Result<Topics, PollFailure> {
        let started = Instant::now();
        let timeout = self.plan.step("metadata")?;
        let metadata = self.client.fetch_metadata(None, timeout).map_err(|e| {
            let code = match &e {
                KafkaError::MetadataFetch(c) => Some(*c),
                other => other.rdkafka_error_code(),
            };
            failure(
                self.client,
                code,
                ErrorKind::Metadata,
                format!("cannot read cluster metadata: {e}"),
            )
        })?;
        self.trace.phase("metadata", started, 1);
        self.brokers = metadata
            .brokers()
            .iter()
            .map(|b| (b.id(), b.host().to_string(), b.port()))
            .collect();
        let mut topics = Topics::new();
        for t in metadata.topics() {
            if t.error().is_some() || !self.plan.topic_filter.allows(t.name()) {
                continue;
            }
            let n = i32::try_from(t.partitions().len()).unwrap_or(i32::MAX);
            let name: Arc<str> = Arc::from(t.name());
            if self.plan.direct.is_some() {
                for p in t.partitions() {
                    if p.error().is_none() && p.leader() >= 0 {
                        self.leaders.insert((name.clone(), p.id()), p.leader());
                    }
                }
            }
            topics.insert(name, n);
        }
        Ok(topics)
    }
}

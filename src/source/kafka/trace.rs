//! Diagnostics of the Kafka poll, for debugging (logged at debug level after
//! every poll) and for benchmarks (`benches/kafka_poll.rs` reads them): where a
//! poll spent its time, how many admin calls it made, and librdkafka's own
//! statistics (requests per API), when `statistics.interval.ms` is set.

use std::time::{Duration, Instant};

/// Where one poll spent its time and how many calls it made. Every phase's time
/// is time spent waiting on librdkafka and the broker.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollTrace {
    /// (phase, wall time, admin calls issued).
    pub phases: Vec<(&'static str, Duration, usize)>,
    pub groups: usize,
    /// Groups to describe (groups listed as Empty are not).
    pub described: usize,
    /// Of those, described one by one (DescribeConsumerGroups), not in the
    /// batched classic DescribeGroups.
    pub described_one_by_one: usize,
    pub partitions: usize,
    pub samples: usize,
    /// Requests lagwatch sent itself (step 3a), by API; librdkafka's
    /// statistics do not see them.
    pub direct_requests: std::collections::BTreeMap<&'static str, usize>,
}

impl PollTrace {
    pub(super) fn phase(&mut self, name: &'static str, started: Instant, calls: usize) {
        self.phases.push((name, started.elapsed(), calls));
    }

    /// Total time spent waiting on the broker.
    pub fn broker_wait(&self) -> Duration {
        self.phases.iter().map(|p| p.1).sum()
    }

    /// One debug line per poll: groups, partitions, and each phase's time.
    pub(super) fn log(&self, source: &crate::model::SourceId) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let phases: Vec<String> = self
                .phases
                .iter()
                .map(|(name, d, calls)| format!("{name} {} ms/{calls}", d.as_millis()))
                .collect();
            tracing::debug!(
                %source,
                groups = self.groups,
                partitions = self.partitions,
                samples = self.samples,
                phases = phases.join(", "),
                "Kafka poll"
            );
        }
    }
}

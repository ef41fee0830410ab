//! Typed identities and values that flow between tasks: sources, consumer keys,
//! samples, poll batches and statuses. No `format!()` keys anywhere: a key is a type.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The configured name of one source (a Kafka cluster or a NATS connection).
#[derive(Clone, Debug, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
#[allow(
    clippy::derived_hash_with_manual_eq,
    reason = "equality is the bytes' equality with a pointer shortcut, as the hash"
)]
pub struct SourceId(Arc<str>);

/// Two names are equal when they are one string or hold the same bytes.
/// `Arc`'s own equality skips the pointer check for unsized `str`; the engine
/// compares 50,000 keys a poll, mostly with the copy it already holds (see
/// `source::names`), so checking the pointer first saves reading the bytes.
#[inline]
pub fn same_name(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

impl PartialEq for SourceId {
    fn eq(&self, other: &Self) -> bool {
        same_name(&self.0, &other.0)
    }
}

impl SourceId {
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The broker family a source talks to; also the `system` label value.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Kafka,
    Jetstream,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Kafka => "kafka",
            System::Jetstream => "jetstream",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One consumer group (Kafka) or one consumer of one stream (JetStream).
///
/// JetStream consumer names are unique per stream only, so the stream is part
/// of the identity there; for Kafka `scope` is `None`.
#[derive(Clone, Debug, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[allow(
    clippy::derived_hash_with_manual_eq,
    reason = "equality is the fields' equality with a pointer shortcut, as the hash"
)]
pub struct GroupKey {
    pub source: SourceId,
    /// JetStream: the stream the consumer belongs to. Kafka: None.
    pub scope: Option<Arc<str>>,
    /// Kafka: the consumer group id. JetStream: the consumer name.
    pub group: Arc<str>,
}

impl PartialEq for GroupKey {
    fn eq(&self, other: &Self) -> bool {
        same_name(&self.group, &other.group)
            && self.source == other.source
            && match (&self.scope, &other.scope) {
                (Some(a), Some(b)) => same_name(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

/// A hash map for the engine's per-key state (50,000 keys at a large cluster,
/// looked up every poll): foldhash, several times faster than SipHash on these
/// keys, seeded at random per process so that names chosen by whoever can
/// create groups and topics cannot be crafted to collide.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;

/// The finest unit lag is measured on: a Kafka (group, topic, partition) or a
/// JetStream (stream, consumer), which has no partitions.
#[derive(Clone, Debug, Eq, Hash, PartialOrd, Ord)]
#[allow(
    clippy::derived_hash_with_manual_eq,
    reason = "equality is the fields' equality with a pointer shortcut, as the hash"
)]
pub struct ConsumerKey {
    pub group: GroupKey,
    /// Kafka: topic. JetStream: stream.
    pub topic: Arc<str>,
    /// Kafka: partition. JetStream: None.
    pub partition: Option<i32>,
}

impl PartialEq for ConsumerKey {
    fn eq(&self, other: &Self) -> bool {
        self.partition == other.partition
            && same_name(&self.topic, &other.topic)
            && self.group == other.group
    }
}

/// Keys whose oldest unconsumed message the source should read the broker's
/// timestamp of at its next poll (see `analysis::settings::ExactTimeLag`), most
/// needed first. The engine sends them; the sources answer in
/// [`Sample::oldest_written`].
pub type ExactRequests = Arc<ExactRequest>;

/// See [`ExactRequests`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExactRequest {
    /// Most needed first. Keys that are caught up when the source polls cost
    /// nothing: only lagging ones are read.
    pub keys: Vec<ConsumerKey>,
    /// At most this many messages read per poll (timestamps already known do
    /// not count).
    pub budget: usize,
}

impl ExactRequest {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Wall-clock time of a poll, in milliseconds since the Unix epoch. Analysis works
/// on these numbers only, so it never reads a clock.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    pub fn from_system(t: SystemTime) -> Self {
        match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Millis(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    /// RFC 3339 UTC with milliseconds (`2024-05-01T12:00:00.000Z`). A time
    /// before 1970 (a clock set far back) is written as the epoch: the formatter
    /// has no earlier dates.
    pub fn rfc3339(self) -> String {
        let d = std::time::Duration::from_millis(u64::try_from(self.0).unwrap_or(0));
        humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + d).to_string()
    }
}

/// What one poll saw of one consumer key. Offsets follow Kafka's meaning; a
/// JetStream source maps its sequences onto the same shape (see source::jetstream).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub key: ConsumerKey,
    /// Next offset to be consumed (Kafka committed offset). None: never committed.
    pub committed: Option<i64>,
    /// Next offset to be written (the high watermark, "latest").
    pub head: i64,
    /// Earliest offset still stored. None when the broker did not say.
    pub low: Option<i64>,
    /// Lag in messages as the source computed it (never negative).
    pub lag: u64,
    /// JetStream consumer details; None for Kafka. Boxed: a Kafka sample (most
    /// of them, 50,000 in a large cluster) then pays 8 bytes for it, not 88.
    pub jetstream: Option<Box<JetstreamParts>>,
    /// When the oldest unconsumed message was written, as the broker stamped it:
    /// (its offset, its timestamp). Read only for the partitions the engine asked
    /// about (time lag that interpolation cannot answer well); None otherwise.
    pub oldest_written: Option<(i64, Millis)>,
}

/// The parts of a JetStream consumer's lag and its delivery state.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct JetstreamParts {
    pub num_pending: u64,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    pub num_waiting: u64,
    pub delivered_stream_seq: u64,
    pub ack_floor_stream_seq: u64,
    pub max_ack_pending: i64,
    pub push: bool,
    pub deliver_group: Option<String>,
    pub push_bound: bool,
    /// The consumer sees only some subjects of its stream (filter_subject(s)):
    /// the stream's sequence then counts messages it never gets.
    pub filtered: bool,
    /// Its filter subject, when it has exactly one.
    pub filter_subject: Option<String>,
    /// Deliveries made so far, redeliveries included (`delivered.consumer_seq`).
    /// None for a merged aggregate of ephemeral consumers.
    pub deliveries: Option<u64>,
    /// `delivered.consumer_seq - delivered.stream_seq`: grows by one per
    /// redelivery and stays put on a first delivery, as long as the consumer
    /// sees every sequence of its stream (not filtered). None when it does
    /// not, or for a merged aggregate (see `analysis::dead_letters`).
    pub redelivery_marker: Option<i64>,
}

/// Per-group facts that do not belong to one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    pub key: GroupKey,
    /// Broker-reported state ("Stable", "Empty", ...); None when unknown.
    pub state: Option<String>,
    /// Active members; None when the broker could not say.
    pub members: Option<u32>,
    /// Kafka: each active member and the partitions it owns (DescribeGroups).
    /// None when unknown (DescribeGroups failed or was skipped; JetStream).
    pub assignments: Option<Vec<MemberAssignment>>,
}

impl GroupInfo {
    /// A group with no member details.
    pub fn new(key: GroupKey, state: Option<String>, members: Option<u32>) -> Self {
        GroupInfo {
            key,
            state,
            members,
            assignments: None,
        }
    }
}

/// One active member of a Kafka consumer group, as DescribeGroups reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberAssignment {
    pub member_id: String,
    /// The member's `client.id` (empty when the broker does not say; tansu).
    pub client_id: String,
    /// The member's host as the broker saw it (empty when unknown).
    pub host: String,
    /// Static membership id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// (topic, partition) pairs this member owns, sorted.
    pub partitions: Vec<(Arc<str>, i32)>,
}

/// The kinds of failure a poll can count. Bounded set: used as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    Connect,
    Timeout,
    Auth,
    Metadata,
    ListGroups,
    DescribeGroups,
    OffsetFetch,
    ListOffsets,
    ConsumerInfo,
    StreamInfo,
    DescribeConfigs,
    ReadTimestamps,
    Decode,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Auth,
        ErrorKind::Metadata,
        ErrorKind::ListGroups,
        ErrorKind::DescribeGroups,
        ErrorKind::OffsetFetch,
        ErrorKind::ListOffsets,
        ErrorKind::ConsumerInfo,
        ErrorKind::StreamInfo,
        ErrorKind::DescribeConfigs,
        ErrorKind::ReadTimestamps,
        ErrorKind::Decode,
        ErrorKind::Other,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Auth => "auth",
            ErrorKind::Metadata => "metadata",
            ErrorKind::ListGroups => "list_groups",
            ErrorKind::DescribeGroups => "describe_groups",
            ErrorKind::OffsetFetch => "offset_fetch",
            ErrorKind::ListOffsets => "list_offsets",
            ErrorKind::ConsumerInfo => "consumer_info",
            ErrorKind::StreamInfo => "stream_info",
            ErrorKind::DescribeConfigs => "describe_configs",
            ErrorKind::ReadTimestamps => "read_timestamps",
            ErrorKind::Decode => "decode",
            ErrorKind::Other => "other",
        }
    }
}

/// A poll that failed as a whole: the source is down for this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollFailure {
    pub kind: ErrorKind,
    /// Human-readable, already free of secrets.
    pub message: String,
}

/// Everything one successful poll of one source saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollData {
    pub samples: Vec<Sample>,
    pub groups: Vec<GroupInfo>,
    /// Partial failures that did not fail the poll (a group whose offsets could
    /// not be read, DescribeGroups refused, ...), counted by kind.
    pub partial_errors: Vec<(ErrorKind, u64)>,
    /// Readings that contradict each other (committed above head), counted.
    pub anomalies: u64,
    /// JetStream streams seen (empty for Kafka).
    pub streams: Vec<StreamState>,
    /// Retention of the topics (Kafka, from their config) or streams (JetStream)
    /// measured, by name; a name not listed has unknown retention.
    pub retention: Vec<(Arc<str>, RetentionLimits)>,
    /// When the latest offsets were read (the head of every sample): the time
    /// the history stamps this poll's points with. None: the poll's start.
    pub read_at: Option<Millis>,
    /// Dead letters: Kafka dead-letter topics' heads, JetStream advisories
    /// counted (see [`DeadLetterReading`]).
    pub dead_letters: Vec<DeadLetterReading>,
    /// JetStream: the advisory subscription (None: not subscribed, Kafka).
    pub advisories: Option<AdvisoryState>,
}

/// Why an event was given up on; also the `reason` label value.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// Kafka: written to a dead-letter topic (by the consumer's error handler).
    DeadLetterTopic,
    /// JetStream: the server gave up after `max_deliver` deliveries.
    MaxDeliveries,
    /// JetStream: the client terminated the message (`+TERM`).
    Terminated,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::DeadLetterTopic => "dead_letter_topic",
            DeadLetterReason::MaxDeliveries => "max_deliveries",
            DeadLetterReason::Terminated => "terminated",
        }
    }
}

/// One count of dead letters as a source read it: a Kafka dead-letter topic
/// (its head, summed over partitions: every message ever written to it) or
/// the JetStream advisories of one consumer and reason counted so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterReading {
    pub reason: DeadLetterReason,
    /// Kafka: the dead-letter topic's name with the convention removed (the
    /// source topic it names, which need not exist). JetStream: the stream.
    pub topic: Arc<str>,
    /// Kafka: the dead-letter topic. JetStream: None.
    pub dead_letter_topic: Option<Arc<str>>,
    /// JetStream: the consumer. Kafka: the group an explicit link names.
    pub group: Option<Arc<str>>,
    /// The count so far: Kafka, the sum of the latest offsets; JetStream,
    /// advisories received since lagwatch subscribed.
    pub total: u64,
    /// Kafka: messages the topic stores now (latest - earliest, summed);
    /// None when the earliest offsets were not read.
    pub stored: Option<u64>,
    /// The most recent event, in words (JetStream: the stream sequence and
    /// deliveries of the last advisory), for notifications.
    pub last: Option<String>,
    /// This process reports it (sharded: the shard owning the linked group,
    /// or the dead-letter topic's name when no link names a group).
    pub owned: bool,
    /// Kafka: this process sees every group of the cluster (not sharded, no
    /// group filter or list), so "the only group consuming the topic" and
    /// "nobody drains it" can be told. JetStream: true.
    pub sees_all_groups: bool,
    /// Kafka: the dead-letter topic's partitions (a drainer must cover them
    /// all). JetStream: 0.
    pub partitions: u32,
}

/// What the JetStream advisory subscription could have missed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdvisoryState {
    /// Subscribed and connected now.
    pub subscribed: bool,
    /// Since when advisories have been counted (the first subscription).
    pub since: Option<Millis>,
    /// Stretches since then whose advisories may be missing: the connection
    /// dropped (core NATS keeps nothing for an absent subscriber), the client
    /// fell behind (slow consumer), a subscription had to be made again, or
    /// advisories were left out at `max_tracked`.
    pub gaps: u64,
}

/// What retention deletes from one Kafka topic or JetStream stream, as configured.
/// Every limit is None when unlimited.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetentionLimits {
    /// Messages older than this are deleted (Kafka `retention.ms` with a delete
    /// cleanup policy; JetStream `max_age`). Kafka deletes whole segments, so a
    /// message may live longer, never shorter.
    pub max_age_seconds: Option<f64>,
    /// The stream keeps at most this many messages, deleting the oldest
    /// (JetStream `max_msgs` with discard old).
    pub max_messages: Option<u64>,
    /// The stream keeps at most this many bytes, deleting the oldest
    /// (JetStream `max_bytes` with discard old).
    pub max_bytes: Option<u64>,
    /// Messages and bytes stored now (JetStream), to turn a byte limit into messages.
    pub messages: u64,
    pub bytes: u64,
}

/// One JetStream stream's state and retention limits (negative limit: unlimited).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamState {
    pub name: Arc<str>,
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub consumer_count: u64,
    /// `limits`, `interest` or `workqueue`.
    pub retention: String,
    pub max_msgs: i64,
    pub max_bytes: i64,
    /// 0: no age limit.
    pub max_age_seconds: f64,
    /// `old` or `new`: which side a full stream discards.
    pub discard: String,
}

impl StreamState {
    /// The stream's limits as retention sees them: a stream that discards new
    /// messages when full refuses writes instead of deleting old ones.
    pub fn retention_limits(&self) -> RetentionLimits {
        let discard_old = self.discard != "new";
        RetentionLimits {
            max_age_seconds: (self.max_age_seconds > 0.0).then_some(self.max_age_seconds),
            max_messages: u64::try_from(self.max_msgs)
                .ok()
                .filter(|m| discard_old && *m > 0),
            max_bytes: u64::try_from(self.max_bytes)
                .ok()
                .filter(|b| discard_old && *b > 0),
            messages: self.messages,
            bytes: self.bytes,
        }
    }
}

/// One poll of one source, success or failure, as sent to the engine.
#[derive(Clone, Debug)]
pub struct PollBatch {
    pub source: SourceId,
    pub system: System,
    /// When the poll started (wall clock).
    pub at: Millis,
    pub duration: Duration,
    pub result: Result<PollData, PollFailure>,
}

/// Health of one partition or group, after Burrow's evaluator, ordered from
/// best to worst so that a group's status is the max of its partitions'.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Status {
    Ok,
    Warn,
    Rewind,
    Stall,
    Stop,
    Err,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Warn,
        Status::Rewind,
        Status::Stall,
        Status::Stop,
        Status::Err,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Rewind => "REWIND",
            Status::Stall => "STALL",
            Status::Stop => "STOP",
            Status::Err => "ERR",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings that differ per consumer group: the first entry whose pattern
/// matches the group name (Kafka group id, JetStream consumer) wins, else the
/// default. Used by the analysis thresholds and the recommendation settings.
#[derive(Clone, Debug)]
pub struct PerGroup<T> {
    default: T,
    groups: Vec<(regex::Regex, T)>,
}

impl<T> PerGroup<T> {
    /// `groups` in config order, patterns already compiled by validation.
    pub fn new(default: T, groups: Vec<(regex::Regex, T)>) -> Self {
        PerGroup { default, groups }
    }

    /// Only the default: every group gets it.
    pub fn uniform(default: T) -> Self {
        PerGroup {
            default,
            groups: Vec::new(),
        }
    }

    /// The value for groups no pattern matches.
    pub fn default_value(&self) -> &T {
        &self.default
    }

    pub fn for_group(&self, group: &GroupKey) -> &T {
        self.groups
            .iter()
            .find(|(re, _)| re.is_match(&group.group))
            .map_or(&self.default, |(_, t)| t)
    }
}

#[cfg(test)]
mod key_equality_tests {
    use super::*;

    fn key(
        source: &str,
        scope: Option<&str>,
        group: &str,
        topic: &str,
        p: Option<i32>,
    ) -> ConsumerKey {
        ConsumerKey {
            group: GroupKey {
                source: SourceId::new(source),
                scope: scope.map(Arc::from),
                group: Arc::from(group),
            },
            topic: Arc::from(topic),
            partition: p,
        }
    }

    #[test]
    fn keys_are_equal_by_content_whether_or_not_they_share_their_strings() {
        let a = key("k", None, "billing", "orders", Some(1));
        assert_eq!(a, a.clone(), "shared strings");
        assert_eq!(a, key("k", None, "billing", "orders", Some(1)), "copies");
        for other in [
            key("j", None, "billing", "orders", Some(1)),
            key("k", Some("orders"), "billing", "orders", Some(1)),
            key("k", None, "billin", "orders", Some(1)),
            key("k", None, "billing", "order", Some(1)),
            key("k", None, "billing", "orders", Some(2)),
            key("k", None, "billing", "orders", None),
        ] {
            assert_ne!(a, other);
            assert_ne!(other, a);
        }
        let js = key("n", Some("ORDERS"), "worker", "ORDERS", None);
        assert_eq!(js, key("n", Some("ORDERS"), "worker", "ORDERS", None));
        assert_ne!(js, key("n", Some("PAYMENTS"), "worker", "ORDERS", None));
    }
}

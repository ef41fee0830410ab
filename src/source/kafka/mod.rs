//! Kafka source: consumer-group lag of one cluster through librdkafka, with one
//! client per cluster and a fixed number of batched admin calls per poll.
//!
//! One poll, in order (each step bounded by the request timeout and the poll's
//! deadline, all on a blocking thread):
//! 1. Metadata (all topics -> partition counts), one request.
//! 2. ListConsumerGroups (unless `groups` is configured), one request per broker.
//! 3. ListConsumerGroupOffsets for every group, all in flight together.
//! 4. Describe every group not listed as Empty (state, members, assignments);
//!    failures are counted, never fatal, and back off. First (4a) the classic
//!    DescribeGroups, batched: one ListGroups and one DescribeGroups per broker
//!    for all the groups it coordinates (librdkafka's `rd_kafka_list_groups`).
//!    Then (4b) DescribeConsumerGroups, one FindCoordinator and one describe
//!    request per group, for the groups 4a did not answer: KIP-848 consumer
//!    groups, or every group when 4a failed. A group described there as active
//!    with no members (tansu answers KIP-848 ConsumerGroupDescribe that way) is
//!    described again with the classic DescribeGroups, at most
//!    `CLASSIC_DESCRIBE_MAX` groups per poll.
//! 5. ListOffsets latest and earliest for every measured partition, two calls in
//!    flight together, split per leader by librdkafka.
//!
//! Committed offsets are read before latest offsets (step 3 before 5), so a
//! consistent broker never shows committed above latest.

mod admin;
mod assignment;
mod context;
mod lag;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::bindings::rd_kafka_IsolationLevel_t;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use self::admin::{Admin, AdminError, OffsetSpec};
use self::context::{connectivity_kind, LagwatchContext};
use self::lag::{GroupReading, Tp};
use super::filter::{NameFilter, Shard};
use super::Poller;
use crate::config::{IsolationLevel, KafkaConfig, Timing};
use crate::model::{
    ErrorKind, GroupInfo, GroupKey, MemberAssignment, PollData, PollFailure, SourceId,
};

pub use self::context::LagwatchContext as KafkaContext;

type Client = BaseConsumer<LagwatchContext>;

/// After this many consecutive DescribeGroups failures, describe only every
/// `2^n` polls (capped): a broker that drops the connection on DescribeGroups
/// (tansu with sqlite storage) must not cost a timeout every poll.
const DESCRIBE_BACKOFF_CAP: u32 = 5;

/// At most this many groups per poll get the classic DescribeGroups fallback
/// (one blocking round trip each).
const CLASSIC_DESCRIBE_MAX: usize = 20;

use crate::config::SECRET_PROPERTY_FRAGMENTS as SECRET_KEYS;

/// Polls one Kafka cluster.
pub struct KafkaPoller {
    id: SourceId,
    config: KafkaConfig,
    timing: Timing,
    group_filter: NameFilter,
    topic_filter: NameFilter,
    client: Option<Arc<Client>>,
    describe_failures: u32,
    polls_since_describe: u32,
    /// Consecutive failures of the batched classic describe (4a); it is then
    /// tried only every `2^n` polls, like DescribeGroups as a whole.
    batch_describe_failures: u32,
    polls_since_batch_describe: u32,
    last_trace: Option<PollTrace>,
    shard: Shard,
}

impl std::fmt::Debug for KafkaPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the config: its properties may hold credentials.
        f.debug_struct("KafkaPoller")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Where one poll spent its time and how many calls it made, for benchmarks and
/// debugging. Every phase's time is time spent waiting on librdkafka/broker.
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
}

impl PollTrace {
    fn phase(&mut self, name: &'static str, started: Instant, calls: usize) {
        self.phases.push((name, started.elapsed(), calls));
    }

    /// Total time spent waiting on the broker.
    pub fn broker_wait(&self) -> Duration {
        self.phases.iter().map(|p| p.1).sum()
    }
}

impl KafkaPoller {
    pub fn new(id: SourceId, config: KafkaConfig, timing: Timing) -> Self {
        let group_filter = NameFilter::new(&config.group_filter);
        let topic_filter = NameFilter::new(&config.topic_filter);
        Self {
            id,
            config,
            timing,
            group_filter,
            topic_filter,
            client: None,
            describe_failures: 0,
            polls_since_describe: 0,
            batch_describe_failures: 0,
            polls_since_batch_describe: 0,
            last_trace: None,
            shard: Shard::ALL,
        }
    }

    /// Watch only the groups that belong to `shard`.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// The trace of the last poll that got past client creation.
    pub fn last_trace(&self) -> Option<&PollTrace> {
        self.last_trace.as_ref()
    }

    /// Serves librdkafka's queued events (logs, errors, statistics) and returns
    /// the last statistics JSON, if `statistics.interval.ms` is set.
    pub fn librdkafka_stats(&self) -> Option<String> {
        let client = self.client.as_ref()?;
        drain(client);
        client.context().last_stats()
    }

    fn secrets(&self) -> Vec<&str> {
        self.config
            .properties
            .iter()
            .filter(|(k, v)| {
                let k = k.to_ascii_lowercase();
                v.len() >= 3 && SECRET_KEYS.iter().any(|s| k.contains(s))
            })
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn redact(&self, mut f: PollFailure) -> PollFailure {
        for s in self.secrets() {
            f.message = f.message.replace(s, "***");
        }
        f
    }

    fn client(&mut self) -> Result<Arc<Client>, PollFailure> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut cc = ClientConfig::new();
        // librdkafka's default reconnect backoff grows to 10 s
        // (reconnect.backoff.max.ms); a returning broker should be seen within
        // one poll, so cap it at the poll interval unless the user chose.
        let backoff = self.timing.poll_interval.min(Duration::from_secs(10));
        cc.set(
            "reconnect.backoff.max.ms",
            backoff.as_millis().max(100).to_string(),
        );
        cc.set("client.id", format!("lagwatch-{}", self.id));
        for (k, v) in &self.config.properties {
            cc.set(k, v);
        }
        // No group.id: this client never joins or commits for any group; admin
        // calls work on any handle. Without a group its main queue is polled
        // directly (see `drain`).
        cc.set("bootstrap.servers", self.config.bootstrap_servers.join(","))
            .set("enable.auto.commit", "false")
            .set(
                "isolation.level",
                self.config.isolation_level.as_librdkafka(),
            );
        let c: Client = cc
            .create_with_context(LagwatchContext::new(self.id.clone()))
            .map_err(|e| {
                self.redact(PollFailure {
                    kind: ErrorKind::Other,
                    message: format!("cannot create the Kafka client: {e}"),
                })
            })?;
        let c = Arc::new(c);
        self.client = Some(c.clone());
        Ok(c)
    }

    fn describe_now(&self) -> bool {
        due(self.describe_failures, self.polls_since_describe)
    }
}

/// After `failures` consecutive failures, a step runs every `2^failures` polls
/// (capped at `2^DESCRIBE_BACKOFF_CAP`); `since` polls ago it last ran.
fn due(failures: u32, since: u32) -> bool {
    failures == 0 || since + 1 >= 1u32 << failures.min(DESCRIBE_BACKOFF_CAP)
}

/// Counts one more run of a backed-off step: resets or raises `failures`.
fn ran(failures: &mut u32, since: &mut u32, failed: bool) {
    *since = 0;
    *failures = if failed {
        failures.saturating_add(1)
    } else {
        0
    };
}

impl Poller for KafkaPoller {
    async fn poll(&mut self) -> Result<PollData, PollFailure> {
        let client = self.client()?;
        let describe = self.describe_now();
        let batch_describe = describe
            && due(
                self.batch_describe_failures,
                self.polls_since_batch_describe,
            );
        let plan = Plan {
            source: self.id.clone(),
            groups: self.config.groups.clone(),
            group_filter: self.group_filter.clone(),
            topic_filter: self.topic_filter.clone(),
            isolation: match self.config.isolation_level {
                IsolationLevel::ReadUncommitted => {
                    rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_UNCOMMITTED
                }
                IsolationLevel::ReadCommitted => {
                    rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_COMMITTED
                }
            },
            request_timeout: self.timing.request_timeout,
            deadline: Instant::now() + super::poll_deadline(self.timing),
            describe,
            batch_describe,
            shard: self.shard,
        };
        let outcome = tokio::task::spawn_blocking(move || run(&client, &plan))
            .await
            .map_err(|e| PollFailure {
                kind: ErrorKind::Other,
                message: format!("the Kafka poll task failed: {e}"),
            })?;
        match outcome {
            Ok(o) => {
                if describe {
                    ran(
                        &mut self.describe_failures,
                        &mut self.polls_since_describe,
                        o.describe_failed,
                    );
                } else {
                    self.polls_since_describe += 1;
                }
                match o.batch_describe_failed {
                    Some(failed) => ran(
                        &mut self.batch_describe_failures,
                        &mut self.polls_since_batch_describe,
                        failed,
                    ),
                    None => self.polls_since_batch_describe += 1,
                }
                self.last_trace = Some(o.trace);
                Ok(o.data)
            }
            Err(f) => Err(self.redact(f)),
        }
    }
}

/// Everything the blocking part of a poll needs, owned.
struct Plan {
    source: SourceId,
    groups: Vec<String>,
    group_filter: NameFilter,
    topic_filter: NameFilter,
    isolation: rd_kafka_IsolationLevel_t,
    request_timeout: Duration,
    deadline: Instant,
    describe: bool,
    /// Try the batched classic describe (step 4a) this poll.
    batch_describe: bool,
    shard: Shard,
}

impl Plan {
    /// The timeout of the next step: the request timeout, cut to the deadline.
    fn step(&self, what: &str) -> Result<Duration, PollFailure> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PollFailure {
                kind: ErrorKind::Timeout,
                message: format!("poll deadline reached before {what}"),
            });
        }
        Ok(self.request_timeout.min(left))
    }
}

struct Outcome {
    data: PollData,
    trace: PollTrace,
    describe_failed: bool,
    /// None: the batched classic describe was not tried this poll.
    batch_describe_failed: Option<bool>,
}

/// Serves queued librdkafka events (logs, global errors, statistics) so they
/// reach the context and do not pile up. Bounded: a flood cannot stall a poll.
fn drain(client: &Client) {
    for _ in 0..10_000 {
        if admin::main_queue_len(client.client()) == 0 {
            break;
        }
        // rdkafka returns None after serving a log or statistics event too,
        // so the queue length, not the result, says when to stop.
        let _ = client.poll(Duration::ZERO);
    }
}

/// The kind of a failed step: connectivity/auth when the code or a recent
/// global error says so, otherwise timeout or the step's own kind.
fn classify(client: &Client, code: Option<RDKafkaErrorCode>, step: ErrorKind) -> ErrorKind {
    drain(client);
    if let Some(k) = code.and_then(connectivity_kind) {
        return k;
    }
    let timed_out = matches!(
        code,
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::TimedOutQueue
        )
    );
    match client.context().recent_problem() {
        Some(k) if timed_out || step == ErrorKind::Metadata => k,
        _ if timed_out => ErrorKind::Timeout,
        _ => step,
    }
}

fn fail(client: &Client, step: ErrorKind, what: &str, e: &AdminError) -> PollFailure {
    PollFailure {
        kind: classify(client, Some(e.code), step),
        message: format!("{what}: {e}"),
    }
}

fn count(errors: &mut BTreeMap<ErrorKind, u64>, kind: ErrorKind, n: u64) {
    if n > 0 {
        *errors.entry(kind).or_default() += n;
    }
}

/// One poll, blocking. Returns the data or why the cluster is unusable.
fn run(client: &Client, plan: &Plan) -> Result<Outcome, PollFailure> {
    drain(client);
    let mut trace = PollTrace::default();
    let mut partial: BTreeMap<ErrorKind, u64> = BTreeMap::new();

    // 1. Metadata: topics and partition counts, once per poll.
    let started = Instant::now();
    let timeout = plan.step("metadata")?;
    let metadata = client.fetch_metadata(None, timeout).map_err(|e| {
        let code = match &e {
            KafkaError::MetadataFetch(c) => Some(*c),
            other => other.rdkafka_error_code(),
        };
        PollFailure {
            kind: classify(client, code, ErrorKind::Metadata),
            message: format!("cannot read cluster metadata: {e}"),
        }
    })?;
    trace.phase("metadata", started, 1);
    let mut topics: BTreeMap<Arc<str>, i32> = BTreeMap::new();
    for t in metadata.topics() {
        if t.error().is_some() || !plan.topic_filter.allows(t.name()) {
            continue;
        }
        let n = i32::try_from(t.partitions().len()).unwrap_or(i32::MAX);
        topics.insert(Arc::from(t.name()), n);
    }
    drop(metadata);

    let admin = Admin::new(client.client(), plan.request_timeout).ok_or_else(|| PollFailure {
        kind: ErrorKind::Other,
        message: "the Kafka client has no handle".into(),
    })?;

    // 2. Groups: the configured list, or ListGroups (every state, Empty included).
    let mut listed_state: HashMap<String, Option<String>> = HashMap::new();
    let mut groups: Vec<String> = if plan.groups.is_empty() {
        let started = Instant::now();
        plan.step("ListGroups")?;
        let list = admin
            .list_groups()
            .map_err(|e| fail(client, ErrorKind::ListGroups, "cannot list groups", &e))?;
        trace.phase("list_groups", started, 1);
        if list.groups.is_empty() && !list.errors.is_empty() {
            // No broker answered: "no groups" cannot be told from "cannot list".
            return Err(fail(
                client,
                ErrorKind::ListGroups,
                "cannot list groups",
                &list.errors[0],
            ));
        }
        count(
            &mut partial,
            ErrorKind::ListGroups,
            list.errors.len() as u64,
        );
        let mut names: Vec<String> = list
            .groups
            .into_iter()
            .filter(|g| plan.group_filter.allows(&g.group))
            .map(|g| {
                listed_state.insert(g.group.clone(), g.state);
                g.group
            })
            .collect();
        names.sort();
        names.dedup();
        names
    } else {
        plan.groups.clone()
    };
    // Several lagwatch processes split the groups between them (shard).
    groups.retain(|g| plan.shard.owns(plan.source.as_str(), g));
    trace.groups = groups.len();

    // 3. Committed offsets of every group, all requests in flight together.
    let started = Instant::now();
    plan.step("OffsetFetch")?;
    // Discovered groups: ask for every partition each committed on (null topics).
    // Configured groups: ask for every partition of every allowed topic, because
    // some brokers (librdkafka's MockCluster) answer null topics with nothing.
    let all_partitions: Option<Vec<(String, i32)>> = (!plan.groups.is_empty()).then(|| {
        topics
            .iter()
            .flat_map(|(t, n)| (0..*n).map(move |p| (t.to_string(), p)))
            .collect()
    });
    let fetched = admin.list_group_offsets(&groups, all_partitions.as_deref());
    trace.phase("offset_fetch", started, groups.len());
    let mut readings: BTreeMap<Arc<str>, GroupReading> = BTreeMap::new();
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
                        count(&mut partial, ErrorKind::OffsetFetch, 1);
                        r.unknown.insert(tp);
                    } else {
                        r.committed.insert(tp, c.offset);
                    }
                }
                readings.insert(Arc::from(group.as_str()), r);
            }
            Err(e) => {
                count(&mut partial, ErrorKind::OffsetFetch, 1);
                tracing::debug!(source = %plan.source, group, error = %e, "cannot read committed offsets");
                first_error.get_or_insert(e);
            }
        }
    }
    if readings.is_empty() && !groups.is_empty() {
        if let Some(e) = &first_error {
            return Err(fail(
                client,
                ErrorKind::OffsetFetch,
                "cannot read committed offsets of any group",
                e,
            ));
        }
    }

    // 4. DescribeGroups: state, members, assignments. Never fatal.
    let mut described = HashMap::new();
    let mut describe_failed = false;
    // A group ListGroups saw as Empty has no members by definition: describing
    // it adds nothing. In a large cluster most groups are Empty (and every
    // commit-only group is), so this saves most DescribeGroups requests.
    let is_listed_empty =
        |g: &str| matches!(listed_state.get(g), Some(Some(s)) if s.as_str() == "Empty");
    let read_groups: Vec<String> = readings
        .keys()
        .filter(|g| !is_listed_empty(g))
        .map(|g| g.to_string())
        .collect();
    trace.described = read_groups.len();
    let mut batch_describe_failed = None;
    if plan.describe && plan.batch_describe && !read_groups.is_empty() {
        let started = Instant::now();
        let failed = match batch_describe(client, plan, &read_groups, &mut partial) {
            Ok(found) => {
                described.extend(found.into_iter().map(|(g, d)| (g, Ok(d))));
                false
            }
            Err(e) => {
                tracing::debug!(source = %plan.source, error = %e, "batched classic DescribeGroups failed; describing group by group");
                true
            }
        };
        batch_describe_failed = Some(failed);
        trace.phase("describe_groups_batched", started, 1);
    }
    let rest: Vec<String> = read_groups
        .into_iter()
        .filter(|g| !described.contains_key(g))
        .collect();
    trace.described_one_by_one = rest.len();
    if plan.describe && !rest.is_empty() {
        let started = Instant::now();
        plan.step("DescribeGroups")?;
        match admin.describe_groups(&rest) {
            Ok(d) => described.extend(d),
            Err(e) => {
                describe_failed = true;
                count(&mut partial, ErrorKind::DescribeGroups, 1);
                tracing::debug!(source = %plan.source, error = %e, "DescribeGroups failed");
            }
        }
        trace.phase("describe_groups", started, 1);
    }
    if plan.describe {
        classic_describe(client, plan, &mut described, &mut partial);
    }
    let mut infos = Vec::with_capacity(readings.len());
    for (group, reading) in readings.iter_mut() {
        let key = GroupKey {
            source: plan.source.clone(),
            scope: None,
            group: group.clone(),
        };
        let fallback = listed_state.get(group.as_ref()).cloned().flatten();
        let info = match described.remove(group.as_ref()) {
            Some(Ok(d)) => {
                let mut members: Vec<MemberAssignment> = d
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut partitions: Vec<(Arc<str>, i32)> = m
                            .assignment
                            .into_iter()
                            .map(|(t, p)| {
                                let t: Arc<str> = topics
                                    .get_key_value(t.as_str())
                                    .map(|(k, _)| k.clone())
                                    .unwrap_or_else(|| Arc::from(t.as_str()));
                                (t, p)
                            })
                            .collect();
                        partitions.sort();
                        MemberAssignment {
                            member_id: m.member_id,
                            client_id: m.client_id,
                            host: m.host,
                            group_instance_id: m.group_instance_id,
                            partitions,
                        }
                    })
                    .collect();
                members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
                for m in &members {
                    for (t, _) in &m.partitions {
                        if plan.topic_filter.allows(t) {
                            reading.assigned_topics.insert(t.clone());
                        }
                    }
                }
                GroupInfo {
                    key,
                    state: d.state.or(fallback),
                    members: Some(u32::try_from(members.len()).unwrap_or(u32::MAX)),
                    assignments: Some(members),
                }
            }
            Some(Err(e)) => {
                describe_failed = true;
                count(&mut partial, ErrorKind::DescribeGroups, 1);
                tracing::debug!(source = %plan.source, group = %group, error = %e, "cannot describe group");
                GroupInfo::new(key, fallback, None)
            }
            None if is_listed_empty(group) => GroupInfo {
                key,
                state: fallback,
                members: Some(0),
                assignments: Some(Vec::new()),
            },
            None => {
                if plan.describe && !describe_failed {
                    // Asked but not answered for this group.
                    count(&mut partial, ErrorKind::DescribeGroups, 1);
                }
                GroupInfo::new(key, fallback, None)
            }
        };
        infos.push(info);
    }

    // 5. Latest and earliest offsets of every measured partition: two calls.
    let wanted = lag::partitions_to_list(&readings, &topics);
    trace.partitions = wanted.len();
    let started = Instant::now();
    plan.step("ListOffsets")?;
    let list: Vec<(String, i32)> = wanted.iter().map(|(t, p)| (t.to_string(), *p)).collect();
    let mut results = admin
        .list_offsets(
            &list,
            &[OffsetSpec::Latest, OffsetSpec::Earliest],
            plan.isolation,
        )
        .into_iter();
    trace.phase("list_offsets", started, 2);
    let intern = |m: HashMap<(String, i32), Result<i64, AdminError>>,
                  partial: &mut BTreeMap<ErrorKind, u64>|
     -> HashMap<Tp, i64> {
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
    };
    let latest = match results.next() {
        Some(Ok(m)) => intern(m, &mut partial),
        Some(Err(e)) => {
            return Err(fail(
                client,
                ErrorKind::ListOffsets,
                "cannot read latest offsets",
                &e,
            ))
        }
        None => HashMap::new(),
    };
    let earliest = match results.next() {
        Some(Ok(m)) => intern(m, &mut partial),
        Some(Err(e)) => {
            count(&mut partial, ErrorKind::ListOffsets, 1);
            tracing::debug!(source = %plan.source, error = %e, "cannot read earliest offsets");
            HashMap::new()
        }
        None => HashMap::new(),
    };

    let assembled = lag::assemble(&plan.source, &readings, &topics, &latest, &earliest);
    trace.samples = assembled.samples.len();
    client.context().clear_problem();
    Ok(Outcome {
        data: PollData {
            samples: assembled.samples,
            groups: infos,
            partial_errors: partial.into_iter().collect(),
            anomalies: assembled.anomalies,
            streams: Vec::new(),
        },
        trace,
        describe_failed,
        batch_describe_failed,
    })
}

/// Re-describes, with the classic DescribeGroups (rdkafka's `fetch_group_list`),
/// the groups described as active but with no members: a contradiction some
/// brokers produce on the KIP-848 ConsumerGroupDescribe path.
fn classic_describe(
    client: &Client,
    plan: &Plan,
    described: &mut HashMap<String, Result<admin::GroupDescription, AdminError>>,
    partial: &mut BTreeMap<ErrorKind, u64>,
) {
    let suspicious: Vec<String> = described
        .iter()
        .filter_map(|(g, d)| match d {
            Ok(d) if d.members.is_empty() && is_active(d.state.as_deref()) => Some(g.clone()),
            _ => None,
        })
        .take(CLASSIC_DESCRIBE_MAX)
        .collect();
    for group in suspicious {
        let Ok(timeout) = plan.step("DescribeGroups") else {
            return;
        };
        let list = match client.fetch_group_list(Some(&group), timeout) {
            Ok(l) => l,
            Err(e) => {
                count(partial, ErrorKind::DescribeGroups, 1);
                tracing::debug!(source = %plan.source, group, error = %e, "classic DescribeGroups failed");
                continue;
            }
        };
        let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
            continue;
        };
        let Some(d) = classic_description(info, partial) else {
            continue;
        };
        described.insert(group, Ok(d));
    }
}

/// Step 4a: the classic DescribeGroups of every group in `wanted`, batched by
/// librdkafka into one ListGroups and one DescribeGroups per broker. Groups the
/// answer leaves out or answers without a state (KIP-848 consumer groups, which
/// the classic API does not describe) are left for DescribeConsumerGroups.
///
/// The answer covers every classic group of the cluster, also those outside the
/// group filter or this shard; they are dropped here.
fn batch_describe(
    client: &Client,
    plan: &Plan,
    wanted: &[String],
    partial: &mut BTreeMap<ErrorKind, u64>,
) -> Result<HashMap<String, admin::GroupDescription>, KafkaError> {
    let timeout = plan
        .step("DescribeGroups")
        .map_err(|_| KafkaError::GroupListFetch(RDKafkaErrorCode::OperationTimedOut))?;
    let list = client.fetch_group_list(None, timeout)?;
    let wanted: std::collections::HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut out = HashMap::with_capacity(wanted.len());
    for info in list.groups() {
        if !wanted.contains(info.name()) {
            continue;
        }
        if let Some(d) = classic_description(info, partial) {
            out.insert(info.name().to_string(), d);
        }
    }
    Ok(out)
}

/// A classic DescribeGroups answer as a description; None when it has no state
/// or says "Dead" (unknown to the classic coordinator, e.g. a KIP-848 group).
fn classic_description(
    info: &rdkafka::groups::GroupInfo,
    partial: &mut BTreeMap<ErrorKind, u64>,
) -> Option<admin::GroupDescription> {
    let state = Some(info.state().to_string()).filter(|s| !s.is_empty() && s != "Dead")?;
    let mut members = Vec::with_capacity(info.members().len());
    for m in info.members() {
        let assignment = match m.assignment().map(assignment::decode) {
            Some(Some(a)) => a,
            Some(None) => {
                count(partial, ErrorKind::Decode, 1);
                Vec::new()
            }
            None => Vec::new(),
        };
        members.push(admin::MemberDescription {
            member_id: m.id().to_string(),
            client_id: m.client_id().to_string(),
            host: m.client_host().to_string(),
            group_instance_id: None,
            assignment,
        });
    }
    Some(admin::GroupDescription {
        state: Some(state),
        members,
    })
}

fn is_active(state: Option<&str>) -> bool {
    matches!(
        state,
        Some("Stable" | "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling")
    )
}

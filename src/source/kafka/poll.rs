//! One Kafka poll, blocking, as its steps in order; each step is a file of its
//! own, named by the request it sends. Committed offsets are read before latest
//! offsets (step 3 before 5), so a consistent broker never shows committed above
//! latest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::bindings::rd_kafka_IsolationLevel_t;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;

use super::admin::{Admin, AdminError};
use super::context::connectivity_kind;
use super::trace::PollTrace;
use super::{dead_letters, drain, lag, timestamps, Client};
use crate::config::{NameFilter, Shard};
use crate::model::{
    ConsumerKey, ErrorKind, ExactRequests, Millis, PollData, PollFailure, RetentionLimits, Sample,
    SourceId,
};

/// Everything the blocking part of a poll needs, owned.
pub(super) struct Plan {
    pub source: SourceId,
    /// Configured group ids; empty: discover with ListGroups.
    pub groups: Vec<String>,
    pub group_filter: NameFilter,
    pub topic_filter: NameFilter,
    pub isolation: rd_kafka_IsolationLevel_t,
    pub request_timeout: Duration,
    pub deadline: Instant,
    /// Describe groups this poll (step 4); false while it backs off.
    pub describe: bool,
    /// Try the batched classic describe (step 4a) this poll.
    pub batch_describe: bool,
    pub shard: Shard,
    /// Topics whose config was described recently (step 6 skips them).
    pub configs_known: Arc<HashSet<Arc<str>>>,
    /// Describe every measured topic's config again this poll.
    pub configs_refresh: bool,
    /// Keys whose oldest unconsumed message's timestamp to read (step 7).
    pub exact: ExactRequests,
    pub fetcher: Option<Arc<timestamps::Fetcher>>,
    pub timestamps: Arc<Mutex<timestamps::Cache>>,
    /// Which topics are dead-letter topics (read with step 5).
    pub dead_letters: Arc<crate::analysis::dead_letters::DeadLetterSettings>,
    /// Step 3a, batched committed offsets; None: librdkafka's step 3 only.
    pub direct: Option<Arc<Mutex<super::direct::Direct>>>,
}

impl Plan {
    /// The timeout of the next step: the request timeout, cut to the deadline.
    pub fn step(&self, what: &str) -> Result<Duration, PollFailure> {
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

/// What one poll produced, and how its backed-off steps went.
pub(super) struct Outcome {
    pub data: PollData,
    pub trace: PollTrace,
    pub describe_failed: bool,
    /// None: the batched classic describe was not tried this poll.
    pub batch_describe_failed: Option<bool>,
    /// Topic retention described this poll (None: described, not known).
    pub configs: HashMap<Arc<str>, Option<RetentionLimits>>,
    /// How step 3a went; None when it was not tried.
    pub direct: Option<Result<(), super::direct::DirectError>>,
}

/// Partial failures of one poll, counted by kind.
pub(super) type Partial = BTreeMap<ErrorKind, u64>;

pub(super) fn count(errors: &mut Partial, kind: ErrorKind, n: u64) {
    if n > 0 {
        *errors.entry(kind).or_default() += n;
    }
}

/// The kind of a failed step: connectivity/auth when the code or a recent
/// global error says so, otherwise timeout or the step's own kind.
pub(super) fn classify(
    client: &Client,
    code: Option<RDKafkaErrorCode>,
    step: ErrorKind,
) -> ErrorKind {
    drain(client);
    let recent = client.context().recent_problem();
    if let Some(k) = code.and_then(connectivity_kind) {
        // librdkafka drops a connection whose SASL step failed (no token, a
        // refused login): the transport failure is the symptom, auth the cause.
        // Only a login failure counts, not a TLS error: a TLS cluster behind a
        // load balancer resets handshakes while its brokers are down.
        let login = client.context().recent_login_problem().is_some();
        return if k == ErrorKind::Connect && login {
            ErrorKind::Auth
        } else {
            k
        };
    }
    let timed_out = matches!(
        code,
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::TimedOutQueue
        )
    );
    match recent {
        Some(k) if timed_out || step == ErrorKind::Metadata => k,
        _ if timed_out => ErrorKind::Timeout,
        _ => step,
    }
}

pub(super) fn fail(client: &Client, step: ErrorKind, what: &str, e: &AdminError) -> PollFailure {
    failure(client, Some(e.code), step, format!("{what}: {e}"))
}

/// A failed step, classified; an auth failure says its cause (a SASL error, a
/// missing token file: what librdkafka or the token source said), not only
/// the step that timed out.
pub(super) fn failure(
    client: &Client,
    code: Option<RDKafkaErrorCode>,
    step: ErrorKind,
    message: String,
) -> PollFailure {
    let kind = classify(client, code, step);
    let cause = match client.context().recent_problem_detail() {
        Some((ErrorKind::Auth, detail)) if kind == ErrorKind::Auth => format!(" ({detail})"),
        _ => String::new(),
    };
    PollFailure {
        kind,
        message: format!("{message}{cause}"),
    }
}

/// The state of one poll in progress: the client, the plan, and what the steps
/// have counted so far. Each step (`metadata.rs`, `list_groups.rs`, ...) is a
/// method of it.
pub(super) struct Poll<'a> {
    pub client: &'a Client,
    pub admin: Admin<'a>,
    pub plan: &'a Plan,
    pub trace: PollTrace,
    pub partial: Partial,
    /// The brokers of the metadata (step 1), for steps 3a and 5a.
    pub brokers: Vec<super::direct::Broker>,
    /// Each partition's leader (step 1), for step 5a; filled only when the
    /// batched steps are on.
    pub leaders: HashMap<super::lag::Tp, i32>,
    pub direct: Option<Result<(), super::direct::DirectError>>,
}

impl Poll<'_> {
    /// Step 7: for the samples the engine asked about, reads the timestamp of
    /// the oldest unconsumed message (once per partition and offset), and marks
    /// every sample whose oldest unconsumed message's timestamp is known.
    fn read_timestamps(&mut self, samples: &mut [Sample]) {
        let Ok(mut cache) = self.plan.timestamps.lock() else {
            return;
        };
        let allowed = cache.backoff.allows(Instant::now());
        if let (Some(fetcher), false, true) =
            (&self.plan.fetcher, self.plan.exact.is_empty(), allowed)
        {
            // The engine asks for a few hundred keys of up to 50,000 samples:
            // look the samples up among the asked keys, not the other way.
            let asked: crate::model::FastMap<&ConsumerKey, usize> = self
                .plan
                .exact
                .keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k, i))
                .collect();
            let mut lagging: Vec<(usize, &Sample)> = samples
                .iter()
                .filter(|s| s.lag > 0)
                .filter_map(|s| asked.get(&s.key).map(|i| (*i, s)))
                .collect();
            lagging.sort_by_key(|(i, _)| *i);
            // In the engine's order, the lagging ones not known yet, at most
            // the budget.
            let wanted: Vec<timestamps::At> = lagging
                .into_iter()
                .filter_map(|(_, s)| Some((s.key.topic.clone(), s.key.partition?, oldest(s)?)))
                .filter(|at| cache.get(at).is_none())
                .take(self.plan.exact.budget)
                .collect();
            if let Ok(timeout) = self.plan.step("Fetch") {
                let started = Instant::now();
                let fetched = timestamps::fetch(fetcher, &wanted, &mut cache, timeout);
                self.trace.phase("fetch_timestamps", started, fetched.read);
                match fetched.failure {
                    Some(timestamps::Failure::Refused(why)) => {
                        cache.backoff.failed(
                            &self.plan.source,
                            Instant::now(),
                            &why,
                            "Grant lagwatch READ on the topics",
                        );
                        count(&mut self.partial, ErrorKind::ReadTimestamps, 1);
                    }
                    Some(timestamps::Failure::Other(_)) => {
                        count(&mut self.partial, ErrorKind::ReadTimestamps, 1);
                    }
                    None => {}
                }
            }
        }
        if cache.is_empty() {
            return;
        }
        let mut live = HashSet::new();
        for s in samples.iter_mut().filter(|s| s.lag > 0) {
            let (Some(p), Some(o)) = (s.key.partition, oldest(s)) else {
                continue;
            };
            let at = (s.key.topic.clone(), p, o);
            if let Some(written) = cache.get(&at) {
                s.oldest_written = Some((o, written));
                live.insert(at);
            }
        }
        cache.keep_only(&live);
    }

    pub fn count(&mut self, kind: ErrorKind, n: u64) {
        count(&mut self.partial, kind, n);
    }

    pub fn fail(&self, step: ErrorKind, what: &str, e: &AdminError) -> PollFailure {
        fail(self.client, step, what, e)
    }
}

/// The oldest unconsumed offset that still exists: the committed offset, or
/// the earliest stored one when retention passed it.
fn oldest(s: &Sample) -> Option<i64> {
    let c = s.committed?;
    Some(s.low.map_or(c, |l| c.max(l)))
}

/// One poll, blocking. Returns the data or why the cluster is unusable.
pub(super) fn run(client: &Client, plan: &Plan) -> Result<Outcome, PollFailure> {
    drain(client);
    let admin = Admin::new(client.client(), plan.request_timeout)
        .ok_or_else(|| PollFailure {
            kind: ErrorKind::Other,
            message: "the Kafka client has no handle".into(),
        })?
        .until(plan.deadline);
    let mut poll = Poll {
        client,
        admin,
        plan,
        trace: PollTrace::default(),
        partial: Partial::new(),
        brokers: Vec::new(),
        leaders: HashMap::new(),
        direct: None,
    };
    let topics = poll.metadata()?;
    let listed = poll.list_groups()?;
    poll.trace.groups = listed.groups.len();
    let mut readings = poll.offset_fetch(&listed.groups, &topics)?;
    let described = poll.describe(&listed, &mut readings, &topics)?;
    let dlqs = dead_letters::find(&topics, plan);
    let read_started = Millis::now();
    let offsets = poll.list_offsets(&readings, &topics, &dlqs)?;
    // The latest offsets were read during that call: the poll's points are
    // stamped with its middle, not with the poll's start.
    let read_at = Millis((read_started.0 + Millis::now().0) / 2);
    let configs = poll.topic_configs(&offsets.measured);
    let mut assembled = lag::assemble(
        &plan.source,
        &readings,
        &topics,
        &offsets.latest,
        &offsets.earliest,
    );
    let mut skipped = 0;
    // Only a process that sees every group can tell "the only group reading
    // the topic" and "nobody drains it".
    let sees_all =
        plan.shard.count <= 1 && plan.groups.is_empty() && plan.group_filter.allows_all();
    let dead = dead_letters::readings(
        &dlqs,
        &offsets.latest,
        &offsets.earliest,
        sees_all,
        &mut skipped,
    );
    // A dead-letter topic not read is stale, not gone: the poll is not clean.
    poll.count(ErrorKind::ListOffsets, skipped);
    poll.read_timestamps(&mut assembled.samples);
    poll.trace.samples = assembled.samples.len();
    client.context().clear_problem();
    Ok(Outcome {
        data: PollData {
            samples: assembled.samples,
            groups: described.infos,
            partial_errors: poll.partial.into_iter().collect(),
            anomalies: assembled.anomalies,
            streams: Vec::new(),
            retention: Vec::new(),
            read_at: Some(read_at),
            dead_letters: dead,
            advisories: None,
        },
        trace: poll.trace,
        describe_failed: described.failed,
        batch_describe_failed: described.batch_failed,
        configs,
        direct: poll.direct,
    })
}

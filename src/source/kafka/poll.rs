//! One Kafka poll, blocking, as its steps in order; each step is a file of its
//! own, named by the request it sends. Committed offsets are read before latest
//! offsets (step 3 before 5), so a consistent broker never shows committed above
//! latest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::bindings::rd_kafka_IsolationLevel_t;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;

use super::admin::{Admin, AdminError};
use super::context::connectivity_kind;
use super::trace::PollTrace;
use super::{drain, lag, Client};
use crate::config::{NameFilter, Shard};
use crate::model::{ErrorKind, PollData, PollFailure, SourceId};

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

pub(super) fn fail(client: &Client, step: ErrorKind, what: &str, e: &AdminError) -> PollFailure {
    PollFailure {
        kind: classify(client, Some(e.code), step),
        message: format!("{what}: {e}"),
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
}

impl Poll<'_> {
    pub fn count(&mut self, kind: ErrorKind, n: u64) {
        count(&mut self.partial, kind, n);
    }

    pub fn fail(&self, step: ErrorKind, what: &str, e: &AdminError) -> PollFailure {
        fail(self.client, step, what, e)
    }
}

/// One poll, blocking. Returns the data or why the cluster is unusable.
pub(super) fn run(client: &Client, plan: &Plan) -> Result<Outcome, PollFailure> {
    drain(client);
    let admin = Admin::new(client.client(), plan.request_timeout).ok_or_else(|| PollFailure {
        kind: ErrorKind::Other,
        message: "the Kafka client has no handle".into(),
    })?;
    let mut poll = Poll {
        client,
        admin,
        plan,
        trace: PollTrace::default(),
        partial: Partial::new(),
    };
    let topics = poll.metadata()?;
    let listed = poll.list_groups()?;
    poll.trace.groups = listed.groups.len();
    let mut readings = poll.offset_fetch(&listed.groups, &topics)?;
    let described = poll.describe(&listed, &mut readings, &topics)?;
    let offsets = poll.list_offsets(&readings, &topics)?;
    let assembled = lag::assemble(
        &plan.source,
        &readings,
        &topics,
        &offsets.latest,
        &offsets.earliest,
    );
    poll.trace.samples = assembled.samples.len();
    client.context().clear_problem();
    Ok(Outcome {
        data: PollData {
            samples: assembled.samples,
            groups: described.infos,
            partial_errors: poll.partial.into_iter().collect(),
            anomalies: assembled.anomalies,
            streams: Vec::new(),
        },
        trace: poll.trace,
        describe_failed: described.failed,
        batch_describe_failed: described.batch_failed,
    })
}

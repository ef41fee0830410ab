//! Safe wrappers over the librdkafka admin calls rdkafka 0.39 does not expose
//! (ListConsumerGroups, DescribeConsumerGroups, ListConsumerGroupOffsets,
//! ListOffsets). With `memory.rs`'s two glibc calls, the only `unsafe` code of
//! lagwatch (the crate denies `unsafe_code` everywhere else).
//!
//! Every librdkafka object created here is owned by an RAII guard (options, queue,
//! events, partition lists, request objects), so each is freed on every path,
//! early returns and panics included. Results are copied into owned Rust values
//! before the event that holds them is destroyed. All calls block the calling
//! thread (run them in `spawn_blocking`) for at most the request timeout plus a
//! small margin.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::types::RDKafkaErrorCode;

/// librdkafka delivers a timed-out admin result itself at the request timeout;
/// this margin only guards against waiting forever if that result never comes.
const QUEUE_MARGIN: Duration = Duration::from_secs(1);

/// How long a result collector sleeps when its queue is empty (see `Queue::wait`).
const QUEUE_NAP: Duration = Duration::from_millis(2);

/// Partitions per ListOffsets call. librdkafka 2.12 looks up each partition of
/// a call with a linear search, twice (finding leaders, then merging each
/// leader's answer in `rd_kafka_ListOffsets_response_merge`), so a call costs
/// O(n^2) string compares. Measured on 10,000 partitions (benches/kafka_poll.rs,
/// daemon CPU per poll): one call ~1.4 s, chunks of 1,000 0.38 s, 250 0.30 s,
/// 100 0.28 s, 50 0.33 s (more requests than compares saved).
const LIST_OFFSETS_CHUNK: usize = 100;

/// An error librdkafka or the broker reported for one admin call or one item of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminError {
    pub code: RDKafkaErrorCode,
    pub message: String,
}

impl AdminError {
    fn new(code: RDKafkaErrorCode, message: impl Into<String>) -> Self {
        AdminError {
            code,
            message: message.into(),
        }
    }

    fn timed_out(what: &str) -> Self {
        Self::new(
            RDKafkaErrorCode::OperationTimedOut,
            format!("{what}: no answer before the deadline"),
        )
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} ({:?})", self.message, self.code)
        }
    }
}

/// Which end of a partition [`Admin::list_offsets`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OffsetSpec {
    Latest,
    Earliest,
}

impl OffsetSpec {
    fn raw(self) -> i64 {
        match self {
            OffsetSpec::Latest => rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_LATEST as i64,
            OffsetSpec::Earliest => rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_EARLIEST as i64,
        }
    }
}

/// One group as ListConsumerGroups saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    pub group: String,
    /// "Stable", "Empty", ...; None when the broker did not say.
    pub state: Option<String>,
}

/// The groups of the cluster, plus the brokers that could not answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupList {
    pub groups: Vec<GroupListing>,
    pub errors: Vec<AdminError>,
}

/// One member of a described group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    pub group_instance_id: Option<String>,
    pub assignment: Vec<(String, i32)>,
}

/// What DescribeConsumerGroups said about one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub state: Option<String>,
    pub members: Vec<MemberDescription>,
}

/// One committed offset; `offset` None means "no commit" (librdkafka's -1001 /
/// the broker's -1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub topic: String,
    pub partition: i32,
    pub offset: Option<i64>,
    pub error: Option<AdminError>,
}

/// Latest or earliest offset of one partition, or why it is unknown.
pub type PartitionOffsets = HashMap<(String, i32), Result<i64, AdminError>>;

/// Admin calls on the librdkafka handle of one client. Borrowing the client keeps
/// the handle alive for as long as this value exists.
#[derive(Debug)]
pub struct Admin<'a> {
    rk: NonNull<rd::rd_kafka_t>,
    timeout: Duration,
    /// No call runs past this (the poll's deadline): each call's timeout is
    /// cut to what is left, so a poll never outlives its deadline and the
    /// next poll never overlaps it.
    until: Option<Instant>,
    _client: PhantomData<&'a ()>,
}

impl<'a> Admin<'a> {
    /// `timeout` bounds each call: librdkafka's request timeout for it, and how
    /// long we wait for its result.
    pub fn new<C: ClientContext>(client: &'a Client<C>, timeout: Duration) -> Option<Self> {
        Some(Admin {
            rk: NonNull::new(client.native_ptr())?,
            timeout,
            until: None,
            _client: PhantomData,
        })
    }

    /// Cuts every call to end by `deadline`.
    pub fn until(mut self, deadline: Instant) -> Self {
        self.until = Some(deadline);
        self
    }

    /// The timeout of a call starting now: the request timeout, cut to the
    /// deadline (at least 1 ms: librdkafka treats 0 as "no timeout").
    fn call_timeout(&self) -> Duration {
        let left = self.until.map_or(self.timeout, |u| {
            u.saturating_duration_since(Instant::now())
        });
        self.timeout.min(left).max(Duration::from_millis(1))
    }

    fn options(&self, op: rd::rd_kafka_admin_op_t) -> Result<Options, AdminError> {
        Options::new(self.rk, op, self.call_timeout())
    }

    fn queue(&self) -> Result<Queue, AdminError> {
        Queue::new(self.rk)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.call_timeout() + QUEUE_MARGIN
    }

    /// ListConsumerGroups: every consumer group of the cluster, in every state
    /// (Empty included), asked of every broker.
    pub fn list_groups(&self) -> Result<GroupList, AdminError> {
        let options =
            self.options(rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS)?;
        let queue = self.queue()?;
        // SAFETY: rk is alive (borrowed client); options and queue are valid
        // guards; librdkafka copies the options and keeps its own queue reference.
        unsafe { rd::rd_kafka_ListConsumerGroups(self.rk.as_ptr(), options.ptr(), queue.ptr()) };
        let event = queue
            .wait(
                rd::RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT,
                self.deadline(),
            )
            .ok_or_else(|| AdminError::timed_out("ListConsumerGroups"))?;
        event.error()?;
        // SAFETY: the event is a LISTCONSUMERGROUPS_RESULT (checked in wait); the
        // result and every pointer reached from it live as long as the event.
        unsafe {
            let result = rd::rd_kafka_event_ListConsumerGroups_result(event.ptr());
            if result.is_null() {
                return Err(AdminError::new(
                    RDKafkaErrorCode::Fail,
                    "ListConsumerGroups: empty result",
                ));
            }
            let mut n = 0usize;
            let valid = rd::rd_kafka_ListConsumerGroups_result_valid(result, &mut n);
            let mut out = GroupList::default();
            for &g in raw_slice(valid, n) {
                let Some(group) = string(rd::rd_kafka_ConsumerGroupListing_group_id(g)) else {
                    continue;
                };
                let state = state_name(rd::rd_kafka_ConsumerGroupListing_state(g));
                out.groups.push(GroupListing { group, state });
            }
            let mut n = 0usize;
            let errors = rd::rd_kafka_ListConsumerGroups_result_errors(result, &mut n);
            for &e in raw_slice(errors, n) {
                out.errors.push(error_from(e));
            }
            Ok(out)
        }
    }

    /// DescribeConfigs of every topic in `topics`, in one call: each topic's
    /// config entries (name -> value; a broker may answer only the entries set
    /// on the topic, as tansu does, or every effective value, as Kafka does), or
    /// that topic's error.
    pub fn describe_topic_configs(&self, topics: &[String]) -> Result<TopicConfigs, AdminError> {
        if topics.is_empty() {
            return Ok(HashMap::new());
        }
        let names = topics
            .iter()
            .map(|t| CString::new(t.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| AdminError::new(RDKafkaErrorCode::InvalidArgument, "topic with NUL"))?;
        let mut resources = ConfigResources(Vec::with_capacity(names.len()));
        for n in &names {
            // SAFETY: `n` is a valid C string, copied by librdkafka; the resource
            // is owned by the guard.
            let r = unsafe {
                rd::rd_kafka_ConfigResource_new(
                    rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                    n.as_ptr(),
                )
            };
            if r.is_null() {
                return Err(AdminError::new(RDKafkaErrorCode::Fail, "out of memory"));
            }
            resources.0.push(r);
        }
        let options = self.options(rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS)?;
        let queue = self.queue()?;
        // SAFETY: rk alive; `resources` holds valid resources (librdkafka copies
        // them and the options during the call); queue is a valid guard.
        unsafe {
            rd::rd_kafka_DescribeConfigs(
                self.rk.as_ptr(),
                resources.0.as_mut_ptr(),
                resources.0.len(),
                options.ptr(),
                queue.ptr(),
            )
        };
        let event = queue
            .wait(rd::RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, self.deadline())
            .ok_or_else(|| AdminError::timed_out("DescribeConfigs"))?;
        event.error()?;
        // SAFETY: the event is a DESCRIBECONFIGS_RESULT (checked in wait).
        unsafe { topic_configs_of(&event) }
    }

    /// DescribeConsumerGroups for all `groups` in one call (librdkafka sends one
    /// DescribeGroups request per group to its coordinator, all in flight at once).
    pub fn describe_groups(
        &self,
        groups: &[String],
    ) -> Result<HashMap<String, Result<GroupDescription, AdminError>>, AdminError> {
        if groups.is_empty() {
            return Ok(HashMap::new());
        }
        let names = groups
            .iter()
            .map(|g| CString::new(g.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| AdminError::new(RDKafkaErrorCode::InvalidArgument, "group id with NUL"))?;
        let mut ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        let options =
            self.options(rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS)?;
        let queue = self.queue()?;
        // SAFETY: `ptrs` points into `names`, both alive for the call; librdkafka
        // copies the group names and the options before returning.
        unsafe {
            rd::rd_kafka_DescribeConsumerGroups(
                self.rk.as_ptr(),
                ptrs.as_mut_ptr(),
                ptrs.len(),
                options.ptr(),
                queue.ptr(),
            )
        };
        let event = queue
            .wait(
                rd::RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT,
                self.deadline(),
            )
            .ok_or_else(|| AdminError::timed_out("DescribeConsumerGroups"))?;
        event.error()?;
        let mut out = HashMap::new();
        // SAFETY: the event type was checked; all pointers below are owned by the
        // event, which outlives this block; strings are copied out.
        unsafe {
            let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event.ptr());
            if result.is_null() {
                return Err(AdminError::new(
                    RDKafkaErrorCode::Fail,
                    "DescribeConsumerGroups: empty result",
                ));
            }
            let mut n = 0usize;
            let descs = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut n);
            for &d in raw_slice(descs, n) {
                let Some(group) = string(rd::rd_kafka_ConsumerGroupDescription_group_id(d)) else {
                    continue;
                };
                let err = rd::rd_kafka_ConsumerGroupDescription_error(d);
                if !err.is_null() && error_from(err).code != RDKafkaErrorCode::NoError {
                    out.insert(group, Err(error_from(err)));
                    continue;
                }
                let state = state_name(rd::rd_kafka_ConsumerGroupDescription_state(d));
                let members = members_of(d);
                out.insert(group, Ok(GroupDescription { state, members }));
            }
        }
        Ok(out)
    }

    /// Committed offsets of every group in `groups`, all partitions each group
    /// has committed on. librdkafka takes one group per ListConsumerGroupOffsets
    /// call, so all calls are enqueued first on one queue and then collected:
    /// the requests are in flight together instead of one round trip after another.
    /// The answer is in the order of `groups`.
    ///
    /// `only` None asks for every partition the group committed on (one
    /// null-topics OffsetFetch); librdkafka's MockCluster answers that with
    /// nothing, so explicit lists are supported too.
    pub fn list_group_offsets(
        &self,
        groups: &[String],
        only: Option<&[(String, i32)]>,
    ) -> Vec<Result<Vec<Committed>, AdminError>> {
        let all =
            |r: Result<Vec<Committed>, AdminError>| groups.iter().map(|_| r.clone()).collect();
        if groups.is_empty() {
            return Vec::new();
        }
        let setup = || -> Result<(Options, Queue), AdminError> {
            Ok((
                self.options(rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS)?,
                self.queue()?,
            ))
        };
        let (options, queue) = match setup() {
            Ok(x) => x,
            Err(e) => return all(Err(e)),
        };
        let list = match only {
            Some([]) => return all(Ok(Vec::new())),
            Some(p) => match PartitionList::build(p, i64::from(rd::RD_KAFKA_OFFSET_INVALID)) {
                Ok(l) => Some(l),
                Err(e) => return all(Err(e)),
            },
            None => None,
        };
        let mut out = all(Err(AdminError::timed_out("ListConsumerGroupOffsets")));
        let sent = self.send_group_offsets(groups, list.as_ref(), &options, &queue, &mut out);
        let deadline = self.deadline();
        for _ in 0..sent {
            let Some(event) =
                queue.wait(rd::RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT, deadline)
            else {
                break;
            };
            if let Some(slot) = out.get_mut(event.opaque()) {
                // SAFETY: the event is a ListConsumerGroupOffsets result (waited for
                // by type) and stays alive for the call.
                *slot = event
                    .error()
                    .and_then(|()| unsafe { group_offsets_of(&event) });
            }
        }
        out
    }

    /// Enqueues one ListConsumerGroupOffsets call per group on `queue`, each
    /// tagged with its index; a group that cannot be asked gets its error in
    /// `out`. Returns how many calls were sent.
    fn send_group_offsets(
        &self,
        groups: &[String],
        list: Option<&PartitionList>,
        options: &Options,
        queue: &Queue,
        out: &mut [Result<Vec<Committed>, AdminError>],
    ) -> usize {
        let list_ptr = list.map_or(std::ptr::null(), |l| l.ptr().cast_const());
        let mut sent = 0usize;
        for (i, group) in groups.iter().enumerate() {
            let Ok(name) = CString::new(group.as_str()) else {
                out[i] = Err(AdminError::new(
                    RDKafkaErrorCode::InvalidArgument,
                    "group id with NUL",
                ));
                continue;
            };
            // SAFETY: `name` is a valid C string; `list_ptr` is null ("all
            // partitions the group committed on") or the guarded list, which
            // librdkafka copies. The request object is owned by the guard and
            // librdkafka copies it (and the options) during the call.
            let request = match GroupOffsetsRequest::new(unsafe {
                rd::rd_kafka_ListConsumerGroupOffsets_new(name.as_ptr(), list_ptr)
            }) {
                Some(r) => r,
                None => {
                    out[i] = Err(AdminError::new(RDKafkaErrorCode::Fail, "out of memory"));
                    continue;
                }
            };
            options.set_opaque(i);
            let mut one = [request.ptr()];
            // SAFETY: rk alive; `one` holds one valid request (librdkafka allows
            // exactly one per call); options and queue are valid guards.
            unsafe {
                rd::rd_kafka_ListConsumerGroupOffsets(
                    self.rk.as_ptr(),
                    one.as_mut_ptr(),
                    1,
                    options.ptr(),
                    queue.ptr(),
                )
            };
            sent += 1;
        }
        sent
    }

    /// ListOffsets for every partition in `partitions`, once per spec in `specs`.
    /// Partitions go in chunks of `LIST_OFFSETS_CHUNK` per admin call (librdkafka
    /// splits each call per partition leader); all calls of all specs are in
    /// flight together on one queue. `isolation` is explicit: librdkafka's own
    /// default is read_committed, Java tooling's is read_uncommitted.
    ///
    /// A chunk whose call fails marks its partitions with that error; a spec
    /// fails as a whole only when every chunk failed.
    pub fn list_offsets(
        &self,
        partitions: &[(String, i32)],
        specs: &[OffsetSpec],
        isolation: rd::rd_kafka_IsolationLevel_t,
    ) -> Vec<Result<PartitionOffsets, AdminError>> {
        if partitions.is_empty() {
            return specs.iter().map(|_| Ok(HashMap::new())).collect();
        }
        let setup = || -> Result<(Options, Queue), AdminError> {
            let options = self.options(rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTOFFSETS)?;
            options.set_isolation(isolation)?;
            Ok((options, self.queue()?))
        };
        let (options, queue) = match setup() {
            Ok(x) => x,
            Err(e) => return specs.iter().map(|_| Err(e.clone())).collect(),
        };
        let chunks: Vec<&[(String, i32)]> = partitions.chunks(LIST_OFFSETS_CHUNK).collect();
        let mut answers = OffsetAnswers::new(specs.len());
        let calls = self.send_list_offsets(&chunks, specs, &options, &queue, &mut answers);
        let mut answered = vec![false; calls.len()];
        let deadline = self.deadline();
        for _ in 0..calls.len() {
            let Some(event) = queue.wait(rd::RD_KAFKA_EVENT_LISTOFFSETS_RESULT, deadline) else {
                break;
            };
            let i = event.opaque();
            let Some(&(s, chunk)) = calls.get(i) else {
                continue;
            };
            answered[i] = true;
            // SAFETY: the event is a ListOffsets result (waited for by type) and
            // stays alive for the call.
            let result = event
                .error()
                .and_then(|()| unsafe { offsets_of(&event, &mut answers.maps[s]) });
            if let Err(e) = result {
                answers.chunk_failed(s, chunk, e);
            }
        }
        for (i, (s, chunk)) in calls.iter().enumerate() {
            if !answered[i] {
                answers.chunk_failed(*s, chunk, AdminError::timed_out("ListOffsets"));
            }
        }
        answers.finish(chunks.len())
    }

    /// Enqueues one ListOffsets call per (spec, chunk) on `queue`, tagged with
    /// its index in the returned list of calls.
    fn send_list_offsets<'c>(
        &self,
        chunks: &[&'c [(String, i32)]],
        specs: &[OffsetSpec],
        options: &Options,
        queue: &Queue,
        answers: &mut OffsetAnswers,
    ) -> Vec<(usize, &'c [(String, i32)])> {
        let mut calls = Vec::new();
        for (s, spec) in specs.iter().enumerate() {
            for chunk in chunks {
                let list = match PartitionList::build(chunk, spec.raw()) {
                    Ok(l) => l,
                    Err(e) => {
                        answers.failed[s].push(e);
                        continue;
                    }
                };
                options.set_opaque(calls.len());
                calls.push((s, *chunk));
                // SAFETY: rk alive; `list` is a valid list without duplicates
                // (callers pass a set); librdkafka copies list and options.
                unsafe {
                    rd::rd_kafka_ListOffsets(
                        self.rk.as_ptr(),
                        list.ptr(),
                        options.ptr(),
                        queue.ptr(),
                    )
                };
            }
        }
        calls
    }
}

/// The members of one group description, copied out.
///
/// # Safety
/// `d` must point to a ConsumerGroupDescription alive for the call.
unsafe fn members_of(d: *const rd::rd_kafka_ConsumerGroupDescription_t) -> Vec<MemberDescription> {
    // SAFETY: every pointer is owned by the description, alive in this call;
    // strings and partitions are copied out.
    unsafe {
        let count = rd::rd_kafka_ConsumerGroupDescription_member_count(d);
        let mut members = Vec::with_capacity(count);
        for i in 0..count {
            let m = rd::rd_kafka_ConsumerGroupDescription_member(d, i);
            if m.is_null() {
                continue;
            }
            let a = rd::rd_kafka_MemberDescription_assignment(m);
            let assignment = if a.is_null() {
                Vec::new()
            } else {
                partitions(rd::rd_kafka_MemberAssignment_partitions(a))
                    .into_iter()
                    .map(|p| (p.topic, p.partition))
                    .collect()
            };
            members.push(MemberDescription {
                member_id: string(rd::rd_kafka_MemberDescription_consumer_id(m))
                    .unwrap_or_default(),
                client_id: string(rd::rd_kafka_MemberDescription_client_id(m)).unwrap_or_default(),
                host: string(rd::rd_kafka_MemberDescription_host(m)).unwrap_or_default(),
                group_instance_id: string(rd::rd_kafka_MemberDescription_group_instance_id(m)),
                assignment,
            });
        }
        members
    }
}

/// One group as the classic DescribeGroups (`rd_kafka_list_groups`) answered,
/// copied out with every string read lossily (rdkafka's own accessors panic on
/// a name that is not UTF-8) and every size bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicGroup {
    pub name: String,
    pub state: String,
    pub members: Vec<ClassicMember>,
    /// Members left out past [`MAX_CLASSIC_MEMBERS`], or assignments past
    /// [`MAX_ASSIGNMENT_BYTES`]: the caller counts them as decode errors.
    pub skipped: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicMember {
    pub id: String,
    pub client_id: String,
    pub host: String,
    /// The member assignment bytes (None: none, or over the bound).
    pub assignment: Option<Vec<u8>>,
}

/// Members read per group: a consumer group larger than this is not one.
pub const MAX_CLASSIC_MEMBERS: usize = 10_000;
/// Assignment bytes read per member (a 1 MiB assignment already names ~100,000
/// partitions); a larger one is skipped, not decoded.
pub const MAX_ASSIGNMENT_BYTES: usize = 1024 * 1024;

/// Frees the list on every path.
struct ClassicList(*const rd::rd_kafka_group_list);

impl Drop for ClassicList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the list came from rd_kafka_list_groups and is freed once.
            unsafe { rd::rd_kafka_group_list_destroy(self.0) }
        }
    }
}

impl Admin<'_> {
    /// The classic DescribeGroups of every group (or of `group`), as
    /// `rd_kafka_list_groups` gathers it from every broker, within the call's
    /// timeout.
    pub fn classic_groups(&self, group: Option<&str>) -> Result<Vec<ClassicGroup>, AdminError> {
        let name = group.map(CString::new).transpose().map_err(|_| {
            AdminError::new(RDKafkaErrorCode::InvalidArgument, "group name with NUL")
        })?;
        let mut list: *const rd::rd_kafka_group_list = std::ptr::null();
        let ms = c_int::try_from(self.call_timeout().as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: rk is alive (borrowed client); `name` outlives the call;
        // librdkafka allocates the list, freed by the guard below.
        let err = unsafe {
            rd::rd_kafka_list_groups(
                self.rk.as_ptr(),
                name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
                &mut list,
                ms,
            )
        };
        let list = ClassicList(list);
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(AdminError::new(err.into(), "classic DescribeGroups"));
        }
        if list.0.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: the list and everything it points to live until the guard
        // drops, after this copy.
        Ok(unsafe { classic_copy(&*list.0) })
    }
}

/// Copies a classic group list out, bounded.
///
/// # Safety
/// `l` and its arrays are valid for the call.
unsafe fn classic_copy(l: &rd::rd_kafka_group_list) -> Vec<ClassicGroup> {
    let count = usize::try_from(l.group_cnt).unwrap_or(0);
    if l.groups.is_null() || count == 0 {
        return Vec::new();
    }
    // SAFETY: `groups` holds `group_cnt` entries (librdkafka's contract).
    let groups = unsafe { std::slice::from_raw_parts(l.groups, count) };
    groups
        .iter()
        .map(|g| {
            let members_cnt = usize::try_from(g.member_cnt).unwrap_or(0);
            let mut skipped =
                u32::try_from(members_cnt.saturating_sub(MAX_CLASSIC_MEMBERS)).unwrap_or(u32::MAX);
            let members: &[rd::rd_kafka_group_member_info] = if g.members.is_null() {
                &[]
            } else {
                // SAFETY: `members` holds `member_cnt` entries.
                unsafe { std::slice::from_raw_parts(g.members, members_cnt) }
            };
            let members = members
                .iter()
                .take(MAX_CLASSIC_MEMBERS)
                .map(|m| {
                    let size = usize::try_from(m.member_assignment_size).unwrap_or(0);
                    let assignment = if m.member_assignment.is_null() || size == 0 {
                        None
                    } else if size > MAX_ASSIGNMENT_BYTES {
                        skipped = skipped.saturating_add(1);
                        None
                    } else {
                        // SAFETY: `member_assignment` holds `size` bytes.
                        Some(
                            unsafe {
                                std::slice::from_raw_parts(m.member_assignment.cast::<u8>(), size)
                            }
                            .to_vec(),
                        )
                    };
                    // SAFETY: NUL-terminated strings owned by the list, or null.
                    unsafe {
                        ClassicMember {
                            id: string(m.member_id).unwrap_or_default(),
                            client_id: string(m.client_id).unwrap_or_default(),
                            host: string(m.client_host).unwrap_or_default(),
                            assignment,
                        }
                    }
                })
                .collect();
            // SAFETY: as above.
            unsafe {
                ClassicGroup {
                    name: string(g.group).unwrap_or_default(),
                    state: string(g.state).unwrap_or_default(),
                    members,
                    skipped,
                }
            }
        })
        .collect()
}

/// Each topic's config entries (name -> value), or its error.
pub type TopicConfigs = HashMap<String, Result<HashMap<String, String>, AdminError>>;

/// Config resources owned until the call has copied them.
struct ConfigResources(Vec<*mut rd::rd_kafka_ConfigResource_t>);

impl Drop for ConfigResources {
    fn drop(&mut self) {
        for &r in &self.0 {
            // SAFETY: each resource was created by ConfigResource_new and is
            // owned here alone.
            unsafe { rd::rd_kafka_ConfigResource_destroy(r) }
        }
    }
}

/// The config entries of every topic in one DescribeConfigs result, copied out.
///
/// # Safety
/// `event` must be a DescribeConfigs result event.
unsafe fn topic_configs_of(event: &Event) -> Result<TopicConfigs, AdminError> {
    // SAFETY: every pointer is owned by the event, alive in this call; strings
    // are copied out.
    unsafe {
        let result = rd::rd_kafka_event_DescribeConfigs_result(event.ptr());
        if result.is_null() {
            return Err(AdminError::new(
                RDKafkaErrorCode::Fail,
                "DescribeConfigs: empty result",
            ));
        }
        let mut n = 0usize;
        let resources = rd::rd_kafka_DescribeConfigs_result_resources(result, &mut n);
        let mut out = HashMap::with_capacity(n);
        for &r in raw_slice(resources, n) {
            let Some(name) = string(rd::rd_kafka_ConfigResource_name(r)) else {
                continue;
            };
            let err = code(rd::rd_kafka_ConfigResource_error(r));
            if err != RDKafkaErrorCode::NoError {
                let message =
                    string(rd::rd_kafka_ConfigResource_error_string(r)).unwrap_or_default();
                out.insert(name, Err(AdminError::new(err, message)));
                continue;
            }
            let mut m = 0usize;
            let entries = rd::rd_kafka_ConfigResource_configs(r, &mut m);
            let mut configs = HashMap::with_capacity(m);
            for &e in raw_slice(entries, m) {
                if let (Some(k), Some(v)) = (
                    string(rd::rd_kafka_ConfigEntry_name(e)),
                    string(rd::rd_kafka_ConfigEntry_value(e)),
                ) {
                    configs.insert(k, v);
                }
            }
            out.insert(name, Ok(configs));
        }
        Ok(out)
    }
}

/// Per spec of one ListOffsets: the merged answers and the failed calls.
struct OffsetAnswers {
    maps: Vec<PartitionOffsets>,
    failed: Vec<Vec<AdminError>>,
}

impl OffsetAnswers {
    fn new(specs: usize) -> Self {
        OffsetAnswers {
            maps: (0..specs).map(|_| HashMap::new()).collect(),
            failed: (0..specs).map(|_| Vec::new()).collect(),
        }
    }

    /// Every partition of a failed call gets its error.
    fn chunk_failed(&mut self, spec: usize, chunk: &[(String, i32)], e: AdminError) {
        for tp in chunk {
            self.maps[spec].insert(tp.clone(), Err(e.clone()));
        }
        self.failed[spec].push(e);
    }

    /// Each spec's answers, or its first error when every chunk failed.
    fn finish(self, chunks: usize) -> Vec<Result<PartitionOffsets, AdminError>> {
        self.maps
            .into_iter()
            .zip(self.failed)
            .map(|(map, mut errors)| {
                if errors.len() >= chunks && !errors.is_empty() {
                    Err(errors.swap_remove(0))
                } else {
                    Ok(map)
                }
            })
            .collect()
    }
}

/// The committed offsets in one ListConsumerGroupOffsets result, copied out.
///
/// # Safety
/// `event` must be a ListConsumerGroupOffsets result event.
unsafe fn group_offsets_of(event: &Event) -> Result<Vec<Committed>, AdminError> {
    // SAFETY: pointers are owned by the event, alive in this call; everything is
    // copied out.
    unsafe {
        let result = rd::rd_kafka_event_ListConsumerGroupOffsets_result(event.ptr());
        if result.is_null() {
            return Err(AdminError::new(RDKafkaErrorCode::Fail, "empty result"));
        }
        let mut n = 0usize;
        let groups = rd::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut n);
        let mut committed = Vec::new();
        for &g in raw_slice(groups, n) {
            let err = rd::rd_kafka_group_result_error(g);
            if !err.is_null() {
                let e = error_from(err);
                if e.code != RDKafkaErrorCode::NoError {
                    return Err(e);
                }
            }
            for p in partitions(rd::rd_kafka_group_result_partitions(g)) {
                committed.push(Committed {
                    // Kafka answers -1 for "no commit"; librdkafka maps it to
                    // RD_KAFKA_OFFSET_INVALID (-1001). Any negative value is
                    // "no commit", never offset zero.
                    offset: (p.offset >= 0 && p.error.is_none()).then_some(p.offset),
                    topic: p.topic,
                    partition: p.partition,
                    error: p.error,
                });
            }
        }
        Ok(committed)
    }
}

/// Merges the offsets of one ListOffsets result into `map`.
///
/// # Safety
/// `event` must be a ListOffsets result event.
unsafe fn offsets_of(event: &Event, map: &mut PartitionOffsets) -> Result<(), AdminError> {
    // SAFETY: infos and their partitions are owned by the event, alive in this
    // call; values are copied out.
    unsafe {
        let result = rd::rd_kafka_event_ListOffsets_result(event.ptr());
        if result.is_null() {
            return Err(AdminError::new(RDKafkaErrorCode::Fail, "empty result"));
        }
        let mut n = 0usize;
        let infos = rd::rd_kafka_ListOffsets_result_infos(result, &mut n);
        for &info in raw_slice(infos, n) {
            let tp = rd::rd_kafka_ListOffsetsResultInfo_topic_partition(info);
            if let Some(p) = partition(tp) {
                let value = match p.error {
                    Some(e) => Err(e),
                    None => Ok(p.offset),
                };
                map.insert((p.topic, p.partition), value);
            }
        }
        Ok(())
    }
}

/// Events waiting on the client's main queue (logs, errors, statistics that
/// rdkafka serves on `poll`). rdkafka's `poll` returns None after serving one
/// such event, so callers need the length to drain it.
pub fn main_queue_len<C: ClientContext>(client: &Client<C>) -> usize {
    let Some(rk) = NonNull::new(client.native_ptr()) else {
        return 0;
    };
    // SAFETY: rk is alive (borrowed client); get_main returns a new reference
    // to the main queue, released by the guard.
    let queue = NonNull::new(unsafe { rd::rd_kafka_queue_get_main(rk.as_ptr()) }).map(Queue);
    match queue {
        // SAFETY: the queue reference is valid while the guard lives.
        Some(q) => unsafe { rd::rd_kafka_queue_length(q.ptr()) },
        None => 0,
    }
}

/// A copied-out `rd_kafka_topic_partition_t`.
struct Partition {
    topic: String,
    partition: i32,
    offset: i64,
    error: Option<AdminError>,
}

/// Copies one partition out.
///
/// # Safety
/// `tp` is null or points to a valid `rd_kafka_topic_partition_t`.
unsafe fn partition(tp: *const rd::rd_kafka_topic_partition_t) -> Option<Partition> {
    // SAFETY: the caller's contract.
    let tp = unsafe { tp.as_ref()? };
    // SAFETY: librdkafka keeps `topic` a valid C string for the element's life.
    let topic = unsafe { string(tp.topic)? };
    let error = (tp.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
        .then(|| AdminError::new(code(tp.err), ""));
    Some(Partition {
        topic,
        partition: tp.partition,
        offset: tp.offset,
        error,
    })
}

/// Copies every element of a partition list out.
///
/// # Safety
/// `list` is null or points to a valid `rd_kafka_topic_partition_list_t`.
unsafe fn partitions(list: *const rd::rd_kafka_topic_partition_list_t) -> Vec<Partition> {
    // SAFETY: the caller's contract.
    let Some(list) = (unsafe { list.as_ref() }) else {
        return Vec::new();
    };
    let n = usize::try_from(list.cnt).unwrap_or(0);
    // SAFETY: `elems` holds `cnt` initialised elements (librdkafka's invariant).
    let elems = unsafe { raw_slice(list.elems as *const rd::rd_kafka_topic_partition_t, n) };
    elems
        .iter()
        // SAFETY: each element is a valid partition inside the list.
        .filter_map(|e| unsafe { partition(e) })
        .collect()
}

/// A slice over a librdkafka result array; empty for a null pointer.
///
/// # Safety
/// `ptr` is null or points to `n` initialised values that outlive `'a`.
unsafe fn raw_slice<'a, T>(ptr: *const T, n: usize) -> &'a [T] {
    if ptr.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(ptr, n) }
    }
}

/// Copies a C string; None for null.
///
/// # Safety
/// `p` is null or a valid NUL-terminated string.
unsafe fn string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: the caller's contract.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// A group state's name; None for "Unknown".
fn state_name(state: rd::rd_kafka_consumer_group_state_t) -> Option<String> {
    if state == rd::rd_kafka_consumer_group_state_t::RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN {
        return None;
    }
    // SAFETY: librdkafka returns a static string for every state value.
    unsafe { string(rd::rd_kafka_consumer_group_state_name(state)) }
}

fn code(err: rd::rd_kafka_resp_err_t) -> RDKafkaErrorCode {
    RDKafkaErrorCode::from(err)
}

/// Copies an `rd_kafka_error_t` it does not own.
///
/// # Safety
/// `e` is a valid error object.
unsafe fn error_from(e: *const rd::rd_kafka_error_t) -> AdminError {
    // SAFETY: the caller's contract; the string is copied.
    unsafe {
        AdminError::new(
            code(rd::rd_kafka_error_code(e)),
            string(rd::rd_kafka_error_string(e)).unwrap_or_default(),
        )
    }
}

/// Owns an `rd_kafka_AdminOptions_t`.
struct Options(NonNull<rd::rd_kafka_AdminOptions_t>);

impl Options {
    fn new(
        rk: NonNull<rd::rd_kafka_t>,
        op: rd::rd_kafka_admin_op_t,
        timeout: Duration,
    ) -> Result<Self, AdminError> {
        // SAFETY: rk is a live handle (see Admin); a null result means the op is
        // unknown to this librdkafka and is handled below.
        let raw = unsafe { rd::rd_kafka_AdminOptions_new(rk.as_ptr(), op) };
        let options = Options(NonNull::new(raw).ok_or_else(|| {
            AdminError::new(
                RDKafkaErrorCode::UnsupportedFeature,
                "admin operation not supported by librdkafka",
            )
        })?);
        let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
        let mut errstr = [0 as c_char; 256];
        // SAFETY: options is valid; errstr is a writable buffer of the given size.
        let err = unsafe {
            rd::rd_kafka_AdminOptions_set_request_timeout(
                options.ptr(),
                ms,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            // SAFETY: librdkafka NUL-terminates errstr on error.
            let msg = unsafe { string(errstr.as_ptr()) }.unwrap_or_default();
            return Err(AdminError::new(code(err), msg));
        }
        Ok(options)
    }

    fn ptr(&self) -> *mut rd::rd_kafka_AdminOptions_t {
        self.0.as_ptr()
    }

    fn set_isolation(&self, level: rd::rd_kafka_IsolationLevel_t) -> Result<(), AdminError> {
        // SAFETY: options valid; a returned error object is ours to destroy.
        let err = unsafe { rd::rd_kafka_AdminOptions_set_isolation_level(self.ptr(), level) };
        match NonNull::new(err) {
            None => Ok(()),
            Some(e) => {
                // SAFETY: e is a valid error we own; copied, then destroyed once.
                let copied = unsafe { error_from(e.as_ptr()) };
                unsafe { rd::rd_kafka_error_destroy(e.as_ptr()) };
                Err(copied)
            }
        }
    }

    /// Tags the next calls' result events with `n` (an index, never dereferenced).
    fn set_opaque(&self, n: usize) {
        // SAFETY: options valid; the opaque is an integer carried as a pointer and
        // only read back by `Event::opaque`, never dereferenced.
        unsafe { rd::rd_kafka_AdminOptions_set_opaque(self.ptr(), n as *mut c_void) };
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: we own the options; librdkafka copied them into each request.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.ptr()) }
    }
}

/// Owns a private `rd_kafka_queue_t` that admin results are delivered to.
struct Queue(NonNull<rd::rd_kafka_queue_t>);

impl Queue {
    fn new(rk: NonNull<rd::rd_kafka_t>) -> Result<Self, AdminError> {
        // SAFETY: rk is a live handle.
        let raw = unsafe { rd::rd_kafka_queue_new(rk.as_ptr()) };
        NonNull::new(raw)
            .map(Queue)
            .ok_or_else(|| AdminError::new(RDKafkaErrorCode::Fail, "cannot create a queue"))
    }

    fn ptr(&self) -> *mut rd::rd_kafka_queue_t {
        self.0.as_ptr()
    }

    /// The next event of type `kind` before `deadline`; other events (none are
    /// expected on a private queue) are destroyed and skipped.
    ///
    /// Polls without blocking and sleeps `QUEUE_NAP` between empty polls,
    /// instead of blocking in librdkafka: a blocked waiter is woken once per
    /// enqueued result (a thousand groups, a thousand wake-ups and context
    /// switches per poll), while a napping one collects every result that
    /// arrived during the nap at once. Costs at most `QUEUE_NAP` of latency.
    fn wait(&self, kind: c_int, deadline: Instant) -> Option<Event> {
        loop {
            // SAFETY: the queue is valid; a returned event is ours (guarded).
            let ev = NonNull::new(unsafe { rd::rd_kafka_queue_poll(self.ptr(), 0) }).map(Event);
            match ev {
                Some(ev) if ev.kind() == kind => return Some(ev),
                Some(_) => continue,
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(left.min(QUEUE_NAP));
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: we own the queue. Requests still in flight (after a deadline)
        // hold their own reference; their late results are discarded by librdkafka.
        unsafe { rd::rd_kafka_queue_destroy(self.ptr()) }
    }
}

/// Owns an `rd_kafka_event_t`; results read from it must be copied before drop.
struct Event(NonNull<rd::rd_kafka_event_t>);

impl Event {
    fn ptr(&self) -> *mut rd::rd_kafka_event_t {
        self.0.as_ptr()
    }

    fn kind(&self) -> c_int {
        // SAFETY: the event is valid.
        unsafe { rd::rd_kafka_event_type(self.ptr()) }
    }

    fn opaque(&self) -> usize {
        // SAFETY: the event is valid; the opaque is the integer set_opaque stored.
        unsafe { rd::rd_kafka_event_opaque(self.ptr()) as usize }
    }

    /// The error of the whole call, if any.
    fn error(&self) -> Result<(), AdminError> {
        // SAFETY: the event is valid; the error string lives as long as the event
        // and is copied.
        unsafe {
            let err = rd::rd_kafka_event_error(self.ptr());
            if err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                return Ok(());
            }
            let msg = string(rd::rd_kafka_event_error_string(self.ptr())).unwrap_or_default();
            Err(AdminError::new(code(err), msg))
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: we own the event; nothing borrowed from it survives (all copied).
        unsafe { rd::rd_kafka_event_destroy(self.ptr()) }
    }
}

/// Owns an `rd_kafka_topic_partition_list_t`.
struct PartitionList(NonNull<rd::rd_kafka_topic_partition_list_t>);

impl PartitionList {
    /// A list of `partitions`, each with `offset` (an OffsetSpec value).
    fn build(partitions: &[(String, i32)], offset: i64) -> Result<Self, AdminError> {
        let size = c_int::try_from(partitions.len()).map_err(|_| {
            AdminError::new(RDKafkaErrorCode::InvalidArgument, "too many partitions")
        })?;
        // SAFETY: a fresh list of the given capacity; null (out of memory) handled.
        let raw = unsafe { rd::rd_kafka_topic_partition_list_new(size) };
        let list = NonNull::new(raw)
            .map(PartitionList)
            .ok_or_else(|| AdminError::new(RDKafkaErrorCode::Fail, "out of memory"))?;
        for (topic, p) in partitions {
            let topic = CString::new(topic.as_str()).map_err(|_| {
                AdminError::new(RDKafkaErrorCode::InvalidArgument, "topic name with NUL")
            })?;
            // SAFETY: list valid; topic is copied by librdkafka; the returned
            // element pointer is valid until the next add, and used only before it.
            unsafe {
                let elem = rd::rd_kafka_topic_partition_list_add(list.ptr(), topic.as_ptr(), *p);
                if let Some(elem) = elem.as_mut() {
                    elem.offset = offset;
                }
            }
        }
        Ok(list)
    }

    fn ptr(&self) -> *mut rd::rd_kafka_topic_partition_list_t {
        self.0.as_ptr()
    }
}

impl Drop for PartitionList {
    fn drop(&mut self) {
        // SAFETY: we own the list; librdkafka copied it into the request.
        unsafe { rd::rd_kafka_topic_partition_list_destroy(self.ptr()) }
    }
}

/// Owns an `rd_kafka_ListConsumerGroupOffsets_t`.
struct GroupOffsetsRequest(NonNull<rd::rd_kafka_ListConsumerGroupOffsets_t>);

impl GroupOffsetsRequest {
    fn new(raw: *mut rd::rd_kafka_ListConsumerGroupOffsets_t) -> Option<Self> {
        NonNull::new(raw).map(GroupOffsetsRequest)
    }

    fn ptr(&self) -> *mut rd::rd_kafka_ListConsumerGroupOffsets_t {
        self.0.as_ptr()
    }
}

impl Drop for GroupOffsetsRequest {
    fn drop(&mut self) {
        // SAFETY: we own the request; librdkafka copied it during the call.
        unsafe { rd::rd_kafka_ListConsumerGroupOffsets_destroy(self.ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    fn client(bootstrap: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("client")
    }

    #[test]
    fn a_partition_list_holds_every_partition_with_its_offset_spec() {
        let parts = vec![
            ("a".to_string(), 0),
            ("a".to_string(), 1),
            ("b".to_string(), 7),
        ];
        let list = PartitionList::build(&parts, OffsetSpec::Earliest.raw()).unwrap();
        // SAFETY: the list is valid and owned by the guard for this whole test.
        let copied = unsafe { partitions(list.ptr()) };
        let got: Vec<_> = copied
            .iter()
            .map(|p| (p.topic.as_str(), p.partition, p.offset))
            .collect();
        assert_eq!(got, vec![("a", 0, -2), ("a", 1, -2), ("b", 7, -2)]);
    }

    #[test]
    fn a_topic_name_with_a_nul_byte_is_refused_not_truncated() {
        let err = PartitionList::build(&[("a\0b".to_string(), 0)], -1)
            .err()
            .unwrap();
        assert_eq!(err.code, RDKafkaErrorCode::InvalidArgument);
    }

    #[test]
    fn the_state_name_of_unknown_is_none_and_of_empty_is_empty() {
        assert_eq!(
            state_name(rd::rd_kafka_consumer_group_state_t::RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN),
            None
        );
        assert_eq!(
            state_name(rd::rd_kafka_consumer_group_state_t::RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY)
                .as_deref(),
            Some("Empty")
        );
    }

    #[test]
    fn empty_inputs_make_no_requests() {
        let mock = MockCluster::new(1).unwrap();
        let c = client(&mock.bootstrap_servers());
        let admin = Admin::new(c.client(), Duration::from_secs(2)).unwrap();
        assert!(admin.list_group_offsets(&[], None).is_empty());
        assert!(admin.describe_groups(&[]).unwrap().is_empty());
        let r = admin.list_offsets(
            &[],
            &[OffsetSpec::Latest],
            rd::rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_UNCOMMITTED,
        );
        assert!(matches!(&r[..], [Ok(m)] if m.is_empty()));
    }

    #[test]
    fn offsets_and_commits_read_from_the_mock_cluster_are_exact() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("t", 2, 1).unwrap();
        let bootstrap = mock.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        for i in 0..5 {
            producer
                .send(BaseRecord::<(), _>::to("t").partition(i % 2).payload("x"))
                .unwrap();
        }
        producer.flush(Duration::from_secs(5)).unwrap();
        let committer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "g1")
            .create()
            .unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset("t", 0, rdkafka::Offset::Offset(2))
            .unwrap();
        rdkafka::consumer::Consumer::commit(&committer, &tpl, rdkafka::consumer::CommitMode::Sync)
            .unwrap();

        let c = client(&bootstrap);
        let admin = Admin::new(c.client(), Duration::from_secs(5)).unwrap();
        let parts = vec![("t".to_string(), 0), ("t".to_string(), 1)];
        let r = admin.list_offsets(
            &parts,
            &[OffsetSpec::Latest, OffsetSpec::Earliest],
            rd::rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_UNCOMMITTED,
        );
        let latest = r[0].as_ref().unwrap();
        let earliest = r[1].as_ref().unwrap();
        assert_eq!(latest[&("t".to_string(), 0)], Ok(3));
        assert_eq!(latest[&("t".to_string(), 1)], Ok(2));
        assert_eq!(earliest[&("t".to_string(), 0)], Ok(0));

        let groups = vec!["g1".to_string(), "never-committed".to_string()];
        let offsets = admin.list_group_offsets(&groups, Some(&parts));
        let g1 = offsets[0].as_ref().unwrap();
        assert!(
            g1.iter()
                .any(|c| c.topic == "t" && c.partition == 0 && c.offset == Some(2)),
            "{g1:?}"
        );
        let none = offsets[1].as_ref().unwrap();
        assert!(none.iter().all(|c| c.offset.is_none()), "{none:?}");
    }
}

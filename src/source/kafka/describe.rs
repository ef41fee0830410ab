//! Step 4, DescribeGroups: state, members and assignments of every group not
//! listed as Empty. Failures are counted, never fatal, and back off.
//! - 4a: the classic DescribeGroups, batched: one ListGroups and one
//!   DescribeGroups per broker for all the groups it coordinates (librdkafka's
//!   `rd_kafka_list_groups`).
//! - 4b: DescribeConsumerGroups, one FindCoordinator and one describe request per
//!   group, for the groups 4a did not answer: KIP-848 consumer groups, or every
//!   group when 4a failed.
//! - A group described as active with no members (tansu answers KIP-848
//!   ConsumerGroupDescribe that way) is described again with the classic
//!   DescribeGroups, at most [`CLASSIC_DESCRIBE_MAX`] groups per poll.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::admin::{AdminError, ClassicGroup, GroupDescription, MemberDescription};
use super::assignment;
use super::list_groups::Listed;
use super::metadata::Topics;
use super::offset_fetch::Readings;
use super::poll::{count, Partial, Poll};
use crate::model::{ErrorKind, GroupInfo, GroupKey, MemberAssignment, PollFailure};

/// At most this many groups per poll get the classic DescribeGroups fallback
/// (one blocking round trip each).
const CLASSIC_DESCRIBE_MAX: usize = 20;

type Described = HashMap<String, Result<GroupDescription, AdminError>>;

/// What step 4 found.
pub(super) struct Descriptions {
    /// One per group read in step 3.
    pub infos: Vec<GroupInfo>,
    /// Some description failed (the step backs off).
    pub failed: bool,
    /// None: the batched classic describe was not tried this poll.
    pub batch_failed: Option<bool>,
}

impl Poll<'_> {
    /// Describes the groups of `readings` and adds the topics their members are
    /// assigned to each reading (a group measures them even before it commits).
    pub fn describe(
        &mut self,
        listed: &Listed,
        readings: &mut Readings,
        topics: &Topics,
    ) -> Result<Descriptions, PollFailure> {
        // A group ListGroups saw as Empty has no members: describing it adds
        // nothing. In a large cluster most groups are Empty (every commit-only
        // group is), so this saves most DescribeGroups requests.
        let wanted: Vec<String> = readings
            .keys()
            .filter(|g| !listed.is_empty_group(g))
            .map(|g| g.to_string())
            .collect();
        self.trace.described = wanted.len();
        let mut described = Described::new();
        let mut batch_failed = None;
        if self.plan.describe && self.plan.batch_describe && !wanted.is_empty() {
            batch_failed = Some(self.describe_batched(&wanted, &mut described));
        }
        let rest: Vec<String> = wanted
            .into_iter()
            .filter(|g| !described.contains_key(g))
            .collect();
        self.trace.described_one_by_one = rest.len();
        let mut failed = false;
        if self.plan.describe && !rest.is_empty() {
            failed = self.describe_one_by_one(&rest, &mut described)?;
        }
        if self.plan.describe {
            self.describe_classic(&mut described);
        }
        let mut infos = Vec::with_capacity(readings.len());
        for (group, reading) in readings.iter_mut() {
            let key = GroupKey {
                source: self.plan.source.clone(),
                scope: None,
                group: group.clone(),
            };
            let fallback = listed.states.get(group.as_ref()).cloned().flatten();
            let info = match described.remove(group.as_ref()) {
                Some(Ok(d)) => {
                    let members = members(d.members, topics);
                    for m in &members {
                        for (t, _) in &m.partitions {
                            if self.plan.topic_filter.allows(t) {
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
                    failed = true;
                    self.count(ErrorKind::DescribeGroups, 1);
                    tracing::debug!(source = %self.plan.source, group = %group, error = %e, "cannot describe group");
                    GroupInfo::new(key, fallback, None)
                }
                None if listed.is_empty_group(group) => GroupInfo {
                    key,
                    state: fallback,
                    members: Some(0),
                    assignments: Some(Vec::new()),
                },
                None => {
                    if self.plan.describe && !failed {
                        // Asked but not answered for this group.
                        self.count(ErrorKind::DescribeGroups, 1);
                    }
                    GroupInfo::new(key, fallback, None)
                }
            };
            infos.push(info);
        }
        Ok(Descriptions {
            infos,
            failed,
            batch_failed,
        })
    }

    /// 4a; whether it failed.
    fn describe_batched(&mut self, wanted: &[String], described: &mut Described) -> bool {
        let started = Instant::now();
        let failed = match self.batch_describe(wanted) {
            Ok(found) => {
                described.extend(found.into_iter().map(|(g, d)| (g, Ok(d))));
                false
            }
            Err(e) => {
                tracing::debug!(source = %self.plan.source, error = %e, "batched classic DescribeGroups failed; describing group by group");
                true
            }
        };
        self.trace.phase("describe_groups_batched", started, 1);
        failed
    }

    /// 4b; whether the call failed as a whole.
    fn describe_one_by_one(
        &mut self,
        rest: &[String],
        described: &mut Described,
    ) -> Result<bool, PollFailure> {
        let started = Instant::now();
        self.plan.step("DescribeGroups")?;
        let failed = match self.admin.describe_groups(rest) {
            Ok(d) => {
                described.extend(d);
                false
            }
            Err(e) => {
                self.count(ErrorKind::DescribeGroups, 1);
                tracing::debug!(source = %self.plan.source, error = %e, "DescribeGroups failed");
                true
            }
        };
        self.trace.phase("describe_groups", started, 1);
        Ok(failed)
    }

    /// The classic DescribeGroups of every group in `wanted`, batched by
    /// librdkafka into one ListGroups and one DescribeGroups per broker. Groups
    /// the answer leaves out or answers without a state (KIP-848 consumer groups,
    /// which the classic API does not describe) are left for 4b.
    ///
    /// The answer covers every classic group of the cluster, also those outside
    /// the group filter or this shard; they are dropped here.
    fn batch_describe(
        &mut self,
        wanted: &[String],
    ) -> Result<HashMap<String, GroupDescription>, KafkaError> {
        self.plan
            .step("DescribeGroups")
            .map_err(|_| KafkaError::GroupListFetch(RDKafkaErrorCode::OperationTimedOut))?;
        let list = self
            .admin
            .classic_groups(None)
            .map_err(|e| KafkaError::GroupListFetch(e.code))?;
        let wanted: HashSet<&str> = wanted.iter().map(String::as_str).collect();
        let mut out = HashMap::with_capacity(wanted.len());
        for info in &list {
            if !wanted.contains(info.name.as_str()) {
                continue;
            }
            if let Some(d) = classic_description(info, &mut self.partial) {
                out.insert(info.name.clone(), d);
            }
        }
        Ok(out)
    }

    /// Re-describes, with the classic DescribeGroups (rdkafka's
    /// `fetch_group_list`), the groups described as active but with no members: a
    /// contradiction some brokers produce on the KIP-848 ConsumerGroupDescribe path.
    fn describe_classic(&mut self, described: &mut Described) {
        let suspicious: Vec<String> = described
            .iter()
            .filter_map(|(g, d)| match d {
                Ok(d) if d.members.is_empty() && is_active(d.state.as_deref()) => Some(g.clone()),
                _ => None,
            })
            .take(CLASSIC_DESCRIBE_MAX)
            .collect();
        for group in suspicious {
            if self.plan.step("DescribeGroups").is_err() {
                return;
            }
            let list = match self.admin.classic_groups(Some(&group)) {
                Ok(l) => l,
                Err(e) => {
                    self.count(ErrorKind::DescribeGroups, 1);
                    tracing::debug!(source = %self.plan.source, group = %crate::telemetry::Escaped(&group), error = %e, "classic DescribeGroups failed");
                    continue;
                }
            };
            let Some(info) = list.iter().find(|g| g.name == group) else {
                continue;
            };
            if let Some(d) = classic_description(info, &mut self.partial) {
                described.insert(group, Ok(d));
            }
        }
    }
}

/// The members of a description, their partitions keyed by the poll's shared
/// topic names, sorted.
fn members(described: Vec<MemberDescription>, topics: &Topics) -> Vec<MemberAssignment> {
    let mut members: Vec<MemberAssignment> = described
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
    members
}

/// A classic DescribeGroups answer as a description; None when it has no state
/// or says "Dead" (unknown to the classic coordinator, e.g. a KIP-848 group).
fn classic_description(info: &ClassicGroup, partial: &mut Partial) -> Option<GroupDescription> {
    let state = Some(info.state.clone()).filter(|s| !s.is_empty() && s != "Dead")?;
    if info.skipped > 0 {
        count(partial, ErrorKind::Decode, u64::from(info.skipped));
    }
    let mut members = Vec::with_capacity(info.members.len());
    for m in &info.members {
        let assignment = match m.assignment.as_deref().map(assignment::decode) {
            Some(Some(a)) => a,
            Some(None) => {
                count(partial, ErrorKind::Decode, 1);
                Vec::new()
            }
            None => Vec::new(),
        };
        members.push(MemberDescription {
            member_id: m.id.clone(),
            client_id: m.client_id.clone(),
            host: m.host.clone(),
            group_instance_id: None,
            assignment,
        });
    }
    Some(GroupDescription {
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

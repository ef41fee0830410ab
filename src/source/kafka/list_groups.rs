//! Step 2, ListConsumerGroups: the groups to measure, from the configured list
//! or discovered (every state, Empty included; one request per broker), then
//! filtered and cut to this process's shard.

use std::collections::HashMap;
use std::time::Instant;

use super::poll::Poll;
use crate::model::{ErrorKind, PollFailure};

/// The groups of this poll and the state ListGroups gave each (discovered
/// groups only).
pub(super) struct Listed {
    pub groups: Vec<String>,
    pub states: HashMap<String, Option<String>>,
}

impl Listed {
    /// ListGroups said the group is Empty: it has no members by definition.
    pub fn is_empty_group(&self, group: &str) -> bool {
        matches!(self.states.get(group), Some(Some(s)) if s.as_str() == "Empty")
    }
}

impl Poll<'_> {
    pub fn list_groups(&mut self) -> Result<Listed, PollFailure> {
        let mut states = HashMap::new();
        let mut groups = if self.plan.groups.is_empty() {
            self.discover(&mut states)?
        } else {
            self.plan.groups.clone()
        };
        // Several lagwatch processes split the groups between them (shard).
        let (shard, source) = (self.plan.shard, &self.plan.source);
        groups.retain(|g| shard.owns(source.as_str(), g));
        Ok(Listed { groups, states })
    }

    fn discover(
        &mut self,
        states: &mut HashMap<String, Option<String>>,
    ) -> Result<Vec<String>, PollFailure> {
        let started = Instant::now();
        self.plan.step("ListGroups")?;
        let list = self
            .admin
            .list_groups()
            .map_err(|e| self.fail(ErrorKind::ListGroups, "cannot list groups", &e))?;
        self.trace.phase("list_groups", started, 1);
        if list.groups.is_empty() && !list.errors.is_empty() {
            // No broker answered: "no groups" cannot be told from "cannot list".
            return Err(self.fail(ErrorKind::ListGroups, "cannot list groups", &list.errors[0]));
        }
        self.count(ErrorKind::ListGroups, list.errors.len() as u64);
        let filter = &self.plan.group_filter;
        let mut names: Vec<String> = list
            .groups
            .into_iter()
            .filter(|g| filter.allows(&g.group))
            .map(|g| {
                states.insert(g.group.clone(), g.state);
                g.group
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

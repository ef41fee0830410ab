//! One shared copy of each group and topic name across polls.
//!
//! A poll reads every name afresh (50,000 samples of 1,000 groups make about
//! 11,000 new strings), while the engine's history and views still hold last
//! poll's copies. Handing out the copy already held makes the engine's key
//! lookups compare pointers (`Arc`'s equality checks identity before the
//! bytes), and keeps one copy of a name in memory instead of one per poll
//! generation.

use std::sync::Arc;

use crate::model::PollData;

/// The names handed out so far; a name nobody else holds any more is dropped
/// after the next poll, so the pool is bounded by the names alive anywhere.
#[derive(Debug, Default)]
pub struct Names {
    pool: std::collections::HashSet<Arc<str>, foldhash::quality::RandomState>,
}

/// Remembers the last name interned, so a run of samples sharing one string
/// (a group's partitions, come one after another) costs one lookup.
struct Last(Option<(Arc<str>, Arc<str>)>);

impl Names {
    /// The pooled copy of `name` (added if new).
    fn get(&mut self, name: &Arc<str>) -> Arc<str> {
        if let Some(held) = self.pool.get(&**name) {
            return held.clone();
        }
        self.pool.insert(name.clone());
        name.clone()
    }

    fn get_via(&mut self, last: &mut Last, name: &mut Arc<str>) {
        if let Some((seen, pooled)) = &last.0 {
            if Arc::ptr_eq(seen, name) {
                *name = pooled.clone();
                return;
            }
        }
        let pooled = self.get(name);
        last.0 = Some((std::mem::replace(name, pooled.clone()), pooled));
    }

    /// Replaces the group, scope and topic names of a poll's samples and groups
    /// by the pooled copies, then forgets the names only the pool still holds.
    pub fn intern(&mut self, data: &mut PollData) {
        let (mut group, mut topic, mut scope) = (Last(None), Last(None), Last(None));
        for s in &mut data.samples {
            self.get_via(&mut group, &mut s.key.group.group);
            self.get_via(&mut topic, &mut s.key.topic);
            if let Some(sc) = s.key.group.scope.as_mut() {
                self.get_via(&mut scope, sc);
            }
        }
        for g in &mut data.groups {
            self.get_via(&mut group, &mut g.key.group);
            if let Some(sc) = g.key.scope.as_mut() {
                self.get_via(&mut scope, sc);
            }
        }
        drop((group, topic, scope));
        self.pool.retain(|n| Arc::strong_count(n) > 1);
    }

    /// Names in the pool.
    pub fn len(&self) -> usize {
        self.pool.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConsumerKey, GroupInfo, GroupKey, Sample, SourceId};

    fn poll(names: &[(&str, &str, i32)]) -> PollData {
        let source = SourceId::new("s");
        PollData {
            samples: names
                .iter()
                .map(|(g, t, p)| Sample {
                    key: ConsumerKey {
                        group: GroupKey {
                            source: source.clone(),
                            scope: None,
                            group: Arc::from(*g),
                        },
                        topic: Arc::from(*t),
                        partition: Some(*p),
                    },
                    committed: Some(1),
                    head: 2,
                    low: None,
                    lag: 1,
                    jetstream: None,
                    oldest_written: None,
                })
                .collect(),
            groups: vec![GroupInfo {
                key: GroupKey {
                    source,
                    scope: None,
                    group: Arc::from(names[0].0),
                },
                state: None,
                members: None,
                assignments: None,
            }],
            ..PollData::default()
        }
    }

    #[test]
    fn a_name_read_again_is_the_copy_already_held_and_unheld_names_are_dropped() {
        let mut n = Names::default();
        let shape = [
            ("billing", "orders", 0),
            ("billing", "orders", 1),
            ("audit", "orders", 0),
        ];
        let mut first = poll(&shape);
        n.intern(&mut first);
        let mut second = poll(&shape);
        let before: Vec<_> = second.samples.iter().map(|s| s.key.clone()).collect();
        n.intern(&mut second);
        for (a, b) in first.samples.iter().zip(&second.samples) {
            assert!(Arc::ptr_eq(&a.key.group.group, &b.key.group.group));
            assert!(Arc::ptr_eq(&a.key.topic, &b.key.topic));
        }
        assert!(Arc::ptr_eq(
            &first.groups[0].key.group,
            &second.groups[0].key.group
        ));
        // Same values, same order.
        let after: Vec<_> = second.samples.iter().map(|s| s.key.clone()).collect();
        assert_eq!(before, after);
        assert_eq!(n.len(), 3, "billing, audit, orders");
        // Once nobody holds a name, the pool lets it go.
        drop((first, second, before, after));
        let mut third = poll(&[("billing", "payments", 0)]);
        n.intern(&mut third);
        assert_eq!(
            n.len(),
            2,
            "billing and payments are held by the third poll"
        );
    }
}

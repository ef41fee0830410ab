//! Pure assembly of one Kafka poll's readings (topics, committed offsets,
//! assignments, latest and earliest offsets) into samples: which partitions a
//! group is measured on, what lag each gets, and which readings contradict.
//! No I/O, no clock: the tables below are its proof.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::model::{ConsumerKey, GroupKey, Sample, SourceId};

/// (topic, partition).
pub type Tp = (Arc<str>, i32);

/// What one poll read about one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupReading {
    /// Committed offsets by partition; None = the broker says "no commit".
    pub committed: HashMap<Tp, Option<i64>>,
    /// Partitions whose committed offset could not be read (per-partition error):
    /// no sample is made for them rather than a wrong one.
    pub unknown: BTreeSet<Tp>,
    /// Topics the group's members are assigned (DescribeGroups), committed or not.
    pub assigned_topics: BTreeSet<Arc<str>>,
}

impl GroupReading {
    /// The topics this group is measured on: those it has a commit on (an
    /// explicit "no commit" answer for every partition does not count) or is
    /// assigned, that exist now (deleted topics drop out).
    fn topics<'a>(&'a self, topics: &'a BTreeMap<Arc<str>, i32>) -> BTreeSet<&'a Arc<str>> {
        self.committed
            .iter()
            .filter(|(_, o)| o.is_some())
            .map(|((t, _), _)| t)
            .chain(self.unknown.iter().map(|(t, _)| t))
            .chain(self.assigned_topics.iter())
            .filter_map(|t| topics.get_key_value(t).map(|(k, _)| k))
            .collect()
    }
}

/// Every partition any group is measured on: the ListOffsets request of the poll.
pub fn partitions_to_list(
    groups: &BTreeMap<Arc<str>, GroupReading>,
    topics: &BTreeMap<Arc<str>, i32>,
) -> Vec<Tp> {
    let mut wanted: BTreeSet<&Arc<str>> = BTreeSet::new();
    for g in groups.values() {
        wanted.extend(g.topics(topics));
    }
    wanted
        .into_iter()
        .flat_map(|t| {
            let n = topics.get(t).copied().unwrap_or(0);
            (0..n).map(move |p| (t.clone(), p))
        })
        .collect()
}

/// The samples of one poll and the readings that contradicted each other.
#[derive(Debug, Default, PartialEq)]
pub struct Assembled {
    pub samples: Vec<Sample>,
    /// Partitions whose committed offset is above the latest offset (lag 0).
    pub anomalies: u64,
    /// Partitions left out because their latest offset is unknown.
    pub missing_latest: u64,
}

/// Builds the samples. Lag per partition:
/// - committed <= latest: latest - committed;
/// - committed > latest (a broker that went back, or tansu's memory storage):
///   0, counted as an anomaly;
/// - no commit: 0, with `committed: None` so consumers of the sample can apply
///   their own policy (see docs/kafka.md, "No commit").
pub fn assemble(
    source: &SourceId,
    groups: &BTreeMap<Arc<str>, GroupReading>,
    topics: &BTreeMap<Arc<str>, i32>,
    latest: &HashMap<Tp, i64>,
    earliest: &HashMap<Tp, i64>,
) -> Assembled {
    // Each group's topics, worked out once: they size the samples up front (a
    // Vec doubling its way to 50,000 samples holds up to twice that, plus the
    // copy, at its peak) and then drive the loop.
    let measured: Vec<_> = groups
        .iter()
        .map(|(group, reading)| (group, reading, reading.topics(topics)))
        .collect();
    let expected: usize = measured
        .iter()
        .flat_map(|(_, _, ts)| ts.iter())
        .map(|t| usize::try_from(topics.get(*t).copied().unwrap_or(0)).unwrap_or(0))
        .sum();
    let mut out = Assembled {
        samples: Vec::with_capacity(expected),
        ..Assembled::default()
    };
    for (group, reading, group_topics) in measured {
        let gkey = GroupKey {
            source: source.clone(),
            scope: None,
            group: group.clone(),
        };
        for topic in group_topics {
            let n = topics.get(topic).copied().unwrap_or(0);
            for p in 0..n {
                let tp = (topic.clone(), p);
                if reading.unknown.contains(&tp) {
                    continue;
                }
                let Some(&head) = latest.get(&tp) else {
                    out.missing_latest += 1;
                    continue;
                };
                let committed = reading.committed.get(&tp).copied().flatten();
                let lag = match committed {
                    Some(c) if c > head => {
                        out.anomalies += 1;
                        0
                    }
                    Some(c) => u64::try_from(head - c).unwrap_or(0),
                    None => 0,
                };
                out.samples.push(Sample {
                    key: ConsumerKey {
                        group: gkey.clone(),
                        topic: topic.clone(),
                        partition: Some(p),
                    },
                    committed,
                    head,
                    low: earliest.get(&tp).copied(),
                    lag,
                    jetstream: None,
                    oldest_written: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    /// One group "g" reading `committed` on topics {t: 3 partitions, u: 1};
    /// latest of t = [10, 10, 10], of u = [5]; earliest all 2.
    fn run(committed: &[(&str, i32, Option<i64>)], assigned: &[&str]) -> Assembled {
        let topics: BTreeMap<Arc<str>, i32> = [(a("t"), 3), (a("u"), 1)].into();
        let mut latest = HashMap::new();
        let mut earliest = HashMap::new();
        for p in 0..3 {
            latest.insert((a("t"), p), 10);
            earliest.insert((a("t"), p), 2);
        }
        latest.insert((a("u"), 0), 5);
        let reading = GroupReading {
            committed: committed.iter().map(|(t, p, o)| ((a(t), *p), *o)).collect(),
            unknown: BTreeSet::new(),
            assigned_topics: assigned.iter().map(|t| a(t)).collect(),
        };
        let groups = [(a("g"), reading)].into();
        assemble(&SourceId::new("s"), &groups, &topics, &latest, &earliest)
    }

    fn lags(r: &Assembled) -> Vec<(String, i32, Option<i64>, u64)> {
        r.samples
            .iter()
            .map(|s| {
                (
                    s.key.topic.to_string(),
                    s.key.partition.unwrap(),
                    s.committed,
                    s.lag,
                )
            })
            .collect()
    }

    #[test]
    fn lag_table() {
        // (case, committed readings, assigned topics, expected (topic, partition, committed, lag), anomalies)
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, i32, Option<i64>)>,
            Vec<&'a str>,
            Vec<(&'a str, i32, Option<i64>, u64)>,
            u64,
        );
        let cases: Vec<Case> = vec![
            // 1. A commit on one partition measures every partition of the topic;
            //    the others have no commit and lag 0.
            (
                "one commit",
                vec![("t", 0, Some(4))],
                vec![],
                vec![("t", 0, Some(4), 6), ("t", 1, None, 0), ("t", 2, None, 0)],
                0,
            ),
            // 2. Caught up is lag 0, not an anomaly.
            (
                "caught up",
                vec![("u", 0, Some(5))],
                vec![],
                vec![("u", 0, Some(5), 0)],
                0,
            ),
            // 3. Committed above latest: lag 0, one anomaly.
            (
                "committed above latest",
                vec![("u", 0, Some(7))],
                vec![],
                vec![("u", 0, Some(7), 0)],
                1,
            ),
            // 4. The broker's "no commit" (-1, read as None) is not offset 0, and
            //    a topic with no commit on any partition is not measured.
            (
                "explicit no commit",
                vec![("u", 0, None), ("t", 1, Some(3)), ("t", 2, None)],
                vec![],
                vec![("t", 0, None, 0), ("t", 1, Some(3), 7), ("t", 2, None, 0)],
                0,
            ),
            // 5. Committed offset 0 is a real commit: lag = latest.
            (
                "committed zero",
                vec![("u", 0, Some(0))],
                vec![],
                vec![("u", 0, Some(0), 5)],
                0,
            ),
            // 6. Assigned but never committed: measured, no commit.
            (
                "assigned only",
                vec![],
                vec!["u"],
                vec![("u", 0, None, 0)],
                0,
            ),
            // 7. Commits on a deleted topic (absent from metadata) make no sample.
            (
                "deleted topic",
                vec![("gone", 0, Some(3)), ("u", 0, Some(1))],
                vec!["gone2"],
                vec![("u", 0, Some(1), 4)],
                0,
            ),
            // 8. A commit on a partition beyond the current count is ignored.
            (
                "partition beyond count",
                vec![("u", 3, Some(1))],
                vec![],
                vec![("u", 0, None, 0)],
                0,
            ),
            // 9. Nothing committed, nothing assigned: no samples.
            ("idle group", vec![], vec![], vec![], 0),
        ];
        for (name, committed, assigned, want, anomalies) in cases {
            let r = run(&committed, &assigned);
            let want: Vec<_> = want
                .into_iter()
                .map(|(t, p, c, l)| (t.to_string(), p, c, l))
                .collect();
            assert_eq!(lags(&r), want, "case {name}");
            assert_eq!(r.anomalies, anomalies, "case {name}");
        }
    }

    #[test]
    fn earliest_offsets_become_low_and_missing_latest_drops_the_sample() {
        let topics: BTreeMap<Arc<str>, i32> = [(a("t"), 2)].into();
        let latest: HashMap<Tp, i64> = [((a("t"), 0), 9)].into();
        let earliest: HashMap<Tp, i64> = [((a("t"), 0), 3)].into();
        let reading = GroupReading {
            committed: [((a("t"), 0), Some(4)), ((a("t"), 1), Some(1))].into(),
            ..Default::default()
        };
        let groups = [(a("g"), reading)].into();
        let r = assemble(&SourceId::new("s"), &groups, &topics, &latest, &earliest);
        assert_eq!(r.samples.len(), 1);
        assert_eq!(r.samples[0].low, Some(3));
        assert_eq!(r.samples[0].lag, 5);
        assert_eq!(r.missing_latest, 1);
    }

    #[test]
    fn a_partition_with_an_unreadable_commit_gets_no_sample() {
        let topics: BTreeMap<Arc<str>, i32> = [(a("t"), 2)].into();
        let latest: HashMap<Tp, i64> = [((a("t"), 0), 9), ((a("t"), 1), 9)].into();
        let reading = GroupReading {
            committed: [((a("t"), 0), Some(4))].into(),
            unknown: [(a("t"), 1)].into(),
            ..Default::default()
        };
        let groups = [(a("g"), reading)].into();
        let r = assemble(
            &SourceId::new("s"),
            &groups,
            &topics,
            &latest,
            &HashMap::new(),
        );
        assert_eq!(r.samples.len(), 1);
        assert_eq!(r.samples[0].key.partition, Some(0));
    }

    #[test]
    fn the_partitions_to_list_are_the_union_over_groups_without_duplicates() {
        let topics: BTreeMap<Arc<str>, i32> = [(a("t"), 2), (a("u"), 1), (a("v"), 4)].into();
        let g1 = GroupReading {
            committed: [((a("t"), 0), Some(1))].into(),
            ..Default::default()
        };
        let g2 = GroupReading {
            committed: [((a("t"), 1), Some(1))].into(),
            assigned_topics: [a("u"), a("deleted")].into(),
            ..Default::default()
        };
        let groups = [(a("g1"), g1), (a("g2"), g2)].into();
        let got = partitions_to_list(&groups, &topics);
        assert_eq!(got, vec![(a("t"), 0), (a("t"), 1), (a("u"), 0)]);
    }
}

//! kafka-lag-exporter's metric names and labels, for dashboards and alerts
//! written against it (it was archived in 2024). Kafka sources only.

use std::collections::{BTreeMap, HashMap};

use super::Writer;
use crate::model::{MemberAssignment, System};
use crate::snapshot::SourceView;

pub(super) fn render(w: &mut Writer, sources: &[SourceView], members: bool) {
    per_partition(w, sources, members);
    per_group(w, sources);
    per_topic(w, sources);
    offsets(w, sources);
}

/// The Kafka sources, with their index into the series budget (a source that
/// is down keeps its last values, as the native series do).
fn kafka(sources: &[SourceView]) -> impl Iterator<Item = (usize, &SourceView)> {
    sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.system == System::Kafka)
}

/// Per source: (group, topic, partition) -> the member that owns it, from
/// DescribeGroups.
type Owners<'a> = HashMap<(&'a str, &'a str, i32), &'a MemberAssignment>;

fn owners(src: &SourceView) -> Owners<'_> {
    let mut out = HashMap::new();
    for g in src.groups.iter() {
        let Some(members) = g.info.as_ref().and_then(|i| i.assignments.as_ref()) else {
            continue;
        };
        for m in members {
            for (topic, partition) in &m.partitions {
                out.insert((&*g.key.group, &**topic, *partition), m);
            }
        }
    }
    out
}

fn per_partition(w: &mut Writer, sources: &[SourceView], members: bool) {
    let per_partition: [(&str, &str, super::PartitionValue); 3] = [
        ("kafka_consumergroup_group_offset", "kafka-lag-exporter compatible: the group's last consumed (committed) offset of the partition.", |p| p.sample.committed.map(|c| c as f64)),
        ("kafka_consumergroup_group_lag", "kafka-lag-exporter compatible: latest offset minus committed offset of the partition.", |p| Some(p.sample.lag as f64)),
        ("kafka_consumergroup_group_lag_seconds", "kafka-lag-exporter compatible: estimated age of the oldest unconsumed message of the partition.", |p| p.analysis.time_lag.seconds()),
    ];
    for (name, help, value) in per_partition {
        w.family(name, help, "gauge");
        for (i, src) in kafka(sources) {
            let owners = if members { owners(src) } else { HashMap::new() };
            for p in src.partitions.iter() {
                if let Some(v) = value(p) {
                    let n = p.sample.key.partition.unwrap_or(-1);
                    let part = n.to_string();
                    let (group, topic) = (&*p.sample.key.group.group, &*p.sample.key.topic);
                    let owner = owners.get(&(group, topic, n));
                    let labels = [
                        ("cluster_name", src.id.as_str()),
                        ("group", group),
                        ("topic", topic),
                        ("partition", part.as_str()),
                        ("member_host", owner.map_or("", |m| m.host.as_str())),
                        ("consumer_id", owner.map_or("", |m| m.member_id.as_str())),
                        ("client_id", owner.map_or("", |m| m.client_id.as_str())),
                    ];
                    w.series(i, name, &labels, v);
                }
            }
        }
    }
}

fn per_group(w: &mut Writer, sources: &[SourceView]) {
    let per_group: [(&str, &str, super::RollupValue); 3] = [
        (
            "kafka_consumergroup_group_max_lag",
            "kafka-lag-exporter compatible: the largest partition lag of the group.",
            |a| Some(a.lag_max as f64),
        ),
        (
            "kafka_consumergroup_group_max_lag_seconds",
            "kafka-lag-exporter compatible: the largest partition time lag of the group.",
            |a| a.time_lag_max.seconds(),
        ),
        (
            "kafka_consumergroup_group_sum_lag",
            "kafka-lag-exporter compatible: the group's lag summed over partitions.",
            |a| Some(a.lag_sum as f64),
        ),
    ];
    for (name, help, value) in per_group {
        w.family(name, help, "gauge");
        for (i, src) in kafka(sources) {
            for g in src.groups.iter() {
                if let Some(v) = g.analysis.as_ref().and_then(value) {
                    let simple = if name == "kafka_consumergroup_group_sum_lag" {
                        ""
                    } else {
                        "false"
                    };
                    let labels = [
                        ("cluster_name", src.id.as_str()),
                        ("group", &*g.key.group),
                        ("is_simple_consumer", simple),
                    ];
                    w.series(i, name, &labels, v);
                }
            }
        }
    }
}

fn per_topic(w: &mut Writer, sources: &[SourceView]) {
    w.family(
        "kafka_consumergroup_group_topic_sum_lag",
        "kafka-lag-exporter compatible: the group's lag on one topic, summed over partitions.",
        "gauge",
    );
    for (i, src) in kafka(sources) {
        for g in src.groups.iter() {
            for (topic, parts) in super::topic_runs(src, g) {
                let sum: u64 = parts.iter().map(|p| p.sample.lag).sum();
                let labels = [
                    ("cluster_name", src.id.as_str()),
                    ("group", &*g.key.group),
                    ("topic", topic),
                ];
                w.series(
                    i,
                    "kafka_consumergroup_group_topic_sum_lag",
                    &labels,
                    sum as f64,
                );
            }
        }
    }
}

fn offsets(w: &mut Writer, sources: &[SourceView]) {
    for (name, help, earliest) in [
        (
            "kafka_partition_latest_offset",
            "kafka-lag-exporter compatible: the latest offset of the partition.",
            false,
        ),
        (
            "kafka_partition_earliest_offset",
            "kafka-lag-exporter compatible: the earliest offset of the partition.",
            true,
        ),
    ] {
        w.family(name, help, "gauge");
        for (i, src) in kafka(sources) {
            // One series per topic-partition, whichever groups read it.
            let mut seen: BTreeMap<(&str, i32), f64> = BTreeMap::new();
            for p in src.partitions.iter() {
                let v = if earliest {
                    p.sample.low.map(|l| l as f64)
                } else {
                    Some(p.sample.head as f64)
                };
                if let (Some(v), Some(part)) = (v, p.sample.key.partition) {
                    seen.entry((&p.sample.key.topic, part)).or_insert(v);
                }
            }
            for ((topic, part), v) in seen {
                let part = part.to_string();
                let labels = [
                    ("cluster_name", src.id.as_str()),
                    ("topic", topic),
                    ("partition", part.as_str()),
                ];
                w.series(i, name, &labels, v);
            }
        }
    }
}

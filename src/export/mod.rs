//! The Prometheus exposition, rendered from a snapshot's views only: the
//! engine's own counters plus the per-consumer series, written once per snapshot
//! straight into its compressed body (see [`crate::snapshot::gzip`]). Live metrics of other
//! owners (the notifier) are appended at scrape time by the HTTP handler.

mod compat;
mod dead_letters;

mod self_metrics;

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use self_metrics::{encode_registry, process_registry, SelfMetrics};

use crate::analysis::diagnosis::Cause;
use crate::analysis::{self, GroupAnalysis, TimeLagQuality};
use crate::config::{Granularity, Settings};
use crate::model::{JetstreamParts, Millis, SourceId, Status, StreamState, System};
use crate::snapshot::{gzip, GroupView, PartitionView, SourceView};

/// How much detail each source exports, and the optional compatibility names.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Per source, in the engine's source order.
    pub sources: BTreeMap<SourceId, SourcePlan>,
    pub kafka_lag_exporter: bool,
    /// The compatibility series carry the owning member's labels.
    pub kafka_lag_exporter_member_labels: bool,
}

impl Plan {
    /// What each configured source exports.
    pub fn new(settings: &Settings) -> Plan {
        Plan {
            sources: settings
                .sources
                .iter()
                .map(|s| {
                    (
                        s.id.clone(),
                        SourcePlan {
                            granularity: s.granularity,
                            max_series: s.max_series,
                            labels: s.labels.clone(),
                        },
                    )
                })
                .collect(),
            kafka_lag_exporter: settings.kafka_lag_exporter_compat,
            kafka_lag_exporter_member_labels: settings.kafka_lag_exporter_member_labels,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SourcePlan {
    pub granularity: Granularity,
    /// At most this many per-consumer series for the source (None: no cap).
    pub max_series: Option<usize>,
    /// Static labels added to every series of the source (`sources[].labels`).
    pub labels: Vec<(String, String)>,
}

/// Renders the whole exposition for one snapshot, compressed as it is written:
/// at partition granularity the text is tens of megabytes, and only its gzip
/// (about a tenth) is kept. The per-consumer series come first, lagwatch's own
/// metrics last (they count what was written).
pub fn render(
    own: &SelfMetrics,
    sources: &[SourceView],
    plan: &Plan,
    history_keys: usize,
    at: Millis,
) -> gzip::Prefix {
    let mut w = Writer {
        out: String::with_capacity(SPILL + 4 * 1024),
        sink: gzip::Builder::new(),
        budget: sources
            .iter()
            .map(|s| Budget {
                left: plan
                    .sources
                    .get(&s.id)
                    .and_then(|p| p.max_series)
                    .unwrap_or(usize::MAX),
                written: 0,
                dropped: 0,
            })
            .collect(),
        statics: sources
            .iter()
            .map(|s| {
                plan.sources
                    .get(&s.id)
                    .map_or_else(Vec::new, |p| p.labels.clone())
            })
            .collect(),
    };
    let granularity: Vec<Granularity> = sources
        .iter()
        .map(|s| {
            plan.sources
                .get(&s.id)
                .map_or(Granularity::default(), |p| p.granularity)
        })
        .collect();
    render_groups(&mut w, sources, at);
    render_topics(&mut w, sources, &granularity);
    render_partitions(&mut w, sources, &granularity);
    render_jetstream(&mut w, sources);
    dead_letters::render(&mut w, sources, at);
    if plan.kafka_lag_exporter {
        compat::render(&mut w, sources, plan.kafka_lag_exporter_member_labels);
    }

    w.family(
        "lagwatch_series",
        "Per-consumer series this source exports in the current snapshot (after the cap).",
        "gauge",
    );
    for (i, s) in sources.iter().enumerate() {
        let written = w.budget[i].written as f64;
        w.source_series(i, "lagwatch_series", &[("source", s.id.as_str())], written);
    }
    w.family("lagwatch_series_dropped", "Per-consumer series of this source left out of the current snapshot by max_series; raise the cap or coarsen the granularity.", "gauge");
    for (i, s) in sources.iter().enumerate() {
        let dropped = w.budget[i].dropped as f64;
        w.source_series(
            i,
            "lagwatch_series_dropped",
            &[("source", s.id.as_str())],
            dropped,
        );
    }
    w.family(
        "lagwatch_history_keys",
        "Partitions and consumers whose sample history lagwatch holds in memory.",
        "gauge",
    );
    w.raw_series("lagwatch_history_keys", &[], history_keys as f64);
    own.encode(&mut w.out);
    w.spill();
    w.sink.finish()
}

/// Labels of a group-level series: JetStream consumers carry their stream as
/// `topic`, since a consumer name is unique only within its stream.
fn group_labels<'a>(src: &'a SourceView, g: &'a GroupView) -> [(&'static str, &'a str); 4] {
    [
        ("source", src.id.as_str()),
        ("system", src.system.as_str()),
        ("group", &g.key.group),
        ("topic", g.key.scope.as_deref().unwrap_or("")),
    ]
}

type GroupValue = fn(&GroupView, &GroupAnalysis) -> Option<f64>;

const GROUP_FAMILIES: &[(&str, &str, GroupValue)] = &[
    ("lagwatch_group_lag_messages", "Messages the group has not consumed yet, summed over its partitions (JetStream: num_pending + num_ack_pending).", |_, a| Some(a.lag_sum as f64)),
    ("lagwatch_group_max_lag_messages", "The largest lag in messages of any one partition of the group.", |_, a| Some(a.lag_max as f64)),
    ("lagwatch_group_lag_seconds", "Age of the oldest message the group has not consumed yet (0 when caught up); absent while unknown. See lagwatch_group_lag_seconds_quality.", |_, a| a.time_lag_max.seconds()),
    ("lagwatch_group_lag_seconds_lower_bound", "The oldest message the group has not consumed yet is certainly at least this old, whatever the quality of lagwatch_group_lag_seconds (present also while that is unknown).", |_, a| Some(a.time_lag_max.at_least())),
    ("lagwatch_group_lag_seconds_upper_bound", "The oldest message the group has not consumed yet is certainly at most this old; absent when nothing bounds it (an extrapolation, an unknown time lag).", |_, a| a.time_lag_max.at_most()),
    ("lagwatch_group_produce_messages_per_second", "Rate at which messages are written to the group's partitions (least-squares slope over the analysis window); absent until the window has enough samples.", |_, a| a.produce_rate),
    ("lagwatch_group_consume_messages_per_second", "Rate at which the group consumes (commits) messages, over the analysis window.", |_, a| a.consume_rate),
    ("lagwatch_group_lag_growth_messages_per_second", "How fast the group's lag grows (negative: shrinks), over the analysis window.", |_, a| a.lag_growth),
    ("lagwatch_group_catchup_eta_seconds", "Estimated time until the group has caught up; present only while it is catching up.", |_, a| a.eta_seconds),
    ("lagwatch_group_status_code", "Group health after Burrow's rules, worst partition: 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP, 5 ERR.", |_, a| Some(a.status as u8 as f64)),
    ("lagwatch_group_lost_messages", "Messages deleted by retention before the group consumed them (committed offset below the earliest stored offset).", |_, a| Some(a.lost_messages as f64)),
    ("lagwatch_group_time_until_loss_seconds", "Headroom: if the group stopped now, time until the configured retention (Kafka retention.ms; JetStream max_age, max_msgs, max_bytes) deletes a message it has not consumed; absent when nothing is at risk or retention is not known.", |_, a| a.headroom.seconds()),
    ("lagwatch_group_projected_loss_seconds", "At the current produce and consume rates, time until the configured retention deletes a message the group has not consumed (0: happening now); absent while the group keeps pace or retention is not known. What ConsumerDataLossRisk alerts on.", |_, a| a.projected_loss.seconds()),
    ("lagwatch_group_committed_beyond_end_partitions", "Partitions whose committed offset is above the log end (topic recreated under the same name, or data lost): the group reads nothing there until the log passes it; status ERR.", |_, a| Some(a.committed_beyond_end as f64)),
    ("lagwatch_group_partitions", "Partitions (JetStream: 1) the group has offsets on.", |_, a| Some(a.partitions as f64)),
    ("lagwatch_group_members", "Active members of the group as the broker reports them (JetStream push consumers: 1 if bound); absent when unknown.", |g, _| g.info.as_ref().and_then(|i| i.members).map(f64::from)),
];

/// Every group of every source, with the source's budget index. A source that
/// is down keeps its groups with their last values, marked stale
/// (`lagwatch_group_stale_seconds`): a series that vanishes would resolve the
/// alerts on it, a false all-clear.
fn all_groups(sources: &[SourceView]) -> impl Iterator<Item = (usize, &SourceView, &GroupView)> {
    sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.groups.iter().map(move |g| (i, s, g)))
}

/// One series per possible value of `label`, 1 for the current one.
fn state_set<'v>(
    w: &mut Writer,
    (i, src, g): (usize, &SourceView, &GroupView),
    name: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'v str, bool)>,
) {
    let [l0, l1, l2, l3] = group_labels(src, g);
    for (value, current) in values {
        w.series(
            i,
            name,
            &[l0, l1, l2, l3, (label, value)],
            f64::from(u8::from(current)),
        );
    }
}

fn render_groups(w: &mut Writer, sources: &[SourceView], at: Millis) {
    render_staleness(w, sources, at);
    for (name, help, value) in GROUP_FAMILIES {
        w.family(name, help, "gauge");
        for (i, src, g) in all_groups(sources) {
            if let Some(v) = g.analysis.as_ref().and_then(|a| value(g, a)) {
                w.series(i, name, &group_labels(src, g), v);
            }
        }
    }
    render_group_state_sets(w, sources);
    render_group_replicas(w, sources);
    w.family("lagwatch_group_skipped_messages_total", "Messages the group's committed offsets jumped past faster than it was ever seen to consume (ten times its fastest rate, at least 1,000): an offset reset forward or a purge, suspected. Since lagwatch started.", "counter");
    for (i, src, g) in all_groups(sources) {
        if g.analysis.is_some() {
            w.series(
                i,
                "lagwatch_group_skipped_messages_total",
                &group_labels(src, g),
                g.skipped_total as f64,
            );
        }
    }
    w.family("lagwatch_group_info", "Always 1; `state` is the broker's group state (Stable, Empty, ...; JetStream: active, missing, offline).", "gauge");
    for (i, src, g) in all_groups(sources) {
        let state = g
            .info
            .as_ref()
            .and_then(|i| i.state.as_deref())
            .unwrap_or("unknown");
        let [l0, l1, l2, l3] = group_labels(src, g);
        w.series(
            i,
            "lagwatch_group_info",
            &[l0, l1, l2, l3, ("state", state)],
            1.0,
        );
    }
}

/// How old each group's figures are: 0 when this poll read them all.
fn render_staleness(w: &mut Writer, sources: &[SourceView], at: Millis) {
    const AGE: &str = "lagwatch_group_stale_seconds";
    const PARTS: &str = "lagwatch_group_stale_partitions";
    w.family(AGE, "Age of the oldest figure of the group: 0 when its source's last poll read all of it; above 0 when the source is down or could not read some of its partitions, whose last known values are shown. Alert when it exceeds a few poll intervals.", "gauge");
    for (i, src, g) in all_groups(sources) {
        let st = src.staleness(g, at);
        w.series(i, AGE, &group_labels(src, g), st.seconds);
    }
    w.family(PARTS, "Partitions of the group whose figures are the last known ones, not the last poll's: when above 0 and below lagwatch_group_partitions, the group's sums mix fresh and stale values (partial).", "gauge");
    for (i, src, g) in all_groups(sources) {
        let st = src.staleness(g, at);
        w.series(i, PARTS, &group_labels(src, g), st.partitions as f64);
    }
}

/// The time lag's quality and the status, one series per possible value.
fn render_group_state_sets(w: &mut Writer, sources: &[SourceView]) {
    const QUALITY: &str = "lagwatch_group_lag_seconds_quality";
    w.family(QUALITY, "How lagwatch_group_lag_seconds was obtained: exact (the broker's timestamp of the message, or caught up), interpolated (between two polls; error at most a poll interval), extrapolated (older than the history, at the current rate: a guess) or unknown; 1 for the current one.", "gauge");
    for (i, src, g) in all_groups(sources) {
        if let Some(a) = &g.analysis {
            let current = a.time_lag_max.quality();
            let all = [
                TimeLagQuality::Exact,
                TimeLagQuality::Interpolated,
                TimeLagQuality::Extrapolated,
                TimeLagQuality::Unknown,
            ];
            let values = all.map(|q| (q.as_str(), q == current));
            state_set(w, (i, src, g), QUALITY, "quality", values);
        }
    }
    const STATUS: &str = "lagwatch_group_status";
    w.family(STATUS, "Group health after Burrow's rules (worst partition): 1 for the current status, 0 for the others.", "gauge");
    for (i, src, g) in all_groups(sources) {
        if let Some(a) = &g.analysis {
            let values = Status::ALL.map(|st| (st.as_str(), st == a.status));
            state_set(w, (i, src, g), STATUS, "status", values);
        }
    }
    const CAUSE: &str = "lagwatch_group_cause";
    w.family(CAUSE, "Why the group is behind: 1 for each cause the evidence supports (stopped, stalled, ack_limit, hot_partition, producer_spike, consumer_slowdown, rebalancing, or unknown when none fits), 0 for the others; only for groups that are behind (status not OK or lag growing).", "gauge");
    for (i, src, g) in all_groups(sources) {
        if !g.causes.is_empty() {
            let values = Cause::ALL.map(|c| (c.as_str(), g.causes.iter().any(|f| f.cause == c)));
            state_set(w, (i, src, g), CAUSE, "cause", values);
        }
    }
    const STATE: &str = "lagwatch_group_state";
    w.family(STATE, "The group's state as a state set: 1 for the current one, 0 for the others, so a change is a value change, not a new series. Kafka: the broker's (classic and KIP-848 names); JetStream: active, missing (configured, not found), offline (its source unreachable); unknown when none was given or the name is not listed (lagwatch_group_info has it verbatim).", "gauge");
    for (i, src, g) in all_groups(sources) {
        let all = match src.system {
            System::Kafka => KAFKA_STATES,
            System::Jetstream => JETSTREAM_STATES,
        };
        let state = g.info.as_ref().and_then(|i| i.state.as_deref());
        let current = state
            .and_then(|s| all.iter().find(|k| k.eq_ignore_ascii_case(s)))
            .copied()
            .unwrap_or("unknown");
        let values = all
            .iter()
            .chain(std::iter::once(&"unknown"))
            .map(|k| (*k, *k == current));
        state_set(w, (i, src, g), STATE, "state", values);
    }
}

/// Kafka group states: the classic protocol's, then KIP-848's.
const KAFKA_STATES: &[&str] = &[
    "Stable",
    "PreparingRebalance",
    "CompletingRebalance",
    "Empty",
    "Dead",
    "Assigning",
    "Reconciling",
];

/// JetStream consumer states as lagwatch names them.
const JETSTREAM_STATES: &[&str] = &["active", "missing", "offline"];

/// Replicas running and recommended.
fn render_group_replicas(w: &mut Writer, sources: &[SourceView]) {
    w.family("lagwatch_group_replicas_current", "Consumers the group runs now, where known (Kafka: active members; JetStream: bound push subscriber or configured).", "gauge");
    for (i, src, g) in all_groups(sources) {
        if let Some(c) = g.recommendation.as_ref().and_then(|r| r.current) {
            w.series(
                i,
                "lagwatch_group_replicas_current",
                &group_labels(src, g),
                f64::from(c),
            );
        }
    }
    w.family("lagwatch_group_replicas_recommended", "Consumers lagwatch recommends for the group, and why (reason); absent while there is not enough data.", "gauge");
    for (i, src, g) in all_groups(sources) {
        let Some(r) = &g.recommendation else { continue };
        if let Some(n) = r.recommended {
            let [l0, l1, l2, l3] = group_labels(src, g);
            w.series(
                i,
                "lagwatch_group_replicas_recommended",
                &[l0, l1, l2, l3, ("reason", r.reason.as_str())],
                f64::from(n),
            );
        }
    }
}

/// Runs of one group's partitions that share a topic (partitions are sorted).
fn topic_runs<'a>(
    src: &'a SourceView,
    g: &'a GroupView,
) -> impl Iterator<Item = (&'a str, Vec<&'a PartitionView>)> + 'a {
    let mut runs: Vec<(&str, Vec<&PartitionView>)> = Vec::new();
    for i in &g.partitions {
        let p = &src.partitions[*i];
        match runs.last_mut() {
            Some((t, v)) if *t == &*p.sample.key.topic => v.push(p),
            _ => runs.push((&p.sample.key.topic, vec![p])),
        }
    }
    runs.into_iter()
}

fn render_topics(w: &mut Writer, sources: &[SourceView], granularity: &[Granularity]) {
    let families: [(&str, &str, RollupValue); 3] = [
        ("lagwatch_topic_lag_messages", "Messages of one topic the group has not consumed yet (Kafka), summed over partitions.", |a| Some(a.lag_sum as f64)),
        ("lagwatch_topic_lag_seconds", "Age of the oldest unconsumed message of one topic for the group (Kafka); absent while unknown.", |a| a.time_lag_max.seconds()),
        ("lagwatch_topic_partitions", "Partitions of the topic the group has offsets on (Kafka).", |a| Some(a.partitions as f64)),
    ];
    for (name, help, value) in families {
        w.family(name, help, "gauge");
        for (i, src) in sources.iter().enumerate() {
            if src.system != System::Kafka || granularity[i] == Granularity::Group {
                continue;
            }
            for g in src.groups.iter() {
                for (topic, parts) in topic_runs(src, g) {
                    let a = analysis::rollup(parts.iter().map(|p| &p.analysis));
                    if let Some(v) = value(&a) {
                        let labels = [
                            ("source", src.id.as_str()),
                            ("system", "kafka"),
                            ("group", &*g.key.group),
                            ("topic", topic),
                        ];
                        w.series(i, name, &labels, v);
                    }
                }
            }
        }
    }
}

type PartitionValue = fn(&PartitionView) -> Option<f64>;
type RollupValue = fn(&GroupAnalysis) -> Option<f64>;

const PARTITION_FAMILIES: &[(&str, &str, PartitionValue)] = &[
    ("lagwatch_partition_lag_messages", "Messages of the partition the group has not consumed: latest offset minus committed offset (0 if the committed offset is above the latest).", |p| Some(p.sample.lag as f64)),
    ("lagwatch_partition_lag_seconds", "Age of the oldest message of the partition the group has not consumed; absent while unknown.", |p| p.analysis.time_lag.seconds()),
    ("lagwatch_partition_latest_offset", "Next offset to be written to the partition (high watermark).", |p| Some(p.sample.head as f64)),
    ("lagwatch_partition_committed_offset", "The group's committed offset on the partition (the next offset it will read); absent when it never committed.", |p| p.sample.committed.map(|c| c as f64)),
    ("lagwatch_partition_earliest_offset", "Earliest offset still stored in the partition.", |p| p.sample.low.map(|l| l as f64)),
    ("lagwatch_partition_status_code", "Partition health after Burrow's rules: 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP, 5 ERR.", |p| Some(p.analysis.status as u8 as f64)),
];

fn render_partitions(w: &mut Writer, sources: &[SourceView], granularity: &[Granularity]) {
    for (name, help, value) in PARTITION_FAMILIES {
        w.family(name, help, "gauge");
        for (i, src) in sources.iter().enumerate() {
            if src.system != System::Kafka || granularity[i] != Granularity::Partition {
                continue;
            }
            for p in src.partitions.iter() {
                if let Some(v) = value(p) {
                    let part = Int::new(i64::from(p.sample.key.partition.unwrap_or(-1)));
                    let labels = [
                        ("source", src.id.as_str()),
                        ("system", "kafka"),
                        ("group", &*p.sample.key.group.group),
                        ("topic", &*p.sample.key.topic),
                        ("partition", part.as_str()),
                    ];
                    w.series(i, name, &labels, v);
                }
            }
        }
    }
}

type PartsValue = fn(&JetstreamParts) -> Option<f64>;

const JETSTREAM_FAMILIES: &[(&str, &str, PartsValue)] = &[
    ("lagwatch_jetstream_pending_messages", "JetStream num_pending: messages matching the consumer's filter not yet delivered.", |j| Some(j.num_pending as f64)),
    ("lagwatch_jetstream_ack_pending_messages", "JetStream num_ack_pending: messages delivered but not yet acknowledged.", |j| Some(j.num_ack_pending as f64)),
    ("lagwatch_jetstream_max_ack_pending", "The consumer's max_ack_pending; when ack pending reaches it, delivery pauses and more replicas do not help.", |j| Some(j.max_ack_pending as f64)),
    ("lagwatch_jetstream_redelivered_messages", "JetStream num_redelivered: messages delivered more than once and not yet acknowledged.", |j| Some(j.num_redelivered as f64)),
    ("lagwatch_jetstream_waiting_pulls", "JetStream num_waiting: pull requests waiting for messages (pull consumers).", |j| Some(j.num_waiting as f64)),
    ("lagwatch_jetstream_delivered_stream_sequence", "Stream sequence of the last message delivered to the consumer.", |j| Some(j.delivered_stream_seq as f64)),
    ("lagwatch_jetstream_ack_floor_stream_sequence", "Stream sequence below which every message is acknowledged.", |j| Some(j.ack_floor_stream_seq as f64)),
    ("lagwatch_jetstream_push_bound", "Push consumers: 1 if a subscriber is bound to the deliver subject, 0 if not.", |j| j.push.then_some(f64::from(u8::from(j.push_bound)))),
];

type StreamValue = fn(&StreamState) -> f64;

const STREAM_FAMILIES: &[(&str, &str, StreamValue)] = &[
    (
        "lagwatch_stream_messages",
        "Messages stored in the JetStream stream.",
        |s| s.messages as f64,
    ),
    (
        "lagwatch_stream_bytes",
        "Bytes stored in the JetStream stream.",
        |s| s.bytes as f64,
    ),
    (
        "lagwatch_stream_first_sequence",
        "First sequence still stored in the stream.",
        |s| s.first_seq as f64,
    ),
    (
        "lagwatch_stream_last_sequence",
        "Last sequence written to the stream.",
        |s| s.last_seq as f64,
    ),
    (
        "lagwatch_stream_max_messages",
        "The stream's max_msgs limit; -1 means unlimited.",
        |s| s.max_msgs as f64,
    ),
    (
        "lagwatch_stream_max_bytes",
        "The stream's max_bytes limit; -1 means unlimited.",
        |s| s.max_bytes as f64,
    ),
    (
        "lagwatch_stream_max_age_seconds",
        "The stream's max_age limit; 0 means unlimited.",
        |s| s.max_age_seconds,
    ),
];

fn render_jetstream(w: &mut Writer, sources: &[SourceView]) {
    for (name, help, value) in JETSTREAM_FAMILIES {
        w.family(name, help, "gauge");
        for (i, src) in sources.iter().enumerate() {
            for p in src.partitions.iter() {
                let Some(v) = p.sample.jetstream.as_deref().and_then(value) else {
                    continue;
                };
                let labels = [
                    ("source", src.id.as_str()),
                    ("system", "jetstream"),
                    ("group", &*p.sample.key.group.group),
                    ("topic", &*p.sample.key.topic),
                ];
                w.series(i, name, &labels, v);
            }
        }
    }
    for (name, help, value) in STREAM_FAMILIES {
        w.family(name, help, "gauge");
        for (i, src) in sources.iter().enumerate() {
            for st in src.streams.iter() {
                let labels = [
                    ("source", src.id.as_str()),
                    ("system", "jetstream"),
                    ("topic", &*st.name),
                    ("retention", st.retention.as_str()),
                ];
                w.series(i, name, &labels, value(st));
            }
        }
    }
}

struct Budget {
    left: usize,
    written: usize,
    dropped: usize,
}

/// Text is buffered up to this many bytes, then compressed.
const SPILL: usize = 64 * 1024;

/// Appends the text format; counts series per source against its cap.
struct Writer {
    /// Text not yet compressed, at most about [`SPILL`] bytes.
    out: String,
    sink: gzip::Builder,
    budget: Vec<Budget>,
    /// Per source (same index as `budget`): its static labels, added to each
    /// of its series.
    statics: Vec<Vec<(String, String)>>,
}

impl Writer {
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        self.spill_full();
    }

    /// Compresses the buffered text once it is [`SPILL`] bytes.
    fn spill_full(&mut self) {
        if self.out.len() >= SPILL {
            self.spill();
        }
    }

    /// Compresses the buffered text.
    fn spill(&mut self) {
        self.sink.write(self.out.as_bytes());
        self.out.clear();
    }

    /// One series of source `src` (index into the budget), unless its cap is spent.
    fn series(&mut self, src: usize, name: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(b) = self.budget.get_mut(src) {
            if b.left == 0 {
                b.dropped += 1;
                return;
            }
            b.left -= 1;
            b.written += 1;
        }
        self.source_series(src, name, labels, value);
    }

    /// One series of source `src` with its static labels, outside its cap.
    fn source_series(&mut self, src: usize, name: &str, labels: &[(&str, &str)], value: f64) {
        let extra = self.statics.get(src).map_or(&[][..], Vec::as_slice);
        write_series(&mut self.out, name, labels, extra, value);
        self.spill_full();
    }

    fn raw_series(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        write_series(&mut self.out, name, labels, &[], value);
        self.spill_full();
    }
}

/// One line of the exposition: `labels`, then the source's static `extra`.
fn write_series(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    extra: &[(String, String)],
    value: f64,
) {
    out.push_str(name);
    let mut first = true;
    let extra = extra.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (k, v) in labels.iter().copied().chain(extra) {
        // An empty label value is the same as no label to Prometheus: omit it.
        if v.is_empty() {
            continue;
        }
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_label(out, v);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    if value.fract() == 0.0 && value.abs() < 1e15 {
        out.push_str(Int::new(value as i64).as_str());
    } else {
        let _ = write!(out, "{value}");
    }
    out.push('\n');
}

/// An integer in decimal, formatted without `core::fmt` (the body has
/// hundreds of thousands of them per snapshot).
struct Int {
    buf: [u8; 20],
    start: usize,
}

impl Int {
    fn new(v: i64) -> Int {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        let mut n = v.unsigned_abs();
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            start -= 1;
            buf[start] = b'-';
        }
        Int { buf, start }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and '-' were written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

/// Escapes a label value per the text exposition format.
pub fn escape_label(out: &mut String, v: &str) {
    // Almost every value needs no escaping: copy it whole.
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod escape_tests {
    use super::{escape_label, Int};

    #[test]
    fn integers_are_written_as_core_fmt_writes_them() {
        for v in [
            0,
            1,
            -1,
            9,
            10,
            99,
            100,
            -12_345,
            i64::MAX,
            i64::MIN,
            999_999_999_999_999,
        ] {
            assert_eq!(Int::new(v).as_str(), v.to_string());
        }
    }

    /// The text format's unescaping of a label value, as Prometheus' parser
    /// does it (`\\`, `\"`, `\n`); None where the escaped text could not
    /// be read back: a raw newline or quote, or a lone backslash.
    fn unescape(escaped: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = escaped.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    _ => return None,
                },
                '"' | '\n' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    proptest::proptest! {
        /// Any name a broker could send round-trips through the escaping.
        #[test]
        fn label_values_round_trip(name in ".*", hostile in "[\\\\\"\n\r\t{}=,#a]{0,24}") {
            for v in [name, hostile] {
                let mut out = String::new();
                escape_label(&mut out, &v);
                proptest::prop_assert_eq!(unescape(&out), Some(v));
            }
        }
    }
}

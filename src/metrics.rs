//! The Prometheus exposition: lagwatch's own health (prometheus crate registry)
//! plus the per-consumer series, written straight into one text body per snapshot.

use std::fmt::Write as _;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use std::collections::BTreeMap;

use crate::analysis::{self, GroupAnalysis, TimeLagQuality};
use crate::config::Granularity;
use crate::engine::{GroupView, PartitionView, SourceView};
use crate::model::{ErrorKind, JetstreamParts, PollBatch, SourceId, Status, StreamState, System};

/// Counters and gauges about lagwatch itself, owned by the engine.
#[derive(Debug)]
pub struct SelfMetrics {
    registry: Registry,
    source_up: IntGaugeVec,
    polls: IntCounterVec,
    poll_errors: IntCounterVec,
    poll_duration: HistogramVec,
    last_success: GaugeVec,
    anomalies: IntCounterVec,
}

const SOURCE_LABELS: &[&str] = &["source", "system"];

impl SelfMetrics {
    /// Registers every metric and creates each source's series at zero, so that
    /// `rate()` and absence alerts work from the first scrape.
    pub fn new(sources: &[(SourceId, System)]) -> SelfMetrics {
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new(
                "lagwatch_build_info",
                "Always 1; labels carry the lagwatch version running.",
            ),
            &["version"],
        )
        .expect("valid metric definition");
        let source_up = IntGaugeVec::new(
            Opts::new(
                "lagwatch_source_up",
                "1 if the last poll of this source succeeded, 0 if it failed (broker unreachable, auth, timeout).",
            ),
            SOURCE_LABELS,
        )
        .expect("valid metric definition");
        let polls = IntCounterVec::new(
            Opts::new(
                "lagwatch_polls_total",
                "Polls of this source that finished, successful or not.",
            ),
            SOURCE_LABELS,
        )
        .expect("valid metric definition");
        let poll_errors = IntCounterVec::new(
            Opts::new(
                "lagwatch_poll_errors_total",
                "Errors met while polling this source, by kind; a failed poll counts once, partial failures (one group unreadable) count each.",
            ),
            &["source", "system", "kind"],
        )
        .expect("valid metric definition");
        let poll_duration = HistogramVec::new(
            HistogramOpts::new(
                "lagwatch_poll_duration_seconds",
                "Wall time of one poll of this source, broker round trips included.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            SOURCE_LABELS,
        )
        .expect("valid metric definition");
        let last_success = GaugeVec::new(
            Opts::new(
                "lagwatch_last_successful_poll_timestamp_seconds",
                "Unix time of the last successful poll of this source; 0 if none yet.",
            ),
            SOURCE_LABELS,
        )
        .expect("valid metric definition");
        let anomalies = IntCounterVec::new(
            Opts::new(
                "lagwatch_anomalies_total",
                "Broker readings that contradict each other (a committed offset above the latest offset); lag is reported as 0 for them.",
            ),
            SOURCE_LABELS,
        )
        .expect("valid metric definition");
        for c in [
            Box::new(build_info.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(source_up.clone()),
            Box::new(polls.clone()),
            Box::new(poll_errors.clone()),
            Box::new(poll_duration.clone()),
            Box::new(last_success.clone()),
            Box::new(anomalies.clone()),
        ] {
            registry
                .register(c)
                .expect("metric names are unique within lagwatch");
        }
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for (id, system) in sources {
            let l = [id.as_str(), system.as_str()];
            source_up.with_label_values(&l).set(0);
            polls.with_label_values(&l);
            poll_duration.with_label_values(&l);
            last_success.with_label_values(&l).set(0.0);
            anomalies.with_label_values(&l);
            for kind in ErrorKind::ALL {
                poll_errors.with_label_values(&[l[0], l[1], kind.as_str()]);
            }
        }
        SelfMetrics {
            registry,
            source_up,
            polls,
            poll_errors,
            poll_duration,
            last_success,
            anomalies,
        }
    }

    /// The registry other owners (the notifier) add their metrics to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one poll in one place: its duration, outcome and errors.
    pub fn record_poll(&self, batch: &PollBatch) {
        let l = [batch.source.as_str(), batch.system.as_str()];
        self.polls.with_label_values(&l).inc();
        self.poll_duration
            .with_label_values(&l)
            .observe(batch.duration.as_secs_f64());
        match &batch.result {
            Ok(data) => {
                self.source_up.with_label_values(&l).set(1);
                self.last_success
                    .with_label_values(&l)
                    .set(batch.at.as_secs_f64());
                self.anomalies.with_label_values(&l).inc_by(data.anomalies);
                for (kind, n) in &data.partial_errors {
                    self.poll_errors
                        .with_label_values(&[l[0], l[1], kind.as_str()])
                        .inc_by(*n);
                }
            }
            Err(f) => {
                self.source_up.with_label_values(&l).set(0);
                self.poll_errors
                    .with_label_values(&[l[0], l[1], f.kind.as_str()])
                    .inc();
            }
        }
    }
}

/// How much detail each source exports, and the optional compatibility names.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Per source, in the engine's source order.
    pub sources: BTreeMap<SourceId, SourcePlan>,
    pub kafka_lag_exporter: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct SourcePlan {
    pub granularity: Granularity,
    /// At most this many per-consumer series for the source (None: no cap).
    pub max_series: Option<usize>,
}

/// Renders the whole exposition for one snapshot.
pub fn render(
    own: &SelfMetrics,
    sources: &[SourceView],
    plan: &Plan,
    history_keys: usize,
) -> String {
    let mut w = Writer {
        out: String::with_capacity(64 * 1024),
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
    };
    let granularity: Vec<Granularity> = sources
        .iter()
        .map(|s| {
            plan.sources
                .get(&s.id)
                .map_or(Granularity::default(), |p| p.granularity)
        })
        .collect();
    render_groups(&mut w, sources);
    render_topics(&mut w, sources, &granularity);
    render_partitions(&mut w, sources, &granularity);
    render_jetstream(&mut w, sources);
    if plan.kafka_lag_exporter {
        compat::render(&mut w, sources);
    }

    let mut buf = Vec::with_capacity(8192);
    if let Err(e) = TextEncoder::new().encode(&own.registry.gather(), &mut buf) {
        tracing::error!(error = %e, "encoding lagwatch's own metrics failed");
    }
    let mut out = String::from_utf8_lossy(&buf).into_owned();
    let consumers = std::mem::take(&mut w.out);
    w.family(
        "lagwatch_series",
        "Per-consumer series this source exports in the current snapshot (after the cap).",
        "gauge",
    );
    for (i, s) in sources.iter().enumerate() {
        w.raw_series(
            "lagwatch_series",
            &[("source", s.id.as_str())],
            w.budget[i].written as f64,
        );
    }
    w.family("lagwatch_series_dropped", "Per-consumer series of this source left out of the current snapshot by max_series; raise the cap or coarsen the granularity.", "gauge");
    for (i, s) in sources.iter().enumerate() {
        w.raw_series(
            "lagwatch_series_dropped",
            &[("source", s.id.as_str())],
            w.budget[i].dropped as f64,
        );
    }
    w.family(
        "lagwatch_history_keys",
        "Partitions and consumers whose sample history lagwatch holds in memory.",
        "gauge",
    );
    w.raw_series("lagwatch_history_keys", &[], history_keys as f64);
    out.push_str(&w.out);
    out.push_str(&consumers);
    out
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
    ("lagwatch_group_lag_seconds_lower_bound", "When the time lag is unknown (history too short): the oldest unconsumed message is at least this old.", |_, a| a.time_lag_max.at_least()),
    ("lagwatch_group_produce_messages_per_second", "Rate at which messages are written to the group's partitions (least-squares slope over the analysis window); absent until the window has enough samples.", |_, a| a.produce_rate),
    ("lagwatch_group_consume_messages_per_second", "Rate at which the group consumes (commits) messages, over the analysis window.", |_, a| a.consume_rate),
    ("lagwatch_group_lag_growth_messages_per_second", "How fast the group's lag grows (negative: shrinks), over the analysis window.", |_, a| a.lag_growth),
    ("lagwatch_group_catchup_eta_seconds", "Estimated time until the group has caught up; present only while it is catching up.", |_, a| a.eta_seconds),
    ("lagwatch_group_status_code", "Group health after Burrow's rules, worst partition: 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP, 5 ERR.", |_, a| Some(a.status as u8 as f64)),
    ("lagwatch_group_lost_messages", "Messages deleted by retention before the group consumed them (committed offset below the earliest stored offset).", |_, a| Some(a.lost_messages as f64)),
    ("lagwatch_group_time_until_loss_seconds", "If the group stopped now, time until retention deletes a message it has not consumed; absent when retention does not advance.", |_, a| a.seconds_to_loss),
    ("lagwatch_group_partitions", "Partitions (JetStream: 1) the group has offsets on.", |_, a| Some(a.partitions as f64)),
    ("lagwatch_group_members", "Active members of the group as the broker reports them (JetStream push consumers: 1 if bound); absent when unknown.", |g, _| g.info.as_ref().and_then(|i| i.members).map(f64::from)),
];

fn render_groups(w: &mut Writer, sources: &[SourceView]) {
    for (name, help, value) in GROUP_FAMILIES {
        w.family(name, help, "gauge");
        for (i, src) in sources.iter().enumerate().filter(|(_, s)| s.up) {
            for g in src.groups.iter() {
                if let Some(v) = g.analysis.as_ref().and_then(|a| value(g, a)) {
                    w.series(i, name, &group_labels(src, g), v);
                }
            }
        }
    }
    w.family("lagwatch_group_lag_seconds_quality", "How lagwatch_group_lag_seconds was obtained: exact (caught up), interpolated (between two samples), extrapolated (older than the history, from the produce rate) or unknown; 1 for the current one.", "gauge");
    for (i, src) in sources.iter().enumerate().filter(|(_, s)| s.up) {
        for g in src.groups.iter() {
            if let Some(a) = &g.analysis {
                let current = a.time_lag_max.quality();
                for q in [
                    TimeLagQuality::Exact,
                    TimeLagQuality::Interpolated,
                    TimeLagQuality::Extrapolated,
                    TimeLagQuality::Unknown,
                ] {
                    let [l0, l1, l2, l3] = group_labels(src, g);
                    w.series(
                        i,
                        "lagwatch_group_lag_seconds_quality",
                        &[l0, l1, l2, l3, ("quality", q.as_str())],
                        f64::from(u8::from(q == current)),
                    );
                }
            }
        }
    }
    w.family("lagwatch_group_status", "Group health after Burrow's rules (worst partition): 1 for the current status, 0 for the others.", "gauge");
    for (i, src) in sources.iter().enumerate().filter(|(_, s)| s.up) {
        for g in src.groups.iter() {
            if let Some(a) = &g.analysis {
                for st in Status::ALL {
                    let [l0, l1, l2, l3] = group_labels(src, g);
                    w.series(
                        i,
                        "lagwatch_group_status",
                        &[l0, l1, l2, l3, ("status", st.as_str())],
                        f64::from(u8::from(st == a.status)),
                    );
                }
            }
        }
    }
    w.family("lagwatch_group_replicas_current", "Consumers the group runs now, where known (Kafka: active members; JetStream: bound push subscriber or configured).", "gauge");
    for (i, src) in sources.iter().enumerate().filter(|(_, s)| s.up) {
        for g in src.groups.iter() {
            if let Some(c) = g.recommendation.as_ref().and_then(|r| r.current) {
                w.series(
                    i,
                    "lagwatch_group_replicas_current",
                    &group_labels(src, g),
                    f64::from(c),
                );
            }
        }
    }
    w.family("lagwatch_group_replicas_recommended", "Consumers lagwatch recommends for the group, and why (reason); absent while there is not enough data.", "gauge");
    for (i, src) in sources.iter().enumerate().filter(|(_, s)| s.up) {
        for g in src.groups.iter() {
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
    w.family("lagwatch_group_info", "Always 1; `state` is the broker's group state (Stable, Empty, ...; JetStream: active, missing, offline).", "gauge");
    for (i, src) in sources.iter().enumerate().filter(|(_, s)| s.up) {
        for g in src.groups.iter() {
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
            if !src.up || src.system != System::Kafka || granularity[i] == Granularity::Group {
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
            if !src.up || src.system != System::Kafka || granularity[i] != Granularity::Partition {
                continue;
            }
            for p in src.partitions.iter() {
                if let Some(v) = value(p) {
                    let part = p.sample.key.partition.unwrap_or(-1).to_string();
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
        for (i, src) in sources.iter().enumerate().filter(|(_, s)| s.up) {
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
        for (i, src) in sources.iter().enumerate().filter(|(_, s)| s.up) {
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

/// Appends the text format; counts series per source against its cap.
struct Writer {
    out: String,
    budget: Vec<Budget>,
}

impl Writer {
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
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
        self.raw_series(name, labels, value);
    }

    fn raw_series(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        let mut first = true;
        for (k, v) in labels {
            // An empty label value is the same as no label to Prometheus: omit it.
            if v.is_empty() {
                continue;
            }
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label(&mut self.out, v);
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        self.out.push(' ');
        if value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = write!(self.out, "{}", value as i64);
        } else {
            let _ = write!(self.out, "{value}");
        }
        self.out.push('\n');
    }
}

/// Escapes a label value per the text exposition format.
pub fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// kafka-lag-exporter's metric names and labels, for dashboards and alerts
/// written against it (it was archived in 2024). Kafka sources only.
mod compat {
    use std::collections::BTreeMap;

    use super::Writer;
    use crate::engine::SourceView;
    use crate::model::System;

    pub(super) fn render(w: &mut Writer, sources: &[SourceView]) {
        let kafka = || {
            sources
                .iter()
                .enumerate()
                .filter(|(_, s)| s.up && s.system == System::Kafka)
        };
        let per_partition: [(&str, &str, super::PartitionValue); 3] = [
            ("kafka_consumergroup_group_offset", "kafka-lag-exporter compatible: the group's last consumed (committed) offset of the partition.", |p| p.sample.committed.map(|c| c as f64)),
            ("kafka_consumergroup_group_lag", "kafka-lag-exporter compatible: latest offset minus committed offset of the partition.", |p| Some(p.sample.lag as f64)),
            ("kafka_consumergroup_group_lag_seconds", "kafka-lag-exporter compatible: estimated age of the oldest unconsumed message of the partition.", |p| p.analysis.time_lag.seconds()),
        ];
        for (name, help, value) in per_partition {
            w.family(name, help, "gauge");
            for (i, src) in kafka() {
                for p in src.partitions.iter() {
                    if let Some(v) = value(p) {
                        let part = p.sample.key.partition.unwrap_or(-1).to_string();
                        let labels = [
                            ("cluster_name", src.id.as_str()),
                            ("group", &*p.sample.key.group.group),
                            ("topic", &*p.sample.key.topic),
                            ("partition", part.as_str()),
                            ("member_host", ""),
                            ("consumer_id", ""),
                            ("client_id", ""),
                        ];
                        w.series(i, name, &labels, v);
                    }
                }
            }
        }
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
            for (i, src) in kafka() {
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
        w.family(
            "kafka_consumergroup_group_topic_sum_lag",
            "kafka-lag-exporter compatible: the group's lag on one topic, summed over partitions.",
            "gauge",
        );
        for (i, src) in kafka() {
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
            for (i, src) in kafka() {
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
}

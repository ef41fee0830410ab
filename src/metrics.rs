//! The Prometheus exposition: lagwatch's own health (prometheus crate registry)
//! plus the per-consumer series, written straight into one text body per snapshot.

use std::fmt::Write as _;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::engine::SourceView;
use crate::model::{ErrorKind, PollBatch, Sample, SourceId, StreamState, System};

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

/// Renders the whole exposition for one snapshot.
pub fn render(own: &SelfMetrics, sources: &[SourceView]) -> String {
    let mut out = String::with_capacity(4096);
    let mut buf = Vec::with_capacity(4096);
    if let Err(e) = TextEncoder::new().encode(&own.registry.gather(), &mut buf) {
        tracing::error!(error = %e, "encoding lagwatch's own metrics failed");
    }
    out.push_str(&String::from_utf8_lossy(&buf));
    render_consumers(&mut out, sources);
    out
}

struct Family {
    name: &'static str,
    help: &'static str,
}

fn header(out: &mut String, f: &Family) {
    let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
    let _ = writeln!(out, "# TYPE {} gauge", f.name);
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

fn consumer_labels(out: &mut String, s: &Sample, system: System) {
    out.push_str("{source=\"");
    escape_label(out, s.key.group.source.as_str());
    out.push_str("\",system=\"");
    out.push_str(system.as_str());
    out.push_str("\",group=\"");
    escape_label(out, &s.key.group.group);
    out.push_str("\",topic=\"");
    escape_label(out, &s.key.topic);
    out.push_str("\",partition=\"");
    if let Some(p) = s.key.partition {
        let _ = write!(out, "{p}");
    }
    out.push_str("\"}");
}

type SampleValue = fn(&Sample) -> Option<i128>;

/// Per-consumer gauges: (family, value; None = no series for this sample).
const CONSUMER_FAMILIES: &[(Family, SampleValue)] = &[
    (
        Family {
            name: "lagwatch_lag_messages",
            help: "Messages not yet consumed: latest offset minus committed offset (Kafka, per partition) or num_pending + num_ack_pending (JetStream, per consumer).",
        },
        |s| Some(i128::from(s.lag)),
    ),
    (
        Family {
            name: "lagwatch_latest_offset",
            help: "Next offset to be written (high watermark) of the partition; for JetStream the stream's last sequence + 1.",
        },
        |s| Some(i128::from(s.head)),
    ),
    (
        Family {
            name: "lagwatch_committed_offset",
            help: "Next offset the group will consume (its committed offset; JetStream: ack floor + 1). Absent when the group never committed on this partition.",
        },
        |s| s.committed.map(i128::from),
    ),
    (
        Family {
            name: "lagwatch_earliest_offset",
            help: "Earliest offset still stored in the partition (JetStream: the stream's first sequence). Below the committed offset, messages were lost unconsumed.",
        },
        |s| s.low.map(i128::from),
    ),
    (
        Family {
            name: "lagwatch_jetstream_pending_messages",
            help: "JetStream num_pending: messages matching the consumer's filter not yet delivered.",
        },
        |s| s.jetstream.as_ref().map(|j| i128::from(j.num_pending)),
    ),
    (
        Family {
            name: "lagwatch_jetstream_ack_pending_messages",
            help: "JetStream num_ack_pending: messages delivered but not yet acknowledged.",
        },
        |s| s.jetstream.as_ref().map(|j| i128::from(j.num_ack_pending)),
    ),
    (
        Family {
            name: "lagwatch_jetstream_max_ack_pending",
            help: "The consumer's max_ack_pending limit; when ack pending reaches it, delivery pauses and more replicas do not help.",
        },
        |s| s.jetstream.as_ref().map(|j| i128::from(j.max_ack_pending)),
    ),
    (
        Family {
            name: "lagwatch_jetstream_redelivered_messages",
            help: "JetStream num_redelivered: messages delivered more than once and not yet acknowledged.",
        },
        |s| s.jetstream.as_ref().map(|j| i128::from(j.num_redelivered)),
    ),
    (
        Family {
            name: "lagwatch_jetstream_waiting_pulls",
            help: "JetStream num_waiting: pull requests waiting for messages (pull consumers).",
        },
        |s| s.jetstream.as_ref().map(|j| i128::from(j.num_waiting)),
    ),
    (
        Family {
            name: "lagwatch_jetstream_delivered_stream_sequence",
            help: "Stream sequence of the last message delivered to the consumer.",
        },
        |s| s.jetstream.as_ref().map(|j| i128::from(j.delivered_stream_seq)),
    ),
    (
        Family {
            name: "lagwatch_jetstream_ack_floor_stream_sequence",
            help: "Stream sequence below which every message is acknowledged.",
        },
        |s| s.jetstream.as_ref().map(|j| i128::from(j.ack_floor_stream_seq)),
    ),
    (
        Family {
            name: "lagwatch_jetstream_push_bound",
            help: "For push consumers: 1 if a subscriber is bound to the deliver subject, 0 if not.",
        },
        |s| {
            s.jetstream
                .as_ref()
                .filter(|j| j.push)
                .map(|j| i128::from(j.push_bound))
        },
    ),
];

type StreamValue = fn(&StreamState) -> f64;

const STREAM_FAMILIES: &[(Family, StreamValue)] = &[
    (
        Family {
            name: "lagwatch_stream_messages",
            help: "Messages stored in the JetStream stream.",
        },
        |s| s.messages as f64,
    ),
    (
        Family {
            name: "lagwatch_stream_bytes",
            help: "Bytes stored in the JetStream stream.",
        },
        |s| s.bytes as f64,
    ),
    (
        Family {
            name: "lagwatch_stream_first_sequence",
            help: "First sequence still stored in the stream.",
        },
        |s| s.first_seq as f64,
    ),
    (
        Family {
            name: "lagwatch_stream_last_sequence",
            help: "Last sequence written to the stream.",
        },
        |s| s.last_seq as f64,
    ),
    (
        Family {
            name: "lagwatch_stream_max_messages",
            help: "The stream's max_msgs limit; -1 means unlimited.",
        },
        |s| s.max_msgs as f64,
    ),
    (
        Family {
            name: "lagwatch_stream_max_bytes",
            help: "The stream's max_bytes limit; -1 means unlimited.",
        },
        |s| s.max_bytes as f64,
    ),
    (
        Family {
            name: "lagwatch_stream_max_age_seconds",
            help: "The stream's max_age limit in seconds; 0 means unlimited.",
        },
        |s| s.max_age_seconds,
    ),
];

fn render_consumers(out: &mut String, sources: &[SourceView]) {
    for (family, value) in CONSUMER_FAMILIES {
        header(out, family);
        for src in sources.iter().filter(|s| s.up) {
            for sample in src.samples.iter() {
                if let Some(v) = value(sample) {
                    out.push_str(family.name);
                    consumer_labels(out, sample, src.system);
                    let _ = writeln!(out, " {v}");
                }
            }
        }
    }
    for (family, value) in STREAM_FAMILIES {
        header(out, family);
        for src in sources.iter().filter(|s| s.up) {
            for stream in src.streams.iter() {
                out.push_str(family.name);
                out.push_str("{source=\"");
                escape_label(out, src.id.as_str());
                out.push_str("\",system=\"jetstream\",topic=\"");
                escape_label(out, &stream.name);
                let _ = writeln!(
                    out,
                    "\",retention=\"{}\"}} {}",
                    stream.retention,
                    value(stream)
                );
            }
        }
    }
}

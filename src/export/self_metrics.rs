//! Counters and gauges about lagwatch's own polling, owned by the engine and
//! rendered into each snapshot's body: every poll is counted here, in one place.

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use std::collections::{BTreeSet, HashMap};

use crate::history::RestartReason;
use crate::model::{ErrorKind, PollBatch, SourceId, System};

/// The engine's own metrics.
#[derive(Debug)]
pub struct SelfMetrics {
    registry: Registry,
    source_up: IntGaugeVec,
    polls: IntCounterVec,
    poll_errors: IntCounterVec,
    poll_duration: HistogramVec,
    last_success: GaugeVec,
    anomalies: IntCounterVec,
    history_restarts: IntCounterVec,
    notifications_dropped: IntCounter,
    /// Static label values per source, in the order of `static_names` (empty
    /// where a source has no such label).
    statics: HashMap<SourceId, Vec<String>>,
    /// Every source's static label names, sorted.
    static_names: Vec<String>,
}

/// `source, system`, then `more`, then every source's static label names.
fn label_names<'a>(more: &[&'a str], statics: &'a [String]) -> Vec<&'a str> {
    let mut names = vec!["source", "system"];
    names.extend_from_slice(more);
    names.extend(statics.iter().map(String::as_str));
    names
}

/// Registers `c` on `registry` and hands it back.
fn registered<C: Collector + Clone + 'static>(
    registry: &Registry,
    c: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    registered(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn int_gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    registered(r, IntGaugeVec::new(Opts::new(name, help), labels)?)
}

fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<GaugeVec> {
    registered(r, GaugeVec::new(Opts::new(name, help), labels)?)
}

/// Every source's static label names (sorted), and per source its values in
/// that order, empty where it has no such label.
type StaticTable = (Vec<String>, HashMap<SourceId, Vec<String>>);

fn static_table(statics: &[(SourceId, Vec<(String, String)>)]) -> StaticTable {
    let names: Vec<String> = statics
        .iter()
        .flat_map(|(_, l)| l.iter().map(|(k, _)| k.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let values = statics
        .iter()
        .map(|(id, l)| {
            let v = names
                .iter()
                .map(|n| {
                    l.iter()
                        .find(|(k, _)| k == n)
                        .map_or_else(String::new, |(_, v)| v.clone())
                })
                .collect();
            (id.clone(), v)
        })
        .collect();
    (names, values)
}

impl SelfMetrics {
    /// Registers every metric and creates each source's series at zero, so that
    /// `rate()` and absence alerts work from the first scrape.
    /// `statics`: each source's static labels (`sources[].labels`), added to
    /// its series here as on every other series of the source.
    pub fn new(
        sources: &[(SourceId, System)],
        statics: &[(SourceId, Vec<(String, String)>)],
    ) -> Result<SelfMetrics, prometheus::Error> {
        let (names, values) = static_table(statics);
        let source_labels = label_names(&[], &names);
        let source_labels = source_labels.as_slice();
        let r = Registry::new();
        let m = SelfMetrics {
            source_up: int_gauge_vec(
                &r,
                "lagwatch_source_up",
                "1 if the last poll of this source succeeded, 0 if it failed (broker unreachable, auth, timeout).",
                source_labels,
            )?,
            polls: counter_vec(
                &r,
                "lagwatch_polls_total",
                "Polls of this source that finished, successful or not.",
                source_labels,
            )?,
            poll_errors: counter_vec(
                &r,
                "lagwatch_poll_errors_total",
                "Errors met while polling this source, by kind; a failed poll counts once, partial failures (one group unreadable) count each.",
                &label_names(&["kind"], &names),
            )?,
            poll_duration: registered(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "lagwatch_poll_duration_seconds",
                        "Wall time of one poll of this source, broker round trips included.",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    ]),
                    source_labels,
                )?,
            )?,
            last_success: gauge_vec(
                &r,
                "lagwatch_last_successful_poll_timestamp_seconds",
                "Unix time of the last successful poll of this source; 0 if none yet.",
                source_labels,
            )?,
            anomalies: counter_vec(
                &r,
                "lagwatch_anomalies_total",
                "Broker readings that contradict each other (a committed offset above the latest offset); lag is reported as 0 for them.",
                source_labels,
            )?,
            history_restarts: counter_vec(
                &r,
                "lagwatch_history_restarts_total",
                "Partitions or consumers whose sample history was thrown away and started again, by reason: head_decreased (topic or stream recreated), clock_went_back. Rates and status need a full window again afterwards.",
                &label_names(&["reason"], &names),
            )?,
            notifications_dropped: registered(
                &r,
                IntCounter::new(
                    "lagwatch_engine_notifications_dropped_total",
                    "Notifications the engine could not hand to the notifier (its channel full or the notifier gone); they are lost.",
                )?,
            )?,
            registry: r,
            statics: values,
            static_names: names.clone(),
        };
        int_gauge_vec(
            &m.registry,
            "lagwatch_build_info",
            "Always 1; labels carry the lagwatch version running, the git commit it was built from and the rustc that built it.",
            &["version", "commit", "rustc"],
        )?
        .with_label_values(&[
            env!("CARGO_PKG_VERSION"),
            env!("LAGWATCH_GIT_COMMIT"),
            env!("LAGWATCH_RUSTC_VERSION"),
        ])
        .set(1);
        m.zero(sources);
        Ok(m)
    }

    /// Creates every series of every source at zero.
    fn zero(&self, sources: &[(SourceId, System)]) {
        for (id, system) in sources {
            let l = self.values(id, *system, None);
            self.source_up.with_label_values(&l).set(0);
            self.polls.with_label_values(&l);
            self.poll_duration.with_label_values(&l);
            self.last_success.with_label_values(&l).set(0.0);
            self.anomalies.with_label_values(&l);
            for kind in ErrorKind::ALL {
                self.poll_errors
                    .with_label_values(&self.values(id, *system, Some(kind.as_str())));
            }
            for reason in RestartReason::ALL {
                self.history_restarts.with_label_values(&self.values(
                    id,
                    *system,
                    Some(reason.as_str()),
                ));
            }
        }
    }

    /// The label values of a series of source `id`: source, system, `more`,
    /// then its static labels.
    fn values<'a>(
        &'a self,
        id: &'a SourceId,
        system: System,
        more: Option<&'a str>,
    ) -> Vec<&'a str> {
        let mut v = vec![id.as_str(), system.as_str()];
        v.extend(more);
        if let Some(s) = self.statics.get(id) {
            v.extend(s.iter().map(String::as_str));
        } else {
            // A source the engine was not told about: empty static labels.
            v.extend(std::iter::repeat_n("", self.static_names.len()));
        }
        v
    }

    /// Counts one poll in one place: its duration, outcome and errors.
    pub fn record_poll(&self, batch: &PollBatch) {
        let l = self.values(&batch.source, batch.system, None);
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
                        .with_label_values(&self.values(
                            &batch.source,
                            batch.system,
                            Some(kind.as_str()),
                        ))
                        .inc_by(*n);
                }
            }
            Err(f) => {
                self.source_up.with_label_values(&l).set(0);
                self.poll_errors
                    .with_label_values(&self.values(
                        &batch.source,
                        batch.system,
                        Some(f.kind.as_str()),
                    ))
                    .inc();
            }
        }
    }

    /// Counts history restarts of one source's keys, by reason.
    pub fn record_restarts(
        &self,
        source: &SourceId,
        system: System,
        reason: RestartReason,
        n: u64,
    ) {
        self.history_restarts
            .with_label_values(&self.values(source, system, Some(reason.as_str())))
            .inc_by(n);
    }

    /// Counts a notification the engine could not queue.
    pub fn record_notification_dropped(&self) {
        self.notifications_dropped.inc();
    }

    /// The text exposition of these metrics.
    pub fn encode(&self, out: &mut String) {
        if self.static_names.is_empty() {
            encode_registry(&self.registry, out);
            return;
        }
        // The crate writes a source without one of the static labels as
        // `dc=""`: the same as no label to Prometheus, but it reads as if the
        // source had it. Drop them, as the rest of the body does. (A label
        // value cannot hold an unescaped quote, so `=""` is only ever empty.)
        let mut text = String::new();
        encode_registry(&self.registry, &mut text);
        for n in &self.static_names {
            text = text
                .replace(&format!("{{{n}=\"\"}}"), "")
                .replace(&format!("{{{n}=\"\","), "{")
                .replace(&format!(",{n}=\"\""), "");
        }
        out.push_str(&text);
    }
}

/// A registry of the standard `process_*` metrics (CPU seconds, resident and
/// virtual memory, open and maximum file descriptors, threads, start time), read
/// from /proc at each scrape; empty on platforms without /proc.
pub fn process_registry() -> Registry {
    let r = Registry::new();
    #[cfg(target_os = "linux")]
    if let Err(e) = r.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    )) {
        tracing::error!(error = %e, "registering the process metrics failed");
    }
    r
}

/// Appends the text exposition of `registry` to `out`.
pub fn encode_registry(registry: &Registry, out: &mut String) {
    let mut buf = Vec::with_capacity(8192);
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut buf) {
        tracing::error!(error = %e, "encoding lagwatch's own metrics failed");
    }
    out.push_str(&String::from_utf8_lossy(&buf));
}

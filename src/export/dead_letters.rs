//! Dead letters and redeliveries on /metrics: one series per dead-letter queue
//! (Kafka) or consumer and reason (JetStream), in the group vocabulary
//! (`source, system, group, topic`) plus `reason` and `dead_letter_topic`.

use super::Writer;
use crate::model::Millis;
use crate::snapshot::{DeadLetterView, SourceView};

type ViewValue = fn(&DeadLetterView) -> Option<f64>;

const FAMILIES: &[(&str, &str, &str, ViewValue)] = &[
    ("lagwatch_dead_letters_total", "counter", "Dead letters: Kafka, messages ever written to the dead-letter topic (its offsets, summed over partitions; reason dead_letter_topic); JetStream, MAX_DELIVERIES (reason max_deliveries) and MSG_TERMINATED (reason terminated) advisories received since lagwatch subscribed (0 for every consumer read; a consumer quiet for twice dead_letters.window starts again from 0). `topic` is the topic the dead letters came from (or the stream), `group` the group linked to it (empty: none or several consume the topic).", |v| Some(v.total as f64)),
    ("lagwatch_dead_letters_recent", "gauge", "Dead letters added within dead_letters.window (default 1h), as far as lagwatch watched: a lower bound until it has watched a whole window (see the API's quality).", |v| Some(v.recent as f64)),
    ("lagwatch_dead_letters_per_second", "gauge", "Dead letters added per second over the analysis window; absent until two readings.", |v| v.per_second),
    ("lagwatch_dead_letters_undrained", "gauge", "Kafka: messages of the dead-letter topic no consumer group has consumed yet (the least lag of the groups reading it; every stored message when no group does).", |v| v.undrained.map(|u| u as f64)),
];

/// An advisory count that has never counted anything.
fn quiet(v: &DeadLetterView) -> bool {
    v.dead_letter_topic.is_none() && v.total == 0 && v.recent == 0
}

/// The labels of one dead-letter queue's series.
fn labels<'a>(src: &'a SourceView, v: &'a DeadLetterView) -> [(&'static str, &'a str); 6] {
    [
        ("source", src.id.as_str()),
        ("system", src.system.as_str()),
        ("group", v.group.as_deref().unwrap_or("")),
        ("topic", &v.topic),
        ("reason", v.reason.as_str()),
        (
            "dead_letter_topic",
            v.dead_letter_topic.as_deref().unwrap_or(""),
        ),
    ]
}

pub(super) fn render(w: &mut Writer, sources: &[SourceView], at: Millis) {
    for (name, kind, help, value) in FAMILIES {
        w.family(name, help, kind);
        for (i, src) in sources.iter().enumerate() {
            for v in src.dead_letters.iter() {
                // A JetStream consumer with no advisory yet exports its zero
                // counter only (for increase()): two series per consumer,
                // not eight.
                if *name != "lagwatch_dead_letters_total" && quiet(v) {
                    continue;
                }
                let Some(x) = value(v) else { continue };
                w.series(i, name, &labels(src, v), x);
            }
        }
    }
    const STALE: &str = "lagwatch_dead_letters_stale_seconds";
    w.family(STALE, "Age of the dead-letter figures when the source's last poll could not read them (0 when it did): the series above then hold their last known values; their increase() is not an all-clear.", "gauge");
    for (i, src) in sources.iter().enumerate() {
        for v in src.dead_letters.iter().filter(|v| !quiet(v)) {
            let stale = src.last_poll.is_some_and(|p| v.read_at < p);
            let age = if stale {
                at.0.saturating_sub(v.read_at.0).max(0) as f64 / 1000.0
            } else {
                0.0
            };
            w.series(i, STALE, &labels(src, v), age);
        }
    }
    const REDELIVERED: &str = "lagwatch_redelivered_messages_per_second";
    w.family(REDELIVERED, "JetStream: messages delivered again per second over the analysis window, from delivered.consumer_seq - delivered.stream_seq (quality exact); for a filtered consumer every delivery is counted (quality upper_bound). num_redelivered is not a count of redeliveries (it counts unacknowledged messages delivered more than once).", "gauge");
    for (i, src) in sources.iter().enumerate() {
        for g in src.groups.iter() {
            let Some((rate, quality)) = g.redelivered else {
                continue;
            };
            let labels = [
                ("source", src.id.as_str()),
                ("system", src.system.as_str()),
                ("group", &*g.key.group),
                ("topic", g.key.scope.as_deref().unwrap_or("")),
                ("quality", quality.as_str()),
            ];
            w.series(i, REDELIVERED, &labels, rate);
        }
    }
    const SUBSCRIBED: &str = "lagwatch_dead_letter_advisories_subscribed";
    const GAPS: &str = "lagwatch_dead_letter_advisories_gaps_total";
    w.family(SUBSCRIBED, "JetStream: 1 while lagwatch is subscribed to the MAX_DELIVERIES and MSG_TERMINATED advisories (connected, not refused), 0 when not: advisories published meanwhile are lost.", "gauge");
    for (i, src) in sources.iter().enumerate() {
        if let Some(a) = src.advisories {
            let labels = [("source", src.id.as_str())];
            w.source_series(i, SUBSCRIBED, &labels, f64::from(u8::from(a.subscribed)));
        }
    }
    w.family(GAPS, "JetStream: times the connection dropped since lagwatch subscribed to the advisories; each is a stretch whose dead letters were not seen.", "counter");
    for (i, src) in sources.iter().enumerate() {
        if let Some(a) = src.advisories {
            let labels = [("source", src.id.as_str())];
            w.source_series(i, GAPS, &labels, a.gaps as f64);
        }
    }
}

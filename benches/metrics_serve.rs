//! Serving /metrics with ~100,000 series, no broker: a synthetic snapshot built
//! by the real engine (Kafka groups at partition granularity plus JetStream
//! consumers, with rates, time lag, ETA and recommendations present), then
//! - render time per snapshot (`export::render`, what the engine does once per
//!   poll: the text compressed as it is written) and the body size, plain and
//!   gzip (only the gzip is kept);
//! - scrape latency under concurrent scrapes of the real HTTP router, measured by
//!   `wrk` in another process (loopback; the server runs on tokio's default
//!   multi-thread runtime, as the daemon does).
//!
//! Plain main, no harness. Run: `cargo bench --bench metrics_serve` (needs `wrk`:
//! scripts/test-env.sh). Sizes: LAGWATCH_BENCH_GROUPS (Kafka groups, 1000),
//! LAGWATCH_BENCH_TOPICS (topics per group, 2), LAGWATCH_BENCH_PARTITIONS
//! (partitions per topic, 5), LAGWATCH_BENCH_JS_CONSUMERS (300);
//! LAGWATCH_BENCH_WRK_SECONDS (10) per wrk run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test and benchmark code: a panic is a failed run with its line; table tests are long by design"
)]

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lagwatch::analysis;
use lagwatch::config::Granularity;
use lagwatch::engine::{Engine, EngineConfig};
use lagwatch::export::{self, Plan, SelfMetrics, SourcePlan};
use lagwatch::http::{router, AppState};

use lagwatch::model::{
    ConsumerKey, GroupInfo, GroupKey, JetstreamParts, Millis, PollBatch, PollData, Sample,
    SourceId, StreamState, System,
};
use lagwatch::recommend;
use lagwatch::snapshot::Snapshot;

const POLL: Duration = Duration::from_secs(30);
/// Polls fed before measuring: enough samples over enough span for rates.
const POLLS: i64 = 5;
const RENDERS: usize = 9;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One Kafka poll: every group reads `topics` topics of `partitions` each; shapes
/// vary by group (keeping pace, catching up, falling behind, stalled, idle).
fn kafka_poll(src: &SourceId, groups: usize, topics: usize, partitions: usize, n: i64) -> PollData {
    let mut data = PollData::default();
    let topic_names: Vec<Arc<str>> = (0..groups.max(1) * topics)
        .map(|t| Arc::from(format!("topic-{t:05}").as_str()))
        .collect();
    for g in 0..groups {
        let key = GroupKey {
            source: src.clone(),
            scope: None,
            group: Arc::from(format!("service-{g:05}-consumer").as_str()),
        };
        for t in 0..topics {
            let topic = topic_names[g * topics + t].clone();
            for p in 0..partitions {
                let k = (g * topics + t) * partitions + p;
                let rate = (k % 41) as i64 + 1;
                let head = 5_000_000 + rate * 30 * n;
                let committed = match g % 5 {
                    0 => head - rate * 4,                         // keeping pace
                    1 => head - 20_000 + rate * 60 * n,           // catching up
                    2 => 5_000_000 + (rate / 2) * 30 * n - 1_000, // falling behind
                    3 => 4_990_000,                               // stalled
                    _ => head,                                    // caught up
                };
                let committed = committed.min(head);
                data.samples.push(Sample {
                    key: ConsumerKey {
                        group: key.clone(),
                        topic: topic.clone(),
                        partition: Some(i32::try_from(p).unwrap_or(0)),
                    },
                    committed: Some(committed),
                    head,
                    low: Some(1_000_000 + rate * 10 * n),
                    lag: u64::try_from(head - committed).unwrap_or(0),
                    jetstream: None,
                    oldest_written: None,
                });
            }
        }
        data.groups
            .push(GroupInfo::new(key, Some("Stable".into()), Some(3)));
    }
    data
}

/// One JetStream poll: `consumers` pull consumers over streams of 6 each.
fn jetstream_poll(src: &SourceId, consumers: usize, n: i64) -> PollData {
    let mut data = PollData::default();
    let per_stream = 6;
    for s in 0..consumers.div_ceil(per_stream) {
        let stream: Arc<str> = Arc::from(format!("STREAM_{s:04}").as_str());
        let last = 100_000 + 40 * 30 * n as u64;
        data.streams.push(StreamState {
            name: stream.clone(),
            messages: 50_000,
            bytes: 50_000 * 512,
            first_seq: last - 49_999,
            last_seq: last,
            consumer_count: per_stream as u64,
            retention: "limits".into(),
            max_msgs: 50_000,
            max_bytes: -1,
            max_age_seconds: 0.0,
            discard: "old".into(),
        });
        for c in 0..per_stream.min(consumers - s * per_stream) {
            let floor = last - 10 - (c as u64) * 500;
            let pending = last - floor - 5;
            data.samples.push(Sample {
                key: ConsumerKey {
                    group: GroupKey {
                        source: src.clone(),
                        scope: Some(stream.clone()),
                        group: Arc::from(format!("worker-{c}").as_str()),
                    },
                    topic: stream.clone(),
                    partition: None,
                },
                committed: Some(i64::try_from(floor + 1).unwrap_or(0)),
                head: i64::try_from(last + 1).unwrap_or(0),
                low: Some(i64::try_from(last - 49_999).unwrap_or(0)),
                lag: pending + 5,
                jetstream: Some(Box::new(JetstreamParts {
                    num_pending: pending,
                    num_ack_pending: 5,
                    num_redelivered: 0,
                    num_waiting: 1,
                    delivered_stream_seq: floor + 5,
                    ack_floor_stream_seq: floor,
                    max_ack_pending: 1000,
                    push: false,
                    deliver_group: None,
                    push_bound: false,
                    filtered: false,
                    filter_subject: None,
                    deliveries: Some(floor + 5),
                    redelivery_marker: Some(0),
                })),
                oldest_written: None,
            });
        }
    }
    data
}

fn series_lines(body: &[u8]) -> usize {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count()
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Runs wrk against `url`; prints and returns its summary lines.
fn wrk(url: &str, threads: usize, connections: usize, seconds: usize, gzip: bool) {
    let mut cmd = Command::new("wrk");
    cmd.args([
        &format!("-t{threads}"),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "10s",
        "--latency",
    ]);
    if gzip {
        cmd.args(["-H", "Accept-Encoding: gzip"]);
    }
    cmd.arg(url);
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            println!("  wrk not runnable ({e}): install it with scripts/test-env.sh");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let pick = |prefix: &str| -> String {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .map(str::trim)
        .unwrap_or("?");
    let errors = text
        .lines()
        .find(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
        .map(str::trim)
        .unwrap_or("no errors");
    println!(
        "  wrk -t{threads} -c{connections} -d{seconds}s{}: p50 {}, p75 {}, p90 {}, p99 {}; {} req/s, {}/s; {requests}; {errors}",
        if gzip { " (Accept-Encoding: gzip)" } else { "" },
        pick("50%"),
        pick("75%"),
        pick("90%"),
        pick("99%"),
        pick("Requests/sec:"),
        pick("Transfer/sec:"),
    );
    if !out.status.success() || pick("50%") == "?" {
        println!(
            "  wrk output:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn main() {
    let groups = env("LAGWATCH_BENCH_GROUPS", 1000);
    let topics = env("LAGWATCH_BENCH_TOPICS", 2);
    let partitions = env("LAGWATCH_BENCH_PARTITIONS", 5);
    let js_consumers = env("LAGWATCH_BENCH_JS_CONSUMERS", 300);
    let wrk_seconds = env("LAGWATCH_BENCH_WRK_SECONDS", 10);

    let kafka = SourceId::new("kafka-prod");
    let nats = SourceId::new("nats-prod");
    let ids = vec![
        (kafka.clone(), System::Kafka),
        (nats.clone(), System::Jetstream),
    ];
    let settings = analysis::Settings::default();
    let ring = settings.capacity_for(POLL);
    let mut plan_sources = BTreeMap::new();
    for (id, _) in &ids {
        plan_sources.insert(
            id.clone(),
            SourcePlan {
                granularity: Granularity::Partition,
                max_series: None,
                labels: Vec::new(),
            },
        );
    }
    let plan = Plan {
        sources: plan_sources,
        kafka_lag_exporter: false,
        kafka_lag_exporter_member_labels: false,
    };
    let recommend = recommend::Resolver::uniform(recommend::Resolved {
        capacity_per_replica: Some(200.0),
        replicas: Some(2),
        ..Default::default()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let (engine, snapshots) = Engine::new(EngineConfig {
        sources: ids.clone(),
        analysis: settings,
        ring,
        plan: plan.clone(),
        recommend,
        alerts: None,
        metrics: SelfMetrics::new(&ids, &[]).unwrap_or_else(|e| panic!("metrics: {e}")),
        gone_after: std::collections::HashMap::new(),
        health: None,
        state: None,
    });

    // Feed POLLS polls of each source, 30 s apart in synthetic time, through
    // the engine's own loop (it publishes a snapshot after each batch).
    let t0 = Millis::now().0 - POLLS * POLL.as_millis() as i64;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let engine_task = runtime.spawn(engine.run(rx));
    let build = Instant::now();
    runtime.block_on(async {
        for n in 0..POLLS {
            let at = Millis(t0 + n * POLL.as_millis() as i64);
            for (id, system) in &ids {
                let data = match system {
                    System::Kafka => kafka_poll(id, groups, topics, partitions, n),
                    System::Jetstream => jetstream_poll(id, js_consumers, n),
                };
                let batch = PollBatch {
                    source: id.clone(),
                    system: *system,
                    at,
                    duration: Duration::from_millis(120),
                    result: Ok(data),
                };
                tx.send(batch)
                    .await
                    .unwrap_or_else(|_| panic!("engine gone"));
            }
        }
    });
    drop(tx);
    runtime
        .block_on(engine_task)
        .unwrap_or_else(|e| panic!("engine: {e}"));
    let snap: Arc<Snapshot> = snapshots.borrow().clone();
    let built = build.elapsed();

    let body = snap.metrics().plain();
    let series = series_lines(&body);
    let kafka_partitions = groups * topics * partitions;
    println!(
        "/metrics at scale: {groups} Kafka groups x {topics} topics x {partitions} partitions ({kafka_partitions} partitions, granularity partition) + {js_consumers} JetStream consumers"
    );
    println!("  engine: {POLLS} polls of both sources in {built:.1?} (analysis + render per poll)");
    let etas = body
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"lagwatch_group_catchup_eta_seconds{"))
        .count();
    let recs = body
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"lagwatch_group_replicas_recommended{"))
        .count();
    println!(
        "  series: {series} (of which {etas} catch-up ETAs, {recs} recommendations); {} history keys",
        snap.history_keys
    );

    // Render time per snapshot: what the engine pays once per poll, the text
    // compressed as it is written (the snapshot keeps only the gzip).
    let own = SelfMetrics::new(&ids, &[]).unwrap_or_else(|e| panic!("metrics: {e}"));
    let mut renders = Vec::new();
    let mut gz_len = 0;
    for _ in 0..RENDERS {
        let t = Instant::now();
        let compressed = export::render(&own, &snap.sources, &plan, snap.history_keys, snap.at);
        renders.push(t.elapsed());
        gz_len = std::hint::black_box(compressed).len();
    }
    let (lo, mid, hi) = median(renders);
    println!(
        "  render and compress per snapshot: median {mid:.1?} (min {lo:.1?}, max {hi:.1?}) over {RENDERS} renders"
    );
    println!(
        "  body: {:.2} MiB plain ({:.0} B/series), kept as {:.2} MiB gzip ({:.1}x)",
        body.len() as f64 / 1048576.0,
        body.len() as f64 / series.max(1) as f64,
        gz_len as f64 / 1048576.0,
        body.len() as f64 / gz_len.max(1) as f64,
    );
    println!(
        "  benchmark process RSS: {:.0} MiB",
        support::rss_bytes() as f64 / 1048576.0
    );

    // Serve it with the real router; scrape from another process (wrk).
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local addr: {e}"));
    let app = router(
        AppState {
            snapshots: snapshots.clone(),
            api_token: None,
            live_metrics: Vec::new(),
            health: lagwatch::health::Health::new(std::time::Duration::from_secs(3600)),
            state: lagwatch::state::StateStore::open(None).0,
        },
        lagwatch::config::DEFAULT_HTTP_REQUEST_TIMEOUT,
    );
    runtime.spawn(lagwatch::http::server::serve(
        listener,
        app,
        lagwatch::http::server::Limits::default(),
        lagwatch::http::server::ServerMetrics::new(),
        std::future::pending(),
    ));
    let url = format!("http://{addr}/metrics");
    println!(
        "  scrape latency (wrk, loopback, server on tokio multi-thread, 2 cores shared with wrk):"
    );
    wrk(&url, 1, 1, wrk_seconds, false);
    wrk(&url, 2, 8, wrk_seconds, false);
    wrk(&url, 2, 8, wrk_seconds, true);
    runtime.shutdown_timeout(Duration::from_secs(1));
}

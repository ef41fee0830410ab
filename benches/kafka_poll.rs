//! Kafka poll benchmark against a real tansu broker: builds TOPICS x PARTITIONS
//! partitions (default 200 x 50 = 10,000) and GROUPS consumer groups (default
//! 1,000) with committed offsets, then measures
//! - in process, per `KafkaPoller::poll`: wall time, time waiting on the broker
//!   per phase, broker requests by API (librdkafka statistics), CPU time
//!   (utime + stime of the process, the figures getrusage reports);
//! - the lagwatch binary on the same cluster: CPU per poll, resident memory,
//!   /metrics scrape time and size.
//!
//! Run: `cargo bench --bench kafka_poll`
//! (env KAFKA_BENCH_TOPICS, _PARTITIONS, _GROUPS, _POLLS override the sizes;
//! KAFKA_BENCH_DAEMON_POLL the daemon's poll interval, default 5s, with an
//! analysis window of 20 polls: the default configuration's ring of 23 points;
//! KAFKA_BENCH_BOOTSTRAP=host:port measures an existing cluster instead of a
//! fresh tansu, creating the fixtures only where they are missing, so a rerun
//! skips the ~60 s of setup; KAFKA_BENCH_BATCH=false reads committed offsets
//! group by group through librdkafka, as before the batched step 3a).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test and benchmark code: a panic is a failed run with its line; table tests are long by design"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lagwatch::model::SourceId;
use lagwatch::source::kafka::KafkaPoller;
use lagwatch::source::Poller;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of a process (the counters getrusage reads).
fn cpu(pid: &str) -> Duration {
    Duration::from_secs_f64(lagwatch::process::usage(pid.parse().ok()).cpu_seconds)
}

/// (VmRSS, VmHWM) in MiB.
fn rss(pid: &str) -> (f64, f64) {
    let u = lagwatch::process::usage(pid.parse().ok());
    let mib = |b: u64| b as f64 / 1048576.0;
    (mib(u.resident_bytes), mib(u.peak_resident_bytes))
}

/// Requests sent per API, summed over brokers, from librdkafka's statistics.
fn requests(stats: Option<String>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Some(v) = stats.and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok()) else {
        return out;
    };
    if let Some(brokers) = v.get("brokers").and_then(|b| b.as_object()) {
        for b in brokers.values() {
            if let Some(req) = b.get("req").and_then(|r| r.as_object()) {
                for (api, n) in req {
                    *out.entry(api.clone()).or_default() += n.as_u64().unwrap_or(0);
                }
            }
        }
    }
    out
}

fn main() {
    let topics = env("KAFKA_BENCH_TOPICS", 200);
    let partitions = env("KAFKA_BENCH_PARTITIONS", 50);
    let groups = env("KAFKA_BENCH_GROUPS", 1000);
    let polls = env("KAFKA_BENCH_POLLS", 5).max(1);
    let existing = std::env::var("KAFKA_BENCH_BOOTSTRAP").ok();
    let tansu = existing.is_none().then(common::Tansu::start);
    let b = existing
        .clone()
        .or_else(|| tansu.as_ref().map(common::Tansu::bootstrap))
        .unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // Fixtures.
    let t0 = Instant::now();
    let names: Vec<String> = (0..topics).map(|i| format!("bench-{i:03}")).collect();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .create()
        .expect("admin");
    let present = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .expect("metadata");
    let ready = names.iter().all(|n| {
        present
            .topics()
            .iter()
            .any(|t| t.name() == n && t.partitions().len() == partitions)
    });
    drop(present);
    if ready {
        eprintln!("fixtures: {topics} topics x {partitions} partitions already on {b}; reusing them and their groups");
    }
    for chunk in names.chunks(50).filter(|_| !ready) {
        let new: Vec<NewTopic> = chunk
            .iter()
            .map(|n| NewTopic::new(n, partitions as i32, TopicReplication::Fixed(1)))
            .collect();
        let r = rt
            .block_on(admin.create_topics(&new, &AdminOptions::new()))
            .expect("CreateTopics");
        assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        // One record per batch: tansu's memory storage quirk (BROKERS.md).
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    for name in names.iter().filter(|_| !ready) {
        for p in 0..partitions as i32 {
            for _ in 0..2 {
                loop {
                    match producer.send(BaseRecord::<(), _>::to(name).partition(p).payload("x")) {
                        Ok(()) => break,
                        Err((_, _)) => {
                            producer.poll(Duration::from_millis(10));
                        }
                    }
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let fixtures_topics = t0.elapsed();
    // Each group consumes one topic and has committed offset 1 on every
    // partition of it (lag 1 each).
    let t1 = Instant::now();
    std::thread::scope(|s| {
        for w in 0..4 {
            let (b, names) = (&b, &names);
            s.spawn(move || {
                for g in (w..groups).step_by(4).filter(|_| !ready) {
                    let c: BaseConsumer = ClientConfig::new()
                        .set("bootstrap.servers", b)
                        .set("group.id", format!("bench-group-{g:04}"))
                        .create()
                        .expect("committer");
                    let topic = &names[g % names.len()];
                    let mut tpl = TopicPartitionList::new();
                    for p in 0..partitions as i32 {
                        tpl.add_partition_offset(topic, p, Offset::Offset(1))
                            .expect("tpl");
                    }
                    c.commit(&tpl, CommitMode::Sync).expect("commit");
                }
            });
        }
    });
    eprintln!(
        "fixtures: {topics} topics x {partitions} partitions {} in {:.1?}, {groups} groups committed in {:.1?}",
        if ready { "found" } else { "created" },
        fixtures_topics,
        t1.elapsed()
    );

    // In process: the poller alone.
    let batch = std::env::var("KAFKA_BENCH_BATCH").unwrap_or_else(|_| "true".into());
    eprintln!("batch_offset_fetch: {batch}");
    let yaml = format!(
        "request_timeout: 30s\npoll_interval: 30s\nsources:\n  - name: bench\n    kafka:\n      bootstrap_servers: [\"{b}\"]\n      batch_offset_fetch: {batch}\n      properties:\n        statistics.interval.ms: \"1000\"\n"
    );
    let config = lagwatch::config::from_yaml("bench.yaml", &yaml, &|_| None).expect("config");
    let source = &config.sources[0];
    let mut poller = KafkaPoller::new(
        SourceId::new("bench"),
        source.kind.kafka().cloned().expect("kafka"),
        source.timing,
    );
    let me = std::process::id().to_string();
    // The broker's CPU is read only when this run started it.
    let broker = tansu
        .as_ref()
        .and_then(common::Tansu::pid)
        .map(|p| p.to_string());
    let broker_cpu = |pid: &Option<String>| pid.as_deref().map(cpu).unwrap_or_default();
    let (rss_before, _) = rss(&me);
    println!("| poll | wall | broker wait per phase | lagwatch CPU | tansu CPU | samples | groups | requests sent |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut keys = Vec::new();
    for i in 0..=polls {
        // Statistics come every second: wait for a fresh set on both sides.
        std::thread::sleep(Duration::from_millis(1100));
        let before_req = requests(poller.librdkafka_stats());
        let cpu0 = cpu(&me);
        let b0 = broker_cpu(&broker);
        let start = Instant::now();
        let data = rt.block_on(poller.poll()).expect("poll");
        let wall = start.elapsed();
        let cpu1 = cpu(&me);
        let b1 = broker_cpu(&broker);
        std::thread::sleep(Duration::from_millis(1100));
        let after_req = requests(poller.librdkafka_stats());
        let trace = poller.last_trace().cloned().unwrap_or_default();
        let mut sent: Vec<String> = after_req
            .iter()
            .filter_map(|(api, n)| {
                let d = n - before_req.get(api).copied().unwrap_or(0);
                (d > 0).then(|| format!("{api} {d}"))
            })
            .collect();
        // lagwatch's own batched requests (step 3a), which librdkafka's
        // statistics do not see.
        sent.extend(
            trace
                .direct_requests
                .iter()
                .map(|(api, n)| format!("{api} (batched, lagwatch's own) {n}")),
        );
        let phases: Vec<String> = trace
            .phases
            .iter()
            .map(|(n, d, _)| format!("{n} {:.0} ms", d.as_secs_f64() * 1000.0))
            .collect();
        let label = if i == 0 {
            "first (connects)".to_string()
        } else {
            i.to_string()
        };
        println!(
            "| {label} | {:.0} ms | {} | {:.0} ms | {:.0} ms | {} | {} | {} |",
            wall.as_secs_f64() * 1000.0,
            phases.join(", "),
            (cpu1 - cpu0).as_secs_f64() * 1000.0,
            (b1 - b0).as_secs_f64() * 1000.0,
            data.samples.len(),
            data.groups.len(),
            sent.join(", ")
        );
        if i > 0 {
            walls.push(wall);
            cpus.push(cpu1 - cpu0);
        }
        keys = data.samples.iter().map(|s| s.key.clone()).collect();
    }
    let avg = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    let (rss_now, rss_peak) = rss(&me);
    println!(
        "\nin process: mean wall {:.0?}, mean CPU {:.0?} per poll; bench process RSS {rss_now:.1} MiB (peak {rss_peak:.1} MiB, fixtures' clients included), of which the poller and its client added {:.1} MiB",
        avg(&walls),
        avg(&cpus),
        rss_now - rss_before
    );
    exact_time_lag_cost(&rt, poller, keys, &me);

    // The daemon: CPU per poll, RSS, scrape, at steady state. Its memory is
    // mostly the analysis history, whose ring holds window / poll + 3 points
    // per partition; the default (10 m window, 30 s poll) gives 23 and takes
    // 11 minutes to fill. The bench keeps that ring (window = 20 polls) at a
    // 5 s poll, so the rings are full after 2 minutes and every figure is the
    // default configuration's steady state.
    let daemon_poll = std::env::var("KAFKA_BENCH_DAEMON_POLL").unwrap_or_else(|_| "5s".into());
    let poll_every = humantime::parse_duration(&daemon_poll).expect("KAFKA_BENCH_DAEMON_POLL");
    let window = poll_every * 20;
    let daemon = common::Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\nlog:\n  level: warn\nanalysis:\n  window: {}ms\nsources:\n  - name: bench\n    kafka:\n      bootstrap_servers: [\"{b}\"]\n      poll_interval: {daemon_poll}\n      request_timeout: 30s\n      batch_offset_fetch: {batch}\n",
        window.as_millis()
    ));
    let pid = daemon.pid().expect("pid").to_string();
    // Polls are counted off the small /api/v1/sources answer (its `last_poll`),
    // once a second: scraping the multi-megabyte /metrics to watch for them
    // would bill the scrapes to the polls.
    let last_poll = |d: &common::Daemon| -> Option<String> {
        let (status, body) = d.get("/api/v1/sources");
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["sources"][0]["last_poll"].as_str().map(str::to_string)
    };
    let mut seen = None;
    let mut wait_poll = |what: &str, timeout: Duration| {
        let start = Instant::now();
        loop {
            let now = last_poll(&daemon);
            if now.is_some() && now != seen {
                seen = now;
                return;
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    wait_poll("the first daemon poll", Duration::from_secs(120));
    let fill = Instant::now();
    for _ in 0..23 {
        wait_poll("a daemon poll filling the rings", Duration::from_secs(300));
    }
    eprintln!(
        "daemon: history rings full (23 points, window {window:?} at a {poll_every:?} poll) after {:.0?}",
        fill.elapsed()
    );
    // Resident memory sampled once a second over the measured polls: the low
    // is between polls (the steady state), the high during one.
    let c0 = cpu(&pid);
    let measured = 6u32;
    let (mut low, mut high) = (f64::MAX, 0.0_f64);
    for _ in 0..measured {
        let start = Instant::now();
        loop {
            let (now, _) = rss(&pid);
            low = low.min(now);
            high = high.max(now);
            let polled = last_poll(&daemon);
            if polled.is_some() && polled != seen {
                seen = polled;
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "timed out waiting for a poll"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let c1 = cpu(&pid);
    let (n0, n1) = (0u32, measured);
    let mut scrape = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let s = Instant::now();
        let body = daemon.metrics();
        scrape.push(s.elapsed());
        size = body.len();
    }
    let (_, d_peak) = rss(&pid);
    let c2 = cpu(&pid);
    println!(
        "daemon: CPU {:.0?} per poll (over {} polls, scrapes excluded), RSS {low:.1} MiB between polls, {high:.1} MiB at most during one (VmHWM {d_peak:.1} MiB), /metrics {:.1} MiB scraped in {:.0?} mean (5 scrapes cost {:.0?} CPU)",
        (c1 - c0) / (n1 - n0).max(1),
        n1 - n0,
        size as f64 / 1048576.0,
        avg(&scrape),
        c2 - c1,
    );
}

/// The cost of exact time lag (`analysis.exact_time_lag`): every fixture group
/// lags by one message on every partition of its topic, so the oldest
/// unconsumed messages are the 10,000 (partition, offset 1) of the cluster. The
/// engine asks for all keys; the poller reads at most `budget` new ones per
/// poll (within its 5 s cap) and caches them: the last poll shows the steady
/// state, where every timestamp is known and nothing is read.
fn exact_time_lag_cost(
    rt: &tokio::runtime::Runtime,
    poller: KafkaPoller,
    keys: Vec<lagwatch::model::ConsumerKey>,
    me: &str,
) {
    let (tx, rx) = tokio::sync::watch::channel(lagwatch::model::ExactRequests::default());
    let mut poller = poller.with_exact_requests(rx);
    println!("\nexact time lag, {} lagging keys asked for:\n", keys.len());
    println!("| budget | read this poll | known after | fetch step | whole poll | lagwatch CPU |");
    println!("|---|---|---|---|---|---|");
    for budget in [100, 1_000, 10_000, 10_000] {
        tx.send_replace(std::sync::Arc::new(lagwatch::model::ExactRequest {
            keys: keys.clone(),
            budget,
        }));
        let cpu0 = cpu(me);
        let start = Instant::now();
        let data = rt.block_on(poller.poll()).expect("poll");
        let wall = start.elapsed();
        let cpu1 = cpu(me);
        let trace = poller.last_trace().cloned().unwrap_or_default();
        let (fetch, read) = trace
            .phases
            .iter()
            .find(|(n, _, _)| *n == "fetch_timestamps")
            .map_or((Duration::ZERO, 0), |(_, d, n)| (*d, *n));
        let known = data
            .samples
            .iter()
            .filter(|s| s.oldest_written.is_some())
            .count();
        println!(
            "| {budget} | {read} | {known} keys | {:.0} ms | {:.0} ms | {:.0} ms |",
            fetch.as_secs_f64() * 1000.0,
            wall.as_secs_f64() * 1000.0,
            (cpu1 - cpu0).as_secs_f64() * 1000.0,
        );
    }
}

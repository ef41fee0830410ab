//! Kafka poll benchmark against a real tansu broker: builds TOPICS x PARTITIONS
//! partitions (default 200 x 50 = 10,000) and GROUPS consumer groups (default
//! 1,000) with committed offsets, then measures
//! - in process, per `KafkaPoller::poll`: wall time, time waiting on the broker
//!   per phase, broker requests by API (librdkafka statistics), CPU time
//!   (utime + stime of the process, the figures getrusage reports);
//! - the lagwatch binary on the same cluster, at partition granularity, and
//!   with KAFKA_BENCH_PEER=/path/to/klag-exporter that exporter beside it,
//!   started together: CPU and memory (VmRSS, VmHWM) over the first 65 s
//!   (histories empty), then at steady state (rings full) CPU per poll, RSS
//!   between and during polls, peak RSS, /metrics scrape time and size, and
//!   lagwatch's poll wall time.
//!
//! Run: `cargo bench --bench kafka_poll`
//! (env KAFKA_BENCH_TOPICS, _PARTITIONS, _GROUPS, _POLLS override the sizes;
//! KAFKA_BENCH_DAEMON_POLL the daemon's poll interval, default 10s, with an
//! analysis window of KAFKA_BENCH_WINDOW_POLLS (20) polls, a ring of 23 points
//! like the default configuration's; KAFKA_BENCH_GRANULARITY (partition);
//! KAFKA_BENCH_DAEMON_ONLY=true skips the in-process polls;
//! KAFKA_BENCH_LAGWATCH=/path/to/lagwatch runs another build as the daemon;
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
    if std::env::var("KAFKA_BENCH_DAEMON_ONLY").is_ok_and(|v| v == "true") {
        daemon_side_by_side(&b, &batch);
        return;
    }
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
    daemon_side_by_side(&b, &batch);
}

/// A process measured from outside: CPU and memory from /proc.
struct Measured {
    name: &'static str,
    pid: String,
    /// The /metrics address (host:port).
    addr: String,
    low: f64,
    high: f64,
}

impl Measured {
    fn new(name: &'static str, pid: u32, addr: String) -> Measured {
        Measured {
            name,
            pid: pid.to_string(),
            addr,
            low: f64::MAX,
            high: 0.0,
        }
    }

    fn sample(&mut self) {
        let (now, _) = rss(&self.pid);
        self.low = self.low.min(now);
        self.high = self.high.max(now);
    }

    /// GET /metrics as Prometheus asks for it (gzip accepted): (wall, bytes on
    /// the wire, plain bytes, lines).
    fn scrape(&self) -> (Duration, usize, usize, usize) {
        use std::io::{Read as _, Write as _};
        let start = Instant::now();
        let mut s = std::net::TcpStream::connect(&self.addr).expect("connect");
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("send");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let wall = start.elapsed();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{}: {head}", self.name);
        let mut body = raw[split + 4..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        let wire = body.len();
        if head.contains("content-encoding: gzip") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .expect("gunzip");
            body = plain;
        }
        let lines = body.iter().filter(|b| **b == b'\n').count();
        (wall, wire, body.len(), lines)
    }
}

/// A chunked HTTP/1.1 body, joined.
fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = s.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&s[..eol]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let rest = &s[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest.get(n + 2..).unwrap_or_default();
    }
    out
}

/// lagwatch's poll durations so far: (sum of seconds, count), from
/// `lagwatch_poll_duration_seconds`.
fn poll_durations(m: &Measured) -> (f64, f64) {
    let (status, body) = common::http_get(&m.addr, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    let find = |suffix: &str| {
        body.lines()
            .filter(|l| l.starts_with(&format!("lagwatch_poll_duration_seconds_{suffix}{{")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    (find("sum"), find("count"))
}

/// klag-exporter's configuration for the same cluster, poll interval and
/// granularity, timestamp sampling on (its default).
fn peer_config(bootstrap: &str, poll: &str, granularity: &str, port: u16) -> String {
    format!(
        "[exporter]\npoll_interval = \"{poll}\"\nhttp_port = {port}\nhttp_host = \"127.0.0.1\"\ngranularity = \"{granularity}\"\n\n[exporter.timestamp_sampling]\nenabled = true\n\n[exporter.otel]\nenabled = false\n\n[[clusters]]\nname = \"bench\"\nbootstrap_servers = \"{bootstrap}\"\ngroup_whitelist = [\".*\"]\ngroup_blacklist = []\ntopic_whitelist = [\".*\"]\ntopic_blacklist = [\"^__.*\"]\n"
    )
}

/// The lagwatch binary (and, with KAFKA_BENCH_PEER, klag-exporter) on the same
/// cluster, started together and measured over the same spans: the first 65 s
/// (histories empty) and the steady state (rings full).
fn daemon_side_by_side(b: &str, batch: &str) {
    let daemon_poll = std::env::var("KAFKA_BENCH_DAEMON_POLL").unwrap_or_else(|_| "10s".into());
    let poll_every = humantime::parse_duration(&daemon_poll).expect("KAFKA_BENCH_DAEMON_POLL");
    let granularity =
        std::env::var("KAFKA_BENCH_GRANULARITY").unwrap_or_else(|_| "partition".into());
    let window_polls = env("KAFKA_BENCH_WINDOW_POLLS", 20) as u32;
    let window = poll_every * window_polls;
    // KAFKA_BENCH_LAGWATCH: another build of lagwatch, to compare builds.
    let bin = std::env::var("KAFKA_BENCH_LAGWATCH")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lagwatch").to_string());
    let daemon = common::Daemon::start_binary(std::path::Path::new(&bin), &format!(
        "http:\n  listen: 127.0.0.1:0\nlog:\n  level: warn\nmetrics:\n  granularity: {granularity}\nanalysis:\n  window: {}ms\nsources:\n  - name: bench\n    kafka:\n      bootstrap_servers: [\"{b}\"]\n      poll_interval: {daemon_poll}\n      request_timeout: 30s\n      batch_offset_fetch: {batch}\n",
        window.as_millis()
    ), &[]);
    let started = Instant::now();
    let _peer_dir = tempfile::tempdir().expect("temp dir");
    let mut peer_child = std::env::var("KAFKA_BENCH_PEER").ok().map(|bin| {
        let port = common::free_port();
        let path = _peer_dir.path().join("klag.toml");
        std::fs::write(&path, peer_config(b, &daemon_poll, &granularity, port))
            .expect("write the peer's config");
        let child = std::process::Command::new(&bin)
            .arg("--config")
            .arg(&path)
            .args(["--log-level", "warn"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start the peer {bin}: {e}"));
        (child, port)
    });
    let mut all = vec![Measured::new(
        "lagwatch",
        daemon.pid().expect("pid"),
        daemon.addr.clone(),
    )];
    if let Some((child, port)) = &peer_child {
        all.push(Measured::new(
            "klag-exporter",
            child.id(),
            format!("127.0.0.1:{port}"),
        ));
    }
    eprintln!(
        "daemon: granularity {granularity}, {daemon_poll} polls, window {window:?} ({} points per ring){}",
        window_polls + 3,
        if all.len() > 1 { ", klag-exporter beside it" } else { "" }
    );
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
    let mut wait_poll = |all: &mut Vec<Measured>, what: &str, timeout: Duration| {
        let start = Instant::now();
        loop {
            for m in all.iter_mut() {
                m.sample();
            }
            let now = last_poll(&daemon);
            if now.is_some() && now != seen {
                seen = now;
                return;
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(250));
        }
    };

    // The first 65 s, from empty histories (the run).
    let first = Duration::from_secs(65);
    while started.elapsed() < first {
        for m in all.iter_mut() {
            m.sample();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    println!("\nside by side, {granularity} granularity, {daemon_poll} polls, same cluster:\n");
    println!("| first 65 s (empty histories) | CPU | RSS at 65 s | peak RSS (VmHWM) |");
    println!("|---|---|---|---|");
    for m in &all {
        let (now, hwm) = rss(&m.pid);
        println!(
            "| {} | {:.2} s | {now:.1} MiB | {hwm:.1} MiB |",
            m.name,
            cpu(&m.pid).as_secs_f64()
        );
    }

    // Steady state: the rings full, then `measured` polls of lagwatch, and
    // every process over the same span.
    let fill = window_polls + 3;
    while started.elapsed() < poll_every * (fill + 1) {
        wait_poll(
            &mut all,
            "a daemon poll filling the rings",
            Duration::from_secs(300),
        );
    }
    eprintln!(
        "daemon: history rings full ({fill} points) after {:.0?}",
        started.elapsed()
    );
    let (sum0, count0) = poll_durations(&all[0]);
    wait_poll(&mut all, "a daemon poll", Duration::from_secs(300));
    for m in all.iter_mut() {
        m.low = f64::MAX;
        m.high = 0.0;
    }
    let c0: Vec<Duration> = all.iter().map(|m| cpu(&m.pid)).collect();
    let span = Instant::now();
    let measured = 6u32;
    for _ in 0..measured {
        wait_poll(&mut all, "a daemon poll", Duration::from_secs(300));
    }
    let c1: Vec<Duration> = all.iter().map(|m| cpu(&m.pid)).collect();
    let span = span.elapsed();
    let (sum1, count1) = poll_durations(&all[0]);
    println!(
        "\n| steady state, {measured} polls ({span:.0?}) | CPU per {daemon_poll} | RSS between polls | RSS at most during one | peak RSS (VmHWM) | /metrics scrape (gzip accepted) | /metrics size |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, m) in all.iter().enumerate() {
        let mut scrapes = Vec::new();
        let mut size = (0, 0, 0);
        for _ in 0..3 {
            let (wall, wire, plain, lines) = m.scrape();
            scrapes.push(wall);
            size = (wire, plain, lines);
        }
        let (_, hwm) = rss(&m.pid);
        println!(
            "| {} | {:.0} ms | {:.1} MiB | {:.1} MiB | {hwm:.1} MiB | {:.0?} mean of 3 | {:.1} MiB on the wire, {:.1} MiB, {} lines |",
            m.name,
            (c1[i] - c0[i]).as_secs_f64() * 1000.0 / f64::from(measured),
            m.low,
            m.high,
            scrapes.iter().sum::<Duration>() / 3,
            size.0 as f64 / 1048576.0,
            size.1 as f64 / 1048576.0,
            size.2,
        );
    }
    let n = (count1 - count0).max(1.0);
    println!(
        "\nlagwatch poll wall (lagwatch_poll_duration_seconds): mean {:.0} ms over {n} polls",
        (sum1 - sum0) * 1000.0 / n
    );
    if let Some((child, _)) = peer_child.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
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

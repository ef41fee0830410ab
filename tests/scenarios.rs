//! End-to-end scenarios on a real tansu with real consumer groups: a stopped
//! consumer opens a STOP incident (delivered to a real HTTP receiver) that
//! resolves when it comes back; recommendations follow a group that cannot keep
//! up; two shards split the groups.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::load::{consumer, producer};
use common::{Daemon, Tansu};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

fn name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{nanos:08x}")
}

/// A real HTTP receiver on 127.0.0.1: records every POST body, answers 200.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = bodies.clone();
        std::thread::spawn(move || {
            for stream in l.incoming().map_while(Result::ok) {
                let mut r = BufReader::new(stream);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_ok() {
                    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                        sink.lock().unwrap().push(v);
                    }
                }
                let mut s = r.into_inner();
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Receiver { url, bodies }
    }

    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self.bodies.lock().unwrap().iter().find(|v| pred(v)) {
                return v.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "no {what} within {timeout:?}; received: {:?}",
                self.bodies.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn api_group(d: &Daemon, group: &str) -> Option<Value> {
    let (status, body) = d.get(&format!("/api/v1/groups/k/{group}"));
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

#[test]
fn a_stopped_consumer_fires_a_stop_notification_and_its_return_resolves_the_incident() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = name("orders.created");
    tansu.create_topic(&topic, 2);
    let group = name("email-service");
    let rate = Arc::new(AtomicU32::new(10));
    let stop_all = Arc::new(AtomicBool::new(false));
    let prod = producer(b.clone(), topic.clone(), 2, rate, stop_all.clone());
    let stop_consumer = Arc::new(AtomicBool::new(false));
    let first = consumer(
        b.clone(),
        group.clone(),
        topic.clone(),
        common::load::rate(200),
        stop_consumer.clone(),
    );

    let receiver = Receiver::start();
    let daemon = Daemon::start(&format!(
        r#"http:
  listen: 127.0.0.1:0
poll_interval: 1s
analysis:
  window: 6s
  min_span: 2s
  thresholds:
    stop_after: 6s
alerts:
  defaults:
    for: 0s
    resolve_after: 3s
  receivers:
    - name: hook
      webhook:
        url: "{url}"
  rules:
    - name: consumer-stopped
      condition: status
      threshold: [STOP]
      severity: critical
      receivers: [hook]
sources:
  - name: k
    kafka:
      bootstrap_servers: ["{b}"]
"#,
        url = receiver.url
    ));
    // The group runs and commits: it shows up, OK.
    common::wait_until(
        "the group to be watched and OK",
        Duration::from_secs(40),
        || api_group(&daemon, &group).is_some_and(|v| v["group"]["status"] == "OK"),
    );
    assert!(
        receiver.bodies.lock().unwrap().is_empty(),
        "nothing fires while it runs"
    );

    // The consumer dies; messages keep arriving.
    stop_consumer.store(true, Ordering::Relaxed);
    first.join().unwrap();
    let stopped_at = Instant::now();
    let fired = receiver.wait_for("LagAlertFired", Duration::from_secs(40), |v| {
        v["eventType"] == "LagAlertFired"
    });
    assert_eq!(fired["data"]["group"], group.as_str());
    assert_eq!(fired["data"]["status"], "STOP");
    assert_eq!(fired["data"]["rule"], "consumer-stopped");
    // stop_after is 6 s: not before, and within a few polls after.
    let after = stopped_at.elapsed();
    assert!(
        after >= Duration::from_secs(5),
        "fired too early: {after:?}"
    );

    // It comes back, catches up, and the incident resolves with the same id.
    let stop_second = Arc::new(AtomicBool::new(false));
    let second = consumer(
        b.clone(),
        group.clone(),
        topic.clone(),
        common::load::rate(200),
        stop_second.clone(),
    );
    let resolved = receiver.wait_for("LagAlertResolved", Duration::from_secs(60), |v| {
        v["eventType"] == "LagAlertResolved"
    });
    assert_eq!(resolved["correlationId"], fired["correlationId"]);
    assert_ne!(resolved["eventId"], fired["eventId"]);

    stop_second.store(true, Ordering::Relaxed);
    stop_all.store(true, Ordering::Relaxed);
    second.join().unwrap();
    prod.join().unwrap();
}

fn recommendation(d: &Daemon, group: &str) -> Option<Value> {
    api_group(d, group).map(|v| v["group"]["recommendation"].clone())
}

fn wait_recommendation(
    d: &Daemon,
    group: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    let mut last = Value::Null;
    while start.elapsed() < timeout {
        if let Some(r) = recommendation(d, group) {
            if pred(&r) {
                return r;
            }
            last = r;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "{what}: not within {timeout:?}; last recommendation: {last}\ngroup: {}\nlogs:\n{}",
        api_group(d, group).unwrap_or_default(),
        d.logs()
    );
}

#[test]
fn the_recommendation_rises_to_keep_up_is_partition_bound_and_scales_in_only_after_lag_stays_near_zero(
) {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    // Same load on two topics: 8 partitions (room to scale) and 2 (too few).
    let wide = name("wide");
    let narrow = name("narrow");
    tansu.create_topic(&wide, 8);
    tansu.create_topic(&narrow, 2);
    let g_wide = name("wide-group");
    let g_narrow = name("narrow-group");
    let stop = Arc::new(AtomicBool::new(false));
    let wide_rate = Arc::new(AtomicU32::new(40));
    let narrow_rate = Arc::new(AtomicU32::new(40));
    let mut threads = vec![
        producer(b.clone(), wide.clone(), 8, wide_rate.clone(), stop.clone()),
        producer(b.clone(), narrow.clone(), 2, narrow_rate, stop.clone()),
    ];
    // One consumer each, 15 records/s: too slow for 40/s.
    let stop_wide = Arc::new(AtomicBool::new(false));
    threads.push(consumer(
        b.clone(),
        g_wide.clone(),
        wide.clone(),
        common::load::rate(15),
        stop_wide.clone(),
    ));
    threads.push(consumer(
        b.clone(),
        g_narrow.clone(),
        narrow.clone(),
        common::load::rate(15),
        stop.clone(),
    ));

    let daemon = Daemon::start(&format!(
        r#"http:
  listen: 127.0.0.1:0
poll_interval: 1s
analysis:
  window: 10s
  min_span: 3s
recommend:
  target_drain_time: 1h
  headroom: 0.2
  learn_after: 4s
  min_backlog: 2s
  scale_in_after: 8s
sources:
  - name: k
    kafka:
      bootstrap_servers: ["{b}"]
"#
    ));
    // Needed: ceil((40 + lag/3600) / 15 * 1.2) = ceil(3.2...) = 4 consumers.
    let r = wait_recommendation(
        &daemon,
        &g_wide,
        "4 consumers to keep up",
        Duration::from_secs(60),
        |r| r["recommended"] == 4,
    );
    assert_eq!(r["current"], 1, "{r}");
    assert!(
        ["scale_out_to_keep_up", "scale_out_to_drain"].contains(&r["reason"].as_str().unwrap()),
        "{r}"
    );
    let capacity = r["per_replica_capacity"].as_f64().unwrap();
    assert!(
        (12.0..=18.0).contains(&capacity),
        "learned ~15/s per consumer: {r}"
    );
    // The same need on 2 partitions: capped, and the reason says to add partitions.
    let r = wait_recommendation(
        &daemon,
        &g_narrow,
        "partition-bound advice",
        Duration::from_secs(30),
        |r| r["reason"] == "partition_bound",
    );
    assert_eq!(r["recommended"], 2, "{r}");
    assert!(r["message"].as_str().unwrap().contains("partition"), "{r}");

    // Add the recommended consumers: the wide group drains at about
    // 4 x 15 - 40 = 20/s once they have joined; give it half that speed, plus
    // two minutes for the rebalance of four members, on a loaded machine.
    let backlog = api_group(&daemon, &g_wide)
        .and_then(|v| v["group"]["lag"].as_u64())
        .unwrap_or(0);
    let drain_deadline = Duration::from_secs(120 + backlog / 10);
    for _ in 0..3 {
        threads.push(consumer(
            b.clone(),
            g_wide.clone(),
            wide.clone(),
            common::load::rate(15),
            stop_wide.clone(),
        ));
    }
    let start = Instant::now();
    loop {
        let v = api_group(&daemon, &g_wide);
        if v.as_ref()
            .is_some_and(|v| v["group"]["lag"].as_u64().unwrap_or(u64::MAX) < 40)
        {
            break;
        }
        assert!(
            start.elapsed() < drain_deadline,
            "the wide group did not drain within {drain_deadline:?} (backlog {backlog}): {}",
            v.map(|v| v.to_string()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Less traffic now: one consumer would do, but scale-in waits for the lag to
    // stay near zero for scale_in_after (8 s).
    wide_rate.store(8, Ordering::Relaxed);
    let drained = Instant::now();
    let r = recommendation(&daemon, &g_wide).unwrap();
    assert_ne!(
        r["reason"], "scale_in_safe",
        "no scale-in right after draining: {r}"
    );
    let r = wait_recommendation(
        &daemon,
        &g_wide,
        "scale-in advice",
        Duration::from_secs(60),
        |r| r["reason"] == "scale_in_safe",
    );
    assert!(
        drained.elapsed() >= Duration::from_secs(8),
        "scale-in came after {:?}",
        drained.elapsed()
    );
    assert!(r["recommended"].as_u64().unwrap() < 4, "{r}");

    stop.store(true, Ordering::Relaxed);
    stop_wide.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn two_shards_watch_disjoint_sets_of_groups_that_together_cover_all() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = name("events");
    tansu.create_topic(&topic, 1);
    let groups: BTreeSet<String> = (0..24).map(|i| format!("{}-{i}", name("svc"))).collect();
    for g in &groups {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", g)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(0))
            .unwrap();
        c.commit(&tpl, CommitMode::Sync).unwrap();
    }
    let config = |index: u32| {
        format!(
            "http:\n  listen: 127.0.0.1:0\npoll_interval: 1s\nshard:\n  count: 2\n  index: {index}\nsources:\n  - name: k\n    kafka:\n      bootstrap_servers: [\"{b}\"]\n"
        )
    };
    let shards = [Daemon::start(&config(0)), Daemon::start(&config(1))];
    let seen = |d: &Daemon| -> BTreeSet<String> {
        let (_, body) = d.get("/api/v1/groups?source=k");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["group"].as_str().unwrap().to_string())
            .filter(|g| groups.contains(g))
            .collect()
    };
    common::wait_until("both shards to poll", Duration::from_secs(30), || {
        seen(&shards[0]).len() + seen(&shards[1]).len() == groups.len()
    });
    let (a, c) = (seen(&shards[0]), seen(&shards[1]));
    assert!(
        a.is_disjoint(&c),
        "a group is watched twice: {:?}",
        a.intersection(&c).collect::<Vec<_>>()
    );
    assert_eq!(a.union(&c).cloned().collect::<BTreeSet<_>>(), groups);
    assert!(
        !a.is_empty() && !c.is_empty(),
        "both shards got work: {} / {}",
        a.len(),
        c.len()
    );
}

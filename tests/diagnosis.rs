//! Why a group is behind, on real brokers, each test driving the cause itself
//! and recording its own truth: a producer that quadruples its rate, all
//! writes going to one partition of eight, a consumer that stopped, and a
//! JetStream consumer holding max_ack_pending unacknowledged messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::truth::{self, commit_partitions, produce_to};
use common::{Daemon, Nats, Tansu};

/// Short windows so a test sees a baseline form and a cause appear.
const ANALYSIS: &str = "  window: 6s\n  min_span: 3s\n  thresholds:\n    stop_after: 6s\n  diagnosis:\n    baseline_window: 60s\n    baseline_min: 10s\n";

/// The group's entry in `/api/v1/groups`.
fn group(d: &Daemon, name: &str) -> Option<serde_json::Value> {
    let (code, body) = d.get("/api/v1/groups");
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"] == name)
        .cloned()
}

fn causes(g: &serde_json::Value) -> Vec<String> {
    g["causes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["cause"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `name`'s first cause is `cause`; returns the group.
fn wait_for_cause(d: &Daemon, name: &str, cause: &str, within: Duration) -> serde_json::Value {
    let start = Instant::now();
    let mut last = None;
    loop {
        if let Some(g) = group(d, name) {
            if causes(&g).first().map(String::as_str) == Some(cause) {
                return g;
            }
            last = Some(g);
        }
        assert!(
            start.elapsed() < within,
            "{name} never had cause {cause}; last: {}",
            last.map(|g| g.to_string()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A consumer keeping up with a steady producer, then the producer writes four
/// times as fast while the consumer keeps its pace: producer_spike, with the
/// rate and the baseline in the evidence; and a group that stops committing
/// while writes continue: stopped.
#[test]
fn a_producer_spike_and_a_stopped_consumer_are_named() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = truth::name("orders");
    tansu.create_topic(&topic, 1);
    let spiking = truth::name("billing");
    let stopped = truth::name("email");
    commit_partitions(&b, &spiking, &topic, &[0]);
    commit_partitions(&b, &stopped, &topic, &[0]);
    let d = Daemon::start(&truth::kafka_config(&b, ANALYSIS));

    // The truth: what was written, and the consumer's position.
    let written = Arc::new(AtomicI64::new(0));
    let per_second = Arc::new(AtomicI64::new(10));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (b, topic, written, per_second, stop) = (
            b.clone(),
            topic.clone(),
            written.clone(),
            per_second.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let n = per_second.load(Ordering::Relaxed);
                let t = Instant::now();
                produce_to(&b, &topic, &[usize::try_from(n / 4).unwrap()]);
                written.fetch_add(n / 4, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(250).saturating_sub(t.elapsed()));
            }
        })
    };
    // The spiking group's consumer: keeps up at 10/s, never faster than 12/s.
    let consumer = {
        let (b, topic, group, written, stop) = (
            b.clone(),
            topic.clone(),
            spiking.clone(),
            written.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            let mut position = 0i64;
            while !stop.load(Ordering::Relaxed) {
                position = (position + 12).min(written.load(Ordering::Relaxed));
                commit_partitions(&b, &group, &topic, &[position]);
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    // 20 s of steady traffic: the baseline forms (baseline_min 10 s).
    std::thread::sleep(Duration::from_secs(20));
    per_second.store(40, Ordering::Relaxed);
    let g = wait_for_cause(&d, &spiking, "producer_spike", Duration::from_secs(60));
    let figures = |g: &serde_json::Value| -> (f64, f64) {
        let evidence = g["causes"][0]["evidence"].as_str().unwrap_or("");
        let number = |s: &str| s.replace(',', "").parse::<f64>().unwrap_or(f64::NAN);
        let rate = evidence
            .trim_start_matches("produce ")
            .split('/')
            .next()
            .map_or(f64::NAN, number);
        let baseline = evidence
            .split("baseline of ")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .map_or(f64::NAN, number);
        (rate, baseline)
    };
    // The truth: 8/s before (2 records every 250 ms), 40/s after. It fires as
    // soon as the window's rate is twice the baseline, which is the 8/s.
    let (rate, baseline) = figures(&g);
    assert!((6.0..=10.0).contains(&baseline), "{g}");
    assert!(rate >= 2.0 * baseline && rate <= 52.0, "{g}");
    assert!(
        g["diagnosis"]
            .as_str()
            .unwrap()
            .starts_with("producer_spike: produce"),
        "{g}"
    );
    // Once a whole window has passed, the stated rate is the rate written.
    let start = Instant::now();
    loop {
        let g = group(&d, &spiking).unwrap();
        let (rate, _) = figures(&g);
        if (32.0..=48.0).contains(&rate) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the rate never reached 40/s: {g}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The group that never committed again is stopped, and says how long.
    let g = wait_for_cause(&d, &stopped, "stopped", Duration::from_secs(60));
    assert!(
        g["causes"][0]["evidence"]
            .as_str()
            .unwrap()
            .contains("no progress for at least"),
        "{g}"
    );
    // The metric: a state set with the cause at 1.
    let m = d.metrics();
    let series = format!("lagwatch_group_cause{{source=\"k\",system=\"kafka\",group=\"{stopped}\",stream=\"\",cause=\"stopped\"}}");
    let found = m.lines().any(|l| {
        l.starts_with("lagwatch_group_cause{")
            && l.contains(&format!("group=\"{stopped}\""))
            && l.contains("cause=\"stopped\"")
            && l.ends_with(" 1")
    });
    assert!(
        found,
        "no {series} 1 in:\n{}",
        m.lines()
            .filter(|l| l.contains("lagwatch_group_cause"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(common::promtool_check_metrics(&m).is_empty());
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    consumer.join().unwrap();
}

/// Every write goes to partition 3 of 8, and the consumer there commits only
/// half of what arrives: hot_partition, naming partition 3.
#[test]
fn all_writes_to_one_partition_of_eight_is_a_hot_partition() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = truth::name("clicks");
    tansu.create_topic(&topic, 8);
    let group = truth::name("analytics");
    commit_partitions(&b, &group, &topic, &[0; 8]);
    let d = Daemon::start(&truth::kafka_config(&b, ANALYSIS));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (b, topic, group, stop) = (b.clone(), topic.clone(), group.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut written = 0i64;
            while !stop.load(Ordering::Relaxed) {
                produce_to(&b, &topic, &[0, 0, 0, 10]);
                written += 10;
                let mut offsets = [0i64; 8];
                offsets[3] = written / 2;
                commit_partitions(&b, &group, &topic, &offsets);
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let g = wait_for_cause(&d, &group, "hot_partition", Duration::from_secs(60));
    let evidence = g["causes"][0]["evidence"].as_str().unwrap();
    assert!(
        evidence.starts_with("partition 3 of 8 holds 100% of the lag"),
        "{g}"
    );
    assert!(
        evidence.contains("more consumers will not help"),
        "{evidence}"
    );
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
}

/// A JetStream consumer with max_ack_pending 10 that takes 10 messages and
/// acks none, while messages keep coming: ack_limit.
#[test]
fn a_jetstream_consumer_at_max_ack_pending_is_ack_limited() {
    use async_nats::jetstream::{self, consumer, stream};
    use futures::StreamExt as _;
    let nats = Nats::start();
    let rt = common::runtime();
    let js = rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let s = js
            .create_stream(stream::Config {
                name: "SHIP".into(),
                subjects: vec!["ship.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        let c = s
            .create_consumer(consumer::pull::Config {
                durable_name: Some("fulfillment".into()),
                max_ack_pending: 10,
                ack_wait: Duration::from_secs(600),
                ..Default::default()
            })
            .await
            .unwrap();
        for i in 0..30 {
            js.publish(format!("ship.e{i}"), "x".into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        // Take ten and hold them unacknowledged.
        let mut held = c.fetch().max_messages(10).messages().await.unwrap();
        let mut n = 0;
        while let Some(m) = held.next().await {
            m.unwrap();
            n += 1;
        }
        assert_eq!(n, 10);
        js
    });
    let d = Daemon::start(&truth::nats_config(&nats.url(), ANALYSIS));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let stop = stop.clone();
        let js = js.clone();
        let handle = rt.handle().clone();
        std::thread::spawn(move || {
            let mut i = 100;
            while !stop.load(Ordering::Relaxed) {
                handle.block_on(async {
                    js.publish(format!("ship.e{i}"), "x".into())
                        .await
                        .unwrap()
                        .await
                        .unwrap();
                });
                i += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let g = wait_for_cause(&d, "fulfillment", "ack_limit", Duration::from_secs(60));
    assert!(
        g["causes"][0]["evidence"]
            .as_str()
            .unwrap()
            .starts_with("10 messages awaiting ack, the consumer's max_ack_pending of 10"),
        "{g}"
    );
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
}

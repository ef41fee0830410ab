//! Why a group is behind, on real brokers, each test driving the cause itself
//! and recording its own truth: a producer that quadruples its rate, all
//! writes going to one partition of eight, a consumer that stopped, a real
//! group member made slower, members joining and leaving, and a JetStream
//! consumer holding max_ack_pending unacknowledged messages.
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

/// Waits until `name`'s entry satisfies `ok` (`what` says what was awaited);
/// returns it.
fn wait_for_group(
    d: &Daemon,
    name: &str,
    what: &str,
    within: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    let mut last = None;
    loop {
        if let Some(g) = group(d, name) {
            if ok(&g) {
                return g;
            }
            last = Some(g);
        }
        assert!(
            start.elapsed() < within,
            "{name} never {what}; last: {}",
            last.map(|g| g.to_string()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until `name`'s first cause is `cause`; returns the group.
fn wait_for_cause(d: &Daemon, name: &str, cause: &str, within: Duration) -> serde_json::Value {
    wait_for_group(d, name, &format!("had cause {cause}"), within, |g| {
        causes(g).first().map(String::as_str) == Some(cause)
    })
}

/// The evidence of `cause` in the group's causes.
fn evidence<'a>(g: &'a serde_json::Value, cause: &str) -> &'a str {
    g["causes"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["cause"] == cause))
        .and_then(|c| c["evidence"].as_str())
        .unwrap_or("")
}

/// The number right after `after` in `text` ("1,240" counts as 1240).
fn number_after(text: &str, after: &str) -> f64 {
    text.split(after)
        .nth(1)
        .map(|r| {
            r.chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
                .filter(|c| *c != ',')
                .collect::<String>()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN)
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
    // A consumer does 2/s, so the rates alone would ask for ten of them.
    let config = format!("{ANALYSIS}recommend:\n  capacity_per_replica: 2\n");
    let d = Daemon::start(&truth::kafka_config(&b, &config));
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
    // The recommendation agrees: one consumer for the hot partition, nothing
    // for the others (no lag, no writes there), not the ten (capped at eight,
    // "add partitions") the rates alone would ask for.
    let g = wait_for_group(
        &d,
        &group,
        "had a hot_partition recommendation",
        Duration::from_secs(30),
        |g| g["recommendation"]["reason"] == "hot_partition",
    );
    let r = &g["recommendation"];
    assert_eq!(r["recommended"], 1, "{r}");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.starts_with("partition 3 of 8 holds 100% of the lag")
            && message.contains("would not drain it faster")
            && message.contains("will not catch up until the hot key is spread"),
        "{message}"
    );
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
}

/// A real group member keeps up with 10 records/s for half a minute, then
/// (a slow deploy) handles 3/s while the producer keeps its pace:
/// consumer_slowdown, per member, against the pace it showed before.
#[test]
fn a_member_made_slower_is_a_consumer_slowdown() {
    use common::load::{consumer, producer, rate};
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = truth::name("payments");
    tansu.create_topic(&topic, 1);
    let group = truth::name("ledger");
    commit_partitions(&b, &group, &topic, &[0]);
    let d = Daemon::start(&truth::kafka_config(&b, ANALYSIS));
    let stop = Arc::new(AtomicBool::new(false));
    let pace = rate(20);
    let threads = [
        producer(b.clone(), topic.clone(), 1, rate(10), stop.clone()),
        consumer(
            b.clone(),
            group.clone(),
            topic.clone(),
            pace.clone(),
            stop.clone(),
        ),
    ];
    // The member has joined and keeps up.
    wait_for_group(
        &d,
        &group,
        "had one member keeping up",
        Duration::from_secs(60),
        |g| g["members"] == 1 && g["lag"].as_u64().is_some_and(|l| l < 30),
    );
    // 20 s of keeping up at 10/s: the baselines form (baseline_min 10 s).
    std::thread::sleep(Duration::from_secs(20));
    pace.store(3, Ordering::Relaxed);
    let g = wait_for_group(
        &d,
        &group,
        "had cause consumer_slowdown",
        Duration::from_secs(60),
        |g| causes(g).contains(&"consumer_slowdown".to_string()),
    );
    let e = evidence(&g, "consumer_slowdown");
    assert!(e.contains("per member (1 member)"), "{g}");
    // The truth: 3/s per member now, 10/s before; the stated rate is a 6 s
    // window's, so it may still hold a little of the faster pace.
    let per = number_after(e, "consume ");
    let before = number_after(e, "baseline of ");
    assert!((1.5..=5.0).contains(&per), "{e}");
    assert!((6.0..=12.0).contains(&before), "{e}");
    assert!(e.contains("with produce steady at"), "{e}");
    assert!(!causes(&g).contains(&"producer_spike".to_string()), "{g}");
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

/// One member consumes steadily while a second joins and leaves every few
/// seconds: rebalancing, with the joins and leaves counted by member id.
#[test]
fn members_joining_and_leaving_is_rebalancing() {
    use common::load::{consumer, producer, rate};
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = truth::name("shipments");
    tansu.create_topic(&topic, 4);
    let group = truth::name("tracking");
    commit_partitions(&b, &group, &topic, &[0; 4]);
    // Changes counted over 30 s: a join takes tansu about 3 s (BROKERS.md).
    let analysis = ANALYSIS.replace("baseline_min: 10s", "baseline_min: 30s");
    let d = Daemon::start(&truth::kafka_config(&b, &analysis));
    let stop = Arc::new(AtomicBool::new(false));
    // 20/s written, 8/s per member read: behind with one member or two.
    let threads = [
        producer(b.clone(), topic.clone(), 4, rate(20), stop.clone()),
        consumer(
            b.clone(),
            group.clone(),
            topic.clone(),
            rate(8),
            stop.clone(),
        ),
    ];
    wait_for_group(&d, &group, "had a member", Duration::from_secs(60), |g| {
        g["members"] == 1
    });
    let churn = {
        let (b, topic, group, stop) = (b.clone(), topic.clone(), group.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let leave = Arc::new(AtomicBool::new(false));
                let member = consumer(
                    b.clone(),
                    group.clone(),
                    topic.clone(),
                    rate(8),
                    leave.clone(),
                );
                std::thread::sleep(Duration::from_secs(5));
                leave.store(true, Ordering::Relaxed);
                member.join().unwrap();
                std::thread::sleep(Duration::from_secs(3));
            }
        })
    };
    let g = wait_for_group(
        &d,
        &group,
        "had cause rebalancing",
        Duration::from_secs(120),
        |g| causes(g).contains(&"rebalancing".to_string()),
    );
    let e = evidence(&g, "rebalancing");
    // Three rebalances at least: the second member's join, its leave, its
    // next join; the polls of each one (tansu says Unknown meanwhile) count once.
    assert!(number_after(e, "rebalanced ") >= 3.0, "{e}");
    // The second member came and went (by id on tansu, which names members).
    assert!(number_after(e, "(") >= 1.0, "{e}");
    assert!(number_after(e, "joined, ") >= 1.0, "{e}");
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    for t in threads {
        t.join().unwrap();
    }
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

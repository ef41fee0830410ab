//! Dead letters on real brokers, each test recording its own truth: a Kafka
//! consumer that parks every tenth event in `<topic>.dlq` (count, rate, the
//! link to the group, the undrained lag), a JetStream consumer with
//! `max_deliver: 3` that never acknowledges some messages (advisories counted
//! once per message given up on, the redelivery rate), and a `dead_letters`
//! notification that fires and resolves at a real HTTP receiver.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::capture::Capture;
use common::truth::{self, commit_partitions, produce_to};
use common::{wait_until, Daemon, Nats, Tansu};
use serde_json::Value;

/// The daemon's entry for dead-letter topic `dlq` (Kafka) or consumer
/// `group` with `reason` (JetStream), from /api/v1/dead_letter_queues.
fn queue(d: &Daemon, pick: impl Fn(&Value) -> bool) -> Option<Value> {
    let (code, body) = d.get("/api/v1/dead_letter_queues");
    if code != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["dead_letter_queues"]
        .as_array()?
        .iter()
        .find(|q| pick(q))
        .cloned()
}

fn group(d: &Daemon, source: &str, group: &str) -> Option<Value> {
    let (code, body) = d.get(&format!("/api/v1/groups/{source}/{group}"));
    (code == 200).then(|| serde_json::from_str::<Value>(&body).unwrap())
}

fn rfc3339_s(v: &Value) -> f64 {
    let t = humantime::parse_rfc3339(v.as_str().unwrap()).unwrap();
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Whether `ready` held within `timeout` (the caller says what it saw).
fn wait_for(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Events of `times` within `[from, to]`.
fn between(times: &[f64], from: f64, to: f64) -> usize {
    times.iter().filter(|t| **t > from && **t <= to).count()
}

const WINDOW_S: f64 = 20.0;

#[test]
fn a_consumer_parking_every_tenth_event_shows_the_count_rate_link_and_undrained_lag() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let base = truth::name("orders");
    let topic = format!("{base}.created");
    let dlq = format!("{topic}.dlq");
    let g = truth::name("billing");
    tansu.create_topic(&topic, 1);
    tansu.create_topic(&dlq, 1);
    let config = format!(
        "{}dead_letters:\n  window: 10m\n",
        truth::kafka_config(&bootstrap, "  window: 20s\n  min_span: 3s\n")
    );
    let d = Daemon::start(&config);
    // Seen empty first: what the consumer parks from now on is "recent".
    wait_until(
        "the dead-letter topic is watched",
        Duration::from_secs(30),
        || queue(&d, |q| q["dead_letter_topic"] == dlq.as_str()).is_some_and(|q| q["total"] == 0),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let producer = common::load::producer(
        bootstrap.clone(),
        topic.clone(),
        1,
        common::load::rate(20),
        stop.clone(),
    );
    // The consumer: every tenth event it reads goes to the dead-letter topic;
    // each park's time is the truth.
    let parked: Arc<Mutex<Vec<f64>>> = Arc::default();
    let consumer = {
        let (bootstrap, topic, dlq, g) = (bootstrap.clone(), topic.clone(), dlq.clone(), g.clone());
        let (parked, stop) = (parked.clone(), stop.clone());
        std::thread::spawn(move || {
            use rdkafka::config::ClientConfig;
            use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
            use rdkafka::producer::{FutureProducer, FutureRecord};
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", &g)
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .set("session.timeout.ms", "6000")
                .create()
                .unwrap();
            c.subscribe(&[&topic]).unwrap();
            let p: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("linger.ms", "0")
                .create()
                .unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (mut read, mut last_commit) = (0u64, Instant::now());
            while !stop.load(Ordering::Relaxed) {
                if let Some(Ok(_)) = c.poll(Duration::from_millis(50)) {
                    read += 1;
                    if read % 10 == 0 {
                        let payload = format!("event {read} failed validation");
                        rt.block_on(p.send(
                            FutureRecord::<(), _>::to(&dlq).payload(&payload),
                            Duration::from_secs(10),
                        ))
                        .map_err(|(e, _)| e)
                        .unwrap();
                        parked.lock().unwrap().push(truth::now_s());
                    }
                }
                if last_commit.elapsed() > Duration::from_millis(250) {
                    let _ = c.commit_consumer_state(CommitMode::Sync);
                    last_commit = Instant::now();
                }
            }
            let _ = c.commit_consumer_state(CommitMode::Sync);
        })
    };

    // The rate, at a steady moment, against the parks in the same window.
    let started = Instant::now();
    wait_until(
        "parking for a whole window",
        Duration::from_secs(90),
        || {
            started.elapsed() > Duration::from_secs_f64(WINDOW_S + 8.0)
                && parked.lock().unwrap().len() > 30
        },
    );
    let q = queue(&d, |q| q["dead_letter_topic"] == dlq.as_str()).unwrap();
    let at = rfc3339_s(&q["read_at"]);
    let truth_rate = between(&parked.lock().unwrap(), at - WINDOW_S, at) as f64 / WINDOW_S;
    let rate = q["per_second"].as_f64().unwrap();
    assert!(
        (rate - truth_rate).abs() <= 0.1 * truth_rate,
        "rate {rate}/s, truth {truth_rate}/s: {q}"
    );
    assert_eq!(q["topic"], topic.as_str(), "{q}");
    assert_eq!(
        q["group"],
        g.as_str(),
        "linked to the only group reading {topic}: {q}"
    );

    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    consumer.join().unwrap();
    let written = parked.lock().unwrap().len() as u64;
    let mut last = None;
    let counted = wait_for(Duration::from_secs(30), || {
        last = queue(&d, |q| q["dead_letter_topic"] == dlq.as_str());
        last.as_ref()
            .is_some_and(|q| q["total"] == written && q["recent"] == written)
    });
    assert!(counted, "{written} parked, lagwatch says {last:?}");
    // Beside the group's lag, in its own JSON and on /metrics.
    let gj = group(&d, "k", &g).unwrap();
    assert_eq!(gj["group"]["dead_letters"]["recent"], written, "{gj}");
    assert!(
        gj["group"]["dead_letters"]["detail"]
            .as_str()
            .unwrap()
            .contains(&dlq),
        "{gj}"
    );
    let labels = [
        "source=\"k\"",
        &format!("group=\"{g}\""),
        &format!("topic=\"{topic}\""),
        "reason=\"dead_letter_topic\"",
        &format!("dead_letter_topic=\"{dlq}\""),
    ];
    let body = d.metrics();
    assert_eq!(
        truth::metric(&body, "lagwatch_dead_letters_total", &labels),
        Some(written as f64),
        "{body}"
    );
    // Nobody drains it: every stored dead letter is undrained.
    let q = queue(&d, |q| q["dead_letter_topic"] == dlq.as_str()).unwrap();
    assert_eq!(q["undrained"], written, "{q}");
    // A group that has read half of it: the rest is undrained.
    let drainer = truth::name("replayer");
    let half = i64::try_from(written / 2).unwrap();
    commit_partitions(&bootstrap, &drainer, &dlq, &[half]);
    wait_until(
        "the drainer's lag is the undrained count",
        Duration::from_secs(30),
        || {
            queue(&d, |q| q["dead_letter_topic"] == dlq.as_str()).is_some_and(|q| {
                q["undrained"] == written - written / 2
                    && q["drained_by"][0]["group"] == drainer.as_str()
            })
        },
    );
}

#[test]
fn a_consumer_with_max_deliver_3_counts_each_message_given_up_once_and_its_redeliveries() {
    use async_nats::jetstream::{self, consumer};
    use futures::StreamExt;

    let nats = Nats::start();
    let rt = common::runtime();
    let stream_name = truth::name("ORDERS").replace('-', "_");
    let subject = format!("{stream_name}.created");
    let js = rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = jetstream::new(client);
        let stream = js
            .create_stream(jetstream::stream::Config {
                name: stream_name.clone(),
                subjects: vec![subject.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("billing".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                max_deliver: 3,
                ack_wait: Duration::from_secs(1),
                ..Default::default()
            })
            .await
            .unwrap();
        js
    });
    let config = format!(
        "{}dead_letters:\n  window: 10m\n",
        truth::nats_config(&nats.url(), "  window: 20s\n  min_span: 3s\n")
    );
    let d = Daemon::start(&config);
    // Advisories published before lagwatch subscribed are never seen.
    wait_until(
        "subscribed to the advisories",
        Duration::from_secs(30),
        || {
            let (code, body) = d.get("/api/v1/dead_letter_queues");
            code == 200
                && serde_json::from_str::<Value>(&body).unwrap()["advisories"][0]["subscribed"]
                    == true
        },
    );

    let stop = Arc::new(AtomicBool::new(false));
    let redelivered: Arc<Mutex<Vec<f64>>> = Arc::default();
    let given_up = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // 10 events/s; every fifth is never acknowledged: delivered 3 times
    // (2 redeliveries), then given up on.
    let publisher = {
        let (js, subject, stop) = (js.clone(), subject.clone(), stop.clone());
        rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                i += 1;
                js.publish(subject.clone(), format!("order {i}").into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        })
    };
    let consuming = Arc::new(AtomicBool::new(true));
    let consumer_task = {
        let (js, stream_name) = (js.clone(), stream_name.clone());
        let (redelivered, given_up, consuming) =
            (redelivered.clone(), given_up.clone(), consuming.clone());
        rt.spawn(async move {
            let c: consumer::PullConsumer = js
                .get_stream(&stream_name)
                .await
                .unwrap()
                .get_consumer("billing")
                .await
                .unwrap();
            while consuming.load(Ordering::Relaxed) {
                let mut msgs = c
                    .fetch()
                    .max_messages(100)
                    .expires(Duration::from_millis(300))
                    .messages()
                    .await
                    .unwrap();
                while let Some(m) = msgs.next().await {
                    let m = m.unwrap();
                    let info = m.info().unwrap();
                    let (seq, delivered) = (info.stream_sequence, info.delivered);
                    if delivered > 1 {
                        redelivered.lock().unwrap().push(truth::now_s());
                    }
                    if seq % 5 != 0 {
                        m.ack().await.unwrap();
                    } else if delivered == 3 {
                        given_up.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let started = Instant::now();
    wait_until(
        "redeliveries for a whole window",
        Duration::from_secs(90),
        || started.elapsed() > Duration::from_secs_f64(WINDOW_S + 8.0),
    );
    let (code, body) = d.get(&format!(
        "/api/v1/group?source=nats&group=billing&stream={stream_name}"
    ));
    assert_eq!(code, 200, "{body}");
    let gj: Value = serde_json::from_str(&body).unwrap();
    let at = rfc3339_s(&gj["group"]["polled_at"]);
    let truth_rate = between(&redelivered.lock().unwrap(), at - WINDOW_S, at) as f64 / WINDOW_S;
    let r = &gj["group"]["redelivered"];
    assert_eq!(r["quality"], "exact", "{gj}");
    let rate = r["per_second"].as_f64().unwrap();
    assert!(
        (rate - truth_rate).abs() <= 0.05 * truth_rate,
        "redeliveries {rate}/s, truth {truth_rate}/s: {gj}"
    );

    // Stop writing; every message given up on is one advisory, counted once.
    stop.store(true, Ordering::Relaxed);
    rt.block_on(publisher).unwrap();
    let pick = |q: &Value| q["group"] == "billing" && q["reason"] == "max_deliveries";
    let mut last = None;
    wait_until(
        "every message given up on counted",
        Duration::from_secs(30),
        || {
            let want = given_up.load(Ordering::Relaxed);
            last = queue(&d, pick);
            // The last unacknowledged ones are given up on a second after their
            // third delivery.
            last.as_ref()
                .is_some_and(|q| q["total"] == want && want > 0)
                && started.elapsed() > Duration::from_secs_f64(WINDOW_S + 14.0)
        },
    );
    consuming.store(false, Ordering::Relaxed);
    rt.block_on(consumer_task).unwrap();
    let want = given_up.load(Ordering::Relaxed);
    let q = queue(&d, pick).unwrap();
    assert_eq!(q["total"], want, "{q}");
    assert_eq!(q["recent"], want, "{q}");
    assert_eq!(q["topic"], stream_name.as_str(), "{q}");
    assert!(
        q["last"].as_str().unwrap().contains("after 3 deliveries"),
        "{q}"
    );
    let body = d.metrics();
    let labels = [
        "group=\"billing\"",
        &format!("topic=\"{stream_name}\""),
        "reason=\"max_deliveries\"",
    ];
    assert_eq!(
        truth::metric(&body, "lagwatch_dead_letters_total", &labels),
        Some(want as f64),
        "{body}"
    );
    // Nothing was terminated: a zero, present so a first one is an increase.
    let labels = ["group=\"billing\"", "reason=\"terminated\""];
    assert_eq!(
        truth::metric(&body, "lagwatch_dead_letters_total", &labels),
        Some(0.0),
        "{body}"
    );
}

#[test]
fn a_dead_letters_notification_fires_at_a_real_receiver_and_resolves_once_the_window_is_clean() {
    let rt = common::runtime();
    let cap = Capture::start(&rt);
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topic = format!("{}.created", truth::name("orders"));
    let dlq = format!("{topic}.DLT");
    let g = truth::name("billing");
    tansu.create_topic(&topic, 1);
    tansu.create_topic(&dlq, 1);
    produce_to(&bootstrap, &topic, &[20]);
    commit_partitions(&bootstrap, &g, &topic, &[20]);
    let config = format!(
        "{}dead_letters:\n  window: 10s\nalerts:\n  defaults:\n    retry_backoff: 100ms\n    flush_timeout: 1s\n  receivers:\n    - name: hook\n      webhook:\n        url: \"{}\"\n  rules:\n    - name: dead-lettered\n      condition: dead_letters\n      threshold: 0\n      for: 0s\n      resolve_after: 2s\n      receivers: [hook]\n",
        truth::kafka_config(&bootstrap, "  window: 6s\n  min_span: 3s\n"),
        cap.url("/hook")
    );
    let d = Daemon::start(&config);
    wait_until(
        "the dead-letter topic is watched",
        Duration::from_secs(30),
        || queue(&d, |q| q["dead_letter_topic"] == dlq.as_str()).is_some(),
    );
    // Three events parked (Spring Kafka's `.DLT` convention).
    produce_to(&bootstrap, &dlq, &[3]);
    let fired = cap.wait_for(1, Duration::from_secs(30));
    let p = fired[0].json();
    assert_eq!(p["eventType"], "LagAlertFired", "{p}");
    assert_eq!(p["data"]["group"], g.as_str(), "{p}");
    assert_eq!(p["data"]["condition"]["kind"], "dead_letters", "{p}");
    assert_eq!(p["data"]["deadLetters"]["recent"], 3, "{p}");
    assert!(
        p["data"]["deadLetters"]["detail"]
            .as_str()
            .unwrap()
            .contains(&dlq),
        "{p}"
    );
    // No more: once a whole clean window has been watched, it resolves.
    let both = cap.wait_for(2, Duration::from_secs(60));
    let r = both[1].json();
    assert_eq!(r["eventType"], "LagAlertResolved", "{r}");
    assert_eq!(r["data"]["incidentId"], p["data"]["incidentId"], "{r}");
    assert_eq!(r["data"]["deadLetters"]["recent"], 0, "{r}");
    assert_eq!(r["data"]["deadLetters"]["lowerBound"], false, "{r}");
}

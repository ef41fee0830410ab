//! The cases issue 20 found the analysis lying or silent in, each on real
//! brokers against a truth the test records itself (what it wrote, committed,
//! acked and deleted), never against lagwatch's own output.
//!
//! Run with `-- --nocapture` to see the measured figures (`truth:` lines).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use common::runtime;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use common::truth::*;
use common::{Daemon, Nats, Tansu};

#[test]
fn a_group_that_never_committed_three_of_four_partitions_has_the_time_lag_of_the_fourth() {
    // The issue's case (item 2): a group 10 s behind on partition 0 of four,
    // never committing the three partitions that got no message (librdkafka
    // consumers do not commit those). The group's time lag must be partition
    // 0's, and its consume rate the sum, not "unknown".
    const D: f64 = 10.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("four"), name("four-g"));
    tansu.create_topic(&topic, 4);
    let daemon = Daemon::start(&kafka_config(&b, "  window: 10s\n  min_span: 4s\n"));
    let written = Written::new(0);
    let w = written.clone();
    let _member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(500),
        true,
        Box::new(move |now| Some(w.first_after(now - D))),
    );
    let mut producer = KafkaProducer::start(&b, &topic, Pace::Steady(20.0), written.clone());
    let started = producer.started;
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let mut checked = 0;
    // From when the window (10 s) holds only commits made 10 s behind.
    while last.at < started + 2.0 * D + 12.0 {
        last = next_reading(&daemon, &path, last.at);
        let parts = last.json["partitions"].as_array().unwrap().clone();
        if last.at < started + 2.0 * D + 2.0 || parts.len() < 4 {
            continue;
        }
        let p0 = parts.iter().find(|p| p["partition"] == 0).unwrap();
        let (c, h) = (
            p0["committed"].as_i64().unwrap(),
            p0["latest"].as_i64().unwrap(),
        );
        assert!(
            parts
                .iter()
                .filter(|p| p["partition"] != 0)
                .all(|p| p["committed"].is_null()),
            "partitions 1-3 never committed: {parts:?}"
        );
        let truth = written.true_age(c, h, last.at);
        let got = last
            .lag_seconds()
            .unwrap_or_else(|| panic!("group time lag unknown: {}", last.json));
        let p0_lag = p0["lag_seconds"]["seconds"].as_f64().unwrap();
        assert!(
            (got - p0_lag).abs() < 1e-9,
            "group {got} vs partition 0 {p0_lag}"
        );
        assert!(
            (got - truth).abs() <= POLL + SLACK,
            "group time lag {got:.3} s, true age {truth:.3} s"
        );
        let consume = last.rate("consume_rate").unwrap_or_else(|| {
            panic!("group consume rate unknown: {}", last.json);
        });
        assert!((consume - 20.0).abs() <= 2.0, "consume {consume:.3} msg/s");
        checked += 1;
    }
    producer.stop();
    assert!(checked >= 5, "{checked} polls checked");
    let body = daemon.metrics();
    assert!(
        metric(
            &body,
            "lagwatch_group_lag_seconds",
            &[&format!("group=\"{group}\"")]
        )
        .is_some(),
        "lagwatch_group_lag_seconds is exported for the group"
    );
    eprintln!("truth: group with 3 never-committed partitions: time lag = partition 0's, within a poll of the truth, over {checked} polls");
}

#[test]
fn an_offset_reset_forward_is_counted_as_skipped_and_leaves_the_consume_rate_alone() {
    // 100 msg/s in, a consumer at 10/s: lag grows. Its offset is then reset to
    // the log end (the group empty, as kafka-consumer-groups requires), and a
    // new member goes on at 10/s from there (issue 20, item 6).
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("reset"), name("reset-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(&b, "  window: 10s\n  min_span: 4s\n"));
    let written = Written::new(0);
    let mut producer = KafkaProducer::start(&b, &topic, Pace::Steady(100.0), written.clone());
    let t0 = now_s();
    let mut slow = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(250),
        true,
        Box::new(move |now| Some(((now - t0).max(0.0) * 10.0) as i64)),
    );
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    // Consume rate known and right before the reset.
    while last.at < t0 + 15.0 {
        last = next_reading(&daemon, &path, last.at);
    }
    let before = last
        .rate("consume_rate")
        .expect("consume rate before the reset");
    assert!((before - 10.0).abs() <= 1.5, "consume before {before:.3}");
    slow.kill();
    let committed = slow.last_commit().unwrap().1;
    let reset_to = written.end();
    commit_as_admin(&b, &group, &topic, reset_to);
    let t_reset = now_s();
    let jump = reset_to - committed;
    let _fast = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(250),
        false,
        Box::new(move |now| Some(reset_to + ((now - t_reset).max(0.0) * 10.0) as i64)),
    );
    let mut rates = Vec::new();
    let mut skipped = 0;
    while last.at < t_reset + 15.0 {
        last = next_reading(&daemon, &path, last.at);
        skipped = last.group()["skipped_messages_total"].as_u64().unwrap();
        if let Some(c) = last.rate("consume_rate") {
            // Never the jump read as consumption (thousands per second).
            assert!(
                c < 30.0,
                "consume rate {c:.1} msg/s after the reset: {}",
                last.json
            );
            rates.push(c);
        }
    }
    producer.stop();
    // The messages skipped are the jump less what a consumer at ~10/s would
    // have consumed during one poll.
    let skipped = i64::try_from(skipped).unwrap();
    assert!(
        skipped <= jump && skipped >= jump - 100,
        "skipped {skipped}, the reset jumped {jump} messages"
    );
    let after = *rates.last().unwrap();
    assert!((after - 10.0).abs() <= 2.0, "consume after {after:.3}");
    let body = daemon.metrics();
    assert_eq!(
        metric(
            &body,
            "lagwatch_group_skipped_messages_total",
            &[&format!("group=\"{group}\"")]
        ),
        Some(skipped as f64)
    );
    eprintln!("truth: offset reset forward by {jump}: {skipped} counted as skipped; consume rate {before:.2} before, {:.2}..{:.2} after (10)",
        rates.iter().copied().fold(f64::MAX, f64::min), rates.iter().copied().fold(f64::MIN, f64::max));
}

#[test]
fn a_topic_recreated_under_a_group_that_keeps_its_old_position_is_err_not_ok() {
    // 50 records consumed; the topic is deleted (its committed offsets with
    // it) and recreated; 5 new records; the group commits its old position 50
    // again: committed above the log end. Lag reads 0; status must not (item 11).
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("recreated"), name("recreated-g"));
    tansu.create_topic(&topic, 1);
    let written = Written::new(0);
    write_records(&b, &topic, 50, &written);
    commit_as_admin(&b, &group, &topic, 50);
    let daemon = Daemon::start(&kafka_config(&b, "  window: 10s\n  min_span: 4s\n"));
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    assert_eq!(last.status(), "OK", "{}", last.json);
    tansu.delete_topic(&topic);
    tansu.create_topic(&topic, 1);
    write_records(&b, &topic, 5, &Written::new(0));
    commit_as_admin(&b, &group, &topic, 50);
    let t = now_s();
    loop {
        last = next_reading(&daemon, &path, last.at);
        let parts = last.json["partitions"].as_array().unwrap();
        if parts
            .first()
            .is_some_and(|p| p["latest"] == 5 && p["committed"] == 50)
        {
            break;
        }
        assert!(
            now_s() < t + 20.0,
            "never saw committed 50 above head 5: {}",
            last.json
        );
    }
    assert_eq!(last.lag(), 0);
    assert_eq!(last.status(), "ERR", "{}", last.json);
    assert_eq!(last.group()["err_reason"], "committed_beyond_end");
    assert_eq!(last.group()["committed_beyond_end_partitions"], 1);
    // Not "0 s behind": nothing says the new records will ever be read.
    assert_eq!(last.quality(), "unknown", "{}", last.json);
    let body = daemon.metrics();
    let g = format!("group=\"{group}\"");
    assert_eq!(
        metric(
            &body,
            "lagwatch_group_committed_beyond_end_partitions",
            &[&g]
        ),
        Some(1.0)
    );
    eprintln!(
        "truth: recreated topic, committed 50 > head 5: lag 0, status ERR (committed_beyond_end)"
    );
}

#[test]
fn a_consumer_stuck_on_an_idle_topic_gets_an_exact_time_lag_that_grows_with_the_clock() {
    // Kafka and JetStream: ten messages written, the consumer stuck at the
    // fourth, then nothing more for as long as the test runs. lagwatch starts
    // after the writes, so its history cannot date the message; the broker's
    // timestamp of it can (items 3 and the exact time lag).
    let tansu = Tansu::start();
    let nats = Nats::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("idle-stuck"), name("idle-stuck-g"));
    tansu.create_topic(&topic, 1);
    let written = Written::new(0);
    write_records(&b, &topic, 10, &written);
    commit_as_admin(&b, &group, &topic, 3);
    let rt = runtime();
    let stream_name = name("IDLE").replace('-', "_");
    let js_written = Written::new(1);
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let s = stream_with_idle_consumer(&js, &stream_name, "stuck", 10, &js_written).await;
        // Ack the first three: the consumer is stuck at sequence 4.
        let c: consumer::PullConsumer = s.get_consumer("stuck").await.unwrap();
        let mut msgs = c.fetch().max_messages(3).messages().await.unwrap();
        use futures::StreamExt as _;
        while let Some(m) = msgs.next().await {
            m.unwrap().double_ack().await.unwrap();
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    let config = format!(
        "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 2s\nsources:\n  - name: k\n    kafka:\n      bootstrap_servers: [\"{b}\"]\n      poll_interval: 1s\n      request_timeout: 2s\n  - name: nats\n    jetstream:\n      servers: [\"{}\"]\n      poll_interval: 1s\n      request_timeout: 2s\nanalysis:\n  window: 10s\n  min_span: 4s\n",
        nats.url()
    );
    let daemon = Daemon::start(&config);
    for (path, truth_written, offset) in [
        (
            format!("/api/v1/groups/k/{group}"),
            written.time_of(3).unwrap(),
            3,
        ),
        (
            "/api/v1/groups/nats/stuck".to_string(),
            js_written.time_of(4).unwrap(),
            4,
        ),
    ] {
        let mut last = next_reading(&daemon, &path, 0.0);
        let t = now_s();
        while last.quality() != "exact" {
            assert!(
                now_s() < t + 15.0,
                "{path}: never exact: {}\nlog:\n{}",
                last.json,
                daemon
                    .logs()
                    .lines()
                    .filter(|l| l.contains("record")
                        || l.contains("Kafka poll")
                        || l.contains("message"))
                    .take(40)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            last = next_reading(&daemon, &path, last.at);
        }
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let (got, truth) = (last.lag_seconds().unwrap(), last.at - truth_written);
            assert_eq!(last.quality(), "exact", "{path}: {}", last.json);
            // The broker's timestamp is in milliseconds; the test's record of
            // the write is the produce acknowledgement, a few ms later.
            assert!(
                (got - truth).abs() <= 0.25,
                "{path}: exact time lag {got:.3} s, true age of offset {offset} {truth:.3} s at {}: trend {}; written {:?}\n{}",
                last.at,
                last.group()["trend"],
                (0..10).map(|o| written.time_of(o)).collect::<Vec<_>>(),
                daemon
                    .logs()
                    .lines()
                    .filter(|l| l.contains("Kafka poll"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            seen.push((last.at, got));
            last = next_reading(&daemon, &path, last.at + 0.9);
        }
        let (first, latest) = (seen[0], seen[seen.len() - 1]);
        let grew = latest.1 - first.1;
        let clock = latest.0 - first.0;
        assert!(
            (grew - clock).abs() <= 0.05,
            "{path}: grew {grew:.3} s in {clock:.3} s of clock"
        );
        eprintln!("truth: {path} stuck on an idle topic: exact time lag within 0.25 s of the truth, grew {grew:.2} s in {clock:.2} s");
    }
}

#[test]
fn work_queue_and_interest_streams_whose_consumers_keep_pace_get_rates_and_status() {
    // 10 msg/s; each consumer acks what is 2 s old; polled every 3 s, so
    // everything stored at one poll is acked (and deleted) by the next: the
    // history used to restart every poll and never produce a rate (item 1).
    const D: f64 = 2.0;
    const RATE: f64 = 10.0;
    let nats = Nats::start();
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let mut written_by = Vec::new();
    for (policy, label) in [
        (stream::RetentionPolicy::WorkQueue, "WQ"),
        (stream::RetentionPolicy::Interest, "INT"),
    ] {
        let stream_name = name(label).replace('-', "_");
        let written = Written::new(1);
        let (js, s) = rt.block_on(async {
            let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
            let s = js
                .create_stream(stream::Config {
                    name: stream_name.clone(),
                    subjects: vec![format!("{stream_name}.>")],
                    retention: policy,
                    ..Default::default()
                })
                .await
                .unwrap();
            s.create_consumer(consumer::pull::Config {
                durable_name: Some("worker".into()),
                ..Default::default()
            })
            .await
            .unwrap();
            (js, s)
        });
        rt.spawn(publish_steady(
            js,
            format!("{stream_name}.jobs"),
            RATE,
            written.clone(),
            stop.clone(),
        ));
        let w = written.clone();
        rt.spawn(ack_up_to(
            s,
            "worker".into(),
            written.clone(),
            move |now| w.first_after(now - D),
            stop.clone(),
        ));
        written_by.push((stream_name, written));
    }
    let daemon = Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 2s\nsources:\n  - name: nats\n    jetstream:\n      servers: [\"{}\"]\n      poll_interval: 3s\n      request_timeout: 2s\nanalysis:\n  window: 30s\n  min_span: 6s\n",
        nats.url()
    ));
    let started = now_s();
    for (stream_name, written) in &written_by {
        let path = format!("/api/v1/groups/nats/worker?stream={stream_name}");
        let mut last = next_reading(&daemon, &path, 0.0);
        // From when the window (30 s) holds no part of the start (acks begin
        // D after the first publish).
        while last.at < started + 36.0 {
            last = next_reading(&daemon, &path, last.at);
        }
        let (p, c) = (last.rate("produce_rate"), last.rate("consume_rate"));
        let (p, c) = (
            p.unwrap_or_else(|| panic!("{stream_name}: no produce rate: {}", last.json)),
            c.unwrap_or_else(|| panic!("{stream_name}: no consume rate: {}", last.json)),
        );
        assert!(
            (p - RATE).abs() <= 0.05 * RATE,
            "{stream_name}: produce {p:.3}"
        );
        assert!(
            (c - RATE).abs() <= 0.05 * RATE,
            "{stream_name}: consume {c:.3}"
        );
        assert_eq!(last.status(), "OK", "{stream_name}: {}", last.json);
        let got = last
            .lag_seconds()
            .unwrap_or_else(|| panic!("{stream_name}: time lag unknown: {}", last.json));
        let (cm, h) = (last.committed(), last.latest());
        let truth = written.true_age(cm, h, last.at);
        assert!(
            (got - truth).abs() <= 3.0 + SLACK,
            "{stream_name}: time lag {got:.3} s, truth {truth:.3} s"
        );
        let restarts = metric(
            &daemon.metrics(),
            "lagwatch_history_restarts_total",
            &["source=\"nats\""],
        );
        eprintln!("truth: {stream_name} keeping pace {D} s behind at 3 s polls: produce {p:.3} consume {c:.3} (10), time lag {got:.2} s (truth {truth:.2}), status OK; history restarts {restarts:?}");
    }
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn a_full_limits_stream_with_a_stuck_consumer_keeps_its_produce_rate_and_shows_the_loss() {
    // max_msgs 50, 10 msg/s published, a consumer that never acks: unread
    // messages expire, num_pending stays at 50, and produce derived as
    // consume + lag growth would read 0 (item 4). The stream's sequence says 10.
    const RATE: f64 = 10.0;
    let nats = Nats::start();
    let rt = runtime();
    let stream_name = name("FULL").replace('-', "_");
    let written = Written::new(1);
    let stop = Arc::new(AtomicBool::new(false));
    let js = rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let s = js
            .create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![format!("{stream_name}.>")],
                max_messages: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        s.create_consumer(consumer::pull::Config {
            durable_name: Some("stuck".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        js
    });
    rt.spawn(publish_steady(
        js,
        format!("{stream_name}.e"),
        RATE,
        written.clone(),
        stop.clone(),
    ));
    let daemon = Daemon::start(&nats_config(&nats.url(), "  window: 10s\n  min_span: 5s\n"));
    let started = now_s();
    let path = format!("/api/v1/groups/nats/stuck?stream={stream_name}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let mut checked = Vec::new();
    while last.at < started + 25.0 {
        last = next_reading(&daemon, &path, last.at);
        if last.at < started + 17.0 {
            continue;
        }
        let p = last
            .rate("produce_rate")
            .unwrap_or_else(|| panic!("no produce rate: {}", last.json));
        assert!(
            (p - RATE).abs() <= 0.05 * RATE,
            "produce {p:.3} msg/s while 10 are published"
        );
        checked.push(p);
    }
    stop.store(true, Ordering::Relaxed);
    let lost = last.group()["lost_messages"].as_u64().unwrap();
    let truth_lost = u64::try_from(written.end() - 1 - 50).unwrap_or(0);
    assert!(
        lost > 0 && lost <= truth_lost + 20,
        "lost {lost}, about {truth_lost} expired unread"
    );
    // Loss is happening: projected 0 s, by the count limit.
    assert_eq!(
        last.group()["projected_loss"]["seconds"],
        0.0,
        "{}",
        last.json
    );
    assert_eq!(last.group()["projected_loss"]["basis"], "max_messages");
    eprintln!("truth: full limits stream, stuck consumer: produce {:.3}..{:.3} (10) over {} polls; lost {lost} (about {truth_lost} expired)",
        checked.iter().copied().fold(f64::MAX, f64::min), checked.iter().copied().fold(f64::MIN, f64::max), checked.len());
}

#[test]
fn a_healthy_consumer_on_a_short_retention_stream_has_headroom_and_no_projected_loss() {
    // The issue's case (item 5): a consumer 50 messages (5 s) behind on a
    // stream with max_age 30 m, keeping pace: before anything is deleted there
    // is a figure (headroom about 30 m if it stopped), and no projected loss:
    // the shipped ConsumerDataLossRisk must never fire for it.
    const D: f64 = 5.0;
    let nats = Nats::start();
    let rt = runtime();
    let stream_name = name("AGE").replace('-', "_");
    let written = Written::new(1);
    let stop = Arc::new(AtomicBool::new(false));
    let (js, s) = rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let s = js
            .create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![format!("{stream_name}.>")],
                max_age: Duration::from_secs(1800),
                ..Default::default()
            })
            .await
            .unwrap();
        s.create_consumer(consumer::pull::Config {
            durable_name: Some("healthy".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        (js, s)
    });
    rt.spawn(publish_steady(
        js,
        format!("{stream_name}.e"),
        10.0,
        written.clone(),
        stop.clone(),
    ));
    let w = written.clone();
    rt.spawn(ack_up_to(
        s,
        "healthy".into(),
        written.clone(),
        move |now| w.first_after(now - D),
        stop.clone(),
    ));
    let daemon = Daemon::start(&nats_config(&nats.url(), "  window: 10s\n  min_span: 5s\n"));
    let started = now_s();
    let path = format!("/api/v1/groups/nats/healthy?stream={stream_name}");
    let mut last = next_reading(&daemon, &path, 0.0);
    while last.at < started + D + 14.0 {
        last = next_reading(&daemon, &path, last.at);
    }
    stop.store(true, Ordering::Relaxed);
    let g = last.group();
    let headroom = g["headroom"]["seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("no headroom: {}", last.json));
    let age = last.lag_seconds().unwrap();
    assert!(
        (headroom - (1800.0 - age)).abs() <= 1.0 && (1790.0..1800.0).contains(&headroom),
        "headroom {headroom:.1} s with a {age:.1} s time lag on a 30 m stream"
    );
    assert_eq!(g["headroom"]["basis"], "max_age");
    assert!(g["projected_loss"]["seconds"].is_null(), "{}", last.json);
    assert_eq!(g["projected_loss"]["known"], true);
    let body = daemon.metrics();
    let grp = "group=\"healthy\"";
    assert!(metric(&body, "lagwatch_group_projected_loss_seconds", &[grp]).is_none());
    assert!(metric(&body, "lagwatch_group_time_until_loss_seconds", &[grp]).is_some());
    eprintln!("truth: healthy consumer {age:.1} s behind on a 30 m stream: headroom {headroom:.0} s, no projected loss");
}

#[test]
fn reading_the_brokers_timestamps_brings_bursty_time_lags_within_a_second() {
    // The issue's bursty case at a 5 s poll: interpolation alone put 46 of 60
    // readings within 1 s of the truth. Two daemons watch the same group, one
    // reading the oldest unconsumed message's timestamp where interpolation's
    // error could exceed 1 s (the default), one interpolating only: the first
    // must have nearly all readings within 1 s.
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("bursty-exact"), name("bursty-exact-g"));
    tansu.create_topic(&topic, 1);
    let config = |analysis: &str| {
        format!(
            "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 2s\nsources:\n  - name: k\n    kafka:\n      bootstrap_servers: [\"{b}\"]\n      poll_interval: 5s\n      request_timeout: 2s\nanalysis:\n  window: 60s\n  min_span: 10s\n{analysis}"
        )
    };
    let exact = Daemon::start(&config(""));
    let interpolating = Daemon::start(&config("  exact_time_lag: {enabled: false}\n"));
    let written = Written::new(0);
    let w = written.clone();
    let _member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(250),
        true,
        Box::new(move |now| Some(w.first_after(now - 6.0))),
    );
    let path = format!("/api/v1/groups/k/{group}");
    let pace = Pace::Bursts {
        size: 30,
        every: 7.3,
    };
    let mut producer = KafkaProducer::start(&b, &topic, pace, written.clone());
    let started = producer.started;
    // (lagging readings, within 1 s of the truth) per daemon.
    let mut counts = [(0, 0), (0, 0)];
    let mut last = [
        next_reading(&exact, &path, 0.0),
        next_reading(&interpolating, &path, 0.0),
    ];
    while last[0].at < started + 95.0 {
        for (i, d) in [&exact, &interpolating].into_iter().enumerate() {
            last[i] = next_reading(d, &path, last[i].at);
            let r = &last[i];
            let (c, h) = (r.committed(), r.latest());
            if c >= h || r.at < started + 10.0 {
                continue;
            }
            let truth = written.true_age(c, h, r.at);
            let got = r.lag_seconds().unwrap();
            counts[i].0 += 1;
            if (got - truth).abs() <= 1.0 {
                counts[i].1 += 1;
            }
        }
    }
    producer.stop();
    let [(lagging, within), (lagging_i, within_i)] = counts;
    assert!(lagging >= 10, "{lagging} lagging polls");
    assert!(
        within * 10 >= lagging * 9,
        "only {within} of {lagging} lagging readings within 1 s of the truth"
    );
    eprintln!("truth: bursty producer at 5 s polls: with timestamps read {within} of {lagging} readings within 1 s of the truth; interpolation alone {within_i} of {lagging_i}");
}

#[test]
fn a_kafka_topics_retention_config_gives_headroom_and_a_projection_once_the_consumer_stops() {
    // retention.ms 10 m on the topic (read with DescribeConfigs): a consumer
    // keeping pace 3 s behind has about 10 m of headroom and no projected loss;
    // once it stops, the projected loss is the headroom, counting down.
    const D: f64 = 3.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("retained"), name("retained-g"));
    tansu.create_topic_with(&topic, 1, &[("retention.ms", "600000")]);
    let daemon = Daemon::start(&kafka_config(&b, "  window: 10s\n  min_span: 4s\n"));
    let written = Written::new(0);
    let w = written.clone();
    let mut member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(250),
        true,
        Box::new(move |now| Some(w.first_after(now - D))),
    );
    let mut producer = KafkaProducer::start(&b, &topic, Pace::Steady(10.0), written.clone());
    let started = producer.started;
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    while last.at < started + D + 12.0 {
        last = next_reading(&daemon, &path, last.at);
    }
    let g = last.group();
    let age = last.lag_seconds().unwrap();
    let headroom = g["headroom"]["seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("{}", last.json));
    assert!(
        (headroom - (600.0 - age)).abs() <= 1.0,
        "headroom {headroom:.1} s, age {age:.1} s"
    );
    assert_eq!(g["headroom"]["basis"], "max_age", "{}", last.json);
    assert!(
        g["projected_loss"]["seconds"].is_null(),
        "keeping pace: {}",
        last.json
    );
    member.kill();
    let stopped = now_s();
    // Once the window holds only the stopped consumer (consume rate 0), its
    // oldest message ages at 1 s/s: projected loss = headroom.
    while last.at < stopped + 12.0 {
        last = next_reading(&daemon, &path, last.at);
    }
    producer.stop();
    let g = last.group();
    let (projected, headroom) = (
        g["projected_loss"]["seconds"]
            .as_f64()
            .unwrap_or_else(|| panic!("{}", last.json)),
        g["headroom"]["seconds"].as_f64().unwrap(),
    );
    let (c, h) = (last.committed(), last.latest());
    let truth_age = written.true_age(c, h, last.at);
    assert!(
        (projected - (600.0 - truth_age)).abs() <= 1.5,
        "projected loss {projected:.1} s for a stopped consumer {truth_age:.1} s behind on 10 m retention"
    );
    assert!(
        (projected - headroom).abs() <= 0.5,
        "stopped: projected {projected:.1} = headroom {headroom:.1}"
    );
    eprintln!("truth: Kafka retention.ms 10 m: headroom while keeping pace {:.0} s, projected loss once stopped {projected:.1} s (truth {:.1})", 600.0 - age, 600.0 - truth_age);
}

#[test]
fn refused_timestamp_reads_leave_the_time_lag_bounded_and_the_polls_on_time() {
    // lagwatch's NATS user may not read messages (STREAM.MSG.GET denied, as a
    // least-privilege monitoring account would be): the read fails once (a
    // NATS permission violation shows as a timeout), reads stop for ten
    // minutes with one warning saying how to fix it, and polls keep their
    // interval; the time lag keeps its lower bound.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nats.conf");
    std::fs::write(
        &conf,
        r#"authorization {
  users = [
    { user: admin, password: admin-pass }
    { user: lagwatch, password: lagwatch-pass,
      permissions: { publish: { deny: ["$JS.API.STREAM.MSG.GET.>"] } } }
  ]
}
"#,
    )
    .unwrap();
    let nats = Nats::start_with(&["-c", conf.to_str().unwrap()]);
    let stream_name = name("DENIED").replace('-', "_");
    runtime().block_on(async {
        let client =
            async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin-pass".into())
                .connect(nats.url())
                .await
                .unwrap();
        let js = jetstream::new(client);
        stream_with_idle_consumer(&js, &stream_name, "stuck", 10, &Written::new(1)).await;
    });
    let daemon = Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 2s\nsources:\n  - name: nats\n    jetstream:\n      servers: [\"{}\"]\n      auth:\n        user: lagwatch\n        password: lagwatch-pass\n      poll_interval: 1s\n      request_timeout: 2s\nanalysis:\n  window: 10s\n  min_span: 4s\n",
        nats.url()
    ));
    let errors = || {
        metric(
            &daemon.metrics(),
            "lagwatch_poll_errors_total",
            &["source=\"nats\"", "kind=\"read_timestamps\""],
        )
        .unwrap_or(0.0)
    };
    common::wait_until(
        "a read_timestamps poll error",
        Duration::from_secs(30),
        || errors() >= 1.0,
    );
    let logs = daemon.logs();
    assert!(
        logs.contains("reading message timestamps for exact time lag failed")
            && logs.contains("STREAM.MSG.GET.>"),
        "no warning saying how to fix it:\n{logs}"
    );
    let failed = errors();
    let path = "/api/v1/groups/nats/stuck";
    let mut last = next_reading(&daemon, path, 0.0);
    let (t0, first_at) = (Instant::now(), last.at);
    let mut readings = 0;
    while t0.elapsed() < Duration::from_secs(8) {
        last = next_reading(&daemon, path, last.at);
        readings += 1;
        assert_ne!(last.quality(), "exact", "{}", last.json);
        assert!(
            last.group()["lag_seconds"]["at_least_seconds"]
                .as_f64()
                .is_some_and(|s| s > 0.0),
            "no lower bound: {}",
            last.json
        );
    }
    let span = last.at - first_at;
    assert!(
        f64::from(readings) >= span / 2.0 && readings >= 3,
        "{readings} polls in {span:.1} s: refused reads slow the polls down"
    );
    assert_eq!(errors(), failed, "reads were retried within the backoff");
    eprintln!(
        "truth: MSG.GET denied: {failed} failed read, then none; {readings} polls in {span:.1} s; time lag {} (at least {} s)",
        last.quality(),
        last.group()["lag_seconds"]["at_least_seconds"]
    );
}

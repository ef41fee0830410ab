//! Accuracy against reality: the lag analysis (time lag, rates, status) measured
//! against real brokers (tansu, nats-server) driven at known rates by real
//! producers and consumers, while the test keeps its own record of when every
//! message was written. Each figure lagwatch reports is compared with that
//! truth, at the instant of the poll it came from (the API's `at`).
//!
//! Run with `-- --nocapture` to see the measured accuracies (`accuracy:` lines).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use common::truth::*;
use common::{Daemon, Nats, Tansu};

// --------------------------------------------------------------------- tests

#[test]
fn a_consumer_kept_eight_seconds_behind_a_steady_producer_shows_eight_seconds_of_time_lag() {
    let clock = Instant::now();
    // 20 msg/s; the consumer commits, every 0.5 s, past every message at least
    // D old. The oldest unconsumed message is then between D - 0.05 s (one
    // message younger) and D + 0.5 s (a commit period later) old at any poll.
    const D: f64 = 8.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("steady"), name("steady-g"));
    tansu.create_topic(&topic, 1);
    // Interpolation alone is measured here: no timestamps read.
    let daemon = Daemon::start(&kafka_config(
        &b,
        "  window: 20s\n  min_span: 5s\n  exact_time_lag: {enabled: false}\n",
    ));
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
    let path = format!("/api/v1/groups/k/{group}");
    // lagwatch has the group (committed 0, head 0) before the first write, so
    // every write falls between two of its samples.
    let mut last = next_reading(&daemon, &path, 0.0);
    let mut producer = KafkaProducer::start(&b, &topic, Pace::Steady(20.0), written.clone());
    let started = producer.started;

    let (mut worst_vs_truth, mut steady) = (0.0_f64, Vec::new());
    while last.at < started + D + 16.0 {
        last = next_reading(&daemon, &path, last.at);
        let (c, h) = (last.committed(), last.latest());
        let truth = written.true_age(c, h, last.at);
        let got = last
            .lag_seconds()
            .unwrap_or_else(|| panic!("time lag unknown at {:?}", last.json));
        // Against the truth at every poll, from the first write on (while the
        // consumer still sits at 0 the truth grows 0 -> D): the interpolation
        // between two samples is wrong by at most the time between them.
        assert!(
            (got - truth).abs() <= POLL + SLACK,
            "reported {got:.3} s, true age {truth:.3} s (committed {c}, head {h})"
        );
        worst_vs_truth = worst_vs_truth.max((got - truth).abs());
        if c < h {
            assert_eq!(last.quality(), "interpolated", "{:?}", last.json);
        }
        // Steady state: the consumer has been committing for a few seconds.
        if last.at > started + D + 3.0 {
            assert!(
                (got - D).abs() <= POLL + SLACK,
                "steady state: reported {got:.3} s for a consumer {D} s behind"
            );
            steady.push(got);
        }
    }
    metrics_agree_with_api(&daemon, &path, &group);
    let late = producer.stop();
    assert!(
        late < 0.25,
        "the producer kept its schedule (late by {late:.3} s)"
    );
    assert!(steady.len() >= 10, "{} steady polls", steady.len());
    let (lo, hi) = steady
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let mean = steady.iter().sum::<f64>() / steady.len() as f64;
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): steady time lag, consumer {D} s behind at 20 msg/s: {} polls, reported min {lo:.3} mean {mean:.3} max {hi:.3} s; worst |reported - true age| {worst_vs_truth:.3} s",
        steady.len()
    );
}

#[test]
fn time_lag_under_a_bursty_producer_is_never_negative_never_unknown_and_within_a_poll_of_the_truth()
{
    let clock = Instant::now();
    // Bursts of 40 records every 3.7 s; the consumer commits (every 0.25 s)
    // past every record at least 2 s old, so it is caught up for the last
    // ~1.7 s of each cycle and lagging a whole burst for the first ~2 s. 3.7 s
    // is not a multiple of the 1 s poll, so bursts land at every phase of the
    // poll cycle (a 4 s period lands each burst just after a poll, where
    // interpolation is trivially right).
    const D: f64 = 2.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("bursty"), name("bursty-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(
        &b,
        "  window: 8s\n  min_span: 3s\n  min_samples: 3\n  exact_time_lag: {enabled: false}\n",
    ));
    let written = Written::new(0);
    let w = written.clone();
    let _member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(250),
        true,
        Box::new(move |now| Some(w.first_after(now - D))),
    );
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let pace = Pace::Bursts {
        size: 40,
        every: 3.7,
    };
    let mut producer = KafkaProducer::start(&b, &topic, pace, written.clone());
    let started = producer.started;

    let (mut lagging, mut caught_up, mut worst_over, mut worst_under) = (0, 0, 0.0_f64, 0.0_f64);
    while last.at < started + 26.0 {
        last = next_reading(&daemon, &path, last.at);
        let (c, h) = (last.committed(), last.latest());
        let truth = written.true_age(c, h, last.at);
        assert_ne!(last.quality(), "unknown", "{:?}", last.json);
        let got = last.lag_seconds().unwrap();
        assert!(got >= 0.0, "negative time lag {got}");
        if c >= h {
            // Caught up between bursts: exactly 0, not an age of the last burst.
            assert_eq!((got, last.quality()), (0.0, "exact"), "{:?}", last.json);
            caught_up += 1;
            continue;
        }
        lagging += 1;
        // A burst is dated between the two samples around it: the estimate is
        // never above the truth by more than the time between those samples
        // (one poll), nor below it by more.
        assert!(
            got <= truth + POLL + SLACK,
            "reported {got:.3} s > true age {truth:.3} s + one poll (committed {c}, head {h})"
        );
        assert!(
            got >= truth - POLL - SLACK,
            "reported {got:.3} s < true age {truth:.3} s - one poll (committed {c}, head {h})"
        );
        worst_over = worst_over.max(got - truth);
        worst_under = worst_under.max(truth - got);
    }
    producer.stop();
    assert!(lagging >= 5, "{lagging} polls while lagging a burst");
    assert!(caught_up >= 3, "{caught_up} polls caught up between bursts");
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): bursty time lag: {lagging} lagging polls, {caught_up} caught-up polls (all exact 0); reported - true age within [-{worst_under:.3}, +{worst_over:.3}] s"
    );
}

#[test]
fn time_lag_of_a_consumer_caught_up_on_an_idle_topic_is_exactly_zero() {
    let clock = Instant::now();
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("idle"), name("idle-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(&b, "  window: 6s\n  min_span: 3s\n"));
    let written = Written::new(0);
    // The consumer commits up to `target`; 0 until the test lets it catch up.
    let target = Arc::new(AtomicI64::new(0));
    let t = target.clone();
    let _member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(100),
        true,
        Box::new(move |_| Some(t.load(Ordering::Relaxed))),
    );
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let mut producer = KafkaProducer::start(
        &b,
        &topic,
        Pace::Bursts {
            size: 50,
            every: 1000.0,
        },
        written.clone(),
    );
    common::wait_until("50 records written", Duration::from_secs(20), || {
        written.end() == 50
    });
    producer.stop();
    let done = written.time_of(49).unwrap();

    // Unconsumed for 3 s: the time lag is the age of record 0, not 0.
    while last.at < done + 3.0 {
        last = next_reading(&daemon, &path, last.at);
    }
    let truth = written.true_age(last.committed(), last.latest(), last.at);
    let before = last.lag_seconds().unwrap();
    assert_eq!(last.latest(), 50);
    assert!(
        (before - truth).abs() <= POLL + SLACK,
        "before catching up: reported {before:.3} s, true age {truth:.3} s"
    );

    // Caught up, then nothing is written for longer than the window: exactly
    // 0, Exact, on every poll (kafka-lag-exporter reports the age of the last
    // write here, growing for as long as the topic stays idle).
    target.store(i64::MAX, Ordering::Relaxed);
    while last.committed() < 50 {
        last = next_reading(&daemon, &path, last.at);
    }
    let caught_up = last.at;
    let mut polls = 0;
    while last.at < caught_up + 10.0 {
        assert_eq!(last.lag(), 0);
        assert_eq!(
            (last.lag_seconds(), last.quality()),
            (Some(0.0), "exact"),
            "{:?}",
            last.json
        );
        assert_eq!(last.status(), "OK");
        polls += 1;
        last = next_reading(&daemon, &path, last.at);
    }
    assert!(polls >= 8, "{polls} idle polls");
    let body = daemon.metrics();
    let g = format!("group=\"{group}\"");
    assert_eq!(
        metric(&body, "lagwatch_group_lag_seconds", &[&g]),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &body,
            "lagwatch_group_lag_seconds_quality",
            &[&g, "quality=\"exact\""]
        ),
        Some(1.0)
    );
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): idle topic: before catching up reported {before:.3} s vs true {truth:.3} s; then {polls} polls over {:.1} s idle, all exactly 0 (exact)",
        last.at - caught_up
    );
}

#[test]
fn produce_and_consume_rates_are_within_five_percent_of_the_rates_driven() {
    let clock = Instant::now();
    // 30 msg/s in; the consumer commits floor(20 (t - t0)) every 0.1 s (steps
    // of two records), so 20 msg/s out and the lag grows 10 msg/s.
    const PRODUCE: f64 = 30.0;
    const CONSUME: f64 = 20.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("rates"), name("rates-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(&b, "  window: 10s\n  min_span: 5s\n"));
    let written = Written::new(0);
    let t0 = Arc::new(Mutex::new(f64::MAX));
    let start_at = t0.clone();
    let _member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(100),
        true,
        Box::new(move |now| {
            let t0 = *start_at.lock().unwrap();
            Some(((now - t0).max(0.0) * CONSUME).floor() as i64)
        }),
    );
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let mut producer = KafkaProducer::start(&b, &topic, Pace::Steady(PRODUCE), written.clone());
    // The consumer starts a second later so that it never catches up with head.
    *t0.lock().unwrap() = producer.started + 1.0;

    // Steady state once the window holds only samples of both running.
    let from = producer.started + 1.0 + 10.0 + POLL;
    let mut seen: Vec<(f64, f64, f64)> = Vec::new();
    while seen.len() < 10 {
        last = next_reading(&daemon, &path, last.at);
        if last.at < from {
            continue;
        }
        let (p, c, g) = (
            last.rate("produce_rate").unwrap(),
            last.rate("consume_rate").unwrap(),
            last.rate("lag_growth").unwrap(),
        );
        // 5% of each driven rate; the lag growth is their difference, so its
        // errors add up: 5% of the produce rate.
        assert!((p - PRODUCE).abs() <= 0.05 * PRODUCE, "produce {p:.3}/s");
        assert!((c - CONSUME).abs() <= 0.05 * CONSUME, "consume {c:.3}/s");
        let growth = PRODUCE - CONSUME;
        assert!((g - growth).abs() <= 0.05 * PRODUCE, "lag growth {g:.3}/s");
        seen.push((p, c, g));
    }
    let late = producer.stop();
    assert!(
        late < 0.25,
        "the producer kept its schedule (late by {late:.3} s)"
    );
    let worst = |f: fn(&(f64, f64, f64)) -> f64, truth: f64| {
        seen.iter()
            .map(|r| (f(r) - truth).abs() / truth * 100.0)
            .fold(0.0_f64, f64::max)
    };
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): kafka rates over {} polls: produce {:.3}..{:.3} (worst {:.2}% off 30), consume {:.3}..{:.3} (worst {:.2}% off 20), lag growth worst {:.2}% off 10",
        seen.len(),
        seen.iter().map(|r| r.0).fold(f64::MAX, f64::min),
        seen.iter().map(|r| r.0).fold(f64::MIN, f64::max),
        worst(|r| r.0, PRODUCE),
        seen.iter().map(|r| r.1).fold(f64::MAX, f64::min),
        seen.iter().map(|r| r.1).fold(f64::MIN, f64::max),
        worst(|r| r.1, CONSUME),
        worst(|r| r.2, PRODUCE - CONSUME),
    );
}

/// Polls until the group shows `status`; returns that reading. Fails if a
/// status outside `allowed` shows up on the way, or after `timeout`.
fn wait_status(
    d: &Daemon,
    path: &str,
    last: &mut Reading,
    status: &str,
    allowed: &[&str],
    timeout: f64,
) -> f64 {
    let start = last.at;
    loop {
        *last = next_reading(d, path, last.at);
        let s = last.status().to_string();
        if s == status {
            return last.at;
        }
        assert!(
            allowed.contains(&s.as_str()),
            "status {s} while waiting for {status} (allowed on the way: {allowed:?}): {:?}",
            last.json
        );
        assert!(
            last.at - start < timeout,
            "no {status} within {timeout} s; last {:?}",
            last.json
        );
    }
}

#[test]
fn status_goes_ok_stall_ok_stop_ok_when_the_rules_say() {
    let clock = Instant::now();
    // window 6 s, stop_after 10 s. STALL: committed constant across the whole
    // window while lagging. STOP: committed unchanged for longer than
    // stop_after. lagwatch sees offsets, not members, so a consumer that is
    // alive but stuck also reaches STOP after stop_after (docs/analysis.md:
    // OK/WARN -> STALL -> STOP); the test stalls a live member for less than
    // stop_after, and lets a killed one run past it.
    const WINDOW: f64 = 6.0;
    const STOP_AFTER: f64 = 10.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("status"), name("status-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(
        &b,
        "  window: 6s\n  min_span: 3s\n  thresholds:\n    stop_after: 10s\n",
    ));
    let written = Written::new(0);
    // 0: commit every record as soon as it is received; 1: commit nothing.
    let mode = Arc::new(AtomicU8::new(0));
    let keep_up = |mode: &Arc<AtomicU8>| -> Policy {
        let m = mode.clone();
        Box::new(move |_| (m.load(Ordering::Relaxed) == 0).then_some(i64::MAX))
    };
    let mut member = Member::start(&b, &group, &topic, Duration::ZERO, true, keep_up(&mode));
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let _producer = KafkaProducer::start(&b, &topic, Pace::Steady(10.0), written.clone());

    // Keeping up: OK, and still OK once the window is full of it.
    wait_status(&daemon, &path, &mut last, "OK", &[], 5.0);
    let ok_from = last.at;
    while last.at < ok_from + WINDOW + POLL {
        last = next_reading(&daemon, &path, last.at);
        assert_eq!(last.status(), "OK", "{:?}", last.json);
    }

    // Stuck but alive (polling, in the group), for 8 s < stop_after: STALL
    // once the window holds only samples after the last commit, i.e. within
    // (window - 1 poll, window + 1 poll] of it (+1 poll if the first of them
    // still had lag 0, + slack), WARN allowed before it (lag rising); no STOP.
    mode.store(1, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let (held, _) = member.last_commit().unwrap();
    let stall_at = wait_status(&daemon, &path, &mut last, "STALL", &["OK", "WARN"], 15.0);
    let stall_after = stall_at - held;
    assert!(
        (WINDOW - POLL..=WINDOW + 2.0 * POLL + SLACK).contains(&stall_after),
        "STALL {stall_after:.2} s after the last commit"
    );
    while last.at < held + 8.0 {
        last = next_reading(&daemon, &path, last.at);
        assert_eq!(last.status(), "STALL", "{:?}", last.json);
        // Alive and in the group while stalled (tansu answers DescribeGroups).
        let g = last.group();
        assert_eq!(
            (g["state"].as_str(), g["members"].as_u64()),
            (Some("Stable"), Some(1))
        );
    }

    // It resumes and catches up: OK at the first poll after its commit (the
    // committed offset moves and the lag falls).
    mode.store(0, Ordering::Relaxed);
    let resumed = now_s();
    let ok_at = wait_status(&daemon, &path, &mut last, "OK", &["STALL"], 5.0);
    let ok_after = ok_at - resumed;
    assert!(ok_after <= 2.0 * POLL, "OK {ok_after:.2} s after resuming");
    let steady_from = last.at;
    while last.at < steady_from + 2.0 {
        last = next_reading(&daemon, &path, last.at);
        assert_eq!(last.status(), "OK", "{:?}", last.json);
    }

    // Killed: STALL after the window, then STOP once committed has not moved
    // for stop_after: the first poll more than stop_after after the first poll
    // that saw the last commit, so within (stop_after, stop_after + 2 polls].
    member.kill();
    let (died, _) = member.last_commit().unwrap();
    wait_status(&daemon, &path, &mut last, "STALL", &["OK", "WARN"], 15.0);
    let stop_at = wait_status(&daemon, &path, &mut last, "STOP", &["STALL"], 15.0);
    let stop_after = stop_at - died;
    // The killed member left: nobody in the group.
    let g = last.group();
    assert_eq!(
        (g["state"].as_str(), g["members"].as_u64()),
        (Some("Empty"), Some(0))
    );
    assert!(
        (STOP_AFTER..=STOP_AFTER + 2.0 * POLL + SLACK).contains(&stop_after),
        "STOP {stop_after:.2} s after the last commit"
    );
    let g = format!("group=\"{group}\"");
    let body = daemon.metrics();
    assert_eq!(
        metric(&body, "lagwatch_group_status", &[&g, "status=\"STOP\""]),
        Some(1.0)
    );
    assert_eq!(
        metric(&body, "lagwatch_group_status_code", &[&g]),
        Some(4.0)
    );

    // A new member of the group resumes from the committed offset: OK again.
    let restarted = now_s();
    let _member = Member::start(&b, &group, &topic, Duration::ZERO, false, keep_up(&mode));
    let back_at = wait_status(&daemon, &path, &mut last, "OK", &["STOP"], 20.0);
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): status: STALL {stall_after:.2} s after the last commit (window {WINDOW} s); OK {ok_after:.2} s after resuming; STOP {stop_after:.2} s after the last commit (stop_after {STOP_AFTER} s); OK {:.2} s after a new member started (join included)",
        back_at - restarted
    );
}

#[test]
fn jetstream_time_lag_and_rates_match_the_truth_within_a_poll_and_five_percent() {
    let clock = Instant::now();
    // One stream, 30 msg/s; two pull consumers: `delayed` acks every message
    // once it is D old (time lag D, consumes 30/s), `slow` acks 20 msg/s
    // (lag grows 10/s). JetStream's produce rate is consume + lag growth.
    const D: f64 = 6.0;
    const PRODUCE: f64 = 30.0;
    const SLOW: f64 = 20.0;
    let nats = Nats::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stream_name = name("ACC").replace('-', "_");
    let subject = format!("{stream_name}.events");
    let (js, stream) = rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let stream = js
            .create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![format!("{stream_name}.>")],
                ..Default::default()
            })
            .await
            .unwrap();
        for durable in ["delayed", "slow"] {
            stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(durable.into()),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        (js, stream)
    });
    let daemon = Daemon::start(&nats_config(&nats.url(), "  window: 10s\n  min_span: 5s\n"));
    let (delayed, slow) = ("/api/v1/groups/nats/delayed", "/api/v1/groups/nats/slow");
    let mut last_d = next_reading(&daemon, delayed, 0.0);

    let written = Written::new(1);
    let stop = Arc::new(AtomicBool::new(false));
    let started = now_s();
    let publisher = rt.spawn(publish_steady(
        js,
        subject,
        PRODUCE,
        written.clone(),
        stop.clone(),
    ));
    let w = written.clone();
    rt.spawn(ack_up_to(
        stream.clone(),
        "delayed".into(),
        written.clone(),
        move |now| w.first_after(now - D),
        stop.clone(),
    ));
    // The slow one starts a second later so that it never reaches head.
    rt.spawn(ack_up_to(
        stream,
        "slow".into(),
        written.clone(),
        move |now| 1 + ((now - started - 1.0).max(0.0) * SLOW).floor() as i64,
        stop.clone(),
    ));

    // Time lag of `delayed` against the truth at every poll, and against D
    // once it acks steadily; its rates once the window holds only that.
    let (mut worst, mut steady, mut rates) = (0.0_f64, Vec::new(), Vec::new());
    while last_d.at < started + D + 10.0 + POLL + 6.0 {
        last_d = next_reading(&daemon, delayed, last_d.at);
        let (c, h) = (last_d.committed(), last_d.latest());
        let truth = written.true_age(c, h, last_d.at);
        let got = last_d
            .lag_seconds()
            .unwrap_or_else(|| panic!("unknown: {:?}", last_d.json));
        assert!(
            (got - truth).abs() <= POLL + SLACK,
            "reported {got:.3} s, true age {truth:.3} s (ack floor + 1 = {c}, head {h})"
        );
        worst = worst.max((got - truth).abs());
        if last_d.at > started + D + 3.0 {
            assert!(
                (got - D).abs() <= POLL + SLACK,
                "steady: {got:.3} s vs {D} s"
            );
            steady.push(got);
        }
        if last_d.at > started + D + 10.0 + POLL {
            let (p, c) = (
                last_d.rate("produce_rate").unwrap(),
                last_d.rate("consume_rate").unwrap(),
            );
            assert!(
                (p - PRODUCE).abs() <= 0.05 * PRODUCE,
                "delayed produce {p:.3}"
            );
            assert!(
                (c - PRODUCE).abs() <= 0.05 * PRODUCE,
                "delayed consume {c:.3}"
            );
            rates.push((p, c));
        }
    }
    // `slow`: its rates, from the same daemon, in steady state by now.
    let mut last_s = next_reading(&daemon, slow, 0.0);
    let mut slow_rates = Vec::new();
    for _ in 0..5 {
        last_s = next_reading(&daemon, slow, last_s.at);
        let (p, c, g) = (
            last_s.rate("produce_rate").unwrap(),
            last_s.rate("consume_rate").unwrap(),
            last_s.rate("lag_growth").unwrap(),
        );
        assert!((p - PRODUCE).abs() <= 0.05 * PRODUCE, "slow produce {p:.3}");
        assert!((c - SLOW).abs() <= 0.05 * SLOW, "slow consume {c:.3}");
        assert!(
            (g - (PRODUCE - SLOW)).abs() <= 0.05 * PRODUCE,
            "slow lag growth {g:.3}"
        );
        slow_rates.push((p, c, g));
    }
    stop.store(true, Ordering::Relaxed);
    let late = rt.block_on(publisher).unwrap();
    assert!(
        late < 0.25,
        "the publisher kept its schedule (late by {late:.3} s)"
    );
    assert!(
        steady.len() >= 8 && rates.len() >= 4,
        "{steady:?} {rates:?}"
    );
    let span = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::MAX, f64::min),
            v.iter().copied().fold(f64::MIN, f64::max),
        )
    };
    let s = span(&steady);
    let dp = span(&rates.iter().map(|r| r.0).collect::<Vec<_>>());
    let dc = span(&rates.iter().map(|r| r.1).collect::<Vec<_>>());
    let sp = span(&slow_rates.iter().map(|r| r.0).collect::<Vec<_>>());
    let sc = span(&slow_rates.iter().map(|r| r.1).collect::<Vec<_>>());
    let sg = span(&slow_rates.iter().map(|r| r.2).collect::<Vec<_>>());
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): jetstream: delayed {D} s: time lag {:.3}..{:.3} s over {} polls, worst |reported - true age| {worst:.3} s; rates produce {:.3}..{:.3} consume {:.3}..{:.3} (30); slow: produce {:.3}..{:.3} (30) consume {:.3}..{:.3} (20) growth {:.3}..{:.3} (10)",
        s.0, s.1, steady.len(), dp.0, dp.1, dc.0, dc.1, sp.0, sp.1, sc.0, sc.1, sg.0, sg.1
    );
}

//! Fault injection on real processes: brokers paused (SIGSTOP) past the
//! request timeout, one group's reads swallowed by a Kafka-aware proxy,
//! lagwatch killed (SIGKILL) with an incident open, tasks made to panic, and
//! two replicas behind one Alertmanager. Each checks a guarantee of
//! docs/operations.md, "Failure semantics": never a false all-clear, stale
//! data marked stale, nothing lost across restarts, a process that dies
//! loudly rather than lies quietly.
//!
//! (Brokers killed and restarted are in tests/kafka.rs and tests/jetstream.rs;
//! a webhook receiver down past the retry budget in tests/alerts.rs.)
//!
//! Run with `-- --nocapture` to see the measured times (`fault:` lines).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use common::runtime;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::capture::Capture;
use common::proxy::{KafkaProxy, OFFSET_FETCH};
use common::truth::{
    commit_as_admin, metric, name, stream_with_idle_consumer, write_records, Written,
};
use common::{Alertmanager, Daemon, Nats, Tansu};
use serde_json::Value;

/// A Kafka source `k` polled every second with a 1 s request timeout, plus
/// `extra` (more top-level sections).
fn kafka_daemon_config(bootstrap: &str, extra: &str) -> String {
    format!(
        "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 3s\nsources:\n  - name: k\n    kafka:\n      bootstrap_servers: [\"{bootstrap}\"]\n      poll_interval: 1s\n      request_timeout: 1s\n{extra}"
    )
}

/// A webhook receiver `hook` at `url` and a rule firing at once on lag > 12,
/// resolving after 1 s clear.
fn alerts_to(url: &str) -> String {
    format!(
        "alerts:\n  defaults:\n    retry_backoff: 100ms\n    retry_backoff_max: 500ms\n    flush_timeout: 1s\n  receivers:\n    - name: hook\n      webhook:\n        url: \"{url}\"\n  rules:\n    - name: lagging\n      condition: lag_messages\n      threshold: 12\n      for: 0s\n      resolve_after: 1s\n      receivers: [hook]\n"
    )
}

/// `(eventType, group, incidentId)` of every webhook captured.
fn events(cap: &Capture) -> Vec<(String, String, String)> {
    cap.requests()
        .iter()
        .map(|c| {
            let p = c.json();
            (
                p["eventType"].as_str().unwrap_or("").to_string(),
                p["data"]["group"].as_str().unwrap_or("").to_string(),
                p["data"]["incidentId"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn group_json(d: &Daemon, source: &str, group: &str) -> Value {
    try_group_json(d, source, group).unwrap_or_else(|| panic!("no group {group} on {source}"))
}

/// The group, once its source has reported it.
fn try_group_json(d: &Daemon, source: &str, group: &str) -> Option<Value> {
    let (status, body) = d.get(&format!("/api/v1/groups/{source}/{group}"));
    (status == 200).then(|| serde_json::from_str::<Value>(&body).unwrap()["group"].clone())
}

fn value(body: &str, family: &str, labels: &[&str]) -> Option<f64> {
    metric(body, family, labels)
}

/// Scrapes /metrics, failing if it takes longer than a second.
fn scrape_fast(d: &Daemon) -> (String, Duration) {
    let t = Instant::now();
    let body = d.metrics();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "/metrics took {took:?} during the fault"
    );
    (body, took)
}

#[test]
fn a_paused_kafka_broker_is_down_within_a_poll_stale_meanwhile_and_back_within_two() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("paused"), name("paused-g"));
    tansu.create_topic(&topic, 1);
    write_records(&b, &topic, 20, &Written::new(0));
    commit_as_admin(&b, &group, &topic, 5);
    let daemon = Daemon::start(&kafka_daemon_config(&b, ""));
    let g = format!("group=\"{group}\"");
    let lag = |body: &str| value(body, "lagwatch_group_lag_messages", &[&g]);
    let stale = |body: &str| value(body, "lagwatch_group_stale_seconds", &[&g]);
    let up = |body: &str| value(body, "lagwatch_source_up", &["source=\"k\""]);
    common::wait_until("lag 15, fresh", Duration::from_secs(20), || {
        let body = daemon.metrics();
        lag(&body) == Some(15.0) && stale(&body) == Some(0.0)
    });

    // Paused past the request timeout: the broker accepts nothing, answers
    // nothing. Down within one poll deadline (interval 1 s + timeout 1 s)
    // plus the abandon grace (2 s) and a loaded machine's slack.
    tansu.pause();
    let paused = Instant::now();
    common::wait_until("source down", Duration::from_secs(10), || {
        up(&scrape_fast(&daemon).0) == Some(0.0)
    });
    let down_after = paused.elapsed();
    let mut slowest = Duration::ZERO;
    for _ in 0..4 {
        let (body, took) = scrape_fast(&daemon);
        slowest = slowest.max(took);
        assert_eq!(lag(&body), Some(15.0), "the last known lag is kept");
        assert!(
            stale(&body).is_some_and(|s| s > 0.0),
            "and marked stale:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let api = group_json(&daemon, "k", &group);
    assert_eq!(api["stale"], true, "{api}");
    assert!(api["stale_seconds"].as_f64().unwrap() > 0.0, "{api}");

    tansu.resume();
    let resumed = Instant::now();
    common::wait_until("fresh again", Duration::from_secs(15), || {
        let body = daemon.metrics();
        up(&body) == Some(1.0) && stale(&body) == Some(0.0)
    });
    let back_after = resumed.elapsed();
    // The truth after recovery: the test commits 12, lag 8.
    commit_as_admin(&b, &group, &topic, 12);
    common::wait_until("lag 8 after recovery", Duration::from_secs(10), || {
        lag(&daemon.metrics()) == Some(8.0)
    });
    eprintln!(
        "fault: tansu paused: down seen after {down_after:.1?}, stale kept meanwhile (slowest scrape {slowest:.0?}); resumed: fresh after {back_after:.1?}"
    );
}

#[test]
fn a_paused_nats_server_is_down_within_a_poll_stale_meanwhile_and_back() {
    let nats = Nats::start();
    let rt = runtime();
    let stream_name = name("PAUSED").replace('-', "_");
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        stream_with_idle_consumer(&js, &stream_name, "slow", 7, &Written::new(1)).await;
    });
    let daemon = Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 3s\nsources:\n  - name: nats\n    jetstream:\n      servers: [\"{}\"]\n      poll_interval: 1s\n      request_timeout: 1s\n",
        nats.url()
    ));
    let labels = [
        "group=\"slow\"".to_string(),
        format!("topic=\"{stream_name}\""),
    ];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let lag = |body: &str| value(body, "lagwatch_group_lag_messages", &labels);
    let stale = |body: &str| value(body, "lagwatch_group_stale_seconds", &labels);
    let up = |body: &str| value(body, "lagwatch_source_up", &["source=\"nats\""]);
    common::wait_until("lag 7, fresh", Duration::from_secs(20), || {
        let body = daemon.metrics();
        lag(&body) == Some(7.0) && stale(&body) == Some(0.0)
    });
    nats.pause();
    let paused = Instant::now();
    common::wait_until("source down", Duration::from_secs(10), || {
        up(&scrape_fast(&daemon).0) == Some(0.0)
    });
    let down_after = paused.elapsed();
    let (body, _) = scrape_fast(&daemon);
    assert_eq!(lag(&body), Some(7.0), "kept");
    assert!(stale(&body).is_some_and(|s| s > 0.0), "stale:\n{body}");
    std::thread::sleep(Duration::from_secs(2));
    nats.resume();
    let resumed = Instant::now();
    common::wait_until("fresh again", Duration::from_secs(20), || {
        let body = daemon.metrics();
        up(&body) == Some(1.0) && stale(&body) == Some(0.0) && lag(&body) == Some(7.0)
    });
    eprintln!(
        "fault: nats-server paused: down seen after {down_after:.1?}; resumed: fresh after {:.1?}",
        resumed.elapsed()
    );
}

#[test]
fn one_groups_failing_reads_mark_it_stale_and_never_resolve_its_incident() {
    // A proxy in front of tansu swallows the OffsetFetch requests of group A
    // only: A's reads time out while B's succeed on the same connection.
    let rt = runtime();
    let cap = Capture::start(&rt);
    let proxy_port = common::free_port();
    let tansu = Tansu::start_behind(proxy_port);
    let proxy = KafkaProxy::start(proxy_port, tansu.port);
    let b = tansu.bootstrap();
    let topic = name("shared");
    let (a, other) = (name("stale-a"), name("fresh-b"));
    tansu.create_topic(&topic, 1);
    write_records(&b, &topic, 20, &Written::new(0));
    commit_as_admin(&b, &a, &topic, 5); // lag 15: fires
    commit_as_admin(&b, &other, &topic, 10); // lag 10: does not
    let daemon = Daemon::start(&kafka_daemon_config(&b, &alerts_to(&cap.url("/hook"))));
    cap.wait_for(1, Duration::from_secs(20));
    let fired = events(&cap);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        (fired[0].0.as_str(), fired[0].1.as_str()),
        ("LagAlertFired", a.as_str())
    );
    let incident = fired[0].2.clone();

    proxy.swallow(OFFSET_FETCH, &a);
    let t = Instant::now();
    common::wait_until("A stale", Duration::from_secs(15), || {
        try_group_json(&daemon, "k", &a).is_some_and(|g| g["stale"] == true)
    });
    let stale_after = t.elapsed();
    // Longer than gone_after (3 polls): still there, stale, same values, its
    // incident open and unresolved; B fresh all along.
    std::thread::sleep(Duration::from_secs(5));
    let ga = group_json(&daemon, "k", &a);
    assert_eq!(ga["stale"], true, "{ga}");
    assert_eq!(ga["lag"], 15, "{ga}");
    assert_eq!(ga["incidents"][0]["id"], incident, "{ga}");
    let gb = group_json(&daemon, "k", &other);
    assert_eq!(
        (gb["stale"].clone(), gb["lag"].clone()),
        (Value::from(false), Value::from(10)),
        "{gb}"
    );
    let body = daemon.metrics();
    assert!(
        value(
            &body,
            "lagwatch_poll_errors_total",
            &["kind=\"offset_fetch\""]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "the failed reads are counted:\n{body}"
    );
    assert!(proxy.swallowed() >= 2);

    proxy.release();
    common::wait_until("A fresh", Duration::from_secs(15), || {
        group_json(&daemon, "k", &a)["stale"] == false
    });
    std::thread::sleep(Duration::from_secs(2));
    let all = events(&cap);
    assert_eq!(
        all.len(),
        1,
        "no resolve and no second incident while A could not be read: {all:?}"
    );
    assert_eq!(group_json(&daemon, "k", &a)["incidents"][0]["id"], incident);
    eprintln!(
        "fault: one group's OffsetFetch swallowed: stale after {stale_after:.1?}, kept past gone_after, its incident held, the other group fresh"
    );
}

#[test]
fn a_killed_lagwatch_resumes_its_open_incident_and_resolves_it_with_the_same_id() {
    let rt = runtime();
    let cap = Capture::start(&rt);
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("state.json");
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("killed"), name("killed-g"));
    tansu.create_topic(&topic, 1);
    write_records(&b, &topic, 20, &Written::new(0));
    commit_as_admin(&b, &group, &topic, 5);
    let config = kafka_daemon_config(
        &b,
        &format!(
            "{}state:\n  path: \"{}\"\n",
            alerts_to(&cap.url("/hook")),
            path.display()
        ),
    );
    let mut daemon = Daemon::start(&config);
    cap.wait_for(1, Duration::from_secs(20));
    let incident = events(&cap)[0].2.clone();
    common::wait_until(
        "the incident in the state file",
        Duration::from_secs(10),
        || std::fs::read_to_string(&path).is_ok_and(|s| s.contains(&incident)),
    );
    // No shutdown, no flush, no final write.
    daemon.kill();
    commit_as_admin(&b, &group, &topic, 20);
    let restarted = Daemon::start(&config);
    let got = cap.wait_for(2, Duration::from_secs(20));
    let all = events(&cap);
    assert_eq!(
        all.iter()
            .map(|e| (e.0.as_str(), e.2.as_str()))
            .collect::<Vec<_>>(),
        [
            ("LagAlertFired", incident.as_str()),
            ("LagAlertResolved", incident.as_str())
        ],
        "the same incident resolves after the restart; no new one: {all:?}"
    );
    assert_eq!(got[1].json()["data"]["resolution"], "condition_cleared");
    assert!(
        restarted
            .logs()
            .contains("incident resumed from the state file"),
        "{}",
        restarted.logs()
    );
    eprintln!(
        "fault: SIGKILL with incident {incident} open: resumed and resolved under the same id"
    );
}

#[test]
fn a_panicking_source_task_is_restarted_and_counted() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("panic"), name("panic-g"));
    tansu.create_topic(&topic, 1);
    write_records(&b, &topic, 9, &Written::new(0));
    commit_as_admin(&b, &group, &topic, 4);
    let daemon = Daemon::start_with_env(
        &kafka_daemon_config(&b, ""),
        &[("LAGWATCH_FAULT", "panic-source=k:2")],
    );
    common::wait_until("two restarts", Duration::from_secs(30), || {
        value(
            &daemon.metrics(),
            "lagwatch_task_restarts_total",
            &["source=\"k\""],
        ) == Some(2.0)
    });
    let g = format!("group=\"{group}\"");
    common::wait_until("the source polling again", Duration::from_secs(20), || {
        let body = daemon.metrics();
        value(&body, "lagwatch_source_up", &["source=\"k\""]) == Some(1.0)
            && value(&body, "lagwatch_group_lag_messages", &[&g]) == Some(5.0)
            && value(&body, "lagwatch_group_stale_seconds", &[&g]) == Some(0.0)
    });
    assert_eq!(daemon.get("/healthz").0, 200);
    let logs = daemon.logs();
    assert!(
        logs.contains("source task panicked; restarting it"),
        "{logs}"
    );
}

#[test]
fn a_panicking_engine_fails_the_health_check() {
    let tansu = Tansu::start();
    let daemon = Daemon::start_with_env(
        &kafka_daemon_config(&tansu.bootstrap(), ""),
        &[("LAGWATCH_FAULT", "panic-engine=3")],
    );
    common::wait_until("/healthz 503", Duration::from_secs(30), || {
        daemon.get("/healthz").0 == 503
    });
    let (_, body) = daemon.get("/healthz");
    assert!(body.contains("the engine task is not running"), "{body}");
    assert_eq!(daemon.get("/readyz").0, 503);
}

#[test]
fn two_replicas_behind_one_alertmanager_notify_once() {
    // Both replicas watch the same cluster and send to one Alertmanager, which
    // de-duplicates identical alerts: the receiver behind it gets one firing
    // and one resolved notification for the incident, not two of each.
    let rt = runtime();
    let cap = Capture::start(&rt);
    let am = Alertmanager::start_routing_to(&cap.url("/am"));
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("ha"), name("ha-g"));
    tansu.create_topic(&topic, 1);
    write_records(&b, &topic, 20, &Written::new(0));
    commit_as_admin(&b, &group, &topic, 5);
    let config = kafka_daemon_config(
        &b,
        &format!(
            "alerts:\n  defaults:\n    flush_timeout: 1s\n  receivers:\n    - name: am\n      alertmanager:\n        url: \"{}\"\n  rules:\n    - name: lagging\n      condition: lag_messages\n      threshold: 12\n      for: 0s\n      resolve_after: 1s\n      receivers: [am]\n",
            am.url()
        ),
    );
    let one = Daemon::start(&config);
    let two = Daemon::start(&config);
    for d in [&one, &two] {
        common::wait_until("the incident open", Duration::from_secs(20), || {
            try_group_json(d, "k", &group)
                .is_some_and(|g| g["incidents"].as_array().is_some_and(|i| !i.is_empty()))
        });
    }
    cap.wait_for(1, Duration::from_secs(20));
    // Several group_intervals later: still one.
    std::thread::sleep(Duration::from_secs(4));
    let firing = cap.requests();
    assert_eq!(
        firing.len(),
        1,
        "{:?}",
        firing.iter().map(|c| c.json()).collect::<Vec<_>>()
    );
    let n = firing[0].json();
    assert_eq!(n["status"], "firing");
    assert_eq!(n["alerts"].as_array().map(Vec::len), Some(1), "{n}");

    commit_as_admin(&b, &group, &topic, 20);
    let got = cap.wait_for(2, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let all = cap.requests();
    assert_eq!(
        all.len(),
        2,
        "{:?}",
        all.iter().map(|c| c.json()).collect::<Vec<_>>()
    );
    assert_eq!(got[1].json()["status"], "resolved");
    eprintln!("fault: two replicas, one Alertmanager: one firing and one resolved notification at the receiver");
}

//! End to end: the lagwatch binary against a real tansu and a real nats-server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::time::Duration;

use common::{Daemon, Nats, Tansu};

fn config(tansu: &Tansu, nats: &Nats) -> String {
    format!(
        r#"
http:
  listen: 127.0.0.1:0
poll_interval: 1s
request_timeout: 2s
shutdown_timeout: 5s
sources:
  - name: kafka-test
    kafka:
      bootstrap_servers: ["{}"]
  - name: nats-test
    jetstream:
      servers: ["{}"]
"#,
        tansu.bootstrap(),
        nats.url()
    )
}

const KAFKA_UP: &str = r#"lagwatch_source_up{source="kafka-test",system="kafka"}"#;
const NATS_UP: &str = r#"lagwatch_source_up{source="nats-test",system="jetstream"}"#;

#[test]
fn the_daemon_becomes_ready_reports_sources_up_and_survives_a_broker_going_away() {
    let mut tansu = Tansu::start();
    let nats = Nats::start();
    let mut daemon = Daemon::start(&config(&tansu, &nats));

    common::wait_until("/readyz to answer 200", Duration::from_secs(20), || {
        daemon.get("/readyz").0 == 200
    });
    daemon.wait_metric(KAFKA_UP, "1", Duration::from_secs(20));
    daemon.wait_metric(NATS_UP, "1", Duration::from_secs(20));
    let body = daemon.metrics();
    // The commit the binary was built from is this checkout's (the test reads
    // it itself), the rustc is the one that built the tests.
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".to_string(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        });
    let info = body
        .lines()
        .find(|l| l.starts_with("lagwatch_build_info{"))
        .unwrap_or_else(|| panic!("no lagwatch_build_info in:\n{body}"));
    assert!(
        info.contains(&format!("commit=\"{commit}\""))
            && info.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && info.contains("rustc=\"1.")
            && info.ends_with("} 1"),
        "{info}"
    );
    assert_process_metrics(&body, daemon.pid().unwrap());
    assert!(body.contains("# TYPE lagwatch_poll_duration_seconds histogram"));

    tansu.stop();
    daemon.wait_metric(KAFKA_UP, "0", Duration::from_secs(15));
    // The other source and the HTTP server are unaffected.
    assert_eq!(
        common::metric_value(&daemon.metrics(), NATS_UP).as_deref(),
        Some("1")
    );
    assert_eq!(daemon.get("/healthz").0, 200);
    let body = daemon.metrics();
    let errors: f64 = common::metric_value(
        &body,
        r#"lagwatch_poll_errors_total{kind="metadata",source="kafka-test",system="kafka"}"#,
    )
    .and_then(|v| v.parse().ok())
    .unwrap_or(0.0)
        + common::metric_value(
            &body,
            r#"lagwatch_poll_errors_total{kind="timeout",source="kafka-test",system="kafka"}"#,
        )
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
        // The Kafka source classifies an unreachable broker as `connect`.
        + common::metric_value(
            &body,
            r#"lagwatch_poll_errors_total{kind="connect",source="kafka-test",system="kafka"}"#,
        )
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "a failed poll is counted:\n{body}");

    tansu.restart();
    daemon.wait_metric(KAFKA_UP, "1", Duration::from_secs(20));

    let status = daemon
        .terminate(Duration::from_secs(10))
        .expect("lagwatch exits within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let logs = daemon.logs();
    let stop = logs.find("stopping sources").expect("shutdown logged");
    let done = logs.rfind("stopped").expect("end of shutdown logged");
    assert!(stop < done, "{logs}");
}

/// The standard process metrics agree with what /proc says of the daemon's
/// process, read by the test itself.
fn assert_process_metrics(body: &str, pid: u32) {
    let value = |name: &str| -> f64 {
        common::metric_value(body, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{body}"))
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    let rss = value("process_resident_memory_bytes");
    // Read a moment apart: within a factor of two.
    assert!(
        rss > rss_kb * 1024.0 / 2.0 && rss < rss_kb * 1024.0 * 2.0,
        "process_resident_memory_bytes {rss}, /proc says {rss_kb} kB"
    );
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    let open = value("process_open_fds");
    assert!(open >= 3.0 && (open - fds).abs() < 50.0, "{open} vs {fds}");
    assert!(value("process_max_fds") >= open);
    assert!(value("process_threads") >= 2.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 600.0,
        "started {started}, now {now}"
    );
    assert!(body.contains("# TYPE process_cpu_seconds_total counter"));
    assert!(common::promtool_check_metrics(body).is_empty());
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405() {
    let nats = Nats::start();
    let daemon = Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\nsources:\n  - name: n\n    jetstream:\n      servers: [\"{}\"]\n",
        nats.url()
    ));
    assert_eq!(daemon.get("/nope").0, 404);
    assert_eq!(daemon.get("/healthz"), (200, "ok\n".to_string()));
    let mut s = std::net::TcpStream::connect(&daemon.addr).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
}

#[test]
fn readyz_waits_for_the_first_poll_of_every_source() {
    // A long poll interval and a broker port nothing listens on: the first
    // poll starts at once but can only finish by failing after its timeout.
    let port = common::free_port();
    let daemon = Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\nrequest_timeout: 3s\nsources:\n  - name: slow\n    kafka:\n      bootstrap_servers: [\"127.0.0.1:{port}\"]\n      poll_interval: 5m\n"
    ));
    let (status, body) = daemon.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("slow"), "{body}");
    common::wait_until(
        "/readyz after the failed first poll",
        Duration::from_secs(20),
        || daemon.get("/readyz").0 == 200,
    );
    daemon.wait_metric(
        r#"lagwatch_source_up{source="slow",system="kafka"}"#,
        "0",
        Duration::from_secs(1),
    );
}

#[tokio::test]
async fn metrics_are_gzipped_when_the_scraper_asks_and_equal_the_plain_body() {
    let nats = Nats::start();
    let daemon = Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\npoll_interval: 1s\nsources:\n  - name: n\n    jetstream:\n      servers: [\"{}\"]\n",
        nats.url()
    ));
    daemon.wait_metric(
        r#"lagwatch_source_up{source="n",system="jetstream"}"#,
        "1",
        Duration::from_secs(10),
    );
    let client = reqwest::Client::new();
    let url = format!("http://{}/metrics", daemon.addr);
    // Two scrapes of the same snapshot: poll every 1 s, so retry until equal.
    for _ in 0..20 {
        let plain = client.get(&url).send().await.unwrap();
        assert!(plain.headers().get("content-encoding").is_none());
        let plain = plain.text().await.unwrap();
        let gz = client
            .get(&url)
            .header("accept-encoding", "gzip, deflate")
            .send()
            .await
            .unwrap();
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        let bytes = gz.bytes().await.unwrap();
        let mut text = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        assert!(bytes.len() < plain.len(), "compressed is smaller");
        if text == plain {
            return;
        }
    }
    panic!("gzip body never matched the plain body");
}

/// `sources[].labels` are on every series of their source (its groups, its
/// compatibility names, its own poll metrics) and on no other source's; and
/// the group's state is a state set agreeing with lagwatch_group_info.
#[test]
fn static_labels_are_on_every_series_of_their_source_only_and_the_group_state_is_a_state_set() {
    let tansu = Tansu::start();
    let nats = Nats::start();
    let topic = common::truth::name("orders");
    tansu.create_topic(&topic, 2);
    let group = common::truth::name("billing");
    common::truth::commit_partitions(&tansu.bootstrap(), &group, &topic, &[0, 0]);
    common::truth::produce_to(&tansu.bootstrap(), &topic, &[3, 4]);
    let daemon = Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\nmetrics:\n  granularity: partition\n  kafka_lag_exporter_compat: true\nsources:\n  - name: kafka-test\n    labels: {{env: prod, dc: eu1}}\n    kafka:\n      bootstrap_servers: [\"{}\"]\n      poll_interval: 1s\n  - name: nats-test\n    jetstream:\n      servers: [\"{}\"]\n      poll_interval: 1s\n",
        tansu.bootstrap(),
        nats.url()
    ));
    common::wait_until("the group's lag of 7", Duration::from_secs(30), || {
        daemon.metrics().lines().any(|l| {
            l.starts_with("lagwatch_group_lag_messages{")
                && l.contains(&format!("group=\"{group}\""))
                && l.ends_with(" 7")
        })
    });
    let body = daemon.metrics();
    let series: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
    let of = |source: &str, cluster: &str| -> Vec<&str> {
        series
            .iter()
            .copied()
            .filter(|l| {
                l.contains(&format!("source=\"{source}\""))
                    || l.contains(&format!("cluster_name=\"{cluster}\""))
            })
            .collect()
    };
    let kafka = of("kafka-test", "kafka-test");
    for family in [
        "lagwatch_source_up{",
        "lagwatch_poll_errors_total{",
        "lagwatch_group_lag_messages{",
        "lagwatch_partition_lag_messages{",
        "lagwatch_series{",
        "kafka_consumergroup_group_lag{",
    ] {
        assert!(
            kafka.iter().any(|l| l.starts_with(family)),
            "no {family} series of kafka-test in:\n{body}"
        );
    }
    for l in &kafka {
        assert!(
            l.contains("env=\"prod\"") && l.contains("dc=\"eu1\""),
            "a series of kafka-test without its labels: {l}"
        );
    }
    let other = of("nats-test", "nats-test");
    assert!(!other.is_empty());
    for l in other {
        assert!(
            !l.contains("env=") && !l.contains("dc="),
            "nats-test's series carry kafka-test's labels: {l}"
        );
    }
    // The group's state as a state set: exactly one state at 1, the one
    // lagwatch_group_info names (a group with commits and no members: Empty).
    let of_group = |family: &str| -> Vec<&str> {
        kafka
            .iter()
            .copied()
            .filter(|l| l.starts_with(family) && l.contains(&format!("group=\"{group}\"")))
            .collect()
    };
    let info = of_group("lagwatch_group_info{");
    assert_eq!(info.len(), 1, "{info:?}");
    let state = info[0]
        .split("state=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    assert_eq!(state, "Empty", "{info:?}");
    let set = of_group("lagwatch_group_state{");
    assert_eq!(
        set.len(),
        8,
        "one series per Kafka state and unknown: {set:?}"
    );
    let on: Vec<&&str> = set.iter().filter(|l| l.ends_with(" 1")).collect();
    assert_eq!(on.len(), 1, "{set:?}");
    assert!(on[0].contains(&format!("state=\"{state}\"")), "{on:?}");
    assert_eq!(common::promtool_check_metrics(&body), "");
}

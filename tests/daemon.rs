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
    assert!(
        body.contains(&format!(
            "lagwatch_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
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

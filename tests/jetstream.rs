//! The JetStream source against a real nats-server: exact lag and its parts,
//! equal to the server's own /jsz monitoring answer; auth; a server restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use common::{Daemon, Nats};
use futures::StreamExt;
use lagwatch::config::{JetstreamSettings, SourceKind, Timing};
use lagwatch::model::{ErrorKind, SourceId};
use lagwatch::source::jetstream::{JetstreamPoller, EPHEMERAL_NAME};
use lagwatch::source::Poller;

/// (num_pending, num_ack_pending, num_redelivered, delivered.stream_seq, ack_floor.stream_seq)
type Parts = (u64, u64, u64, u64, u64);

async fn publish(js: &jetstream::Context, subject: &str, n: usize) {
    for i in 0..n {
        js.publish(subject.to_string(), format!("event {i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// Fetches `fetch` messages and double-acks (server-confirmed) the first `ack`.
async fn consume(stream: &stream::Stream, name: &str, fetch: usize, ack: usize) {
    let c: consumer::PullConsumer = stream.get_consumer(name).await.unwrap();
    let mut msgs = c
        .fetch()
        .max_messages(fetch)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut i = 0;
    while let Some(m) = msgs.next().await {
        let m = m.unwrap();
        if i < ack {
            m.double_ack().await.unwrap();
        }
        i += 1;
    }
    assert_eq!(i, fetch, "fetched {i} of {fetch} from {name}");
}

/// Builds: ORDERS (limits, 20 messages: 12 us, 8 eu) with a pull consumer that
/// fetched 5 and acked 3, an unbound push consumer, a filtered pull consumer
/// (eu only), and an ephemeral one; JOBS (work queue, 6 messages) with a pull
/// consumer that acked 4; EVENTS (interest, 3 messages) with one pull consumer.
async fn fixture(nats: &Nats) -> jetstream::Context {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let orders = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["ORDERS.*".into()],
            max_messages: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    orders
        .create_consumer(consumer::pull::Config {
            durable_name: Some("billing".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    orders
        .create_consumer(consumer::push::Config {
            durable_name: Some("audit".into()),
            deliver_subject: "deliver.audit".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    orders
        .create_consumer(consumer::pull::Config {
            durable_name: Some("eu-only".into()),
            filter_subject: "ORDERS.eu".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    orders
        .create_consumer(consumer::pull::Config {
            inactive_threshold: Duration::from_secs(300),
            ..Default::default()
        })
        .await
        .unwrap();
    let jobs = js
        .create_stream(stream::Config {
            name: "JOBS".into(),
            subjects: vec!["jobs.>".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await
        .unwrap();
    jobs.create_consumer(consumer::pull::Config {
        durable_name: Some("workers".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let events = js
        .create_stream(stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["events.>".into()],
            retention: stream::RetentionPolicy::Interest,
            ..Default::default()
        })
        .await
        .unwrap();
    events
        .create_consumer(consumer::pull::Config {
            durable_name: Some("indexer".into()),
            ..Default::default()
        })
        .await
        .unwrap();

    publish(&js, "ORDERS.us", 12).await;
    publish(&js, "ORDERS.eu", 8).await;
    publish(&js, "jobs.resize", 6).await;
    publish(&js, "events.click", 3).await;
    consume(&orders, "billing", 5, 3).await;
    consume(&orders, "eu-only", 2, 2).await;
    consume(&jobs, "workers", 4, 4).await;
    js
}

/// What the server's own monitoring endpoint says, per (stream, consumer).
fn jsz(nats: &Nats) -> BTreeMap<(String, String), Parts> {
    let (status, body) = common::http_get(
        &nats.monitor(),
        "/jsz?accounts=true&streams=true&consumers=true",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = BTreeMap::new();
    for acc in v["account_details"].as_array().unwrap() {
        for s in acc["stream_detail"].as_array().into_iter().flatten() {
            for c in s["consumer_detail"].as_array().into_iter().flatten() {
                let n = |f: &serde_json::Value| f.as_u64().unwrap_or(0);
                out.insert(
                    (
                        c["stream_name"].as_str().unwrap().to_string(),
                        c["name"].as_str().unwrap().to_string(),
                    ),
                    (
                        n(&c["num_pending"]),
                        n(&c["num_ack_pending"]),
                        n(&c["num_redelivered"]),
                        n(&c["delivered"]["stream_seq"]),
                        n(&c["ack_floor"]["stream_seq"]),
                    ),
                );
            }
        }
    }
    out
}

fn source_config(yaml: &str) -> (JetstreamSettings, Timing) {
    let c = lagwatch::config::from_yaml("test", yaml, &|_| None).unwrap();
    match &c.sources[0].kind {
        SourceKind::Jetstream(j) => (j.clone(), c.sources[0].timing),
        SourceKind::Kafka(_) => panic!("not a JetStream source"),
    }
}

fn poller(nats_url: &str, extra: &str) -> JetstreamPoller {
    let (j, timing) = source_config(&format!(
        "request_timeout: 2s\nsources:\n  - name: js\n    jetstream:\n      servers: [\"{nats_url}\"]\n{extra}"
    ));
    JetstreamPoller::new(SourceId::new("js"), j, timing)
}

#[tokio::test]
async fn lag_and_its_parts_are_exact_and_equal_to_what_jsz_reports() {
    let nats = Nats::start();
    let _js = fixture(&nats).await;
    let mut p = poller(&nats.url(), "      ephemeral: keep\n");
    let data = p.poll().await.expect("poll succeeds");
    let truth = jsz(&nats);
    assert_eq!(truth.len(), 6, "{truth:?}");

    let mut seen = BTreeMap::new();
    for s in &data.samples {
        let j = s.jetstream.as_ref().unwrap();
        assert_eq!(
            s.lag,
            j.num_pending + j.num_ack_pending,
            "lag is KEDA's sum"
        );
        seen.insert(
            (s.key.topic.to_string(), s.key.group.group.to_string()),
            (
                j.num_pending,
                j.num_ack_pending,
                j.num_redelivered,
                j.delivered_stream_seq,
                j.ack_floor_stream_seq,
            ),
        );
    }
    assert_eq!(seen, truth, "lagwatch (left) vs /jsz (right)");

    let get = |stream: &str, c: &str| seen[&(stream.to_string(), c.to_string())];
    // billing: 20 messages, fetched 5, acked 3.
    assert_eq!(get("ORDERS", "billing"), (15, 2, 0, 5, 3));
    // audit: push, nothing delivered (unbound).
    assert_eq!(get("ORDERS", "audit").0 + get("ORDERS", "audit").1, 20);
    // eu-only: filter ORDERS.eu: 8 messages, 2 fetched and acked.
    assert_eq!(get("ORDERS", "eu-only").0, 6);
    assert_eq!(get("ORDERS", "eu-only").1, 0);
    // workers: work queue, 6 jobs, 4 acked (and removed from the stream).
    assert_eq!(get("JOBS", "workers"), (2, 0, 0, 4, 4));
    assert_eq!(get("EVENTS", "indexer"), (3, 0, 0, 0, 0));

    let audit = data
        .samples
        .iter()
        .find(|s| &*s.key.group.group == "audit")
        .unwrap();
    let parts = audit.jetstream.as_ref().unwrap();
    assert!(parts.push && !parts.push_bound);
    let jobs = data.streams.iter().find(|s| &*s.name == "JOBS").unwrap();
    assert_eq!(
        (jobs.messages, jobs.first_seq, jobs.last_seq),
        (2, 5, 6),
        "acked work-queue messages are removed"
    );
    assert_eq!(jobs.retention, "workqueue");
    let orders = data.streams.iter().find(|s| &*s.name == "ORDERS").unwrap();
    assert_eq!((orders.max_msgs, orders.messages), (10_000, 20));
}

#[tokio::test]
async fn ephemeral_consumers_are_aggregated_by_default_and_filters_apply() {
    let nats = Nats::start();
    let _js = fixture(&nats).await;
    let mut p = poller(
        &nats.url(),
        "      stream_filter:\n        deny: [\"^EVENTS$\"]\n      consumer_filter:\n        deny: [\"^audit$\"]\n",
    );
    let data = p.poll().await.unwrap();
    let mut names: Vec<String> = data
        .samples
        .iter()
        .map(|s| format!("{}/{}", s.key.topic, s.key.group.group))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "JOBS/workers".to_string(),
            format!("ORDERS/{EPHEMERAL_NAME}"),
            "ORDERS/billing".into(),
            "ORDERS/eu-only".into(),
        ]
    );
    let eph = data
        .samples
        .iter()
        .find(|s| &*s.key.group.group == EPHEMERAL_NAME)
        .unwrap();
    assert_eq!(eph.lag, 20, "the ephemeral consumer has consumed nothing");

    let mut drop = poller(&nats.url(), "      ephemeral: drop\n");
    let data = drop.poll().await.unwrap();
    assert!(data
        .samples
        .iter()
        .all(|s| &*s.key.group.group != EPHEMERAL_NAME));
}

#[tokio::test]
async fn a_server_without_jetstream_gives_a_clear_failure() {
    // A plain NATS server without -js: nobody answers the JetStream API.
    let port = common::free_port();
    let mut child = std::process::Command::new(common::require_binary("nats-server"))
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until("nats-server", Duration::from_secs(10), || {
        common::port_open(port)
    });
    let mut p = poller(&format!("nats://127.0.0.1:{port}"), "");
    let err = p.poll().await.unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    assert!(err.message.contains("is JetStream enabled"), "{err:?}");
}

#[tokio::test]
async fn wrong_credentials_fail_with_an_auth_error_that_hides_the_password() {
    let nats = Nats::start_with(&["--user", "monitor", "--pass", "right-password"]);
    let mut good = poller(
        &nats.url(),
        "      auth:\n        user: monitor\n        password: right-password\n",
    );
    good.poll().await.expect("right credentials work");
    let mut bad = poller(
        &nats.url(),
        "      auth:\n        user: monitor\n        password: wrong-password\n",
    );
    let err = bad.poll().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err:?}");
    assert!(err.message.contains("authorization"), "{err:?}");
    assert!(!err.message.contains("wrong-password"), "{err:?}");

    let tok = Nats::start_with(&["--auth", "s3cret-token"]);
    let mut good = poller(&tok.url(), "      auth:\n        token: s3cret-token\n");
    good.poll().await.expect("right token works");
    let mut bad = poller(&tok.url(), "      auth:\n        token: nope-token\n");
    let err = bad.poll().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err:?}");
    assert!(!err.message.contains("nope-token"), "{err:?}");
}

const BILLING_LAG: &str = r#"lagwatch_group_lag_messages{source="nats",system="jetstream",group="billing",topic="ORDERS"}"#;
const UP: &str = r#"lagwatch_source_up{source="nats",system="jetstream"}"#;

#[tokio::test]
async fn the_daemon_exports_jetstream_lag_and_survives_a_server_restart() {
    let mut nats = Nats::start();
    let _js = fixture(&nats).await;
    let daemon = Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\npoll_interval: 1s\nrequest_timeout: 1s\nsources:\n  - name: nats\n    jetstream:\n      servers: [\"{}\"]\n",
        nats.url()
    ));
    daemon.wait_metric(BILLING_LAG, "17", Duration::from_secs(15));
    let body = daemon.metrics();
    for (series, value) in [
        (
            r#"lagwatch_jetstream_pending_messages{source="nats",system="jetstream",group="billing",topic="ORDERS"}"#,
            "15",
        ),
        (
            r#"lagwatch_jetstream_ack_pending_messages{source="nats",system="jetstream",group="billing",topic="ORDERS"}"#,
            "2",
        ),
        (
            r#"lagwatch_jetstream_push_bound{source="nats",system="jetstream",group="audit",topic="ORDERS"}"#,
            "0",
        ),
        (
            r#"lagwatch_stream_messages{source="nats",system="jetstream",topic="JOBS",retention="workqueue"}"#,
            "2",
        ),
    ] {
        assert_eq!(
            common::metric_value(&body, series).as_deref(),
            Some(value),
            "{series}\n{body}"
        );
    }
    let lint = common::promtool_check_metrics(&body);
    assert!(lint.is_empty(), "promtool check metrics:\n{lint}");
    // Down within one poll (1 s interval) of the server going away.
    nats.stop();
    daemon.wait_metric(UP, "0", Duration::from_secs(3));
    // The last known lag stays, marked stale (a vanished series would resolve
    // the alerts on it).
    let body = daemon.metrics();
    assert_eq!(
        common::metric_value(&body, BILLING_LAG).as_deref(),
        Some("17"),
        "{body}"
    );
    assert!(
        common::metric_value(
            &body,
            r#"lagwatch_group_stale_seconds{source="nats",system="jetstream",group="billing",topic="ORDERS"}"#
        )
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(|v| v > 0.0),
        "the kept lag is marked stale:\n{body}"
    );
    assert_eq!(daemon.get("/healthz").0, 200);
    nats.restart();
    // async-nats reconnects with backoff; allow it a few polls.
    daemon.wait_metric(UP, "1", Duration::from_secs(10));
    daemon.wait_metric(BILLING_LAG, "17", Duration::from_secs(5));
}

#[tokio::test]
async fn two_shards_split_the_consumers_disjointly_and_cover_them_all() {
    use lagwatch::config::Shard;
    let nats = Nats::start();
    let _js = fixture(&nats).await;
    let mut all = poller(&nats.url(), "");
    let everything: std::collections::BTreeSet<String> = all
        .poll()
        .await
        .unwrap()
        .samples
        .iter()
        .map(|s| format!("{}/{}", s.key.topic, s.key.group.group))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut streams = 0;
    for index in 0..2 {
        let mut p = poller(&nats.url(), "").with_shard(Shard { index, count: 2 });
        let data = p.poll().await.unwrap();
        streams += data.streams.len();
        for s in data.samples {
            let name = format!("{}/{}", s.key.topic, s.key.group.group);
            assert!(seen.insert(name.clone()), "{name} watched by two shards");
        }
    }
    assert_eq!(seen, everything);
    assert_eq!(
        streams, 3,
        "each stream's state is exported by exactly one shard"
    );
}

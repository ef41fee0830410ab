//! The Kafka source against real brokers: tansu (a Kafka-protocol broker) and
//! librdkafka's MockCluster. Fixtures are produced one record per batch (tansu's
//! memory storage counts the high watermark from the last batch's first offset)
//! and committed by real consumers; lag is asserted exactly, per partition.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test and benchmark code: a panic is a failed run with its line; table tests are long by design"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Daemon, Tansu};
use lagwatch::model::{ErrorKind, GroupInfo, PollData, PollFailure, Sample, SourceId};
use lagwatch::source::kafka::KafkaPoller;
use lagwatch::source::Poller;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// A random-enough name per test run: tests share no broker state.
fn name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:08x}", std::process::id())
}

fn poller(yaml_kafka: &str) -> KafkaPoller {
    let text = format!(
        "poll_interval: 1s\nrequest_timeout: 3s\nsources:\n  - name: k\n    kafka:\n{yaml_kafka}"
    );
    let config = lagwatch::config::from_yaml("test.yaml", &text, &|_| None).expect("valid config");
    let source = &config.sources[0];
    KafkaPoller::new(
        SourceId::new("k"),
        source.kind.kafka().cloned().expect("kafka source"),
        source.timing,
    )
}

fn poll(p: &mut KafkaPoller) -> Result<PollData, PollFailure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(p.poll())
}

/// (topic, partition) -> (committed, latest, lag) of one group.
fn lags(data: &PollData, group: &str) -> BTreeMap<(String, i32), (Option<i64>, i64, u64)> {
    data.samples
        .iter()
        .filter(|s: &&Sample| &*s.key.group.group == group)
        .map(|s| {
            (
                (s.key.topic.to_string(), s.key.partition.unwrap_or(-1)),
                (s.committed, s.head, s.lag),
            )
        })
        .collect()
}

fn group_info<'a>(data: &'a PollData, group: &str) -> &'a GroupInfo {
    data.groups
        .iter()
        .find(|g| &*g.key.group == group)
        .unwrap_or_else(|| panic!("group {group} not reported: {:?}", data.groups))
}

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // One record per batch: tansu's memory storage sets the high watermark
        // from the last batch's first offset (BROKERS.md).
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

/// Writes `n` records to one partition, flushing after each.
fn produce(p: &BaseProducer, topic: &str, partition: i32, n: usize) {
    for i in 0..n {
        let payload = format!("m{i}");
        p.send(
            BaseRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&payload),
        )
        .map_err(|(e, _)| e)
        .expect("enqueue");
        p.flush(Duration::from_secs(10)).expect("flush");
    }
}

/// Commits offsets for `group` without joining it (a simple consumer group).
fn commit(bootstrap: &str, group: &str, offsets: &[(&str, i32, i64)]) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("committer");
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))
            .expect("tpl");
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
}

fn group_consumer(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("client.id", "lagwatch-test-member")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // tansu's JoinGroup waits about half the session timeout (BROKERS.md).
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "6000")
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

/// Consumes until `want` records arrived, then commits them synchronously.
fn consume_and_commit(c: &BaseConsumer, want: usize) {
    let start = Instant::now();
    let mut got = 0;
    while got < want {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "consumed only {got} of {want}"
        );
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            m.expect("message");
            got += 1;
        }
    }
    c.commit_consumer_state(CommitMode::Sync).expect("commit");
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let r = block(admin(bootstrap).create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ))
    .expect("CreateTopics");
    assert!(r.iter().all(|x| x.is_ok()), "CreateTopics {topic}: {r:?}");
}

#[test]
fn lag_is_exact_per_partition_for_several_groups_and_topics_on_tansu() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let orders = name("orders");
    let payments = name("payments");
    tansu.create_topic(&orders, 3);
    tansu.create_topic(&payments, 2);
    let p = producer(&b);
    produce(&p, &orders, 0, 6);
    produce(&p, &orders, 1, 4);
    produce(&p, &payments, 0, 3);
    produce(&p, &payments, 1, 5);

    // A real group that consumed everything of `orders`, committed, and left:
    // Empty, no members, and its lag still matters.
    let empty = name("empty");
    let c = group_consumer(&b, &empty, &orders);
    consume_and_commit(&c, 10);
    drop(c);
    // Written after it left: lag 2 on partition 0, 1 on partition 2.
    produce(&p, &orders, 0, 2);
    produce(&p, &orders, 2, 1);

    // A group with commits on some partitions only.
    let partial = name("partial");
    commit(&b, &partial, &[(&orders, 0, 3), (&payments, 1, 1)]);
    // A group committed at zero on one partition: zero is a commit, not "none".
    let zero = name("zero");
    commit(&b, &zero, &[(&payments, 0, 0)]);

    let mut poller = poller(&format!("      bootstrap_servers: [\"{b}\"]\n"));
    let data = poll(&mut poller).expect("poll succeeds");

    let o = |p: i32| (orders.clone(), p);
    let y = |p: i32| (payments.clone(), p);
    assert_eq!(
        lags(&data, &empty),
        [
            (o(0), (Some(6), 8, 2)),
            (o(1), (Some(4), 4, 0)),
            (o(2), (None, 1, 0)),
        ]
        .into(),
        "{data:#?}"
    );
    assert_eq!(
        lags(&data, &partial),
        [
            (o(0), (Some(3), 8, 5)),
            (o(1), (None, 4, 0)),
            (o(2), (None, 1, 0)),
            (y(0), (None, 3, 0)),
            (y(1), (Some(1), 5, 4)),
        ]
        .into()
    );
    assert_eq!(
        lags(&data, &zero),
        [(y(0), (Some(0), 3, 3)), (y(1), (None, 5, 0))].into()
    );
    let info = group_info(&data, &empty);
    assert_eq!(info.state.as_deref(), Some("Empty"));
    assert_eq!(info.members, Some(0));
    assert_eq!(data.anomalies, 0);
    assert!(
        data.samples.iter().all(|s| s.low == Some(0)),
        "earliest offsets are read: {data:#?}"
    );
}

#[test]
fn an_active_group_reports_stable_with_its_member_and_assigned_partitions() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = name("events");
    tansu.create_topic(&topic, 2);
    let p = producer(&b);
    produce(&p, &topic, 0, 3);
    produce(&p, &topic, 1, 2);
    let group = name("active");
    let stop = Arc::new(AtomicBool::new(false));
    let member = {
        let (b, group, topic, stop) = (b.clone(), group.clone(), topic.clone(), stop.clone());
        std::thread::spawn(move || {
            let c = group_consumer(&b, &group, &topic);
            consume_and_commit(&c, 5);
            while !stop.load(Ordering::Relaxed) {
                let _ = c.poll(Duration::from_millis(100));
            }
        })
    };
    let mut poller = poller(&format!("      bootstrap_servers: [\"{b}\"]\n"));
    let start = Instant::now();
    let data = loop {
        let data = poll(&mut poller).expect("poll succeeds");
        let done = lags(&data, &group).len() == 2
            && group_info(&data, &group).state.as_deref() == Some("Stable");
        if done || start.elapsed() > Duration::from_secs(40) {
            break data;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    stop.store(true, Ordering::Relaxed);
    let _ = member.join();

    let t = |p: i32| (topic.clone(), p);
    assert_eq!(
        lags(&data, &group),
        [(t(0), (Some(3), 3, 0)), (t(1), (Some(2), 2, 0))].into()
    );
    let info = group_info(&data, &group);
    assert_eq!(info.state.as_deref(), Some("Stable"), "{info:?}");
    assert_eq!(info.members, Some(1), "{info:#?}");
    let members = info.assignments.as_ref().expect("described");
    assert_eq!(members.len(), 1);
    assert!(!members[0].member_id.is_empty());
    // tansu 0.6.0 answers DescribeGroups with empty assignment bytes (and empty
    // client id and host), so the owned partitions cannot be checked here; the
    // decoding is unit-tested (source::kafka::assignment).
    let owned: Vec<(String, i32)> = members[0]
        .partitions
        .iter()
        .map(|(t, p)| (t.to_string(), *p))
        .collect();
    assert!(owned.is_empty() || owned == vec![t(0), t(1)], "{owned:?}");
    // Described by the batched classic DescribeGroups (one request per broker
    // for every group), not one DescribeConsumerGroups per group.
    let trace = poller.last_trace().expect("trace");
    assert!(trace.described >= 1, "{trace:?}");
    assert_eq!(trace.described_one_by_one, 0, "{trace:?}");
    assert!(
        trace
            .phases
            .iter()
            .any(|(phase, _, _)| *phase == "describe_groups_batched"),
        "{trace:?}"
    );
}

#[test]
fn a_deleted_topic_disappears_and_an_added_partition_appears_without_a_restart() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let kept = name("kept");
    let doomed = name("doomed");
    create_topic(&b, &kept, 1);
    create_topic(&b, &doomed, 1);
    let p = producer(&b);
    produce(&p, &kept, 0, 4);
    produce(&p, &doomed, 0, 2);
    let group = name("g");
    commit(&b, &group, &[(&kept, 0, 1), (&doomed, 0, 1)]);

    let mut poller = poller(&format!("      bootstrap_servers: [\"{b}\"]\n"));
    let data = poll(&mut poller).expect("first poll");
    assert_eq!(lags(&data, &group).len(), 2, "{data:#?}");

    let admin = admin(&b);
    let deleted =
        block(admin.delete_topics(&[&doomed], &AdminOptions::new())).expect("DeleteTopics");
    assert!(deleted.iter().all(|r| r.is_ok()), "{deleted:?}");
    // tansu 0.6.0 does not implement CreatePartitions (librdkafka reports
    // UnsupportedFeature: the API is not advertised). There the topic is
    // deleted and created again with two partitions, which changes the
    // partition count under the running client the same way.
    let grown =
        block(admin.create_partitions(&[NewPartitions::new(&kept, 2)], &AdminOptions::new()));
    match grown {
        Ok(r) => assert!(r.iter().all(|x| x.is_ok()), "{r:?}"),
        Err(e) => {
            assert!(
                matches!(e, KafkaError::AdminOp(RDKafkaErrorCode::UnsupportedFeature)),
                "{e}"
            );
            let r =
                block(admin.delete_topics(&[&kept], &AdminOptions::new())).expect("DeleteTopics");
            assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
            create_topic(&b, &kept, 2);
            produce(&producer(&b), &kept, 0, 4);
            commit(&b, &group, &[(&kept, 0, 1)]);
        }
    }
    // A fresh producer: the first one cached the old partition count.
    produce(&producer(&b), &kept, 1, 3);

    let data = poll(&mut poller).expect("poll after the changes");
    let k = |p: i32| (kept.clone(), p);
    assert_eq!(
        lags(&data, &group),
        [(k(0), (Some(1), 4, 3)), (k(1), (None, 3, 0))].into(),
        "the deleted topic is gone and the new partition is measured"
    );
}

#[test]
fn the_daemon_exports_exact_lag_and_survives_the_broker_being_killed() {
    let mut tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = name("t");
    let group = name("g");
    let setup = |tansu: &Tansu, records: usize, committed: i64| {
        tansu.create_topic(&topic, 1);
        produce(&producer(&tansu.bootstrap()), &topic, 0, records);
        commit(&tansu.bootstrap(), &group, &[(&topic, 0, committed)]);
    };
    setup(&tansu, 7, 2);
    let mut daemon = Daemon::start(&format!(
        r#"
http:
  listen: 127.0.0.1:0
shutdown_timeout: 5s
metrics:
  granularity: partition
sources:
  - name: tansu
    kafka:
      bootstrap_servers: ["{b}"]
      poll_interval: 1s
      request_timeout: 1s
"#
    ));
    let lag = format!(
        r#"lagwatch_partition_lag_messages{{source="tansu",system="kafka",group="{group}",topic="{topic}",partition="0"}}"#
    );
    let up = r#"lagwatch_source_up{source="tansu",system="kafka"}"#;
    daemon.wait_metric(&lag, "5", Duration::from_secs(15));
    daemon.wait_metric(up, "1", Duration::from_secs(1));

    // Down within one poll: interval 1 s + request timeout 1 s, plus slack.
    tansu.stop();
    let killed = Instant::now();
    daemon.wait_metric(up, "0", Duration::from_secs(5));
    let down_after = killed.elapsed();
    let body = daemon.metrics();
    let connect = r#"lagwatch_poll_errors_total{kind="connect",source="tansu",system="kafka"}"#;
    let connects = common::metric_value(&body, connect);
    assert!(
        connects.as_deref().is_some_and(|v| v != "0"),
        "a killed broker is a connect failure:\n{body}"
    );
    // The last known lag stays (a vanished series would resolve the alerts on
    // it), marked stale with its age: never presented as fresh.
    assert_eq!(
        common::metric_value(&body, &lag).as_deref(),
        Some("5"),
        "the last known lag is kept while the cluster is down:\n{body}"
    );
    let stale =
        format!(r#"lagwatch_group_stale_seconds{{source="tansu",system="kafka",group="{group}"}}"#);
    assert!(
        common::metric_value(&body, &stale)
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v > 0.0),
        "the kept lag is marked stale:\n{body}"
    );

    // Back within one poll after the broker returns (memory storage: fresh data).
    tansu.restart();
    setup(&tansu, 9, 4);
    let back = Instant::now();
    daemon.wait_metric(&lag, "5", Duration::from_secs(5));
    let up_after = back.elapsed();
    daemon.wait_metric(up, "1", Duration::from_secs(1));
    eprintln!("down seen after {down_after:?}, recovery seen after {up_after:?}");
    assert!(
        daemon
            .logs()
            .lines()
            .filter(|l| l.contains("ERROR"))
            .count()
            == 0,
        "librdkafka noise must not reach ERROR logs:\n{}",
        daemon.logs()
    );
    assert!(daemon.terminate(Duration::from_secs(10)).is_some());
}

#[test]
fn configured_groups_are_measured_on_the_mock_cluster_which_cannot_list_groups() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let b = mock.bootstrap_servers();
    let topic = name("mock");
    mock.create_topic(&topic, 2, 1).expect("topic");
    let p = producer(&b);
    produce(&p, &topic, 0, 5);
    produce(&p, &topic, 1, 2);
    let group = name("g");
    commit(&b, &group, &[(&topic, 0, 3)]);
    let never = name("never");

    let mut poller = poller(&format!(
        "      bootstrap_servers: [\"{b}\"]\n      groups: [\"{group}\", \"{never}\"]\n"
    ));
    let data = poll(&mut poller).expect("poll succeeds");
    let t = |p: i32| (topic.clone(), p);
    assert_eq!(
        lags(&data, &group),
        [(t(0), (Some(3), 5, 2)), (t(1), (None, 2, 0))].into()
    );
    assert!(
        lags(&data, &never).is_empty(),
        "a group with no commit anywhere has no partitions"
    );
    // The mock has no DescribeGroups: counted, not fatal; state unknown.
    assert!(
        data.partial_errors
            .iter()
            .any(|(k, n)| *k == ErrorKind::DescribeGroups && *n > 0),
        "{:?}",
        data.partial_errors
    );
    // The batched classic describe failed (no ListGroups on the mock), so the
    // two configured groups went one by one; the next poll backs off the
    // batched attempt.
    let batched = |p: &KafkaPoller| {
        p.last_trace()
            .expect("trace")
            .phases
            .iter()
            .any(|(phase, _, _)| *phase == "describe_groups_batched")
    };
    assert!(batched(&poller));
    assert_eq!(poller.last_trace().expect("trace").described_one_by_one, 2);
    poll(&mut poller).expect("second poll succeeds");
    assert!(!batched(&poller), "{:?}", poller.last_trace());
}

#[test]
fn a_mock_broker_going_down_fails_the_poll_and_coming_back_recovers_it() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let b = mock.bootstrap_servers();
    let topic = name("mock");
    mock.create_topic(&topic, 1, 1).expect("topic");
    produce(&producer(&b), &topic, 0, 4);
    let group = name("g");
    commit(&b, &group, &[(&topic, 0, 1)]);
    let mut poller = poller(&format!(
        "      bootstrap_servers: [\"{b}\"]\n      groups: [\"{group}\"]\n      request_timeout: 1s\n"
    ));
    let t0 = (topic.clone(), 0);
    let data = poll(&mut poller).expect("poll succeeds");
    assert_eq!(lags(&data, &group), [(t0.clone(), (Some(1), 4, 3))].into());

    mock.broker_down(1).expect("broker down");
    let failure = poll(&mut poller).expect_err("the cluster is down");
    assert!(
        matches!(failure.kind, ErrorKind::Connect | ErrorKind::Timeout),
        "{failure:?}"
    );

    mock.broker_up(1).expect("broker up");
    let start = Instant::now();
    let data = loop {
        match poll(&mut poller) {
            Ok(d) => break d,
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                eprintln!("still down: {e:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("did not recover: {e:?}"),
        }
    };
    assert_eq!(lags(&data, &group), [(t0, (Some(1), 4, 3))].into());
}

/// TLS and every SASL mechanism librdkafka users configure are built in: a
/// client with those properties is created and fails only where the network
/// does (nothing listens), and the password never shows in the error.
#[test]
fn tls_and_sasl_properties_build_a_client_and_keep_the_password_out_of_errors() {
    let port = common::free_port();
    for (protocol, mechanism) in [
        ("SSL", None),
        ("SASL_SSL", Some("PLAIN")),
        ("SASL_SSL", Some("SCRAM-SHA-512")),
        ("SASL_PLAINTEXT", Some("SCRAM-SHA-256")),
        ("SASL_SSL", Some("OAUTHBEARER")),
        ("SASL_PLAINTEXT", Some("GSSAPI")),
    ] {
        let mut props = format!(
            "      bootstrap_servers: [\"127.0.0.1:{port}\"]\n      request_timeout: 1s\n      properties:\n        security.protocol: {protocol}\n"
        );
        if let Some(m) = mechanism {
            props.push_str(&format!("        sasl.mechanism: {m}\n"));
            match m {
                "GSSAPI" => props.push_str("        sasl.kerberos.service.name: kafka\n        sasl.kerberos.kinit.cmd: \"true\"\n"),
                "OAUTHBEARER" => props.push_str("        sasl.oauthbearer.config: \"principal=lagwatch\"\n        enable.sasl.oauthbearer.unsecure.jwt: \"true\"\n"),
                _ => props.push_str("        sasl.username: lagwatch\n        sasl.password: hunter2-secret\n"),
            }
        }
        let mut p = poller(&props);
        let err = poll(&mut p).expect_err("nothing listens there");
        assert!(
            matches!(err.kind, ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Metadata),
            "{protocol}/{mechanism:?}: the client was built and failed on the network, not on its config: {err:?}"
        );
        assert!(!err.message.contains("hunter2-secret"), "{err:?}");
        assert!(
            !err.message.contains("not supported"),
            "{protocol}/{mechanism:?}: {err:?}"
        );
    }
}

/// base64url without padding, for the test's JWT.
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A "broker" on a free port that accepts connections and never answers;
/// returns its port.
fn silent_broker() -> u16 {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

/// A real HTTP endpoint on a free port that answers every request with
/// `answer(head and body)` = (status line, body) and records what it was
/// sent; returns its base URL and the requests (head, then body).
fn http_stub(
    answer: impl Fn(&str) -> (&'static str, String) + Send + 'static,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                request.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok();
            request.push_str(&String::from_utf8_lossy(&body));
            let (status, body) = answer(&request);
            seen.lock().unwrap().push(request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, requests)
}

/// SASL/OAUTHBEARER with OIDC client credentials (librdkafka's
/// `sasl.oauthbearer.method: oidc`, built in with rdkafka's curl): lagwatch's
/// client fetches a token from a real HTTP token endpoint with the client
/// credentials, before it even reaches the broker, and the secret stays out of
/// the error.
#[test]
fn oidc_client_credentials_fetch_a_token_from_the_token_endpoint() {
    let (base, requests) = http_stub(|_| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let jwt = format!(
            "{}.{}.{}",
            b64url(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64url(format!(r#"{{"sub":"lagwatch","iat":{now},"exp":{}}}"#, now + 3600).as_bytes()),
            b64url(b"signature")
        );
        let answer =
            format!(r#"{{"access_token":"{jwt}","token_type":"bearer","expires_in":3600}}"#);
        ("200 OK", answer)
    });
    let endpoint = format!("{base}/oauth2/token");
    let port = common::free_port();
    let mut p = poller(&format!(
        "      bootstrap_servers: [\"127.0.0.1:{port}\"]\n      request_timeout: 1s\n      properties:\n        security.protocol: SASL_PLAINTEXT\n        sasl.mechanism: OAUTHBEARER\n        sasl.oauthbearer.method: oidc\n        sasl.oauthbearer.client.id: lagwatch-client\n        sasl.oauthbearer.client.secret: hunter2-oidc-secret\n        sasl.oauthbearer.token.endpoint.url: \"{endpoint}\"\n        sasl.oauthbearer.scope: kafka\n"
    ));
    let err = poll(&mut p).expect_err("no broker listens there");
    assert!(
        !err.message.contains("hunter2-oidc-secret") && !err.message.contains("not supported"),
        "{err:?}"
    );
    common::wait_until(
        "a token request at the token endpoint",
        Duration::from_secs(20),
        || !requests.lock().unwrap().is_empty(),
    );
    let request = requests.lock().unwrap()[0].clone();
    assert!(request.starts_with("POST /oauth2/token "), "{request}");
    assert!(
        request.contains("grant_type=client_credentials"),
        "{request}"
    );
    assert!(request.contains("scope=kafka"), "{request}");
    // The client credentials, as HTTP Basic (RFC 6749 section 2.3.1).
    let basic = format!("Basic {}", {
        let s = b64url(b"lagwatch-client:hunter2-oidc-secret");
        s.replace('-', "+").replace('_', "/")
    });
    assert!(
        request.contains(basic.trim_end_matches('=')),
        "no Basic client credentials in:\n{request}"
    );
}

/// SASL/OAUTHBEARER with tokens from a file (`kafka.oauthbearer.token_file`),
/// handed to librdkafka through its refresh hook: a valid JWT lets the client
/// go as far as the network; a missing or expired one fails the poll as
/// `auth`, naming the file.
#[test]
fn oauthbearer_tokens_from_a_file_reach_librdkafka_and_a_bad_file_is_an_auth_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    // Without a token librdkafka never gets past SASL; with one, only the
    // broker's silence fails it.
    let port = silent_broker();
    let config = format!(
        "      bootstrap_servers: [\"127.0.0.1:{port}\"]\n      request_timeout: 1s\n      properties:\n        security.protocol: SASL_PLAINTEXT\n        sasl.mechanism: OAUTHBEARER\n      oauthbearer:\n        token_file: \"{}\"\n",
        file.display()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = |exp: u64| {
        format!(
            "{}.{}.{}",
            b64url(br#"{"alg":"RS256"}"#),
            b64url(format!(r#"{{"sub":"lagwatch","exp":{exp}}}"#).as_bytes()),
            b64url(b"sig")
        )
    };
    std::fs::write(&file, jwt(now + 3600)).unwrap();
    let err = poll(&mut poller(&config)).expect_err("the broker never answers");
    assert!(
        matches!(
            err.kind,
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Metadata
        ),
        "a good token: only the silent broker fails it: {err:?}"
    );
    let shown = file.display().to_string();
    for (what, contents, says) in [
        ("missing", None, format!("token file {shown}:")),
        (
            "expired",
            Some(jwt(now - 60)),
            format!("the token in {shown} expired"),
        ),
    ] {
        match &contents {
            Some(c) => std::fs::write(&file, c).unwrap(),
            None => std::fs::remove_file(&file).unwrap_or(()),
        }
        let err = poll(&mut poller(&config)).expect_err("no token");
        assert_eq!(err.kind, ErrorKind::Auth, "{what}: {err:?}");
        assert!(err.message.contains(&says), "{what}: {err:?}");
    }
}

/// AWS MSK IAM end to end in the real daemon: with IRSA's environment it asks
/// STS (a real HTTP server here) for credentials with the projected token, and
/// signs a token, so the poll fails only on the silent broker; when STS
/// refuses, the source is down as `auth` with STS's answer in its error.
#[test]
fn msk_iam_takes_credentials_from_sts_with_the_web_identity_and_says_when_sts_refuses() {
    let sts_for = |status: &'static str| {
        http_stub(move |_| {
            let answer = if status.starts_with("200") {
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIATEST</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>session</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            } else {
                "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>"
            };
            (status, answer.to_string())
        })
    };
    let port = silent_broker();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "projected-sa-token").unwrap();
    let config = format!(
        "http:\n  listen: 127.0.0.1:0\nsources:\n  - name: msk\n    kafka:\n      bootstrap_servers: [\"127.0.0.1:{port}\"]\n      poll_interval: 1s\n      request_timeout: 2s\n      properties:\n        security.protocol: SASL_PLAINTEXT\n        sasl.mechanism: OAUTHBEARER\n      oauthbearer:\n        aws_msk_iam: {{region: eu-west-1}}\n"
    );
    let last_error = |d: &Daemon| -> (String, String) {
        let (_, body) = d.get("/api/v1/sources");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let e = &v["sources"][0]["last_error"];
        (
            e["kind"].as_str().unwrap_or("").to_string(),
            e["message"].as_str().unwrap_or("").to_string(),
        )
    };
    for (status, want_auth) in [("200 OK", false), ("403 Forbidden", true)] {
        let (sts, requests) = sts_for(status);
        let token_file = token.display().to_string();
        let d = Daemon::start_with_env(
            &config,
            &[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.as_str()),
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/lagwatch"),
                ("AWS_ENDPOINT_URL_STS", sts.as_str()),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ],
        );
        common::wait_until(
            "a failed poll of the silent broker",
            Duration::from_secs(30),
            || !last_error(&d).0.is_empty(),
        );
        let request = requests
            .lock()
            .unwrap()
            .first()
            .cloned()
            .unwrap_or_default();
        assert!(
            request.contains("Action=AssumeRoleWithWebIdentity")
                && request.contains("WebIdentityToken=projected-sa-token"),
            "{status}: STS was asked: {request:?}"
        );
        let (kind, message) = last_error(&d);
        if want_auth {
            assert_eq!(kind, "auth", "{message}");
            assert!(
                message.contains("HTTP 403") && message.contains("AccessDenied"),
                "{message}"
            );
        } else {
            assert_ne!(kind, "auth", "credentials from STS sign a token: {message}");
        }
    }
}

/// Steps 3a and 5a on real tansu: the committed offsets of many groups in one
/// FindCoordinator v4 and one OffsetFetch v8, and both ends of every partition
/// in one ListOffsets v6 each, the same as librdkafka's requests say, "no
/// commit" included.
#[test]
fn committed_offsets_are_read_in_two_batched_requests_and_agree_with_librdkafka() {
    let tansu = common::Tansu::start();
    let b = tansu.bootstrap();
    let topic = name("batched");
    tansu.create_topic(&topic, 2);
    common::truth::produce_to(&b, &topic, &[6, 4]);
    let groups: Vec<String> = (0..30).map(|i| name(&format!("g{i:02}"))).collect();
    for (i, g) in groups.iter().enumerate() {
        let i = i64::try_from(i % 5).unwrap();
        common::truth::commit_partitions(&b, g, &topic, &[i + 1, i % 4]);
    }
    let settings = |batched: bool| {
        format!("      bootstrap_servers: [\"{b}\"]\n      batch_offset_fetch: {batched}\n")
    };
    let mut direct = poller(&settings(true));
    let mut rdkafka = poller(&settings(false));
    let wait = Instant::now();
    let (a, z) = loop {
        let a = poll(&mut direct).expect("batched poll");
        let z = poll(&mut rdkafka).expect("librdkafka poll");
        let seen = |d: &PollData| {
            groups
                .iter()
                .all(|g| d.samples.iter().any(|s| &*s.key.group.group == g))
        };
        if seen(&a) && seen(&z) {
            break (a, z);
        }
        assert!(
            wait.elapsed() < Duration::from_secs(30),
            "the groups never all showed up"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    for g in &groups {
        assert_eq!(lags(&a, g), lags(&z, g), "group {g}");
        assert!(!lags(&a, g).is_empty(), "group {g}");
    }
    let trace = direct.last_trace().expect("trace").clone();
    assert_eq!(
        trace.direct_requests.get("FindCoordinator"),
        Some(&1),
        "{trace:?}"
    );
    assert_eq!(
        trace.direct_requests.get("OffsetFetch"),
        Some(&1),
        "{trace:?}"
    );
    assert!(
        rdkafka
            .last_trace()
            .expect("trace")
            .direct_requests
            .is_empty(),
        "batch_offset_fetch: false stays with librdkafka"
    );
}

//! The observability surface against a real Prometheus: the alert rules pass
//! promtool; every dashboard panel query and every alert expression runs on a
//! Prometheus that scrapes lagwatch watching real brokers (tansu and
//! nats-server), and every panel shows data; the real /metrics passes
//! `promtool check metrics` with Kafka, JetStream and the compatibility names.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use common::{Daemon, Nats, Prometheus, Tansu};
use futures::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new(common::require_binary("promtool"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn promtool_accepts_the_alert_rules_and_their_unit_tests_pass() {
    let (ok, text) = promtool(&["check", "rules", "alerts/lagwatch.rules.yml"]);
    assert!(ok, "promtool check rules:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    let (ok, text) = promtool(&["test", "rules", "alerts/lagwatch.rules.test.yml"]);
    assert!(ok, "promtool test rules:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

/// The level-2 sections of docs/runbooks.md, each with its level-3 headings.
fn runbook_sections() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(root().join("docs/runbooks.md")).unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            out.push((h.trim().to_string(), Vec::new()));
        } else if let Some(h) = line.strip_prefix("### ") {
            if let Some(last) = out.last_mut() {
                last.1.push(h.trim().to_string());
            }
        }
    }
    out
}

/// Every rule of a rule file (plain, or a PrometheusRule's spec).
fn rules_of(doc: &serde_yaml::Value) -> Vec<serde_yaml::Value> {
    let spec = if doc["kind"] == "PrometheusRule" {
        &doc["spec"]
    } else {
        doc
    };
    spec["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
        .collect()
}

#[test]
fn every_alert_says_what_happened_and_links_to_its_runbook_section_and_dashboard() {
    let text = std::fs::read_to_string(root().join("alerts/lagwatch.rules.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let sections = runbook_sections();
    let uids: Vec<String> = ["lagwatch-overview", "lagwatch-group"]
        .iter()
        .map(|f| {
            let d: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(root().join(format!("dashboards/{f}.json"))).unwrap(),
            )
            .unwrap();
            d["uid"].as_str().unwrap().to_string()
        })
        .collect();
    let rules = rules_of(&doc);
    assert!(rules.len() >= 10);
    for r in &rules {
        let name = r["alert"].as_str().unwrap();
        let a = &r["annotations"];
        let text = |k: &str| a[k].as_str().unwrap_or_default().to_string();
        assert!(!text("summary").is_empty(), "{name}: no summary");
        assert!(!text("description").is_empty(), "{name}: no description");
        // The runbook: an absolute link to this alert's section.
        let runbook = text("runbook_url");
        let (page, anchor) = runbook
            .split_once('#')
            .unwrap_or_else(|| panic!("{name}: runbook_url {runbook:?} has no anchor"));
        assert!(
            page.starts_with("https://") && page.ends_with("docs/runbooks.md"),
            "{name}: {runbook}"
        );
        assert_eq!(
            anchor,
            name.to_lowercase(),
            "{name}: GitHub's anchor of '## {name}'"
        );
        let (_, subsections) = sections
            .iter()
            .find(|(h, _)| h == name)
            .unwrap_or_else(|| panic!("{name}: no '## {name}' section in docs/runbooks.md"));
        assert_eq!(
            subsections,
            &["What it means", "How to confirm", "What to do"],
            "{name}: its runbook section"
        );
        // The dashboard: absolute, to one of the shipped dashboards.
        let url = text("dashboard_url");
        assert!(url.starts_with("https://"), "{name}: {url}");
        assert!(url.ends_with(&text("dashboard")), "{name}: {url}");
        assert!(
            uids.iter().any(|u| url.contains(&format!("/d/{u}/"))),
            "{name}: {url} opens no shipped dashboard"
        );
    }
    // And no section without an alert (a renamed alert leaves none behind).
    for (h, _) in &sections {
        assert!(
            rules
                .iter()
                .any(|r| r["alert"].as_str() == Some(h.as_str())),
            "docs/runbooks.md has a section for no alert: {h}"
        );
    }
}

#[test]
fn the_rules_render_with_a_selector_and_links_of_ones_own_and_promtool_accepts_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rules.yml");
    let status = Command::new("python3")
        .arg(root().join("scripts/gen-prometheusrule.py"))
        .args([
            "--rules",
            "--selector",
            r#"job="lw",namespace="mon""#,
            "--grafana-url",
            "https://grafana.corp.test/",
            "--runbook-url",
            "https://wiki.corp.test/lagwatch.md",
        ])
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let (ok, text) = promtool(&["check", "rules", out.to_str().unwrap()]);
    assert!(ok, "promtool check rules:\n{text}");
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for r in rules_of(&doc) {
        let name = r["alert"].as_str().unwrap();
        let expr = r["expr"].as_str().unwrap();
        // Every metric of the expression carries the selector.
        let metrics: Vec<&str> = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("lagwatch_") || *w == "up")
            .collect();
        assert!(!metrics.is_empty(), "{name}: {expr}");
        for m in metrics {
            assert!(
                expr.contains(&format!(r#"{m}{{job="lw",namespace="mon""#)),
                "{name}: {m} without the selector in {expr}"
            );
        }
        let a = &r["annotations"];
        assert!(
            a["dashboard_url"]
                .as_str()
                .unwrap()
                .starts_with("https://grafana.corp.test/d/"),
            "{name}"
        );
        assert_eq!(
            a["runbook_url"].as_str().unwrap(),
            format!("https://wiki.corp.test/lagwatch.md#{}", name.to_lowercase())
        );
    }
}

/// File and sidecar provisioning take a dashboard as it is: no `__inputs`
/// (only the import dialog fills them in), the data source a variable.
#[test]
fn the_dashboards_provision_as_files_with_a_datasource_variable_and_link_to_each_other() {
    for (file, uid) in [
        ("lagwatch-overview", "lagwatch-overview"),
        ("lagwatch-group", "lagwatch-group"),
    ] {
        let text = std::fs::read_to_string(root().join(format!("dashboards/{file}.json"))).unwrap();
        let d: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            d.get("__inputs").is_none(),
            "{file}: __inputs breaks provisioning"
        );
        assert!(
            !text.contains("DS_PROMETHEUS"),
            "{file}: an import-only input is used"
        );
        assert_eq!(d["uid"], uid, "{file}: stable uid");
        assert!(d["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "lagwatch"));
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            &vars[..5],
            ["datasource", "job", "namespace", "source", "system"],
            "{file}"
        );
        assert_eq!(d["templating"]["list"][0]["type"], "datasource");
        // Every query of every panel reads the chosen data source.
        for p in d["panels"].as_array().unwrap() {
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{file}: {}",
                p["title"]
            );
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{file}");
                let expr = t["expr"].as_str().unwrap();
                assert!(
                    !expr.contains("lagwatch_")
                        || expr.contains(r#"job=~"$job",namespace=~"$namespace""#),
                    "{file}: {expr} ignores the job and namespace variables"
                );
            }
        }
        let links: Vec<&str> = d["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["url"].as_str().unwrap())
            .collect();
        assert!(
            links.contains(&"/d/lagwatch-overview/lagwatch-overview"),
            "{file}"
        );
        assert!(
            links.contains(&"/d/lagwatch-group/lagwatch-group"),
            "{file}"
        );
    }
    // From the overview's table of groups straight to one group.
    let overview: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("dashboards/lagwatch-overview.json")).unwrap(),
    )
    .unwrap();
    let drill = overview["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["fieldConfig"]["defaults"]["links"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find_map(|l| l["url"].as_str().map(str::to_string))
        .expect("a data link from the overview to a group");
    assert!(
        drill.starts_with("/d/lagwatch-group/lagwatch-group?")
            && drill.contains("var-group=${__data.fields.group}")
            && drill.contains("var-datasource=${datasource}"),
        "{drill}"
    );
    // The generator's output is what is committed.
    let status = Command::new("python3")
        .arg(root().join("scripts/gen-dashboards.py"))
        .arg("--check")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "dashboards/ is stale: run scripts/gen-dashboards.py"
    );
}

// ---------------------------------------------------------------------------
// Fixtures: a live Kafka topic with three kinds of groups, and a JetStream stream
// whose retention deletes what a slow consumer has not read.

const TOPIC: &str = "obs-orders";
const PARTITIONS: i32 = 2;
/// Records per partition written before lagwatch starts: the backlog the
/// catching-up group drains.
const BACKLOG: i64 = 150;
/// Catches up: commits 6 msgs/s per partition against 2.5 produced.
const CATCHING_UP: &str = "obs-catching-up";
/// Committed once near the start and never again: lag grows, it stalls.
const LAGGING: &str = "obs-lagging";
/// A real member (JoinGroup) that consumes and commits everything; every 5th
/// record it reads fails and goes to DEAD_LETTER_TOPIC.
const CONSUMING: &str = "obs-consuming";
/// TOPIC's dead-letter topic (by the `.dlq` convention). No group consumes it:
/// its dead letters are undrained, the messages it stores.
const DEAD_LETTER_TOPIC: &str = "obs-orders.dlq";
const STREAM: &str = "OBS";
/// max_msgs of the stream: retention deletes the oldest once it is full.
const STREAM_MAX: i64 = 60;
/// Acks everything it is given, continuously.
const DRAINER: &str = "obs-drainer";
/// Acked a few at the start, then nothing: retention overtakes it.
const SLOW: &str = "obs-slow";
/// A stream of its own for RETRYING, written 5 msgs/s.
const RETRY_STREAM: &str = "OBS_RETRY";
/// Pull consumer (max_deliver 2, ack_wait 1 s) that acks all but every 5th
/// message: each of those is redelivered once, then the server gives up on it
/// (a MAX_DELIVERIES advisory), continuously.
const RETRYING: &str = "obs-retrying";

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // One record per batch: tansu's memory storage sets the high watermark
        // from the last batch's first offset (BROKERS.md).
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap()
}

/// Enqueues one record; `batch.num.messages=1` keeps it alone in its batch, so
/// no flush per record is needed (a flush costs ~100 ms against tansu).
fn produce_one(p: &BaseProducer, partition: i32, i: i64) {
    let payload = format!("order {i}");
    p.send(
        BaseRecord::<(), _>::to(TOPIC)
            .partition(partition)
            .payload(&payload),
    )
    .map_err(|(e, _)| e)
    .unwrap();
    p.poll(Duration::ZERO);
}

/// Writes one record to DEAD_LETTER_TOPIC, as a consumer's error handler does
/// with a record it cannot process.
fn dead_letter(p: &BaseProducer, i: u64) {
    let payload = format!("failed order {i}");
    p.send(
        BaseRecord::<(), _>::to(DEAD_LETTER_TOPIC)
            .partition(0)
            .payload(&payload),
    )
    .map_err(|(e, _)| e)
    .unwrap();
    p.poll(Duration::ZERO);
}

/// A consumer that commits for `group` without joining it.
fn committer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

fn commit(c: &BaseConsumer, offsets: &[i64]) {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets.iter().enumerate() {
        tpl.add_partition_offset(TOPIC, i32::try_from(p).unwrap(), Offset::Offset(*o))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

/// Background load; everything stops (and joins) when dropped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Kafka: topic of 2 partitions with a backlog, a producer writing 2.5 msgs/s
/// per partition, the three groups (see the constants), and the consuming
/// group's dead-letter topic, written about 1 msg/s.
fn kafka_load(tansu: &Tansu, load: &mut Load) {
    let b = tansu.bootstrap();
    tansu.create_topic(TOPIC, u32::try_from(PARTITIONS).unwrap());
    tansu.create_topic(DEAD_LETTER_TOPIC, 1);
    let p = producer(&b);
    for i in 0..BACKLOG {
        for part in 0..PARTITIONS {
            produce_one(&p, part, i);
        }
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let written: Arc<Vec<AtomicI64>> =
        Arc::new((0..PARTITIONS).map(|_| AtomicI64::new(BACKLOG)).collect());
    commit(&committer(&b, LAGGING), &[10, 20]);

    let stop = load.stop.clone();
    let w = written.clone();
    load.threads.push(std::thread::spawn(move || {
        let mut i = BACKLOG;
        while !stop.load(Ordering::Relaxed) {
            for part in 0..PARTITIONS {
                produce_one(&p, part, i);
                w[usize::try_from(part).unwrap()].fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
            i += 1;
        }
    }));

    let (stop, w, bc) = (load.stop.clone(), written, b.clone());
    load.threads.push(std::thread::spawn(move || {
        let c = committer(&bc, CATCHING_UP);
        let mut at = vec![0i64; usize::try_from(PARTITIONS).unwrap()];
        while !stop.load(Ordering::Relaxed) {
            for (p, o) in at.iter_mut().enumerate() {
                *o = (*o + 3).min(w[p].load(Ordering::Relaxed));
            }
            commit(&c, &at);
            std::thread::sleep(Duration::from_millis(500));
        }
    }));

    let stop = load.stop.clone();
    let dlq = producer(&b);
    load.threads.push(std::thread::spawn(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", CONSUMING)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // tansu's JoinGroup waits about half the session timeout (BROKERS.md).
            .set("session.timeout.ms", "6000")
            .set("max.poll.interval.ms", "6000")
            .create()
            .unwrap();
        c.subscribe(&[TOPIC]).unwrap();
        let mut last_commit = Instant::now();
        let mut dirty = false;
        let mut consumed = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if let Some(Ok(_)) = c.poll(Duration::from_millis(100)) {
                dirty = true;
                consumed += 1;
                // Every 5th record fails: to the dead-letter topic, and on.
                if consumed.is_multiple_of(5) {
                    dead_letter(&dlq, consumed);
                }
            }
            if dirty && last_commit.elapsed() > Duration::from_millis(500) {
                let _ = c.commit_consumer_state(CommitMode::Sync);
                last_commit = Instant::now();
                dirty = false;
            }
        }
    }));
}

async fn publish(js: &jetstream::Context, i: u64) {
    js.publish(format!("obs.e{}", i % 3), format!("event {i}").into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// JetStream: stream OBS (max_msgs 60) filled, a publisher writing 10 msgs/s,
/// a consumer that keeps up and one that retention overtakes; stream
/// OBS_RETRY written 5 msgs/s, whose consumer gives up on every 5th message.
fn jetstream_load(nats: &Nats, load: &mut Load) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = nats.url();
    let js = rt.block_on(async move {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let s = js
            .create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["obs.>".into()],
                max_messages: STREAM_MAX,
                ..Default::default()
            })
            .await
            .unwrap();
        for name in [DRAINER, SLOW] {
            s.create_consumer(consumer::pull::Config {
                durable_name: Some(name.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        js.create_stream(stream::Config {
            name: RETRY_STREAM.into(),
            subjects: vec!["obsretry.>".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .create_consumer(consumer::pull::Config {
            durable_name: Some(RETRYING.into()),
            max_deliver: 2,
            ack_wait: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .unwrap();
        for i in 0..40 {
            publish(&js, i).await;
        }
        let slow: consumer::PullConsumer = s.get_consumer(SLOW).await.unwrap();
        let mut msgs = slow.fetch().max_messages(5).messages().await.unwrap();
        while let Some(m) = msgs.next().await {
            m.unwrap().double_ack().await.unwrap();
        }
        js
    });
    let stop = load.stop.clone();
    let pub_js = js.clone();
    rt.spawn(async move {
        let mut i = 40;
        while !stop.load(Ordering::Relaxed) {
            publish(&pub_js, i).await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let stop = load.stop.clone();
    let retry_js = js.clone();
    rt.spawn(async move {
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            retry_js
                .publish("obsretry.payments", format!("payment {i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
            i += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // A poison message: never acked, redelivered after ack_wait, given up on
    // after max_deliver.
    rt.spawn(pull_loop(
        js.clone(),
        RETRY_STREAM,
        RETRYING,
        |i| !i.stream_sequence.is_multiple_of(5),
        Duration::from_millis(100),
        load.stop.clone(),
    ));
    rt.spawn(pull_loop(
        js,
        STREAM,
        DRAINER,
        |_| true,
        Duration::from_millis(200),
        load.stop.clone(),
    ));
    load.runtime = Some(rt);
}

/// A pull consumer fetching until `stop`, acknowledging what `ack` says,
/// resting `rest` between fetches.
async fn pull_loop(
    js: jetstream::Context,
    stream: &'static str,
    name: &'static str,
    ack: fn(&async_nats::jetstream::message::Info) -> bool,
    rest: Duration,
    stop: Arc<AtomicBool>,
) {
    let c: consumer::PullConsumer = js
        .get_stream(stream)
        .await
        .unwrap()
        .get_consumer(name)
        .await
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut msgs) = c
            .fetch()
            .max_messages(100)
            .expires(Duration::from_millis(500))
            .messages()
            .await
        else {
            continue;
        };
        while let Some(Ok(m)) = msgs.next().await {
            if m.info().is_ok_and(|i| ack(&i)) {
                let _ = m.ack().await;
            }
        }
        tokio::time::sleep(rest).await;
    }
}

fn daemon_config(kafka: &str, nats: &str) -> String {
    format!(
        r#"
http:
  listen: 127.0.0.1:0
poll_interval: 1s
request_timeout: 2s
shutdown_timeout: 5s
analysis:
  window: 20s
  min_span: 3s
metrics:
  granularity: partition
  kafka_lag_exporter_compat: true
recommend:
  capacity_per_replica: 5
  groups:
    - pattern: "^obs-(drainer|slow)$"
      replicas: 1
sources:
  - name: tansu
    kafka:
      bootstrap_servers: ["{kafka}"]
  - name: nats
    jetstream:
      servers: ["{nats}"]
"#
    )
}

// ---------------------------------------------------------------------------
// Dashboards and rules, as Grafana and Prometheus would run them.

/// One query of one panel (or template variable) of one dashboard.
#[derive(Debug)]
struct PanelQuery {
    dashboard: String,
    panel: String,
    ref_id: String,
    expr: String,
}

impl std::fmt::Display for PanelQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dashboard {:?}, panel {:?}, query {}: {}",
            self.dashboard, self.panel, self.ref_id, self.expr
        )
    }
}

/// Grafana's template variables, as the dashboards' "All" selection and a
/// default range interval would fill them in.
fn substitute(expr: &str) -> String {
    let out = expr
        .replace("$__rate_interval", "1m")
        .replace("$job", ".*")
        .replace("$namespace", ".*")
        .replace("$source", ".*")
        .replace("$system", ".*")
        .replace("$group", ".*");
    assert!(
        !out.contains('$'),
        "a template variable this test does not know: {expr}"
    );
    out
}

/// Every panel target of every dashboard, and each `label_values(expr, label)`
/// variable as the query Grafana runs for it (the series of `expr`).
fn dashboard_queries() -> Vec<PanelQuery> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for file in files {
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let dashboard = d["title"].as_str().unwrap().to_string();
        for v in d["templating"]["list"].as_array().unwrap() {
            if v["type"] == "datasource" {
                continue;
            }
            let q = v["query"]["query"].as_str().unwrap();
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(e, _)| e)
                .unwrap_or_else(|| panic!("unexpected variable query {q}"));
            out.push(PanelQuery {
                dashboard: dashboard.clone(),
                panel: format!("variable ${}", v["name"].as_str().unwrap()),
                ref_id: "var".into(),
                expr: substitute(inner),
            });
        }
        let panels = d["panels"].as_array().unwrap();
        assert!(!panels.is_empty());
        for p in panels {
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{dashboard}: panel without queries");
            for t in targets {
                out.push(PanelQuery {
                    dashboard: dashboard.clone(),
                    panel: p["title"].as_str().unwrap().to_string(),
                    ref_id: t["refId"].as_str().unwrap().to_string(),
                    expr: substitute(t["expr"].as_str().unwrap()),
                });
            }
        }
    }
    out
}

/// (alert name, expression) of every rule in alerts/lagwatch.rules.yml.
fn alert_expressions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("alerts/lagwatch.rules.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = Vec::new();
    for g in doc["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            let name = r["alert"]
                .as_str()
                .or(r["record"].as_str())
                .unwrap()
                .to_string();
            out.push((name, r["expr"].as_str().unwrap().to_string()));
        }
    }
    assert!(out.len() >= 10, "{out:?}");
    out
}

/// Runs one query; Err with Prometheus' complaint when it does not parse or run.
fn run_query(prom: &Prometheus, expr: &str) -> Result<usize, String> {
    let (status, v) = prom.query_status(expr);
    if status != 200 || v["status"] != "success" {
        return Err(format!("HTTP {status}: {v}"));
    }
    Ok(v["data"]["result"].as_array().map_or(0, Vec::len))
}

#[test]
fn every_dashboard_panel_and_alert_runs_on_a_real_prometheus_and_every_panel_shows_data() {
    let queries = dashboard_queries();
    let alerts = alert_expressions();
    let tansu = Tansu::start();
    let nats = Nats::start();
    let mut load = Load {
        stop: Arc::new(AtomicBool::new(false)),
        threads: Vec::new(),
        runtime: None,
    };
    kafka_load(&tansu, &mut load);
    jetstream_load(&nats, &mut load);
    let daemon = Daemon::start(&daemon_config(&tansu.bootstrap(), &nats.url()));
    let rules = root().join("alerts/lagwatch.rules.yml");
    let prom = Prometheus::start_with_rules(
        &[daemon.addr.as_str()],
        Duration::from_secs(1),
        &[rules.as_path()],
    );
    let started = Instant::now();

    // Every query parses and runs, whatever the data (HTTP 200, status success).
    for q in &queries {
        if let Err(e) = run_query(&prom, &q.expr) {
            panic!("{q} does not run on Prometheus: {e}");
        }
    }
    for (name, expr) in &alerts {
        if let Err(e) = run_query(&prom, expr) {
            panic!("alert {name} does not run on Prometheus: {e}\n{expr}");
        }
    }

    // Then every panel query must show data at the same moment: the dashboards
    // fully populated, as an operator would open them.
    let deadline = Duration::from_secs(60);
    let mut empty: Vec<&PanelQuery> = Vec::new();
    while started.elapsed() < deadline {
        empty = queries
            .iter()
            .filter(|q| run_query(&prom, &q.expr).unwrap() == 0)
            .collect();
        if empty.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if let Some(first) = empty.first() {
        let list: Vec<String> = empty.iter().map(ToString::to_string).collect();
        panic!(
            "after {:?}, {first} shows no data ({} empty queries:\n  {})\n/metrics:\n{}",
            started.elapsed(),
            list.len(),
            list.join("\n  "),
            daemon.metrics()
        );
    }
    eprintln!(
        "all {} panel queries showed data after {:?}",
        queries.len(),
        started.elapsed()
    );

    // The situations the fixture drives are the ones the panels are about.
    let has = |expr: &str| !prom.query_result(expr).is_empty();
    for (what, expr) in [
        (
            "the catching-up group has an ETA",
            format!("lagwatch_group_catchup_eta_seconds{{group=\"{CATCHING_UP}\"}} > 0"),
        ),
        (
            "retention deleted messages the slow consumer had not read",
            format!("lagwatch_group_lost_messages{{group=\"{SLOW}\"}} > 0"),
        ),
        (
            "the lagging group's lag grows",
            format!("lagwatch_group_lag_growth_messages_per_second{{group=\"{LAGGING}\"}} > 0"),
        ),
        (
            "a real member is seen",
            format!("lagwatch_group_members{{group=\"{CONSUMING}\"}} >= 1"),
        ),
        (
            "the configured replicas are current",
            format!("lagwatch_group_replicas_current{{group=\"{DRAINER}\"}} == 1"),
        ),
        (
            "the consuming group's failures go to its dead-letter topic",
            format!(
                "lagwatch_dead_letters_total{{reason=\"dead_letter_topic\",topic=\"{TOPIC}\",dead_letter_topic=\"{DEAD_LETTER_TOPIC}\"}} > 0"
            ),
        ),
        (
            "nobody drains the dead-letter topic",
            format!(
                "lagwatch_dead_letters_undrained{{dead_letter_topic=\"{DEAD_LETTER_TOPIC}\"}} > 0"
            ),
        ),
        (
            "the server gives up on the retrying consumer's poison messages",
            format!(
                "lagwatch_dead_letters_total{{reason=\"max_deliveries\",group=\"{RETRYING}\",topic=\"{RETRY_STREAM}\"}} > 0"
            ),
        ),
        (
            "the retrying consumer's poison messages are redelivered",
            format!("lagwatch_redelivered_messages_per_second{{group=\"{RETRYING}\"}} > 0"),
        ),
        (
            "lagwatch listens to the JetStream advisories",
            "lagwatch_dead_letter_advisories_subscribed{source=\"nats\"} == 1".into(),
        ),
        (
            "lagwatch itself is scraped",
            "up{job=\"lagwatch\"} == 1".into(),
        ),
    ] {
        assert!(has(&expr), "{what}: {expr} is empty");
    }

    // Prometheus evaluated every alert rule without an error.
    let groups = prom.rules();
    let mut evaluated = 0;
    for g in groups["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(
                r["health"], "ok",
                "rule {} has health {} ({})",
                r["name"], r["health"], r["lastError"]
            );
            evaluated += 1;
        }
    }
    assert_eq!(evaluated, alerts.len(), "{groups}");

    // The rules fire on the situations they are about: loss already happened
    // (no `for`: firing at once), loss risk (pending for its 5 m).
    let alert_state = |name: &str| -> Option<String> {
        let (status, v) = prom.get("/api/v1/alerts");
        assert_eq!(status, 200, "{v}");
        v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == name && a["labels"]["group"] == SLOW)
            .map(|a| a["state"].as_str().unwrap().to_string())
    };
    common::wait_until(
        "ConsumerLostMessages firing and ConsumerDataLossRisk pending for the slow consumer",
        Duration::from_secs(15),
        || {
            alert_state("ConsumerLostMessages").as_deref() == Some("firing")
                && alert_state("ConsumerDataLossRisk").as_deref() == Some("pending")
        },
    );

    // The exposition that fed all this passes the linter too.
    let lint = common::promtool_check_metrics(&daemon.metrics());
    assert!(lint.is_empty(), "promtool check metrics:\n{lint}");
    drop(load);
}

#[test]
fn the_real_metrics_output_with_kafka_jetstream_and_compat_names_passes_promtool_check_metrics() {
    let tansu = Tansu::start();
    let nats = Nats::start();
    let mut load = Load {
        stop: Arc::new(AtomicBool::new(false)),
        threads: Vec::new(),
        runtime: None,
    };
    kafka_load(&tansu, &mut load);
    jetstream_load(&nats, &mut load);
    let daemon = Daemon::start(&daemon_config(&tansu.bootstrap(), &nats.url()));
    // Enough polls for rates, time lag and recommendations to appear, so that
    // every family the fixture can produce is in the body that is linted.
    let start = Instant::now();
    let wanted = [
        "kafka_consumergroup_group_lag{",
        "kafka_consumergroup_group_lag_seconds{",
        "kafka_partition_earliest_offset{",
        "lagwatch_partition_committed_offset{",
        "lagwatch_jetstream_pending_messages{",
        "lagwatch_stream_messages{",
        "lagwatch_group_produce_messages_per_second{",
        "lagwatch_group_replicas_recommended{",
    ];
    let body = loop {
        let body = daemon.metrics();
        let missing: Vec<&&str> = wanted.iter().filter(|w| !body.contains(**w)).collect();
        if missing.is_empty() {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still missing {missing:?}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let lint = common::promtool_check_metrics(&body);
    assert!(lint.is_empty(), "promtool check metrics:\n{lint}\n{body}");
    drop(load);
}

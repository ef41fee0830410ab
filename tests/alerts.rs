//! Notifications end to end against real receivers: an HTTP capture server (axum
//! on 127.0.0.1:0) that records exact requests, and a real Prometheus Alertmanager.
//! Notifications come from the real evaluator and go through the real notifier.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test helpers: a panic is a failed test with a line number, as clippy.toml allows inside #[test]"
)]

mod common;

use common::runtime;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::capture::{Capture, Captured};
use lagwatch::alert::{
    verify_signature, AlertEvaluator, Notification, Notifier, Observation, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};
use lagwatch::analysis::TimeLag;
use lagwatch::model::{GroupKey, Millis, SourceId, Status, System};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------
// The notifier under test
// ---------------------------------------------------------------------------

struct Harness {
    rt: tokio::runtime::Runtime,
    registry: prometheus::Registry,
    evaluator: AlertEvaluator,
    tx: Option<mpsc::Sender<Notification>>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Evaluation time 0: the real clock at start (Alertmanager judges endsAt by it).
    epoch: Millis,
    /// Queues and dead letters (and the file, when started with a path).
    state: Arc<lagwatch::state::StateStore>,
}

impl Harness {
    fn start(rt: tokio::runtime::Runtime, yaml: &str) -> Harness {
        Self::start_with_state(rt, yaml, None)
    }

    /// As [`Harness::start`], with a state file: what it holds is resumed.
    fn start_with_state(
        rt: tokio::runtime::Runtime,
        yaml: &str,
        state_path: Option<std::path::PathBuf>,
    ) -> Harness {
        // The alerts section inside a whole config: validated as a user's is.
        let indented: String = yaml.lines().map(|l| format!("  {l}\n")).collect();
        let text = format!(
            "sources:\n  - name: prod\n    kafka:\n      bootstrap_servers: [\"b:1\"]\nalerts:\n{indented}"
        );
        let config = lagwatch::config::from_yaml("alerts.yaml", &text, &|_| None)
            .unwrap_or_else(|e| panic!("{e}"))
            .alerts;
        let (state, loaded) = lagwatch::state::StateStore::open(state_path);
        let notifier =
            Notifier::new(&config, state.clone(), loaded.pending).expect("valid notifier");
        let registry = notifier.registry();
        let evaluator = AlertEvaluator::new(config.rules.clone());
        let (tx, rx) = lagwatch::alert::channel();
        let shutdown = CancellationToken::new();
        let task = rt.spawn(notifier.run(rx, shutdown.clone()));
        Harness {
            rt,
            registry,
            evaluator,
            tx: Some(tx),
            shutdown,
            task: Some(task),
            epoch: Millis::now(),
            state,
        }
    }

    /// Evaluates one round at `secs` and hands every notification to the notifier.
    fn round(&mut self, secs: i64, observations: &[Observation]) -> Vec<Notification> {
        let out = self
            .evaluator
            .evaluate(observations, Millis(self.epoch.0 + secs * 1000));
        for n in &out {
            self.tx
                .as_ref()
                .unwrap()
                .try_send(n.clone())
                .expect("the notifier keeps up");
        }
        out
    }

    /// Evaluates one round at the real current time.
    fn round_now(&mut self, observations: &[Observation]) -> Vec<Notification> {
        let secs = (Millis::now().0 - self.epoch.0) as f64 / 1000.0;
        let out = self
            .evaluator
            .evaluate(observations, Millis(self.epoch.0 + (secs * 1000.0) as i64));
        for n in &out {
            self.tx
                .as_ref()
                .unwrap()
                .try_send(n.clone())
                .expect("the notifier keeps up");
        }
        out
    }

    fn metric(&self, series: &str) -> f64 {
        let mut buf = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &self.registry.gather(),
            &mut buf,
        )
        .unwrap();
        let text = String::from_utf8(buf).unwrap();
        common::metric_value(&text, series)
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Cancels and waits for the notifier to finish flushing; returns how long it took.
    fn stop(&mut self) -> Duration {
        let start = Instant::now();
        self.shutdown.cancel();
        drop(self.tx.take());
        if let Some(t) = self.task.take() {
            self.rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(30), t).await })
                .expect("the notifier stops")
                .expect("the notifier does not panic");
        }
        // As the daemon does after the notifier: write what is left.
        self.state.write_now();
        start.elapsed()
    }
}

fn key(group: &str) -> GroupKey {
    GroupKey {
        source: SourceId::new("prod"),
        scope: None,
        group: Arc::from(group),
    }
}

fn kafka(group: &str, lag: u64) -> Observation {
    Observation {
        group: key(group),
        system: System::Kafka,
        topics: vec![Arc::from("orders"), Arc::from("refunds")],
        lag_messages: lag,
        lag_seconds: Some(lag as f64 / 10.0),
        time_lag: TimeLag::interpolated(lag as f64 / 10.0, lag as f64 / 10.0, lag as f64 / 10.0),
        growth_per_second: Some(2.5),
        eta_seconds: None,
        status: if lag > 0 { Status::Stall } else { Status::Ok },
        lost_messages: 0,
        seconds_until_loss: Some(7200.0),
        current_replicas: Some(2),
        recommended_replicas: Some(4),
        recommendation_reason: Some("lag drains in 10m with 4 replicas".into()),
        diagnosis: Some("producer_spike: produce 2,400/s, 3.1x its 1h baseline of 780/s".into()),
        dead_letters: None,
    }
}

fn jetstream(consumer: &str, lag: u64) -> Observation {
    Observation {
        group: GroupKey {
            source: SourceId::new("nats"),
            scope: Some(Arc::from("ORDERS")),
            group: Arc::from(consumer),
        },
        system: System::Jetstream,
        topics: vec![Arc::from("ORDERS")],
        lag_messages: lag,
        lag_seconds: None,
        time_lag: TimeLag::unknown(0.0, None),
        growth_per_second: None,
        eta_seconds: None,
        status: Status::Ok,
        lost_messages: 0,
        seconds_until_loss: None,
        current_replicas: None,
        recommended_replicas: None,
        recommendation_reason: None,
        diagnosis: None,
        dead_letters: None,
    }
}

/// A rule firing at once on lag > 100, repeating every 60 s, resolving after 60 s.
fn rule(receivers: &str) -> String {
    format!(
        "rules:\n  - name: lag-high\n    condition: lag_messages\n    threshold: 100\n    for: 0s\n    repeat_interval: 60s\n    resolve_after: 60s\n    severity: critical\n    receivers: [{receivers}]\n"
    )
}

/// Fast retries so the tests do not wait for production backoffs.
const FAST: &str = "defaults:\n  retry_backoff: 50ms\n  retry_backoff_max: 200ms\n  timeout: 2s\n  flush_timeout: 2s\n";

fn schema_validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/webhook-payload.schema.json"
    ))
    .expect("the schema file");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid draft 2020-12 schema")
}

fn assert_valid(v: &jsonschema::Validator, payload: &Value) {
    let errors: Vec<String> = v
        .iter_errors(payload)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "payload does not match docs/webhook-payload.schema.json: {errors:#?}\n{payload:#}"
    );
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn webhook_payloads_for_fire_repeat_and_resolve_match_the_schema_and_carry_a_valid_signature() {
    let rt = runtime();
    let hook = Capture::start(&rt);
    let yaml = format!(
        "dashboard_url: \"https://grafana.test/d/lag?var-group={{group}}&var-source={{source}}\"\n{FAST}receivers:\n  - name: hook\n    webhook:\n      url: \"{}\"\n      hmac_secret: \"s3cret-signing-key\"\n      headers:\n        Authorization: \"Bearer tok\"\n{}",
        hook.url("/events"),
        rule("hook")
    );
    let mut h = Harness::start(rt, &yaml);
    // Kafka group `a`: fire, repeat, resolve. JetStream consumer `c`: fire, repeat,
    // then it vanishes while its source still reports consumer `d`.
    let mut sent = Vec::new();
    let d = || jetstream("d", 0);
    sent.extend(h.round(0, &[kafka("a", 500), jetstream("c", 900), d()]));
    sent.extend(h.round(60, &[kafka("a", 600), jetstream("c", 900), d()]));
    sent.extend(h.round(70, &[kafka("a", 0), jetstream("c", 900), d()]));
    sent.extend(h.round(130, &[kafka("a", 0), d()]));
    sent.extend(h.round(131, &[kafka("a", 0), d()]));
    sent.extend(h.round(200, &[kafka("a", 0), d()]));
    assert_eq!(sent.len(), 6, "{sent:#?}");

    let got = hook.wait_for(6, Duration::from_secs(10));
    let schema = schema_validator();
    let payloads: Vec<Value> = got.iter().map(Captured::json).collect();
    for (c, p) in got.iter().zip(&payloads) {
        assert_valid(&schema, p);
        assert_eq!(c.path, "/events");
        assert_eq!(c.header("content-type"), "application/json");
        assert_eq!(c.header("authorization"), "Bearer tok");
        assert_eq!(c.header("x-lagwatch-event-id"), p["eventId"]);
        // The receiver's check: HMAC-SHA256 over "<timestamp>.<exact body bytes>".
        let ts = c.header(TIMESTAMP_HEADER);
        assert!(
            verify_signature(
                b"s3cret-signing-key",
                ts,
                &c.body,
                c.header(SIGNATURE_HEADER)
            ),
            "signature must verify"
        );
        // Within the replay window now; the same request an hour later is refused.
        let now = truth_now();
        let sig = c.header(SIGNATURE_HEADER);
        assert!(lagwatch::alert::verify_signed_request(
            b"s3cret-signing-key",
            ts,
            &c.body,
            sig,
            now,
            300
        ));
        assert!(!lagwatch::alert::verify_signed_request(
            b"s3cret-signing-key",
            ts,
            &c.body,
            sig,
            now + 3600,
            300
        ));
        assert!(!verify_signature(
            b"wrong",
            ts,
            &c.body,
            c.header(SIGNATURE_HEADER)
        ));
    }
    // Delivered in the order evaluated, one event id each.
    let sent_ids: Vec<String> = sent.iter().map(|n| n.event_id.to_string()).collect();
    let got_ids: Vec<String> = payloads
        .iter()
        .map(|p| p["eventId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got_ids, sent_ids);

    let of = |group: &str| -> Vec<&Value> {
        payloads
            .iter()
            .filter(|p| p["data"]["group"] == group)
            .collect()
    };
    let a = of("a");
    let types: Vec<&str> = a.iter().map(|p| p["eventType"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["LagAlertFired", "LagAlertRepeated", "LagAlertResolved"]
    );
    let incident = &a[0]["correlationId"];
    assert!(a
        .iter()
        .all(|p| &p["correlationId"] == incident && &p["data"]["incidentId"] == incident));
    assert_eq!(a[0]["data"]["lag"]["messages"], 500);
    assert_eq!(a[1]["data"]["lag"]["messages"], 600);
    assert_eq!(a[2]["data"]["resolution"], "condition_cleared");
    assert_eq!(
        a[0]["data"]["topics"],
        serde_json::json!(["orders", "refunds"])
    );
    assert_eq!(a[0]["data"]["recommendation"]["recommendedReplicas"], 4);
    assert_eq!(
        a[0]["data"]["dashboardUrl"],
        "https://grafana.test/d/lag?var-group=a&var-source=prod"
    );

    let c = of("c");
    let types: Vec<&str> = c.iter().map(|p| p["eventType"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["LagAlertFired", "LagAlertRepeated", "LagAlertResolved"]
    );
    assert_eq!(c[0]["data"]["system"], "jetstream");
    assert_eq!(c[0]["data"]["stream"], "ORDERS");
    assert_eq!(c[2]["data"]["resolution"], "consumer_vanished");
    assert!(c[2]["data"]["summary"]
        .as_str()
        .unwrap()
        .contains("vanished"));

    // The worker counts a delivery after reading the answer: wait for it.
    common::wait_until("every delivery to count", Duration::from_secs(5), || {
        h.metric("lagwatch_notifications_sent_total{receiver=\"hook\"}") == 6.0
    });
    h.stop();
}

#[test]
fn slack_and_pagerduty_bodies_follow_their_documented_formats() {
    let rt = runtime();
    let cap = Capture::start(&rt);
    let yaml = format!(
        "{FAST}receivers:\n  - name: chat\n    slack:\n      url: \"{}\"\n  - name: pager\n    pagerduty:\n      routing_key: \"R0UTINGKEY\"\n      url: \"{}\"\n{}",
        cap.url("/slack/T000/B000/XXXX"),
        cap.url("/v2/enqueue"),
        rule("chat, pager")
    );
    let mut h = Harness::start(rt, &yaml);
    h.round(0, &[kafka("orders-svc", 500)]);
    h.round(10, &[kafka("orders-svc", 0)]);
    let resolved = h.round(70, &[kafka("orders-svc", 0)]);
    let incident = resolved[0].incident.id.to_string();
    let got = cap.wait_for(4, Duration::from_secs(10));

    let slack: Vec<Value> = got
        .iter()
        .filter(|c| c.path.starts_with("/slack/"))
        .map(Captured::json)
        .collect();
    assert_eq!(slack.len(), 2);
    let text = slack[0]["text"].as_str().expect("Slack needs `text`");
    assert!(
        text.contains("FIRING") && text.contains("`lag-high`"),
        "{text}"
    );
    assert!(
        text.contains("Kafka group `orders-svc` on `prod`"),
        "{text}"
    );
    assert!(text.contains("lag 500 messages (threshold 100)"), "{text}");
    assert_eq!(slack[0]["blocks"][0]["type"], "section");
    assert_eq!(slack[0]["blocks"][0]["text"]["type"], "mrkdwn");
    assert_eq!(slack[0]["blocks"][1]["type"], "context");
    assert!(slack[1]["text"].as_str().unwrap().contains("RESOLVED"));

    let pd: Vec<Value> = got
        .iter()
        .filter(|c| c.path == "/v2/enqueue")
        .map(Captured::json)
        .collect();
    assert_eq!(pd.len(), 2);
    for (event, action) in pd.iter().zip(["trigger", "resolve"]) {
        assert_eq!(event["routing_key"], "R0UTINGKEY");
        assert_eq!(event["event_action"], action);
        assert_eq!(event["dedup_key"], incident.as_str());
        let p = &event["payload"];
        assert!(!p["summary"].as_str().unwrap().is_empty());
        assert_eq!(p["source"], "prod/orders-svc");
        assert_eq!(p["severity"], "critical");
        assert!(["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap()));
    }
    h.stop();
}

#[test]
fn a_real_alertmanager_lists_the_alert_with_its_labels_and_drops_it_when_resolved() {
    let am = common::Alertmanager::start();
    let rt = runtime();
    // Alertmanager judges startsAt/endsAt by its own clock: evaluate at real time,
    // with a short resolve_after so the test need not wait long.
    let yaml = format!(
        "{FAST}receivers:\n  - name: am\n    alertmanager:\n      url: \"{}\"\n      generator_url: \"https://lagwatch.test/\"\n{}",
        am.url(),
        rule("am").replace("resolve_after: 60s", "resolve_after: 1s")
    );
    let mut h = Harness::start(rt, &yaml);
    let fired = h.round_now(&[kafka("orders-svc", 500)]);
    let incident = fired[0].incident.id.to_string();

    let mut last = Value::Null;
    let listed = (0..100).find_map(|_| {
        last = am.alerts();
        let found = last
            .as_array()
            .unwrap()
            .iter()
            // Right after a POST the state can still be "unprocessed".
            .find(|a| a["labels"]["alertname"] == "lag-high" && a["status"]["state"] == "active")
            .cloned();
        if found.is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        found
    });
    let alert = listed.unwrap_or_else(|| {
        panic!(
            "the alert never appeared in Alertmanager: {last:#}\nmetrics failed: {}\nlog:\n{}",
            h.metric("lagwatch_notifications_failed_total{reason=\"http_4xx\",receiver=\"am\"}"),
            am.log()
        )
    });
    let labels = &alert["labels"];
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["source"], "prod");
    assert_eq!(labels["system"], "kafka");
    assert_eq!(labels["group"], "orders-svc");
    assert_eq!(labels["topic"], "orders,refunds");
    assert_eq!(alert["annotations"]["incident_id"], incident.as_str());
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(alert["generatorURL"], "https://lagwatch.test/");

    // Resolve: the condition is false for resolve_after (1 s).
    assert!(h.round_now(&[kafka("orders-svc", 0)]).is_empty());
    std::thread::sleep(Duration::from_millis(1100));
    let resolved = h.round_now(&[kafka("orders-svc", 0)]);
    assert_eq!(resolved.len(), 1);
    common::wait_until(
        "Alertmanager to stop listing the resolved alert",
        Duration::from_secs(10),
        || {
            !am.alerts()
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["labels"]["alertname"] == "lag-high")
        },
    );
    // The worker counts a delivery after reading the answer: wait for it.
    common::wait_until("every delivery to count", Duration::from_secs(5), || {
        h.metric("lagwatch_notifications_sent_total{receiver=\"am\"}") == 2.0
    });
    h.stop();
}

#[test]
fn a_receiver_down_for_a_while_gets_every_notification_in_order_once_it_is_back() {
    let rt = runtime();
    let port = common::free_port();
    let yaml = format!(
        "{FAST}receivers:\n  - name: hook\n    webhook:\n      url: \"http://127.0.0.1:{port}/down\"\n{}",
        rule("hook")
    );
    let mut h = Harness::start(rt, &yaml);
    // Three incidents, interleaved: fire a, fire b, resolve a, fire c, resolve b, resolve c.
    let mut sent = Vec::new();
    sent.extend(h.round(0, &[kafka("a", 500), kafka("b", 0), kafka("c", 0)]));
    sent.extend(h.round(5, &[kafka("a", 0), kafka("b", 500), kafka("c", 0)]));
    sent.extend(h.round(65, &[kafka("a", 0), kafka("b", 0), kafka("c", 500)]));
    sent.extend(h.round(125, &[kafka("a", 0), kafka("b", 0), kafka("c", 0)]));
    sent.extend(h.round(185, &[kafka("a", 0), kafka("b", 0), kafka("c", 0)]));
    assert_eq!(sent.len(), 6, "{sent:#?}");

    // Nobody listens: attempts fail with `connect` and are retried.
    common::wait_until("several retries", Duration::from_secs(10), || {
        h.metric("lagwatch_notifications_retries_total{receiver=\"hook\"}") >= 3.0
    });
    assert!(
        h.metric("lagwatch_notifications_failed_total{reason=\"connect\",receiver=\"hook\"}")
            >= 3.0
    );
    assert_eq!(
        h.metric("lagwatch_notifications_sent_total{receiver=\"hook\"}"),
        0.0
    );
    assert_eq!(
        h.metric("lagwatch_notification_queue_depth{receiver=\"hook\"}"),
        6.0
    );

    let back = Capture::start_on(&h.rt, port);
    let got = back.wait_for(6, Duration::from_secs(10));
    let got_ids: Vec<String> = got
        .iter()
        .map(|c| c.json()["eventId"].as_str().unwrap().to_string())
        .collect();
    let sent_ids: Vec<String> = sent.iter().map(|n| n.event_id.to_string()).collect();
    assert_eq!(
        got_ids, sent_ids,
        "every notification, in order, none twice"
    );
    common::wait_until("the queue to empty", Duration::from_secs(5), || {
        h.metric("lagwatch_notification_queue_depth{receiver=\"hook\"}") == 0.0
    });
    assert_eq!(
        h.metric("lagwatch_notifications_sent_total{receiver=\"hook\"}"),
        6.0
    );
    assert_eq!(
        h.metric("lagwatch_notifications_dropped_total{receiver=\"hook\"}"),
        0.0
    );
    h.stop();
}

#[test]
fn a_receiver_answering_400_gets_exactly_one_attempt_per_notification() {
    let rt = runtime();
    let cap = Capture::start(&rt);
    cap.answer(400);
    let yaml = format!(
        "{FAST}receivers:\n  - name: hook\n    webhook:\n      url: \"{}\"\n{}",
        cap.url("/bad"),
        rule("hook")
    );
    let mut h = Harness::start(rt, &yaml);
    h.round(0, &[kafka("a", 500), kafka("b", 500), kafka("c", 500)]);
    cap.wait_for(3, Duration::from_secs(10));
    // Several retry backoffs (50-200 ms) later, still one request each.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(cap.requests().len(), 3);
    assert_eq!(
        h.metric("lagwatch_notifications_failed_total{reason=\"http_4xx\",receiver=\"hook\"}"),
        3.0
    );
    assert_eq!(
        h.metric("lagwatch_notifications_retries_total{receiver=\"hook\"}"),
        0.0
    );
    assert_eq!(
        h.metric("lagwatch_notifications_sent_total{receiver=\"hook\"}"),
        0.0
    );
    h.stop();
}

#[test]
fn a_429_and_a_503_are_retried_honoring_retry_after() {
    let rt = runtime();
    let cap = Capture::start(&rt);
    cap.script(&[(429, Some("1")), (503, None)]);
    let yaml = format!(
        "{FAST}receivers:\n  - name: hook\n    webhook:\n      url: \"{}\"\n{}",
        cap.url("/busy"),
        rule("hook")
    );
    let mut h = Harness::start(rt, &yaml);
    h.round(0, &[kafka("a", 500)]);
    let got = cap.wait_for(3, Duration::from_secs(10));
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 must be honored, retried after {waited:?}"
    );
    assert_eq!(got[0].body, got[2].body, "a retry sends the same bytes");
    assert_eq!(
        h.metric("lagwatch_notifications_retries_total{receiver=\"hook\"}"),
        2.0
    );
    assert_eq!(
        h.metric("lagwatch_notifications_failed_total{reason=\"http_429\",receiver=\"hook\"}"),
        1.0
    );
    assert_eq!(
        h.metric("lagwatch_notifications_failed_total{reason=\"http_5xx\",receiver=\"hook\"}"),
        1.0
    );
    common::wait_until("the delivery to count", Duration::from_secs(5), || {
        h.metric("lagwatch_notifications_sent_total{receiver=\"hook\"}") == 1.0
    });
    h.stop();
}

#[test]
fn a_full_queue_drops_the_oldest_repeat_first_and_counts_it() {
    let rt = runtime();
    let port = common::free_port();
    let yaml = format!(
        "{FAST}receivers:\n  - name: hook\n    queue_capacity: 2\n    webhook:\n      url: \"http://127.0.0.1:{port}/\"\n{}",
        rule("hook")
    );
    let mut h = Harness::start(rt, &yaml);
    let fire_a = h.round(0, &[kafka("a", 500), kafka("b", 0)]);
    // The worker takes `fire a` and keeps retrying it (nobody listens).
    common::wait_until("the first attempt", Duration::from_secs(5), || {
        h.metric("lagwatch_notifications_retries_total{receiver=\"hook\"}") >= 1.0
    });
    let repeat_a = h.round(60, &[kafka("a", 500), kafka("b", 500)]); // repeat a, fire b: queue full
    assert_eq!(repeat_a.len(), 2);
    h.round(70, &[kafka("a", 0), kafka("b", 500)]);
    // `resolve a` evicts the queued `repeat a`; then `repeat b` finds the queue full
    // of state changes only ([fire b, resolve a]) and is itself dropped.
    let resolve_a = h.round(130, &[kafka("a", 0), kafka("b", 500)]);
    assert_eq!(resolve_a.len(), 2);
    common::wait_until("two drops", Duration::from_secs(5), || {
        h.metric("lagwatch_notifications_dropped_total{receiver=\"hook\"}") == 2.0
    });

    let back = Capture::start_on(&h.rt, port);
    let got = back.wait_for(3, Duration::from_secs(10));
    let types: Vec<String> = got
        .iter()
        .map(|c| {
            let p = c.json();
            format!(
                "{} {}",
                p["eventType"].as_str().unwrap(),
                p["data"]["group"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        types,
        ["LagAlertFired a", "LagAlertFired b", "LagAlertResolved a"]
    );
    assert_eq!(got[0].json()["eventId"], fire_a[0].event_id.to_string());
    h.stop();
}

#[test]
fn shutdown_flushes_what_it_can_and_counts_the_rest_as_dropped() {
    // A receiver that is up gets everything before run() returns.
    let rt = runtime();
    let cap = Capture::start(&rt);
    let yaml = format!(
        "{FAST}receivers:\n  - name: hook\n    webhook:\n      url: \"{}\"\n{}",
        cap.url("/"),
        rule("hook")
    );
    let mut h = Harness::start(rt, &yaml);
    h.round(0, &[kafka("a", 500), kafka("b", 500), kafka("c", 500)]);
    h.stop();
    assert_eq!(cap.requests().len(), 3, "flushed before returning");

    // A receiver that is down: the flush deadline (300 ms) bounds the wait.
    let rt = runtime();
    let port = common::free_port();
    let yaml = format!(
        "defaults:\n  retry_backoff: 50ms\n  retry_backoff_max: 100ms\n  flush_timeout: 300ms\nreceivers:\n  - name: hook\n    webhook:\n      url: \"http://127.0.0.1:{port}/\"\n{}",
        rule("hook")
    );
    let mut h = Harness::start(rt, &yaml);
    h.round(0, &[kafka("a", 500), kafka("b", 500)]);
    let took = h.stop();
    assert!(took < Duration::from_secs(3), "stopped after {took:?}");
    assert_eq!(
        h.metric("lagwatch_notifications_dropped_total{receiver=\"hook\"}"),
        2.0
    );
}

#[test]
fn past_the_retry_budget_a_notification_is_a_dead_letter_and_a_late_resolve_still_arrives() {
    // The receiver is down longer than the budget (3 attempts, 50-200 ms
    // apart): both fires are given up on, counted and kept as dead letters,
    // none silently lost. The resolve queued during the outage keeps being
    // retried (a resolve gets at least a day) and arrives once it is back.
    let rt = runtime();
    let port = common::free_port();
    let yaml = format!(
        "defaults:\n  retry_backoff: 50ms\n  retry_backoff_max: 200ms\n  retry_max_attempts: 3\n  timeout: 2s\n  flush_timeout: 2s\nreceivers:\n  - name: hook\n    webhook:\n      url: \"http://127.0.0.1:{port}/\"\n{}",
        rule("hook")
    );
    let mut h = Harness::start(rt, &yaml);
    let fired = h.round(0, &[kafka("a", 500), kafka("b", 500)]);
    assert_eq!(fired.len(), 2);
    common::wait_until("two dead letters", Duration::from_secs(10), || {
        h.state.dead_letters().len() == 2
    });
    let dead = h.state.dead_letters();
    assert_eq!(
        dead.iter()
            .map(|d| (d.notification.event_id, d.reason.as_str(), d.attempts))
            .collect::<Vec<_>>(),
        fired
            .iter()
            .map(|n| (n.event_id, "connect", 3))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        h.metric("lagwatch_notifications_dead_letters_total{reason=\"connect\",receiver=\"hook\"}"),
        2.0
    );
    // a clears (resolve_after 60 s): its resolve is queued while still down,
    // and outlives 3 attempts.
    h.round(10, &[kafka("a", 0), kafka("b", 500)]);
    // (b is still firing: its repeat is queued behind the resolve.)
    let resolved: Vec<Notification> = h
        .round(75, &[kafka("a", 0), kafka("b", 500)])
        .into_iter()
        .filter(|n| n.kind == lagwatch::alert::EventKind::Resolved)
        .collect();
    assert_eq!(resolved.len(), 1);
    common::wait_until(
        "five failed resolve attempts",
        Duration::from_secs(10),
        || h.metric("lagwatch_notifications_retries_total{receiver=\"hook\"}") >= 9.0,
    );
    assert_eq!(
        h.state.dead_letters().len(),
        2,
        "a resolve is not given up on"
    );
    let back = Capture::start_on(&h.rt, port);
    let got = back.wait_for(1, Duration::from_secs(10));
    assert_eq!(
        got[0].json()["eventId"],
        resolved[0].event_id.to_string(),
        "the resolve arrives after the outage"
    );
    // Every notification is accounted for: delivered or dead-lettered.
    common::wait_until("the deliveries to count", Duration::from_secs(5), || {
        h.metric("lagwatch_notification_queue_depth{receiver=\"hook\"}") == 0.0
    });
    let sent = h.metric("lagwatch_notifications_sent_total{receiver=\"hook\"}");
    assert_eq!(
        sent as usize + h.state.dead_letters().len(),
        4,
        "2 fires dead, resolve and repeat sent"
    );
    assert_eq!(
        h.metric("lagwatch_notifications_dropped_total{receiver=\"hook\"}"),
        0.0
    );
    h.stop();
}

#[test]
fn notifications_undelivered_at_shutdown_are_kept_in_the_state_file_and_delivered_after_a_restart()
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let port = common::free_port();
    let yaml = format!(
        "defaults:\n  retry_backoff: 50ms\n  retry_backoff_max: 100ms\n  flush_timeout: 300ms\nreceivers:\n  - name: hook\n    webhook:\n      url: \"http://127.0.0.1:{port}/\"\n{}",
        rule("hook")
    );
    let mut h = Harness::start_with_state(runtime(), &yaml, Some(path.clone()));
    let sent = h.round(0, &[kafka("a", 500), kafka("b", 500)]);
    h.stop();
    assert_eq!(
        h.metric("lagwatch_notifications_dropped_total{receiver=\"hook\"}"),
        0.0,
        "kept, not dropped"
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["pending"].as_array().map(Vec::len), Some(2), "{doc}");

    // The next lagwatch resumes them, in order, same event ids.
    let rt = runtime();
    let back = Capture::start_on(&rt, port);
    let mut h = Harness::start_with_state(rt, &yaml, Some(path.clone()));
    let got = back.wait_for(2, Duration::from_secs(10));
    let ids: Vec<Value> = got.iter().map(|c| c.json()["eventId"].clone()).collect();
    assert_eq!(
        ids,
        sent.iter()
            .map(|n| Value::from(n.event_id.to_string()))
            .collect::<Vec<_>>()
    );
    h.stop();
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["pending"].as_array().map(Vec::len), Some(0), "{doc}");
}

#[test]
fn the_log_receiver_writes_one_line_per_notification() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // One thread, so the notifier's tasks log through the subscriber set here.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let yaml = format!(
        "receivers:\n  - name: console\n    log: {{}}\n{}",
        rule("console")
    );
    let mut h = Harness::start(rt, &yaml);
    h.round(0, &[kafka("a", 500)]);
    h.round(10, &[kafka("a", 0)]);
    h.round(70, &[kafka("a", 0)]);
    h.stop();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("receiver=console"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("event=\"LagAlertFired\"") || lines[0].contains("event=LagAlertFired"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("FIRING lag-high (critical): Kafka group `a` on `prod`"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("RESOLVED lag-high"), "{}", lines[1]);
    assert_eq!(
        h.metric("lagwatch_notifications_sent_total{receiver=\"console\"}"),
        2.0
    );
}

/// Seconds since the epoch, for the signature's replay window.
fn truth_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A receiver process (tests/fixtures/https_receiver.py), killed on drop.
struct PyReceiver {
    child: std::process::Child,
    port: u16,
}

impl PyReceiver {
    fn start(mode: &str, tls: Option<(&std::path::Path, &std::path::Path)>) -> PyReceiver {
        use std::io::BufRead as _;
        let python = common::require_binary("python3");
        let port = common::free_port();
        let mut cmd = std::process::Command::new(python);
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/https_receiver.py"
        ))
        .arg(port.to_string())
        .arg(mode)
        .stdout(std::process::Stdio::piped());
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        PyReceiver { child, port }
    }
}

impl Drop for PyReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a server certificate for 127.0.0.1 signed by it, made
/// with the openssl command: (ca.pem, cert.pem, key.pem).
fn private_ca(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = common::require_binary("openssl");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=lagwatch test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// An internal receiver behind a private CA is reached over https once its CA
/// is configured (and refused without it); a receiver that echoes the request
/// back in a 400 does not get its headers or secrets into the dead letter.
#[test]
fn a_private_ca_receiver_is_reached_and_an_echoing_receiver_leaks_nothing() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path());
    let tls = PyReceiver::start("ok", Some((&cert, &key)));
    let echo = PyReceiver::start("echo", None);
    let yaml = format!(
        "{FAST}  retry_max_attempts: 2\nreceivers:\n  - name: private\n    webhook:\n      url: \"https://127.0.0.1:{tls}/hook\"\n    tls:\n      ca_file: \"{ca}\"\n  - name: untrusted\n    webhook:\n      url: \"https://127.0.0.1:{tls}/hook\"\n  - name: echo\n    webhook:\n      url: \"http://127.0.0.1:{echo}/hook\"\n      headers:\n        Authorization: \"Bearer ech0-credential\"\n      hmac_secret: \"signing-secret-that-echoes\"\n{}",
        rule("private, untrusted, echo"),
        tls = tls.port,
        echo = echo.port,
        ca = ca.display(),
    );
    let mut h = Harness::start(rt, &yaml);
    h.round(0, &[kafka("a", 500)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.metric("lagwatch_notifications_sent_total{receiver=\"private\"}") < 1.0
        || h.state.dead_letters().len() < 2
    {
        assert!(
            Instant::now() < deadline,
            "private sent {}, dead letters {:?}",
            h.metric("lagwatch_notifications_sent_total{receiver=\"private\"}"),
            h.state.dead_letters()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dead = h.state.dead_letters();
    let untrusted = dead
        .iter()
        .find(|d| d.receiver == "untrusted")
        .expect("untrusted dead letter");
    assert_eq!(
        h.metric("lagwatch_notifications_sent_total{receiver=\"untrusted\"}"),
        0.0
    );
    assert_ne!(untrusted.reason, "http_4xx", "{untrusted:?}");
    let echoed = dead
        .iter()
        .find(|d| d.receiver == "echo")
        .expect("echo dead letter");
    assert!(echoed.detail.starts_with("HTTP 400"), "{}", echoed.detail);
    for secret in ["ech0-credential", "signing-secret-that-echoes"] {
        assert!(
            !echoed.detail.contains(secret),
            "{secret} in {}",
            echoed.detail
        );
    }
    assert!(!echoed.detail.contains('\n'), "{}", echoed.detail);
    h.stop();
}

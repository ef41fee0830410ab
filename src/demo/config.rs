//! The demo's lagwatch config, scaled to the story's speed.

use super::story;
use crate::config::Settings;

#[allow(
    clippy::too_many_lines,
    reason = "one YAML document, easier to read whole than split"
)]
/// The demo's lagwatch config: the mock Kafka (explicit groups: the mock cluster
/// has no ListGroups), the JetStream server if any, short windows for the story.
pub(super) fn demo_config(
    bootstrap: &str,
    nats: Option<&str>,
    speed: f64,
    port: u16,
) -> Result<Settings, String> {
    let at_least =
        |s: f64, floor_ms: f64| format!("{}ms", (s / speed * 1000.0).max(floor_ms).round());
    let secs = |s: f64| at_least(s, 1000.0);
    let mut yaml = format!(
        r#"http:
  listen: 127.0.0.1:{port}
poll_interval: {poll}
request_timeout: 2s
shutdown_timeout: 5s
metrics:
  granularity: partition
analysis:
  window: {window}
  min_span: {min_span}
  expire_after: {window}
  thresholds:
    stop_after: {window}
  diagnosis:
    baseline_window: {baseline_window}
    baseline_min: {baseline_min}
dead_letters:
  # Several groups read orders.created: say whose dead letters these are.
  kafka:
    topics:
      - dead_letter_topic: {dlq}
        topic: orders.created
        group: payment-service
recommend:
  target_drain_time: {drain}
  learn_after: {learn}
  min_backlog: {min_backlog}
  scale_in_after: {window}
  # The mock cluster cannot describe groups, so the running replicas are told.
  groups:
    - pattern: "^analytics$"
      replicas: {analytics}
    - pattern: "."
      replicas: 1
alerts:
  defaults:
    for: {alert_for}
    resolve_after: {resolve}
    repeat_interval: 1h
    flush_timeout: 2s
  receivers:
    - name: terminal
      log: {{}}
  rules:
    - name: consumer-stopped
      condition: status
      threshold: [STOP]
      severity: critical
      receivers: [terminal]
    - name: lag-too-old
      condition: lag_seconds
      threshold: {old}
      severity: warning
      receivers: [terminal]
    - name: needs-more-consumers
      condition: replicas_short
      severity: info
      receivers: [terminal]
    - name: orders-dead-lettered
      condition: dead_letters
      threshold: 0
      severity: warning
      receivers: [terminal]
sources:
  - name: demo-kafka
    kafka:
      bootstrap_servers: ["{bootstrap}"]
      groups: [inventory-service, payment-service, email-service, analytics]
"#,
        poll = secs(2.0),
        // At high speeds the 1 s floor of the poll must still leave room for
        // min_samples (3) polls and min_span inside the window.
        window = at_least(40.0, 4000.0),
        min_span = secs(6.0),
        // The flash sale starts 30 s into the story: a baseline from the
        // first 20 s of normal traffic names it a producer spike.
        baseline_window = secs(120.0),
        baseline_min = secs(20.0),
        drain = secs(60.0),
        learn = secs(10.0),
        min_backlog = secs(4.0),
        alert_for = secs(4.0),
        resolve = secs(8.0),
        old = secs(20.0),
        analytics = story::ANALYTICS_CONSUMERS,
        dlq = story::DEAD_LETTER_TOPIC,
    );
    if let Some(url) = nats {
        yaml.push_str(&format!(
            "  - name: demo-nats\n    jetstream:\n      servers: [\"{url}\"]\n"
        ));
    }
    crate::config::from_yaml("demo", &yaml, &|_| None).map_err(|e| e.to_string())
}

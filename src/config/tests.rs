//! Config parsing and validation cases.

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "KAFKA_PASSWORD" => Some("s3cret-pw".into()),
        "HOST" => Some("broker1:9092".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml("test.yaml", text, &env)
}

fn problems(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("config should be rejected")
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect()
}

const MINIMAL: &str =
    "sources:\n  - name: prod\n    kafka:\n      bootstrap_servers: [\"b:9092\"]\n";

#[test]
fn a_minimal_config_gets_every_default() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.http.listen, DEFAULT_LISTEN);
    assert_eq!(c.poll_interval, Seconds::from_secs(30));
    assert_eq!(c.request_timeout, Seconds::from_secs(10));
    assert_eq!(c.log.format, LogFormat::Text);
    let k = c.sources[0].kafka.as_ref().unwrap();
    assert_eq!(k.isolation_level, IsolationLevel::ReadUncommitted);
    let t = c.timing(&c.sources[0]);
    assert_eq!(t.poll_interval, std::time::Duration::from_secs(30));
}

#[test]
fn env_variables_are_interpolated_with_defaults() {
    let c = parse(
        "sources:\n  - name: prod\n    kafka:\n      bootstrap_servers: [\"${HOST}\", \"${OTHER:-b2:9092}\"]\n      properties:\n        sasl.password: \"${KAFKA_PASSWORD}\"\n        note: \"costs $$5\"\n",
    )
    .unwrap();
    let k = c.sources[0].kafka.as_ref().unwrap();
    assert_eq!(k.bootstrap_servers, vec!["broker1:9092", "b2:9092"]);
    assert_eq!(k.properties["sasl.password"], "s3cret-pw");
    assert_eq!(k.properties["note"], "costs $5");
}

#[test]
fn a_missing_variable_names_the_variable_and_the_path() {
    let p =
        problems("sources:\n  - name: prod\n    kafka:\n      bootstrap_servers: [\"${NOPE}\"]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("sources[0].kafka.bootstrap_servers[0]"),
        "{p:?}"
    );
    assert!(p[0].contains("`NOPE` is not set"), "{p:?}");
    assert!(p[0].starts_with("line 4:"), "{p:?}");
}

#[test]
fn every_problem_is_reported_at_once_with_its_path_and_line() {
    let p = problems(
        "poll_interval: 500ms\nsources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n      poll_interval: 0s\n  - name: a\n    jetstream:\n      servers: []\n",
    );
    assert!(
        p.iter()
            .any(|m| m == "line 1: poll_interval: must be at least 1s (got 500ms)"),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m == "line 6: sources[0].kafka.poll_interval: must be at least 1s (got 0s)"),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("line 7: sources[1].name: duplicate source name `a`")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("line 9: sources[1].jetstream.servers: at least one")),
        "{p:?}"
    );
    assert_eq!(p.len(), 4, "{p:?}");
}

#[test]
fn an_unknown_key_is_rejected_with_its_path() {
    let p = problems("sources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n      pol_interval: 5s\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("sources[0].kafka"), "{p:?}");
    assert!(p[0].contains("unknown field `pol_interval`"), "{p:?}");
}

#[test]
fn a_secret_from_the_environment_never_appears_in_an_error() {
    // The password lands in a field that expects a list: serde echoes the value.
    let err = parse(
        "sources:\n  - name: a\n    kafka:\n      bootstrap_servers: \"${KAFKA_PASSWORD}\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(!err.contains("s3cret-pw"), "{err}");
    assert!(err.contains("sources[0].kafka.bootstrap_servers"), "{err}");
}

#[test]
fn durations_without_a_unit_are_refused() {
    let p = problems("poll_interval: 30\nsources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n");
    assert!(
        p[0].contains("poll_interval: `30` has no unit; write it like `30s`"),
        "{p:?}"
    );
}

#[test]
fn nats_auth_debug_output_hides_secrets() {
    let a = NatsAuth {
        user: Some("mon".into()),
        password: Some("hunter22".into()),
        token: Some("tok123".into()),
        ..NatsAuth::default()
    };
    let s = format!("{a:?}");
    assert!(!s.contains("hunter22") && !s.contains("tok123"), "{s}");
}

#[test]
fn line_map_finds_nested_paths() {
    let text = "http:\n  listen: x\nsources:\n  - name: a\n    kafka:\n      groups:\n        - g1\n        - g2\n";
    let m = locate::LineMap::build(text);
    assert_eq!(m.line_of("http.listen"), Some(2));
    assert_eq!(m.line_of("sources[0].name"), Some(4));
    assert_eq!(m.line_of("sources[0].kafka.groups[1]"), Some(8));
    assert_eq!(m.line_of("sources[0].kafka.nothing"), Some(5));
}

#[test]
fn kafka_config_debug_output_hides_secret_properties() {
    let c = parse("sources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n      properties:\n        sasl.password: \"${KAFKA_PASSWORD}\"\n        ssl.key.password: literal-secret\n        sasl.username: alice\n").unwrap();
    let s = format!("{c:?}");
    assert!(
        !s.contains("s3cret-pw") && !s.contains("literal-secret"),
        "{s}"
    );
    assert!(
        s.contains("alice"),
        "non-secret properties stay readable: {s}"
    );
}

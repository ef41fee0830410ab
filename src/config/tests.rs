//! Config parsing and validation cases.

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "KAFKA_PASSWORD" => Some("s3cret-pw".into()),
        "HOST" => Some("broker1:9092".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Settings, ConfigError> {
    from_yaml("test.yaml", text, &env)
}

fn kafka(s: &Settings) -> &KafkaSettings {
    match &s.sources[0].kind {
        SourceKind::Kafka(k) => k,
        SourceKind::Jetstream(_) => panic!("not a Kafka source"),
    }
}

fn jetstream(s: &Settings) -> &JetstreamSettings {
    match &s.sources[0].kind {
        SourceKind::Jetstream(j) => j,
        SourceKind::Kafka(_) => panic!("not a JetStream source"),
    }
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
    assert_eq!(c.http.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.shutdown_timeout, std::time::Duration::from_secs(20));
    assert_eq!(kafka(&c).isolation_level, IsolationLevel::ReadUncommitted);
    let t = c.sources[0].timing;
    assert_eq!(t.poll_interval, std::time::Duration::from_secs(30));
    assert_eq!(t.request_timeout, std::time::Duration::from_secs(10));
    assert_eq!(c.sources[0].granularity, Granularity::Topic);
    assert_eq!((c.shard.index, c.shard.count), (0, 1));
}

#[test]
fn env_variables_are_interpolated_with_defaults() {
    let c = parse(
        "sources:\n  - name: prod\n    kafka:\n      bootstrap_servers: [\"${HOST}\", \"${OTHER:-b2:9092}\"]\n      properties:\n        sasl.password: \"${KAFKA_PASSWORD}\"\n        note: \"costs $$5\"\n",
    )
    .unwrap();
    let k = kafka(&c);
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
            .any(|m| m == "line 1: poll_interval: must be between 1s and 1h (got 500ms)"),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m
                == "line 6: sources[0].kafka.poll_interval: must be between 1s and 1h (got 0s)"),
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
    for a in [
        NatsAuth::UserPassword {
            user: "mon".into(),
            password: "hunter22".into(),
        },
        NatsAuth::Token("tok123".into()),
        NatsAuth::NkeySeed("SUAseed".into()),
    ] {
        let s = format!("{a:?}");
        assert!(
            !s.contains("hunter22") && !s.contains("tok123") && !s.contains("SUAseed"),
            "{s}"
        );
    }
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

#[test]
fn an_unknown_key_does_not_hide_the_other_problems_of_the_file() {
    // The issue's example: a misspelt key, a zero interval and a bad address.
    let p = problems(
        "http:\n  listen: nope\nsources:\n  - name: a\n    kafka:\n      bootstrap_server: [\"b:1\"]\n      poll_interval: 0s\n",
    );
    let want = [
        "line 6: sources[0].kafka.bootstrap_server: unknown field `bootstrap_server`",
        "line 2: http.listen: `nope` is not an IP:port address",
        "line 7: sources[0].kafka.poll_interval: must be between 1s and 1h (got 0s)",
        "line 5: sources[0].kafka.bootstrap_servers: at least one host:port is required",
    ];
    for w in want {
        assert!(
            p.iter().any(|m| m.starts_with(w)),
            "missing `{w}` in {p:#?}"
        );
    }
    assert_eq!(p.len(), want.len(), "{p:#?}");
}

#[test]
fn several_wrong_types_are_all_reported_and_nothing_is_reported_twice() {
    let p = problems(
        "poll_interval: [1]\nrequest_timeout: 30\nsources:\n  - name: a\n    kafka:\n      bootstrap_servers: \"b:1\"\n",
    );
    assert!(
        p.iter()
            .any(|m| m.contains("poll_interval: invalid type: sequence")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("request_timeout: `30` has no unit")),
        "{p:?}"
    );
    // The dropped list is not reported again as missing.
    let servers: Vec<_> = p
        .iter()
        .filter(|m| m.contains("bootstrap_servers"))
        .collect();
    assert_eq!(servers.len(), 1, "{p:?}");
    assert!(servers[0].contains("invalid type: string"), "{p:?}");
}

#[test]
fn a_missing_rule_condition_is_reported_with_the_others() {
    let p = problems(
        "alerts:\n  receivers: [{name: r, log: {}}]\n  rules:\n    - {name: a, receivers: [r]}\n    - {name: b, condition: lag_messages, threshold: -1, receivers: [r]}\nsources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n",
    );
    assert!(
        p.iter()
            .any(|m| m.contains("alerts.rules[0].condition: is required")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("alerts.rules[1].threshold: must be a finite number")),
        "{p:?}"
    );
}

#[test]
fn the_same_group_listed_twice_is_polled_once() {
    let c = parse("sources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n      groups: [g2, g1, g2]\n").unwrap();
    assert_eq!(kafka(&c).groups, ["g1", "g2"]);
}

#[test]
fn the_jetstream_api_prefix_follows_domain_or_prefix() {
    let js = |extra: &str| {
        let c = parse(&format!(
            "sources:\n  - name: n\n    jetstream:\n      servers: [\"nats://x:4222\"]\n{extra}"
        ))
        .unwrap();
        jetstream(&c).api_prefix.clone()
    };
    assert_eq!(js(""), "$JS.API");
    assert_eq!(js("      domain: hub\n"), "$JS.hub.API");
    assert_eq!(js("      api_prefix: \"$$JS.acc.API.\"\n"), "$JS.acc.API");
}

#[test]
fn the_shard_index_comes_from_the_hostname_ordinal() {
    let text = "shard: {count: 3, index_from_hostname: true}\nsources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n";
    let host = |h: &'static str| move |name: &str| (name == "HOSTNAME").then(|| h.to_string());
    let c = from_yaml("t", text, &host("lagwatch-2")).unwrap();
    assert_eq!((c.shard.index, c.shard.count), (2, 3));
    let e = from_yaml("t", text, &host("lagwatch-7"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shard: index 7 is out of range for count 3"),
        "{e}"
    );
    let e = from_yaml("t", text, &host("lagwatch"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not end in -ORDINAL"), "{e}");
}

// ---------------------------------------------------------------------------
// analysis:
// ---------------------------------------------------------------------------

fn section(name: &str, yaml: &str) -> Result<Settings, ConfigError> {
    section_for_tests(name, yaml)
}

fn section_problems(name: &str, yaml: &str) -> Vec<String> {
    section(name, yaml)
        .expect_err("refused")
        .problems
        .into_iter()
        .map(|p| p.path)
        .collect()
}

fn group(name: &str) -> crate::model::GroupKey {
    crate::model::GroupKey {
        source: crate::model::SourceId::new("k"),
        scope: None,
        group: std::sync::Arc::from(name),
    }
}

#[test]
fn an_empty_analysis_section_gives_the_documented_defaults() {
    let s = section("analysis", "{}").unwrap().analysis;
    assert_eq!(s.window, std::time::Duration::from_secs(600));
    assert_eq!(s.min_samples, 3);
    assert_eq!(s.min_span, std::time::Duration::from_secs(30));
    assert_eq!(s.max_samples_per_key, 64);
    assert_eq!(s.expire_after, std::time::Duration::from_secs(900));
    let t = s.thresholds.for_group(&group("any"));
    assert_eq!(*t, crate::analysis::Thresholds::default());
    assert_eq!(t.stop_after_ms, 1_200_000);
}

#[test]
fn analysis_problems_are_reported_with_their_dotted_paths() {
    let paths = section_problems(
        "analysis",
        "window: 10m\nmin_samples: 1\nmin_span: 20m\nmax_samples_per_key: 1\nexpire_after: 0s\nthresholds: {stop_after: 1m, error_time_lag: 0s}\ngroups: [{pattern: '(', stop_after: 2m}, {pattern: ''}]\nwindw: 5m",
    );
    assert_eq!(
        paths,
        vec![
            "analysis.windw",
            "analysis.min_samples",
            "analysis.min_span",
            "analysis.max_samples_per_key",
            "analysis.expire_after",
            "analysis.thresholds.error_time_lag",
            "analysis.thresholds.stop_after",
            "analysis.groups[0].pattern",
            "analysis.groups[0].stop_after",
            "analysis.groups[1].pattern",
        ]
    );
}

#[test]
fn the_first_matching_threshold_pattern_wins_and_unset_keys_inherit() {
    let s = section(
        "analysis",
        "thresholds: {allowed_lag: 5, error_lag: 1000}\ngroups:\n  - {pattern: '^pay', allowed_lag: 100}\n  - {pattern: 'pay', allowed_lag: 7, error_lag: 9}",
    )
    .unwrap()
    .analysis;
    let r = &s.thresholds;
    // case 1: matches both; the first wins; error_lag inherited from global.
    let t = r.for_group(&group("payments"));
    assert_eq!((t.allowed_lag, t.error_lag), (100, Some(1000)));
    // case 2: matches only the second.
    let t = r.for_group(&group("repay"));
    assert_eq!((t.allowed_lag, t.error_lag), (7, Some(9)));
    // case 3: matches none: global.
    let t = r.for_group(&group("orders"));
    assert_eq!((t.allowed_lag, t.error_lag), (5, Some(1000)));
}

// ---------------------------------------------------------------------------
// recommend:
// ---------------------------------------------------------------------------

#[test]
fn an_empty_recommend_section_gives_the_documented_defaults() {
    use crate::recommend::{KedaOptions, Mode, OffsetResetPolicy};
    let s = section("recommend", "{}").unwrap().recommend;
    let d = s.for_group(&group("any"));
    assert_eq!(d.mode, Mode::RateAware);
    assert_eq!((d.min_replicas, d.max_replicas), (1, None));
    assert_eq!(d.target_drain_time, std::time::Duration::from_secs(600));
    assert_eq!((d.headroom, d.tolerance), (0.2, 0.1));
    assert_eq!(d.scale_in_after, std::time::Duration::from_secs(600));
    assert_eq!(d.scale_in_max_time_lag, std::time::Duration::from_secs(30));
    assert_eq!(d.learn_after, std::time::Duration::from_secs(300));
    assert_eq!(d.min_backlog, std::time::Duration::from_secs(30));
    assert_eq!((d.capacity_per_replica, d.replicas), (None, None));
    assert_eq!(d.keda, KedaOptions::default());
    assert_eq!(d.keda.lag_threshold, 10);
    assert_eq!(d.keda.offset_reset_policy, OffsetResetPolicy::Latest);
    assert_eq!(
        (d.keda.min_replica_count, d.keda.max_replica_count),
        (0, 100)
    );
}

#[test]
fn unknown_recommend_keys_are_refused_at_every_level() {
    for bad in [
        "mdoe: keda",
        "keda: {lagThreshold: 5}",
        "groups: [{pattern: a, headrom: 1}]",
        "groups: [{pattern: a, keda: {lag_treshold: 1}}]",
        "mode: hpa",
    ] {
        assert!(section("recommend", bad).is_err(), "{bad}");
    }
}

#[test]
fn recommend_problems_are_reported_once_with_their_dotted_paths() {
    let paths = section_problems(
        "recommend",
        "min_replicas: 5\nmax_replicas: 3\ntarget_drain_time: 0s\nheadroom: -1\ntolerance: 1.5\ncapacity_per_replica: 0\nkeda: {lag_threshold: 0, allow_idle_consumers: true, limit_to_partitions_with_lag: true}\ngroups:\n  - {pattern: '(', max_replicas: 10}\n  - {pattern: 'x', min_replicas: 20, keda: {hpa_tolerance: 2}}",
    );
    assert_eq!(
        paths,
        vec![
            "recommend.min_replicas",
            "recommend.target_drain_time",
            "recommend.headroom",
            "recommend.tolerance",
            "recommend.capacity_per_replica",
            "recommend.keda.lag_threshold",
            "recommend.keda.limit_to_partitions_with_lag",
            // groups[0]: bad regex; its max 10 fixes min 5 > max 3, nothing new.
            "recommend.groups[0].pattern",
            // groups[1]: min 20 > inherited max 3 is new; so is its tolerance.
            "recommend.groups[1].min_replicas",
            "recommend.groups[1].keda.hpa_tolerance",
        ]
    );
}

#[test]
fn the_first_matching_recommend_pattern_wins_and_unset_keys_inherit() {
    use crate::recommend::Mode;
    let s = section(
        "recommend",
        "headroom: 0.5\nkeda: {lag_threshold: 100}\ngroups:\n  - {pattern: '^pay', mode: keda, keda: {activation_lag_threshold: 7}}\n  - {pattern: 'pay', replicas: 3}",
    )
    .unwrap()
    .recommend;
    // case 1: matches both: the first wins; lag_threshold and headroom inherited.
    let p = s.for_group(&group("payments"));
    assert_eq!(p.mode, Mode::Keda);
    assert_eq!(
        (p.keda.lag_threshold, p.keda.activation_lag_threshold),
        (100, 7)
    );
    assert_eq!((p.headroom, p.replicas), (0.5, None));
    // case 2: only the second.
    let p = s.for_group(&group("repay"));
    assert_eq!((p.mode, p.replicas), (Mode::RateAware, Some(3)));
    // case 3: none: the section.
    let p = s.for_group(&group("orders"));
    assert_eq!(
        (p.mode, p.keda.activation_lag_threshold),
        (Mode::RateAware, 0)
    );
}

#[test]
fn a_poll_interval_too_long_for_the_window_is_refused_with_one_that_works() {
    // The issue's case: a 5 m poll, a 10 m window, min_samples 3: 2 gaps of 5 m
    // just fit; 6 m does not.
    let ok = parse("poll_interval: 5m\nsources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n");
    assert!(ok.is_ok(), "{ok:?}");
    let p = problems("sources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n      poll_interval: 6m\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "line 5: sources[0].kafka.poll_interval: 6m is too long for analysis.window 10m"
        ),
        "{p:?}"
    );
    assert!(p[0].contains("poll at most every 5m"), "{p:?}");
}

#[test]
fn absurd_durations_are_refused_before_any_clock_arithmetic() {
    // request_timeout: 500000000000y used to panic in `Instant + Duration`.
    let p = problems(
        "request_timeout: 500000000000y\nshutdown_timeout: 2y\nsources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n      request_timeout: 1h\n      gone_after: 1s\n      poll_interval: 2s\n",
    );
    for want in [
        "line 1: request_timeout: `500000000000y` is longer than any lagwatch setting can use",
        "line 2: shutdown_timeout: `2y` is longer than any lagwatch setting can use",
        "line 7: sources[0].kafka.request_timeout: must be between 100ms and 5m (got 1h)",
        "line 8: sources[0].kafka.gone_after: must be at least the poll interval 2s (got 1s)",
    ] {
        assert!(
            p.iter().any(|m| m.starts_with(want)),
            "missing `{want}` in {p:#?}"
        );
    }
}

// ---- property tests (PROPTEST_CASES=100000 for a long run) ----

/// Lines a config could hold, right or wrong, at any indentation.
fn config_line() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    const LINES: &[&str] = &[
        "sources:",
        "- name: k",
        "kafka:",
        "jetstream:",
        "bootstrap_servers: [\"${HOST}\"]",
        "servers: [nats://x:4222]",
        "poll_interval: 1s",
        "poll_interval: -5",
        "request_timeout: 99999h",
        "http:",
        "listen: 0.0.0.0:9358",
        "api_token: 0123456789abcdefgh",
        "properties:",
        "sasl.password: 4321",
        "sasl.password: ${KAFKA_PASSWORD}",
        "groups: [\"a\", \"b\"]",
        "groups:",
        "- \"(unclosed\"",
        "alerts:",
        "rules:",
        "receivers:",
        "- name: r",
        "webhook: {url: \"http://x\"}",
        "condition: lag",
        "threshold: 10",
        "analysis:",
        "window: 5m",
        "${UNSET}",
        "max_connections: 3",
        "&a [*a]",
        "!!binary x",
    ];
    let key = prop_oneof![
        proptest::sample::select(LINES).prop_map(str::to_string),
        "[ -~]{0,20}",
    ];
    (0usize..4, key).prop_map(|(indent, k)| format!("{}{k}", "  ".repeat(indent)))
}

/// Whatever the file holds: no panic, and every problem says what and where
/// (a path, or a line, or it is about the whole file), without the secret.
#[test]
fn any_config_text_is_accepted_or_explained() {
    proptest::proptest!(|(lines in proptest::collection::vec(config_line(), 0..24))| {
        let text = lines.join("\n");
        if let Err(e) = parse(&text) {
            proptest::prop_assert!(!e.problems.is_empty(), "an error without problems");
            for p in &e.problems {
                proptest::prop_assert!(!p.message.is_empty(), "empty message in {e}");
                proptest::prop_assert!(
                    !p.path.is_empty() || p.line.is_some() || p.message.contains("file") || p.message.contains("YAML") || p.message.contains("sources"),
                    "problem with no path, no line: {p:?}\n{text}"
                );
                for secret in ["s3cret-pw", "4321"] {
                    proptest::prop_assert!(!p.message.contains(secret), "secret in {p:?}");
                }
            }
        }
    });
}

#[test]
fn literal_secrets_of_any_type_never_reach_an_error() {
    for (value, line) in [("123456", 7), ("12", 7), ("true", 7), ("[hunter2, x]", 7)] {
        let text = format!(
            "sources:\n  - name: k\n    kafka:\n      bootstrap_servers: [\"b:9092\"]\n      properties:\n        sasl.username: u\n        sasl.password: {value}\n"
        );
        let e = parse(&text).expect_err(value);
        let shown = e.to_string() + &format!("{:?}", e.problems);
        for secret in ["123456", "hunter2", "`12`", "`true`"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            e.problems
                .iter()
                .any(|p| p.line == Some(line) && p.path.ends_with("sasl.password")),
            "{shown}"
        );
    }
}

/// Found by the property test (proptest-regressions/config/tests.txt): a file
/// holding only `?` (a YAML complex key) was refused with serde's "invalid
/// type: unit value, expected field identifier" and no path.
#[test]
fn a_file_that_is_not_a_mapping_of_names_says_so() {
    for (text, fragment) in [
        ("?", "top-level keys must be names"),
        ("? [a]\n: 1\n", "found the key `- a`"),
        ("- sources\n", "it is a list"),
        ("5", "it is a number"),
    ] {
        let e = parse(text).expect_err(text);
        assert_eq!(e.problems.len(), 1, "{text:?}: {:?}", e.problems);
        assert!(
            e.problems[0].message.contains(fragment),
            "{text:?}: {:?}",
            e.problems
        );
    }
}

#[test]
fn short_api_tokens_are_refused() {
    let base = "sources:\n  - name: n\n    jetstream:\n      servers: [\"nats://x:4222\"]\n";
    let e = parse(&format!("http:\n  api_token: short-token\n{base}")).expect_err("short");
    assert!(
        e.problems
            .iter()
            .any(|p| p.path == "http.api_token" && p.message.contains("at least 16")),
        "{:?}",
        e.problems
    );
    assert!(!format!("{:?}", e.problems).contains("short-token"));
    assert!(parse(&format!("http:\n  api_token: 0123456789abcdef\n{base}")).is_ok());
    let e = parse(&format!(
        "http:\n  max_connections: 3\n  header_read_timeout: 0s\n{base}"
    ))
    .expect_err("limits");
    let paths: Vec<&str> = e.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(
        paths.contains(&"http.max_connections") && paths.contains(&"http.header_read_timeout"),
        "{paths:?}"
    );
}

#[test]
fn static_labels_are_kept_sorted_and_bad_ones_are_named() {
    let s = parse(
        "sources:\n  - name: a\n    labels: {env: prod, dc: eu1}\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n",
    )
    .unwrap();
    assert_eq!(
        s.sources[0].labels,
        vec![
            ("dc".to_string(), "eu1".to_string()),
            ("env".to_string(), "prod".to_string())
        ]
    );
    let long = "x".repeat(300);
    let p = problems(&format!(
        "sources:\n  - name: a\n    labels: {{group: x, 1dc: y, __x: z, env: '', ok: {long}}}\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n"
    ));
    let has = |needle: &str| p.iter().any(|m| m.contains(needle));
    assert!(
        has("sources[0].labels.group: `group` is a label lagwatch or Prometheus sets itself"),
        "{p:?}"
    );
    assert!(
        has("sources[0].labels.1dc: `1dc` is not a Prometheus label name"),
        "{p:?}"
    );
    assert!(
        has("sources[0].labels.__x: `__x`: names starting with `__` are reserved"),
        "{p:?}"
    );
    assert!(has("sources[0].labels.env: must not be empty"), "{p:?}");
    assert!(has("sources[0].labels.ok: 300 bytes; at most 256"), "{p:?}");
    let many: Vec<String> = (0..17).map(|i| format!("l{i}: v")).collect();
    let p = problems(&format!(
        "sources:\n  - name: a\n    labels: {{{}}}\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n",
        many.join(", ")
    ));
    assert!(
        p.iter()
            .any(|m| m.contains("sources[0].labels: 17 labels; at most 16 per source")),
        "{p:?}"
    );
}

#[test]
fn an_oauthbearer_token_file_needs_the_mechanism_and_excludes_librdkafkas_own_tokens() {
    let kafka_with = |props: &str| {
        format!(
            "sources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n      properties: {{{props}}}\n      oauthbearer: {{token_file: /var/run/token}}\n"
        )
    };
    let s = parse(&kafka_with(
        "sasl.mechanism: OAUTHBEARER, security.protocol: SASL_SSL",
    ))
    .unwrap();
    assert_eq!(
        kafka(&s).oauthbearer,
        Some(OAuthBearerSettings::TokenFile {
            path: "/var/run/token".into(),
            principal: None
        })
    );
    let iam = "sources:\n  - name: a\n    kafka:\n      bootstrap_servers: [\"b:9098\"]\n      properties: {sasl.mechanism: OAUTHBEARER, security.protocol: SASL_SSL}\n      oauthbearer: {aws_msk_iam: {region: eu-west-1}}\n";
    assert_eq!(
        kafka(&parse(iam).unwrap()).oauthbearer,
        Some(OAuthBearerSettings::AwsMskIam {
            region: "eu-west-1".into()
        })
    );
    let p = problems(&iam.replace("eu-west-1", "Ireland"));
    assert!(
        p.iter()
            .any(|m| m.contains("aws_msk_iam.region: `Ireland` is not an AWS region")),
        "{p:?}"
    );
    let p = problems(&iam.replace(
        "{aws_msk_iam: {region: eu-west-1}}",
        "{aws_msk_iam: {region: eu-west-1}, token_file: /t}",
    ));
    assert!(p.iter().any(|m| m.contains("not both")), "{p:?}");
    let p = problems(&kafka_with("security.protocol: SASL_SSL"));
    assert!(
        p.iter().any(|m| m.contains(
            "sources[0].kafka.oauthbearer: needs `properties.sasl.mechanism: OAUTHBEARER`"
        )),
        "{p:?}"
    );
    let p = problems(&kafka_with(
        "sasl.mechanism: OAUTHBEARER, sasl.oauthbearer.method: oidc",
    ));
    assert!(
        p.iter()
            .any(|m| m.contains("librdkafka fetches the tokens itself")),
        "{p:?}"
    );
}

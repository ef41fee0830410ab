//! Every malformed config under tests/fixtures/bad is refused by
//! `lagwatch check-config` and by `lagwatch run` with exit code 2 and a message
//! naming the path and the problem; none panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

use std::path::Path;
use std::process::Command;

/// (fixture, text the error must contain). Paths and line numbers are part of the
/// contract: an operator jumps straight to the line.
const CASES: &[(&str, &[&str])] = &[
    ("01-bad-yaml.yaml", &["line 5:", "not valid YAML"]),
    (
        "02-wrong-type.yaml",
        &["line 1: poll_interval: invalid type: sequence, expected a duration"],
    ),
    (
        "03-unknown-key.yaml",
        &["sources[0].kafka", "unknown field `bootstrap_server`"],
    ),
    (
        "04-empty-sources.yaml",
        &["line 1: sources: at least one source (kafka or jetstream) is required"],
    ),
    (
        "05-duplicate-names.yaml",
        &["line 5: sources[1].name: duplicate source name `a`"],
    ),
    (
        "06-zero-duration.yaml",
        &["line 5: sources[0].kafka.poll_interval: must be between 1s and 1h (got 0s)"],
    ),
    (
        "07-negative-duration.yaml",
        &["sources[0].kafka.request_timeout: `-5s`: a duration cannot be negative"],
    ),
    (
        "08-bad-listen.yaml",
        &["line 2: http.listen: `localhost-9090` is not an IP:port address"],
    ),
    (
        "09-missing-env.yaml",
        &["line 4: sources[0].kafka.bootstrap_servers[0]: environment variable `LAGWATCH_TEST_UNSET_VAR` is not set"],
    ),
    (
        "10-invalid-regex.yaml",
        &["line 6: sources[0].kafka.group_filter.allow[0]: invalid regex `orders-([`"],
    ),
    (
        "11-no-kind.yaml",
        &["line 2: sources[0]: needs exactly one of `kafka` or `jetstream`"],
    ),
    ("12-both-kinds.yaml", &["sources[0]: has both `kafka` and `jetstream`"]),
    ("13-empty-file.yaml", &["the file is empty"]),
    (
        "14-duration-without-unit.yaml",
        &["line 1: poll_interval: `30` has no unit; write it like `30s`"],
    ),
    (
        "15-bad-source-name.yaml",
        &["line 2: sources[0].name: `prod kafka` may contain only letters"],
    ),
    (
        "16-two-auth-methods.yaml",
        &["sources[0].jetstream.auth: set only one of user/password, token"],
    ),
    (
        "17-reserved-property.yaml",
        &["sources[0].kafka.properties.group.id: `group.id` is set by lagwatch itself"],
    ),
    ("18-bad-log-level.yaml", &["line 2: log.level: not a valid log filter"]),
    (
        "19-not-a-mapping.yaml",
        &["the file must be a mapping of keys (`sources:`, `http:`, ...); it is a list"],
    ),
];

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bad")
        .join(name)
}

fn check(args: &[&str], file: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lagwatch"))
        .args(args)
        .arg(file)
        .env_remove("LAGWATCH_TEST_UNSET_VAR")
        .output()
        .expect("run lagwatch");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("panicked"),
        "{file:?} made lagwatch panic:\n{stderr}"
    );
    (out.status.code(), stderr)
}

#[test]
fn every_bad_fixture_is_refused_with_exit_2_and_a_message_naming_path_and_problem() {
    let on_disk = std::fs::read_dir(fixture("")).unwrap().count();
    assert_eq!(on_disk, CASES.len(), "every fixture has a case in CASES");
    for (name, expected) in CASES {
        for args in [&["check-config"][..], &["run", "--config"][..]] {
            let (code, stderr) = check(args, &fixture(name));
            assert_eq!(code, Some(2), "{name} via {args:?}: {stderr}");
            for e in *expected {
                assert!(
                    stderr.contains(e),
                    "{name} via {args:?}: expected `{e}` in:\n{stderr}"
                );
            }
        }
    }
}

#[test]
fn an_unreadable_file_is_refused_with_exit_2() {
    let (code, stderr) = check(&["check-config"], Path::new("/nonexistent/lagwatch.yaml"));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/nonexistent/lagwatch.yaml"), "{stderr}");
    assert!(stderr.contains("cannot read file"), "{stderr}");
}

#[test]
fn the_example_config_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config.example.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_lagwatch"))
        .arg("check-config")
        .arg(&example)
        .env("KAFKA_PASSWORD", "example")
        .env("NATS_PASSWORD", "example")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lagwatch"))
            .args(args)
            .env_remove("LAGWATCH_CONFIG")
            .output()
            .unwrap()
    };
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(&["run"]).status.code(), Some(2), "run without --config");
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("check-config"));
    let version = run(&["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

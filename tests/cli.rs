//! `lagwatch describe`, its check mode and `lagwatch top`, run as a user runs
//! them, against a real Kafka broker (tansu) whose offsets the test set itself
//! (the oracle: what `kafka-consumer-groups --describe` would print), and
//! against a running daemon for the figures that need history. `top` is driven
//! in a real terminal (tmux).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::truth;
use common::truth::{commit_partitions as commit, produce_to as produce};
use common::{Daemon, Tansu};

/// Analysis fast enough for a test: a stuck group is STOP after 6 s.
const ANALYSIS: &str = "  window: 6s\n  min_span: 3s\n  thresholds:\n    stop_after: 6s\n";

fn lagwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lagwatch"))
        .args(args)
        .env_remove("LAGWATCH_API_TOKEN")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn config_file(dir: &tempfile::TempDir, bootstrap: &str) -> String {
    let path = dir.path().join("lagwatch.yaml");
    std::fs::write(&path, truth::kafka_config(bootstrap, ANALYSIS)).unwrap();
    path.display().to_string()
}

/// The table's committed, log-end and lag per partition equal what the test
/// wrote and committed, in JSON and in the kafka-consumer-groups layout.
#[test]
fn describe_prints_the_offsets_the_test_set() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = truth::name("describe");
    tansu.create_topic(&topic, 3);
    produce(&b, &topic, &[10, 20, 30]);
    let group = truth::name("billing");
    commit(&b, &group, &topic, &[10, 5, 0]);
    // The oracle: (partition, committed, log-end, lag).
    let oracle = [(0, 10, 10, 0), (1, 5, 20, 15), (2, 0, 30, 30)];
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &b);
    let pattern = format!("^{group}$");

    let out = lagwatch(&[
        "describe",
        "--config",
        &config,
        "--group",
        &pattern,
        "--partitions",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = &v["groups"][0];
    assert_eq!(v["groups"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(g["group"], group.as_str());
    assert_eq!(g["lag"], 45, "{g}");
    let mut rows: Vec<(i64, i64, i64, u64)> = g["partition_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["committed"].as_i64().unwrap(),
                p["latest"].as_i64().unwrap(),
                p["lag"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort_unstable();
    assert_eq!(rows, oracle.map(|(p, c, l, lag)| (p, c, l, lag)), "{g}");

    let out = lagwatch(&[
        "describe",
        "--config",
        &config,
        "--group",
        &pattern,
        "--partitions",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.lines().any(|l| l.split_whitespace().take(6).eq([
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG"
        ])),
        "{table}"
    );
    // One poll cannot know the status: it says so instead of claiming OK.
    let group_row: Vec<&str> = table
        .lines()
        .find(|l| l.contains(&group))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(group_row[2..4], ["–", "45"], "{table}");
    for (p, c, l, lag) in oracle {
        let row = table
            .lines()
            .find(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                cells.len() >= 6 && cells[1] == topic && cells[2] == p.to_string()
            })
            .unwrap_or_else(|| panic!("no row for partition {p}:\n{table}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells[3..6],
            [c.to_string(), l.to_string(), lag.to_string()],
            "{row}"
        );
    }
    // The group row, and the plain word on what one poll cannot know.
    assert!(
        table
            .lines()
            .any(|l| l.contains(&group) && l.contains(" 45 ")),
        "{table}"
    );
    assert!(
        text(&out.stderr).contains("need history"),
        "{}",
        text(&out.stderr)
    );
}

/// Against a running daemon: its rates and status; the check mode's exit
/// codes for a group that is caught up, one that is behind and one that
/// stopped; `top` worst first, in a real terminal and as plain text.
#[test]
fn from_a_daemon_describe_checks_and_top_show_its_history() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let quiet = truth::name("quiet");
    let busy = truth::name("busy");
    tansu.create_topic(&quiet, 1);
    tansu.create_topic(&busy, 1);
    produce(&b, &quiet, &[5]);
    let caught = truth::name("caught");
    commit(&b, &caught, &quiet, &[5]);
    let stuck = truth::name("stuck");
    produce(&b, &busy, &[50]);
    commit(&b, &stuck, &busy, &[10]);
    let daemon = Daemon::start(&truth::kafka_config(&b, ANALYSIS));
    let from = format!("http://{}", daemon.addr);
    // Keep producing to the stuck group's topic: it falls behind, then STOP.
    let stop_producing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (b, busy, stop) = (b.clone(), busy.clone(), stop_producing.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                produce(&b, &busy, &[5]);
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let status_of = |group: &str| -> Option<String> {
        let (code, body) = daemon.get("/api/v1/groups");
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["groups"]
            .as_array()?
            .iter()
            .find(|g| g["group"] == group)
            .and_then(|g| g["status"].as_str().map(str::to_string))
    };
    common::wait_until("the stuck group is STOP", Duration::from_secs(90), || {
        status_of(&stuck).as_deref() == Some("STOP") && status_of(&caught).as_deref() == Some("OK")
    });

    // describe --from: the daemon's rates and status.
    let out = lagwatch(&[
        "describe",
        "--from",
        &from,
        "--format",
        "json",
        "--group",
        &format!("^{stuck}$"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = &v["groups"][0];
    assert_eq!(g["status"], "STOP", "{g}");
    assert!(g["produce_rate"].as_f64().is_some_and(|r| r > 0.0), "{g}");
    assert!(
        g["lag_seconds"]["at_least_seconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{g}"
    );

    // Check mode: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    let check = |extra: &[&str]| {
        let mut args = vec!["describe", "--from", &from, "--check"];
        args.extend_from_slice(extra);
        let out = lagwatch(&args);
        (out.status.code(), text(&out.stdout))
    };
    let caught_re = format!("^{caught}$");
    let stuck_re = format!("^{stuck}$");
    let (code, line) = check(&["--group", &caught_re, "--max-lag-seconds", "300"]);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("LAGWATCH OK - 1 group"), "{line}");
    let (code, line) = check(&["--group", &stuck_re, "--fail-on", "ERR"]);
    assert_eq!(code, Some(1), "a lagging group: {line}");
    assert!(line.contains("WARNING") && line.contains("STOP"), "{line}");
    let (code, line) = check(&["--group", &stuck_re]);
    assert_eq!(code, Some(2), "a stopped group: {line}");
    assert!(line.starts_with("LAGWATCH CRITICAL"), "{line}");
    let (code, line) = check(&["--group", &caught_re, "--max-lag", "0"]);
    assert_eq!(code, Some(0), "{line}");
    let (code, line) = check(&["--group", "^no-such-group$"]);
    assert_eq!(code, Some(3), "{line}");
    assert!(line.contains("no group matches"), "{line}");
    let out = lagwatch(&["describe", "--from", "http://127.0.0.1:1", "--check"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));

    // top, plain: worst first.
    let out = lagwatch(&["top", "--from", &from, "--count", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plain = text(&out.stdout);
    let first = plain
        .lines()
        .find(|l| l.contains(&stuck) || l.contains(&caught))
        .unwrap_or("");
    assert!(first.contains(&stuck), "the stopped group first:\n{plain}");

    // top in a real terminal (tmux): worst first, and `q` quits.
    let tmux = common::require_binary("tmux");
    let session = truth::name("top");
    let cmd = format!(
        "NO_COLOR=1 {} top --from {from} --interval 1s",
        env!("CARGO_BIN_EXE_lagwatch")
    );
    let ok = Command::new(&tmux)
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "220",
            "-y",
            "40",
            &cmd,
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let capture = || {
        text(
            &Command::new(&tmux)
                .args(["capture-pane", "-p", "-t", &session])
                .output()
                .unwrap()
                .stdout,
        )
    };
    common::wait_until("top draws its table", Duration::from_secs(30), || {
        capture().contains(&stuck)
    });
    let screen = capture();
    assert!(
        screen.contains("lagwatch top — sort: worst first"),
        "{screen}"
    );
    let first = screen
        .lines()
        .find(|l| l.contains(&stuck) || l.contains(&caught))
        .unwrap_or("");
    assert!(first.contains(&stuck) && first.contains("STOP"), "{screen}");
    // `s` sorts by name: the caught group (`caught-...`) comes first.
    Command::new(&tmux)
        .args(["send-keys", "-t", &session, "s", "s"])
        .status()
        .unwrap();
    common::wait_until("sorted by name", Duration::from_secs(10), || {
        let s = capture();
        s.contains("sort: name")
            && s.lines()
                .find(|l| l.contains(&stuck) || l.contains(&caught))
                .is_some_and(|l| l.contains(&caught))
    });
    Command::new(&tmux)
        .args(["send-keys", "-t", &session, "q"])
        .status()
        .unwrap();
    common::wait_until("top quits on q", Duration::from_secs(10), || {
        !Command::new(&tmux)
            .args(["has-session", "-t", &session])
            .status()
            .unwrap()
            .success()
    });
    stop_producing.store(true, std::sync::atomic::Ordering::Relaxed);
    producer.join().unwrap();
}

/// `--wait-until-caught-up` returns 0 once the group has consumed everything,
/// and 2 when it does not within the limit.
#[test]
fn wait_until_caught_up_returns_when_the_group_drains() {
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let topic = truth::name("drain");
    tansu.create_topic(&topic, 1);
    produce(&b, &topic, &[40]);
    let group = truth::name("deploying");
    commit(&b, &group, &topic, &[0]);
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &b);
    let pattern = format!("^{group}$");

    // Not caught up within 3 s: CRITICAL.
    let out = lagwatch(&[
        "describe",
        "--config",
        &config,
        "--group",
        &pattern,
        "--wait-until-caught-up",
        "3s",
        "--interval",
        "1s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("not caught up within 3s")
            && text(&out.stdout).contains("lag 40"),
        "{}",
        text(&out.stdout)
    );

    // The consumer catches up while the command waits: exit 0.
    let child = Command::new(env!("CARGO_BIN_EXE_lagwatch"))
        .args([
            "describe",
            "--config",
            &config,
            "--group",
            &pattern,
            "--wait-until-caught-up",
            "90s",
            "--interval",
            "1s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    commit(&b, &group, &topic, &[40]);
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("caught up"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        text(&out.stderr).contains("waiting:"),
        "{}",
        text(&out.stderr)
    );
}

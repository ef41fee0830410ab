//! The zero-setup demo runs to completion and tells its story, and its status
//! page works in a real headless Chromium.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn demo(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_lagwatch"))
        .arg("demo")
        .args(args)
        .env("RUST_LOG", "warn,lagwatch::alert=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn the_demo_plays_the_flash_sale_story_to_completion() {
    // nats-server must be there so the JetStream part plays too.
    common::require_binary("nats-server");
    let mut child = demo(&["--speed", "4", "--port", "0", "--summary-every", "5"]);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "the demo did not finish within 150 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status:?}\n{out}\n{err}");
    for line in [
        "email-service stopped (STOP):          yes",
        "email-service recovered (OK):          yes",
        "analytics scale-out recommended:       yes",
        "analytics partition-bound:             yes",
        "JetStream part:                        played",
    ] {
        assert!(out.contains(line), "missing `{line}` in:\n{out}\n{err}");
    }
    let counts = out
        .lines()
        .find(|l| l.contains("notifications fired / resolved:"))
        .unwrap();
    let nums: Vec<u32> = counts
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    assert!(nums[0] >= 2 && nums[1] >= 1, "{counts}");
    // Some orders failed payment-service's validation during the sale.
    let parked: u64 = out
        .lines()
        .find(|l| l.contains("orders dead-lettered (orders.created.dlq):"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dead-letter line in:\n{out}"));
    assert!(parked > 0, "{out}");
    assert!(err.contains("FIRING orders-dead-lettered"), "{err}");
    // Each notification was printed by the built-in log receiver as it happened.
    assert!(err.contains("FIRING consumer-stopped"), "{err}");
    assert!(err.contains("RESOLVED consumer-stopped"), "{err}");
    // The live summary was printed along the way.
    assert!(out.matches("(story)").count() >= 3, "{out}");
}

#[test]
fn the_status_page_shows_every_group_in_headless_chromium() {
    let chromium = common::require_binary("chromium");
    let port = common::free_port();
    let mut child = demo(&[
        "--speed",
        "4",
        "--port",
        &port.to_string(),
        "--summary-every",
        "30",
    ]);
    let addr = format!("127.0.0.1:{port}");
    // Wait until analytics is deep in the spike: non-OK with a real backlog.
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "analytics never lagged"
        );
        if let Ok((200, body)) = common::http_get(&addr, "/api/v1/groups") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let behind = v["groups"].as_array().unwrap().iter().any(|g| {
                g["group"] == "analytics"
                    && g["status"].as_str().is_some_and(|s| s != "OK")
                    && g["lag"].as_u64().is_some_and(|l| l > 1000)
            });
            if behind {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let dir = tempfile::tempdir().unwrap();
    let browse = |extra: &[&str]| {
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=4000",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", dir.path().display()))
            .args(extra)
            .arg(format!("http://{addr}/"))
            .output()
            .unwrap()
    };
    let dom = browse(&["--dump-dom"]);
    let html = String::from_utf8_lossy(&dom.stdout).to_string();
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let png = browse(&[&format!("--screenshot={}", shot.display())]);
    // SIGTERM, as Ctrl-C would: the demo stops its nats-server on the way out
    // (SIGKILL would orphan it).
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped_cleanly = child.try_wait().unwrap().is_some();
    if !stopped_cleanly {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        stopped_cleanly,
        "the demo did not stop within 20 s of SIGTERM"
    );
    for group in [
        "inventory-service",
        "payment-service",
        "email-service",
        "analytics",
    ] {
        assert!(html.contains(group), "the page lacks {group}:\n{html}");
    }
    assert!(
        html.contains("demo-kafka (kafka) up"),
        "sources line:\n{html}"
    );
    // analytics' row carries a non-OK status class during the spike.
    let row = html
        .split("<tr")
        .find(|r| r.contains(">analytics<"))
        .unwrap();
    assert!(
        ["WARN", "STALL", "STOP", "ERR", "REWIND"]
            .iter()
            .any(|s| row.contains(&format!("status {s}"))),
        "analytics row: {row}"
    );
    // ...and its main cause beside the status, the numbers on hover.
    assert!(row.contains("class=\"cause\""), "analytics row: {row}");
    assert!(
        png.status.success() && shot.exists() && std::fs::metadata(&shot).unwrap().len() > 10_000,
        "screenshot: {}",
        String::from_utf8_lossy(&png.stderr)
    );
}

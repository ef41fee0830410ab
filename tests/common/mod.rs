//! Test helpers: real brokers (tansu, nats-server), a real Prometheus, and the
//! lagwatch binary, each on free 127.0.0.1 ports, stopped when dropped (also on
//! panic). A missing binary FAILS the test with the command that installs it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test and benchmark code: a panic is a failed run with its line; table tests are long by design"
)]
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of helpers"
)]

pub mod capture;
pub mod load;
pub mod proxy;
pub mod truth;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const INSTALL_HINT: &str =
    "run `sudo scripts/test-env.sh` (or `scripts/test.sh`, which runs it first)";

/// The tokio runtime tests drive async clients and servers on: two workers,
/// as on the 2-core CI machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// Finds `name` on PATH or in ~/.cargo/bin, or fails the test with an install hint.
pub fn require_binary(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.push(PathBuf::from("/usr/sbin"));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not installed, and this test needs the real thing: {INSTALL_HINT}");
}

/// Waits until `ready` returns true, or panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// A minimal blocking HTTP/1.1 GET: (status, body). Enough for health checks and
/// scraping /metrics without pulling an async client into every helper.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (status, head, body) = split_response(&text);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// An HTTP/1.1 answer as (status, head, body); status 0 when there is none.
pub fn split_response(text: &str) -> (u16, &str, &str) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A child process killed when dropped.
struct Managed {
    child: Option<Child>,
}

impl Managed {
    fn spawn(cmd: &mut Command, what: &str) -> Managed {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}; {INSTALL_HINT}"));
        Managed { child: Some(child) }
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
    /// Sends a signal (`STOP`, `CONT`, ...) with kill(1).
    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([&format!("-{sig}"), &c.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill -{sig} {} failed", c.id());
        }
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tansu Kafka-protocol broker with in-memory storage on a free port.
pub struct Tansu {
    pub port: u16,
    /// The port clients are told to use (the broker's own, or a proxy's).
    pub advertised: u16,
    proc: Managed,
    dir: tempfile::TempDir,
}

impl Tansu {
    pub fn start() -> Tansu {
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let proc = Self::launch(port, port, dir.path());
        Tansu {
            port,
            advertised: port,
            proc,
            dir,
        }
    }

    /// A tansu that tells clients to connect to `advertised` (a proxy in
    /// front of it, see [`proxy`]) instead of its own port.
    pub fn start_behind(advertised: u16) -> Tansu {
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let proc = Self::launch(port, advertised, dir.path());
        Tansu {
            port,
            advertised,
            proc,
            dir,
        }
    }

    fn launch(port: u16, advertised: u16, dir: &Path) -> Managed {
        let bin = require_binary("tansu");
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised_url = format!("tcp://127.0.0.1:{advertised}");
        let log = std::fs::File::create(dir.join("tansu.log")).expect("log file");
        let proc = Managed::spawn(
            Command::new(bin)
                .current_dir(dir)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &advertised_url,
                    "--storage-engine",
                    "memory://tansu/",
                ])
                .env("RUST_LOG", "warn")
                .stdout(log.try_clone().expect("log file"))
                .stderr(log),
            "tansu",
        );
        wait_until(
            "tansu to accept connections",
            Duration::from_secs(20),
            || port_open(port),
        );
        proc
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.advertised)
    }

    /// The broker's process id (for /proc readings in benchmarks).
    pub fn pid(&self) -> Option<u32> {
        self.proc.child.as_ref().map(|c| c.id())
    }

    /// Kills the broker (its in-memory data is gone).
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Starts a fresh broker on the same port.
    pub fn restart(&mut self) {
        self.proc.kill();
        self.proc = Self::launch(self.port, self.advertised, self.dir.path());
    }

    /// SIGSTOP: the broker holds its connections open and answers nothing.
    pub fn pause(&self) {
        self.proc.signal("STOP");
    }

    /// SIGCONT after [`Tansu::pause`].
    pub fn resume(&self) {
        self.proc.signal("CONT");
    }

    pub fn running(&mut self) -> bool {
        self.proc.running()
    }

    /// Creates a topic with `tansu topic create`.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        self.create_topic_with(name, partitions, &[]);
    }

    /// Creates a topic with topic configs (`retention.ms`, ...).
    pub fn create_topic_with(&self, name: &str, partitions: u32, configs: &[(&str, &str)]) {
        let mut cmd = Command::new(require_binary("tansu"));
        cmd.args([
            "topic",
            "create",
            "--broker",
            &format!("tcp://127.0.0.1:{}", self.port),
            "--partitions",
            &partitions.to_string(),
        ]);
        for (k, v) in configs {
            cmd.args(["--config", &format!("{k}={v}")]);
        }
        let out = cmd.arg(name).output().expect("run tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Deletes a topic with `tansu topic delete` (its groups' offsets go with it).
    pub fn delete_topic(&self, name: &str) {
        let out = Command::new(require_binary("tansu"))
            .args([
                "topic",
                "delete",
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
                name,
            ])
            .output()
            .expect("run tansu topic delete");
        assert!(
            out.status.success(),
            "tansu topic delete {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A nats-server with JetStream on free ports (client and monitoring).
pub struct Nats {
    pub port: u16,
    pub monitor_port: u16,
    proc: Managed,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Nats {
    pub fn start() -> Nats {
        Self::start_with(&[])
    }

    /// `extra`: more nats-server arguments (e.g. `--user u --pass p`).
    pub fn start_with(extra: &[&str]) -> Nats {
        let port = free_port();
        let monitor_port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let proc = Self::launch(port, monitor_port, dir.path(), &extra);
        Nats {
            port,
            monitor_port,
            proc,
            dir,
            extra,
        }
    }

    fn launch(port: u16, monitor_port: u16, dir: &Path, extra: &[String]) -> Managed {
        let bin = require_binary("nats-server");
        let store = dir.join("js");
        let log = std::fs::File::create(dir.join("nats.log")).expect("log file");
        let proc = Managed::spawn(
            Command::new(bin)
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .args(["-m", &monitor_port.to_string(), "-js", "-sd"])
                .arg(&store)
                .args(extra)
                .stdout(log.try_clone().expect("log file"))
                .stderr(log),
            "nats-server",
        );
        let health = format!("127.0.0.1:{monitor_port}");
        wait_until("nats-server /healthz", Duration::from_secs(20), || {
            matches!(http_get(&health, "/healthz"), Ok((200, _)))
        });
        proc
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn monitor(&self) -> String {
        format!("127.0.0.1:{}", self.monitor_port)
    }

    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Starts the server again on the same ports and store (streams survive).
    pub fn restart(&mut self) {
        self.proc.kill();
        self.proc = Self::launch(self.port, self.monitor_port, self.dir.path(), &self.extra);
    }

    /// SIGSTOP: the server holds its connections open and answers nothing.
    pub fn pause(&self) {
        self.proc.signal("STOP");
    }

    /// SIGCONT after [`Nats::pause`].
    pub fn resume(&self) {
        self.proc.signal("CONT");
    }
}

/// The lagwatch binary under test, with a config written to a temp dir.
pub struct Daemon {
    pub addr: String,
    child: Option<Child>,
    logs: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `lagwatch run` with `config` (YAML text; `http.listen` should be
    /// 127.0.0.1:0) and waits for its "listening on" line.
    pub fn start(config: &str) -> Daemon {
        Self::start_with_env(config, &[])
    }

    /// As [`Daemon::start`], with extra environment variables (e.g.
    /// `LAGWATCH_FAULT`, see src/fault.rs).
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Daemon {
        Self::start_binary(Path::new(env!("CARGO_BIN_EXE_lagwatch")), config, env)
    }

    /// As [`Daemon::start_with_env`], with another build of lagwatch (a
    /// benchmark comparing builds).
    pub fn start_binary(bin: &Path, config: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("lagwatch.yaml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(bin)
            .args(["run", "--config"])
            .arg(&path)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,lagwatch=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lagwatch");
        let stderr = child.stderr.take().expect("piped stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    if let Some(t) = tx.take() {
                        let _ = t.send(line[i + "listening on http://".len()..].trim().to_string());
                    }
                }
                let mut l = sink.lock().expect("log lock");
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "lagwatch did not start listening; its log:\n{}",
                    logs.lock().expect("log lock")
                )
            });
        Daemon {
            addr,
            child: Some(child),
            logs,
            _dir: dir,
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "/metrics answered {status}");
        body
    }

    pub fn logs(&self) -> String {
        self.logs.lock().expect("log lock").clone()
    }

    /// The daemon's process id (for /proc readings in benchmarks).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Waits until /metrics has a line `series value` (series written exactly as
    /// exposed, labels in order), failing with the last body seen.
    pub fn wait_metric(&self, series: &str, value: &str, timeout: Duration) {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < timeout {
            last = self.metrics();
            if metric_value(&last, series).as_deref() == Some(value) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out after {timeout:?} waiting for `{series} {value}`; it was {:?}.\nlogs:\n{}",
            metric_value(&last, series),
            self.logs()
        );
    }

    /// SIGKILL: no shutdown, no flush, no final state write.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status (None if it had to be killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The value of one exposed series (`name{labels}` exactly), if present.
pub fn metric_value(body: &str, series: &str) -> Option<String> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.to_string())
    })
}

/// Runs `promtool check metrics` on an exposition; returns its complaints
/// (empty when the text passes every lint).
pub fn promtool_check_metrics(body: &str) -> String {
    let mut child = Command::new(require_binary("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        String::new()
    } else {
        text
    }
}

/// A real Prometheus Alertmanager on a free port, clustering off, routing every
/// alert to a receiver that sends nothing. Its API is what lagwatch posts to.
pub struct Alertmanager {
    pub port: u16,
    proc: Managed,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        Self::start_with("route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n")
    }

    /// An Alertmanager that sends every notification group to the webhook
    /// `url`, grouping by alert name, source and group, within about a second.
    pub fn start_routing_to(url: &str) -> Alertmanager {
        Self::start_with(&format!(
            "route:\n  receiver: hook\n  group_by: [alertname, source, group]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: \"{url}\"\n        send_resolved: true\n"
        ))
    }

    fn start_with(config_text: &str) -> Alertmanager {
        let bin = require_binary("prometheus-alertmanager");
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, config_text).expect("write alertmanager config");
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).expect("log file");
        let proc = Managed::spawn(
            Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Empty: no gossip cluster, no second port.
                .arg("--cluster.listen-address=")
                .stdout(log.try_clone().expect("log file"))
                .stderr(log),
            "prometheus-alertmanager",
        );
        let addr = format!("127.0.0.1:{port}");
        wait_until("alertmanager /-/ready", Duration::from_secs(30), || {
            matches!(http_get(&addr, "/-/ready"), Ok((200, _)))
        });
        Alertmanager {
            port,
            proc,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GET /api/v2/alerts: the alerts Alertmanager holds as active (resolved
    /// ones are not listed).
    pub fn alerts(&self) -> serde_json::Value {
        let (status, body) = http_get(&format!("127.0.0.1:{}", self.port), "/api/v2/alerts")
            .expect("GET /api/v2/alerts");
        assert_eq!(status, 200, "alertmanager answered {status}: {body}");
        serde_json::from_str(&body).expect("alertmanager alerts are JSON")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        self.proc.running()
    }
}

/// A real Prometheus server on a free port, scraping the given targets (job
/// `lagwatch`, so `up{job="lagwatch"}` means what the alert rules expect), with
/// optional rule files loaded and evaluated at the scrape interval.
pub struct Prometheus {
    pub port: u16,
    proc: Managed,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `scrape_targets` (`host:port`, path /metrics)
    /// every `scrape_interval`, and waits for /-/ready.
    pub fn start(scrape_targets: &[&str], scrape_interval: Duration) -> Prometheus {
        Self::start_with_rules(scrape_targets, scrape_interval, &[])
    }

    /// As [`Prometheus::start`], also loading `rule_files` (evaluated every
    /// `scrape_interval`; see [`Prometheus::rules`]).
    pub fn start_with_rules(
        scrape_targets: &[&str],
        scrape_interval: Duration,
        rule_files: &[&Path],
    ) -> Prometheus {
        let bin = require_binary("prometheus");
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let interval = format!("{}ms", scrape_interval.as_millis().max(1));
        let targets: Vec<String> = scrape_targets.iter().map(|t| format!("\"{t}\"")).collect();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|p| format!("  - \"{}\"\n", p.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {interval}\n\
             rule_files:\n{}\
             scrape_configs:\n  - job_name: lagwatch\n    static_configs:\n      - targets: [{}]\n",
            if rules.is_empty() { "  []\n".to_string() } else { rules.concat() },
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus config");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let proc = Managed::spawn(
            Command::new(bin)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(log.try_clone().expect("log file"))
                .stderr(log),
            "prometheus",
        );
        let mut p = Prometheus { port, proc, dir };
        let addr = p.addr();
        let start = Instant::now();
        while !matches!(http_get(&addr, "/-/ready"), Ok((200, _))) {
            assert!(
                p.proc.running() && start.elapsed() < Duration::from_secs(30),
                "prometheus did not become ready; its log:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// GET `path` on the HTTP API: (status, parsed JSON body).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) =
            http_get(&self.addr(), path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let json = serde_json::from_str(&body).unwrap_or_else(|e| {
            panic!("prometheus answered {status} with a body that is not JSON ({e}): {body}")
        });
        (status, json)
    }

    /// An instant query (`/api/v1/query`): the whole answer
    /// (`{"status": ..., "data": {"resultType": ..., "result": [...]}}` or
    /// `{"status": "error", "errorType": ..., "error": ...}`) and the HTTP status.
    pub fn query_status(&self, expr: &str) -> (u16, serde_json::Value) {
        self.get(&format!("/api/v1/query?query={}", url_encode(expr)))
    }

    /// An instant query that must succeed (HTTP 200, status success): its answer.
    pub fn query(&self, expr: &str) -> serde_json::Value {
        let (status, v) = self.query_status(expr);
        assert!(
            status == 200 && v["status"] == "success",
            "query {expr} failed ({status}): {v}"
        );
        v
    }

    /// The result vector of an instant query (empty: no data).
    pub fn query_result(&self, expr: &str) -> Vec<serde_json::Value> {
        self.query(expr)["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `/api/v1/rules`: every rule group with each rule's health and last error.
    pub fn rules(&self) -> serde_json::Value {
        let (status, v) = self.get("/api/v1/rules");
        assert_eq!(status, 200, "{v}");
        v
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters kept).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Validates the core objects among `objects` (CRDs such as ServiceMonitor
/// and PrometheusRule have no schema there) with `kubernetes-validate
/// --strict`, and that each passed; `what` names the set in a failure.
pub fn kubernetes_validate(objects: &[serde_yaml::Value], what: &str) {
    let validator = require_binary("kubernetes-validate");
    let core: Vec<&serde_yaml::Value> = objects
        .iter()
        .filter(|o| {
            !matches!(
                o["kind"].as_str().unwrap_or(""),
                "ServiceMonitor" | "PrometheusRule"
            )
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("objects.yaml");
    let text: String = core
        .iter()
        .map(|o| format!("---\n{}", serde_yaml::to_string(o).expect("yaml")))
        .collect();
    std::fs::write(&file, text).expect("write objects");
    let out = Command::new(validator)
        .arg("--strict")
        .arg(&file)
        .output()
        .expect("kubernetes-validate runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}: {report}");
    assert_eq!(
        report.matches(" passed for resource ").count(),
        core.len(),
        "{what}: every object passes:\n{report}"
    );
}

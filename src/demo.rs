//! The zero-setup demo (`lagwatch demo`): an in-process Kafka (librdkafka's mock
//! cluster) playing a flash-sale story, optionally a nats-server with a slow
//! JetStream consumer, and lagwatch watching it all through its real code paths
//! (sources, analysis, notifications, HTTP), with a live summary in the terminal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tokio::sync::watch;

use crate::config::Config;
use crate::engine::Snapshot;
use crate::model::Status;

/// The flash-sale story at speed 1: times in seconds, rates in messages/second.
/// At speed S every time is divided by S and every rate multiplied by S, so the
/// story keeps its shape (and its message counts) in less time.
pub mod story {
    /// Length of the whole story.
    pub const LENGTH: f64 = 180.0;
    /// Normal order rate, and the spike.
    pub const BASE_RATE: f64 = 20.0;
    pub const SPIKE_RATE: f64 = 160.0;
    pub const SPIKE_FROM: f64 = 30.0;
    pub const SPIKE_TO: f64 = 90.0;
    /// email-service is down during this interval.
    pub const EMAIL_DOWN_FROM: f64 = 20.0;
    pub const EMAIL_DOWN_TO: f64 = 100.0;
    /// Partitions of orders.created.
    pub const PARTITIONS: i32 = 4;
    /// analytics runs this many consumers, each this fast: too slow for the spike.
    pub const ANALYTICS_CONSUMERS: u32 = 2;
    pub const ANALYTICS_RATE_EACH: f64 = 25.0;
    /// JetStream: orders shipped at this rate, picked by a slower consumer.
    pub const JS_RATE: f64 = 10.0;
    pub const JS_CONSUME_RATE: f64 = 4.0;

    /// Orders per second at story time `t`.
    pub fn order_rate(t: f64) -> f64 {
        if (SPIKE_FROM..SPIKE_TO).contains(&t) {
            SPIKE_RATE
        } else {
            BASE_RATE
        }
    }
}

/// `lagwatch demo` options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Story speed-up factor (1 = about three minutes).
    pub speed: f64,
    /// Stop after this long (default: the whole story plus a short epilogue).
    pub duration: Option<Duration>,
    /// HTTP port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Seconds between terminal summaries.
    pub summary_every: Duration,
}

/// What the story showed, checked at the end (the demo test asserts on it).
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub email_stopped: bool,
    pub email_recovered: bool,
    pub analytics_scale_out: bool,
    pub analytics_partition_bound: bool,
    pub notifications_fired: u64,
    pub notifications_resolved: u64,
    pub jetstream: bool,
}

impl Report {
    pub fn lines(&self) -> Vec<String> {
        let yes = |b: bool| if b { "yes" } else { "NO" };
        vec![
            format!(
                "email-service stopped (STOP):          {}",
                yes(self.email_stopped)
            ),
            format!(
                "email-service recovered (OK):          {}",
                yes(self.email_recovered)
            ),
            format!(
                "analytics scale-out recommended:       {}",
                yes(self.analytics_scale_out)
            ),
            format!(
                "analytics partition-bound:             {}",
                yes(self.analytics_partition_bound)
            ),
            format!(
                "notifications fired / resolved:        {} / {}",
                self.notifications_fired, self.notifications_resolved
            ),
            format!(
                "JetStream part:                        {}",
                if self.jetstream { "played" } else { "skipped" }
            ),
        ]
    }
}

fn scaled(secs: f64, speed: f64) -> Duration {
    Duration::from_secs_f64((secs / speed).max(0.0))
}

/// Keeps the mock cluster alive on its own thread (it is not Send) until `stop`.
fn start_mock_cluster(stop: Arc<AtomicBool>) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("demo-kafka".into())
        .spawn(move || {
            let cluster = match MockCluster::new(3) {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start the mock Kafka cluster: {e}")));
                    return;
                }
            };
            if let Err(e) = cluster.create_topic("orders.created", story::PARTITIONS, 1) {
                let _ = tx.send(Err(format!("cannot create orders.created: {e}")));
                return;
            }
            let _ = tx.send(Ok(cluster.bootstrap_servers()));
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())?
}

/// Produces orders at the story's rate until `stop`.
fn producer(bootstrap: String, speed: f64, start: Instant, stop: Arc<AtomicBool>) {
    let p: BaseProducer = match ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "5")
        .create()
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "demo producer cannot start");
            return;
        }
    };
    let mut sent: f64 = 0.0;
    let mut last = Instant::now();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let t = start.elapsed().as_secs_f64() * speed;
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        sent += story::order_rate(t) * speed * dt;
        while sent >= 1.0 {
            n += 1;
            let key = format!("order-{n}");
            let payload = format!("{{\"type\":\"OrderCreated\",\"id\":{n}}}");
            let _ = p.send(BaseRecord::to("orders.created").key(&key).payload(&payload));
            sent -= 1.0;
        }
        p.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = p.flush(Duration::from_secs(2));
}

/// One consumer group member that consumes at most `rate` messages/second and
/// is absent while `down(t)`.
fn consumer(
    bootstrap: String,
    group: &'static str,
    rate: f64,
    down: fn(f64) -> bool,
    speed: f64,
    start: Instant,
    stop: Arc<AtomicBool>,
) {
    let mut c: Option<BaseConsumer> = None;
    let mut budget: f64 = 0.0;
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let t = start.elapsed().as_secs_f64() * speed;
        if down(t) {
            if c.take().is_some() {
                tracing::info!(group, "demo: consumer goes down");
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        if c.is_none() {
            let made: Result<BaseConsumer, _> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", group)
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "500")
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "500")
                .create();
            match made {
                Ok(consumer) => {
                    if let Err(e) = consumer.subscribe(&["orders.created"]) {
                        tracing::error!(group, error = %e, "demo consumer cannot subscribe");
                        return;
                    }
                    c = Some(consumer);
                    last = Instant::now();
                    budget = 0.0;
                }
                Err(e) => {
                    tracing::error!(group, error = %e, "demo consumer cannot start");
                    return;
                }
            }
        }
        let Some(consumer) = &c else { continue };
        budget = (budget + rate * speed * last.elapsed().as_secs_f64()).min(rate * speed);
        last = Instant::now();
        if budget < 1.0 {
            // Throttled: no poll, which would hand over (and consume) a message;
            // the budget refills long before max.poll.interval.ms runs out.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(50)) {
            budget -= 1.0;
        }
    }
}

/// A consumer group of the story: name, msgs/s per member, when it is down, members.
type ConsumerPlan = (&'static str, f64, fn(f64) -> bool, u32);

fn never(_: f64) -> bool {
    false
}
fn email_down(t: f64) -> bool {
    (story::EMAIL_DOWN_FROM..story::EMAIL_DOWN_TO).contains(&t)
}

/// The demo's lagwatch config: the mock Kafka (explicit groups: the mock cluster
/// has no ListGroups), the JetStream server if any, short windows for the story.
fn demo_config(
    bootstrap: &str,
    nats: Option<&str>,
    speed: f64,
    port: u16,
) -> Result<Config, String> {
    let secs = |s: f64| format!("{}ms", (s / speed * 1000.0).max(1000.0).round());
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
sources:
  - name: demo-kafka
    kafka:
      bootstrap_servers: ["{bootstrap}"]
      groups: [inventory-service, payment-service, email-service, analytics]
"#,
        poll = secs(2.0),
        window = secs(40.0),
        min_span = secs(6.0),
        drain = secs(60.0),
        learn = secs(10.0),
        min_backlog = secs(4.0),
        alert_for = secs(4.0),
        resolve = secs(8.0),
        old = secs(20.0),
        analytics = story::ANALYTICS_CONSUMERS,
    );
    if let Some(url) = nats {
        yaml.push_str(&format!(
            "  - name: demo-nats\n    jetstream:\n      servers: [\"{url}\"]\n"
        ));
    }
    Config::from_yaml("demo", &yaml, &|_| None).map_err(|e| e.to_string())
}

/// A nats-server for the JetStream part, when one is on PATH.
struct NatsServer {
    child: std::process::Child,
    url: String,
    _dir: std::path::PathBuf,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()
        .map(|a| a.port())
}

fn start_nats() -> Result<NatsServer, String> {
    let port = free_port().ok_or("no free port")?;
    let dir = std::env::temp_dir().join(format!("lagwatch-demo-{}", std::process::id()));
    let child = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("nats-server is not on PATH ({e}); install it (Debian: apt install nats-server) to see the JetStream part"))?;
    let server = NatsServer {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        _dir: dir,
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    Err("nats-server did not start listening".into())
}

/// Publishes shipments and consumes them slowly with a pull consumer.
async fn jetstream_story(url: String, speed: f64, stop: Arc<AtomicBool>) -> Result<(), String> {
    use async_nats::jetstream::{self, consumer, stream};
    use futures::StreamExt;
    let client = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
    let js = jetstream::new(client);
    let s = js
        .create_stream(stream::Config {
            name: "SHIPMENTS".into(),
            subjects: vec!["shipments.>".into()],
            max_messages: 100_000,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let c: consumer::PullConsumer = s
        .create_consumer(consumer::pull::Config {
            durable_name: Some("fulfillment".into()),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let pubs = {
        let js = js.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            let every = Duration::from_secs_f64(1.0 / (story::JS_RATE * speed));
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let _ = js
                    .publish("shipments.created", format!("shipment {n}").into())
                    .await;
                tokio::time::sleep(every).await;
            }
        })
    };
    let every = Duration::from_secs_f64(1.0 / (story::JS_CONSUME_RATE * speed));
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut batch) = c
            .fetch()
            .max_messages(1)
            .expires(Duration::from_millis(500))
            .messages()
            .await
        {
            while let Some(Ok(m)) = batch.next().await {
                let _ = m.ack().await;
            }
        }
        tokio::time::sleep(every).await;
    }
    pubs.abort();
    Ok(())
}

/// One terminal line per group, worst first.
fn summary(snap: &Snapshot, t: f64) -> Vec<String> {
    let mut out = vec![format!(
        "— t={t:>5.0}s (story) ———————————————————————————————————————————"
    )];
    let mut rows: Vec<(Status, String)> = Vec::new();
    for src in &snap.sources {
        if !src.up {
            out.push(format!("  {} is DOWN", src.id));
            continue;
        }
        for g in src.groups.iter() {
            let Some(a) = &g.analysis else { continue };
            let behind = a
                .time_lag_max
                .seconds()
                .map_or("?".to_string(), |s| format!("{s:.0}s"));
            let growth = a
                .lag_growth
                .map_or("–".to_string(), |r| format!("{r:+.0}/s"));
            let eta = a
                .eta_seconds
                .map_or("–".to_string(), |e| format!("{e:.0}s"));
            rows.push((
                a.status,
                format!(
                    "  {:<18} {:<6} lag {:>7}  behind {:>6}  growth {:>7}  eta {:>6}",
                    g.key.group,
                    a.status.as_str(),
                    a.lag_sum,
                    behind,
                    growth,
                    eta
                ),
            ));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    out.extend(rows.into_iter().map(|(_, l)| l));
    out
}

/// Runs the demo until the story ends or `shutdown` completes. Prints to stdout.
pub async fn run(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Report, crate::Error> {
    let speed = opts.speed.clamp(0.1, 100.0);
    // Clients stop first, the mock cluster last: a consumer closing against a
    // vanished cluster would wait for its coordinator.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_cluster = Arc::new(AtomicBool::new(false));
    let fail = |m: String| crate::Error::Task(format!("demo: {m}"));
    let bootstrap = start_mock_cluster(stop_cluster.clone()).map_err(fail)?;
    let nats = match start_nats() {
        Ok(n) => Some(n),
        Err(why) => {
            println!("JetStream part skipped: {why}");
            None
        }
    };
    let config = demo_config(
        &bootstrap,
        nats.as_ref().map(|n| n.url.as_str()),
        speed,
        opts.port,
    )
    .map_err(fail)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|source| crate::Error::Bind {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], opts.port)),
            source,
        })?;
    let addr = listener.local_addr().map_err(crate::Error::Http)?;
    println!("lagwatch demo: flash sale on orders.created at speed {speed}x");
    println!("  status page  http://{addr}/");
    println!("  metrics      http://{addr}/metrics");
    println!("  API          http://{addr}/api/v1/groups");
    println!("  Ctrl-C stops the demo.");

    let start = Instant::now();
    let mut threads = Vec::new();
    {
        let (b, s) = (bootstrap.clone(), stop.clone());
        threads.push(std::thread::spawn(move || producer(b, speed, start, s)));
    }
    let groups: [ConsumerPlan; 4] = [
        ("inventory-service", 400.0, never, 1),
        ("payment-service", 300.0, never, 1),
        ("email-service", 400.0, email_down, 1),
        (
            "analytics",
            story::ANALYTICS_RATE_EACH,
            never,
            story::ANALYTICS_CONSUMERS,
        ),
    ];
    for (group, rate, down, members) in groups {
        for _ in 0..members {
            let (b, s) = (bootstrap.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                consumer(b, group, rate, down, speed, start, s)
            }));
        }
    }
    let js_task = nats.as_ref().map(|n| {
        let (url, s) = (n.url.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = jetstream_story(url, speed, s).await {
                tracing::error!(error = %e, "demo JetStream part failed");
            }
        })
    });

    let story_end = opts
        .duration
        .unwrap_or_else(|| scaled(story::LENGTH, speed) + Duration::from_secs(5));
    let (snap_tx, mut snap_rx) = watch::channel::<Option<watch::Receiver<Arc<Snapshot>>>>(None);
    let stop_daemon = tokio_util::sync::CancellationToken::new();
    let daemon = {
        let stop_daemon = stop_daemon.clone();
        async move {
            crate::run_observed(config, listener, stop_daemon.cancelled_owned(), move |rx| {
                let _ = snap_tx.send(Some(rx));
            })
            .await
        }
    };
    let mut report = Report {
        jetstream: nats.is_some(),
        ..Report::default()
    };
    let watcher = async {
        let _ = snap_rx.changed().await;
        let Some(mut snaps) = snap_rx.borrow().clone() else {
            return;
        };
        let mut next_print = Instant::now() + opts.summary_every;
        let mut email_was_stopped = false;
        let mut seen_incidents = std::collections::HashSet::new();
        let mut open_before = std::collections::HashSet::new();
        let deadline = tokio::time::sleep(story_end);
        tokio::pin!(deadline);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                () = &mut shutdown => { println!("interrupted"); break }
                r = snaps.changed() => if r.is_err() { break },
            }
            let snap = snaps.borrow().clone();
            let t = start.elapsed().as_secs_f64() * speed;
            for src in &snap.sources {
                for g in src.groups.iter() {
                    let Some(a) = &g.analysis else { continue };
                    match &*g.key.group {
                        "email-service" => {
                            if a.status == Status::Stop {
                                email_was_stopped = true;
                                report.email_stopped = true;
                            }
                            if email_was_stopped
                                && t > story::EMAIL_DOWN_TO
                                && a.status == Status::Ok
                                // Caught up: only a commit interval's worth behind.
                                && a.time_lag_max.seconds().is_some_and(|s| s < 3.0)
                            {
                                report.email_recovered = true;
                            }
                        }
                        "analytics" => {
                            if let Some(r) = &g.recommendation {
                                if r.recommended.is_some_and(|n| {
                                    n > r.current.unwrap_or(story::ANALYTICS_CONSUMERS)
                                }) {
                                    report.analytics_scale_out = true;
                                }
                                if r.reason == crate::recommend::Reason::PartitionBound {
                                    report.analytics_partition_bound = true;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            let open: std::collections::HashSet<String> =
                snap.incidents.iter().map(|i| i.id.to_string()).collect();
            for id in &open {
                if seen_incidents.insert(id.clone()) {
                    report.notifications_fired += 1;
                }
            }
            for id in open_before.difference(&open) {
                let _ = id;
                report.notifications_resolved += 1;
            }
            open_before = open;
            if Instant::now() >= next_print {
                next_print = Instant::now() + opts.summary_every;
                for line in summary(&snap, t) {
                    println!("{line}");
                }
            }
        }
    };
    let (res, ()) = tokio::join!(daemon, async {
        watcher.await;
        stop_daemon.cancel();
    });
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = js_task {
        let _ = t.await;
    }
    for t in threads {
        let _ = t.join();
    }
    stop_cluster.store(true, Ordering::Relaxed);
    drop(nats);
    res?;
    println!("— story summary ———————————————————————————————————————————————");
    for l in report.lines() {
        println!("  {l}");
    }
    Ok(report)
}

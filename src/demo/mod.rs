//! The zero-setup demo (`lagwatch demo`): an in-process Kafka (librdkafka's mock
//! cluster) playing a flash-sale story, optionally a nats-server with a slow
//! JetStream consumer, and lagwatch watching it all through its real code paths
//! (sources, analysis, notifications, HTTP), with a live summary in the terminal.
//!
//! Demo-only code: the daemon never uses this module. `story.rs` is the script,
//! `kafka.rs` and `nats.rs` play it, `config.rs` is lagwatch's config for it,
//! `watch.rs` prints the summary and checks the story's checkpoints.

mod config;
mod kafka;
mod nats;
pub mod story;
mod watch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch as channel;
use tokio::task::JoinHandle;

use crate::snapshot::Snapshot;

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
    /// Orders payment-service parked in orders.created.dlq, as lagwatch saw.
    pub dead_letters: u64,
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
                "orders dead-lettered ({}): {:>4}",
                story::DEAD_LETTER_TOPIC,
                self.dead_letters
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

/// The story's actors, running until `stop`.
struct Players {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    jetstream: Option<JoinHandle<()>>,
}

impl Players {
    /// Starts the producer, every consumer group member and the JetStream part.
    fn start(bootstrap: &str, nats: Option<&str>, speed: f64, start: Instant) -> Players {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (b, s) = (bootstrap.to_string(), stop.clone());
            threads.push(std::thread::spawn(move || {
                kafka::producer(b, speed, start, s)
            }));
        }
        let groups: [kafka::ConsumerPlan; 4] = [
            ("inventory-service", 400.0, kafka::never, 1),
            ("payment-service", 300.0, kafka::never, 1),
            ("email-service", 400.0, kafka::email_down, 1),
            (
                "analytics",
                story::ANALYTICS_RATE_EACH,
                kafka::never,
                story::ANALYTICS_CONSUMERS,
            ),
        ];
        for (group, rate, down, members) in groups {
            for _ in 0..members {
                let (b, s) = (bootstrap.to_string(), stop.clone());
                threads.push(std::thread::spawn(move || {
                    kafka::consumer(b, group, rate, down, speed, start, s)
                }));
            }
        }
        let jetstream = nats.map(|url| {
            let (url, s) = (url.to_string(), stop.clone());
            tokio::spawn(async move {
                if let Err(e) = nats::jetstream_story(url, speed, s).await {
                    tracing::error!(error = %e, "demo JetStream part failed");
                }
            })
        });
        Players {
            stop,
            threads,
            jetstream,
        }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.jetstream {
            let _ = t.await;
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Runs the demo until the story ends or `shutdown` completes. Prints to stdout.
pub async fn run(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Report, crate::Error> {
    let speed = opts.speed.clamp(0.1, 100.0);
    let fail = |m: String| crate::Error::Task(format!("demo: {m}"));
    // Clients stop first, the mock cluster last: a consumer closing against a
    // vanished cluster would wait for its coordinator.
    let stop_cluster = Arc::new(AtomicBool::new(false));
    let bootstrap = kafka::start_mock_cluster(stop_cluster.clone()).map_err(fail)?;
    let nats = match nats::start_nats() {
        Ok(n) => Some(n),
        Err(why) => {
            println!("JetStream part skipped: {why}");
            None
        }
    };
    let nats_url = nats.as_ref().map(|n| n.url.as_str());
    let settings = config::demo_config(&bootstrap, nats_url, speed, opts.port).map_err(fail)?;
    let listener = TcpListener::bind(("127.0.0.1", opts.port))
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
    let players = Players::start(&bootstrap, nats_url, speed, start);
    let daemon = crate::Daemon::new(settings, listener)?;
    let snapshots = daemon.snapshots();
    let stop_daemon = tokio_util::sync::CancellationToken::new();
    let story_end = opts
        .duration
        .unwrap_or_else(|| scaled(story::LENGTH, speed) + Duration::from_secs(5));
    let mut report = Report {
        jetstream: nats.is_some(),
        ..Report::default()
    };
    let (res, ()) = tokio::join!(daemon.run(stop_daemon.clone().cancelled_owned()), async {
        follow(
            snapshots,
            &opts,
            speed,
            start,
            story_end,
            shutdown,
            &mut report,
        )
        .await;
        stop_daemon.cancel();
    });
    players.stop().await;
    stop_cluster.store(true, Ordering::Relaxed);
    drop(nats);
    res?;
    println!("— story summary ———————————————————————————————————————————————");
    for l in report.lines() {
        println!("  {l}");
    }
    Ok(report)
}

/// Follows the snapshots until the story ends or `shutdown`: checkpoints on
/// every snapshot, a terminal summary every `summary_every`.
async fn follow(
    mut snapshots: channel::Receiver<Arc<Snapshot>>,
    opts: &Options,
    speed: f64,
    start: Instant,
    story_end: Duration,
    shutdown: impl std::future::Future<Output = ()>,
    report: &mut Report,
) {
    let mut next_print = Instant::now() + opts.summary_every;
    let mut checkpoints = watch::Checkpoints::default();
    let deadline = tokio::time::sleep(story_end);
    tokio::pin!(deadline);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            () = &mut shutdown => { println!("interrupted"); break }
            r = snapshots.changed() => if r.is_err() { break },
        }
        let snap = snapshots.borrow().clone();
        let t = start.elapsed().as_secs_f64() * speed;
        checkpoints.observe(&snap, t, report);
        if Instant::now() >= next_print {
            next_print = Instant::now() + opts.summary_every;
            for line in watch::summary(&snap, t) {
                println!("{line}");
            }
        }
    }
}

//! lagwatch watches how far event consumers are behind their streams, for Kafka
//! consumer groups and NATS JetStream consumers, in one process.
//!
//! Data flow (one owner per piece of state):
//! sources (one task per configured source) send [`model::PollBatch`]es over a
//! bounded channel to the [`engine`], the sole owner of history, which publishes an
//! immutable [`snapshot::Snapshot`] on a watch channel read by the [`http`] server;
//! notifications go from the engine to the [`alert::Notifier`] task.
//! Shutdown runs the flow backwards: stop sources, drain the engine, flush the
//! notifier, stop HTTP.
//!
//! Dependencies point one way: [`model`] <- pure core ([`history`], [`analysis`],
//! [`recommend`], the alert rules) <- [`config`] (builds the typed settings) <-
//! [`source`], [`engine`] -> [`snapshot`] <- [`export`], [`http`].

#![cfg_attr(
    test,
    allow(
        clippy::too_many_lines,
        reason = "table tests are long by design: one commented row per case"
    )
)]

pub mod alert;
pub mod analysis;
pub mod cli;
pub mod config;
pub mod demo;
pub mod engine;
pub mod error;
pub mod export;
pub mod fault;
pub mod health;
pub mod history;
pub mod http;
pub mod memory;
pub mod model;
pub mod process;
pub mod recommend;
pub mod snapshot;
pub mod source;
pub mod state;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Settings;
pub use error::Error;

use alert::{Notification, Notifier};
use snapshot::Snapshot;

/// Poll batches waiting for the engine. Small: a source waits (backpressure)
/// rather than the engine falling behind with a growing queue.
const BATCH_QUEUE: usize = 16;

/// Runs the daemon on `listener` until `shutdown` completes, then stops in order
/// within `settings.shutdown_timeout`. Tests bind 127.0.0.1:0 and pass a
/// shutdown future they control.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    Daemon::new(settings, listener)?.run(shutdown).await
}

/// The daemon's parts, built but not yet running: [`run`] in two steps, for a
/// caller that wants the snapshots too (the demo prints its summary from them).
pub struct Daemon {
    settings: Settings,
    listener: TcpListener,
    engine: engine::Engine,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    notifier: Option<(Notifier, mpsc::Receiver<Notification>)>,
    /// Per source, in config order: the engine's requests for exact time lags.
    exact: Vec<watch::Receiver<model::ExactRequests>>,
    health: Arc<health::Health>,
    state: Arc<state::StateStore>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}

impl Daemon {
    /// Builds the engine and the notifier from validated settings.
    pub fn new(settings: Settings, listener: TcpListener) -> Result<Daemon, Error> {
        let ids: Vec<_> = settings
            .sources
            .iter()
            .map(|s| (s.id.clone(), s.system()))
            .collect();
        let statics: Vec<_> = settings
            .sources
            .iter()
            .map(|s| (s.id.clone(), s.labels.clone()))
            .collect();
        let (state, loaded) = state::StateStore::open(settings.state_path.clone());
        let (alerts, notifier) = if settings.alerts.rules.is_empty() {
            if !loaded.incidents.is_empty() || !loaded.pending.is_empty() {
                tracing::warn!(
                    incidents = loaded.incidents.len(),
                    pending = loaded.pending.len(),
                    "the state file holds incidents and notifications, but no notification rules are configured: they are not resumed"
                );
            }
            (None, None)
        } else {
            let notifier = Notifier::new(&settings.alerts, state.clone(), loaded.pending)?;
            let (tx, rx) = alert::channel();
            let mut evaluator = alert::AlertEvaluator::new(settings.alerts.rules.clone());
            let names: Vec<Arc<str>> = settings
                .alerts
                .receivers
                .iter()
                .map(|r| r.name.clone())
                .collect();
            for n in evaluator.restore(loaded.incidents, &names, model::Millis::now()) {
                if tx.try_send(n).is_err() {
                    tracing::error!(
                        "cannot queue the resolve of an incident whose rule was removed"
                    );
                }
            }
            (Some(engine::Alerts { evaluator, tx }), Some((notifier, rx)))
        };
        // Every poll, failed or not, ends within its deadline and publishes a
        // snapshot: three of the longest deadline without one is a hung engine.
        let longest = settings
            .sources
            .iter()
            .map(|s| source::poll_deadline(s.timing))
            .max()
            .unwrap_or(std::time::Duration::from_secs(60));
        let health = health::Health::new((longest * 3).max(std::time::Duration::from_secs(30)));
        let (mut engine, snapshots) = engine::Engine::new(engine::EngineConfig {
            health: Some(health.clone()),
            state: Some(state.clone()),
            ring: settings.analysis.capacity_for(settings.min_poll_interval()),
            analysis: settings.analysis.clone(),
            plan: export::Plan::new(&settings),
            recommend: settings.recommend.clone(),
            alerts,
            metrics: export::SelfMetrics::new(&ids, &statics).map_err(Error::Metrics)?,
            gone_after: settings
                .sources
                .iter()
                .map(|s| (s.id.clone(), s.timing.gone_after))
                .collect(),
            sources: ids,
        });
        let exact = settings
            .sources
            .iter()
            .map(|s| engine.exact_requests(&s.id))
            .collect();
        Ok(Daemon {
            settings,
            listener,
            engine,
            snapshots,
            notifier,
            exact,
            health,
            state,
        })
    }

    /// The snapshots the engine will publish.
    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Starts every task, runs until `shutdown` completes (or the HTTP server
    /// fails), then stops in order within `shutdown_timeout`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let Daemon {
            settings,
            listener,
            engine,
            snapshots,
            notifier,
            exact,
            health,
            state,
        } = self;
        let stop_state = CancellationToken::new();
        let state_task = tokio::spawn(state.clone().run(stop_state.clone()));
        let local = listener.local_addr().map_err(Error::Http)?;
        let stop_notifier = CancellationToken::new();
        let mut live_metrics: Vec<_> = notifier.iter().map(|(n, _)| n.registry()).collect();
        live_metrics.push(health.registry());
        let server_metrics = http::server::ServerMetrics::new();
        live_metrics.push(server_metrics.registry());
        live_metrics.push(export::process_registry());
        let notifier_task = notifier
            .map(|(n, rx)| spawn_watched(&health, "notifier", n.run(rx, stop_notifier.clone())));
        let (tx, rx) = mpsc::channel(BATCH_QUEUE);
        let stop_sources = CancellationToken::new();
        let mut sources = tokio::task::JoinSet::new();
        for (s, exact) in settings.sources.iter().zip(exact) {
            let cancel = stop_sources.child_token();
            sources.spawn(source::spawn(
                &settings,
                s,
                exact,
                tx.clone(),
                cancel,
                health.clone(),
            ));
        }
        drop(tx);
        let engine_task = spawn_watched(&health, "engine", engine.run(rx));
        let stop_http = CancellationToken::new();
        let app = http::router(
            http::AppState {
                snapshots,
                api_token: settings.http.api_token.as_deref().map(Arc::from),
                live_metrics,
                health: health.clone(),
                state: state.clone(),
            },
            settings.http.request_timeout,
        );
        let mut http_task = serve(
            listener,
            app,
            settings.http.limits,
            server_metrics,
            stop_http.clone(),
        );
        tracing::info!("listening on http://{local}");

        let outcome = tokio::select! {
            () = shutdown => Ok(()),
            res = &mut http_task => Err(match res {
                Ok(Ok(())) => Error::Task("HTTP server stopped".into()),
                Ok(Err(e)) => Error::Http(e),
                Err(e) => Error::Task(format!("HTTP server: {e}")),
            }),
        };
        let tasks = Tasks {
            stop_sources,
            sources,
            engine: engine_task,
            stop_notifier,
            notifier: notifier_task,
            stop_state,
            state_task,
            state,
            stop_http,
            http: http_task,
        };
        tasks.stop(settings.shutdown_timeout).await;
        outcome
    }
}

/// Spawns a task the health check watches: when it ends (returned or
/// panicked), /healthz fails.
fn spawn_watched(
    health: &health::Health,
    name: &'static str,
    task: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let alive = health.task(name);
    tokio::spawn(async move {
        let _alive = alive;
        task.await;
    })
}

fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: http::server::Limits,
    metrics: http::server::ServerMetrics,
    stop: CancellationToken,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(http::server::serve(
        listener,
        app,
        limits,
        metrics,
        async move { stop.cancelled().await },
    ))
}

/// The running tasks, stopped in the reverse order of the data flow.
struct Tasks {
    stop_sources: CancellationToken,
    sources: tokio::task::JoinSet<()>,
    engine: JoinHandle<()>,
    stop_notifier: CancellationToken,
    notifier: Option<JoinHandle<()>>,
    stop_state: CancellationToken,
    state_task: JoinHandle<()>,
    state: Arc<state::StateStore>,
    stop_http: CancellationToken,
    http: JoinHandle<std::io::Result<()>>,
}

impl Tasks {
    /// Stops sources, lets the engine drain, lets the notifier flush, stops
    /// HTTP; gives up after `deadline`.
    async fn stop(mut self, deadline: std::time::Duration) {
        tracing::info!("shutting down: stopping sources");
        let ordered = async {
            self.stop_sources.cancel();
            while let Some(res) = self.sources.join_next().await {
                if let Err(e) = res {
                    tracing::error!(error = %e, "a source task failed");
                }
            }
            tracing::debug!("sources stopped; draining engine");
            if let Err(e) = self.engine.await {
                tracing::error!(error = %e, "the engine task failed");
            }
            // The engine dropped its sender: the notifier flushes what is queued
            // (bounded by its flush_timeout) and returns.
            self.stop_notifier.cancel();
            if let Some(t) = self.notifier {
                if let Err(e) = t.await {
                    tracing::error!(error = %e, "the notifier task failed");
                }
            }
            // What is still open or undelivered is written for the next start.
            self.stop_state.cancel();
            let _ = self.state_task.await;
            let state = self.state.clone();
            let _ = tokio::task::spawn_blocking(move || state.write_now()).await;
            tracing::debug!("notifier flushed, state written; stopping HTTP");
            self.stop_http.cancel();
            if !self.http.is_finished() {
                let _ = self.http.await;
            }
        };
        if tokio::time::timeout(deadline, ordered).await.is_err() {
            tracing::warn!(
                timeout = %humantime::format_duration(deadline),
                "shutdown did not finish in time; exiting anyway"
            );
        }
        tracing::info!("stopped");
    }
}

/// Completes on SIGINT or SIGTERM (Kubernetes sends SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

/// A multi-threaded tokio runtime, the one every command of the binary runs on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

//! lagwatch watches how far event consumers are behind their streams, for Kafka
//! consumer groups and NATS JetStream consumers, in one process.
//!
//! Data flow (one owner per piece of state):
//! sources (one task per configured source) send [`model::PollBatch`]es over a
//! bounded channel to the [`engine`], the sole owner of history, which publishes an
//! immutable [`engine::Snapshot`] on a watch channel read by the [`http`] server.
//! Shutdown runs the flow backwards: stop sources, drain the engine, stop HTTP.

pub mod alert;
pub mod analysis;
pub mod config;
pub mod demo;
pub mod engine;
pub mod error;
pub mod history;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod recommend;
pub mod source;
pub mod telemetry;

use std::future::Future;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// Poll batches waiting for the engine. Small: a source waits (backpressure)
/// rather than the engine falling behind with a growing queue.
const BATCH_QUEUE: usize = 16;

/// Runs the daemon until `shutdown` completes, then stops in order within
/// `config.shutdown_timeout`.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let addr = config.http.listen_addr().map_err(|message| {
        Error::Config(config::ConfigError {
            file: "config".into(),
            problems: vec![config::Problem {
                path: "http.listen".into(),
                line: None,
                message,
            }],
        })
    })?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    run_with_listener(config, listener, shutdown).await
}

/// As [`run`], on a listener the caller bound (tests bind 127.0.0.1:0).
pub async fn run_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    run_observed(config, listener, shutdown, |_| {}).await
}

/// As [`run_with_listener`]; `observe` receives the snapshot channel once the
/// engine exists (the demo prints its summary from it).
pub async fn run_observed(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    observe: impl FnOnce(tokio::sync::watch::Receiver<std::sync::Arc<engine::Snapshot>>),
) -> Result<(), Error> {
    let local = listener.local_addr().map_err(Error::Http)?;
    let ids = source::ids(&config);
    let ring = config.analysis.capacity_for(config.min_poll_interval());
    let self_metrics = metrics::SelfMetrics::new(&ids);
    let (alerts, notifier) = if config.alerts.rules.is_empty() {
        (None, None)
    } else {
        let (evaluator, notifier) = alert::Alerting::new(&config.alerts, self_metrics.registry())
            .map_err(|e| Error::Task(e.to_string()))?;
        let (tx, rx) = alert::channel();
        (Some(engine::Alerts { evaluator, tx }), Some((notifier, rx)))
    };
    let (engine, snapshots) = engine::Engine::new(engine::EngineConfig {
        sources: ids.clone(),
        analysis: config.analysis.clone(),
        ring,
        plan: config.metrics_plan(),
        recommend: config.recommend.clone(),
        alerts,
        metrics: self_metrics,
    });
    let stop_notifier = CancellationToken::new();
    let notifier_task = notifier.map(|(n, rx)| tokio::spawn(n.run(rx, stop_notifier.clone())));
    observe(snapshots.clone());
    let (tx, rx) = mpsc::channel(BATCH_QUEUE);

    let stop_sources = CancellationToken::new();
    let stop_http = CancellationToken::new();
    let mut sources = tokio::task::JoinSet::new();
    for s in &config.sources {
        let task = source::spawn(&config, s, tx.clone(), stop_sources.child_token());
        sources.spawn(task);
    }
    drop(tx);
    let engine_task = tokio::spawn(engine.run(rx));

    let app = http::router(http::AppState {
        snapshots,
        api_token: config.http.api_token.as_deref().map(std::sync::Arc::from),
    });
    let http_stop = stop_http.clone();
    let mut http_task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_stop.cancelled().await })
            .await
    });
    tracing::info!("listening on http://{local}");

    let outcome = tokio::select! {
        () = shutdown => Ok(()),
        res = &mut http_task => Err(match res {
            Ok(Ok(())) => Error::Task("HTTP server stopped".into()),
            Ok(Err(e)) => Error::Http(e),
            Err(e) => Error::Task(format!("HTTP server: {e}")),
        }),
    };
    tracing::info!("shutting down: stopping sources");
    let deadline = config.shutdown_timeout.get();
    let ordered = async {
        stop_sources.cancel();
        while let Some(res) = sources.join_next().await {
            if let Err(e) = res {
                tracing::error!(error = %e, "a source task failed");
            }
        }
        tracing::debug!("sources stopped; draining engine");
        if let Err(e) = engine_task.await {
            tracing::error!(error = %e, "the engine task failed");
        }
        // The engine dropped its sender: the notifier flushes what is queued
        // (bounded by its flush_timeout) and returns.
        stop_notifier.cancel();
        if let Some(t) = notifier_task {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "the notifier task failed");
            }
        }
        tracing::debug!("notifier flushed; stopping HTTP");
        stop_http.cancel();
        if !http_task.is_finished() {
            let _ = http_task.await;
        }
    };
    if tokio::time::timeout(deadline, ordered).await.is_err() {
        tracing::warn!(
            timeout = %humantime::format_duration(deadline),
            "shutdown did not finish in time; exiting anyway"
        );
    }
    tracing::info!("stopped");
    outcome
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

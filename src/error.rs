//! The crate's one error type: every variant carries the context an operator needs.

use std::net::SocketAddr;

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
    #[error("cannot set up lagwatch's own metrics: {0}")]
    Metrics(#[source] prometheus::Error),
    #[error("cannot set up notifications: {0}")]
    Notifier(#[from] crate::alert::SetupError),
    #[error("a lagwatch task stopped unexpectedly: {0}")]
    Task(String),
}

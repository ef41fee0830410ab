//! The accept loop. `axum::serve` has no header-read timeout and no cap on
//! connections: a few hundred clients that open a socket and never finish their
//! request hold it forever, and a few thousand exhaust the pod's file
//! descriptors until the probes fail. Here each connection is a hyper HTTP/1
//! connection with
//!
//! - a header-read timeout, which also closes keep-alive connections idle for
//!   longer (hyper starts the timer when it waits for the next request);
//! - a bounded request head (start line and headers): larger answers 431;
//! - a cap on open connections. When it is reached, the connection that has
//!   waited longest without completing a request (a slow or stuck client) is
//!   closed to make room, so that kubelet's probes and Prometheus' scrape, which
//!   send their request at once, keep being served; only when every open
//!   connection is busy with a request is the new one refused. Both are counted
//!   and logged (at most once a minute).
//!
//! The router adds the per-request limits (whole-request timeout, URI length,
//! API concurrency): see [`super::router`].

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// The connection-level limits (config `http:`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// Start line and headers together.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
        }
    }
}

/// The server's own metrics, gathered with every scrape.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    registry: Registry,
    open: Option<IntGauge>,
    /// reason: `evicted` (closed to make room) or `refused` (all busy).
    shed: Option<IntCounterVec>,
}

impl ServerMetrics {
    pub fn new() -> ServerMetrics {
        let registry = Registry::new();
        let open = IntGauge::new(
            "lagwatch_http_connections_open",
            "HTTP connections open now.",
        )
        .and_then(|g| registry.register(Box::new(g.clone())).map(|()| g))
        .map_err(|e| tracing::error!(error = %e, "cannot register lagwatch_http_connections_open"))
        .ok();
        let shed = IntCounterVec::new(
            Opts::new(
                "lagwatch_http_connections_shed_total",
                "HTTP connections closed because http.max_connections was reached: `evicted` (the one waiting longest without a complete request, closed to make room) or `refused` (every open connection was busy).",
            ),
            &["reason"],
        )
        .and_then(|c| registry.register(Box::new(c.clone())).map(|()| c))
        .map_err(|e| tracing::error!(error = %e, "cannot register lagwatch_http_connections_shed_total"))
        .ok();
        if let Some(s) = &shed {
            for reason in ["evicted", "refused"] {
                s.with_label_values(&[reason]);
            }
        }
        ServerMetrics {
            registry,
            open,
            shed,
        }
    }

    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    fn shed(&self, reason: &str) {
        if let Some(s) = &self.shed {
            s.with_label_values(&[reason]).inc();
        }
    }
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// One open connection, as the table sees it.
#[derive(Debug)]
struct Conn {
    accepted: Instant,
    /// Requests whose handler has not answered yet.
    busy: AtomicUsize,
    /// Requests answered on this connection.
    served: AtomicU64,
    close: CancellationToken,
}

/// Marks a connection busy while its handler runs, even if the request is
/// dropped halfway (the client went away).
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: Arc<Conn>) -> Busy {
        conn.busy.fetch_add(1, Ordering::Relaxed);
        Busy(conn)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.served.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every open connection, for the cap and for the graceful drain.
#[derive(Debug, Default)]
struct Table {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    emptied: Notify,
}

/// What to do with a connection accepted at the cap.
enum Room {
    Free,
    Evicted,
    Full,
}

impl Table {
    fn len(&self) -> usize {
        self.conns.lock().map_or(0, |c| c.len())
    }

    /// Makes room for one more connection if `max` are open: closes the one
    /// that has waited longest without completing a request, else the idle one
    /// accepted first; none when all are busy answering.
    fn make_room(&self, max: usize) -> Room {
        let Ok(conns) = self.conns.lock() else {
            return Room::Free;
        };
        if conns.len() < max {
            return Room::Free;
        }
        let victim = conns
            .values()
            .filter(|c| c.busy.load(Ordering::Relaxed) == 0 && !c.close.is_cancelled())
            .min_by_key(|c| (c.served.load(Ordering::Relaxed) > 0, c.accepted));
        match victim {
            Some(c) => {
                c.close.cancel();
                Room::Evicted
            }
            None => Room::Full,
        }
    }

    fn insert(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            accepted: Instant::now(),
            busy: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            close: CancellationToken::new(),
        });
        if let Ok(mut c) = self.conns.lock() {
            c.insert(id, conn.clone());
        }
        (id, conn)
    }

    fn remove(&self, id: u64) {
        let empty = self.conns.lock().map_or(true, |mut c| {
            c.remove(&id);
            c.is_empty()
        });
        if empty {
            self.emptied.notify_waiters();
        }
    }

    async fn wait_empty(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.len() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Logs at most once a minute what happened at the cap since the last line.
#[derive(Debug)]
struct CapLog {
    last: Option<Instant>,
    evicted: u64,
    refused: u64,
}

impl CapLog {
    fn note(&mut self, room: &Room, max: usize) {
        match room {
            Room::Free => return,
            Room::Evicted => self.evicted += 1,
            Room::Full => self.refused += 1,
        }
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        tracing::warn!(
            max_connections = max,
            evicted = self.evicted,
            refused = self.refused,
            "HTTP connection cap reached: closed the connections waiting longest without a \
             complete request (evicted), or refused new ones when all were busy (refused); \
             see lagwatch_http_connections_shed_total"
        );
        self.last = Some(Instant::now());
        self.evicted = 0;
        self.refused = 0;
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// connections finish the request they are answering (idle ones close at once)
/// and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: ServerMetrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let table = Arc::new(Table::default());
    let draining = CancellationToken::new();
    let mut cap_log = CapLog {
        last: None,
        evicted: 0,
        refused: 0,
    };
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: the process is out of descriptors;
                    // waiting lets closing connections free some.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let room = table.make_room(limits.max_connections);
        cap_log.note(&room, limits.max_connections);
        match room {
            Room::Free => {}
            Room::Evicted => metrics.shed("evicted"),
            Room::Full => {
                metrics.shed("refused");
                drop(tcp);
                continue;
            }
        }
        if let Err(e) = tcp.set_nodelay(true) {
            // A response written in pieces (the /metrics body and its live
            // tail) must not wait for the client's delayed ACK between them.
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
        let (id, conn) = table.insert();
        if let Some(g) = &metrics.open {
            g.set(i64::try_from(table.len()).unwrap_or(i64::MAX));
        }
        let table = table.clone();
        let app = app.clone();
        let draining = draining.clone();
        let open = metrics.open.clone();
        tokio::spawn(async move {
            connection(tcp, app, limits, &conn, draining).await;
            table.remove(id);
            if let Some(g) = open {
                g.set(i64::try_from(table.len()).unwrap_or(i64::MAX));
            }
        });
    }
    drop(listener);
    draining.cancel();
    table.wait_empty().await;
    Ok(())
}

/// Serves one connection until the client closes it, a limit closes it, the
/// cap evicts it or the server drains.
async fn connection(
    tcp: tokio::net::TcpStream,
    app: Router,
    limits: Limits,
    conn: &Arc<Conn>,
    draining: CancellationToken,
) {
    let counted = conn.clone();
    let service = hyper::service::service_fn(move |request| {
        let counted = counted.clone();
        let app = app.clone();
        async move {
            let _busy = Busy::new(counted);
            app.oneshot(request).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_headers(100);
    let mut served = pin!(builder.serve_connection(TokioIo::new(tcp), service));
    tokio::select! {
        res = served.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        }
        // Dropping the connection closes the socket.
        () = conn.close.cancelled() => {}
        () = draining.cancelled() => {
            served.as_mut().graceful_shutdown();
            tokio::select! {
                _ = served.as_mut() => {}
                () = conn.close.cancelled() => {}
            }
        }
    }
}

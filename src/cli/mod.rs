//! On-call from a terminal: `lagwatch describe` (a table like
//! `kafka-consumer-groups --describe`, with lagwatch's columns), its check mode
//! for scripts (Nagios exit codes, `--wait-until-caught-up`), and `lagwatch
//! top` (the same, refreshed in place, worst first).
//!
//! Every number comes from lagwatch's JSON API: of a running daemon
//! (`--from URL`, with its history: rates, status, ETA), or of a daemon started
//! in this process for the command (`--config FILE`: no alerts sent, no state
//! file touched, the API on 127.0.0.1 only), so the terminal and the API can
//! never disagree.

pub mod check;
pub mod table;
mod top;
pub mod view;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

pub use check::{Level, Thresholds};
pub use top::top;
use view::{Api, Selection, View};

/// Where the numbers come from.
#[derive(Clone, Debug)]
pub struct Target {
    /// Poll the sources of this config file from this process.
    pub config: Option<PathBuf>,
    /// Or read a running daemon's API (`http://host:9358`).
    pub from: Option<String>,
    /// Environment variable holding the API token for `from`.
    pub token_env: String,
    /// Poll interval of the in-process daemon when it polls more than once,
    /// and the refresh interval of `top` and `--wait-until-caught-up`.
    pub interval: Duration,
}

/// `table` or `json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// `lagwatch describe`.
#[derive(Clone, Debug)]
pub struct Describe {
    pub target: Target,
    pub selection: Selection,
    pub format: Format,
    pub partitions: bool,
    /// In-process: keep polling this long before printing (rates need history).
    pub watch_for: Option<Duration>,
    /// Check mode: print one line, exit 0/1/2/3.
    pub check: Option<Thresholds>,
    /// Wait until every selected group has lag 0 (exit 0), at most this long (exit 2).
    pub wait_until_caught_up: Option<Duration>,
}

/// Colours on a terminal, unless NO_COLOR is set (https://no-color.org).
pub fn color_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The in-process daemon's task.
type LocalTask = tokio::task::JoinHandle<Result<(), crate::Error>>;

/// A connection to an API, and the in-process daemon behind it if any.
struct Backend {
    api: Api,
    /// In-process daemon: stop signal and task.
    local: Option<(oneshot::Sender<()>, LocalTask)>,
}

impl Backend {
    /// Connects to `--from`, or starts the in-process daemon of `--config`
    /// (polling every `target.interval` when `repeated`) and waits for its
    /// first poll of every source.
    async fn connect(target: &Target, repeated: bool) -> Result<Backend, String> {
        match (&target.from, &target.config) {
            (Some(url), None) => {
                let token = std::env::var(&target.token_env)
                    .ok()
                    .filter(|t| !t.is_empty());
                Ok(Backend {
                    api: Api::new(url, token)?,
                    local: None,
                })
            }
            (None, Some(path)) => Self::local(path, target.interval, repeated).await,
            (Some(_), Some(_)) => Err("give either --config FILE or --from URL, not both".into()),
            (None, None) => {
                Err("give --config FILE (poll from here) or --from URL (a running lagwatch)".into())
            }
        }
    }

    async fn local(
        path: &std::path::Path,
        interval: Duration,
        repeated: bool,
    ) -> Result<Backend, String> {
        let mut settings = crate::config::load(path).map_err(|e| e.to_string())?;
        // A terminal command is not the daemon: it notifies nobody, keeps no
        // state, and serves its API on loopback only.
        settings.alerts.rules.clear();
        settings.alerts.receivers.clear();
        settings.state_path = None;
        settings.http.api_token = None;
        settings.http.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut deadline = Duration::ZERO;
        for s in &mut settings.sources {
            if repeated {
                s.timing.poll_interval = s.timing.poll_interval.min(interval);
                s.timing.gone_after = s.timing.gone_after.max(s.timing.poll_interval);
            }
            deadline = deadline.max(s.timing.poll_interval + s.timing.request_timeout);
        }
        let listener = tokio::net::TcpListener::bind(settings.http.listen)
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::run(settings, listener, async move {
            let _ = stopped.await;
        }));
        let api = Api::new(&format!("http://{addr}"), None)?;
        let backend = Backend {
            api,
            local: Some((stop, task)),
        };
        // The first poll of every source, failed or not, within its deadline.
        let give_up = Instant::now() + deadline + Duration::from_secs(10);
        while !backend.api.ready().await {
            if Instant::now() > give_up {
                return Err(format!(
                    "the sources of {} were not polled within {}",
                    path.display(),
                    humantime::format_duration(deadline + Duration::from_secs(10))
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(backend)
    }

    async fn stop(self) {
        if let Some((stop, task)) = self.local {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Runs `describe`; returns the exit code.
pub async fn describe(d: Describe) -> u8 {
    let repeated = d.watch_for.is_some() || d.wait_until_caught_up.is_some();
    let backend = match Backend::connect(&d.target, repeated).await {
        Ok(b) => b,
        Err(e) => return fail(&d, &e),
    };
    let code = describe_with(&d, &backend).await;
    backend.stop().await;
    code
}

/// Cannot even read: UNKNOWN in check mode, 1 otherwise.
fn fail(d: &Describe, why: &str) -> u8 {
    if d.check.is_some() || d.wait_until_caught_up.is_some() {
        println!("LAGWATCH UNKNOWN - {why}");
        Level::Unknown.exit_code()
    } else {
        eprintln!("lagwatch: {why}");
        1
    }
}

async fn describe_with(d: &Describe, backend: &Backend) -> u8 {
    if let (Some(w), Some(_)) = (d.watch_for, &backend.local) {
        eprintln!(
            "polling for {} so that rates and status have history…",
            humantime::format_duration(w)
        );
        tokio::time::sleep(w).await;
    }
    if let Some(limit) = d.wait_until_caught_up {
        return wait_until_caught_up(d, backend, limit).await;
    }
    let mut view = match backend.api.view(&d.selection, d.partitions).await {
        Ok(v) => v,
        Err(e) => return fail(d, &e),
    };
    let one_poll = backend.local.is_some() && d.watch_for.is_none();
    if one_poll {
        // One poll gives exact lag but no history: the status the analysis
        // would state is not known yet, and is shown (and checked) as such.
        for g in &mut view.groups {
            g.status = None;
            g.diagnosis = None;
            for p in &mut g.partition_rows {
                p.status = "–".into();
            }
        }
    }
    if let Some(t) = &d.check {
        let verdict = check::check(&view, t);
        println!("{}", verdict.line);
        return verdict.level.exit_code();
    }
    print_view(d, &view, one_poll);
    0
}

fn print_view(d: &Describe, view: &View, one_poll: bool) {
    match d.format {
        Format::Json => match serde_json::to_string_pretty(view) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("lagwatch: cannot write JSON: {e}"),
        },
        Format::Table => {
            print!(
                "{}",
                table::render(
                    view,
                    table::Style {
                        color: color_wanted()
                    }
                )
            );
            if view.groups.is_empty() {
                eprintln!("no group matches");
            }
            if one_poll {
                eprintln!(
                    "\nOne poll: lag is exact; rates, growth, ETA and status need history. \
                     Ask a running lagwatch (--from http://HOST:9358) or poll longer (--watch-for 60s)."
                );
            }
        }
    }
}

/// Polls until every selected group is caught up (exit 0) or `limit` passes
/// (exit 2), saying on stderr what it still waits for.
async fn wait_until_caught_up(d: &Describe, backend: &Backend, limit: Duration) -> u8 {
    let start = Instant::now();
    loop {
        let view = backend.api.view(&d.selection, false).await;
        match &view {
            Ok(v) if check::caught_up(v) => {
                println!(
                    "LAGWATCH OK - {} group{} caught up after {}",
                    v.groups.len(),
                    if v.groups.len() == 1 { "" } else { "s" },
                    humantime::format_duration(Duration::from_secs(start.elapsed().as_secs()))
                );
                return Level::Ok.exit_code();
            }
            Ok(v) => eprintln!("waiting: {}", behind_summary(v)),
            Err(e) => eprintln!("waiting: {e}"),
        }
        if start.elapsed() >= limit {
            let why = match view {
                Ok(v) => behind_summary(&v),
                Err(e) => e,
            };
            println!(
                "LAGWATCH CRITICAL - not caught up within {}: {why}",
                humantime::format_duration(limit)
            );
            return Level::Critical.exit_code();
        }
        tokio::time::sleep(
            d.target
                .interval
                .min(limit.saturating_sub(start.elapsed()))
                .max(Duration::from_millis(200)),
        )
        .await;
    }
}

/// `k/orders-svc lag 1200, k/billing stale` for the groups not caught up.
fn behind_summary(v: &View) -> String {
    if v.groups.is_empty() {
        return "no group matches".into();
    }
    let mut parts: Vec<String> = v
        .sources
        .iter()
        .filter(|s| !s.up)
        .map(|s| format!("source {} down", s.name))
        .collect();
    parts.extend(
        v.groups
            .iter()
            .filter(|g| g.stale || g.lag != Some(0))
            .map(|g| {
                if g.stale {
                    format!("{} stale", check::name(g))
                } else {
                    format!(
                        "{} lag {}",
                        check::name(g),
                        g.lag.map_or("unknown".into(), |l| l.to_string())
                    )
                }
            }),
    );
    parts.join(", ")
}

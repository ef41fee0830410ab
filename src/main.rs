//! The lagwatch command line: parse, set up logging, load config, run.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use lagwatch::config::LogFormat;

/// Consumer-lag monitor for Kafka consumer groups and NATS JetStream consumers.
///
/// Polls the brokers, computes lag, and serves Prometheus metrics on /metrics.
/// Exit codes: 0 ok, 1 runtime failure, 2 invalid config or usage; `describe
/// --check` uses the Nagios codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
#[derive(Debug, Parser)]
#[command(name = "lagwatch", version, about, long_about)]
struct Cli {
    /// Log format; `json` for Kubernetes log pipelines. Overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<CliLogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CliLogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon with a config file.
    Run {
        /// YAML config file (see deploy/config.example.yaml).
        #[arg(long, short, env = "LAGWATCH_CONFIG")]
        config: PathBuf,
    },
    /// Play a flash-sale story on an in-process Kafka (and a local nats-server if
    /// one is on PATH) and watch it live: nothing to install or configure.
    Demo {
        /// Story speed-up: 1 plays it in about three minutes, 4 in under one.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Stop after this long instead of at the end of the story (e.g. `90s`).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// HTTP port on 127.0.0.1 for the status page, API and metrics (0: any).
        #[arg(long, default_value_t = 9358)]
        port: u16,
        /// Seconds between terminal summaries.
        #[arg(long, default_value_t = 5)]
        summary_every: u64,
    },
    /// Validate a config file and print every problem found; exit 2 if any.
    CheckConfig {
        /// YAML config file to check.
        file: PathBuf,
    },
    /// Print the consumer groups as a table (or JSON): lag, time lag and its
    /// quality, growth, ETA, status, members, advice; `--partitions` for the
    /// per-partition rows of `kafka-consumer-groups --describe`. `--check`
    /// prints one line and exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Describe(DescribeArgs),
    /// The describe table refreshed in place, worst first: `s` sorts, `/`
    /// filters, `r` refreshes, `q` quits. Not on a terminal: a plain block per
    /// refresh.
    Top(TopArgs),
}

/// `lagwatch describe`'s arguments.
#[derive(Debug, clap::Args)]
struct DescribeArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// `table` for people, `json` (the API's field names) for scripts.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,
    /// Also the partitions of each group (committed, log-end, lag, ...).
    #[arg(long)]
    partitions: bool,
    /// With --config: keep polling this long (every --interval) before
    /// printing, so that rates, growth, ETA and status have history.
    #[arg(long, value_parser = humantime::parse_duration)]
    watch_for: Option<Duration>,
    /// Check mode (Nagios/Icinga): one line, exit 0 OK, 1 WARNING,
    /// 2 CRITICAL, 3 UNKNOWN (a source down, stale data, no match).
    #[arg(long)]
    check: bool,
    /// CRITICAL when a group is further behind than this (seconds; an
    /// unknown time lag counts by its lower bound).
    #[arg(long, requires = "check")]
    max_lag_seconds: Option<f64>,
    /// WARNING when a group is further behind than this (seconds).
    #[arg(long, requires = "check")]
    warn_lag_seconds: Option<f64>,
    /// CRITICAL when a group is more messages behind than this.
    #[arg(long, requires = "check")]
    max_lag: Option<u64>,
    /// Statuses that are CRITICAL; any other status but OK is a WARNING.
    #[arg(long, requires = "check", value_delimiter = ',', default_value = "STOP,ERR", value_parser = status_name)]
    fail_on: Vec<String>,
    /// Wait until every selected group has consumed everything (lag 0):
    /// exit 0 then, 2 if that takes longer than this (e.g. `10m`).
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "check")]
    wait_until_caught_up: Option<Duration>,
}

/// `lagwatch top`'s arguments.
#[derive(Debug, clap::Args)]
struct TopArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Stop after this many refreshes (plain output).
    #[arg(long)]
    count: Option<u64>,
}

impl DescribeArgs {
    fn describe(self) -> lagwatch::cli::Describe {
        lagwatch::cli::Describe {
            target: self.target.target(),
            selection: self.select.selection(),
            format: match self.format {
                FormatArg::Table => lagwatch::cli::Format::Table,
                FormatArg::Json => lagwatch::cli::Format::Json,
            },
            partitions: self.partitions,
            watch_for: self.watch_for,
            check: self.check.then_some(lagwatch::cli::Thresholds {
                max_lag_seconds: self.max_lag_seconds,
                warn_lag_seconds: self.warn_lag_seconds,
                max_lag: self.max_lag,
                fail_on: self.fail_on,
            }),
            wait_until_caught_up: self.wait_until_caught_up,
        }
    }
}

/// Where `describe` and `top` read from.
#[derive(Debug, clap::Args)]
struct TargetArgs {
    /// Poll the sources of this config file from here (no alerts are sent, no
    /// state file is touched).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Or read a running lagwatch's API, with its history (`http://host:9358`).
    #[arg(long)]
    from: Option<String>,
    /// Environment variable holding the API token for --from.
    #[arg(long, default_value = "LAGWATCH_API_TOKEN")]
    token_env: String,
    /// Refresh interval of `top` and `--wait-until-caught-up`; with --config,
    /// also the poll interval when polling more than once.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    interval: Duration,
}

/// Which groups `describe` and `top` show.
#[derive(Debug, clap::Args)]
struct SelectArgs {
    /// Only this source (a `name` of the config's sources).
    #[arg(long)]
    source: Option<String>,
    /// Only groups whose name matches this regex (`^orders`).
    #[arg(long, value_parser = regex::Regex::new)]
    group: Option<regex::Regex>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Table,
    Json,
}

/// A status name in any case, upper-cased.
fn status_name(s: &str) -> Result<String, String> {
    let up = s.trim().to_ascii_uppercase();
    if ["OK", "WARN", "REWIND", "STALL", "STOP", "ERR"].contains(&up.as_str()) {
        Ok(up)
    } else {
        Err(format!(
            "`{s}` is not a status; use OK, WARN, REWIND, STALL, STOP or ERR"
        ))
    }
}

impl TargetArgs {
    fn target(self) -> lagwatch::cli::Target {
        lagwatch::cli::Target {
            config: self.config,
            from: self.from,
            token_env: self.token_env,
            interval: self.interval.max(Duration::from_millis(200)),
        }
    }
}

impl SelectArgs {
    fn selection(self) -> lagwatch::cli::view::Selection {
        lagwatch::cli::view::Selection {
            source: self.source,
            group: self.group,
        }
    }
}

/// Runs a terminal command on its own runtime; its result is the exit code.
fn terminal_command(f: impl Future<Output = u8>) -> ExitCode {
    match lagwatch::runtime() {
        Ok(rt) => {
            let code = rt.block_on(f);
            rt.shutdown_timeout(Duration::from_secs(2));
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("lagwatch: cannot start the runtime: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    // Before any thread exists: arenas are created per thread on demand.
    lagwatch::memory::limit_arenas();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let format = |configured: LogFormat| match cli.log_format {
        Some(CliLogFormat::Json) => LogFormat::Json,
        Some(CliLogFormat::Text) => LogFormat::Text,
        None => configured,
    };
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Run { config } => {
            let settings = match lagwatch::config::load(&config) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            lagwatch::telemetry::init(&settings.log.level, format(settings.log.format));
            let listen = settings.http.listen;
            block_on("lagwatch", async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|source| lagwatch::Error::Bind {
                        addr: listen,
                        source,
                    })?;
                lagwatch::run(settings, listener, lagwatch::shutdown_signal()).await
            })
        }
        Command::Describe(args) => {
            lagwatch::telemetry::init("warn", format_of_cli(cli.log_format));
            terminal_command(lagwatch::cli::describe(args.describe()))
        }
        Command::Top(args) => {
            lagwatch::telemetry::init("error", format_of_cli(cli.log_format));
            terminal_command(lagwatch::cli::top(
                args.target.target(),
                args.select.selection(),
                args.count,
            ))
        }
        Command::Demo {
            speed,
            duration,
            port,
            summary_every,
        } => {
            lagwatch::telemetry::init("warn,lagwatch::alert=info", format(LogFormat::Text));
            let opts = lagwatch::demo::Options {
                speed,
                duration,
                port,
                summary_every: Duration::from_secs(summary_every.max(1)),
            };
            block_on("lagwatch demo", async move {
                lagwatch::demo::run(opts, lagwatch::shutdown_signal())
                    .await
                    .map(|_| ())
            })
        }
    }
}

/// `lagwatch check-config FILE`: ok, or every problem and exit 2.
fn check_config(file: &std::path::Path) -> ExitCode {
    match lagwatch::config::load(file) {
        Ok(s) => {
            let n = s.sources.len();
            println!(
                "{}: ok ({n} source{})",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// The log format asked for on the command line (text by default).
fn format_of_cli(f: Option<CliLogFormat>) -> LogFormat {
    match f {
        Some(CliLogFormat::Json) => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// Runs `f` on the runtime and maps its outcome to an exit code. A blocking
/// broker call still running must not hold the exit hostage: the daemon has
/// already stopped in order within its shutdown_timeout.
fn block_on(what: &str, f: impl Future<Output = Result<(), lagwatch::Error>>) -> ExitCode {
    let rt = match lagwatch::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{what}: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(f);
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{what} failed");
            eprintln!("{what}: {e:#}");
            ExitCode::from(1)
        }
    }
}

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
/// Exit codes: 0 ok, 1 runtime failure, 2 invalid config or usage.
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
        Command::CheckConfig { file } => match lagwatch::config::load(&file) {
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
        },
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

//! The lagwatch command line: parse, set up logging, load config, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lagwatch::config::{Config, LogFormat};

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
        duration: Option<std::time::Duration>,
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
    match cli.command {
        Command::Demo {
            speed,
            duration,
            port,
            summary_every,
        } => {
            lagwatch::telemetry::init(
                "warn,lagwatch::alert=info",
                match cli.log_format {
                    Some(CliLogFormat::Json) => LogFormat::Json,
                    _ => LogFormat::Text,
                },
            );
            let opts = lagwatch::demo::Options {
                speed,
                duration,
                port,
                summary_every: std::time::Duration::from_secs(summary_every.max(1)),
            };
            match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    let r = rt.block_on(lagwatch::demo::run(opts, lagwatch::shutdown_signal()));
                    rt.shutdown_timeout(std::time::Duration::from_secs(2));
                    r.map_err(anyhow::Error::from)
                }) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("lagwatch demo: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok ({} source{})",
                    file.display(),
                    c.sources.len(),
                    if c.sources.len() == 1 { "" } else { "s" }
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let format = match cli.log_format {
                Some(CliLogFormat::Json) => LogFormat::Json,
                Some(CliLogFormat::Text) => LogFormat::Text,
                None => config.log.format,
            };
            lagwatch::telemetry::init(&config.log.level, format);
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "lagwatch failed");
                    eprintln!("lagwatch: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(lagwatch::run(config, lagwatch::shutdown_signal()));
    // A blocking broker call still running must not hold the exit hostage: the
    // daemon already stopped in order within shutdown_timeout.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result?;
    Ok(())
}

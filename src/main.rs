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
    /// Validate a config file and print every problem found; exit 2 if any.
    CheckConfig {
        /// YAML config file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
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
    rt.block_on(lagwatch::run(config, lagwatch::shutdown_signal()))?;
    Ok(())
}

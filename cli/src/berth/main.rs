//! `berth`: a Docker-like command line for images, containers, pods and the node daemon.
//!
//! Each command group lives in its own module; this file only parses the
//! command line, sets up logging and turns errors into one `berth: ` line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The `berth` command line.
#[derive(Parser)]
#[command(name = "berth", version, about = "A container engine: images, builds, containers, pods")]
struct Cli {
    /// Root of berth's store (images, layers, containers).
    #[arg(long, global = true, env = "BERTH_ROOT", default_value = "/var/lib/berth")]
    root: PathBuf,

    /// Log level for berth's own diagnostics (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "BERTH_LOG", default_value = "warn")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

/// Global options every command needs.
#[allow(dead_code)]
struct Globals {
    root: PathBuf,
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let _globals = Globals { root: cli.root };
    match cli.command {}
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}

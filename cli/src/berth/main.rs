//! `berth`: a Docker-like command line for images, containers, pods and the node daemon.
//!
//! Each command group lives in its own module; this file only parses the
//! command line, sets up logging and turns errors into one `berth: ` line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod registry;

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
enum Command {
    /// Download an image from a registry.
    Pull(registry::PullArgs),
    /// Upload an image to a registry, under its own name.
    Push(registry::PushArgs),
    /// Log in to a registry (stores credentials in Docker's config.json).
    Login(registry::LoginArgs),
    /// Log out from a registry.
    Logout(registry::LogoutArgs),
}

/// Global options every command needs.
struct Globals {
    root: PathBuf,
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let globals = Globals { root: cli.root };
    let g = &globals;
    match cli.command {
        Command::Pull(a) => registry::pull(g, a).map(|()| ExitCode::SUCCESS),
        Command::Push(a) => registry::push(g, a).map(|()| ExitCode::SUCCESS),
        Command::Login(a) => registry::login(g, a).map(|()| ExitCode::SUCCESS),
        Command::Logout(a) => registry::logout(g, a).map(|()| ExitCode::SUCCESS),
    }
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

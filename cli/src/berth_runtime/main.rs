//! `berth-runtime`: runc's command line over the berth runtime library.
//!
//! Invariant: this binary stays single-threaded (no thread pools, no async
//! runtime), because `create`, `run` and `exec` fork the container's init and
//! continue in Rust in the child.

mod cgroup_cmds;
mod exec;
mod lifecycle;
mod log;
mod query;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The `berth-runtime` command line (runc's flags).
#[derive(Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "A runc-compatible OCI runtime"
)]
struct Cli {
    /// State directory for containers.
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Log file (errors and, with --debug, debug messages).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, default_value = "text")]
    log_format: log::Format,
    /// Debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (not supported: refused with an error).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; rootless mode is detected from the spec.
    #[arg(long, hide = true)]
    rootless: Option<String>,
    /// Accepted for runc compatibility; checkpointing is not supported.
    #[arg(long, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container: set it up and leave its process waiting for `start`.
    Create(lifecycle::CreateArgs),
    /// Start a created container.
    Start(lifecycle::IdArg),
    /// Create and start a container, then wait for it unless --detach.
    Run(lifecycle::RunArgs),
    /// Send a signal to a container.
    Kill(lifecycle::KillArgs),
    /// Delete a container's state (kill it first with --force).
    Delete(lifecycle::DeleteArgs),
    /// Print a container's OCI state as JSON.
    State(lifecycle::IdArg),
    /// Write a default config.json into the bundle directory.
    Spec(query::SpecArgs),
    /// Print the features this runtime supports as JSON.
    Features,
    /// Run a process in a running container.
    Exec(exec::ExecArgs),
    /// List the processes of a container.
    Ps(cgroup_cmds::PsArgs),
    /// List containers.
    List(cgroup_cmds::ListArgs),
    /// Freeze a container's processes.
    Pause(lifecycle::IdArg),
    /// Thaw a paused container.
    Resume(lifecycle::IdArg),
    /// Change a running container's resource limits.
    Update(cgroup_cmds::UpdateArgs),
    /// Print resource usage events (one with --stats).
    Events(cgroup_cmds::EventsArgs),
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.systemd_cgroup {
        anyhow::bail!("systemd cgroup management is not supported: run without --systemd-cgroup (cgroupfs is used)");
    }
    let runtime = berth_runtime::Runtime::new(&cli.root);
    match cli.command {
        Command::Create(args) => lifecycle::create(&runtime, args),
        Command::Start(args) => lifecycle::start(&runtime, args),
        Command::Run(args) => lifecycle::run(&runtime, args),
        Command::Kill(args) => lifecycle::kill(&runtime, args),
        Command::Delete(args) => lifecycle::delete(&runtime, args),
        Command::State(args) => lifecycle::state(&runtime, args),
        Command::Spec(args) => query::spec(args),
        Command::Features => query::features(),
        Command::Exec(args) => exec::exec(&runtime, args),
        Command::Ps(args) => cgroup_cmds::ps(&runtime, args),
        Command::List(args) => cgroup_cmds::list(&runtime, args),
        Command::Pause(args) => cgroup_cmds::pause(&runtime, &args.id),
        Command::Resume(args) => cgroup_cmds::resume(&runtime, &args.id),
        Command::Update(args) => cgroup_cmds::update(&runtime, args),
        Command::Events(args) => cgroup_cmds::events(&runtime, args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that put a process of ours inside a container run from a read-only
    // view of this binary (CVE-2019-5736); the others need not pay for it.
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        if let Err(err) = berth_runtime::sys::protected_exe::ensure_protected(&args) {
            eprintln!("berth-runtime: {err}");
            return ExitCode::FAILURE;
        }
    }
    let logger = log::Logger::init(cli.log.clone(), cli.log_format, cli.debug);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            let msg = format!("{err:#}");
            logger.error(&msg);
            eprintln!("berth-runtime: {msg}");
            ExitCode::FAILURE
        }
    }
}

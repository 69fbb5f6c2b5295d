//! create, start, run, kill, delete, state.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_runtime::{CreateOptions, Runtime};
use clap::Args;

/// A command that takes only a container id.
#[derive(Args)]
pub struct IdArg {
    /// Container id.
    pub id: String,
}

/// `create` flags (runc's).
#[derive(Args)]
pub struct CreateArgs {
    /// Bundle directory holding config.json.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket to send the pty master to when the process has a terminal.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// File to write the container's init pid to.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for a rootfs on a ramdisk).
    #[arg(long)]
    no_pivot: bool,
    /// Do not create a new session keyring (accepted; no keyring is created).
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, ...) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Container id.
    id: String,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            parent_death_signal: None,
        }
    }
}

/// `run` flags: create's plus --detach.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Return once the container has started.
    #[arg(short, long)]
    detach: bool,
    /// Keep the container's state after it exits (accepted, as runc's --keep).
    #[arg(long)]
    keep: bool,
}

/// `kill` arguments.
#[derive(Args)]
pub struct KillArgs {
    /// Signal every process in the container, not just init.
    #[arg(short, long)]
    all: bool,
    /// Container id.
    id: String,
    /// Signal name or number.
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

/// `delete` arguments.
#[derive(Args)]
pub struct DeleteArgs {
    /// Kill the container if it still runs.
    #[arg(short, long)]
    force: bool,
    /// Container id.
    id: String,
}

/// `create`.
pub fn create(runtime: &Runtime, args: CreateArgs) -> anyhow::Result<ExitCode> {
    runtime.create(&args.options())?;
    Ok(ExitCode::SUCCESS)
}

/// `start`.
pub fn start(runtime: &Runtime, args: IdArg) -> anyhow::Result<ExitCode> {
    runtime.start(&args.id)?;
    Ok(ExitCode::SUCCESS)
}

/// `run`: the container's exit code becomes ours.
pub fn run(runtime: &Runtime, args: RunArgs) -> anyhow::Result<ExitCode> {
    let _ = args.keep;
    let code = runtime.run(&args.create.options(), args.detach)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

/// `kill`.
pub fn kill(runtime: &Runtime, args: KillArgs) -> anyhow::Result<ExitCode> {
    let signal = berth_runtime::container::parse_signal(&args.signal)?;
    runtime.kill(&args.id, signal, args.all)?;
    Ok(ExitCode::SUCCESS)
}

/// `delete`.
pub fn delete(runtime: &Runtime, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    runtime.delete(&args.id, args.force)?;
    Ok(ExitCode::SUCCESS)
}

/// `state`: the OCI state as indented JSON, as runc prints it.
pub fn state(runtime: &Runtime, args: IdArg) -> anyhow::Result<ExitCode> {
    let state = runtime.state(&args.id)?;
    let text = serde_json::to_string_pretty(&state).context("encode state")?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

//! `berth exec`: a command in a running container, with Docker's flags; exits with the
//! command's exit code (126/127 when it cannot be run or is not found).

use std::os::fd::AsRawFd;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::container::{self, ExecOptions};
use clap::Args;

use crate::{containers, Globals};

/// `berth exec`.
#[derive(Args)]
pub struct ExecArgs {
    /// Start the command and return at once (its output is discarded).
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep stdin open and pass it to the command.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// Set an environment variable (NAME=value, or NAME to take berth's own).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// User (name or uid, optionally :group).
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// The container, then the command and its arguments.
    #[arg(
        value_name = "CONTAINER COMMAND [ARG...]",
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    container_and_cmd: Vec<String>,
}

/// Runs the command; its exit code becomes ours.
pub fn exec(g: &Globals, a: ExecArgs) -> Result<ExitCode> {
    let c = containers::open(g)?;
    let mut words = a.container_and_cmd.into_iter();
    let name = words.next().unwrap_or_default();
    let config = c.lookup(&name)?;
    if a.detach {
        for fd in [0, 1, 2] {
            null_onto(fd)?;
        }
    } else if !a.interactive {
        // Docker gives a command without -i no stdin.
        null_onto(0)?;
    }
    let opts = ExecOptions {
        cmd: words.collect(),
        env: a.env,
        workdir: a.workdir,
        user: a.user,
        tty: a.tty,
        detach: a.detach,
    };
    match container::exec(&c, &config, &opts) {
        Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(255))),
        Err(e) => {
            eprintln!("berth: {e}");
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

/// Points our fd `fd` at /dev/null.
fn null_onto(fd: i32) -> Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    nix::unistd::dup2(null.as_raw_fd(), fd).context("dup2 /dev/null")?;
    Ok(())
}

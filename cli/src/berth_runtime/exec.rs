//! `exec`: run a process in a running container, from `--process` or flags.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_runtime::container::ExecOptions;
use berth_runtime::Runtime;
use clap::Args;
use oci_spec::runtime::{Capability, Process};

/// `exec` flags (runc's).
#[derive(Args)]
pub struct ExecArgs {
    /// Unix socket to send the pty master to with --tty.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// uid[:gid] to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gids.
    #[arg(short = 'g', long)]
    additional_gids: Vec<u32>,
    /// A process.json describing the process (instead of args).
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Return once the process has started.
    #[arg(short, long)]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    no_new_privs: bool,
    /// Extra capabilities.
    #[arg(short, long)]
    cap: Vec<String>,
    /// Pass this many extra fds (3, 4, ...) to the process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for runc compatibility (SELinux label).
    #[arg(long, hide = true)]
    process_label: Option<String>,
    /// Accepted for runc compatibility (AppArmor profile).
    #[arg(long, hide = true)]
    apparmor: Option<String>,
    /// Container id.
    id: String,
    /// Command and arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `exec`: exits with the process's code unless detached.
pub fn exec(runtime: &Runtime, args: ExecArgs) -> anyhow::Result<ExitCode> {
    let process = match &args.process {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("read process {}", path.display()))?;
            serde_json::from_slice(&text)
                .with_context(|| format!("process {}: invalid JSON", path.display()))?
        }
        None => process_from_flags(runtime, &args)?,
    };
    let code = runtime.exec(&ExecOptions {
        id: args.id.clone(),
        process,
        console_socket: args.console_socket.clone(),
        pid_file: args.pid_file.clone(),
        detach: args.detach,
        preserve_fds: args.preserve_fds,
    })?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

/// The container's own process with the flags applied, as runc builds it.
fn process_from_flags(runtime: &Runtime, args: &ExecArgs) -> anyhow::Result<Process> {
    if args.command.is_empty() {
        anyhow::bail!("exec: no command given: pass args or --process");
    }
    let record = runtime.state_dir().load(&args.id)?;
    let mut p = record.config.process().clone().unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(args.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u.parse()?, g.parse()?),
            None => (user.parse().context("--user must be uid[:gid]")?, 0),
        };
        let mut u = p.user().clone();
        u.set_uid(uid);
        u.set_gid(gid);
        p.set_user(u);
    }
    if !args.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(args.additional_gids.clone()));
        p.set_user(u);
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let cap: Capability = name
                .parse()
                .map_err(|_| anyhow::anyhow!("capability {name}: unknown capability name"))?;
            let mut b = caps.bounding().clone().unwrap_or_default();
            b.insert(cap);
            caps.set_bounding(Some(b));
            let mut e = caps.effective().clone().unwrap_or_default();
            e.insert(cap);
            caps.set_effective(Some(e));
            let mut pm = caps.permitted().clone().unwrap_or_default();
            pm.insert(cap);
            caps.set_permitted(Some(pm));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

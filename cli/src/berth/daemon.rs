//! `berth daemon`: the node daemon (object store, Kubernetes-shaped API, controllers).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use berth_orchestrator::daemon::{self, DaemonOptions};
use clap::Args;

use crate::containers;
use crate::Globals;

/// Arguments of `berth daemon`.
#[derive(Args)]
pub struct DaemonArgs {
    /// Loopback address of the HTTP API kubectl uses (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Most connections served at once on each of the TCP port and the unix socket (default:
    /// half of what the open-file limit leaves); past it, connections that have not sent a
    /// request yet are closed to make room, and the rest wait.
    #[arg(long, env = "BERTH_DAEMON_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
}

/// Runs the daemon in the foreground until SIGTERM or SIGINT.
pub fn daemon(g: &Globals, a: DaemonArgs) -> Result<ExitCode> {
    if !a.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {}: the API is plain HTTP; only loopback addresses are allowed",
            a.listen
        );
    }
    let opts = DaemonOptions {
        containers: containers::open(g)?,
        listen: a.listen,
        berth_exe: std::env::current_exe().context("find the berth binary")?,
        limits: daemon::Limits::new(a.max_connections),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(daemon::run(opts, |s| {
        println!("serving on https://{} and {}", s.addr, s.socket.display());
        println!("kubeconfig: {}", s.kubeconfig.display());
    }))?;
    Ok(ExitCode::SUCCESS)
}

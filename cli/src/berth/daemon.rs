//! `berth daemon`: the node daemon, assembled here: the API server over the object store,
//! with Kubernetes' admission rules (`berth-kube`), the workload controllers
//! (`berth-controllers`) and this node's Pods, Service rules and container logs
//! (`berth-node`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use berth_apiserver::{AdmissionChain, ContainerLogs, DaemonOptions, LogRequest, Plugins, PodLog};
use berth_engine::container::Containers;
use berth_node::NodeContext;
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
    let containers = containers::open(g)?;
    let opts = DaemonOptions {
        root: containers.root().to_path_buf(),
        listen: a.listen,
        limits: berth_apiserver::Limits::new(a.max_connections),
    };
    let node = NodeContext {
        containers: containers.clone(),
        berth_exe: std::env::current_exe().context("find the berth binary")?,
    };
    let mut controllers = berth_controllers::all();
    controllers.extend(berth_node::controllers(node));
    let plugins = Plugins {
        admission: AdmissionChain {
            defaulters: vec![berth_kube::admission::default],
            validators: vec![berth_kube::admission::validate],
        },
        allocators: berth_node::allocators(),
        controllers,
        logs: Arc::new(NodeLogs(containers)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(berth_apiserver::run(opts, plugins, |s| {
        println!("serving on https://{} and {}", s.addr, s.socket.display());
        println!("kubeconfig: {}", s.kubeconfig.display());
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// The `log` subresource reads this node's container logs.
struct NodeLogs(Containers);

impl ContainerLogs for NodeLogs {
    fn read(&self, r: LogRequest<'_>) -> Result<PodLog, Box<dyn std::error::Error + Send + Sync>> {
        let log = berth_node::logs::read(&self.0, r.id, r.tail, r.timestamps, r.follow)?;
        Ok(PodLog {
            text: log.text,
            follow: log.follow,
        })
    }
}

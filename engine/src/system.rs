//! Removing what berth made on the host, as `docker network rm` and `podman system reset`
//! do: the installation's bridge network (link, nft table with its port forwards and
//! Service rules, state dir under `/run/berth/networks`) once no container uses it, and
//! with [`reset`] every container and pod first, then the network and the cgroup parent.
//! Images, volumes and the node daemon's objects stay (`berth rmi`, `berth volume prune`
//! and `berth delete` remove those).

use std::path::{Path, PathBuf};

use berth_runtime::cgroups::{Cgroup, CgroupError};

use crate::container::{self, ContainerError, Containers};
use crate::network::NetworkError;
use crate::pod::{PodError, Pods};

/// Why berth's host state could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The network named is not this installation's.
    #[error("network {name:?} not found: this installation's network is {current:?}")]
    NoSuchNetwork {
        /// The name given.
        name: String,
        /// The installation's bridge.
        current: String,
    },
    /// Containers or pods still use the network.
    #[error("network {name} is in use by {}: remove them first", .users.join(", "))]
    InUse {
        /// The bridge.
        name: String,
        /// Ids of what uses it.
        users: Vec<String>,
    },
    /// The node daemon runs: its pod controller would start the pods again.
    #[error("the node daemon of {} is running: stop it first", .root.display())]
    DaemonRunning {
        /// The store root.
        root: PathBuf,
    },
    /// Removing the network failed.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// Removing a container failed.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// Removing a pod failed.
    #[error(transparent)]
    Pod(#[from] PodError),
    /// The cgroup parent could not be removed (something still runs in it).
    #[error("cgroup parent {parent}: {source}")]
    Cgroup {
        /// The cgroup parent.
        parent: String,
        /// Why.
        #[source]
        source: CgroupError,
    },
}

/// What [`reset`] removed.
#[derive(Debug, Default)]
pub struct ResetReport {
    /// Ids of the pods removed.
    pub pods: Vec<String>,
    /// Ids of the containers removed (pods' members included).
    pub containers: Vec<String>,
    /// The bridge network removed, if there was one.
    pub network: Option<String>,
    /// The cgroup parent removed, if there was one.
    pub cgroup_parent: Option<String>,
}

/// Removes the installation's bridge network (`name`, when given, must be its bridge):
/// its link, nft table and state dir. Refused while any container of this store was
/// attached to it or anything is attached (containers of other stores, pods). Returns
/// the bridge's name when there was something to remove.
pub fn remove_network(c: &Containers, name: Option<&str>) -> Result<Option<String>, SystemError> {
    let net = c.network();
    let bridge = net.config().bridge().to_string();
    if let Some(name) = name.filter(|n| *n != bridge) {
        return Err(SystemError::NoSuchNetwork {
            name: name.to_string(),
            current: bridge,
        });
    }
    let mut users: Vec<String> = net
        .attachments()?
        .into_iter()
        .map(|a| a.container_id)
        .collect();
    for (config, _) in c.list()? {
        if config
            .attached_network
            .as_ref()
            .is_some_and(|a| a.bridge == bridge)
            && !users.contains(&config.id)
        {
            users.push(config.id);
        }
    }
    if !users.is_empty() {
        return Err(SystemError::InUse {
            name: bridge,
            users,
        });
    }
    if !net.exists()? {
        return Ok(None);
    }
    net.teardown()?;
    tracing::info!(bridge, "network removed");
    Ok(Some(bridge))
}

/// Stops and removes every pod and container of the store, then removes the bridge
/// network and the cgroup parent (in every hierarchy). Refused while the node daemon of
/// the store runs.
pub fn reset(c: &Containers) -> Result<ResetReport, SystemError> {
    if daemon_running(c.root()) {
        return Err(SystemError::DaemonRunning {
            root: c.root().to_path_buf(),
        });
    }
    let mut report = ResetReport::default();
    let pods = Pods::new(c.clone());
    for pod in pods.list()? {
        report
            .containers
            .extend(pod.containers.iter().map(|(cfg, _)| cfg.id.clone()));
        pods.remove(&pod.record, true)?;
        report.pods.push(pod.record.id.clone());
    }
    for (config, _) in c.list()? {
        container::remove(c, &config, true)?;
        report.containers.push(config.id);
    }
    report.network = remove_network(c, None)?;
    report.cgroup_parent = remove_cgroup_parent(c.settings().cgroup_parent())?;
    Ok(report)
}

/// Removes the cgroup parent's directories (and the empty cgroups left under it, such as
/// a killed build step's); refused by the kernel while a process runs in it.
fn remove_cgroup_parent(parent: &str) -> Result<Option<String>, SystemError> {
    let err = |source| SystemError::Cgroup {
        parent: parent.to_string(),
        source,
    };
    let cg = Cgroup::open(Some(parent), parent).map_err(err)?;
    if !cg.hierarchies().iter().any(|(_, dir)| dir.exists()) {
        return Ok(None);
    }
    cg.remove().map_err(err)?;
    tracing::info!(parent, "cgroup parent removed");
    Ok(Some(parent.to_string()))
}

/// Whether the node daemon of store `root` runs (holds its lock).
fn daemon_running(root: &Path) -> bool {
    let Ok(lock) = std::fs::File::open(root.join("daemon").join("lock")) else {
        return false;
    };
    let free = fs2::FileExt::try_lock_exclusive(&lock).is_ok();
    if free {
        let _ = fs2::FileExt::unlock(&lock);
    }
    !free
}

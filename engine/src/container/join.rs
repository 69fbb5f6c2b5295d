//! Containers that join namespaces instead of getting their own: `--pod NAME` (the pod's
//! network, IPC and UTS namespaces, its `/etc` files and host name) and
//! `--network container:NAME` (another container's network namespace, a copy of its
//! `/etc/hosts` and `resolv.conf`, its host name). The pod or container joined must run, and
//! flags that would set what it owns (`-p`, `--network`, `--hostname`) are refused.

use std::path::{Path, PathBuf};

use super::{io_err, ContainerConfig, ContainerError, Containers, RunOptions};
use crate::network::NetworkMode;
use crate::pod::{PodError, Pods};

/// Where a joining container's `/etc/hosts`, `resolv.conf` and `hostname` come from.
#[derive(Debug, Clone)]
pub(super) enum EtcFiles {
    /// The pod's own files, bind-mounted as they are (a pod restart rewrites them).
    Shared(PathBuf),
    /// Another container's files, copied into the new container's `etc/` at create.
    CopyFrom(PathBuf),
}

/// What a container joins.
#[derive(Debug, Clone)]
pub(super) struct Join {
    /// The network mode recorded for it: `container:<id>` (of the container joined, or of
    /// the pod's infra).
    pub network: String,
    /// The network namespace joined; `None` when the container joined uses the host's.
    pub netns: Option<PathBuf>,
    /// The IPC namespace joined (pods only).
    pub ipc: Option<PathBuf>,
    /// The UTS namespace joined (pods only).
    pub uts: Option<PathBuf>,
    /// Its host name.
    pub hostname: String,
    /// Its `/etc` files.
    pub etc: EtcFiles,
    /// The pod's id (pods only).
    pub pod: Option<String>,
}

impl Join {
    /// The directory holding the container's `/etc` files, `own` being its own `etc/`
    /// (filled with copies when joining a container).
    pub fn etc_dir(&self, own: &Path) -> Result<PathBuf, ContainerError> {
        match &self.etc {
            EtcFiles::Shared(dir) => Ok(dir.clone()),
            EtcFiles::CopyFrom(dir) => {
                for name in ["hosts", "resolv.conf", "hostname"] {
                    let (from, to) = (dir.join(name), own.join(name));
                    std::fs::copy(&from, &to).map_err(io_err(&from))?;
                }
                Ok(own.to_path_buf())
            }
        }
    }
}

fn refuse(opts: &RunOptions, with: &str, why: &'static str) -> Result<(), ContainerError> {
    let flag = if !opts.publish.is_empty() {
        "-p"
    } else if opts.publish_all {
        "-P"
    } else if opts.hostname.is_some() {
        "--hostname"
    } else {
        return Ok(());
    };
    Err(ContainerError::JoinConflict {
        flag,
        with: with.to_string(),
        why,
    })
}

/// What `opts` asks the container to join, checked; `None` when it gets its own namespaces.
pub(super) fn resolve(c: &Containers, opts: &RunOptions) -> Result<Option<Join>, ContainerError> {
    if let Some(name) = &opts.pod {
        if opts.network != NetworkMode::default() {
            return Err(ContainerError::JoinConflict {
                flag: "--network",
                with: "--pod".into(),
                why: "containers of a pod share its network",
            });
        }
        refuse(
            opts,
            "--pod",
            "the pod owns the ports and the host name (give them to berth pod create)",
        )?;
        let pods = Pods::new(c.clone());
        let pod = pods.lookup(name)?;
        if !pods.state(&pod.id)?.infra_running() {
            return Err(PodError::NotRunning(name.clone()).into());
        }
        return Ok(Some(Join {
            network: format!("container:{}", pod.infra_id),
            netns: (!pod.host_network).then(|| pod.netns_path()),
            ipc: Some(pod.ipc_path()),
            uts: Some(pod.uts_path()),
            hostname: pod.hostname.clone(),
            etc: EtcFiles::Shared(pods.etc_dir(&pod.id)),
            pod: Some(pod.id),
        }));
    }
    let NetworkMode::Container(name) = &opts.network else {
        return Ok(None);
    };
    let with = format!("--network container:{name}");
    refuse(
        opts,
        &with,
        "the ports and host name are those of the container whose network is joined",
    )?;
    let target = c.lookup(name)?;
    if !c.state(&target.id)?.is_running() {
        return Err(ContainerError::JoinNotRunning(name.clone()));
    }
    let etc = match &target.pod {
        Some(pod) => Pods::new(c.clone()).etc_dir(pod),
        None => c.dir(&target.id).join("etc"),
    };
    let hostname = std::fs::read_to_string(etc.join("hostname"))
        .map(|h| h.trim().to_string())
        .map_err(io_err(&etc.join("hostname")))?;
    Ok(Some(Join {
        network: format!("container:{}", target.id),
        netns: target.netns.clone(),
        ipc: None,
        uts: None,
        hostname,
        etc: EtcFiles::CopyFrom(etc),
        pod: None,
    }))
}

/// For `start` of an exited container that joined a pod or another container: the pod's
/// infra, or that container, must run (its namespaces are what the spec names).
pub(super) fn check_joined(c: &Containers, config: &ContainerConfig) -> Result<(), ContainerError> {
    if let Some(pod_id) = &config.pod {
        let pods = Pods::new(c.clone());
        let pod = pods.record(pod_id)?;
        if !pods.state(pod_id)?.infra_running() {
            return Err(PodError::NotRunning(pod.name).into());
        }
        return Ok(());
    }
    let NetworkMode::Container(target) = config.network_mode() else {
        return Ok(());
    };
    let running = c.state(&target).is_ok_and(|s| s.is_running());
    if !running {
        return Err(ContainerError::JoinNotRunning(target));
    }
    Ok(())
}

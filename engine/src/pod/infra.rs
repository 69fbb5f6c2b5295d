//! The infra process of a pod: `berth __pod-infra <pod-id>`, started by [`spawn`] and
//! outliving its caller, like a container's monitor. It makes the pod's namespaces and holds
//! them until it is told to stop:
//! - a network namespace (`/run/berth/netns/<infra-id>`) attached to the bridge with one veth,
//!   one address and the pod's published ports;
//! - new IPC and UTS namespaces (the pod's host name set), bind-mounted at
//!   `/run/berth/<infra-id>/{ipc,uts}` so containers join them by path;
//! - the pod's `/etc/hosts`, `resolv.conf` and `hostname`.
//!
//! It then joins the network namespace itself and waits for SIGTERM, SIGINT, SIGHUP or
//! SIGQUIT; on one it stops whatever containers of the pod still run (they would be left
//! without a network), detaches and removes everything above, records the stop and exits.
//! [`release`] undoes the same for an infra that was killed before it could.
//!
//! Reports to whoever started it go over its stdout (a pipe): `started` or `error MESSAGE`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};

use super::{io_err, PodError, PodRecord, PodState, Pods};
use crate::container::{self, state::now_rfc3339};
use crate::daemon::{self, Daemon, DaemonError, LogMode};
use crate::network::{files, netns};

/// An infra started by [`spawn`]: read its first report.
#[derive(Debug)]
pub(super) struct InfraHandle {
    daemon: Daemon,
    pod: String,
}

/// Starts `exe __pod-infra <id>` (exe being the `berth` binary), its diagnostics appended to
/// `infra.log` in the pod's directory.
pub(super) fn spawn(pods: &Pods, exe: &Path, pod: &PodRecord) -> Result<InfraHandle, PodError> {
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(pods.containers().root())
        .arg("__pod-infra")
        .arg(&pod.id);
    let daemon = daemon::spawn(cmd, &pods.dir(&pod.id).join("infra.log"), LogMode::Append)
        .map_err(|DaemonError { path, source }| PodError::Io { path, source })?;
    Ok(InfraHandle {
        daemon,
        pod: pod.id.clone(),
    })
}

impl InfraHandle {
    /// Waits until the pod's namespaces are ready, or returns why they could not be made.
    /// The infra is then reaped in the background, so a long-running caller (the daemon) is
    /// not left with a zombie when the pod stops.
    pub(super) fn started(mut self) -> Result<(), PodError> {
        let report = self.daemon.next_report();
        self.daemon.reap_in_background();
        match report {
            Some(r) if r == "started" => Ok(()),
            Some(r) => Err(PodError::Infra {
                id: self.pod,
                reason: r.strip_prefix("error ").unwrap_or(&r).to_string(),
            }),
            None => Err(PodError::Infra {
                id: self.pod,
                reason: "exited before the pod was ready (see infra.log)".into(),
            }),
        }
    }
}

/// The infra's body (the `__pod-infra` subcommand): makes and holds pod `id`'s namespaces
/// until told to stop.
pub fn serve(pods: &Pods, id: &str) -> Result<(), PodError> {
    let mut reports =
        daemon::detach().map_err(|DaemonError { path, source }| PodError::Io { path, source })?;
    // Blocked before any thread exists, so every thread inherits the mask and the stop
    // signals wait in sigwait for the main thread.
    let mut stop = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        stop.add(s);
    }
    stop.thread_block().map_err(|source| PodError::Sys {
        path: pods.dir(id),
        op: "block signals",
        source,
    })?;
    let result = hold(pods, id, &stop, &mut reports);
    if let Err(e) = &result {
        let _ = writeln!(reports, "error {e}");
    }
    result
}

fn hold(pods: &Pods, id: &str, stop: &SigSet, reports: &mut File) -> Result<(), PodError> {
    let pod = pods.record(id)?;
    let dir = pods.dir(id);
    let _span = tracing::info_span!("infra", pod = pod.short_id()).entered();
    if pods.state(id)?.infra_running() {
        return Err(PodError::WrongState {
            id: id.to_string(),
            reason: "its infra runs already".into(),
        });
    }
    // What an infra killed before it could clean up left behind.
    release(&pod)?;
    let mut state = PodState {
        infra_pid: Some(std::process::id() as i32),
        started_at: Some(now_rfc3339()),
        ..Default::default()
    };
    state.save(&dir)?;
    let host_net = File::open("/proc/thread-self/ns/net")
        .map_err(io_err(Path::new("/proc/thread-self/ns/net")))?;
    if let Err(e) = setup(pods, &pod, &mut state) {
        tracing::warn!(error = %e, "cannot set the pod up");
        leave(pods, &pod, &host_net, &mut state, Some(e.to_string()))?;
        return Err(e);
    }
    state.save(&dir)?;
    let _ = writeln!(reports, "started");
    tracing::info!(ip = ?state.ip, "pod started");
    let signal = loop {
        match stop.wait() {
            Ok(s) => break s,
            Err(nix::Error::EINTR) => {}
            Err(source) => {
                return Err(PodError::Sys {
                    path: dir,
                    op: "sigwait",
                    source,
                })
            }
        }
    };
    tracing::info!(%signal, "stopping the pod");
    leave(pods, &pod, &host_net, &mut state, None)
}

/// Makes the pod's namespaces and files, recording its address and ports in `state`.
fn setup(pods: &Pods, pod: &PodRecord, state: &mut PodState) -> Result<(), PodError> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    // A pod on the host's network has the host's hosts file and no namespace of its own.
    let ns = match pod.host_network {
        true => None,
        false => Some(netns::create(Path::new(netns::DEFAULT_DIR), &pod.infra_id)?),
    };
    let hosts = match &ns {
        None => std::fs::read_to_string("/etc/hosts")
            .unwrap_or_else(|_| "127.0.0.1\tlocalhost\n".to_string()),
        Some(ns) => {
            let attachment = pod
                .network
                .network()?
                .attach(&pod.infra_id, ns, &pod.publish)?;
            state.ip = Some(attachment.ip);
            state.ports = attachment.ports;
            files::hosts(&pod.hostname, Some(attachment.ip), &[])?
        }
    };
    files::write_all(
        &pods.etc_dir(&pod.id),
        &hosts,
        &files::resolv_conf(&host_resolv),
        &files::hostname(&pod.hostname)?,
    )?;
    let sys = |path: &Path, op| {
        let path = path.to_path_buf();
        move |source| PodError::Sys { path, op, source }
    };
    let ns_dir = pod.namespace_dir();
    berth_image::perms::private_dir(&ns_dir).map_err(io_err(&ns_dir))?;
    nix::sched::unshare(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC)
        .map_err(sys(&ns_dir, "unshare ipc and uts"))?;
    nix::unistd::sethostname(&pod.hostname).map_err(sys(&ns_dir, "sethostname"))?;
    for (kind, target) in [("ipc", pod.ipc_path()), ("uts", pod.uts_path())] {
        File::create(&target).map_err(io_err(&target))?;
        nix::mount::mount(
            Some(Path::new("/proc/thread-self/ns").join(kind).as_path()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(&target, "bind mount"))?;
    }
    // Held by this process too, so `nsenter -t <infra pid> -n` enters the pod.
    if let Some(ns) = ns {
        let ns_file = File::open(&ns).map_err(io_err(&ns))?;
        nix::sched::setns(ns_file, CloneFlags::CLONE_NEWNET).map_err(sys(&ns, "setns"))?;
    }
    Ok(())
}

/// Back in the host's network namespace (detaching needs it), stops the pod's containers
/// that still run, releases what the pod holds and records the stop.
fn leave(
    pods: &Pods,
    pod: &PodRecord,
    host_net: &File,
    state: &mut PodState,
    error: Option<String>,
) -> Result<(), PodError> {
    nix::sched::setns(host_net, CloneFlags::CLONE_NEWNET).map_err(|source| PodError::Sys {
        path: "/proc/thread-self/ns/net".into(),
        op: "setns back to the host's network",
        source,
    })?;
    stop_members(pods, pod);
    let released = release(pod);
    state.infra_pid = None;
    state.ip = None;
    state.ports.clear();
    state.finished_at = Some(now_rfc3339());
    state.error = error;
    state.save(&pods.dir(&pod.id))?;
    released
}

/// Kills the pod's running containers: they cannot outlive its network.
fn stop_members(pods: &Pods, pod: &PodRecord) {
    let members = match pods.members(pod) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the pod's containers");
            return;
        }
    };
    for (config, state) in members {
        if state.is_running() {
            if let Err(e) = container::stop(pods.containers(), &config, Duration::ZERO) {
                tracing::warn!(container = config.short_id(), error = %e, "cannot stop");
            }
        }
    }
}

/// Removes what the pod's infra holds on the host: network attachment (veth, address, nft
/// rules), network namespace, IPC and UTS namespace mounts. Idempotent: for an infra that
/// was killed, and before each start.
pub(super) fn release(pod: &PodRecord) -> Result<(), PodError> {
    let mut first: Option<PodError> = None;
    let mut note = |r: Result<(), PodError>| {
        if let Err(e) = r {
            tracing::warn!(pod = pod.short_id(), error = %e, "release");
            first.get_or_insert(e);
        }
    };
    note(
        pod.network
            .network()
            .map_err(PodError::from)
            .and_then(|net| net.detach(&pod.infra_id).map(drop).map_err(Into::into)),
    );
    note(
        netns::remove(&pod.netns_path())
            .map(drop)
            .map_err(Into::into),
    );
    for path in [pod.ipc_path(), pod.uts_path()] {
        note(unmount_and_remove(&path));
    }
    let dir = pod.namespace_dir();
    note(match std::fs::remove_dir(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&dir)(e)),
        _ => Ok(()),
    });
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn unmount_and_remove(path: &Path) -> Result<(), PodError> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(source) => {
            return Err(PodError::Sys {
                path: path.to_path_buf(),
                op: "unmount",
                source,
            })
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

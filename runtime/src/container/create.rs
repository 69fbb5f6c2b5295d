//! `create`: validate the bundle, fork the init with its namespaces, let it build
//! the rootfs, and leave it blocked on `exec.fifo` until `start`.

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use tracing::{debug, info_span};

use super::record::{proc_stat, Record};
use super::{cgroup_of, ContainerError, Runtime};
use crate::bundle::Bundle;
use crate::confine::Confinement;
use crate::devices;
use crate::process::init::InitConfig;
use crate::process::spawn;
use crate::rootfs::RootfsConfig;
use crate::tty;

/// The arguments of `create` (and the create half of `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Where to send the pty master when the process has a terminal.
    pub console_socket: Option<PathBuf>,
    /// File to write the init pid to.
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Fds after stdio passed on to the process.
    pub preserve_fds: u32,
    /// Signal the init gets when the calling thread dies (`PR_SET_PDEATHSIG`); for a
    /// caller that runs the container in the foreground and wants it gone with itself.
    pub parent_death_signal: Option<nix::sys::signal::Signal>,
}

impl Runtime {
    /// Creates container `opts.id`; returns the init's pid once it waits for `start`.
    pub fn create(&self, opts: &CreateOptions) -> Result<Pid, ContainerError> {
        let _span = info_span!("create", id = %opts.id).entered();
        let dir = self.dirs.create(&opts.id)?;
        let result = self.create_in(&dir, opts);
        if result.is_err() {
            let _ = self.dirs.remove(&opts.id);
        }
        result
    }

    fn create_in(&self, dir: &Path, opts: &CreateOptions) -> Result<Pid, ContainerError> {
        let bundle = Bundle::load(&opts.bundle)?;
        let spec = &bundle.spec;
        let process = spec.process().clone().unwrap_or_default();
        let linux = spec.linux().clone().unwrap_or_default();
        let terminal = process.terminal().unwrap_or(false);
        let console_socket = match (&opts.console_socket, terminal) {
            (Some(path), true) => Some(tty::connect(path)?),
            (None, true) => {
                return Err(ContainerError::Console(
                    "cannot allocate tty if runc will detach without setting console socket".into(),
                ))
            }
            (Some(_), false) => {
                return Err(ContainerError::Console(
                    "cannot use console socket if runc will not detach or allocate tty".into(),
                ))
            }
            (None, false) => None,
        };
        let confinement = Confinement::with_filter_cache(
            &process,
            linux.seccomp().as_ref(),
            Some(&self.dirs.seccomp_cache()),
        )?;
        let cgroup = cgroup_of(&opts.id, spec)?;
        let exec_fifo = make_exec_fifo(dir)?;
        let in_userns = bundle.namespaces.has(CloneFlags::CLONE_NEWUSER);
        let rootfs = RootfsConfig {
            rootfs: bundle.rootfs.clone(),
            mounts: spec.mounts().clone().unwrap_or_default(),
            propagation: linux.rootfs_propagation().clone(),
            readonly: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            no_pivot: opts.no_pivot,
            devices: devices::devices_for(linux.devices().as_deref().unwrap_or(&[]))
                .map_err(crate::bundle::BundleError::from)?,
            bind_devices: in_userns,
            masked_paths: linux.masked_paths().clone().unwrap_or_default(),
            readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
            cgroup_binds: cgroup.hierarchies(),
        };
        let uts = bundle.namespaces.new.contains(CloneFlags::CLONE_NEWUTS);
        let mut sysctl: Vec<(String, String)> = linux
            .sysctl()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        sysctl.sort();
        let init = InitConfig {
            namespaces: bundle.namespaces.clone(),
            rootfs: Some(rootfs),
            process: process.clone(),
            confinement,
            hostname: spec.hostname().clone().filter(|h| uts && !h.is_empty()),
            domainname: spec.domainname().clone().filter(|d| uts && !d.is_empty()),
            sysctl,
            exec_fifo: Some(exec_fifo),
            console_socket,
            preserve_fds: opts.preserve_fds,
            parent_death_signal: opts.parent_death_signal,
        };
        let pending = spawn::spawn(bundle.namespaces.new, init)?;
        let pid = pending.pid();
        debug!(%pid, "init forked");
        if bundle.namespaces.new.contains(CloneFlags::CLONE_NEWUSER) {
            pending.write_id_maps(
                linux.uid_mappings().as_deref().unwrap_or(&[]),
                linux.gid_mappings().as_deref().unwrap_or(&[]),
            )?;
        }
        if let Err(e) = cgroup.create_and_apply(pid, linux.resources().as_ref()) {
            drop(pending);
            let _ = cgroup.remove();
            return Err(e.into());
        }
        if let Some(adj) = process.oom_score_adj() {
            let path = PathBuf::from(format!("/proc/{pid}/oom_score_adj"));
            std::fs::write(&path, adj.to_string()).map_err(|e| ContainerError::io(&path, e))?;
        }
        let pid = match pending.release() {
            Ok(pid) => pid,
            Err(e) => {
                let _ = cgroup.remove();
                return Err(e.into());
            }
        };
        let pid_start = proc_stat(pid.as_raw()).map(|(_, s)| s).unwrap_or(0);
        let record = Record {
            id: opts.id.clone(),
            pid: pid.as_raw(),
            pid_start,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            annotations: spec.annotations().clone().unwrap_or_default(),
            config: bundle.spec.clone(),
        };
        self.dirs.save(&record)?;
        if let Some(hooks) = spec.hooks() {
            let state = serde_json::to_string(&self.oci_state(&record))
                .map_err(|e| ContainerError::Corrupt(dir.join("state.json"), e))?;
            #[allow(deprecated)]
            let prestart = hooks.prestart().clone().unwrap_or_default();
            let stages = [
                ("prestart", prestart),
                (
                    "createRuntime",
                    hooks.create_runtime().clone().unwrap_or_default(),
                ),
                (
                    "createContainer",
                    hooks.create_container().clone().unwrap_or_default(),
                ),
            ];
            for (stage, list) in stages {
                if let Err(e) = crate::hooks::run(stage, &list, &state) {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(pid, None);
                    let _ = cgroup.remove();
                    return Err(e.into());
                }
            }
        }
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid.as_raw())?;
        }
        Ok(pid)
    }
}

/// Makes `exec.fifo` (mode 0622, as runc) and opens it O_PATH for init to reopen later.
fn make_exec_fifo(dir: &Path) -> Result<OwnedFd, ContainerError> {
    let path = dir.join("exec.fifo");
    let old = nix::sys::stat::umask(Mode::empty());
    let made = nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o622));
    nix::sys::stat::umask(old);
    made.map_err(|e| ContainerError::io(&path, e.into()))?;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_PATH | OFlag::O_CLOEXEC).bits())
        .open(&path)
        .map(OwnedFd::from)
        .map_err(|e| ContainerError::io(&path, e))
}

/// Writes the pid file atomically, as runc does (temp file then rename).
pub(super) fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(|e| ContainerError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ContainerError::io(path, e))
}

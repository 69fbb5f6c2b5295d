//! `exec`: run another process in a running container: join its namespaces
//! through /proc/<init>/ns, its cgroup, then confine and exec like init does.

use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::SigSet;
use oci_spec::runtime::Process;
use tracing::info_span;

use super::create::write_pid_file;
use super::run::{forwarded_signals, proxy_tty, wait_forwarding};
use super::state::ContainerStatus;
use super::{cgroup_of, ContainerError, Runtime};
use crate::bundle::validate_process;
use crate::confine::Confinement;
use crate::namespaces::{self, NamespacePlan};
use crate::process::init::InitConfig;
use crate::process::spawn;
use crate::tty;

/// The arguments of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Container id.
    pub id: String,
    /// The process to run (from `--process` or built from flags).
    pub process: Process,
    /// Where to send the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// File to write the new process's pid to.
    pub pid_file: Option<PathBuf>,
    /// Return once the process has started instead of waiting for it.
    pub detach: bool,
    /// Fds after stdio passed on to the process.
    pub preserve_fds: u32,
}

impl Runtime {
    /// Runs a process in container `opts.id`. Detached: returns 0 once it runs;
    /// otherwise waits and returns its exit code (128+n when killed by signal n).
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32, ContainerError> {
        let _span = info_span!("exec", id = %opts.id).entered();
        let record = self.dirs.load(&opts.id)?;
        match self.status_of(&record) {
            ContainerStatus::Stopped => {
                return Err(ContainerError::WrongStatus(
                    "cannot exec in a stopped container".into(),
                ))
            }
            ContainerStatus::Paused => {
                return Err(ContainerError::WrongStatus(
                    "cannot exec in a paused container".into(),
                ))
            }
            _ => {}
        }
        validate_process(&record.bundle.display().to_string(), &opts.process)
            .map_err(ContainerError::Bundle)?;
        let linux = record.config.linux().clone().unwrap_or_default();
        let confinement = Confinement::with_filter_cache(
            &opts.process,
            linux.seccomp().as_ref(),
            Some(&self.dirs.seccomp_cache()),
        )?;
        let wants_tty = opts.process.terminal().unwrap_or(false);
        // A foreground terminal with no console socket is proxied to our own stdio, as
        // `run` does: init sends the master to a socket of ours.
        let proxy = if wants_tty && opts.console_socket.is_none() && !opts.detach {
            Some(self.console_listener(&opts.id)?)
        } else {
            None
        };
        let console_socket = match (&opts.console_socket, &proxy, wants_tty) {
            (Some(path), _, true) => Some(tty::connect(path)?),
            (None, Some((_, path)), true) => {
                let connected = tty::connect(path);
                let _ = std::fs::remove_file(path);
                Some(connected?)
            }
            (None, None, true) => {
                return Err(ContainerError::Console(
                    "cannot allocate tty if runc will detach without setting console socket".into(),
                ))
            }
            _ => None,
        };
        let plan = NamespacePlan::from_spec(linux.namespaces().as_deref().unwrap_or(&[]))
            .map_err(|e| ContainerError::Bundle(e.into()))?;
        let join = join_list(&plan, record.pid);
        let init = InitConfig {
            namespaces: NamespacePlan {
                new: CloneFlags::empty(),
                join,
            },
            rootfs: None,
            process: opts.process.clone(),
            confinement,
            hostname: None,
            domainname: None,
            sysctl: Vec::new(),
            exec_fifo: None,
            console_socket,
            preserve_fds: opts.preserve_fds,
            parent_death_signal: None,
        };
        let mask = forwarded_signals();
        if !opts.detach {
            mask.thread_block()
                .map_err(|e| ContainerError::Sys("sigprocmask", e))?;
        }
        let pending = spawn::spawn(CloneFlags::empty(), init)?;
        let pid = pending.pid();
        cgroup_of(&opts.id, &record.config)?.add_task(pid)?;
        if let Some(adj) = opts.process.oom_score_adj() {
            let path = PathBuf::from(format!("/proc/{pid}/oom_score_adj"));
            std::fs::write(&path, adj.to_string()).map_err(|e| ContainerError::io(&path, e))?;
        }
        let pid = pending.release()?;
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid.as_raw())?;
        }
        if opts.detach {
            return Ok(0);
        }
        let code = match &proxy {
            Some((listener, _)) => {
                let (stream, _) = listener
                    .accept()
                    .map_err(|e| ContainerError::io(self.dirs.root(), e))?;
                proxy_tty(pid, &mask, tty::receive_master(&stream)?)
            }
            None => wait_forwarding(pid, &mask),
        };
        let _ = SigSet::thread_unblock(&mask);
        code
    }
}

/// Every namespace of the container, joined through its init's /proc entry
/// (user first), whether the container made it or joined it by path.
fn join_list(plan: &NamespacePlan, init: i32) -> Vec<(CloneFlags, PathBuf)> {
    let mut flags: Vec<CloneFlags> = [
        CloneFlags::CLONE_NEWUSER,
        CloneFlags::CLONE_NEWIPC,
        CloneFlags::CLONE_NEWUTS,
        CloneFlags::CLONE_NEWNET,
        CloneFlags::CLONE_NEWPID,
        CloneFlags::CLONE_NEWCGROUP,
        CloneFlags::CLONE_NEWNS,
    ]
    .into_iter()
    .filter(|f| plan.has(*f))
    .collect();
    flags.dedup();
    flags
        .into_iter()
        .map(|f| {
            let path = Path::new("/proc")
                .join(init.to_string())
                .join("ns")
                .join(namespaces::proc_name(f));
            (f, path)
        })
        .collect()
}

//! The runtime side of starting an init: one clone(2) with every new namespace
//! flag (crun's way: no re-exec), then the channel handshake.
//!
//! Invariant: the caller is single-threaded (the berth-runtime CLI is), so the
//! forked child may keep running Rust code, allocate and take locks.

use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;

use super::channel::{self, Channel, ChannelError, FromInit, ToInit};
use super::init::{self, InitConfig};
use crate::namespaces::{self, NamespaceError};

/// Why the init process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// clone(2) failed.
    #[error("clone init process: {0}")]
    Clone(nix::Error),
    /// The channel failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Joining the pid namespace for the child failed.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// Writing the user namespace id maps failed.
    #[error("write {path}: {source}")]
    IdMap {
        /// The map file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// init reported a setup error.
    #[error("{0}")]
    Init(String),
}

/// An init process that exists but has not been told to go on yet.
#[derive(Debug)]
pub struct Pending {
    pid: Pid,
    chan: Channel,
    released: bool,
}

/// Forks the init with `new` namespaces; the child runs [`init::run`].
pub fn spawn(new: CloneFlags, cfg: InitConfig) -> Result<Pending, SpawnError> {
    let (runtime_end, init_end) = channel::pair()?;
    // A joined pid namespace applies to children only: enter it around the clone.
    let restore = match cfg.namespaces.join_path(CloneFlags::CLONE_NEWPID) {
        Some(path) => {
            let own = namespaces::open(CloneFlags::CLONE_NEWPID, Path::new("/proc/self/ns/pid"))?;
            namespaces::join(CloneFlags::CLONE_NEWPID, path)?;
            Some(own)
        }
        None => None,
    };
    let flags = new.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone without CLONE_VM or a new stack behaves like fork(2): the child
    // gets a copy of this process's memory and continues here. That is sound because
    // the caller is single-threaded (the module's invariant), so no other thread held
    // a lock the child would inherit locked, and the child never returns into the
    // caller's frames: `init::run` ends in execve or _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if ret == 0 {
        drop(runtime_end);
        init::run(cfg, init_end);
    }
    let clone_err = nix::Error::last();
    if let Some(own) = restore {
        let _ = nix::sched::setns(own, CloneFlags::CLONE_NEWPID);
    }
    if ret < 0 {
        return Err(SpawnError::Clone(clone_err));
    }
    drop(init_end);
    Ok(Pending {
        pid: Pid::from_raw(ret as i32),
        chan: runtime_end,
        released: false,
    })
}

impl Pending {
    /// The init's pid as the runtime sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Writes uid_map and gid_map for a new user namespace.
    pub fn write_id_maps(
        &self,
        uids: &[LinuxIdMapping],
        gids: &[LinuxIdMapping],
    ) -> Result<(), SpawnError> {
        for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
            let text: String = maps
                .iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect();
            let path = format!("/proc/{}/{file}", self.pid);
            std::fs::write(&path, text).map_err(|source| SpawnError::IdMap { path, source })?;
        }
        Ok(())
    }

    /// Lets init go on, then waits until it is ready (or failed).
    pub fn release(mut self) -> Result<Pid, SpawnError> {
        self.released = true;
        let result = self
            .chan
            .send_to_init(&ToInit::Go)
            .and_then(|()| self.chan.recv_from_init());
        match result {
            Ok(FromInit::Ready) => Ok(self.pid),
            Ok(FromInit::Failed(msg)) => {
                let _ = waitpid(self.pid, None);
                Err(SpawnError::Init(msg))
            }
            Err(e) => {
                let _ = kill(self.pid, Signal::SIGKILL);
                let _ = waitpid(self.pid, None);
                Err(e.into())
            }
        }
    }
}

impl Drop for Pending {
    /// An init that is never released is killed, so a failed create leaves nothing.
    fn drop(&mut self) {
        if !self.released {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

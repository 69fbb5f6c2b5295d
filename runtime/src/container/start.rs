//! `start`: open `exec.fifo` for reading, which releases the blocked init into
//! its execve, then remove the fifo so the status reads "running".

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tracing::info_span;

use super::record::alive;
use super::state::ContainerStatus;
use super::{ContainerError, Runtime};

impl Runtime {
    /// Starts a created container.
    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        let _span = info_span!("start", id).entered();
        let record = self.dirs.load(id)?;
        match self.status_of(&record) {
            ContainerStatus::Created => {}
            ContainerStatus::Stopped => {
                return Err(ContainerError::WrongStatus(
                    "cannot start a container that has stopped".into(),
                ))
            }
            _ => {
                return Err(ContainerError::WrongStatus(
                    "cannot start an already running container".into(),
                ))
            }
        }
        let hooks = record.config.hooks().clone().unwrap_or_default();
        let state = serde_json::to_string(&self.oci_state(&record))
            .map_err(|e| ContainerError::Corrupt(self.dirs.dir(id).join("state.json"), e))?;
        // Run from the runtime before the process is released (not from inside
        // the container's namespaces, as the spec puts it).
        crate::hooks::run(
            "startContainer",
            hooks.start_container().as_deref().unwrap_or(&[]),
            &state,
        )?;
        let path = self.dirs.dir(id).join("exec.fifo");
        let mut fifo = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
            .open(&path)
            .map_err(|e| ContainerError::io(&path, e))?;
        let mut byte = [0u8; 1];
        loop {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::Error::EINTR) => {}
                Ok(_) => match fifo.read(&mut byte) {
                    Ok(1) => break,
                    Ok(_) => {
                        return Err(ContainerError::WrongStatus(
                            "container init exited before start".into(),
                        ))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(ContainerError::io(&path, e)),
                },
                Err(e) => return Err(ContainerError::Sys("poll exec.fifo", e)),
            }
            if !alive(record.pid, record.pid_start) {
                let _ = std::fs::remove_file(&path);
                return Err(ContainerError::WrongStatus(
                    "container init exited before start".into(),
                ));
            }
        }
        std::fs::remove_file(&path).map_err(|e| ContainerError::io(&path, e))?;
        let state = serde_json::to_string(&self.oci_state(&record))
            .map_err(|e| ContainerError::Corrupt(self.dirs.dir(id).join("state.json"), e))?;
        crate::hooks::run(
            "poststart",
            hooks.poststart().as_deref().unwrap_or(&[]),
            &state,
        )?;
        Ok(())
    }
}

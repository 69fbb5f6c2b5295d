//! `delete`: remove a stopped (or created) container's state; with `force`,
//! kill a running one first and wait for it to go.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use tracing::info_span;

use super::record::{alive, Record};
use super::state::ContainerStatus;
use super::{cgroup_of, ContainerError, Runtime};

const STOP_TIMEOUT_SECS: u64 = 10;

impl Runtime {
    /// Deletes container `id`.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        let _span = info_span!("delete", id, force).entered();
        let record = match self.dirs.load(id) {
            Ok(r) => r,
            Err(ContainerError::NotExist(_)) => {
                // An aborted create can leave a directory without state.json.
                let _ = self.dirs.remove(id);
                return if force {
                    Ok(())
                } else {
                    Err(ContainerError::NotExist(id.to_string()))
                };
            }
            Err(e) => return Err(e),
        };
        match self.status_of(&record) {
            ContainerStatus::Stopped => {}
            ContainerStatus::Created => self.stop_init(&record)?,
            status if force => {
                let _ = status;
                self.stop_init(&record)?;
            }
            status => {
                return Err(ContainerError::WrongStatus(format!(
                    "cannot delete container {id} that is not stopped: {status}"
                )))
            }
        }
        remove_cgroup(&record)?;
        if let Some(hooks) = record.config.hooks() {
            let mut state = self.oci_state(&record);
            state.status = ContainerStatus::Stopped;
            if let Ok(json) = serde_json::to_string(&state) {
                let poststop = hooks.poststop().clone().unwrap_or_default();
                if let Err(e) = crate::hooks::run("poststop", &poststop, &json) {
                    tracing::warn!(error = %e, "poststop hook failed");
                }
            }
        }
        self.dirs.remove(id)
    }

    /// SIGKILLs the init (thawing a paused container) and waits until it is gone.
    fn stop_init(&self, record: &Record) -> Result<(), ContainerError> {
        let pid = Pid::from_raw(record.pid);
        let cgroup = cgroup_of(&record.id, &record.config)?;
        let _ = kill(pid, Signal::SIGKILL);
        let _ = cgroup.thaw();
        let deadline = Instant::now() + Duration::from_secs(STOP_TIMEOUT_SECS);
        while alive(record.pid, record.pid_start) {
            // We are the parent when `run` deletes its own container.
            let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
            if Instant::now() > deadline {
                return Err(ContainerError::Timeout(
                    record.id.clone(),
                    STOP_TIMEOUT_SECS,
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

/// Removes the container's cgroup, giving exiting processes a moment to leave it.
fn remove_cgroup(record: &Record) -> Result<(), ContainerError> {
    let cgroup = cgroup_of(&record.id, &record.config)?;
    let deadline = Instant::now() + Duration::from_secs(STOP_TIMEOUT_SECS);
    loop {
        match cgroup.remove() {
            Ok(()) => return Ok(()),
            Err(crate::cgroups::CgroupError::Busy { .. }) if Instant::now() < deadline => {
                for pid in cgroup.pids().unwrap_or_default() {
                    let _ = kill(pid, Signal::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

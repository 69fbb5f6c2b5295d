//! `state.json` in a container's directory: its status, pids, exit code and times, how often
//! its restart policy restarted it and its health, written atomically (temp file, then
//! rename) so readers never see half a record. The monitor is its only writer while it runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::health::Health;

/// Errors reading or writing a container's state record.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The record could not be read or written.
    #[error("container state {path}: {source}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The record is not valid JSON.
    #[error("container state {path}: corrupt: {source}")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Prepared (rootfs, network, bundle) but not started.
    Created,
    /// Its process runs under its monitor.
    Running,
    /// Its process exited and its restart policy starts it again after a delay.
    Restarting,
    /// Its process is gone; `exit_code` says how it ended.
    Exited,
}

/// The record in `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Where the container is in its life.
    pub status: Status,
    /// The container's init pid while it runs.
    pub pid: Option<i32>,
    /// The monitor's pid while it runs.
    pub monitor_pid: Option<i32>,
    /// The exit code (128+n when killed by signal n) once exited.
    pub exit_code: Option<i32>,
    /// When the process started (RFC 3339, nanoseconds).
    pub started_at: Option<String>,
    /// When the process ended (RFC 3339, nanoseconds).
    pub finished_at: Option<String>,
    /// Why the container failed to start, if it did.
    pub error: Option<String>,
    /// How often the restart policy started the process again since the last `start`
    /// (Docker's `RestartCount`).
    #[serde(rename = "RestartCount", default)]
    pub restart_count: u32,
    /// Stopped or killed by the user: the restart policy no longer applies (Docker's
    /// `HasBeenManuallyStopped`; `unless-stopped` stays down).
    #[serde(rename = "HasBeenManuallyStopped", default)]
    pub manually_stopped: bool,
    /// The health check's status and last results (Docker's `State.Health`), when the
    /// container has a health check.
    #[serde(rename = "Health", default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

impl State {
    /// The state of a container that was prepared and never started.
    pub fn created() -> Self {
        State {
            status: Status::Created,
            pid: None,
            monitor_pid: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
            error: None,
            restart_count: 0,
            manually_stopped: false,
            health: None,
        }
    }

    /// Reads `dir/state.json`.
    pub fn load(dir: &Path) -> Result<Self, StateError> {
        let path = dir.join("state.json");
        let bytes = std::fs::read(&path).map_err(|source| StateError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Writes `dir/state.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = dir.join("state.json");
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| StateError::Corrupt {
            path: path.clone(),
            source,
        })?;
        berth_image::perms::write_private(&path, &bytes)
            .map_err(|source| StateError::Io { path, source })
    }

    /// Whether the monitor recorded in this state still runs.
    pub fn monitor_alive(&self) -> bool {
        self.monitor_pid.is_some_and(process_alive)
    }
}

impl State {
    /// Whether the container's process runs: recorded as running (or restarting) by a live
    /// monitor, or recorded as running with its init still there after the monitor was
    /// killed (the container outlives its monitor; `stop` and `rm -f` still end it).
    pub fn is_running(&self) -> bool {
        match self.status {
            Status::Running => self.monitor_alive() || self.init_alive(),
            Status::Restarting => self.monitor_alive(),
            Status::Created | Status::Exited => false,
        }
    }

    /// Whether the recorded init pid still runs.
    pub fn init_alive(&self) -> bool {
        self.pid.is_some_and(process_alive)
    }
}

/// Whether process `pid` exists and has not exited (a zombie has).
pub fn process_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() && !is_zombie(pid)
}

/// Whether `pid` is a zombie (exited, not yet reaped by its parent).
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
        })
        .is_some_and(|c| c == 'Z')
}

/// Now, as Docker writes times: RFC 3339 with nanoseconds, UTC.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::created();
        s.save(dir.path()).unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), s);
        s.status = Status::Exited;
        s.exit_code = Some(137);
        s.save(dir.path()).unwrap();
        let back = State::load(dir.path()).unwrap();
        assert_eq!(back.exit_code, Some(137));
        assert_eq!(back.status, Status::Exited);
        assert!(!back.monitor_alive());
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.path().join("state.json")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner-only");
    }
}

//! `state`: the container's status, worked out from its init pid and exec.fifo,
//! and the OCI state document.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use super::record::{alive, Record};
use super::{ContainerError, Runtime};

/// The OCI statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Init waits for `start`.
    Created,
    /// The process runs.
    Running,
    /// Frozen.
    Paused,
    /// Init has exited.
    Stopped,
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Stopped => "stopped",
        })
    }
}

/// The JSON `state` prints (runc's fields).
#[derive(Debug, Clone, Serialize)]
pub struct OciState {
    /// Spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Init pid (0 when stopped).
    pub pid: i32,
    /// Status.
    pub status: ContainerStatus,
    /// Bundle path.
    pub bundle: PathBuf,
    /// Rootfs path.
    pub rootfs: PathBuf,
    /// Creation time.
    pub created: String,
    /// Owner (runc prints "" for root-owned containers).
    pub owner: String,
    /// The spec's annotations.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

impl Runtime {
    /// The status of a recorded container.
    pub fn status_of(&self, record: &Record) -> ContainerStatus {
        if !alive(record.pid, record.pid_start) {
            return ContainerStatus::Stopped;
        }
        if self.dirs.dir(&record.id).join("exec.fifo").exists() {
            return ContainerStatus::Created;
        }
        if frozen(record.pid) {
            return ContainerStatus::Paused;
        }
        ContainerStatus::Running
    }

    /// The OCI state of container `id`.
    pub fn state(&self, id: &str) -> Result<OciState, ContainerError> {
        let record = self.dirs.load(id)?;
        Ok(self.oci_state(&record))
    }

    /// The OCI state of a loaded record.
    pub fn oci_state(&self, record: &Record) -> OciState {
        let status = self.status_of(record);
        OciState {
            oci_version: record.config.version().clone(),
            id: record.id.clone(),
            pid: if status == ContainerStatus::Stopped {
                0
            } else {
                record.pid
            },
            status,
            bundle: record.bundle.clone(),
            rootfs: record.rootfs.clone(),
            created: record.created.clone(),
            owner: String::new(),
            annotations: record.annotations.clone(),
        }
    }
}

/// True when the init's freezer cgroup (v1) says FROZEN.
fn frozen(pid: i32) -> bool {
    let Ok(cgroups) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    cgroups
        .lines()
        .filter_map(|l| l.split_once(':').and_then(|(_, r)| r.split_once(':')))
        .find(|(ctrls, _)| ctrls.split(',').any(|c| c == "freezer"))
        .and_then(|(_, path)| {
            std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state")).ok()
        })
        .is_some_and(|s| s.trim() == "FROZEN")
}

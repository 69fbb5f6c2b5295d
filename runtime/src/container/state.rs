//! `state`: the container's status, worked out from its init pid and exec.fifo,
//! and the OCI state document.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use super::record::{alive, Record};
use super::{cgroup_of, ContainerError, Runtime};
use crate::cgroups::FreezerState;

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
        let frozen = cgroup_of(&record.id, &record.config)
            .and_then(|c| Ok(c.state()?))
            .is_ok_and(|s| s == FreezerState::Frozen);
        if frozen {
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

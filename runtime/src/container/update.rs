//! `update` and `events --stats`: change a running container's cgroup limits,
//! report its usage in runc's event format.

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use tracing::info_span;

use super::state::ContainerStatus;
use super::{cgroup_of, ContainerError, Runtime};
use crate::cgroups::runc_stats_json;

impl Runtime {
    /// Writes new resource limits to the container's cgroup.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), ContainerError> {
        let _span = info_span!("update", id).entered();
        let record = self.dirs.load(id)?;
        if self.status_of(&record) == ContainerStatus::Stopped {
            return Err(ContainerError::WrongStatus("container not running".into()));
        }
        Ok(cgroup_of(id, &record.config)?.update(resources)?)
    }

    /// One `stats` event as runc's `events --stats` prints it.
    pub fn stats_event(&self, id: &str) -> Result<Value, ContainerError> {
        let record = self.dirs.load(id)?;
        if self.status_of(&record) == ContainerStatus::Stopped {
            return Err(ContainerError::WrongStatus("container not running".into()));
        }
        let stats = cgroup_of(id, &record.config)?.stats()?;
        Ok(json!({"type": "stats", "id": id, "data": runc_stats_json(&stats)}))
    }
}

//! `pause` and `resume`: freeze and thaw the container's cgroup.

use tracing::info_span;

use super::state::ContainerStatus;
use super::{cgroup_of, ContainerError, Runtime};

impl Runtime {
    /// Freezes every process of a running container.
    pub fn pause(&self, id: &str) -> Result<(), ContainerError> {
        let _span = info_span!("pause", id).entered();
        let record = self.dirs.load(id)?;
        match self.status_of(&record) {
            ContainerStatus::Running | ContainerStatus::Created => {}
            _ => return Err(ContainerError::WrongStatus("container not running".into())),
        }
        Ok(cgroup_of(id, &record.config)?.freeze()?)
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<(), ContainerError> {
        let _span = info_span!("resume", id).entered();
        let record = self.dirs.load(id)?;
        if self.status_of(&record) != ContainerStatus::Paused {
            return Err(ContainerError::WrongStatus("container not paused".into()));
        }
        Ok(cgroup_of(id, &record.config)?.thaw()?)
    }

    /// Host pids of every process in the container's cgroup, sorted.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, ContainerError> {
        let record = self.dirs.load(id)?;
        let mut pids: Vec<i32> = cgroup_of(id, &record.config)?
            .pids()?
            .into_iter()
            .map(|p| p.as_raw())
            .collect();
        pids.sort();
        Ok(pids)
    }

    /// OCI states of every container under the root, by id.
    pub fn list(&self) -> Result<Vec<super::OciState>, ContainerError> {
        let mut out = Vec::new();
        for id in self.dirs.ids()? {
            if let Ok(record) = self.dirs.load(&id) {
                out.push(self.oci_state(&record));
            }
        }
        Ok(out)
    }
}

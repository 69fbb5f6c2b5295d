//! What the pod worker remembers of each Pod it runs and of each of its containers, between
//! rounds: the berth pod and containers made for them, restarts, exits and probe workers.

use tokio::time::Instant;

use berth_engine::container::ContainerConfig;
use berth_engine::pod::PodRecord;
use berth_kube::pod::{Container, ContainerStateTerminated, Pod};

use super::LABEL_RESTARTS;
use crate::probe::ProbeWorker;

/// Why a container is not running: the kubelet's reason and message.
pub(super) type Waiting = (String, Option<String>);

/// One Kubernetes container as this node runs it.
#[derive(Debug)]
pub(super) struct ContainerRun {
    pub(super) name: String,
    /// The berth container running (or last run) for it.
    pub(super) id: Option<String>,
    pub(super) image_id: String,
    pub(super) restart_count: i32,
    pub(super) last_terminated: Option<ContainerStateTerminated>,
    /// Set when it exited for good (no restart under the policy).
    pub(super) terminated: Option<ContainerStateTerminated>,
    /// Why it is not running, when it is not.
    pub(super) waiting: Option<Waiting>,
    /// When it last exited or failed to start (for the back-off).
    pub(super) exited_at: Option<Instant>,
    pub(super) started_at: Option<String>,
    pub(super) liveness: Option<ProbeWorker>,
    pub(super) readiness: Option<ProbeWorker>,
}

impl ContainerRun {
    /// A container not made yet.
    pub(super) fn new(name: &str) -> Self {
        ContainerRun {
            name: name.to_string(),
            id: None,
            image_id: String::new(),
            restart_count: 0,
            last_terminated: None,
            terminated: None,
            waiting: Some(("ContainerCreating".to_string(), None)),
            exited_at: None,
            started_at: None,
            liveness: None,
            readiness: None,
        }
    }
}

/// One Pod as this node runs it.
#[derive(Debug)]
pub(super) struct PodRun {
    pub(super) record: PodRecord,
    pub(super) ip: Option<String>,
    pub(super) start_time: String,
    /// `spec.initContainers`, run one after the other to completion before `containers`.
    pub(super) init: Vec<ContainerRun>,
    pub(super) containers: Vec<ContainerRun>,
    /// The Pod as last seen (for the grace period when it is deleted).
    pub(super) pod: Pod,
    pub(super) volumes_refreshed: Option<Instant>,
    pub(super) message: Option<String>,
}

/// Which container of a pod: the `i`th init container or the `i`th app container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) init: bool,
    pub(super) i: usize,
}

impl PodRun {
    /// The container in `slot` (which must exist).
    pub(super) fn container(&mut self, slot: Slot) -> &mut ContainerRun {
        if slot.init {
            &mut self.init[slot.i]
        } else {
            &mut self.containers[slot.i]
        }
    }
}

/// A run for each of `specs`, none started yet.
pub(super) fn fresh_runs(specs: &[Container]) -> Vec<ContainerRun> {
    specs.iter().map(|c| ContainerRun::new(&c.name)).collect()
}

/// The restart count a berth container was made with (its label), 0 when unlabelled.
pub(super) fn restarts_label(cfg: &ContainerConfig) -> i32 {
    restarts_of(cfg.labels.get(LABEL_RESTARTS).map(String::as_str))
}

fn restarts_of(label: Option<&str>) -> i32 {
    label.and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_runs_wait_to_be_created() {
        let specs = [
            Container {
                name: "a".into(),
                ..Container::default()
            },
            Container {
                name: "b".into(),
                ..Container::default()
            },
        ];
        let runs = fresh_runs(&specs);
        assert_eq!(
            runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        for r in &runs {
            assert_eq!(
                r.waiting.as_ref().map(|w| w.0.as_str()),
                Some("ContainerCreating")
            );
            assert!(r.id.is_none() && r.exited_at.is_none() && r.restart_count == 0);
        }
    }

    #[test]
    fn restart_labels_read_as_numbers() {
        assert_eq!(restarts_of(Some("3")), 3);
        assert_eq!(restarts_of(Some("x")), 0);
        assert_eq!(restarts_of(None), 0);
    }
}

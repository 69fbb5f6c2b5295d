//! Writing a Pod's `status`: each container's state from its run ([`view`]), the Pod's
//! phase and conditions from those ([`crate::pod_status`]), written only when it changed.

use berth_kube::kinds;
use berth_kube::pod::{
    Container, ContainerState, ContainerStateRunning, ContainerStatus, Pod, PodStatus,
    CONTAINER_ID_PREFIX,
};

use super::runs::ContainerRun;
use super::{key, now_rfc3339, Node};
use crate::phase::{ContainerPhase, RestartPolicy};
use crate::pod_status::{self, ContainerView, PodFacts};
use crate::probe::ProbeWorker;

impl Node {
    /// Writes `Pending` (with why its berth pod could not be made) for a Pod not running.
    pub(super) fn write_pending_status(&self, pod: &Pod) {
        let message = self.retry_at.get(&key(pod)).map(|(_, m)| m.clone());
        let mut status = pod.status.clone().unwrap_or_default();
        if status.phase.is_some() && status.message == message {
            return;
        }
        status.phase = Some("Pending".to_string());
        status.message = message;
        status.host_ip = Some(self.host_ip.clone());
        self.put_status(pod, status);
    }

    /// Writes the status of the Pod `uid` runs, when it changed.
    pub(super) fn write_status(&self, uid: &str) {
        let Some(run) = self.running.get(uid) else {
            return;
        };
        let app_views = views(&run.pod.spec.containers, &run.containers);
        let init_views = views(&run.pod.spec.init_containers, &run.init);
        let policy =
            RestartPolicy::parse(run.pod.spec.restart_policy.as_deref()).unwrap_or_default();
        let facts = PodFacts {
            pod_ip: run.ip.clone(),
            host_ip: self.host_ip.clone(),
            start_time: run.start_time.clone(),
            message: run.message.clone(),
        };
        let status = pod_status::pod_status(
            run.pod.status.as_ref(),
            &init_views,
            &app_views,
            policy,
            &facts,
            &now_rfc3339(),
        );
        if run.pod.status.as_ref() != Some(&status) {
            self.put_status(&run.pod, status);
        }
    }

    /// Stores `status` as `pod`'s, unless the stored Pod is another one by now.
    fn put_status(&self, pod: &Pod, status: PodStatus) {
        let Ok(mut value) =
            self.store
                .get(&kinds::POD, pod.metadata.namespace(), pod.metadata.name())
        else {
            return;
        };
        if value["metadata"]["uid"].as_str() != pod.metadata.uid.as_deref() {
            return;
        }
        match serde_json::to_value(&status) {
            Ok(s) => value["status"] = s,
            Err(e) => {
                tracing::error!(error = %e, "encoding a pod status");
                return;
            }
        }
        if let Err(e) = self.store.update_status(&kinds::POD, value) {
            tracing::debug!(error = %e, "writing pod status");
        }
    }
}

/// The status of each of `specs` from its run.
fn views(specs: &[Container], runs: &[ContainerRun]) -> Vec<ContainerView> {
    specs
        .iter()
        .zip(runs)
        .map(|(spec, c)| view(spec, c))
        .collect()
}

/// Container `c`'s status as the API shows it.
fn view(spec: &Container, c: &ContainerRun) -> ContainerView {
    let running = c.id.is_some() && c.started_at.is_some() && c.terminated.is_none();
    let ready = running && c.readiness.as_ref().is_none_or(ProbeWorker::passed);
    let state = if let Some(t) = &c.terminated {
        ContainerState {
            terminated: Some(t.clone()),
            ..ContainerState::default()
        }
    } else if running {
        ContainerState {
            running: Some(ContainerStateRunning {
                started_at: c.started_at.clone(),
            }),
            ..ContainerState::default()
        }
    } else {
        let (reason, message) = c
            .waiting
            .clone()
            .unwrap_or_else(|| ("ContainerCreating".to_string(), None));
        pod_status::waiting(&reason, message)
    };
    let phase = if let Some(t) = &c.terminated {
        ContainerPhase::Terminated(t.exit_code)
    } else if running {
        ContainerPhase::Running
    } else {
        ContainerPhase::Waiting {
            has_run: c.last_terminated.is_some(),
        }
    };
    ContainerView {
        status: ContainerStatus {
            name: c.name.clone(),
            state: Some(state),
            last_state: Some(ContainerState {
                terminated: c.last_terminated.clone(),
                ..ContainerState::default()
            }),
            ready,
            restart_count: c.restart_count,
            image: spec.image.clone().unwrap_or_default(),
            image_id: c.image_id.clone(),
            container_id: c.id.as_ref().map(|id| format!("{CONTAINER_ID_PREFIX}{id}")),
            started: Some(running),
        },
        phase,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Probe, ProbeAction, ProbeKind};
    use berth_kube::pod::ContainerStateTerminated;
    use tokio::time::Instant;

    fn spec() -> Container {
        Container {
            name: "app".into(),
            image: Some("img:1".into()),
            ..Container::default()
        }
    }

    #[test]
    fn a_container_not_made_waits() {
        let mut c = ContainerRun::new("app");
        c.waiting = Some(("ErrImagePull".into(), Some("no".into())));
        let v = view(&spec(), &c);
        let w = v.status.state.and_then(|s| s.waiting).unwrap_or_default();
        assert_eq!(w.reason.as_deref(), Some("ErrImagePull"));
        assert_eq!(w.message.as_deref(), Some("no"));
        assert_eq!(v.phase, ContainerPhase::Waiting { has_run: false });
        assert!(!v.status.ready);
        assert_eq!(v.status.container_id, None);
        assert_eq!(v.status.image, "img:1");
    }

    #[test]
    fn a_running_container_is_ready_once_its_readiness_probe_passes() {
        let mut c = ContainerRun::new("app");
        c.id = Some("abc".into());
        c.started_at = Some("t".into());
        c.restart_count = 2;
        let v = view(&spec(), &c);
        assert_eq!(v.phase, ContainerPhase::Running);
        assert!(v.status.ready, "no readiness probe: ready when running");
        assert_eq!(v.status.restart_count, 2);
        assert_eq!(
            v.status.container_id,
            Some(format!("{CONTAINER_ID_PREFIX}abc"))
        );
        let probe = Probe::with_defaults(
            ProbeAction::Exec { command: vec![] },
            None,
            None,
            None,
            None,
            None,
        );
        c.readiness = Some(ProbeWorker::new(
            probe,
            ProbeKind::Readiness,
            Instant::now(),
        ));
        assert!(!view(&spec(), &c).status.ready);
    }

    #[test]
    fn a_terminated_container_shows_its_exit() {
        let mut c = ContainerRun::new("app");
        c.id = Some("abc".into());
        c.started_at = Some("t".into());
        c.terminated = Some(ContainerStateTerminated {
            exit_code: 3,
            ..ContainerStateTerminated::default()
        });
        let views = views(&[spec()], &[c]);
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].phase, ContainerPhase::Terminated(3));
        assert!(!views[0].status.ready);
        let t = views[0]
            .status
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref());
        assert_eq!(t.map(|t| t.exit_code), Some(3));
    }
}

//! The executor for one Pod's containers, each round: refresh its volumes, run its init
//! containers one at a time to a clean exit, then keep its app containers running. For
//! each container it reads the berth container's state, asks [`super::plan`] what to do,
//! and does it: start probes, record an exit, remove and make it again after the back-off.

use std::time::Duration;

use tokio::time::Instant;

use berth_engine::container::{self, State, Status};
use berth_kube::pod::Container;

use super::plan::{self, Names, Observation, Seen};
use super::probes::start_probes;
use super::pull::PullPolicy;
use super::runs::{ContainerRun, PodRun, Slot};
use super::start::{create_and_start, StartError};
use super::{blocking, Node, LABEL_CONTAINER, LABEL_RESTARTS};
use crate::phase::RestartPolicy;
use crate::pod_security;
use crate::pod_spec::{self, SpecError};

/// How often ConfigMap and Secret volumes are refreshed.
const VOLUME_REFRESH: Duration = Duration::from_secs(1);

/// What the plan needs of a berth container's state (reading it checks processes).
fn seen(state: &State) -> Seen {
    match state.status {
        Status::Running if state.is_running() => Seen::Running {
            started_at: state.started_at.clone(),
        },
        Status::Created | Status::Restarting if state.monitor_alive() => Seen::Starting,
        _ => Seen::Exited {
            code: state
                .exit_code
                .unwrap_or_else(|| plan::unrecorded_exit(state.status == Status::Created)),
            started_at: state.started_at.clone(),
            finished_at: state.finished_at.clone(),
            error: state.error.clone(),
        },
    }
}

impl Node {
    /// Brings the containers of `run` (Pod `uid`) one round closer to its spec.
    pub(super) async fn sync_containers(&mut self, uid: &str, run: &mut PodRun) {
        let policy =
            RestartPolicy::parse(run.pod.spec.restart_policy.as_deref()).unwrap_or_default();
        let now = Instant::now();
        // Volumes first (and ConfigMap/Secret contents refreshed about every second).
        let volumes = if run
            .volumes_refreshed
            .is_none_or(|t| now.duration_since(t) >= VOLUME_REFRESH)
        {
            let store = self.store.clone();
            let root = self.ctx.containers.root().to_path_buf();
            let pod = run.pod.clone();
            let made = blocking(move || pod_spec::prepare_volumes(&store, &root, &pod)).await;
            run.volumes_refreshed = Some(now);
            match made {
                Some(Ok(v)) => {
                    run.message = None;
                    Some(v)
                }
                Some(Err(e)) => {
                    run.message = Some(e.to_string());
                    None
                }
                None => None,
            }
        } else {
            None
        };
        // Init containers one at a time, each to a clean exit, as the kubelet runs them: one
        // that fails is run again unless the pod's policy is Never.
        let init_policy = match policy {
            RestartPolicy::Never => RestartPolicy::Never,
            _ => RestartPolicy::OnFailure,
        };
        let init_specs = run.pod.spec.init_containers.clone();
        for (i, spec) in init_specs.iter().enumerate() {
            if run.init.len() <= i {
                run.init.push(ContainerRun::new(&spec.name));
            }
            let slot = Slot { init: true, i };
            self.sync_container(uid, run, slot, spec, init_policy, &volumes)
                .await;
            if !plan::init_done(&run.init[i]) {
                for c in &mut run.containers {
                    c.waiting = Some(("PodInitializing".to_string(), None));
                }
                return;
            }
        }
        let specs = run.pod.spec.containers.clone();
        for (i, spec) in specs.iter().enumerate() {
            if run.containers.len() <= i {
                run.containers.push(ContainerRun::new(&spec.name));
            }
            let slot = Slot { init: false, i };
            self.sync_container(uid, run, slot, spec, policy, &volumes)
                .await;
        }
    }

    /// Observes one container and (re)starts it when it must run and its back-off allows.
    async fn sync_container(
        &mut self,
        uid: &str,
        run: &mut PodRun,
        slot: Slot,
        spec: &Container,
        policy: RestartPolicy,
        volumes: &Option<pod_spec::PodVolumes>,
    ) {
        let bkey = (uid.to_string(), spec.name.clone());
        if !self.observe(run, slot, spec, policy).await {
            return;
        }
        let pod_name = run.pod.metadata.name().to_string();
        let pod_namespace = run.pod.metadata.namespace().to_string();
        let pod_message = run.message.clone();
        let c = run.container(slot);
        if let Some(exited) = c.exited_at {
            if let Some(wait) = self.backoff.remaining(&bkey, exited, Instant::now()) {
                let delay = self.backoff.delay(&bkey).unwrap_or(wait);
                let names = Names {
                    container: &spec.name,
                    pod: &pod_name,
                    namespace: &pod_namespace,
                    uid,
                    image: spec.image.as_deref().unwrap_or(""),
                };
                c.waiting = Some(plan::back_off(c.waiting.as_ref(), delay, names));
                return;
            }
        }
        let Some(volumes) = volumes.clone() else {
            // Volumes not refreshed this round (or failed): start next round.
            if pod_message.is_some() {
                c.waiting = Some(("ContainerCreating".to_string(), pod_message));
            }
            return;
        };
        self.start_container(run, slot, spec, &volumes, &bkey).await;
    }

    /// Reads the state of the container in `slot` and does what the plan says of it.
    /// Returns whether it must be (re)started.
    async fn observe(
        &mut self,
        run: &mut PodRun,
        slot: Slot,
        spec: &Container,
        policy: RestartPolicy,
    ) -> bool {
        let ip = run.ip.clone().unwrap_or_default();
        let pod_name = run.record.name.clone();
        let containers = self.ctx.containers.clone();
        let c = run.container(slot);
        let seen_now = match (&c.terminated, c.id.clone()) {
            (None, Some(id)) => {
                let cs = containers.clone();
                match blocking(move || cs.state(&id).map(|s| seen(&s))).await {
                    Some(Ok(s)) => s,
                    _ => Seen::Gone,
                }
            }
            _ => Seen::Gone,
        };
        match plan::observe(c, seen_now, policy) {
            Observation::Unchanged => false,
            Observation::Make => {
                c.id = None;
                true
            }
            Observation::Started { started_at } => {
                // A container seen running for the first time: its probes start now.
                c.started_at = started_at;
                c.waiting = None;
                start_probes(c, spec, &ip, Instant::now());
                false
            }
            Observation::Exited {
                terminated,
                restart,
            } => {
                c.liveness = None;
                c.readiness = None;
                c.started_at = None;
                if !restart {
                    c.terminated = Some(terminated);
                    c.waiting = None;
                    return false;
                }
                let code = terminated.exit_code;
                tracing::info!(container = %c.name, pod = %pod_name, code, "exited; restarting");
                c.last_terminated = Some(terminated);
                c.exited_at = Some(Instant::now());
                c.waiting = Some(("ContainerCreating".to_string(), None));
                if let Some(id) = c.id.take() {
                    if let Ok(cfg) = containers.config(&id) {
                        blocking(move || container::remove(&containers, &cfg, true)).await;
                    }
                }
                true
            }
        }
    }

    /// Makes and starts the berth container for `spec` in `slot`, recording the outcome
    /// (and the back-off of a failure).
    async fn start_container(
        &mut self,
        run: &mut PodRun,
        slot: Slot,
        spec: &Container,
        volumes: &pod_spec::PodVolumes,
        bkey: &(String, String),
    ) {
        let (restart_count, restarted) = plan::next_restart(run.container(slot));
        let prepared = (|| -> Result<container::RunOptions, SpecError> {
            let env = pod_spec::container_env(
                &self.store,
                &run.pod,
                run.ip.as_deref(),
                &self.host_ip,
                spec,
            )?;
            let mounts = pod_spec::mounts(spec, volumes)?;
            let mut labels = run.record.labels.clone();
            labels.insert(LABEL_CONTAINER.to_string(), spec.name.clone());
            labels.insert(LABEL_RESTARTS.to_string(), restart_count.to_string());
            let name = format!("{}_{}_{}", run.record.name, spec.name, restart_count);
            let mut opts = pod_spec::run_options(spec, &env, mounts, &run.record.id, labels, name);
            pod_security::apply(&run.pod, spec, &mut opts)?;
            Ok(opts)
        })();
        let opts = match prepared {
            Ok(o) => o,
            Err(e) => {
                run.container(slot).waiting = Some((e.reason().to_string(), Some(e.to_string())));
                return;
            }
        };
        let containers = self.ctx.containers.clone();
        let exe = self.ctx.berth_exe.clone();
        let image = opts.image.clone();
        let policy = PullPolicy::of(spec);
        let (label, cname) = (pod_security::pod_label(&run.pod), spec.name.clone());
        let made =
            blocking(move || create_and_start(&containers, &exe, &opts, policy, &label, &cname))
                .await;
        let pod_name = run.record.name.clone();
        let c = run.container(slot);
        let now = Instant::now();
        match made {
            Some(Ok(cfg)) => {
                tracing::info!(container = %spec.name, pod = %pod_name, restart_count, "started");
                if restarted {
                    self.backoff.restarted(bkey, now);
                    c.restart_count = restart_count;
                }
                c.exited_at = None;
                c.id = Some(cfg.id.clone());
                c.image_id = cfg.image_id.clone();
                c.started_at = None;
            }
            Some(Err(e)) => {
                let backing_off = c.waiting.as_ref().is_some_and(|w| w.0.contains("Image"));
                let reason = e.reason(backing_off);
                tracing::warn!(container = %spec.name, %image, error = %e, reason, "cannot start");
                c.waiting = Some((reason.to_string(), Some(e.to_string())));
                c.exited_at = Some(now);
                // Pulls back off as the kubelet does, but do not count as restarts.
                if !matches!(e, StartError::Image(_)) || c.last_terminated.is_none() {
                    self.backoff.restarted(bkey, now);
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Status, exit_code: Option<i32>) -> State {
        let mut s = State::created();
        s.status = status;
        s.exit_code = exit_code;
        s.started_at = Some("s".into());
        s.finished_at = Some("f".into());
        s
    }

    #[test]
    fn a_container_without_live_processes_has_exited() {
        // No monitor or init pid recorded: whatever the record says, nothing runs.
        assert_eq!(
            seen(&state(Status::Exited, Some(3))),
            Seen::Exited {
                code: 3,
                started_at: Some("s".into()),
                finished_at: Some("f".into()),
                error: None
            }
        );
        assert!(matches!(
            seen(&state(Status::Running, None)),
            Seen::Exited { code: 137, .. }
        ));
        assert!(matches!(
            seen(&state(Status::Created, None)),
            Seen::Exited { code: 128, .. }
        ));
    }
}

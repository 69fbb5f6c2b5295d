//! Wiring the containers' probes: a container seen running for the first time gets its
//! liveness and readiness workers ([`start_probes`]); each round every due probe runs at
//! once and a liveness probe that fails its threshold kills its container (the restart
//! policy then decides). `exec` probes run with [`MonitorExec`].

use std::time::Duration;

use tokio::time::Instant;

use berth_engine::container;
use berth_kube::pod::Container;

use super::runs::ContainerRun;
use super::{grace, Node};
use crate::pod_spec;
use crate::probe::{self, ExecInContainer, Outcome, ProbeKind, ProbeWorker};

/// Gives container `c` (of `spec`, in a pod at `ip`) fresh probe workers from `now`.
pub(super) fn start_probes(c: &mut ContainerRun, spec: &Container, ip: &str, now: Instant) {
    let worker = |p: Option<&berth_kube::pod::Probe>, kind| {
        p.and_then(|p| pod_spec::probe(spec, p, ip).ok().flatten())
            .map(|p| ProbeWorker::new(p, kind, now))
    };
    c.liveness = worker(spec.liveness_probe.as_ref(), ProbeKind::Liveness);
    c.readiness = worker(spec.readiness_probe.as_ref(), ProbeKind::Readiness);
}

impl Node {
    /// Runs every due probe of every pod at once, then applies the results: a failed
    /// liveness probe kills its container (it is then restarted per the policy).
    pub(super) async fn run_probes(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (uid, run) in &self.running {
            for (i, c) in run.containers.iter().enumerate() {
                let Some(id) = c.id.clone() else { continue };
                for (kind, w) in [
                    (ProbeKind::Liveness, c.liveness.as_ref()),
                    (ProbeKind::Readiness, c.readiness.as_ref()),
                ] {
                    if let Some(w) = w.filter(|w| w.due(now)) {
                        due.push((uid.clone(), i, kind, id.clone(), w.probe().clone()));
                    }
                }
            }
        }
        if due.is_empty() {
            return;
        }
        let outcomes = futures::future::join_all(due.iter().map(|(_, _, _, id, p)| {
            let exec = MonitorExec { id: id.clone() };
            let p = p.clone();
            async move { probe::run_once(&p.action, p.timeout, &exec).await }
        }))
        .await;
        let done = Instant::now();
        for ((uid, i, kind, id, _), outcome) in due.into_iter().zip(outcomes) {
            let Some(run) = self.running.get_mut(&uid) else {
                continue;
            };
            let Some(c) = run.containers.get_mut(i) else {
                continue;
            };
            if c.id.as_deref() != Some(id.as_str()) {
                continue;
            }
            let worker = match kind {
                ProbeKind::Liveness => c.liveness.as_mut(),
                ProbeKind::Readiness => c.readiness.as_mut(),
            };
            let Some(worker) = worker else { continue };
            let changed = worker.record(&outcome, done);
            if let Outcome::Failure(why) = &outcome {
                tracing::debug!(container = %c.name, ?kind, %why, "probe failed");
            }
            if kind == ProbeKind::Liveness && changed == Some(false) {
                tracing::info!(container = %c.name, pod = %run.record.name, "liveness probe failed: killing");
                c.liveness = None;
                let containers = self.ctx.containers.clone();
                let timeout = grace(&run.pod);
                tokio::task::spawn_blocking(move || {
                    if let Ok(cfg) = containers.config(&id) {
                        let _ = container::stop(&containers, &cfg, timeout);
                    }
                });
            }
        }
    }
}

/// An `exec` probe's command gave no exit code.
#[derive(Debug, thiserror::Error)]
pub(super) enum ExecError {
    /// The monitor could not run it, or it timed out.
    #[error(transparent)]
    Probe(#[from] container::ExecProbeError),
    /// The blocking task asking the monitor failed.
    #[error("exec probe task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs `exec` probes through the container's monitor ([`container::exec_probe`]), which
/// starts the command, captures its output and kills it at the probe's timeout.
///
/// Not in this process: the runtime's exec clones the calling process and waits for the
/// child with `sigwait`, which is sound only in a single-threaded caller (see
/// `berth_runtime::process::spawn`), and the daemon is not one; the monitor is.
pub(super) struct MonitorExec {
    id: String,
}

impl ExecInContainer for MonitorExec {
    type Error = ExecError;

    async fn exec(
        &self,
        command: &[String],
        timeout: Duration,
    ) -> Result<container::ProbeOutput, ExecError> {
        let id = self.id.clone();
        let command = command.to_vec();
        let output =
            tokio::task::spawn_blocking(move || container::exec_probe(&id, &command, timeout))
                .await??;
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_probes() -> Container {
        serde_json::from_value(serde_json::json!({
            "name": "app",
            "image": "img",
            "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 3},
            "readinessProbe": {"tcpSocket": {"port": 80}}
        }))
        .unwrap()
    }

    #[test]
    fn a_started_container_gets_its_probes() {
        let mut c = ContainerRun::new("app");
        let now = Instant::now();
        start_probes(&mut c, &spec_with_probes(), "10.0.0.2", now);
        let live = c.liveness.as_ref().unwrap();
        assert_eq!(live.kind(), ProbeKind::Liveness);
        assert_eq!(live.probe().period.as_secs(), 3);
        let ready = c.readiness.as_ref().unwrap();
        assert!(matches!(
            &ready.probe().action,
            probe::ProbeAction::TcpSocket { host, port: 80 } if host == "10.0.0.2"
        ));
        start_probes(&mut c, &Container::default(), "10.0.0.2", now);
        assert!(c.liveness.is_none() && c.readiness.is_none());
    }

    #[tokio::test]
    async fn a_container_without_a_monitor_is_an_exec_error() {
        let exec = MonitorExec {
            id: "no-such-container-here".into(),
        };
        let e = exec
            .exec(&["true".into()], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                ExecError::Probe(container::ExecProbeError::Control(
                    container::control::ControlError::Unreachable { .. }
                ))
            ),
            "{e}"
        );
        assert!(e.to_string().contains("no monitor answers"), "{e}");
    }
}

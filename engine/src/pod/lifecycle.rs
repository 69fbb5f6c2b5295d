//! Starting, stopping and removing pods. Each holds the pod's `lock` (flock) so that two
//! `berth` processes (or daemon threads) never start or remove the same pod at once.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use fs2::FileExt;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{infra, io_err, names, PodError, PodRecord, PodState, Pods};
use crate::container;

/// How long stop and remove wait for the infra to release the pod after SIGTERM.
const INFRA_WAIT: Duration = Duration::from_secs(10);

impl Pods {
    fn lock(&self, pod: &PodRecord) -> Result<File, PodError> {
        let path = self.dir(&pod.id).join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.lock_exclusive().map_err(io_err(&path))?;
        Ok(file)
    }

    /// Starts pod `pod`'s infra (`exe` is the `berth` binary, re-executed as
    /// `berth __pod-infra <id>`) and returns its state once the namespaces are ready: its
    /// address and forwarded ports. A running pod is left as it is. Containers of the pod
    /// are not started (see [`Pods::start_containers`]).
    pub fn start(&self, exe: &Path, pod: &PodRecord) -> Result<PodState, PodError> {
        let _lock = self.lock(pod)?;
        let state = self.state(&pod.id)?;
        if state.infra_running() {
            return Ok(state);
        }
        let _span = tracing::info_span!("pod start", pod = pod.short_id()).entered();
        infra::spawn(self, exe, pod)?.started()?;
        self.state(&pod.id)
    }

    /// Starts pod `pod`'s containers that do not run (`exe` is the `berth` binary, beside
    /// which `berth-monitor` is installed), as
    /// `berth pod start` does after [`Pods::start`]; the first failure is returned after
    /// every container was tried.
    pub fn start_containers(&self, exe: &Path, pod: &PodRecord) -> Result<(), PodError> {
        let monitor = container::monitor::exe_beside(exe)?;
        let mut first: Option<PodError> = None;
        for (config, state) in self.members(pod)? {
            if !state.is_running() {
                if let Err(e) = container::start(self.containers(), &config, &monitor) {
                    tracing::warn!(container = config.short_id(), error = %e, "cannot start");
                    first.get_or_insert(e.into());
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops pod `pod`: each running container as `berth stop -t` (SIGTERM, SIGKILL after
    /// `timeout`), then the infra, which releases the pod's network and namespaces. A
    /// stopped pod is released again (what a killed infra left goes).
    pub fn stop(&self, pod: &PodRecord, timeout: Duration) -> Result<(), PodError> {
        let _lock = self.lock(pod)?;
        let _span = tracing::info_span!("pod stop", pod = pod.short_id()).entered();
        let mut first: Option<PodError> = None;
        for (config, state) in self.members(pod)? {
            if state.is_running() {
                if let Err(e) = container::stop(self.containers(), &config, timeout) {
                    tracing::warn!(container = config.short_id(), error = %e, "cannot stop");
                    first.get_or_insert(e.into());
                }
            }
        }
        if let Err(e) = self.stop_infra(pod) {
            first.get_or_insert(e);
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// SIGTERM to the infra and wait for it to release the pod; SIGKILL and release here
    /// when it does not.
    fn stop_infra(&self, pod: &PodRecord) -> Result<(), PodError> {
        let state = self.state(&pod.id)?;
        if let Some(pid) = state.infra_pid.filter(|_| state.infra_running()) {
            let pid = Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + INFRA_WAIT;
            while self.state(&pod.id)?.infra_running() {
                if Instant::now() >= deadline {
                    tracing::warn!(%pid, "infra still running {}s after SIGTERM: SIGKILL", INFRA_WAIT.as_secs());
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        infra::release(pod)
    }

    /// Removes pod `pod` and its containers. A running pod (infra or any container) is
    /// refused unless `force`, which kills its containers and stops it first.
    pub fn remove(&self, pod: &PodRecord, force: bool) -> Result<(), PodError> {
        let _lock = self.lock(pod)?;
        let _span = tracing::info_span!("pod rm", pod = pod.short_id()).entered();
        let report = self.report(pod)?;
        let running =
            report.state.infra_running() || report.containers.iter().any(|(_, s)| s.is_running());
        if running && !force {
            return Err(PodError::WrongState {
                id: pod.id.clone(),
                reason: "cannot remove a running pod: stop it first or use pod rm -f".into(),
            });
        }
        for (config, _) in &report.containers {
            container::remove(self.containers(), config, true)?;
        }
        self.stop_infra(pod)?;
        self.records.remove(&pod.id)?;
        names::release(&self.names_dir(), &pod.name, &pod.id);
        tracing::info!("pod removed");
        Ok(())
    }
}

//! The pod controller: the node's kubelet. Every Pod in the store is bound to this node
//! (`spec.nodeName`, `status.hostIP`) and run as one berth pod (an infra holding the network,
//! IPC and UTS namespaces) with one berth container per Kubernetes container, made from the
//! image (pulled with `berth pull` when missing) with the container's command, environment,
//! volume mounts and limits ([`super::pod_spec`]).
//!
//! The controller is level-triggered: on any Pod change and every [`TICK`] it lists the Pods
//! and, for each, reads its containers' state records (written by their monitors, which
//! outlive the daemon), restarts exited ones per `restartPolicy` with the kubelet's back-off,
//! runs liveness (a failure kills the container) and readiness probes, refreshes ConfigMap
//! and Secret volumes, and writes `status` when it changed ([`super::pod_status`]). A Pod
//! gone from the store has its containers stopped (`terminationGracePeriodSeconds`) and its
//! berth pod, volumes and network removed.
//!
//! Everything the controller makes carries labels naming the Pod (`io.kubernetes.pod.*`,
//! `io.kubernetes.container.*`), so a restarted daemon (even after `kill -9`) adopts the berth
//! pods and containers it finds instead of starting them again, and removes those whose Pod
//! is gone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::pod_security;
use super::pod_spec::{self, SpecError};
use super::pod_status::{self, ContainerView, PodFacts};
use berth_engine::container::{self, ContainerConfig, ContainerError, Containers, Status};
use berth_kube::kinds;
use berth_kube::list_selector::Selector;
use berth_kube::pod::CONTAINER_ID_PREFIX;
use berth_objectstore::{Controller, ObjectStore, Shutdown};

use crate::backoff::RestartBackoff;
use crate::phase::{ContainerPhase, RestartPolicy};
use crate::probe::{self, ExecInContainer, Outcome, ProbeKind, ProbeWorker};
use crate::volumes::{self, PodVolumeDirs};
use crate::NodeContext;
use berth_engine::pod::{PodOptions, PodRecord, Pods};
use berth_kube::pod::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
    Pod,
};

/// The pod controller, for the daemon's controller list.
pub fn controller(ctx: NodeContext) -> Controller {
    Controller::new("pods", move |store, shutdown| {
        Box::pin(run(store, ctx, shutdown))
    })
}

/// How often the controller looks at every pod when nothing changes in the store.
pub const TICK: Duration = Duration::from_millis(500);

/// How long a deleted Pod keeps running before its containers get the stop signal: the time
/// the endpoints controller and the Service rules take to drop its address.
const DRAIN: Duration = Duration::from_secs(1);

/// Labels on berth pods and containers naming the Pod they run.
pub const LABEL_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// See [`LABEL_NAMESPACE`].
pub const LABEL_NAME: &str = "io.kubernetes.pod.name";
/// See [`LABEL_NAMESPACE`].
pub const LABEL_UID: &str = "io.kubernetes.pod.uid";
/// The container's name in the Pod.
pub const LABEL_CONTAINER: &str = "io.kubernetes.container.name";
/// How many times the container had been restarted when this one was made.
pub const LABEL_RESTARTS: &str = "io.kubernetes.container.restartCount";

/// `BERTH_RESTART_BACKOFF_MS`: the first restart back-off in milliseconds (the kubelet's
/// 10 s by default; tests shorten it). The cap stays 30 times the base (5 min for 10 s).
const BACKOFF_ENV: &str = "BERTH_RESTART_BACKOFF_MS";

async fn run(store: ObjectStore, ctx: NodeContext, mut shutdown: Shutdown) {
    let mut node = Node::new(store.clone(), ctx);
    node.adopt().await;
    let mut watch = store
        .watch(&kinds::POD, None, Selector::everything(), None)
        .ok();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            event = async {
                match watch.as_mut() {
                    Some(w) => w.next().await,
                    None => std::future::pending().await,
                }
            } => {
                if !matches!(event, Ok(Some(_))) {
                    // Fell behind or the store went away: watch again from now.
                    watch = store.watch(&kinds::POD, None, Selector::everything(), None).ok();
                }
            }
            _ = tick.tick() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        node.sync().await;
    }
}

/// One Kubernetes container as this node runs it.
#[derive(Debug)]
struct ContainerRun {
    name: String,
    /// The berth container running (or last run) for it.
    id: Option<String>,
    image_id: String,
    restart_count: i32,
    last_terminated: Option<ContainerStateTerminated>,
    /// Set when it exited for good (no restart under the policy).
    terminated: Option<ContainerStateTerminated>,
    /// Why it is not running, when it is not.
    waiting: Option<(String, Option<String>)>,
    /// When it last exited (for the back-off).
    exited_at: Option<Instant>,
    started_at: Option<String>,
    liveness: Option<ProbeWorker>,
    readiness: Option<ProbeWorker>,
}

impl ContainerRun {
    fn new(name: &str) -> Self {
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
struct PodRun {
    record: PodRecord,
    ip: Option<String>,
    start_time: String,
    /// `spec.initContainers`, run one after the other to completion before `containers`.
    init: Vec<ContainerRun>,
    containers: Vec<ContainerRun>,
    /// The Pod as last seen (for the grace period when it is deleted).
    pod: Pod,
    volumes_refreshed: Option<Instant>,
    message: Option<String>,
}

/// Which container of a pod: the `i`th init container or the `i`th app container.
#[derive(Debug, Clone, Copy)]
struct Slot {
    init: bool,
    i: usize,
}

impl PodRun {
    fn container(&mut self, slot: Slot) -> &mut ContainerRun {
        if slot.init {
            &mut self.init[slot.i]
        } else {
            &mut self.containers[slot.i]
        }
    }
}

struct Node {
    store: ObjectStore,
    ctx: NodeContext,
    pods: Pods,
    host_ip: String,
    node_name: String,
    running: HashMap<String, PodRun>,
    backoff: RestartBackoff<(String, String)>,
    /// Pods whose berth pod could not be made, with when to try again.
    retry_at: HashMap<String, (Instant, String)>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn key(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn grace(pod: &Pod) -> Duration {
    Duration::from_secs(
        pod.spec
            .termination_grace_period_seconds
            .and_then(|g| u64::try_from(g).ok())
            .unwrap_or(30),
    )
}

/// Runs a blocking closure off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "blocking task failed");
            None
        }
    }
}

impl Node {
    fn new(store: ObjectStore, ctx: NodeContext) -> Self {
        let pods = Pods::new(ctx.containers.clone());
        let host_ip = ctx
            .containers
            .settings()
            .network_config()
            .subnet()
            .gateway()
            .to_string();
        let node_name = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_string())
            .to_lowercase();
        let base = std::env::var(BACKOFF_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(10));
        Node {
            store,
            ctx,
            pods,
            host_ip,
            node_name,
            running: HashMap::new(),
            backoff: RestartBackoff::new(base, base * 30),
            retry_at: HashMap::new(),
        }
    }

    fn stored_pods(&self) -> Vec<Pod> {
        self.store
            .list(&kinds::POD, None, &Selector::everything())
            .items
            .into_iter()
            .filter_map(|v| match serde_json::from_value::<Pod>(v) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "stored pod does not decode");
                    None
                }
            })
            .collect()
    }

    /// Takes over the berth pods a previous daemon made; removes those whose Pod is gone.
    async fn adopt(&mut self) {
        let stored: HashMap<String, Pod> = self
            .stored_pods()
            .into_iter()
            .map(|p| (key(&p), p))
            .collect();
        let pods = self.pods.clone();
        let Some(Ok(reports)) = blocking(move || pods.list()).await else {
            return;
        };
        // Volumes (a Secret's tmpfs too) of pods with neither a Pod nor a berth pod left.
        let keep: HashSet<String> = stored
            .keys()
            .cloned()
            .chain(
                reports
                    .iter()
                    .filter_map(|r| r.record.labels.get(LABEL_UID).cloned()),
            )
            .collect();
        let root = self.ctx.containers.root().to_path_buf();
        if let Some(Err(e)) = blocking(move || volumes::sweep(&root, &keep)).await {
            tracing::warn!(error = %e, "removing volumes of removed pods");
        }
        for report in reports {
            let Some(uid) = report.record.labels.get(LABEL_UID).cloned() else {
                continue;
            };
            let pod = match stored.get(&uid) {
                Some(p) if !self.running.contains_key(&uid) && report.state.infra_running() => {
                    p.clone()
                }
                _ => {
                    tracing::info!(pod = %report.record.name, "removing an orphaned berth pod");
                    self.teardown_detached(report.record.clone(), Duration::from_secs(2), &uid);
                    continue;
                }
            };
            let mut run = PodRun {
                record: report.record.clone(),
                ip: report.state.ip.map(|ip| ip.to_string()),
                start_time: pod
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.clone())
                    .unwrap_or_else(now_rfc3339),
                init: Vec::new(),
                containers: Vec::new(),
                pod: pod.clone(),
                volumes_refreshed: None,
                message: None,
            };
            let status = pod.status.clone().unwrap_or_default();
            run.init = pod
                .spec
                .init_containers
                .iter()
                .map(|c| self.adopt_container(c, &status.init_container_statuses, &report))
                .collect();
            run.containers = pod
                .spec
                .containers
                .iter()
                .map(|c| self.adopt_container(c, &status.container_statuses, &report))
                .collect();
            tracing::info!(pod = %run.record.name, "adopted");
            self.running.insert(uid, run);
        }
    }

    /// The run of container `c` found in the berth pod `report` (the newest berth container
    /// made for it, by restart count; older ones are removed), with what `prev` said of it.
    fn adopt_container(
        &self,
        c: &Container,
        prev: &[ContainerStatus],
        report: &berth_engine::pod::PodReport,
    ) -> ContainerRun {
        let mut cr = ContainerRun::new(&c.name);
        cr.last_terminated = prev
            .iter()
            .find(|s| s.name == c.name)
            .and_then(|s| s.last_state.as_ref())
            .and_then(|s| s.terminated.clone());
        let mut mine: Vec<&(ContainerConfig, container::State)> = report
            .containers
            .iter()
            .filter(|(cfg, _)| cfg.labels.get(LABEL_CONTAINER) == Some(&c.name))
            .collect();
        mine.sort_by_key(|(cfg, _)| restarts_label(cfg));
        if let Some((cfg, _)) = mine.pop() {
            cr.id = Some(cfg.id.clone());
            cr.image_id = cfg.image_id.clone();
            cr.restart_count = restarts_label(cfg);
            cr.waiting = None;
        }
        for (old, _) in mine {
            let c2 = self.ctx.containers.clone();
            let old = old.clone();
            tokio::task::spawn_blocking(move || container::remove(&c2, &old, true));
        }
        cr
    }

    async fn sync(&mut self) {
        if let Err(e) = super::pod_claims::bind(&self.store) {
            tracing::warn!(error = %e, "binding claims");
        }
        let stored = self.stored_pods();
        let live: std::collections::HashSet<String> = stored.iter().map(key).collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|uid| !live.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(run) = self.running.remove(&uid) {
                tracing::info!(pod = %run.record.name, "pod deleted: stopping it");
                self.teardown_detached(run.record.clone(), grace(&run.pod), &uid);
                for c in run.init.iter().chain(&run.containers) {
                    self.backoff.forget(&(uid.clone(), c.name.clone()));
                }
            }
        }
        self.retry_at.retain(|uid, _| live.contains(uid));
        for pod in stored {
            self.sync_pod(pod).await;
        }
        self.run_probes().await;
        let uids: Vec<String> = self.running.keys().cloned().collect();
        for uid in uids {
            self.write_status(&uid);
        }
    }

    /// Stops and removes a berth pod in the background (a grace period can be long). The
    /// stop signal comes [`DRAIN`] after the Pod left the store, so Services have dropped its
    /// address before its containers stop answering.
    fn teardown_detached(&self, record: PodRecord, grace: Duration, uid: &str) {
        let pods = self.pods.clone();
        let volumes = PodVolumeDirs::new(self.ctx.containers.root(), uid);
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(DRAIN);
            if let Err(e) = pods.stop(&record, grace) {
                tracing::warn!(pod = %record.name, error = %e, "stopping");
            }
            if let Err(e) = pods.remove(&record, true) {
                tracing::warn!(pod = %record.name, error = %e, "removing");
            }
            if let Err(e) = volumes.remove() {
                tracing::warn!(pod = %record.name, error = %e, "removing volumes");
            }
        });
    }

    async fn sync_pod(&mut self, pod: Pod) {
        let uid = key(&pod);
        if uid.is_empty() {
            return;
        }
        if pod.spec.node_name.as_deref().unwrap_or("").is_empty() {
            self.bind_to_node(&pod);
        }
        if !self.running.contains_key(&uid) {
            let finished = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|p| p == "Succeeded" || p == "Failed");
            if finished {
                return;
            }
            if let Some((at, _)) = self.retry_at.get(&uid) {
                if Instant::now() < *at {
                    return;
                }
            }
            match self.make_pod(&pod).await {
                Ok(run) => {
                    self.retry_at.remove(&uid);
                    self.running.insert(uid.clone(), run);
                }
                Err(message) => {
                    tracing::warn!(pod = %pod.metadata.name(), %message, "cannot make the pod");
                    self.retry_at.insert(
                        uid.clone(),
                        (Instant::now() + Duration::from_secs(2), message),
                    );
                    self.write_pending_status(&pod);
                    return;
                }
            }
        }
        let Some(mut run) = self.running.remove(&uid) else {
            return;
        };
        run.pod = pod;
        self.sync_containers(&uid, &mut run).await;
        self.running.insert(uid, run);
    }

    fn bind_to_node(&self, pod: &Pod) {
        let Ok(mut value) =
            self.store
                .get(&kinds::POD, pod.metadata.namespace(), pod.metadata.name())
        else {
            return;
        };
        value["spec"]["nodeName"] = serde_json::Value::String(self.node_name.clone());
        if let Err(e) = self.store.update(&kinds::POD, value) {
            tracing::debug!(error = %e, "binding the pod to the node");
        }
    }

    /// Creates and starts the berth pod (infra) of `pod`.
    async fn make_pod(&self, pod: &Pod) -> Result<PodRun, String> {
        let uid = key(pod);
        let m = &pod.metadata;
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_NAMESPACE.to_string(), m.namespace().to_string());
        labels.insert(LABEL_NAME.to_string(), m.name().to_string());
        labels.insert(LABEL_UID.to_string(), uid.clone());
        let hostname = pod
            .spec
            .hostname
            .clone()
            .unwrap_or_else(|| m.name().to_string());
        let host_network = pod.spec.host_network == Some(true);
        // On the host's network a pod has the node's host name, address and ports.
        let hostname = match host_network {
            true => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or(hostname),
            false => hostname,
        };
        let hostname: String = hostname.chars().take(63).collect();
        let opts = PodOptions {
            name: Some(berth_pod_name(pod)),
            hostname: Some(hostname),
            publish: match host_network {
                true => Vec::new(),
                false => pod_spec::host_ports(pod),
            },
            labels,
            host_network,
        };
        let pods = self.pods.clone();
        let exe = self.ctx.berth_exe.clone();
        let made = blocking(move || -> Result<(PodRecord, Option<String>), String> {
            let record = pods.create(&opts).map_err(|e| e.to_string())?;
            match pods.start(&exe, &record) {
                Ok(state) => Ok((record, state.ip.map(|ip| ip.to_string()))),
                Err(e) => {
                    let _ = pods.remove(&record, true);
                    Err(e.to_string())
                }
            }
        })
        .await
        .ok_or_else(|| "the pod's creation task failed".to_string())??;
        let made = match host_network {
            true => (made.0, Some(self.host_ip.clone())),
            false => made,
        };
        tracing::info!(pod = %made.0.name, ip = ?made.1, "pod started");
        Ok(PodRun {
            record: made.0,
            ip: made.1,
            start_time: now_rfc3339(),
            init: fresh_runs(&pod.spec.init_containers),
            containers: fresh_runs(&pod.spec.containers),
            pod: pod.clone(),
            volumes_refreshed: None,
            message: None,
        })
    }

    async fn sync_containers(&mut self, uid: &str, run: &mut PodRun) {
        let policy =
            RestartPolicy::parse(run.pod.spec.restart_policy.as_deref()).unwrap_or_default();
        let now = Instant::now();
        // Volumes first (and ConfigMap/Secret contents refreshed about every second).
        let volumes = if run
            .volumes_refreshed
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
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
            let done = run.init[i]
                .terminated
                .as_ref()
                .is_some_and(|t| t.exit_code == 0);
            if !done {
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
        let needs_start = self.observe(run, slot, spec, policy).await;
        if !needs_start {
            return;
        }
        let pod_name = run.pod.metadata.name().to_string();
        let pod_namespace = run.pod.metadata.namespace().to_string();
        let pod_message = run.message.clone();
        let c = run.container(slot);
        if let Some(exited) = c.exited_at {
            if let Some(wait) = self.backoff.remaining(&bkey, exited, Instant::now()) {
                let reason = match c.waiting.as_ref().map(|w| w.0.as_str()) {
                    Some("ErrImagePull" | "ImagePullBackOff") => "ImagePullBackOff",
                    Some(r @ ("CreateContainerError" | "CreateContainerConfigError")) => r,
                    _ => "CrashLoopBackOff",
                }
                .to_string();
                let delay = self.backoff.delay(&bkey).unwrap_or(wait);
                let message = format!(
                    "back-off {}s restarting failed container={} pod={pod_name}_{pod_namespace}({uid})",
                    delay.as_secs(),
                    spec.name,
                );
                let message = match (&reason[..], &c.waiting) {
                    ("ImagePullBackOff", Some((_, Some(m)))) if !m.starts_with("Back-off") => {
                        Some(format!(
                            "Back-off pulling image {:?}: {m}",
                            spec.image.as_deref().unwrap_or("")
                        ))
                    }
                    ("CrashLoopBackOff", _) | (_, None) => Some(message),
                    (_, Some((_, m))) => m.clone(),
                };
                c.waiting = Some((reason, message));
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

    /// Reads the state of the container in `slot`; records an exit. Returns whether it must
    /// be (re)started.
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
        if c.terminated.is_some() {
            return false;
        }
        let Some(id) = c.id.clone() else {
            return true;
        };
        let state = {
            let id = id.clone();
            let cs = containers.clone();
            blocking(move || cs.state(&id)).await
        };
        let state = match state {
            Some(Ok(s)) => s,
            _ => {
                // Gone (removed behind our back): make it again.
                c.id = None;
                return true;
            }
        };
        match state.status {
            Status::Running if state.is_running() => {
                if c.started_at.is_none() || c.started_at != state.started_at {
                    // A container seen running for the first time: its probes start now.
                    c.started_at = state.started_at.clone();
                    c.waiting = None;
                    let now = Instant::now();
                    let worker = |p: Option<&berth_kube::pod::Probe>, kind| {
                        p.and_then(|p| pod_spec::probe(spec, p, &ip).ok().flatten())
                            .map(|p| ProbeWorker::new(p, kind, now))
                    };
                    c.liveness = worker(spec.liveness_probe.as_ref(), ProbeKind::Liveness);
                    c.readiness = worker(spec.readiness_probe.as_ref(), ProbeKind::Readiness);
                }
                false
            }
            Status::Created | Status::Restarting if state.monitor_alive() => false,
            _ => {
                let code = state
                    .exit_code
                    .unwrap_or(if state.status == Status::Created {
                        128
                    } else {
                        137
                    });
                let terminated = ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(if code == 0 { "Completed" } else { "Error" }.to_string()),
                    started_at: state.started_at.clone(),
                    finished_at: state.finished_at.clone(),
                    container_id: Some(format!("{CONTAINER_ID_PREFIX}{id}")),
                    message: state.error.clone(),
                    ..ContainerStateTerminated::default()
                };
                c.liveness = None;
                c.readiness = None;
                c.started_at = None;
                if policy.restarts(code) {
                    tracing::info!(container = %c.name, pod = %pod_name, code, "exited; restarting");
                    c.last_terminated = Some(terminated);
                    c.exited_at = Some(Instant::now());
                    c.id = None;
                    c.waiting = Some(("ContainerCreating".to_string(), None));
                    if let Ok(cfg) = containers.config(&id) {
                        blocking(move || container::remove(&containers, &cfg, true)).await;
                    }
                    true
                } else {
                    c.terminated = Some(terminated);
                    c.waiting = None;
                    false
                }
            }
        }
    }

    async fn start_container(
        &mut self,
        run: &mut PodRun,
        slot: Slot,
        spec: &Container,
        volumes: &pod_spec::PodVolumes,
        bkey: &(String, String),
    ) {
        let c = run.container(slot);
        let restarted = c.last_terminated.is_some() && c.exited_at.is_some();
        let restart_count = c.restart_count + i32::from(restarted);
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
        let (label, cname) = (pod_security::pod_label(&run.pod), spec.name.clone());
        let made =
            blocking(move || create_and_start(&containers, &exe, &opts, &label, &cname)).await;
        let pod_name = run.record.name.clone();
        let c = run.container(slot);
        match made {
            Some(Ok(cfg)) => {
                tracing::info!(container = %spec.name, pod = %pod_name, restart_count, "started");
                if restarted {
                    self.backoff.restarted(bkey, Instant::now());
                    c.restart_count = restart_count;
                }
                c.exited_at = None;
                c.id = Some(cfg.id.clone());
                c.image_id = cfg.image_id.clone();
                c.started_at = None;
            }
            Some(Err(StartError::Image(message))) => {
                let reason = if c.waiting.as_ref().is_some_and(|w| w.0.contains("Image")) {
                    "ImagePullBackOff"
                } else {
                    "ErrImagePull"
                };
                tracing::warn!(%image, %message, "image pull failed");
                c.waiting = Some((reason.to_string(), Some(message)));
                c.exited_at = Some(Instant::now());
                if c.last_terminated.is_none() {
                    // Back off the pulls as the kubelet does.
                    self.backoff.restarted(bkey, Instant::now());
                }
            }
            Some(Err(StartError::Config(message))) => {
                tracing::warn!(container = %spec.name, %message, "cannot create");
                c.waiting = Some(("CreateContainerConfigError".to_string(), Some(message)));
                c.exited_at = Some(Instant::now());
                self.backoff.restarted(bkey, Instant::now());
            }
            Some(Err(StartError::Other(message))) => {
                tracing::warn!(container = %spec.name, %message, "cannot start");
                c.waiting = Some(("CreateContainerError".to_string(), Some(message)));
                c.exited_at = Some(Instant::now());
                self.backoff.restarted(bkey, Instant::now());
            }
            None => {}
        }
    }

    /// Runs every due probe of every pod at once, then applies the results: a failed
    /// liveness probe kills its container (it is then restarted per the policy).
    async fn run_probes(&mut self) {
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
        let exe = Arc::new(self.ctx.berth_exe.clone());
        let root = Arc::new(self.ctx.containers.root().to_path_buf());
        let outcomes = futures::future::join_all(due.iter().map(|(_, _, _, id, p)| {
            let exec = BerthExec {
                exe: exe.clone(),
                root: root.clone(),
                id: id.clone(),
            };
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

    fn write_pending_status(&self, pod: &Pod) {
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

    fn write_status(&self, uid: &str) {
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

    fn put_status(&self, pod: &Pod, status: berth_kube::pod::PodStatus) {
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

/// The berth pod's name for a Pod: `k8s_<namespace>_<name>_<uid prefix>`.
fn berth_pod_name(pod: &Pod) -> String {
    let m = &pod.metadata;
    let uid: String = m.uid.as_deref().unwrap_or("").chars().take(8).collect();
    format!("k8s_{}_{}_{uid}", m.namespace(), m.name())
}

fn restarts_label(cfg: &ContainerConfig) -> i32 {
    cfg.labels
        .get(LABEL_RESTARTS)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A run for each of `specs`, none started yet.
fn fresh_runs(specs: &[Container]) -> Vec<ContainerRun> {
    specs.iter().map(|c| ContainerRun::new(&c.name)).collect()
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

enum StartError {
    /// The image is not in the store and could not be pulled.
    Image(String),
    /// The container's configuration cannot be used (`runAsNonRoot` with a root user).
    Config(String),
    /// Anything else.
    Other(String),
}

impl StartError {
    /// The kubelet's reason for `e`, creating container `name` of pod `pod` (its label).
    fn of(e: ContainerError, pod: &str, name: &str) -> Self {
        match e {
            ContainerError::RunsAsRoot(_) => StartError::Config(format!(
                "container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {name})"
            )),
            other => StartError::Other(other.to_string()),
        }
    }
}

/// Creates container `name` of pod `pod` (its label, for messages) from `opts` (pulling a
/// missing image with `berth pull`) and starts its monitor; the monitor is reaped by a thread
/// of its own.
fn create_and_start(
    containers: &Containers,
    exe: &PathBuf,
    opts: &container::RunOptions,
    pod: &str,
    name: &str,
) -> Result<ContainerConfig, StartError> {
    let config = match container::create(containers, opts) {
        Ok(c) => c,
        Err(ContainerError::Store(berth_image::store::StoreError::ImageNotFound(_))) => {
            let pulled = std::process::Command::new(exe)
                .arg("--root")
                .arg(containers.root())
                .args(["pull", "-q", &opts.image])
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| StartError::Image(format!("berth pull {}: {e}", opts.image)))?;
            if !pulled.status.success() {
                return Err(StartError::Image(format!(
                    "failed to pull image {:?}: {}",
                    opts.image,
                    String::from_utf8_lossy(&pulled.stderr).trim()
                )));
            }
            container::create(containers, opts).map_err(|e| StartError::of(e, pod, name))?
        }
        Err(e) => return Err(StartError::of(e, pod, name)),
    };
    let monitor = container::monitor::exe_beside(exe)
        .and_then(|m| container::monitor::spawn(containers, &m, &config.id, false));
    let mut handle = match monitor {
        Ok(h) => h,
        Err(e) => {
            let _ = container::remove(containers, &config, true);
            return Err(StartError::Other(e.to_string()));
        }
    };
    if let Err(e) = handle.started() {
        let _ = container::remove(containers, &config, true);
        return Err(StartError::Other(e.to_string()));
    }
    std::thread::spawn(move || handle.wait());
    Ok(config)
}

/// Runs exec probes with `berth exec` in the container.
struct BerthExec {
    exe: Arc<PathBuf>,
    root: Arc<PathBuf>,
    id: String,
}

impl ExecInContainer for BerthExec {
    async fn exec(&self, command: &[String]) -> Result<i32, String> {
        let status = tokio::process::Command::new(self.exe.as_ref())
            .arg("--root")
            .arg(self.root.as_ref())
            .arg("exec")
            .arg(&self.id)
            .args(command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .map_err(|e| format!("berth exec: {e}"))?;
        Ok(status.code().unwrap_or(128))
    }
}

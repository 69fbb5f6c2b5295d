//! The pod controller: the node's kubelet. Every Pod in the store is bound to this node
//! (`spec.nodeName`, `status.hostIP`) and run as one berth pod (an infra holding the network,
//! IPC and UTS namespaces: [`infra`]) with one berth container per Kubernetes container, made
//! from the image (pulled through the registry client when missing, per `imagePullPolicy`:
//! [`pull`], [`start`]) with the container's command, environment, volume mounts and limits
//! ([`super::pod_spec`]).
//!
//! The controller is level-triggered: on any Pod change and every [`TICK`] it lists the Pods
//! and, for each, reads its containers' state records (written by their monitors, which
//! outlive the daemon), restarts exited ones per `restartPolicy` with the kubelet's back-off,
//! refreshes ConfigMap and Secret volumes ([`sync`], deciding with the pure [`plan`]), runs
//! liveness (a failure kills the container) and readiness probes ([`probes`]), and writes
//! `status` when it changed ([`status`]). A Pod gone from the store has its containers
//! stopped (`terminationGracePeriodSeconds`) and its berth pod, volumes and network removed.
//!
//! Everything the controller makes carries labels naming the Pod (`io.kubernetes.pod.*`,
//! `io.kubernetes.container.*`), so a restarted daemon (even after `kill -9`) adopts the berth
//! pods and containers it finds instead of starting them again, and removes those whose Pod
//! is gone ([`adopt`]).

mod adopt;
mod infra;
mod plan;
mod probes;
mod pull;
mod runs;
mod start;
mod status;
mod sync;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use berth_engine::pod::{PodRecord, Pods};
use berth_kube::kinds;
use berth_kube::list_selector::Selector;
use berth_kube::pod::Pod;
use berth_objectstore::{Controller, ObjectStore, Shutdown};

use crate::backoff::RestartBackoff;
use crate::volumes::PodVolumeDirs;
use crate::NodeContext;
use runs::PodRun;

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

    async fn sync(&mut self) {
        if let Err(e) = super::pod_claims::bind(&self.store) {
            tracing::warn!(error = %e, "binding claims");
        }
        let stored = self.stored_pods();
        let live: HashSet<String> = stored.iter().map(key).collect();
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
                Err(e) => {
                    tracing::warn!(pod = %pod.metadata.name(), error = %e, "cannot make the pod");
                    self.retry_at.insert(
                        uid.clone(),
                        (Instant::now() + Duration::from_secs(2), e.to_string()),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: Option<&str>, grace: Option<i64>) -> Pod {
        let mut p = Pod::default();
        p.metadata.uid = uid.map(str::to_string);
        p.spec.termination_grace_period_seconds = grace;
        p
    }

    #[test]
    fn pods_are_keyed_by_uid() {
        assert_eq!(key(&pod(Some("u1"), None)), "u1");
        assert_eq!(key(&pod(None, None)), "");
    }

    #[test]
    fn the_grace_period_defaults_to_thirty_seconds() {
        assert_eq!(grace(&pod(None, None)), Duration::from_secs(30));
        assert_eq!(grace(&pod(None, Some(5))), Duration::from_secs(5));
        assert_eq!(grace(&pod(None, Some(-1))), Duration::from_secs(30));
    }
}

//! Making a Pod's berth pod: its infra holds the network, IPC and UTS namespaces, named and
//! labelled after the Pod so a restarted daemon finds it again.

use std::collections::BTreeMap;

use berth_engine::pod::{PodError, PodOptions, PodRecord};
use berth_kube::pod::Pod;

use super::runs::{fresh_runs, PodRun};
use super::{blocking, key, now_rfc3339, Node, LABEL_NAME, LABEL_NAMESPACE, LABEL_UID};
use crate::pod_spec;

/// Why a Pod's berth pod could not be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum MakePodError {
    /// The engine refused to create it.
    #[error("creating the pod: {0}")]
    Create(#[source] PodError),
    /// Its infra did not start.
    #[error("starting the pod: {0}")]
    Start(#[source] PodError),
    /// The task doing it died.
    #[error("the pod's creation task failed")]
    Task,
}

/// The berth pod's name for a Pod: `k8s_<namespace>_<name>_<uid prefix>`.
pub(super) fn berth_pod_name(pod: &Pod) -> String {
    let m = &pod.metadata;
    let uid: String = m.uid.as_deref().unwrap_or("").chars().take(8).collect();
    format!("k8s_{}_{}_{uid}", m.namespace(), m.name())
}

/// The berth pod `pod` runs in; `node_hostname` is the host's name, which a pod on the
/// host's network has.
pub(super) fn pod_options(pod: &Pod, node_hostname: Option<String>) -> PodOptions {
    let m = &pod.metadata;
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_NAMESPACE.to_string(), m.namespace().to_string());
    labels.insert(LABEL_NAME.to_string(), m.name().to_string());
    labels.insert(LABEL_UID.to_string(), key(pod));
    let hostname = pod
        .spec
        .hostname
        .clone()
        .unwrap_or_else(|| m.name().to_string());
    let host_network = pod.spec.host_network == Some(true);
    // On the host's network a pod has the node's host name, address and ports.
    let hostname = match host_network {
        true => node_hostname.unwrap_or(hostname),
        false => hostname,
    };
    PodOptions {
        name: Some(berth_pod_name(pod)),
        hostname: Some(hostname.chars().take(63).collect()),
        publish: match host_network {
            true => Vec::new(),
            false => pod_spec::host_ports(pod),
        },
        labels,
        host_network,
    }
}

impl Node {
    /// Creates and starts the berth pod (infra) of `pod`.
    pub(super) async fn make_pod(&self, pod: &Pod) -> Result<PodRun, MakePodError> {
        let host_name = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok());
        let opts = pod_options(pod, host_name);
        let host_network = opts.host_network;
        let pods = self.pods.clone();
        let exe = self.ctx.berth_exe.clone();
        let made = blocking(
            move || -> Result<(PodRecord, Option<String>), MakePodError> {
                let record = pods.create(&opts).map_err(MakePodError::Create)?;
                match pods.start(&exe, &record) {
                    Ok(state) => Ok((record, state.ip.map(|ip| ip.to_string()))),
                    Err(e) => {
                        let _ = pods.remove(&record, true);
                        Err(MakePodError::Start(e))
                    }
                }
            },
        )
        .await
        .ok_or(MakePodError::Task)??;
        let (record, ip) = match host_network {
            true => (made.0, Some(self.host_ip.clone())),
            false => made,
        };
        tracing::info!(pod = %record.name, ip = ?ip, "pod started");
        Ok(PodRun {
            record,
            ip,
            start_time: now_rfc3339(),
            init: fresh_runs(&pod.spec.init_containers),
            containers: fresh_runs(&pod.spec.containers),
            pod: pod.clone(),
            volumes_refreshed: None,
            message: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(host_network: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "prod", "uid": "0123456789abcdef"},
            "spec": {
                "hostNetwork": host_network,
                "containers": [{"name": "app", "image": "img",
                    "ports": [{"containerPort": 80, "hostPort": 8080}]}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_berth_pod_is_named_and_labelled_after_the_pod() {
        let p = pod(false);
        assert_eq!(berth_pod_name(&p), "k8s_prod_web_01234567");
        let o = pod_options(&p, Some("node1".into()));
        assert_eq!(o.name.as_deref(), Some("k8s_prod_web_01234567"));
        assert_eq!(o.hostname.as_deref(), Some("web"));
        assert_eq!(o.labels[LABEL_NAMESPACE], "prod");
        assert_eq!(o.labels[LABEL_NAME], "web");
        assert_eq!(o.labels[LABEL_UID], "0123456789abcdef");
        assert!(!o.host_network);
        assert_eq!(o.publish.len(), 1);
    }

    #[test]
    fn a_pod_on_the_host_network_has_the_hosts_name_and_publishes_nothing() {
        let o = pod_options(&pod(true), Some("node1".into()));
        assert!(o.host_network);
        assert_eq!(o.hostname.as_deref(), Some("node1"));
        assert!(o.publish.is_empty());
    }

    #[test]
    fn host_names_are_cut_to_63_characters() {
        let mut p = pod(false);
        p.spec.hostname = Some("h".repeat(80));
        let o = pod_options(&p, None);
        assert_eq!(o.hostname.map(|h| h.len()), Some(63));
    }
}

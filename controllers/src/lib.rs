//! The workload control loops over the object store: [`replicaset`] and [`deployment`] keep
//! workloads' Pods and ReplicaSets, [`endpoints`] keeps Services' Endpoints (each on
//! `berth_objectstore::resync`'s watch-driven loop). A controller is a pure plan from observed
//! state to actions plus the code that applies them; the node's controllers (Pods, Service
//! rules) are in `berth-node`. [`all`] is what `berth daemon` is assembled with.
#![forbid(unsafe_code)]

pub mod deployment;
pub mod endpoints;
pub mod replicaset;

use berth_objectstore::Controller;

/// Every workload controller, in the order the daemon starts them.
pub fn all() -> Vec<Controller> {
    vec![
        replicaset::controller(),
        deployment::controller(),
        endpoints::controller(),
    ]
}

#[cfg(test)]
mod tests {
    //! The workload controllers against a real object store, with the kubelet's part (pods
    //! becoming Running and Ready with an address) played by the test.

    use serde_json::{json, Value};

    use berth_kube::kinds;
    use berth_kube::list_selector::Selector;
    use berth_objectstore::ObjectStore;

    fn pods(store: &ObjectStore) -> Vec<Value> {
        store
            .list(&kinds::POD, Some("default"), &Selector::everything())
            .items
    }

    fn sets(store: &ObjectStore) -> Vec<Value> {
        store
            .list(
                &kinds::REPLICA_SET,
                Some("default"),
                &Selector::everything(),
            )
            .items
    }

    /// Every pod without a Ready condition becomes Running and Ready.
    fn kubelet(store: &ObjectStore, next_ip: &mut u8) {
        for mut pod in pods(store) {
            if pod["status"]["conditions"].is_array() {
                continue;
            }
            *next_ip += 1;
            pod["status"] = json!({
                "phase": "Running",
                "podIP": format!("10.88.0.{next_ip}"),
                "conditions": [{"type": "Ready", "status": "True",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            });
            store.update_status(&kinds::POD, pod).unwrap();
        }
    }

    fn settle(store: &ObjectStore, next_ip: &mut u8) {
        for _ in 0..40 {
            let before = store.revision();
            super::deployment::sync_all(store);
            super::replicaset::sync_all(store);
            kubelet(store, next_ip);
            super::endpoints::sync_all(store);
            if store.revision() == before {
                return;
            }
        }
        panic!("controllers did not settle");
    }

    fn image_of(v: &Value) -> &str {
        v["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
    }

    #[test]
    fn deployment_rolls_out_updates_and_undoes_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let mut ip = 1;
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 3,
                "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web:v1",
                        "ports": [{"name": "http", "containerPort": 8000}]}]}
                }
            }
        });
        store.create(&kinds::DEPLOYMENT, deployment).unwrap();
        store
            .create(
                &kinds::SERVICE,
                json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"selector": {"app": "web"},
                             "ports": [{"port": 80, "targetPort": "http"}]}}),
            )
            .unwrap();
        settle(&store, &mut ip);
        assert_eq!(sets(&store).len(), 1);
        assert_eq!(pods(&store).len(), 3);
        let d = store.get(&kinds::DEPLOYMENT, "default", "web").unwrap();
        assert_eq!(d["status"]["updatedReplicas"], 3);
        assert_eq!(d["status"]["availableReplicas"], 3);
        assert_eq!(
            d["status"]["observedGeneration"],
            d["metadata"]["generation"]
        );
        assert_eq!(
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "1"
        );
        let ep = store.get(&kinds::ENDPOINTS, "default", "web").unwrap();
        assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 3);
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8000);

        // A new image: a second set takes over, pods carry its hash, revision 2.
        let mut d = store.get(&kinds::DEPLOYMENT, "default", "web").unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:v2");
        store.update(&kinds::DEPLOYMENT, d).unwrap();
        settle(&store, &mut ip);
        let all = sets(&store);
        assert_eq!(all.len(), 2);
        let new = all.iter().find(|s| image_of(s) == "web:v2").unwrap();
        let old = all.iter().find(|s| image_of(s) == "web:v1").unwrap();
        assert_eq!(new["spec"]["replicas"], 3);
        assert_eq!(old["spec"]["replicas"], 0);
        assert_eq!(
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "2"
        );
        let hash = new["metadata"]["labels"]["pod-template-hash"].clone();
        let current = pods(&store);
        assert_eq!(current.len(), 3);
        assert!(current
            .iter()
            .all(|p| p["metadata"]["labels"]["pod-template-hash"] == hash));
        let d = store.get(&kinds::DEPLOYMENT, "default", "web").unwrap();
        assert_eq!(d["status"]["observedGeneration"], 2);
        assert_eq!(d["status"]["replicas"], 3);
        assert_eq!(d["status"]["updatedReplicas"], 3);

        // kubectl rollout undo: the old set's template, without its hash label.
        let mut template = old["spec"]["template"].clone();
        template["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("pod-template-hash");
        let mut d = store.get(&kinds::DEPLOYMENT, "default", "web").unwrap();
        d["spec"]["template"] = template;
        store.update(&kinds::DEPLOYMENT, d).unwrap();
        settle(&store, &mut ip);
        let all = sets(&store);
        assert_eq!(all.len(), 2, "undo made a new set");
        let back = all.iter().find(|s| image_of(s) == "web:v1").unwrap();
        assert_eq!(back["spec"]["replicas"], 3);
        assert_eq!(
            back["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "3"
        );
        let d = store.get(&kinds::DEPLOYMENT, "default", "web").unwrap();
        assert_eq!(
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "3"
        );

        // A deleted pod is replaced.
        let victim = pods(&store)[0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        store
            .delete(
                &kinds::POD,
                "default",
                &victim,
                berth_objectstore::store::Propagation::Background,
                berth_objectstore::store::Preconditions::default(),
            )
            .unwrap();
        settle(&store, &mut ip);
        let now = pods(&store);
        assert_eq!(now.len(), 3);
        assert!(now.iter().all(|p| p["metadata"]["name"] != victim.as_str()));
    }
}

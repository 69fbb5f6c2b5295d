//! The daemon killed with `kill -9` in the middle of a rolling update, then started again:
//! it adopts the berth pods and containers it made (same container ids, no restart), removes
//! the ones whose Pod is gone, and the rollout converges with exactly the replicas asked for
//! and no duplicate berth pods.

mod orchestrator_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use orchestrator_support::{is_ready, wait_for, Cluster};

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 3
      containers:
      - name: web
        image: {image}
        readinessProbe:
          tcpSocket:
            port: 8000
          initialDelaySeconds: 2
          periodSeconds: 1
"
    )
}

/// Pod name -> container id of each pod matching app=web.
fn container_ids(c: &Cluster) -> BTreeMap<String, String> {
    c.pods("app=web")
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["status"]["containerStatuses"][0]["containerID"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn kill_9_mid_rollout_then_restart_adopts_and_converges() {
    let mut c = Cluster::start();
    c.apply("web.yaml", &deployment("kubetm/hello:v1"));
    c.wait_ready("app=web", 3, Duration::from_secs(90));
    let before = container_ids(&c);

    // A plain restart first: everything is adopted, nothing restarted.
    c.kill_daemon();
    c.start_daemon();
    let pods = c.wait_ready("app=web", 3, Duration::from_secs(60));
    assert_eq!(
        container_ids(&c),
        before,
        "the same containers after a restart"
    );
    for p in &pods {
        assert_eq!(
            p["status"]["containerStatuses"][0]["restartCount"], 0,
            "{p}"
        );
    }
    assert_eq!(c.berth_pods().len(), 3);

    // Now kill it while v2 rolls out (the new template's pods starting up).
    c.apply("web.yaml", &deployment("kubetm/hello:v2"));
    wait_for(Duration::from_secs(30), "the rollout to begin", || {
        c.pods("app=web")
            .iter()
            .any(|p| p["spec"]["containers"][0]["image"] == "kubetm/hello:v2")
            .then_some(())
    });
    c.kill_daemon();
    std::thread::sleep(Duration::from_secs(1));
    c.start_daemon();

    let pods = wait_for(
        Duration::from_secs(180),
        "3 ready v2 pods and nothing else",
        || {
            let pods = c.pods("app=web");
            (pods.len() == 3
                && pods.iter().all(|p| {
                    p["spec"]["containers"][0]["image"] == "kubetm/hello:v2" && is_ready(p)
                }))
            .then_some(pods)
        },
    );
    let uids: BTreeSet<String> = pods
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_string())
        .collect();
    wait_for(
        Duration::from_secs(60),
        "exactly one berth pod per Pod",
        || {
            let berth = c.berth_pods();
            let labelled: Vec<String> = berth
                .iter()
                .filter_map(|r| r.record.labels.get("io.kubernetes.pod.uid").cloned())
                .collect();
            let set: BTreeSet<String> = labelled.iter().cloned().collect();
            (labelled.len() == 3 && set == uids).then_some(())
        },
    );
    for report in c.berth_pods() {
        assert_eq!(
            report.containers.len(),
            1,
            "no duplicate containers in {}",
            report.record.name
        );
    }
    let rs = c.get(&["replicasets"]).unwrap();
    let total: i64 = rs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["spec"]["replicas"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(total, 3, "the old ReplicaSet is scaled to zero: {rs}");
}

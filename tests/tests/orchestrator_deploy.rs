//! Deployments on the node daemon: 3 replicas behind a NodePort Service answer from all
//! three (each with its own hostname); a rolling update v1 -> v2 keeps the Service answering
//! throughout (a request loop with no failure) and ends with only v2 pods; `rollout undo`
//! brings v1 back.

mod orchestrator_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orchestrator_support::{curl, stderr, wait_for, Cluster};

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
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 8000
        readinessProbe:
          httpGet:
            path: /
            port: 8000
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8000
    nodePort: 30080
"
    )
}

/// The greetings the Service gives over `n` requests.
fn greetings(url: &str, n: usize) -> BTreeSet<String> {
    (0..n)
        .filter_map(|_| curl(url))
        .map(|b| b.trim().to_string())
        .collect()
}

#[test]
fn three_replicas_answer_and_a_rolling_update_never_drops_the_service() {
    let c = Cluster::start();
    c.apply("web.yaml", &deployment("kubetm/hello:v1"));
    let pods = c.wait_ready("app=web", 3, Duration::from_secs(90));
    let names: BTreeSet<String> = pods
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 3);
    assert_eq!(c.berth_pods().len(), 3, "one berth pod per replica");

    let url = "http://127.0.0.1:30080/";
    let seen = wait_for(
        Duration::from_secs(60),
        "answers from all three replicas",
        || {
            let got = greetings(url, 30);
            let hosts: BTreeSet<String> = got
                .iter()
                .filter_map(|g| g.strip_prefix("Hello World! from ").map(str::to_string))
                .collect();
            (hosts == names).then_some(hosts)
        },
    );
    assert_eq!(seen.len(), 3);

    // Roll to v2 while a loop keeps asking; every request must be answered.
    let stop = Arc::new(AtomicBool::new(false));
    let looper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                match curl(url) {
                    Some(_) => ok += 1,
                    None => failed += 1,
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (ok, failed)
        })
    };
    c.apply("web.yaml", &deployment("kubetm/hello:v2"));
    let out = c
        .berth()
        .args(["rollout", "status", "deployment/web", "--timeout", "120"])
        .output()
        .unwrap();
    assert!(out.status.success(), "rollout status: {}", stderr(&out));
    let v2 = wait_for(Duration::from_secs(90), "only v2 pods, all ready", || {
        let pods = c.pods("app=web");
        let all_v2 = pods.len() == 3
            && pods.iter().all(|p| {
                p["spec"]["containers"][0]["image"] == "kubetm/hello:v2"
                    && orchestrator_support::is_ready(p)
            });
        all_v2.then_some(pods)
    });
    // Keep asking while the old pods are stopped and removed.
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = looper.join().unwrap();
    assert!(ok > 10, "the loop ran ({ok} answers)");
    assert_eq!(
        failed, 0,
        "requests failed during the rolling update ({ok} answered)"
    );
    assert_eq!(v2.len(), 3);
    wait_for(Duration::from_secs(60), "the v1 berth pods to go", || {
        (c.berth_pods().len() == 3).then_some(())
    });
    let now = greetings(url, 10);
    assert!(
        !now.is_empty() && now.iter().all(|g| g.starts_with("Hello World v2! from ")),
        "{now:?}"
    );

    // Roll back to v1.
    let out = c
        .berth()
        .args(["rollout", "undo", "deployment/web"])
        .output()
        .unwrap();
    assert!(out.status.success(), "rollout undo: {}", stderr(&out));
    wait_for(Duration::from_secs(120), "v1 back on every pod", || {
        let pods = c.pods("app=web");
        (pods.len() == 3
            && pods.iter().all(|p| {
                p["spec"]["containers"][0]["image"] == "kubetm/hello:v1"
                    && orchestrator_support::is_ready(p)
            }))
        .then_some(())
    });
    wait_for(Duration::from_secs(60), "v1 answering alone", || {
        let g = greetings(url, 10);
        (!g.is_empty() && g.iter().all(|g| g.starts_with("Hello World! from "))).then_some(())
    });
}

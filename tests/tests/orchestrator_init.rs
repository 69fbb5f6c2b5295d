//! Init containers on the node daemon: they run one after the other, each to a clean exit,
//! before the app containers start (an emptyDir they fill is what the app serves); while they
//! run the Pod is Pending, `Initialized` is False and kubectl's STATUS reads `Init:N/M`; one
//! that fails under `restartPolicy: Never` fails the Pod and its app never starts.

mod orchestrator_support;

use std::time::Duration;

use orchestrator_support::{curl, is_ready, stdout, wait_for, Cluster};
use serde_json::Value;

fn condition(pod: &Value, t: &str) -> Value {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned())
        .unwrap_or(Value::Null)
}

#[test]
fn init_containers_run_in_order_before_the_app() {
    let c = Cluster::start();
    c.apply(
        "init.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: initialized
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: first
    image: busybox
    command: [sh, -c, 'sleep 2; echo first > /shared/order']
    volumeMounts:
    - name: shared
      mountPath: /shared
  - name: second
    image: busybox
    command: [sh, -c, 'cat /shared/order > /shared/index.html; echo second >> /shared/index.html']
    volumeMounts:
    - name: shared
      mountPath: /shared
  containers:
  - name: web
    image: busybox
    command: [httpd, -f, -p, '8000', -h, /shared]
    volumeMounts:
    - name: shared
      mountPath: /shared
  volumes:
  - name: shared
    emptyDir: {}
---
apiVersion: v1
kind: Pod
metadata:
  name: broken
spec:
  restartPolicy: Never
  initContainers:
  - name: fails
    image: busybox
    command: [sh, -c, 'exit 3']
  containers:
  - name: never
    image: busybox
    command: [sleep, '1000']
",
    );
    // While the first init container sleeps: Pending, not initialized, Init:0/2.
    let pending = wait_for(Duration::from_secs(30), "the first init container", || {
        c.get(&["pod", "initialized"])
            .filter(|p| p["status"]["initContainerStatuses"][0]["state"]["running"].is_object())
    });
    assert_eq!(pending["status"]["phase"], "Pending", "{pending}");
    let init = condition(&pending, "Initialized");
    assert_eq!(init["status"], "False", "{init}");
    assert_eq!(init["reason"], "ContainersNotInitialized", "{init}");
    assert_eq!(
        pending["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing",
        "{pending}"
    );
    let table = stdout(
        &c.kubectl()
            .args(["get", "pod", "initialized"])
            .output()
            .unwrap(),
    );
    assert!(table.contains("Init:0/2"), "{table}");

    let ready = wait_for(Duration::from_secs(60), "the app to be Ready", || {
        c.get(&["pod", "initialized"]).filter(is_ready)
    });
    assert_eq!(condition(&ready, "Initialized")["status"], "True");
    for (i, name) in ["first", "second"].iter().enumerate() {
        let s = &ready["status"]["initContainerStatuses"][i];
        assert_eq!(s["name"], *name, "{s}");
        assert_eq!(s["state"]["terminated"]["exitCode"], 0, "{s}");
        assert_eq!(s["state"]["terminated"]["reason"], "Completed", "{s}");
    }
    let ip = ready["status"]["podIP"].as_str().unwrap().to_string();
    let body = wait_for(Duration::from_secs(20), "the app to answer", || {
        curl(&format!("http://{ip}:8000/"))
    });
    assert_eq!(
        body, "first\nsecond\n",
        "the init containers ran out of order"
    );

    let broken = wait_for(Duration::from_secs(60), "the broken Pod to fail", || {
        c.get(&["pod", "broken"])
            .filter(|p| p["status"]["phase"] == "Failed")
    });
    let s = &broken["status"];
    assert_eq!(
        s["initContainerStatuses"][0]["state"]["terminated"]["exitCode"], 3,
        "{s}"
    );
    assert!(
        s["containerStatuses"][0]["state"]["running"].is_null(),
        "the app ran after a failed init container: {s}"
    );
    let table = stdout(&c.kubectl().args(["get", "pod", "broken"]).output().unwrap());
    assert!(table.contains("Init:Error"), "{table}");
}

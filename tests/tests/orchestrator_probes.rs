//! Probes and restarts on the node daemon: a failing liveness probe restarts its container
//! (restartCount grows, lastState.terminated recorded, the back-off shortened for tests); a
//! failing readiness probe takes the pod out of its Service's Endpoints and a passing one
//! puts it back; a container exiting non-zero under `restartPolicy: Never` fails the Pod.

mod orchestrator_support;

use std::time::Duration;

use orchestrator_support::{is_ready, wait_for, Cluster};
use serde_json::Value;

fn status(c: &Cluster, name: &str) -> Value {
    c.get(&["pod", name])
        .map(|p| p["status"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let c = Cluster::start();
    c.apply(
        "live.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: live
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: kubetm/hello
    livenessProbe:
      httpGet:
        path: /healthz
        port: 8000
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 2
",
    );
    let s = wait_for(Duration::from_secs(90), "two restarts", || {
        let s = status(&c, "live");
        (s["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
            >= 2)
            .then_some(s)
    });
    let cs = &s["containerStatuses"][0];
    let last = &cs["lastState"]["terminated"];
    assert!(last["exitCode"].as_i64().is_some(), "{cs}");
    assert_eq!(
        last["reason"],
        if last["exitCode"] == 0 {
            "Completed"
        } else {
            "Error"
        }
    );
    assert!(last["finishedAt"].as_str().is_some(), "{cs}");
    assert_eq!(s["phase"], "Running", "{s}");
    // Only the current container is kept.
    wait_for(
        Duration::from_secs(20),
        "one container in the berth pod",
        || {
            let pods = c.berth_pods();
            (pods.len() == 1 && pods[0].containers.len() == 1).then_some(())
        },
    );
}

#[test]
fn readiness_moves_the_pod_in_and_out_of_the_endpoints_and_never_fails_the_pod() {
    let c = Cluster::start();
    let state = c.root.path("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("ready"), "ok").unwrap();
    c.apply(
        "ready.yaml",
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: ready
  labels:
    app: ready
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: kubetm/hello
    readinessProbe:
      httpGet:
        path: /state/ready
        port: 8000
      periodSeconds: 1
      failureThreshold: 1
    volumeMounts:
    - name: state
      mountPath: /www/state
  volumes:
  - name: state
    hostPath:
      path: {}
      type: Directory
---
apiVersion: v1
kind: Service
metadata:
  name: ready
spec:
  selector:
    app: ready
  ports:
  - port: 80
    targetPort: 8000
---
apiVersion: v1
kind: Pod
metadata:
  name: once
spec:
  restartPolicy: Never
  containers:
  - name: fail
    image: busybox
    command: [sh, -c, 'exit 3']
",
            state.display()
        ),
    );
    let ip = wait_for(Duration::from_secs(60), "the pod to be ready", || {
        c.get(&["pod", "ready"])
            .filter(is_ready)
            .and_then(|p| p["status"]["podIP"].as_str().map(str::to_string))
    });
    let addresses = |c: &Cluster| -> Vec<String> {
        c.get(&["endpoints", "ready"])
            .and_then(|e| e["subsets"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["ip"].as_str().map(str::to_string))
            .collect()
    };
    wait_for(Duration::from_secs(30), "the pod in the endpoints", || {
        (addresses(&c) == vec![ip.clone()]).then_some(())
    });

    std::fs::remove_file(state.join("ready")).unwrap();
    wait_for(
        Duration::from_secs(30),
        "the pod out of the endpoints",
        || {
            let s = status(&c, "ready");
            let unready = s["containerStatuses"][0]["ready"] == false
                && !is_ready(&c.get(&["pod", "ready"]).unwrap_or_default());
            (unready && addresses(&c).is_empty()).then_some(())
        },
    );
    let s = status(&c, "ready");
    assert_eq!(s["phase"], "Running", "an unready pod still runs: {s}");
    assert_eq!(
        s["containerStatuses"][0]["restartCount"], 0,
        "readiness never restarts"
    );
    let ready_cond = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready_cond["reason"], "ContainersNotReady", "{ready_cond}");

    std::fs::write(state.join("ready"), "ok").unwrap();
    wait_for(
        Duration::from_secs(30),
        "the pod back in the endpoints",
        || (addresses(&c) == vec![ip.clone()]).then_some(()),
    );

    let once = wait_for(Duration::from_secs(60), "the Never pod to fail", || {
        let s = status(&c, "once");
        (s["phase"] == "Failed").then_some(s)
    });
    let cs = &once["containerStatuses"][0];
    assert_eq!(cs["state"]["terminated"]["exitCode"], 3, "{cs}");
    assert_eq!(cs["state"]["terminated"]["reason"], "Error", "{cs}");
    assert_eq!(cs["restartCount"], 0, "{cs}");
}

#[test]
fn exec_probes_run_in_the_container() {
    let c = Cluster::start();
    // Readiness: a file the container makes after two seconds. Liveness: a file it removes
    // after four, so the container is restarted and, started again, makes both anew.
    c.apply(
        "exec.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: exec-probed
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sh
    image: busybox
    command: [sh, -c, 'touch /tmp/alive; sleep 2; touch /tmp/ready; sleep 2; rm /tmp/alive; exec sleep 1000']
    readinessProbe:
      exec:
        command: [test, -f, /tmp/ready]
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      exec:
        command: [test, -f, /tmp/alive]
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 2
",
    );
    let running = wait_for(Duration::from_secs(60), "the container to run", || {
        let s = status(&c, "exec-probed");
        s["containerStatuses"][0]["state"]["running"]
            .is_object()
            .then_some(s)
    });
    assert_eq!(
        running["containerStatuses"][0]["ready"], false,
        "ready before the readiness file exists: {running}"
    );
    wait_for(Duration::from_secs(30), "exec readiness to pass", || {
        c.get(&["pod", "exec-probed"]).filter(is_ready)
    });
    let s = wait_for(
        Duration::from_secs(60),
        "a restart by the exec liveness probe",
        || {
            let s = status(&c, "exec-probed");
            (s["containerStatuses"][0]["restartCount"]
                .as_i64()
                .unwrap_or(0)
                >= 1)
                .then_some(s)
        },
    );
    let cs = &s["containerStatuses"][0];
    assert!(
        cs["lastState"]["terminated"]["finishedAt"]
            .as_str()
            .is_some(),
        "{cs}"
    );
    assert_eq!(s["phase"], "Running", "{s}");
}

//! The seeds' hello example on the node daemon: `hello-pod` and `hello-svc` (port 8200 ->
//! targetPort 8000) applied with `berth apply`, the Pod bound to the node and running with
//! Kubernetes' status, answering through the Service; the typo'd variant rejected with the
//! file, line and field named and nothing applied; deleting the Pod removes its berth pod. A
//! container port with a `hostPort` is published on the host while its Pod runs.

mod orchestrator_support;

use std::time::Duration;

use berth_tests::run_ok;
use orchestrator_support::{curl, free_port, is_ready, stderr, wait_for, Cluster};

const HELLO: &str = "apiVersion: v1
kind: Pod
metadata:
  name: hello-pod
  labels:
    app: hello
spec:
  containers:
  - name: hello
    image: kubetm/hello
    ports:
    - containerPort: 8000
---
apiVersion: v1
kind: Service
metadata:
  name: hello-svc
spec:
  selector:
    app: hello
  ports:
  - port: 8200
    targetPort: 8000
";

#[test]
fn hello_pod_answers_through_its_service_and_a_typo_applies_nothing() {
    let c = Cluster::start();

    let typo = HELLO.replace("    image: kubetm/hello", "    images: kubetm/hello");
    let path = c.manifest("hello-typo.yaml", &typo);
    let out = c
        .berth()
        .arg("apply")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the typo'd manifest was accepted");
    let err = stderr(&out);
    assert!(
        err.contains("hello-typo.yaml:10") && err.contains("spec.containers[0].images"),
        "the error names file, line and field: {err}"
    );
    assert!(
        c.get(&["pod", "hello-pod"]).is_none(),
        "the Pod was applied"
    );
    assert!(
        c.get(&["service", "hello-svc"]).is_none(),
        "the Service was applied"
    );

    let applied = c.apply("hello.yaml", HELLO);
    assert!(applied.contains("pod/hello-pod created"), "{applied}");
    assert!(applied.contains("service/hello-svc created"), "{applied}");

    let pod = wait_for(Duration::from_secs(60), "hello-pod to be Ready", || {
        c.get(&["pod", "hello-pod"]).filter(is_ready)
    });
    let status = &pod["status"];
    assert_eq!(status["phase"], "Running");
    assert!(
        pod["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "{pod}"
    );
    assert!(status["hostIP"].as_str().is_some(), "{status}");
    assert!(status["startTime"].as_str().is_some(), "{status}");
    let ip = status["podIP"].as_str().expect("podIP").to_string();
    let cs = &status["containerStatuses"][0];
    assert_eq!(cs["name"], "hello");
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["started"], true);
    assert_eq!(cs["restartCount"], 0);
    assert!(
        cs["state"]["running"]["startedAt"].as_str().is_some(),
        "{cs}"
    );
    assert!(
        cs["containerID"]
            .as_str()
            .is_some_and(|id| id.starts_with("berth://")),
        "{cs}"
    );
    assert!(
        cs["imageID"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:")),
        "{cs}"
    );
    for t in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        let cond = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == t)
            .unwrap_or_else(|| panic!("no {t} condition: {status}"));
        assert_eq!(cond["status"], "True", "{t}");
        assert!(cond["lastTransitionTime"].as_str().is_some(), "{t}");
    }

    let direct = curl(&format!("http://{ip}:8000/")).expect("the pod answers on its IP");
    assert!(
        direct.starts_with("Hello World! from hello-pod"),
        "{direct}"
    );

    let svc = c.get(&["service", "hello-svc"]).expect("the service");
    let cluster_ip = svc["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string();
    let via = wait_for(Duration::from_secs(30), "the service to answer", || {
        curl(&format!("http://{cluster_ip}:8200/"))
    });
    assert!(via.starts_with("Hello World!"), "{via}");

    let berth_pods = c.berth_pods();
    assert_eq!(berth_pods.len(), 1, "one berth pod for one Pod");
    let labels = &berth_pods[0].record.labels;
    assert_eq!(
        labels.get("io.kubernetes.pod.name").map(String::as_str),
        Some("hello-pod")
    );
    assert_eq!(
        labels
            .get("io.kubernetes.pod.namespace")
            .map(String::as_str),
        Some("default")
    );
    assert_eq!(
        labels.get("io.kubernetes.pod.uid").map(String::as_str),
        pod["metadata"]["uid"].as_str()
    );

    let out = c
        .berth()
        .args(["delete", "pod", "hello-pod"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(Duration::from_secs(30), "the berth pod to go", || {
        c.berth_pods().is_empty().then_some(())
    });
    assert!(
        curl(&format!("http://{ip}:8000/")).is_none(),
        "the pod still answers"
    );
}

#[test]
fn a_host_port_publishes_the_pod_on_the_host_while_it_runs() {
    let c = Cluster::start();
    let port = free_port();
    c.apply(
        "hostport.yaml",
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: published
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hello
    image: kubetm/hello
    ports:
    - containerPort: 8000
      hostPort: {port}
"
        ),
    );
    wait_for(Duration::from_secs(60), "the Pod to be Ready", || {
        c.get(&["pod", "published"]).filter(is_ready)
    });
    let url = format!("http://127.0.0.1:{port}/");
    let body = wait_for(Duration::from_secs(30), "the host port to answer", || {
        curl(&url)
    });
    assert!(body.starts_with("Hello World! from published"), "{body}");
    run_ok(c.berth().args(["delete", "pod", "published"]));
    wait_for(Duration::from_secs(30), "the berth pod to go", || {
        c.berth_pods().is_empty().then_some(())
    });
    assert_eq!(curl(&url), None, "the host port still answers");
}

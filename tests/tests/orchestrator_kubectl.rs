//! The same flows driven by the installed `kubectl` (fresh `--cache-dir`, the kubeconfig
//! the daemon writes): apply the hello Pod and Service, see it Running and Ready in `get`,
//! read its logs, `describe` it; a Deployment behind a NodePort: scale, roll out a new
//! image with `rollout status`, `rollout undo`; a typo'd manifest is refused; delete.

mod orchestrator_support;

use std::process::Output;
use std::time::Duration;

use orchestrator_support::{curl, stderr, stdout, wait_for, Cluster};

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "kubectl {what}: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    stdout(&out)
}

const HELLO: &str = "apiVersion: v1
kind: Pod
metadata:
  name: hello-pod
  labels:
    app: hello
spec:
  terminationGracePeriodSeconds: 2
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

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: {image}
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
    nodePort: 30081
"
    )
}

#[test]
fn kubectl_drives_pods_services_and_deployments() {
    let c = Cluster::start();
    let typo = c.manifest(
        "typo.yaml",
        &HELLO.replace("    image: kubetm", "    images: kubetm"),
    );
    let out = c
        .kubectl()
        .arg("apply")
        .arg("-f")
        .arg(&typo)
        .output()
        .unwrap();
    assert!(!out.status.success(), "kubectl applied a typo");
    assert!(stderr(&out).contains("images"), "{}", stderr(&out));

    let hello = c.manifest("hello.yaml", HELLO);
    let applied = ok(
        c.kubectl()
            .arg("apply")
            .arg("-f")
            .arg(&hello)
            .output()
            .unwrap(),
        "apply",
    );
    assert!(applied.contains("pod/hello-pod created"), "{applied}");
    wait_for(
        Duration::from_secs(60),
        "kubectl to show hello-pod Running 1/1",
        || {
            let out = c.kubectl().args(["get", "pods"]).output().ok()?;
            let text = stdout(&out);
            text.lines()
                .any(|l| l.starts_with("hello-pod") && l.contains("1/1") && l.contains("Running"))
                .then_some(())
        },
    );
    let out = ok(
        c.kubectl()
            .args([
                "wait",
                "--for=condition=Ready",
                "pod/hello-pod",
                "--timeout=30s",
            ])
            .output()
            .unwrap(),
        "wait",
    );
    assert!(out.contains("condition met"), "{out}");
    let ip = ok(
        c.kubectl()
            .args(["get", "pod", "hello-pod", "-o", "jsonpath={.status.podIP}"])
            .output()
            .unwrap(),
        "get -o jsonpath",
    );
    let body = curl(&format!("http://{ip}:8000/")).expect("the pod answers");
    assert!(body.starts_with("Hello World!"), "{body}");
    let described = ok(
        c.kubectl()
            .args(["describe", "pod", "hello-pod"])
            .output()
            .unwrap(),
        "describe",
    );
    assert!(
        described.contains("kubetm/hello") && described.contains("Running"),
        "{described}"
    );
    let re_applied = ok(
        c.kubectl()
            .arg("apply")
            .arg("-f")
            .arg(&hello)
            .output()
            .unwrap(),
        "re-apply",
    );
    assert!(
        re_applied.contains("pod/hello-pod unchanged"),
        "{re_applied}"
    );

    let web = c.manifest("web.yaml", &deployment("kubetm/hello:v1"));
    ok(
        c.kubectl()
            .arg("apply")
            .arg("-f")
            .arg(&web)
            .output()
            .unwrap(),
        "apply web",
    );
    ok(
        c.kubectl()
            .args(["rollout", "status", "deployment/web", "--timeout=120s"])
            .output()
            .unwrap(),
        "rollout status",
    );
    ok(
        c.kubectl()
            .args(["scale", "deployment/web", "--replicas=3"])
            .output()
            .unwrap(),
        "scale",
    );
    wait_for(Duration::from_secs(90), "3 ready replicas", || {
        let out = c
            .kubectl()
            .args([
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .output()
            .ok()?;
        (stdout(&out).trim() == "3").then_some(())
    });
    let logs = ok(
        c.kubectl()
            .args(["logs", "deployment/web"])
            .output()
            .unwrap(),
        "logs",
    );
    let _ = logs; // httpd -f writes nothing until asked; the call itself must work.

    let web2 = c.manifest("web2.yaml", &deployment("kubetm/hello:v2"));
    ok(
        c.kubectl()
            .arg("apply")
            .arg("-f")
            .arg(&web2)
            .output()
            .unwrap(),
        "apply v2",
    );
    ok(
        c.kubectl()
            .args(["rollout", "status", "deployment/web", "--timeout=180s"])
            .output()
            .unwrap(),
        "rollout status v2",
    );
    wait_for(
        Duration::from_secs(60),
        "v2 answering on the node port",
        || curl("http://127.0.0.1:30081/").filter(|b| b.starts_with("Hello World v2!")),
    );
    ok(
        c.kubectl()
            .args(["rollout", "undo", "deployment/web"])
            .output()
            .unwrap(),
        "rollout undo",
    );
    ok(
        c.kubectl()
            .args(["rollout", "status", "deployment/web", "--timeout=180s"])
            .output()
            .unwrap(),
        "rollout status after undo",
    );
    let image = ok(
        c.kubectl()
            .args([
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ])
            .output()
            .unwrap(),
        "get image",
    );
    assert_eq!(image, "kubetm/hello:v1");

    ok(
        c.kubectl()
            .arg("delete")
            .arg("-f")
            .arg(&hello)
            .output()
            .unwrap(),
        "delete hello",
    );
    ok(
        c.kubectl()
            .arg("delete")
            .arg("-f")
            .arg(&web)
            .output()
            .unwrap(),
        "delete web",
    );
    wait_for(Duration::from_secs(60), "every berth pod to go", || {
        c.berth_pods().is_empty().then_some(())
    });
}

/// `kubectl logs` (whole, `-c --tail`, `-f`) and `berth logs pod/NAME` read the json-file log
/// of the container the pod controller recorded in the Pod's status.
#[test]
fn pod_logs_come_from_the_recorded_container() {
    let c = Cluster::start();
    c.apply(
        "logs.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: talker
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [\"sh\", \"-c\", \"echo one; sleep 0.3; echo two >&2; exec sleep 3600\"]
",
    );
    wait_for(Duration::from_secs(60), "both lines logged", || {
        let out = c.kubectl().args(["logs", "talker"]).output().ok()?;
        (stdout(&out) == "one\ntwo\n").then_some(())
    });
    let tail = ok(
        c.kubectl()
            .args(["logs", "talker", "-c", "c", "--tail=1"])
            .output()
            .unwrap(),
        "logs --tail",
    );
    assert_eq!(tail, "two\n");
    let out = c
        .berth()
        .args(["logs", "pod/talker", "--tail", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "berth logs pod/talker: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "two\n");
    let get = ok(
        c.kubectl().args(["get", "pod", "talker"]).output().unwrap(),
        "get pod",
    );
    assert!(
        get.lines()
            .nth(1)
            .is_some_and(|l| l.contains("1/1") && l.contains("Running")),
        "{get}"
    );
}

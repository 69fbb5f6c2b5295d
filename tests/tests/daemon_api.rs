//! End-to-end tests of `berth daemon`'s Kubernetes-shaped API: the installed kubectl (through
//! the kubeconfig the daemon writes) and berth's own client commands apply, read, patch, watch
//! and delete ConfigMaps, Secrets, Namespaces and Deployments, and have invalid manifests
//! refused with the field named. No test needs a running container; what the pod controller
//! starts anyway is removed with the daemon.

mod orchestrator_support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_tests::{require_command, require_root, run_ok, TestRoot};

/// A running `berth daemon` on a free loopback port with its own root; killed on drop.
struct Daemon {
    child: Option<Child>,
    kubeconfig: PathBuf,
    cache: PathBuf,
    store: PathBuf,
}

impl Daemon {
    fn start(root: &TestRoot) -> Daemon {
        let kubeconfig = root.store().join("daemon/kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let child = root
            .berth()
            .args(["daemon", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start berth daemon");
        let mut d = Daemon {
            child: Some(child),
            kubeconfig,
            cache: root.path("kube-cache"),
            store: root.store(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(d.kubeconfig.exists() && root.store().join("daemon/api.sock").exists()) {
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("berth daemon exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "berth daemon did not come up within 30s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// kubectl with the daemon's kubeconfig and this test's own discovery cache.
    fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache);
        cmd
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    /// Stops the daemon and removes the berth pods and containers its pod controller made
    /// (they outlive it by design); a daemon killed with `kill9` leaves them to the one
    /// started after it.
    fn drop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        orchestrator_support::remove_pods_and_containers(&self.store);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(root: &TestRoot, name: &str, text: &str) -> PathBuf {
    let path = root.path(name);
    std::fs::write(&path, text).expect("write manifest");
    path
}

const CONFIG: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: hello
  labels:
    app: web
data:
  greeting: hi
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  user: admin
";

const OTHER_NS: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: other
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: hello
  namespace: other
data:
  greeting: elsewhere
";

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
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
      containers:
      - name: web
        image: hello-site
        ports:
        - containerPort: 8080
";

fn setup() -> (TestRoot, Daemon) {
    require_root();
    require_command("kubectl", "kubectl");
    let root = TestRoot::with_private_network();
    let daemon = Daemon::start(&root);
    (root, daemon)
}

#[test]
fn kubectl_applies_reads_patches_and_deletes_configmaps_and_secrets() {
    let (root, d) = setup();
    let manifest = write(&root, "config.yaml", CONFIG);
    let out = run_ok(d.kubectl().arg("apply").arg("-f").arg(&manifest));
    assert_eq!(
        stdout(&out),
        "configmap/hello created\nsecret/creds created\n"
    );

    let out = run_ok(
        d.kubectl()
            .args(["get", "configmap", "hello", "-o", "yaml"]),
    );
    let yaml = stdout(&out);
    assert!(yaml.contains("greeting: hi"), "{yaml}");
    assert!(
        yaml.contains("kubectl.kubernetes.io/last-applied-configuration"),
        "{yaml}"
    );
    let out = run_ok(
        d.kubectl()
            .args(["get", "secret", "creds", "-o", "jsonpath={.data.user}"]),
    );
    assert_eq!(stdout(&out), "YWRtaW4=");
    let out = run_ok(d.kubectl().args(["get", "configmaps"]));
    let table = stdout(&out);
    assert!(
        table.starts_with("NAME") && table.contains("DATA"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("hello ") && l.contains(" 1 ")),
        "{table}"
    );

    // Unchanged manifests are not written again.
    let out = run_ok(d.kubectl().arg("apply").arg("-f").arg(&manifest));
    assert!(
        stdout(&out).contains("configmap/hello unchanged"),
        "{}",
        stdout(&out)
    );

    // Strategic merge (kubectl's default), merge and JSON patches.
    run_ok(
        d.kubectl()
            .args(["patch", "configmap", "hello", "-p", r#"{"data":{"x":"y"}}"#]),
    );
    run_ok(d.kubectl().args([
        "patch",
        "configmap",
        "hello",
        "--type=merge",
        "-p",
        r#"{"data":{"z":"1"}}"#,
    ]));
    run_ok(d.kubectl().args([
        "patch",
        "configmap",
        "hello",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/data/x"}]"#,
    ]));
    let out = run_ok(
        d.kubectl()
            .args(["get", "configmap", "hello", "-o", "jsonpath={.data}"]),
    );
    assert_eq!(stdout(&out), r#"{"greeting":"hi","z":"1"}"#);
    let out = run_ok(
        d.kubectl()
            .args(["get", "configmaps", "-l", "app=web", "-o", "name"]),
    );
    assert_eq!(stdout(&out), "configmap/hello\n");
    let out = run_ok(
        d.kubectl()
            .args(["get", "configmaps", "-l", "app=db", "-o", "name"]),
    );
    assert_eq!(stdout(&out), "");

    let out = run_ok(d.kubectl().args(["describe", "configmap", "hello"]));
    assert!(stdout(&out).contains("greeting"), "{}", stdout(&out));

    let out = run_ok(d.kubectl().arg("delete").arg("-f").arg(&manifest));
    assert!(
        stdout(&out).contains(r#"configmap "hello" deleted"#),
        "{}",
        stdout(&out)
    );
    let out = d
        .kubectl()
        .args(["get", "configmap", "hello"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("NotFound"), "{}", stderr(&out));
}

#[test]
fn kubectl_namespaces_isolate_objects_and_take_them_along() {
    let (root, d) = setup();
    run_ok(
        d.kubectl()
            .arg("apply")
            .arg("-f")
            .arg(write(&root, "config.yaml", CONFIG)),
    );
    run_ok(
        d.kubectl()
            .arg("apply")
            .arg("-f")
            .arg(write(&root, "other.yaml", OTHER_NS)),
    );
    let get = |ns: &str| {
        stdout(&run_ok(d.kubectl().args([
            "get",
            "configmap",
            "hello",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.greeting}",
        ])))
    };
    assert_eq!(get("default"), "hi");
    assert_eq!(get("other"), "elsewhere");
    let out = run_ok(d.kubectl().args(["get", "configmaps", "-A"]));
    assert_eq!(
        stdout(&out).lines().filter(|l| l.contains("hello")).count(),
        2,
        "{}",
        stdout(&out)
    );

    run_ok(d.kubectl().args(["delete", "namespace", "other"]));
    let out = d
        .kubectl()
        .args(["get", "configmap", "hello", "-n", "other"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the namespace's objects outlived it");
    assert_eq!(get("default"), "hi");
    let out = d
        .kubectl()
        .args(["apply", "-n", "gone", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"namespaces "gone" not found"#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubectl_watch_sees_an_update() {
    let (root, d) = setup();
    run_ok(
        d.kubectl()
            .arg("apply")
            .arg("-f")
            .arg(write(&root, "config.yaml", CONFIG)),
    );
    let mut watcher = d
        .kubectl()
        .args(["get", "configmaps", "--watch", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kubectl get --watch");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let out = watcher.stdout.take().unwrap();
    let _guard = Kill(watcher);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // `EVENT  NAME  DATA  AGE` rows: the event type and the name, after the header.
    let next_event = |what: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("kubectl get --watch printed no line for {what}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"EVENT") {
            return (words[0].to_string(), words.get(1).map(|w| w.to_string()));
        }
    };
    assert_eq!(
        next_event("the list"),
        ("ADDED".into(), Some("hello".into()))
    );
    run_ok(d.kubectl().args([
        "patch",
        "configmap",
        "hello",
        "-p",
        r#"{"data":{"greeting":"bye"}}"#,
    ]));
    assert_eq!(
        next_event("the patch"),
        ("MODIFIED".into(), Some("hello".into()))
    );
    run_ok(d.kubectl().args(["delete", "configmap", "hello"]));
    assert_eq!(
        next_event("the delete"),
        ("DELETED".into(), Some("hello".into()))
    );
}

#[test]
fn kubectl_refuses_invalid_manifests_naming_the_field() {
    let (root, d) = setup();
    let typo = write(
        &root,
        "typo.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndatas:\n  a: b\n",
    );
    let out = d
        .kubectl()
        .arg("apply")
        .arg("-f")
        .arg(&typo)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "kubectl applied a manifest with an unknown field"
    );
    assert!(
        stderr(&out).contains(r#"unknown field "datas""#),
        "{}",
        stderr(&out)
    );
    let bad_name = write(
        &root,
        "name.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
    );
    let out = d
        .kubectl()
        .arg("apply")
        .arg("-f")
        .arg(&bad_name)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("metadata.name: Invalid value"),
        "{}",
        stderr(&out)
    );
    let out = run_ok(d.kubectl().args(["get", "configmaps", "-o", "name"]));
    assert_eq!(stdout(&out), "", "something invalid was stored");
}

#[test]
fn services_get_their_address_and_node_port_at_create_and_duplicates_are_refused() {
    let (root, d) = setup();
    let service = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: NodePort\n{extra}  selector:\n    app: {name}\n  ports:\n  - port: 80\n    nodePort: 30777\n"
        )
    };
    let first = write(&root, "first.yaml", &service("first", ""));
    let out = run_ok(
        d.kubectl()
            .arg("create")
            .arg("-o")
            .arg("json")
            .arg("-f")
            .arg(&first),
    );
    // The object create answers with already has its address, as the API server's does.
    let created: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ip = created["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ip.starts_with("10."), "{created}");
    assert_eq!(created["spec"]["clusterIPs"], serde_json::json!([ip]));
    assert_eq!(created["spec"]["ports"][0]["nodePort"], 30777);

    let taken = write(
        &root,
        "taken.yaml",
        &service("second", &format!("  clusterIP: {ip}\n")),
    );
    let out = d
        .kubectl()
        .arg("apply")
        .arg("-f")
        .arg(&taken)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a taken node port was accepted");
    let err = stderr(&out);
    assert!(err.contains(r#"Service "second" is invalid"#), "{err}");
    assert!(
        err.contains(&format!(
            r#"spec.clusterIP: Invalid value: "{ip}": provided IP is already allocated"#
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 30777: provided port is already allocated"
        ),
        "{err}"
    );
    let names = run_ok(d.kubectl().args(["get", "services", "-o", "name"]));
    assert_eq!(
        stdout(&names),
        "service/first\n",
        "the refused Service was stored"
    );

    // A replacement that leaves the address out keeps it; moving it is refused.
    let put = write(
        &root,
        "put.yaml",
        &service("first", "").replace("nodePort: 30777\n", ""),
    );
    run_ok(d.kubectl().arg("replace").arg("-f").arg(&put));
    let now = run_ok(d.kubectl().args(["get", "service", "first", "-o", "json"]));
    let now: serde_json::Value = serde_json::from_str(&stdout(&now)).unwrap();
    assert_eq!(now["spec"]["clusterIP"], ip.as_str(), "{now}");
    assert_eq!(now["spec"]["ports"][0]["nodePort"], 30777, "{now}");
    let moved = write(
        &root,
        "moved.yaml",
        &service("first", "  clusterIP: 10.96.200.200\n"),
    );
    let out = d
        .kubectl()
        .arg("replace")
        .arg("-f")
        .arg(&moved)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("field is immutable"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubectl_scales_a_deployment() {
    let (root, d) = setup();
    let out = run_ok(d.kubectl().arg("apply").arg("-f").arg(write(
        &root,
        "deploy.yaml",
        DEPLOYMENT,
    )));
    assert_eq!(stdout(&out), "deployment.apps/web created\n");
    let out = run_ok(
        d.kubectl()
            .args(["scale", "deployment", "web", "--replicas=4"]),
    );
    assert_eq!(stdout(&out), "deployment.apps/web scaled\n");
    let out = run_ok(d.kubectl().args([
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.replicas} {.metadata.generation}",
    ]));
    assert_eq!(stdout(&out), "4 2");
}

#[test]
fn berth_client_commands() {
    let (root, d) = setup();
    let berth = |args: &[&str]| {
        let mut c = root.berth();
        c.args(args);
        c
    };
    let config = write(&root, "config.yaml", CONFIG);
    let out = run_ok(berth(&["apply", "-f"]).arg(&config));
    assert_eq!(
        stdout(&out),
        "configmap/hello created\nsecret/creds created\n"
    );
    let out = run_ok(berth(&["apply", "-f"]).arg(&config));
    assert_eq!(
        stdout(&out),
        "configmap/hello unchanged\nsecret/creds unchanged\n"
    );
    // kubectl sees what berth applied, and berth what kubectl patched.
    let out = run_ok(
        d.kubectl()
            .args(["get", "cm", "hello", "-o", "jsonpath={.data.greeting}"]),
    );
    assert_eq!(stdout(&out), "hi");
    run_ok(d.kubectl().args([
        "patch",
        "cm",
        "hello",
        "-p",
        r#"{"data":{"greeting":"hey"}}"#,
    ]));
    let out = run_ok(&mut berth(&["get", "cm", "hello", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["data"]["greeting"], "hey");
    // Re-applying restores the manifest's value.
    let out = run_ok(berth(&["apply", "-f"]).arg(&config));
    assert!(
        stdout(&out).contains("configmap/hello configured"),
        "{}",
        stdout(&out)
    );
    let out = run_ok(&mut berth(&["get", "configmap", "hello", "-o", "yaml"]));
    assert!(
        stdout(&out).contains("  greeting: hi\n"),
        "{}",
        stdout(&out)
    );

    let out = run_ok(&mut berth(&["get", "cm"]));
    let table = stdout(&out);
    assert!(
        table.starts_with("NAME    DATA   AGE\nhello   1 "),
        "{table}"
    );
    let out = run_ok(&mut berth(&["get", "cm", "-l", "app=web", "-o", "name"]));
    assert_eq!(stdout(&out), "configmap/hello\n");

    // A directory with one invalid document: nothing from it is applied.
    let dir = root.path("manifests");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), OTHER_NS).unwrap();
    std::fs::write(
        dir.join("b.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndatas:\n  a: b\n",
    )
    .unwrap();
    let out = berth(&["apply", "-f"]).arg(&dir).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("b.yaml:10") && err.contains(r#"unknown field "datas""#),
        "{err}"
    );
    let out = run_ok(&mut berth(&["get", "ns", "-o", "name"]));
    assert!(
        !stdout(&out).contains("namespace/other"),
        "a namespace from an invalid directory was applied"
    );
    std::fs::remove_file(dir.join("b.yaml")).unwrap();
    let out = run_ok(berth(&["apply", "-f"]).arg(&dir));
    assert_eq!(
        stdout(&out),
        "namespace/other created\nconfigmap/hello created\n"
    );
    let out = run_ok(&mut berth(&["get", "cm", "-A"]));
    assert_eq!(
        stdout(&out).lines().filter(|l| l.contains("hello")).count(),
        2,
        "{}",
        stdout(&out)
    );

    let out = run_ok(berth(&["apply", "-f"]).arg(write(&root, "deploy.yaml", DEPLOYMENT)));
    assert_eq!(stdout(&out), "deployment.apps/web created\n");
    let out = run_ok(&mut berth(&["scale", "deploy/web", "--replicas", "3"]));
    assert_eq!(stdout(&out), "deployment.apps/web scaled\n");
    let out = run_ok(&mut berth(&["get", "deploy", "web", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["spec"]["replicas"], 3);
    let out = run_ok(&mut berth(&["describe", "deploy/web"]));
    assert!(
        stdout(&out).contains("Name:         web"),
        "{}",
        stdout(&out)
    );

    let out = run_ok(&mut berth(&["delete", "cm", "hello", "-n", "other"]));
    assert_eq!(stdout(&out), "configmap \"hello\" deleted\n");
    let out = run_ok(berth(&["delete", "-f"]).arg(&config));
    assert!(
        stdout(&out).contains("secret \"creds\" deleted"),
        "{}",
        stdout(&out)
    );
    let out = berth(&["get", "secret", "creds"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"secrets "creds" not found"#),
        "{}",
        stderr(&out)
    );
    let out = berth(&["get", "widgets"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("resource type \"widgets\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn objects_survive_kill_9_of_the_daemon() {
    let (root, mut d) = setup();
    run_ok(
        d.kubectl()
            .arg("apply")
            .arg("-f")
            .arg(write(&root, "config.yaml", CONFIG)),
    );
    d.kill9();
    drop(d);
    let d = Daemon::start(&root);
    let out = run_ok(d.kubectl().args([
        "get",
        "configmap",
        "hello",
        "-o",
        "jsonpath={.data.greeting}",
    ]));
    assert_eq!(stdout(&out), "hi");
    let out = run_ok(root.berth().args(["get", "secret", "creds", "-o", "name"]));
    assert_eq!(stdout(&out), "secret/creds\n");
}

#[test]
fn kubectl_create_generators_for_namespaces_configmaps_and_secrets() {
    let (_root, d) = setup();
    // These generators send protobuf bodies, which the daemon decodes.
    let out = run_ok(d.kubectl().args(["create", "namespace", "team"]));
    assert_eq!(stdout(&out), "namespace/team created\n");
    let out = run_ok(d.kubectl().args([
        "-n",
        "team",
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=b",
    ]));
    assert_eq!(stdout(&out), "configmap/cfg created\n");
    let out = run_ok(d.kubectl().args([
        "-n",
        "team",
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=user=admin",
    ]));
    assert_eq!(stdout(&out), "secret/s created\n");
    let out =
        run_ok(
            d.kubectl()
                .args(["-n", "team", "get", "cm", "cfg", "-o", "jsonpath={.data.a}"]),
        );
    assert_eq!(stdout(&out), "b");
    let out = run_ok(d.kubectl().args([
        "-n",
        "team",
        "get",
        "secret",
        "s",
        "-o",
        "jsonpath={.data.user} {.type}",
    ]));
    assert_eq!(stdout(&out), "YWRtaW4= Opaque");
    // Kinds berth does not decode are refused with the way out named.
    let out = d
        .kubectl()
        .args(["create", "job", "j", "--image=x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not batch/v1 Job") && stderr(&out).contains("kubectl apply -f"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubectl_create_deployment_service_and_expose() {
    let (_root, d) = setup();
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&stdout(&run_ok(d.kubectl().args(args)))).unwrap()
    };
    // Protobuf bodies, with Go's zero values for everything the generator leaves unset.
    let out = run_ok(d.kubectl().args([
        "create",
        "deployment",
        "web",
        "--image=hello-site",
        "--replicas=2",
        "--port=8080",
    ]));
    assert_eq!(stdout(&out), "deployment.apps/web created\n");
    let deploy = json(&["get", "deployment", "web", "-o", "json"]);
    let spec = &deploy["spec"];
    assert_eq!(spec["replicas"], 2, "{deploy}");
    assert_eq!(spec["selector"]["matchLabels"]["app"], "web", "{deploy}");
    assert_eq!(spec["template"]["metadata"]["labels"]["app"], "web");
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "hello-site", "{deploy}");
    assert_eq!(container["name"], "hello-site", "{deploy}");
    assert_eq!(container["ports"][0]["containerPort"], 8080, "{deploy}");
    assert!(
        container.get("stdin").is_none(),
        "a zero value was kept: {deploy}"
    );

    let out = run_ok(d.kubectl().args([
        "create",
        "deployment",
        "idle",
        "--image=busybox",
        "--replicas=0",
        "--",
        "sleep",
        "100",
    ]));
    assert_eq!(stdout(&out), "deployment.apps/idle created\n");
    let idle = json(&["get", "deployment", "idle", "-o", "json"]);
    assert_eq!(
        idle["spec"]["replicas"], 0,
        "replicas: 0 is not unset: {idle}"
    );
    assert_eq!(
        idle["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["sleep", "100"])
    );

    run_ok(d.kubectl().args([
        "create",
        "service",
        "nodeport",
        "web",
        "--tcp=80:8080",
        "--node-port=30555",
    ]));
    let svc = json(&["get", "service", "web", "-o", "json"]);
    assert_eq!(svc["spec"]["type"], "NodePort", "{svc}");
    assert_eq!(svc["spec"]["selector"]["app"], "web", "{svc}");
    let port = &svc["spec"]["ports"][0];
    assert_eq!(
        (&port["port"], &port["targetPort"], &port["nodePort"]),
        (
            &serde_json::json!(80),
            &serde_json::json!(8080),
            &serde_json::json!(30555)
        ),
        "{svc}"
    );
    assert!(svc["spec"]["clusterIP"]
        .as_str()
        .is_some_and(|ip| ip.starts_with("10.")));

    // expose reads the Deployment's selector and sends the Service as JSON.
    run_ok(d.kubectl().args([
        "expose",
        "deployment",
        "web",
        "--port=8200",
        "--target-port=8080",
        "--name=web-expose",
    ]));
    let exposed = json(&["get", "service", "web-expose", "-o", "json"]);
    assert_eq!(exposed["spec"]["selector"]["app"], "web", "{exposed}");
    assert_eq!(exposed["spec"]["ports"][0]["targetPort"], 8080, "{exposed}");
}

#[test]
fn pod_logs_wait_for_a_container() {
    let (root, d) = setup();
    // busybox is not in this store and no registry is configured: the pod never gets a
    // container, so its log is refused with the reason rather than read from nowhere.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
    run_ok(
        d.kubectl()
            .arg("apply")
            .arg("-f")
            .arg(write(&root, "pod.yaml", pod)),
    );
    let out = d.kubectl().args(["logs", "p"]).output().unwrap();
    assert!(!out.status.success(), "logs of a pod with no container");
    assert!(
        stderr(&out).contains("waiting to start"),
        "{}",
        stderr(&out)
    );
}

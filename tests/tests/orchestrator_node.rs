//! The pod controller on its own, driven through the object store in-process (no HTTP): a
//! Pod runs as a berth pod with Kubernetes' status; a crashing container restarts with a
//! growing restartCount and its exit in lastState; a ConfigMap volume follows the object;
//! a restarted controller adopts what runs (same container ids) and removes the berth pods
//! of Pods deleted while it was down.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_engine::container::{Containers, Settings};
use berth_engine::pod::Pods;
use berth_kube::kinds;
use berth_node::NodeContext;
use berth_objectstore::ObjectStore;
use berth_tests::{bin, require_root, TestRoot};
use serde_json::{json, Value};

struct Node {
    root: TestRoot,
    rt: tokio::runtime::Runtime,
    store: Option<ObjectStore>,
    stop: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl Node {
    fn new() -> Self {
        require_root();
        let root = TestRoot::with_busybox();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut node = Node {
            root,
            rt,
            store: None,
            stop: None,
        };
        node.start();
        node
    }

    fn containers(&self) -> Containers {
        let net = self.root.private_network().unwrap();
        Containers::new(self.root.store()).with_settings(
            Settings::new(
                &net.bridge(),
                &net.subnet(),
                &net.table(),
                &net.cgroup_parent(),
            )
            .unwrap(),
        )
    }

    /// Opens the store and starts the pod controller.
    fn start(&mut self) {
        std::env::set_var("BERTH_RESTART_BACKOFF_MS", "300");
        let store = ObjectStore::open(
            &self.root.store().join("daemon/store"),
            berth_node::allocators(),
        )
        .unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let ctx = NodeContext {
            containers: self.containers(),
            berth_exe: bin("berth"),
        };
        let task = {
            let _guard = self.rt.enter();
            self.rt
                .spawn(berth_node::worker::controller(ctx).start(store.clone(), rx))
        };
        self.store = Some(store);
        self.stop = Some((tx, task));
    }

    /// Stops the controller (what it started keeps running) and closes the store.
    fn stop(&mut self) {
        if let Some((tx, task)) = self.stop.take() {
            let _ = tx.send(true);
            let _ = self.rt.block_on(task);
        }
        self.store = None;
    }

    fn store(&self) -> &ObjectStore {
        self.store.as_ref().unwrap()
    }

    fn pod(&self, name: &str) -> Value {
        self.store()
            .get(&kinds::POD, "default", name)
            .unwrap_or(Value::Null)
    }

    fn berth_pods(&self) -> Vec<berth_engine::pod::PodReport> {
        Pods::new(self.containers()).list().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(store) = &self.store {
                let pods = store.list(&kinds::POD, None, &Default::default()).items;
                eprintln!(
                    "pods: {}",
                    serde_json::to_string_pretty(&pods).unwrap_or_default()
                );
            }
        }
        self.stop();
        let pods = Pods::new(self.containers());
        for r in pods.list().unwrap_or_default() {
            let _ = pods.remove(&r.record, true);
        }
    }
}

fn wait<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "2", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

const SERVE: &str = "mkdir -p /www; echo \"Hello World! from $(hostname)\" > /www/index.html; trap 'exit 0' TERM; httpd -f -p 8000 -h /www & wait";

fn web_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "web", "image": "busybox", "command": ["sh", "-c", SERVE]}]
        }
    })
}

#[test]
fn pods_run_crash_restart_and_are_adopted_after_a_controller_restart() {
    let mut node = Node::new();
    node.store().create(&kinds::POD, web_pod("web")).unwrap();
    node.store()
        .create(
            &kinds::POD,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "crash", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                          "command": ["sh", "-c", "echo started; exit 2"]}]}
            }),
        )
        .unwrap();
    let web = wait(60, "web to be ready", || {
        Some(node.pod("web")).filter(ready)
    });
    let status = &web["status"];
    assert_eq!(status["phase"], "Running", "{status}");
    assert!(
        web["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "{web}"
    );
    let ip = status["podIP"].as_str().unwrap().to_string();
    let body = wait(20, "web to answer", || curl(&format!("http://{ip}:8000/")));
    assert_eq!(body.trim(), "Hello World! from web");
    let web_cid = status["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .to_string();

    let crash = wait(60, "crash to restart twice", || {
        let p = node.pod("crash");
        (p["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
            >= 2)
            .then_some(p)
    });
    let cs = &crash["status"]["containerStatuses"][0];
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 2, "{cs}");
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error", "{cs}");
    assert_eq!(
        crash["status"]["phase"], "Running",
        "Always keeps a crashing pod Running"
    );
    wait(30, "CrashLoopBackOff", || {
        let p = node.pod("crash");
        (p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff")
            .then_some(())
    });

    // Restart the controller; meanwhile delete the crashing Pod.
    node.stop();
    let store = ObjectStore::open(&node.root.store().join("daemon/store"), Vec::new()).unwrap();
    store
        .delete(
            &kinds::POD,
            "default",
            "crash",
            Default::default(),
            Default::default(),
        )
        .unwrap();
    drop(store);
    node.start();
    wait(30, "the crash pod's berth pod to be removed", || {
        let pods = node.berth_pods();
        (pods.len() == 1
            && pods[0]
                .record
                .labels
                .get("io.kubernetes.pod.name")
                .map(String::as_str)
                == Some("web"))
        .then_some(())
    });
    let web = wait(30, "web ready again", || {
        Some(node.pod("web")).filter(ready)
    });
    assert_eq!(
        web["status"]["containerStatuses"][0]["containerID"], web_cid,
        "the running container was adopted, not replaced"
    );
    assert_eq!(web["status"]["containerStatuses"][0]["restartCount"], 0);
    assert_eq!(
        curl(&format!("http://{ip}:8000/")).unwrap().trim(),
        "Hello World! from web"
    );
}

#[test]
fn a_config_map_volume_follows_the_object() {
    let node = Node::new();
    let cm = |v: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "site", "namespace": "default"},
               "data": {"index.html": v}})
    };
    node.store().create(&kinds::CONFIG_MAP, cm("one")).unwrap();
    node.store()
        .create(
            &kinds::POD,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "site", "namespace": "default"},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "web", "image": "busybox",
                        "command": ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8000 -h /www & wait"],
                        "volumeMounts": [{"name": "site", "mountPath": "/www"}]}],
                    "volumes": [{"name": "site", "configMap": {"name": "site"}}]
                }
            }),
        )
        .unwrap();
    let pod = wait(60, "site ready", || Some(node.pod("site")).filter(ready));
    let ip = pod["status"]["podIP"].as_str().unwrap().to_string();
    let url = format!("http://{ip}:8000/index.html");
    assert_eq!(wait(20, "the page", || curl(&url)), "one");
    let mut stored = node
        .store()
        .get(&kinds::CONFIG_MAP, "default", "site")
        .unwrap();
    stored["data"]["index.html"] = json!("two");
    node.store().update(&kinds::CONFIG_MAP, stored).unwrap();
    wait(20, "the new page", || {
        (curl(&url).as_deref() == Some("two")).then_some(())
    });
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let dir: PathBuf = node.root.store().join("daemon/pods").join(&uid);
    assert!(dir
        .join("volumes/kubernetes.io~configmap/site/..data")
        .exists());
    node.store()
        .delete(
            &kinds::POD,
            "default",
            "site",
            Default::default(),
            Default::default(),
        )
        .unwrap();
    wait(30, "the pod and its volumes to go", || {
        (node.berth_pods().is_empty() && !dir.exists()).then_some(())
    });
}

#[test]
fn liveness_failures_restart_and_readiness_gates_ready() {
    let node = Node::new();
    let state = node.root.path("state");
    std::fs::create_dir_all(&state).unwrap();
    let probe = |path: &str| json!({"httpGet": {"path": path, "port": 8000}, "periodSeconds": 1, "failureThreshold": 1});
    let mut pod = web_pod("probed");
    // A second before the first liveness check: with none, a probe sent as the container
    // starts can beat its httpd (and its TERM trap) and restart it, as a kubelet would.
    pod["spec"]["containers"][0]["livenessProbe"] = probe("/index.html");
    pod["spec"]["containers"][0]["livenessProbe"]["initialDelaySeconds"] = json!(1);
    pod["spec"]["containers"][0]["readinessProbe"] = probe("/state/ready");
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "state", "mountPath": "/www/state"}]);
    pod["spec"]["volumes"] = json!([{"name": "state", "hostPath": {"path": state.to_str().unwrap(), "type": "Directory"}}]);
    let mut dead = web_pod("dead");
    dead["spec"]["containers"][0]["livenessProbe"] = probe("/healthz");
    node.store().create(&kinds::POD, pod).unwrap();
    node.store().create(&kinds::POD, dead).unwrap();

    let running = wait(60, "probed running", || {
        let p = node.pod("probed");
        (p["status"]["containerStatuses"][0]["state"]["running"].is_object()).then_some(p)
    });
    std::thread::sleep(Duration::from_secs(2));
    let p = node.pod("probed");
    assert!(
        !ready(&p),
        "ready without its readiness file: {}",
        p["status"]
    );
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], false);
    std::fs::write(state.join("ready"), "ok").unwrap();
    wait(20, "probed ready", || {
        Some(node.pod("probed")).filter(ready)
    });
    std::fs::remove_file(state.join("ready")).unwrap();
    wait(20, "probed unready again", || {
        Some(node.pod("probed")).filter(|p| !ready(p))
    });
    let p = node.pod("probed");
    assert_eq!(p["status"]["phase"], "Running");
    assert_eq!(
        p["status"]["containerStatuses"][0]["containerID"],
        running["status"]["containerStatuses"][0]["containerID"],
        "readiness never restarts"
    );

    let d = wait(60, "dead restarted twice", || {
        let p = node.pod("dead");
        (p["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
            >= 2)
            .then_some(p)
    });
    let last = &d["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert!(
        last["exitCode"].is_i64() && last["finishedAt"].is_string(),
        "{last}"
    );
}

#[test]
fn a_missing_image_that_cannot_be_pulled_backs_off_with_the_pull_error() {
    let node = Node::new();
    let mut pod = web_pod("nopull");
    pod["spec"]["containers"][0]["image"] = json!("example.invalid/nosuch:1");
    node.store().create(&kinds::POD, pod).unwrap();
    let w = wait(30, "ImagePullBackOff", || {
        let p = node.pod("nopull");
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "ImagePullBackOff").then_some(w)
    });
    let message = w["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("Back-off pulling image \"example.invalid/nosuch:1\"")
            && message.contains("failed to pull image"),
        "{w}"
    );
    let p = node.pod("nopull");
    assert_eq!(p["status"]["phase"], "Pending", "{}", p["status"]);
    assert_eq!(
        node.berth_pods()[0].containers.len(),
        0,
        "no container was made"
    );
}

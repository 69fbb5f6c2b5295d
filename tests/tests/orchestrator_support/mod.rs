//! Shared by the orchestrator tests: a `berth daemon` on its own store root and private
//! network, with busybox imported and the hello images built (`kubetm/hello:v1`/`latest`
//! answer "Hello World! from HOSTNAME" on port 8000, `:v2` "Hello World v2! from HOSTNAME"),
//! plus helpers to apply manifests, read objects, wait and fetch URLs. On drop the daemon is
//! killed and every berth pod it made is removed before the private network goes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{require_command, require_root, run_ok, TestRoot};
use serde_json::Value;

/// The hello app: writes its greeting (with the pod's hostname) and serves it with busybox
/// httpd; exits at once on SIGTERM.
const HELLO_DOCKERFILE: &str = r#"FROM busybox
ARG GREETING="Hello World!"
ENV GREETING=$GREETING
RUN mkdir -p /www
EXPOSE 8000
CMD ["sh", "-c", "echo \"$GREETING from $(hostname)\" > /www/index.html; trap 'exit 0' TERM; httpd -f -p 8000 -h /www & wait"]
"#;

pub struct Cluster {
    pub root: TestRoot,
    daemon: Option<Child>,
    pub port: u16,
    cache_dir: tempfile::TempDir,
    log: PathBuf,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `f` every 200 ms until it gives `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `curl` of `url` (2 s limit): the body, or `None` on any failure.
pub fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "2", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Cluster {
    /// Imports busybox, builds the hello images and starts the daemon.
    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// Imports busybox and starts the daemon, without the hello images.
    pub fn start_busybox_only() -> Self {
        Self::start_with(false)
    }

    fn start_with(hello: bool) -> Self {
        require_root();
        require_command("curl", "curl");
        let root = TestRoot::with_busybox();
        if hello {
            build_hello(&root);
        }
        let mut cluster = Cluster {
            log: root.path("daemon.log"),
            root,
            daemon: None,
            port: free_port(),
            cache_dir: tempfile::tempdir().unwrap(),
        };
        cluster.start_daemon();
        cluster
    }

    /// Starts (again) `berth daemon` on this cluster's port and waits until it answers.
    pub fn start_daemon(&mut self) {
        assert!(self.daemon.is_none(), "the daemon already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self
            .root
            .berth()
            .args(["daemon", "--listen", &format!("127.0.0.1:{}", self.port)])
            .env("BERTH_LOG", "info")
            .env("BERTH_RESTART_BACKOFF_MS", "500")
            .env("BERTH_SERVICE_CIDR", self.service_cidr())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start berth daemon");
        self.daemon = Some(child);
        wait_for(Duration::from_secs(30), "the daemon to answer", || {
            if let Some(Ok(Some(status))) = self.daemon.as_mut().map(Child::try_wait) {
                panic!("berth daemon exited with {status}:\n{}", self.daemon_log());
            }
            let answered = self.kubeconfig().exists()
                && self
                    .berth()
                    .args(["get", "pods"])
                    .output()
                    .is_ok_and(|o| o.status.success());
            answered.then_some(())
        });
    }

    /// This test's own service range (10.97.k.0/24 beside its pod subnet 10.88.k.0/24), so
    /// cluster IPs of tests running side by side never meet.
    pub fn service_cidr(&self) -> String {
        let net = self.root.private_network().expect("a private network");
        net.subnet().replacen("10.88.", "10.97.", 1)
    }

    /// `kill -9` of the daemon (its containers' monitors live on).
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.root.store().join("daemon/kubeconfig")
    }

    /// A `berth` command for this cluster's store (the client commands reach the daemon
    /// over its unix socket under the store).
    pub fn berth(&self) -> Command {
        self.root.berth()
    }

    /// The installed kubectl pointed at the daemon, with a cache dir of its own.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(require_command("kubectl", "kubectl"));
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.cache_dir.path());
        cmd
    }

    /// Writes `yaml` to a file named `name` and returns its path.
    pub fn manifest(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.root.path(name);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// `berth apply -f` of `yaml` (as file `name`); must succeed.
    pub fn apply(&self, name: &str, yaml: &str) -> String {
        let path = self.manifest(name, yaml);
        stdout(&run_ok(self.berth().arg("apply").arg("-f").arg(&path)))
    }

    /// `berth get KIND [NAME] -o json`, parsed; `None` when it fails (e.g. not found).
    pub fn get(&self, args: &[&str]) -> Option<Value> {
        let out = self
            .berth()
            .arg("get")
            .args(args)
            .args(["-o", "json"])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The pods in `namespace` matching label selector `selector`.
    pub fn pods(&self, selector: &str) -> Vec<Value> {
        self.get(&["pods", "-l", selector])
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Waits until `n` pods match `selector`, all Ready; returns them.
    pub fn wait_ready(&self, selector: &str, n: usize, timeout: Duration) -> Vec<Value> {
        wait_for(
            timeout,
            &format!("{n} ready pods matching {selector}"),
            || {
                let pods = self.pods(selector);
                (pods.len() == n && pods.iter().all(is_ready)).then_some(pods)
            },
        )
    }

    /// The berth pods in the store (from the library, as the daemon made them).
    pub fn berth_pods(&self) -> Vec<berth_engine::pod::PodReport> {
        berth_engine::pod::Pods::new(berth_engine::container::Containers::new(self.root.store()))
            .list()
            .unwrap_or_default()
    }
}

/// Builds `kubetm/hello:v1`, `:latest` and `:v2` into `root`'s store.
fn build_hello(root: &TestRoot) {
    let ctx = root.path("hello");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), HELLO_DOCKERFILE).unwrap();
    run_ok(
        root.berth()
            .args(["build", "-t", "kubetm/hello:v1"])
            .arg(&ctx),
    );
    run_ok(root.berth().args(["build", "-t", "kubetm/hello"]).arg(&ctx));
    run_ok(
        root.berth()
            .args([
                "build",
                "--build-arg",
                "GREETING=Hello World v2!",
                "-t",
                "kubetm/hello:v2",
            ])
            .arg(&ctx),
    );
}

/// Whether a Pod object has condition Ready True.
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_daemon();
        remove_pods_and_containers(&self.root.store());
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", tail(&self.daemon_log(), 200));
        }
    }
}

/// Removes every berth pod and container in store `store` (a daemon's pod controller makes
/// them and they outlive the daemon by design), with everything they hold on the host, and
/// the Pods' volumes (a Secret volume is a tmpfs mount).
pub fn remove_pods_and_containers(store: &Path) {
    let containers = berth_engine::container::Containers::new(store);
    let pods = berth_engine::pod::Pods::new(containers.clone());
    for report in pods.list().unwrap_or_default() {
        let _ = pods.remove(&report.record, true);
    }
    for (config, _) in containers.list().unwrap_or_default() {
        let _ = berth_engine::container::remove(&containers, &config, true);
    }
    let _ = berth_node::volumes::sweep(store, &Default::default());
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Reads lines of a child's stdout until one satisfies `f` (for `kubectl get --watch`).
pub fn read_until(child: &mut Child, mut f: impl FnMut(&str) -> bool) -> bool {
    let Some(out) = child.stdout.take() else {
        return false;
    };
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { return false };
        if f(&line) {
            return true;
        }
    }
    false
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

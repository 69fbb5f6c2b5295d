//! Shared by the `berth run` tests: a store with busybox imported and its own private
//! network settings, removing the pods and containers a test names when it ends.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_tests::{require_root, run_ok, TestRoot};

/// A store with busybox imported, removing the pods and containers it names on drop.
pub struct Fixture {
    pub root: TestRoot,
    names: Vec<String>,
    pods: Vec<String>,
}

impl Fixture {
    pub fn new() -> Self {
        require_root();
        let root = TestRoot::with_busybox();
        Fixture {
            root,
            names: Vec::new(),
            pods: Vec::new(),
        }
    }

    pub fn berth(&self) -> Command {
        self.root.berth()
    }

    /// Remembers `name` for removal on drop and returns it.
    pub fn name(&mut self, name: &str) -> String {
        self.names.push(name.to_string());
        name.to_string()
    }

    /// Remembers pod `name` for removal (`pod rm -f`, with its containers) on drop and
    /// returns it.
    pub fn pod(&mut self, name: &str) -> String {
        self.pods.push(name.to_string());
        name.to_string()
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.store().join("containers")
    }

    pub fn container_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.containers_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn ps(&self, all: bool) -> String {
        let mut cmd = self.berth();
        cmd.arg("ps");
        if all {
            cmd.arg("-a");
        }
        stdout(&run_ok(&mut cmd))
    }

    /// This test's nft table, listed.
    pub fn nft_table(&self) -> String {
        let net = self.root.private_network().expect("a private network");
        let out = Command::new("nft")
            .args(["list", "table", "ip", &net.table()])
            .output()
            .unwrap();
        stdout(&out)
    }

    /// What container `id` left on the host ([`host_leftovers`]) and nft rules tagged with
    /// its id in this test's table.
    pub fn leftovers_of(&self, id: &str) -> Vec<String> {
        let net = self.root.private_network().expect("a private network");
        let mut left = host_leftovers(id, &self.root.store(), &net.cgroup_parent());
        if self.nft_table().contains(id) {
            left.push(format!("nft rules tagged {id}"));
        }
        left
    }

    pub fn container_count(&self) -> usize {
        std::fs::read_dir(self.root.store().join("containers"))
            .map(|rd| rd.count())
            .unwrap_or(0)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for pod in &self.pods {
            let _ = self.root.berth().args(["pod", "rm", "-f", pod]).output();
        }
        for name in &self.names {
            let _ = self.root.berth().args(["rm", "-f", name]).output();
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether anything of container `id` is left on the host: mounts, cgroups, veth, netns.
fn host_leftovers(id: &str, store: &Path, cgroup_parent: &str) -> Vec<String> {
    let mut left = Vec::new();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mountinfo.lines() {
        if line.contains(id) || line.contains(&*store.to_string_lossy()) {
            left.push(format!("mount: {line}"));
        }
    }
    for controller in [
        "pids",
        "memory",
        "cpu,cpuacct",
        "devices",
        "freezer",
        "unified",
    ] {
        let p = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(cgroup_parent)
            .join(id);
        if p.exists() {
            left.push(format!("cgroup {}", p.display()));
        }
    }
    let veth = format!("bv{}", &id[..12]);
    if Path::new("/sys/class/net").join(&veth).exists() {
        left.push(format!("veth {veth}"));
    }
    let ns = Path::new("/run/berth/netns").join(id);
    if ns.exists() {
        left.push(format!("netns {}", ns.display()));
    }
    left
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Fixture {
    /// Container `id`'s state record (`state.json`).
    pub fn state(&self, id: &str) -> serde_json::Value {
        let path = self.containers_dir().join(id).join("state.json");
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }
}

/// The body `curl` gets from `url`, if it answers with success within 2 seconds.
pub fn http_get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-f", "-m", "2", url])
        .output()
        .unwrap();
    out.status.success().then(|| stdout(&out))
}

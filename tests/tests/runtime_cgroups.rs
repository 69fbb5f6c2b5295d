//! cgroups on the real host (cgroup v1 here): the runtime library's `Cgroup`
//! driven directly against processes the test starts, then (further down)
//! through `berth-runtime run`. Every cgroup made is named `berth-test-*` and
//! removed by a guard, even when an assertion fails.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_runtime::cgroups::{Cgroup, CgroupError, CgroupVersion, FreezerState};
use berth_tests::require_root;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

const ROOT: &str = "/sys/fs/cgroup";

/// Kills the processes and removes the cgroup when the test ends.
struct Guard {
    cgroup: Cgroup,
    children: Vec<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.cgroup.state().ok() == Some(FreezerState::Frozen) {
            let _ = self.cgroup.thaw();
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in self.cgroup.pids().unwrap_or_default() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.cgroup.remove();
    }
}

fn test_name(what: &str) -> String {
    format!("berth-test-{what}-{}", std::process::id())
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources JSON")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn v1(controller: &str, name: &str) -> PathBuf {
    Path::new(ROOT).join(controller).join(name)
}

#[test]
fn v1_limits_freeze_stats_and_remove_on_a_sleeping_process() {
    require_root();
    let name = test_name("lib");
    let cgroup = Cgroup::open(Some(&format!("/{name}")), &name).expect("open cgroup");
    assert_eq!(
        cgroup.version(),
        CgroupVersion::V1,
        "this host is cgroup v1"
    );
    let child = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let pid = Pid::from_raw(child.id() as i32);
    let mut guard = Guard {
        cgroup: cgroup.clone(),
        children: vec![child],
    };

    let res = resources(
        r#"{"memory": {"limit": 33554432, "reservation": 16777216},
            "pids": {"limit": 16},
            "cpu": {"shares": 256, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
            "devices": [{"allow": false, "access": "rwm"}]}"#,
    );
    cgroup
        .create_and_apply(pid, Some(&res))
        .expect("create and apply");

    assert_eq!(
        read(&v1("memory", &name).join("memory.limit_in_bytes")),
        "33554432"
    );
    assert_eq!(
        read(&v1("memory", &name).join("memory.soft_limit_in_bytes")),
        "16777216"
    );
    assert_eq!(read(&v1("pids", &name).join("pids.max")), "16");
    assert_eq!(read(&v1("cpu", &name).join("cpu.shares")), "256");
    assert_eq!(read(&v1("cpu", &name).join("cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&v1("cpu", &name).join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&v1("cpuset", &name).join("cpuset.cpus")), "0");
    assert_eq!(read(&v1("cpuset", &name).join("cpuset.mems")), "0");
    // Deny-all from the spec, then runc's default allow list: /dev/null is in, block devices are not.
    let devices = read(&v1("devices", &name).join("devices.list"));
    assert!(devices.contains("c 1:3 rwm"), "devices.list:\n{devices}");
    assert!(!devices.contains("a *:* rwm"), "devices.list:\n{devices}");

    let proc_cgroup = read(Path::new(&format!("/proc/{pid}/cgroup")));
    for ctrl in [
        "memory", "pids", "cpu", "cpuset", "freezer", "devices", "blkio",
    ] {
        let want = format!(":{ctrl}:/{name}");
        assert!(
            proc_cgroup.lines().any(|l| l.ends_with(&want)),
            "{ctrl} missing from /proc/{pid}/cgroup:\n{proc_cgroup}"
        );
    }
    assert_eq!(cgroup.pids().expect("pids"), vec![pid]);

    // Reopening by path alone finds the same cgroup (as `pause` or `delete` would).
    let reopened = Cgroup::open(Some(&format!("/{name}")), "other-id").expect("reopen");
    assert_eq!(reopened.pids().expect("pids"), vec![pid]);

    cgroup.freeze().expect("freeze");
    assert_eq!(cgroup.state().expect("state"), FreezerState::Frozen);
    assert_eq!(read(&v1("freezer", &name).join("freezer.state")), "FROZEN");
    cgroup.thaw().expect("thaw");
    assert_eq!(cgroup.state().expect("state"), FreezerState::Thawed);

    cgroup
        .update(&resources(
            r#"{"memory": {"limit": 67108864}, "pids": {"limit": 32}}"#,
        ))
        .expect("update");
    assert_eq!(
        read(&v1("memory", &name).join("memory.limit_in_bytes")),
        "67108864"
    );

    let stats = cgroup.stats().expect("stats");
    assert_eq!(stats.memory.memory.limit, 67108864);
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, 32);
    let json = serde_json::to_value(&stats).expect("stats serialise");
    assert!(json.get("memory").is_some(), "{json}");

    // A cgroup with a live process cannot be removed.
    assert!(matches!(cgroup.remove(), Err(CgroupError::Busy { .. })));
    for c in &mut guard.children {
        c.kill().expect("kill sleep");
        c.wait().expect("wait sleep");
    }
    guard.children.clear();
    cgroup.remove().expect("remove");
    for ctrl in [
        "memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "devices", "blkio",
    ] {
        assert!(!v1(ctrl, &name).exists(), "{ctrl} cgroup left behind");
    }
}

#[test]
fn v2_code_path_on_the_hosts_unified_hierarchy() {
    // This host's hybrid v2 mount carries no resource controllers, but the v2
    // core (cgroup.procs, cgroup.freeze, cgroup.events, cpu.stat) is all there.
    require_root();
    let unified = Path::new(ROOT).join("unified");
    let name = test_name("v2");
    let cgroup = Cgroup::open_in(&unified, Some(&format!("/{name}")), &name).expect("open");
    assert_eq!(cgroup.version(), CgroupVersion::V2);
    let child = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let pid = Pid::from_raw(child.id() as i32);
    let mut guard = Guard {
        cgroup: cgroup.clone(),
        children: vec![child],
    };
    cgroup
        .create_and_apply(pid, None)
        .expect("create and apply");
    let dir = unified.join(&name);
    assert_eq!(read(&dir.join("cgroup.procs")), pid.to_string());
    let proc_cgroup = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert!(
        proc_cgroup.lines().any(|l| l == format!("0::/{name}")),
        "{proc_cgroup}"
    );
    assert_eq!(cgroup.pids().expect("pids"), vec![pid]);

    cgroup.freeze().expect("freeze");
    assert_eq!(cgroup.state().expect("state"), FreezerState::Frozen);
    assert!(read(&dir.join("cgroup.events")).contains("frozen 1"));
    cgroup.thaw().expect("thaw");
    assert_eq!(cgroup.state().expect("state"), FreezerState::Thawed);
    assert!(read(&dir.join("cgroup.events")).contains("frozen 0"));

    let stats = cgroup.stats().expect("stats");
    assert!(serde_json::to_value(&stats).is_ok());
    assert!(matches!(cgroup.remove(), Err(CgroupError::Busy { .. })));
    for c in &mut guard.children {
        c.kill().expect("kill sleep");
        c.wait().expect("wait sleep");
    }
    guard.children.clear();
    cgroup.remove().expect("remove");
    assert!(!dir.exists());
}

/// Starts `sh -c SCRIPT` blocked on a line of stdin, moves it into the cgroup,
/// then lets it run, so the script runs entirely under the limits.
fn run_confined(cgroup: &Cgroup, res: &LinuxResources, script: &str) -> std::process::Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let pid = Pid::from_raw(child.id() as i32);
    if let Err(e) = cgroup.create_and_apply(pid, Some(res)) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("create and apply: {e}");
    }
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("release the script");
    drop(stdin);
    child.wait_with_output().expect("wait sh")
}

#[test]
fn v1_memory_limit_oom_kills_the_hog() {
    require_root();
    let name = test_name("oom-lib");
    let cgroup = Cgroup::open(Some(&name), &name).expect("open cgroup");
    let _guard = Guard {
        cgroup: cgroup.clone(),
        children: Vec::new(),
    };
    let res = resources(r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#);
    // tail -n 1 keeps the whole newline-free stream in memory: 128 MiB against a 32 MiB limit.
    let out = run_confined(
        &cgroup,
        &res,
        "head -c 134217728 /dev/zero | tail -n 1 >/dev/null; echo status=$?",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("status=137"),
        "tail was not OOM-killed: {stdout}"
    );
    let oom = read(&v1("memory", &name).join("memory.oom_control"));
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.parse().ok())
        .expect("oom_kill in memory.oom_control");
    assert!(kills >= 1, "memory.oom_control:\n{oom}");
    let stats = cgroup.stats().expect("stats");
    assert_eq!(
        stats.memory.memory.max_usage, 33554432,
        "{:?}",
        stats.memory
    );
    assert!(stats.memory.stats.get("oom_kill").copied().unwrap_or(0) >= 1);
}

#[test]
fn v1_pids_limit_bounds_forks() {
    require_root();
    let name = test_name("pids-lib");
    let cgroup = Cgroup::open(Some(&name), &name).expect("open cgroup");
    let _guard = Guard {
        cgroup: cgroup.clone(),
        children: Vec::new(),
    };
    let res = resources(r#"{"pids": {"limit": 8}}"#);
    // Try to start 20 background sleepers: forks beyond the limit fail (EAGAIN),
    // and the shell itself counts as one of the 8.
    let out = run_confined(
        &cgroup,
        &res,
        "n=0; i=0; while [ $i -lt 20 ]; do sleep 3 >/dev/null 2>&1 & p=$!; [ -n \"$p\" ] && kids=\"$kids $p\"; i=$((i+1)); done; \
         kill $kids 2>/dev/null; wait; exit 0",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events = read(&v1("pids", &name).join("pids.events"));
    let max_hits: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|n| n.trim().parse().ok())
        .expect("max in pids.events");
    assert!(
        max_hits > 0,
        "no fork hit the limit: pids.events {events}, stderr {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("fork"),
        "the shell did not report a failed fork: {stderr}"
    );
}

// ---------------------------------------------------------------------------
// Through `berth-runtime`: the same limits seen on containers it runs.
// ---------------------------------------------------------------------------

/// A bundle (busybox rootfs + config.json), a state dir and a container id;
/// on drop the container is force-deleted and its cgroup removed.
struct Container {
    dir: tempfile::TempDir,
    id: String,
    cgroups_path: String,
}

impl Container {
    /// A bundle running `args` with `resources`, otherwise `runc spec`'s defaults.
    fn new(what: &str, args: &[&str], resources: serde_json::Value) -> Self {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-test-cg-")
            .tempdir()
            .expect("tempdir");
        let rootfs = dir.path().join("bundle/rootfs");
        fs::create_dir_all(&rootfs).expect("mkdir rootfs");
        let tar = fs::File::open(berth_tests::busybox_rootfs_tar()).expect("open busybox tar");
        tar::Archive::new(tar)
            .unpack(&rootfs)
            .expect("unpack busybox");
        let id = test_name(what);
        let cgroups_path = format!("/{id}");
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "cwd": "/",
                "capabilities": {
                    "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "berth-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "linux": {
                "cgroupsPath": cgroups_path,
                "resources": resources,
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                               {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
                "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        fs::write(
            dir.path().join("bundle/config.json"),
            serde_json::to_vec_pretty(&config).expect("config JSON"),
        )
        .expect("write config.json");
        fs::create_dir_all(dir.path().join("state")).expect("mkdir state");
        Container {
            dir,
            id,
            cgroups_path,
        }
    }

    /// `berth-runtime --root STATE ARGS...`
    fn runtime(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(berth_tests::runtime_under_test());
        cmd.arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args);
        cmd
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    /// `run --bundle B ID` in the foreground, returning its output.
    fn run(&self) -> std::process::Output {
        let bundle = self.bundle();
        self.runtime(&[
            "run",
            "--bundle",
            bundle.to_str().expect("utf-8 path"),
            &self.id,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run berth-runtime")
    }

    /// `create` then `start`: the container runs detached. Its stdio goes to
    /// files: a pipe would stay open as long as the container runs.
    fn create_and_start(&self) {
        let bundle = self.bundle();
        let log = self.dir.path().join("create.log");
        let status = self
            .runtime(&[
                "create",
                "--bundle",
                bundle.to_str().expect("utf-8 path"),
                &self.id,
            ])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).expect("create log"))
            .stderr(
                fs::File::options()
                    .append(true)
                    .open(&log)
                    .expect("open log"),
            )
            .status()
            .expect("run berth-runtime create");
        assert!(
            status.success(),
            "create failed ({status}): {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        berth_tests::run_ok(&mut self.runtime(&["start", &self.id]));
    }

    /// The container's OCI state JSON.
    fn state(&self) -> serde_json::Value {
        let out = berth_tests::run_ok(&mut self.runtime(&["state", &self.id]));
        serde_json::from_slice(&out.stdout).expect("state JSON")
    }

    fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits up to 10 s for the container to stop.
    fn wait_stopped(&self) {
        for _ in 0..200 {
            if self.status() == "stopped" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("container {} did not stop", self.id);
    }

    /// The host path of a control file of the container's v1 cgroup.
    fn cgroup_file(&self, controller: &str, file: &str) -> PathBuf {
        v1(controller, &self.id).join(file)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self
            .runtime(&["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Ok(cgroup) = Cgroup::open(Some(&self.cgroups_path), &self.id) {
            let _ = cgroup.thaw();
            for pid in cgroup.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = cgroup.remove();
        }
    }
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn container_over_its_memory_limit_is_oom_killed() {
    // dd allocates and fills a 128 MiB buffer: far over the 32 MiB limit (swap included).
    let hog = ["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"];
    let limits = serde_json::json!({"memory": {"limit": 33554432, "swap": 33554432}});

    let c = Container::new("oom-run", &hog, limits.clone());
    let out = c.run();
    assert_eq!(out.status.code(), Some(137), "run: {}", output_text(&out));

    // Detached, the cgroup outlives the process until delete: the kernel's count shows the kill.
    let c = Container::new("oom-ctr", &hog, limits);
    c.create_and_start();
    c.wait_stopped();
    let oom = read(&c.cgroup_file("memory", "memory.oom_control"));
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.parse().ok())
        .expect("oom_kill in memory.oom_control");
    assert!(kills >= 1, "memory.oom_control:\n{oom}");
    berth_tests::run_ok(&mut c.runtime(&["delete", &c.id]));
    for ctrl in [
        "memory", "pids", "cpu", "cpuset", "freezer", "devices", "blkio",
    ] {
        assert!(!v1(ctrl, &c.id).exists(), "{ctrl} cgroup left after delete");
    }
}

#[test]
fn container_pids_limit_bounds_a_fork_loop() {
    let script = "i=0; while [ $i -lt 40 ]; do sleep 10 & i=$((i+1)); done; kill -9 -1; exit 0";
    let c = Container::new(
        "pids-run",
        &["sh", "-c", script],
        serde_json::json!({"pids": {"limit": 10}}),
    );
    let out = c.run();
    let text = output_text(&out);
    assert!(
        text.contains("Resource temporarily unavailable") || text.contains("can't fork"),
        "no fork failed under pids.max=10: {text}"
    );

    // The same loop without a limit starts every sleeper.
    let free = Container::new("pids-free", &["sh", "-c", script], serde_json::json!({}));
    let out = free.run();
    let text = output_text(&out);
    assert!(
        !text.contains("Resource temporarily unavailable") && !text.contains("can't fork"),
        "forks failed without a limit: {text}"
    );
}

#[test]
fn container_cgroup_values_update_stats_pause_resume_and_delete() {
    let c = Container::new(
        "values",
        &["sleep", "60"],
        serde_json::json!({
            "memory": {"limit": 33554432, "reservation": 16777216},
            "cpu": {"shares": 512, "quota": 25000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 20},
            "blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}]},
            "devices": [{"allow": false, "access": "rwm"}]
        }),
    );
    c.create_and_start();
    assert_eq!(c.status(), "running");
    let pid = c.state()["pid"].as_i64().expect("pid in state");
    let proc_cgroup = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert!(
        proc_cgroup.contains(&format!(":memory:{}", c.cgroups_path)),
        "{proc_cgroup}"
    );

    assert_eq!(
        read(&c.cgroup_file("memory", "memory.limit_in_bytes")),
        "33554432"
    );
    assert_eq!(
        read(&c.cgroup_file("memory", "memory.soft_limit_in_bytes")),
        "16777216"
    );
    assert_eq!(read(&c.cgroup_file("cpu", "cpu.shares")), "512");
    assert_eq!(read(&c.cgroup_file("cpu", "cpu.cfs_quota_us")), "25000");
    assert_eq!(read(&c.cgroup_file("cpu", "cpu.cfs_period_us")), "100000");
    assert_eq!(read(&c.cgroup_file("cpuset", "cpuset.cpus")), "0");
    assert_eq!(read(&c.cgroup_file("pids", "pids.max")), "20");
    assert_eq!(
        read(&c.cgroup_file("blkio", "blkio.throttle.read_bps_device")),
        "254:0 1048576"
    );
    let devices = read(&c.cgroup_file("devices", "devices.list"));
    assert!(!devices.contains("a *:* rwm"), "devices.list:\n{devices}");
    assert!(devices.contains("c 1:3 rwm"), "devices.list:\n{devices}");

    // update: new limits on the running container.
    berth_tests::run_ok(&mut c.runtime(&[
        "update",
        "--memory",
        "67108864",
        "--pids-limit",
        "30",
        "--cpu-quota",
        "50000",
        &c.id,
    ]));
    assert_eq!(
        read(&c.cgroup_file("memory", "memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(&c.cgroup_file("pids", "pids.max")), "30");
    assert_eq!(read(&c.cgroup_file("cpu", "cpu.cfs_quota_us")), "50000");
    // update from a resources file (-r), as containerd and podman do.
    let res_file = c.dir.path().join("resources.json");
    fs::write(&res_file, r#"{"memory": {"limit": 50331648}}"#).expect("write resources");
    berth_tests::run_ok(&mut c.runtime(&[
        "update",
        "-r",
        res_file.to_str().expect("utf-8 path"),
        &c.id,
    ]));
    assert_eq!(
        read(&c.cgroup_file("memory", "memory.limit_in_bytes")),
        "50331648"
    );

    // events --stats: one JSON object with the container's usage and limits.
    let out = berth_tests::run_ok(&mut c.runtime(&["events", "--stats", &c.id]));
    let event: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("events --stats JSON: {e}: {}", output_text(&out)));
    assert_eq!(event["type"], "stats", "{event}");
    assert_eq!(event["id"], c.id.as_str(), "{event}");
    let data = &event["data"];
    assert_eq!(data["pids"]["current"], 1, "{event}");
    assert_eq!(data["pids"]["limit"], 30, "{event}");
    let mem_limit = data["memory"]["usage"]["limit"]
        .as_u64()
        .or_else(|| data["memory"]["memory"]["limit"].as_u64());
    assert_eq!(mem_limit, Some(50331648), "{event}");

    // A process started by exec joins the container's cgroup (and its limits).
    let out = berth_tests::run_ok(
        c.runtime(&["exec", &c.id, "cat", "/proc/self/cgroup"])
            .stdin(Stdio::null()),
    );
    let exec_cgroup = String::from_utf8_lossy(&out.stdout);
    for ctrl in ["memory", "pids", "cpu", "freezer"] {
        let want = format!(":{ctrl}:{}", c.cgroups_path);
        assert!(
            exec_cgroup.lines().any(|l| l.ends_with(&want)),
            "exec'd process outside the {ctrl} cgroup:\n{exec_cgroup}"
        );
    }

    // pause / resume through the freezer.
    berth_tests::run_ok(&mut c.runtime(&["pause", &c.id]));
    assert_eq!(c.status(), "paused");
    assert_eq!(read(&c.cgroup_file("freezer", "freezer.state")), "FROZEN");
    berth_tests::run_ok(&mut c.runtime(&["resume", &c.id]));
    assert_eq!(c.status(), "running");
    assert_eq!(read(&c.cgroup_file("freezer", "freezer.state")), "THAWED");

    // delete --force kills the process and removes the cgroup in every hierarchy.
    berth_tests::run_ok(&mut c.runtime(&["delete", "--force", &c.id]));
    for ctrl in [
        "memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "devices", "blkio",
    ] {
        assert!(!v1(ctrl, &c.id).exists(), "{ctrl} cgroup left after delete");
    }
}

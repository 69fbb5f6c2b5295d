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

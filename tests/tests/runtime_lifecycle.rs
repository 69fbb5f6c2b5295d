//! berth-runtime lifecycle end to end: spec, create/start/state/kill/delete, run
//! with exit codes, what the container sees (namespaces, rootfs, devices,
//! masked and read-only paths), and runc's error messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{bin, busybox_rootfs_tar, require_root, run_ok, TestRoot};
use serde_json::Value;

/// A bundle made from the busybox rootfs and `berth-runtime spec`, with its own
/// state root; every container left in that root is force-deleted on drop.
struct Bundle {
    root: TestRoot,
}

impl Bundle {
    fn new(args: &[&str]) -> Bundle {
        require_root();
        let root = TestRoot::new();
        let dir = root.path("bundle");
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        run_ok(
            Command::new("tar")
                .arg("-xf")
                .arg(busybox_rootfs_tar())
                .arg("-C")
                .arg(dir.join("rootfs")),
        );
        run_ok(
            Command::new(bin("berth-runtime"))
                .args(["spec", "-b"])
                .arg(&dir),
        );
        let b = Bundle { root };
        b.edit(|spec| {
            spec["process"]["terminal"] = false.into();
            spec["process"]["args"] = args.iter().map(|s| Value::from(*s)).collect();
        });
        b
    }

    fn dir(&self) -> PathBuf {
        self.root.path("bundle")
    }

    fn state_root(&self) -> PathBuf {
        self.root.path("state")
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.dir().join("config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut spec);
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    }

    fn runtime(&self) -> Command {
        let mut cmd = Command::new(bin("berth-runtime"));
        cmd.arg("--root").arg(self.state_root());
        cmd
    }

    fn run(&self, id: &str) -> Output {
        self.runtime()
            .args(["run", "--bundle"])
            .arg(self.dir())
            .arg(id)
            .output()
            .unwrap()
    }

    /// Runs a command that leaves a container behind (create, run --detach):
    /// the container inherits stdio, so it gets /dev/null and a file, never a
    /// pipe that would stay open while it runs. Returns success and stderr.
    fn detached(&self, args: &[&str], id: &str) -> (bool, String) {
        let log = self.root.path(&format!("{id}.stderr"));
        let status = self
            .runtime()
            .args(args)
            .arg("--bundle")
            .arg(self.dir())
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .status()
            .unwrap();
        (status.success(), std::fs::read_to_string(&log).unwrap())
    }

    fn create(&self, id: &str) {
        let (ok, err) = self.detached(&["create"], id);
        assert!(ok, "create {id}: {err}");
    }

    fn state(&self, id: &str) -> Value {
        let out = run_ok(self.runtime().args(["state", id]));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let state = self.state(id);
            if state["status"] == want {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never became {want}: {state}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.state_root()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.runtime().args(["delete", "--force", &id]).output();
            }
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn spec_writes_runcs_default_config_and_refuses_to_overwrite() {
    let root = TestRoot::new();
    let dir = root.path("b");
    std::fs::create_dir_all(&dir).unwrap();
    run_ok(
        Command::new(bin("berth-runtime"))
            .args(["spec", "-b"])
            .arg(&dir),
    );
    let spec: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["ociVersion"], "1.0.2-dev");
    assert_eq!(spec["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(spec["hostname"], "runc");
    assert_eq!(spec["root"]["readonly"], true);
    let again = Command::new(bin("berth-runtime"))
        .args(["spec", "-b"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
}

#[test]
fn run_passes_output_and_exit_code_through() {
    let b = Bundle::new(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let out = b.run("exit7");
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert!(stderr(&out).contains("err"));
    // run deletes the container afterwards.
    assert!(!b.state_root().join("exit7").exists());
}

#[test]
fn a_container_killed_by_a_signal_exits_128_plus_the_signal() {
    let b = Bundle::new(&["sh", "-c", "kill -9 $$"]);
    // In its own pid namespace sh would be init, which SIGKILL from inside cannot kill.
    b.edit(|s| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let out = b.run("killed");
    assert_eq!(out.status.code(), Some(137), "stderr: {}", stderr(&out));
}

#[test]
fn create_start_kill_delete_walk_through_the_oci_states() {
    let b = Bundle::new(&["sleep", "300"]);
    let pid_file = b.root.path("pid");
    let (ok, err) = b.detached(
        &["create", "--pid-file", pid_file.to_str().unwrap()],
        "life",
    );
    assert!(ok, "create: {err}");
    let state = b.state("life");
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], "life");
    assert_eq!(state["ociVersion"], "1.0.2-dev");
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0);
    let written: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(written, pid);
    assert_eq!(
        Path::new(state["bundle"].as_str().unwrap()),
        std::fs::canonicalize(b.dir()).unwrap()
    );
    // Before start the init is still the runtime, not sleep.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");

    run_ok(b.runtime().args(["start", "life"]));
    assert_eq!(b.state("life")["status"], "running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .trim()
        != "sleep"
    {
        assert!(Instant::now() < deadline, "process never became sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    let again = b.runtime().args(["start", "life"]).output().unwrap();
    assert!(!again.status.success());
    assert!(stderr(&again).contains("cannot start an already running container"));

    let refused = b.runtime().args(["delete", "life"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("cannot delete container life that is not stopped: running"),
        "{}",
        stderr(&refused)
    );

    run_ok(b.runtime().args(["kill", "life", "KILL"]));
    let state = b.wait_status("life", "stopped");
    assert_eq!(state["pid"], 0);
    run_ok(b.runtime().args(["delete", "life"]));
    let gone = b.runtime().args(["state", "life"]).output().unwrap();
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains("container does not exist"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn delete_force_kills_a_running_container_and_created_ones_can_be_deleted() {
    let b = Bundle::new(&["sleep", "300"]);
    let (ok, err) = b.detached(&["run", "--detach"], "forced");
    assert!(ok, "run --detach: {err}");
    let pid = b.state("forced")["pid"].as_i64().unwrap();
    run_ok(b.runtime().args(["delete", "--force", "forced"]));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "pid {pid} still alive: {stat}"
    );

    b.create("made");
    let pid = b.state("made")["pid"].as_i64().unwrap();
    run_ok(b.runtime().args(["delete", "made"]));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "pid {pid} still alive: {stat}"
    );
    assert!(!b.state_root().join("made").exists());
}

#[test]
fn the_container_sees_its_own_namespaces_rootfs_and_devices() {
    let script = r#"
        echo pid1=$(cat /proc/1/comm)
        echo host=$(hostname)
        echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ,)
        echo lo=$(cat /sys/class/net/lo/operstate)
        echo busybox=$(ls /bin/busybox)
        test -c /dev/null && echo null=char
        test -c /dev/urandom && echo urandom=char
        echo ptmx=$(readlink /dev/ptmx)
        echo fd=$(readlink /dev/fd)
        echo keys=$(wc -c < /proc/keys)
        touch /rootfile 2>/dev/null && echo root=rw || echo root=ro
        (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo procsys=rw || echo procsys=ro
        touch /dev/shm/x && echo shm=rw
        echo ipc=$(readlink /proc/self/ns/ipc)
    "#;
    let b = Bundle::new(&["sh", "-c", script]);
    b.edit(|s| s["hostname"] = "box1".into());
    let out = b.run("inside");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "pid1=sh",
        "host=box1",
        "ifaces=lo,",
        "busybox=/bin/busybox",
        "null=char",
        "urandom=char",
        "ptmx=pts/ptmx",
        "fd=/proc/self/fd",
        "keys=0",
        "root=ro",
        "procsys=ro",
        "shm=rw",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in:\n{text}"
        );
    }
    assert!(
        text.contains("lo=up") || text.contains("lo=unknown"),
        "loopback is down:\n{text}"
    );
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert!(
        !text.contains(&format!("ipc={}", host_ipc.display())),
        "{text}"
    );
}

#[test]
fn runcs_errors_for_bad_ids_taken_ids_missing_containers_and_commands() {
    let b = Bundle::new(&["sleep", "300"]);
    b.create("dup");
    let (ok, err) = b.detached(&["create"], "dup");
    assert!(!ok);
    assert!(err.contains("container with id exists: dup"), "{err}");

    for verb in ["start", "state", "delete", "kill"] {
        let out = b.runtime().args([verb, "nosuch"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{verb}");
        assert!(
            stderr(&out).contains("container does not exist"),
            "{verb}: {}",
            stderr(&out)
        );
    }
    run_ok(b.runtime().args(["delete", "--force", "nosuch"]));

    let bad = b
        .runtime()
        .args(["create", "--bundle"])
        .arg(b.dir())
        .arg("a/b")
        .output()
        .unwrap();
    assert!(
        stderr(&bad).contains("invalid id format"),
        "{}",
        stderr(&bad)
    );

    b.edit(|s| s["process"]["args"] = serde_json::json!(["no-such-program"]));
    let (ok, err) = b.detached(&["create"], "nf");
    assert!(!ok);
    assert!(
        err.contains("\"no-such-program\": executable file not found in $PATH"),
        "{err}"
    );
    assert!(
        !b.state_root().join("nf").exists(),
        "a failed create leaves no state"
    );
}

#[test]
fn features_lists_hooks_and_namespaces() {
    let out = run_ok(Command::new(bin("berth-runtime")).arg("features"));
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "poststop"));
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "user"));
}

#[test]
fn exec_ps_list_pause_resume_on_a_running_container() {
    let b = Bundle::new(&["sleep", "300"]);
    let (ok, err) = b.detached(&["run", "--detach"], "busy");
    assert!(ok, "run --detach: {err}");
    let init = b.state("busy")["pid"].as_i64().unwrap();

    let out = b
        .runtime()
        .args([
            "exec",
            "busy",
            "sh",
            "-c",
            "hostname; cat /proc/1/comm; exit 4",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "exec: {}", stderr(&out));
    assert_eq!(stdout(&out), "runc\nsleep\n");

    let pid_file = b.root.path("exec.pid");
    let status = b
        .runtime()
        .args(["exec", "--detach", "--pid-file"])
        .arg(&pid_file)
        .args(["busy", "sleep", "200"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let exec_pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = run_ok(b.runtime().args(["ps", "--format", "json", "busy"]));
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pids.contains(&init) && pids.contains(&exec_pid), "{pids:?}");

    let out = run_ok(b.runtime().args(["list", "--format", "json"]));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], "busy");
    assert_eq!(list[0]["status"], "running");

    run_ok(b.runtime().args(["pause", "busy"]));
    assert_eq!(b.state("busy")["status"], "paused");
    let refused = b.runtime().args(["exec", "busy", "true"]).output().unwrap();
    assert!(stderr(&refused).contains("cannot exec in a paused container"));
    run_ok(b.runtime().args(["resume", "busy"]));
    assert_eq!(b.state("busy")["status"], "running");
    run_ok(b.runtime().args(["delete", "--force", "busy"]));
    let stat = std::fs::read_to_string(format!("/proc/{exec_pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "exec'd process survived: {stat}"
    );
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let b = Bundle::new(&["true"]);
    let log = b.root.path("hooks.log");
    let hook = |stage: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("read -r s; echo \"{stage} $s\" >> {}", log.display())]
        })
    };
    b.edit(|s| {
        s["hooks"] = serde_json::json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "startContainer": [hook("startContainer")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
        s["process"]["args"] = serde_json::json!(["sleep", "300"]);
    });
    b.create("hooked");
    let pid = b.state("hooked")["pid"].as_i64().unwrap();
    run_ok(b.runtime().args(["start", "hooked"]));
    run_ok(b.runtime().args(["delete", "--force", "hooked"]));
    let text = std::fs::read_to_string(&log).unwrap();
    let stages: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        stages,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{text}"
    );
    for line in text.lines() {
        let (_, json) = line.split_once(' ').unwrap();
        let state: Value = serde_json::from_str(json).unwrap();
        assert_eq!(state["id"], "hooked", "{line}");
        if !line.starts_with("poststop") {
            assert_eq!(state["pid"], pid, "{line}");
        }
    }

    // A failing createRuntime hook fails create and leaves nothing behind.
    b.edit(|s| {
        s["hooks"] = serde_json::json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 2"]}
        ]})
    });
    let (ok, err) = b.detached(&["create"], "badhook");
    assert!(!ok);
    assert!(
        err.contains("createRuntime hook /bin/sh failed") && err.contains("nope"),
        "{err}"
    );
    assert!(!b.state_root().join("badhook").exists());
}

#[test]
fn a_user_namespace_maps_root_to_an_unprivileged_host_id() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; touch /tmp/owned; stat -c %u /tmp/owned",
    ]);
    b.edit(|s| {
        s["root"]["readonly"] = false.into();
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        let map = serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
    });
    let out = b.run("userns");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "{text}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
    assert_eq!(lines[2], "0", "{text}");
    // On the host the file belongs to the mapped id.
    let meta = std::fs::metadata(b.dir().join("rootfs/tmp/owned")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 200000);
}

#[test]
fn a_container_joins_another_containers_namespaces_by_path_and_sets_sysctls() {
    let host = Bundle::new(&["sleep", "300"]);
    host.create("pod-infra");
    let infra = host.state("pod-infra")["pid"].as_i64().unwrap();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "for n in net uts ipc; do readlink /proc/self/ns/$n; done; hostname; \
         cat /proc/sys/net/ipv4/ip_forward",
    ]);
    b.edit(|s| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        for n in ns.iter_mut() {
            let t = n["type"].as_str().unwrap().to_string();
            let name = match t.as_str() {
                "network" => "net",
                "uts" => "uts",
                "ipc" => "ipc",
                _ => continue,
            };
            n["path"] = format!("/proc/{infra}/ns/{name}").into();
        }
        s["hostname"] = Value::Null;
        s["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
    });
    let out = b.run("member");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    for (i, name) in ["net", "uts", "ipc"].iter().enumerate() {
        let infra_ns = std::fs::read_link(format!("/proc/{infra}/ns/{name}")).unwrap();
        assert_eq!(lines[i], infra_ns.to_string_lossy(), "{name}: {text}");
    }
    assert_eq!(
        lines[3], "runc",
        "shares the infra container's hostname: {text}"
    );
    assert_eq!(lines[4], "1", "sysctl not applied: {text}");
    let infra_ns = std::fs::read_link(format!("/proc/{infra}/ns/net")).unwrap();
    assert_ne!(infra_ns, std::fs::read_link("/proc/self/ns/net").unwrap());
}

#[test]
fn run_with_a_terminal_and_no_console_socket_proxies_a_pty() {
    berth_tests::require_command("script", "bsdutils");
    let b = Bundle::new(&[
        "sh",
        "-c",
        "tty; stty size; read line; echo got-$line; exit 6",
    ]);
    b.edit(|s| s["process"]["terminal"] = true.into());
    // `script` gives berth-runtime a terminal of 30x100; our input goes through the pty.
    let cmd = format!(
        "stty cols 100 rows 30; {} --root {} run -b {} tty1; echo rc=$?",
        bin("berth-runtime").display(),
        b.state_root().display(),
        b.dir().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("30 100"), "{text}");
    assert!(text.contains("got-hello"), "{text}");
    assert!(text.contains("rc=6"), "{text}");
}

#[test]
fn no_pivot_systemd_cgroup_and_json_logs_behave_like_runc() {
    let b = Bundle::new(&["sh", "-c", "ls /bin/busybox && cat /proc/1/comm"]);
    let out = b
        .runtime()
        .args(["run", "--no-pivot", "--bundle"])
        .arg(b.dir())
        .arg("nopivot")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // sh execs its last command, so pid 1 is cat.
    assert_eq!(stdout(&out), "/bin/busybox\ncat\n");

    let refused = b
        .runtime()
        .args(["--systemd-cgroup", "state", "x"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("systemd cgroup"),
        "{}",
        stderr(&refused)
    );

    let log = b.root.path("runtime.log");
    let out = b
        .runtime()
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "start", "ghost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["msg"], "container does not exist");
}

/// Runs the bundle under a caller with umask 077 (berth-runtime, like any Rust
/// program, also ignores SIGPIPE): neither may reach the container.
fn run_under_strict_umask(b: &Bundle, id: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 077; exec \"$0\" \"$@\"")
        .arg(bin("berth-runtime"))
        .arg("--root")
        .arg(b.state_root())
        .args(["run", "--bundle"])
        .arg(b.dir())
        .arg(id)
        .output()
        .unwrap()
}

#[test]
fn the_container_gets_default_signals_and_device_modes_whatever_its_caller_has() {
    let b = Bundle::new(&["cat", "/proc/self/status"]);
    let out = run_under_strict_umask(&b, "signals");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let status = stdout(&out);
    for field in ["SigIgn", "SigBlk"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in /proc/self/status:\n{status}"));
        assert_eq!(
            line.split_whitespace().nth(1),
            Some("0000000000000000"),
            "the container inherited its caller's signal state: {line}"
        );
    }

    b.edit(|spec| {
        spec["process"]["args"] = serde_json::json!([
            "stat",
            "-c",
            "%a %n",
            "/dev/null",
            "/dev/zero",
            "/dev/urandom"
        ]);
    });
    let out = run_under_strict_umask(&b, "devmodes");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "666 /dev/null\n666 /dev/zero\n666 /dev/urandom\n",
        "device nodes must get the spec's mode, not one masked by the caller's umask"
    );
}

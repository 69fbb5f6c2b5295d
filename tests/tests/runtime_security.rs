//! Regression tests for what must not leak from the host into a container:
//! inherited fds beyond `--preserve-fds`, a cwd reached through a leaked fd
//! (CVE-2024-21626), and the runtime binary through `/proc/<pid>/exe`
//! (CVE-2019-5736).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{bin, busybox_rootfs_tar, require_root, run_ok, TestRoot};
use serde_json::Value;

struct Bundle {
    root: TestRoot,
    runtime: PathBuf,
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
        let b = Bundle {
            runtime: bin("berth-runtime"),
            root,
        };
        b.edit(|spec| {
            spec["process"]["terminal"] = false.into();
            spec["process"]["args"] = args.iter().map(|s| Value::from(*s)).collect();
        });
        b
    }

    fn dir(&self) -> PathBuf {
        self.root.path("bundle")
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.dir().join("config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut spec);
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    }

    /// `sh -c SCRIPT` on the host, where SCRIPT runs `$RT` (the runtime with this
    /// bundle's state root) after opening fds without close-on-exec.
    fn shell(&self, script: &str) -> std::process::Output {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .env(
                "RT",
                format!(
                    "{} --root {}",
                    self.runtime.display(),
                    self.root.path("state").display()
                ),
            )
            .env("BUNDLE", self.dir())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn runtime(&self) -> Command {
        let mut cmd = Command::new(&self.runtime);
        cmd.arg("--root").arg(self.root.path("state"));
        cmd
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.root.path("state")) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.runtime().args(["delete", "--force", &id]).output();
            }
        }
    }
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_container() {
    let b = Bundle::new(&["ls", "/proc/self/fd"]);
    // fds 3 and 7 are open without close-on-exec in the runtime's caller.
    let out = b.shell("exec 3</etc/hostname 7</etc/passwd; $RT run -b $BUNDLE leak");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let fds: Vec<&str> = stdout.split_whitespace().collect();
    // ls itself opens one fd (3) for the directory it lists.
    assert_eq!(fds, ["0", "1", "2", "3"], "leaked fds: {stdout}");

    b.edit(|s| s["process"]["args"] = serde_json::json!(["sh", "-c", "cat <&3; ls /proc/$$/fd"]));
    let out =
        b.shell("exec 3</etc/hostname 7</etc/passwd; $RT run --preserve-fds 1 -b $BUNDLE keep");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap();
    assert!(
        stdout.starts_with(hostname.trim()),
        "fd 3 not passed: {stdout}"
    );
    assert!(
        !stdout.split_whitespace().any(|f| f == "7"),
        "fd 7 leaked: {stdout}"
    );
}

#[test]
fn a_cwd_through_a_leaked_host_fd_is_refused() {
    // CVE-2024-21626: cwd /proc/self/fd/N where N is a host directory the init still holds.
    let b = Bundle::new(&["sh", "-c", "pwd; ls"]);
    b.edit(|s| s["process"]["cwd"] = "/proc/self/fd/7".into());
    let out = b.shell("exec 7</; $RT run -b $BUNDLE cwd");
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "container ran with a host cwd: {stdout}"
    );
    assert!(stderr.contains("cwd /proc/self/fd/7"), "{stderr}");
    assert!(!stdout.contains("etc"), "host dir listed: {stdout}");
    assert!(!b.root.path("state/cwd").exists());
}

#[test]
fn the_runtime_binary_cannot_be_overwritten_from_inside_a_container() {
    // CVE-2019-5736. A private copy of the runtime, so no other test's process
    // keeps it busy and a successful write would show in its bytes.
    let probe = Bundle::new(&["true"]);
    let copy = probe.root.path("berth-runtime-copy");
    std::fs::copy(bin("berth-runtime"), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();

    // Attacker: scans its pid namespace for a process (not itself) running the runtime copy,
    // holds it open, waits for that process to exec, then writes through the fd.
    let script = r#"
        while :; do
          for d in /proc/[0-9]*; do
            [ $d = /proc/$$ ] && continue
            grep -q 'berth-runtime-cop[y]' $d/cmdline 2>/dev/null || continue
            if (exec 5<$d/exe) 2>/dev/null; then exec 5<$d/exe; else echo OPENFAIL; sleep 3; exit 0; fi
            echo found $(readlink $d/exe)
            n=0
            while grep -q 'berth-runtime-cop[y]' $d/cmdline 2>/dev/null && [ $n -lt 100 ]; do
              sleep 0.1; n=$((n+1))
            done
            (echo x >> /proc/self/fd/5) 2>/dev/null && echo WROTE || echo REFUSED
            sleep 3; exit 0
          done
          sleep 0.05
        done
    "#;
    let mut attacker_bundle = Bundle::new(&["sh", "-c", script]);
    attacker_bundle.runtime = copy.clone();
    let log = attacker_bundle.root.path("attacker.out");
    let status = attacker_bundle
        .runtime()
        .args(["run", "--detach", "--bundle"])
        .arg(attacker_bundle.dir())
        .arg("attacker")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let state = run_ok(attacker_bundle.runtime().args(["state", "attacker"]));
    let state: Value = serde_json::from_slice(&state.stdout).unwrap();
    let attacker_pid = state["pid"].as_i64().unwrap();

    // Victim: a container created in the attacker's pid namespace; until start,
    // its init is the runtime itself.
    let mut victim = Bundle::new(&["sleep", "1"]);
    victim.runtime = copy.clone();
    victim.edit(|s| {
        for ns in s["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "pid" {
                ns["path"] = format!("/proc/{attacker_pid}/ns/pid").into();
            }
        }
    });
    let status = victim
        .runtime()
        .args(["create", "--bundle"])
        .arg(victim.dir())
        .arg("victim")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let victim_state = run_ok(victim.runtime().args(["state", "victim"]));
    let victim_state: Value = serde_json::from_slice(&victim_state.stdout).unwrap();
    let victim_pid = victim_state["pid"].as_i64().unwrap();
    // The property itself, whatever the protection: the init's exe, even as
    // seen by root on the host through the magic link, refuses to be opened for
    // writing or truncated.
    let exe_link = format!("/proc/{victim_pid}/exe");
    let host_write = std::fs::OpenOptions::new().append(true).open(&exe_link);
    assert!(
        host_write.is_err(),
        "the init's exe ({:?}) is writable",
        std::fs::read_link(&exe_link)
    );
    let host_truncate = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&exe_link);
    assert!(host_truncate.is_err(), "the init's exe can be truncated");
    // The exploit's own move, done by root on the host: hold the exe open for
    // reading, let the runtime exec the container's program (so the binary is
    // no longer busy), then reopen the held fd for writing.
    let held = std::fs::File::open(&exe_link).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    run_ok(victim.runtime().args(["start", "victim"]));
    std::thread::sleep(Duration::from_millis(300));
    let wrote = std::fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/self/fd/{}", held.as_raw_fd()))
        .and_then(|mut f| f.write_all(b"x"));
    assert!(
        wrote.is_err(),
        "the runtime's exe, held open, was written through after the exec"
    );
    drop(held);

    let deadline = Instant::now() + Duration::from_secs(20);
    let verdict = loop {
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = out
            .lines()
            .find(|l| ["WROTE", "REFUSED", "OPENFAIL"].contains(l))
        {
            break (line.to_string(), out);
        }
        assert!(Instant::now() < deadline, "attacker never finished: {out}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(
        verdict.0, "WROTE",
        "attacker wrote the runtime: {}",
        verdict.1
    );
    eprintln!("attacker said: {}", verdict.1);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "runtime binary changed"
    );
}

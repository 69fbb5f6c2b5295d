//! berth-runtime in place of runc under podman and containerd: each test uses
//! private podman storage (`--root/--runroot` in a temp dir, vfs driver) or a
//! private containerd (`--root/--state/--address`), and removes it afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{bin, busybox_rootfs_tar, require_command, require_root, run_ok, TestRoot};

/// Private podman storage with berth-runtime as the OCI runtime and the busybox
/// rootfs imported as image `bb`.
struct Podman {
    root: TestRoot,
}

impl Podman {
    fn new() -> Podman {
        require_root();
        require_command("podman", "podman");
        let root = TestRoot::new();
        // podman's default nofile rlimit exceeds root's hard limit here (no
        // CAP_SYS_RESOURCE): notes/peers.md.
        std::fs::write(
            root.path("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        let p = Podman { root };
        run_ok(p.cmd().arg("import").arg(busybox_rootfs_tar()).arg("bb"));
        p
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.root.path("containers.conf"))
            .arg("--root")
            .arg(self.root.path("storage"))
            .arg("--runroot")
            .arg(self.root.path("runroot"))
            .args(["--storage-driver", "vfs", "--runtime"])
            .arg(bin("berth-runtime"))
            .stdin(Stdio::null());
        cmd
    }

    /// The podman command line as one shell string (for `script` and `unshare`).
    fn shell_prefix(&self) -> String {
        format!(
            "CONTAINERS_CONF={} podman --root {} --runroot {} --storage-driver vfs --runtime {}",
            self.root.path("containers.conf").display(),
            self.root.path("storage").display(),
            self.root.path("runroot").display(),
            bin("berth-runtime").display()
        )
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .args(["rm", "--all", "--force", "--time", "0"])
            .output();
        unmount_under(&self.root.path(""));
        // podman runs berth-runtime with its default --root.
        berth_tests::remove_empty_default_dirs();
    }
}

/// Lazily unmounts anything still mounted under `dir` (deepest first).
fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().trim_end_matches('/').to_string();
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).output();
    }
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn podman_run_passes_the_exit_code_through() {
    let p = Podman::new();
    let out = p
        .cmd()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "bb",
            "sh",
            "-c",
            "echo hi; exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
}

#[test]
fn podman_run_it_gets_a_terminal() {
    let p = Podman::new();
    require_command("script", "bsdutils");
    // `script` gives podman a terminal; podman hands berth-runtime a console socket.
    let out = Command::new("script")
        .arg("-qec")
        .arg(format!(
            "{} run --rm -it --network none bb sh -c 'tty; test -t 0 && echo stdin-is-tty'",
            p.shell_prefix()
        ))
        .arg("/dev/null")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("/dev/pts/0"), "{}", text(&out));
    assert!(stdout.contains("stdin-is-tty"), "{}", text(&out));
}

#[test]
fn podman_detached_container_takes_exec_and_stop() {
    let p = Podman::new();
    let out = run_ok(
        p.cmd()
            .args(["run", "-d", "--network", "none", "bb", "sleep", "300"]),
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = p
        .cmd()
        .args(["exec", &id, "sh", "-c", "cat /proc/1/comm; exit 5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sleep\n");
    run_ok(p.cmd().args(["stop", "--time", "1", &id]));
    let out = run_ok(p.cmd().args([
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &id,
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "exited 137");
    run_ok(p.cmd().args(["rm", &id]));
}

#[test]
fn podman_publishes_a_port_to_a_server_inside() {
    let p = Podman::new();
    require_command("curl", "curl");
    let www = p.root.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "served-by-berth\n").unwrap();
    // A private network namespace: podman's bridge and firewall rules stay off the host.
    let script = format!(
        "set -e; ip link set lo up; \
         id=$({pm} run -d -p 8080:80 -v {www}:/var/www:ro bb httpd -f -p 80 -h /var/www); \
         for i in $(seq 50); do curl -sf http://127.0.0.1:8080/index.html && break; sleep 0.1; done; \
         {pm} rm -f -t 0 $id >/dev/null",
        pm = p.shell_prefix(),
        www = www.display()
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("served-by-berth"),
        "{}",
        text(&out)
    );
}

#[test]
fn podman_memory_and_pids_limits_reach_the_cgroup() {
    let p = Podman::new();
    let out = run_ok(p.cmd().args([
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "7",
        "bb",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "67108864\n7\n");
    // The pids limit bites: with 5 at most, the eighth background sleep cannot fork.
    let out = p
        .cmd()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--pids-limit",
            "5",
            "bb",
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do sleep 3 & done; wait",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("can't fork") || stderr.contains("Resource temporarily unavailable"),
        "{}",
        text(&out)
    );
}

/// A private containerd; killed and its state removed on drop.
struct Containerd {
    root: TestRoot,
    daemon: Child,
}

impl Containerd {
    fn start() -> Containerd {
        require_root();
        require_command("containerd", "containerd");
        let root = TestRoot::new();
        let daemon = Command::new("containerd")
            .arg("--root")
            .arg(root.path("root"))
            .arg("--state")
            .arg(root.path("state"))
            .arg("--address")
            .arg(root.path("c.sock"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.path("containerd.log")).unwrap())
            .spawn()
            .unwrap();
        let c = Containerd { root, daemon };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.ctr().args(["version"]).output().unwrap().status.success() {
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.root.path("c.sock"))
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // Shims outlive the daemon: end the ones serving this instance.
        if let Ok(out) = Command::new("pgrep")
            .args(["-f", &self.root.path("").to_string_lossy()])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).output();
            }
        }
        unmount_under(&self.root.path(""));
    }
}

/// A docker-archive of the busybox rootfs as image `docker.io/library/bb:latest`.
fn busybox_docker_archive(dir: &Path) -> PathBuf {
    require_command("skopeo", "skopeo");
    let p = Podman::new();
    let archive = dir.join("bb-docker.tar");
    run_ok(
        Command::new("skopeo")
            .arg("--tmpdir")
            .arg(dir)
            .arg("copy")
            .arg(format!(
                "containers-storage:[vfs@{}+{}]localhost/bb:latest",
                p.root.path("storage").display(),
                p.root.path("runroot").display()
            ))
            .arg(format!(
                "docker-archive:{}:docker.io/library/bb:latest",
                archive.display()
            )),
    );
    archive
}

#[test]
fn containerd_ctr_runs_a_container_to_completion_with_berth_runtime() {
    let c = Containerd::start();
    let archive = busybox_docker_archive(&c.root.path(""));
    run_ok(c.ctr().args(["images", "import"]).arg(&archive));
    let out = c
        .ctr()
        .args(["run", "--rm", "--runc-binary"])
        .arg(bin("berth-runtime"))
        .args([
            "docker.io/library/bb:latest",
            "berth-ctr",
            "sh",
            "-c",
            "echo from-ctr; exit 4",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("from-ctr"),
        "{}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
}

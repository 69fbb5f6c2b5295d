//! `berth run` end to end, as root: foreground output and exit codes, `--rm` leaving nothing
//! behind, detached containers with `ps`, `logs`, `stop`, `kill`, `wait` and `rm`, and the
//! json-file log. Every test uses its own store and its own bridge, nft table and cgroup
//! parent (`TestRoot::with_private_network`), and removes its containers (Drop guard) and then
//! those (TestRoot's drop), so the host is left as it was found.

mod run_support;

use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::run_ok;
use run_support::{stderr, stdout, wait_until, Fixture};

#[test]
fn run_rm_prints_output_and_leaves_nothing() {
    let mut f = Fixture::new();
    let out = run_ok(f.berth().args(["run", "--rm", "busybox", "echo", "hi"]));
    assert_eq!(stdout(&out), "hi\n");
    assert!(f.container_dirs().is_empty(), "{:?}", f.container_dirs());
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&*f.root.store().to_string_lossy()));

    // Detached with --rm: we learn the id, so we can look for its cgroup, veth and netns.
    let out = run_ok(
        f.berth()
            .args(["run", "-d", "--rm", "busybox", "sh", "-c", "sleep 0.2"]),
    );
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "{id:?}");
    let dir = f.containers_dir().join(&id);
    wait_until(
        "the --rm container to be removed",
        Duration::from_secs(10),
        || !dir.exists(),
    );
    assert_eq!(f.leftovers_of(&id), Vec::<String>::new());
    assert!(!f
        .root
        .store()
        .join("names")
        .read_dir()
        .unwrap()
        .any(|_| true));
    // Nothing with this test's names is left once its network is torn down: no link, no nft
    // table, no state dir, no cgroup parent in any hierarchy.
    let net = f.root.private_network().expect("a private network");
    let bridge = net.bridge();
    assert_eq!(f.root.teardown_private_network(), Vec::<String>::new());
    assert!(!Path::new("/sys/class/net").join(&bridge).exists());
}

#[test]
fn exit_codes_and_stderr_pass_through() {
    let f = Fixture::new();
    let out = f
        .berth()
        .args(["run", "--rm", "--network", "none", "busybox", "sh", "-c"])
        .arg("echo to-out; echo to-err >&2; exit 7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "to-out\n");
    assert!(stderr(&out).contains("to-err"), "{}", stderr(&out));

    let out = f
        .berth()
        .args([
            "run",
            "--rm",
            "-e",
            "GREETING=hey",
            "-w",
            "/tmp/work",
            "--hostname",
            "boxy",
        ])
        .args([
            "busybox",
            "sh",
            "-c",
            "echo $GREETING $(pwd) $(hostname) $HOME $PATH",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "hey /tmp/work boxy /root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    let out = run_ok(f.berth().args([
        "run",
        "--rm",
        "--network",
        "host",
        "-u",
        "nobody",
        "--entrypoint",
        "id",
        "busybox",
        "-u",
    ]));
    assert_eq!(stdout(&out), "65534\n");
    assert!(f.container_dirs().is_empty());
}

#[test]
fn detached_ps_logs_stop_rm() {
    let mut f = Fixture::new();
    let name = f.name("lifecycle-1");
    let out = run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name, "busybox", "sh", "-c"])
            .arg("echo out-line; echo err-line >&2; sleep 0.3; echo second; exec sleep 1000"),
    );
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64);
    let ps = f.ps(false);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    let row = ps
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(row.starts_with(&id[..12]) && row.contains("Up"), "{row}");
    let q = stdout(&run_ok(f.berth().args(["ps", "-q"])));
    assert_eq!(q.trim(), &id[..12]);

    wait_until("the log", Duration::from_secs(5), || {
        stdout(&run_ok(f.berth().args(["logs", &name]))).contains("second")
    });
    let logs = run_ok(f.berth().args(["logs", &name]));
    assert_eq!(stdout(&logs), "out-line\nsecond\n");
    assert_eq!(stderr(&logs), "err-line\n");
    let tail = run_ok(f.berth().args(["logs", "--tail", "1", &id[..8]]));
    assert_eq!(stdout(&tail), "second\n");

    // The log is Docker's json-file format.
    let log = std::fs::read_to_string(f.containers_dir().join(&id).join(format!("{id}-json.log")))
        .unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "out-line\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");

    // sleep as pid 1 ignores SIGTERM: stop sends SIGKILL after -t.
    let started = Instant::now();
    run_ok(f.berth().args(["stop", "-t", "1", &name]));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let ps = f.ps(true);
    let row = ps
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(row.contains("Exited (137)"), "{row}");
    assert!(!f.ps(false).contains(&name));
    let waited = run_ok(f.berth().args(["wait", &name]));
    assert_eq!(stdout(&waited).trim(), "137");
    // Stopped: nothing held on the host any more, but the container is still listed.
    assert_eq!(f.leftovers_of(&id), Vec::<String>::new());

    run_ok(f.berth().args(["rm", &name]));
    assert!(!f.ps(true).contains(&name));
    assert!(f.container_dirs().is_empty());
    let again = f.berth().args(["rm", &name]).output().unwrap();
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("no such container"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn stop_sends_sigterm_first() {
    let mut f = Fixture::new();
    let name = f.name("graceful-1");
    run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name, "busybox", "sh", "-c"])
            .arg("trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done"),
    );
    wait_until("ready", Duration::from_secs(5), || {
        stdout(&run_ok(f.berth().args(["logs", &name]))).contains("ready")
    });
    let started = Instant::now();
    run_ok(f.berth().args(["stop", "-t", "10", &name]));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stdout(&run_ok(f.berth().args(["wait", &name]))).trim(), "3");
    assert!(stdout(&run_ok(f.berth().args(["logs", &name]))).contains("got-term"));
}

#[test]
fn kill_and_rm_force() {
    let mut f = Fixture::new();
    let name = f.name("killed-1");
    let id =
        stdout(&run_ok(f.berth().args([
            "run", "-d", "--name", &name, "busybox", "sleep", "1000",
        ])))
        .trim()
        .to_string();
    run_ok(f.berth().args(["kill", "-s", "KILL", &name]));
    wait_until("the exit", Duration::from_secs(10), || {
        f.ps(true).contains("Exited (137)")
    });
    let refused = f.berth().args(["kill", &name]).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not running"),
        "{}",
        stderr(&refused)
    );

    // rm refuses a running container without -f; -f kills and removes everything.
    let name2 = f.name("forced-1");
    let id2 =
        stdout(&run_ok(f.berth().args([
            "run", "-d", "--name", &name2, "busybox", "sleep", "1000",
        ])))
        .trim()
        .to_string();
    let refused = f.berth().args(["rm", &name2]).output().unwrap();
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("running"), "{}", stderr(&refused));
    run_ok(f.berth().args(["rm", "-f", &name2, &name]));
    assert!(f.container_dirs().is_empty(), "{:?}", f.container_dirs());
    for id in [&id, &id2] {
        assert_eq!(f.leftovers_of(id), Vec::<String>::new());
    }
    // With its containers gone, this test's bridge, table, state dir and cgroup parent go too.
    assert_eq!(f.root.teardown_private_network(), Vec::<String>::new());
}

#[test]
fn foreground_run_passes_sigterm_on() {
    use std::io::{BufRead, BufReader};
    let mut f = Fixture::new();
    let name = f.name("sigproxy-1");
    let mut child = f
        .berth()
        .args([
            "run",
            "--name",
            &name,
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
        ])
        .arg("trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.1; done")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "got-term");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5));
    let ps = f.ps(true);
    let row = ps
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(row.contains("Exited (5)"), "{row}");
}

#[test]
fn logs_follow_ends_with_the_container() {
    let mut f = Fixture::new();
    let name = f.name("follow-1");
    run_ok(
        f.berth()
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
            ])
            .arg("for i in 1 2 3; do echo line$i; sleep 0.3; done"),
    );
    let started = Instant::now();
    let out = run_ok(f.berth().args(["logs", "-f", &name]));
    assert_eq!(stdout(&out), "line1\nline2\nline3\n");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stdout(&run_ok(f.berth().args(["wait", &name]))).trim(), "0");
}

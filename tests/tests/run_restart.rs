//! The monitor's restart policies, `start`/`restart`/`stop`/`kill`, and what survives the
//! monitor, as root: `on-failure` restarts and counts (logs of every run), `on-failure:2`
//! stops after two, `always` does not come back after `stop` or `kill`, `--rm --restart` is
//! refused, a restarted process is still reached through `-p`, an exited container starts
//! again with its port, and a container whose monitor was SIGKILLed keeps forwarding and is
//! still stopped or removed cleanly. The monitor runs from a read-only view of berth
//! (CVE-2019-5736). Each test has its own store and private network, and removes its
//! containers (Drop guard).

mod run_support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use berth_tests::{require_command, run_ok};
use run_support::{http_get, stderr, stdout, wait_until, Fixture};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_d(f: &Fixture, args: &[&str], script: &str) -> String {
    let out = run_ok(
        f.berth()
            .args(["run", "-d"])
            .args(args)
            .args(["busybox", "sh", "-c", script]),
    );
    stdout(&out).trim().to_string()
}

/// A web server whose page names its generation: how often this container's process started
/// (counted in its rootfs, which restarts keep).
const COUNTING_HTTPD: &str = "n=$(cat /gen 2>/dev/null || echo 0); n=$((n+1)); echo $n > /gen; \
     mkdir -p /www; echo gen-$n > /www/index.html; echo started-$n; \
     httpd -f -p 8000 -h /www & sleep 2; exit 1";

#[test]
fn on_failure_restarts_count_and_stop_after_max() {
    let mut f = Fixture::new();
    let name = f.name("restart-of-1");
    let id = run_d(
        &f,
        &[
            "--name",
            &name,
            "--network",
            "none",
            "--restart",
            "on-failure:2",
        ],
        "echo run; exit 3",
    );
    wait_until("the last exit", Duration::from_secs(15), || {
        f.state(&id)["status"] == "exited"
    });
    let state = f.state(&id);
    assert_eq!(state["RestartCount"], 2, "{state}");
    assert_eq!(state["exit_code"], 3, "{state}");
    let logs = stdout(&run_ok(f.berth().args(["logs", &name])));
    assert_eq!(logs, "run\nrun\nrun\n");
    assert!(f.ps(true).contains("Exited (3)"));

    // Success ends on-failure; unbounded on-failure keeps going while it fails.
    let ok = f.name("restart-of-2");
    let ok_id = run_d(
        &f,
        &[
            "--name",
            &ok,
            "--network",
            "none",
            "--restart",
            "on-failure",
        ],
        "test -e /ran && exit 0; touch /ran; exit 1",
    );
    wait_until("the success", Duration::from_secs(15), || {
        f.state(&ok_id)["status"] == "exited"
    });
    assert_eq!(f.state(&ok_id)["RestartCount"], 1);
    assert_eq!(f.state(&ok_id)["exit_code"], 0);
}

#[test]
fn always_restarts_until_stopped_or_killed() {
    let mut f = Fixture::new();
    let name = f.name("restart-always-1");
    let id = run_d(
        &f,
        &["--name", &name, "--network", "none", "--restart", "always"],
        "echo up; sleep 0.3; exit 0",
    );
    wait_until("two restarts", Duration::from_secs(15), || {
        f.state(&id)["RestartCount"].as_u64() >= Some(2)
    });
    let started = Instant::now();
    run_ok(f.berth().args(["stop", "-t", "5", &name]));
    assert!(started.elapsed() < Duration::from_secs(5));
    let count = f.state(&id)["RestartCount"].clone();
    std::thread::sleep(Duration::from_secs(1));
    let state = f.state(&id);
    assert_eq!(state["status"], "exited", "{state}");
    assert_eq!(state["RestartCount"], count, "restarted after stop");
    assert!(!f.ps(false).contains(&name));
    assert!(
        stdout(&run_ok(f.berth().args(["logs", &name])))
            .matches("up")
            .count()
            >= 3
    );

    // kill (SIGKILL) by the user: not restarted either.
    let killed = f.name("restart-always-2");
    let kid = run_d(
        &f,
        &[
            "--name",
            &killed,
            "--network",
            "none",
            "--restart",
            "always",
        ],
        "exec sleep 1000",
    );
    run_ok(f.berth().args(["kill", &killed]));
    wait_until("the kill", Duration::from_secs(10), || {
        f.state(&kid)["status"] == "exited"
    });
    std::thread::sleep(Duration::from_millis(700));
    let state = f.state(&kid);
    assert_eq!(
        (state["status"].as_str(), state["RestartCount"].as_u64()),
        (Some("exited"), Some(0)),
        "{state}"
    );
    assert_eq!(state["exit_code"], 137);

    // rm -f of a restarting container: gone for good.
    let flappy = f.name("restart-always-3");
    let fid = run_d(
        &f,
        &[
            "--name",
            &flappy,
            "--network",
            "none",
            "--restart",
            "always",
        ],
        "exit 2",
    );
    wait_until("a restart", Duration::from_secs(10), || {
        f.state(&fid)["RestartCount"].as_u64() >= Some(1)
    });
    run_ok(f.berth().args(["rm", "-f", &flappy]));
    assert!(!f.containers_dir().join(&fid).exists());
    assert!(!std::path::Path::new("/run/berth").join(&fid).exists());
}

#[test]
fn rm_with_restart_is_refused() {
    let f = Fixture::new();
    let out = f
        .berth()
        .args(["run", "--rm", "--restart", "always", "busybox", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("conflicting options: --restart and --rm"),
        "{}",
        stderr(&out)
    );
    let bad = f
        .berth()
        .args(["run", "--restart", "sometimes", "busybox", "true"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("restart policy"), "{}", stderr(&bad));
    assert!(f.container_dirs().is_empty(), "{:?}", f.container_dirs());
}

#[test]
fn a_restarted_process_is_reached_through_its_published_port() {
    require_command("curl", "curl");
    let mut f = Fixture::new();
    let name = f.name("restart-port-1");
    let port = free_port();
    let id = run_d(
        &f,
        &[
            "--name",
            &name,
            "--restart",
            "on-failure",
            "-p",
            &format!("127.0.0.1:{port}:8000"),
        ],
        COUNTING_HTTPD,
    );
    let url = format!("http://127.0.0.1:{port}/");
    for generation in ["gen-1\n", "gen-2\n"] {
        wait_until(generation, Duration::from_secs(20), || {
            http_get(&url).as_deref() == Some(generation)
        });
    }
    assert!(f.state(&id)["RestartCount"].as_u64() >= Some(1));
    let logs = stdout(&run_ok(f.berth().args(["logs", &name])));
    assert!(
        logs.contains("started-1\n") && logs.contains("started-2\n"),
        "{logs}"
    );
    run_ok(f.berth().args(["rm", "-f", &name]));
    assert_eq!(f.leftovers_of(&id), Vec::<String>::new());
}

#[test]
fn an_exited_container_starts_again_with_its_port() {
    require_command("curl", "curl");
    let mut f = Fixture::new();
    let name = f.name("start-again-1");
    let port = free_port();
    let id = run_d(
        &f,
        &["--name", &name, "-p", &format!("127.0.0.1:{port}:8000")],
        "n=$(cat /gen 2>/dev/null || echo 0); n=$((n+1)); echo $n > /gen; mkdir -p /www; \
         echo gen-$n > /www/index.html; exec httpd -f -p 8000 -h /www",
    );
    let url = format!("http://127.0.0.1:{port}/");
    wait_until("the first run", Duration::from_secs(10), || {
        http_get(&url).as_deref() == Some("gen-1\n")
    });
    run_ok(f.berth().args(["stop", "-t", "1", &name]));
    assert!(http_get(&url).is_none(), "still answering after stop");
    assert_eq!(f.leftovers_of(&id), Vec::<String>::new());

    let out = run_ok(f.berth().args(["start", &name]));
    assert_eq!(stdout(&out), format!("{name}\n"));
    wait_until("the second run", Duration::from_secs(10), || {
        http_get(&url).as_deref() == Some("gen-2\n")
    });
    let ps = f.ps(false);
    assert!(ps.contains(&format!("127.0.0.1:{port}->8000/tcp")), "{ps}");

    // restart: stop and start again, through the same port.
    run_ok(f.berth().args(["restart", "-t", "1", &name]));
    wait_until("the third run", Duration::from_secs(10), || {
        http_get(&url).as_deref() == Some("gen-3\n")
    });
    // start -a of an exited container streams its output and exits with its code.
    run_ok(f.berth().args(["stop", "-t", "1", &name]));
    let once = f.name("start-again-2");
    let first = f
        .berth()
        .args([
            "run",
            "--name",
            &once,
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
        ])
        .arg("echo pass-$(cat /p 2>/dev/null || echo 1); echo 2 > /p; exit 9")
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(9), "{}", stderr(&first));
    assert_eq!(stdout(&first), "pass-1\n");
    let out = f.berth().args(["start", "-a", &once]).output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pass-2\n");
    run_ok(f.berth().args(["rm", &name, &once]));
    assert_eq!(f.leftovers_of(&id), Vec::<String>::new());
}

#[test]
fn forwarding_and_cleanup_survive_a_killed_monitor() {
    require_command("curl", "curl");
    let mut f = Fixture::new();
    let name = f.name("orphan-1");
    let port = free_port();
    let id = run_d(
        &f,
        &["--name", &name, "-p", &format!("127.0.0.1:{port}:8000")],
        "mkdir -p /www; echo orphan > /www/index.html; exec httpd -f -p 8000 -h /www",
    );
    let url = format!("http://127.0.0.1:{port}/");
    wait_until("httpd", Duration::from_secs(10), || {
        http_get(&url).as_deref() == Some("orphan\n")
    });
    let monitor = f.state(&id)["monitor_pid"].as_i64().unwrap() as i32;

    // CVE-2019-5736: the monitor (whose fork is the container's init) runs from a view of
    // berth that cannot be written through /proc/<pid>/exe.
    let exe = format!("/proc/{monitor}/exe");
    assert!(std::fs::read_link(&exe).is_ok());
    let write = std::fs::OpenOptions::new().append(true).open(&exe);
    assert!(write.is_err(), "the monitor's exe is writable");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the monitor to die", Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{monitor}/exe")).exists()
            || std::fs::read_to_string(format!("/proc/{monitor}/stat"))
                .is_ok_and(|s| s.contains(") Z"))
    });
    assert_eq!(http_get(&url).as_deref(), Some("orphan\n"));
    let ps = f.ps(false);
    assert!(ps.contains(&name) && ps.contains("Up"), "{ps}");

    run_ok(f.berth().args(["stop", "-t", "1", &name]));
    assert!(http_get(&url).is_none());
    assert_eq!(f.leftovers_of(&id), Vec::<String>::new());
    assert!(f.ps(true).contains("Exited ("));

    // The same with rm -f.
    let name2 = f.name("orphan-2");
    let port2 = free_port();
    let id2 = run_d(
        &f,
        &["--name", &name2, "-p", &format!("127.0.0.1:{port2}:8000")],
        "mkdir -p /www; echo orphan2 > /www/index.html; exec httpd -f -p 8000 -h /www",
    );
    let url2 = format!("http://127.0.0.1:{port2}/");
    wait_until("httpd 2", Duration::from_secs(10), || {
        http_get(&url2).is_some()
    });
    let monitor2 = f.state(&id2)["monitor_pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor2),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http_get(&url2).as_deref(), Some("orphan2\n"));
    run_ok(f.berth().args(["rm", "-f", &name2, &name]));
    assert!(http_get(&url2).is_none());
    assert_eq!(f.leftovers_of(&id2), Vec::<String>::new());
    assert!(f.container_dirs().is_empty(), "{:?}", f.container_dirs());
    assert!(!std::path::Path::new("/run/berth").join(&id2).exists());
    assert_eq!(f.root.teardown_private_network(), Vec::<String>::new());
}

#[test]
fn wait_outlasts_a_killed_monitor_and_records_the_lost_exit() {
    let mut f = Fixture::new();
    let name = f.name("orphan-wait");
    let id = run_d(&f, &["--name", &name], "exec sleep 1000");
    let state = f.state(&id);
    let monitor = state["monitor_pid"].as_i64().unwrap() as i32;
    let init = state["pid"].as_i64().unwrap() as i32;
    let kill = |pid: i32| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap()
    };
    kill(monitor);
    wait_until("the monitor to die", Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{monitor}/stat")).map_or(true, |s| s.contains(") Z"))
    });

    // `wait` blocks while the orphaned init runs, and reports its end.
    let mut waiter = f
        .berth()
        .args(["wait", &name])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "wait returned while the container ran"
    );
    kill(init);
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiter.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "wait did not see the init go");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "255\n");
    let ps = f.ps(true);
    assert!(ps.contains("Exited (255)"), "{ps}");
    // What the monitor would have released is gone, and a second wait agrees.
    assert_eq!(f.leftovers_of(&id), Vec::<String>::new());
    assert_eq!(stdout(&run_ok(f.berth().args(["wait", &name]))), "255\n");
    run_ok(f.berth().args(["rm", &name]));
}

#[test]
fn a_lost_exit_reads_the_same_in_stop_ps_inspect_and_wait() {
    let mut f = Fixture::new();
    let name = f.name("orphan-exit0");
    let id = run_d(&f, &["--name", &name, "--network", "none"], "exec sleep 2");
    let state = f.state(&id);
    let monitor = state["monitor_pid"].as_i64().unwrap() as i32;
    let init = state["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The init exits 0 on its own, with nobody left to see its status.
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"))
    };
    wait_until("the monitor to die", Duration::from_secs(5), || {
        gone(monitor)
    });
    wait_until("the init to exit", Duration::from_secs(10), || gone(init));

    // `stop` finds nothing to stop and records no stop signal's code.
    run_ok(f.berth().args(["stop", &name]));
    assert_eq!(f.state(&id)["exit_code"], 255);
    let ps = f.ps(true);
    assert!(ps.contains("Exited (255)"), "{ps}");
    let inspect: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(f.berth().args(["inspect", &name])))).unwrap();
    assert_eq!(inspect[0]["State"]["ExitCode"], 255, "{inspect}");
    assert_eq!(inspect[0]["State"]["Status"], "exited", "{inspect}");
    assert_eq!(stdout(&run_ok(f.berth().args(["wait", &name]))), "255\n");
    assert_eq!(f.leftovers_of(&id), Vec::<String>::new());
    run_ok(f.berth().args(["rm", &name]));
}

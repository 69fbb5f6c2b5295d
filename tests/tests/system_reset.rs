//! Removing what berth made on the host: `berth network rm` refuses while a container uses
//! the bridge network and removes link, nft table and state dir once none does; `berth system
//! reset` asks first, then removes every container and the network and the cgroup parent; a
//! node daemon stopped with SIGTERM takes its Service rules (and the service range's reject)
//! along. Each test runs on its own private network settings.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{require_root, run_ok, TestRoot};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn root_with_busybox() -> TestRoot {
    require_root();
    TestRoot::with_busybox()
}

fn run_d(root: &TestRoot, name: &str) {
    run_ok(
        root.berth()
            .args(["run", "-d", "--name", name, "busybox", "sleep", "1000"]),
    );
}

/// Removes every container of `root` whatever happened (a failed test leaves none running).
struct Cleanup<'a>(&'a TestRoot);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let out = self.0.berth().args(["ps", "-aq"]).output().unwrap();
        for id in stdout(&out).split_whitespace() {
            let _ = self.0.berth().args(["rm", "-f", id]).output();
        }
    }
}

#[test]
fn network_rm_and_system_reset_leave_nothing_of_berth_on_the_host() {
    let root = root_with_busybox();
    let _cleanup = Cleanup(&root);
    let net = root.private_network().unwrap();
    let bridge = net.bridge();
    run_d(&root, "reset-a");

    let out = root.berth().args(["network", "rm"]).output().unwrap();
    assert!(!out.status.success(), "network rm removed a network in use");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "{err}");
    let out = root
        .berth()
        .args(["network", "rm", "no-such-net"])
        .output()
        .unwrap();
    assert!(!out.status.success());

    run_ok(root.berth().args(["rm", "-f", "reset-a"]));
    // Nothing uses the network now, and all of it is still there.
    let left = net.leftovers();
    for what in [
        format!("link {bridge}"),
        format!("nft table ip {}", net.table()),
    ] {
        assert!(left.contains(&what), "{what} not made: {left:?}");
    }
    let out = run_ok(root.berth().args(["network", "rm", &bridge]));
    assert_eq!(stdout(&out).trim(), bridge);
    let left = net.leftovers();
    assert!(
        left.iter().all(|l| l.starts_with("cgroup ")),
        "network rm left {left:?}"
    );

    // reset asks first; "n" keeps everything.
    run_d(&root, "reset-b");
    let mut ask = root
        .berth()
        .args(["system", "reset"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        ask.stdin.take().unwrap().write_all(b"n\n").unwrap();
    }
    let out = ask.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Are you sure"));
    let ps = stdout(&run_ok(root.berth().args(["ps", "-aq"])));
    assert_eq!(ps.lines().count(), 1, "reset without a yes removed: {ps}");

    let out = run_ok(root.berth().args(["system", "reset", "-f"]));
    assert!(stdout(&out).contains("1 containers"), "{}", stdout(&out));
    assert_eq!(stdout(&run_ok(root.berth().args(["ps", "-aq"]))), "");
    let left = root.private_network().unwrap().leftovers();
    assert!(left.is_empty(), "system reset left {left:?}");
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
";

fn nft_table(table: &str) -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .unwrap();
    out.status.success().then(|| stdout(&out))
}

#[test]
fn a_daemon_stopped_with_sigterm_removes_its_service_rules() {
    let mut root = root_with_busybox();
    let net = root.private_network().unwrap();
    let table = net.table();
    let service_cidr = net.subnet().replacen("10.88.", "10.97.", 1);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut daemon = root
        .berth()
        .args(["daemon", "--listen", &format!("127.0.0.1:{port}")])
        .env("BERTH_SERVICE_CIDR", &service_cidr)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !root
        .berth()
        .args(["get", "pods"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
        assert!(Instant::now() < deadline, "the daemon never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let manifest = root.path("svc.yaml");
    std::fs::write(&manifest, SERVICE).unwrap();
    run_ok(root.berth().arg("apply").arg("-f").arg(&manifest));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listing = nft_table(&table).unwrap_or_default();
        if listing.contains("svc=default/web") && listing.contains(&service_cidr) {
            break;
        }
        assert!(Instant::now() < deadline, "service rules never programmed");
        std::thread::sleep(Duration::from_millis(100));
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = daemon.kill();
            panic!("the daemon did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let listing = nft_table(&table);
    assert!(
        listing
            .as_deref()
            .is_none_or(|l| !l.contains("svc") && !l.contains(&service_cidr)),
        "service rules outlived the daemon:\n{listing:?}"
    );
    assert!(root.teardown_private_network().is_empty());
}

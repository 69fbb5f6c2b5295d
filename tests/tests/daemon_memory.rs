//! The node daemon gives back the memory of objects it deleted: after creating and deleting
//! thousands of ConfigMaps through its API, its resident set is back near what it was before
//! (the watch history is bounded and kept serialized, and free heap pages are returned).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_tests::{require_root, TestRoot};

/// ConfigMaps created and then deleted.
const OBJECTS: usize = 3000;

/// One HTTP/1.1 request over the daemon's unix socket; returns the status code.
fn request(socket: &Path, method: &str, path: &str, body: &str) -> u16 {
    let mut s = UnixStream::connect(socket).expect("connect to the daemon socket");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

fn create_and_delete(socket: &Path, prefix: &str, n: usize) {
    let data = "x".repeat(4000);
    for i in 0..n {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{prefix}-{i}"}},"data":{{"k":"{data}"}}}}"#
        );
        let code = request(
            socket,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &body,
        );
        assert_eq!(code, 201, "create {prefix}-{i}");
    }
    for i in 0..n {
        let path = format!("/api/v1/namespaces/default/configmaps/{prefix}-{i}");
        assert_eq!(request(socket, "DELETE", &path, ""), 200, "delete {path}");
    }
}

/// Resident set size of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn memory_of_deleted_objects_is_returned() {
    require_root();
    let mut root = TestRoot::with_private_network();
    let net = root.private_network().unwrap();
    let service_cidr = net.subnet().replacen("10.88.", "10.97.", 1);
    let mut daemon = root
        .berth()
        .args(["daemon", "--listen", "127.0.0.1:0"])
        .env("BERTH_SERVICE_CIDR", &service_cidr)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = root.store().join("daemon/api.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(socket.exists() && root.store().join("daemon/kubeconfig").exists()) {
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
        assert!(Instant::now() < deadline, "the daemon never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Warm up (code paths paged in, pools sized), then take the baseline.
    create_and_delete(&socket, "warm", 100);
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(daemon.id());

    create_and_delete(&socket, "churn", OBJECTS);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(daemon.id());

    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while daemon.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    eprintln!("daemon RSS: {before} KiB before, {after} KiB after {OBJECTS} ConfigMaps");
    let limit = before * 3 / 2 + 10 * 1024;
    assert!(
        after < limit,
        "the daemon kept the memory of deleted objects: {before} KiB before, {after} KiB after \
         creating and deleting {OBJECTS} ConfigMaps (limit {limit} KiB)"
    );
    assert!(root.teardown_private_network().is_empty());
}

//! Containers do not reach the host's loopback, as root. The bridge has `route_localnet=1`
//! (so `-p 127.0.0.1:...` forwards work), which also lets a container send a frame to the
//! gateway's MAC addressed to 127.0.0.1: berth's table drops such connections unless berth
//! DNATed them (kube-proxy's fix for CVE-2020-8558). A container (it has CAP_NET_RAW by
//! default) sends a raw TCP SYN to a listener the test binds on 127.0.0.1 only and gets no
//! SYN-ACK; with the guard rule deleted from the test's own table the same probe gets one, so
//! the probe itself works; a 127.0.0.1 port forward still answers. Everything stays on the
//! test's own bridge and the host's loopback.

mod run_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::{require_command, run_ok, workspace_root};
use run_support::{http_get, stdout, Fixture};

/// Builds `tests/data/rawsyn/rawsyn.c` statically into `dir` (it runs in busybox).
fn build_rawsyn(dir: &Path) -> PathBuf {
    require_command("cc", "gcc libc6-dev");
    std::fs::create_dir_all(dir).unwrap();
    let exe = dir.join("rawsyn");
    run_ok(
        Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(&exe)
            .arg(workspace_root().join("tests/data/rawsyn/rawsyn.c")),
    );
    exe
}

/// Runs the probe in container `name`: it first pings the gateway (so the host has a
/// neighbour entry for it: the host's ARP for a reply from 127.0.0.1 goes unanswered),
/// then sends the SYN. Returns the probe's verdict line.
fn probe(f: &Fixture, name: &str, gateway: &str, mac: &str, port: u16) -> String {
    let script =
        format!("ping -c 1 -W 1 {gateway} >/dev/null; /probe/rawsyn eth0 {mac} 127.0.0.1 {port}");
    let out = f
        .berth()
        .args(["exec", name, "sh", "-c", &script])
        .output()
        .unwrap();
    let verdict = stdout(&out).trim().to_string();
    assert!(
        verdict == "SYNACK" || verdict == "NOREPLY",
        "probe failed ({}): {verdict}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    verdict
}

/// The handle of the rule tagged `comment` in `table`.
fn rule_handle(table: &str, comment: &str) -> Option<String> {
    let out = run_ok(Command::new("nft").args(["-a", "list", "table", "ip", table]));
    stdout(&out)
        .lines()
        .find(|l| l.contains(&format!("comment \"{comment}\"")))
        .and_then(|l| l.rsplit_once("# handle "))
        .map(|(_, h)| h.trim().to_string())
}

#[test]
fn raw_syn_to_host_loopback_gets_no_answer_and_forwards_still_work() {
    let mut f = Fixture::new();
    require_command("nft", "nftables");
    require_command("curl", "curl");
    let probe_dir = f.root.path("probe");
    build_rawsyn(&probe_dir);
    let net = f.root.private_network().expect("a private network");
    let (bridge, table) = (net.bridge(), net.table());
    let gateway = net.subnet().replace(".0/24", ".1");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let name = f.name("loopback-probe");
    run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name, "-v"])
            .arg(format!("{}:/probe:ro", probe_dir.display()))
            .args(["busybox", "sleep", "300"]),
    );
    // The bridge takes its MAC from its first port: read it once the container is attached.
    let mac = std::fs::read_to_string(Path::new("/sys/class/net").join(&bridge).join("address"))
        .unwrap()
        .trim()
        .to_string();
    let localnet =
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"))
            .unwrap();
    assert_eq!(
        localnet.trim(),
        "1",
        "berth sets route_localnet on its bridge"
    );

    assert_eq!(
        probe(&f, &name, &gateway, &mac, port),
        "NOREPLY",
        "a container reached a listener bound to the host's 127.0.0.1:{port}"
    );
    assert!(
        listener.accept().is_err(),
        "the loopback-only listener got a connection from the container"
    );

    // A 127.0.0.1 forward (DNATed by berth) still works with the guard in place.
    let web = f.name("loopback-web");
    let host_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    run_ok(
        f.berth()
            .args(["run", "-d", "--name", &web, "-p"])
            .arg(format!("127.0.0.1:{host_port}:80"))
            .args(["busybox", "sh", "-c"])
            .arg("mkdir -p /www && echo via-forward > /www/index.html && exec httpd -f -p 80 -h /www"),
    );
    let url = format!("http://127.0.0.1:{host_port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Some(body) = http_get(&url) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the forward {url} never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body, "via-forward\n");

    // Without the guard (what berth had before), the same probe is answered: the test's
    // probe does detect a reachable loopback.
    let tag = format!("net={bridge} loopback");
    let handle = rule_handle(&table, &tag).expect("the loopback guard rule in berth's table");
    run_ok(Command::new("nft").args(["delete", "rule", "ip", &table, "input", "handle", &handle]));
    assert_eq!(
        probe(&f, &name, &gateway, &mac, port),
        "SYNACK",
        "without the guard the probe should reach 127.0.0.1:{port}"
    );

    run_ok(f.berth().args(["rm", "-f", &name, &web]));
    drop(listener);
    assert_eq!(f.root.teardown_private_network(), Vec::<String>::new());
}

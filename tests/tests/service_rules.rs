//! Service load balancing in nftables without the daemon: two network namespaces made here
//! run busybox httpd as a Service's endpoints; the Service's cluster IP and node port (on
//! 127.0.0.1 and on a host address) reach both, a changed endpoint list takes effect at
//! once, and a removed Service answers no more. Everything runs in this test's private nft
//! table, service range and links, and is removed on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_engine::network::{Protocol, ServicePortRule, ServiceRules, ServiceTable};
use berth_tests::{require_command, require_root, run_ok, TestRoot};

/// One endpoint: a namespace with a veth to the host and busybox httpd on port 8080.
struct Endpoint {
    netns: String,
    veth: String,
    ip: Ipv4Addr,
    httpd: Option<Child>,
}

impl Endpoint {
    /// Makes namespace `netns` with `veth` (host side `host_ip/30`, namespace side `ip/30`)
    /// and starts httpd serving `body`.
    fn start(
        netns: &str,
        veth: &str,
        host_ip: Ipv4Addr,
        ip: Ipv4Addr,
        root: PathBuf,
        body: &str,
    ) -> Endpoint {
        let mut ep = Endpoint {
            netns: netns.to_string(),
            veth: veth.to_string(),
            ip,
            httpd: None,
        };
        run_ok(Command::new("ip").args(["netns", "add", netns]));
        let peer = format!("{veth}p");
        run_ok(
            Command::new("ip").args(["link", "add", veth, "type", "veth", "peer", "name", &peer]),
        );
        run_ok(Command::new("ip").args(["link", "set", &peer, "netns", netns]));
        run_ok(Command::new("ip").args(["addr", "add", &format!("{host_ip}/30"), "dev", veth]));
        run_ok(Command::new("ip").args(["link", "set", veth, "up"]));
        // 127.0.0.1:nodePort is DNATed out of this link: let it route loopback sources.
        std::fs::write(
            format!("/proc/sys/net/ipv4/conf/{veth}/route_localnet"),
            "1",
        )
        .expect("set route_localnet on the test veth");
        let in_ns = |args: &[&str]| {
            run_ok(Command::new("ip").args(["netns", "exec", netns]).args(args));
        };
        in_ns(&["ip", "link", "set", "lo", "up"]);
        in_ns(&["ip", "addr", "add", &format!("{ip}/30"), "dev", &peer]);
        in_ns(&["ip", "link", "set", &peer, "up"]);
        in_ns(&["ip", "route", "add", "default", "via", &host_ip.to_string()]);
        std::fs::create_dir_all(&root).expect("make the web root");
        std::fs::write(root.join("index.html"), body).expect("write index.html");
        let child = Command::new("ip")
            .args([
                "netns", "exec", netns, "busybox", "httpd", "-f", "-p", "8080", "-h",
            ])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start busybox httpd");
        ep.httpd = Some(child);
        let addr = SocketAddr::V4(SocketAddrV4::new(ip, 8080));
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(addr).as_deref() != Some(body) {
            assert!(Instant::now() < deadline, "httpd in {netns} never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        ep
    }

    fn target(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.ip, 8080)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(mut c) = self.httpd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .stderr(Stdio::null())
            .status();
        let leaked = std::path::Path::new("/sys/class/net")
            .join(&self.veth)
            .exists()
            || std::path::Path::new("/run/netns")
                .join(&self.netns)
                .exists();
        if leaked && !std::thread::panicking() {
            panic!("endpoint {} / {} was not removed", self.netns, self.veth);
        }
    }
}

/// The body of `GET /` from `addr`, or `None` when nothing answers.
fn get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: test\r\n\r\n")
        .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

/// The bodies of `n` requests to `addr`, sorted and deduplicated; panics if any fails.
fn bodies(addr: SocketAddr, n: usize) -> Vec<String> {
    let mut seen: Vec<String> = (0..n)
        .map(|i| get(addr).unwrap_or_else(|| panic!("request {i} to {addr} got no answer")))
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn cluster_ip_and_node_port_balance_over_endpoints() {
    require_root();
    require_command("nft", "nftables");
    require_command("busybox", "busybox-static");
    let mut root = TestRoot::with_private_network();
    let slot: u8 = root.private_network().unwrap().table()["berth_t".len()..]
        .parse()
        .unwrap();
    let table_name = root.private_network().unwrap().table();
    let range = format!("10.97.{slot}.0/24").parse().unwrap();
    let table = ServiceTable::new(&table_name, range).unwrap();
    let vip = Ipv4Addr::new(10, 97, slot, 10);
    let node_port = 31000 + u16::from(slot);
    {
        let a = Endpoint::start(
            &format!("bsvc{slot}a"),
            &format!("bsv{slot}a"),
            Ipv4Addr::new(10, 88, slot, 1),
            Ipv4Addr::new(10, 88, slot, 2),
            root.path("www-a"),
            "endpoint-a",
        );
        let b = Endpoint::start(
            &format!("bsvc{slot}b"),
            &format!("bsv{slot}b"),
            Ipv4Addr::new(10, 88, slot, 5),
            Ipv4Addr::new(10, 88, slot, 6),
            root.path("www-b"),
            "endpoint-b",
        );
        let service = |endpoints: Vec<SocketAddrV4>| ServiceRules {
            id: "default/web".into(),
            cluster_ip: Some(vip),
            ports: vec![ServicePortRule {
                protocol: Protocol::Tcp,
                port: 80,
                node_port: Some(node_port),
                endpoints,
            }],
        };
        let cluster = SocketAddr::V4(SocketAddrV4::new(vip, 80));
        let localhost = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, node_port));
        let host_address =
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 88, slot, 1), node_port));
        // The service range is rejected before any Service exists: never routed off the host.
        table.ensure().unwrap();
        assert_eq!(get(cluster), None);

        table
            .program(&service(vec![a.target(), b.target()]))
            .unwrap();
        assert_eq!(table.programmed().unwrap(), vec!["default/web".to_string()]);
        let both = vec!["endpoint-a".to_string(), "endpoint-b".to_string()];
        assert_eq!(bodies(cluster, 40), both, "cluster IP");
        assert_eq!(bodies(localhost, 40), both, "127.0.0.1 node port");
        assert_eq!(bodies(host_address, 40), both, "host address node port");

        // Programming again with one endpoint replaces the rules: only it answers.
        table.program(&service(vec![b.target()])).unwrap();
        assert_eq!(bodies(cluster, 20), vec!["endpoint-b".to_string()]);
        assert_eq!(bodies(localhost, 20), vec!["endpoint-b".to_string()]);
        assert_eq!(
            table.programmed().unwrap().len(),
            1,
            "rules were added twice"
        );

        // No ready endpoints: the cluster IP is refused, not routed.
        table.program(&service(vec![])).unwrap();
        assert_eq!(get(cluster), None);

        table.remove("default/web").unwrap();
        assert!(table.programmed().unwrap().is_empty());
        assert_eq!(get(cluster), None);
        assert_eq!(get(localhost), None);
        // Removing again is a no-op.
        table.remove("default/web").unwrap();
        drop((a, b));
    }
    let left = root.teardown_private_network();
    assert!(left.is_empty(), "left behind: {left:?}");
}

//! Root tests of berth's network layer (berth-orchestrator's `network` module) against the real
//! kernel: bridge, veths, addresses, nftables port forwarding.
//!
//! Each test owns its bridge (`btn<N>`), subnet (`10.88.<100+N>.0/24`), nft table
//! (`berth_test<N>`), state dir and namespaces (under its own temp dir), so the tests run in
//! parallel; a `Fixture` removes all of them on drop, even when the test fails. The host's
//! `net.ipv4.ip_forward` is left alone (`with_ip_forward(false)`): every connection here starts
//! on this host, which needs no forwarding.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_engine::network::{
    netns, Attachment, Network, NetworkConfig, NetworkError, PortMapError, PortMapping, Protocol,
};
use berth_tests::{require_command, require_root, run_ok, TestRoot};

/// A TCP and UDP server answering `<tag> <peer-address> <request>`, so a test sees which
/// namespace answered and what source address the connection arrived from.
const ECHO_SERVER: &str = r#"
import socket, sys, threading
tag, port = sys.argv[1].encode(), int(sys.argv[2])
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    while True:
        data, peer = u.recvfrom(4096)
        u.sendto(tag + b" " + peer[0].encode() + b" " + data, peer)
threading.Thread(target=udp, daemon=True).start()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(64)
while True:
    c, peer = s.accept()
    data = c.recv(4096)
    c.sendall(tag + b" " + peer[0].encode() + b" " + data)
    c.close()
"#;

const SERVER_PORT: u16 = 7000;

struct Fixture {
    network: Network,
    root: TestRoot,
    namespaces: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Fixture {
    fn new(n: u8) -> Self {
        require_root();
        require_command("nft", "nftables");
        require_command("nsenter", "util-linux");
        require_command("python3", "python3");
        require_command("busybox", "busybox-static");
        let root = TestRoot::new();
        let config = NetworkConfig::new(
            &format!("btn{n}"),
            format!("10.88.{}.0/24", 100 + u16::from(n))
                .parse()
                .unwrap(),
            &format!("berth_test{n}"),
            &root.path("network"),
        )
        .unwrap()
        .with_ip_forward(false);
        let network = Network::new(config);
        // Leftovers of an earlier run that was killed before its own cleanup.
        network.teardown().unwrap();
        Fixture {
            network,
            root,
            namespaces: Vec::new(),
            children: Vec::new(),
        }
    }

    fn netns(&mut self, name: &str) -> PathBuf {
        let path = netns::create(&self.root.path("netns"), name).unwrap();
        self.namespaces.push(path.clone());
        path
    }

    /// Starts the echo server in `ns` and waits until it answers on the container address.
    fn serve(&mut self, ns: &Path, tag: &str, ip: Ipv4Addr) {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(["python3", "-c", ECHO_SERVER, tag, &SERVER_PORT.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start echo server");
        self.children.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(SocketAddrV4::new(ip, SERVER_PORT)).is_err() {
            assert!(Instant::now() < deadline, "echo server {tag} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn bridge(&self) -> &str {
        self.network.config().bridge()
    }

    fn gateway(&self) -> Ipv4Addr {
        self.network.config().subnet().gateway()
    }

    /// The comments of every rule in the test's nft table.
    fn rule_comments(&self) -> Vec<String> {
        let out = run_ok(Command::new("nft").args([
            "-j",
            "list",
            "table",
            "ip",
            self.network.config().table(),
        ]));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|item| item["rule"]["comment"].as_str().map(str::to_string))
            .collect()
    }

    fn rules_of(&self, id: &str) -> usize {
        let tag = format!("ctr={id} ");
        self.rule_comments()
            .iter()
            .filter(|c| c.starts_with(&tag))
            .count()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(e) = self.network.teardown() {
            eprintln!("network teardown: {e}");
        }
        for ns in &self.namespaces {
            if let Err(e) = netns::remove(ns) {
                eprintln!("netns cleanup: {e}");
            }
        }
    }
}

fn publish(host_port: u16, protocol: Protocol) -> PortMapping {
    PortMapping {
        host_ip: None,
        host_port,
        container_port: SERVER_PORT,
        protocol,
    }
}

fn tcp_request(addr: SocketAddrV4, msg: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(msg.as_bytes()).unwrap();
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .unwrap_or_else(|e| panic!("read from {addr}: {e}"));
    reply
}

fn udp_request(addr: SocketAddrV4, msg: &str) -> String {
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..10 {
        sock.send_to(msg.as_bytes(), addr).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    panic!("no UDP reply from {addr}");
}

fn in_netns(ns: &Path, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(args)
        .output()
        .expect("run nsenter")
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// An address of this host outside berth's 10.88.0.0/16 (e.g. eth0's).
fn host_global_address() -> Ipv4Addr {
    require_command("ip", "iproute2");
    let out = run_ok(Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            line.split_whitespace()
                .nth(3)?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .find(|ip: &Ipv4Addr| ip.octets()[..2] != [10, 88])
        .expect("this host has a global IPv4 address outside 10.88.0.0/16")
}

fn host_port(a: &Attachment, protocol: Protocol) -> u16 {
    a.ports
        .iter()
        .find(|p| p.protocol == protocol)
        .map(|p| p.host_port)
        .unwrap()
}

#[test]
fn attached_namespaces_get_addresses_and_reach_gateway_and_each_other() {
    let mut f = Fixture::new(1);
    let (ns_a, ns_b) = (f.netns("a"), f.netns("b"));
    let a = f.network.attach("n1-a", &ns_a, &[]).unwrap();
    let b = f.network.attach("n1-b", &ns_b, &[]).unwrap();

    let subnet = f.network.config().subnet();
    assert!(subnet.contains(a.ip) && subnet.contains(b.ip));
    assert_ne!(a.ip, b.ip);
    assert_eq!(a.gateway, f.gateway());

    let addr = run_ok(Command::new("nsenter").args([
        &format!("--net={}", ns_a.display()),
        "busybox",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]));
    assert!(
        String::from_utf8_lossy(&addr.stdout).contains(&format!("{}/24", a.ip)),
        "eth0 in a lacks {}",
        a.ip
    );
    let master = std::fs::read_link(format!("/sys/class/net/{}/master", a.veth)).unwrap();
    assert!(master.ends_with(f.bridge()), "{} not in bridge", a.veth);

    let gw = f.gateway().to_string();
    let ping_gw = in_netns(&ns_a, &["busybox", "ping", "-c", "1", "-W", "3", &gw]);
    assert!(ping_gw.status.success(), "a cannot ping the gateway {gw}");
    let ping_b = in_netns(
        &ns_a,
        &["busybox", "ping", "-c", "1", "-W", "3", &b.ip.to_string()],
    );
    assert!(ping_b.status.success(), "a cannot ping b at {}", b.ip);
    assert_eq!(f.network.attachment("n1-a").unwrap(), Some(a));
}

#[test]
fn forwards_tcp_and_udp_from_localhost_and_the_hosts_own_addresses() {
    let mut f = Fixture::new(2);
    let ns = f.netns("web");
    let a = f
        .network
        .attach(
            "n2-web",
            &ns,
            &[publish(0, Protocol::Tcp), publish(0, Protocol::Udp)],
        )
        .unwrap();
    f.serve(&ns, "web", a.ip);
    let (tcp_port, udp_port) = (host_port(&a, Protocol::Tcp), host_port(&a, Protocol::Udp));
    assert!(tcp_port != 0 && udp_port != 0, "host ports were not picked");

    // From 127.0.0.1: DNAT in the output hook, then masquerade to the gateway address.
    let reply = tcp_request(SocketAddrV4::new(Ipv4Addr::LOCALHOST, tcp_port), "hello");
    assert_eq!(reply, format!("web {} hello", f.gateway()));
    // From the host's own address on the bridge: no masquerade needed.
    let reply = tcp_request(SocketAddrV4::new(f.gateway(), tcp_port), "via-gw");
    assert_eq!(reply, format!("web {} via-gw", f.gateway()));
    // From the host's primary address: DNAT as well, the container answers it via the
    // gateway, so it sees the real source.
    let primary = host_global_address();
    let reply = tcp_request(SocketAddrV4::new(primary, tcp_port), "via-primary");
    assert_eq!(reply, format!("web {primary} via-primary"));
    // UDP, both ways.
    let reply = udp_request(SocketAddrV4::new(Ipv4Addr::LOCALHOST, udp_port), "dgram");
    assert_eq!(reply, format!("web {} dgram", f.gateway()));
    let reply = udp_request(SocketAddrV4::new(f.gateway(), udp_port), "dgram2");
    assert_eq!(reply, format!("web {} dgram2", f.gateway()));
    assert_eq!(f.rules_of("n2-web"), 2);
}

#[test]
fn two_pods_share_a_container_port_on_different_host_ports() {
    let mut f = Fixture::new(3);
    let (ns_a, ns_b) = (f.netns("pod-a"), f.netns("pod-b"));
    let a = f
        .network
        .attach("n3-pod-a", &ns_a, &[publish(0, Protocol::Tcp)])
        .unwrap();
    let b = f
        .network
        .attach("n3-pod-b", &ns_b, &[publish(0, Protocol::Tcp)])
        .unwrap();
    f.serve(&ns_a, "pod-a", a.ip);
    f.serve(&ns_b, "pod-b", b.ip);
    let (pa, pb) = (host_port(&a, Protocol::Tcp), host_port(&b, Protocol::Tcp));
    assert_ne!(pa, pb);
    let ra = tcp_request(SocketAddrV4::new(Ipv4Addr::LOCALHOST, pa), "x");
    let rb = tcp_request(SocketAddrV4::new(Ipv4Addr::LOCALHOST, pb), "x");
    assert!(ra.starts_with("pod-a "), "{ra}");
    assert!(rb.starts_with("pod-b "), "{rb}");
}

#[test]
fn a_taken_port_is_a_clear_error_and_leaves_nothing_behind() {
    let mut f = Fixture::new(4);
    let (ns_a, ns_b, ns_c) = (f.netns("a"), f.netns("b"), f.netns("c"));

    // Taken by a socket listening on the host.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = listener.local_addr().unwrap().port();
    let err = f
        .network
        .attach("n4-a", &ns_a, &[publish(busy, Protocol::Tcp)])
        .unwrap_err();
    assert!(
        matches!(err, NetworkError::PortMap(PortMapError::InUse { port, .. }) if port == busy),
        "{err}"
    );
    assert!(
        err.to_string().contains("already in use on this host"),
        "{err}"
    );
    assert_eq!(f.network.attachment("n4-a").unwrap(), None);
    assert!(!link_exists(&berth_engine::network::veth_name("n4-a")));
    let eth0 = in_netns(&ns_a, &["busybox", "ip", "link", "show", "eth0"]);
    assert!(!eth0.status.success(), "eth0 was left in the namespace");

    // Taken by another container's mapping; the same port over UDP is still free.
    let b = f
        .network
        .attach("n4-b", &ns_b, &[publish(0, Protocol::Tcp)])
        .unwrap();
    let port = host_port(&b, Protocol::Tcp);
    let err = f
        .network
        .attach(
            "n4-c",
            &ns_c,
            &[publish(port, Protocol::Udp), publish(port, Protocol::Tcp)],
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("tcp/0.0.0.0:{port} is already forwarded to n4-b")),
        "{err}"
    );
    assert_eq!(f.rules_of("n4-c"), 0);
    assert_eq!(f.rules_of("n4-b"), 1);
    assert!(!link_exists(&berth_engine::network::veth_name("n4-c")));
    assert_eq!(f.network.attachment("n4-c").unwrap(), None);
    // The address c would have had is free: the next attach gets a fresh one, not b's.
    let c = f.network.attach("n4-c", &ns_c, &[]).unwrap();
    assert_ne!(c.ip, b.ip);
    drop(listener);
}

#[test]
fn detach_removes_exactly_its_rules_and_veth_and_forwarding_outlives_the_handle() {
    let mut f = Fixture::new(5);
    let (ns_a, ns_b) = (f.netns("a"), f.netns("b"));
    let a = f
        .network
        .attach(
            "n5-a",
            &ns_a,
            &[publish(0, Protocol::Tcp), publish(0, Protocol::Udp)],
        )
        .unwrap();
    let b = f
        .network
        .attach("n5-b", &ns_b, &[publish(0, Protocol::Tcp)])
        .unwrap();
    f.serve(&ns_b, "b", b.ip);
    let before = f.rule_comments();
    assert_eq!(f.rules_of("n5-a"), 2);
    assert_eq!(f.network.attachments().unwrap(), vec![a.clone(), b.clone()]);

    // A new handle on the same network (as after a monitor or daemon restart) sees the
    // state the first one left and forwarding never depended on a process.
    let restarted = Network::new(f.network.config().clone());
    assert_eq!(restarted.attachment("n5-a").unwrap(), Some(a.clone()));
    assert!(restarted.detach("n5-a").unwrap());
    assert!(
        !restarted.detach("n5-a").unwrap(),
        "second detach found something"
    );

    assert!(!link_exists(&a.veth), "veth {} still there", a.veth);
    assert!(link_exists(&b.veth));
    assert_eq!(f.rules_of("n5-a"), 0);
    let after = f.rule_comments();
    assert_eq!(
        after,
        before
            .into_iter()
            .filter(|c| !c.starts_with("ctr=n5-a "))
            .collect::<Vec<_>>(),
        "detach touched rules that were not its own"
    );
    let reply = tcp_request(
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, host_port(&b, Protocol::Tcp)),
        "still",
    );
    assert!(reply.starts_with("b "), "{reply}");
    assert_eq!(f.network.attachment("n5-a").unwrap(), None);
    assert_eq!(f.network.attachments().unwrap(), vec![b]);
}

#[test]
fn concurrent_attaches_never_share_an_address() {
    let mut f = Fixture::new(6);
    let namespaces: Vec<PathBuf> = (0..8).map(|i| f.netns(&format!("c{i}"))).collect();
    let config = f.network.config().clone();
    let workers: Vec<_> = namespaces
        .into_iter()
        .enumerate()
        .map(|(i, ns)| {
            // Separate handles, as separate berth processes would have.
            let network = Network::new(config.clone());
            std::thread::spawn(move || network.attach(&format!("n6-c{i}"), &ns, &[]))
        })
        .collect();
    let mut ips: Vec<Ipv4Addr> = workers
        .into_iter()
        .map(|w| w.join().unwrap().unwrap().ip)
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 8, "an address was handed out twice: {ips:?}");
}

#[test]
fn a_none_namespace_gets_loopback_only() {
    let mut f = Fixture::new(7);
    let ns = f.netns("none");
    netns::loopback_up(&ns).unwrap();
    let ping = in_netns(&ns, &["busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1"]);
    assert!(ping.status.success(), "loopback is not up");
    let links = run_ok(Command::new("nsenter").args([
        &format!("--net={}", ns.display()),
        "busybox",
        "ip",
        "-o",
        "link",
    ]));
    let links = String::from_utf8_lossy(&links.stdout).into_owned();
    assert_eq!(links.lines().count(), 1, "more than lo: {links}");
}

#[test]
fn the_hosts_own_namespace_is_refused() {
    let f = Fixture::new(8);
    let err = f
        .network
        .attach("n8-host", Path::new("/proc/self/ns/net"), &[])
        .unwrap_err();
    assert!(matches!(err, NetworkError::HostNamespace(_)), "{err}");
    assert!(
        !link_exists(f.bridge()),
        "bridge created for a refused attach"
    );
    assert!(!link_exists(&berth_engine::network::veth_name("n8-host")));
}

/// Removes network namespace files made by a test (outside any `Fixture`).
struct NetnsGuard(Vec<PathBuf>);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        for ns in &self.0 {
            if let Err(e) = netns::remove(ns) {
                eprintln!("netns cleanup: {e}");
            }
        }
    }
}

/// Traffic from another machine and out to it: the prerouting DNAT path, forwarding and egress
/// masquerade, which need `ip_forward`. To leave the host's sysctl and links alone, the whole
/// test runs in a private "host" namespace, wired by a veth to an "outside" namespace that
/// plays the other machine; removing both namespaces removes everything the test made.
#[test]
fn other_machines_reach_forwarded_ports_and_containers_reach_out() {
    require_root();
    require_command("ip", "iproute2");
    let scratch = TestRoot::new();
    let dir = scratch.path("ns");
    let mut guard = NetnsGuard(Vec::new());
    let host = netns::create(&dir, "host").unwrap();
    guard.0.push(host.clone());
    let outside = netns::create(&dir, "outside").unwrap();
    guard.0.push(outside.clone());
    // The wire between them: 192.168.77.1 (host) <-> 192.168.77.2 (outside).
    for args in [
        "link add bto0 type veth peer name bto1",
        &format!("link set bto1 netns {}", outside.display()),
        "addr add 192.168.77.1/24 dev bto0",
        "link set bto0 up",
        "link set lo up",
    ] {
        run_ok(
            Command::new("nsenter")
                .arg(format!("--net={}", host.display()))
                .arg("ip")
                .args(args.split(' ')),
        );
    }
    for args in [
        "addr add 192.168.77.2/24 dev bto1",
        "link set bto1 up",
        "link set lo up",
    ] {
        run_ok(
            Command::new("nsenter")
                .arg(format!("--net={}", outside.display()))
                .arg("ip")
                .args(args.split(' ')),
        );
    }

    let (host_in, outside_in) = (host.clone(), outside.clone());
    let body = std::thread::spawn(move || {
        let file = std::fs::File::open(&host_in).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        // From here on this thread, its threads and its children see the private host.
        let mut f = Fixture::new(9);
        let network = Network::new(f.network.config().clone().with_ip_forward(true));
        let ns = f.netns("web");
        let a = network
            .attach("n9-web", &ns, &[publish(0, Protocol::Tcp)])
            .unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim(),
            "1",
            "attach did not enable forwarding in the private host"
        );
        f.serve(&ns, "web", a.ip);
        let port = host_port(&a, Protocol::Tcp);

        // Inbound from the other machine: DNAT in prerouting, the client's address kept.
        let inbound = run_ok(
            Command::new("nsenter")
                .arg(format!("--net={}", outside_in.display()))
                .args([
                    "busybox",
                    "nc",
                    "-w",
                    "5",
                    "192.168.77.1",
                    &port.to_string(),
                ])
                .stdin(Stdio::piped())
                .env("PAYLOAD", "in"),
        );
        let reply = String::from_utf8_lossy(&inbound.stdout).into_owned();
        assert_eq!(reply, "web 192.168.77.2 ", "inbound reply");

        // Hairpin: the container reaches its own forwarded port via the host's address, its
        // connection masqueraded to the gateway so the reply comes back the same way.
        let hairpin = in_netns(
            &ns,
            &[
                "busybox",
                "nc",
                "-w",
                "5",
                "192.168.77.1",
                &port.to_string(),
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&hairpin.stdout),
            format!("web {} ", a.gateway),
            "hairpin reply"
        );

        // Outbound to the other machine: masqueraded to the host's address on that link.
        let server = Command::new("nsenter")
            .arg(format!("--net={}", outside_in.display()))
            .args(["python3", "-c", ECHO_SERVER, "outside", "7001"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        f.children.push(server);
        let deadline = Instant::now() + Duration::from_secs(10);
        let reply = loop {
            let out = in_netns(&ns, &["busybox", "nc", "-w", "5", "192.168.77.2", "7001"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if !text.is_empty() || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(reply, "outside 192.168.77.1 ", "outbound reply");
    });
    let result = body.join();
    drop(guard);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_port_published_on_one_host_address_is_forwarded_only_there() {
    let mut f = Fixture::new(10);
    let ns = f.netns("local");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let spec = format!("127.0.0.1:{port}:{SERVER_PORT}");
    let mappings = berth_engine::network::parse_publish(&spec).unwrap();
    let a = f.network.attach("n10-local", &ns, &mappings).unwrap();
    f.serve(&ns, "local", a.ip);
    let reply = tcp_request(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port), "lo");
    assert_eq!(reply, format!("local {} lo", f.gateway()));
    let other = TcpStream::connect_timeout(
        &SocketAddrV4::new(f.gateway(), port).into(),
        Duration::from_secs(3),
    );
    assert!(
        other.is_err(),
        "port {port} published on 127.0.0.1 answered on {}",
        f.gateway()
    );
}

#[test]
fn a_udp_client_reaches_the_new_container_after_its_port_changes_hands() {
    let mut f = Fixture::new(11);
    let (ns_a, ns_b) = (f.netns("a"), f.netns("b"));
    let a = f
        .network
        .attach("n11-a", &ns_a, &[publish(0, Protocol::Udp)])
        .unwrap();
    f.serve(&ns_a, "a", a.ip);
    let port = host_port(&a, Protocol::Udp);
    // One client socket, one source port, for the whole test: the conntrack entry of its
    // flow to a must not outlive a's detach.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let target = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let ask = |msg: &str| -> Option<String> {
        let mut buf = [0u8; 4096];
        for _ in 0..10 {
            client.send_to(msg.as_bytes(), target).unwrap();
            if let Ok((n, _)) = client.recv_from(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        None
    };
    assert_eq!(ask("1").as_deref().map(|r| &r[..2]), Some("a "));
    assert!(f.network.detach("n11-a").unwrap());
    let b = f
        .network
        .attach("n11-b", &ns_b, &[publish(port, Protocol::Udp)])
        .unwrap();
    f.serve(&ns_b, "b", b.ip);
    let reply = ask("2");
    assert_eq!(
        reply.as_deref().map(|r| &r[..2]),
        Some("b "),
        "the old flow still points at the detached container: {reply:?}"
    );
}

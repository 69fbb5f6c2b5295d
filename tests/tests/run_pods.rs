//! Pods and joined network namespaces, as root: containers of a pod reach each other on
//! localhost, share a volume, its host name and its IPC namespace; two pods publish the same container
//! port on different host ports; `pod stop` stops every container and releases the pod's
//! network; `pod rm -f` leaves no network namespace, namespace mount, veth, nft rule, address,
//! cgroup or directory behind; `--network container:NAME` joins a running container and is
//! refused for a stopped one; flags a pod owns are refused with `--pod`; pod names are unique.
//! Each test has its own bridge, nft table and cgroup parent (`TestRoot::with_private_network`)
//! and removes its pods and containers (Fixture's drop), also when it fails.

mod run_support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_tests::{require_command, run_ok};
use run_support::{stderr, stdout, Fixture};

/// busybox httpd serving `body` on port 80 of the container's (or pod's) network.
const HTTPD: &str =
    "mkdir -p /www && echo \"$BODY\" > /www/index.html && exec httpd -f -p 80 -h /www";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GETs `url` with curl until it answers (10 s at most) and returns the body.
fn fetch(url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("curl")
            .args(["-s", "-m", "2", url])
            .output()
            .unwrap();
        if out.status.success() {
            return stdout(&out);
        }
        assert!(Instant::now() < deadline, "nothing answered on {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `script` in a throwaway busybox container of pod `pod` and returns its stdout.
fn in_pod(f: &Fixture, pod: &str, script: &str) -> String {
    stdout(&run_ok(f.berth().args([
        "run", "--rm", "--pod", pod, "busybox", "sh", "-c", script,
    ])))
}

/// Starts busybox httpd answering `body` as a detached container of pod `pod`.
fn httpd_in_pod(f: &mut Fixture, pod: &str, name: &str, body: &str) -> String {
    let name = f.name(name);
    let out = run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name, "--pod", pod, "-e"])
            .arg(format!("BODY={body}"))
            .args(["busybox", "sh", "-c", HTTPD]),
    );
    stdout(&out).trim().to_string()
}

fn inspect_pod(f: &Fixture, pod: &str) -> serde_json::Value {
    let out = run_ok(f.berth().args(["pod", "inspect", pod]));
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    all[0].clone()
}

fn fails(out: &Output, wanted: &str) {
    assert!(!out.status.success(), "succeeded: {}", stdout(out));
    assert!(
        stderr(out).contains(wanted),
        "stderr lacks {wanted:?}: {}",
        stderr(out)
    );
}

#[test]
fn containers_of_a_pod_share_localhost_hostname_and_ipc() {
    let mut f = Fixture::new();
    let pod = f.pod("pod-share");
    run_ok(f.berth().args([
        "pod", "create", "--name", &pod, "--label", "tier=web", "--label", "team",
    ]));
    let name = f.name("pod-share-web");
    let out = run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name, "--pod", &pod])
            .args([
                "-v",
                "pod-share-vol:/www",
                "-e",
                "BODY=hello-over-localhost",
            ])
            .args(["busybox", "sh", "-c", HTTPD]),
    );
    let web = stdout(&out).trim().to_string();
    // A second container of the pod reaches the first on localhost.
    let script =
        "for i in $(seq 50); do wget -qO- http://127.0.0.1:80/ && exit 0; sleep 0.1; done; exit 1";
    assert_eq!(in_pod(&f, &pod, script), "hello-over-localhost\n");
    // A third writes into the volume the first serves from.
    let write = "echo written-by-a-neighbour > /data/v.html";
    run_ok(
        f.berth()
            .args(["run", "--rm", "--pod", &pod, "-v", "pod-share-vol:/data"])
            .args(["busybox", "sh", "-c", write]),
    );
    assert_eq!(
        in_pod(&f, &pod, "wget -qO- http://127.0.0.1:80/v.html"),
        "written-by-a-neighbour\n"
    );

    // Same host name, /etc/hostname and network, IPC and UTS namespaces in two containers.
    let ids =
        "hostname; cat /etc/hostname; for n in net ipc uts; do readlink /proc/self/ns/$n; done";
    let first = in_pod(&f, &pod, ids);
    let second = in_pod(&f, &pod, ids);
    assert_eq!(first, second);
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines[..2], [pod.as_str(), pod.as_str()], "{first}");
    for (line, kind) in lines[2..].iter().zip(["net", "ipc", "uts"]) {
        let host = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert_ne!(
            Path::new(line),
            host,
            "the pod's {kind} namespace is the host's"
        );
    }
    let ps = stdout(&run_ok(f.berth().args(["pod", "ps"])));
    let row = ps.lines().find(|l| l.contains(&pod)).expect("pod listed");
    assert!(row.contains("Running"), "{ps}");
    assert!(row.trim_end().ends_with(" 1"), "one container: {ps}");
    let filtered = stdout(&run_ok(f.berth().args([
        "pod",
        "ps",
        "--filter",
        "label=tier=web",
    ])));
    assert!(filtered.contains(&pod), "{filtered}");
    let other = stdout(&run_ok(f.berth().args([
        "pod",
        "ps",
        "--filter",
        "label=tier=db",
    ])));
    assert!(!other.contains(&pod), "{other}");

    let info = inspect_pod(&f, &pod);
    assert_eq!(info["Name"], pod.as_str());
    assert_eq!(info["State"], "Running");
    assert_eq!(info["Hostname"], pod.as_str());
    assert_eq!(info["Labels"]["tier"], "web");
    assert_eq!(info["Labels"]["team"], "");
    assert_eq!(info["Containers"][0]["Id"], web.as_str());
    assert_eq!(info["Containers"][0]["State"], "running");
    let ip = info["NetworkSettings"]["IPAddress"].as_str().unwrap();
    assert!(ip.starts_with("10.88."), "{info}");
    let members = stdout(&run_ok(
        f.berth()
            .args(["ps", "-q", "--no-trunc", "--filter"])
            .arg(format!("pod={pod}")),
    ));
    assert_eq!(members.trim(), web);
}

#[test]
fn two_pods_publish_the_same_container_port_on_different_host_ports() {
    let mut f = Fixture::new();
    require_command("curl", "curl");
    let (port_a, port_b) = (free_port(), free_port());
    for (pod, port, body) in [
        ("pod-a", port_a, "from-pod-a"),
        ("pod-b", port_b, "from-pod-b"),
    ] {
        let pod = f.pod(pod);
        run_ok(
            f.berth()
                .args(["pod", "create", "--name", &pod, "-p"])
                .arg(format!("127.0.0.1:{port}:80")),
        );
        httpd_in_pod(&mut f, &pod, &format!("{pod}-web"), body);
    }
    assert_eq!(
        fetch(&format!("http://127.0.0.1:{port_a}/")),
        "from-pod-a\n"
    );
    assert_eq!(
        fetch(&format!("http://127.0.0.1:{port_b}/")),
        "from-pod-b\n"
    );
    let ports = &inspect_pod(&f, "pod-b")["NetworkSettings"]["Ports"]["80/tcp"][0];
    assert_eq!(ports["HostPort"], port_b.to_string());
    // A third pod asking for a taken host port is refused and leaves nothing.
    let out = f
        .berth()
        .args(["pod", "create", "--name", "pod-c", "-p"])
        .arg(format!("127.0.0.1:{port_a}:80"))
        .output()
        .unwrap();
    fails(&out, &port_a.to_string());
    let ps = stdout(&run_ok(f.berth().args(["pod", "ps"])));
    assert!(!ps.contains("pod-c"), "{ps}");
    assert_eq!(
        std::fs::read_dir(f.root.store().join("pods"))
            .unwrap()
            .count(),
        2
    );
}

/// What of pod `info` (pod inspect) and its containers `ids` is still on the host.
fn pod_leftovers(f: &Fixture, info: &serde_json::Value, ids: &[String]) -> Vec<String> {
    let pod_id = info["Id"].as_str().unwrap();
    let infra = info["InfraContainerId"].as_str().unwrap();
    let mut left = Vec::new();
    for path in [
        Path::new("/run/berth/netns").join(infra),
        Path::new("/run/berth").join(infra),
        f.root.store().join("pods").join(pod_id),
    ] {
        if path.exists() {
            left.push(path.display().to_string());
        }
    }
    let veth = format!("bv{}", &infra[..12]);
    if Path::new("/sys/class/net").join(&veth).exists() {
        left.push(format!("link {veth}"));
    }
    let table = f.nft_table();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let net = f.root.private_network().unwrap();
    for id in ids.iter().map(String::as_str).chain([infra, pod_id]) {
        if table.contains(id) {
            left.push(format!("nft rule of {id}"));
        }
        if mounts.contains(id) {
            left.push(format!("mount of {id}"));
        }
        if net
            .state_dir()
            .join("attachments")
            .join(format!("{id}.json"))
            .exists()
        {
            left.push(format!("attachment of {id}"));
        }
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap() {
            let dir = hierarchy.unwrap().path().join(net.cgroup_parent()).join(id);
            if dir.exists() {
                left.push(dir.display().to_string());
            }
        }
    }
    let ipam = std::fs::read_to_string(net.state_dir().join("ipam.json")).unwrap_or_default();
    if ipam.contains(infra) {
        left.push(format!("address of {infra}"));
    }
    left
}

#[test]
fn pod_stop_stops_everything_and_rm_f_leaves_nothing() {
    let mut f = Fixture::new();
    require_command("nft", "nftables");
    let pod = f.pod("pod-life");
    let port = free_port();
    run_ok(
        f.berth()
            .args(["pod", "create", "--name", &pod, "-p"])
            .arg(format!("127.0.0.1:{port}:80")),
    );
    let mut ids = Vec::new();
    for name in ["pod-life-1", "pod-life-2"] {
        let name = f.name(name);
        let out = run_ok(
            f.berth()
                .args(["run", "-d", "--name", &name, "--pod", &pod])
                .args(["busybox", "sleep", "1000"]),
        );
        ids.push(stdout(&out).trim().to_string());
    }
    let info = inspect_pod(&f, &pod);
    let infra = info["InfraContainerId"].as_str().unwrap().to_string();
    assert!(f.nft_table().contains(&infra), "no forward tagged {infra}");
    assert!(Path::new("/run/berth/netns").join(&infra).exists());

    run_ok(f.berth().args(["pod", "stop", "-t", "1", &pod]));
    let ps = f.ps(true);
    for name in ["pod-life-1", "pod-life-2"] {
        let row = ps.lines().find(|l| l.contains(name)).expect("listed");
        assert!(row.contains("Exited"), "{ps}");
    }
    assert_eq!(inspect_pod(&f, &pod)["State"], "Exited");
    // Stopped: the pod's network is released, its records stay.
    assert_eq!(
        pod_leftovers(&f, &info, &[]),
        vec![f
            .root
            .store()
            .join("pods")
            .join(info["Id"].as_str().unwrap())
            .display()
            .to_string()]
    );
    // As podman: a container started or run in a stopped pod starts its infra first, and
    // only that; `pod start` starts the rest.
    run_ok(f.berth().args(["start", "pod-life-1"]));
    let partly = inspect_pod(&f, &pod);
    assert_eq!(partly["State"], "Degraded", "{partly}");
    let states: Vec<&str> = partly["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["State"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["running", "exited"], "{partly}");
    run_ok(f.berth().args(["pod", "stop", "-t", "1", &pod]));
    let out = run_ok(
        f.berth()
            .args(["run", "--rm", "--pod", &pod, "busybox", "hostname"]),
    );
    assert_eq!(stdout(&out).trim(), partly["Hostname"].as_str().unwrap());

    // Started again: a fresh network and its containers; one more joins; rm needs -f.
    run_ok(f.berth().args(["pod", "start", &pod]));
    let again = inspect_pod(&f, &pod);
    assert_eq!(again["State"], "Running", "{again}");
    assert_eq!(again["Containers"][1]["State"], "running", "{again}");
    assert!(f.nft_table().contains(&infra), "no forward tagged {infra}");
    let name = f.name("pod-life-3");
    let out = run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name, "--pod", &pod])
            .args(["busybox", "sleep", "1000"]),
    );
    ids.push(stdout(&out).trim().to_string());
    let out = f.berth().args(["pod", "rm", &pod]).output().unwrap();
    fails(&out, "pod rm -f");
    assert!(f.ps(false).contains("pod-life-3"));

    run_ok(f.berth().args(["pod", "rm", "-f", &pod]));
    assert_eq!(pod_leftovers(&f, &info, &ids), Vec::<String>::new());
    assert_eq!(f.container_count(), 0);
    let ps = stdout(&run_ok(f.berth().args(["pod", "ps"])));
    assert!(!ps.contains(&pod), "{ps}");
    // Nothing of this test's network is left: no bridge, table, state dir or cgroup parent.
    assert_eq!(f.root.teardown_private_network(), Vec::<String>::new());
}

#[test]
fn network_container_joins_a_running_container_only() {
    let mut f = Fixture::new();
    let web = f.name("join-web");
    run_ok(
        f.berth()
            .args([
                "run",
                "-d",
                "--name",
                &web,
                "--hostname",
                "webhost",
                "-e",
                "BODY=joined",
            ])
            .args(["busybox", "sh", "-c", HTTPD]),
    );
    let join = format!("container:{web}");
    let out = run_ok(
        f.berth()
            .args(["run", "--rm", "--network", &join, "busybox", "sh", "-c"])
            .arg(
                "for i in $(seq 50); do wget -qO- http://127.0.0.1:80/ && break; sleep 0.1; done; \
         hostname; grep -c webhost /etc/hosts; readlink /proc/self/ns/net",
            ),
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..3], ["joined", "webhost", "1"], "{text}");
    let web_ns = stdout(&run_ok(
        f.berth().args(["run", "--rm", "--network", &join]).args([
            "busybox",
            "readlink",
            "/proc/self/ns/net",
        ]),
    ));
    assert_eq!(lines[3], web_ns.trim());

    for (flags, wanted) in [
        (
            vec!["-p", "8080:80"],
            "-p cannot be used with --network container:",
        ),
        (
            vec!["--hostname", "x"],
            "--hostname cannot be used with --network container:",
        ),
    ] {
        let out = f
            .berth()
            .args(["run", "--rm", "--network", &join])
            .args(flags)
            .args(["busybox", "true"])
            .output()
            .unwrap();
        fails(&out, wanted);
    }

    run_ok(f.berth().args(["stop", "-t", "1", &web]));
    let before = f.container_count();
    let out = f
        .berth()
        .args(["run", "--rm", "--network", &join, "busybox", "true"])
        .output()
        .unwrap();
    fails(
        &out,
        &format!("--network container:{web}: container is not running"),
    );
    let out = f
        .berth()
        .args([
            "run",
            "--rm",
            "--network",
            "container:no-such",
            "busybox",
            "true",
        ])
        .output()
        .unwrap();
    fails(&out, "no such container: no-such");
    assert_eq!(
        f.container_count(),
        before,
        "a refused run left a container"
    );
}

#[test]
fn pod_flags_are_refused_and_pod_names_are_unique() {
    let mut f = Fixture::new();
    let pod = f.pod("pod-flags");
    let id = stdout(&run_ok(f.berth().args(["pod", "create", "--name", &pod])));
    for (flags, wanted) in [
        (vec!["-p", "8080:80"], "-p cannot be used with --pod"),
        (
            vec!["--hostname", "h"],
            "--hostname cannot be used with --pod",
        ),
        (
            vec!["--network", "host"],
            "--network cannot be used with --pod",
        ),
        (
            vec!["--network", "bridge"],
            "--network cannot be used with --pod",
        ),
    ] {
        let out = f
            .berth()
            .args(["run", "--rm", "--pod", &pod])
            .args(flags)
            .args(["busybox", "true"])
            .output()
            .unwrap();
        fails(&out, wanted);
    }
    let out = f
        .berth()
        .args(["run", "--rm", "--pod", "no-such-pod", "busybox", "true"])
        .output()
        .unwrap();
    fails(&out, "no such pod: no-such-pod");
    assert_eq!(f.container_count(), 0, "a refused run left a container");

    let out = f
        .berth()
        .args(["pod", "create", "--name", &pod])
        .output()
        .unwrap();
    fails(
        &out,
        &format!("pod name \"{pod}\" is already in use by pod {}", id.trim()),
    );
    let out = f
        .berth()
        .args(["pod", "create", "--name", "bad/name"])
        .output()
        .unwrap();
    fails(&out, "invalid pod name");
    let out = f
        .berth()
        .args(["pod", "create", "--label", "=x"])
        .output()
        .unwrap();
    fails(&out, "label \"=x\"");
    let ps = stdout(&run_ok(f.berth().args(["pod", "ps", "-q"])));
    assert_eq!(ps.lines().count(), 1, "only the first pod exists: {ps}");

    // A name left by a create that died before writing its record (a daemon killed with -9)
    // is taken over, for pods and containers alike; a live one stays refused (above).
    let stale = f.pod("pod-stale");
    let ghost = "ab".repeat(32);
    std::fs::create_dir_all(f.root.store().join("pod-names")).unwrap();
    std::fs::write(f.root.store().join("pod-names").join(&stale), &ghost).unwrap();
    run_ok(f.berth().args(["pod", "create", "--name", &stale]));
    let ctr = f.name("ctr-stale");
    std::fs::create_dir_all(f.root.store().join("names")).unwrap();
    std::fs::write(f.root.store().join("names").join(&ctr), &ghost).unwrap();
    run_ok(
        f.berth()
            .args(["run", "--rm", "--name", &ctr, "busybox", "true"]),
    );

    // Labels on containers, and ps --filter label=.
    let name = f.name("labelled");
    run_ok(
        f.berth()
            .args([
                "run", "-d", "--name", &name, "--label", "app=shop", "--pod", &pod,
            ])
            .args(["busybox", "sleep", "100"]),
    );
    let hit = stdout(&run_ok(f.berth().args([
        "ps",
        "--filter",
        "label=app=shop",
    ])));
    assert!(hit.contains(&name), "{hit}");
    let miss = stdout(&run_ok(f.berth().args([
        "ps",
        "--filter",
        "label=app=cart",
    ])));
    assert!(!miss.contains(&name), "{miss}");
    let out = run_ok(f.berth().args(["inspect", &name]));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info[0]["Config"]["Labels"]["app"], "shop", "{info}");
    assert_eq!(info[0]["Pod"], id.trim(), "{info}");
    let mode = info[0]["HostConfig"]["NetworkMode"]
        .as_str()
        .unwrap_or_default();
    assert!(mode.starts_with("container:"), "{info}");
}

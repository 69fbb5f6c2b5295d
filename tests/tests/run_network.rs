//! `berth run` networking and bad input, as root: `-p 127.0.0.1:HOST:80` reaches busybox
//! httpd and `rm -f` removes its nft rules and veth; unknown image, bad `-p`, a taken name or
//! port are clear errors that leave nothing half-created. Uses berth's own bridge `berth0`
//! and table `berth`; every container made is removed (Drop guard).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_tests::{busybox_rootfs_tar, require_command, require_root, run_ok, TestRoot};

struct Fixture {
    root: TestRoot,
    names: Vec<String>,
}

impl Fixture {
    fn new() -> Self {
        require_root();
        let root = TestRoot::new();
        run_ok(
            root.berth()
                .arg("import")
                .arg(busybox_rootfs_tar())
                .arg("busybox"),
        );
        Fixture {
            root,
            names: Vec::new(),
        }
    }

    fn berth(&self) -> Command {
        self.root.berth()
    }

    fn name(&mut self, name: &str) -> String {
        self.names.push(name.to_string());
        name.to_string()
    }

    fn container_count(&self) -> usize {
        std::fs::read_dir(self.root.store().join("containers"))
            .map(|rd| rd.count())
            .unwrap_or(0)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.root.berth().args(["rm", "-f", name]).output();
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nft_berth() -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
        .unwrap();
    stdout(&out)
}

fn netns_names() -> Vec<String> {
    std::fs::read_dir("/run/berth/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Namespaces made since `before` that still exist and belong to no container of any test
/// store (other tests run containers at the same time).
fn stray_netns(before: &[String]) -> Vec<String> {
    netns_names()
        .into_iter()
        .filter(|n| !before.contains(n))
        .filter(|n| Path::new("/run/berth/netns").join(n).exists())
        .filter(|n| {
            let owned = std::fs::read_dir(std::env::temp_dir())
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .any(|e| e.path().join("store/containers").join(n).exists())
                })
                .unwrap_or(false);
            !owned
        })
        .collect()
}

#[test]
fn published_port_reaches_httpd_and_rm_f_removes_rules() {
    let mut f = Fixture::new();
    require_command("curl", "curl");
    require_command("nft", "nftables");
    let name = f.name("web-pub-1");
    let port = free_port();
    let out = run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name, "-p"])
            .arg(format!("127.0.0.1:{port}:80"))
            .args(["busybox", "sh", "-c"])
            .arg("mkdir -p /www && echo hello-from-berth > /www/index.html && exec httpd -f -p 80 -h /www"),
    );
    let id = stdout(&out).trim().to_string();
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let out = Command::new("curl")
            .args(["-s", "-m", "2", &url])
            .output()
            .unwrap();
        if out.status.success() {
            break stdout(&out);
        }
        assert!(Instant::now() < deadline, "httpd never answered on {url}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body, "hello-from-berth\n");
    let ps = stdout(&run_ok(f.berth().arg("ps")));
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    assert!(nft_berth().contains(&id), "no rule tagged {id}");
    let veth = format!("bv{}", &id[..12]);
    assert!(Path::new("/sys/class/net").join(&veth).exists());

    run_ok(f.berth().args(["rm", "-f", &name]));
    assert!(!nft_berth().contains(&id), "a rule of {id} survived rm -f");
    assert!(!Path::new("/sys/class/net").join(&veth).exists());
    assert!(!Path::new("/run/berth/netns").join(&id).exists());
    assert_eq!(f.container_count(), 0);
}

#[test]
fn bad_input_leaves_nothing_half_created() {
    let mut f = Fixture::new();
    let err = f
        .berth()
        .args(["run", "no-such-image", "true"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(stderr(&err).contains("no-such-image"), "{}", stderr(&err));
    assert_eq!(f.container_count(), 0);

    let err = f
        .berth()
        .args(["run", "-p", "127.0.0.1:notaport:80", "busybox", "true"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(stderr(&err).contains("notaport"), "{}", stderr(&err));
    assert_eq!(f.container_count(), 0);

    let err = f
        .berth()
        .args([
            "run",
            "--network",
            "none",
            "-p",
            "8080:80",
            "busybox",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert_eq!(f.container_count(), 0);

    // A name in use, and a port already forwarded to another container.
    let name = f.name("holder-1");
    let port = free_port();
    run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name, "-p"])
            .arg(format!("127.0.0.1:{port}:80"))
            .args(["busybox", "sleep", "1000"]),
    );
    let netns_before = netns_names();
    let err = f
        .berth()
        .args(["run", "-d", "--name", &name, "busybox", "sleep", "1000"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(stderr(&err).contains("already in use"), "{}", stderr(&err));
    let err = f
        .berth()
        .args(["run", "-d", "-p"])
        .arg(format!("127.0.0.1:{port}:80"))
        .args(["busybox", "sleep", "1000"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(stderr(&err).contains(&port.to_string()), "{}", stderr(&err));
    assert_eq!(f.container_count(), 1);
    assert_eq!(stray_netns(&netns_before), Vec::<String>::new());
    assert!(!std::fs::read_dir(f.root.store().join("names"))
        .unwrap()
        .any(|e| e.unwrap().file_name() != name.as_str()));

    // An unknown command: the monitor reports the failure and nothing is left.
    let err = f
        .berth()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "/no/such/binary",
        ])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert_eq!(f.container_count(), 1);
}

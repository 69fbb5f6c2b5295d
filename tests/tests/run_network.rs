//! `berth run` networking and bad input, as root: `-p 127.0.0.1:HOST:80` reaches busybox
//! httpd and `rm -f` removes its nft rules and veth; unknown image, bad `-p`, a taken name or
//! port are clear errors that leave nothing half-created. Each test has its own bridge, nft
//! table and cgroup parent (`TestRoot::with_private_network`), never berth's defaults; every
//! container made is removed (Drop guard), then those (TestRoot's drop).

mod run_support;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::{require_command, run_ok};
use run_support::{stderr, stdout, Fixture};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The ids (12-digit prefixes) of the containers a failed `berth run` began to create, from
/// its debug log (`create{container=...}` spans); ANSI colours removed.
fn created_ids(stderr_text: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = stderr_text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let mut ids: Vec<String> = plain
        .match_indices("container=")
        .filter_map(|(i, m)| plain.get(i + m.len()..i + m.len() + 12))
        .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Network namespaces left of the containers whose id starts with one of `ids`.
fn netns_of(ids: &[String]) -> Vec<String> {
    std::fs::read_dir("/run/berth/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| ids.iter().any(|id| n.starts_with(id.as_str())))
                .collect()
        })
        .unwrap_or_default()
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
    assert!(f.nft_table().contains(&id), "no rule tagged {id}");
    let veth = format!("bv{}", &id[..12]);
    assert!(Path::new("/sys/class/net").join(&veth).exists());

    run_ok(f.berth().args(["rm", "-f", &name]));
    assert!(
        !f.nft_table().contains(&id),
        "a rule of {id} survived rm -f"
    );
    assert!(!Path::new("/sys/class/net").join(&veth).exists());
    assert!(!Path::new("/run/berth/netns").join(&id).exists());
    assert_eq!(f.container_count(), 0);
    // Nothing of this test's network is left: no bridge, table, state dir or cgroup parent.
    assert_eq!(f.root.teardown_private_network(), Vec::<String>::new());
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
    let err = f
        .berth()
        .args(["run", "-d", "--name", &name, "busybox", "sleep", "1000"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(stderr(&err).contains("already in use"), "{}", stderr(&err));
    // Logged at debug level so the id of the half-made container is known: only its
    // namespace is looked for, not those of containers other tests run meanwhile.
    let err = f
        .berth()
        .env("BERTH_LOG", "debug")
        .args(["run", "-d", "-p"])
        .arg(format!("127.0.0.1:{port}:80"))
        .args(["busybox", "sleep", "1000"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(stderr(&err).contains(&port.to_string()), "{}", stderr(&err));
    assert_eq!(f.container_count(), 1);
    let failed = created_ids(&stderr(&err));
    assert_eq!(failed.len(), 1, "{}", stderr(&err));
    assert_eq!(netns_of(&failed), Vec::<String>::new());
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

#[test]
fn rm_detaches_from_the_recorded_network_whatever_the_settings_say_now() {
    let mut f = Fixture::new();
    require_command("nft", "nftables");
    let name = f.name("recorded-net-1");
    let port = free_port();
    let id = stdout(&run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name, "-p"])
            .arg(format!("127.0.0.1:{port}:80"))
            .args(["busybox", "sleep", "1000"]),
    ))
    .trim()
    .to_string();
    assert!(f.nft_table().contains(&id), "no rule tagged {id}");
    let veth = format!("bv{}", &id[..12]);
    assert!(Path::new("/sys/class/net").join(&veth).exists());

    // Settings are checked before anything is done.
    let bad = f
        .berth()
        .env("BERTH_SUBNET", "10.88.0.1/33")
        .arg("ps")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("10.88.0.1/33"), "{}", stderr(&bad));
    let bad = f
        .berth()
        .env("BERTH_CGROUP_PARENT", "../escape")
        .arg("ps")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("cgroup parent"), "{}", stderr(&bad));

    // Other (valid) settings: rm -f still detaches from the bridge and table it was attached to
    // and creates nothing of the new settings.
    run_ok(
        f.berth()
            .env("BERTH_BRIDGE", "bx199")
            .env("BERTH_SUBNET", "10.88.199.0/24")
            .env("BERTH_NFT_TABLE", "berth_x199")
            .env("BERTH_CGROUP_PARENT", "berth-x199")
            .args(["rm", "-f", &name]),
    );
    assert!(
        !f.nft_table().contains(&id),
        "a rule of {id} survived rm -f"
    );
    assert!(!Path::new("/sys/class/net").join(&veth).exists());
    assert!(!Path::new("/run/berth/netns").join(&id).exists());
    assert!(!Path::new("/sys/class/net/bx199").exists());
    assert_eq!(f.container_count(), 0);
    assert_eq!(f.root.teardown_private_network(), Vec::<String>::new());
}

//! The walkthrough of README's main command, as root: `berth build -t kubetm/hello`, `run -d
//! -p HOST:8000 --name hello`, curl prints "Hello World!", `ps` shows it with its ports,
//! `exec -it hello sh` runs a command through a pty, `logs` shows its output, and `rm -f`
//! leaves no nft rule, mount, veth, network namespace or cgroup behind. Once with the busybox
//! hello app (`Dockerfiles/hello-busybox`), once with the node one (`Dockerfiles/hello` on the
//! base `Dockerfiles/base/node-rootfs.sh` makes: about two minutes of debootstrap the first
//! time on a machine, then taken from `/var/cache/berth-base`). On a private network
//! (`TestRoot::with_private_network`); the host port is a free one, not 8100, so the test
//! never collides with a quick start running beside it.

mod run_support;

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{require_command, run_ok, workspace_root};
use run_support::{stderr, stdout, Fixture};

#[test]
fn hello_walkthrough_on_busybox() {
    let mut f = Fixture::new();
    walkthrough(&mut f, "Dockerfiles/hello-busybox", |_| {});
}

#[test]
fn hello_walkthrough_on_node() {
    let mut f = Fixture::new();
    require_command("debootstrap", "debootstrap");
    let tar = f.root.path("node.tar");
    run_ok(
        Command::new("sh")
            .arg(workspace_root().join("Dockerfiles/base/node-rootfs.sh"))
            .arg(&tar),
    );
    run_ok(f.berth().arg("import").arg(&tar).arg("node:bookworm"));
    std::fs::remove_file(&tar).unwrap();
    walkthrough(&mut f, "Dockerfiles/hello", |f| {
        // Debian's nodejs (its versions carry +dfsg), not the host's.
        let out = run_ok(
            f.berth()
                .args(["exec", "hello", "dpkg-query", "-W", "nodejs"]),
        );
        assert!(stdout(&out).contains("+dfsg"), "{}", stdout(&out));
    });
}

/// Builds `context` as kubetm/hello and walks through README's main command with it;
/// `check` runs while the container answers.
fn walkthrough(f: &mut Fixture, context: &str, check: impl Fn(&Fixture)) {
    require_command("curl", "curl");
    require_command("script", "bsdutils");
    require_command("nft", "nftables");
    run_ok(
        f.berth()
            .args(["build", "-t", "kubetm/hello"])
            .arg(workspace_root().join(context)),
    );
    let port = TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let name = f.name("hello");
    let id = stdout(&run_ok(
        f.berth()
            .args(["run", "-d", "-p", &format!("{port}:8000"), "--name", &name])
            .arg("kubetm/hello"),
    ))
    .trim()
    .to_string();

    // curl localhost:PORT prints the greeting.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let out = Command::new("curl")
            .args(["-s", "-m", "2", &format!("localhost:{port}")])
            .output()
            .unwrap();
        if out.status.success() {
            break stdout(&out);
        }
        assert!(Instant::now() < deadline, "hello never answered on {port}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body, "Hello World!\n");

    check(f);

    // ps shows it with its ports.
    let ps = f.ps(false);
    let row = ps
        .lines()
        .find(|l| l.ends_with(" hello"))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(row.starts_with(&id[..12]), "{ps}");
    assert!(row.contains("kubetm/hello"), "{ps}");
    assert!(row.contains(&format!("0.0.0.0:{port}->8000/tcp")), "{ps}");

    // exec -it hello sh: a shell on a pty, fed from script's stdin.
    let berth = f.berth();
    let cmdline = format!(
        "{} exec -it hello sh",
        berth.get_program().to_string_lossy()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmdline, "/dev/null"])
        .envs(berth.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo \"shell on $(tty) says $((6*7))\"; ls /hello*; exit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("shell on /dev/pts/"),
        "{text:?} {}",
        stderr(&out)
    );
    assert!(text.contains("says 42"), "{text:?}");
    assert!(text.contains("/hello."), "the app is not in /: {text:?}");
    assert!(out.status.success(), "{text:?}");

    // logs shows its output: the start line and the request httpd logged.
    let logs = run_ok(f.berth().args(["logs", "hello"]));
    let all = format!("{}{}", stdout(&logs), stderr(&logs));
    assert!(all.contains("hello: listening on port 8000"), "{all}");
    assert!(
        all.contains("GET /") || all.contains("response:200"),
        "{all}"
    );

    // rm -f leaves nothing behind.
    assert!(
        !f.leftovers_of(&id).is_empty(),
        "the running container holds nothing?"
    );
    run_ok(f.berth().args(["rm", "-f", "hello"]));
    assert_eq!(f.leftovers_of(&id), Vec::<String>::new());
    assert_eq!(f.container_count(), 0);
    let gone = Command::new("curl")
        .args(["-s", "-m", "2", &format!("localhost:{port}")])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "port {port} still answers after rm -f"
    );
    assert_eq!(f.root.teardown_private_network(), Vec::<String>::new());
}

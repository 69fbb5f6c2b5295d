//! `berth inspect`, `ps` formats, `exec`, `top`, `cp`, `port` and `-P` end to end, as root,
//! on busybox containers. Each test has its own store, bridge, nft table and cgroup parent
//! (`TestRoot::with_private_network`) and removes its containers (Drop guard).

mod run_support;

use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{require_command, run_ok, workspace_root};
use run_support::{stderr, stdout, Fixture};
use serde_json::Value;

/// Runs `busybox` detached with `args` before the image and `cmd` after it; returns its id.
fn run_d(f: &mut Fixture, name: &str, args: &[&str], cmd: &[&str]) -> String {
    let name = f.name(name);
    let out = run_ok(
        f.berth()
            .args(["run", "-d", "--name", &name])
            .args(args)
            .arg("busybox")
            .args(cmd),
    );
    stdout(&out).trim().to_string()
}

fn inspect(f: &Fixture, name: &str) -> Value {
    let out = run_ok(f.berth().args(["inspect", name]));
    let v: Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    v[0].clone()
}

fn format(f: &Fixture, name: &str, template: &str) -> String {
    let out = run_ok(f.berth().args(["inspect", "-f", template, name]));
    stdout(&out).trim_end_matches('\n').to_string()
}

fn exec(f: &Fixture, args: &[&str]) -> std::process::Output {
    f.berth().arg("exec").args(args).output().unwrap()
}

/// GETs `http://127.0.0.1:port/`, retrying until `timeout`.
fn curl(port: &str, timeout: Duration) -> String {
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + timeout;
    loop {
        let out = Command::new("curl")
            .args(["-s", "-m", "2", &url])
            .output()
            .unwrap();
        if out.status.success() {
            return stdout(&out);
        }
        assert!(Instant::now() < deadline, "nothing answered on {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn inspect_shows_what_was_asked_and_formats_it() {
    let mut f = Fixture::new();
    let id = run_d(
        &mut f,
        "insp-1",
        &[
            "-p",
            "8000",
            "-e",
            "GREETING=hi there",
            "-w",
            "/tmp",
            "--hostname",
            "box",
        ],
        &["sleep", "1000"],
    );
    let doc = inspect(&f, "insp-1");
    assert_eq!(doc["Id"], id.as_str());
    assert_eq!(doc["Name"], "/insp-1");
    assert_eq!(doc["Path"], "sleep");
    assert_eq!(doc["Args"], serde_json::json!(["1000"]));
    assert_eq!(doc["State"]["Status"], "running");
    assert_eq!(doc["State"]["Running"], true);
    assert!(doc["State"]["Pid"].as_i64().unwrap() > 0, "{doc}");
    assert_eq!(doc["Config"]["Hostname"], "box");
    assert_eq!(doc["Config"]["WorkingDir"], "/tmp");
    assert_eq!(doc["Config"]["Cmd"], serde_json::json!(["sleep", "1000"]));
    assert_eq!(doc["Config"]["Image"], "busybox");
    let env: Vec<&str> = doc["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"GREETING=hi there"), "{env:?}");
    assert!(
        doc["Config"]["ExposedPorts"]["8000/tcp"].is_object(),
        "{doc}"
    );
    assert_eq!(doc["HostConfig"]["NetworkMode"], "bridge");
    let binding = &doc["NetworkSettings"]["Ports"]["8000/tcp"][0];
    assert_eq!(binding["HostIp"], "0.0.0.0");
    let host_port = binding["HostPort"].as_str().unwrap().to_string();
    assert!(host_port.parse::<u16>().unwrap() > 0);
    let ip = doc["NetworkSettings"]["IPAddress"].as_str().unwrap();
    let net = f.root.private_network().unwrap();
    let prefix = net.subnet().rsplit_once('.').unwrap().0.to_string();
    assert!(
        ip.starts_with(&format!("{prefix}.")),
        "{ip} not in {}",
        net.subnet()
    );
    assert_eq!(doc["NetworkSettings"]["IPPrefixLen"], 24);
    assert!(
        doc["NetworkSettings"]["MacAddress"]
            .as_str()
            .is_some_and(|m| m.len() == 17),
        "{doc}"
    );

    // Templates people type.
    assert_eq!(format(&f, "insp-1", "{{.State.Status}}"), "running");
    assert_eq!(format(&f, "insp-1", "{{.NetworkSettings.IPAddress}}"), ip);
    assert_eq!(format(&f, "insp-1", "{{.Name}}"), "/insp-1");
    let config: Value = serde_json::from_str(&format(&f, "insp-1", "{{json .Config}}")).unwrap();
    assert_eq!(config["WorkingDir"], "/tmp");
    assert_eq!(
        format(
            &f,
            "insp-1",
            r#"{{range $p, $b := .NetworkSettings.Ports}}{{$p}}{{range $b}}={{.HostPort}}{{end}}{{end}}"#
        ),
        format!("8000/tcp={host_port}")
    );
    let bad = f
        .berth()
        .args(["inspect", "-f", "{{.State.Nope}}", "insp-1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains(r#"map has no entry for key "Nope""#),
        "{}",
        stderr(&bad)
    );

    // Exited, with the code of the signal that ended it.
    run_ok(f.berth().args(["kill", "insp-1"]));
    run_ok(f.berth().args(["wait", "insp-1"]));
    let doc = inspect(&f, "insp-1");
    assert_eq!(doc["State"]["Status"], "exited");
    assert_eq!(doc["State"]["Running"], false);
    assert_eq!(doc["State"]["ExitCode"], 137);
    assert_eq!(doc["State"]["Pid"], 0);
    assert_ne!(doc["State"]["FinishedAt"], "0001-01-01T00:00:00Z");

    // Not a container: images are looked up next; nothing at all is an error.
    let image = inspect(&f, "busybox");
    assert!(image["RepoTags"].to_string().contains("busybox"), "{image}");
    let none = f
        .berth()
        .args(["inspect", "no-such-thing"])
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(stderr(&none).contains("berth: no such object: no-such-thing"));
}

#[test]
fn ps_columns_formats_and_filters() {
    let mut f = Fixture::new();
    let id = run_d(&mut f, "ps-up", &["-p", "8000"], &["sleep", "1000"]);
    let done = run_d(&mut f, "ps-done", &[], &["true"]);
    run_ok(f.berth().args(["wait", "ps-done"]));
    let port = stdout(&run_ok(f.berth().args(["port", "ps-up", "8000"])))
        .trim()
        .to_string();

    let ps = f.ps(false);
    let mut lines = ps.lines();
    let header = lines.next().unwrap();
    let columns = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let mut at = 0;
    for col in columns {
        let i = header[at..]
            .find(col)
            .unwrap_or_else(|| panic!("{col} in {header}"));
        at += i + col.len();
    }
    let row: Vec<&str> = lines.collect();
    assert_eq!(row.len(), 1, "{ps}");
    assert!(row[0].starts_with(&id[..12]), "{ps}");
    assert!(row[0].contains("\"sleep 1000\""), "{ps}");
    assert!(row[0].contains(&format!("{port}->8000/tcp")), "{ps}");
    assert!(row[0].contains("Up "), "{ps}");
    assert!(row[0].ends_with("ps-up"), "{ps}");
    assert!(f.ps(true).contains("Exited (0)"), "{}", f.ps(true));

    let names = stdout(&run_ok(f.berth().args([
        "ps",
        "-a",
        "--format",
        "{{.Names}} {{.State}}",
    ])));
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["ps-done exited", "ps-up running"]);

    let json = stdout(&run_ok(f.berth().args(["ps", "--format", "json"])));
    let rows: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Names"], "ps-up");
    assert_eq!(rows[0]["ID"], &id[..12]);

    let table = stdout(&run_ok(f.berth().args([
        "ps",
        "-a",
        "--format",
        r"table {{.Names}}\t{{.Status}}",
    ])));
    let first = table.lines().next().unwrap();
    assert!(
        first.starts_with("NAMES") && first.ends_with("STATUS"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 3, "{table}");

    let exited = stdout(&run_ok(f.berth().args([
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        "status=exited",
    ])));
    assert_eq!(exited.trim(), done);
    let by_name = stdout(&run_ok(
        f.berth().args(["ps", "-aq", "--filter", "name=up"]),
    ));
    assert_eq!(by_name.trim(), &id[..12]);
    let bad = f
        .berth()
        .args(["ps", "--filter", "colour=red"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn exec_env_workdir_user_codes_and_stdin() {
    let mut f = Fixture::new();
    run_d(
        &mut f,
        "ex-1",
        &["-e", "A=from-run", "-w", "/tmp"],
        &["sleep", "1000"],
    );
    let out = exec(&f, &["ex-1", "sh", "-c", "echo $A; pwd; id -u"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from-run\n/tmp\n0\n");
    let out = exec(
        &f,
        &[
            "-e",
            "A=from-exec",
            "-w",
            "/",
            "-u",
            "nobody",
            "ex-1",
            "sh",
            "-c",
            "echo $A; pwd; id -u; id -g",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from-exec\n/\n65534\n65534\n");
    let out = exec(&f, &["-u", "1234:5", "ex-1", "id"]);
    assert!(
        stdout(&out).starts_with("uid=1234 gid=5"),
        "{}",
        stdout(&out)
    );

    // Exit codes: passed through; 127 not found, 126 not executable.
    assert_eq!(
        exec(&f, &["ex-1", "sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );
    let out = exec(&f, &["ex-1", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(exec(&f, &["ex-1", "/bin/nope"]).status.code(), Some(127));
    let out = exec(&f, &["ex-1", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    let out = exec(&f, &["-u", "nosuchuser", "ex-1", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nosuchuser"), "{}", stderr(&out));

    // -i passes stdin on; without it the command sees none.
    let piped = |args: &[&str]| {
        let mut child = f
            .berth()
            .arg("exec")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Without -i berth never reads its stdin and may be gone before the
        // write: a broken pipe there is the expected outcome, not a failure.
        let written = child.stdin.take().unwrap().write_all(b"through stdin\n");
        if let Err(e) = written {
            assert_eq!(
                e.kind(),
                ErrorKind::BrokenPipe,
                "writing to exec's stdin: {e}"
            );
        }
        stdout(&child.wait_with_output().unwrap())
    };
    assert_eq!(piped(&["-i", "ex-1", "cat"]), "through stdin\n");
    assert_eq!(piped(&["ex-1", "cat"]), "");

    // -d returns at once; the command runs on.
    let out = exec(
        &f,
        &["-d", "ex-1", "sh", "-c", "sleep 0.2; touch /tmp/detached"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exec(&f, &["ex-1", "test", "-f", "/tmp/detached"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "exec -d never ran its command");
        std::thread::sleep(Duration::from_millis(100));
    }

    // -it through a pty, from a caller without a terminal of its own (script gives one).
    require_command("script", "bsdutils");
    let berth = f.berth();
    let cmdline = format!(
        "{} exec -it ex-1 sh -c 'tty; echo TERM=$TERM; exit 4'",
        berth.get_program().to_string_lossy()
    );
    let out = Command::new("script")
        .args(["-qfec", &cmdline, "/dev/null"])
        .envs(berth.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("/dev/pts/"),
        "no pty: {text:?} {}",
        stderr(&out)
    );
    assert!(text.contains("TERM=xterm"), "{text:?}");
    assert_eq!(out.status.code(), Some(4), "{text:?}");

    // A stopped container runs nothing.
    run_ok(f.berth().args(["kill", "ex-1"]));
    run_ok(f.berth().args(["wait", "ex-1"]));
    let out = exec(&f, &["ex-1", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
}

#[test]
fn top_lists_the_container_processes() {
    let mut f = Fixture::new();
    // sh execs its last command: the container is `sleep 1002` and its child `sleep 1001`.
    run_d(
        &mut f,
        "top-1",
        &[],
        &["sh", "-c", "sleep 1001 & sleep 1002"],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = stdout(&run_ok(f.berth().args(["top", "top-1"])));
        if out.contains("sleep 1001") && out.contains("sleep 1002") {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "top never showed both sleeps: {out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let header = out.lines().next().unwrap();
    for col in ["UID", "PID", "PPID", "STIME", "CMD"] {
        assert!(header.contains(col), "{header}");
    }
    assert_eq!(out.lines().count(), 3, "two sleeps: {out}");
    assert!(!out.contains("berth"), "host processes leaked in: {out}");
    let custom = stdout(&run_ok(f.berth().args(["top", "top-1", "-o", "pid,comm"])));
    assert!(
        custom.lines().next().unwrap().contains("COMMAND"),
        "{custom}"
    );
    assert_eq!(custom.lines().count(), 3, "{custom}");
}

#[test]
fn cp_both_ways_follows_docker_rules_and_stays_inside() {
    let mut f = Fixture::new();
    run_d(
        &mut f,
        "cp-1",
        &["--hostname", "cp-box"],
        &["sleep", "1000"],
    );
    let host = tempfile::tempdir().unwrap();
    let h = |p: &str| host.path().join(p);
    std::fs::write(h("note.txt"), "from the host\n").unwrap();
    std::fs::create_dir_all(h("tree/sub")).unwrap();
    std::fs::write(h("tree/sub/leaf"), "leaf\n").unwrap();
    let cp = |src: &str, dest: &str| f.berth().args(["cp", src, dest]).output().unwrap();
    let cat = |path: &str| stdout(&exec(&f, &["cp-1", "cat", path]));

    // Host to container: a file into a directory, a file to a new name, a directory.
    let hs = |p: &str| h(p).to_string_lossy().into_owned();
    assert!(cp(&hs("note.txt"), "cp-1:/tmp").status.success());
    assert_eq!(cat("/tmp/note.txt"), "from the host\n");
    assert!(cp(&hs("note.txt"), "cp-1:/tmp/renamed").status.success());
    assert_eq!(cat("/tmp/renamed"), "from the host\n");
    assert!(cp(&hs("tree"), "cp-1:/tmp").status.success());
    assert_eq!(cat("/tmp/tree/sub/leaf"), "leaf\n");
    assert!(cp(&hs("tree/."), "cp-1:/tmp/renamed-dir").status.success());
    assert_eq!(cat("/tmp/renamed-dir/sub/leaf"), "leaf\n");
    let out = cp(&hs("note.txt"), "cp-1:/tmp/missing-dir/");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = cp(&hs("tree"), "cp-1:/tmp/note.txt");
    assert!(!out.status.success());

    // Container to host: a file, a directory into an existing one.
    assert!(cp("cp-1:/etc/hostname", &hs("hostname")).status.success());
    assert_eq!(std::fs::read_to_string(h("hostname")).unwrap(), "cp-box\n");
    std::fs::create_dir(h("back")).unwrap();
    assert!(cp("cp-1:/tmp/tree", &hs("back")).status.success());
    assert_eq!(
        std::fs::read_to_string(h("back/tree/sub/leaf")).unwrap(),
        "leaf\n"
    );
    let out = cp("cp-1:/no/such/file", &hs("x"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("could not find"), "{}", stderr(&out));

    // Symlinks in the container resolve inside it, whichever way the copy goes.
    let marker = format!("berth-cp-escape-{}", std::process::id());
    assert!(exec(
        &f,
        &[
            "cp-1",
            "sh",
            "-c",
            "ln -s /etc /tmp/etc-link && ln -s ../../../../../ /tmp/up"
        ]
    )
    .status
    .success());
    assert!(cp(&hs("note.txt"), &format!("cp-1:/tmp/etc-link/{marker}"))
        .status
        .success());
    assert!(
        !Path::new("/etc").join(&marker).exists(),
        "cp wrote to the host's /etc"
    );
    assert_eq!(cat(&format!("/etc/{marker}")), "from the host\n");
    assert!(cp(&hs("note.txt"), &format!("cp-1:/tmp/up/tmp/{marker}"))
        .status
        .success());
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "cp wrote to the host's /tmp"
    );
    assert_eq!(cat(&format!("/tmp/{marker}")), "from the host\n");
    assert!(cp("cp-1:/tmp/etc-link/hostname", &hs("via-link"))
        .status
        .success());
    assert_eq!(std::fs::read_to_string(h("via-link")).unwrap(), "cp-box\n");
    // A symlink source is copied as a link, not followed out of the container.
    assert!(cp("cp-1:/tmp/up", &hs("up-link")).status.success());
    assert!(std::fs::symlink_metadata(h("up-link"))
        .unwrap()
        .file_type()
        .is_symlink());

    // Tar streams with -.
    let out = cp("cp-1:/tmp/tree", "-");
    assert!(out.status.success());
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path().unwrap().to_string_lossy().into_owned();
            path.trim_end_matches('/').to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["tree", "tree/sub", "tree/sub/leaf"]);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(6);
    header.set_mode(0o644);
    tar.append_data(&mut header, "streamed.txt", &b"tar in"[..])
        .unwrap();
    let bytes = tar.into_inner().unwrap();
    let mut child = f
        .berth()
        .args(["cp", "-", "cp-1:/tmp"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(cat("/tmp/streamed.txt"), "tar in");

    // A stopped container's files are still there to copy.
    run_ok(f.berth().args(["kill", "cp-1"]));
    run_ok(f.berth().args(["wait", "cp-1"]));
    assert!(cp("cp-1:/tmp/note.txt", &hs("after-stop")).status.success());
    assert_eq!(
        std::fs::read_to_string(h("after-stop")).unwrap(),
        "from the host\n"
    );
    assert!(cp(&hs("note.txt"), "cp-1:/tmp/while-stopped")
        .status
        .success());
    let rootfs = f.containers_dir();
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&*rootfs.to_string_lossy()),
        "cp left the stopped container's rootfs mounted"
    );
}

#[test]
fn port_and_publish_all() {
    let mut f = Fixture::new();
    require_command("curl", "curl");
    run_ok(
        f.berth()
            .args(["build", "-t", "hello-bb"])
            .arg(workspace_root().join("Dockerfiles/hello-busybox")),
    );
    let name = f.name("port-1");
    run_ok(
        f.berth()
            .args(["run", "-d", "-P", "--name", &name, "hello-bb"]),
    );
    let all = stdout(&run_ok(f.berth().args(["port", "port-1"])));
    let (key, addr) = all.trim().split_once(" -> ").expect("one mapping");
    assert_eq!(key, "8000/tcp");
    let (ip, port) = addr.rsplit_once(':').unwrap();
    assert_eq!(ip, "0.0.0.0");
    assert_eq!(
        stdout(&run_ok(f.berth().args(["port", "port-1", "8000/tcp"]))).trim(),
        addr
    );
    assert_eq!(curl(port, Duration::from_secs(10)), "Hello World!\n");
    assert!(f.ps(false).contains(&format!("0.0.0.0:{port}->8000/tcp")));
    assert_eq!(
        format(&f, "port-1", "{{.HostConfig.PublishAllPorts}}"),
        "true"
    );
    let out = f.berth().args(["port", "port-1", "9999"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no public port '9999/tcp'"),
        "{}",
        stderr(&out)
    );
    let out = f
        .berth()
        .args(["run", "--rm", "-P", "--network", "none", "hello-bb"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--network bridge"),
        "{}",
        stderr(&out)
    );
}

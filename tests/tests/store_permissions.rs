//! The store is not a way to root, as root. A store holding an image with a 0666 character
//! device and a setuid file (unpacked), a container run with a password in its env and a
//! named volume, its json log, and a daemon running a Pod with a Secret volume: then, as
//! `nobody` (`setpriv --reuid=65534`), every path under the store and `/run/berth` is tried
//! for read, write and execute (search, for directories), and each that succeeds is named.
//! Records and logs are 0600, the Secret volume is a tmpfs that stays one mount across a
//! daemon restart and goes with the Pod, a store made open by an older berth is tightened
//! on its next use, a container running as uid 1000 still works in an owner-only store, and
//! the table the daemon made for its Services got the loopback guard (see loopback_guard.rs).

mod orchestrator_support;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_tests::{require_command, run_ok};
use orchestrator_support::{stdout, wait_for, Cluster};

const PASSWORD: &str = "hunter2-in-env";
const SECRET: &str = "s3cret-in-volume";

/// A one-layer image: `/dev/evil` (char 1:3, mode 0666) and `/suid` (mode 4755).
fn evil_tar(path: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir, "dev/", std::io::empty()).unwrap();
    let mut dev = tar::Header::new_gnu();
    dev.set_entry_type(tar::EntryType::Char);
    dev.set_mode(0o666);
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    dev.set_size(0);
    b.append_data(&mut dev, "dev/evil", std::io::empty())
        .unwrap();
    let script = b"#!/bin/sh\nid\n";
    let mut suid = tar::Header::new_gnu();
    suid.set_entry_type(tar::EntryType::Regular);
    suid.set_mode(0o4755);
    suid.set_size(script.len() as u64);
    b.append_data(&mut suid, "suid", &script[..]).unwrap();
    b.finish().unwrap();
}

/// Every path at or below `top` (not following symlinks, which are skipped: access checks
/// would follow them out of the tree).
fn walk(top: &Path, out: &mut Vec<PathBuf>) {
    let Ok(meta) = std::fs::symlink_metadata(top) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    out.push(top.to_path_buf());
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(top) {
            for e in entries.flatten() {
                walk(&e.path(), out);
            }
        }
    }
}

/// What `nobody` can do to `paths`: lines `READ|WRITE|EXEC PATH` (access(2) for each, an
/// open for reading of each file, a listing of each directory).
fn nobody_can(paths: &[PathBuf]) -> Vec<String> {
    require_command("setpriv", "util-linux");
    let script = r#"while IFS= read -r p; do
  [ -r "$p" ] && echo "READ $p"
  [ -w "$p" ] && echo "WRITE $p"
  [ -x "$p" ] && echo "EXEC $p"
  if [ -d "$p" ]; then ls "$p" >/dev/null 2>&1 && echo "LIST $p"
  elif [ -f "$p" ]; then { true < "$p"; } 2>/dev/null && echo "OPEN $p"; fi
done; exit 0"#;
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut list = String::new();
    for p in paths {
        list.push_str(&p.to_string_lossy());
        list.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(list.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "the nobody walk failed");
    stdout(&out).lines().map(str::to_string).collect()
}

/// Runs `argv` as nobody; whether it succeeded.
fn nobody_runs(argv: &[&str]) -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// The mountinfo lines whose mount point is `p` (no escapes needed: test paths are plain).
fn mounts_at(p: &Path) -> Vec<String> {
    let want = p.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(&*want))
        .map(str::to_string)
        .collect()
}

const POD: &str = "apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: s3cret-in-volume
---
apiVersion: v1
kind: Pod
metadata:
  name: holder
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'cat /creds/password; sleep 3600']
    volumeMounts:
    - name: creds
      mountPath: /creds
  volumes:
  - name: creds
    secret:
      secretName: creds
";

#[test]
fn nobody_can_read_write_or_execute_anything_in_the_store() {
    let mut c = Cluster::start_busybox_only();
    let store = c.root.store();
    // The test's own directory is 0700 (tempfile): open it so only the store's own modes
    // stand between nobody and the store, as /var/lib does for /var/lib/berth.
    let test_dir = store.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&test_dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let evil = c.root.path("evil.tar");
    evil_tar(&evil);
    run_ok(c.berth().arg("import").arg(&evil).arg("evil"));
    run_ok(c.berth().args(["snapshot", "unpack", "evil"]));

    let id = stdout(&run_ok(c.berth().args([
        "run",
        "-d",
        "--name",
        "pw",
        "-e",
        &format!("PASSWORD={PASSWORD}"),
        "-v",
        "permvol:/data",
        "busybox",
        "sh",
        "-c",
        "echo log-line; echo x > /data/f; sleep 300",
    ])))
    .trim()
    .to_string();
    let ctr = store.join("containers").join(&id);
    let log = ctr.join(format!("{id}-json.log"));
    wait_for(Duration::from_secs(10), "the container's log line", || {
        std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("log-line"))
            .then_some(())
    });

    c.apply("holder.yaml", POD);
    let uid = wait_for(Duration::from_secs(60), "the Pod to run", || {
        let pod = c.get(&["pod", "holder"])?;
        (pod["status"]["phase"] == "Running")
            .then(|| pod["metadata"]["uid"].as_str().map(str::to_string))?
    });
    // The daemon made the table for its Service rules first; the Pod's attach added the
    // port-forward chains and the loopback guard to it.
    let net = c.root.private_network().expect("a private network");
    let table = stdout(&run_ok(Command::new("nft").args([
        "list",
        "table",
        "ip",
        &net.table(),
    ])));
    let guard = format!("comment \"net={} loopback\"", net.bridge());
    assert!(table.contains(&guard), "no loopback guard in\n{table}");
    let secret_dir = store
        .join("daemon/pods")
        .join(&uid)
        .join("volumes/kubernetes.io~secret/creds");
    let mounts = mounts_at(&secret_dir);
    assert_eq!(
        mounts.len(),
        1,
        "one mount at {}: {mounts:?}",
        secret_dir.display()
    );
    assert!(
        mounts[0].contains(" - tmpfs "),
        "the Secret volume is not a tmpfs: {}",
        mounts[0]
    );
    let secret_file = secret_dir.join("password");
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), SECRET);
    assert_eq!(mode(&secret_file), 0o644, "defaultMode is 0644");

    // Owner-only records and logs, whatever the directories around them.
    assert_eq!(mode(&store), 0o700);
    let mut private = vec![
        ctr.join("config.json"),
        ctr.join("bundle/config.json"),
        ctr.join("state.json"),
        log.clone(),
        ctr.join("monitor.log"),
        store.join("runtime").join(&id).join("state.json"),
    ];
    for f in ["journal.jsonl", "snapshot.json"] {
        let p = store.join("daemon/store").join(f);
        if p.exists() {
            private.push(p);
        }
    }
    for p in &private {
        assert_eq!(mode(p), 0o600, "{} is not owner-only", p.display());
    }
    assert!(std::fs::read_to_string(ctr.join("bundle/config.json"))
        .unwrap()
        .contains(PASSWORD));

    // Nothing under the store or /run/berth is readable, writable or executable by nobody.
    let mut paths = Vec::new();
    walk(&store, &mut paths);
    walk(Path::new("/run/berth"), &mut paths);
    let dev = walk_find(&store, "evil");
    let suid = walk_find(&store, "suid");
    assert!(
        std::fs::symlink_metadata(&suid).unwrap().mode() & 0o4000 != 0,
        "the image's setuid file is unpacked setuid"
    );
    // The Secret's file names are links into its current version directory.
    let secret_real = std::fs::canonicalize(&secret_file).unwrap();
    for p in [
        &secret_real,
        &dev,
        &suid,
        &log,
        &ctr.join("rootfs/bin/busybox"),
    ] {
        assert!(paths.contains(p), "the walk missed {}", p.display());
    }
    let allowed = nobody_can(&paths);
    assert!(
        allowed.is_empty(),
        "nobody can reach into the store ({} of {} paths):\n{}",
        allowed.len(),
        paths.len(),
        allowed[..allowed.len().min(40)].join("\n")
    );
    let config = ctr.join("bundle/config.json");
    let config = config.to_str().unwrap();
    assert!(!nobody_runs(&["cat", config]), "nobody read {config}");
    assert!(!nobody_runs(&["ls", store.to_str().unwrap()]));
    let dev_s = dev.to_str().unwrap();
    assert!(!nobody_runs(&["sh", "-c", &format!("echo x > {dev_s}")]));
    assert!(!nobody_runs(&[suid.to_str().unwrap()]));

    // A container running as a user still works in the owner-only store.
    let out = run_ok(c.berth().args([
        "run",
        "--rm",
        "--user",
        "1000:1000",
        "busybox",
        "sh",
        "-c",
        "id -u && cat /etc/hostname >/dev/null && ls /bin/sh",
    ]));
    assert!(stdout(&out).starts_with("1000\n"), "{}", stdout(&out));

    // A restarted daemon adopts the pod with its one tmpfs; deleting the Pod unmounts it.
    c.kill_daemon();
    c.start_daemon();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        mounts_at(&secret_dir).len(),
        1,
        "the Secret tmpfs after adoption"
    );
    run_ok(c.berth().args(["delete", "pod", "holder"]));
    wait_for(Duration::from_secs(30), "the Secret tmpfs to go", || {
        (mounts_at(&secret_dir).is_empty() && !secret_dir.exists()).then_some(())
    });

    // A store an older berth left open is tightened on its next use.
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
    run_ok(c.berth().args(["ps", "-a"]));
    assert_eq!(mode(&store), 0o700, "the store root was not tightened");

    run_ok(c.berth().args(["rm", "-f", "pw"]));
    run_ok(c.berth().args(["volume", "rm", "permvol"]));
}

/// The first path named `name` under `top`.
fn walk_find(top: &Path, name: &str) -> PathBuf {
    let mut paths = Vec::new();
    walk(top, &mut paths);
    paths
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("no {name} under {}", top.display()))
}

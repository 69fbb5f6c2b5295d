//! Image archives against the peers: berth's OCI archives read by skopeo and
//! umoci, skopeo's docker-archive and OCI archives loaded by berth, a load
//! killed mid-write, a corrupt blob, and malformed input.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{busybox_rootfs_tar, require_command, require_root, run_ok, TestRoot};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Imports the busybox rootfs as `name` and returns the image id.
fn import_busybox(t: &TestRoot, name: &str) -> String {
    let out = run_ok(t.berth().arg("import").arg(busybox_rootfs_tar()).arg(name));
    stdout(&out).trim().to_string()
}

fn inspect(t: &TestRoot, image: &str) -> serde_json::Value {
    let out = run_ok(t.berth().args(["inspect", image]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    v[0].clone()
}

/// Extracts `tar` into `dir` with the system tar.
fn untar(tar: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    run_ok(Command::new("tar").arg("-xf").arg(tar).arg("-C").arg(dir));
}

/// Asserts two directory trees hold the same names and file contents.
fn assert_same_tree(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(a)
        .arg(b)
        .output()
        .expect("run diff");
    assert!(
        out.status.success(),
        "trees differ:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The single layer tar of a docker-archive saved by berth (`<diffid>/layer.tar`).
fn docker_archive_layer(archive: &Path, into: &Path) -> std::path::PathBuf {
    untar(archive, into);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(into.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest[0]["Layers"].as_array().expect("Layers").clone();
    assert_eq!(layers.len(), 1, "busybox image has one layer");
    into.join(layers[0].as_str().unwrap())
}

#[test]
fn oci_archive_is_read_by_skopeo_and_unpacked_by_umoci() {
    // umoci unpack keeps file owners, which needs root (as .ci/run runs).
    require_root();
    require_command("skopeo", "skopeo");
    require_command("umoci", "umoci");
    let t = TestRoot::new();
    let id = import_busybox(&t, "busybox:interop");
    let archive = t.path("bb-oci.tar");
    run_ok(
        t.berth()
            .args(["save", "--format", "oci-archive", "-o"])
            .arg(&archive)
            .arg("busybox:interop"),
    );

    let out = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci-archive:{}:interop", archive.display())),
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        manifest["config"]["digest"].as_str(),
        Some(id.as_str()),
        "skopeo sees berth's config digest as the manifest's config"
    );
    let out = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}:interop", archive.display())),
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Layers"].as_array().map(|l| l.len()), Some(1));
    assert_eq!(info["Os"], "linux");

    let layout = t.path("layout");
    untar(&archive, &layout);
    let bundle = t.path("bundle");
    run_ok(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:interop", layout.display()))
            .arg(&bundle),
    );
    let original = t.path("original");
    untar(busybox_rootfs_tar(), &original);
    assert_same_tree(&original, &bundle.join("rootfs"));
}

/// skopeo converts berth's OCI archive to `dest_transport`; berth loads the
/// result into a fresh store and its layer is byte-identical to the rootfs.
fn skopeo_archive_loads(dest_transport: &str) {
    require_command("skopeo", "skopeo");
    let src = TestRoot::new();
    let id = import_busybox(&src, "busybox:interop");
    let oci = src.path("src-oci.tar");
    run_ok(
        src.berth()
            .args(["save", "--format", "oci-archive", "-o"])
            .arg(&oci)
            .arg("busybox:interop"),
    );
    let converted = src.path("converted.tar");
    run_ok(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("oci-archive:{}:interop", oci.display()))
            .arg(format!(
                "{dest_transport}:{}:docker.io/library/busybox:skopeo",
                converted.display()
            )),
    );

    let dst = TestRoot::new();
    let out = run_ok(dst.berth().arg("load").arg("-i").arg(&converted));
    assert!(
        stdout(&out).contains("Loaded image: busybox:skopeo"),
        "load output: {}",
        stdout(&out)
    );
    let loaded = inspect(&dst, "busybox:skopeo");
    let original = inspect(&src, "busybox:interop");
    assert_eq!(
        loaded["RootFS"]["Layers"], original["RootFS"]["Layers"],
        "same diff ids"
    );
    if dest_transport == "oci-archive" {
        assert_eq!(loaded["Id"].as_str(), Some(id.as_str()), "same image id");
    }

    let resaved = dst.path("resaved.tar");
    run_ok(
        dst.berth()
            .args(["save", "-o"])
            .arg(&resaved)
            .arg("busybox:skopeo"),
    );
    let layer = docker_archive_layer(&resaved, &dst.path("resaved"));
    assert_eq!(
        std::fs::read(&layer).unwrap(),
        std::fs::read(busybox_rootfs_tar()).unwrap(),
        "the layer tar is the original rootfs tar"
    );
    let a = dst.path("from-layer");
    untar(&layer, &a);
    let b = dst.path("from-rootfs");
    untar(busybox_rootfs_tar(), &b);
    assert_same_tree(&a, &b);
    run_ok(dst.berth().args(["system", "check"]));
}

#[test]
fn skopeo_docker_archive_is_loaded() {
    skopeo_archive_loads("docker-archive");
}

#[test]
fn skopeo_oci_archive_is_loaded() {
    skopeo_archive_loads("oci-archive");
}

/// Writes a docker-archive with one layer holding `mb` MiB of random bytes,
/// made with the system tools so that berth is not judging its own output.
fn big_docker_archive(t: &TestRoot, mb: u32) -> std::path::PathBuf {
    let dir = t.path("big");
    let script = format!(
        r#"set -eu
mkdir -p rootfs
head -c {mb}M /dev/urandom > rootfs/blob
tar --numeric-owner --owner=0 --group=0 -C rootfs -cf layer.tar .
diff=$(sha256sum layer.tar | cut -d' ' -f1)
printf '{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["sha256:%s"]}}}}' "$diff" > config.json
printf '[{{"Config":"config.json","RepoTags":["big:1"],"Layers":["layer.tar"]}}]' > manifest.json
tar -cf archive.tar manifest.json config.json layer.tar
rm -rf rootfs layer.tar
"#
    );
    std::fs::create_dir_all(&dir).unwrap();
    run_ok(Command::new("sh").arg("-c").arg(script).current_dir(&dir));
    dir.join("archive.tar")
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                total += dir_bytes(&p);
            } else if let Ok(m) = p.metadata() {
                total += m.len();
            }
        }
    }
    total
}

/// Kills the child on drop so a failing assertion leaves no process behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn load_killed_mid_write_leaves_a_clean_store() {
    let t = TestRoot::new();
    import_busybox(&t, "busybox:before");
    let archive = big_docker_archive(&t, 300);
    let child = t
        .berth()
        .arg("load")
        .arg("-i")
        .arg(&archive)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth load");
    let mut child = KillOnDrop(child);
    let ingest = t.store().join("ingest");
    let deadline = Instant::now() + Duration::from_secs(60);
    while dir_bytes(&ingest) < 8 << 20 {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "berth load finished before it could be killed: make the archive bigger"
        );
        assert!(
            Instant::now() < deadline,
            "berth load wrote nothing to ingest/"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "load was killed");

    let out = t.berth().args(["system", "check"]).output().unwrap();
    assert!(
        out.status.success(),
        "check after kill: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let listed = stdout(&run_ok(t.berth().args(["images"])));
    assert!(listed.contains("busybox"), "{listed}");
    assert!(!listed.contains("big"), "no half-loaded image: {listed}");

    let out = run_ok(t.berth().arg("load").arg("-i").arg(&archive));
    assert!(stdout(&out).contains("Loaded image: big:1"));
    run_ok(t.berth().args(["system", "check"]));
    run_ok(t.berth().args(["system", "gc"]));
    assert_eq!(dir_bytes(&ingest), 0, "gc clears interrupted ingests");
    run_ok(t.berth().args(["inspect", "big:1"]));
}

#[test]
fn corrupt_blob_is_reported_by_digest() {
    let t = TestRoot::new();
    import_busybox(&t, "busybox:corrupt");
    run_ok(t.berth().args(["system", "check"]));
    let blobs = t.store().join("blobs/sha256");
    let (victim, _) = std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .map(|e| (e.path(), e.metadata().unwrap().len()))
        .max_by_key(|(_, len)| *len)
        .expect("a blob");
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let out = t.berth().args(["system", "check"]).output().unwrap();
    assert!(!out.status.success(), "check must fail on a corrupt blob");
    let hex = victim.file_name().unwrap().to_str().unwrap();
    assert!(
        stderr(&out).contains(&format!("sha256:{hex}")),
        "check names the digest: {}",
        stderr(&out)
    );
}

#[test]
fn malformed_archives_are_rejected_without_losing_anything() {
    let t = TestRoot::new();
    import_busybox(&t, "busybox:keep");
    let good = t.path("good.tar");
    run_ok(
        t.berth()
            .args(["save", "-o"])
            .arg(&good)
            .arg("busybox:keep"),
    );
    let blobs_before = std::fs::read_dir(t.store().join("blobs/sha256"))
        .unwrap()
        .count();

    let garbage = t.path("garbage.tar");
    std::fs::write(&garbage, vec![0x42u8; 10_000]).unwrap();
    let truncated = t.path("truncated.tar");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let no_manifest = t.path("nomanifest.tar");
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&no_manifest)
            .arg("-C")
            .arg(t.path(""))
            .arg("garbage.tar"),
    );

    for bad in [&garbage, &truncated, &no_manifest] {
        let out = t.berth().arg("load").arg("-i").arg(bad).output().unwrap();
        assert!(!out.status.success(), "{} must be rejected", bad.display());
        let err = stderr(&out);
        assert!(
            err.starts_with("berth: ") && err.contains(&bad.display().to_string()),
            "error names the file: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        run_ok(t.berth().args(["inspect", "busybox:keep"]));
        run_ok(t.berth().args(["system", "check"]));
    }
    let blobs_after = std::fs::read_dir(t.store().join("blobs/sha256"))
        .unwrap()
        .count();
    assert!(blobs_after >= blobs_before, "nothing stored was lost");

    let out = t
        .berth()
        .arg("import")
        .arg(&garbage)
        .arg("x:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a tar archive"),
        "{}",
        stderr(&out)
    );
}

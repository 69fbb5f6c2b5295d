//! The image commands end to end: import, images, inspect, tag, rmi, ids and
//! short ids, save/load round trips, gc, and one-line errors.

use std::process::{Command, Output};

use berth_tests::{busybox_rootfs_tar, run_ok, TestRoot};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run berth");
    assert!(
        !out.status.success(),
        "{cmd:?} should fail: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.starts_with("berth: "),
        "error starts with `berth: `: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

fn import(t: &TestRoot, name: &str) -> String {
    let out = run_ok(t.berth().arg("import").arg(busybox_rootfs_tar()).arg(name));
    let id = stdout(&out).trim().to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import prints the id: {id}"
    );
    id
}

#[test]
fn import_lists_and_inspects_like_docker() {
    let t = TestRoot::new();
    let id = import(&t, "busybox");
    let table = stdout(&run_ok(t.berth().arg("images")));
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], "busybox");
    assert_eq!(row[1], "latest", "a bare name gets the latest tag");
    assert_eq!(row[2], &id[7..19], "IMAGE ID is the short config digest");

    let json = stdout(&run_ok(t.berth().args(["images", "--format", "json"])));
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["Repository"], "busybox");
    assert_eq!(v["Tag"], "latest");

    let q = stdout(&run_ok(t.berth().args(["images", "-q"])));
    assert_eq!(q.trim(), &id[7..19]);

    let out = run_ok(t.berth().args(["inspect", "busybox"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["RepoTags"][0], "busybox:latest");
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["RootFS"]["Type"], "layers");
    let diff_id = img["RootFS"]["Layers"][0].as_str().unwrap().to_string();
    let sha = run_ok(Command::new("sha256sum").arg(busybox_rootfs_tar()));
    let want = format!("sha256:{}", stdout(&sha).split_whitespace().next().unwrap());
    assert_eq!(
        diff_id, want,
        "diff id is the sha256 of the uncompressed tar"
    );
    assert!(img["Size"].as_u64().unwrap() > 100_000);
}

#[test]
fn image_is_found_by_name_id_short_id_and_digest() {
    let t = TestRoot::new();
    let id = import(&t, "localhost:5000/tools/bb:1.0");
    let v: serde_json::Value =
        serde_json::from_slice(&run_ok(t.berth().args(["inspect", &id])).stdout).unwrap();
    let repo_digest = v[0]["RepoDigests"][0].as_str().unwrap().to_string();
    assert!(repo_digest.starts_with("localhost:5000/tools/bb@sha256:"));
    for q in [
        "localhost:5000/tools/bb:1.0".to_string(),
        id.clone(),
        id[7..].to_string(),
        id[7..19].to_string(),
        repo_digest,
    ] {
        let out = run_ok(t.berth().args(["inspect", &q]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v[0]["Id"], id.as_str(), "lookup by {q}");
    }
    let err = fails(
        t.berth()
            .args(["inspect", "--type", "image", "localhost:5000/tools/bb:2.0"]),
    );
    assert!(err.contains("no such image"), "{err}");
    let err = fails(t.berth().args(["inspect", "localhost:5000/tools/bb:2.0"]));
    assert!(err.contains("no such object"), "{err}");
}

#[test]
fn tag_and_rmi() {
    let t = TestRoot::new();
    let id = import(&t, "busybox:1");
    run_ok(t.berth().args(["tag", "busybox:1", "example.com/me/bb:2"]));
    let table = stdout(&run_ok(t.berth().arg("images")));
    assert!(table.contains("example.com/me/bb"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");

    let out = run_ok(t.berth().args(["rmi", "busybox:1"]));
    assert!(stdout(&out).contains("Untagged: busybox:1"));
    assert!(!stdout(&out).contains("Deleted"), "still tagged elsewhere");
    run_ok(t.berth().args(["inspect", &id]));

    let out = run_ok(t.berth().args(["rmi", &id[7..19]]));
    assert!(stdout(&out).contains("Untagged: example.com/me/bb:2"));
    assert!(stdout(&out).contains(&format!("Deleted: {id}")));
    assert_eq!(stdout(&run_ok(t.berth().args(["images", "-q"]))).trim(), "");

    let gc = stdout(&run_ok(t.berth().args(["system", "gc"])));
    assert!(gc.contains("Deleted 3 blobs"), "{gc}");
    let blobs = std::fs::read_dir(t.store().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
    fails(t.berth().args(["rmi", "busybox:1"]));
}

#[test]
fn save_and_load_round_trip_both_formats() {
    let t = TestRoot::new();
    let id = import(&t, "rt/app:v1");
    for format in ["docker-archive", "oci-archive"] {
        let archive = t.path(&format!("{format}.tar"));
        run_ok(
            t.berth()
                .args(["save", "--format", format, "-o"])
                .arg(&archive)
                .arg("rt/app:v1"),
        );
        let other = TestRoot::new();
        let out = run_ok(other.berth().arg("load").arg("-i").arg(&archive));
        assert_eq!(stdout(&out).trim(), "Loaded image: rt/app:v1", "{format}");
        let v: serde_json::Value =
            serde_json::from_slice(&run_ok(other.berth().args(["inspect", "rt/app:v1"])).stdout)
                .unwrap();
        assert_eq!(v[0]["Id"], id.as_str(), "{format}: same image id");
        // load from standard input too
        let third = TestRoot::new();
        let out = run_ok(
            third
                .berth()
                .arg("load")
                .stdin(std::fs::File::open(&archive).unwrap()),
        );
        assert!(stdout(&out).contains("rt/app:v1"));
        run_ok(third.berth().args(["system", "check"]));
        // and gzip-compressed, as docker load accepts
        let gz = t.path(&format!("{format}.tar.gz"));
        run_ok(Command::new("sh").arg("-c").arg(format!(
            "gzip -c {} > {}",
            archive.display(),
            gz.display()
        )));
        let fourth = TestRoot::new();
        let out = run_ok(fourth.berth().arg("load").arg("-i").arg(&gz));
        assert!(stdout(&out).contains("rt/app:v1"), "{format} gzip");
    }
}

#[test]
fn bad_references_are_rejected_with_the_rule() {
    let t = TestRoot::new();
    import(&t, "ok");
    let cases = [
        ("Upper/Case:1", "lowercase"),
        ("a//b", "path component"),
        ("busybox:-tag", "bad tag"),
        ("busybox@sha256:123", "digest"),
    ];
    for (bad, rule) in cases {
        let err = fails(t.berth().args(["tag", "ok", bad]));
        assert!(err.contains(rule), "{bad}: {err}");
    }
    let long = format!("{}/x", "a".repeat(260));
    let err = fails(t.berth().args(["tag", "ok", &long]));
    assert!(err.contains("255"), "{err}");
}

#[test]
fn every_command_has_help() {
    let t = TestRoot::new();
    for cmd in [
        vec!["--help"],
        vec!["import", "--help"],
        vec!["images", "--help"],
        vec!["inspect", "--help"],
        vec!["tag", "--help"],
        vec!["rmi", "--help"],
        vec!["save", "--help"],
        vec!["load", "--help"],
        vec!["system", "--help"],
        vec!["system", "gc", "--help"],
        vec!["system", "check", "--help"],
    ] {
        let out = run_ok(t.berth().args(&cmd));
        assert!(stdout(&out).contains("Usage"), "{cmd:?}");
    }
}

#[test]
fn concurrent_loads_and_reads_keep_the_store_consistent() {
    let src = TestRoot::new();
    import(&src, "one:1");
    run_ok(src.berth().args(["tag", "one:1", "two:2"]));
    let a = src.path("a.tar");
    let b = src.path("b.tar");
    run_ok(src.berth().args(["save", "-o"]).arg(&a).arg("one:1"));
    run_ok(
        src.berth()
            .args(["save", "--format", "oci-archive", "-o"])
            .arg(&b)
            .arg("two:2"),
    );

    let t = TestRoot::new();
    let mut procs = Vec::new();
    for i in 0..6 {
        let archive = if i % 2 == 0 { &a } else { &b };
        procs.push(
            t.berth()
                .arg("load")
                .arg("-q")
                .arg("-i")
                .arg(archive)
                .spawn()
                .expect("spawn load"),
        );
        procs.push(
            t.berth()
                .arg("images")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    for mut p in procs {
        assert!(p.wait().unwrap().success());
    }
    let table = stdout(&run_ok(t.berth().arg("images")));
    assert!(table.contains("one") && table.contains("two"), "{table}");
    run_ok(t.berth().args(["system", "check"]));
}

#[test]
fn gc_and_check_cover_snapshots() {
    let t = TestRoot::new();
    import(&t, "keep:1");
    let small = t.path("small");
    std::fs::create_dir_all(small.join("etc")).unwrap();
    std::fs::write(small.join("etc/motd"), "dropped image\n").unwrap();
    let small_tar = t.path("small.tar");
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&small_tar)
            .arg("-C")
            .arg(&small)
            .arg("."),
    );
    run_ok(t.berth().arg("import").arg(&small_tar).arg("drop:1"));
    let keep_chain = stdout(&run_ok(t.berth().args(["snapshot", "unpack", "keep:1"])))
        .trim()
        .to_string();
    let drop_chain = stdout(&run_ok(t.berth().args(["snapshot", "unpack", "drop:1"])))
        .trim()
        .to_string();
    assert_ne!(keep_chain, drop_chain);
    run_ok(t.berth().args(["system", "check"]));

    run_ok(t.berth().args(["rmi", "drop:1"]));
    let gc = stdout(&run_ok(t.berth().args(["system", "gc"])));
    assert!(gc.contains(", 1 snapshots"), "{gc}");
    let snaps = t.store().join("snapshots");
    assert!(
        snaps.join(&keep_chain[7..]).exists(),
        "kept image's snapshot stays"
    );
    assert!(
        !snaps.join(&drop_chain[7..]).exists(),
        "dropped image's snapshot goes"
    );
    run_ok(t.berth().args(["system", "check"]));

    let passwd = snaps.join(&keep_chain[7..]).join("fs/etc/passwd");
    std::fs::write(&passwd, "root:x:0:0:tampered:/root:/bin/sh\n").unwrap();
    let out = t.berth().args(["system", "check"]).output().unwrap();
    assert!(!out.status.success(), "a tampered snapshot fails the check");
    assert!(
        stderr(&out).contains(&keep_chain),
        "check names the snapshot: {}",
        stderr(&out)
    );
}

#[test]
fn gc_keeps_the_rootfs_of_containers_whose_image_was_removed() {
    berth_tests::require_root();
    // Its own cgroup parent (and network settings), torn down when the test ends.
    let t = TestRoot::with_private_network();
    let id = import(&t, "inuse:1");
    let out = run_ok(t.berth().args([
        "run",
        "--network",
        "none",
        "--name",
        "gc-pin",
        "inuse:1",
        "true",
    ]));
    assert!(out.status.success());
    // Remove the container even if an assertion below fails.
    struct Rm<'a>(&'a TestRoot);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            let _ = self.0.berth().args(["rm", "-f", "gc-pin"]).output();
        }
    }
    let rm = Rm(&t);
    let snaps = || {
        std::fs::read_dir(t.store().join("snapshots"))
            .map(|d| d.flatten().filter(|e| e.file_name().len() == 64).count())
            .unwrap_or(0)
    };
    assert_eq!(snaps(), 1);
    run_ok(t.berth().args(["rmi", "inuse:1"]));
    let gc = stdout(&run_ok(t.berth().args(["system", "gc"])));
    assert!(gc.contains(", 0 snapshots"), "{gc}");
    assert_eq!(snaps(), 1, "the container's snapshot stays");
    assert!(
        t.store().join("blobs/sha256").join(&id[7..]).exists(),
        "the container's image config stays"
    );
    run_ok(t.berth().args(["system", "check"]));
    run_ok(t.berth().args(["rm", "gc-pin"]));
    drop(rm);
    let gc = stdout(&run_ok(t.berth().args(["system", "gc"])));
    assert!(gc.contains(", 1 snapshots"), "{gc}");
    assert_eq!(snaps(), 0);
}

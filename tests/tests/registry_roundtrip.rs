//! Pull and push against a real `docker-registry` over plain HTTP, checked
//! digest for digest against skopeo in both directions.

use berth_tests::registry_fixtures::*;
use berth_tests::{busybox_rootfs_tar, require_root, run_ok, TestRoot};
use std::process::Command;

/// A busybox image (rootfs layer plus a small second layer) pushed by skopeo.
fn push_busybox_with_skopeo(reg: &Registry, work: &TestRoot, repo: &str) -> Blob {
    let rootfs = std::fs::read(busybox_rootfs_tar()).expect("read busybox tar");
    let layout = OciLayout::new(&work.path("layout-busybox"));
    let extra = tar_of(&[("etc/berth-test", b"second layer\n".to_vec())]);
    let manifest = layout.image(&[rootfs, extra], "linux", "amd64");
    layout.tag(&manifest, "1");
    layout.push_with_skopeo("1", &format!("{}/{repo}:1", reg.host()), &[]);
    manifest
}

#[test]
fn skopeo_push_berth_pull_push_pull_round_trip() {
    require_root();
    let reg = Registry::start(Auth::None);
    let work = TestRoot::new();
    let src = format!("{}/src/busybox:1", reg.host());
    let dst = format!("{}/dst/busybox:1", reg.host());
    let manifest = push_busybox_with_skopeo(&reg, &work, "src/busybox");

    // berth pulls what skopeo pushed; the digest it prints is the manifest's.
    let a = TestRoot::new();
    let out = run_ok(berth_cmd(&a).args(["pull", &src]));
    assert_eq!(printed_digest(&out.stdout), manifest.digest);
    let blobs_a = stored_blobs(&a.store());
    assert!(
        blobs_a.contains(&manifest.digest[7..].to_string()),
        "manifest stored: {blobs_a:?}"
    );
    assert_eq!(
        blobs_a.len(),
        4,
        "manifest, config and two layers: {blobs_a:?}"
    );
    // Layers were unpacked as they arrived.
    let snaps: Vec<_> = std::fs::read_dir(a.store().join("snapshots"))
        .expect("snapshots dir")
        .filter_map(|e| e.ok())
        .collect();
    assert!(
        snaps.len() >= 2,
        "two layer snapshots, found {}",
        snaps.len()
    );

    // Pulling again downloads nothing.
    let out = run_ok(berth_cmd(&a).args(["pull", &src]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Image is up to date"));

    // berth pushes it under another repository of the same registry: layers are mounted.
    run_ok(berth_cmd(&a).args(["tag", &src, &dst]));
    let out = run_ok(berth_cmd(&a).args(["push", &dst]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Mounted from"),
        "layers mounted from src:\n{text}"
    );
    assert!(
        text.contains(&format!("1: digest: {}", manifest.digest)),
        "{text}"
    );

    // skopeo reads exactly the same manifest back.
    let raw = skopeo_raw(&dst, &[]);
    assert_eq!(sha256_digest(&raw), manifest.digest);

    // "Remove locally" (a fresh store) and pull the pushed copy: same blobs, byte for byte.
    let b = TestRoot::new();
    let out = run_ok(berth_cmd(&b).args(["pull", "--no-unpack", &dst]));
    assert_eq!(printed_digest(&out.stdout), manifest.digest);
    let blobs_b = stored_blobs(&b.store());
    assert_eq!(blobs_a, blobs_b);
    for hex in &blobs_b {
        let x = std::fs::read(a.store().join("blobs/sha256").join(hex)).unwrap();
        let y = std::fs::read(b.store().join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(sha256_digest(&y), format!("sha256:{hex}"));
        assert_eq!(x, y);
    }
    drop(reg);
}

#[test]
fn berth_push_is_readable_by_skopeo_copy() {
    require_root();
    let reg = Registry::start(Auth::None);
    let work = TestRoot::new();
    let layout = OciLayout::new(&work.path("layout"));
    let big = noise(3 << 20, 7);
    let manifest = layout.image(
        &[
            tar_of(&[("big.bin", big)]),
            tar_of(&[("small.txt", b"x".to_vec())]),
        ],
        "linux",
        "amd64",
    );
    layout.tag(&manifest, "v1");
    // Get it into berth via the registry, then push it to new registries
    // with chunked uploads and with one stream per blob.
    layout.push_with_skopeo("v1", &format!("{}/seed/app:v1", reg.host()), &[]);
    let a = TestRoot::new();
    run_ok(berth_cmd(&a).args([
        "pull",
        "--no-unpack",
        &format!("{}/seed/app:v1", reg.host()),
    ]));
    for (repo, extra) in [
        ("chunked/app", vec!["--chunk-size", "1000000"]),
        ("stream/app", vec![]),
    ] {
        // A registry of its own, so nothing can be mounted and every blob is uploaded.
        let target = Registry::start(Auth::None);
        let dest = format!("{}/{repo}:v1", target.host());
        run_ok(berth_cmd(&a).args(["tag", &format!("{}/seed/app:v1", reg.host()), &dest]));
        let out = run_ok(berth_cmd(&a).arg("push").args(&extra).arg(&dest));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Pushed"));
        let copy_dir = work.path(&format!("copy-{}", repo.replace('/', "-")));
        run_ok(
            Command::new("skopeo")
                .args(["copy", "--src-tls-verify=false"])
                .arg(format!("docker://{dest}"))
                .arg(format!("oci:{}:v1", copy_dir.display())),
        );
        // skopeo kept the manifest byte for byte, so its digest is unchanged.
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(copy_dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], manifest.digest.as_str());
    }
}

#[test]
fn berth_uploads_when_nothing_can_be_mounted() {
    require_root();
    let reg_a = Registry::start(Auth::None);
    let reg_b = Registry::start(Auth::None);
    let work = TestRoot::new();
    let layout = OciLayout::new(&work.path("layout"));
    let manifest = layout.image(
        &[tar_of(&[("big.bin", noise(2 << 20, 3))])],
        "linux",
        "amd64",
    );
    layout.tag(&manifest, "t");
    layout.push_with_skopeo("t", &format!("{}/one:t", reg_a.host()), &[]);
    let a = TestRoot::new();
    let src = format!("{}/one:t", reg_a.host());
    let dst = format!("{}/two:t", reg_b.host());
    run_ok(berth_cmd(&a).args(["pull", "--no-unpack", &src]));
    run_ok(berth_cmd(&a).args(["tag", &src, &dst]));
    let out = run_ok(berth_cmd(&a).args(["push", &dst]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Pushed") && !text.contains("Mounted"),
        "{text}"
    );
    assert_eq!(sha256_digest(&skopeo_raw(&dst, &[])), manifest.digest);
    // A second push finds every blob already there.
    let out = run_ok(berth_cmd(&a).args(["push", &dst]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Layer already exists"));
}

#[test]
fn multi_platform_index_pull_picks_the_platform() {
    require_root();
    let reg = Registry::start(Auth::None);
    let work = TestRoot::new();
    let layout = OciLayout::new(&work.path("layout"));
    let amd = layout.image(
        &[tar_of(&[("arch", b"amd64\n".to_vec())])],
        "linux",
        "amd64",
    );
    let arm = layout.image(
        &[tar_of(&[("arch", b"arm64\n".to_vec())])],
        "linux",
        "arm64",
    );
    let index = layout.index(
        &[
            (amd.clone(), "linux", "amd64"),
            (arm.clone(), "linux", "arm64"),
        ],
        true,
    );
    layout.tag(&index, "multi");
    let name = format!("{}/multi/app:multi", reg.host());
    layout.push_with_skopeo("multi", &name, &[]);

    let read_manifest = |layout_dir: &std::path::Path, m: &Blob| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(layout_dir.join("blobs/sha256").join(&m.digest[7..])).unwrap(),
        )
        .unwrap()
    };
    let layer_of = |m: &Blob| {
        read_manifest(layout.dir(), m)["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };

    for (platform, want, other) in [("linux/arm64", &arm, &amd), ("linux/amd64", &amd, &arm)] {
        let r = TestRoot::new();
        let out =
            run_ok(berth_cmd(&r).args(["pull", "--no-unpack", "--platform", platform, &name]));
        // The name resolves to the index, as docker pull prints it.
        assert_eq!(printed_digest(&out.stdout), index.digest);
        let blobs = stored_blobs(&r.store());
        assert!(
            blobs.contains(&want.digest[7..].to_string()),
            "{platform}: manifest pulled"
        );
        assert!(
            blobs.contains(&layer_of(want)[7..].to_string()),
            "{platform}: layer pulled"
        );
        assert!(
            !blobs.contains(&other.digest[7..].to_string()),
            "{platform}: other manifest skipped"
        );
        assert!(
            !blobs.contains(&layer_of(other)[7..].to_string()),
            "{platform}: other layer skipped"
        );
        assert_eq!(
            blobs.len(),
            4,
            "index, manifest, config, layer (no attestation): {blobs:?}"
        );
    }

    // A platform the index lacks is an error that names what is available.
    let r = TestRoot::new();
    let err = run_fail(berth_cmd(&r).args(["pull", "--platform", "linux/s390x", &name]));
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );
}

#[test]
fn pull_of_missing_image_names_registry_repository_and_status() {
    require_root();
    let reg = Registry::start(Auth::None);
    let r = TestRoot::new();
    let err = run_fail(berth_cmd(&r).args(["pull", &format!("{}/no/such:tag", reg.host())]));
    assert!(err.starts_with("berth: "), "{err}");
    assert!(
        err.contains(&reg.host()) && err.contains("no/such") && err.contains("404"),
        "{err}"
    );
    assert!(err.contains("MANIFEST_UNKNOWN"), "{err}");
}

#[test]
fn progress_output_plain_quiet_and_terminal() {
    require_root();
    let reg = Registry::start(Auth::None);
    let work = TestRoot::new();
    let layout = OciLayout::new(&work.path("layout"));
    let m = layout.image(
        &[
            tar_of(&[("a.bin", noise(3 << 20, 5))]),
            tar_of(&[("b.txt", b"b".to_vec())]),
        ],
        "linux",
        "amd64",
    );
    layout.tag(&m, "t");
    let name = format!("{}/progress/app:t", reg.host());
    layout.push_with_skopeo("t", &name, &[]);

    // Not a terminal: one plain line per layer event, Docker's wording.
    let r = TestRoot::new();
    let out = run_ok(berth_cmd(&r).args(["pull", "--no-unpack", &name]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("Pull complete").count(), 2, "{text}");
    assert!(text.contains("t: Pulling from progress/app"), "{text}");

    // --quiet: only the name.
    let r = TestRoot::new();
    let out = run_ok(berth_cmd(&r).args(["pull", "-q", "--no-unpack", &name]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), name);

    // On a terminal (script gives it a pty): indicatif bars with byte counts.
    berth_tests::require_command("script", "bsdutils");
    let r = TestRoot::new();
    let cmd = format!(
        "{} --root {} pull --no-unpack {name}",
        berth_tests::bin("berth").display(),
        r.store().display()
    );
    let out = run_ok(
        std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("DOCKER_CONFIG", r.path("docker-config"))
            .env("BERTH_REGISTRY_CONFIG", r.path("no-daemon.json"))
            .env("TERM", "xterm"),
    );
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains("MiB") && tty.contains("Pull complete"),
        "{tty}"
    );
}

#[test]
fn pull_by_digest() {
    require_root();
    let reg = Registry::start(Auth::None);
    let work = TestRoot::new();
    let layout = OciLayout::new(&work.path("layout"));
    let m = layout.image(
        &[tar_of(&[("d.txt", b"by digest".to_vec())])],
        "linux",
        "amd64",
    );
    layout.tag(&m, "t");
    layout.push_with_skopeo("t", &format!("{}/dig/app:t", reg.host()), &[]);
    let r = TestRoot::new();
    let by_digest = format!("{}/dig/app@{}", reg.host(), m.digest);
    let out = run_ok(berth_cmd(&r).args(["pull", "--no-unpack", &by_digest]));
    assert_eq!(printed_digest(&out.stdout), m.digest);
    assert!(stored_blobs(&r.store()).contains(&m.digest[7..].to_string()));
    // A digest the registry does not have is a 404 naming it.
    let missing = sha256_digest(b"not there");
    let err = run_fail(berth_cmd(&r).args(["pull", &format!("{}/dig/app@{missing}", reg.host())]));
    assert!(err.contains("404") && err.contains(&missing), "{err}");
}

#[test]
fn push_of_a_whole_index_puts_manifests_before_the_index() {
    require_root();
    let reg = Registry::start(Auth::None);
    let work = TestRoot::new();
    let layout = OciLayout::new(&work.path("layout"));
    let amd = layout.image(
        &[tar_of(&[("arch", b"amd64\n".to_vec())])],
        "linux",
        "amd64",
    );
    let arm = layout.image(
        &[tar_of(&[("arch", b"arm64\n".to_vec())])],
        "linux",
        "arm64",
    );
    let index = layout.index(
        &[
            (amd.clone(), "linux", "amd64"),
            (arm.clone(), "linux", "arm64"),
        ],
        true,
    );
    let name = format!("{}/whole/index:v1", reg.host());
    layout.tag(&index, &name);
    // An OCI archive of the layout, loaded with every platform into berth's store.
    let archive = work.path("index.tar");
    run_ok(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(layout.dir())
            .arg("-cf")
            .arg(&archive)
            .arg("."),
    );
    let r = TestRoot::new();
    run_ok(berth_cmd(&r).args(["load", "-i"]).arg(&archive));
    let out = run_ok(berth_cmd(&r).args(["push", &name]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("v1: digest: {}", index.digest)),
        "{text}"
    );
    // The registry holds the index byte for byte, and each platform's manifest.
    assert_eq!(sha256_digest(&skopeo_raw(&name, &[])), index.digest);
    for m in [&amd, &arm] {
        let raw = skopeo_raw(&format!("{}/whole/index@{}", reg.host(), m.digest), &[]);
        assert_eq!(sha256_digest(&raw), m.digest);
    }
    // And skopeo can copy every platform back out.
    run_ok(
        std::process::Command::new("skopeo")
            .args(["copy", "--all", "--src-tls-verify=false"])
            .arg(format!("docker://{name}"))
            .arg(format!("oci:{}:v1", work.path("copy").display())),
    );
}

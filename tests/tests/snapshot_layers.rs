//! A three-layer image through the CLI: `berth load` of a docker-archive
//! (plain and gzip layers, whiteouts, an opaque dir), `berth snapshot unpack`
//! giving the OCI chain ids, an overlay rootfs of the result, and
//! `berth rmi` + `berth system gc` removing the snapshots again.

use std::fs;
use std::io::Write;

use berth_image::digest::Digest;
use berth_image::snapshot::mount::MountKind;
use berth_image::snapshot::{chain_ids, Snapshots};
use berth_tests::{require_root, run_ok, TestRoot};

fn layer(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_500_000_000);
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, path, *d).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, &b""[..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn layered_image_unpacks_mounts_and_is_collected() {
    require_root();
    let t = TestRoot::new();
    let l0 = layer(&[
        ("etc/", None),
        ("etc/os-release", Some(b"base\n")),
        ("etc/motd", Some(b"hello\n")),
        ("srv/", None),
        ("srv/a", Some(b"a\n")),
        ("srv/b", Some(b"b\n")),
    ]);
    let l1 = layer(&[
        ("etc/", None),
        ("etc/.wh.motd", Some(b"")),
        ("srv/", None),
        ("srv/.wh..wh..opq", Some(b"")),
        ("srv/c", Some(b"c\n")),
    ]);
    let l2 = layer(&[("etc/", None), ("etc/os-release", Some(b"top\n"))]);
    let diff_ids: Vec<Digest> = [&l0, &l1, &l2]
        .iter()
        .map(|l| Digest::sha256_of(l))
        .collect();

    // docker-archive: layer 0 plain, layers 1 and 2 gzip (Docker's own
    // archives hold plain tars; loaders must accept compressed ones too).
    let files = [
        ("l0.tar", l0.clone()),
        ("l1.tar.gz", gzip(&l1)),
        ("l2.tar.gz", gzip(&l2)),
    ];
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    });
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": ["layered/test:1"],
        "Layers": files.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
    }]);
    let mut archive = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        archive.append_data(&mut h, name, data).unwrap();
    };
    add("manifest.json", manifest.to_string().as_bytes());
    add("config.json", config.to_string().as_bytes());
    for (name, data) in &files {
        add(name, data);
    }
    let archive_path = t.path("image.tar");
    fs::write(&archive_path, archive.into_inner().unwrap()).unwrap();
    run_ok(t.berth().arg("load").arg("-i").arg(&archive_path));

    let out = run_ok(t.berth().args(["snapshot", "unpack", "layered/test:1"]));
    let chains = chain_ids(&diff_ids);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        chains[2].to_string()
    );
    let ls =
        String::from_utf8_lossy(&run_ok(t.berth().args(["snapshot", "ls"])).stdout).into_owned();
    for (i, chain) in chains.iter().enumerate() {
        let line = ls
            .lines()
            .find(|l| l.starts_with(&chain.to_string()))
            .unwrap_or_else(|| panic!("chain {i} missing from:\n{ls}"));
        if i > 0 {
            assert!(
                line.contains(&chains[i - 1].to_string()),
                "parent of {i}: {line}"
            );
        }
    }

    let snaps = Snapshots::new(t.store().join("snapshots"));
    for d in ["upper", "work", "rootfs"] {
        fs::create_dir(t.path(d)).unwrap();
    }
    let rootfs = t.path("rootfs");
    let mount = snaps
        .mount_rootfs(Some(&chains[2]), &t.path("upper"), &t.path("work"), &rootfs)
        .unwrap();
    assert_eq!(mount.kind(), MountKind::Overlay);
    assert_eq!(fs::read(rootfs.join("etc/os-release")).unwrap(), b"top\n");
    assert!(!rootfs.join("etc/motd").exists(), "whiteout ignored");
    let srv: Vec<String> = fs::read_dir(rootfs.join("srv"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(srv, ["c"], "opaque dir shows lower entries");
    mount.unmount().unwrap();

    run_ok(t.berth().args(["rmi", "layered/test:1"]));
    run_ok(t.berth().args(["system", "gc"]));
    assert!(snaps.list().unwrap().is_empty(), "gc left snapshots");
}

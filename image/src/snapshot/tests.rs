//! Unprivileged tests of the snapshot store: the hostile tar corpus, unpack
//! of ordinary layers, whiteouts through the copy fallback, the layer writer.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OUTSIDE: &str = "/tmp/berth-hostile-outside";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/hostile-tar")
}

/// Option sets to run with: always unprivileged, and privileged too when root.
fn option_sets() -> Vec<UnpackOptions> {
    let mut sets = vec![UnpackOptions {
        preserve_ownership: false,
        privileged: false,
    }];
    if nix::unistd::geteuid().is_root() {
        sets.push(UnpackOptions {
            preserve_ownership: true,
            privileged: true,
        });
    }
    sets
}

/// The shared "outside" directory the corpus aims at, holding a file
/// `victim`. Test processes hold a shared lock on a lock file while they use
/// it; the last one to finish (the one that gets the lock exclusively)
/// removes the directory and the lock file.
struct Outside {
    lock: Option<nix::fcntl::Flock<fs::File>>,
}

impl Outside {
    fn prepare() -> Outside {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(format!("{OUTSIDE}.lock"))
            .unwrap();
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockShared)
            .map_err(|(_, e)| e)
            .unwrap();
        fs::create_dir_all(OUTSIDE).unwrap();
        let victim = Path::new(OUTSIDE).join("victim");
        if fs::read(&victim).ok().as_deref() != Some(b"victim\n") {
            fs::write(&victim, b"victim\n").unwrap();
        }
        Outside { lock: Some(lock) }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else { return };
        let Ok(file) = lock.unlock() else { return };
        if let Ok(_last) =
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        {
            let _ = fs::remove_dir_all(OUTSIDE);
            // Unlinked while held exclusively, so nobody else holds it now.
            let _ = fs::remove_file(format!("{OUTSIDE}.lock"));
        }
    }
}

fn assert_outside_untouched(case: &str) {
    let names: Vec<_> = fs::read_dir(OUTSIDE)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        ["victim"],
        "{case}: something was written to {OUTSIDE}"
    );
    let victim = Path::new(OUTSIDE).join("victim");
    assert_eq!(
        fs::read(&victim).unwrap(),
        b"victim\n",
        "{case}: victim changed"
    );
    assert!(victim.symlink_metadata().unwrap().file_type().is_file());
}

/// Every path below `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if p.symlink_metadata().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn hostile_corpus_never_escapes() {
    let _outside = Outside::prepare();
    let mut cases: Vec<_> = fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 20,
        "hostile corpus missing from {:?}",
        corpus_dir()
    );
    for options in option_sets() {
        for case in &cases {
            let name = case.file_stem().unwrap().to_string_lossy().into_owned();
            let sandbox = tempfile::tempdir().unwrap();
            let store = Snapshots::with_options(sandbox.path().join("snapshots"), options);
            let bytes = fs::read(case).unwrap();
            let diff_id = Digest::sha256_of(&bytes);
            let result = store.unpack(None, &diff_id, TAR, &bytes[..]);
            assert_outside_untouched(&name);
            let left = tree(sandbox.path());
            if name.starts_with("reject-") {
                let err = result.expect_err(&format!("{name} was accepted ({options:?})"));
                let msg = err.to_string();
                assert!(
                    msg.contains("layer entry \""),
                    "{name}: error does not name the entry: {msg}"
                );
                assert_eq!(
                    left,
                    ["snapshots"],
                    "{name}: left files behind ({options:?})"
                );
            } else {
                let chain = result.unwrap_or_else(|e| panic!("{name} ({options:?}): {e}"));
                assert_eq!(chain, diff_id);
                assert!(store.exists(&chain));
                assert!(
                    left.iter().all(|p| p.starts_with("snapshots")),
                    "{name}: {left:?}"
                );
                check_contained(&name, &store.path(&chain));
                store.verify(&chain).unwrap();
            }
        }
    }
}

/// What each `contain-` case must have produced inside the snapshot.
fn check_contained(case: &str, fs_dir: &Path) {
    let meta = |p: &str| fs_dir.join(p).symlink_metadata().unwrap();
    match case {
        "contain-absolute-name" => {
            assert_eq!(
                fs::read(fs_dir.join("tmp/berth-hostile-outside/pwned")).unwrap(),
                b"pwned\n"
            )
        }
        "contain-symlink-then-overwrite" => {
            assert!(meta("evil").is_file());
            assert_eq!(fs::read(fs_dir.join("evil")).unwrap(), b"replaced\n");
        }
        "contain-hardlink-to-symlink-then-overwrite" => {
            assert!(meta("s").file_type().is_symlink());
            assert!(meta("h").is_file());
            assert_eq!(fs::read(fs_dir.join("h")).unwrap(), b"replaced\n");
        }
        "contain-dir-replaces-symlink" => {
            assert!(meta("evil").is_dir());
            assert!(meta("evil/inside").is_file());
        }
        "contain-symlink-inside" => {
            assert!(meta("lib").file_type().is_symlink());
            assert!(meta("usr/lib/inside").is_file());
        }
        other => panic!("contain case {other} has no check"),
    }
}

/// A small layer built with the tar crate: dirs, files, modes, links, mtime.
fn sample_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_000_000);
        h.set_size(data.len() as u64);
        match link {
            Some(l) => b.append_link(&mut h, path, l).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    };
    add("etc/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "etc/passwd",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:0::/root:/bin/sh\n",
        None,
    );
    add("bin/", tar::EntryType::Directory, 0o555, b"", None);
    add(
        "bin/busybox",
        tar::EntryType::Regular,
        0o4755,
        b"\x7fELF fake",
        None,
    );
    add(
        "bin/sh",
        tar::EntryType::Link,
        0o755,
        b"",
        Some("bin/busybox"),
    );
    add(
        "bin/ls",
        tar::EntryType::Symlink,
        0o777,
        b"",
        Some("busybox"),
    );
    add("a/b/c/deep", tar::EntryType::Regular, 0o600, b"deep", None);
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn unprivileged() -> UnpackOptions {
    UnpackOptions {
        preserve_ownership: false,
        privileged: false,
    }
}

#[test]
fn unpacks_plain_gzip_and_zstd_alike() {
    let layer = sample_layer();
    let diff_id = Digest::sha256_of(&layer);
    let mut fingerprints = Vec::new();
    for (media_type, bytes) in [
        (TAR, layer.clone()),
        ("application/vnd.oci.image.layer.v1.tar+gzip", gzip(&layer)),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            zstd::encode_all(&layer[..], 3).unwrap(),
        ),
        // Mislabelled: the magic bytes win.
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            layer.clone(),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = Snapshots::with_options(dir.path(), unprivileged());
        let chain = store
            .unpack(None, &diff_id, media_type, &bytes[..])
            .unwrap();
        let root = store.path(&chain);
        assert_eq!(
            fs::read(root.join("etc/passwd")).unwrap(),
            b"root:x:0:0::/root:/bin/sh\n"
        );
        let busybox = root.join("bin/busybox").symlink_metadata().unwrap();
        assert_eq!(busybox.mode() & 0o7777, 0o4755);
        assert_eq!(busybox.mtime(), 1_000_000);
        assert_eq!(busybox.nlink(), 2, "bin/sh is a hard link");
        assert_eq!(
            fs::read_link(root.join("bin/ls")).unwrap(),
            Path::new("busybox")
        );
        let bin = root.join("bin").symlink_metadata().unwrap();
        assert_eq!(bin.mode() & 0o7777, 0o555);
        assert_eq!(bin.mtime(), 1_000_000);
        assert_eq!(fs::read(root.join("a/b/c/deep")).unwrap(), b"deep");
        fingerprints.push(store.meta(&chain).unwrap().fingerprint);
        store.verify(&chain).unwrap();
    }
    assert!(fingerprints.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn diff_id_mismatch_commits_nothing() {
    let layer = sample_layer();
    let wrong = Digest::sha256_of(b"another layer");
    let dir = tempfile::tempdir().unwrap();
    let store = Snapshots::with_options(dir.path(), unprivileged());
    let err = store.unpack(None, &wrong, TAR, &layer[..]).unwrap_err();
    assert!(matches!(err, SnapshotError::DiffIdMismatch { .. }), "{err}");
    assert!(err.to_string().contains("diff id mismatch"));
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
    assert!(!store.exists(&wrong));
}

#[test]
fn corrupt_stream_commits_nothing() {
    let layer = gzip(&sample_layer());
    let truncated = &layer[..layer.len() / 2];
    let dir = tempfile::tempdir().unwrap();
    let store = Snapshots::with_options(dir.path(), unprivileged());
    let diff_id = Digest::sha256_of(&sample_layer());
    assert!(store.unpack(None, &diff_id, "", truncated).is_err());
    assert!(tree(dir.path()).is_empty());
}

#[test]
fn chain_ids_follow_the_oci_rule() {
    let a = Digest::sha256_of(b"a");
    let b = Digest::sha256_of(b"b");
    let chain = chain_ids(&[a.clone(), b.clone()]);
    assert_eq!(chain[0], a);
    assert_eq!(chain[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    assert_eq!(chain_id(Some(&a), &b), chain[1]);
}

/// Builds a layer from (path, content) pairs; `None` content makes a directory.
fn layer_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
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

fn unpack_chain(store: &Snapshots, layers: &[Vec<u8>]) -> Digest {
    let mut parent: Option<Digest> = None;
    for layer in layers {
        let diff_id = Digest::sha256_of(layer);
        parent = Some(
            store
                .unpack(parent.as_ref(), &diff_id, TAR, &layer[..])
                .unwrap(),
        );
    }
    parent.unwrap()
}

#[test]
fn copy_fallback_applies_whiteouts_and_opaque_dirs() {
    let base = layer_of(&[
        ("a/", None),
        ("a/x", Some(b"x")),
        ("a/y", Some(b"y")),
        ("b/", None),
        ("b/z", Some(b"z")),
        ("c/", None),
        ("c/old", Some(b"old")),
        ("keep", Some(b"v1")),
    ]);
    let top = layer_of(&[
        ("a/.wh.x", Some(b"")),
        (".wh.b", Some(b"")),
        ("c/", None),
        ("c/.wh..wh..opq", Some(b"")),
        ("c/new", Some(b"new")),
        ("keep", Some(b"v2")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let store = Snapshots::with_options(dir.path().join("snapshots"), unprivileged());
    let chain = unpack_chain(&store, &[base, top]);
    assert_eq!(store.lowers(&chain).unwrap().len(), 2);
    let target = dir.path().join("rootfs");
    fs::create_dir(&target).unwrap();
    let mount = store
        .mount_rootfs(
            Some(&chain),
            &dir.path().join("upper"),
            &dir.path().join("work"),
            &target,
        )
        .unwrap();
    assert_eq!(mount.kind(), mount::MountKind::Copy);
    assert_eq!(tree(&target), ["a", "a/y", "c", "c/new", "keep"]);
    assert_eq!(fs::read(target.join("keep")).unwrap(), b"v2");
    mount.unmount().unwrap();
    assert!(tree(&target).is_empty());
}

#[test]
fn layer_writer_round_trips_and_is_deterministic() {
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool2")).unwrap();
    std::os::unix::fs::symlink("tool", root.join("usr/bin/t")).unwrap();
    fs::write(root.join(".wh.removed"), b"").unwrap();
    let long = "d".repeat(120);
    fs::create_dir(root.join(&long)).unwrap();
    fs::write(root.join(&long).join("f"), b"long path").unwrap();

    let mut first = Vec::new();
    let info = diff::write_layer(root, &mut first, Compression::Gzip, Some(0)).unwrap();
    assert_eq!(info.digest, Digest::sha256_of(&first));
    assert_eq!(info.size, first.len() as u64);
    assert_eq!(
        info.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let mut second = Vec::new();
    let again = diff::write_layer(root, &mut second, Compression::Gzip, Some(0)).unwrap();
    assert_eq!(info, again);
    assert_eq!(first, second);

    let mut plain = Vec::new();
    let plain_info = diff::write_layer(root, &mut plain, Compression::None, Some(0)).unwrap();
    assert_eq!(plain_info.diff_id, info.diff_id);
    assert_eq!(plain_info.digest, plain_info.diff_id);

    let dir = tempfile::tempdir().unwrap();
    let store = Snapshots::with_options(dir.path(), unprivileged());
    let chain = store
        .unpack(None, &info.diff_id, info.media_type, &first[..])
        .unwrap();
    // The root dir's own mode may differ (tempdir is 0700, a snapshot root 0755):
    // compare the entries below it.
    let out = store.path(&chain);
    assert_eq!(tree(&out), tree(root));
    for rel in tree(root) {
        let (a, b) = (
            root.join(&rel).symlink_metadata().unwrap(),
            out.join(&rel).symlink_metadata().unwrap(),
        );
        assert_eq!(a.mode(), b.mode(), "{rel}");
        assert_eq!(a.len(), b.len(), "{rel}");
        if !rel.starts_with(".wh.") {
            assert_eq!(b.mtime(), 0, "{rel}");
        }
    }
    assert_eq!(
        out.join("usr/bin/tool2")
            .symlink_metadata()
            .unwrap()
            .nlink(),
        2
    );
}

#[test]
fn verify_finds_tampering_and_remove_respects_children() {
    let dir = tempfile::tempdir().unwrap();
    let store = Snapshots::with_options(dir.path(), unprivileged());
    let base = layer_of(&[("f", Some(b"one"))]);
    let top = layer_of(&[("g", Some(b"two"))]);
    let base_chain = unpack_chain(&store, std::slice::from_ref(&base));
    let top_chain = unpack_chain(&store, &[base, top]);
    assert_eq!(store.list().unwrap().len(), 2);

    fs::write(store.path(&top_chain).join("g"), b"evil").unwrap();
    assert!(matches!(
        store.verify(&top_chain),
        Err(SnapshotError::Tampered { .. })
    ));
    store.verify(&base_chain).unwrap();

    assert!(matches!(
        store.remove(&base_chain),
        Err(SnapshotError::HasChildren { .. })
    ));
    store.remove(&top_chain).unwrap();
    store.remove(&base_chain).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(tree(dir.path()).is_empty());

    let orphan = Digest::sha256_of(b"x");
    let err = store
        .unpack(Some(&orphan), &orphan, TAR, &b""[..])
        .unwrap_err();
    assert!(matches!(err, SnapshotError::ParentMissing(_)));
}

#[test]
fn later_entries_win_over_earlier_ones() {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(7);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("a/", tar::EntryType::Directory, 0o700, b"");
    add("a/inner", tar::EntryType::Regular, 0o644, b"x");
    add("a", tar::EntryType::Regular, 0o600, b"now a file");
    add("d/", tar::EntryType::Directory, 0o700, b"");
    add("d/", tar::EntryType::Directory, 0o751, b"");
    let layer = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Snapshots::with_options(dir.path(), unprivileged());
    let chain = store
        .unpack(None, &Digest::sha256_of(&layer), TAR, &layer[..])
        .unwrap();
    let root = store.path(&chain);
    let a = root.join("a").symlink_metadata().unwrap();
    assert!(a.is_file());
    assert_eq!(a.mode() & 0o7777, 0o600);
    assert_eq!(fs::read(root.join("a")).unwrap(), b"now a file");
    let d = root.join("d").symlink_metadata().unwrap();
    assert_eq!(d.mode() & 0o7777, 0o751);
}

/// A reader that gives nothing until `gate` says so, then `bytes`.
struct Gated {
    gate: Option<std::sync::mpsc::Receiver<()>>,
    bytes: io::Cursor<Vec<u8>>,
}

impl Read for Gated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.recv();
        }
        self.bytes.read(buf)
    }
}

/// A reader that records being read.
struct Watched(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Read for Watched {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(0)
    }
}

#[test]
fn a_second_unpacker_of_a_chain_id_waits_and_finds_it_done() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    let layer = sample_layer();
    let diff_id = Digest::sha256_of(&layer);
    let dir = tempfile::tempdir().unwrap();
    let store = Snapshots::with_options(dir.path().join("snaps"), unprivileged());
    let lock_file = store.dir().join(format!("{}{LOCK_SUFFIX}", diff_id.hex()));
    let (open, gate) = mpsc::channel();
    let first = {
        let (store, diff_id) = (store.clone(), diff_id.clone());
        let reader = Gated {
            gate: Some(gate),
            bytes: io::Cursor::new(layer),
        };
        std::thread::spawn(move || store.unpack(None, &diff_id, TAR, reader).unwrap())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !lock_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "first unpack never locked"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let read = Arc::new(AtomicBool::new(false));
    let (done, finished) = mpsc::channel();
    let second = {
        let (store, diff_id, read) = (store.clone(), diff_id.clone(), read.clone());
        std::thread::spawn(move || {
            let chain = store.unpack(None, &diff_id, TAR, Watched(read)).unwrap();
            done.send(()).unwrap();
            chain
        })
    };
    assert!(
        finished.recv_timeout(Duration::from_millis(200)).is_err(),
        "the second unpacker did not wait for the first"
    );
    open.send(()).unwrap();
    let a = first.join().unwrap();
    let b = second.join().unwrap();
    assert_eq!(a, b);
    assert!(!read.load(Ordering::SeqCst), "the layer was read twice");
    assert_eq!(store.list().unwrap(), vec![a.clone()]);
    store.verify(&a).unwrap();
    let left: Vec<_> = fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        left,
        [a.hex().to_string()],
        "no temp dir or lock file stays"
    );
}

//! The hostile layer corpus (tests/data/hostile-tar) as root: through
//! `berth import` + `berth snapshot unpack`, and through the library with
//! root's privileges (device nodes, overlay whiteouts, ownership).

use std::fs;
use std::path::{Path, PathBuf};

use berth_image::digest::Digest;
use berth_image::snapshot::{Snapshots, UnpackOptions};
use berth_tests::{require_root, workspace_root, TestRoot};

const OUTSIDE: &str = "/tmp/berth-hostile-outside";

fn corpus() -> Vec<PathBuf> {
    let dir = workspace_root().join("tests/data/hostile-tar");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 20,
        "hostile corpus missing from {}",
        dir.display()
    );
    cases
}

fn case_name(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
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
    let names: Vec<String> = fs::read_dir(OUTSIDE)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        ["victim"],
        "{case}: something was written to {OUTSIDE}"
    );
    let victim = Path::new(OUTSIDE).join("victim");
    assert!(
        victim.symlink_metadata().unwrap().is_file(),
        "{case}: victim replaced"
    );
    assert_eq!(
        fs::read(&victim).unwrap(),
        b"victim\n",
        "{case}: victim changed"
    );
    assert_eq!(
        xattr::get(OUTSIDE, "trusted.overlay.opaque").unwrap(),
        None,
        "{case}: {OUTSIDE} was marked opaque"
    );
}

/// Names of the entries directly in `dir`, sorted.
fn store_entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        out.push(name);
    }
    out.sort();
    out
}

fn snapshot_dirs(store: &Path) -> Vec<String> {
    match fs::read_dir(store.join("snapshots")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn hostile_layers_via_cli_never_escape() {
    require_root();
    let _outside = Outside::prepare();
    for case in corpus() {
        let name = case_name(&case);
        let t = TestRoot::new();
        let tag = format!("hostile-{name}");
        let out = t
            .berth()
            .arg("import")
            .arg(&case)
            .arg(&tag)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: berth import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let before = store_entries(&t.store());
        let out = t
            .berth()
            .args(["snapshot", "unpack", &tag])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_outside_untouched(&name);
        // Nothing new appears in the test dir around the store either.
        let scratch: Vec<String> = fs::read_dir(t.path(""))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(scratch, ["store"], "{name}: files written beside the store");
        let mut after = store_entries(&t.store());
        after.retain(|e| e != "snapshots");
        let mut before_no_snap = before.clone();
        before_no_snap.retain(|e| e != "snapshots");
        assert_eq!(
            after, before_no_snap,
            "{name}: store changed outside snapshots/"
        );
        if name.starts_with("reject-") {
            assert!(!out.status.success(), "{name}: unpack succeeded");
            assert!(stderr.starts_with("berth: "), "{name}: {stderr}");
            assert!(
                stderr.contains("layer entry \""),
                "{name}: error names no entry: {stderr}"
            );
            assert!(
                snapshot_dirs(&t.store()).is_empty(),
                "{name}: snapshot committed"
            );
        } else {
            assert!(out.status.success(), "{name}: {stderr}");
            assert_eq!(snapshot_dirs(&t.store()).len(), 1, "{name}");
            let check = t.berth().args(["snapshot", "verify"]).output().unwrap();
            assert!(
                check.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
}

#[test]
fn hostile_layers_privileged_library_never_escape() {
    require_root();
    let _outside = Outside::prepare();
    let options = UnpackOptions::for_current_user();
    assert!(options.privileged && options.preserve_ownership);
    for case in corpus() {
        let name = case_name(&case);
        let sandbox = tempfile::tempdir().unwrap();
        let store = Snapshots::with_options(sandbox.path().join("snapshots"), options);
        let bytes = fs::read(&case).unwrap();
        let diff_id = Digest::sha256_of(&bytes);
        let result = store.unpack(None, &diff_id, "", &bytes[..]);
        assert_outside_untouched(&name);
        let top: Vec<String> = fs::read_dir(sandbox.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(top, ["snapshots"], "{name}: wrote beside the store");
        if name.starts_with("reject-") {
            let err = result.expect_err(&name);
            assert!(err.to_string().contains("layer entry \""), "{name}: {err}");
            assert!(store.list().unwrap().is_empty(), "{name}");
            assert_eq!(
                fs::read_dir(store.dir()).unwrap().count(),
                0,
                "{name}: temp dir left"
            );
        } else {
            let chain = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            store.verify(&chain).unwrap();
        }
    }
}

//! Shared helpers for the end-to-end tests: locating the built binaries, demanding
//! root and system packages loudly (never skipping), and per-test state directories.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// Directory holding the built `berth` and `berth-runtime` binaries:
/// `$BERTH_BIN_DIR` if set, else `$CARGO_TARGET_DIR/debug` or `target/debug`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug")
}

/// Path of a built binary; panics with a hint when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --workspace` before the end-to-end tests",
        path.display()
    );
    path
}

/// Fails the test unless it runs as root: root tests must never skip silently.
pub fn require_root() {
    assert!(
        effective_uid() == 0,
        "this end-to-end test needs root (run the suite as root, as .ci/run does)"
    );
}

fn effective_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().expect("run `id -u`");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("`id -u` prints a number")
}

/// Fails the test unless `cmd` is on PATH, naming the Debian package to install.
pub fn require_command(cmd: &str, package: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` is not installed: apt-get install {package} (.ci/run does this)"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs a command and returns its output, panicking with its stderr when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A busybox root filesystem tarball made by `Dockerfiles/base/busybox-rootfs.sh`
/// (needs `busybox-static`). It is kept in the target dir (build output, not host
/// state) and made once: each test process writes its own copy and renames it into
/// place, so parallel test binaries never see a half-written tar.
pub fn busybox_rootfs_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        require_command("busybox", "busybox-static");
        let dir = bin_dir().join("berth-test-data");
        std::fs::create_dir_all(&dir).expect("create test data dir in the target dir");
        let tar = dir.join("busybox.tar");
        if !tar.exists() {
            let partial = dir.join(format!("busybox.tar.{}", std::process::id()));
            run_ok(
                Command::new("sh")
                    .arg(workspace_root().join("Dockerfiles/base/busybox-rootfs.sh"))
                    .arg(&partial),
            );
            std::fs::rename(&partial, &tar).expect("move busybox.tar into place");
        }
        tar
    })
}

/// A per-test `berth` store root and runtime state directory, removed on drop.
pub struct TestRoot {
    dir: tempfile::TempDir,
}

impl TestRoot {
    /// Makes a fresh state directory under the system temp dir.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("create test root");
        TestRoot { dir }
    }

    /// The store root to pass as `--root` / `BERTH_ROOT`.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Any other scratch path inside this test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `berth` command bound to this test's store.
    pub fn berth(&self) -> Command {
        let mut cmd = Command::new(bin("berth"));
        cmd.env("BERTH_ROOT", self.store());
        cmd
    }
}

impl Default for TestRoot {
    fn default() -> Self {
        Self::new()
    }
}

pub mod registry_fixtures;

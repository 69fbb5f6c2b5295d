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

/// The OCI runtime binary the runtime tests drive: `berth-runtime`, or
/// `$BERTH_TEST_RUNTIME` (e.g. `/usr/sbin/runc`) to check the tests themselves
/// against the reference runtime.
pub fn runtime_under_test() -> PathBuf {
    std::env::var_os("BERTH_TEST_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin("berth-runtime"))
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
    network: Option<PrivateNetwork>,
}

impl TestRoot {
    /// Makes a fresh state directory under the system temp dir.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("create test root");
        TestRoot { dir, network: None }
    }

    /// A fresh state directory whose `berth()` commands use this test's own installation
    /// settings (see [`PrivateNetwork`]): bridge `bt<k>`, subnet `10.88.<k>.0/24`, nft table
    /// `berth_t<k>`, cgroup parent `berth-test-<k>`, with `k` in 200..=254 claimed for this
    /// test's lifetime. On drop (after the test's own guards removed its containers) those are
    /// torn down, and anything that could not be is reported as a leak.
    pub fn with_private_network() -> Self {
        let mut root = Self::new();
        root.network = Some(PrivateNetwork::claim());
        root
    }

    /// As [`TestRoot::with_private_network`], with Debian's busybox imported as `busybox`.
    pub fn with_busybox() -> Self {
        let root = Self::with_private_network();
        run_ok(
            root.berth()
                .arg("import")
                .arg(busybox_rootfs_tar())
                .arg("busybox"),
        );
        root
    }

    /// This test's private network settings, if it has them.
    pub fn private_network(&self) -> Option<&PrivateNetwork> {
        self.network.as_ref()
    }

    /// Tears this test's private network down now (its containers must be removed first)
    /// and returns what is left of it; empty when there was none.
    pub fn teardown_private_network(&mut self) -> Vec<String> {
        self.network
            .as_mut()
            .map(PrivateNetwork::teardown)
            .unwrap_or_default()
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
        if let Some(net) = &self.network {
            cmd.env("BERTH_BRIDGE", net.bridge())
                .env("BERTH_SUBNET", net.subnet())
                .env("BERTH_NFT_TABLE", net.table())
                .env("BERTH_CGROUP_PARENT", net.cgroup_parent());
        }
        cmd
    }
}

/// Installation settings of one test (`BERTH_BRIDGE`, `BERTH_SUBNET`, `BERTH_NFT_TABLE`,
/// `BERTH_CGROUP_PARENT`), so tests running side by side never share a bridge, nft table or
/// cgroup parent, and each can remove its own. Slot `k` (200..=254) is claimed by a file
/// `/run/berth-tests/net-<k>` holding the test process's pid (a dead holder's claim is taken
/// over); it stays clear of network_bridge.rs's 10.88.1xx.0/24 subnets.
pub struct PrivateNetwork {
    slot: u8,
    claim: PathBuf,
    torn_down: bool,
}

/// Where slot claims live.
const CLAIM_DIR: &str = "/run/berth-tests";

impl PrivateNetwork {
    fn claim() -> Self {
        std::fs::create_dir_all(CLAIM_DIR).expect("create /run/berth-tests");
        let pid = std::process::id();
        for slot in 200u8..=254 {
            let claim = Path::new(CLAIM_DIR).join(format!("net-{slot}"));
            let made = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&claim);
            match made {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(pid.to_string().as_bytes())
                        .expect("write network slot claim");
                    let mut net = PrivateNetwork {
                        slot,
                        claim,
                        torn_down: false,
                    };
                    // Whatever a crashed earlier holder of this slot left goes first.
                    net.teardown();
                    net.torn_down = false;
                    return net;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&claim).unwrap_or_default();
                    let alive = holder
                        .trim()
                        .parse::<u32>()
                        .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists());
                    if !alive && !holder.trim().is_empty() {
                        let _ = std::fs::remove_file(&claim);
                    }
                }
                Err(e) => panic!("claim {}: {e}", claim.display()),
            }
        }
        panic!("no free test network slot in 200..=254 under {CLAIM_DIR}");
    }

    /// The bridge, `bt<k>`.
    pub fn bridge(&self) -> String {
        format!("bt{}", self.slot)
    }

    /// The subnet, `10.88.<k>.0/24`.
    pub fn subnet(&self) -> String {
        format!("10.88.{}.0/24", self.slot)
    }

    /// The nft table (family `ip`), `berth_t<k>`.
    pub fn table(&self) -> String {
        format!("berth_t{}", self.slot)
    }

    /// The cgroup parent, `berth-test-<k>`.
    pub fn cgroup_parent(&self) -> String {
        format!("berth-test-{}", self.slot)
    }

    /// The network's state dir, `/run/berth/networks/bt<k>`.
    pub fn state_dir(&self) -> PathBuf {
        Path::new("/run/berth/networks").join(self.bridge())
    }

    /// The cgroup parent's directory in every mounted hierarchy under /sys/fs/cgroup.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join(self.cgroup_parent()))
            .collect();
        dirs.push(Path::new("/sys/fs/cgroup").join(self.cgroup_parent()));
        dirs.sort();
        dirs
    }

    /// What of this network is still on the host: link, nft table, state dir, cgroup dirs.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        if Path::new("/sys/class/net").join(self.bridge()).exists() {
            left.push(format!("link {}", self.bridge()));
        }
        let table = Command::new("nft")
            .args(["list", "table", "ip", &self.table()])
            .output();
        if table.is_ok_and(|o| o.status.success()) {
            left.push(format!("nft table ip {}", self.table()));
        }
        if self.state_dir().exists() {
            left.push(format!("state dir {}", self.state_dir().display()));
        }
        for dir in self.cgroup_dirs() {
            if dir.exists() {
                left.push(format!("cgroup {}", dir.display()));
            }
        }
        left
    }

    /// Removes the bridge, the nft table, the state dir and the (empty) cgroup parent dirs;
    /// returns what is left (a cgroup parent that is not empty is a container's leak).
    pub fn teardown(&mut self) -> Vec<String> {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.table()])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(self.state_dir());
        for dir in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(&dir);
        }
        self.torn_down = true;
        self.leftovers()
    }
}

impl Drop for PrivateNetwork {
    fn drop(&mut self) {
        let left = if self.torn_down {
            self.leftovers()
        } else {
            self.teardown()
        };
        let _ = std::fs::remove_file(&self.claim);
        // Gone once the last test holding a slot is done.
        let _ = std::fs::remove_dir(CLAIM_DIR);
        remove_empty_default_dirs();
        if !left.is_empty() && !std::thread::panicking() {
            panic!("test network slot {} leaked: {left:?}", self.slot);
        }
    }
}

impl Default for TestRoot {
    fn default() -> Self {
        Self::new()
    }
}

pub mod registry_fixtures;

/// berth's host-wide directories (network namespaces and network state under
/// `/run/berth`, berth-runtime's default `--root`), removed when a test made
/// them and left them empty; `remove_dir` never removes one that holds anything.
/// berth-runtime's compiled seccomp programs in its default root are only a cache
/// (a runtime that misses compiles again), so they go first.
pub fn remove_empty_default_dirs() {
    let _ = std::fs::remove_dir_all("/run/berth-runtime/.seccomp");
    for dir in [
        "/run/berth/netns",
        "/run/berth/networks",
        "/run/berth",
        "/run/berth-runtime",
    ] {
        let _ = std::fs::remove_dir(dir);
    }
}

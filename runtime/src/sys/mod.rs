//! The syscall seam: the root filesystem and device setup talk to the kernel only
//! through [`Syscall`], so their logic is unit-tested with a recording fake and
//! without root. [`Linux`] is the real implementation.

pub mod heap;
mod linux;
pub mod protected_exe;
pub mod resident;
pub mod seccomp;

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

pub use linux::Linux;

/// An error from one system call, naming the call and its path.
#[derive(Debug, thiserror::Error)]
#[error("{call} {path}: {source}")]
pub struct SysError {
    /// The operation that failed (`mount`, `mknod`, ...).
    pub call: &'static str,
    /// The path it acted on.
    pub path: String,
    /// The kernel's error.
    #[source]
    pub source: std::io::Error,
}

impl SysError {
    /// Wraps an errno from `call` on `path`.
    pub fn new(call: &'static str, path: &Path, errno: nix::Error) -> Self {
        SysError {
            call,
            path: path.display().to_string(),
            source: std::io::Error::from(errno),
        }
    }

    /// Wraps an io error from `call` on `path`.
    pub fn io(call: &'static str, path: &Path, source: std::io::Error) -> Self {
        SysError {
            call,
            path: path.display().to_string(),
            source,
        }
    }

    /// True when the kernel said the path does not exist.
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == std::io::ErrorKind::NotFound
    }
}

/// The kernel operations used to build a container's root filesystem.
pub trait Syscall {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), SysError>;
    /// umount2(2).
    fn umount(&self, target: &Path, flags: MntFlags) -> Result<(), SysError>;
    /// Creates a directory and its parents (mode 0755).
    fn mkdir_all(&self, path: &Path) -> Result<(), SysError>;
    /// Creates an empty regular file if nothing exists at `path`.
    fn touch(&self, path: &Path) -> Result<(), SysError>;
    /// symlink(2): `link` pointing at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), SysError>;
    /// mknod(2), then the node gets exactly `mode` whatever the umask.
    fn mknod(&self, path: &Path, kind: SFlag, mode: Mode, dev: u64) -> Result<(), SysError>;
    /// chown(2).
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), SysError>;
    /// Writes `data` to an existing file (sysctls under /proc/sys).
    fn write_file(&self, path: &Path, data: &str) -> Result<(), SysError>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> Result<(), SysError>;
    /// setdomainname(2).
    fn setdomainname(&self, name: &str) -> Result<(), SysError>;
    /// Makes `rootfs` the root: pivot_root(2) and detach the old root.
    fn pivot_root(&self, rootfs: &Path) -> Result<(), SysError>;
    /// Moves `rootfs` over `/` and chroots into it (the `--no-pivot` fallback).
    fn move_root(&self, rootfs: &Path) -> Result<(), SysError>;
    /// True when `path` exists (without following a final symlink).
    fn exists(&self, path: &Path) -> bool;
    /// True when `path` is a directory (following symlinks).
    fn is_dir(&self, path: &Path) -> bool;
    /// Makes the mount point `dest` (absolute, as the container sees it) inside `rootfs`: a
    /// directory, or unless `dir` an empty file, with missing parents, every component
    /// resolved in the root by the kernel (`berth_rootpath`). The path to mount on names
    /// the resolved descriptor itself, so nothing renamed meanwhile can redirect the mount.
    fn mount_target(&self, rootfs: &Path, dest: &Path, dir: bool) -> Result<MountTarget, SysError>;
}

/// Where to mount: a path that stays valid while the target lives.
#[derive(Debug)]
pub struct MountTarget {
    /// `/proc/self/fd/N` of `fd` (or a plain path in tests). A mount made on it covers
    /// what `fd` holds: resolve the target again to act on the new mount.
    pub path: PathBuf,
    /// The `O_PATH` descriptor `path` names.
    pub fd: Option<std::os::fd::OwnedFd>,
}

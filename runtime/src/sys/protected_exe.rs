//! CVE-2019-5736: a container must not be able to overwrite the runtime binary
//! through `/proc/<pid>/exe` of a runtime process that entered it (or of a
//! container process that re-executed `/proc/self/exe`).
//!
//! The runtime re-executes itself from a read-only view of its own binary, as
//! runc 1.2 does with a detached overlayfs: `open_tree(OPEN_TREE_CLONE)` makes a
//! bind mount of the binary that is attached to no mount namespace,
//! `mount_setattr(MOUNT_ATTR_RDONLY)` makes it read-only, and `execveat` runs
//! from it. Writes through the magic link then fail with `EROFS`. Unlike a bind
//! mount in a namespace, this one cannot be made writable again: the detached
//! tree is dissolved when the `open_tree` fd closes at exec, so
//! `mount_setattr`, a bind remount or an `open_tree` clone reached through
//! `/proc/<pid>/exe` fail with `EINVAL`, even for root of the namespaces the
//! process runs in.
//! Nothing is copied and nothing outlives the process: the mount vanishes with
//! the last process executing from it. Where those calls are refused (no
//! `CAP_SYS_ADMIN`, old kernel), the runtime falls back to a sealed memfd copy
//! of itself, whose seals refuse the writes instead (costs a copy of the binary).

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::statvfs::{statvfs, FsFlags};

/// Why the runtime could not re-execute from a protected view of itself.
#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    /// Reading our own binary failed.
    #[error("open /proc/self/exe: {0}")]
    Open(std::io::Error),
    /// memfd_create, copying or sealing failed.
    #[error("sealed copy of the runtime binary: {0}")]
    Copy(String),
    /// An argument with a NUL byte (cannot be passed to execve).
    #[error("argument contains a NUL byte")]
    Nul,
    /// fexecve failed.
    #[error("re-exec from the protected runtime binary: {0}")]
    Exec(nix::Error),
}

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// `struct mount_attr` of `mount_setattr(2)` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY` (linux/mount.h).
const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `OPEN_TREE_CLONE` (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 0x1;

/// True when this process's binary cannot be written through
/// `/proc/self/exe`: it sits on a read-only mount, or is a sealed memfd.
pub fn running_protected() -> bool {
    if statvfs("/proc/self/exe").is_ok_and(|st| st.flags().contains(FsFlags::ST_RDONLY)) {
        return true;
    }
    File::open("/proc/self/exe")
        .ok()
        .and_then(|f| fcntl(f.as_raw_fd(), FcntlArg::F_GET_SEALS).ok())
        .is_some_and(|bits| SealFlag::from_bits_truncate(bits).contains(SEALS))
}

/// Re-executes this process from a read-only view of its binary (or, failing
/// that, a sealed memfd copy) with the same arguments and environment, unless
/// it already runs from one. Returns only on failure (or when protected).
pub fn ensure_protected(args: &[OsString]) -> Result<(), ProtectError> {
    if running_protected() {
        return Ok(());
    }
    let exe = match readonly_mount_of_self() {
        Ok(fd) => fd,
        Err(errno) => {
            tracing::debug!(%errno, "read-only mount of the runtime binary refused; sealed copy");
            sealed_copy_of_self()?
        }
    };
    let argv = args
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| ProtectError::Nul))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).map_err(|_| ProtectError::Nul)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Err(e) = nix::unistd::fexecve(exe.as_raw_fd(), &argv, &envp);
    Err(ProtectError::Exec(e))
}

/// A detached, read-only bind mount of our own binary, as an `O_PATH` fd.
fn readonly_mount_of_self() -> Result<OwnedFd, nix::Error> {
    let path = c"/proc/self/exe";
    // SAFETY: open_tree takes a NUL-terminated path that outlives the call and
    // returns a new fd (or -1), which we own from here on.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    let raw = i32::try_from(fd).map_err(|_| nix::Error::EBADF)?;
    // SAFETY: `raw` is a fresh fd from open_tree that nothing else owns.
    let mount = unsafe { OwnedFd::from_raw_fd(raw) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the fd is open, the path is an empty NUL-terminated string, and
    // `attr` is a live `struct mount_attr` whose size is passed alongside.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(nix::Error::last());
    }
    Ok(mount)
}

/// A sealed (no write, grow or shrink) memfd holding a copy of our binary.
fn sealed_copy_of_self() -> Result<OwnedFd, ProtectError> {
    let mut exe = File::open("/proc/self/exe").map_err(ProtectError::Open)?;
    let memfd = memfd_create(
        c"berth-runtime",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .map_err(|e| ProtectError::Copy(format!("memfd_create: {e}")))?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).map_err(|e| ProtectError::Copy(e.to_string()))?;
    fcntl(copy.as_raw_fd(), FcntlArg::F_ADD_SEALS(SEALS))
        .map_err(|e| ProtectError::Copy(format!("add seals: {e}")))?;
    Ok(OwnedFd::from(copy))
}

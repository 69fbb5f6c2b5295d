//! CVE-2019-5736: a container must not be able to overwrite the runtime binary
//! through `/proc/<pid>/exe` of a runtime process that entered it (or of a
//! container process that re-executed `/proc/self/exe`). As runc and crun do,
//! the runtime runs from a sealed, read-only memfd copy of itself: writes
//! through the magic link then hit the memfd, and its seals refuse them.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

/// Why the sealed copy could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
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
    #[error("re-exec from the sealed copy: {0}")]
    Exec(nix::Error),
}

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// True when this process already runs from a sealed memfd.
pub fn running_sealed() -> bool {
    File::open("/proc/self/exe")
        .ok()
        .and_then(|f| fcntl(f.as_raw_fd(), FcntlArg::F_GET_SEALS).ok())
        .is_some_and(|bits| SealFlag::from_bits_truncate(bits).contains(SEALS))
}

/// Re-executes this process from a sealed memfd copy of its binary with the
/// same arguments and environment, unless it already runs from one. Returns
/// only on failure (or when already sealed).
pub fn ensure_sealed(args: &[OsString]) -> Result<(), SealError> {
    if running_sealed() {
        return Ok(());
    }
    let mut exe = File::open("/proc/self/exe").map_err(SealError::Open)?;
    let name = c"berth-runtime";
    let memfd = memfd_create(
        name,
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .map_err(|e| SealError::Copy(format!("memfd_create: {e}")))?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).map_err(|e| SealError::Copy(e.to_string()))?;
    fcntl(copy.as_raw_fd(), FcntlArg::F_ADD_SEALS(SEALS))
        .map_err(|e| SealError::Copy(format!("add seals: {e}")))?;
    let argv = args
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| SealError::Nul))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).map_err(|_| SealError::Nul)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Err(e) = nix::unistd::fexecve(copy.as_raw_fd(), &argv, &envp);
    Err(SealError::Exec(e))
}

//! Installing a compiled seccomp BPF program with the `seccomp(2)` system call, so a
//! filter compiled once (and cached) is loaded without libseccomp regenerating it.

use std::io;

/// Installs `program` as a seccomp filter on the calling thread with `flags`
/// (`SECCOMP_FILTER_FLAG_*`). Needs `no_new_privs` or `CAP_SYS_ADMIN`, as libseccomp's load.
pub fn install_filter(program: &[libc::sock_filter], flags: libc::c_ulong) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seccomp program too long"))?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel only reads
    // `len` instructions from it and copies them, keeping no reference after returning.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

//! Switching to the container user: supplementary groups, gid, uid.

use nix::sys::prctl;
use nix::unistd::{getgroups, getresgid, getresuid, setgroups, setresgid, setresuid, Gid, Uid};

use super::ConfineError;

fn syscall(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ConfineError {
    let what = what.into();
    move |source| ConfineError::Syscall { what, source }
}

/// Sets groups, gid and uid (real, effective and saved) in that order, keeping
/// the permitted capabilities across the uid change so the caller can then set
/// the spec's capability sets for a non-root user. Ids that already have the
/// wanted value are left alone: glibc applies these calls to every thread of
/// the process, which would fail (and abort) in threads that dropped
/// `CAP_SETUID`/`CAP_SETGID`.
pub(super) fn switch(uid: u32, gid: u32, additional_gids: &[u32]) -> Result<(), ConfineError> {
    let groups: Vec<Gid> = additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
    let current = getgroups().map_err(syscall("getgroups"))?;
    if current != groups {
        // In a user namespace whose setgroups is denied the call fails; there is
        // nothing to drop then unless the spec asked for groups.
        if let Err(e) = setgroups(&groups) {
            if !(groups.is_empty() && e == nix::Error::EPERM && setgroups_denied()) {
                return Err(syscall(format!("setgroups {additional_gids:?}"))(e));
            }
        }
    }
    let g = Gid::from_raw(gid);
    let rg = getresgid().map_err(syscall("getresgid"))?;
    if (rg.real, rg.effective, rg.saved) != (g, g, g) {
        setresgid(g, g, g).map_err(syscall(format!("setgid {gid}")))?;
    }
    let u = Uid::from_raw(uid);
    let ru = getresuid().map_err(syscall("getresuid"))?;
    if (ru.real, ru.effective, ru.saved) != (u, u, u) {
        prctl::set_keepcaps(true).map_err(syscall("prctl(PR_SET_KEEPCAPS, 1)"))?;
        setresuid(u, u, u).map_err(syscall(format!("setuid {uid}")))?;
        prctl::set_keepcaps(false).map_err(syscall("prctl(PR_SET_KEEPCAPS, 0)"))?;
    }
    Ok(())
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false)
}

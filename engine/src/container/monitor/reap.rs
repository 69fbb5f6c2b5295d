//! Reaping the monitor's children: the container's init, health checks, and orphans of the
//! container re-parented to the monitor (a child subreaper).

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The exit code of a finished child (128+n when killed by signal n); `None` for a status
/// that is no end (stopped, continued).
pub fn exit_code(status: WaitStatus) -> Option<(Pid, i32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid, code)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid, 128 + sig as i32)),
        _ => None,
    }
}

/// Reaps every child that has exited, without waiting; returns their pids and exit codes.
pub fn reap_exited() -> Vec<(Pid, i32)> {
    let mut ended = Vec::new();
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return ended,
            Ok(status) => ended.extend(exit_code(status)),
            Err(nix::Error::EINTR) => {}
            Err(e) => {
                tracing::warn!(error = %e, "waitpid");
                return ended;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn exits_and_signals_become_exit_codes() {
        let pid = Pid::from_raw(42);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), Some((pid, 3)));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some((pid, 137))
        );
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, true)),
            Some((pid, 143))
        );
        assert_eq!(exit_code(WaitStatus::Stopped(pid, Signal::SIGSTOP)), None);
        assert_eq!(exit_code(WaitStatus::Continued(pid)), None);
    }
}

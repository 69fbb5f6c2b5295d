//! `run`: create, start, and (unless detached) wait for the container while
//! forwarding signals to it; the result is its exit code, 128+n when killed.

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::CreateOptions;
use super::{ContainerError, Runtime};

/// Signals `run` passes on to the container instead of dying from them.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

impl Runtime {
    /// Creates and starts a container; when not `detach`, waits for it,
    /// deletes it, and returns its exit code.
    pub fn run(&self, opts: &CreateOptions, detach: bool) -> Result<i32, ContainerError> {
        let pid = self.create(opts)?;
        let mask = forwarded_signals();
        if !detach {
            // Blocked before start, so a quick exit's SIGCHLD is not lost.
            mask.thread_block()
                .map_err(|e| ContainerError::Sys("sigprocmask", e))?;
        }
        if let Err(e) = self.start(&opts.id) {
            let _ = self.delete(&opts.id, true);
            return Err(e);
        }
        if detach {
            return Ok(0);
        }
        let code = wait_forwarding(pid, &mask);
        let _ = mask.thread_unblock();
        self.delete(&opts.id, true)?;
        code
    }
}

/// The signals `run` and `exec` pass on, plus SIGCHLD, as one set to block.
pub(super) fn forwarded_signals() -> SigSet {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask
}

/// Waits for our child `pid`, passing forwarded signals to it.
pub(super) fn wait_forwarding(pid: Pid, mask: &SigSet) -> Result<i32, ContainerError> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(ContainerError::Sys("waitpid", e)),
        }
        match mask.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = kill(pid, sig);
            }
            Err(e) => return Err(ContainerError::Sys("sigwait", e)),
        }
    }
}

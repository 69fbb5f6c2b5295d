//! `run`: create, start, and (unless detached) wait for the container while
//! forwarding signals to it; the result is its exit code, 128+n when killed.
//! A terminal with no `--console-socket` is allocated here and proxied to our
//! own stdio, as `runc run` does.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::CreateOptions;
use super::{ContainerError, Runtime};
use crate::tty;

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
        let wants_tty = !detach && opts.console_socket.is_none() && self.spec_wants_tty(opts);
        let mut opts = opts.clone();
        let listener = if wants_tty {
            let (l, path) = self.console_listener(&opts.id)?;
            opts.console_socket = Some(path);
            Some(l)
        } else {
            None
        };
        let created = self.create(&opts);
        if let Some(path) = opts.console_socket.as_ref().filter(|_| wants_tty) {
            let _ = std::fs::remove_file(path);
        }
        let pid = created?;
        let master = match &listener {
            Some(l) => {
                let (stream, _) = l
                    .accept()
                    .map_err(|e| ContainerError::io(self.dirs.root(), e))?;
                Some(tty::receive_master(&stream)?)
            }
            None => None,
        };
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
        let code = match master {
            Some(master) => proxy_tty(pid, &mask, master),
            None => wait_forwarding(pid, &mask),
        };
        let _ = mask.thread_unblock();
        self.delete(&opts.id, true)?;
        code
    }

    /// A unix socket in the state dir for init to send a pty master to, when the caller
    /// gave no `--console-socket` and the terminal is proxied to our own stdio. Named by the
    /// id's first 12 characters and our pid (one terminal per process), so the path stays
    /// within a socket address's 108 bytes.
    pub(super) fn console_listener(
        &self,
        id: &str,
    ) -> Result<(UnixListener, PathBuf), ContainerError> {
        std::fs::create_dir_all(self.dirs.root())
            .map_err(|e| ContainerError::io(self.dirs.root(), e))?;
        let short: String = id.chars().take(12).collect();
        let path = self
            .dirs
            .root()
            .join(format!(".{short}.{}.console", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).map_err(|e| ContainerError::io(&path, e))?;
        Ok((l, path))
    }

    fn spec_wants_tty(&self, opts: &CreateOptions) -> bool {
        oci_spec::runtime::Spec::load(opts.bundle.join("config.json"))
            .ok()
            .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
            .unwrap_or(false)
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

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Waits for our child `pid`, passing forwarded signals to it.
pub(super) fn wait_forwarding(pid: Pid, mask: &SigSet) -> Result<i32, ContainerError> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return Ok(code);
                }
            }
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

/// Copies our stdin to the pty master and the master to our stdout (raw mode)
/// until the container exits, forwarding signals and window size changes.
pub(super) fn proxy_tty(pid: Pid, mask: &SigSet, master: OwnedFd) -> Result<i32, ContainerError> {
    let _raw = tty::RawMode::enter();
    let stdin = std::io::stdin();
    tty::copy_window_size(stdin.as_fd(), master.as_fd());
    let sigfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| ContainerError::Sys("signalfd", e))?;
    let mut master_file = std::fs::File::from(master);
    let mut stdout = std::io::stdout();
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    let mut exited: Option<i32> = None;
    loop {
        if exited.is_none() {
            if let Ok(status) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                exited = exit_code(status);
            }
        }
        let mut fds = vec![
            PollFd::new(master_file.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let timeout = if exited.is_some() { 0u16 } else { 1000 };
        match poll(&mut fds, PollTimeout::from(timeout)) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(ContainerError::Sys("poll", e)),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (master_ready, sig_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if master_ready {
            match master_file.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let _ = stdout.write_all(&buf[..n]);
                    let _ = stdout.flush();
                    continue;
                }
                // EIO once the last slave fd closes: the container is gone.
                _ => {
                    if let Some(code) = exited {
                        return Ok(code);
                    }
                }
            }
        } else if let Some(code) = exited {
            return Ok(code);
        }
        if sig_ready {
            while let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {}
                    Ok(Signal::SIGWINCH) => {
                        tty::copy_window_size(stdin.as_fd(), master_file.as_fd())
                    }
                    Ok(sig) => {
                        let _ = kill(pid, sig);
                    }
                    Err(_) => {}
                }
            }
        }
        if stdin_ready {
            match stdin.lock().read(&mut buf) {
                Ok(n) if n > 0 => {
                    let _ = master_file.write_all(&buf[..n]);
                }
                _ => stdin_open = false,
            }
        }
    }
}

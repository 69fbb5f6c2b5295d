//! Terminals: a pty made inside the container, its master sent to the caller's
//! `--console-socket` over SCM_RIGHTS (as runc does), its slave made the
//! process's controlling terminal and stdio.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, Winsize};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

/// Why the terminal could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    /// Connecting to the console socket failed.
    #[error("console socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A pty operation failed.
    #[error("terminal {0}: {1}")]
    Pty(&'static str, nix::Error),
}

/// Connects to the caller's console socket (before the container is forked).
pub fn connect(path: &Path) -> Result<OwnedFd, TtyError> {
    UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(|source| TtyError::Connect {
            path: path.display().to_string(),
            source,
        })
}

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, Winsize);

/// Inside the container (after pivot_root): opens a pty on the container's
/// devpts, binds the slave over /dev/console, sends the master to `socket`,
/// and makes the slave this process's controlling terminal and fds 0, 1, 2.
pub fn setup_console(socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<(), TtyError> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| TtyError::Pty("open /dev/ptmx", e))?;
    grantpt(&master).map_err(|e| TtyError::Pty("grantpt", e))?;
    unlockpt(&master).map_err(|e| TtyError::Pty("unlockpt", e))?;
    let slave_name = ptsname_r(&master).map_err(|e| TtyError::Pty("ptsname", e))?;
    if let Some((height, width)) = size {
        let ws = Winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: master is an open pty fd and `ws` a live winsize, which TIOCSWINSZ
        // only reads during the call.
        unsafe { set_winsize(master.as_raw_fd(), &ws) }
            .map_err(|e| TtyError::Pty("set size", e))?;
    }
    let slave = nix::fcntl::open(
        slave_name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| TtyError::Pty("open slave", e))?;
    if Path::new("/dev/console").exists() || std::fs::File::create("/dev/console").is_ok() {
        nix::mount::mount(
            Some(slave_name.as_str()),
            "/dev/console",
            Some("bind"),
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| TtyError::Pty("bind /dev/console", e))?;
    }
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<UnixAddr>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| TtyError::Pty("send master to console socket", e))?;
    drop(master);
    for target in 0..3 {
        nix::unistd::dup2(slave, target).map_err(|e| TtyError::Pty("dup2", e))?;
    }
    if slave > 2 {
        let _ = nix::unistd::close(slave);
    }
    // SAFETY: TIOCSCTTY takes an int argument, not a pointer, so no memory is read
    // or written; fd 0 is the pty slave just installed.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(TtyError::Pty(
            "make controlling terminal",
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// Receives the pty master that init sent over a console socket (SCM_RIGHTS).
pub fn receive_master(socket: &UnixStream) -> Result<OwnedFd, TtyError> {
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| TtyError::Pty("receive pty master", e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| TtyError::Pty("receive pty master", e))?
    {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS made this a new fd in our table that nothing
                // else refers to, so the `OwnedFd` is its only owner and closes it once.
                return Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            }
        }
    }
    Err(TtyError::Pty("receive pty master", nix::Error::EBADMSG))
}

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, Winsize);

/// Copies the window size of terminal `from` to pty `to` (on start and SIGWINCH).
pub fn copy_window_size(from: std::os::fd::BorrowedFd<'_>, to: std::os::fd::BorrowedFd<'_>) {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: both fds are borrowed, so open; `ws` is a live winsize that TIOCGWINSZ
    // fills (every bit pattern of its u16 fields is valid) and TIOCSWINSZ reads.
    unsafe {
        if get_winsize(from.as_raw_fd(), &mut ws).is_ok() {
            let _ = set_winsize(to.as_raw_fd(), &ws);
        }
    }
}

/// The size (rows, columns) of terminal `fd`, if it is one.
pub fn window_size(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: fd is borrowed, so open; `ws` is a live winsize that TIOCGWINSZ fills,
    // and every bit pattern of its u16 fields is valid.
    unsafe { get_winsize(fd.as_raw_fd(), &mut ws) }
        .ok()
        .map(|_| (ws.ws_row, ws.ws_col))
}

/// Sets the size of pty `fd` (a master held by a monitor, on a client's resize).
pub fn set_window_size(
    fd: std::os::fd::BorrowedFd<'_>,
    rows: u16,
    cols: u16,
) -> Result<(), TtyError> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: fd is borrowed, so open; `ws` is a live winsize that TIOCSWINSZ only reads.
    unsafe { set_winsize(fd.as_raw_fd(), &ws) }
        .map(drop)
        .map_err(|e| TtyError::Pty("set size", e))
}

/// The caller's terminal in raw mode while `run` proxies a container's pty;
/// restored on drop.
pub struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    /// Puts stdin in raw mode when it is a terminal.
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = nix::sys::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            nix::sys::termios::cfmakeraw(&mut raw);
            let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

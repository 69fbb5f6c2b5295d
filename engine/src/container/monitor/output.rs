//! The container's output side: the pipes its stdio is wired to, and reading them without
//! blocking the monitor's loop.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::super::ContainerError;

/// A pipe (both ends close-on-exec): the read end as a file, the write end to hand out.
pub fn pipe() -> Result<(File, OwnedFd), ContainerError> {
    let (r, w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ContainerError::Sys("pipe2", e))?;
    Ok((File::from(r), w))
}

/// Makes reads of `fd` return at once when nothing is there.
pub fn set_nonblocking(fd: &impl AsRawFd) -> Result<(), ContainerError> {
    let flags =
        fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(|e| ContainerError::Sys("fcntl", e))?;
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map(drop)
    .map_err(|e| ContainerError::Sys("fcntl", e))
}

/// What one read of an output found.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// This many bytes were read.
    Data(usize),
    /// Nothing now; more may come.
    Pending,
    /// The output is closed (end of file, or EIO once a pty's last slave fd closed).
    Closed,
}

/// Reads once from a non-blocking output into `buf`.
pub fn read_chunk(output: &mut File, buf: &mut [u8]) -> Chunk {
    match output.read(buf) {
        Ok(0) => Chunk::Closed,
        Ok(n) => Chunk::Data(n),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Chunk::Pending,
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Chunk::Pending,
        Err(_) => Chunk::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_pipe_reads_what_was_written_then_waits_then_closes() {
        let (mut r, w) = pipe().unwrap();
        set_nonblocking(&r).unwrap();
        let mut w = File::from(w);
        let mut buf = [0u8; 8];
        assert_eq!(read_chunk(&mut r, &mut buf), Chunk::Pending);
        w.write_all(b"hello").unwrap();
        assert_eq!(read_chunk(&mut r, &mut buf), Chunk::Data(5));
        assert_eq!(&buf[..5], b"hello");
        drop(w);
        assert_eq!(read_chunk(&mut r, &mut buf), Chunk::Closed);
    }

    #[test]
    fn pipes_are_close_on_exec() {
        let (r, w) = pipe().unwrap();
        for fd in [r.as_raw_fd(), w.as_raw_fd()] {
            let flags = fcntl(fd, FcntlArg::F_GETFD).unwrap();
            assert_ne!(flags & libc_cloexec(), 0);
        }
    }

    fn libc_cloexec() -> i32 {
        nix::fcntl::FdFlag::FD_CLOEXEC.bits()
    }
}

//! Paths inside a root filesystem (a container's, an image's, a snapshot being
//! unpacked), resolved by the kernel so nothing in the tree can lead outside it.
//!
//! A [`Root`] holds a directory file descriptor. Every lookup is one
//! `openat2(2)` relative to it with `RESOLVE_IN_ROOT` (symlinks are followed
//! with `/` meaning the root and `..` stopping there, as the container sees
//! them) or `RESOLVE_BENEATH` (any escape is an error), always with
//! `RESOLVE_NO_MAGICLINKS` (`/proc/self/root` and friends are refused). The
//! answer is a file descriptor, never a host path: callers act on it, or on a
//! name relative to a parent directory descriptor ([`At`]) whose last
//! component is never followed, so a process in the container that swaps a
//! directory for a symlink between two calls cannot redirect either of them.
//! Where a host path cannot be avoided (a mount target), [`proc_path`] names
//! the descriptor itself.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

mod at;
#[cfg(test)]
mod tests;

pub use at::{entries, At};
pub use rustix::fs::{FileType, Stat};

/// Most symlinks followed while creating a path (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// How often a lookup is retried when the kernel reports a concurrent rename
/// (`EAGAIN` from `openat2` with `RESOLVE_IN_ROOT`/`RESOLVE_BENEATH`).
const MAX_RETRIES: usize = 128;

/// Why a path could not be resolved or acted on inside a root.
#[derive(Debug, thiserror::Error)]
pub enum RootPathError {
    /// The root directory itself could not be opened.
    #[error("open root {root}: {source}")]
    Root {
        /// The root's host path.
        root: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The path leads out of a root that allows no escape (`RESOLVE_BENEATH`,
    /// `RESOLVE_NO_XDEV`).
    #[error("path {path:?} leads out of {root}")]
    Escape {
        /// The path as given.
        path: String,
        /// The root's host path.
        root: PathBuf,
    },
    /// A symlink loop, a symlink opened with `O_NOFOLLOW`, or a magic link
    /// (`/proc/*/root`, `/proc/*/fd/*`).
    #[error("path {path:?} in {root}: a symlink loop, a symlink where none may be followed, or a /proc magic link")]
    Loop {
        /// The path as given.
        path: String,
        /// The root's host path.
        root: PathBuf,
    },
    /// A file operation failed.
    #[error("{op} {path:?} in {root}: {source}")]
    Io {
        /// What was being done ("open", "mkdir", ...).
        op: &'static str,
        /// The path as given.
        path: String,
        /// The root's host path.
        root: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl RootPathError {
    /// True when the path (or a directory on the way) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RootPathError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The errno behind the error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            RootPathError::Io { source, .. } | RootPathError::Root { source, .. } => {
                source.raw_os_error()
            }
            RootPathError::Escape { .. } => Some(rustix::io::Errno::XDEV.raw_os_error()),
            RootPathError::Loop { .. } => Some(rustix::io::Errno::LOOP.raw_os_error()),
        }
    }
}

/// A directory that paths are resolved in and never leave.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    resolve: ResolveFlags,
    host: PathBuf,
}

impl Root {
    /// Opens the host directory `host` (a trusted path: it is followed, so
    /// `/proc/<pid>/root` opens that process's root) as a root in which
    /// symlinks are re-rooted, as the container sees them.
    pub fn open(host: impl AsRef<Path>) -> Result<Root, RootPathError> {
        let host = host.as_ref();
        let dir = rustix::fs::open(
            host,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RootPathError::Root {
            root: host.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Root {
            dir,
            resolve: ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            host: host.to_path_buf(),
        })
    }

    /// Opens `host` as a root that no path may leave: an absolute symlink, or
    /// a `..` above the root, is an [`RootPathError::Escape`] rather than
    /// re-rooted; mount points are not crossed (for trees being built, such as
    /// an unpacking snapshot).
    pub fn open_beneath(host: impl AsRef<Path>) -> Result<Root, RootPathError> {
        let mut root = Root::open(host)?;
        root.resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV;
        Ok(root)
    }

    /// The same root, refusing to cross mount points (`RESOLVE_NO_XDEV`).
    pub fn no_xdev(mut self) -> Root {
        self.resolve |= ResolveFlags::NO_XDEV;
        self
    }

    /// The host path the root was opened from (for messages).
    pub fn host(&self) -> &Path {
        &self.host
    }

    /// The root directory's descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    fn err(&self, op: &'static str, path: &OsStr, e: rustix::io::Errno) -> RootPathError {
        let path = path.to_string_lossy().into_owned();
        let root = self.host.clone();
        match e {
            rustix::io::Errno::XDEV => RootPathError::Escape { path, root },
            rustix::io::Errno::LOOP => RootPathError::Loop { path, root },
            e => RootPathError::Io {
                op,
                path,
                root,
                source: e.into(),
            },
        }
    }

    /// Wraps an error of an operation on `path` done by a caller.
    pub fn io_error(&self, op: &'static str, path: &OsStr, source: io::Error) -> RootPathError {
        RootPathError::Io {
            op,
            path: path.to_string_lossy().into_owned(),
            root: self.host.clone(),
            source,
        }
    }

    /// `openat2(root, path, flags | O_CLOEXEC, mode)` with this root's resolve
    /// flags; `O_NOFOLLOW` in `flags` leaves a last-component symlink alone.
    pub fn open_at(
        &self,
        path: impl AsRef<OsStr>,
        flags: OFlags,
        mode: u32,
    ) -> Result<OwnedFd, RootPathError> {
        let path = path.as_ref();
        let rel = relative(path);
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &self.dir,
                rel.as_os_str(),
                flags | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
                self.resolve,
            ) {
                Err(rustix::io::Errno::AGAIN) if tries < MAX_RETRIES => tries += 1,
                r => return r.map_err(|e| self.err("open", path, e)),
            }
        }
    }

    /// An `O_PATH` descriptor of `path`; its last component is followed only
    /// when `follow_last`.
    pub fn resolve(
        &self,
        path: impl AsRef<OsStr>,
        follow_last: bool,
    ) -> Result<OwnedFd, RootPathError> {
        let flags = if follow_last {
            OFlags::PATH
        } else {
            OFlags::PATH | OFlags::NOFOLLOW
        };
        self.open_at(path, flags, 0)
    }

    /// The host path `path` resolves to at this moment (`readlink /proc/self/fd/N`), for
    /// code in another process that takes only paths (an OCI bundle's bind source) and
    /// only on trees nothing changes meanwhile (a finished build stage, a build context).
    pub fn host_path(&self, path: impl AsRef<OsStr>) -> Result<PathBuf, RootPathError> {
        let path = path.as_ref();
        let fd = self.resolve(path, true)?;
        std::fs::read_link(proc_path(&fd)).map_err(|e| self.io_error("readlink", path, e))
    }

    /// The status of `path` (of a last-component symlink itself unless `follow_last`).
    pub fn stat(&self, path: impl AsRef<OsStr>, follow_last: bool) -> Result<Stat, RootPathError> {
        let path = path.as_ref();
        let fd = self.resolve(path, follow_last)?;
        rustix::fs::fstat(&fd).map_err(|e| self.err("stat", path, e))
    }

    /// `path` opened for reading, following symlinks (in the root).
    pub fn open_file(&self, path: impl AsRef<OsStr>) -> Result<std::fs::File, RootPathError> {
        Ok(self
            .open_at(path, OFlags::RDONLY | OFlags::NONBLOCK, 0)?
            .into())
    }

    /// The whole content of the file at `path`, following symlinks (in the root).
    pub fn read(&self, path: impl AsRef<OsStr>) -> Result<Vec<u8>, RootPathError> {
        let path = path.as_ref();
        let mut f = self.open_file(path)?;
        let mut buf = Vec::new();
        io::Read::read_to_end(&mut f, &mut buf).map_err(|e| self.io_error("read", path, e))?;
        Ok(buf)
    }

    /// The directory at `path` opened for listing, following symlinks (in the root).
    pub fn open_dir(&self, path: impl AsRef<OsStr>) -> Result<OwnedFd, RootPathError> {
        self.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY, 0)
    }

    /// The directory holding `path`'s last component, and that component:
    /// acting on it never follows it. A path with no last name (`/`, `a/..`,
    /// `a/.`) resolves to the directory itself ([`At::name`] is `None`).
    pub fn parent(&self, path: impl AsRef<OsStr>) -> Result<At, RootPathError> {
        let path = path.as_ref();
        let (dir, name) = match split_last(path) {
            Some((dir, name)) => (dir, Some(name)),
            None => (path.to_os_string(), None),
        };
        let fd = self.open_at(&dir, OFlags::PATH | OFlags::DIRECTORY, 0)?;
        Ok(At::new(fd, name, path, self.host.clone()))
    }

    /// The directory at `path`, made with its missing parents (mode 0755) when
    /// absent; symlinks on the way, dangling ones too, are followed in the root.
    pub fn mkdir_all(&self, path: impl AsRef<OsStr>) -> Result<OwnedFd, RootPathError> {
        self.make(path.as_ref(), None)
    }

    /// `path`, made as an empty file with mode `mode` (and missing parents) if
    /// nothing is there; symlinks on the way, a dangling last one too, are
    /// followed in the root. Returns an `O_PATH` descriptor of what is there.
    pub fn create_file(
        &self,
        path: impl AsRef<OsStr>,
        mode: u32,
    ) -> Result<OwnedFd, RootPathError> {
        self.make(path.as_ref(), Some(mode))
    }

    /// The parent of `path` made with [`Root::mkdir_all`], and its last name.
    pub fn parent_creating(&self, path: impl AsRef<OsStr>) -> Result<At, RootPathError> {
        let path = path.as_ref();
        let (dir, name) = match split_last(path) {
            Some((dir, name)) => (dir, Some(name)),
            None => (path.to_os_string(), None),
        };
        let fd = self.make(&dir, None)?;
        Ok(At::new(fd, name, path, self.host.clone()))
    }

    /// Walks `path` component by component from the root, every prefix
    /// resolved by the kernel; a missing directory is made in its parent's
    /// descriptor, a dangling symlink is replaced by its target and the walk
    /// goes on. With `file`, the last component is a file of that mode.
    fn make(&self, path: &OsStr, file: Option<u32>) -> Result<OwnedFd, RootPathError> {
        let want = |last: bool| {
            if last && file.is_some() {
                OFlags::PATH
            } else {
                OFlags::PATH | OFlags::DIRECTORY
            }
        };
        match self.open_at(path, want(true), 0) {
            Err(e) if e.is_not_found() => {}
            other => return other,
        }
        let mut pending: Vec<OsString> = components(path).into_iter().rev().collect();
        let mut done: Vec<OsString> = Vec::new();
        let mut cur = self.open_at(".", OFlags::PATH | OFlags::DIRECTORY, 0)?;
        let mut links = 0;
        while let Some(c) = pending.pop() {
            let last = pending.is_empty();
            let mut next = done.clone();
            next.push(c.clone());
            let joined = join(&next);
            match self.open_at(&joined, want(last), 0) {
                Ok(fd) => {
                    cur = fd;
                    done = next;
                    continue;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            let made = match file.filter(|_| last) {
                Some(mode) => rustix::fs::openat(
                    &cur,
                    c.as_os_str(),
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(mode),
                )
                .map(drop),
                None => rustix::fs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)),
            };
            match made {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => {
                    // Something is there that does not resolve: a dangling symlink.
                    match rustix::fs::readlinkat(&cur, c.as_os_str(), Vec::new()) {
                        Ok(target) => {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(self.err("resolve", path, rustix::io::Errno::LOOP));
                            }
                            let target = OsString::from_vec(target.into_bytes());
                            if target.as_bytes().starts_with(b"/") {
                                if self.resolve.contains(ResolveFlags::BENEATH) {
                                    return Err(self.err("resolve", path, rustix::io::Errno::XDEV));
                                }
                                done.clear();
                            }
                            pending.extend(components(&target).into_iter().rev());
                            continue;
                        }
                        // Not a symlink: made by someone else meanwhile.
                        Err(rustix::io::Errno::INVAL) => {}
                        Err(e) => return Err(self.err("readlink", &joined, e)),
                    }
                }
                Err(e) => return Err(self.err("create", &joined, e)),
            }
            cur = self.open_at(&joined, want(last), 0)?;
            done = next;
        }
        Ok(cur)
    }
}

/// The host path naming descriptor `fd` itself (`/proc/self/fd/N`), for calls
/// that take only a path, such as mount(2): the kernel follows it to the very
/// file the descriptor holds, whatever was renamed since. Calls that do not
/// follow a last symlink (`lsetxattr`, `lstat`) act on the link itself: give
/// them `proc_path(fd).join(".")` for a directory.
pub fn proc_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `path` made relative for `openat2` (`/a/b` -> `a/b`, `/` and `` -> `.`).
fn relative(path: &OsStr) -> PathBuf {
    let bytes = path.as_bytes();
    let start = bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len());
    if start == bytes.len() {
        PathBuf::from(".")
    } else {
        PathBuf::from(OsStr::from_bytes(&bytes[start..]))
    }
}

/// The non-empty components of `path`, `.` and `..` included.
fn components(path: &OsStr) -> Vec<OsString> {
    path.as_bytes()
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .map(|p| OsStr::from_bytes(p).to_os_string())
        .collect()
}

fn join(parts: &[OsString]) -> OsString {
    let mut out = OsString::from(".");
    for p in parts {
        out.push("/");
        out.push(p);
    }
    out
}

/// Splits `path` into its directory and last name, or None when the last
/// component is not a name (`/`, `.`, `..`).
fn split_last(path: &OsStr) -> Option<(OsString, OsString)> {
    let mut parts = components(path);
    let last = parts.pop()?;
    if last == "." || last == ".." {
        return None;
    }
    Some((join(&parts), last))
}

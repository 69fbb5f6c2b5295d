//! One name in a directory held open: every call acts on that name relative
//! to the directory descriptor and never follows it, so renaming things
//! around it cannot redirect the call.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timespec, Timestamps};

use crate::RootPathError;

/// A name in an open directory (or, with no name, the directory itself).
#[derive(Debug)]
pub struct At {
    dir: OwnedFd,
    name: Option<OsString>,
    path: OsString,
    root: PathBuf,
}

impl At {
    pub(crate) fn new(dir: OwnedFd, name: Option<OsString>, path: &OsStr, root: PathBuf) -> At {
        At {
            dir,
            name,
            path: path.to_os_string(),
            root,
        }
    }

    /// `name` inside directory `dir` (opened by the caller); `path` and
    /// `root` are for messages.
    pub fn in_dir(dir: OwnedFd, name: &OsStr, path: &OsStr, root: PathBuf) -> At {
        At::new(dir, Some(name.to_os_string()), path, root)
    }

    /// The directory descriptor.
    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// The name, `None` for the directory itself.
    pub fn name(&self) -> Option<&OsStr> {
        self.name.as_deref()
    }

    /// The path this entry was reached by (for messages).
    pub fn path(&self) -> &OsStr {
        &self.path
    }

    fn target(&self) -> &OsStr {
        self.name.as_deref().unwrap_or(OsStr::new("."))
    }

    fn err(&self, op: &'static str, e: rustix::io::Errno) -> RootPathError {
        self.io_error(op, e.into())
    }

    /// Wraps an error of an operation on this entry.
    pub fn io_error(&self, op: &'static str, source: io::Error) -> RootPathError {
        RootPathError::Io {
            op,
            path: self.path.to_string_lossy().into_owned(),
            root: self.root.clone(),
            source,
        }
    }

    /// The entry `name` inside this one, which must be a directory (opened
    /// without following it).
    pub fn child(&self, name: &OsStr) -> Result<At, RootPathError> {
        let dir = self.open_dir()?;
        let mut path = self.path.clone();
        if !path.as_bytes().ends_with(b"/") {
            path.push("/");
        }
        path.push(name);
        Ok(At::new(
            dir,
            Some(name.to_os_string()),
            &path,
            self.root.clone(),
        ))
    }

    /// Its status (of a symlink itself), `None` when nothing is there.
    pub fn lstat(&self) -> Result<Option<Stat>, RootPathError> {
        match rustix::fs::statat(&self.dir, self.target(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(s)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(self.err("stat", e)),
        }
    }

    /// Opens it as a directory for listing; a symlink is refused.
    pub fn open_dir(&self) -> Result<OwnedFd, RootPathError> {
        rustix::fs::openat(
            &self.dir,
            self.target(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err("open directory", e))
    }

    /// Opens it for reading; anything but a regular file is refused.
    pub fn open_read(&self) -> Result<std::fs::File, RootPathError> {
        let fd = rustix::fs::openat(
            &self.dir,
            self.target(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err("open", e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| self.err("stat", e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(self.io_error("open", io::Error::other("not a regular file")));
        }
        Ok(fd.into())
    }

    /// Creates it as a new file with `mode` (nothing may be there) and opens it for writing.
    pub fn create(&self, mode: u32) -> Result<std::fs::File, RootPathError> {
        let fd = rustix::fs::openat(
            &self.dir,
            self.target(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o777),
        )
        .map_err(|e| self.err("create", e))?;
        Ok(fd.into())
    }

    /// Makes it a directory with `mode`; one already there is kept.
    pub fn mkdir(&self, mode: u32) -> Result<(), RootPathError> {
        match rustix::fs::mkdirat(&self.dir, self.target(), Mode::from_raw_mode(mode & 0o777)) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::EXIST)
                if self
                    .lstat()?
                    .is_some_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory) =>
            {
                Ok(())
            }
            Err(e) => Err(self.err("mkdir", e)),
        }
    }

    /// Makes it a symlink to `target` (nothing may be there).
    pub fn symlink(&self, target: &OsStr) -> Result<(), RootPathError> {
        rustix::fs::symlinkat(target, &self.dir, self.target()).map_err(|e| self.err("symlink", e))
    }

    /// The target of the symlink it is.
    pub fn read_link(&self) -> Result<OsString, RootPathError> {
        rustix::fs::readlinkat(&self.dir, self.target(), Vec::new())
            .map(|t| OsString::from_vec(t.into_bytes()))
            .map_err(|e| self.err("readlink", e))
    }

    /// Makes it a hard link to `src` (which is not followed either).
    pub fn hard_link_to(&self, src: &At) -> Result<(), RootPathError> {
        rustix::fs::linkat(
            &src.dir,
            src.target(),
            &self.dir,
            self.target(),
            AtFlags::empty(),
        )
        .map_err(|e| self.err("link", e))
    }

    /// Gives it (a symlink itself) owner `uid` and group `gid`.
    pub fn chown(&self, uid: u32, gid: u32) -> Result<(), RootPathError> {
        rustix::fs::chownat(
            &self.dir,
            self.target(),
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.err("chown", e))
    }

    /// Gives it permission bits `mode`; a symlink is left alone (Linux has no
    /// symlink modes). Acts on an `O_PATH` descriptor through `/proc/self/fd`,
    /// so nothing is opened for reading (no fifo blocks, no device wakes).
    pub fn set_mode(&self, mode: u32) -> Result<(), RootPathError> {
        let fd = rustix::fs::openat(
            &self.dir,
            self.target(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err("open", e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| self.err("stat", e))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            return Ok(());
        }
        rustix::fs::chmod(crate::proc_path(&fd), Mode::from_raw_mode(mode & 0o7777))
            .map_err(|e| self.err("chmod", e))
    }

    /// Sets its access and modification times (of a symlink itself).
    pub fn set_mtime(&self, secs: i64, nanos: u32) -> Result<(), RootPathError> {
        let t = Timespec {
            tv_sec: secs,
            tv_nsec: nanos.into(),
        };
        let times = Timestamps {
            last_access: t,
            last_modification: t,
        };
        rustix::fs::utimensat(&self.dir, self.target(), &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.err("set times on", e))
    }

    /// Removes it if it is an empty directory or an empty regular file; anything else
    /// (a symlink, a non-empty file or directory) is left alone and reported.
    pub fn remove_if_empty(&self) -> Result<(), RootPathError> {
        let Some(st) = self.lstat()? else {
            return Ok(());
        };
        let flags = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => AtFlags::REMOVEDIR,
            FileType::RegularFile if st.st_size == 0 => AtFlags::empty(),
            _ => return Err(self.err("remove", rustix::io::Errno::NOTEMPTY)),
        };
        rustix::fs::unlinkat(&self.dir, self.target(), flags).map_err(|e| self.err("remove", e))
    }

    /// Removes what is there (a directory with everything below it), unless it
    /// is a directory and `keep_dir`; nothing there is fine.
    pub fn remove(&self, keep_dir: bool) -> Result<(), RootPathError> {
        let Some(st) = self.lstat()? else {
            return Ok(());
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir && keep_dir {
            return Ok(());
        }
        if self.name.is_none() {
            return Err(self.err("remove", rustix::io::Errno::BUSY));
        }
        if is_dir {
            remove_tree(self.dir.as_fd(), self.target()).map_err(|e| self.err("remove", e))
        } else {
            rustix::fs::unlinkat(&self.dir, self.target(), AtFlags::empty())
                .map_err(|e| self.err("remove", e))
        }
    }
}

/// Removes directory `name` in `dir` and everything below it, never following a symlink.
fn remove_tree(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<()> {
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for child in entries(sub.as_fd()).map_err(|e| {
        e.raw_os_error()
            .map_or(rustix::io::Errno::IO, rustix::io::Errno::from_raw_os_error)
    })? {
        match rustix::fs::unlinkat(&sub, child.as_os_str(), AtFlags::empty()) {
            Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {
                remove_tree(sub.as_fd(), &child)?
            }
            r => r?,
        }
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// The names in directory `dir` (open for reading), sorted, without `.` and `..`.
pub fn entries(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

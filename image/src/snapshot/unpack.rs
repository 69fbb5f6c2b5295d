//! Applying one layer tar to an empty snapshot directory.
//!
//! Modelled on containerd's `pkg/archive/tar.go`: each entry's parent is
//! resolved by the kernel beneath the root ([`crate::rootpath::Root::open_beneath`]:
//! a symlink that leads out, absolute or by `..`, is an error; a mount point is not
//! crossed) and the entry is made by name in that directory's descriptor, whatever the layer
//! itself put at the entry's path is replaced unless both are directories,
//! hard links must point at something this layer already holds, and
//! directory modes and times are set last so later entries can still be
//! written into them. Whiteouts are stored in overlay form when privileged
//! (see [`super::whiteout`]).

use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use tar::EntryType;

use super::whiteout;
use crate::rootpath::{self, FileType, Root, RootPathError};

/// Why an entry's name or link target cannot be placed inside the snapshot.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// A `..` component in a tar name or link target.
    #[error("path {0:?} contains a `..` component")]
    DotDot(String),
    /// A NUL byte in a name.
    #[error("path {0:?} contains a NUL byte")]
    Nul(String),
    /// A path that must exist does not.
    #[error("{0:?} does not exist in the snapshot")]
    Missing(String),
    /// The path does not resolve beneath the snapshot root.
    #[error(transparent)]
    Resolve(#[from] RootPathError),
}

/// Splits a tar entry name into plain components: a leading `/` is dropped (as
/// Docker and containerd do), empty and `.` components are skipped, and any
/// `..` or NUL byte is rejected. An empty result names the root itself.
fn entry_components(name: &[u8]) -> Result<Vec<OsString>, PathError> {
    let shown = || String::from_utf8_lossy(name).into_owned();
    if name.contains(&0) {
        return Err(PathError::Nul(shown()));
    }
    let mut out = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(PathError::DotDot(shown())),
            p => out.push(OsStr::from_bytes(p).to_os_string()),
        }
    }
    Ok(out)
}

/// Components joined into a path relative to the root (`.` for none).
fn relative(components: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from(".");
    p.extend(components);
    p
}

/// What the unpacker may do beyond writing plain files, decided by privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Give entries the uid and gid from the tar (needs `CAP_CHOWN`).
    pub preserve_ownership: bool,
    /// Make device nodes, overlay-form whiteouts and `trusted.*` xattrs (needs
    /// `CAP_MKNOD` and `CAP_SYS_ADMIN`). Without it device nodes are skipped
    /// and whiteouts are kept as `.wh.` marker files.
    pub privileged: bool,
}

impl UnpackOptions {
    /// Options for the calling process: everything when running as root
    /// (effective uid 0), plain files and modes otherwise.
    pub fn for_current_user() -> UnpackOptions {
        let root = nix::unistd::geteuid().is_root();
        UnpackOptions {
            preserve_ownership: root,
            privileged: root,
        }
    }
}

/// Why a layer could not be unpacked; every variant about an entry names it.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The tar stream itself could not be read (truncated, corrupt, bad header).
    #[error("reading layer tar: {0}")]
    Read(#[source] io::Error),
    /// The entry's path cannot be placed inside the snapshot.
    #[error("layer entry {entry:?}: {source}")]
    Path {
        /// The entry name as written in the tar.
        entry: String,
        /// What is wrong with the path.
        #[source]
        source: PathError,
    },
    /// A hard link's target cannot be found inside the snapshot.
    #[error("layer entry {entry:?}: hard link target {target:?}: {source}")]
    LinkTarget {
        /// The entry name.
        entry: String,
        /// The link target as written in the tar.
        target: String,
        /// Why the target is unusable.
        #[source]
        source: PathError,
    },
    /// A hard link points at a directory.
    #[error("layer entry {entry:?}: hard link target {target:?} is a directory")]
    LinkToDirectory {
        /// The entry name.
        entry: String,
        /// The link target as written in the tar.
        target: String,
    },
    /// A link entry carries no target.
    #[error("layer entry {0:?}: link without a target")]
    MissingLinkName(String),
    /// A whiteout names `.`, `..` or nothing.
    #[error("layer entry {0:?}: whiteout names no deletable file")]
    BadWhiteout(String),
    /// A non-directory entry names the snapshot root.
    #[error("layer entry {0:?}: only a directory may stand for the layer root")]
    RootNotDirectory(String),
    /// The entry type is not one a layer may hold.
    #[error("layer entry {entry:?}: unsupported tar entry type {kind:?}")]
    UnsupportedType {
        /// The entry name.
        entry: String,
        /// The raw type byte.
        kind: char,
    },
    /// Writing the entry to disk failed.
    #[error("layer entry {entry:?}: {action} {path}: {source}")]
    Io {
        /// The entry name.
        entry: String,
        /// What was being done ("create", "chown", ...).
        action: &'static str,
        /// The host path acted on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Metadata of one entry taken from its header and PAX records.
struct Attrs {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: FileTime,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// A directory whose mode and times are applied after all entries.
struct PendingDir {
    path: PathBuf,
    mode: u32,
    mtime: FileTime,
}

/// Unpacks the tar stream `reader` into the existing, empty directory `root`.
/// Stops at the tar end marker; the caller drains what follows.
pub fn unpack_tar<R: Read>(
    reader: R,
    root: &Path,
    options: &UnpackOptions,
) -> Result<(), UnpackError> {
    let open_err = |action| {
        move |source| UnpackError::Io {
            entry: String::new(),
            action,
            path: root.to_path_buf(),
            source,
        }
    };
    let beneath = Root::open_beneath(root).map_err(|e| open_err("open")(io::Error::other(e)))?;
    // Symlink-free, so pending directories are named as the kernel resolves them.
    let real_root =
        fs::read_link(rootpath::proc_path(&beneath.as_fd())).map_err(open_err("readlink"))?;
    let mut archive = tar::Archive::new(reader);
    let mut dirs: Vec<PendingDir> = Vec::new();
    let mut count = 0u64;
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        Unpacker {
            root,
            beneath: &beneath,
            real_root: &real_root,
            options,
            entry: &name,
        }
        .apply(&mut entry, &mut dirs)?;
        count += 1;
    }
    // Deepest first, so setting a parent's mtime is not undone by its child;
    // for a directory listed twice the later entry wins (reversed, then a
    // stable sort keeps it first); one replaced by a non-directory is skipped.
    dirs.reverse();
    dirs.sort_by(|a, b| b.path.cmp(&a.path));
    dirs.dedup_by(|next, kept| next.path == kept.path);
    for dir in &dirs {
        let Ok(fd) = beneath.resolve(&dir.path, false) else {
            continue;
        };
        if !is_dir_fd(&fd) {
            continue;
        }
        let fail = |action, source| UnpackError::Io {
            entry: dir.path.to_string_lossy().into_owned(),
            action,
            path: dir.path.clone(),
            source,
        };
        let at = rootpath::proc_path(&fd);
        fs::set_permissions(&at, fs::Permissions::from_mode(dir.mode))
            .map_err(|e| fail("chmod", e))?;
        filetime::set_file_times(&at, dir.mtime, dir.mtime).map_err(|e| fail("set times on", e))?;
    }
    tracing::debug!(entries = count, root = %root.display(), "layer unpacked");
    Ok(())
}

/// True when the descriptor holds a directory.
fn is_dir_fd(fd: &OwnedFd) -> bool {
    fs::metadata(rootpath::proc_path(fd)).is_ok_and(|m| m.is_dir())
}

/// Applies entries of one layer; `entry` is the current entry's name for errors.
struct Unpacker<'a> {
    root: &'a Path,
    beneath: &'a Root,
    real_root: &'a Path,
    options: &'a UnpackOptions,
    entry: &'a str,
}

impl Unpacker<'_> {
    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> UnpackError {
        let entry = self.entry.to_string();
        let path = path.to_path_buf();
        move |source| UnpackError::Io {
            entry,
            action,
            path,
            source,
        }
    }

    fn path_err(&self) -> impl FnOnce(PathError) -> UnpackError {
        let entry = self.entry.to_string();
        move |source| UnpackError::Path { entry, source }
    }

    fn apply<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        dirs: &mut Vec<PendingDir>,
    ) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let components = entry_components(&entry.path_bytes()).map_err(self.path_err())?;
        let attrs = self.attrs(entry)?;
        let Some(last) = components.last() else {
            // "./": the layer's root directory itself.
            if kind != EntryType::Directory {
                return Err(UnpackError::RootNotDirectory(self.entry.to_string()));
            }
            self.set_owner_and_xattrs(self.root, &attrs)?;
            dirs.push(PendingDir {
                path: PathBuf::from("."),
                mode: attrs.mode,
                mtime: attrs.mtime,
            });
            return Ok(());
        };
        let last_bytes = last.as_bytes();
        // The parent as a descriptor, named through /proc/self/fd while it is held.
        let parent_fd = self
            .beneath
            .mkdir_all(relative(&components[..components.len() - 1]))
            .map_err(|e| self.path_err()(e.into()))?;
        let parent = rootpath::proc_path(&parent_fd);

        if last_bytes == whiteout::OPAQUE.as_bytes() {
            // `/.` so the xattr call (which does not follow) reaches the directory, not the
            // /proc/self/fd link naming it.
            return self.opaque(&parent.join("."));
        }
        if last_bytes.starts_with(whiteout::META_PREFIX.as_bytes()) {
            tracing::debug!(entry = self.entry, "skipping aufs metadata entry");
            return Ok(());
        }
        if let Some(target) = last_bytes.strip_prefix(whiteout::PREFIX.as_bytes()) {
            return self.whiteout(&parent, last, target);
        }

        let path = parent.join(last);
        let existing = path.symlink_metadata().ok();
        let keep_dir =
            kind == EntryType::Directory && existing.as_ref().is_some_and(|m| m.is_dir());
        if let Some(meta) = existing.filter(|_| !keep_dir) {
            self.remove(&path, meta.is_dir())?;
        }

        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
                    .open(&path)
                    .map_err(self.io("create", &path))?;
                io::copy(entry, &mut file).map_err(self.io("write", &path))?;
            }
            EntryType::Directory => {
                if !keep_dir {
                    fs::create_dir(&path).map_err(self.io("mkdir", &path))?;
                }
                // Keep it writable until every entry is in; the real mode comes last.
                fs::set_permissions(&path, fs::Permissions::from_mode(0o700))
                    .map_err(self.io("chmod", &path))?;
                self.set_owner_and_xattrs(&path, &attrs)?;
                let real = fs::read_link(&parent).map_err(self.io("readlink", &parent))?;
                let rel = real
                    .strip_prefix(self.real_root)
                    .unwrap_or(&real)
                    .join(last);
                dirs.push(PendingDir {
                    path: Path::new(".").join(rel),
                    mode: attrs.mode,
                    mtime: attrs.mtime,
                });
                return Ok(());
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| UnpackError::MissingLinkName(self.entry.to_string()))?;
                // A symlink may point anywhere: it is only ever followed inside the root.
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
                    .map_err(self.io("symlink", &path))?;
            }
            EntryType::Link => return self.hard_link(entry, &path),
            EntryType::Char | EntryType::Block => {
                if !self.options.privileged {
                    tracing::warn!(entry = self.entry, "skipping device node: not privileged");
                    return Ok(());
                }
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                let flag = if kind == EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                mknod(
                    &path,
                    flag,
                    Mode::from_bits_truncate(0o600),
                    makedev(major.into(), minor.into()),
                )
                .map_err(|e| self.io("mknod", &path)(e.into()))?;
            }
            EntryType::Fifo => {
                nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600))
                    .map_err(|e| self.io("mkfifo", &path)(e.into()))?;
            }
            other => {
                return Err(UnpackError::UnsupportedType {
                    entry: self.entry.to_string(),
                    kind: char::from(other.as_byte()),
                })
            }
        }
        self.set_owner_and_xattrs(&path, &attrs)?;
        if kind != EntryType::Symlink {
            fs::set_permissions(&path, fs::Permissions::from_mode(attrs.mode))
                .map_err(self.io("chmod", &path))?;
        }
        filetime::set_symlink_file_times(&path, attrs.mtime, attrs.mtime)
            .map_err(self.io("set times on", &path))?;
        Ok(())
    }

    /// Reads mode, owner, mtime and xattrs, letting PAX records override the header.
    fn attrs<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Attrs, UnpackError> {
        let header = entry.header();
        let bad = |e: io::Error| {
            UnpackError::Read(io::Error::new(
                e.kind(),
                format!("entry {:?}: {e}", self.entry),
            ))
        };
        // As Go's archive/tar does, an all-blank numeric field reads as 0.
        let raw = header.as_old();
        let field = |bytes: &[u8], parsed: io::Result<u64>| match parsed {
            Err(_) if bytes.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
            other => other.map_err(bad),
        };
        let mut attrs = Attrs {
            mode: u32::try_from(field(&raw.mode, header.mode().map(u64::from))?).unwrap_or(0)
                & 0o7777,
            uid: field(&raw.uid, header.uid())?,
            gid: field(&raw.gid, header.gid())?,
            mtime: FileTime::from_unix_time(
                i64::try_from(field(&raw.mtime, header.mtime())?).unwrap_or(0),
                0,
            ),
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(bad)? {
            for ext in pax {
                let ext = ext.map_err(bad)?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                let number = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.split('.').next())
                        .and_then(|v| v.parse::<i64>().ok())
                };
                match key {
                    "uid" => attrs.uid = number().map_or(attrs.uid, |v| v as u64),
                    "gid" => attrs.gid = number().map_or(attrs.gid, |v| v as u64),
                    "mtime" => {
                        if let Some(t) = std::str::from_utf8(value).ok().and_then(pax_time) {
                            attrs.mtime = t;
                        }
                    }
                    _ => {
                        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                            attrs.xattrs.push((name.to_string(), value.to_vec()));
                        }
                    }
                }
            }
        }
        Ok(attrs)
    }

    fn set_owner_and_xattrs(&self, path: &Path, attrs: &Attrs) -> Result<(), UnpackError> {
        if self.options.preserve_ownership {
            let id = |v: u64| u32::try_from(v).ok();
            std::os::unix::fs::lchown(path, id(attrs.uid), id(attrs.gid))
                .map_err(self.io("chown", path))?;
        }
        for (name, value) in &attrs.xattrs {
            if name.starts_with(whiteout::OVERLAY_XATTR_PREFIX) {
                tracing::warn!(entry = self.entry, xattr = %name, "dropping overlayfs xattr from layer");
                continue;
            }
            if !self.options.privileged
                && (name.starts_with("trusted.") || name.starts_with("security."))
            {
                tracing::debug!(entry = self.entry, xattr = %name, "skipping privileged xattr");
                continue;
            }
            match xattr::set(path, name, value) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => {
                    tracing::warn!(entry = self.entry, xattr = %name, "filesystem does not support xattr");
                }
                Err(e) => return Err(self.io("set xattr on", path)(e)),
            }
        }
        Ok(())
    }

    fn remove(&self, path: &Path, is_dir: bool) -> Result<(), UnpackError> {
        if is_dir {
            super::remove_tree(path).map_err(self.io("remove", path))
        } else {
            fs::remove_file(path).map_err(self.io("remove", path))
        }
    }

    /// `.wh..wh..opq`: everything below `dir` in lower layers is hidden.
    fn opaque(&self, dir: &Path) -> Result<(), UnpackError> {
        if self.options.privileged {
            whiteout::make_overlay_opaque(dir).map_err(self.io("mark opaque", dir))
        } else {
            let marker = dir.join(whiteout::OPAQUE);
            fs::write(&marker, b"").map_err(self.io("create", &marker))
        }
    }

    /// `.wh.NAME`: NAME in lower layers is deleted.
    fn whiteout(
        &self,
        parent: &Path,
        entry_name: &std::ffi::OsStr,
        target: &[u8],
    ) -> Result<(), UnpackError> {
        if target.is_empty() || target == b"." || target == b".." || target.contains(&b'/') {
            return Err(UnpackError::BadWhiteout(self.entry.to_string()));
        }
        let path = parent.join(std::ffi::OsStr::from_bytes(target));
        if let Ok(meta) = path.symlink_metadata() {
            self.remove(&path, meta.is_dir())?;
        }
        if self.options.privileged {
            whiteout::make_overlay_whiteout(&path).map_err(self.io("mknod whiteout", &path))
        } else {
            let marker = parent.join(entry_name);
            if let Ok(meta) = marker.symlink_metadata() {
                self.remove(&marker, meta.is_dir())?;
            }
            fs::write(&marker, b"").map_err(self.io("create", &marker))
        }
    }

    fn hard_link<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        path: &Path,
    ) -> Result<(), UnpackError> {
        let target_bytes = entry
            .link_name_bytes()
            .ok_or_else(|| UnpackError::MissingLinkName(self.entry.to_string()))?;
        let target_name = String::from_utf8_lossy(&target_bytes).into_owned();
        let link_err = |source| UnpackError::LinkTarget {
            entry: self.entry.to_string(),
            target: target_name.clone(),
            source,
        };
        let components = entry_components(&target_bytes).map_err(link_err)?;
        if components.is_empty() {
            return Err(link_err(PathError::Missing("/".into())));
        }
        let at = self
            .beneath
            .parent(relative(&components))
            .map_err(|e| link_err(e.into()))?;
        let meta = at
            .lstat()
            .map_err(|e| link_err(e.into()))?
            .ok_or_else(|| link_err(PathError::Missing(target_name.clone())))?;
        let (Some(name), false) = (
            at.name(),
            FileType::from_raw_mode(meta.st_mode) == FileType::Directory,
        ) else {
            return Err(UnpackError::LinkToDirectory {
                entry: self.entry.to_string(),
                target: target_name,
            });
        };
        let target = rootpath::proc_path(&at.dir()).join(name);
        fs::hard_link(&target, path).map_err(self.io("link", path))
    }
}

/// Parses a PAX time record (`secs[.fraction]`, possibly negative).
fn pax_time(value: &str) -> Option<FileTime> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Nanoseconds from the first nine fraction digits, right-padded with zeros.
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: u32 = digits.parse().ok()?;
    if secs < 0 && nanos > 0 {
        // -1.25 means 1.25 s before the epoch: -2 s + 0.75 s.
        return Some(FileTime::from_unix_time(secs - 1, 1_000_000_000 - nanos));
    }
    Some(FileTime::from_unix_time(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(pax_time("12"), Some(FileTime::from_unix_time(12, 0)));
        assert_eq!(
            pax_time("1600000000.123456789123"),
            Some(FileTime::from_unix_time(1_600_000_000, 123_456_789))
        );
        assert_eq!(
            pax_time("5.5"),
            Some(FileTime::from_unix_time(5, 500_000_000))
        );
        assert_eq!(pax_time("x"), None);
        assert_eq!(pax_time("1.2e3"), None);
    }
}

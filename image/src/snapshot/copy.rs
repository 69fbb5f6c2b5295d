//! The copy fallback: merging snapshot trees into one plain directory,
//! applying whiteouts and opaque directories as overlayfs would.
//!
//! Used where overlayfs is unavailable (no kernel support, a store on a
//! filesystem overlay cannot use, or snapshots unpacked without privilege
//! whose whiteouts are `.wh.` marker files). The target is built by this code
//! alone: an existing entry is only descended into when it is a real
//! directory, otherwise it is replaced, so a symlink from a lower layer is
//! never written through.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use nix::sys::stat::{mknod, Mode, SFlag};

use super::whiteout::{self, Marker};

/// A failure while copying a layer into the merged tree.
#[derive(Debug, thiserror::Error)]
#[error("copying layer {layer}: {action} {path}: {source}")]
pub struct CopyError {
    /// The layer tree being applied.
    pub layer: PathBuf,
    /// What was being done.
    pub action: &'static str,
    /// The path acted on.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// Merges `lowers` (top layer first, as overlayfs takes them) into the
/// existing directory `target`, bottom layer first.
pub fn merge(lowers: &[PathBuf], target: &Path, preserve_ownership: bool) -> Result<(), CopyError> {
    for layer in lowers.iter().rev() {
        let mut copier = Copier {
            layer,
            preserve_ownership,
            links: HashMap::new(),
            dirs: Vec::new(),
        };
        copier.apply_dir(layer, target)?;
        copier.finish_dirs()?;
    }
    Ok(())
}

struct Copier<'a> {
    layer: &'a Path,
    preserve_ownership: bool,
    /// Hard links inside this layer: (dev, inode) to the first copy made.
    links: HashMap<(u64, u64), PathBuf>,
    /// Directories whose mode and mtime are set once their children are in.
    dirs: Vec<(PathBuf, fs::Metadata)>,
}

impl Copier<'_> {
    fn err(&self, action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CopyError {
        let layer = self.layer.to_path_buf();
        let path = path.to_path_buf();
        move |source| CopyError {
            layer,
            action,
            path,
            source,
        }
    }

    fn apply_dir(&mut self, src: &Path, dst: &Path) -> Result<(), CopyError> {
        if whiteout::is_opaque(src).map_err(self.err("read xattrs of", src))? {
            for entry in fs::read_dir(dst).map_err(self.err("list", dst))? {
                let path = entry.map_err(self.err("list", dst))?.path();
                remove_any(&path).map_err(self.err("remove", &path))?;
            }
        }
        let mut children: Vec<_> = fs::read_dir(src)
            .map_err(self.err("list", src))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(self.err("list", src))?;
        children.sort();
        for name in children {
            let from = src.join(&name);
            let meta = from.symlink_metadata().map_err(self.err("stat", &from))?;
            match whiteout::classify(name.as_bytes(), &meta) {
                Some(Marker::Whiteout) => {
                    let gone = dst.join(std::ffi::OsStr::from_bytes(whiteout::target_name(
                        name.as_bytes(),
                    )));
                    remove_any(&gone).map_err(self.err("remove", &gone))?;
                    continue;
                }
                Some(Marker::OpaqueMarker) | Some(Marker::Meta) => continue,
                None => {}
            }
            let to = dst.join(&name);
            let existing = to.symlink_metadata().ok();
            if meta.is_dir() {
                if !existing.as_ref().is_some_and(|m| m.is_dir()) {
                    remove_any(&to).map_err(self.err("remove", &to))?;
                    fs::create_dir(&to).map_err(self.err("mkdir", &to))?;
                }
                fs::set_permissions(&to, fs::Permissions::from_mode(0o700))
                    .map_err(self.err("chmod", &to))?;
                self.owner_and_xattrs(&from, &to, &meta)?;
                self.apply_dir(&from, &to)?;
                self.dirs.push((to, meta));
                continue;
            }
            if existing.is_some() {
                remove_any(&to).map_err(self.err("remove", &to))?;
            }
            self.copy_entry(&from, &to, &meta)?;
        }
        Ok(())
    }

    fn copy_entry(&mut self, from: &Path, to: &Path, meta: &fs::Metadata) -> Result<(), CopyError> {
        let ft = meta.file_type();
        if ft.is_file() && meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                return fs::hard_link(first, to).map_err(self.err("link", to));
            }
            self.links
                .insert((meta.dev(), meta.ino()), to.to_path_buf());
        }
        if ft.is_file() {
            let mut src = fs::File::open(from).map_err(self.err("open", from))?;
            let mut dst = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(to)
                .map_err(self.err("create", to))?;
            io::copy(&mut src, &mut dst).map_err(self.err("copy", to))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(from).map_err(self.err("read link", from))?;
            std::os::unix::fs::symlink(&target, to).map_err(self.err("symlink", to))?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else {
                SFlag::S_IFIFO
            };
            mknod(to, kind, Mode::from_bits_truncate(0o600), meta.rdev())
                .map_err(|e| self.err("mknod", to)(e.into()))?;
        } else {
            // Sockets are not content.
            return Ok(());
        }
        self.owner_and_xattrs(from, to, meta)?;
        if !ft.is_symlink() {
            fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(self.err("chmod", to))?;
        }
        let t = FileTime::from_last_modification_time(meta);
        filetime::set_symlink_file_times(to, t, t).map_err(self.err("set times on", to))
    }

    fn owner_and_xattrs(
        &self,
        from: &Path,
        to: &Path,
        meta: &fs::Metadata,
    ) -> Result<(), CopyError> {
        if self.preserve_ownership {
            std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
                .map_err(self.err("chown", to))?;
        }
        let names = match xattr::list(from) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => return Ok(()),
            Err(e) => return Err(self.err("list xattrs of", from)(e)),
        };
        for name in names {
            if name
                .as_bytes()
                .starts_with(whiteout::OVERLAY_XATTR_PREFIX.as_bytes())
            {
                continue;
            }
            if let Some(value) = xattr::get(from, &name).map_err(self.err("read xattr of", from))? {
                xattr::set(to, &name, &value).map_err(self.err("set xattr on", to))?;
            }
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<(), CopyError> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, meta) in dirs {
            fs::set_permissions(&path, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(self.err("chmod", &path))?;
            let t = FileTime::from_last_modification_time(&meta);
            filetime::set_symlink_file_times(&path, t, t)
                .map_err(self.err("set times on", &path))?;
        }
        Ok(())
    }
}

/// Removes whatever is at `path` (nothing there is fine).
fn remove_any(path: &Path) -> io::Result<()> {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => super::remove_tree(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

//! Assembling a container's root filesystem from snapshots: an overlayfs
//! mount of the snapshots' trees (top layer first) under a fresh upper and
//! work dir, or, where overlay cannot be used, a merged copy.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::copy::{self, CopyError};
use super::{SnapshotError, Snapshots, WhiteoutForm};
use crate::digest::Digest;

/// The kernel copies at most one page of mount options.
const MAX_OPTIONS: usize = 4096;

/// Errors from mounting or unmounting a root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A path cannot be written into overlay's option string.
    #[error("overlay path {0}: contains ',', ':' or '\\', which overlay options cannot carry")]
    UnsafePath(PathBuf),
    /// Too many or too long lower dirs for one page of mount options.
    #[error(
        "overlay options for {target} are {len} bytes, over the kernel's {MAX_OPTIONS}-byte limit"
    )]
    OptionsTooLong {
        /// The mount point.
        target: PathBuf,
        /// Length of the option string.
        len: usize,
    },
    /// The mount system call failed.
    #[error("mounting {kind} at {target}: {source}")]
    Mount {
        /// "overlay" or "bind".
        kind: &'static str,
        /// The mount point.
        target: PathBuf,
        /// The error from the kernel.
        #[source]
        source: nix::Error,
    },
    /// The umount system call failed.
    #[error("unmounting {target}: {source}")]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// The error from the kernel.
        #[source]
        source: nix::Error,
    },
    /// Building or removing the copied root filesystem failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// Preparing or cleaning the target directory failed.
    #[error("rootfs {path}: {source}")]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// How a [`RootfsMount`] was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// An overlayfs mount of the lower dirs with an upper and work dir.
    Overlay,
    /// A bind mount of the upper dir (an image with no layers).
    Bind,
    /// A plain directory holding a merged copy of the layers.
    Copy,
}

/// A container root filesystem at `target`, unmounted (or, for a copy,
/// emptied) on drop or by [`RootfsMount::unmount`] unless [`RootfsMount::keep`] was called.
#[derive(Debug)]
pub struct RootfsMount {
    target: PathBuf,
    kind: MountKind,
    active: bool,
}

impl RootfsMount {
    /// Mounts overlayfs at `target` with `lowers` (top layer first), `upper`
    /// and `work` (same filesystem as `upper`). With no lowers, `upper` is
    /// bind-mounted instead. All directories must exist.
    pub fn overlay(
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<RootfsMount, MountError> {
        if lowers.is_empty() {
            mount(
                Some(upper),
                target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|source| MountError::Mount {
                kind: "bind",
                target: target.to_path_buf(),
                source,
            })?;
            return Ok(RootfsMount {
                target: target.to_path_buf(),
                kind: MountKind::Bind,
                active: true,
            });
        }
        let options = overlay_options(lowers, upper, work)?;
        if options.len() >= MAX_OPTIONS {
            return Err(MountError::OptionsTooLong {
                target: target.to_path_buf(),
                len: options.len(),
            });
        }
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|source| MountError::Mount {
            kind: "overlay",
            target: target.to_path_buf(),
            source,
        })?;
        tracing::debug!(target = %target.display(), layers = lowers.len(), "overlay mounted");
        Ok(RootfsMount {
            target: target.to_path_buf(),
            kind: MountKind::Overlay,
            active: true,
        })
    }

    /// Builds the root filesystem as a merged copy of `lowers` (top layer
    /// first) in the existing, empty directory `target`.
    pub fn copy(
        lowers: &[PathBuf],
        target: &Path,
        preserve_ownership: bool,
    ) -> Result<RootfsMount, MountError> {
        let made = RootfsMount {
            target: target.to_path_buf(),
            kind: MountKind::Copy,
            active: true,
        };
        // On failure `made` is dropped and empties the half-built target.
        copy::merge(lowers, target, preserve_ownership)?;
        if let Some(top) = lowers.first() {
            copy_root_attrs(top, target)?;
        }
        tracing::debug!(target = %target.display(), layers = lowers.len(), "rootfs copied");
        Ok(made)
    }

    /// The mount point.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// How the root filesystem was made.
    pub fn kind(&self) -> MountKind {
        self.kind
    }

    /// Unmounts (or empties, for a copy) now, reporting failure.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.active = false;
        release(&self.target, self.kind)
    }

    /// Leaves the root filesystem in place past this value's life (a
    /// container outlives the process that made it); release it later with
    /// [`unmount`]. Returns the mount point.
    pub fn keep(mut self) -> PathBuf {
        self.active = false;
        self.target.clone()
    }
}

impl Drop for RootfsMount {
    fn drop(&mut self) {
        if self.active {
            if let Err(e) = release(&self.target, self.kind) {
                tracing::warn!(target = %self.target.display(), error = %e, "cannot release rootfs");
            }
        }
    }
}

/// Releases a kept root filesystem at `target`: unmounts it when it is a mount
/// point, otherwise (a copy) removes its contents.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    if is_mount_point(target)? {
        release(target, MountKind::Overlay)
    } else {
        release(target, MountKind::Copy)
    }
}

fn release(target: &Path, kind: MountKind) -> Result<(), MountError> {
    match kind {
        MountKind::Overlay | MountKind::Bind => match umount2(target, MntFlags::empty()) {
            Ok(()) => Ok(()),
            // Still busy (a process holds it open): detach it so it goes when freed.
            Err(nix::Error::EBUSY) => umount2(target, MntFlags::MNT_DETACH),
            Err(e) => Err(e),
        }
        .map_err(|source| MountError::Unmount {
            target: target.to_path_buf(),
            source,
        }),
        MountKind::Copy => {
            let entries = fs::read_dir(target).map_err(|source| MountError::Io {
                path: target.to_path_buf(),
                source,
            })?;
            for entry in entries {
                let path = entry
                    .map_err(|source| MountError::Io {
                        path: target.to_path_buf(),
                        source,
                    })?
                    .path();
                let removed = match path.symlink_metadata() {
                    Ok(m) if m.is_dir() => super::remove_tree(&path),
                    _ => fs::remove_file(&path),
                };
                removed.map_err(|source| MountError::Io { path, source })?;
            }
            Ok(())
        }
    }
}

/// True when `path` is listed as a mount point in `/proc/self/mountinfo`.
fn is_mount_point(path: &Path) -> Result<bool, MountError> {
    let canonical = fs::canonicalize(path).map_err(|source| MountError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|source| MountError::Io {
        path: PathBuf::from("/proc/self/mountinfo"),
        source,
    })?;
    let wanted = escape_mountinfo(canonical.as_os_str().as_bytes());
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mount_point| mount_point == wanted))
}

/// Escapes a path as mountinfo does (octal for space, tab, newline, backslash).
fn escape_mountinfo(path: &[u8]) -> String {
    let mut out = String::new();
    for &b in path {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.push_str(&format!("\\{b:03o}")),
            _ => out.push(char::from(b)),
        }
    }
    out
}

fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<String, MountError> {
    let check = |p: &Path| -> Result<String, MountError> {
        let s = p
            .to_str()
            .filter(|s| !s.contains([',', ':', '\\']))
            .ok_or_else(|| MountError::UnsafePath(p.to_path_buf()))?;
        Ok(s.to_string())
    };
    let lowers = lowers
        .iter()
        .map(|l| check(l))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        check(upper)?,
        check(work)?
    ))
}

/// Gives the copied root the mode, owner and times of the top layer's root.
fn copy_root_attrs(top: &Path, target: &Path) -> Result<(), MountError> {
    let io = |source| MountError::Io {
        path: target.to_path_buf(),
        source,
    };
    let meta = top.symlink_metadata().map_err(io)?;
    fs::set_permissions(target, meta.permissions()).map_err(io)?;
    let t = filetime::FileTime::from_last_modification_time(&meta);
    filetime::set_file_times(target, t, t).map_err(io)
}

impl Snapshots {
    /// Makes the root filesystem of an image whose top snapshot is `top`
    /// (`None` for an image without layers) at `target`: an overlay with
    /// `upper` and `work` when every snapshot holds overlay-form whiteouts and
    /// the mount works, otherwise a merged copy in `target`.
    pub fn mount_rootfs(
        &self,
        top: Option<&Digest>,
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<RootfsMount, SnapshotError> {
        let mut lowers = Vec::new();
        let mut overlay_ready = true;
        let mut next = top.cloned();
        while let Some(chain) = next {
            let meta = self.meta(&chain)?;
            overlay_ready &= meta.whiteouts == WhiteoutForm::Overlay;
            lowers.push(self.path(&chain));
            next = meta.parent;
        }
        if overlay_ready {
            match RootfsMount::overlay(&lowers, upper, work, target) {
                Ok(m) => return Ok(m),
                Err(e) => tracing::warn!(error = %e, "overlay unavailable; copying layers instead"),
            }
        } else {
            tracing::info!("snapshots hold marker whiteouts; copying layers instead of overlay");
        }
        Ok(RootfsMount::copy(
            &lowers,
            target,
            self.options.preserve_ownership,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_list_lowers_top_first() {
        let lowers = [PathBuf::from("/s/top/fs"), PathBuf::from("/s/base/fs")];
        let o = overlay_options(&lowers, Path::new("/c/upper"), Path::new("/c/work")).unwrap();
        assert_eq!(
            o,
            "lowerdir=/s/top/fs:/s/base/fs,upperdir=/c/upper,workdir=/c/work"
        );
        assert!(matches!(
            overlay_options(&[PathBuf::from("/a:b")], Path::new("/u"), Path::new("/w")),
            Err(MountError::UnsafePath(_))
        ));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(escape_mountinfo(b"/a b\\c"), "/a\\040b\\134c");
    }

    #[test]
    fn unmount_of_a_copy_empties_it() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        let target = dir.path().join("target");
        fs::create_dir_all(layer.join("sub")).unwrap();
        fs::write(layer.join("sub/f"), b"f").unwrap();
        fs::create_dir(&target).unwrap();
        let m = RootfsMount::copy(&[layer], &target, false).unwrap();
        assert_eq!(fs::read(target.join("sub/f")).unwrap(), b"f");
        let kept = m.keep();
        assert!(kept.join("sub/f").exists());
        unmount(&kept).unwrap();
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    }
}

//! OCI whiteouts and their two on-disk forms inside a snapshot.
//!
//! In a layer tar, `.wh.NAME` deletes `NAME` from the layers below and
//! `.wh..wh..opq` in a directory hides everything below it. A snapshot stores
//! them in overlay form when it may (a 0/0 character device `NAME`, the xattr
//! `trusted.overlay.opaque=y` on the directory), so its `fs/` can be an
//! overlayfs lower dir as is. Without the privilege to make those (mknod and
//! `trusted.*` xattrs need root), the tar markers are kept as empty files; the
//! copy fallback and the layer writer understand both forms.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

/// Prefix of a whiteout entry's file name.
pub const PREFIX: &str = ".wh.";
/// File name of the opaque-directory marker.
pub const OPAQUE: &str = ".wh..wh..opq";
/// Prefix of AUFS metadata names (`.wh..wh.plnk`, ...), which carry no content.
pub const META_PREFIX: &str = ".wh..wh.";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Prefix of the xattrs overlayfs keeps for itself; never taken from a layer tar.
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// What a snapshot entry means when layers are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The entry deletes the named path from lower layers (overlay form: the
    /// entry itself; marker form: the `.wh.`-less name).
    Whiteout,
    /// The entry is an opaque-directory marker file for its parent directory.
    OpaqueMarker,
    /// An AUFS metadata entry, ignored.
    Meta,
}

/// Classifies a directory entry by name and metadata; `None` for ordinary content.
pub fn classify(name: &[u8], meta: &Metadata) -> Option<Marker> {
    if name == OPAQUE.as_bytes() {
        return Some(Marker::OpaqueMarker);
    }
    if name.starts_with(META_PREFIX.as_bytes()) {
        return Some(Marker::Meta);
    }
    if name.starts_with(PREFIX.as_bytes()) || is_overlay_whiteout(meta) {
        return Some(Marker::Whiteout);
    }
    None
}

/// The name a whiteout entry deletes: `NAME` for `.wh.NAME`, the entry's own
/// name for an overlay 0/0 device.
pub fn target_name(name: &[u8]) -> &[u8] {
    name.strip_prefix(PREFIX.as_bytes()).unwrap_or(name)
}

/// True for an overlayfs whiteout: a character device with device number 0/0.
pub fn is_overlay_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// True when `dir` carries `trusted.overlay.opaque=y` (or holds a marker file).
pub fn is_opaque(dir: &Path) -> io::Result<bool> {
    if dir.join(OPAQUE).symlink_metadata().is_ok() {
        return Ok(true);
    }
    match xattr::get(dir, OPAQUE_XATTR) {
        Ok(v) => Ok(v.as_deref() == Some(b"y")),
        // Unprivileged callers cannot read trusted.* and such snapshots use markers.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(nix::libc::EPERM) | Some(nix::libc::ENOTSUP)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Writes an overlay whiteout (0/0 character device) at `path`.
pub fn make_overlay_whiteout(path: &Path) -> io::Result<()> {
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(io::Error::from)
}

/// Marks `dir` opaque for overlayfs.
pub fn make_overlay_opaque(dir: &Path) -> io::Result<()> {
    xattr::set(dir, OPAQUE_XATTR, b"y")
}

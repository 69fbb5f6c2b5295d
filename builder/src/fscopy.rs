//! Putting files into a step's root filesystem for COPY and ADD: one entry at a time
//! (the layout comes from [`copyplan`](crate::copyplan)), with `--chown` and `--chmod`,
//! keeping modes and modification times as Docker does, and ADD's extraction of local
//! tar archives (plain, gzip or zstd).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_image::snapshot::compression;
use berth_image::snapshot::unpack::{unpack_tar, UnpackError, UnpackOptions};

use berth_image::rootpath::{Root, RootPathError};

/// Why a file could not be copied into the image.
#[derive(Debug, thiserror::Error)]
pub enum FsCopyError {
    /// A file operation failed.
    #[error("copying {path}: {source}")]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The destination does not resolve in the image.
    #[error(transparent)]
    Dest(#[from] RootPathError),
    /// A tar archive given to ADD could not be extracted.
    #[error("extracting {path}: {source}")]
    Extract {
        /// The archive.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<UnpackError>,
    },
    /// A `--chmod` that is neither octal nor symbolic (the plan checks this first).
    #[error("invalid --chmod {0:?}")]
    Chmod(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FsCopyError + '_ {
    move |source| FsCopyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How copied entries get their owner and mode.
#[derive(Debug, Clone, Default)]
pub struct Attrs {
    /// `--chown` resolved, or the default owner; `None` keeps the source's owner.
    pub owner: Option<(u32, u32)>,
    /// `--chmod` as written (octal or symbolic).
    pub chmod: Option<String>,
}

/// Applies `spec` (octal, or symbolic clauses like `u+x,go-w`) to `mode`.
pub fn apply_chmod(spec: &str, mode: u32, is_dir: bool) -> Result<u32, FsCopyError> {
    if !spec.is_empty() && spec.chars().all(|c| c.is_digit(8)) {
        return u32::from_str_radix(spec, 8).map_err(|_| FsCopyError::Chmod(spec.to_string()));
    }
    let mut mode = mode & 0o7777;
    for clause in spec.split(',') {
        let who_end = clause
            .find(['+', '-', '='])
            .ok_or_else(|| FsCopyError::Chmod(spec.to_string()))?;
        let (who, rest) = clause.split_at(who_end);
        let mut mask = 0u32;
        for w in who.chars() {
            mask |= match w {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(FsCopyError::Chmod(spec.to_string())),
            };
        }
        if who.is_empty() {
            mask = 0o7777;
        }
        let op = rest.chars().next().unwrap_or('+');
        let mut bits = 0u32;
        for p in rest.chars().skip(1) {
            bits |= match p {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || mode & 0o111 != 0 => 0o111,
                'X' => 0,
                's' => 0o6000,
                't' => 0o1000,
                _ => return Err(FsCopyError::Chmod(spec.to_string())),
            };
        }
        let bits = bits & mask;
        mode = match op {
            '+' => mode | bits,
            '-' => mode & !bits,
            _ => (mode & !(mask & 0o777)) | bits,
        };
    }
    Ok(mode)
}

/// Copies the single entry at `src` (a file, directory or symlink; not followed) to the
/// image path `dest` in `root`, creating missing parent directories. A directory's
/// children are not copied: the layout lists them as entries of their own. Everything in
/// the image is reached through descriptors ([`Root`]), never by a host path.
pub fn copy_entry(src: &Path, root: &Root, dest: &str, attrs: &Attrs) -> Result<(), FsCopyError> {
    let meta = fs::symlink_metadata(src).map_err(io_err(src))?;
    let target = root.parent_creating(dest)?;
    let existing = target.lstat()?;
    let ft = meta.file_type();
    if ft.is_dir() {
        let is_dir = |st: &berth_image::rootpath::Stat| {
            berth_image::rootpath::FileType::from_raw_mode(st.st_mode)
                == berth_image::rootpath::FileType::Directory
        };
        if existing.as_ref().is_some_and(is_dir) {
            return Ok(());
        }
        target.remove(false)?;
        target.mkdir(0o755)?;
    } else {
        target.remove(false)?;
        if ft.is_symlink() {
            let link = fs::read_link(src).map_err(io_err(src))?;
            target.symlink(link.as_os_str())?;
        } else {
            let mut from = fs::File::open(src).map_err(io_err(src))?;
            let mut to = target.create(0o600)?;
            io::copy(&mut from, &mut to).map_err(|e| target.io_error("write", e))?;
        }
    }
    let (uid, gid) = attrs.owner.unwrap_or((meta.uid(), meta.gid()));
    target.chown(uid, gid)?;
    if !ft.is_symlink() {
        let mode = match &attrs.chmod {
            Some(spec) => apply_chmod(spec, meta.mode(), ft.is_dir())?,
            None => meta.mode() & 0o7777,
        };
        target.set_mode(mode)?;
    }
    let mtime = filetime::FileTime::from_last_modification_time(&meta);
    target.set_mtime(mtime.unix_seconds(), mtime.nanoseconds())?;
    Ok(())
}

/// Copies the tree at `src` (its contents, not the directory itself) to image path
/// `dest` in `root`, entry by entry in path order.
pub fn copy_tree(src: &Path, root: &Root, dest: &str, attrs: &Attrs) -> Result<(), FsCopyError> {
    let mut names: Vec<_> = fs::read_dir(src)
        .map_err(io_err(src))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err(src))?;
    names.sort();
    for name in names {
        let path = src.join(&name);
        let d = format!("{}/{}", dest.trim_end_matches('/'), name.to_string_lossy());
        copy_entry(&path, root, &d, attrs)?;
        if fs::symlink_metadata(&path).map_err(io_err(&path))?.is_dir() {
            copy_tree(&path, root, &d, attrs)?;
        }
    }
    Ok(())
}

/// True when `path` is a tar archive, plain or compressed (what ADD extracts).
pub fn is_archive(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    let Ok((_, mut reader)) = compression::decompress("", file) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got == 512 && &head[257..262] == b"ustar"
}

/// Extracts the tar archive at `archive` into image directory `dest` in `root`,
/// keeping the owners and modes the archive records. `scratch` is an empty directory
/// to unpack into first, so the archive cannot reach outside the image.
pub fn extract(archive: &Path, root: &Root, dest: &str, scratch: &Path) -> Result<(), FsCopyError> {
    let file = fs::File::open(archive).map_err(io_err(archive))?;
    let (_, reader) =
        compression::decompress("", file).map_err(|e| io_err(archive)(io::Error::other(e)))?;
    unpack_tar(reader, scratch, &UnpackOptions::for_current_user()).map_err(|source| {
        FsCopyError::Extract {
            path: archive.to_path_buf(),
            source: Box::new(source),
        }
    })?;
    root.mkdir_all(dest)?;
    copy_tree(scratch, root, dest, &Attrs::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn chmod_octal_and_symbolic() {
        assert_eq!(apply_chmod("0640", 0o755, false).unwrap(), 0o640);
        assert_eq!(apply_chmod("u+x", 0o644, false).unwrap(), 0o744);
        assert_eq!(apply_chmod("go-w", 0o666, false).unwrap(), 0o644);
        assert_eq!(apply_chmod("a+X", 0o644, true).unwrap(), 0o755);
        assert_eq!(apply_chmod("a+X", 0o644, false).unwrap(), 0o644);
        assert_eq!(apply_chmod("u=rw,go=r", 0o777, false).unwrap(), 0o644);
    }

    #[test]
    fn copies_keep_mode_and_time() {
        let src = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let f = src.path().join("f");
        fs::write(&f, "x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o751)).unwrap();
        let t = filetime::FileTime::from_unix_time(1_000_000, 0);
        filetime::set_file_mtime(&f, t).unwrap();
        let me = (nix_ids().0, nix_ids().1);
        copy_entry(
            &f,
            &Root::open(root.path()).unwrap(),
            "/a/b/f",
            &Attrs {
                owner: Some(me),
                chmod: None,
            },
        )
        .unwrap();
        let m = fs::metadata(root.path().join("a/b/f")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o751);
        assert_eq!(m.mtime(), 1_000_000);
    }

    fn nix_ids() -> (u32, u32) {
        let m = fs::metadata(std::env::temp_dir()).unwrap();
        let own = fs::metadata(tempfile::tempdir().unwrap().path()).unwrap();
        let _ = m;
        (own.uid(), own.gid())
    }
}

//! Paths inside an image's root filesystem, resolved as the container would see them:
//! symlinks are followed with `/` meaning the root (absolute targets are re-rooted,
//! `..` stops at the root), so nothing a layer contains can point a build step outside.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::context::clean_segments;

/// How many symlinks one resolution may follow before it is called a loop.
const MAX_SYMLINKS: usize = 40;

/// Why a path could not be resolved in a root.
#[derive(Debug, thiserror::Error)]
pub enum RootPathError {
    /// Too many symlinks.
    #[error("path {0:?} in the image: too many levels of symbolic links")]
    Loop(String),
    /// A component that must be a directory is something else.
    #[error("path {0:?} in the image: a component is not a directory")]
    NotADirectory(String),
    /// A file operation failed.
    #[error("path {path}: {source}")]
    Io {
        /// The host path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Resolves `path` (absolute in the image) to a host path below `root`. Every component
/// but the last is followed through symlinks; the last is followed too when `follow_last`.
/// Missing directories on the way are created (mode 0755, owned by the caller) when
/// `create_parents`; otherwise the missing remainder is appended as is.
pub fn resolve(
    root: &Path,
    path: &str,
    follow_last: bool,
    create_parents: bool,
) -> Result<PathBuf, RootPathError> {
    let mut pending: Vec<OsString> = clean_segments(path)
        .iter()
        .rev()
        .map(OsString::from)
        .collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut followed = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let last = pending.is_empty();
        let mut host = root.to_path_buf();
        host.extend(&resolved);
        host.push(&c);
        match fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() && (!last || follow_last) => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(RootPathError::Loop(path.to_string()));
                }
                let target = fs::read_link(&host).map_err(|source| RootPathError::Io {
                    path: host.clone(),
                    source,
                })?;
                let bytes = target.as_os_str().as_bytes();
                if bytes.starts_with(b"/") {
                    resolved.clear();
                }
                for part in bytes.split(|&b| b == b'/').rev() {
                    if !part.is_empty() && part != b"." {
                        pending.push(OsString::from(std::ffi::OsStr::from_bytes(part)));
                    }
                }
            }
            Ok(meta) if !last && !meta.is_dir() => {
                return Err(RootPathError::NotADirectory(path.to_string()))
            }
            Ok(_) => resolved.push(c),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if create_parents && !last {
                    fs::create_dir(&host).map_err(|source| RootPathError::Io {
                        path: host.clone(),
                        source,
                    })?;
                }
                resolved.push(c);
            }
            Err(source) => return Err(RootPathError::Io { path: host, source }),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_symlinks_stay_in_the_root() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("run")).unwrap();
        fs::create_dir_all(root.path().join("var")).unwrap();
        symlink("/run", root.path().join("var/run")).unwrap();
        symlink("../../../../etc", root.path().join("escape")).unwrap();
        assert_eq!(
            resolve(root.path(), "/var/run/x", false, false).unwrap(),
            root.path().join("run/x")
        );
        assert_eq!(
            resolve(root.path(), "/escape/passwd", false, false).unwrap(),
            root.path().join("etc/passwd")
        );
        assert_eq!(
            resolve(root.path(), "/var/run", false, false).unwrap(),
            root.path().join("var/run")
        );
    }

    #[test]
    fn creates_parents_when_asked() {
        let root = tempfile::tempdir().unwrap();
        let p = resolve(root.path(), "/a/b/c", false, true).unwrap();
        assert_eq!(p, root.path().join("a/b/c"));
        assert!(root.path().join("a/b").is_dir());
        assert!(!p.exists());
    }
}

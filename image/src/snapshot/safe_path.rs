//! Resolving tar entry names and link targets inside a snapshot root without
//! ever leaving it.
//!
//! The image crate forbids `unsafe`, so `openat2(RESOLVE_IN_ROOT)` is out of
//! reach; instead every path is walked one component at a time with
//! `symlink_metadata` (lstat). A symlink met on the way is followed only when
//! its target is relative and stays inside the root; an absolute target or one
//! that climbs above the root is an error, so nothing is ever written through a
//! link that points out. The walk races only with the unpacker itself: the
//! snapshot being built is a private temporary directory nobody else writes.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Most symlinks followed while resolving one path (as Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// Why a path could not be resolved inside the snapshot root.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// A `..` component in a tar name or link target.
    #[error("path {0:?} contains a `..` component")]
    DotDot(String),
    /// A NUL byte in a name.
    #[error("path {0:?} contains a NUL byte")]
    Nul(String),
    /// A symlink on the way points outside the snapshot root.
    #[error("component {component:?} is a symlink to {target:?}, which leaves the snapshot")]
    SymlinkEscape {
        /// The path of the symlink, relative to the root.
        component: String,
        /// The symlink's target.
        target: String,
    },
    /// Too many symlinks were followed (a loop).
    #[error("too many levels of symbolic links at {0:?}")]
    SymlinkLoop(String),
    /// A component that must be a directory is something else.
    #[error("component {0:?} is not a directory")]
    NotADirectory(String),
    /// A path that must exist does not.
    #[error("{0:?} does not exist in the snapshot")]
    Missing(String),
    /// A filesystem call failed.
    #[error("{path}: {source}")]
    Io {
        /// The path being examined.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PathError + '_ {
    move |source| PathError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Splits a tar entry name into plain components: a leading `/` is dropped (as
/// Docker and containerd do), empty and `.` components are skipped, and any
/// `..` or NUL byte is rejected. An empty result names the root itself.
pub fn entry_components(name: &[u8]) -> Result<Vec<OsString>, PathError> {
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

/// Joins components for messages and relative paths.
pub fn display(components: &[OsString]) -> String {
    let mut p = PathBuf::new();
    for c in components {
        p.push(c);
    }
    p.to_string_lossy().into_owned()
}

/// Resolves the directory that holds `components`' last element, following
/// in-root relative symlinks and creating missing directories (mode 0755)
/// when `create` is set. Returns the symlink-free absolute host path of the
/// directory. `components` must not be empty.
pub fn resolve_parent(
    root: &Path,
    components: &[OsString],
    create: bool,
) -> Result<PathBuf, PathError> {
    let parents = match components.split_last() {
        Some((_, parents)) => parents,
        None => return Ok(root.to_path_buf()),
    };
    let resolved = walk(root, parents, create)?;
    Ok(join(root, &resolved))
}

/// Resolves an existing path (such as a hard link target) to its host path:
/// every directory on the way is resolved as in [`resolve_parent`] (never
/// created) and the last component is not followed, so a hard link to a
/// symlink links the symlink itself.
pub fn resolve_existing(root: &Path, components: &[OsString]) -> Result<PathBuf, PathError> {
    let (last, _) = components
        .split_last()
        .ok_or_else(|| PathError::Missing("/".to_string()))?;
    let parent = resolve_parent(root, components, false)?;
    let path = parent.join(last);
    match path.symlink_metadata() {
        Ok(_) => Ok(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(PathError::Missing(display(components)))
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn join(root: &Path, resolved: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in resolved {
        p.push(c);
    }
    p
}

/// Walks `components` as directories below `root`, returning the resolved
/// (symlink-free) components.
fn walk(root: &Path, components: &[OsString], create: bool) -> Result<Vec<OsString>, PathError> {
    let mut resolved: Vec<OsString> = Vec::new();
    // Pending components, in reverse order so the next one is popped from the end.
    let mut pending: Vec<OsString> = components.iter().rev().cloned().collect();
    let mut followed = 0usize;
    while let Some(component) = pending.pop() {
        if component == ".." {
            // Only reachable through a symlink target; the caller's names were checked.
            if resolved.pop().is_none() {
                return Err(PathError::DotDot(display(&resolved)));
            }
            continue;
        }
        let mut next = resolved.clone();
        next.push(component);
        let host = join(root, &next);
        match host.symlink_metadata() {
            Ok(meta) if meta.is_dir() => resolved = next,
            Ok(meta) if meta.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(PathError::SymlinkLoop(display(&next)));
                }
                let target = std::fs::read_link(&host).map_err(io_err(&host))?;
                let escape = || PathError::SymlinkEscape {
                    component: display(&next),
                    target: target.to_string_lossy().into_owned(),
                };
                if target.is_absolute() {
                    return Err(escape());
                }
                // Check the target stays inside the root before following it.
                let mut depth = resolved.len();
                for part in target.as_os_str().as_bytes().split(|&b| b == b'/') {
                    match part {
                        b"" | b"." => {}
                        b".." => depth = depth.checked_sub(1).ok_or_else(escape)?,
                        _ => depth += 1,
                    }
                }
                for part in target.as_os_str().as_bytes().split(|&b| b == b'/').rev() {
                    match part {
                        b"" | b"." => {}
                        p => pending.push(OsStr::from_bytes(p).to_os_string()),
                    }
                }
            }
            Ok(_) => return Err(PathError::NotADirectory(display(&next))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Err(PathError::Missing(display(&next)));
                }
                std::fs::create_dir(&host).map_err(io_err(&host))?;
                resolved = next;
            }
            Err(e) => return Err(io_err(&host)(e)),
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn comps(s: &str) -> Vec<OsString> {
        entry_components(s.as_bytes()).unwrap()
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(comps("/a//b/./c/"), comps("a/b/c"));
        assert!(comps("./").is_empty());
        assert!(matches!(
            entry_components(b"a/../../b"),
            Err(PathError::DotDot(_))
        ));
        assert!(matches!(entry_components(b"a\0b"), Err(PathError::Nul(_))));
    }

    #[test]
    fn creates_missing_parents() {
        let root = tempfile::tempdir().unwrap();
        let p = resolve_parent(root.path(), &comps("x/y/z"), true).unwrap();
        assert_eq!(p, root.path().join("x/y"));
        assert!(p.is_dir());
    }

    #[test]
    fn follows_inside_symlinks_only() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        symlink("usr/lib", root.path().join("lib")).unwrap();
        symlink("/etc", root.path().join("abs")).unwrap();
        symlink("../../..", root.path().join("usr/up")).unwrap();
        let p = resolve_parent(root.path(), &comps("lib/libc.so"), true).unwrap();
        assert_eq!(p, root.path().join("usr/lib"));
        assert!(matches!(
            resolve_parent(root.path(), &comps("abs/passwd"), true),
            Err(PathError::SymlinkEscape { .. })
        ));
        assert!(matches!(
            resolve_parent(root.path(), &comps("usr/up/x"), true),
            Err(PathError::SymlinkEscape { .. })
        ));
    }

    #[test]
    fn symlink_loops_fail() {
        let root = tempfile::tempdir().unwrap();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        assert!(matches!(
            resolve_parent(root.path(), &comps("a/x"), true),
            Err(PathError::SymlinkLoop(_))
        ));
    }

    #[test]
    fn existing_does_not_follow_last() {
        let root = tempfile::tempdir().unwrap();
        symlink("/etc/passwd", root.path().join("l")).unwrap();
        let p = resolve_existing(root.path(), &comps("l")).unwrap();
        assert_eq!(p, root.path().join("l"));
        assert!(matches!(
            resolve_existing(root.path(), &comps("nope")),
            Err(PathError::Missing(_))
        ));
    }
}

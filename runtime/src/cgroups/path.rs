//! Turning `linux.cgroupsPath` into a path inside each cgroup hierarchy.
//!
//! runc nests a relative path under the calling process's own cgroup. We anchor
//! relative paths at the hierarchy root instead, like absolute ones: `delete` or
//! `pause` may run from another cgroup than `create` (a shim, a different shell),
//! and the cgroup must still resolve to the same directories without a record of
//! where it was put. Callers that want nesting pass an absolute path.

use std::path::{Component, Path, PathBuf};

use super::CgroupError;

/// The cgroup's path relative to a hierarchy root: `cgroups_path` cleaned
/// lexically (`..` cannot climb above the root), or the container id when absent.
pub(super) fn inner_path(
    cgroups_path: Option<&str>,
    container_id: &str,
) -> Result<PathBuf, CgroupError> {
    let given = match cgroups_path {
        Some(p) if !p.is_empty() => p,
        _ => {
            if container_id.is_empty() || container_id.contains('/') {
                return Err(CgroupError::InvalidPath {
                    path: container_id.to_owned(),
                    reason: "container id is not a single path component",
                });
            }
            container_id
        }
    };
    if !given.contains('/') && given.split(':').count() == 3 {
        return Err(CgroupError::SystemdPath(given.to_owned()));
    }
    let mut clean = PathBuf::new();
    for component in Path::new(given).components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(CgroupError::InvalidPath {
            path: given.to_owned(),
            reason: "names the root cgroup",
        });
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_path_is_the_container_id() {
        assert_eq!(inner_path(None, "abc").unwrap(), PathBuf::from("abc"));
        assert_eq!(inner_path(Some(""), "abc").unwrap(), PathBuf::from("abc"));
    }

    #[test]
    fn absolute_and_relative_paths_resolve_from_the_root() {
        assert_eq!(
            inner_path(Some("/berth/c1"), "x").unwrap(),
            PathBuf::from("berth/c1")
        );
        assert_eq!(
            inner_path(Some("berth/c1"), "x").unwrap(),
            PathBuf::from("berth/c1")
        );
        assert_eq!(
            inner_path(Some("/a/./b//c/"), "x").unwrap(),
            PathBuf::from("a/b/c")
        );
    }

    #[test]
    fn dot_dot_cannot_escape_the_root() {
        assert_eq!(
            inner_path(Some("/../../etc/x"), "x").unwrap(),
            PathBuf::from("etc/x")
        );
        assert_eq!(
            inner_path(Some("a/../../b"), "x").unwrap(),
            PathBuf::from("b")
        );
    }

    #[test]
    fn root_and_bad_ids_are_rejected() {
        assert!(matches!(
            inner_path(Some("/"), "x"),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            inner_path(Some("a/.."), "x"),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            inner_path(None, "a/b"),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            inner_path(None, ""),
            Err(CgroupError::InvalidPath { .. })
        ));
    }

    #[test]
    fn systemd_form_is_refused_with_a_clear_error() {
        let err = inner_path(Some("system.slice:berth:abc"), "abc").unwrap_err();
        assert!(matches!(err, CgroupError::SystemdPath(_)));
        assert!(err.to_string().contains("systemd"));
    }
}

//! A pod's Kubernetes volumes on the host, laid out as the kubelet lays them out under
//! `$ROOT/daemon/pods/<uid>/volumes/<plugin>/<name>/`: `emptyDir` a fresh directory removed
//! with the pod; `hostPath` checked against its `type`; `configMap` and `secret` written
//! atomically (a timestamped directory, a `..data` symlink to it swapped by rename, and one
//! symlink per top-level entry through `..data`), so a container that bind-mounted the
//! volume's directory sees a whole new version at once when the object changes. A `secret`
//! volume is a tmpfs of its own, as the kubelet makes it, so Secrets never reach the disk;
//! it is unmounted when the pod's volumes are removed.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// Errors from making or checking a pod volume.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A `hostPath` does not match its `type`.
    #[error("hostPath volume {name:?}: {path}: {problem}")]
    HostPathType {
        /// The volume's name.
        name: String,
        /// The host path.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A `hostPath` type Kubernetes does not have.
    #[error("hostPath volume {name:?}: unknown type {kind:?}")]
    UnknownHostPathType {
        /// The volume's name.
        name: String,
        /// The type given.
        kind: String,
    },
    /// An item path of a projected volume is absolute or escapes it.
    #[error("volume {name:?}: item path {path:?} must be relative and must not contain '..'")]
    BadItemPath {
        /// The volume's name.
        name: String,
        /// The path given.
        path: String,
    },
    /// An item names a key the object does not have.
    #[error("volume {name:?}: {object} has no key {key:?}")]
    MissingKey {
        /// The volume's name.
        name: String,
        /// `configmap "NAME"` or `secret "NAME"`.
        object: String,
        /// The key.
        key: String,
    },
    /// A file operation failed.
    #[error("volume {path}: {source}")]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The `type` of a `hostPath` volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPathType {
    /// `""`: no check.
    Unset,
    /// Made (0755, parents included) when missing.
    DirectoryOrCreate,
    /// Must be a directory.
    Directory,
    /// Made empty (0644) when missing; its directory must exist.
    FileOrCreate,
    /// Must be a regular file.
    File,
    /// Must be a unix socket.
    Socket,
    /// Must be a character device.
    CharDevice,
    /// Must be a block device.
    BlockDevice,
}

impl HostPathType {
    /// Parses the `type` field of volume `name`.
    pub fn parse(name: &str, kind: Option<&str>) -> Result<Self, VolumeError> {
        Ok(match kind.unwrap_or("") {
            "" => HostPathType::Unset,
            "DirectoryOrCreate" => HostPathType::DirectoryOrCreate,
            "Directory" => HostPathType::Directory,
            "FileOrCreate" => HostPathType::FileOrCreate,
            "File" => HostPathType::File,
            "Socket" => HostPathType::Socket,
            "CharDevice" => HostPathType::CharDevice,
            "BlockDevice" => HostPathType::BlockDevice,
            other => {
                return Err(VolumeError::UnknownHostPathType {
                    name: name.to_string(),
                    kind: other.to_string(),
                })
            }
        })
    }
}

/// Checks (and for the `...OrCreate` types makes) `path` for `hostPath` volume `name`, as
/// the kubelet does before the pod's containers start.
pub fn host_path(name: &str, path: &Path, kind: HostPathType) -> Result<(), VolumeError> {
    use std::os::unix::fs::FileTypeExt;
    let problem = |problem: &str| VolumeError::HostPathType {
        name: name.to_string(),
        path: path.to_path_buf(),
        problem: problem.to_string(),
    };
    if !path.is_absolute() {
        return Err(problem("must be an absolute path"));
    }
    let meta = std::fs::metadata(path);
    match kind {
        HostPathType::Unset => Ok(()),
        HostPathType::DirectoryOrCreate => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(problem("exists and is not a directory")),
            Err(_) => std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(path)
                .map_err(io_err(path)),
        },
        HostPathType::FileOrCreate => match meta {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(problem("exists and is not a file")),
            Err(_) => std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path)
                .map(drop)
                .map_err(io_err(path)),
        },
        HostPathType::Directory => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(problem("hostPath type check failed: is not a directory")),
        },
        HostPathType::File => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => Err(problem("hostPath type check failed: is not a file")),
        },
        HostPathType::Socket => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => Err(problem("hostPath type check failed: is not a socket file")),
        },
        HostPathType::CharDevice => match meta {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => Err(problem(
                "hostPath type check failed: is not a character device",
            )),
        },
        HostPathType::BlockDevice => match meta {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => Err(problem("hostPath type check failed: is not a block device")),
        },
    }
}

/// One item of a `configMap`/`secret` volume: `key` written to `path` (mode or the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyToPath {
    /// The key in the object's data.
    pub key: String,
    /// The relative path in the volume.
    pub path: String,
    /// `mode`, overriding `defaultMode`.
    pub mode: Option<u32>,
}

/// The files of a projected volume: relative path -> (content, mode).
pub type Payload = BTreeMap<String, (Vec<u8>, u32)>;

/// The files a `configMap` or `secret` volume `name` holds for the object's `data`: every key
/// at its own name, or only `items` at their paths; `default_mode` (0644 when absent) unless
/// an item sets its own. A missing object (`data` `None`) or key fails unless `optional`.
pub fn project(
    name: &str,
    object: &str,
    data: Option<&BTreeMap<String, Vec<u8>>>,
    items: &[KeyToPath],
    default_mode: Option<u32>,
    optional: bool,
) -> Result<Payload, VolumeError> {
    let mode = default_mode.unwrap_or(0o644) & 0o777;
    let empty = BTreeMap::new();
    let data = match data {
        Some(d) => d,
        None if optional => &empty,
        None => {
            return Err(VolumeError::MissingKey {
                name: name.to_string(),
                object: object.to_string(),
                key: String::new(),
            })
        }
    };
    let mut out = Payload::new();
    if items.is_empty() {
        for (key, value) in data {
            check_item_path(name, key)?;
            out.insert(key.clone(), (value.clone(), mode));
        }
        return Ok(out);
    }
    for item in items {
        check_item_path(name, &item.path)?;
        match data.get(&item.key) {
            Some(value) => {
                out.insert(
                    item.path.clone(),
                    (value.clone(), item.mode.map_or(mode, |m| m & 0o777)),
                );
            }
            None if optional => {}
            None => {
                return Err(VolumeError::MissingKey {
                    name: name.to_string(),
                    object: object.to_string(),
                    key: item.key.clone(),
                })
            }
        }
    }
    Ok(out)
}

fn check_item_path(name: &str, path: &str) -> Result<(), VolumeError> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && !path.starts_with("..")
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(VolumeError::BadItemPath {
            name: name.to_string(),
            path: path.to_string(),
        })
    }
}

const DATA_LINK: &str = "..data";

/// Writes `payload` into `dir` the kubelet's way; returns whether anything changed. Readers
/// of `dir` see either the old files or the new ones, never a mix.
pub fn write_atomic(dir: &Path, payload: &Payload) -> Result<bool, VolumeError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(io_err(dir))?;
    let data_link = dir.join(DATA_LINK);
    let old = std::fs::read_link(&data_link).ok();
    if let Some(old) = &old {
        if same_payload(&dir.join(old), payload) {
            return Ok(false);
        }
    }
    let stamp = format!("..{}", chrono::Utc::now().format("%Y_%m_%d_%H_%M_%S.%9f"));
    let version = dir.join(&stamp);
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&version)
        .map_err(io_err(&version))?;
    for (rel, (content, mode)) in payload {
        let path = version.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io_err(parent))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(*mode)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, content))
            .map_err(io_err(&path))?;
        // The umask may have trimmed the mode.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
            .map_err(io_err(&path))?;
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(&stamp, &tmp_link).map_err(io_err(&tmp_link))?;
    std::fs::rename(&tmp_link, &data_link).map_err(io_err(&data_link))?;

    let tops: std::collections::BTreeSet<String> = payload
        .keys()
        .filter_map(|k| k.split('/').next().map(str::to_string))
        .collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_LINK).join(top), &link)
                .map_err(io_err(&link))?;
        }
    }
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("..") {
            if name != DATA_LINK && name != stamp {
                let path = entry.path();
                std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
            }
        } else if !tops.contains(&name) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(true)
}

fn same_payload(version: &Path, payload: &Payload) -> bool {
    let mut files = Vec::new();
    if list_files(version, version, &mut files).is_err() || files.len() != payload.len() {
        return false;
    }
    payload.iter().all(|(rel, (content, mode))| {
        let path = version.join(rel);
        std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o777 == *mode)
            && std::fs::read(&path).is_ok_and(|c| &c == content)
    })
}

fn list_files(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            list_files(base, &entry.path(), out)?;
        } else {
            out.push(
                entry
                    .path()
                    .strip_prefix(base)
                    .unwrap_or(base)
                    .to_path_buf(),
            );
        }
    }
    Ok(())
}

/// The volume directories of one pod: `$ROOT/daemon/pods/<uid>/volumes/`.
#[derive(Debug, Clone)]
pub struct PodVolumeDirs {
    pod_dir: PathBuf,
}

impl PodVolumeDirs {
    /// The volumes of pod `uid` under store root `root`.
    pub fn new(root: &Path, uid: &str) -> Self {
        PodVolumeDirs {
            pod_dir: root.join("daemon/pods").join(uid),
        }
    }

    /// The directory of volume `name` of plugin `plugin` (`kubernetes.io~empty-dir`, ...).
    pub fn dir(&self, plugin: &str, name: &str) -> PathBuf {
        self.pod_dir.join("volumes").join(plugin).join(name)
    }

    /// Makes (if missing) and returns `emptyDir` volume `name`.
    pub fn empty_dir(&self, name: &str) -> Result<PathBuf, VolumeError> {
        let dir = self.dir("kubernetes.io~empty-dir", name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o777)
            .create(&dir)
            .map_err(io_err(&dir))?;
        // The umask trimmed the mode; emptyDir is world-writable as the kubelet makes it.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(io_err(&dir))?;
        Ok(dir)
    }

    /// Writes `configMap` (`plugin` `kubernetes.io~configmap`) or `secret` volume `name`.
    pub fn projected(
        &self,
        plugin: &str,
        name: &str,
        payload: &Payload,
    ) -> Result<(PathBuf, bool), VolumeError> {
        let dir = self.dir(plugin, name);
        let changed = write_atomic(&dir, payload)?;
        Ok((dir, changed))
    }

    /// Writes `secret` volume `name` on a tmpfs mounted at its directory (mounted once: a
    /// refresh, or a restarted daemon adopting the pod, writes into the mount already there).
    pub fn secret(&self, name: &str, payload: &Payload) -> Result<(PathBuf, bool), VolumeError> {
        let dir = self.dir("kubernetes.io~secret", name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(io_err(&dir))?;
        if !is_mount_point(&dir)? {
            nix::mount::mount(
                Some("tmpfs"),
                &dir,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=0755"),
            )
            .map_err(|e| io_err(&dir)(e.into()))?;
        }
        let changed = write_atomic(&dir, payload)?;
        Ok((dir, changed))
    }

    /// Removes every volume of the pod (the pod is gone; hostPath data is not here), first
    /// unmounting its secret volumes' tmpfs.
    pub fn remove(&self) -> Result<(), VolumeError> {
        for mount_point in mounts_under(&self.pod_dir)? {
            match nix::mount::umount2(&mount_point, MntFlags::MNT_DETACH) {
                Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
                Err(e) => return Err(io_err(&mount_point)(e.into())),
            }
        }
        match std::fs::remove_dir_all(&self.pod_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.pod_dir)(e)),
        }
    }
}

/// Removes the volumes of every pod under store root `root` whose uid is not in `keep`
/// (what a daemon stopped between removing a pod and removing its volumes left behind).
pub fn sweep(root: &Path, keep: &std::collections::HashSet<String>) -> Result<(), VolumeError> {
    let pods = root.join("daemon/pods");
    let entries = match std::fs::read_dir(&pods) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&pods)(e)),
    };
    for entry in entries {
        let uid = entry.map_err(io_err(&pods))?.file_name();
        let uid = uid.to_string_lossy();
        if !keep.contains(uid.as_ref()) {
            PodVolumeDirs::new(root, &uid).remove()?;
        }
    }
    Ok(())
}

/// Whether `dir` is a mount point: its device differs from its parent's.
fn is_mount_point(dir: &Path) -> Result<bool, VolumeError> {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.parent().unwrap_or(dir);
    let here = std::fs::metadata(dir).map_err(io_err(dir))?;
    let up = std::fs::metadata(parent).map_err(io_err(parent))?;
    Ok(here.dev() != up.dev())
}

/// The mount points at or below `dir` in `/proc/self/mountinfo`, deepest first.
fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, VolumeError> {
    let dir = match std::fs::canonicalize(dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let info_path = Path::new("/proc/self/mountinfo");
    let info = std::fs::read_to_string(info_path).map_err(io_err(info_path))?;
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(&dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn host_path_types_are_checked_and_made() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        host_path("v", &dir, HostPathType::DirectoryOrCreate).unwrap();
        assert!(dir.is_dir());
        host_path("v", &dir, HostPathType::Directory).unwrap();
        let err = host_path("v", &dir, HostPathType::File)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hostPath volume \"v\"") && err.contains("not a file"),
            "{err}"
        );
        let file = dir.join("f");
        host_path("v", &file, HostPathType::FileOrCreate).unwrap();
        assert!(file.is_file());
        host_path("v", &file, HostPathType::File).unwrap();
        assert!(host_path("v", &file, HostPathType::Directory).is_err());
        assert!(host_path("v", &file, HostPathType::DirectoryOrCreate).is_err());
        assert!(host_path("v", &tmp.path().join("nope"), HostPathType::Directory).is_err());
        assert!(host_path("v", &file, HostPathType::Socket).is_err());
        assert!(host_path("v", Path::new("rel"), HostPathType::Unset).is_err());
        assert!(matches!(
            HostPathType::parse("v", Some("Dir")),
            Err(VolumeError::UnknownHostPathType { .. })
        ));
        assert_eq!(HostPathType::parse("v", None).unwrap(), HostPathType::Unset);
    }

    #[test]
    fn items_select_keys_with_modes_and_missing_keys_fail_unless_optional() {
        let d = data(&[("a", "1"), ("b", "2")]);
        let all = project("v", "configmap \"c\"", Some(&d), &[], Some(0o600), false).unwrap();
        assert_eq!(all.get("a"), Some(&(b"1".to_vec(), 0o600)));
        assert_eq!(all.len(), 2);
        let items = [KeyToPath {
            key: "b".into(),
            path: "sub/b.txt".into(),
            mode: Some(0o400),
        }];
        let some = project("v", "configmap \"c\"", Some(&d), &items, None, false).unwrap();
        assert_eq!(
            some.into_iter().collect::<Vec<_>>(),
            vec![("sub/b.txt".to_string(), (b"2".to_vec(), 0o400))]
        );
        let missing = [KeyToPath {
            key: "zz".into(),
            path: "zz".into(),
            mode: None,
        }];
        let err = project("v", "configmap \"c\"", Some(&d), &missing, None, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("configmap \"c\" has no key \"zz\""), "{err}");
        assert!(project("v", "c", Some(&d), &missing, None, true)
            .unwrap()
            .is_empty());
        assert!(project("v", "c", None, &[], None, false).is_err());
        assert!(project("v", "c", None, &[], None, true).unwrap().is_empty());
        for bad in ["../x", "/abs", "a/../../b", "..x"] {
            let items = [KeyToPath {
                key: "a".into(),
                path: bad.into(),
                mode: None,
            }];
            assert!(
                matches!(
                    project("v", "c", Some(&d), &items, None, false),
                    Err(VolumeError::BadItemPath { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn atomic_writes_swap_the_data_link_and_prune_old_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = PodVolumeDirs::new(tmp.path(), "uid1");
        let d1 = project(
            "v",
            "c",
            Some(&data(&[("a", "1"), ("b", "2")])),
            &[],
            None,
            false,
        )
        .unwrap();
        let (dir, changed) = dirs.projected("kubernetes.io~configmap", "v", &d1).unwrap();
        assert!(changed);
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "1");
        assert_eq!(
            std::fs::read_link(dir.join("a")).unwrap(),
            Path::new("..data/a")
        );
        let first = std::fs::read_link(dir.join("..data")).unwrap();
        let (_, changed) = dirs.projected("kubernetes.io~configmap", "v", &d1).unwrap();
        assert!(!changed, "same content: no new version");
        let d2 = project("v", "c", Some(&data(&[("a", "3")])), &[], None, false).unwrap();
        let (_, changed) = dirs.projected("kubernetes.io~configmap", "v", &d2).unwrap();
        assert!(changed);
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "3");
        assert!(
            std::fs::symlink_metadata(dir.join("b")).is_err(),
            "b's link removed"
        );
        assert!(!dir.join(&first).exists(), "old version removed");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        let empty = dirs.empty_dir("scratch").unwrap();
        assert!(empty.ends_with("uid1/volumes/kubernetes.io~empty-dir/scratch"));
        assert_eq!(
            std::fs::metadata(&empty).unwrap().permissions().mode() & 0o777,
            0o777
        );
        dirs.remove().unwrap();
        assert!(!tmp.path().join("daemon/pods/uid1").exists());
        dirs.remove().unwrap();
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mountinfo("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo("/plain\\"), "/plain\\");
    }

    #[test]
    fn sweep_keeps_live_pods_volumes() {
        let tmp = tempfile::tempdir().unwrap();
        for uid in ["live", "gone"] {
            PodVolumeDirs::new(tmp.path(), uid).empty_dir("v").unwrap();
        }
        let keep = ["live".to_string()].into_iter().collect();
        sweep(tmp.path(), &keep).unwrap();
        assert!(tmp.path().join("daemon/pods/live").exists());
        assert!(!tmp.path().join("daemon/pods/gone").exists());
    }
}

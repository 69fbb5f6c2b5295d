//! `berth cp`: files between a container and the host, with Docker's rules (a directory
//! source is copied into an existing directory, or becomes a new one; `SRC/.` copies a
//! directory's contents; a file source replaces a file or lands in a directory; a
//! destination ending in `/` must be a directory), and tar streams for `-`.
//!
//! Every path inside the container is resolved in its root with symlinks re-rooted
//! ([`berth_builder::rootpath`]), and every entry is written with its last component not
//! followed, so nothing the container holds can point a copy outside it. A running
//! container's root is `/proc/<pid>/root` (so its mounts, volumes included, are seen); a
//! stopped one's overlay is mounted again for the copy.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use berth_builder::rootpath;
use berth_image::manifest::PlatformSpec;
use berth_image::snapshot::{mount::RootfsMount, Snapshots};
use berth_image::store::Store;

use super::state::Status;
use super::{ContainerConfig, ContainerError, Containers};

/// Errors from `berth cp`.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The container could not be used.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A path could not be resolved inside the container's root.
    #[error(transparent)]
    RootPath(#[from] rootpath::RootPathError),
    /// The source does not exist.
    #[error("could not find the file {path} in {place}")]
    NotFound {
        /// The path as given.
        path: String,
        /// "container NAME" or "the host".
        place: String,
    },
    /// A directory cannot replace a file.
    #[error("cannot copy directory {src} to file {dest}: the destination is not a directory")]
    DirToFile {
        /// The source as given.
        src: String,
        /// The destination as given.
        dest: String,
    },
    /// A destination ending in `/` that is not an existing directory.
    #[error("destination directory {0} does not exist")]
    DestDirMissing(String),
    /// The destination of a tar stream must be a directory.
    #[error("destination {0} must be a directory to extract a tar stream into")]
    DestNotDir(String),
    /// A tar entry would land outside the destination.
    #[error("tar entry {0:?}: absolute or '..' paths are not allowed")]
    BadEntry(String),
    /// The tar stream is broken.
    #[error("tar stream: {0}")]
    Tar(std::io::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The container's root filesystem for the length of a copy.
struct ContainerRoot {
    path: PathBuf,
    _mount: Option<RootfsMount>,
}

impl ContainerRoot {
    fn open(c: &Containers, config: &ContainerConfig) -> Result<Self, ContainerError> {
        let state = c.state(&config.id)?;
        if let (Status::Running, Some(pid), true) = (state.status, state.pid, state.is_running()) {
            return Ok(ContainerRoot {
                path: PathBuf::from(format!("/proc/{pid}/root")),
                _mount: None,
            });
        }
        let dir = c.dir(&config.id);
        let rootfs = dir.join("rootfs");
        if super::lifecycle::is_mount_point(&rootfs) {
            // Created, not started yet: its overlay is mounted already.
            return Ok(ContainerRoot {
                path: rootfs,
                _mount: None,
            });
        }
        let store = Store::open(c.root())?;
        let _lease = store.lease()?;
        let image = store.resolve(&config.image_id, &PlatformSpec::host())?;
        let snapshots = Snapshots::new(store.snapshots_dir());
        let top = snapshots.unpack_image(&store, &image)?;
        let mount =
            snapshots.mount_rootfs(top.as_ref(), &dir.join("upper"), &dir.join("work"), &rootfs)?;
        Ok(ContainerRoot {
            path: rootfs,
            _mount: Some(mount),
        })
    }
}

/// Where an entry goes: the path inside the destination root.
fn join_in(dest: &str, rel: &Path) -> String {
    let mut s = dest.trim_end_matches('/').to_string();
    for c in rel.components() {
        if let Component::Normal(n) = c {
            s.push('/');
            s.push_str(&n.to_string_lossy());
        }
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// Writes entries below a root, resolving each path inside it and never following the last
/// component (an existing symlink or file there is replaced).
struct Writer<'a> {
    root: &'a Path,
}

impl Writer<'_> {
    fn target(&self, path: &str) -> Result<PathBuf, CopyError> {
        Ok(rootpath::resolve(self.root, path, false, true)?)
    }

    /// Removes what is at `host` unless it is a directory and `keep_dir`.
    fn clear(host: &Path, keep_dir: bool) -> Result<(), CopyError> {
        match fs::symlink_metadata(host) {
            Ok(m) if m.is_dir() && keep_dir => Ok(()),
            Ok(m) if m.is_dir() => fs::remove_dir_all(host).map_err(io_at(host)),
            Ok(_) => fs::remove_file(host).map_err(io_at(host)),
            Err(_) => Ok(()),
        }
    }

    fn dir(&self, path: &str, mode: u32) -> Result<(), CopyError> {
        let host = self.target(path)?;
        Self::clear(&host, true)?;
        if fs::symlink_metadata(&host).is_err() {
            fs::create_dir(&host).map_err(io_at(&host))?;
        }
        fs::set_permissions(&host, fs::Permissions::from_mode(mode & 0o7777)).map_err(io_at(&host))
    }

    fn file(&self, path: &str, mode: u32, content: &mut dyn Read) -> Result<(), CopyError> {
        let host = self.target(path)?;
        Self::clear(&host, false)?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&host)
            .map_err(io_at(&host))?;
        std::io::copy(content, &mut f).map_err(io_at(&host))?;
        f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io_at(&host))
    }

    fn symlink(&self, path: &str, target: &Path) -> Result<(), CopyError> {
        let host = self.target(path)?;
        Self::clear(&host, false)?;
        std::os::unix::fs::symlink(target, &host).map_err(io_at(&host))
    }
}

/// Copies the tree at `src` (a host path already resolved in its root; nothing below it is
/// followed) to `dest` inside `w`'s root.
fn copy_tree(src: &Path, w: &Writer<'_>, dest: &str) -> Result<(), CopyError> {
    let meta = fs::symlink_metadata(src).map_err(io_at(src))?;
    let mode = meta.permissions().mode();
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(io_at(src))?;
        w.symlink(dest, &target)
    } else if meta.is_dir() {
        w.dir(dest, mode)?;
        let mut entries: Vec<_> = fs::read_dir(src)
            .map_err(io_at(src))?
            .collect::<Result<_, _>>()
            .map_err(io_at(src))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_tree(&e.path(), w, &join_in(dest, Path::new(&e.file_name())))?;
        }
        Ok(())
    } else if meta.is_file() {
        let mut f = fs::File::open(src).map_err(io_at(src))?;
        w.file(dest, mode, &mut f)
    } else {
        // Devices, fifos and sockets are not copied, as Docker's cp skips what it cannot
        // archive portably.
        tracing::debug!(path = %src.display(), "not a file, directory or symlink: skipped");
        Ok(())
    }
}

/// Where a copy of `src` (a directory or not) to `dest` (found at `dest_host`) lands, by
/// Docker's rules.
fn plan(src: &str, src_is_dir: bool, dest: &str, dest_host: &Path) -> Result<String, CopyError> {
    let dest_meta = fs::metadata(dest_host).ok();
    let base = Path::new(src.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let contents_only = src.ends_with("/.") || base.is_empty();
    match (src_is_dir, dest_meta) {
        (true, Some(m)) if !m.is_dir() => Err(CopyError::DirToFile {
            src: src.into(),
            dest: dest.into(),
        }),
        (true, Some(_)) if contents_only => Ok(dest.to_string()),
        (true, Some(_)) => Ok(join_in(dest, Path::new(&base))),
        (true, None) => Ok(dest.to_string()),
        (false, Some(m)) if m.is_dir() => Ok(join_in(dest, Path::new(&base))),
        (false, _) if dest.ends_with('/') => match fs::metadata(dest_host) {
            Ok(_) => Ok(dest.to_string()),
            Err(_) => Err(CopyError::DestDirMissing(dest.into())),
        },
        (false, _) => Ok(dest.to_string()),
    }
}

/// Resolves `src` in `root` (the last component followed only for `SRC/` and `SRC/.`).
fn resolve_src(root: &Path, src: &str, place: &str) -> Result<(PathBuf, bool), CopyError> {
    let follow = src.ends_with('/') || src.ends_with("/.");
    let host = rootpath::resolve(root, src, follow, false)?;
    let meta = fs::symlink_metadata(&host).map_err(|_| CopyError::NotFound {
        path: src.into(),
        place: place.into(),
    })?;
    Ok((host, meta.is_dir()))
}

/// Copies `src` in container `config` to `dest` on the host.
pub fn copy_from(
    c: &Containers,
    config: &ContainerConfig,
    src: &str,
    dest: &Path,
) -> Result<(), CopyError> {
    let root = ContainerRoot::open(c, config)?;
    let (src_host, is_dir) = resolve_src(&root.path, src, &format!("container {}", config.name))?;
    let dest_abs = absolute_on_host(dest)?;
    let target = plan(src, is_dir, &dest_abs, Path::new(&dest_abs))?;
    if let Some(parent) = Path::new(&target).parent() {
        if !parent.is_dir() {
            return Err(CopyError::DestDirMissing(parent.display().to_string()));
        }
    }
    copy_tree(
        &src_host,
        &Writer {
            root: Path::new("/"),
        },
        &target,
    )
}

/// Copies `src` on the host to `dest` in container `config`.
pub fn copy_to(
    c: &Containers,
    config: &ContainerConfig,
    src: &Path,
    dest: &str,
) -> Result<(), CopyError> {
    let src_abs = absolute_on_host(src)?;
    let (src_host, is_dir) = resolve_src(Path::new("/"), &src_abs, "the host")?;
    let root = ContainerRoot::open(c, config)?;
    let dest = absolute_in_container(dest);
    let dest_host = rootpath::resolve(&root.path, &dest, true, false)?;
    let target = plan(&src_abs, is_dir, &dest, &dest_host)?;
    let parent = Path::new(&target).parent().unwrap_or(Path::new("/"));
    let parent_host = rootpath::resolve(&root.path, &parent.to_string_lossy(), true, false)?;
    if !parent_host.is_dir() {
        return Err(CopyError::DestDirMissing(parent.display().to_string()));
    }
    copy_tree(&src_host, &Writer { root: &root.path }, &target)
}

/// Writes `src` in container `config` as a tar stream to `out` (`berth cp NAME:SRC -`),
/// entries named from the source's last component, as Docker's.
pub fn archive_from(
    c: &Containers,
    config: &ContainerConfig,
    src: &str,
    out: impl Write,
) -> Result<(), CopyError> {
    let root = ContainerRoot::open(c, config)?;
    let (src_host, is_dir) = resolve_src(&root.path, src, &format!("container {}", config.name))?;
    let base = Path::new(src.trim_end_matches('/'))
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = if src.ends_with("/.") {
        PathBuf::from(".")
    } else {
        base
    };
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    if is_dir {
        tar.append_dir_all(&name, &src_host)
            .map_err(CopyError::Tar)?;
    } else {
        tar.append_path_with_name(&src_host, &name)
            .map_err(CopyError::Tar)?;
    }
    tar.into_inner()
        .map_err(CopyError::Tar)?
        .flush()
        .map_err(CopyError::Tar)
}

/// Extracts the tar stream `input` into directory `dest` of container `config`
/// (`berth cp - NAME:DEST`); entries with absolute or `..` paths are refused.
pub fn extract_to(
    c: &Containers,
    config: &ContainerConfig,
    input: impl Read,
    dest: &str,
) -> Result<(), CopyError> {
    let root = ContainerRoot::open(c, config)?;
    let dest = absolute_in_container(dest);
    let dest_host = rootpath::resolve(&root.path, &dest, true, false)?;
    if !dest_host.is_dir() {
        return Err(CopyError::DestNotDir(dest));
    }
    let w = Writer { root: &root.path };
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(CopyError::Tar)? {
        let mut entry = entry.map_err(CopyError::Tar)?;
        let rel = entry.path().map_err(CopyError::Tar)?.into_owned();
        let path = entry_target(&dest, &rel)?;
        let mode = entry.header().mode().unwrap_or(0o644);
        match entry.header().entry_type() {
            tar::EntryType::Directory => w.dir(&path, mode)?,
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(CopyError::Tar)?
                    .ok_or_else(|| CopyError::BadEntry(rel.display().to_string()))?
                    .into_owned();
                w.symlink(&path, &target)?;
            }
            t if t.is_file() => w.file(&path, mode, &mut entry)?,
            other => tracing::debug!(entry = %rel.display(), ?other, "not extracted"),
        }
    }
    Ok(())
}

/// A host path made absolute against the working directory, keeping a trailing `/` or
/// `/.` (they carry Docker's meaning).
fn absolute_on_host(path: &Path) -> Result<String, CopyError> {
    let given = path.to_string_lossy();
    let abs = std::path::absolute(path).map_err(io_at(path))?;
    let mut s = abs.to_string_lossy().trim_end_matches('/').to_string();
    if given.ends_with("/.") && !s.ends_with("/.") {
        s.push_str("/.");
    } else if given.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}

/// The path inside the container of tar entry `rel` extracted into `dest`; absolute and
/// `..` entries are refused.
fn entry_target(dest: &str, rel: &Path) -> Result<String, CopyError> {
    if rel.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return Err(CopyError::BadEntry(rel.display().to_string()));
    }
    Ok(join_in(dest, rel))
}

/// A container path made absolute (Docker takes relative ones from `/`).
fn absolute_in_container(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_follows_docker() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("dir");
        fs::create_dir(&dir).unwrap();
        let file = d.path().join("file");
        fs::write(&file, "x").unwrap();
        let missing = d.path().join("missing");
        let s = |p: &Path| p.to_string_lossy().into_owned();
        // A directory into an existing directory, its contents with /., or a new one.
        assert_eq!(
            plan("/a/src", true, &s(&dir), &dir).unwrap(),
            s(&dir.join("src"))
        );
        assert_eq!(plan("/a/src/.", true, &s(&dir), &dir).unwrap(), s(&dir));
        assert_eq!(
            plan("/a/src", true, &s(&missing), &missing).unwrap(),
            s(&missing)
        );
        assert!(matches!(
            plan("/a/src", true, &s(&file), &file),
            Err(CopyError::DirToFile { .. })
        ));
        // A file into a directory, over a file, or to a new name; a missing dir/ fails.
        assert_eq!(
            plan("/a/f", false, &s(&dir), &dir).unwrap(),
            s(&dir.join("f"))
        );
        assert_eq!(plan("/a/f", false, &s(&file), &file).unwrap(), s(&file));
        assert_eq!(
            plan("/a/f", false, &s(&missing), &missing).unwrap(),
            s(&missing)
        );
        let slash = format!("{}/", s(&missing));
        assert!(matches!(
            plan("/a/f", false, &slash, &missing),
            Err(CopyError::DestDirMissing(_))
        ));
    }

    #[test]
    fn writes_stay_inside_the_root_through_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        let w = Writer { root: &root };
        w.file("/escape/x", 0o644, &mut "in".as_bytes()).unwrap();
        w.file("/up/y", 0o644, &mut "in".as_bytes()).unwrap();
        assert!(fs::read_dir(&outside).unwrap().next().is_none());
        assert_eq!(
            fs::read_to_string(root.join(outside.strip_prefix("/").unwrap()).join("x")).unwrap(),
            "in"
        );
        assert_eq!(fs::read_to_string(root.join("y")).unwrap(), "in");
        // A symlink as the last component is replaced, not written through.
        std::os::unix::fs::symlink(outside.join("z"), root.join("etc/z")).unwrap();
        w.file("/etc/z", 0o600, &mut "new".as_bytes()).unwrap();
        assert!(!outside.join("z").exists());
        assert_eq!(fs::read_to_string(root.join("etc/z")).unwrap(), "new");
    }

    #[test]
    fn tar_entries_must_stay_below_the_destination() {
        for bad in ["../x", "a/../../x", "/etc/passwd"] {
            assert!(
                matches!(
                    entry_target("/dst", Path::new(bad)),
                    Err(CopyError::BadEntry(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(entry_target("/dst", Path::new("a/b")).unwrap(), "/dst/a/b");
        assert_eq!(join_in("/dst/", Path::new("./a/b")), "/dst/a/b");
        assert_eq!(join_in("/", Path::new(".")), "/");
    }
}

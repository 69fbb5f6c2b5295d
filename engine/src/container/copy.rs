//! `berth cp`: files between a container and the host, with Docker's rules (a directory
//! source is copied into an existing directory, or becomes a new one; `SRC/.` copies a
//! directory's contents; a file source replaces a file or lands in a directory; a
//! destination ending in `/` must be a directory), and tar streams for `-`.
//!
//! Every path inside the container is resolved by the kernel in a descriptor of its root
//! ([`berth_image::rootpath`]: `openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`),
//! and the copy then works on descriptors only: each entry is read or written by name
//! relative to its parent directory's descriptor, never followed, so a container that swaps
//! a directory for a symlink to the host while the copy runs (CVE-2018-15664) only moves
//! things around inside itself. A running container's root is `/proc/<pid>/root`, opened
//! once (so its mounts, volumes included, are seen); a stopped one's overlay is mounted
//! again for the copy. Host paths go through the same code with `/` as the root.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use berth_image::manifest::PlatformSpec;
use berth_image::rootpath::{self, At, FileType, Root, RootPathError};
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
    /// A path could not be resolved or written inside its root.
    #[error(transparent)]
    RootPath(#[from] RootPathError),
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
    root: Root,
    _mount: Option<RootfsMount>,
}

impl ContainerRoot {
    fn open(c: &Containers, config: &ContainerConfig) -> Result<Self, CopyError> {
        let state = c.state(&config.id)?;
        if let (Status::Running, Some(pid), true) = (state.status, state.pid, state.is_running()) {
            // The magic link is followed once, here; nothing below it may be one.
            return Ok(ContainerRoot {
                root: Root::open(format!("/proc/{pid}/root"))?,
                _mount: None,
            });
        }
        let dir = c.dir(&config.id);
        let rootfs = dir.join("rootfs");
        if super::lifecycle::is_mount_point(&rootfs) {
            // Created, not started yet: its overlay is mounted already.
            return Ok(ContainerRoot {
                root: Root::open(&rootfs)?,
                _mount: None,
            });
        }
        let store = Store::open(c.root()).map_err(ContainerError::from)?;
        let _lease = store.lease().map_err(ContainerError::from)?;
        let image = store
            .resolve(&config.image_id, &PlatformSpec::host())
            .map_err(ContainerError::from)?;
        let snapshots = Snapshots::new(store.snapshots_dir());
        let top = snapshots
            .unpack_image(&store, &image)
            .map_err(ContainerError::from)?;
        let mount = snapshots
            .mount_rootfs(top.as_ref(), &dir.join("upper"), &dir.join("work"), &rootfs)
            .map_err(ContainerError::from)?;
        Ok(ContainerRoot {
            root: Root::open(&rootfs)?,
            _mount: Some(mount),
        })
    }
}

/// The host's own tree, resolved with the same code.
fn host_root() -> Result<Root, CopyError> {
    Ok(Root::open("/")?)
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

fn kind(st: &rootpath::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Copies the entry `src` (not followed; a directory with everything below it) to `dst`
/// (not followed: what is there is replaced, a directory kept for a directory).
fn copy_tree(src: &At, dst: &At) -> Result<(), CopyError> {
    let Some(st) = src.lstat()? else {
        return Err(CopyError::NotFound {
            path: src.path().to_string_lossy().into_owned(),
            place: "the source".into(),
        });
    };
    let mode = st.st_mode & 0o7777;
    match kind(&st) {
        FileType::Symlink => {
            let target = src.read_link()?;
            dst.remove(false)?;
            dst.symlink(&target)?;
        }
        FileType::Directory => {
            dst.remove(true)?;
            // Writable until its entries are in; the real mode comes last.
            dst.mkdir(0o700)?;
            let names = rootpath::entries(std::os::fd::AsFd::as_fd(&src.open_dir()?))
                .map_err(|e| src.io_error("list", e))?;
            for name in names {
                copy_tree(&src.child(&name)?, &dst.child(&name)?)?;
            }
            dst.set_mode(mode)?;
        }
        FileType::RegularFile => {
            let mut from = src.open_read()?;
            dst.remove(false)?;
            let mut to = dst.create(mode)?;
            std::io::copy(&mut from, &mut to).map_err(|e| dst.io_error("write", e))?;
            to.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| dst.io_error("chmod", e))?;
        }
        // Devices, fifos and sockets are not copied, as Docker's cp skips what it cannot
        // archive portably.
        _ => tracing::debug!(path = ?src.path(), "not a file, directory or symlink: skipped"),
    }
    Ok(())
}

/// Where a copy of `src` (a directory or not) to `dest` (`Some(is_dir)` when it exists)
/// lands, by Docker's rules.
fn plan(
    src: &str,
    src_is_dir: bool,
    dest: &str,
    dest_is_dir: Option<bool>,
) -> Result<String, CopyError> {
    let base = Path::new(src.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let contents_only = src.ends_with("/.") || base.is_empty();
    match (src_is_dir, dest_is_dir) {
        (true, Some(false)) => Err(CopyError::DirToFile {
            src: src.into(),
            dest: dest.into(),
        }),
        (true, Some(_)) if contents_only => Ok(dest.to_string()),
        (true, Some(_)) => Ok(join_in(dest, Path::new(&base))),
        (true, None) => Ok(dest.to_string()),
        (false, Some(true)) => Ok(join_in(dest, Path::new(&base))),
        (false, None) if dest.ends_with('/') => Err(CopyError::DestDirMissing(dest.into())),
        (false, _) => Ok(dest.to_string()),
    }
}

/// Whether `path` in `root` is a directory (following symlinks in the root), `None` when
/// nothing is there.
fn dest_kind(root: &Root, path: &str) -> Option<bool> {
    root.stat(path, true)
        .ok()
        .map(|st| kind(&st) == FileType::Directory)
}

/// Resolves `src` in `root` (the last component followed only for `SRC/` and `SRC/.`):
/// the entry, and whether it is a directory.
fn resolve_src(root: &Root, src: &str, place: &str) -> Result<(At, bool), CopyError> {
    let not_found = || CopyError::NotFound {
        path: src.into(),
        place: place.into(),
    };
    let follow = src.ends_with('/') || src.ends_with("/.");
    let at = if follow {
        root.parent(format!("{}/.", src.trim_end_matches("/.")))
    } else {
        root.parent(src)
    };
    let at = match at {
        Ok(at) => at,
        Err(e) if e.is_not_found() => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let st = at.lstat()?.ok_or_else(not_found)?;
    Ok((at, kind(&st) == FileType::Directory))
}

/// The entry `target` in `root`, whose parent must be an existing directory.
fn dest_entry(root: &Root, target: &str) -> Result<At, CopyError> {
    let parent = Path::new(target).parent().unwrap_or(Path::new("/"));
    if dest_kind(root, &parent.to_string_lossy()) != Some(true) {
        return Err(CopyError::DestDirMissing(parent.display().to_string()));
    }
    Ok(root.parent(target)?)
}

/// Copies `src` in container `config` to `dest` on the host.
pub fn copy_from(
    c: &Containers,
    config: &ContainerConfig,
    src: &str,
    dest: &Path,
) -> Result<(), CopyError> {
    let ctr = ContainerRoot::open(c, config)?;
    let (src_at, is_dir) = resolve_src(&ctr.root, src, &format!("container {}", config.name))?;
    let host = host_root()?;
    let dest_abs = absolute_on_host(dest)?;
    let target = plan(src, is_dir, &dest_abs, dest_kind(&host, &dest_abs))?;
    copy_tree(&src_at, &dest_entry(&host, &target)?)
}

/// Copies `src` on the host to `dest` in container `config`.
pub fn copy_to(
    c: &Containers,
    config: &ContainerConfig,
    src: &Path,
    dest: &str,
) -> Result<(), CopyError> {
    let host = host_root()?;
    let src_abs = absolute_on_host(src)?;
    let (src_at, is_dir) = resolve_src(&host, &src_abs, "the host")?;
    let ctr = ContainerRoot::open(c, config)?;
    let dest = absolute_in_container(dest);
    let target = plan(&src_abs, is_dir, &dest, dest_kind(&ctr.root, &dest))?;
    copy_tree(&src_at, &dest_entry(&ctr.root, &target)?)
}

/// Appends the entry `src` (not followed; a directory with everything below it) to `tar`
/// as `name`, reading only through descriptors.
fn append<W: Write>(tar: &mut tar::Builder<W>, src: &At, name: &Path) -> Result<(), CopyError> {
    let Some(st) = src.lstat()? else {
        return Ok(()); // removed meanwhile
    };
    let mut header = tar::Header::new_gnu();
    header.set_mode(st.st_mode & 0o7777);
    header.set_uid(st.st_uid.into());
    header.set_gid(st.st_gid.into());
    header.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    header.set_size(0);
    match kind(&st) {
        FileType::Directory => {
            header.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut header, name, std::io::empty())
                .map_err(CopyError::Tar)?;
            let names = rootpath::entries(std::os::fd::AsFd::as_fd(&src.open_dir()?))
                .map_err(|e| src.io_error("list", e))?;
            for child in names {
                append(tar, &src.child(&child)?, &name.join(&child))?;
            }
        }
        FileType::RegularFile => {
            let file = src.open_read()?;
            let len = file.metadata().map_err(|e| src.io_error("stat", e))?.len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(len);
            tar.append_data(&mut header, name, file.take(len))
                .map_err(CopyError::Tar)?;
        }
        FileType::Symlink => {
            header.set_entry_type(tar::EntryType::Symlink);
            tar.append_link(&mut header, name, src.read_link()?)
                .map_err(CopyError::Tar)?;
        }
        _ => tracing::debug!(path = ?src.path(), "not a file, directory or symlink: skipped"),
    }
    Ok(())
}

/// Writes `src` in container `config` as a tar stream to `out` (`berth cp NAME:SRC -`),
/// entries named from the source's last component, as Docker's.
pub fn archive_from(
    c: &Containers,
    config: &ContainerConfig,
    src: &str,
    out: impl Write,
) -> Result<(), CopyError> {
    let ctr = ContainerRoot::open(c, config)?;
    let (src_at, _) = resolve_src(&ctr.root, src, &format!("container {}", config.name))?;
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
    append(&mut tar, &src_at, &name)?;
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
    let ctr = ContainerRoot::open(c, config)?;
    let dest = absolute_in_container(dest);
    if dest_kind(&ctr.root, &dest) != Some(true) {
        return Err(CopyError::DestNotDir(dest));
    }
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(CopyError::Tar)? {
        let mut entry = entry.map_err(CopyError::Tar)?;
        let rel = entry.path().map_err(CopyError::Tar)?.into_owned();
        let at = ctr.root.parent_creating(entry_target(&dest, &rel)?)?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                at.remove(true)?;
                at.mkdir(mode)?;
                at.set_mode(mode)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(CopyError::Tar)?
                    .ok_or_else(|| CopyError::BadEntry(rel.display().to_string()))?
                    .into_owned();
                at.remove(false)?;
                at.symlink(OsStr::new(&target))?;
            }
            t if t.is_file() => {
                at.remove(false)?;
                let mut to = at.create(mode)?;
                std::io::copy(&mut entry, &mut to).map_err(|e| at.io_error("write", e))?;
                to.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(|e| at.io_error("chmod", e))?;
            }
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
    use std::fs;

    #[test]
    fn plan_follows_docker() {
        let (dir, file, missing) = (Some(true), Some(false), None);
        // A directory into an existing directory, its contents with /., or a new one.
        assert_eq!(plan("/a/src", true, "/d", dir).unwrap(), "/d/src");
        assert_eq!(plan("/a/src/.", true, "/d", dir).unwrap(), "/d");
        assert_eq!(plan("/a/src", true, "/m", missing).unwrap(), "/m");
        assert!(matches!(
            plan("/a/src", true, "/f", file),
            Err(CopyError::DirToFile { .. })
        ));
        // A file into a directory, over a file, or to a new name; a missing dir/ fails.
        assert_eq!(plan("/a/f", false, "/d", dir).unwrap(), "/d/f");
        assert_eq!(plan("/a/f", false, "/x", file).unwrap(), "/x");
        assert_eq!(plan("/a/f", false, "/m", missing).unwrap(), "/m");
        assert!(matches!(
            plan("/a/f", false, "/m/", missing),
            Err(CopyError::DestDirMissing(_))
        ));
    }

    #[test]
    fn writes_stay_inside_the_root_through_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join(outside.strip_prefix("/").unwrap())).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(d.path().join("src"), "in").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        let host = Root::open(d.path()).unwrap();
        let r = Root::open(&root).unwrap();
        let (src, _) = resolve_src(&host, "/src", "the host").unwrap();
        copy_tree(&src, &dest_entry(&r, "/escape/x").unwrap()).unwrap();
        copy_tree(&src, &dest_entry(&r, "/up/y").unwrap()).unwrap();
        assert!(fs::read_dir(&outside).unwrap().next().is_none());
        assert_eq!(
            fs::read_to_string(root.join(outside.strip_prefix("/").unwrap()).join("x")).unwrap(),
            "in"
        );
        assert_eq!(fs::read_to_string(root.join("y")).unwrap(), "in");
        // A symlink as the last component is replaced, not written through.
        std::os::unix::fs::symlink(outside.join("z"), root.join("etc/z")).unwrap();
        copy_tree(&src, &dest_entry(&r, "/etc/z").unwrap()).unwrap();
        assert!(!outside.join("z").exists());
        assert_eq!(fs::read_to_string(root.join("etc/z")).unwrap(), "in");
        // A source symlink is copied as a link, not followed.
        let (link, is_dir) = resolve_src(&r, "/escape", "c").unwrap();
        assert!(!is_dir);
        copy_tree(&link, &dest_entry(&host, "/copied").unwrap()).unwrap();
        assert_eq!(fs::read_link(d.path().join("copied")).unwrap(), outside);
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

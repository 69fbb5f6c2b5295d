//! Named network namespaces held open by a bind mount of the namespace file
//! (`/run/berth/netns/<name>`), as `ip netns add` does, so a pod's namespace outlives its
//! processes. Containers join one by path (the OCI spec's namespace `path`); that is the
//! runtime's job, not this module's.

use std::fs::OpenOptions;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use rtnetlink::LinkUnspec;

use super::netlink::{self, link_index, NetlinkError};

/// Where berth keeps named network namespaces by default.
pub const DEFAULT_DIR: &str = "/run/berth/netns";

/// Errors creating or removing a named network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The name is empty, `.`/`..`, or contains a slash.
    #[error("network namespace name {0:?} is not a plain file name")]
    Name(String),
    /// A namespace of that name exists already.
    #[error("network namespace {0} already exists")]
    Exists(PathBuf),
    /// Creating the directory or the mount-point file failed.
    #[error("network namespace {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// unshare, mount or umount failed.
    #[error("network namespace {path}: {op}: {source}")]
    Sys {
        /// The namespace file.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// Setting up an interface inside the namespace failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The worker thread died.
    #[error("network namespace {0}: worker thread panicked")]
    Worker(PathBuf),
}

/// Creates a new, empty network namespace bound at `dir/name` and returns that path.
pub fn create(dir: &Path, name: &str) -> Result<PathBuf, NetnsError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(NetnsError::Name(name.to_string()));
    }
    berth_image::perms::private_dir(dir).map_err(|source| NetnsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(name);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists(path))
        }
        Err(source) => return Err(NetnsError::Io { path, source }),
    }
    // A fresh thread unshares its own network namespace (legal in a multi-threaded process)
    // and bind-mounts it; the namespace then lives on in the mount after the thread ends.
    let target = path.clone();
    let made = std::thread::spawn(move || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Sys {
            path: target.clone(),
            op: "unshare",
            source,
        })?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| NetnsError::Sys {
            path: target.clone(),
            op: "bind mount",
            source,
        })
    })
    .join()
    .map_err(|_| NetnsError::Worker(path.clone()))
    .and_then(|r| r);
    if let Err(e) = made {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    tracing::debug!(netns = %path.display(), "created network namespace");
    Ok(path)
}

/// Whether `path` is the network namespace the calling thread runs in (the host's, for berth):
/// attaching that would put `eth0`, an address and a default route on the host.
pub fn is_current(path: &Path) -> Result<bool, NetnsError> {
    let stat = |p: &Path| {
        std::fs::metadata(p).map_err(|source| NetnsError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let ns = stat(path)?;
    let own = stat(Path::new("/proc/thread-self/ns/net"))?;
    Ok(ns.dev() == own.dev() && ns.ino() == own.ino())
}

/// Sets `lo` up inside the namespace at `path`: all the network a `--network none` container
/// gets (a fresh namespace starts with `lo` down).
pub fn loopback_up(path: &Path) -> Result<(), NetnsError> {
    netlink::run(Some(path), |handle| async move {
        let index = link_index(&handle, "lo")
            .await?
            .ok_or_else(|| NetlinkError::LinkNotFound("lo".to_string()))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(NetlinkError::request("set lo up"))
    })?;
    Ok(())
}

/// Unmounts and deletes the namespace file at `path`; the namespace itself goes away with
/// its last process. Returns whether there was anything to remove.
pub fn remove(path: &Path) -> Result<bool, NetnsError> {
    let unmounted = match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) => true,
        Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => false,
        Err(source) => {
            return Err(NetnsError::Sys {
                path: path.to_path_buf(),
                op: "unmount",
                source,
            })
        }
    };
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(unmounted),
        Err(source) => Err(NetnsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

//! `/dev` inside a container: the default device nodes every container gets,
//! the spec's `linux.devices`, and the usual `/dev` symlinks.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::{makedev, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::sys::{SysError, Syscall};

/// Why a device node could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A device path outside /dev or not absolute.
    #[error("device {0}: path must be absolute and under /dev")]
    BadPath(String),
    /// A device type that has no node (`a`).
    #[error("device {0}: type {1:?} cannot be created")]
    BadType(String, String),
    /// The kernel refused.
    #[error(transparent)]
    Sys(#[from] SysError),
}

/// A device node to create: path inside the container, kind, numbers, mode, owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Absolute path inside the container (`/dev/null`).
    pub path: PathBuf,
    /// Character, block or fifo.
    pub kind: SFlag,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner gid.
    pub gid: Option<u32>,
}

/// The devices runc gives every container: null, zero, full, random, urandom, tty.
pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| DeviceNode {
        path: PathBuf::from(path),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: Some(0),
        gid: Some(0),
    })
    .collect()
}

/// Converts a spec device to a node, checking its path and type.
pub fn from_spec(dev: &LinuxDevice) -> Result<DeviceNode, DeviceError> {
    let name = dev.path().display().to_string();
    if !dev.path().starts_with("/dev") {
        return Err(DeviceError::BadPath(name));
    }
    let kind = match dev.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => return Err(DeviceError::BadType(name, "a".into())),
    };
    Ok(DeviceNode {
        path: dev.path().clone(),
        kind,
        major: u64::try_from(dev.major()).unwrap_or(0),
        minor: u64::try_from(dev.minor()).unwrap_or(0),
        mode: dev.file_mode().unwrap_or(0o666) & 0o7777,
        uid: dev.uid(),
        gid: dev.gid(),
    })
}

/// The full list for a spec: defaults first, then the spec's own devices, which
/// replace a default with the same path.
pub fn devices_for(spec_devices: &[LinuxDevice]) -> Result<Vec<DeviceNode>, DeviceError> {
    let mut out = default_devices();
    for dev in spec_devices {
        let node = from_spec(dev)?;
        out.retain(|d| d.path != node.path);
        out.push(node);
    }
    Ok(out)
}

/// Creates `nodes` under `rootfs`: mknod, or a bind mount of the host's node
/// when `bind` is set (inside a user namespace mknod is not allowed).
pub fn create_nodes(
    sys: &dyn Syscall,
    rootfs: &Path,
    nodes: &[DeviceNode],
    bind: bool,
) -> Result<(), DeviceError> {
    for node in nodes {
        if bind {
            let target = sys.mount_target(rootfs, &node.path, false)?;
            sys.mount(
                Some(&node.path),
                &target.path,
                Some("bind"),
                MsFlags::MS_BIND,
                None,
            )?;
            continue;
        }
        // Made by name in the parent's descriptor: nothing on the way is followed out.
        let parent =
            sys.mount_target(rootfs, node.path.parent().unwrap_or(Path::new("/")), true)?;
        let dest = parent.path.join(node.path.file_name().unwrap_or_default());
        if sys.exists(&dest) {
            continue;
        }
        sys.mknod(
            &dest,
            node.kind,
            Mode::from_bits_truncate(node.mode),
            makedev(node.major, node.minor),
        )?;
        sys.chown(&dest, node.uid, node.gid)?;
    }
    Ok(())
}

/// The `/dev` symlinks of runc: fd, stdin, stdout, stderr, ptmx and core.
pub fn create_symlinks(sys: &dyn Syscall, rootfs: &Path) -> Result<(), DeviceError> {
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    let dev = sys.mount_target(rootfs, Path::new("/dev"), true)?;
    for (target, link) in links {
        sys.symlink(Path::new(target), &dev.path.join(link))?;
    }
    if sys.exists(Path::new("/proc/kcore")) {
        sys.symlink(Path::new("/proc/kcore"), &dev.path.join("core"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn spec_devices_replace_defaults_with_the_same_path() {
        let dev = LinuxDeviceBuilder::default()
            .path("/dev/null")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .file_mode(0o600u32)
            .build()
            .unwrap();
        let list = devices_for(&[dev]).unwrap();
        let nulls: Vec<_> = list
            .iter()
            .filter(|d| d.path == Path::new("/dev/null"))
            .collect();
        assert_eq!(nulls.len(), 1);
        assert_eq!(nulls[0].mode, 0o600);
        assert_eq!(list.len(), 6);
    }

    #[test]
    fn devices_outside_dev_are_refused() {
        let dev = LinuxDeviceBuilder::default()
            .path("/etc/passwd")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .build()
            .unwrap();
        assert!(matches!(from_spec(&dev), Err(DeviceError::BadPath(_))));
    }
}

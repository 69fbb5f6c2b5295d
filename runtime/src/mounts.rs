//! The OCI `mounts` list: option strings to mount(2) flags, and mounting one
//! entry inside the container's root filesystem.

use std::path::Path;

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::sys::{SysError, Syscall};

/// Why a mount could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mount has an option runc does not know either.
    #[error("mount {destination}: unsupported option {option:?}")]
    UnsupportedOption {
        /// The mount's destination.
        destination: String,
        /// The option.
        option: String,
    },
    /// The destination is relative or otherwise unusable.
    #[error("mount destination {0:?} must be an absolute path")]
    RelativeDestination(String),
    /// A bind mount without a source.
    #[error("bind mount {0}: no source")]
    MissingSource(String),
    /// The kernel refused.
    #[error(transparent)]
    Sys(#[from] SysError),
}

/// Mount flags, propagation flags and filesystem data parsed from OCI options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount itself (`MS_RDONLY`, `MS_NOSUID`, `MS_BIND`, ...).
    pub flags: MsFlags,
    /// Propagation changes applied after mounting, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options joined with commas (`mode=755,size=65536k`).
    pub data: String,
}

/// Parses a mount's option list the way runc does: known flags set or clear
/// bits, propagation keywords are kept apart, anything else is filesystem data.
pub fn parse_options(destination: &str, options: &[String]) -> Result<MountOptions, MountError> {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
    };
    let mut data = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                out.propagation
                    .push(propagation_flags(opt).unwrap_or(MsFlags::empty()));
                continue;
            }
            // Options runc accepts that change nothing for a mount(2) call here.
            "tmpcopyup" | "rro" | "rrw" | "rnosuid" | "rnodev" | "rnoexec" | "idmap" | "ridmap" => {
                return Err(MountError::UnsupportedOption {
                    destination: destination.to_string(),
                    option: opt.clone(),
                })
            }
            _ => {
                data.push(opt.as_str());
                continue;
            }
        };
        out.flags.insert(set);
        out.flags.remove(clear);
    }
    out.data = data.join(",");
    Ok(out)
}

/// The mount(2) flags for a propagation keyword (`rslave` -> `MS_SLAVE|MS_REC`).
pub fn propagation_flags(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Mounts one OCI mount entry under `rootfs` (runc's `mountToRootfs` for the
/// common types; `cgroup` mounts are handled by the caller). The destination is
/// resolved in the rootfs by the kernel and mounted on through its descriptor
/// ([`Syscall::mount_target`]); remounts resolve it again to reach the new mount.
pub fn mount_entry(sys: &dyn Syscall, rootfs: &Path, m: &Mount) -> Result<(), MountError> {
    let dest_str = m.destination().display().to_string();
    let dest = m.destination();
    if !dest.is_absolute() {
        return Err(MountError::RelativeDestination(dest_str));
    }
    let opts = parse_options(&dest_str, m.options().as_deref().unwrap_or(&[]))?;
    let typ = m.typ().as_deref().unwrap_or("");
    let is_bind = typ == "bind" || opts.flags.contains(MsFlags::MS_BIND);
    let dir = if is_bind {
        let source = m
            .source()
            .as_deref()
            .ok_or_else(|| MountError::MissingSource(dest_str.clone()))?;
        let dir = sys.is_dir(source);
        let target = sys.mount_target(rootfs, dest, dir)?;
        let bind_flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        sys.mount(Some(source), &target.path, Some("bind"), bind_flags, None)?;
        // A bind mount ignores other flags; they take effect on a remount.
        let rest = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !rest.is_empty() {
            let target = sys.mount_target(rootfs, dest, dir)?;
            sys.mount(
                None,
                &target.path,
                None,
                rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None,
            )?;
        }
        dir
    } else {
        let target = sys.mount_target(rootfs, dest, true)?;
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let source = m.source().as_deref().unwrap_or(Path::new(typ));
        sys.mount(Some(source), &target.path, Some(typ), opts.flags, data)?;
        true
    };
    if !opts.propagation.is_empty() {
        let target = sys.mount_target(rootfs, dest, dir)?;
        for p in &opts.propagation {
            sys.mount(None, &target.path, None, *p, None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse_options("/x", &list).unwrap()
    }

    #[test]
    fn flags_and_data_are_split() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(o.propagation.is_empty());
    }

    #[test]
    fn later_options_clear_earlier_ones() {
        let o = opts(&["ro", "rw", "nodev", "dev", "rbind"]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    }

    #[test]
    fn propagation_is_kept_apart() {
        let o = opts(&["rbind", "rslave", "private"]);
        assert_eq!(
            o.propagation,
            vec![MsFlags::MS_SLAVE | MsFlags::MS_REC, MsFlags::MS_PRIVATE]
        );
    }

    #[test]
    fn idmapped_mounts_are_refused_by_name() {
        let err = parse_options("/data", &["idmap".to_string()]).unwrap_err();
        assert_eq!(err.to_string(), "mount /data: unsupported option \"idmap\"");
    }
}

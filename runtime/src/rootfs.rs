//! Building a container's root filesystem inside its new mount namespace:
//! propagation, the rootfs bind, the spec's mounts in order, devices, then
//! `pivot_root` (or `--no-pivot`), and masked and read-only paths afterwards.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::devices::{self, DeviceError, DeviceNode};
use crate::mounts::{self, MountError};
use crate::sys::{SysError, Syscall};

/// Why the root filesystem could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// One of the spec's mounts failed.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// A device node failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The kernel refused something else.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// `linux.rootfsPropagation` is not a propagation keyword.
    #[error("rootfs propagation {0:?} is not one of shared, slave, private, unbindable (r-prefixed or not)")]
    BadPropagation(String),
}

/// Everything the rootfs setup needs, taken from the validated spec.
#[derive(Debug, Clone)]
pub struct RootfsConfig {
    /// Host path of the root filesystem.
    pub rootfs: PathBuf,
    /// The spec's mounts, in order.
    pub mounts: Vec<Mount>,
    /// `linux.rootfsPropagation`, if set.
    pub propagation: Option<String>,
    /// `root.readonly`.
    pub readonly: bool,
    /// `--no-pivot`: move the rootfs over / and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Default devices plus `linux.devices`.
    pub devices: Vec<DeviceNode>,
    /// Bind-mount device nodes from the host instead of mknod (user namespaces).
    pub bind_devices: bool,
    /// `linux.maskedPaths`.
    pub masked_paths: Vec<String>,
    /// `linux.readonlyPaths`.
    pub readonly_paths: Vec<String>,
    /// For a `cgroup` mount on cgroup v1: (hierarchy name, host dir of our cgroup).
    pub cgroup_binds: Vec<(String, PathBuf)>,
}

/// Mounts everything under the rootfs, while the host's `/` is still visible.
pub fn prepare(sys: &dyn Syscall, cfg: &RootfsConfig) -> Result<(), RootfsError> {
    let propagation = match cfg.propagation.as_deref() {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(name) => mounts::propagation_flags(name)
            .ok_or_else(|| RootfsError::BadPropagation(name.to_string()))?,
    };
    sys.mount(None, Path::new("/"), None, propagation, None)?;
    sys.mount(
        Some(&cfg.rootfs),
        &cfg.rootfs,
        Some("bind"),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    // pivot_root refuses a shared new root; keep the rootfs mount itself private.
    sys.mount(None, &cfg.rootfs, None, MsFlags::MS_PRIVATE, None)?;
    for m in &cfg.mounts {
        if m.typ().as_deref() == Some("cgroup") {
            mount_cgroup(sys, cfg, m)?;
        } else {
            mounts::mount_entry(sys, &cfg.rootfs, m)?;
        }
    }
    devices::create_nodes(sys, &cfg.rootfs, &cfg.devices, cfg.bind_devices)?;
    devices::create_symlinks(sys, &cfg.rootfs)?;
    Ok(())
}

/// A cgroup v1 view: a tmpfs with the container's own cgroup of each hierarchy
/// bind-mounted under its name, read-only when the mount asks for `ro`.
fn mount_cgroup(sys: &dyn Syscall, cfg: &RootfsConfig, m: &Mount) -> Result<(), RootfsError> {
    let dest_name = m.destination().display().to_string();
    let opts = mounts::parse_options(&dest_name, m.options().as_deref().unwrap_or(&[]))?;
    let dest = m.destination();
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    sys.mount(
        Some(Path::new("tmpfs")),
        &sys.mount_target(&cfg.rootfs, dest, true)?.path,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )?;
    for (name, source) in &cfg.cgroup_binds {
        let sub = dest.join(name);
        sys.mount(
            Some(source),
            &sys.mount_target(&cfg.rootfs, &sub, true)?.path,
            Some("bind"),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        let ro = opts.flags & MsFlags::MS_RDONLY;
        sys.mount(
            None,
            &sys.mount_target(&cfg.rootfs, &sub, true)?.path,
            None,
            base | ro | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None,
        )?;
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        sys.mount(
            None,
            &sys.mount_target(&cfg.rootfs, dest, true)?.path,
            None,
            base | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

/// Makes the rootfs the process's `/`.
pub fn enter(sys: &dyn Syscall, cfg: &RootfsConfig) -> Result<(), RootfsError> {
    if cfg.no_pivot {
        sys.move_root(&cfg.rootfs)?;
    } else {
        sys.pivot_root(&cfg.rootfs)?;
    }
    Ok(())
}

/// After the pivot: mask paths, make paths and (if asked) the root read-only.
pub fn finalize(sys: &dyn Syscall, cfg: &RootfsConfig) -> Result<(), RootfsError> {
    for path in &cfg.masked_paths {
        let path = Path::new(path);
        if !sys.exists(path) {
            continue;
        }
        if sys.is_dir(path) {
            sys.mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )?;
        } else {
            sys.mount(
                Some(Path::new("/dev/null")),
                path,
                Some("bind"),
                MsFlags::MS_BIND,
                None,
            )?;
        }
    }
    for path in &cfg.readonly_paths {
        let path = Path::new(path);
        if !sys.exists(path) {
            continue;
        }
        sys.mount(
            Some(path),
            path,
            Some("bind"),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        sys.mount(
            None,
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None,
        )?;
    }
    if cfg.readonly {
        sys.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashSet;

    use nix::mount::MntFlags;
    use nix::sys::stat::{Mode, SFlag};
    use oci_spec::runtime::MountBuilder;

    /// Records every call; paths in `dirs` exist as directories, `files` as files.
    #[derive(Default)]
    struct Recorder {
        calls: RefCell<Vec<String>>,
        dirs: HashSet<PathBuf>,
        files: HashSet<PathBuf>,
    }

    impl Recorder {
        fn log(&self, s: String) -> Result<(), SysError> {
            self.calls.borrow_mut().push(s);
            Ok(())
        }
    }

    impl Syscall for Recorder {
        fn mount(
            &self,
            source: Option<&Path>,
            target: &Path,
            fstype: Option<&str>,
            flags: MsFlags,
            data: Option<&str>,
        ) -> Result<(), SysError> {
            self.log(format!(
                "mount {:?} {} {:?} {:?} {:?}",
                source.map(|s| s.display().to_string()),
                target.display(),
                fstype,
                flags,
                data
            ))
        }
        fn umount(&self, target: &Path, _: MntFlags) -> Result<(), SysError> {
            self.log(format!("umount {}", target.display()))
        }
        fn mkdir_all(&self, path: &Path) -> Result<(), SysError> {
            self.log(format!("mkdir {}", path.display()))
        }
        fn touch(&self, path: &Path) -> Result<(), SysError> {
            self.log(format!("touch {}", path.display()))
        }
        fn symlink(&self, target: &Path, link: &Path) -> Result<(), SysError> {
            self.log(format!(
                "symlink {} -> {}",
                link.display(),
                target.display()
            ))
        }
        fn mknod(&self, path: &Path, _: SFlag, mode: Mode, _: u64) -> Result<(), SysError> {
            self.log(format!("mknod {} {:o}", path.display(), mode.bits()))
        }
        fn chown(&self, path: &Path, _: Option<u32>, _: Option<u32>) -> Result<(), SysError> {
            self.log(format!("chown {}", path.display()))
        }
        fn write_file(&self, path: &Path, data: &str) -> Result<(), SysError> {
            self.log(format!("write {} {data}", path.display()))
        }
        fn sethostname(&self, name: &str) -> Result<(), SysError> {
            self.log(format!("hostname {name}"))
        }
        fn setdomainname(&self, name: &str) -> Result<(), SysError> {
            self.log(format!("domainname {name}"))
        }
        fn pivot_root(&self, rootfs: &Path) -> Result<(), SysError> {
            self.log(format!("pivot_root {}", rootfs.display()))
        }
        fn move_root(&self, rootfs: &Path) -> Result<(), SysError> {
            self.log(format!("move_root {}", rootfs.display()))
        }
        fn exists(&self, path: &Path) -> bool {
            self.dirs.contains(path) || self.files.contains(path)
        }
        fn is_dir(&self, path: &Path) -> bool {
            self.dirs.contains(path)
        }
        fn mount_target(
            &self,
            rootfs: &Path,
            dest: &Path,
            dir: bool,
        ) -> Result<crate::sys::MountTarget, SysError> {
            let path = rootfs.join(dest.strip_prefix("/").unwrap_or(dest));
            let verb = if dir { "mkdir" } else { "touch" };
            self.log(format!("{verb} {}", path.display()))?;
            Ok(crate::sys::MountTarget { path, fd: None })
        }
    }

    fn config() -> RootfsConfig {
        RootfsConfig {
            rootfs: PathBuf::from("/b/rootfs"),
            mounts: vec![
                MountBuilder::default()
                    .destination("/proc")
                    .typ("proc")
                    .source("proc")
                    .build()
                    .unwrap(),
                MountBuilder::default()
                    .destination("/data")
                    .typ("bind")
                    .source("/host/data")
                    .options(vec!["rbind".to_string(), "ro".to_string()])
                    .build()
                    .unwrap(),
            ],
            propagation: None,
            readonly: true,
            no_pivot: false,
            devices: devices::default_devices(),
            bind_devices: false,
            masked_paths: vec!["/proc/kcore".into(), "/proc/acpi".into(), "/absent".into()],
            readonly_paths: vec!["/proc/sys".into()],
            cgroup_binds: vec![],
        }
    }

    #[test]
    fn mounts_come_in_spec_order_after_the_rootfs_bind() {
        let mut sys = Recorder::default();
        sys.dirs.insert(PathBuf::from("/host/data"));
        prepare(&sys, &config()).unwrap();
        let calls = sys.calls.borrow();
        let mounts: Vec<&String> = calls.iter().filter(|c| c.starts_with("mount")).collect();
        assert!(mounts[0].contains("MS_REC | MS_SLAVE"), "{}", mounts[0]);
        assert!(
            mounts[1].contains("Some(\"/b/rootfs\") /b/rootfs Some(\"bind\")"),
            "{}",
            mounts[1]
        );
        assert!(
            mounts[3].contains("/b/rootfs/proc Some(\"proc\")"),
            "{}",
            mounts[3]
        );
        assert!(
            mounts[4].contains("\"/host/data\") /b/rootfs/data"),
            "{}",
            mounts[4]
        );
        assert!(mounts[5].contains("MS_RDONLY") && mounts[5].contains("MS_REMOUNT"));
        assert!(calls.iter().any(|c| c == "mknod /b/rootfs/dev/null 666"));
        assert!(calls
            .iter()
            .any(|c| c == "symlink /b/rootfs/dev/ptmx -> pts/ptmx"));
    }

    #[test]
    fn masks_use_tmpfs_for_dirs_and_dev_null_for_files_and_skip_absent_paths() {
        let mut sys = Recorder::default();
        sys.files.insert(PathBuf::from("/proc/kcore"));
        sys.dirs.insert(PathBuf::from("/proc/acpi"));
        sys.dirs.insert(PathBuf::from("/proc/sys"));
        finalize(&sys, &config()).unwrap();
        let calls = sys.calls.borrow();
        assert!(calls[0].starts_with("mount Some(\"/dev/null\") /proc/kcore"));
        assert!(calls[1].starts_with("mount Some(\"tmpfs\") /proc/acpi"));
        assert!(!calls.iter().any(|c| c.contains("/absent")));
        assert!(calls[3].contains("MS_RDONLY"), "{}", calls[3]);
        assert!(calls.last().unwrap().starts_with("mount None / "));
    }

    #[test]
    fn unknown_rootfs_propagation_is_an_error() {
        let sys = Recorder::default();
        let mut cfg = config();
        cfg.propagation = Some("sideways".into());
        assert!(matches!(
            prepare(&sys, &cfg),
            Err(RootfsError::BadPropagation(_))
        ));
    }
}

//! The real [`Syscall`] implementation over nix.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fchmodat, mknod, FchmodatFlags, Mode, SFlag};
use nix::unistd::{chdir, chroot, fchdir, Gid, Uid};

use super::{MountTarget, SysError, Syscall};

/// The kernel, through nix.
#[derive(Debug, Default, Clone, Copy)]
pub struct Linux;

impl Syscall for Linux {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), SysError> {
        mount(source, target, fstype, flags, data).map_err(|e| SysError::new("mount", target, e))
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> Result<(), SysError> {
        umount2(target, flags).map_err(|e| SysError::new("umount", target, e))
    }

    fn mkdir_all(&self, path: &Path) -> Result<(), SysError> {
        fs::create_dir_all(path).map_err(|e| SysError::io("mkdir", path, e))
    }

    fn touch(&self, path: &Path) -> Result<(), SysError> {
        if path.symlink_metadata().is_ok() {
            return Ok(());
        }
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(OFlag::O_CLOEXEC.bits())
            .open(path)
            .map(drop)
            .map_err(|e| SysError::io("create", path, e))
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), SysError> {
        match std::os::unix::fs::symlink(target, link) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other.map_err(|e| SysError::io("symlink", link, e)),
        }
    }

    fn mknod(&self, path: &Path, kind: SFlag, mode: Mode, dev: u64) -> Result<(), SysError> {
        mknod(path, kind, mode, dev).map_err(|e| SysError::new("mknod", path, e))?;
        // mknod's mode is masked by the caller's umask; devices such as /dev/null
        // must get exactly the spec's mode (0666), as runc sets it.
        fchmodat(None, path, mode, FchmodatFlags::FollowSymlink)
            .map_err(|e| SysError::new("chmod", path, e))
    }

    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), SysError> {
        nix::unistd::chown(path, uid.map(Uid::from_raw), gid.map(Gid::from_raw))
            .map_err(|e| SysError::new("chown", path, e))
    }

    fn write_file(&self, path: &Path, data: &str) -> Result<(), SysError> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_CLOEXEC.bits())
            .open(path)
            .map_err(|e| SysError::io("open", path, e))?;
        file.write_all(data.as_bytes())
            .map_err(|e| SysError::io("write", path, e))
    }

    fn sethostname(&self, name: &str) -> Result<(), SysError> {
        nix::unistd::sethostname(name).map_err(|e| SysError::new("sethostname", Path::new(name), e))
    }

    fn setdomainname(&self, name: &str) -> Result<(), SysError> {
        let cname = std::ffi::CString::new(name).map_err(|_| {
            SysError::io(
                "setdomainname",
                Path::new(name),
                std::io::ErrorKind::InvalidInput.into(),
            )
        })?;
        // SAFETY: `cname` holds `name.len()` bytes (plus a NUL) and lives across the
        // call; setdomainname only reads that many bytes from it.
        let rc = unsafe { libc::setdomainname(cname.as_ptr(), name.len()) };
        if rc != 0 {
            return Err(SysError::new(
                "setdomainname",
                Path::new(name),
                nix::Error::last(),
            ));
        }
        Ok(())
    }

    fn pivot_root(&self, rootfs: &Path) -> Result<(), SysError> {
        // runc's trick: pivot_root(".", ".") stacks the old root under the new one,
        // then the old root is lazily unmounted, with no temp dir. The old tree is
        // made private first (crun does too): no unmount reaches the host, and the
        // detach skips walking the host's peer groups as a slave tree needs.
        let old_root = fs::File::open("/").map_err(|e| SysError::io("open", Path::new("/"), e))?;
        chdir(rootfs).map_err(|e| SysError::new("chdir", rootfs, e))?;
        nix::unistd::pivot_root(".", ".").map_err(|e| SysError::new("pivot_root", rootfs, e))?;
        fchdir(std::os::fd::AsRawFd::as_raw_fd(&old_root))
            .map_err(|e| SysError::new("fchdir", Path::new("/"), e))?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| SysError::new("mount", Path::new("old root"), e))?;
        umount2(".", MntFlags::MNT_DETACH)
            .map_err(|e| SysError::new("umount", Path::new("old root"), e))?;
        chdir("/").map_err(|e| SysError::new("chdir", Path::new("/"), e))
    }

    fn move_root(&self, rootfs: &Path) -> Result<(), SysError> {
        chdir(rootfs).map_err(|e| SysError::new("chdir", rootfs, e))?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| SysError::new("mount", rootfs, e))?;
        chroot(".").map_err(|e| SysError::new("chroot", rootfs, e))?;
        chdir("/").map_err(|e| SysError::new("chdir", Path::new("/"), e))
    }

    fn exists(&self, path: &Path) -> bool {
        path.symlink_metadata().is_ok()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn mount_target(&self, rootfs: &Path, dest: &Path, dir: bool) -> Result<MountTarget, SysError> {
        let fail = |e: berth_rootpath::RootPathError| {
            let kind = e.raw_os_error().map_or(std::io::ErrorKind::Other, |n| {
                std::io::Error::from_raw_os_error(n).kind()
            });
            SysError::io("resolve", dest, std::io::Error::new(kind, e.to_string()))
        };
        let root = berth_rootpath::Root::open(rootfs).map_err(fail)?;
        let fd = if dir {
            root.mkdir_all(dest.as_os_str())
        } else {
            root.create_file(dest.as_os_str(), 0o644)
        }
        .map_err(fail)?;
        Ok(MountTarget {
            path: berth_rootpath::proc_path(&fd),
            fd: Some(fd),
        })
    }
}

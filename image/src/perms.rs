//! Owner-only directories: berth's store (`$ROOT`) and its run directories (`/run/berth*`)
//! hold images' setuid binaries and device nodes, containers' env and logs and the daemon's
//! Secrets, so no other user may reach into them (Docker keeps its data root 0710/0700).
//!
//! Root-owned paths below a 0700 directory still work for containers whatever user they run
//! as: overlay reaches its layers with the mounter's credentials, bind mounts resolve their
//! source at mount time, and a container reaches its rootfs through `pivot_root`, never
//! through the host path.

use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Makes `dir` (and any missing parent) with mode 0700, or takes group and other access
/// away from it when it exists, so a store or run directory made by an older berth is
/// tightened on its next use.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    tighten(dir)
}

/// Takes group and other access away from `dir` if it exists (keeping its owner's bits).
pub fn tighten(dir: &Path) -> io::Result<()> {
    let mode = match fs::metadata(dir) {
        Ok(meta) => meta.permissions().mode(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if mode & 0o077 == 0 {
        return Ok(());
    }
    fs::set_permissions(dir, Permissions::from_mode(mode & 0o7700))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn makes_missing_dirs_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
    }

    #[test]
    fn tightens_an_existing_open_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        tighten(&tmp.path().join("missing")).unwrap();
    }
}

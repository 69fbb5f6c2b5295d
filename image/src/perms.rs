//! Owner-only directories: berth's store (`$ROOT`) and its run directories (`/run/berth*`)
//! hold images' setuid binaries and device nodes, containers' env and logs and the daemon's
//! Secrets, so no other user may reach into them (Docker keeps its data root 0710/0700).
//!
//! Root-owned paths below a 0700 directory still work for containers whatever user they run
//! as: overlay reaches its layers with the mounter's credentials, bind mounts resolve their
//! source at mount time, and a container reaches its rootfs through `pivot_root`, never
//! through the host path.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
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

/// Writes `bytes` to `path` as an owner-only (0600) file that appears whole: written to
/// `.<name>.tmp` beside it, then renamed over it. For records that hold a process's env
/// (passwords, tokens) or what a pod was given.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "a file path has no file name")
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| fs::rename(&tmp, path))
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

    #[test]
    fn private_files_are_0600_and_replace_the_old_one_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o600);
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }
}

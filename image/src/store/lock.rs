//! The store's locks: what each one guards and for how long.
//!
//! - `$ROOT/lock` is the gc lock. Every process that writes content, or uses
//!   content it has not yet recorded (a pull, a build, a load, a container
//!   being created), holds it shared through a [`Lease`]; `berth system gc`
//!   alone takes it exclusively ([`GcLock`]). Shared holders never wait for
//!   one another, so a slow pull delays nothing but gc.
//! - `$ROOT/ingest/<alg>-<hex>.lock` is held by the one writer of that blob
//!   ([`PathLock`], see [`Store::ingest`]); a second writer of the same
//!   digest waits for it and then finds the blob in place.
//! - `$ROOT/snapshots/<chain-hex>.lock` is held while that snapshot is
//!   unpacked; a second unpacker waits and then finds it committed.
//! - `$ROOT/images.lock` serialises the read-modify-write of image records
//!   (`tag`, `rmi`) for the few milliseconds it takes ([`RecordsLock`]).
//!
//! Readers (`images`, `inspect`) take none of these: every write appears by
//! an atomic rename, so they see each file whole or not at all.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{io_err, Store, StoreError};

/// Opens (creating) a lock file, readable by its owner only.
fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
}

/// An exclusive flock on a file that exists only while someone holds it:
/// the holder unlinks it before releasing it, so no lock file outlives its
/// use (a process killed while holding one leaves the file, which the next
/// holder takes over and removes).
#[derive(Debug)]
pub(crate) struct PathLock {
    path: PathBuf,
    // Declared after `path` and closed after `Drop::drop` unlinked the path:
    // the lock is released only once the name is gone.
    _file: File,
}

impl PathLock {
    /// Waits for and takes the lock at `path`.
    pub(crate) fn acquire(path: PathBuf) -> io::Result<PathLock> {
        loop {
            let file = open_lock_file(&path)?;
            fs2::FileExt::lock_exclusive(&file)?;
            if Self::still_named(&file, &path)? {
                return Ok(PathLock { path, _file: file });
            }
            // The holder we waited for unlinked the file: lock the one there now.
        }
    }

    /// Takes the lock at `path` if nobody holds it.
    pub(crate) fn try_acquire(path: PathBuf) -> io::Result<Option<PathLock>> {
        let file = open_lock_file(&path)?;
        if fs2::FileExt::try_lock_exclusive(&file).is_err() {
            return Ok(None);
        }
        if !Self::still_named(&file, &path)? {
            return Ok(None);
        }
        Ok(Some(PathLock { path, _file: file }))
    }

    /// Whether `path` still names the locked file (and not a newer one, or nothing).
    fn still_named(file: &File, path: &Path) -> io::Result<bool> {
        let held = file.metadata()?;
        Ok(match fs::metadata(path) {
            Ok(now) => now.ino() == held.ino() && now.dev() == held.dev(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        })
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove lock file");
        }
    }
}

/// The store's gc lock held shared: while any lease is held, `gc` does not
/// run, so nothing this process writes or reads is collected before it is
/// recorded. Leases never wait for one another, only for a running gc.
/// Released on drop (and by the kernel when the process dies).
#[derive(Debug)]
pub struct Lease {
    _file: File,
}

/// The store's gc lock held exclusively: no lease is held by anyone.
#[derive(Debug)]
pub struct GcLock {
    _file: File,
}

/// The lock that serialises read-modify-write of image records.
#[derive(Debug)]
pub struct RecordsLock {
    _file: File,
}

impl Store {
    fn open_lock(&self, name: &str) -> Result<(File, PathBuf), StoreError> {
        let path = self.root.join(name);
        let file = open_lock_file(&path).map_err(io_err("open lock", &path))?;
        Ok((file, path))
    }

    /// Takes a lease on the store's content (the gc lock, shared): for
    /// anything that writes blobs, snapshots or records, or reads content it
    /// goes on to use (a container's rootfs). Waits only while gc runs.
    pub fn lease(&self) -> Result<Lease, StoreError> {
        let (file, path) = self.open_lock("lock")?;
        fs2::FileExt::lock_shared(&file).map_err(io_err("lock", &path))?;
        Ok(Lease { _file: file })
    }

    /// Takes the gc lock exclusively, waiting until no lease is held: for
    /// `gc`, the only operation that removes content.
    pub fn lock_gc(&self) -> Result<GcLock, StoreError> {
        let (file, path) = self.open_lock("lock")?;
        fs2::FileExt::lock_exclusive(&file).map_err(io_err("lock", &path))?;
        Ok(GcLock { _file: file })
    }

    /// Takes the gc lock exclusively if no lease is held now.
    pub fn try_lock_gc(&self) -> Result<Option<GcLock>, StoreError> {
        let (file, _) = self.open_lock("lock")?;
        Ok(fs2::FileExt::try_lock_exclusive(&file)
            .ok()
            .map(|()| GcLock { _file: file }))
    }

    /// Takes the records lock: hold it across a read of image records and
    /// the writes that depend on it (`tag`, `rmi`), and no longer.
    pub fn lock_records(&self) -> Result<RecordsLock, StoreError> {
        let (file, path) = self.open_lock("images.lock")?;
        fs2::FileExt::lock_exclusive(&file).map_err(io_err("lock", &path))?;
        Ok(RecordsLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn path_lock_excludes_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = PathLock::acquire(path.clone()).unwrap();
        assert!(PathLock::try_acquire(path.clone()).unwrap().is_none());
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let lock = PathLock::acquire(p).unwrap();
            tx.send(()).unwrap();
            drop(lock);
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "a second holder got the lock while the first held it"
        );
        drop(held);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
        assert!(!path.exists(), "the last holder removes the lock file");
    }

    #[test]
    fn path_lock_takes_over_a_file_left_by_a_dead_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.lock");
        fs::write(&path, b"").unwrap();
        let lock = PathLock::try_acquire(path.clone()).unwrap();
        assert!(lock.is_some());
        drop(lock);
        assert!(!path.exists());
    }

    #[test]
    fn leases_share_and_gc_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("root")).unwrap();
        let a = s.lease().unwrap();
        let b = s.lease().unwrap();
        let (tx, rx) = mpsc::channel();
        let s2 = s.clone();
        let gc = std::thread::spawn(move || {
            let g = s2.lock_gc().unwrap();
            tx.send(()).unwrap();
            drop(g);
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(a);
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(b);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        gc.join().unwrap();
        let held = s.lease().unwrap();
        assert!(s.try_lock_gc().unwrap().is_none());
        drop(held);
        assert!(s.try_lock_gc().unwrap().is_some());
        let _records = s.lock_records().unwrap();
        drop(s.lease().unwrap());
    }
}

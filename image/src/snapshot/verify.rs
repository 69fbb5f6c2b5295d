//! Content fingerprints of unpacked snapshot trees, so a later check can tell
//! a tampered or partly deleted snapshot from the one that was committed.
//!
//! The fingerprint is a sha256 over a sorted walk of the tree: for every entry
//! its relative path, type, permission bits, owner, xattrs and content (file
//! bytes, link target or device number). Times are left out: they are not
//! content, and reading a tree must not change its fingerprint.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, Hasher};

/// A failure while walking a snapshot tree.
#[derive(Debug, thiserror::Error)]
#[error("fingerprinting {path}: {source}")]
pub struct VerifyError {
    /// The path being read.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// Fingerprint and total regular-file bytes of the tree at `root`.
pub fn fingerprint(root: &Path) -> Result<(Digest, u64), VerifyError> {
    let mut walk = Walk {
        root,
        hasher: Hasher::new(Algorithm::Sha256),
        size: 0,
        links: HashMap::new(),
    };
    walk.visit(root)?;
    Ok((walk.hasher.finish(), walk.size))
}

/// State of one fingerprint walk.
struct Walk<'a> {
    root: &'a Path,
    hasher: Hasher,
    size: u64,
    /// Files with several links: (dev, inode) to the first path seen, so a
    /// busybox with 400 links to one binary is read once.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Walk<'_> {
    fn visit(&mut self, path: &Path) -> Result<(), VerifyError> {
        let root = self.root;
        let err = |source| VerifyError {
            path: path.to_path_buf(),
            source,
        };
        let meta = path.symlink_metadata().map_err(err)?;
        let h = &mut self.hasher;
        let rel = path.strip_prefix(root).unwrap_or(path);
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            b'd'
        } else if ft.is_symlink() {
            b'l'
        } else if ft.is_char_device() {
            b'c'
        } else if ft.is_block_device() {
            b'b'
        } else if ft.is_fifo() {
            b'p'
        } else if ft.is_socket() {
            b's'
        } else {
            b'f'
        };
        h.update(rel.as_os_str().as_bytes());
        h.update(&[0, kind]);
        let mode = if ft.is_symlink() {
            0
        } else {
            meta.mode() & 0o7777
        };
        h.update(format!(" {mode:o} {}:{}", meta.uid(), meta.gid()).as_bytes());
        let mut names: Vec<_> = xattr::list(path).map_err(err)?.collect();
        names.sort();
        for name in names {
            let value = xattr::get(path, &name).map_err(err)?.unwrap_or_default();
            h.update(b" x:");
            h.update(name.as_bytes());
            h.update(b"=");
            h.update(hex::encode(value).as_bytes());
        }
        match kind {
            b'f' if meta.nlink() > 1 && self.links.contains_key(&(meta.dev(), meta.ino())) => {
                let first = &self.links[&(meta.dev(), meta.ino())];
                h.update(b" = ");
                h.update(first.as_os_str().as_bytes());
            }
            b'f' => {
                if meta.nlink() > 1 {
                    self.links
                        .insert((meta.dev(), meta.ino()), rel.to_path_buf());
                }
                self.size += meta.len();
                h.update(format!(" {}:", meta.len()).as_bytes());
                let mut file = fs::File::open(path).map_err(err)?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = file.read(&mut buf).map_err(err)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
            b'l' => {
                let target = fs::read_link(path).map_err(err)?;
                h.update(b" -> ");
                h.update(target.as_os_str().as_bytes());
            }
            b'c' | b'b' => h.update(format!(" {}", meta.rdev()).as_bytes()),
            _ => {}
        }
        h.update(b"\n");
        if kind == b'd' {
            let mut children: Vec<PathBuf> = fs::read_dir(path)
                .map_err(err)?
                .map(|e| e.map(|e| e.path()))
                .collect::<io::Result<_>>()
                .map_err(err)?;
            children.sort();
            for child in children {
                self.visit(&child)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_content_not_with_times() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/f"), b"one").unwrap();
        std::os::unix::fs::symlink("d/f", dir.path().join("l")).unwrap();
        let (a, size) = fingerprint(dir.path()).unwrap();
        assert_eq!(size, 3);
        let t = filetime::FileTime::from_unix_time(12345, 0);
        filetime::set_file_mtime(dir.path().join("d/f"), t).unwrap();
        assert_eq!(fingerprint(dir.path()).unwrap().0, a);
        fs::write(dir.path().join("d/f"), b"two").unwrap();
        assert_ne!(fingerprint(dir.path()).unwrap().0, a);
    }
}

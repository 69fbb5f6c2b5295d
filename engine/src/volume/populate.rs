//! Docker's copy-up: the first time an empty volume is mounted over a directory the image
//! has content in, that content (owners, modes, times, symlinks, hard links, xattrs) is
//! copied into the volume, and the volume's root takes the directory's owner and mode.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::snapshot::copy::CopyError;

/// Why a volume could not be filled from the image; the caller wraps it with the volume's name.
#[derive(Debug, thiserror::Error)]
pub(super) enum PopulateError {
    /// The volume's directory could not be read, or given the image directory's owner and mode.
    #[error("{}: {source}", path.display())]
    Io {
        /// The volume's data directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Copying the image's content into the volume failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
}

/// Copies directory `source` into `data` when `data` is empty and `source` is a directory.
pub(super) fn populate_if_empty(data: &Path, source: &Path) -> Result<(), PopulateError> {
    let Ok(meta) = fs::metadata(source) else {
        return Ok(()); // nothing in the image there
    };
    if !meta.is_dir() {
        return Ok(());
    }
    let io = |source| PopulateError::Io {
        path: data.to_path_buf(),
        source,
    };
    let mut entries = fs::read_dir(data).map_err(io)?;
    if entries.next().is_some() {
        return Ok(());
    }
    berth_image::snapshot::copy::merge(&[source.to_path_buf()], data, true)?;
    std::os::unix::fs::chown(data, Some(meta.uid()), Some(meta.gid()))
        .and_then(|()| fs::set_permissions(data, fs::Permissions::from_mode(meta.mode() & 0o7777)))
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_into_an_empty_volume_only() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let data = tmp.path().join("data");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/f"), "hello").unwrap();
        fs::set_permissions(src.join("sub/f"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("link")).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o711)).unwrap();
        fs::create_dir(&data).unwrap();
        populate_if_empty(&data, &src).unwrap();
        assert_eq!(fs::read_to_string(data.join("sub/f")).unwrap(), "hello");
        let mode = fs::metadata(data.join("sub/f")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert_eq!(
            fs::read_link(data.join("link")).unwrap(),
            Path::new("sub/f")
        );
        assert_eq!(fs::metadata(&data).unwrap().mode() & 0o7777, 0o711);

        // Not empty any more: the image's content is not copied again.
        fs::write(src.join("new"), "x").unwrap();
        populate_if_empty(&data, &src).unwrap();
        assert!(!data.join("new").exists());
        // A path the image lacks leaves the volume alone.
        populate_if_empty(&data, &tmp.path().join("missing")).unwrap();
    }

    #[test]
    fn a_missing_volume_directory_is_named_in_the_error() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("gone");
        let e = populate_if_empty(&data, tmp.path()).unwrap_err();
        assert!(matches!(&e, PopulateError::Io { path, .. } if *path == data));
        assert!(e.to_string().starts_with(&format!("{}: ", data.display())));
    }
}

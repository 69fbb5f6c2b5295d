//! Docker's copy-up: the first time an empty volume is mounted over a directory the image
//! has content in, that content (owners, modes, times, symlinks, hard links, xattrs) is
//! copied into the volume, and the volume's root takes the directory's owner and mode.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Copies directory `source` into `data` when `data` is empty and `source` is a directory.
/// Errors are the reason, for the caller to wrap with the volume's name.
pub(super) fn populate_if_empty(data: &Path, source: &Path) -> Result<(), String> {
    let Ok(meta) = fs::metadata(source) else {
        return Ok(()); // nothing in the image there
    };
    if !meta.is_dir() {
        return Ok(());
    }
    let mut entries = fs::read_dir(data).map_err(|e| format!("{}: {e}", data.display()))?;
    if entries.next().is_some() {
        return Ok(());
    }
    berth_image::snapshot::copy::merge(&[source.to_path_buf()], data, true)
        .map_err(|e| e.to_string())?;
    std::os::unix::fs::chown(data, Some(meta.uid()), Some(meta.gid()))
        .and_then(|()| fs::set_permissions(data, fs::Permissions::from_mode(meta.mode() & 0o7777)))
        .map_err(|e| format!("{}: {e}", data.display()))
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
}

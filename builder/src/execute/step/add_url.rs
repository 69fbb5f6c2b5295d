//! ADD of a URL: downloaded once per build into the scratch dir (checked against
//! `--checksum`), then put in place as a file, not extracted.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_image::rootpath::Root;
use berth_image::users;

use super::{in_workdir, is_dir, StepError};
use crate::dockerfile::CopyArgs;
use crate::execute::stages::Runner;
use crate::fetch::{self, FetchError, Fetched};
use crate::fscopy::{self, Attrs};
use crate::plan::Step;

impl Runner<'_> {
    /// Downloads `url` once per build (checking `checksum`), into the build's scratch dir.
    pub(in crate::execute) fn fetch(
        &mut self,
        url: &str,
        checksum: Option<&str>,
    ) -> Result<Fetched, StepError> {
        if let Some(f) = self.fetched.get(url) {
            if let Some(c) = checksum {
                if c != f.digest {
                    return Err(FetchError::Checksum {
                        url: url.to_string(),
                        expected: c.to_string(),
                        actual: f.digest.clone(),
                    }
                    .into());
                }
            }
            return Ok(f.clone());
        }
        let dir = self.scratch.join("fetch");
        fs::create_dir_all(&dir).map_err(|source| StepError::Io {
            path: dir.clone(),
            source,
        })?;
        let dest = dir.join(berth_image::digest::Digest::sha256_of(url.as_bytes()).hex());
        let f = fetch::fetch(url, &dest, checksum)?;
        self.fetched.insert(url.to_string(), f.clone());
        Ok(f)
    }

    /// ADD of a URL: the file (not extracted) at the destination, mode 0600 unless
    /// `--chmod`, owned by root unless `--chown`, dated by `Last-Modified`.
    pub(super) fn add_url(
        &mut self,
        url: &str,
        checksum: Option<&str>,
        step: &Step,
        args: &CopyArgs,
        root: &Path,
    ) -> Result<(), StepError> {
        let f = self.fetch(url, checksum)?;
        let dest_abs = in_workdir(&step.workdir, &args.dest);
        let root_dir = root;
        let root = &Root::open(root_dir)?.no_xdev();
        let dest = if args.dest.ends_with('/') || is_dir(root, &dest_abs) {
            format!("{}/{}", dest_abs.trim_end_matches('/'), f.name)
        } else {
            dest_abs
        };
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StepError::Io { path, source }
        };
        fs::set_permissions(&f.path, fs::Permissions::from_mode(0o600)).map_err(io_err(&f.path))?;
        let mtime = filetime::FileTime::from_unix_time(f.mtime.unwrap_or(0), 0);
        filetime::set_file_mtime(&f.path, mtime).map_err(io_err(&f.path))?;
        let owner = match &args.chown {
            Some(spec) => users::chown_ids(root_dir, spec)?,
            None => (0, 0),
        };
        let attrs = Attrs {
            owner: Some(owner),
            chmod: args.chmod.clone(),
        };
        fscopy::copy_entry(&f.path, root, &dest, &attrs)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::dockerfile::Instruction;
    use crate::execute::fixture::{chown_me, mode, Fixture};
    use crate::progress::Event;

    const URL: &str = "https://example.invalid/dir/f.txt";

    /// Runs the ADD at step 0 of stage 0 into an empty root, with `URL` already
    /// downloaded (content `hello`, `Last-Modified` 1000).
    fn add_into(f: &Fixture) -> Result<tempfile::TempDir, StepError> {
        let root = tempfile::tempdir().unwrap();
        let step = f.steps(0).remove(0);
        let Instruction::Add { args, checksum, .. } = &step.instruction else {
            panic!("not an ADD")
        };
        let mut progress = |_: &Event| {};
        let mut runner = f.runner(&mut progress);
        let path = f.scratch.path().join("downloaded");
        fs::write(&path, "hello").unwrap();
        let digest = berth_image::digest::Digest::sha256_of(b"hello").to_string();
        runner.fetched.insert(
            URL.into(),
            Fetched {
                path,
                digest,
                name: "f.txt".into(),
                mtime: Some(1000),
            },
        );
        runner.add_url(URL, checksum.as_deref(), &step, args, root.path())?;
        Ok(root)
    }

    #[test]
    fn a_download_lands_once_as_a_private_file_dated_by_the_server() {
        let me = chown_me();
        let f = Fixture::new(&format!("FROM scratch\nADD {me} {URL} /d/\n"), &[], &[]);
        let root = add_into(&f).unwrap();
        let file = root.path().join("d/f.txt");
        assert_eq!(fs::read_to_string(&file).unwrap(), "hello");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::metadata(&file).unwrap().mtime(), 1000);
        let f = Fixture::new(
            &format!("FROM scratch\nWORKDIR /w\nADD {me} --chmod=0644 {URL} name\n"),
            &[],
            &[],
        );
        let root = tempfile::tempdir().unwrap();
        let step = f.steps(0).remove(1);
        let Instruction::Add { args, .. } = &step.instruction else {
            panic!("not an ADD")
        };
        let mut progress = |_: &Event| {};
        let mut runner = f.runner(&mut progress);
        let path = f.scratch.path().join("downloaded");
        fs::write(&path, "x").unwrap();
        runner.fetched.insert(
            URL.into(),
            Fetched {
                path,
                digest: String::new(),
                name: "f.txt".into(),
                mtime: None,
            },
        );
        runner.add_url(URL, None, &step, args, root.path()).unwrap();
        assert_eq!(mode(&root.path().join("w/name")), 0o644);
    }

    #[test]
    fn a_download_is_checked_against_the_pinned_checksum() {
        let me = chown_me();
        let wrong = berth_image::digest::Digest::sha256_of(b"other");
        let f = Fixture::new(
            &format!("FROM scratch\nADD {me} --checksum={wrong} {URL} /d/\n"),
            &[],
            &[],
        );
        let err = add_into(&f).unwrap_err();
        assert!(matches!(err, StepError::Fetch(FetchError::Checksum { .. })));
        let right = berth_image::digest::Digest::sha256_of(b"hello");
        let f = Fixture::new(
            &format!("FROM scratch\nADD {me} --checksum={right} {URL} /f\n"),
            &[],
            &[],
        );
        let root = add_into(&f).unwrap();
        assert_eq!(fs::read_to_string(root.path().join("f")).unwrap(), "hello");
    }
}

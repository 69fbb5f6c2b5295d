//! Executing a filesystem step (WORKDIR, COPY, ADD, RUN) on a fresh overlay of the
//! layers so far, and committing the overlay's upper dir as the step's layer. Each step
//! kind has its file: [`run`] for RUN, [`copy`] for COPY and ADD of local or `--from`
//! sources, [`add_url`] for ADD of a URL.

use std::io;
use std::path::PathBuf;

use berth_image::rootpath::{FileType, Root, RootPathError};
use berth_image::snapshot::mount::MountError;
use berth_image::snapshot::SnapshotError;
use berth_image::store::StoreError;
use berth_image::users::UserError;

use super::stages::{Runner, StageOut};
use super::stepfs::{upper_is_empty, StepFs};
use super::BuildError;
use crate::cache::{CacheError, LayerRef};
use crate::cachekey::CacheKeyError;
use crate::commit::{commit_layer, CommitError};
use crate::copyplan::CopyPlanError;
use crate::dockerfile::{CopyArgs, Instruction};
use crate::fetch::FetchError;
use crate::fscopy::FsCopyError;
use crate::plan::Step;
use crate::run::RunError;

mod add_url;
mod copy;
mod run;

/// What went wrong inside one step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Laying out a copy.
    #[error(transparent)]
    CopyPlan(#[from] CopyPlanError),
    /// Hashing inputs.
    #[error(transparent)]
    Key(#[from] CacheKeyError),
    /// Copying files.
    #[error(transparent)]
    Copy(#[from] FsCopyError),
    /// A path in the image.
    #[error(transparent)]
    Path(#[from] RootPathError),
    /// USER or `--chown`.
    #[error(transparent)]
    User(#[from] UserError),
    /// Running the process.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Mounting the step's root.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// Unpacking layers.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Committing the layer.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// Recording the cache entry.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A source image.
    #[error("image {reference}")]
    Image {
        /// The image.
        reference: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// Scratch files.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// ADD from a URL.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Something berth does not do yet.
    #[error("{0} is not supported by berth yet")]
    Unsupported(String),
}

/// Why executing a step stopped: a failed process (already a build error) or a step error.
pub(in crate::execute) enum Exec {
    Failed(Box<BuildError>),
    Step(StepError),
}

impl<E: Into<StepError>> From<E> for Exec {
    fn from(e: E) -> Self {
        Exec::Step(e.into())
    }
}

impl Runner<'_> {
    /// Executes a filesystem step; returns its layer (None when it changed nothing).
    pub(in crate::execute) fn execute(
        &mut self,
        id: usize,
        at: &str,
        step: &Step,
        state: &StageOut,
    ) -> Result<Option<LayerRef>, Exec> {
        let lowers = self.lowers(&state.layers)?;
        let mut sfs = StepFs::new(self.scratch.join(format!("step-{id}")), &lowers)?;
        let always_layer = match &step.instruction {
            Instruction::Workdir { .. } => {
                Root::open(&sfs.merged)
                    .and_then(|r| r.no_xdev().mkdir_all(&step.workdir))
                    .map_err(StepError::from)?;
                false
            }
            Instruction::Copy { args, .. } => {
                self.copy(id, step, args, &sfs.merged)?;
                true
            }
            Instruction::Add { args, checksum, .. } => {
                for url in args.sources.iter().map(|s| &s.value).filter(|s| is_url(s)) {
                    self.add_url(url, checksum.as_deref(), step, args, &sfs.merged)?;
                }
                self.copy(id, step, args, &sfs.merged)?;
                true
            }
            Instruction::Run { .. } => {
                self.run_command(id, at, step, &state.config, &sfs)?;
                true
            }
            _ => false,
        };
        sfs.unmount()?;
        if !always_layer && upper_is_empty(&sfs.upper) {
            return Ok(None);
        }
        let layer = commit_layer(
            self.store,
            &sfs.upper,
            &self.scratch.join("tmp"),
            self.format.compression,
            self.format.mtime,
        )
        .map_err(StepError::from)?;
        Ok(Some(layer))
    }
}

/// Whether `path` in `root` is a directory (following symlinks in the root).
fn is_dir(root: &Root, path: &str) -> bool {
    root.stat(path, true)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// Whether a COPY or ADD source is a URL (ADD downloads it; the context has no such file).
pub(in crate::execute) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

/// The sources of a COPY or ADD that are not URLs, as written.
pub(in crate::execute) fn local_sources(args: &CopyArgs) -> Vec<String> {
    args.sources
        .iter()
        .map(|s| s.value.clone())
        .filter(|s| !is_url(s))
        .collect()
}

/// `path` made absolute against the working directory `workdir`.
fn in_workdir(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), path)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::dockerfile::{parse, Instruction};

    #[test]
    fn urls_are_not_local_sources() {
        assert!(is_url("https://e.com/x") && is_url("http://e.com") && is_url("git@h:r"));
        assert!(!is_url("ftp://e.com/x") && !is_url("src/http"));
        let df = parse("Dockerfile", "FROM a\nADD a https://e.com/x b/ /d/\n").unwrap();
        let Instruction::Add { args, .. } = &df.instructions[1] else {
            panic!("not an ADD")
        };
        assert_eq!(local_sources(args), ["a", "b/"]);
    }

    #[test]
    fn destinations_are_made_absolute_against_the_workdir() {
        assert_eq!(in_workdir("/app/", "x"), "/app/x");
        assert_eq!(in_workdir("/", "x/"), "/x/");
        assert_eq!(in_workdir("/app", "/abs"), "/abs");
        assert_eq!(in_workdir("/app", ""), "/app/");
    }

    #[test]
    fn is_dir_follows_links_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("f"), "x").unwrap();
        std::os::unix::fs::symlink("/d", dir.path().join("link")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert!(is_dir(&root, "/d") && is_dir(&root, "/link"));
        assert!(!is_dir(&root, "/f") && !is_dir(&root, "/missing"));
    }

    #[test]
    fn step_errors_become_exec_step_errors() {
        let e = Exec::from(StepError::Unsupported("x".into()));
        assert!(matches!(e, Exec::Step(StepError::Unsupported(_))));
        assert_eq!(
            StepError::Unsupported("RUN --mount=type=ssh".into()).to_string(),
            "RUN --mount=type=ssh is not supported by berth yet"
        );
    }
}

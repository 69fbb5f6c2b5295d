//! The filesystem a step works in: an overlay of the layers so far with a fresh upper
//! dir (which holds the step's changes), and the scratch directories a killed build
//! leaves behind.

use std::fs;
use std::path::{Path, PathBuf};

use berth_image::snapshot::mount::RootfsMount;

use super::stages::{layers_of, Runner};
use super::step::StepError;
use crate::cache::LayerRef;
use crate::commit::ensure_snapshots;
use crate::plan::FromRef;

/// The overlay a step works in, and its scratch directories (removed on drop).
pub(super) struct StepFs {
    pub(super) dir: PathBuf,
    pub(super) upper: PathBuf,
    pub(super) merged: PathBuf,
    mount: Option<RootfsMount>,
}

impl StepFs {
    /// Mounts `lowers` under a fresh upper dir at `dir/merged`.
    pub(super) fn new(dir: PathBuf, lowers: &[PathBuf]) -> Result<Self, StepError> {
        let upper = dir.join("upper");
        let work = dir.join("work");
        let merged = dir.join("merged");
        for d in [&upper, &work, &merged] {
            fs::create_dir_all(d).map_err(|source| StepError::Io {
                path: d.clone(),
                source,
            })?;
        }
        let mount = RootfsMount::overlay(lowers, &upper, &work, &merged)?;
        Ok(Self {
            dir,
            upper,
            merged,
            mount: Some(mount),
        })
    }

    /// Unmounts the overlay, leaving the upper dir to commit.
    pub(super) fn unmount(&mut self) -> Result<(), StepError> {
        if let Some(m) = self.mount.take() {
            m.unmount()?;
        }
        Ok(())
    }
}

impl Drop for StepFs {
    fn drop(&mut self) {
        drop(self.mount.take());
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes the scratch directories of builds whose process is gone (killed mid-step),
/// unmounting the overlays they left first. The caller holds the store lock.
pub(super) fn remove_stale_scratch(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix('b').and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        let prefix = format!("{}/", path.display());
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            if let Err(e) = berth_image::snapshot::mount::unmount(Path::new(p)) {
                tracing::warn!(mount = p, error = %e, "cannot unmount a stale build's overlay");
            }
        }
        tracing::info!(path = %path.display(), "removing a stale build's scratch directory");
        let _ = fs::remove_dir_all(&path);
    }
}

/// Whether a step's upper dir holds no change (a missing dir counts as empty).
pub(super) fn upper_is_empty(upper: &Path) -> bool {
    fs::read_dir(upper)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

impl Runner<'_> {
    /// Mounts the filesystem of a stage or image read-only-in-effect (a throwaway upper).
    pub(super) fn mount_source(&mut self, from: &FromRef, name: &str) -> Result<StepFs, StepError> {
        let layers = match from {
            FromRef::Stage(i) => self
                .outs
                .get(i)
                .map(|o| o.layers.clone())
                .unwrap_or_default(),
            FromRef::Image(r) => {
                let img = self.resolve_image(r).map_err(|source| StepError::Image {
                    reference: r.to_string(),
                    source,
                })?;
                layers_of(&img).map_err(|source| StepError::Image {
                    reference: r.to_string(),
                    source,
                })?
            }
        };
        let lowers = self.lowers(&layers)?;
        StepFs::new(self.scratch.join(name), &lowers)
    }

    /// The unpacked snapshot dirs of `layers` as an overlay's lower dirs (none for none).
    pub(super) fn lowers(&self, layers: &[LayerRef]) -> Result<Vec<PathBuf>, StepError> {
        let top = ensure_snapshots(self.store, &self.snapshots, layers)?;
        Ok(match top {
            Some(t) => self.snapshots.lowers(&t)?,
            None => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::fixture::Fixture;
    use crate::progress::Event;

    #[test]
    fn an_upper_dir_is_empty_until_a_step_writes() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("upper");
        assert!(upper_is_empty(&upper));
        fs::create_dir(&upper).unwrap();
        assert!(upper_is_empty(&upper));
        fs::write(upper.join("f"), "x").unwrap();
        assert!(!upper_is_empty(&upper));
    }

    #[test]
    fn only_scratch_dirs_of_gone_builds_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("b999999999");
        let mine = dir.path().join(format!("b{}", std::process::id()));
        let init = dir.path().join("b1");
        let other = dir.path().join("keep");
        for d in [&gone, &mine, &init, &other] {
            fs::create_dir_all(d.join("upper")).unwrap();
        }
        remove_stale_scratch(dir.path());
        assert!(!gone.exists());
        assert!(mine.exists() && init.exists() && other.exists());
        // A store without builds yet is fine.
        remove_stale_scratch(&dir.path().join("missing"));
    }

    #[test]
    fn a_step_fs_removes_its_scratch_dir_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let step = dir.path().join("step-1");
        fs::create_dir_all(step.join("upper")).unwrap();
        drop(StepFs {
            upper: step.join("upper"),
            merged: step.join("merged"),
            dir: step.clone(),
            mount: None,
        });
        assert!(!step.exists());
    }

    #[test]
    fn no_layers_have_no_lower_dirs() {
        let f = Fixture::new("FROM scratch\n", &[], &[]);
        let mut progress = |_: &Event| {};
        assert!(f.runner(&mut progress).lowers(&[]).unwrap().is_empty());
    }
}

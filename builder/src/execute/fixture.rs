//! Test fixture: a prepared build over a temporary context and a temporary store, and a
//! runner over them, for unit tests of the steps that need no mount and no root.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_image::reference::Reference;
use berth_image::snapshot::Compression;
use berth_image::store::Store;
use tempfile::TempDir;

use super::stages::Runner;
use super::{Build, BuildOptions};
use crate::plan::{PlanOptions, StageBase, Step};
use crate::progress::Event;

/// A build of a Dockerfile over a context of files, with a store and a scratch dir.
pub(super) struct Fixture {
    pub(super) ctx: TempDir,
    pub(super) build: Build,
    pub(super) store: Store,
    _store_dir: TempDir,
    pub(super) scratch: TempDir,
}

impl Fixture {
    /// Prepares `dockerfile` over a context holding `files` (`path`, content), tagged
    /// `tags`, with `SOURCE_DATE_EPOCH` 1000.
    pub(super) fn new(dockerfile: &str, files: &[(&str, &str)], tags: &[&str]) -> Self {
        let ctx = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = ctx.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, content).unwrap();
        }
        let build = Build::prepare(BuildOptions {
            context: ctx.path().to_path_buf(),
            dockerfile_text: dockerfile.to_string(),
            dockerfile_name: "Dockerfile".into(),
            dockerfile_path: None,
            plan: PlanOptions::default(),
            no_cache: false,
            tags: tags.iter().map(|t| Reference::parse(t).unwrap()).collect(),
            compression: Compression::Gzip,
            source_date_epoch: Some(1000),
            cgroup_parent: "berth-unit-test".into(),
        })
        .unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path().join("store")).unwrap();
        Fixture {
            ctx,
            build,
            store,
            _store_dir: store_dir,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    /// The same build with `--build-arg name=value`.
    pub(super) fn with_build_arg(mut self, name: &str, value: &str) -> Self {
        let mut opts = self.build.opts.clone();
        opts.plan.build_args.insert(name.into(), value.into());
        self.build = Build::prepare(opts).unwrap();
        self
    }

    /// A runner over the fixture, reporting to `progress`.
    pub(super) fn runner<'a>(&'a self, progress: &'a mut dyn FnMut(&Event)) -> Runner<'a> {
        Runner::new(
            &self.build,
            &self.store,
            self.scratch.path().to_path_buf(),
            "1970-01-01T00:16:40Z".into(),
            progress,
        )
    }

    /// The steps of stage `index` expanded from an empty base.
    pub(super) fn steps(&self, index: usize) -> Vec<Step> {
        self.build
            .plan()
            .resolve_stage(index, &StageBase::default())
            .unwrap()
            .steps
    }
}

/// `--chown=UID:GID` of the user running the tests, so copies need no root.
pub(super) fn chown_me() -> String {
    format!(
        "--chown={}:{}",
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw()
    )
}

/// The mode bits of `path`.
pub(super) fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

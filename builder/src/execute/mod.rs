//! Executing a plan: each needed stage in order, each step either taken from the cache
//! (by its content-hash key) or run: metadata steps change the image config, WORKDIR,
//! COPY, ADD and RUN change the filesystem through an overlay of the layers so far whose
//! upper dir becomes the step's layer. The target stage is written to the store.
//!
//! The whole path is synchronous and single-threaded: RUN forks through the runtime.
//!
//! [`Build`] is the entry point; the work is split by concern: `stages` (the stage loop
//! and the cache lookup of each step), `inputs` (what a step reads, for its key),
//! `stepfs` (the overlay a step works in), `step` (one file per filesystem step kind:
//! RUN, COPY, ADD from a URL), `history` (the `created_by` of each step) and `export`
//! (the target stage written as an image).

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_image::reference::Reference;
use berth_image::snapshot::Compression;
use berth_image::store::{Store, StoreError};

use crate::commit::{CommitError, WrittenImage};
use crate::context::{Context, ContextError};
use crate::dockerfile::{parse, Dockerfile, Instruction, ParseError};
use crate::plan::{Base, Plan, PlanError, PlanOptions};
use crate::progress::Event;
use crate::stepcgroup;

mod export;
#[cfg(test)]
mod fixture;
mod history;
mod inputs;
mod stages;
mod step;
mod stepfs;

pub use step::StepError;

use stages::Runner;
use stepfs::remove_stale_scratch;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The Dockerfile does not plan.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The context could not be read.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// A base or `--from` image is not in the store (the cause follows in the chain).
    #[error("base image {reference}")]
    Image {
        /// The image.
        reference: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A base image's config is not JSON (the cause follows in the chain).
    #[error("base image {reference}: config")]
    BaseConfig {
        /// The image.
        reference: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A step failed; `at` names it (`Dockerfile:12 RUN make`); the cause follows in the
    /// error chain.
    #[error("{at}")]
    Step {
        /// The step's position and text.
        at: String,
        /// What went wrong.
        #[source]
        source: Box<StepError>,
    },
    /// A RUN step exited non-zero.
    #[error("{at}: process {command:?} did not complete successfully: exit code {code}")]
    RunFailed {
        /// The step's position and text.
        at: String,
        /// The command.
        command: String,
        /// Its exit code.
        code: i32,
    },
    /// Writing the image failed.
    #[error("exporting the image: {0}")]
    Commit(#[from] CommitError),
    /// The build's scratch directory could not be used.
    #[error("build scratch directory {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Where the Dockerfile comes from and what to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile_text: String,
    /// The name errors use (`Dockerfile`, `-`).
    pub dockerfile_name: String,
    /// The Dockerfile's path, for `<Dockerfile>.dockerignore` (None for stdin).
    pub dockerfile_path: Option<PathBuf>,
    /// Target, build args, platform.
    pub plan: PlanOptions,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `-t` names.
    pub tags: Vec<Reference>,
    /// Layer compression.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: fixed times for layers and history.
    pub source_date_epoch: Option<u64>,
    /// The cgroup parent RUN steps' cgroups go under (`BERTH_CGROUP_PARENT`).
    pub cgroup_parent: String,
}

/// A parsed and planned build, ready to run against a store.
#[derive(Debug)]
pub struct Build {
    opts: BuildOptions,
    df: Dockerfile,
    plan: Plan,
    ctx: Context,
}

impl Build {
    /// Parses the Dockerfile, opens the context and plans the build.
    pub fn prepare(opts: BuildOptions) -> Result<Self, BuildError> {
        let df = parse(&opts.dockerfile_name, &opts.dockerfile_text)?;
        let plan = Plan::new(&df, &opts.plan)?;
        let ctx = Context::open(&opts.context, opts.dockerfile_path.as_deref())?;
        Ok(Self {
            opts,
            df,
            plan,
            ctx,
        })
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Images the needed stages use (bases and `--from`), so a caller can pull them first.
    pub fn images(&self) -> Vec<Reference> {
        let mut out: Vec<Reference> = Vec::new();
        for &i in &self.plan.needed {
            let stage = &self.plan.stages[i];
            if let Base::Image(r) = &stage.base {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
            for inst in &stage.instructions {
                if let Instruction::Copy { from: Some(f), .. } = inst {
                    if let Ok(r) = Reference::parse(&f.value) {
                        let named =
                            self.plan.stages.iter().any(|s| {
                                s.name.as_deref() == Some(f.value.to_lowercase().as_str())
                            });
                        if !named && f.value.parse::<usize>().is_err() && !out.contains(&r) {
                            out.push(r);
                        }
                    }
                }
            }
        }
        out
    }

    /// Runs the build against `store`, reporting progress, and writes the target stage as
    /// an image named by the tags.
    pub fn run(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(&Event),
    ) -> Result<WrittenImage, BuildError> {
        let _parent = stepcgroup::ParentCleanup::new(&self.opts.cgroup_parent);
        stepcgroup::sweep_stale(&self.opts.cgroup_parent);
        remove_stale_scratch(&store.root().join("build"));
        let scratch = store
            .root()
            .join("build")
            .join(format!("b{}", std::process::id()));
        let created = rfc3339(self.opts.source_date_epoch.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default()
        }));
        let result = Runner::new(self, store, scratch.clone(), created, progress).run_all();
        let _ = fs::remove_dir_all(&scratch);
        result
    }
}

/// `secs` since the epoch as RFC 3339 UTC (`2024-01-02T03:04:05Z`), as image configs
/// date things.
fn rfc3339(secs: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::fixture::Fixture;
    use super::*;

    fn prepare(dockerfile: &str) -> Result<Build, BuildError> {
        let ctx = tempfile::tempdir().unwrap();
        Build::prepare(BuildOptions {
            context: ctx.path().to_path_buf(),
            dockerfile_text: dockerfile.into(),
            dockerfile_name: "Dockerfile".into(),
            dockerfile_path: None,
            plan: PlanOptions::default(),
            no_cache: false,
            tags: Vec::new(),
            compression: Compression::Gzip,
            source_date_epoch: None,
            cgroup_parent: "berth-unit-test".into(),
        })
    }

    #[test]
    fn prepare_reports_parse_and_plan_errors() {
        assert!(matches!(
            prepare("FROM a\nNOPE x\n"),
            Err(BuildError::Parse(_))
        ));
        assert!(matches!(prepare("ARG A=1\n"), Err(BuildError::Plan(_))));
        let b = prepare("FROM scratch AS one\nFROM one\n").unwrap();
        assert_eq!(b.plan().needed, vec![0, 1]);
    }

    #[test]
    fn images_are_bases_and_copy_from_images_once_each() {
        let f = Fixture::new(
            "FROM alpine AS a\nFROM busybox AS b\nCOPY --from=a /x /y\nCOPY --from=0 /x /y\n\
             COPY --from=alpine /z /z\nCOPY --from=debian:12 /z /z\nFROM scratch AS unused\n\
             COPY --from=fedora /z /z\n",
            &[],
            &[],
        );
        let b = Build::prepare(BuildOptions {
            plan: PlanOptions {
                target: Some("b".into()),
                ..PlanOptions::default()
            },
            ..f.build.opts.clone()
        })
        .unwrap();
        // Stage names and indexes are not images; stages not needed are not looked at.
        let want: Vec<Reference> = ["alpine", "busybox", "debian:12"]
            .iter()
            .map(|r| Reference::parse(r).unwrap())
            .collect();
        assert_eq!(b.images(), want);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}

//! Executing a plan: each needed stage in order, each step either taken from the cache
//! (by its content-hash key) or run: metadata steps change the image config, WORKDIR,
//! COPY, ADD and RUN change the filesystem through an overlay of the layers so far whose
//! upper dir becomes the step's layer. The target stage is written to the store.
//!
//! The whole path is synchronous and single-threaded: RUN forks through the runtime.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use berth_image::manifest::{descriptor_digest, media_type_str, PlatformSpec};
use berth_image::reference::Reference;
use berth_image::snapshot::mount::{MountError, RootfsMount};
use berth_image::snapshot::{Compression, SnapshotError, Snapshots};
use berth_image::store::{Store, StoreError};
use serde_json::Value;

use crate::cache::{CacheError, CacheIndex, CacheRecord, LayerFormat, LayerRef};
use crate::cachekey::{copy_content_key, CacheKey, CacheKeyError};
use crate::commit::{commit_layer, ensure_snapshots, write_image, CommitError, WrittenImage};
use crate::context::{clean_segments, Context, ContextError};
use crate::copyplan::{copy_items, CopyItem, CopyPlanError, CopyRequest};
use crate::dockerfile::{
    parse, Command, CopyArgs, Dockerfile, Instruction, MountType, NetworkMode, ParseError,
    SecurityMode,
};
use crate::fetch::{self, FetchError, Fetched};
use crate::fscopy::{self, Attrs, FsCopyError};
use crate::ignore::IgnorePatterns;
use crate::imageconfig::{ImageConfig, DEFAULT_PATH};
use crate::plan::{Base, FromRef, Plan, PlanError, PlanOptions, StageBase, Step};
use crate::progress::Event;
use crate::run::{self, RunError, RunSpec, StepMount};
use crate::stepcgroup;
use berth_image::rootpath::{Root, RootPathError};
use berth_image::users::{self, UserError};

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

/// What a finished stage leaves for later stages.
#[derive(Debug, Clone)]
struct StageOut {
    key: CacheKey,
    layers: Vec<LayerRef>,
    config: ImageConfig,
    end: StageBase,
    /// When the newest layer was made (a cache hit keeps its original time), so an
    /// unchanged rebuild writes the same config and so the same image id, as BuildKit.
    created: String,
}

fn layers_of(img: &berth_image::store::ResolvedImage) -> Result<Vec<LayerRef>, StoreError> {
    let diff_ids = img.diff_ids()?;
    img.layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            Ok(LayerRef {
                digest: descriptor_digest(d)?,
                diff_id,
                size: d.size(),
                media_type: media_type_str(d),
            })
        })
        .collect()
}

fn rfc3339(secs: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The overlay a step works in, and its scratch directories.
struct StepFs {
    dir: PathBuf,
    upper: PathBuf,
    merged: PathBuf,
    mount: Option<RootfsMount>,
}

impl StepFs {
    fn new(dir: PathBuf, lowers: &[PathBuf]) -> Result<Self, StepError> {
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

    fn unmount(&mut self) -> Result<(), StepError> {
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
fn remove_stale_scratch(dir: &Path) {
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

fn upper_is_empty(upper: &Path) -> bool {
    fs::read_dir(upper)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// The running state of a build.
struct Runner<'a> {
    build: &'a Build,
    store: &'a Store,
    snapshots: Snapshots,
    cache: CacheIndex,
    format: LayerFormat,
    scratch: PathBuf,
    created: String,
    step_no: usize,
    progress: &'a mut dyn FnMut(&Event),
    outs: BTreeMap<usize, StageOut>,
    files: Option<Vec<String>>,
    fetched: BTreeMap<String, Fetched>,
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
        let mut runner = Runner {
            build: self,
            store,
            snapshots: Snapshots::new(store.snapshots_dir()),
            cache: CacheIndex::new(store.root()),
            format: LayerFormat {
                compression: self.opts.compression,
                mtime: self.opts.source_date_epoch,
            },
            scratch: scratch.clone(),
            created,
            step_no: 0,
            progress,
            outs: BTreeMap::new(),
            files: None,
            fetched: BTreeMap::new(),
        };
        let result = runner.run_all();
        let _ = fs::remove_dir_all(&scratch);
        result
    }
}

impl Runner<'_> {
    fn run_all(&mut self) -> Result<WrittenImage, BuildError> {
        let plan = &self.build.plan;
        for &i in &plan.needed {
            let out = self.run_stage(i)?;
            self.outs.insert(i, out);
        }
        let target = self
            .outs
            .remove(&plan.target)
            .ok_or_else(|| BuildError::Io {
                path: self.scratch.clone(),
                source: io::Error::other("target stage was not built"),
            })?;
        let mut config = target.config;
        config.finish(&target.created);
        (self.progress)(&Event::Note {
            text: "exporting to image".into(),
        });
        Ok(write_image(
            self.store,
            config.doc,
            &target.layers,
            &self.build.opts.tags,
        )?)
    }

    fn stage_label(&self, index: usize) -> String {
        self.build.plan.stages[index]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{index}"))
    }

    fn line_text(&self, line: usize) -> String {
        self.build
            .df
            .source
            .lines
            .get(line.saturating_sub(1))
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    }

    fn resolve_image(
        &self,
        r: &Reference,
    ) -> Result<berth_image::store::ResolvedImage, StoreError> {
        self.store.resolve(&r.to_string(), &PlatformSpec::host())
    }

    fn run_stage(&mut self, index: usize) -> Result<StageOut, BuildError> {
        let plan = &self.build.plan;
        let stage = &plan.stages[index];
        let total = stage.instructions.len() + 1;
        let label = self.stage_label(index);
        self.step_no += 1;
        let from_id = self.step_no;
        let started = Instant::now();
        let from_label = format!("[{label} 1/{total}] {}", self.line_text(stage.span.line));
        (self.progress)(&Event::Start {
            id: from_id,
            label: from_label,
        });
        let (key, layers, mut config, base) = match &stage.base {
            Base::Scratch => {
                let host = PlatformSpec::host();
                let c = ImageConfig::scratch(&host.os, &host.architecture);
                (
                    CacheKey::base("scratch"),
                    Vec::new(),
                    c,
                    StageBase::default(),
                )
            }
            Base::Image(r) => {
                let image_err = |source| BuildError::Image {
                    reference: r.to_string(),
                    source,
                };
                let img = self.resolve_image(r).map_err(image_err)?;
                let doc: Value = serde_json::from_slice(&img.config_raw).map_err(|source| {
                    BuildError::BaseConfig {
                        reference: r.to_string(),
                        source,
                    }
                })?;
                let mut c = ImageConfig::from_base(doc);
                c.clear_onbuild();
                c.ensure_path();
                let layers = layers_of(&img).map_err(image_err)?;
                let base = StageBase {
                    env: c.env().into_iter().collect(),
                    workdir: c.workdir(),
                };
                (
                    CacheKey::base(&img.config_digest.to_string()),
                    layers,
                    c,
                    base,
                )
            }
            Base::Stage(p) => {
                let parent = self.outs.get(p).cloned().ok_or_else(|| BuildError::Io {
                    path: self.scratch.clone(),
                    source: io::Error::other(format!(
                        "stage {p} was not built before stage {index}"
                    )),
                })?;
                (
                    parent.key,
                    parent.layers,
                    parent.config.inherit(),
                    parent.end,
                )
            }
        };
        (self.progress)(&Event::Done {
            id: from_id,
            took: started.elapsed(),
        });
        let resolved = plan.resolve_stage(index, &base)?;
        let created = match (&stage.base, config.doc["created"].as_str()) {
            _ if self.build.opts.source_date_epoch.is_some() => self.created.clone(),
            (Base::Stage(p), _) => self
                .outs
                .get(p)
                .map(|o| o.created.clone())
                .unwrap_or_else(|| self.created.clone()),
            (_, Some(c)) => c.to_string(),
            _ => self.created.clone(),
        };
        let mut state = StageOut {
            created,
            key,
            layers,
            config: {
                if matches!(stage.base, Base::Scratch) {
                    config.ensure_path();
                }
                config
            },
            end: resolved.as_base(),
        };
        for (n, step) in resolved.steps.iter().enumerate() {
            self.step_no += 1;
            let id = self.step_no;
            let line = step.instruction.span().line;
            let text = self.line_text(line);
            (self.progress)(&Event::Start {
                id,
                label: format!("[{label} {}/{total}] {text}", n + 2),
            });
            let started = Instant::now();
            let at = format!("{}:{line} {text}", self.build.df.source.path);
            let cached = self.run_step(id, &at, step, &mut state)?;
            if cached {
                (self.progress)(&Event::Cached { id });
            }
            (self.progress)(&Event::Done {
                id,
                took: started.elapsed(),
            });
        }
        Ok(state)
    }

    /// Runs one step; true when it came from the cache.
    fn run_step(
        &mut self,
        id: usize,
        at: &str,
        step: &Step,
        state: &mut StageOut,
    ) -> Result<bool, BuildError> {
        let wrap = |source: StepError| BuildError::Step {
            at: at.to_string(),
            source: Box::new(source),
        };
        let inst = &step.instruction;
        let created_by = created_by(inst, &state.config);
        match inst {
            Instruction::Run { .. }
            | Instruction::Copy { .. }
            | Instruction::Add { .. }
            | Instruction::Workdir { .. } => {}
            Instruction::Arg { .. } => {
                state.key = CacheKey::step(&state.key, step, &[]).map_err(|e| wrap(e.into()))?;
                return Ok(false);
            }
            _ => {
                state.key = CacheKey::step(&state.key, step, &[]).map_err(|e| wrap(e.into()))?;
                state.config.apply(inst, &step.workdir);
                state.config.history(&state.created, &created_by, true);
                return Ok(false);
            }
        }
        let inputs = self.inputs(step).map_err(wrap)?;
        let key = CacheKey::step(&state.key, step, &inputs).map_err(|e| wrap(e.into()))?;
        state.key = key;
        if let Instruction::Workdir { .. } = inst {
            state.config.apply(inst, &step.workdir);
        }
        if !self.build.opts.no_cache {
            if let Some(rec) = self.cache.get(self.store, &key, self.format) {
                if let Some(c) = rec
                    .created
                    .filter(|_| self.build.opts.source_date_epoch.is_none())
                {
                    state.created = c;
                }
                self.add_layer(state, rec.layer, &created_by);
                return Ok(true);
            }
        }
        let layer = self.execute(id, at, step, state).map_err(|e| match e {
            Exec::Failed(b) => *b,
            Exec::Step(s) => wrap(s),
        })?;
        let record = CacheRecord {
            key: key.to_string(),
            layer: layer.clone(),
            created_by: created_by.clone(),
            inputs: inputs.iter().map(|k| k.to_string()).collect(),
            created: Some(self.created.clone()),
        };
        state.created = self.created.clone();
        self.cache
            .put(&record, &key, self.format)
            .map_err(|e| wrap(e.into()))?;
        self.add_layer(state, layer, &created_by);
        Ok(false)
    }

    fn add_layer(&self, state: &mut StageOut, layer: Option<LayerRef>, created_by: &str) {
        let empty = layer.is_none();
        if let Some(l) = layer {
            state.layers.push(l);
        }
        state.config.history(&state.created, created_by, empty);
    }

    fn context_files(&mut self) -> Result<Vec<String>, StepError> {
        if self.files.is_none() {
            let files = self.build.ctx.files().map_err(|e| StepError::Io {
                path: self.build.ctx.root().to_path_buf(),
                source: io::Error::other(e),
            })?;
            self.files = Some(files);
        }
        Ok(self.files.clone().unwrap_or_default())
    }

    /// The key of what a `--from` names: a built stage's last step key, or an
    /// image's config digest. None for a stage not built (nothing to read).
    fn key_of_from(&mut self, from: &FromRef) -> Result<Option<CacheKey>, StepError> {
        match from {
            FromRef::Stage(i) => Ok(self.outs.get(i).map(|o| o.key)),
            FromRef::Image(r) => {
                let img = self.resolve_image(r).map_err(|source| StepError::Image {
                    reference: r.to_string(),
                    source,
                })?;
                Ok(Some(CacheKey::base(&img.config_digest.to_string())))
            }
        }
    }

    /// The keys of what a step reads besides its parent.
    fn inputs(&mut self, step: &Step) -> Result<Vec<CacheKey>, StepError> {
        let mut keys = Vec::new();
        match &step.instruction {
            Instruction::Copy { args, .. } | Instruction::Add { args, .. } => {
                match &step.copy_from {
                    Some(from) => keys.extend(self.key_of_from(from)?),
                    None => {
                        let checksum = match &step.instruction {
                            Instruction::Add { checksum, .. } => checksum.clone(),
                            _ => None,
                        };
                        for url in args.sources.iter().map(|s| &s.value).filter(|s| is_url(s)) {
                            // A pinned checksum is the content's identity: no download
                            // is needed to know the key.
                            let id = match &checksum {
                                Some(c) => c.clone(),
                                None => self.fetch(url, None)?.digest,
                            };
                            keys.push(CacheKey::base(&format!("{url} {id}")));
                        }
                        let local: Vec<String> = args
                            .sources
                            .iter()
                            .map(|s| s.value.clone())
                            .filter(|s| !is_url(s))
                            .collect();
                        if !local.is_empty() {
                            let items = self.context_items(&local, args, &step.workdir, false)?;
                            keys.push(copy_content_key(&self.build.ctx, &items)?);
                        }
                    }
                }
            }
            Instruction::Run { mounts, .. } => {
                for (m, from) in mounts.iter().zip(&step.mount_from) {
                    if m.kind != MountType::Bind {
                        continue;
                    }
                    match from {
                        Some(from) => keys.extend(self.key_of_from(from)?),
                        None => {
                            let src = m.source.clone().unwrap_or_else(|| ".".into());
                            let files = self.context_files()?;
                            let items = copy_items(
                                &self.build.ctx,
                                &files,
                                &CopyRequest {
                                    sources: &[src],
                                    dest: "/",
                                    workdir: "/",
                                    parents: false,
                                    exclude: &[],
                                    dest_is_dir: true,
                                },
                            )?;
                            keys.push(copy_content_key(&self.build.ctx, &items)?);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(keys)
    }

    fn context_items(
        &mut self,
        sources: &[String],
        args: &CopyArgs,
        workdir: &str,
        dest_is_dir: bool,
    ) -> Result<Vec<CopyItem>, StepError> {
        let files = self.context_files()?;
        Ok(copy_items(
            &self.build.ctx,
            &files,
            &CopyRequest {
                sources,
                dest: &args.dest,
                workdir,
                parents: args.parents,
                exclude: &args.exclude,
                dest_is_dir,
            },
        )?)
    }

    /// Mounts the filesystem of a stage or image read-only-in-effect (a throwaway upper).
    fn mount_source(&mut self, from: &FromRef, name: &str) -> Result<StepFs, StepError> {
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

    fn lowers(&self, layers: &[LayerRef]) -> Result<Vec<PathBuf>, StepError> {
        let top = ensure_snapshots(self.store, &self.snapshots, layers)?;
        Ok(match top {
            Some(t) => self.snapshots.lowers(&t)?,
            None => Vec::new(),
        })
    }

    /// Executes a filesystem step; returns its layer (None when it changed nothing).
    fn execute(
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
                self.copy(id, step, args, false, &sfs.merged)?;
                true
            }
            Instruction::Add { args, checksum, .. } => {
                for url in args.sources.iter().map(|s| &s.value).filter(|s| is_url(s)) {
                    self.add_url(url, checksum.as_deref(), step, args, &sfs.merged)?;
                }
                self.copy(id, step, args, true, &sfs.merged)?;
                true
            }
            Instruction::Run {
                command,
                heredocs,
                mounts,
                network,
                security,
                ..
            } => {
                let argv = run_argv(&state.config, command, heredocs);
                let mut env: Vec<String> = Vec::new();
                let cfg_env = state.config.env();
                for (k, v) in &cfg_env {
                    env.push(format!("{k}={v}"));
                }
                for (k, v) in step.args.iter().chain(&step.proxy) {
                    if !cfg_env.iter().any(|(ek, _)| ek == k) {
                        env.push(format!("{k}={v}"));
                    }
                }
                if !env.iter().any(|e| e.starts_with("PATH=")) {
                    env.push(format!("PATH={DEFAULT_PATH}"));
                }
                let user = users::process_user(&sfs.merged, &state.config.user())
                    .map_err(StepError::from)?;
                let network_none = matches!(network, Some(NetworkMode::None));
                let mut step_mounts = Vec::new();
                let mut sources: Vec<StepFs> = Vec::new();
                for (k, (m, from)) in mounts.iter().zip(&step.mount_from).enumerate() {
                    let target = m.target.clone().unwrap_or_default();
                    let target = if target.starts_with('/') {
                        target
                    } else {
                        format!("{}/{}", step.workdir.trim_end_matches('/'), target)
                    };
                    match m.kind {
                        MountType::Cache => {
                            let cache_id = m.id.clone().unwrap_or_else(|| target.clone());
                            let dir = self.store.root().join("cache").join("mounts").join(
                                berth_image::digest::Digest::sha256_of(cache_id.as_bytes()).hex(),
                            );
                            if !dir.exists() {
                                fs::create_dir_all(&dir).map_err(|source| StepError::Io {
                                    path: dir.clone(),
                                    source,
                                })?;
                                let uid = m.uid.as_deref().and_then(|u| u.parse().ok());
                                let gid = m.gid.as_deref().and_then(|g| g.parse().ok());
                                let _ = std::os::unix::fs::chown(&dir, uid, gid);
                            }
                            step_mounts.push(StepMount::Bind {
                                source: dir,
                                target,
                                readonly: m.readonly == Some(true),
                            });
                        }
                        MountType::Tmpfs => step_mounts.push(StepMount::Tmpfs { target }),
                        MountType::Bind => {
                            let src_rel = m.source.clone().unwrap_or_else(|| "/".into());
                            let source = match from {
                                None => Root::open(self.build.ctx.root())
                                    .and_then(|r| r.host_path(&src_rel))
                                    .map_err(StepError::from)?,
                                Some(f) => {
                                    let s = self.mount_source(f, &format!("step-{id}-m{k}"))?;
                                    let p = Root::open(&s.merged)
                                        .and_then(|r| r.host_path(&src_rel))
                                        .map_err(StepError::from)?;
                                    sources.push(s);
                                    p
                                }
                            };
                            step_mounts.push(StepMount::Bind {
                                source,
                                target,
                                readonly: m.readonly != Some(false),
                            });
                        }
                        MountType::Secret | MountType::Ssh => {
                            return Err(StepError::Unsupported(
                                "RUN --mount=type=secret/ssh".into(),
                            )
                            .into())
                        }
                    }
                }
                if !network_none {
                    for f in ["/etc/resolv.conf", "/etc/hosts"] {
                        if Path::new(f).is_file() {
                            step_mounts.push(StepMount::Bind {
                                source: PathBuf::from(f),
                                target: f.into(),
                                readonly: true,
                            });
                        }
                    }
                }
                let step_id = stepcgroup::step_id(id);
                let spec = RunSpec {
                    cgroups_path: stepcgroup::cgroups_path(
                        &self.build.opts.cgroup_parent,
                        &step_id,
                    ),
                    id: step_id,
                    rootfs: sfs.merged.clone(),
                    bundle: sfs.dir.join("bundle"),
                    state_root: self.scratch.join("runtime"),
                    args: argv.clone(),
                    env,
                    cwd: step.workdir.clone(),
                    user,
                    network_none,
                    privileged: matches!(security, Some(SecurityMode::Insecure)),
                    mounts: step_mounts,
                    output: sfs.dir.join("output"),
                };
                let started = Instant::now();
                let code = run::run(&spec).map_err(StepError::from)?;
                drop(sources);
                let output = fs::read(&spec.output).unwrap_or_default();
                for line in String::from_utf8_lossy(&output).lines() {
                    (self.progress)(&Event::Output {
                        id,
                        at: started.elapsed(),
                        line: line.to_string(),
                    });
                }
                if code != 0 {
                    return Err(Exec::Failed(Box::new(BuildError::RunFailed {
                        at: at.to_string(),
                        command: argv.join(" "),
                        code,
                    })));
                }
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

    /// Downloads `url` once per build (checking `checksum`), into the build's scratch dir.
    fn fetch(&mut self, url: &str, checksum: Option<&str>) -> Result<Fetched, StepError> {
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
    fn add_url(
        &mut self,
        url: &str,
        checksum: Option<&str>,
        step: &Step,
        args: &CopyArgs,
        root: &Path,
    ) -> Result<(), StepError> {
        let f = self.fetch(url, checksum)?;
        let dest_abs = if args.dest.starts_with('/') {
            args.dest.clone()
        } else {
            format!("{}/{}", step.workdir.trim_end_matches('/'), args.dest)
        };
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
        use std::os::unix::fs::PermissionsExt;
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

    /// COPY or ADD into `root`.
    fn copy(
        &mut self,
        id: usize,
        step: &Step,
        args: &CopyArgs,
        add: bool,
        root: &Path,
    ) -> Result<(), StepError> {
        let owner = match &args.chown {
            Some(spec) => Some(users::chown_ids(root, spec)?),
            None => None,
        };
        let dest_abs = if args.dest.starts_with('/') {
            args.dest.clone()
        } else {
            format!("{}/{}", step.workdir.trim_end_matches('/'), args.dest)
        };
        let root_dir = root;
        let root = &Root::open(root_dir)?.no_xdev();
        let dest_is_dir = is_dir(root, &dest_abs);
        for h in &args.heredocs {
            let path = if args.dest.ends_with('/') || dest_is_dir {
                format!("{}/{}", dest_abs.trim_end_matches('/'), h.name)
            } else {
                dest_abs.clone()
            };
            let mode = match &args.chmod {
                Some(c) => fscopy::apply_chmod(c, 0o644, false)?,
                None => 0o644,
            };
            let (uid, gid) = owner.unwrap_or((0, 0));
            let at = root.parent_creating(&path)?;
            at.remove(false)?;
            let mut f = at.create(0o600)?;
            std::io::Write::write_all(&mut f, h.content.as_bytes())
                .map_err(|e| at.io_error("write", e))?;
            at.chown(uid, gid)?;
            at.set_mode(mode)?;
        }
        let sources: Vec<String> = args
            .sources
            .iter()
            .map(|s| s.value.clone())
            .filter(|s| !is_url(s))
            .collect();
        if sources.is_empty() {
            return Ok(());
        }
        match &step.copy_from {
            None => {
                let attrs = Attrs {
                    owner: Some(owner.unwrap_or((0, 0))),
                    chmod: args.chmod.clone(),
                };
                let items = self.context_items(&sources, args, &step.workdir, dest_is_dir)?;
                let tops: Vec<String> = if add {
                    let files = self.context_files()?;
                    sources
                        .iter()
                        .flat_map(|s| {
                            let depth = clean_segments(s).len();
                            self.build
                                .ctx
                                .resolve(s, &files)
                                .unwrap_or_default()
                                .into_iter()
                                .filter(move |p| p.split('/').count() == depth)
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                for (k, item) in items.iter().enumerate() {
                    let src = self.build.ctx.root().join(&item.source);
                    if add
                        && tops.contains(&item.source)
                        && src.is_file()
                        && fscopy::is_archive(&src)
                    {
                        let scratch = self.scratch.join(format!("step-{id}-x{k}"));
                        fs::create_dir_all(&scratch).map_err(|source| StepError::Io {
                            path: scratch.clone(),
                            source,
                        })?;
                        // An archive is extracted into the destination directory, whatever its
                        // spelling (`/opt/vendor` or `/opt/vendor/`), as Docker does.
                        let r = fscopy::extract(&src, root, &dest_abs, &scratch);
                        let _ = fs::remove_dir_all(&scratch);
                        r?;
                        continue;
                    }
                    fscopy::copy_entry(&src, root, &item.dest, &attrs)?;
                }
            }
            Some(from) => {
                let attrs = Attrs {
                    owner,
                    chmod: args.chmod.clone(),
                };
                let src_fs = self.mount_source(from, &format!("step-{id}-from"))?;
                if sources.len() > 1 && !(args.dest.ends_with('/') || dest_is_dir) {
                    return Err(CopyPlanError::DestinationNotDirectory {
                        dest: args.dest.clone(),
                        count: sources.len(),
                    }
                    .into());
                }
                for s in &sources {
                    let segs = clean_segments(s);
                    let (prefix, last) = match segs.split_last() {
                        Some((last, prefix)) => (prefix.join("/"), (*last).to_string()),
                        None => (String::new(), ".".to_string()),
                    };
                    // The source stage runs nothing: its tree can be walked by host path.
                    let base = Root::open(&src_fs.merged)?.host_path(&prefix)?;
                    let ctx = Context::with_patterns(&base, IgnorePatterns::default());
                    let files = ctx.files().map_err(|e| StepError::Io {
                        path: base.clone(),
                        source: io::Error::other(e),
                    })?;
                    let one = [last];
                    let items = copy_items(
                        &ctx,
                        &files,
                        &CopyRequest {
                            sources: &one,
                            dest: &args.dest,
                            workdir: &step.workdir,
                            parents: false,
                            exclude: &args.exclude,
                            dest_is_dir: dest_is_dir || sources.len() > 1,
                        },
                    )?;
                    for item in &items {
                        fscopy::copy_entry(&base.join(&item.source), root, &item.dest, &attrs)?;
                    }
                }
                drop(src_fs);
            }
        }
        Ok(())
    }
}

/// Why executing a step stopped: a failed process (already a build error) or a step error.
enum Exec {
    Failed(Box<BuildError>),
    Step(StepError),
}

impl<E: Into<StepError>> From<E> for Exec {
    fn from(e: E) -> Self {
        Exec::Step(e.into())
    }
}

/// Whether `path` in `root` is a directory (following symlinks in the root).
fn is_dir(root: &Root, path: &str) -> bool {
    root.stat(path, true).is_ok_and(|st| {
        berth_image::rootpath::FileType::from_raw_mode(st.st_mode)
            == berth_image::rootpath::FileType::Directory
    })
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

/// The argv of a RUN: exec form as is; shell form through the shell; a command that is
/// only a heredoc runs the heredoc as the script, other heredocs are handed to the shell.
fn run_argv(
    config: &ImageConfig,
    command: &Command,
    heredocs: &[crate::dockerfile::Heredoc],
) -> Vec<String> {
    match (command, heredocs) {
        (Command::Shell(s), [h])
            if s.trim_start_matches("<<")
                .trim_start_matches('-')
                .trim_matches(['"', '\''])
                == h.name =>
        {
            if let Some(interp) = h.content.strip_prefix("#!") {
                let first = interp.lines().next().unwrap_or_default();
                let mut argv: Vec<String> = first.split_whitespace().map(str::to_string).collect();
                argv.push("-c".into());
                argv.push(h.content.clone());
                argv
            } else {
                let mut v = config.shell();
                v.push(h.content.clone());
                v
            }
        }
        (Command::Shell(s), hs) if !hs.is_empty() => {
            let mut script = s.clone();
            for h in hs {
                script.push('\n');
                script.push_str(&h.content);
                script.push_str(&h.name);
            }
            let mut v = config.shell();
            v.push(script);
            v
        }
        _ => config.argv(command),
    }
}

/// The history `created_by` of a step, BuildKit's style.
fn created_by(inst: &Instruction, config: &ImageConfig) -> String {
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
    match inst {
        Instruction::Run { command, .. } => {
            format!("RUN {} # buildkit", config.argv(command).join(" "))
        }
        Instruction::Copy { args, from, .. } => {
            let from = from
                .as_ref()
                .map(|f| format!("--from={} ", f.value))
                .unwrap_or_default();
            let srcs: Vec<&str> = args.sources.iter().map(|s| s.value.as_str()).collect();
            format!("COPY {from}{} {} # buildkit", srcs.join(" "), args.dest)
        }
        Instruction::Add { args, .. } => {
            let srcs: Vec<&str> = args.sources.iter().map(|s| s.value.as_str()).collect();
            format!("ADD {} {} # buildkit", srcs.join(" "), args.dest)
        }
        Instruction::Workdir { path, .. } => format!("WORKDIR {path}"),
        Instruction::Env { vars, .. } => format!(
            "ENV {}",
            vars.iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Instruction::Label { labels, .. } => format!(
            "LABEL {}",
            labels
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Instruction::Cmd { command, .. } => format!("CMD {}", json(&config.argv(command))),
        Instruction::Entrypoint { command, .. } => {
            format!("ENTRYPOINT {}", json(&config.argv(command)))
        }
        Instruction::Expose { ports, .. } => format!("EXPOSE map[{}]", ports.join(" ")),
        Instruction::Volume { paths, .. } => format!("VOLUME {}", json(paths)),
        Instruction::User { user, .. } => format!("USER {user}"),
        Instruction::Shell { shell, .. } => format!("SHELL {}", json(shell)),
        Instruction::Stopsignal { signal, .. } => format!("STOPSIGNAL {signal}"),
        Instruction::Healthcheck { .. } => "HEALTHCHECK".into(),
        Instruction::Onbuild { expression, .. } => format!("ONBUILD {expression}"),
        Instruction::Maintainer { name, .. } => format!("MAINTAINER {name}"),
        other => other.keyword().to_string(),
    }
}

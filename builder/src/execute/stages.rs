//! The stage loop: each needed stage starts from its base (scratch, an image or an
//! earlier stage), then each of its steps is taken from the cache by its key or executed.
//! Metadata steps only change the config; ARG changes only the key.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::Instant;

use berth_image::manifest::{descriptor_digest, media_type_str, PlatformSpec};
use berth_image::reference::Reference;
use berth_image::snapshot::Snapshots;
use berth_image::store::{ResolvedImage, Store, StoreError};
use serde_json::Value;

use super::history::created_by;
use super::step::{Exec, StepError};
use super::{Build, BuildError};
use crate::cache::{CacheIndex, CacheRecord, LayerFormat, LayerRef};
use crate::cachekey::CacheKey;
use crate::commit::WrittenImage;
use crate::dockerfile::Instruction;
use crate::fetch::Fetched;
use crate::imageconfig::ImageConfig;
use crate::plan::{Base, StageBase, Step};
use crate::progress::Event;

/// What a finished stage leaves for later stages.
#[derive(Debug, Clone)]
pub(super) struct StageOut {
    pub(super) key: CacheKey,
    pub(super) layers: Vec<LayerRef>,
    pub(super) config: ImageConfig,
    pub(super) end: StageBase,
    /// When the newest layer was made (a cache hit keeps its original time), so an
    /// unchanged rebuild writes the same config and so the same image id, as BuildKit.
    pub(super) created: String,
}

/// The layers of an image, as the cache and the commit code name them.
pub(super) fn layers_of(img: &ResolvedImage) -> Result<Vec<LayerRef>, StoreError> {
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

/// The running state of a build.
pub(super) struct Runner<'a> {
    pub(super) build: &'a Build,
    pub(super) store: &'a Store,
    pub(super) snapshots: Snapshots,
    pub(super) cache: CacheIndex,
    pub(super) format: LayerFormat,
    pub(super) scratch: PathBuf,
    pub(super) created: String,
    pub(super) step_no: usize,
    pub(super) progress: &'a mut dyn FnMut(&Event),
    pub(super) outs: BTreeMap<usize, StageOut>,
    pub(super) files: Option<Vec<String>>,
    pub(super) fetched: BTreeMap<String, Fetched>,
}

impl<'a> Runner<'a> {
    /// A runner for `build` against `store`, with scratch files under `scratch` and
    /// `created` as the time of the layers it makes.
    pub(super) fn new(
        build: &'a Build,
        store: &'a Store,
        scratch: PathBuf,
        created: String,
        progress: &'a mut dyn FnMut(&Event),
    ) -> Self {
        Runner {
            build,
            store,
            snapshots: Snapshots::new(store.snapshots_dir()),
            cache: CacheIndex::new(store.root()),
            format: LayerFormat {
                compression: build.opts.compression,
                mtime: build.opts.source_date_epoch,
            },
            scratch,
            created,
            step_no: 0,
            progress,
            outs: BTreeMap::new(),
            files: None,
            fetched: BTreeMap::new(),
        }
    }
}

impl Runner<'_> {
    /// Builds every needed stage, then exports the target.
    pub(super) fn run_all(&mut self) -> Result<WrittenImage, BuildError> {
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
        self.export(target)
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

    /// The image `r` names in the store, for the host's platform.
    pub(super) fn resolve_image(&self, r: &Reference) -> Result<ResolvedImage, StoreError> {
        self.store.resolve(&r.to_string(), &PlatformSpec::host())
    }

    /// What stage `index` starts from: the key, layers and config of its base, and the
    /// environment its steps expand against.
    fn stage_start(
        &self,
        index: usize,
    ) -> Result<(CacheKey, Vec<LayerRef>, ImageConfig, StageBase), BuildError> {
        match &self.build.plan.stages[index].base {
            Base::Scratch => {
                let host = PlatformSpec::host();
                let c = ImageConfig::scratch(&host.os, &host.architecture);
                Ok((
                    CacheKey::base("scratch"),
                    Vec::new(),
                    c,
                    StageBase::default(),
                ))
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
                Ok((
                    CacheKey::base(&img.config_digest.to_string()),
                    layers,
                    c,
                    base,
                ))
            }
            Base::Stage(p) => {
                let parent = self.outs.get(p).cloned().ok_or_else(|| BuildError::Io {
                    path: self.scratch.clone(),
                    source: io::Error::other(format!(
                        "stage {p} was not built before stage {index}"
                    )),
                })?;
                Ok((
                    parent.key,
                    parent.layers,
                    parent.config.inherit(),
                    parent.end,
                ))
            }
        }
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
        let (key, layers, mut config, base) = self.stage_start(index)?;
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
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::commit::write_image;
    use crate::execute::fixture::Fixture;

    fn config_of(f: &Fixture, tag: &str) -> Value {
        let img = f.store.resolve(tag, &PlatformSpec::host()).unwrap();
        serde_json::from_slice(&img.config_raw).unwrap()
    }

    #[test]
    fn metadata_steps_change_the_config_and_make_no_layer() {
        let f = Fixture::new(
            "FROM scratch\nENV A=1\nARG X=2\nLABEL l=$X\nCMD [\"sh\"]\n",
            &[],
            &["out:1"],
        );
        let mut events = Vec::new();
        let mut progress = |e: &Event| events.push(e.clone());
        let written = f.runner(&mut progress).run_all().unwrap();
        let doc = config_of(&f, "out:1");
        assert_eq!(doc["config"]["Labels"], json!({"l": "2"}));
        assert_eq!(doc["config"]["Cmd"], json!(["sh"]));
        let env: Vec<&str> = doc["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(env.contains(&"A=1") && env.iter().any(|e| e.starts_with("PATH=")));
        let history: Vec<(&str, bool)> = doc["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["created_by"].as_str().unwrap(), h["empty_layer"] == true))
            .collect();
        assert_eq!(
            history,
            [
                ("ENV A=1", true),
                ("LABEL l=2", true),
                ("CMD [\"sh\"]", true)
            ]
        );
        assert_eq!(doc["created"], "1970-01-01T00:16:40Z");
        let labels: Vec<(usize, &str)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Start { id, label } => Some((*id, label.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            labels,
            [
                (1, "[stage-0 1/5] FROM scratch"),
                (2, "[stage-0 2/5] ENV A=1"),
                (3, "[stage-0 3/5] ARG X=2"),
                (4, "[stage-0 4/5] LABEL l=$X"),
                (5, "[stage-0 5/5] CMD [\"sh\"]"),
            ]
        );
        let done = events
            .iter()
            .filter(|e| matches!(e, Event::Done { .. }))
            .count();
        assert_eq!(done, 5);
        // The same build again writes the same image.
        let mut progress = |_: &Event| {};
        assert_eq!(f.runner(&mut progress).run_all().unwrap().id, written.id);
    }

    #[test]
    fn stages_start_from_store_images_and_earlier_stages() {
        let f = Fixture::new(
            "FROM base:1 AS one\nENV B=$BASE\nFROM one\nENV C=${B}2\nWORKDIR /srv/x\n",
            &[],
            &["out:1"],
        );
        let host = PlatformSpec::host();
        let base = json!({
            "architecture": host.architecture,
            "os": host.os,
            "config": {"Env": ["BASE=1"], "WorkingDir": "/srv"},
        });
        write_image(&f.store, base, &[], &[Reference::parse("base:1").unwrap()]).unwrap();
        let mut progress = |_: &Event| {};
        let mut runner = f.runner(&mut progress);
        let one = runner.run_stage(0).unwrap();
        assert_eq!(one.end.workdir, "/srv");
        assert_eq!(one.end.env.get("B").map(String::as_str), Some("1"));
        runner.outs.insert(0, one.clone());
        let (key, layers, config, start) = runner.stage_start(1).unwrap();
        assert_eq!((key, layers.len()), (one.key, 0));
        assert_eq!(start, one.end);
        assert!(config.env().contains(&("B".to_string(), "1".to_string())));
        let err = Fixture::new("FROM missing:1\n", &[], &[])
            .runner(&mut |_: &Event| {})
            .run_all()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::Image { reference, .. } if reference.contains("missing:1"))
        );
    }
}

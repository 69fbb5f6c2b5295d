//! What a step reads besides its parent, as cache keys: the content of the context files
//! a COPY, ADD or `RUN --mount=type=bind` reads, what an ADD downloads, and the stage or
//! image a `--from` names.

use std::io;

use super::stages::Runner;
use super::step::{is_url, local_sources, StepError};
use crate::cachekey::{copy_content_key, CacheKey};
use crate::copyplan::{copy_items, CopyItem, CopyRequest};
use crate::dockerfile::{CopyArgs, Instruction, MountType};
use crate::plan::{FromRef, Step};

impl Runner<'_> {
    /// The files of the build context (listed once per build).
    pub(super) fn context_files(&mut self) -> Result<Vec<String>, StepError> {
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
    pub(super) fn inputs(&mut self, step: &Step) -> Result<Vec<CacheKey>, StepError> {
        match &step.instruction {
            Instruction::Copy { args, .. } => self.copy_inputs(step, args, None),
            Instruction::Add { args, checksum, .. } => {
                self.copy_inputs(step, args, checksum.as_deref())
            }
            Instruction::Run { mounts, .. } => {
                let mut keys = Vec::new();
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
                Ok(keys)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The keys of a COPY or ADD: its `--from`, or each URL's content and the context
    /// files it copies.
    fn copy_inputs(
        &mut self,
        step: &Step,
        args: &CopyArgs,
        checksum: Option<&str>,
    ) -> Result<Vec<CacheKey>, StepError> {
        let mut keys = Vec::new();
        if let Some(from) = &step.copy_from {
            keys.extend(self.key_of_from(from)?);
            return Ok(keys);
        }
        for url in args.sources.iter().map(|s| &s.value).filter(|s| is_url(s)) {
            // A pinned checksum is the content's identity: no download is needed to know
            // the key.
            let id = match checksum {
                Some(c) => c.to_string(),
                None => self.fetch(url, None)?.digest,
            };
            keys.push(CacheKey::base(&format!("{url} {id}")));
        }
        let local = local_sources(args);
        if !local.is_empty() {
            let items = self.context_items(&local, args, &step.workdir, false)?;
            keys.push(copy_content_key(&self.build.ctx, &items)?);
        }
        Ok(keys)
    }

    /// Where a COPY or ADD from the context puts each file.
    pub(super) fn context_items(
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
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::execute::fixture::Fixture;
    use crate::execute::stages::StageOut;
    use crate::imageconfig::ImageConfig;
    use crate::plan::StageBase;
    use crate::progress::Event;

    const SUM: &str = "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d";

    #[test]
    fn context_copies_are_keyed_by_the_content_they_read() {
        let f = Fixture::new(
            "FROM scratch\nCOPY a.txt /x\nENV E=1\nRUN --mount=type=bind,source=dir,target=/d \
             --mount=type=cache,target=/c true\n",
            &[("a.txt", "one"), ("b.txt", "other"), ("dir/f", "f")],
            &[],
        );
        let steps = f.steps(0);
        let mut progress = |_: &Event| {};
        let mut runner = f.runner(&mut progress);
        let copy = runner.inputs(&steps[0]).unwrap();
        assert_eq!(copy.len(), 1);
        assert!(runner.inputs(&steps[1]).unwrap().is_empty());
        // Only the bind mount reads the context; a cache mount reads nothing.
        let run = runner.inputs(&steps[2]).unwrap();
        assert_eq!(run.len(), 1);
        fs::write(f.ctx.path().join("b.txt"), "changed").unwrap();
        assert_eq!(runner.inputs(&steps[0]).unwrap(), copy);
        fs::write(f.ctx.path().join("a.txt"), "two").unwrap();
        assert_ne!(runner.inputs(&steps[0]).unwrap(), copy);
        fs::write(f.ctx.path().join("dir/f"), "g").unwrap();
        assert_ne!(runner.inputs(&steps[2]).unwrap(), run);
    }

    #[test]
    fn a_pinned_checksum_keys_an_add_without_downloading() {
        let f = Fixture::new(
            &format!("FROM scratch\nADD --checksum={SUM} https://example.invalid/f /f\n"),
            &[],
            &[],
        );
        let steps = f.steps(0);
        let mut progress = |_: &Event| {};
        let keys = f.runner(&mut progress).inputs(&steps[0]).unwrap();
        assert_eq!(
            keys,
            [CacheKey::base(&format!("https://example.invalid/f {SUM}"))]
        );
    }

    #[test]
    fn copy_from_a_stage_is_keyed_by_that_stage() {
        let f = Fixture::new(
            "FROM scratch AS one\nFROM scratch\nCOPY --from=one /a /b\n",
            &[],
            &[],
        );
        let steps = f.steps(1);
        let mut progress = |_: &Event| {};
        let mut runner = f.runner(&mut progress);
        assert!(runner.inputs(&steps[0]).unwrap().is_empty());
        let key = CacheKey::base("stage one");
        runner.outs.insert(
            0,
            StageOut {
                key,
                layers: Vec::new(),
                config: ImageConfig::scratch("linux", "amd64"),
                end: StageBase::default(),
                created: String::new(),
            },
        );
        assert_eq!(runner.inputs(&steps[0]).unwrap(), [key]);
    }
}

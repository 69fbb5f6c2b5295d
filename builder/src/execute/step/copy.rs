//! COPY and ADD of local sources: heredocs written as files, files from the build
//! context (ADD extracts local archives) or from the tree of a `--from` stage or image,
//! with `--chown` and `--chmod`.

use std::fs;
use std::io;
use std::path::Path;

use berth_image::rootpath::Root;
use berth_image::users;

use super::{in_workdir, is_dir, local_sources, StepError};
use crate::context::{clean_segments, Context};
use crate::copyplan::{copy_items, CopyPlanError, CopyRequest};
use crate::dockerfile::{CopyArgs, Instruction};
use crate::execute::stages::Runner;
use crate::fscopy::{self, Attrs};
use crate::ignore::IgnorePatterns;
use crate::plan::{FromRef, Step};

/// Where a COPY or ADD puts things.
struct Dest<'r> {
    /// The step's root.
    root: &'r Root,
    /// The destination, absolute in the root.
    abs: String,
    /// Whether the destination is a directory already (before the step writes).
    is_dir: bool,
}

impl Runner<'_> {
    /// COPY or ADD of everything but URLs into `root`.
    pub(super) fn copy(
        &mut self,
        id: usize,
        step: &Step,
        args: &CopyArgs,
        root: &Path,
    ) -> Result<(), StepError> {
        let owner = match &args.chown {
            Some(spec) => Some(users::chown_ids(root, spec)?),
            None => None,
        };
        let abs = in_workdir(&step.workdir, &args.dest);
        let root = &Root::open(root)?.no_xdev();
        let dest = Dest {
            root,
            is_dir: is_dir(root, &abs),
            abs,
        };
        write_heredocs(&dest, args, owner)?;
        if local_sources(args).is_empty() {
            return Ok(());
        }
        match &step.copy_from {
            None => {
                let attrs = Attrs {
                    owner: Some(owner.unwrap_or((0, 0))),
                    chmod: args.chmod.clone(),
                };
                self.copy_from_context(id, step, args, &dest, &attrs)
            }
            Some(from) => {
                let attrs = Attrs {
                    owner,
                    chmod: args.chmod.clone(),
                };
                self.copy_from_tree(id, step, from, args, &dest, &attrs)
            }
        }
    }

    /// Files from the build context; ADD extracts an archive named at the top level.
    fn copy_from_context(
        &mut self,
        id: usize,
        step: &Step,
        args: &CopyArgs,
        dest: &Dest,
        attrs: &Attrs,
    ) -> Result<(), StepError> {
        let add = matches!(step.instruction, Instruction::Add { .. });
        let sources = local_sources(args);
        let items = self.context_items(&sources, args, &step.workdir, dest.is_dir)?;
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
            if add && tops.contains(&item.source) && src.is_file() && fscopy::is_archive(&src) {
                let scratch = self.scratch.join(format!("step-{id}-x{k}"));
                fs::create_dir_all(&scratch).map_err(|source| StepError::Io {
                    path: scratch.clone(),
                    source,
                })?;
                // An archive is extracted into the destination directory, whatever its
                // spelling (`/opt/vendor` or `/opt/vendor/`), as Docker does.
                let r = fscopy::extract(&src, dest.root, &dest.abs, &scratch);
                let _ = fs::remove_dir_all(&scratch);
                r?;
                continue;
            }
            fscopy::copy_entry(&src, dest.root, &item.dest, attrs)?;
        }
        Ok(())
    }

    /// Files from the tree of a `--from` stage or image.
    fn copy_from_tree(
        &mut self,
        id: usize,
        step: &Step,
        from: &FromRef,
        args: &CopyArgs,
        dest: &Dest,
        attrs: &Attrs,
    ) -> Result<(), StepError> {
        let sources = local_sources(args);
        let src_fs = self.mount_source(from, &format!("step-{id}-from"))?;
        if sources.len() > 1 && !(args.dest.ends_with('/') || dest.is_dir) {
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
                    dest_is_dir: dest.is_dir || sources.len() > 1,
                },
            )?;
            for item in &items {
                fscopy::copy_entry(&base.join(&item.source), dest.root, &item.dest, attrs)?;
            }
        }
        drop(src_fs);
        Ok(())
    }
}

/// Writes each heredoc of a COPY as a file: in the destination directory under its
/// name, or as the destination file; mode 0644 unless `--chmod`, owned by `owner`
/// (root by default).
fn write_heredocs(
    dest: &Dest,
    args: &CopyArgs,
    owner: Option<(u32, u32)>,
) -> Result<(), StepError> {
    for h in &args.heredocs {
        let path = if args.dest.ends_with('/') || dest.is_dir {
            format!("{}/{}", dest.abs.trim_end_matches('/'), h.name)
        } else {
            dest.abs.clone()
        };
        let mode = match &args.chmod {
            Some(c) => fscopy::apply_chmod(c, 0o644, false)?,
            None => 0o644,
        };
        let (uid, gid) = owner.unwrap_or((0, 0));
        let at = dest.root.parent_creating(&path)?;
        at.remove(false)?;
        let mut f = at.create(0o600)?;
        std::io::Write::write_all(&mut f, h.content.as_bytes())
            .map_err(|e| at.io_error("write", e))?;
        at.chown(uid, gid)?;
        at.set_mode(mode)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::fixture::{chown_me, mode, Fixture};
    use crate::progress::Event;

    /// Runs the COPY or ADD at step `n` of stage 0 into an empty root.
    fn copy_into(f: &Fixture, n: usize) -> Result<tempfile::TempDir, StepError> {
        let root = tempfile::tempdir().unwrap();
        let step = f.steps(0).remove(n);
        let (Instruction::Copy { args, .. } | Instruction::Add { args, .. }) = &step.instruction
        else {
            panic!("not a COPY or ADD")
        };
        let mut progress = |_: &Event| {};
        f.runner(&mut progress).copy(n, &step, args, root.path())?;
        Ok(root)
    }

    #[test]
    fn heredocs_become_files() {
        let me = chown_me();
        let f = Fixture::new(
            &format!(
                "FROM scratch\nCOPY {me} <<EOF /etc/greeting\nhello\nEOF\n\
                 COPY {me} --chmod=0600 <<one <<two /in/\n1\none\n2\ntwo\n"
            ),
            &[],
            &[],
        );
        let root = copy_into(&f, 0).unwrap();
        let greeting = root.path().join("etc/greeting");
        assert_eq!(fs::read_to_string(&greeting).unwrap(), "hello\n");
        assert_eq!(mode(&greeting), 0o644);
        let root = copy_into(&f, 1).unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("in/one")).unwrap(),
            "1\n"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("in/two")).unwrap(),
            "2\n"
        );
        assert_eq!(mode(&root.path().join("in/two")), 0o600);
    }

    #[test]
    fn context_files_land_at_the_destination() {
        let me = chown_me();
        let f = Fixture::new(
            &format!(
                "FROM scratch\nWORKDIR /app\nCOPY {me} src/ lib/\nCOPY {me} --chmod=0751 a.txt b.txt /bin/\n\
                 COPY {me} a.txt b.txt /not-a-dir\n"
            ),
            &[("src/x/y", "y"), ("a.txt", "a"), ("b.txt", "b")],
            &[],
        );
        let root = copy_into(&f, 1).unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("app/lib/x/y")).unwrap(),
            "y"
        );
        let root = copy_into(&f, 2).unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("bin/b.txt")).unwrap(),
            "b"
        );
        assert_eq!(mode(&root.path().join("bin/a.txt")), 0o751);
        assert!(matches!(copy_into(&f, 3), Err(StepError::CopyPlan(_))));
    }

    #[test]
    fn add_of_only_urls_copies_nothing_from_the_context() {
        let f = Fixture::new(
            "FROM scratch\nADD https://example.invalid/x /x\n",
            &[("x", "local")],
            &[],
        );
        let root = copy_into(&f, 0).unwrap();
        assert!(!root.path().join("x").exists());
    }
}

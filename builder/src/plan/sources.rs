//! Where COPY, ADD and `RUN --mount` take files from: `--from` resolved to an earlier
//! stage or an image, sources kept inside the context, `ADD --checksum` checked, and
//! the words of their arguments expanded.

use berth_image::digest::Digest;

use super::validate::valid_chmod;
use super::{FromRef, Plan, PlanError, PlanErrorKind};
use crate::context::clean_segments;
use crate::dockerfile::{CopyArgs, RunMount, Span, Spanned, Vars};

fn is_url(source: &str) -> bool {
    source.contains("://") || source.starts_with("git@")
}

impl Plan {
    /// Resolves a `--from` value seen in stage `current`.
    pub(super) fn resolve_from(
        &self,
        current: usize,
        from: &Spanned<String>,
        value: String,
    ) -> Result<FromRef, PlanError> {
        if let Ok(index) = value.parse::<usize>() {
            if index < current {
                return Ok(FromRef::Stage(index));
            }
            return Err(self.err(
                PlanErrorKind::UndefinedStage {
                    name: value,
                    reason: format!(
                        "stage index {index} is not defined before this stage (index {current})"
                    ),
                },
                from.span,
            ));
        }
        match self.stage_by_name(&value) {
            Some(i) if i < current => Ok(FromRef::Stage(i)),
            Some(i) if i == current => Err(self.err(PlanErrorKind::CircularStage(value), from.span)),
            Some(i) => Err(self.err(
                PlanErrorKind::UndefinedStage {
                    name: value,
                    reason: format!(
                        "it is defined later (line {}); a stage can only use stages defined before it",
                        self.stages[i].span.line
                    ),
                },
                from.span,
            )),
            None => Ok(FromRef::Image(self.image_ref(&value, from.span)?)),
        }
    }

    /// `ADD --checksum` must be a digest and every source an http(s) URL.
    pub(super) fn check_checksum(
        &self,
        value: &str,
        sources: &[Spanned<String>],
        span: Span,
    ) -> Result<(), PlanError> {
        if let Err(e) = value.parse::<Digest>() {
            return Err(self.err(
                PlanErrorKind::InvalidChecksum {
                    value: value.to_string(),
                    reason: e.to_string(),
                },
                span,
            ));
        }
        if let Some(s) = sources
            .iter()
            .find(|s| !(s.value.starts_with("http://") || s.value.starts_with("https://")))
        {
            return Err(self.err(
                PlanErrorKind::InvalidChecksum {
                    value: value.to_string(),
                    reason: format!("--checksum needs http(s) URL sources, not {:?}", s.value),
                },
                s.span,
            ));
        }
        Ok(())
    }

    pub(super) fn expand_copy(
        &self,
        kw: &'static str,
        span: Span,
        c: &CopyArgs,
        vars: &Vars,
        from_context: bool,
    ) -> Result<CopyArgs, PlanError> {
        let mut sources = Vec::new();
        for s in &c.sources {
            let value = self.expand(&s.value, vars, "source", s.span)?;
            if from_context && !is_url(&value) && clean_segments(&value).first() == Some(&"..") {
                return Err(self.err(
                    PlanErrorKind::SourceOutsideContext {
                        instruction: kw,
                        path: value,
                    },
                    s.span,
                ));
            }
            sources.push(Spanned {
                value,
                span: s.span,
            });
        }
        let opt = |v: &Option<String>, what| -> Result<Option<String>, PlanError> {
            v.as_deref()
                .map(|v| self.expand(v, vars, what, span))
                .transpose()
        };
        let mut heredocs = c.heredocs.clone();
        for h in heredocs.iter_mut().filter(|h| h.expand) {
            h.content = self
                .expander
                .keeping_quotes(&h.content, vars)
                .map_err(|source| {
                    self.err(
                        PlanErrorKind::Expand {
                            what: "heredoc",
                            source,
                        },
                        span,
                    )
                })?;
        }
        Ok(CopyArgs {
            sources,
            heredocs,
            dest: self.expand(&c.dest, vars, "destination", span)?,
            chown: opt(&c.chown, "--chown")?,
            chmod: match opt(&c.chmod, "--chmod")? {
                Some(mode) if !valid_chmod(&mode) => {
                    return Err(self.err(PlanErrorKind::InvalidChmod(mode), span))
                }
                other => other,
            },
            link: c.link,
            parents: c.parents,
            exclude: c
                .exclude
                .iter()
                .map(|e| self.expand(e, vars, "--exclude", span))
                .collect::<Result<_, _>>()?,
            json: c.json,
        })
    }

    pub(super) fn expand_mount(
        &self,
        index: usize,
        m: &RunMount,
        vars: &Vars,
        span: Span,
    ) -> Result<(RunMount, Option<FromRef>), PlanError> {
        let opt = |v: &Option<String>| -> Result<Option<String>, PlanError> {
            v.as_deref()
                .map(|v| self.expand(v, vars, "--mount option", span))
                .transpose()
        };
        let (from, r) = match &m.from {
            Some(f) => {
                let value = self.expand(&f.value, vars, "--mount from", f.span)?;
                let r = self.resolve_from(index, f, value.clone())?;
                (
                    Some(Spanned {
                        value,
                        span: f.span,
                    }),
                    Some(r),
                )
            }
            None => (None, None),
        };
        Ok((
            RunMount {
                kind: m.kind,
                target: opt(&m.target)?,
                source: opt(&m.source)?,
                from,
                readonly: m.readonly,
                id: opt(&m.id)?,
                sharing: m.sharing,
                mode: opt(&m.mode)?,
                uid: opt(&m.uid)?,
                gid: opt(&m.gid)?,
                required: m.required,
                size: opt(&m.size)?,
            },
            r,
        ))
    }
}

#[cfg(test)]
mod tests {
    use berth_image::reference::Reference;

    use super::super::fixture::{opts, plan, MULTI};
    use super::*;
    use crate::dockerfile::Instruction;
    use crate::plan::StageBase;

    #[test]
    fn copy_from_image_and_stage_refs() {
        let p = plan(MULTI, opts(None, &[])).unwrap();
        let r = p.resolve_stage(4, &StageBase::default()).unwrap();
        assert_eq!(r.steps[0].mount_from, vec![Some(FromRef::Stage(3))]);
        assert_eq!(r.steps[1].copy_from, Some(FromRef::Stage(2)));
        assert_eq!(
            r.steps[2].copy_from,
            Some(FromRef::Image(Reference::parse("busybox").unwrap()))
        );
    }

    #[test]
    fn copy_source_outside_context() {
        let e = plan("FROM a\nARG D=..\nCOPY ok $D/secret /x\n", opts(None, &[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:3:9: COPY source \"../secret\" is outside the build context\n  |\n3 | COPY ok $D/secret /x\n  |         ^"
        );
        // From another stage, `..` is resolved inside that stage's root.
        assert!(plan(
            "FROM a AS b\nFROM c\nCOPY --from=b ../x /x\n",
            opts(None, &[])
        )
        .is_ok());
        assert!(plan("FROM a\nADD https://e.com/../x /x\n", opts(None, &[])).is_ok());
    }

    #[test]
    fn chmod_and_checksum_are_checked() {
        let sum = "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d";
        assert!(plan(
            &format!("FROM a\nADD --checksum={sum} https://e.com/x /x\n"),
            opts(None, &[])
        )
        .is_ok());
        let e = plan(
            "FROM a\nADD --checksum=sha256:abc https://e.com/x /x\n",
            opts(None, &[]),
        )
        .unwrap_err();
        assert!(matches!(e.kind, PlanErrorKind::InvalidChecksum { .. }));
        let e = plan(
            &format!("FROM a\nADD --checksum={sum} local.tgz /x\n"),
            opts(None, &[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs http(s) URL sources"));
        let e = plan("FROM a\nCOPY --chmod=u*x a /b\n", opts(None, &[])).unwrap_err();
        assert_eq!(e.kind, PlanErrorKind::InvalidChmod("u*x".into()));
    }

    #[test]
    fn copy_and_mount_options_are_expanded() {
        let text = "FROM scratch AS tool\nFROM scratch\nARG U=1000 X=tmp T=/t\n\
                    COPY --chown=$U --chmod=0755 --exclude=*.$X a /d/\n\
                    RUN --mount=type=cache,target=$T,uid=$U,id=c$U --mount=from=tool,target=/m x\n";
        let p = plan(text, opts(None, &[])).unwrap();
        let r = p.resolve_stage(1, &StageBase::default()).unwrap();
        let Instruction::Copy { args, .. } = &r.steps[1].instruction else {
            panic!("not a COPY")
        };
        assert_eq!(args.chown.as_deref(), Some("1000"));
        assert_eq!(args.exclude, ["*.tmp"]);
        let Instruction::Run { mounts, .. } = &r.steps[2].instruction else {
            panic!("not a RUN")
        };
        assert_eq!(mounts[0].target.as_deref(), Some("/t"));
        assert_eq!(mounts[0].uid.as_deref(), Some("1000"));
        assert_eq!(mounts[0].id.as_deref(), Some("c1000"));
        assert_eq!(r.steps[2].mount_from, [None, Some(FromRef::Stage(0))]);
    }
}

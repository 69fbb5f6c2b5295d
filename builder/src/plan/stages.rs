//! Making the plan: the Dockerfile split into stages at each FROM (global ARGs before
//! the first one), the target found, each stage walked once for the stages it needs,
//! and the build pruned to what the target needs.

use std::collections::BTreeSet;

use super::walk::Walk;
use super::{
    platform_args, Base, Plan, PlanError, PlanErrorKind, PlanOptions, Stage, StageBase, PROXY_ARGS,
};
use crate::dockerfile::{Dockerfile, Expander, Instruction, Span, Spanned, Vars};

impl Plan {
    /// Splits `df` into stages, resolves stage references and prunes to the target.
    pub fn new(df: &Dockerfile, opts: &PlanOptions) -> Result<Self, PlanError> {
        let auto_args = platform_args(&opts.platform);
        let mut plan = Plan {
            stages: Vec::new(),
            target: 0,
            needed: Vec::new(),
            meta: Vars::new(),
            build_args: opts.build_args.clone(),
            auto_args,
            expander: Expander::new(df.directives.escape),
            source: df.source.clone(),
        };
        let mut used_args: BTreeSet<String> = BTreeSet::new();
        plan.split_stages(&df.instructions, &mut used_args)?;
        if plan.stages.is_empty() {
            return Err(PlanError {
                at: None,
                kind: PlanErrorKind::NoStages,
            });
        }
        plan.target = match &opts.target {
            None => plan.stages.len() - 1,
            Some(t) => plan.stage_by_name(t).ok_or_else(|| PlanError {
                at: None,
                kind: PlanErrorKind::TargetNotFound(t.clone()),
            })?,
        };
        let walks = plan.walk_all(&mut used_args);
        plan.needed = plan.needed_by_target(&walks)?;
        let unused: Vec<&String> = opts
            .build_args
            .keys()
            .filter(|k| !used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            tracing::warn!(?unused, "build args were not consumed by any ARG");
        }
        Ok(plan)
    }

    /// Global ARGs (before the first FROM) into `meta`, then one stage per FROM with the
    /// instructions up to the next. Every ARG name declared goes to `used_args`.
    fn split_stages(
        &mut self,
        instructions: &[Instruction],
        used_args: &mut BTreeSet<String>,
    ) -> Result<(), PlanError> {
        let mut meta = self.auto_args.clone();
        for inst in instructions {
            match inst {
                Instruction::Arg { span, args } if self.stages.is_empty() => {
                    for decl in args {
                        used_args.insert(decl.name.clone());
                        let value = self.arg_value(decl, &meta, *span)?;
                        if let Some(v) = value {
                            meta.insert(decl.name.clone(), v);
                        }
                    }
                }
                Instruction::From {
                    span,
                    image,
                    name,
                    platform,
                } => {
                    let stage =
                        self.new_stage(*span, image, name.as_deref(), platform.as_deref(), &meta)?;
                    self.stages.push(stage);
                }
                other => {
                    if let Some(stage) = self.stages.last_mut() {
                        stage.instructions.push(other.clone());
                    }
                }
            }
        }
        self.meta = meta;
        Ok(())
    }

    /// The stage a FROM starts: its base (scratch, an earlier stage by name, or an
    /// image) and `--platform`, expanded with the global ARGs `meta`.
    fn new_stage(
        &self,
        span: Span,
        image: &Spanned<String>,
        name: Option<&str>,
        platform: Option<&str>,
        meta: &Vars,
    ) -> Result<Stage, PlanError> {
        let expanded = self.expand(&image.value, meta, "FROM image", image.span)?;
        if expanded.is_empty() {
            return Err(self.err(
                PlanErrorKind::EmptyBaseName(image.value.clone()),
                image.span,
            ));
        }
        let base = if expanded.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else {
            match self.stage_by_name(&expanded) {
                Some(i) => Base::Stage(i),
                None => Base::Image(self.image_ref(&expanded, image.span)?),
            }
        };
        let platform = match platform {
            Some(p) => Some(self.expand(p, meta, "FROM --platform", span)?),
            None => None,
        };
        Ok(Stage {
            index: self.stages.len(),
            name: name.map(str::to_string),
            base,
            platform,
            span,
            instructions: Vec::new(),
            deps: Vec::new(),
        })
    }

    /// Walks every stage once to find its dependencies (and the ARGs it declares); a
    /// stage's errors matter only if the target needs it.
    /// The base images' environments are not known yet, so `${v:?}` may not fail here;
    /// resolve_stage checks it with the real environment.
    fn walk_all(&mut self, used_args: &mut BTreeSet<String>) -> Vec<Result<Walk, PlanError>> {
        let planning = Plan {
            expander: self.expander.tolerating_unset(),
            ..self.clone()
        };
        let mut walks: Vec<Result<Walk, PlanError>> = Vec::new();
        for i in 0..self.stages.len() {
            let walk = planning.walk(i, &StageBase::default());
            if let Ok(w) = &walk {
                self.stages[i].deps = w.deps.iter().copied().collect();
                for step in &w.steps {
                    if let Instruction::Arg { args, .. } = &step.instruction {
                        used_args.extend(args.iter().map(|a| a.name.clone()));
                    }
                }
            }
            walks.push(walk);
        }
        walks
    }

    /// The target and the stages it needs, ascending; the error of a needed stage
    /// whose walk failed.
    fn needed_by_target(&self, walks: &[Result<Walk, PlanError>]) -> Result<Vec<usize>, PlanError> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![self.target];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            if let Err(e) = &walks[i] {
                return Err(e.clone());
            }
            todo.extend(self.stages[i].deps.iter().copied());
        }
        Ok(needed.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{opts, plan, MULTI};
    use super::*;

    #[test]
    fn graph_and_pruning() {
        let p = plan(MULTI, opts(None, &[])).unwrap();
        assert_eq!(p.target, 4);
        assert_eq!(p.needed, vec![0, 2, 3, 4]);
        assert_eq!(p.stages[2].base, Base::Stage(0));
        assert_eq!(p.stages[3].base, Base::Scratch);
        let p = plan(MULTI, opts(Some("build"), &[])).unwrap();
        assert_eq!(p.needed, vec![0, 2]);
        let p = plan(MULTI, opts(Some("UNUSED"), &[])).unwrap();
        assert_eq!(p.needed, vec![1]);
        let e = plan(MULTI, opts(Some("nope"), &[])).unwrap_err();
        assert_eq!(e.to_string(), "target stage \"nope\" could not be found");
    }

    #[test]
    fn undefined_and_circular_stages() {
        let e = plan(
            "FROM a AS one\nCOPY --from=two /x /y\nFROM b AS two\n",
            opts(Some("one"), &[]),
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("Dockerfile:2:6: undefined stage \"two\": it is defined later (line 3)"));
        let e = plan("FROM a AS one\nCOPY --from=one /x /y\n", opts(None, &[])).unwrap_err();
        assert_eq!(e.kind, PlanErrorKind::CircularStage("one".into()));
        let e = plan("FROM a\nCOPY --from=3 /x /y\n", opts(None, &[])).unwrap_err();
        assert!(matches!(e.kind, PlanErrorKind::UndefinedStage { .. }));
        // Errors in skipped stages do not matter.
        assert!(plan(
            "FROM a AS bad\nCOPY --from=bad /x /y\nFROM b\n",
            opts(None, &[])
        )
        .is_ok());
    }

    #[test]
    fn image_references_are_validated() {
        let e = plan("FROM Alpine\n", opts(None, &[])).unwrap_err();
        assert!(matches!(e.kind, PlanErrorKind::InvalidReference { .. }));
        assert!(e
            .to_string()
            .starts_with("Dockerfile:1:6: invalid reference format"));
        let e = plan("FROM a\nCOPY --from=bad:tag:x /a /b\n", opts(None, &[])).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("Dockerfile:2:6: invalid reference format"));
    }

    #[test]
    fn expansion_errors_have_positions() {
        let p = plan("FROM a\nENV A=\"${B:?must be set}\"\n", opts(None, &[])).unwrap();
        let e = p.resolve_stage(0, &StageBase::default()).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("Dockerfile:2:1: cannot expand ENV value: B: must be set"));
        let e = plan("FROM ${IMG}\n", opts(None, &[])).unwrap_err();
        assert!(matches!(e.kind, PlanErrorKind::EmptyBaseName(_)));
        assert_eq!(
            plan("ARG A=1\n", opts(None, &[])).unwrap_err().kind,
            PlanErrorKind::NoStages
        );
    }
}

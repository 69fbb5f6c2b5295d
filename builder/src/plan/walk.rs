//! The walk through one stage, as BuildKit's dispatcher does it: each instruction's
//! words expanded against the ARGs and ENV visible at that point (ENV wins), the working
//! directory tracked, and the stages its `--from`s need collected. One function per
//! instruction that changes what later ones see or expands words.

use std::collections::BTreeSet;

use super::validate::{valid_port, valid_signal};
use super::{Base, FromRef, Plan, PlanError, PlanErrorKind, StageBase, Step, PROXY_ARGS};
use crate::context::clean_segments;
use crate::dockerfile::{ArgDecl, CopyArgs, Instruction, KeyValue, RunMount, Span, Spanned, Vars};

/// What the walk of a stage learns.
#[derive(Debug)]
pub(super) struct Walk {
    /// The steps in order.
    pub(super) steps: Vec<Step>,
    /// The environment at the end of the stage.
    pub(super) env: Vars,
    /// The working directory at the end of the stage.
    pub(super) workdir: String,
    /// The earlier stages it needs.
    pub(super) deps: BTreeSet<usize>,
}

/// The state of a walk part-way through a stage.
struct Walker<'p> {
    plan: &'p Plan,
    /// The stage walked.
    index: usize,
    /// ARGs declared so far, with values.
    args: Vars,
    /// The environment so far.
    env: Vars,
    /// The working directory so far.
    workdir: String,
    /// Stages needed so far.
    deps: BTreeSet<usize>,
    /// Proxy build args (left out of `args` unless declared).
    proxy: Vars,
}

impl Plan {
    /// Walks stage `index` from `base`.
    pub(super) fn walk(&self, index: usize, base: &StageBase) -> Result<Walk, PlanError> {
        let stage = &self.stages[index];
        let mut walker = Walker::new(self, index, base);
        let steps = stage
            .instructions
            .iter()
            .map(|inst| walker.step(inst))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Walk {
            steps,
            env: walker.env,
            workdir: walker.workdir,
            deps: walker.deps,
        })
    }
}

impl<'p> Walker<'p> {
    fn new(plan: &'p Plan, index: usize, base: &StageBase) -> Self {
        let mut deps = BTreeSet::new();
        if let Base::Stage(parent) = plan.stages[index].base {
            deps.insert(parent);
        }
        let proxy: Vars = plan
            .build_args
            .iter()
            .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Walker {
            plan,
            index,
            args: Vars::new(),
            env: base.env.clone(),
            workdir: format!("/{}", clean_segments(&base.workdir).join("/")),
            deps,
            proxy,
        }
    }

    /// The step of `inst`, and what it changes for the instructions after it.
    fn step(&mut self, inst: &Instruction) -> Result<Step, PlanError> {
        // ENV wins over ARG of the same name.
        let mut vars = self.args.clone();
        vars.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let vars = &vars;
        let mut copy_from = None;
        let mut mount_from = Vec::new();
        let instruction = match inst {
            Instruction::Arg { span, args } => Instruction::Arg {
                span: *span,
                args: self.arg(*span, args, vars)?,
            },
            Instruction::Env { span, vars: pairs } => Instruction::Env {
                span: *span,
                vars: self.env(*span, pairs, vars)?,
            },
            Instruction::Label { span, labels } => Instruction::Label {
                span: *span,
                labels: self.labels(*span, labels, vars)?,
            },
            Instruction::Expose { span, ports } => Instruction::Expose {
                span: *span,
                ports: self.ports(*span, ports, vars)?,
            },
            Instruction::Volume { span, paths } => Instruction::Volume {
                span: *span,
                paths: paths
                    .iter()
                    .map(|p| self.plan.expand(p, vars, "VOLUME path", *span))
                    .collect::<Result<_, _>>()?,
            },
            Instruction::User { span, user } => Instruction::User {
                span: *span,
                user: self.plan.expand(user, vars, "USER", *span)?,
            },
            Instruction::Workdir { span, path } => Instruction::Workdir {
                span: *span,
                path: self.workdir(*span, path, vars)?,
            },
            Instruction::Stopsignal { span, signal } => Instruction::Stopsignal {
                span: *span,
                signal: self.stopsignal(*span, signal, vars)?,
            },
            Instruction::Copy { span, from, args } => {
                let (from, r) = match from {
                    Some(f) => {
                        let (f, r) = self.copy_from(f, vars)?;
                        (Some(f), Some(r))
                    }
                    None => (None, None),
                };
                copy_from = r;
                let args = self
                    .plan
                    .expand_copy("COPY", *span, args, vars, from.is_none())?;
                Instruction::Copy {
                    span: *span,
                    from,
                    args,
                }
            }
            Instruction::Add {
                span,
                checksum,
                keep_git_dir,
                args,
            } => Instruction::Add {
                span: *span,
                checksum: self.checksum(*span, checksum.as_deref(), args, vars)?,
                keep_git_dir: *keep_git_dir,
                args: self.plan.expand_copy("ADD", *span, args, vars, true)?,
            },
            Instruction::Run {
                span,
                command,
                heredocs,
                mounts,
                network,
                security,
            } => Instruction::Run {
                span: *span,
                command: command.clone(),
                heredocs: heredocs.clone(),
                mounts: self.mounts(*span, mounts, vars, &mut mount_from)?,
                network: *network,
                security: *security,
            },
            other => other.clone(),
        };
        Ok(Step {
            instruction,
            args: self.args.clone(),
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            proxy: self
                .proxy
                .iter()
                .filter(|(k, _)| !self.args.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            copy_from,
            mount_from,
        })
    }

    /// ARG: each declaration's value (the build arg, else its default expanded, else a
    /// global ARG or an automatic platform arg), visible to the declarations after it.
    fn arg(
        &mut self,
        span: Span,
        decls: &[ArgDecl],
        vars: &Vars,
    ) -> Result<Vec<ArgDecl>, PlanError> {
        let mut scoped = vars.clone();
        let mut out = Vec::new();
        for decl in decls {
            let value = match (&decl.default, self.plan.build_args.get(&decl.name)) {
                (_, Some(v)) => Some(v.clone()),
                (Some(d), None) => Some(self.plan.expand(d, &scoped, "ARG default", span)?),
                (None, None) => self
                    .plan
                    .meta
                    .get(&decl.name)
                    .or_else(|| self.plan.auto_args.get(&decl.name))
                    .cloned(),
            };
            if let Some(v) = &value {
                self.args.insert(decl.name.clone(), v.clone());
                if !self.env.contains_key(&decl.name) {
                    scoped.insert(decl.name.clone(), v.clone());
                }
            }
            out.push(ArgDecl {
                name: decl.name.clone(),
                default: value,
            });
        }
        Ok(out)
    }

    /// ENV: every pair expanded against what was visible before the instruction, then set.
    fn env(
        &mut self,
        span: Span,
        pairs: &[KeyValue],
        vars: &Vars,
    ) -> Result<Vec<KeyValue>, PlanError> {
        let mut out = Vec::new();
        for kv in pairs {
            out.push(KeyValue {
                key: self.plan.expand(&kv.key, vars, "ENV name", span)?,
                value: self.plan.expand(&kv.value, vars, "ENV value", span)?,
            });
        }
        for kv in &out {
            self.env.insert(kv.key.clone(), kv.value.clone());
        }
        Ok(out)
    }

    /// LABEL: names and values expanded.
    fn labels(
        &self,
        span: Span,
        labels: &[KeyValue],
        vars: &Vars,
    ) -> Result<Vec<KeyValue>, PlanError> {
        labels
            .iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: self.plan.expand(&kv.key, vars, "LABEL name", span)?,
                    value: self.plan.expand(&kv.value, vars, "LABEL value", span)?,
                })
            })
            .collect()
    }

    /// EXPOSE: each entry expanded, split on whitespace and checked.
    fn ports(&self, span: Span, ports: &[String], vars: &Vars) -> Result<Vec<String>, PlanError> {
        let mut out = Vec::new();
        for p in ports {
            for port in self
                .plan
                .expand(p, vars, "EXPOSE port", span)?
                .split_whitespace()
            {
                if !valid_port(port) {
                    return Err(self.plan.err(PlanErrorKind::InvalidPort(port.into()), span));
                }
                out.push(port.to_string());
            }
        }
        Ok(out)
    }

    /// WORKDIR: the path expanded; the working directory becomes it, joined to the
    /// current one when relative, and cleaned.
    fn workdir(&mut self, span: Span, path: &str, vars: &Vars) -> Result<String, PlanError> {
        let path = self.plan.expand(path, vars, "WORKDIR", span)?;
        let joined = if path.starts_with('/') {
            path.clone()
        } else {
            format!("{}/{path}", self.workdir)
        };
        self.workdir = format!("/{}", clean_segments(&joined).join("/"));
        Ok(path)
    }

    /// STOPSIGNAL: expanded and checked.
    fn stopsignal(&self, span: Span, signal: &str, vars: &Vars) -> Result<String, PlanError> {
        let signal = self.plan.expand(signal, vars, "STOPSIGNAL", span)?;
        if !valid_signal(&signal) {
            return Err(self.plan.err(PlanErrorKind::InvalidSignal(signal), span));
        }
        Ok(signal)
    }

    /// `COPY --from` expanded and resolved; a stage it names becomes a dependency.
    fn copy_from(
        &mut self,
        from: &Spanned<String>,
        vars: &Vars,
    ) -> Result<(Spanned<String>, FromRef), PlanError> {
        let value = self
            .plan
            .expand(&from.value, vars, "COPY --from", from.span)?;
        let r = self.plan.resolve_from(self.index, from, value.clone())?;
        if let FromRef::Stage(i) = r {
            self.deps.insert(i);
        }
        Ok((
            Spanned {
                value,
                span: from.span,
            },
            r,
        ))
    }

    /// `ADD --checksum`: expanded and checked against the sources.
    fn checksum(
        &self,
        span: Span,
        checksum: Option<&str>,
        args: &CopyArgs,
        vars: &Vars,
    ) -> Result<Option<String>, PlanError> {
        let Some(v) = checksum else {
            return Ok(None);
        };
        let v = self.plan.expand(v, vars, "ADD --checksum", span)?;
        self.plan.check_checksum(&v, &args.sources, span)?;
        Ok(Some(v))
    }

    /// RUN's `--mount`s expanded; each one's source goes to `mount_from` and a stage it
    /// names becomes a dependency.
    fn mounts(
        &mut self,
        span: Span,
        mounts: &[RunMount],
        vars: &Vars,
        mount_from: &mut Vec<Option<FromRef>>,
    ) -> Result<Vec<RunMount>, PlanError> {
        let mut out = Vec::new();
        for m in mounts {
            let (m, r) = self.plan.expand_mount(self.index, m, vars, span)?;
            if let Some(FromRef::Stage(i)) = r {
                self.deps.insert(i);
            }
            mount_from.push(r);
            out.push(m);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use berth_image::reference::Reference;

    use super::super::fixture::{opts, plan};
    use super::*;

    #[test]
    fn global_args_only_in_from_unless_redeclared() {
        let text = "ARG IMG=alpine\nARG V=1\nFROM ${IMG}:${V}\nRUN a\nARG V\nRUN b\nARG W=${V}-x\nENV E=$V\n";
        let p = plan(text, opts(None, &[])).unwrap();
        assert_eq!(
            p.stages[0].base,
            Base::Image(Reference::parse("alpine:1").unwrap())
        );
        let r = p.resolve_stage(0, &StageBase::default()).unwrap();
        assert!(r.steps[0].args.is_empty());
        assert_eq!(r.steps[2].args.get("V").map(String::as_str), Some("1"));
        assert_eq!(r.steps[3].args.get("W").map(String::as_str), Some("1-x"));
        assert_eq!(r.env.get("E").map(String::as_str), Some("1"));
        let p = plan(text, opts(None, &[("V", "2"), ("IMG", "busybox")])).unwrap();
        assert_eq!(
            p.stages[0].base,
            Base::Image(Reference::parse("busybox:2").unwrap())
        );
        let r = p.resolve_stage(0, &StageBase::default()).unwrap();
        assert_eq!(r.steps[3].args.get("W").map(String::as_str), Some("2-x"));
    }

    #[test]
    fn env_wins_over_arg_and_base_env_is_seen() {
        let text = "FROM a\nARG X=arg\nENV X=env\nWORKDIR /$X/$HOME\nARG X=again\nUSER $X\n";
        let p = plan(text, opts(None, &[])).unwrap();
        let base: Vars = [("HOME".to_string(), "/root".to_string())].into();
        let r = p
            .resolve_stage(
                0,
                &StageBase {
                    env: base,
                    workdir: "/".into(),
                },
            )
            .unwrap();
        let Instruction::Workdir { path, .. } = &r.steps[2].instruction else {
            panic!()
        };
        assert_eq!(path, "/env//root");
        let Instruction::User { user, .. } = &r.steps[4].instruction else {
            panic!()
        };
        assert_eq!(user, "env");
    }

    #[test]
    fn workdir_is_tracked_from_the_base() {
        let text = "FROM a\nRUN pwd\nWORKDIR src\nWORKDIR ../lib/./x\nWORKDIR /abs\n";
        let p = plan(text, opts(None, &[])).unwrap();
        let base = StageBase {
            env: Vars::new(),
            workdir: "/home/app".into(),
        };
        let r = p.resolve_stage(0, &base).unwrap();
        let dirs: Vec<&str> = r.steps.iter().map(|s| s.workdir.as_str()).collect();
        assert_eq!(
            dirs,
            ["/home/app", "/home/app/src", "/home/app/lib/x", "/abs"]
        );
        assert_eq!(r.as_base().workdir, "/abs");
        let r = p.resolve_stage(0, &StageBase::default()).unwrap();
        assert_eq!(r.steps[1].workdir, "/src");
    }

    #[test]
    fn platform_and_proxy_args() {
        let text = "FROM --platform=$BUILDPLATFORM a\nARG TARGETARCH\nRUN echo $TARGETARCH\nARG HTTP_PROXY\nRUN x\n";
        let p = plan(
            text,
            opts(None, &[("http_proxy", "p1"), ("HTTP_PROXY", "p2")]),
        )
        .unwrap();
        assert_eq!(p.stages[0].platform.as_deref(), Some("linux/amd64"));
        let r = p.resolve_stage(0, &StageBase::default()).unwrap();
        assert_eq!(
            r.steps[1].args.get("TARGETARCH").map(String::as_str),
            Some("amd64")
        );
        assert_eq!(r.steps[1].proxy.len(), 2);
        assert!(!r.steps[1].args.contains_key("HTTP_PROXY"));
        assert_eq!(
            r.steps[3].args.get("HTTP_PROXY").map(String::as_str),
            Some("p2")
        );
        assert_eq!(r.steps[3].proxy.len(), 1);
    }

    #[test]
    fn required_variables_are_checked_against_the_base_environment() {
        let p = plan(
            "FROM golang\nWORKDIR ${GOPATH:?no GOPATH}\n",
            opts(None, &[]),
        )
        .unwrap();
        let base: Vars = [("GOPATH".to_string(), "/go".to_string())].into();
        let r = p
            .resolve_stage(
                0,
                &StageBase {
                    env: base,
                    workdir: "/".into(),
                },
            )
            .unwrap();
        assert!(
            matches!(&r.steps[0].instruction, Instruction::Workdir { path, .. } if path == "/go")
        );
        let e = p.resolve_stage(0, &StageBase::default()).unwrap_err();
        assert!(e.to_string().contains("GOPATH: no GOPATH"));
    }

    #[test]
    fn exposed_ports_are_checked_after_expansion() {
        let e = plan("FROM a\nARG P=http\nEXPOSE $P\n", opts(None, &[])).unwrap_err();
        assert_eq!(e.kind, PlanErrorKind::InvalidPort("http".into()));
    }

    #[test]
    fn env_pairs_see_the_state_before_and_arg_declarations_see_earlier_ones() {
        let p = plan("FROM a\nENV A=1 B=x$A\nARG C=c D=$C\n", opts(None, &[])).unwrap();
        let r = p.resolve_stage(0, &StageBase::default()).unwrap();
        assert_eq!(r.steps[0].env.get("B").map(String::as_str), Some("x"));
        assert_eq!(r.steps[1].args.get("D").map(String::as_str), Some("c"));
        let Instruction::Arg { args, .. } = &r.steps[1].instruction else {
            panic!("not an ARG")
        };
        assert_eq!(args[1].default.as_deref(), Some("c"));
    }

    #[test]
    fn metadata_words_are_expanded() {
        let text = "FROM a\nARG V=val P=\"81 82/udp\"\nLABEL k$V=$V\nVOLUME /$V\nUSER $V\n\
                    STOPSIGNAL SIG${V:+TERM}\nEXPOSE 80 $P\n";
        let p = plan(text, opts(None, &[])).unwrap();
        let r = p.resolve_stage(0, &StageBase::default()).unwrap();
        let expanded: Vec<Instruction> =
            r.steps[1..].iter().map(|s| s.instruction.clone()).collect();
        let [Instruction::Label { labels, .. }, Instruction::Volume { paths, .. }, Instruction::User { user, .. }, Instruction::Stopsignal { signal, .. }, Instruction::Expose { ports, .. }] =
            &expanded[..]
        else {
            panic!("unexpected steps: {expanded:?}")
        };
        assert_eq!(
            (labels[0].key.as_str(), labels[0].value.as_str()),
            ("kval", "val")
        );
        assert_eq!(paths, &["/val"]);
        assert_eq!(user, "val");
        assert_eq!(signal, "SIGTERM");
        assert_eq!(ports, &["80", "81", "82/udp"]);
    }

    #[test]
    fn from_references_become_dependencies() {
        let text = "FROM scratch AS a\nFROM scratch AS b\nFROM a\nARG S=a\n\
                    COPY --from=$S /x /y\nRUN --mount=from=b,target=/m true\n";
        let p = plan(text, opts(None, &[])).unwrap();
        let w = p.walk(2, &StageBase::default()).unwrap();
        assert_eq!(w.deps.into_iter().collect::<Vec<_>>(), [0, 1]);
        let Instruction::Copy { from, .. } = &w.steps[1].instruction else {
            panic!("not a COPY")
        };
        assert_eq!(from.as_ref().map(|f| f.value.as_str()), Some("a"));
        assert_eq!(w.steps[1].copy_from, Some(FromRef::Stage(0)));
        assert_eq!(w.steps[2].mount_from, [Some(FromRef::Stage(1))]);
        assert!(w.steps[0].copy_from.is_none() && w.steps[0].mount_from.is_empty());
    }
}

//! The build plan: stages, the dependency graph between them (FROM an earlier stage,
//! `COPY --from`, `RUN --mount from=`), pruning to what `--target` needs, and ARG scoping
//! and variable expansion per step as BuildKit's dispatcher does it.
//!
//! Scoping: ARGs before the first FROM (with `--build-arg` overrides and the automatic
//! platform args) are visible only in FROM lines unless a stage redeclares them with a bare
//! `ARG NAME`; an ARG inside a stage is visible from its declaration to the stage's end;
//! ENV (including the base image's) wins over an ARG of the same name. Proxy args
//! (`HTTP_PROXY` and friends) given with `--build-arg` reach RUN without a declaration but
//! stay out of cache keys.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use berth_image::digest::Digest;
use berth_image::reference::Reference;
use serde::{Serialize, Serializer};

use crate::context::clean_segments;
use crate::dockerfile::{
    source_ref, ArgDecl, CopyArgs, Dockerfile, ExpandError, Expander, Instruction, KeyValue,
    RunMount, Source, SourceRef, Span, Spanned, Vars,
};

/// Build args that need no ARG declaration to reach RUN steps, and are left out of keys.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What went wrong while planning a build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanErrorKind {
    /// A Dockerfile without any FROM.
    #[error("the Dockerfile has no build stage: add a FROM instruction")]
    NoStages,
    /// `--target` naming no stage.
    #[error("target stage {0:?} could not be found")]
    TargetNotFound(String),
    /// `--from` naming a stage that is not defined before this one.
    #[error("undefined stage {name:?}: {reason}")]
    UndefinedStage {
        /// The reference as written after expansion.
        name: String,
        /// Why it does not resolve.
        reason: String,
    },
    /// A stage referring to itself.
    #[error("circular dependency: stage {0:?} refers to itself")]
    CircularStage(String),
    /// A word whose expansion failed.
    #[error("cannot expand {what}: {source}")]
    Expand {
        /// What was being expanded ("COPY source", "ENV value", ...).
        what: &'static str,
        /// The expansion error.
        source: ExpandError,
    },
    /// An EXPOSE entry that is not `port[-port][/tcp|udp|sctp]`.
    #[error(
        "invalid port {0:?} in EXPOSE: expected port[-port][/tcp|udp|sctp] with ports 1-65535"
    )]
    InvalidPort(String),
    /// A STOPSIGNAL that names no signal.
    #[error("invalid STOPSIGNAL {0:?}: expected a signal name such as SIGTERM or a number 1-64")]
    InvalidSignal(String),
    /// `--chmod` that is neither octal nor symbolic.
    #[error("invalid --chmod {0:?}: expected an octal mode such as 0755 or symbolic such as u+x")]
    InvalidChmod(String),
    /// `ADD --checksum` that is not a digest, or with a source that is not a URL.
    #[error("invalid ADD --checksum {value:?}: {reason}")]
    InvalidChecksum {
        /// The checksum after expansion.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// An image reference that does not parse.
    #[error("{reason}")]
    InvalidReference {
        /// Why, as berth-image reports it (names the reference).
        reason: String,
    },
    /// FROM whose image expands to nothing.
    #[error("base image name {0:?} expands to an empty string")]
    EmptyBaseName(String),
    /// A context source that climbs out of the context.
    #[error("{instruction} source {path:?} is outside the build context")]
    SourceOutsideContext {
        /// COPY or ADD.
        instruction: &'static str,
        /// The source after expansion.
        path: String,
    },
}

/// A planning error with the Dockerfile position it concerns, when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// Where, if the error concerns a line.
    pub at: Option<Box<SourceRef>>,
    /// What.
    pub kind: PlanErrorKind,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => at.render(f, &self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for PlanError {}

/// Inputs of a plan besides the Dockerfile.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    /// The platform builds run on and produce, `os/arch[/variant]`.
    pub platform: String,
}

impl Default for PlanOptions {
    fn default() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        Self {
            target: None,
            build_args: BTreeMap::new(),
            platform: format!("linux/{arch}"),
        }
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// `FROM scratch`: an empty filesystem.
    Scratch,
    /// An image, by its normalized reference.
    #[serde(serialize_with = "as_string")]
    Image(Reference),
    /// An earlier stage, by index.
    Stage(usize),
}

fn as_string<S: Serializer>(r: &Reference, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(r)
}

/// Where `COPY --from` or `RUN --mount from=` takes files from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FromRef {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image, by its normalized reference.
    #[serde(serialize_with = "as_string")]
    Image(Reference),
}

/// One FROM and the instructions up to the next.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Position in the file (0-based).
    pub index: usize,
    /// The `AS` name, lower-cased.
    pub name: Option<String>,
    /// What it starts from.
    pub base: Base,
    /// `--platform` after expansion.
    pub platform: Option<String>,
    /// Where its FROM is.
    pub span: Span,
    /// The instructions after FROM, as parsed.
    pub instructions: Vec<Instruction>,
    /// Stages it needs, ascending.
    pub deps: Vec<usize>,
}

/// One instruction ready to execute: words expanded, and the variables it sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The instruction with BuildKit's expandable words expanded (RUN, CMD, ENTRYPOINT,
    /// SHELL, HEALTHCHECK and ONBUILD stay as written: the shell or a later build expands).
    /// In an ARG, each `default` holds the value the ARG resolved to (if any).
    pub instruction: Instruction,
    /// Declared ARGs with values visible here (these go into the cache key and RUN's env).
    pub args: Vars,
    /// Environment visible here: the base image's and the stage's ENV.
    pub env: Vars,
    /// The working directory in effect (after this step, for WORKDIR), absolute and
    /// cleaned: where relative COPY destinations and RUN start.
    pub workdir: String,
    /// Undeclared proxy build args, passed to RUN but left out of the cache key.
    pub proxy: Vars,
    /// For `COPY --from`: where from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<FromRef>,
    /// For RUN: the source of each `--mount` (None: the build context or no source).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mount_from: Vec<Option<FromRef>>,
}

/// What a stage starts from, as far as expansion cares: the base image config's `Env`
/// and `WorkingDir`, or what the parent stage ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageBase {
    /// The environment.
    pub env: Vars,
    /// The working directory (absolute; empty means `/`).
    pub workdir: String,
}

impl Default for StageBase {
    fn default() -> Self {
        Self {
            env: Vars::new(),
            workdir: "/".into(),
        }
    }
}

/// A stage's steps and what it ends with (what a stage built on it inherits).
#[derive(Debug, Clone)]
pub struct ResolvedStage {
    /// The steps in order.
    pub steps: Vec<Step>,
    /// The environment at the end of the stage.
    pub env: Vars,
    /// The working directory at the end of the stage.
    pub workdir: String,
}

impl ResolvedStage {
    /// The base a stage built `FROM` this one starts with.
    pub fn as_base(&self) -> StageBase {
        StageBase {
            env: self.env.clone(),
            workdir: self.workdir.clone(),
        }
    }
}

/// A build: every stage of the Dockerfile, the target, and the stages it needs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// All stages in file order.
    pub stages: Vec<Stage>,
    /// The stage to produce.
    pub target: usize,
    /// The stages to build, in build order (dependencies first); others are skipped.
    pub needed: Vec<usize>,
    meta: Vars,
    build_args: BTreeMap<String, String>,
    auto_args: Vars,
    expander: Expander,
    source: Source,
}

fn platform_args(platform: &str) -> Vars {
    let mut parts = platform.splitn(3, '/');
    let os = parts.next().unwrap_or("linux").to_string();
    let arch = parts.next().unwrap_or_default().to_string();
    let variant = parts.next().unwrap_or_default().to_string();
    let mut v = Vars::new();
    for prefix in ["BUILD", "TARGET"] {
        v.insert(format!("{prefix}PLATFORM"), platform.to_string());
        v.insert(format!("{prefix}OS"), os.clone());
        v.insert(format!("{prefix}ARCH"), arch.clone());
        v.insert(format!("{prefix}VARIANT"), variant.clone());
    }
    v
}

/// An octal mode up to 0o7777, or symbolic clauses such as `u+x,go-w` (`[ugoa]*[-+=][rwxXst]*`).
fn valid_chmod(mode: &str) -> bool {
    if !mode.is_empty() && mode.chars().all(|c| c.is_digit(8)) {
        return u32::from_str_radix(mode, 8).is_ok_and(|m| m <= 0o7777);
    }
    !mode.is_empty()
        && mode.split(',').all(|clause| {
            let perms = clause.trim_start_matches(['u', 'g', 'o', 'a']);
            let mut chars = perms.chars();
            matches!(chars.next(), Some('+' | '-' | '='))
                && chars.all(|c| matches!(c, 'r' | 'w' | 'x' | 'X' | 's' | 't'))
        })
}

/// `port[-port][/tcp|udp|sctp]` with ports 1..=65535 (what `EXPOSE` accepts).
fn valid_port(spec: &str) -> bool {
    let (range, proto) = match spec.split_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".into()),
    };
    let port = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    let ports_ok = match range.split_once('-') {
        Some((lo, hi)) => port(lo) && port(hi) && lo.parse::<u16>().ok() <= hi.parse::<u16>().ok(),
        None => port(range),
    };
    ports_ok && matches!(proto.as_str(), "tcp" | "udp" | "sctp")
}

/// Linux signal names (with or without `SIG`, any case) and numbers 1..=64.
fn valid_signal(signal: &str) -> bool {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR",
    ];
    if let Ok(n) = signal.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if NAMES.contains(&name) || name == "SYS" {
        return true;
    }
    // SIGRTMIN+n / SIGRTMAX-n
    let rt = |prefix: &str, sep: char| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix(sep)
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n <= 30)
        })
    };
    rt("RTMIN", '+') || rt("RTMAX", '-')
}

fn is_url(source: &str) -> bool {
    source.contains("://") || source.starts_with("git@")
}

/// What the plan-time walk of a stage learns.
struct Walk {
    steps: Vec<Step>,
    env: Vars,
    workdir: String,
    deps: BTreeSet<usize>,
}

impl Plan {
    /// Splits `df` into stages, resolves stage references and prunes to the target.
    pub fn new(df: &Dockerfile, opts: &PlanOptions) -> Result<Self, PlanError> {
        let expander = Expander::new(df.directives.escape);
        let auto_args = platform_args(&opts.platform);
        let mut plan = Plan {
            stages: Vec::new(),
            target: 0,
            needed: Vec::new(),
            meta: Vars::new(),
            build_args: opts.build_args.clone(),
            auto_args: auto_args.clone(),
            expander,
            source: df.source.clone(),
        };
        let mut meta = auto_args;
        let mut used_args: BTreeSet<String> = BTreeSet::new();
        for inst in &df.instructions {
            match inst {
                Instruction::Arg { span, args } if plan.stages.is_empty() => {
                    for decl in args {
                        used_args.insert(decl.name.clone());
                        let value = plan.arg_value(decl, &meta, *span)?;
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
                    let expanded = plan.expand(&image.value, &meta, "FROM image", image.span)?;
                    if expanded.is_empty() {
                        return Err(plan.err(
                            PlanErrorKind::EmptyBaseName(image.value.clone()),
                            image.span,
                        ));
                    }
                    let base = if expanded.eq_ignore_ascii_case("scratch") {
                        Base::Scratch
                    } else {
                        match plan.stage_by_name(&expanded) {
                            Some(i) => Base::Stage(i),
                            None => Base::Image(plan.image_ref(&expanded, image.span)?),
                        }
                    };
                    let platform = match platform {
                        Some(p) => Some(plan.expand(p, &meta, "FROM --platform", *span)?),
                        None => None,
                    };
                    plan.stages.push(Stage {
                        index: plan.stages.len(),
                        name: name.clone(),
                        base,
                        platform,
                        span: *span,
                        instructions: Vec::new(),
                        deps: Vec::new(),
                    });
                }
                other => {
                    if let Some(stage) = plan.stages.last_mut() {
                        stage.instructions.push(other.clone());
                    }
                }
            }
        }
        plan.meta = meta;
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
        // Walk every stage once to find its dependencies; a stage's errors matter only
        // if the target needs it.
        // The base images' environments are not known yet, so `${v:?}` may not fail here;
        // resolve_stage checks it with the real environment.
        let planning = Plan {
            expander: plan.expander.tolerating_unset(),
            ..plan.clone()
        };
        let mut walks: Vec<Result<Walk, PlanError>> = Vec::new();
        for i in 0..plan.stages.len() {
            let walk = planning.walk(i, &StageBase::default());
            if let Ok(w) = &walk {
                plan.stages[i].deps = w.deps.iter().copied().collect();
                for step in &w.steps {
                    if let Instruction::Arg { args, .. } = &step.instruction {
                        used_args.extend(args.iter().map(|a| a.name.clone()));
                    }
                }
            }
            walks.push(walk);
        }
        let mut needed = BTreeSet::new();
        let mut todo = vec![plan.target];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            if let Err(e) = &walks[i] {
                return Err(e.clone());
            }
            todo.extend(plan.stages[i].deps.iter().copied());
        }
        plan.needed = needed.into_iter().collect();
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

    /// The value of global ARGs (before the first FROM), after build-arg overrides.
    pub fn meta_args(&self) -> &Vars {
        &self.meta
    }

    /// Expands a stage's steps. `base` is what the stage starts from: the image config's
    /// Env and WorkingDir, or [`ResolvedStage::as_base`] of the parent stage.
    pub fn resolve_stage(
        &self,
        index: usize,
        base: &StageBase,
    ) -> Result<ResolvedStage, PlanError> {
        let walk = self.walk(index, base)?;
        Ok(ResolvedStage {
            steps: walk.steps,
            env: walk.env,
            workdir: walk.workdir,
        })
    }

    fn err(&self, kind: PlanErrorKind, span: Span) -> PlanError {
        PlanError {
            at: Some(Box::new(source_ref(&self.source, span))),
            kind,
        }
    }

    fn stage_by_name(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    fn expand(
        &self,
        word: &str,
        vars: &Vars,
        what: &'static str,
        span: Span,
    ) -> Result<String, PlanError> {
        self.expander
            .word(word, vars)
            .map_err(|source| self.err(PlanErrorKind::Expand { what, source }, span))
    }

    /// An ARG's value: the build arg if given, else its default expanded, else none.
    fn arg_value(
        &self,
        decl: &ArgDecl,
        vars: &Vars,
        span: Span,
    ) -> Result<Option<String>, PlanError> {
        if let Some(v) = self.build_args.get(&decl.name) {
            return Ok(Some(v.clone()));
        }
        match &decl.default {
            Some(d) => Ok(Some(self.expand(d, vars, "ARG default", span)?)),
            None => Ok(None),
        }
    }

    /// Resolves a `--from` value seen in stage `current`.
    fn resolve_from(
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
    fn check_checksum(
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

    fn image_ref(&self, value: &str, span: Span) -> Result<Reference, PlanError> {
        Reference::parse(value).map_err(|e| {
            self.err(
                PlanErrorKind::InvalidReference {
                    reason: e.to_string(),
                },
                span,
            )
        })
    }

    fn walk(&self, index: usize, base: &StageBase) -> Result<Walk, PlanError> {
        let stage = &self.stages[index];
        let mut deps = BTreeSet::new();
        if let Base::Stage(parent) = stage.base {
            deps.insert(parent);
        }
        let mut args = Vars::new();
        let mut env = base.env.clone();
        let mut workdir = format!("/{}", clean_segments(&base.workdir).join("/"));
        let proxy: Vars = self
            .build_args
            .iter()
            .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut steps = Vec::new();
        for inst in &stage.instructions {
            // ENV wins over ARG of the same name.
            let mut vars = args.clone();
            vars.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
            let span = inst.span();
            let mut copy_from = None;
            let mut mount_from = Vec::new();
            let x = |word: &str, what: &'static str| self.expand(word, &vars, what, span);
            let expanded = match inst {
                Instruction::Arg { span, args: decls } => {
                    let mut scoped = vars.clone();
                    let mut out = Vec::new();
                    for decl in decls {
                        let value = match (&decl.default, self.build_args.get(&decl.name)) {
                            (_, Some(v)) => Some(v.clone()),
                            (Some(d), None) => {
                                Some(self.expand(d, &scoped, "ARG default", *span)?)
                            }
                            (None, None) => self
                                .meta
                                .get(&decl.name)
                                .or_else(|| self.auto_args.get(&decl.name))
                                .cloned(),
                        };
                        if let Some(v) = &value {
                            args.insert(decl.name.clone(), v.clone());
                            if !env.contains_key(&decl.name) {
                                scoped.insert(decl.name.clone(), v.clone());
                            }
                        }
                        out.push(ArgDecl {
                            name: decl.name.clone(),
                            default: value,
                        });
                    }
                    Instruction::Arg {
                        span: *span,
                        args: out,
                    }
                }
                Instruction::Env { span, vars: pairs } => {
                    let mut out = Vec::new();
                    for kv in pairs {
                        let pair = KeyValue {
                            key: x(&kv.key, "ENV name")?,
                            value: x(&kv.value, "ENV value")?,
                        };
                        out.push(pair);
                    }
                    for kv in &out {
                        env.insert(kv.key.clone(), kv.value.clone());
                    }
                    Instruction::Env {
                        span: *span,
                        vars: out,
                    }
                }
                Instruction::Label { span, labels } => Instruction::Label {
                    span: *span,
                    labels: labels
                        .iter()
                        .map(|kv| {
                            Ok(KeyValue {
                                key: x(&kv.key, "LABEL name")?,
                                value: x(&kv.value, "LABEL value")?,
                            })
                        })
                        .collect::<Result<_, PlanError>>()?,
                },
                Instruction::Expose { span, ports } => {
                    let mut out = Vec::new();
                    for p in ports {
                        for port in x(p, "EXPOSE port")?.split_whitespace() {
                            if !valid_port(port) {
                                return Err(
                                    self.err(PlanErrorKind::InvalidPort(port.into()), *span)
                                );
                            }
                            out.push(port.to_string());
                        }
                    }
                    Instruction::Expose {
                        span: *span,
                        ports: out,
                    }
                }
                Instruction::Volume { span, paths } => Instruction::Volume {
                    span: *span,
                    paths: paths
                        .iter()
                        .map(|p| x(p, "VOLUME path"))
                        .collect::<Result<_, _>>()?,
                },
                Instruction::User { span, user } => Instruction::User {
                    span: *span,
                    user: x(user, "USER")?,
                },
                Instruction::Workdir { span, path } => {
                    let path = x(path, "WORKDIR")?;
                    let joined = if path.starts_with('/') {
                        path.clone()
                    } else {
                        format!("{workdir}/{path}")
                    };
                    workdir = format!("/{}", clean_segments(&joined).join("/"));
                    Instruction::Workdir { span: *span, path }
                }
                Instruction::Stopsignal { span, signal } => {
                    let signal = x(signal, "STOPSIGNAL")?;
                    if !valid_signal(&signal) {
                        return Err(self.err(PlanErrorKind::InvalidSignal(signal), *span));
                    }
                    Instruction::Stopsignal {
                        span: *span,
                        signal,
                    }
                }
                Instruction::Copy {
                    span,
                    from,
                    args: c,
                } => {
                    let from = match from {
                        Some(f) => {
                            let value = self.expand(&f.value, &vars, "COPY --from", f.span)?;
                            let r = self.resolve_from(index, f, value.clone())?;
                            if let FromRef::Stage(i) = r {
                                deps.insert(i);
                            }
                            copy_from = Some(r);
                            Some(Spanned {
                                value,
                                span: f.span,
                            })
                        }
                        None => None,
                    };
                    let c = self.expand_copy("COPY", *span, c, &vars, from.is_none())?;
                    Instruction::Copy {
                        span: *span,
                        from,
                        args: c,
                    }
                }
                Instruction::Add {
                    span,
                    checksum,
                    keep_git_dir,
                    args: c,
                } => Instruction::Add {
                    span: *span,
                    checksum: match checksum {
                        None => None,
                        Some(v) => {
                            let v = x(v, "ADD --checksum")?;
                            self.check_checksum(&v, &c.sources, *span)?;
                            Some(v)
                        }
                    },
                    keep_git_dir: *keep_git_dir,
                    args: self.expand_copy("ADD", *span, c, &vars, true)?,
                },
                Instruction::Run {
                    span,
                    command,
                    heredocs,
                    mounts,
                    network,
                    security,
                } => {
                    let mut out = Vec::new();
                    for m in mounts {
                        let (m, r) = self.expand_mount(index, m, &vars, *span)?;
                        if let Some(FromRef::Stage(i)) = r {
                            deps.insert(i);
                        }
                        mount_from.push(r);
                        out.push(m);
                    }
                    Instruction::Run {
                        span: *span,
                        command: command.clone(),
                        heredocs: heredocs.clone(),
                        mounts: out,
                        network: *network,
                        security: *security,
                    }
                }
                other => other.clone(),
            };
            steps.push(Step {
                instruction: expanded,
                args: args.clone(),
                env: env.clone(),
                workdir: workdir.clone(),
                proxy: proxy
                    .iter()
                    .filter(|(k, _)| !args.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                copy_from,
                mount_from,
            });
        }
        Ok(Walk {
            steps,
            env,
            workdir,
            deps,
        })
    }

    fn expand_copy(
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

    fn expand_mount(
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
    use super::*;
    use crate::dockerfile::parse;

    fn plan(text: &str, opts: PlanOptions) -> Result<Plan, PlanError> {
        Plan::new(&parse("Dockerfile", text).unwrap(), &opts)
    }

    fn opts(target: Option<&str>, args: &[(&str, &str)]) -> PlanOptions {
        PlanOptions {
            target: target.map(str::to_string),
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            platform: "linux/amd64".into(),
        }
    }

    const MULTI: &str = "\
FROM alpine AS deps
RUN echo deps
FROM alpine AS unused
RUN echo unused
FROM deps AS build
COPY --from=deps /a /b
FROM scratch AS tool
FROM alpine
RUN --mount=from=tool,target=/t true
COPY --from=build /out /out
COPY --from=busybox:latest /bin/busybox /bin/
";

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
    fn chmod_and_checksum_are_checked() {
        assert!(valid_chmod("0755") && valid_chmod("644") && valid_chmod("u+x,go-w"));
        assert!(valid_chmod("a=rX") && !valid_chmod("0899") && !valid_chmod("17777"));
        assert!(!valid_chmod("u*x") && !valid_chmod(""));
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
    fn ports_and_signals_are_checked() {
        assert!(valid_port("80") && valid_port("53/udp") && valid_port("8000-8010/TCP"));
        assert!(!valid_port("0") && !valid_port("70000") && !valid_port("80/icmp"));
        assert!(!valid_port("90-80") && !valid_port("http"));
        assert!(valid_signal("SIGTERM") && valid_signal("kill") && valid_signal("9"));
        assert!(valid_signal("SIGRTMIN+3") && valid_signal("RTMAX"));
        assert!(!valid_signal("SIGFOO") && !valid_signal("0") && !valid_signal("65"));
        let e = plan("FROM a\nARG P=http\nEXPOSE $P\n", opts(None, &[])).unwrap_err();
        assert_eq!(e.kind, PlanErrorKind::InvalidPort("http".into()));
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

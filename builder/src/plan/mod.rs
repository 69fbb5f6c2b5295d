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
//!
//! The work is split by concern: `stages` makes the plan (stages, target, pruning),
//! `walk` expands one stage's instructions, `sources` resolves and expands what COPY,
//! ADD and `RUN --mount` read, `validate` checks modes, ports and signals, and `error`
//! holds [`PlanError`].

use std::collections::BTreeMap;

use berth_image::reference::Reference;
use serde::{Serialize, Serializer};

use crate::dockerfile::{source_ref, ArgDecl, Expander, Instruction, Source, Span, Vars};

mod error;
#[cfg(test)]
mod fixture;
mod sources;
mod stages;
mod validate;
mod walk;

pub use error::{PlanError, PlanErrorKind};

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

/// The automatic platform args (`BUILDPLATFORM`, `TARGETARCH`, ...) of `os/arch[/variant]`.
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

impl Plan {
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

    /// An error at `span` of the Dockerfile.
    fn err(&self, kind: PlanErrorKind, span: Span) -> PlanError {
        PlanError {
            at: Some(Box::new(source_ref(&self.source, span))),
            kind,
        }
    }

    /// The index of the stage named `name` (case-insensitive).
    fn stage_by_name(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// `word` expanded against `vars`; an error names `what` and points at `span`.
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

    /// `value` as an image reference; an error points at `span`.
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
}

#[cfg(test)]
mod tests {
    use super::fixture::{opts, plan};
    use super::*;

    #[test]
    fn platform_args_name_build_and_target_platforms() {
        let v = platform_args("linux/arm64/v8");
        assert_eq!(
            v.get("BUILDPLATFORM").map(String::as_str),
            Some("linux/arm64/v8")
        );
        assert_eq!(v.get("TARGETOS").map(String::as_str), Some("linux"));
        assert_eq!(v.get("TARGETARCH").map(String::as_str), Some("arm64"));
        assert_eq!(v.get("BUILDVARIANT").map(String::as_str), Some("v8"));
        assert_eq!(
            platform_args("linux/amd64")
                .get("TARGETVARIANT")
                .map(String::as_str),
            Some("")
        );
        assert!(PlanOptions::default().platform.starts_with("linux/"));
    }

    #[test]
    fn meta_args_hold_global_args_after_overrides() {
        let p = plan("ARG A=1 B=2\nFROM scratch\n", opts(None, &[("B", "3")])).unwrap();
        assert_eq!(p.meta_args().get("A").map(String::as_str), Some("1"));
        assert_eq!(p.meta_args().get("B").map(String::as_str), Some("3"));
        assert_eq!(
            p.meta_args().get("TARGETARCH").map(String::as_str),
            Some("amd64")
        );
    }

    #[test]
    fn stages_are_found_by_name_in_any_case() {
        let p = plan(
            "FROM scratch AS One\nFROM scratch AS two\n",
            opts(None, &[]),
        )
        .unwrap();
        assert_eq!(p.stage_by_name("ONE"), Some(0));
        assert_eq!(p.stage_by_name("two"), Some(1));
        assert_eq!(p.stage_by_name("three"), None);
    }

    #[test]
    fn a_resolved_stage_is_the_base_of_the_next() {
        let p = plan("FROM scratch\nENV A=1\nWORKDIR /w\n", opts(None, &[])).unwrap();
        let r = p.resolve_stage(0, &StageBase::default()).unwrap();
        let base = r.as_base();
        assert_eq!(base.workdir, "/w");
        assert_eq!(base.env.get("A").map(String::as_str), Some("1"));
    }

    #[test]
    fn bases_and_sources_serialize_by_reference() {
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(
            serde_json::to_value(Base::Image(r.clone())).unwrap(),
            serde_json::json!({"image": r.to_string()})
        );
        assert_eq!(
            serde_json::to_value(FromRef::Stage(2)).unwrap(),
            serde_json::json!({"stage": 2})
        );
        assert_eq!(serde_json::to_value(Base::Scratch).unwrap(), "scratch");
    }
}

//! The whole unprivileged path a build takes before it runs anything: parse, open the
//! context with its ignore file, plan, expand each needed stage and chain cache keys.

use std::fs;
use std::path::Path;

use berth_builder::cachekey::{copy_content_key, CacheKey};
use berth_builder::context::{Context, ContextError};
use berth_builder::copyplan::{copy_items, CopyPlanError, CopyRequest};
use berth_builder::dockerfile::{parse, Instruction};
use berth_builder::plan::{Base, FromRef, Plan, PlanOptions, StageBase};

const DOCKERFILE: &str = "\
# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS build
WORKDIR /src
COPY --exclude=*.md src/ ./
RUN make
FROM scratch AS docs
COPY docs/ /docs/
FROM ${BASE}
ARG VERSION=1
COPY --from=build /src/app /app
LABEL version=$VERSION
";

/// Keys of every step of every needed stage, in build order.
fn keys(dir: &Path, build_args: &[(&str, &str)]) -> Result<Vec<CacheKey>, CopyPlanError> {
    let df = parse("Dockerfile", DOCKERFILE).expect("parses");
    let opts = PlanOptions {
        build_args: build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..PlanOptions::default()
    };
    let plan = Plan::new(&df, &opts).expect("plans");
    let ctx = Context::open(dir, Some(&dir.join("Dockerfile")))?;
    let files = ctx.files()?;
    // (Context errors convert into CopyPlanError::Context.)
    let mut last_key: Vec<Option<CacheKey>> = vec![None; plan.stages.len()];
    let mut out = Vec::new();
    for &i in &plan.needed {
        let mut key = match &plan.stages[i].base {
            Base::Scratch => CacheKey::base("scratch"),
            Base::Image(r) => CacheKey::base(&r.to_string()),
            Base::Stage(s) => last_key[*s].expect("parent built first"),
        };
        let stage = plan
            .resolve_stage(i, &StageBase::default())
            .expect("resolves");
        for step in &stage.steps {
            let inputs = match (&step.instruction, &step.copy_from) {
                (Instruction::Copy { args, .. }, None) => {
                    let sources: Vec<String> =
                        args.sources.iter().map(|s| s.value.clone()).collect();
                    let req = CopyRequest {
                        sources: &sources,
                        dest: &args.dest,
                        workdir: &step.workdir,
                        parents: args.parents,
                        exclude: &args.exclude,
                        dest_is_dir: false,
                    };
                    let items = copy_items(&ctx, &files, &req)?;
                    vec![copy_content_key(&ctx, &items).expect("context files hash")]
                }
                (_, Some(FromRef::Stage(s))) => vec![last_key[*s].expect("source stage built")],
                _ => Vec::new(),
            };
            key = CacheKey::step(&key, step, &inputs).expect("step key");
            out.push(key);
        }
        last_key[i] = Some(key);
    }
    Ok(out)
}

fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, body) in [
        ("Dockerfile", DOCKERFILE),
        ("src/main.c", "int main() { return 0; }\n"),
        ("src/README.md", "notes\n"),
        ("docs/guide.txt", "guide\n"),
        ("secret.key", "hunter2\n"),
    ] {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        fs::write(p, body).expect("write");
    }
    fs::write(dir.path().join(".dockerignore"), "secret.key\n").expect("write ignore");
    dir
}

#[test]
fn the_docs_stage_is_skipped_and_keys_follow_content() {
    let dir = context();
    let before = keys(dir.path(), &[]).expect("keys");
    // build: WORKDIR, COPY, RUN; final: ARG, COPY --from, LABEL. docs is not needed.
    assert_eq!(before.len(), 6);

    // Files nobody copies, excluded ones and ignored ones change nothing.
    fs::write(dir.path().join("docs/guide.txt"), "changed\n").expect("write");
    fs::write(dir.path().join("src/README.md"), "changed\n").expect("write");
    fs::write(dir.path().join("secret.key"), "changed\n").expect("write");
    assert_eq!(keys(dir.path(), &[]).expect("keys"), before);

    // A copied byte changes the COPY step and everything after it in its stage, and in the
    // final stage what uses the build stage; the final stage's ARG does not depend on it.
    fs::write(dir.path().join("src/main.c"), "int main() { return 1; }\n").expect("write");
    let after = keys(dir.path(), &[]).expect("keys");
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert_ne!(after[2], before[2]);
    assert_eq!(after[3], before[3]);
    assert_ne!(after[4], before[4]);
    assert_ne!(after[5], before[5]);

    // A build arg changes the final stage only from the step that can see it.
    let arg = keys(dir.path(), &[("VERSION", "2")]).expect("keys");
    assert_eq!(arg[..3], after[..3]);
    assert_ne!(arg[3], after[3]);

    // Another base image changes every key.
    let base = keys(dir.path(), &[("BASE", "alpine")]).expect("keys");
    assert!(base.iter().zip(&after).all(|(a, b)| a != b));
}

#[test]
fn dockerfile_specific_ignore_file_replaces_the_context_one() {
    let dir = context();
    // Dockerfile.dockerignore wins over .dockerignore and ignores src/ entirely.
    fs::write(dir.path().join("Dockerfile.dockerignore"), "src\n").expect("write");
    match keys(dir.path(), &[]) {
        Err(CopyPlanError::Context(ContextError::NotFound(source))) => assert_eq!(source, "src/"),
        other => panic!("expected src/ to be missing from the context, got {other:?}"),
    }
}

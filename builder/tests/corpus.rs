//! Runs every case in `tests/data/dockerfiles/<case>/`: the `Dockerfile` must parse to
//! `expected.json` (the AST's serde form) or fail with exactly `expected-error.txt`.
//! With an `options.json` (`{"target": "...", "build_args": {...}}`) the case is also
//! planned: the plan must match `expected-plan.json` (stages, what is built, and every
//! built stage's expanded steps) or fail with `expected-error.txt`.
//! `BLESS=1` rewrites the expectations from the current output; review each diff by hand.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_builder::dockerfile::Dockerfile;
use berth_builder::plan::{Base, Plan, PlanError, PlanOptions, StageBase};
use serde_json::json;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/dockerfiles")
}

fn pretty(value: &impl serde::Serialize) -> String {
    let mut json = serde_json::to_string_pretty(value).expect("serializes");
    json.push('\n');
    json
}

/// The plan as JSON: stages, target, what is built, and the expanded steps of each built
/// stage (image bases start from an empty environment).
fn plan_json(df: &Dockerfile, options: &serde_json::Value) -> Result<String, PlanError> {
    let opts = PlanOptions {
        target: options["target"].as_str().map(str::to_string),
        build_args: serde_json::from_value(options["build_args"].clone()).unwrap_or_default(),
        platform: "linux/amd64".into(),
    };
    let plan = Plan::new(df, &opts)?;
    let mut bases: BTreeMap<usize, StageBase> = BTreeMap::new();
    let mut steps = serde_json::Map::new();
    for &i in &plan.needed {
        let base = match plan.stages[i].base {
            Base::Stage(parent) => bases.get(&parent).cloned().unwrap_or_default(),
            _ => StageBase::default(),
        };
        let resolved = plan.resolve_stage(i, &base)?;
        steps.insert(
            i.to_string(),
            serde_json::to_value(&resolved.steps).expect("steps"),
        );
        bases.insert(i, resolved.as_base());
    }
    let stages: Vec<_> = plan
        .stages
        .iter()
        .map(|s| json!({"index": s.index, "name": s.name, "base": s.base, "platform": s.platform, "deps": s.deps}))
        .collect();
    Ok(pretty(&json!({
        "meta_args": plan.meta_args(),
        "stages": stages,
        "target": plan.target,
        "needed": plan.needed,
        "steps": steps,
    })))
}

/// The outcome of a case: (file name, the text it should hold) for each expectation.
fn outcome(dir: &Path) -> Vec<(&'static str, String)> {
    let text = fs::read_to_string(dir.join("Dockerfile")).expect("case has a Dockerfile");
    let df = match berth_builder::dockerfile::parse("Dockerfile", &text) {
        Ok(df) => df,
        Err(e) => return vec![("expected-error.txt", format!("{e}\n"))],
    };
    let mut out = vec![("expected.json", pretty(&df))];
    if let Ok(options) = fs::read_to_string(dir.join("options.json")) {
        let options: serde_json::Value =
            serde_json::from_str(&options).expect("options.json parses");
        match plan_json(&df, &options) {
            Ok(json) => out.push(("expected-plan.json", json)),
            Err(e) => out.push(("expected-error.txt", format!("{e}\n"))),
        }
    }
    out
}

#[test]
fn dockerfile_corpus() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut cases: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("corpus directory exists")
        .map(|e| e.expect("readable corpus entry").path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "corpus has only {} cases", cases.len());
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let outcome = outcome(dir);
        let files = ["expected.json", "expected-error.txt", "expected-plan.json"];
        if bless {
            for stale in files {
                let _ = fs::remove_file(dir.join(stale));
            }
            for (file, got) in &outcome {
                fs::write(dir.join(file), got).expect("write expectation");
            }
            continue;
        }
        for stale in files {
            if dir.join(stale).exists() && !outcome.iter().any(|(f, _)| *f == stale) {
                failures.push(format!("{name}: has {stale} but produced no such outcome"));
            }
        }
        for (file, got) in outcome {
            match fs::read_to_string(dir.join(file)) {
                Ok(want) if want == got => {}
                Ok(want) => failures.push(format!(
                    "{name}: {file} differs\n--- want\n{want}--- got\n{got}"
                )),
                Err(_) => failures.push(format!("{name}: no {file}; got\n{got}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Every third prefix of every corpus Dockerfile, and each with one character replaced by a
/// character the grammar cares about, parses and plans to a value or an error: never a
/// panic.
#[test]
fn truncated_and_mutated_inputs_do_not_panic() {
    let specials = [
        '\\', '`', '"', '\'', '$', '{', '}', '[', ']', '<', '\n', '=', '#', '-',
    ];
    let mut inputs = 0;
    for entry in fs::read_dir(corpus_dir()).expect("corpus directory exists") {
        let path = entry
            .expect("readable corpus entry")
            .path()
            .join("Dockerfile");
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let chars: Vec<char> = text.chars().collect();
        for cut in (0..=chars.len()).step_by(3) {
            let mut variants = vec![chars[..cut].iter().collect::<String>()];
            if cut < chars.len() {
                let mut mutated = chars.clone();
                mutated[cut] = specials[cut % specials.len()];
                variants.push(mutated.into_iter().collect());
            }
            for v in variants {
                inputs += 1;
                if let Ok(df) = berth_builder::dockerfile::parse("Dockerfile", &v) {
                    let _ = plan_json(&df, &json!({}));
                }
            }
        }
    }
    assert!(inputs > 1000);
}

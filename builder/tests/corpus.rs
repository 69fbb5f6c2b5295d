//! Runs every case in `tests/data/dockerfiles/<case>/`: the `Dockerfile` must parse to
//! `expected.json` (the AST's serde form) or fail with exactly `expected-error.txt`.
//! `BLESS=1` rewrites the expectations from the current output; review each diff by hand.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/dockerfiles")
}

/// The outcome of a case as the text its expectation file holds.
fn outcome(dir: &Path) -> (String, &'static str) {
    let text = fs::read_to_string(dir.join("Dockerfile")).expect("case has a Dockerfile");
    match berth_builder::dockerfile::parse("Dockerfile", &text) {
        Ok(df) => {
            let mut json = serde_json::to_string_pretty(&df).expect("AST serializes");
            json.push('\n');
            (json, "expected.json")
        }
        Err(e) => (format!("{e}\n"), "expected-error.txt"),
    }
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
        let (got, file) = outcome(dir);
        if bless {
            for stale in ["expected.json", "expected-error.txt"] {
                let _ = fs::remove_file(dir.join(stale));
            }
            fs::write(dir.join(file), &got).expect("write expectation");
            continue;
        }
        match fs::read_to_string(dir.join(file)) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{name}: {file} differs\n--- want\n{want}--- got\n{got}"
            )),
            Err(_) => failures.push(format!("{name}: no {file}; got\n{got}")),
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

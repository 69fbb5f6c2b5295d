//! `berth apply -f`: every manifest is loaded and validated first (file, line and field path
//! in every error; nothing is applied when any document is invalid), then each object is
//! created, or patched as `kubectl apply` does: a three-way merge of the last applied
//! configuration (kept in the `kubectl.kubernetes.io/last-applied-configuration` annotation),
//! the new one and the live object.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_kube::kinds::{self, Kind};
use berth_kube::{load_path, Manifest};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::kube::Conn;
use crate::Globals;

/// The annotation holding the configuration last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `berth apply`.
#[derive(Args)]
pub struct ApplyArgs {
    /// Manifest files or directories (their .yaml, .yml and .json files), `-` for stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    conn: Conn,
}

/// Loads and validates every manifest of `files`; fails listing every problem if any.
pub fn load(files: &[PathBuf]) -> Result<Vec<Manifest>> {
    let mut all = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        match load_path(f) {
            Ok(m) => all.extend(m),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        bail!(
            "invalid manifests, nothing applied:\n{}",
            problems.join("\n")
        );
    }
    Ok(all)
}

/// The type, namespace and name of a manifest's object (`namespace` when it names none).
pub fn identity(m: &Manifest, namespace: &str) -> Result<(&'static Kind, String, String)> {
    let v = m.object.to_value();
    let api_version = v["apiVersion"].as_str().unwrap_or_default();
    let kind_name = v["kind"].as_str().unwrap_or_default();
    let kind = kinds::by_api_version_kind(api_version, kind_name).with_context(|| {
        format!(
            "{}:{}: {api_version} {kind_name} is not served by berth",
            m.file, m.line
        )
    })?;
    let ns = v["metadata"]["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or(namespace)
        .to_string();
    let name = v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok((kind, ns, name))
}

/// Creates or updates every object of the manifests, as `kubectl apply`.
pub fn apply(g: &Globals, a: ApplyArgs) -> Result<ExitCode> {
    let manifests = load(&a.files)?;
    let mut planned = Vec::new();
    for m in &manifests {
        let (kind, ns, name) = identity(m, a.conn.ns())?;
        if let (Some(given), true) = (&a.conn.namespace, kind.namespaced) {
            if given != &ns {
                bail!(
                    "{}:{}: the namespace from the provided object {ns:?} does not match the namespace {given:?}; pass --namespace={ns}",
                    m.file,
                    m.line
                );
            }
        }
        let mut config = m.object.to_value();
        if let Some(meta) = config["metadata"].as_object_mut() {
            if kind.namespaced {
                meta.insert("namespace".into(), json!(ns));
            }
            if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                ann.remove(LAST_APPLIED);
            }
        }
        planned.push((kind, ns, name, config));
    }
    let client = a.conn.client(g)?;
    let mut failed = false;
    for (kind, ns, name, config) in planned {
        let label = format!("{}/{name}", kind.display_name());
        let path = kind.object_path(&ns, &name);
        let recorded = config.to_string();
        let result = match client.json("GET", &path, None, None) {
            Err(e) if e.is_not_found() => {
                let mut body = config.clone();
                set_annotation(&mut body, &recorded);
                client
                    .json(
                        "POST",
                        &kind.collection_path(Some(&ns)),
                        Some("application/json"),
                        Some(&body),
                    )
                    .map(|_| "created")
            }
            Err(e) => Err(e),
            Ok(live) => {
                let original: Value = live["metadata"]["annotations"][LAST_APPLIED]
                    .as_str()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(json!({}));
                let mut patch = three_way(Some(&original), &config, &live);
                if original != config {
                    set_annotation(&mut patch, &recorded);
                }
                if patch.as_object().is_none_or(Map::is_empty) {
                    Ok("unchanged")
                } else {
                    client
                        .json(
                            "PATCH",
                            &path,
                            Some("application/merge-patch+json"),
                            Some(&patch),
                        )
                        .map(|after| {
                            if after["metadata"]["resourceVersion"]
                                == live["metadata"]["resourceVersion"]
                            {
                                "unchanged"
                            } else {
                                "configured"
                            }
                        })
                }
            }
        };
        match result {
            Ok(what) => println!("{label} {what}"),
            Err(e) => {
                eprintln!("{label}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn set_annotation(obj: &mut Value, recorded: &str) {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][LAST_APPLIED] = json!(recorded);
}

/// A JSON merge patch taking `current` to `modified`, deleting what `original` (the last
/// applied configuration) had and `modified` no longer has; fields only the server or other
/// writers set are left alone.
fn three_way(original: Option<&Value>, modified: &Value, current: &Value) -> Value {
    let mut patch = Map::new();
    let Some(m) = modified.as_object() else {
        return modified.clone();
    };
    for (k, mv) in m {
        let cv = current.get(k);
        match (mv, cv) {
            (Value::Object(_), Some(cv @ Value::Object(_))) => {
                let sub = three_way(original.and_then(|o| o.get(k)), mv, cv);
                if sub.as_object().is_some_and(|s| !s.is_empty()) {
                    patch.insert(k.clone(), sub);
                }
            }
            _ if cv == Some(mv) => {}
            _ => {
                patch.insert(k.clone(), mv.clone());
            }
        }
    }
    if let Some(o) = original.and_then(Value::as_object) {
        for k in o.keys() {
            if !m.contains_key(k) && current.get(k).is_some() {
                patch.insert(k.clone(), Value::Null);
            }
        }
    }
    Value::Object(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_way_merge() {
        let original = json!({"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "1"}}});
        let modified = json!({"data": {"a": "1", "c": "3"}, "metadata": {"labels": {"x": "1"}}});
        let current = json!({"data": {"a": "1", "b": "2", "z": "server"}, "metadata": {"labels": {"x": "1"}, "uid": "u"}});
        assert_eq!(
            three_way(Some(&original), &modified, &current),
            json!({"data": {"c": "3", "b": null}})
        );
        assert_eq!(
            three_way(Some(&modified), &modified, &current),
            json!({"data": {"c": "3"}})
        );
        let same = json!({"data": {"a": "1"}});
        assert_eq!(three_way(Some(&same), &same, &same), json!({}));
    }
}

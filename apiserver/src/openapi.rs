//! A minimal OpenAPI v3 document per group version: one PATCH operation per type, tagged with
//! its group/version/kind and taking the `fieldValidation` query parameter. That is what
//! kubectl looks for before it leaves field validation to the server
//! (`?fieldValidation=Strict`) instead of fetching the (protobuf-only) v2 document.

use serde_json::{json, Map, Value};

use berth_kube::kinds;

/// Group-version paths of the index and their document URL (`api/v1`, `apis/apps/v1`).
fn group_versions() -> Vec<(String, &'static str)> {
    let mut gvs = vec![("api/v1".to_string(), "")];
    gvs.extend(kinds::GROUPS.iter().map(|g| (format!("apis/{g}/v1"), *g)));
    gvs
}

/// A stable hash of the served types, so kubectl's cache notices a daemon that serves more.
fn hash() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for k in kinds::ALL.iter() {
        h.update(k.api_version());
        h.update(k.plural);
    }
    hex::encode(&h.finalize()[..8])
}

/// `GET /openapi/v3`: the index of group-version documents.
pub fn index() -> Value {
    let hash = hash();
    let paths: Map<String, Value> = group_versions()
        .into_iter()
        .map(|(p, _)| {
            let url = json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")});
            (p, url)
        })
        .collect();
    json!({"paths": paths})
}

/// `GET /openapi/v3/{api/v1|apis/G/v1}`.
pub fn document(path: &str) -> Option<Value> {
    let group = group_versions()
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, g)| g)?;
    let mut paths = Map::new();
    for k in kinds::ALL.iter().filter(|k| k.group == group) {
        let prefix = if group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{group}/v1")
        };
        let url = if k.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", k.plural)
        } else {
            format!("{prefix}/{}/{{name}}", k.plural)
        };
        let op = json!({
            "operationId": format!("patch{}", k.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": k.group, "version": k.version, "kind": k.kind},
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                {"name": "force", "in": "query", "schema": {"type": "boolean"}},
            ],
            "requestBody": {"content": {
                "application/json-patch+json": {"schema": {"type": "object"}},
                "application/merge-patch+json": {"schema": {"type": "object"}},
                "application/apply-patch+yaml": {"schema": {"type": "object"}},
            }},
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(url, json!({"patch": op}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "berth", "version": format!("v1.{}", super::discovery::MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

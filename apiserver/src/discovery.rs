//! Discovery: `/version`, `/api`, `/apis` and the resource lists of each group version (the
//! legacy, unaggregated form, which every kubectl reads), built from `berth_kube::kinds`.

use serde_json::{json, Value};

use berth_kube::kinds::{self, Kind};

/// The Kubernetes minor version the daemon reports: kubectl's dispatcher picks its 1.32 client.
pub const MINOR: &str = "32";

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": MINOR,
        "gitVersion": format!("v1.{MINOR}.0+berth-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a",
        "compiler": "rustc",
        "platform": format!("linux/{}", std::env::consts::ARCH),
    })
}

/// `GET /api`: the core group's versions.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

fn group_json(group: &str) -> Value {
    let gv = format!("{group}/v1");
    json!({
        "name": group,
        "versions": [{"groupVersion": gv, "version": "v1"}],
        "preferredVersion": {"groupVersion": gv, "version": "v1"},
    })
}

/// `GET /apis`: the named groups.
pub fn groups() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": kinds::GROUPS.iter().map(|g| group_json(g)).collect::<Vec<_>>(),
    })
}

/// `GET /apis/{group}`, when `group` is served.
pub fn group(group: &str) -> Option<Value> {
    kinds::GROUPS.contains(&group).then(|| {
        let mut g = group_json(group);
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource(k: &Kind) -> Value {
    let verbs: Vec<&str> = if k.read_only {
        vec!["get", "list", "watch"]
    } else {
        VERBS.to_vec()
    };
    let mut r = json!({
        "name": k.plural,
        "singularName": k.singular,
        "namespaced": k.namespaced,
        "kind": k.kind,
        "verbs": verbs,
    });
    if !k.short_names.is_empty() {
        r["shortNames"] = json!(k.short_names);
    }
    if matches!(k.kind, "Pod" | "Service" | "ReplicaSet" | "Deployment") {
        r["categories"] = json!(["all"]);
    }
    r
}

fn subresource(k: &Kind, sub: &str, verbs: &[&str]) -> Value {
    json!({
        "name": format!("{}/{sub}", k.plural),
        "singularName": "",
        "namespaced": k.namespaced,
        "kind": k.kind,
        "verbs": verbs,
    })
}

/// `GET /api/v1` or `GET /apis/{group}/v1`: the resources of a group version.
pub fn resources(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || (!group.is_empty() && !kinds::GROUPS.contains(&group)) {
        return None;
    }
    let mut list = Vec::new();
    for k in kinds::ALL.iter().filter(|k| k.group == group) {
        list.push(resource(k));
        if k.has_status {
            list.push(subresource(k, "status", &["get", "patch", "update"]));
        }
        if k.has_scale {
            let mut scale = subresource(k, "scale", &["get", "patch", "update"]);
            scale["group"] = json!("autoscaling");
            scale["version"] = json!("v1");
            scale["kind"] = json!("Scale");
            list.push(scale);
        }
        if k.kind == "Pod" {
            list.push(subresource(k, "log", &["get"]));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": list,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists() {
        let core = resources("", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"pods") && names.contains(&"pods/log") && names.contains(&"configmaps")
        );
        assert!(!names.contains(&"deployments"));
        let apps = resources("apps", "v1").unwrap();
        assert_eq!(apps["groupVersion"], "apps/v1");
        assert!(apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "deployments/scale"));
        assert!(resources("batch", "v1").is_none());
    }
}

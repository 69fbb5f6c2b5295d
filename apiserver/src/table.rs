//! The `Table` form of objects (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the
//! columns `kubectl get` prints for each served type, computed here as the API server does.

use serde_json::{json, Value};

use berth_kube::kinds::Kind;

/// One column: header, type and whether only `-o wide` shows it (priority 1).
struct Column {
    name: &'static str,
    kind: &'static str,
    wide: bool,
}

const fn col(name: &'static str) -> Column {
    Column {
        name,
        kind: "string",
        wide: false,
    }
}

const fn wide(name: &'static str) -> Column {
    Column {
        name,
        kind: "string",
        wide: true,
    }
}

fn columns(kind: &Kind) -> Vec<Column> {
    let mut c = vec![Column {
        name: "Name",
        kind: "string",
        wide: false,
    }];
    c.extend(match kind.kind {
        "Namespace" => vec![col("Status"), col("Age")],
        "Pod" => vec![
            col("Ready"),
            col("Status"),
            Column {
                name: "Restarts",
                kind: "string",
                wide: false,
            },
            col("Age"),
            wide("IP"),
            wide("Node"),
        ],
        "Service" => vec![
            col("Type"),
            col("Cluster-IP"),
            col("External-IP"),
            col("Port(s)"),
            col("Age"),
            wide("Selector"),
        ],
        "Endpoints" => vec![col("Endpoints"), col("Age")],
        "ConfigMap" => vec![
            Column {
                name: "Data",
                kind: "integer",
                wide: false,
            },
            col("Age"),
        ],
        "Secret" => vec![
            col("Type"),
            Column {
                name: "Data",
                kind: "integer",
                wide: false,
            },
            col("Age"),
        ],
        "PersistentVolume" => vec![
            col("Capacity"),
            col("Access Modes"),
            col("Reclaim Policy"),
            col("Status"),
            col("Claim"),
            col("StorageClass"),
            col("Age"),
        ],
        "PersistentVolumeClaim" => vec![
            col("Status"),
            col("Volume"),
            col("Capacity"),
            col("Access Modes"),
            col("StorageClass"),
            col("Age"),
        ],
        "Event" => vec![
            col("Last Seen"),
            col("Type"),
            col("Reason"),
            col("Object"),
            col("Message"),
        ],
        "ReplicaSet" => vec![
            Column {
                name: "Desired",
                kind: "integer",
                wide: false,
            },
            Column {
                name: "Current",
                kind: "integer",
                wide: false,
            },
            Column {
                name: "Ready",
                kind: "integer",
                wide: false,
            },
            col("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "Deployment" => vec![
            col("Ready"),
            Column {
                name: "Up-to-date",
                kind: "integer",
                wide: false,
            },
            Column {
                name: "Available",
                kind: "integer",
                wide: false,
            },
            col("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        _ => vec![col("Age")],
    });
    c
}

/// The cells of one object's row, in [`columns`] order.
fn cells(kind: &Kind, o: &Value) -> Vec<Value> {
    let name = json!(o["metadata"]["name"].as_str().unwrap_or_default());
    let age = json!(age(o["metadata"]["creationTimestamp"].as_str()));
    let s = |v: &Value| json!(v.as_str().unwrap_or("<none>"));
    let n = |v: &Value| json!(v.as_i64().unwrap_or(0));
    let spec = &o["spec"];
    let status = &o["status"];
    let mut row = vec![name];
    row.extend(match kind.kind {
        "Namespace" => vec![json!(status["phase"].as_str().unwrap_or("Active")), age],
        "Pod" => {
            let statuses = status["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|c| c["ready"] == json!(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c["restartCount"].as_i64())
                .sum();
            vec![
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                age,
                s(&status["podIP"]),
                s(&spec["nodeName"]),
            ]
        }
        "Service" => vec![
            json!(spec["type"].as_str().unwrap_or("ClusterIP")),
            s(&spec["clusterIP"]),
            json!(external_ips(spec)),
            json!(service_ports(spec)),
            age,
            json!(map_selector(&spec["selector"])),
        ],
        "Endpoints" => vec![json!(endpoints(o)), age],
        "ConfigMap" => vec![json!(count(&o["data"]) + count(&o["binaryData"])), age],
        "Secret" => vec![
            json!(o["type"].as_str().unwrap_or("Opaque")),
            json!(count(&o["data"])),
            age,
        ],
        "PersistentVolume" => vec![
            s(&spec["capacity"]["storage"]),
            json!(access_modes(&spec["accessModes"])),
            json!(spec["persistentVolumeReclaimPolicy"]
                .as_str()
                .unwrap_or("Retain")),
            s(&status["phase"]),
            json!(match (
                spec["claimRef"]["namespace"].as_str(),
                spec["claimRef"]["name"].as_str()
            ) {
                (Some(ns), Some(n)) => format!("{ns}/{n}"),
                _ => String::new(),
            }),
            json!(spec["storageClassName"].as_str().unwrap_or("")),
            age,
        ],
        "PersistentVolumeClaim" => vec![
            s(&status["phase"]),
            json!(spec["volumeName"].as_str().unwrap_or("")),
            json!(status["capacity"]["storage"].as_str().unwrap_or("")),
            json!(access_modes(&status["accessModes"])),
            json!(spec["storageClassName"].as_str().unwrap_or("")),
            age,
        ],
        "Event" => vec![
            json!(age_or(o["lastTimestamp"].as_str(), o["eventTime"].as_str())),
            s(&o["type"]),
            s(&o["reason"]),
            json!(format!(
                "{}/{}",
                o["involvedObject"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                o["involvedObject"]["name"].as_str().unwrap_or_default()
            )),
            s(&o["message"]),
        ],
        "ReplicaSet" => vec![
            n(&spec["replicas"]),
            n(&status["replicas"]),
            n(&status["readyReplicas"]),
            age,
            json!(containers(spec, "name")),
            json!(containers(spec, "image")),
            json!(label_selector(&spec["selector"])),
        ],
        "Deployment" => vec![
            json!(format!(
                "{}/{}",
                status["readyReplicas"].as_i64().unwrap_or(0),
                spec["replicas"].as_i64().unwrap_or(1)
            )),
            n(&status["updatedReplicas"]),
            n(&status["availableReplicas"]),
            age,
            json!(containers(spec, "name")),
            json!(containers(spec, "image")),
            json!(label_selector(&spec["selector"])),
        ],
        _ => vec![age],
    });
    row
}

/// A `Table` of `objects` of `kind`; each row carries the object's metadata
/// (`PartialObjectMetadata`), or the whole object with `include_object`.
pub fn table(kind: &Kind, objects: &[Value], list_meta: Value, include_object: bool) -> Value {
    let defs: Vec<Value> = columns(kind)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": "",
                "priority": if c.wide { 1 } else { 0 },
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = if include_object {
                o.clone()
            } else {
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                })
            };
            json!({"cells": cells(kind, o), "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

/// The STATUS column of a pod, as kubectl shows it: while init containers run, `Init:` and
/// the first unfinished one's reason or `Init:N/M`; then a waiting or terminated container's
/// reason when there is one, else the phase.
fn pod_status(pod: &Value) -> String {
    if pod["metadata"].get("deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let status = &pod["status"];
    let inits = status["initContainerStatuses"].as_array();
    for (i, c) in inits.into_iter().flatten().enumerate() {
        let state = &c["state"];
        if state["terminated"]["exitCode"] == 0 {
            continue;
        }
        if let Some(t) = state["terminated"].as_object() {
            return match t.get("reason").and_then(Value::as_str) {
                Some(r) if !r.is_empty() => format!("Init:{r}"),
                _ => format!(
                    "Init:ExitCode:{}",
                    t.get("exitCode").unwrap_or(&Value::Null)
                ),
            };
        }
        match state["waiting"]["reason"].as_str() {
            Some(r) if !r.is_empty() && r != "PodInitializing" => return format!("Init:{r}"),
            _ => return format!("Init:{i}/{}", inits.map_or(0, Vec::len)),
        }
    }
    let mut reason = status["reason"]
        .as_str()
        .or(status["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    for c in status["containerStatuses"].as_array().into_iter().flatten() {
        if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
            reason = r.to_string();
        } else if let Some(r) = c["state"]["terminated"]["reason"].as_str() {
            reason = r.to_string();
        }
    }
    reason
}

fn count(map: &Value) -> usize {
    map.as_object().map_or(0, |m| m.len())
}

fn access_modes(modes: &Value) -> String {
    modes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn external_ips(spec: &Value) -> String {
    let ips: Vec<&str> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if ips.is_empty() {
        "<none>".into()
    } else {
        ips.join(",")
    }
}

fn service_ports(spec: &Value) -> String {
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(np) => format!("{}:{np}/{proto}", p["port"]),
                None => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn endpoints(o: &Value) -> String {
    let mut out = Vec::new();
    for subset in o["subsets"].as_array().into_iter().flatten() {
        let ports: Vec<i64> = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["port"].as_i64())
            .collect();
        for addr in subset["addresses"].as_array().into_iter().flatten() {
            let ip = addr["ip"].as_str().unwrap_or_default();
            if ports.is_empty() {
                out.push(ip.to_string());
            }
            for p in &ports {
                out.push(format!("{ip}:{p}"));
            }
        }
    }
    if out.is_empty() {
        "<none>".into()
    } else {
        out.join(",")
    }
}

fn containers(spec: &Value, field: &str) -> String {
    spec["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c[field].as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn map_selector(selector: &Value) -> String {
    match selector.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

/// A `LabelSelector` (matchLabels and matchExpressions) in its string form.
pub fn label_selector(selector: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = selector["matchLabels"].as_object() {
        parts.extend(
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())),
        );
    }
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    parts.join(",")
}

fn age_or(a: Option<&str>, b: Option<&str>) -> String {
    age(a.or(b))
}

/// How long ago an RFC 3339 timestamp was, as kubectl prints ages (`45s`, `3m2s`, `5h`, `2d`).
pub fn age(timestamp: Option<&str>) -> String {
    let Some(t) = timestamp.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    human_duration(secs)
}

fn human_duration(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else {
        format!("{d}d")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_kube::kinds;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(3600), "60m");
        assert_eq!(human_duration(4 * 3600 + 60), "4h1m");
        assert_eq!(human_duration(3 * 86400), "3d");
    }

    #[test]
    fn pod_status_shows_init_containers_as_kubectl_does() {
        let pod = |inits: Value, app: Value| {
            json!({"metadata": {"name": "p"}, "status": {"phase": "Pending",
                "initContainerStatuses": inits, "containerStatuses": [app]}})
        };
        let initializing = json!({"state": {"waiting": {"reason": "PodInitializing"}}});
        let done = json!({"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let running = json!({"state": {"running": {}}});
        assert_eq!(
            pod_status(&pod(json!([done, running]), initializing.clone())),
            "Init:1/2"
        );
        let failed = json!({"state": {"terminated": {"exitCode": 1, "reason": "Error"}}});
        assert_eq!(
            pod_status(&pod(json!([failed]), initializing.clone())),
            "Init:Error"
        );
        let backoff = json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}}});
        assert_eq!(
            pod_status(&pod(json!([backoff]), initializing)),
            "Init:CrashLoopBackOff"
        );
        let up = json!({"metadata": {"name": "p"}, "status": {"phase": "Running",
            "initContainerStatuses": [done], "containerStatuses": [running]}});
        assert_eq!(pod_status(&up), "Running");
    }

    #[test]
    fn deployment_row() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
                       "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                                "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
                       "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let t = table(&kinds::DEPLOYMENT, &[d], json!({}), false);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "2/3");
        assert_eq!(cells[5], "c");
        assert_eq!(cells[7], "app=web");
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 8);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}

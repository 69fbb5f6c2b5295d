//! The PATCH bodies kubectl sends: JSON merge patch (RFC 7386), strategic merge patch (lists
//! merged by key, with the `$patch`, `$setElementOrder/`, `$retainKeys` and
//! `$deleteFromPrimitiveList/` directives) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

/// A patch that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not of the expected shape.
    #[error("invalid patch: {0}")]
    Invalid(String),
    /// A JSON patch `test` operation failed.
    #[error("json patch test operation at {path:?} failed: the value differs")]
    TestFailed {
        /// The JSON pointer tested.
        path: String,
    },
    /// A JSON patch operation points at nothing.
    #[error("json patch {op} operation: path {path:?} does not exist")]
    Missing {
        /// The operation.
        op: String,
        /// The JSON pointer.
        path: String,
    },
}

/// Applies an RFC 7386 merge patch: maps merge, `null` deletes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The key list items of field `path` (field names from the object's root, list indices left
/// out) merge on, as Kubernetes' `patchMergeKey` tags say; `None` for lists that are replaced.
fn merge_key(path: &[String]) -> Option<&'static str> {
    let last = path.last()?.as_str();
    let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
    Some(match last {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "ports"
            if matches!(
                parent,
                Some("containers" | "initContainers" | "ephemeralContainers")
            ) =>
        {
            "containerPort"
        }
        "ports" if parent == Some("spec") => "port",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Lists of scalars that merge as sets instead of being replaced.
fn merges_as_set(path: &[String]) -> bool {
    matches!(path.last().map(String::as_str), Some("finalizers"))
}

/// Applies a strategic merge patch to `target` (see the module docs).
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    smp_value(target, patch, &mut Vec::new())
}

fn smp_value(target: &mut Value, patch: &Value, path: &mut Vec<String>) -> Result<(), PatchError> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = strip_directives(patch);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(PatchError::Invalid(format!(
                "unknown $patch directive {other:?}"
            )))
        }
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    if let Some(retain) = p.get("$retainKeys") {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or_else(|| PatchError::Invalid("$retainKeys must be a list".into()))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    let mut orders = Vec::new();
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            orders.push((field.to_string(), v));
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            let gone = v.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(list)) = t.get_mut(field) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        path.push(k.clone());
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(inner)
                if inner.get("$patch").and_then(Value::as_str) == Some("delete") =>
            {
                t.remove(k);
            }
            Value::Object(_) => smp_value(t.entry(k.clone()).or_insert(Value::Null), v, path)?,
            Value::Array(items) => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                smp_list(slot, items, path)?;
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
        path.pop();
    }
    for (field, order) in orders {
        path.push(field.clone());
        if let Some(Value::Array(list)) = t.get_mut(&field) {
            reorder(list, order, merge_key(path));
        }
        path.pop();
    }
    Ok(())
}

fn smp_list(target: &mut Value, items: &[Value], path: &mut Vec<String>) -> Result<(), PatchError> {
    if merges_as_set(path) {
        let mut list = target.as_array().cloned().unwrap_or_default();
        for item in items {
            if !list.contains(item) {
                list.push(item.clone());
            }
        }
        *target = Value::Array(list);
        return Ok(());
    }
    let Some(key) = merge_key(path) else {
        *target = Value::Array(items.iter().map(strip_directives).collect());
        return Ok(());
    };
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *target = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        );
        return Ok(());
    }
    let mut list = match target {
        Value::Array(list) => std::mem::take(list),
        _ => Vec::new(),
    };
    for item in items {
        let Some(id) = item.get(key) else {
            return Err(PatchError::Invalid(format!(
                "{}: list item without merge key {key:?}",
                path.join(".")
            )));
        };
        let pos = list.iter().position(|x| x.get(key) == Some(id));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(pos) = pos {
                list.remove(pos);
            }
            continue;
        }
        match pos {
            Some(pos) => smp_value(&mut list[pos], item, path)?,
            None => list.push(strip_directives(item)),
        }
    }
    *target = Value::Array(list);
    Ok(())
}

/// Orders `list` as `order` says (items by merge key, or scalars); items not named keep their
/// relative order after the named ones.
fn reorder(list: &mut [Value], order: &Value, key: Option<&str>) {
    let Some(order) = order.as_array() else {
        return;
    };
    let rank = |v: &Value| {
        order
            .iter()
            .position(|o| match key {
                Some(k) => o.get(k).is_some() && o.get(k) == v.get(k),
                None => o == v,
            })
            .unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

/// `v` without any `$...` directive keys, at any depth.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// Applies an RFC 6902 JSON patch (a list of operations) to `target`.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| PatchError::Invalid("a JSON patch must be a list of operations".into()))?;
    for op in ops {
        let name = op["op"]
            .as_str()
            .ok_or_else(|| PatchError::Invalid(format!("operation without \"op\": {op}")))?;
        let path = op["path"]
            .as_str()
            .ok_or_else(|| PatchError::Invalid(format!("operation without \"path\": {op}")))?;
        let missing = || PatchError::Missing {
            op: name.to_string(),
            path: path.to_string(),
        };
        match name {
            "add" => add(target, path, op["value"].clone()).ok_or_else(missing)?,
            "remove" => {
                remove(target, path).ok_or_else(missing)?;
            }
            "replace" => {
                let slot = target.pointer_mut(path).ok_or_else(missing)?;
                *slot = op["value"].clone();
            }
            "move" | "copy" => {
                let from = op["from"]
                    .as_str()
                    .ok_or_else(|| PatchError::Invalid(format!("{name} without \"from\": {op}")))?;
                let value = if name == "move" {
                    remove(target, from)
                } else {
                    target.pointer(from).cloned()
                }
                .ok_or_else(|| PatchError::Missing {
                    op: name.to_string(),
                    path: from.to_string(),
                })?;
                add(target, path, value).ok_or_else(missing)?;
            }
            "test" => {
                if target.pointer(path) != Some(&op["value"]) {
                    return Err(PatchError::TestFailed {
                        path: path.to_string(),
                    });
                }
            }
            other => return Err(PatchError::Invalid(format!("unknown operation {other:?}"))),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Option<(String, String)> {
    let (parent, last) = path.rsplit_once('/')?;
    Some((
        parent.to_string(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(target: &mut Value, path: &str, value: Value) -> Option<()> {
    if path.is_empty() {
        *target = value;
        return Some(());
    }
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent)? {
        Value::Object(m) => {
            m.insert(last, value);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i: usize = last.parse().ok()?;
                if i > a.len() {
                    return None;
                }
                a.insert(i, value);
            }
        }
        _ => return None,
    }
    Some(())
}

fn remove(target: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent)? {
        Value::Object(m) => m.remove(&last),
        Value::Array(a) => {
            let i: usize = last.parse().ok()?;
            (i < a.len()).then(|| a.remove(i))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
        let mut t = json!({"a": [1, 2]});
        merge(&mut t, &json!({"a": [3]}));
        assert_eq!(t, json!({"a": [3]}));
    }

    #[test]
    fn strategic_merge_lists_by_key() {
        let mut t = json!({"spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "E", "value": "1"}]},
            {"name": "b", "image": "y:1"}
        ], "volumes": [{"name": "v"}]}});
        let p = json!({"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [
            {"name": "a", "image": "x:2", "env": [{"name": "F", "value": "2"}]},
            {"name": "b", "$patch": "delete"}
        ]}});
        strategic_merge(&mut t, &p).unwrap();
        assert_eq!(
            t,
            json!({"spec": {"containers": [
                {"name": "a", "image": "x:2", "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}]}
            ], "volumes": [{"name": "v"}]}})
        );
    }

    #[test]
    fn strategic_merge_directives() {
        let mut t = json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
                           "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                                    "args": ["a", "b"]}});
        let p = json!({"metadata": {"finalizers": ["b"], "labels": {"y": null}},
                       "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                                "args": ["c"]}});
        strategic_merge(&mut t, &p).unwrap();
        assert_eq!(
            t,
            json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}},
                   "spec": {"strategy": {"type": "Recreate"}, "args": ["c"]}})
        );
        let mut t = json!({"data": {"a": "1", "b": "2"}});
        strategic_merge(&mut t, &json!({"data": {"$patch": "replace", "c": "3"}})).unwrap();
        assert_eq!(t, json!({"data": {"c": "3"}}));
        let mut t = json!({"spec": {"ports": [{"port": 80, "name": "http"}]}});
        strategic_merge(&mut t, &json!({"spec": {"ports": [{"port": 443}]}})).unwrap();
        assert_eq!(
            t,
            json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}})
        );
    }

    #[test]
    fn json_patch_rfc6902() {
        let mut t = json!({"spec": {"template": {"a": 1}}, "metadata": {"annotations": {"x": "1"}}, "l": [1, 2]});
        let p = json!([
            {"op": "replace", "path": "/spec/template", "value": {"b": 2}},
            {"op": "add", "path": "/metadata/annotations/k8s.io~1rev", "value": "3"},
            {"op": "remove", "path": "/metadata/annotations/x"},
            {"op": "add", "path": "/l/-", "value": 3},
            {"op": "test", "path": "/l/0", "value": 1},
            {"op": "copy", "from": "/l/0", "path": "/first"},
            {"op": "move", "from": "/first", "path": "/moved"}
        ]);
        json_patch(&mut t, &p).unwrap();
        assert_eq!(
            t,
            json!({"spec": {"template": {"b": 2}}, "metadata": {"annotations": {"k8s.io/rev": "3"}}, "l": [1, 2, 3], "moved": 1})
        );
        let bad = json!([{"op": "test", "path": "/l/0", "value": 9}]);
        assert!(matches!(
            json_patch(&mut t, &bad),
            Err(PatchError::TestFailed { .. })
        ));
        let bad = json!([{"op": "replace", "path": "/nope/x", "value": 9}]);
        assert!(matches!(
            json_patch(&mut t, &bad),
            Err(PatchError::Missing { .. })
        ));
    }
}

//! The shape every stored object has: a JSON map whose apiVersion and kind are its type's,
//! with a `metadata` map the store reads and fills in.

use serde_json::{json, Map, Value};

use berth_kube::kinds::Kind;

use super::StoreError;

/// Checks that `object` is a map whose apiVersion and kind (filled in when missing) are `kind`'s.
pub(super) fn check_type(kind: &Kind, object: &mut Value) -> Result<(), StoreError> {
    let Some(map) = object.as_object_mut() else {
        return Err(StoreError::BadRequest(format!(
            "{} object must be a JSON object",
            kind.kind
        )));
    };
    let api_version = kind.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(api_version));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(StoreError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(kind.kind));
        }
        Some(k) if k == kind.kind => {}
        Some(k) => {
            return Err(StoreError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                kind.kind
            )))
        }
    }
    if !map.get("metadata").is_none_or(Value::is_object) {
        return Err(StoreError::BadRequest(
            "metadata must be a JSON object".into(),
        ));
    }
    Ok(())
}

/// `object.metadata.<field>` when it is a string.
pub(super) fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// `object.metadata` as a map, created when missing (`object` was checked to be a map).
pub(super) fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    match object["metadata"].as_object_mut() {
        Some(m) => m,
        None => unreachable!("metadata was just made a map"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_kube::kinds;

    fn bad_request(r: Result<(), StoreError>) -> String {
        match r {
            Err(StoreError::BadRequest(m)) => m,
            other => panic!("expected BadRequest, got {other:?}"),
        }
    }

    #[test]
    fn check_type_fills_missing_api_version_and_kind() {
        let mut d = json!({"metadata": {"name": "web"}});
        check_type(&kinds::DEPLOYMENT, &mut d).unwrap();
        assert_eq!(d["apiVersion"], "apps/v1");
        assert_eq!(d["kind"], "Deployment");
        let mut cm = json!({"apiVersion": "", "kind": "ConfigMap"});
        check_type(&kinds::CONFIG_MAP, &mut cm).unwrap();
        assert_eq!(cm["apiVersion"], "v1");
    }

    #[test]
    fn check_type_refuses_other_types_and_shapes() {
        assert_eq!(
            bad_request(check_type(&kinds::POD, &mut json!([]))),
            "Pod object must be a JSON object"
        );
        assert_eq!(
            bad_request(check_type(&kinds::POD, &mut json!({"kind": "Service"}))),
            "the kind in the data (Service) does not match the expected kind (Pod)"
        );
        assert_eq!(
            bad_request(check_type(
                &kinds::DEPLOYMENT,
                &mut json!({"apiVersion": "v1"})
            )),
            "the API version in the data (v1) does not match the expected API version (apps/v1)"
        );
        assert_eq!(
            bad_request(check_type(&kinds::POD, &mut json!({"metadata": "x"}))),
            "metadata must be a JSON object"
        );
    }

    #[test]
    fn metadata_is_read_as_strings_and_made_when_missing() {
        let mut o = json!({"metadata": {"name": "a", "generation": 1}});
        assert_eq!(meta_str(&o, "name"), Some("a"));
        assert_eq!(meta_str(&o, "generation"), None);
        assert_eq!(meta_str(&json!({}), "name"), None);
        metadata_mut(&mut o).insert("uid".into(), json!("u"));
        assert_eq!(meta_str(&o, "uid"), Some("u"));
        let mut bare = json!({});
        metadata_mut(&mut bare).insert("name".into(), json!("b"));
        assert_eq!(bare, json!({"metadata": {"name": "b"}}));
    }
}

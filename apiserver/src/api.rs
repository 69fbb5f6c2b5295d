//! The REST semantics of the API on top of the store: get, list, create, replace, patch and
//! delete of objects and of their `status` and `scale` subresources, with admission (defaults,
//! structural checks, the plugged-in validators) on every write. HTTP plumbing is in `server`.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Value};

use super::admission::AdmissionChain;
use super::patch;
use super::status::ApiError;
use super::table;
use berth_kube::kinds::{self, Kind};
use berth_kube::list_selector::Selector;
use berth_kube::structural::{self as validate, FieldValidation};
use berth_objectstore::store::{ObjectStore, Preconditions, Propagation};

/// What a request addresses: a type, a namespace (none: all namespaces, or a cluster-scoped
/// type), an object name, and a subresource.
#[derive(Debug, Clone)]
pub struct Target {
    /// The type.
    pub kind: &'static Kind,
    /// The namespace from the URL.
    pub namespace: Option<String>,
    /// The object name from the URL.
    pub name: Option<String>,
    /// `status`, `scale`, `log`.
    pub sub: Option<String>,
}

impl Target {
    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    fn name(&self) -> Result<&str, ApiError> {
        self.name
            .as_deref()
            .ok_or_else(|| ApiError::method_not_allowed(self.kind.plural))
    }
}

/// Query parameters of a request.
#[derive(Debug, Clone, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    /// Parses `a=b&c=d` (percent-decoded).
    pub fn parse(query: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// One parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether `key` is `true` (or `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn field_validation(&self) -> Result<FieldValidation, ApiError> {
        match self.get("fieldValidation") {
            None | Some("") => Ok(FieldValidation::default()),
            Some(v) => FieldValidation::parse(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "fieldValidation {v:?}: expected one of Strict, Warn, Ignore"
                ))
            }),
        }
    }

    fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }

    /// The label and field selectors of a list or watch.
    pub fn selector(&self) -> Result<Selector, ApiError> {
        let bad =
            |e: berth_kube::list_selector::SelectorError| ApiError::bad_request(e.to_string());
        Selector::labels(self.get("labelSelector").unwrap_or_default())
            .map_err(bad)?
            .with_fields(self.get("fieldSelector").unwrap_or_default())
            .map_err(bad)
    }
}

/// The API over one store.
#[derive(Clone)]
pub struct Api {
    /// The object store.
    pub store: ObjectStore,
    /// What every write passes.
    pub admission: AdmissionChain,
}

impl Api {
    /// GET of one object or its `status`/`scale`.
    pub fn get(&self, t: &Target) -> Result<Value, ApiError> {
        let obj = self.store.get(t.kind, t.ns(), t.name()?)?;
        match t.sub.as_deref() {
            None | Some("status") => Ok(obj),
            Some("scale") if t.kind.has_scale => Ok(to_scale(&obj)),
            Some(other) => Err(ApiError::no_route(other)),
        }
    }

    /// LIST of a type, as a `...List` or, with `as_table`, a `Table`.
    pub fn list(&self, t: &Target, q: &Query, as_table: bool) -> Result<Value, ApiError> {
        let selector = q.selector()?;
        let list = self.store.list(t.kind, t.namespace.as_deref(), &selector);
        let mut items = list.items;
        let mut meta = json!({"resourceVersion": list.revision.to_string()});
        if let Some(after) = q.get("continue").filter(|c| !c.is_empty()) {
            items.retain(|o| continue_key(o).as_str() > after);
        }
        if let Some(limit) = q.get("limit").and_then(|l| l.parse::<usize>().ok()) {
            if limit > 0 && items.len() > limit {
                items.truncate(limit);
                if let Some(last) = items.last() {
                    meta["continue"] = json!(continue_key(last));
                }
            }
        }
        if as_table {
            let include = q.get("includeObject") == Some("Object");
            return Ok(table::table(t.kind, &items, meta, include));
        }
        Ok(json!({
            "kind": t.kind.list_kind(),
            "apiVersion": t.kind.api_version(),
            "metadata": meta,
            "items": items,
        }))
    }

    /// POST to a collection: creates the object in the body.
    pub fn create(&self, t: &Target, body: &[u8], q: &Query) -> Result<Value, ApiError> {
        if t.kind.read_only {
            return Err(ApiError::method_not_allowed(t.kind.plural));
        }
        let mut obj = decode(body)?;
        if t.kind.namespaced {
            let url_ns = t.namespace.clone().unwrap_or_else(|| "default".into());
            match obj["metadata"]["namespace"].as_str() {
                Some(ns) if !ns.is_empty() && ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {}
            }
            if obj.is_object() {
                if !obj["metadata"].is_object() {
                    obj["metadata"] = json!({});
                }
                obj["metadata"]["namespace"] = json!(url_ns);
            }
        }
        admit(&self.admission, t.kind, &mut obj, q.field_validation()?)?;
        if q.dry_run() {
            return Ok(obj);
        }
        Ok(self.store.create(t.kind, obj)?)
    }

    /// PUT of an object, its `status`, or its `scale`.
    pub fn replace(&self, t: &Target, body: &[u8], q: &Query) -> Result<Value, ApiError> {
        if t.kind.read_only {
            return Err(ApiError::method_not_allowed(t.kind.plural));
        }
        let name = t.name()?.to_string();
        let mut obj = decode(body)?;
        if obj["metadata"]["name"].as_str() != Some(name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                obj["metadata"]["name"].as_str().unwrap_or_default()
            )));
        }
        match t.sub.as_deref() {
            None => {
                set_namespace(t, &mut obj);
                admit(&self.admission, t.kind, &mut obj, q.field_validation()?)?;
                if q.dry_run() {
                    return Ok(obj);
                }
                Ok(self.store.update(t.kind, obj)?)
            }
            Some("status") => {
                set_namespace(t, &mut obj);
                Ok(self.store.update_status(t.kind, obj)?)
            }
            Some("scale") if t.kind.has_scale => self.set_scale(t, &obj, q),
            Some(other) => Err(ApiError::no_route(other)),
        }
    }

    /// PATCH of an object (or its `status`/`scale`); `content_type` picks the patch kind. A
    /// server-side apply (`application/apply-patch+yaml`) of a missing object creates it
    /// (`created` is then true).
    pub fn patch(
        &self,
        t: &Target,
        body: &[u8],
        content_type: &str,
        q: &Query,
    ) -> Result<(Value, bool), ApiError> {
        if t.kind.read_only {
            return Err(ApiError::method_not_allowed(t.kind.plural));
        }
        let name = t.name()?.to_string();
        let patch_body = decode(body)?;
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let apply = media == "application/apply-patch+yaml";
        // As the API server's guaranteed update: retry when someone else wrote in between,
        // unless the patch itself names the resourceVersion it was made against.
        let pinned = patch_body["metadata"]["resourceVersion"].is_string();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = match self.store.get(t.kind, t.ns(), &name) {
                Ok(obj) => obj,
                Err(berth_objectstore::StoreError::NotFound { .. }) if apply && t.sub.is_none() => {
                    let mut obj = patch_body.clone();
                    set_namespace(t, &mut obj);
                    admit(&self.admission, t.kind, &mut obj, q.field_validation()?)?;
                    if q.dry_run() {
                        return Ok((obj, true));
                    }
                    return Ok((self.store.create(t.kind, obj)?, true));
                }
                Err(e) => return Err(e.into()),
            };
            let base = match t.sub.as_deref() {
                Some("scale") if t.kind.has_scale => to_scale(&current),
                None | Some("status") => current.clone(),
                Some(other) => return Err(ApiError::no_route(other)),
            };
            let mut patched = base;
            match media {
                "application/merge-patch+json" => patch::merge(&mut patched, &patch_body),
                "application/strategic-merge-patch+json" | "application/apply-patch+yaml" => {
                    patch::strategic_merge(&mut patched, &patch_body)?
                }
                "application/json-patch+json" => patch::json_patch(&mut patched, &patch_body)?,
                other => return Err(ApiError::unsupported_media_type(other)),
            }
            if patched["metadata"]["name"].as_str() != Some(name.as_str()) {
                return Err(ApiError::bad_request(
                    "a patch may not change metadata.name",
                ));
            }
            let result = match t.sub.as_deref() {
                Some("scale") => self.set_scale(t, &patched, q),
                Some("status") => {
                    set_namespace(t, &mut patched);
                    self.store
                        .update_status(t.kind, patched)
                        .map_err(ApiError::from)
                }
                _ => {
                    set_namespace(t, &mut patched);
                    admit(&self.admission, t.kind, &mut patched, q.field_validation()?)?;
                    if q.dry_run() {
                        return Ok((patched, false));
                    }
                    self.store.update(t.kind, patched).map_err(ApiError::from)
                }
            };
            match result {
                Err(e) if e.reason == "Conflict" && !pinned && attempts < 5 => continue,
                other => return other.map(|v| (v, false)),
            }
        }
    }

    /// DELETE of an object, with DeleteOptions from the body or the query.
    pub fn delete(&self, t: &Target, body: &[u8], q: &Query) -> Result<Value, ApiError> {
        if t.kind.read_only {
            return Err(ApiError::method_not_allowed(t.kind.plural));
        }
        let name = t.name()?;
        if std::ptr::eq(t.kind, &kinds::NAMESPACE) && matches!(name, "default" | "kube-system") {
            return Err(ApiError {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "namespaces {name:?} is forbidden: this namespace may not be deleted"
                ),
                details: None,
            });
        }
        let opts = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            decode(body)?
        };
        let policy = opts["propagationPolicy"]
            .as_str()
            .or(q.get("propagationPolicy"))
            .unwrap_or("Background");
        let propagation = match policy {
            "Background" => Propagation::Background,
            "Foreground" => Propagation::Foreground,
            "Orphan" => Propagation::Orphan,
            other => {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy {other:?}: expected Background, Foreground or Orphan"
                )))
            }
        };
        let pre = Preconditions {
            uid: opts["preconditions"]["uid"].as_str(),
            resource_version: opts["preconditions"]["resourceVersion"].as_str(),
        };
        if q.dry_run() || opts["dryRun"].as_array().is_some_and(|d| !d.is_empty()) {
            return Ok(self.store.get(t.kind, t.ns(), name)?);
        }
        Ok(self.store.delete(t.kind, t.ns(), name, propagation, pre)?)
    }

    /// Writes the replicas of a `Scale` into its object's `spec.replicas`.
    fn set_scale(&self, t: &Target, scale: &Value, q: &Query) -> Result<Value, ApiError> {
        let replicas = scale["spec"]["replicas"]
            .as_i64()
            .filter(|r| *r >= 0)
            .ok_or_else(|| {
                ApiError::from_validation(
                    t.kind,
                    t.name.as_deref().unwrap_or_default(),
                    validate::ValidationError::Invalid(vec![validate::Cause::invalid(
                        "spec.replicas",
                        &scale["spec"]["replicas"].to_string(),
                        "must be greater than or equal to 0",
                    )]),
                )
            })?;
        let mut obj = self.store.get(t.kind, t.ns(), t.name()?)?;
        if let Some(rv) = scale["metadata"]["resourceVersion"].as_str() {
            obj["metadata"]["resourceVersion"] = json!(rv);
        }
        obj["spec"]["replicas"] = json!(replicas);
        if q.dry_run() {
            return Ok(to_scale(&obj));
        }
        let obj = self.store.update(t.kind, obj)?;
        Ok(to_scale(&obj))
    }
}

/// The `autoscaling/v1` `Scale` of a ReplicaSet or Deployment.
fn to_scale(obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": table::label_selector(&obj["spec"]["selector"]),
        },
    })
}

fn continue_key(o: &Value) -> String {
    format!(
        "{}/{}",
        o["metadata"]["namespace"].as_str().unwrap_or_default(),
        o["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn set_namespace(t: &Target, obj: &mut Value) {
    if t.kind.namespaced && obj.is_object() {
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        obj["metadata"]["namespace"] = json!(t.ns());
    }
}

/// Parses a request body: JSON (kubectl sends JSON even for `apply-patch+yaml`).
fn decode(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })
}

/// Defaults and validation of an object about to be written.
fn admit(
    chain: &AdmissionChain,
    kind: &'static Kind,
    obj: &mut Value,
    fv: FieldValidation,
) -> Result<(), ApiError> {
    // A null field is an absent one (as typed decoding reads it); none is stored.
    strip_nulls(obj);
    if let Some(map) = obj.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| json!(kind.api_version()));
        map.entry("kind").or_insert_with(|| json!(kind.kind));
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .or(obj["metadata"]["generateName"].as_str())
        .unwrap_or_default()
        .to_string();
    if std::ptr::eq(kind, &kinds::SECRET) {
        secret_string_data(obj).map_err(|cause| {
            ApiError::from_validation(kind, &name, validate::ValidationError::Invalid(vec![cause]))
        })?;
    }
    chain
        .admit(kind, obj, fv)
        .map_err(|e| ApiError::from_validation(kind, &name, e))
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Folds a Secret's `stringData` into `data` (base64), as the API server does, and checks
/// that `data` values are base64.
fn secret_string_data(obj: &mut Value) -> Result<(), validate::Cause> {
    let engine = base64::engine::general_purpose::STANDARD;
    if let Some(data) = obj["data"].as_object() {
        for (k, v) in data {
            let s = v.as_str().unwrap_or_default();
            if engine.decode(s).is_err() {
                return Err(validate::Cause::invalid(
                    format!("data[{k}]"),
                    s,
                    "illegal base64 data",
                ));
            }
        }
    }
    if let Some(obj_map) = obj.as_object_mut() {
        if let Some(Value::Object(string_data)) = obj_map.remove("stringData") {
            let data = obj_map.entry("data").or_insert_with(|| json!({}));
            if !data.is_object() {
                *data = json!({});
            }
            for (k, v) in string_data {
                data[k.as_str()] = json!(engine.encode(v.as_str().unwrap_or_default()));
            }
        }
        if obj_map
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            obj_map.insert("type".into(), json!("Opaque"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> (tempfile::TempDir, Api) {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        (
            dir,
            Api {
                store,
                admission: AdmissionChain {
                    defaulters: vec![berth_kube::admission::default],
                    validators: vec![berth_kube::admission::validate],
                },
            },
        )
    }

    fn target(kind: &'static Kind, name: Option<&str>, sub: Option<&str>) -> Target {
        Target {
            kind,
            namespace: Some("default".into()),
            name: name.map(str::to_string),
            sub: sub.map(str::to_string),
        }
    }

    #[test]
    fn nulls_are_not_stored() {
        let (_d, api) = api();
        let body = br#"{"metadata": {"name": "n", "creationTimestamp": null, "labels": null}, "data": {"a": "1"}}"#;
        let cm = api
            .create(
                &target(&kinds::CONFIG_MAP, None, None),
                body,
                &Query::default(),
            )
            .unwrap();
        assert!(cm["metadata"]["labels"].is_null() && cm["metadata"].get("labels").is_none());
        assert!(cm["metadata"]["creationTimestamp"].is_string());
    }

    #[test]
    fn secrets_fold_string_data() {
        let (_d, api) = api();
        let body = br#"{"metadata": {"name": "s"}, "stringData": {"user": "admin"}}"#;
        let s = api
            .create(&target(&kinds::SECRET, None, None), body, &Query::default())
            .unwrap();
        assert_eq!(s["data"]["user"], "YWRtaW4=");
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
        let bad = br#"{"metadata": {"name": "t"}, "data": {"x": "not base64!"}}"#;
        let e = api
            .create(&target(&kinds::SECRET, None, None), bad, &Query::default())
            .unwrap_err();
        assert_eq!(e.code, 422);
    }

    #[test]
    fn patches_and_scale() {
        let (_d, api) = api();
        let body = br#"{"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}"#;
        api.create(
            &target(&kinds::DEPLOYMENT, None, None),
            body,
            &Query::default(),
        )
        .unwrap();
        let t = target(&kinds::DEPLOYMENT, Some("web"), Some("scale"));
        let (scale, _) = api
            .patch(
                &t,
                br#"{"spec": {"replicas": 4}}"#,
                "application/merge-patch+json",
                &Query::default(),
            )
            .unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["spec"]["replicas"], 4);
        assert_eq!(scale["status"]["selector"], "app=web");
        let d = api
            .get(&target(&kinds::DEPLOYMENT, Some("web"), None))
            .unwrap();
        assert_eq!(d["spec"]["replicas"], 4);
        assert_eq!(d["metadata"]["generation"], 2);

        let t = target(&kinds::CONFIG_MAP, Some("cm"), None);
        let (created, was_created) = api
            .patch(&t, br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1"}}"#,
                   "application/apply-patch+yaml", &Query::default())
            .unwrap();
        assert!(was_created);
        assert_eq!(created["data"]["a"], "1");
        let e = api
            .patch(
                &t,
                br#"[{"op": "test", "path": "/data/a", "value": "2"}]"#,
                "application/json-patch+json",
                &Query::default(),
            )
            .unwrap_err();
        assert_eq!(e.code, 422);
        let e = api
            .patch(&t, b"{}", "text/plain", &Query::default())
            .unwrap_err();
        assert_eq!(e.code, 415);
    }

    #[test]
    fn invalid_names_are_refused_with_the_field() {
        let (_d, api) = api();
        let e = api
            .create(
                &target(&kinds::CONFIG_MAP, None, None),
                br#"{"metadata": {"name": "Bad_Name"}}"#,
                &Query::default(),
            )
            .unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.contains("metadata.name"), "{}", e.message);
        assert_eq!(
            e.to_status()["details"]["causes"][0]["field"],
            "metadata.name"
        );
        assert!(api
            .store
            .get(&kinds::CONFIG_MAP, "default", "Bad_Name")
            .is_err());
    }

    #[test]
    fn list_pages_with_limit_and_continue() {
        let (_d, api) = api();
        for n in ["a", "b", "c"] {
            let body = format!(r#"{{"metadata": {{"name": "{n}"}}}}"#);
            api.create(
                &target(&kinds::CONFIG_MAP, None, None),
                body.as_bytes(),
                &Query::default(),
            )
            .unwrap();
        }
        let t = target(&kinds::CONFIG_MAP, None, None);
        let page = api.list(&t, &Query::parse(Some("limit=2")), false).unwrap();
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let token = page["metadata"]["continue"].as_str().unwrap().to_string();
        let rest = api
            .list(
                &t,
                &Query::parse(Some(&format!("limit=2&continue={token}"))),
                false,
            )
            .unwrap();
        assert_eq!(rest["items"][0]["metadata"]["name"], "c");
        let one = api
            .list(
                &t,
                &Query::parse(Some("fieldSelector=metadata.name%3Db")),
                true,
            )
            .unwrap();
        assert_eq!(one["kind"], "Table");
        assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    }
}

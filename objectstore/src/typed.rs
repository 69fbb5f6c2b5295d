//! Stored objects decoded into the object model's typed kinds.

use berth_kube::kinds::Kind;
use berth_kube::list_selector::Selector;

use crate::ObjectStore;

impl ObjectStore {
    /// Typed objects of `kind` (in `namespace`, or all); ones that do not decode are logged
    /// and skipped.
    pub fn list_typed<T: serde::de::DeserializeOwned>(
        &self,
        kind: &'static Kind,
        namespace: Option<&str>,
    ) -> Vec<T> {
        self.list(kind, namespace, &Selector::everything())
            .items
            .into_iter()
            .filter_map(|v| {
                let name = v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                serde_json::from_value(v)
                    .map_err(|e| tracing::warn!(kind = kind.kind, name, "cannot decode: {e}"))
                    .ok()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use berth_kube::kinds;
    use berth_kube::Namespace;
    use serde_json::json;

    use crate::ObjectStore;

    #[test]
    fn objects_that_do_not_decode_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        store
            .create(
                &kinds::CONFIG_MAP,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}}),
            )
            .unwrap();
        let names: Vec<String> = store
            .list_typed::<Namespace>(&kinds::NAMESPACE, None)
            .iter()
            .map(|n| n.metadata.name().to_string())
            .collect();
        assert_eq!(names, ["default", "kube-system"]);
        // A ConfigMap read as a Namespace fails to decode (unknown field `data`): skipped.
        assert!(store
            .list_typed::<Namespace>(&kinds::CONFIG_MAP, None)
            .is_empty());
    }
}

//! Binding PersistentVolumeClaims to PersistentVolumes, simply: a pending claim gets the
//! smallest available volume whose capacity covers its request, whose access modes include
//! the claim's and whose storage class is the claim's (unset meaning none). Both then say
//! `Bound`: the claim's `spec.volumeName` and the volume's `spec.claimRef` name each other.

use serde_json::{json, Value};

use berth_kube::kinds;
use berth_kube::list_selector::Selector;
use berth_kube::quantity::Quantity;
use berth_objectstore::{ObjectStore, StoreError};

fn storage(v: &Value, path: &str) -> i128 {
    v.pointer(path)
        .and_then(Value::as_str)
        .and_then(|q| Quantity::parse(q).ok())
        .map_or(0, |q| q.value())
}

fn strings(v: &Value, path: &str) -> Vec<String> {
    v.pointer(path)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn class(v: &Value) -> &str {
    v.pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The name of the volume among `volumes` that claim `claim` binds to, if any.
pub fn pick<'a>(claim: &Value, volumes: &'a [Value]) -> Option<&'a str> {
    let want = storage(claim, "/spec/resources/requests/storage");
    let modes = strings(claim, "/spec/accessModes");
    volumes
        .iter()
        .filter(|pv| pv.pointer("/spec/claimRef").is_none_or(Value::is_null))
        .filter(|pv| pv.pointer("/spec/hostPath/path").is_some())
        .filter(|pv| class(pv) == class(claim))
        .filter(|pv| {
            let have = strings(pv, "/spec/accessModes");
            modes.iter().all(|m| have.contains(m))
        })
        .filter(|pv| storage(pv, "/spec/capacity/storage") >= want)
        .min_by_key(|pv| storage(pv, "/spec/capacity/storage"))
        .and_then(|pv| pv.pointer("/metadata/name").and_then(Value::as_str))
}

/// Binds every pending claim it can.
pub fn bind(store: &ObjectStore) -> Result<(), StoreError> {
    let claims = store
        .list(
            &kinds::PERSISTENT_VOLUME_CLAIM,
            None,
            &Selector::everything(),
        )
        .items;
    let pending: Vec<Value> = claims
        .into_iter()
        .filter(|c| {
            c.pointer("/spec/volumeName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        })
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut volumes = store
        .list(&kinds::PERSISTENT_VOLUME, None, &Selector::everything())
        .items;
    for mut claim in pending {
        let Some(name) = pick(&claim, &volumes).map(str::to_string) else {
            if claim.pointer("/status/phase").and_then(Value::as_str) != Some("Pending") {
                claim["status"] = json!({"phase": "Pending"});
                store.update_status(&kinds::PERSISTENT_VOLUME_CLAIM, claim)?;
            }
            continue;
        };
        let Some(pv) = volumes
            .iter_mut()
            .find(|v| v.pointer("/metadata/name").and_then(Value::as_str) == Some(&name))
        else {
            continue;
        };
        pv["spec"]["claimRef"] = json!({
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": claim["metadata"]["namespace"],
            "name": claim["metadata"]["name"],
            "uid": claim["metadata"]["uid"],
        });
        let updated = store.update(&kinds::PERSISTENT_VOLUME, pv.clone())?;
        let mut bound = updated.clone();
        bound["status"] = json!({"phase": "Bound"});
        *pv = store.update_status(&kinds::PERSISTENT_VOLUME, bound)?;
        claim["spec"]["volumeName"] = json!(name);
        let mut claim = store.update(&kinds::PERSISTENT_VOLUME_CLAIM, claim)?;
        claim["status"] = json!({
            "phase": "Bound",
            "accessModes": pv["spec"]["accessModes"],
            "capacity": pv["spec"]["capacity"],
        });
        store.update_status(&kinds::PERSISTENT_VOLUME_CLAIM, claim)?;
        tracing::info!(volume = %name, "claim bound");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(name: &str, size: &str, modes: &[&str], class: Option<&str>) -> Value {
        let mut v = json!({
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": modes,
                     "hostPath": {"path": format!("/tmp/{name}")}},
        });
        if let Some(c) = class {
            v["spec"]["storageClassName"] = json!(c);
        }
        v
    }

    #[test]
    fn the_smallest_fitting_volume_is_picked() {
        let claim = json!({"spec": {"accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": "1Gi"}}}});
        let vols = vec![
            pv("big", "10Gi", &["ReadWriteOnce"], None),
            pv("small", "512Mi", &["ReadWriteOnce"], None),
            pv("fit", "1Gi", &["ReadWriteOnce", "ReadOnlyMany"], None),
            pv("ro", "1Gi", &["ReadOnlyMany"], None),
            pv("classy", "1Gi", &["ReadWriteOnce"], Some("fast")),
        ];
        assert_eq!(pick(&claim, &vols), Some("fit"));
        let mut taken = vols.clone();
        taken[2]["spec"]["claimRef"] = json!({"name": "other"});
        assert_eq!(pick(&claim, &taken), Some("big"));
        let mut fast = claim.clone();
        fast["spec"]["storageClassName"] = json!("fast");
        assert_eq!(pick(&fast, &vols), Some("classy"));
        let mut huge = claim.clone();
        huge["spec"]["resources"]["requests"]["storage"] = json!("1Ti");
        assert_eq!(pick(&huge, &vols), None);
    }
}

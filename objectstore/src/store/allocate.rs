//! Values unique across a kind's objects (a Service's cluster IP and node ports), handed out
//! by the store's [`Allocator`]s under its lock so two writes never get the same one.

use serde_json::Value;

use berth_kube::structural::Allocator;

use super::key::Key;
use super::{State, StoreError};

/// Runs the allocators of `key`'s kind on `object`, which is about to replace `previous`.
pub(super) fn allocate(
    allocators: &[Allocator],
    state: &State,
    key: &Key,
    object: &mut Value,
    previous: Option<&Value>,
) -> Result<(), StoreError> {
    let kind = key.kind();
    let mut allocators = allocators
        .iter()
        .filter(|a| std::ptr::eq(a.kind, kind))
        .peekable();
    if allocators.peek().is_none() {
        return Ok(());
    }
    // Keys sort by kind first: this kind's objects are one range of the map.
    let others: Vec<&Value> = state
        .objects
        .range(Key::first_of(key.kind)..)
        .take_while(|(k, _)| k.kind == key.kind)
        .filter(|(k, _)| *k != key)
        .map(|(_, v)| v)
        .collect();
    for allocator in allocators {
        (allocator.allocate)(object, previous, &others).map_err(|error| StoreError::Invalid {
            kind,
            name: key.name.clone(),
            error,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use berth_kube::kinds;
    use berth_kube::structural::{Cause, ValidationError};
    use serde_json::{json, Value};

    use super::*;
    use crate::ObjectStore;

    /// Gives each ConfigMap `data.n`: one more than the highest other ConfigMap's, kept on
    /// update; refuses an `n` another holds.
    fn number(
        object: &mut Value,
        previous: Option<&Value>,
        others: &[&Value],
    ) -> Result<(), ValidationError> {
        let taken: Vec<u64> = others
            .iter()
            .filter_map(|o| o["data"]["n"].as_u64())
            .collect();
        if let Some(n) = object["data"]["n"].as_u64() {
            if taken.contains(&n) {
                return Err(ValidationError::Invalid(vec![Cause::invalid(
                    "data.n",
                    &n.to_string(),
                    "taken",
                )]));
            }
            return Ok(());
        }
        let n = match previous {
            Some(p) => p["data"]["n"].clone(),
            None => json!(taken.iter().max().map_or(1, |m| m + 1)),
        };
        object["data"]["n"] = n;
        Ok(())
    }

    fn store(dir: &std::path::Path) -> ObjectStore {
        let numbering = Allocator {
            kind: &kinds::CONFIG_MAP,
            allocate: number,
        };
        ObjectStore::open(dir, vec![numbering]).unwrap()
    }

    fn cm(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "data": {}})
    }

    #[test]
    fn allocators_see_the_other_objects_of_their_kind_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let a = s.create(&kinds::CONFIG_MAP, cm("a")).unwrap();
        let b = s.create(&kinds::CONFIG_MAP, cm("b")).unwrap();
        assert_eq!(
            (a["data"]["n"].clone(), b["data"]["n"].clone()),
            (json!(1), json!(2))
        );
        // Another kind's objects are not handed to the allocator, nor allocated.
        let secret = s
            .create(
                &kinds::SECRET,
                json!({"metadata": {"name": "s", "namespace": "default"}, "data": {"n": 1}}),
            )
            .unwrap();
        assert_eq!(secret["data"]["n"], 1);
        // On update the object itself is not among the others: it keeps its value.
        let mut a2 = a.clone();
        a2["data"] = json!({"x": "y"});
        let a2 = s.update(&kinds::CONFIG_MAP, a2).unwrap();
        assert_eq!(a2["data"]["n"], 1);
    }

    #[test]
    fn a_refusal_is_invalid_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.create(&kinds::CONFIG_MAP, cm("a")).unwrap();
        let before = s.revision();
        let mut dup = cm("b");
        dup["data"]["n"] = json!(1);
        match s.create(&kinds::CONFIG_MAP, dup) {
            Err(StoreError::Invalid { kind, name, .. }) => {
                assert!(std::ptr::eq(kind, &kinds::CONFIG_MAP));
                assert_eq!(name, "b");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(s.revision(), before);
        assert!(s.get(&kinds::CONFIG_MAP, "default", "b").is_err());
    }
}

//! Where an object lives in the store: its kind, namespace and name, ordered kind first so a
//! kind's objects are one range of the map.

use berth_kube::kinds::{self, Kind};

/// An object's place in the store's map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    /// Index into [`kinds::ALL`].
    pub(super) kind: usize,
    /// Empty for cluster-scoped kinds.
    pub(super) namespace: String,
    pub(super) name: String,
}

impl Key {
    /// The key of `name` of `kind` in `namespace` (dropped for cluster-scoped kinds).
    pub(super) fn new(kind: &'static Kind, namespace: &str, name: &str) -> Key {
        Key {
            kind: kind_index(kind),
            namespace: if kind.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    /// The first key of `kind`'s range (sorts before every object of the kind).
    pub(super) fn first_of(kind: usize) -> Key {
        Key {
            kind,
            namespace: String::new(),
            name: String::new(),
        }
    }

    /// The object's kind.
    pub(super) fn kind(&self) -> &'static Kind {
        kinds::ALL[self.kind]
    }

    /// The key as the journal keeps it: `[group, plural, namespace, name]`.
    pub(super) fn to_journal(&self) -> [String; 4] {
        let kind = self.kind();
        [
            kind.group.to_string(),
            kind.plural.to_string(),
            self.namespace.clone(),
            self.name.clone(),
        ]
    }
}

/// `kind`'s index in [`kinds::ALL`] (every kind the store is handed is one of them).
pub(super) fn kind_index(kind: &Kind) -> usize {
    kinds::ALL
        .iter()
        .position(|k| k.group == kind.group && k.plural == kind.plural)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_scoped_keys_drop_the_namespace() {
        let ns = Key::new(&kinds::NAMESPACE, "default", "web");
        assert_eq!(ns.namespace, "");
        assert_eq!(ns, Key::new(&kinds::NAMESPACE, "", "web"));
        let cm = Key::new(&kinds::CONFIG_MAP, "default", "web");
        assert_eq!(cm.namespace, "default");
        assert_ne!(cm, Key::new(&kinds::CONFIG_MAP, "other", "web"));
    }

    #[test]
    fn keys_round_trip_through_their_kind_and_journal_form() {
        let k = Key::new(&kinds::DEPLOYMENT, "default", "web");
        assert!(std::ptr::eq(k.kind(), &kinds::DEPLOYMENT));
        assert_eq!(
            k.to_journal(),
            ["apps", "deployments", "default", "web"].map(String::from)
        );
        for kind in kinds::ALL {
            assert!(std::ptr::eq(kinds::ALL[kind_index(kind)], kind));
        }
    }

    #[test]
    fn a_kinds_keys_sort_together_after_its_first_key() {
        let pod = kind_index(&kinds::POD);
        let mut keys = [
            Key::new(&kinds::SECRET, "a", "a"),
            Key::new(&kinds::POD, "z", "z"),
            Key::new(&kinds::NAMESPACE, "", "zz"),
            Key::new(&kinds::POD, "a", "b"),
        ];
        keys.sort();
        let start = keys.iter().position(|k| *k >= Key::first_of(pod)).unwrap();
        let pods: Vec<&str> = keys[start..]
            .iter()
            .take_while(|k| k.kind == pod)
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(pods, ["b", "z"]);
    }
}

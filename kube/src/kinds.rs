//! The resource types the daemon serves: group, version, kind, plural and short names, whether
//! they live in a namespace, and which subresources they have. One table drives the store's
//! keys, discovery, the OpenAPI document, routing and the CLI's kind names.

/// One served resource type (a Kubernetes "resource" in discovery's sense).
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// The object kind (`Deployment`).
    pub kind: &'static str,
    /// The resource name in URLs (`deployments`).
    pub plural: &'static str,
    /// The singular name (`deployment`).
    pub singular: &'static str,
    /// kubectl's short names (`deploy`).
    pub short_names: &'static [&'static str],
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether the type has a `/status` subresource (status is then only written through it).
    pub has_status: bool,
    /// Whether the type has a `/scale` subresource.
    pub has_scale: bool,
    /// Whether clients may only read it (events are written by the daemon itself).
    pub read_only: bool,
}

impl Kind {
    /// `apiVersion` as objects carry it: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `Deployment.apps` style name used in error messages, as the API server words them.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The URL of this type's collection, in `namespace` (all namespaces, or a cluster-scoped
    /// type, for `None`).
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let prefix = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{prefix}/namespaces/{ns}/{}", self.plural),
            _ => format!("{prefix}/{}", self.plural),
        }
    }

    /// The URL of object `name` in `namespace`.
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        format!("{}/{name}", self.collection_path(Some(namespace)))
    }

    /// How kubectl names the type in output: `configmap`, `deployment.apps`.
    pub fn display_name(&self) -> String {
        let kind = self.kind.to_ascii_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    /// The kind of a list of these objects (`DeploymentList`).
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether `name` names this type the way kubectl accepts it: plural, singular, kind or a
    /// short name, case-insensitive, optionally qualified with the group (`deployments.apps`).
    pub fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let (base, group) = match name.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (name, None),
        };
        if let Some(g) = group {
            if g != self.group {
                return false;
            }
        }
        base == self.plural
            || base == self.singular
            || base == self.kind.to_ascii_lowercase()
            || self.short_names.contains(&base.as_str())
    }
}

macro_rules! kind {
    ($group:expr, $kind:expr, $plural:expr, $singular:expr, [$($short:expr),*], ns=$ns:expr, status=$st:expr, scale=$sc:expr, ro=$ro:expr) => {
        Kind {
            group: $group,
            version: "v1",
            kind: $kind,
            plural: $plural,
            singular: $singular,
            short_names: &[$($short),*],
            namespaced: $ns,
            has_status: $st,
            has_scale: $sc,
            read_only: $ro,
        }
    };
}

/// `v1` Namespace.
pub static NAMESPACE: Kind = kind!(
    "",
    "Namespace",
    "namespaces",
    "namespace",
    ["ns"],
    ns = false,
    status = true,
    scale = false,
    ro = false
);
/// `v1` Pod.
pub static POD: Kind = kind!(
    "",
    "Pod",
    "pods",
    "pod",
    ["po"],
    ns = true,
    status = true,
    scale = false,
    ro = false
);
/// `v1` Service.
pub static SERVICE: Kind = kind!(
    "",
    "Service",
    "services",
    "service",
    ["svc"],
    ns = true,
    status = true,
    scale = false,
    ro = false
);
/// `v1` Endpoints.
pub static ENDPOINTS: Kind = kind!(
    "",
    "Endpoints",
    "endpoints",
    "endpoints",
    ["ep"],
    ns = true,
    status = false,
    scale = false,
    ro = false
);
/// `v1` ConfigMap.
pub static CONFIG_MAP: Kind = kind!(
    "",
    "ConfigMap",
    "configmaps",
    "configmap",
    ["cm"],
    ns = true,
    status = false,
    scale = false,
    ro = false
);
/// `v1` Secret.
pub static SECRET: Kind = kind!(
    "",
    "Secret",
    "secrets",
    "secret",
    [],
    ns = true,
    status = false,
    scale = false,
    ro = false
);
/// `v1` PersistentVolume.
pub static PERSISTENT_VOLUME: Kind = kind!(
    "",
    "PersistentVolume",
    "persistentvolumes",
    "persistentvolume",
    ["pv"],
    ns = false,
    status = true,
    scale = false,
    ro = false
);
/// `v1` PersistentVolumeClaim.
pub static PERSISTENT_VOLUME_CLAIM: Kind = kind!(
    "",
    "PersistentVolumeClaim",
    "persistentvolumeclaims",
    "persistentvolumeclaim",
    ["pvc"],
    ns = true,
    status = true,
    scale = false,
    ro = false
);
/// `v1` Event (written by the daemon, read-only to clients).
pub static EVENT: Kind = kind!(
    "",
    "Event",
    "events",
    "event",
    ["ev"],
    ns = true,
    status = false,
    scale = false,
    ro = true
);
/// `apps/v1` ReplicaSet.
pub static REPLICA_SET: Kind = kind!(
    "apps",
    "ReplicaSet",
    "replicasets",
    "replicaset",
    ["rs"],
    ns = true,
    status = true,
    scale = true,
    ro = false
);
/// `apps/v1` Deployment.
pub static DEPLOYMENT: Kind = kind!(
    "apps",
    "Deployment",
    "deployments",
    "deployment",
    ["deploy"],
    ns = true,
    status = true,
    scale = true,
    ro = false
);

/// Every served type, core group first (discovery lists them in this order).
pub static ALL: [&Kind; 11] = [
    &NAMESPACE,
    &POD,
    &SERVICE,
    &ENDPOINTS,
    &CONFIG_MAP,
    &SECRET,
    &PERSISTENT_VOLUME,
    &PERSISTENT_VOLUME_CLAIM,
    &EVENT,
    &REPLICA_SET,
    &DEPLOYMENT,
];

/// The API groups served besides the core group, with their versions.
pub static GROUPS: [&str; 1] = ["apps"];

/// The type a kubectl-style name (`po`, `deploy`, `deployments.apps`, `ConfigMap`) refers to.
pub fn by_name(name: &str) -> Option<&'static Kind> {
    ALL.iter().copied().find(|k| k.matches(name))
}

/// The type with this URL group and plural.
pub fn by_plural(group: &str, plural: &str) -> Option<&'static Kind> {
    ALL.iter()
        .copied()
        .find(|k| k.group == group && k.plural == plural)
}

/// The type an object's `apiVersion` and `kind` name.
pub fn by_api_version_kind(api_version: &str, kind: &str) -> Option<&'static Kind> {
    ALL.iter()
        .copied()
        .find(|k| k.kind == kind && k.api_version() == api_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_names_resolve() {
        assert_eq!(by_name("po"), Some(&POD));
        assert_eq!(by_name("Pods"), Some(&POD));
        assert_eq!(by_name("deploy"), Some(&DEPLOYMENT));
        assert_eq!(by_name("deployments.apps"), Some(&DEPLOYMENT));
        assert_eq!(by_name("deployments.batch"), None);
        assert_eq!(by_name("cm"), Some(&CONFIG_MAP));
        assert_eq!(by_name("pvc"), Some(&PERSISTENT_VOLUME_CLAIM));
        assert_eq!(by_name("nope"), None);
    }

    #[test]
    fn paths() {
        assert_eq!(POD.object_path("x", "p"), "/api/v1/namespaces/x/pods/p");
        assert_eq!(NAMESPACE.object_path("x", "y"), "/api/v1/namespaces/y");
        assert_eq!(
            DEPLOYMENT.collection_path(None),
            "/apis/apps/v1/deployments"
        );
        assert_eq!(DEPLOYMENT.display_name(), "deployment.apps");
    }

    #[test]
    fn api_versions() {
        assert_eq!(REPLICA_SET.api_version(), "apps/v1");
        assert_eq!(SECRET.api_version(), "v1");
        assert_eq!(
            by_api_version_kind("apps/v1", "Deployment"),
            Some(&DEPLOYMENT)
        );
        assert_eq!(by_api_version_kind("v1", "Deployment"), None);
    }
}

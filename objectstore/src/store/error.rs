//! What a store operation can refuse, each error mapping onto a Kubernetes `Status` reason.

use berth_kube::kinds::Kind;
use berth_kube::structural::ValidationError;

use crate::journal::JournalError;

/// Errors from store operations, each mapping onto a Kubernetes `Status` reason.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object.
    #[error("{resource} {name:?} not found")]
    NotFound {
        /// `deployments.apps`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// An object with that name exists.
    #[error("{resource} {name:?} already exists")]
    AlreadyExists {
        /// `deployments.apps`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// The caller's resourceVersion or uid is not the stored one.
    #[error("Operation cannot be fulfilled on {resource} {name:?}: the object has been modified; please apply your changes to the latest version and try again")]
    Conflict {
        /// `deployments.apps`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// The object's namespace does not exist (or is being deleted).
    #[error("namespaces {namespace:?} not found")]
    NamespaceNotFound {
        /// The missing namespace.
        namespace: String,
    },
    /// The object is not shaped like an API object (no name, wrong kind, not a map).
    #[error("{0}")]
    BadRequest(String),
    /// A watch asked for a resourceVersion older than the history kept.
    #[error("too old resource version: {requested} ({oldest})")]
    Gone {
        /// The version asked for.
        requested: u64,
        /// The oldest version a watch can start from.
        oldest: u64,
    },
    /// An allocator refused the object (a value it asks for is another object's).
    #[error("{} {name:?} is {error}", kind.kind)]
    Invalid {
        /// The object's kind.
        kind: &'static Kind,
        /// The object's name.
        name: String,
        /// The fields refused.
        error: ValidationError,
    },
    /// The disk under the store failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// `NotFound` for object `name` of `kind`.
pub(super) fn not_found(kind: &Kind, name: &str) -> StoreError {
    StoreError::NotFound {
        resource: kind.qualified_plural(),
        name: name.to_string(),
    }
}

/// `Conflict` for object `name` of `kind`.
pub(super) fn conflict(kind: &Kind, name: &str) -> StoreError {
    StoreError::Conflict {
        resource: kind.qualified_plural(),
        name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_kube::kinds;
    use berth_kube::structural::Cause;

    #[test]
    fn messages_name_the_qualified_resource_as_the_api_server_does() {
        assert_eq!(
            not_found(&kinds::DEPLOYMENT, "web").to_string(),
            r#"deployments.apps "web" not found"#
        );
        assert_eq!(
            conflict(&kinds::CONFIG_MAP, "a").to_string(),
            r#"Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again"#
        );
        assert_eq!(
            StoreError::NamespaceNotFound {
                namespace: "x".into()
            }
            .to_string(),
            r#"namespaces "x" not found"#
        );
    }

    #[test]
    fn invalid_names_the_kind_and_the_fields() {
        let e = StoreError::Invalid {
            kind: &kinds::SERVICE,
            name: "web".into(),
            error: ValidationError::Invalid(vec![Cause::invalid(
                "spec.clusterIP",
                "10.0.0.1",
                "provided IP is already allocated",
            )]),
        };
        assert_eq!(
            e.to_string(),
            r#"Service "web" is invalid: spec.clusterIP: Invalid value: "10.0.0.1": provided IP is already allocated"#
        );
    }
}

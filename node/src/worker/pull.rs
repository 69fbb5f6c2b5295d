//! Getting a container's image into the store as `berth pull` does (the same store, Docker
//! credentials, registry settings from the environment and reference normalisation), under
//! the container's `imagePullPolicy`, with the kubelet's waiting reasons for each failure.

use std::path::Path;

use berth_image::reference::{Reference, ReferenceError};
use berth_image::store::{Store, StoreError};
use berth_kube::pod::Container;
use berth_registry_client::env::EnvError;
use berth_registry_client::pull::PullOptions;
use berth_registry_client::{Progress, PullImageError};

/// `imagePullPolicy`. berth pulls an image only when the store lacks it, whatever the
/// policy says, except that `Never` never pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PullPolicy {
    /// `Always` (pulled only when missing, as `IfNotPresent`).
    Always,
    /// `IfNotPresent`, and the policy of a container that names none.
    IfNotPresent,
    /// `Never`: a missing image is an error.
    Never,
}

impl PullPolicy {
    /// The policy of container `c`; an unknown value (validation refuses those) counts as
    /// `IfNotPresent`.
    pub(super) fn of(c: &Container) -> PullPolicy {
        match c.image_pull_policy.as_deref() {
            Some("Always") => PullPolicy::Always,
            Some("Never") => PullPolicy::Never,
            _ => PullPolicy::IfNotPresent,
        }
    }
}

/// Why a missing image is still missing.
#[derive(Debug, thiserror::Error)]
pub(super) enum PullError {
    /// The policy is `Never`.
    #[error("Container image {image:?} is not present with pull policy of Never")]
    NeverPull {
        /// The image as the container names it.
        image: String,
    },
    /// The image is not a reference that can be pulled.
    #[error("failed to pull image {image:?}: invalid reference format: {source}")]
    Reference {
        /// The image as the container names it.
        image: String,
        /// Why it does not parse.
        source: ReferenceError,
    },
    /// The registry settings in the environment are wrong.
    #[error("failed to pull image {image:?}: {source}")]
    Settings {
        /// The image as the container names it.
        image: String,
        /// What is wrong.
        source: EnvError,
    },
    /// The store could not be opened or leased.
    #[error("failed to pull image {image:?}: {source}")]
    Store {
        /// The image as the container names it.
        image: String,
        /// What failed.
        source: StoreError,
    },
    /// The registry transfer failed.
    #[error("failed to pull image {image:?}: {source}")]
    Pull {
        /// The image as the container names it.
        image: String,
        /// What failed (boxed: it is large).
        source: Box<PullImageError>,
    },
}

impl PullError {
    /// The container's waiting reason: `backing_off` when the last try failed already.
    pub(super) fn reason(&self, backing_off: bool) -> &'static str {
        match self {
            PullError::NeverPull { .. } => "ErrImageNeverPull",
            PullError::Reference { .. } => "InvalidImageName",
            _ if backing_off => "ImagePullBackOff",
            _ => "ErrImagePull",
        }
    }
}

/// Brings `image`, missing from the store at `root`, into it as `berth pull -q` would,
/// unless `policy` forbids it. Blocks (runs its own small runtime for the transfer): call
/// it off the async workers.
pub(super) fn pull_missing(root: &Path, image: &str, policy: PullPolicy) -> Result<(), PullError> {
    if policy == PullPolicy::Never {
        return Err(PullError::NeverPull {
            image: image.to_string(),
        });
    }
    let reference = Reference::parse(image).map_err(|source| PullError::Reference {
        image: image.to_string(),
        source,
    })?;
    let options =
        berth_registry_client::env::options_from_env().map_err(|source| PullError::Settings {
            image: image.to_string(),
            source,
        })?;
    let store_error = |source| PullError::Store {
        image: image.to_string(),
        source,
    };
    let store = Store::open(root).map_err(store_error)?;
    // A lease, not a lock: other pulls, builds and runs go on meanwhile; gc waits.
    let _lease = store.lease().map_err(store_error)?;
    let pulled = berth_registry_client::pull_blocking(
        &store,
        &reference,
        &options,
        &PullOptions::default(),
        &Progress::none(),
    )
    .map_err(|source| PullError::Pull {
        image: image.to_string(),
        source: Box::new(source),
    })?;
    tracing::info!(%reference, digest = %pulled.digest, "pulled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(policy: Option<&str>) -> Container {
        Container {
            image_pull_policy: policy.map(str::to_string),
            ..Container::default()
        }
    }

    #[test]
    fn policies_read_as_written_and_default_to_if_not_present() {
        assert_eq!(PullPolicy::of(&container(None)), PullPolicy::IfNotPresent);
        assert_eq!(
            PullPolicy::of(&container(Some("Always"))),
            PullPolicy::Always
        );
        assert_eq!(PullPolicy::of(&container(Some("Never"))), PullPolicy::Never);
        assert_eq!(
            PullPolicy::of(&container(Some("IfNotPresent"))),
            PullPolicy::IfNotPresent
        );
    }

    #[test]
    fn never_does_not_touch_the_store() {
        let root = tempfile::tempdir().unwrap();
        let e = pull_missing(&root.path().join("absent"), "app:1", PullPolicy::Never).unwrap_err();
        assert_eq!(e.reason(false), "ErrImageNeverPull");
        assert_eq!(e.reason(true), "ErrImageNeverPull");
        assert!(e.to_string().contains("pull policy of Never"), "{e}");
        assert!(!root.path().join("absent").exists());
    }

    #[test]
    fn a_bad_reference_is_an_invalid_image_name() {
        let root = tempfile::tempdir().unwrap();
        let e = pull_missing(root.path(), "UPPER:case:bad", PullPolicy::IfNotPresent).unwrap_err();
        assert!(matches!(e, PullError::Reference { .. }), "{e}");
        assert_eq!(e.reason(true), "InvalidImageName");
    }

    #[test]
    fn a_failed_transfer_becomes_a_back_off_after_the_first_try() {
        let e = PullError::Store {
            image: "app:1".into(),
            source: StoreError::ImageNotFound("app:1".into()),
        };
        assert_eq!(e.reason(false), "ErrImagePull");
        assert_eq!(e.reason(true), "ImagePullBackOff");
        assert!(
            e.to_string().starts_with("failed to pull image \"app:1\""),
            "{e}"
        );
    }
}

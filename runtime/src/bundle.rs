//! OCI bundles: loading `config.json` and validating it once, before anything
//! is forked, so later steps can trust the spec.

use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{Process, Spec};

use crate::devices::{self, DeviceError};
use crate::namespaces::{NamespaceError, NamespacePlan};

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// config.json is missing or not valid JSON for the spec.
    #[error("bundle {path}: config.json: {source}")]
    Config {
        /// The bundle dir.
        path: String,
        /// Why.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// The spec's version is not 1.x.
    #[error("bundle {0}: unsupported ociVersion {1:?}")]
    Version(String, String),
    /// A required part of the spec is absent.
    #[error("bundle {0}: config.json has no {1}")]
    Missing(String, &'static str),
    /// The rootfs does not exist.
    #[error("bundle {0}: rootfs {1} is not a directory")]
    Rootfs(String, String),
    /// The process's cwd is relative.
    #[error("process cwd {0:?} must be an absolute path")]
    RelativeCwd(String),
    /// A hostname without a private UTS namespace.
    #[error("unable to set hostname without a private UTS namespace")]
    HostnameWithoutUts,
    /// A container without its own mount namespace.
    #[error("bundle {0}: a mount namespace is required")]
    NoMountNamespace(String),
    /// User namespace without mappings.
    #[error("user namespace is enabled but linux.uidMappings or linux.gidMappings is empty")]
    NoIdMappings,
    /// Namespace list problems.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// Device list problems.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// A loaded and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// The spec from config.json.
    pub spec: Spec,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// The namespace plan derived from `linux.namespaces`.
    pub namespaces: NamespacePlan,
}

impl Bundle {
    /// Loads `dir/config.json` and validates it.
    pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
        let shown = dir.display().to_string();
        let dir = std::fs::canonicalize(dir).map_err(|e| BundleError::Config {
            path: shown.clone(),
            source: oci_spec::OciSpecError::Io(e),
        })?;
        let spec = Spec::load(dir.join("config.json")).map_err(|source| BundleError::Config {
            path: shown.clone(),
            source,
        })?;
        Self::from_spec(dir, spec)
    }

    /// Validates an in-memory spec for the bundle at `dir` (absolute).
    pub fn from_spec(dir: PathBuf, spec: Spec) -> Result<Bundle, BundleError> {
        let shown = dir.display().to_string();
        if !spec.version().starts_with("1.") {
            return Err(BundleError::Version(shown, spec.version().clone()));
        }
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| BundleError::Missing(shown.clone(), "root"))?;
        let rootfs = dir.join(root.path());
        if !rootfs.is_dir() {
            return Err(BundleError::Rootfs(shown, rootfs.display().to_string()));
        }
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| BundleError::Missing(shown.clone(), "process"))?;
        validate_process(&shown, process)?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| BundleError::Missing(shown.clone(), "linux section"))?;
        let namespaces = NamespacePlan::from_spec(linux.namespaces().as_deref().unwrap_or(&[]))?;
        if !namespaces.has(CloneFlags::CLONE_NEWNS) {
            return Err(BundleError::NoMountNamespace(shown));
        }
        if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
            && !namespaces.new.contains(CloneFlags::CLONE_NEWUTS)
        {
            return Err(BundleError::HostnameWithoutUts);
        }
        if namespaces.new.contains(CloneFlags::CLONE_NEWUSER)
            && (linux.uid_mappings().as_deref().unwrap_or(&[]).is_empty()
                || linux.gid_mappings().as_deref().unwrap_or(&[]).is_empty())
        {
            return Err(BundleError::NoIdMappings);
        }
        devices::devices_for(linux.devices().as_deref().unwrap_or(&[]))?;
        Ok(Bundle {
            dir,
            spec,
            rootfs,
            namespaces,
        })
    }
}

/// Checks a process description (also used by `exec --process`).
pub fn validate_process(bundle: &str, process: &Process) -> Result<(), BundleError> {
    if process.args().as_deref().unwrap_or(&[]).is_empty() {
        return Err(BundleError::Missing(bundle.to_string(), "process.args"));
    }
    if !process.cwd().is_absolute() {
        return Err(BundleError::RelativeCwd(
            process.cwd().display().to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Bundle, BundleError> {
        let dir = std::env::temp_dir().join(format!(
            "berth-bundle-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        let mut spec = serde_json::to_value(crate::spec::runc_spec().unwrap()).unwrap();
        edit(&mut spec);
        std::fs::write(dir.join("config.json"), spec.to_string()).unwrap();
        let result = Bundle::load(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn the_default_spec_is_valid() {
        let b = bundle_with(|_| {}).unwrap();
        assert!(b.rootfs.ends_with("rootfs"));
        assert!(b.namespaces.new.contains(CloneFlags::CLONE_NEWPID));
    }

    #[test]
    fn empty_args_are_refused() {
        let err = bundle_with(|s| s["process"]["args"] = serde_json::json!([])).unwrap_err();
        assert!(
            err.to_string().ends_with("config.json has no process.args"),
            "{err}"
        );
    }

    #[test]
    fn hostname_needs_a_uts_namespace() {
        let err = bundle_with(|s| {
            let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "uts");
        })
        .unwrap_err();
        assert!(matches!(err, BundleError::HostnameWithoutUts));
    }

    #[test]
    fn a_missing_rootfs_is_named() {
        let err = bundle_with(|s| s["root"]["path"] = "nope".into()).unwrap_err();
        assert!(err.to_string().contains("rootfs"), "{err}");
    }
}

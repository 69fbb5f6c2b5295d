//! Making and starting one berth container for a Kubernetes container: created from its
//! run options (its image pulled first when the store lacks it, per `imagePullPolicy`),
//! then started under its monitor. Failures carry the kubelet's waiting reason.

use std::path::Path;

use berth_engine::container::{self, ContainerConfig, ContainerError, Containers};
use berth_image::store::StoreError;

use super::pull::{self, PullError, PullPolicy};

/// Why a container could not be made or started.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    /// Its image is missing and could not be pulled.
    #[error(transparent)]
    Image(#[from] PullError),
    /// `runAsNonRoot` with an image that runs as root.
    #[error(
        "container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {container})"
    )]
    RunsAsRoot {
        /// The Pod (its label).
        pod: String,
        /// The container's name.
        container: String,
    },
    /// The engine could not create it.
    #[error(transparent)]
    Create(ContainerError),
    /// Its monitor could not start it.
    #[error(transparent)]
    Start(ContainerError),
}

impl StartError {
    /// The kubelet's waiting reason; `backing_off` when an image pull failed before.
    pub(super) fn reason(&self, backing_off: bool) -> &'static str {
        match self {
            StartError::Image(e) => e.reason(backing_off),
            StartError::RunsAsRoot { .. } => "CreateContainerConfigError",
            StartError::Create(_) | StartError::Start(_) => "CreateContainerError",
        }
    }

    /// `e`, from creating container `name` of pod `pod` (its label).
    fn of_create(e: ContainerError, pod: &str, name: &str) -> Self {
        match e {
            ContainerError::RunsAsRoot(_) => StartError::RunsAsRoot {
                pod: pod.to_string(),
                container: name.to_string(),
            },
            other => StartError::Create(other),
        }
    }
}

/// Creates container `name` of pod `pod` (its label, for messages) from `opts`, pulling a
/// missing image under `policy`, and starts its monitor (`berth-monitor` beside `exe`); the
/// monitor is reaped by a thread of its own. Blocks.
pub(super) fn create_and_start(
    containers: &Containers,
    exe: &Path,
    opts: &container::RunOptions,
    policy: PullPolicy,
    pod: &str,
    name: &str,
) -> Result<ContainerConfig, StartError> {
    let config = match container::create(containers, opts) {
        Ok(c) => c,
        Err(ContainerError::Store(StoreError::ImageNotFound(_))) => {
            pull::pull_missing(containers.root(), &opts.image, policy)?;
            container::create(containers, opts).map_err(|e| StartError::of_create(e, pod, name))?
        }
        Err(e) => return Err(StartError::of_create(e, pod, name)),
    };
    let monitor = container::monitor::exe_beside(exe)
        .and_then(|m| container::monitor::spawn(containers, &m, &config.id, false));
    let started = monitor.and_then(|mut handle| {
        handle.started()?;
        Ok(handle)
    });
    match started {
        Ok(handle) => {
            std::thread::spawn(move || handle.wait());
            Ok(config)
        }
        Err(e) => {
            let _ = container::remove(containers, &config, true);
            Err(StartError::Start(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_follow_the_kubelet() {
        let root = StartError::of_create(ContainerError::RunsAsRoot("0".into()), "ns/p", "app");
        assert_eq!(root.reason(false), "CreateContainerConfigError");
        assert_eq!(
            root.to_string(),
            "container has runAsNonRoot and image will run as root (pod: \"ns/p\", container: app)"
        );
        let other = StartError::of_create(ContainerError::Monitor("boom".into()), "p", "app");
        assert_eq!(other.reason(true), "CreateContainerError");
        let never = StartError::from(PullError::NeverPull {
            image: "img".into(),
        });
        assert_eq!(never.reason(false), "ErrImageNeverPull");
    }

    #[test]
    fn a_missing_image_under_never_is_not_pulled() {
        let dir = tempfile::tempdir().unwrap();
        let containers = Containers::new(dir.path());
        let opts = container::RunOptions {
            image: "surely-not-stored:1".into(),
            ..container::RunOptions::default()
        };
        let e = create_and_start(
            &containers,
            Path::new("/nonexistent/berth"),
            &opts,
            PullPolicy::Never,
            "p",
            "app",
        )
        .unwrap_err();
        assert!(
            matches!(e, StartError::Image(PullError::NeverPull { .. })),
            "{e}"
        );
    }
}

//! A pod's phase from its containers, as the kubelet computes it (`getPhase`): Pending while
//! a container has not run yet, Running while one runs or will be restarted, Succeeded or
//! Failed once all have terminated for good under the restart policy.

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Restart whatever the exit code (the default).
    #[default]
    Always,
    /// Restart after a non-zero exit.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// Parses the field; `None` when it is not one of Kubernetes' three.
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s.unwrap_or("Always") {
            "Always" => Some(RestartPolicy::Always),
            "OnFailure" => Some(RestartPolicy::OnFailure),
            "Never" => Some(RestartPolicy::Never),
            _ => None,
        }
    }

    /// Whether a container that exited with `exit_code` is started again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// What a container is doing, as far as the phase cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerPhase {
    /// Not running; `has_run` when it terminated before (waiting to restart).
    Waiting {
        /// It ran before.
        has_run: bool,
    },
    /// Running.
    Running,
    /// Terminated with this exit code.
    Terminated(i32),
}

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Accepted, not all containers created yet.
    Pending,
    /// Bound, containers created, at least one running or restarting.
    Running,
    /// All terminated with exit 0 and will not restart.
    Succeeded,
    /// All terminated, at least one failed, and none will restart.
    Failed,
}

impl PodPhase {
    /// The phase as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
        }
    }
}

/// The phase of a pod whose containers are `containers` under `policy`.
pub fn pod_phase(containers: &[ContainerPhase], policy: RestartPolicy) -> PodPhase {
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in containers {
        match c {
            ContainerPhase::Waiting { has_run: false } => waiting += 1,
            ContainerPhase::Waiting { has_run: true } | ContainerPhase::Running => running += 1,
            ContainerPhase::Terminated(code) => {
                stopped += 1;
                if *code == 0 {
                    succeeded += 1;
                }
            }
        }
    }
    if containers.is_empty() || waiting > 0 {
        return PodPhase::Pending;
    }
    if running > 0 {
        return PodPhase::Running;
    }
    match policy {
        RestartPolicy::Always => PodPhase::Running,
        _ if stopped == succeeded => PodPhase::Succeeded,
        RestartPolicy::OnFailure => PodPhase::Running,
        RestartPolicy::Never => PodPhase::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::ContainerPhase::*;
    use super::*;

    #[test]
    fn phases_follow_the_kubelet() {
        use RestartPolicy::*;
        let never_ran = Waiting { has_run: false };
        let restarting = Waiting { has_run: true };
        assert_eq!(pod_phase(&[], Always), PodPhase::Pending);
        assert_eq!(pod_phase(&[Running, never_ran], Always), PodPhase::Pending);
        assert_eq!(pod_phase(&[Running, restarting], Never), PodPhase::Running);
        assert_eq!(
            pod_phase(&[Terminated(0), Running], Never),
            PodPhase::Running
        );
        assert_eq!(
            pod_phase(&[Terminated(0), Terminated(0)], Never),
            PodPhase::Succeeded
        );
        assert_eq!(
            pod_phase(&[Terminated(0), Terminated(1)], Never),
            PodPhase::Failed
        );
        assert_eq!(pod_phase(&[Terminated(0)], OnFailure), PodPhase::Succeeded);
        assert_eq!(pod_phase(&[Terminated(2)], OnFailure), PodPhase::Running);
        assert_eq!(pod_phase(&[Terminated(0)], Always), PodPhase::Running);
        assert_eq!(PodPhase::Failed.as_str(), "Failed");
    }

    #[test]
    fn restart_policies() {
        assert_eq!(RestartPolicy::parse(None), Some(RestartPolicy::Always));
        assert_eq!(RestartPolicy::parse(Some("Sometimes")), None);
        assert!(RestartPolicy::OnFailure.restarts(1));
        assert!(!RestartPolicy::OnFailure.restarts(0));
        assert!(RestartPolicy::Always.restarts(0));
        assert!(!RestartPolicy::Never.restarts(1));
    }
}

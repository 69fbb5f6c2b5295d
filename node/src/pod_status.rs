//! A Pod's `status` as the kubelet writes it: phase from its init and app containers and
//! restart policy, the PodScheduled/Initialized/ContainersReady/Ready conditions (a
//! condition's `lastTransitionTime` moves only when its status changes), container and init
//! container statuses, addresses and start time.

use crate::phase::{pod_phase, ContainerPhase, PodPhase, RestartPolicy};
use berth_kube::meta::Condition;
use berth_kube::pod::{ContainerState, ContainerStatus, PodIp, PodStatus};

/// What the pod controller knows of one container, for its status.
#[derive(Debug, Clone)]
pub struct ContainerView {
    /// The status as the API shows it.
    pub status: ContainerStatus,
    /// What the phase computation needs.
    pub phase: ContainerPhase,
}

/// Where the pod is, besides its containers.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    /// `status.podIP`.
    pub pod_ip: Option<String>,
    /// `status.hostIP`.
    pub host_ip: String,
    /// `status.startTime`: when the node accepted the pod.
    pub start_time: String,
    /// A pod-level reason when it cannot run at all (e.g. a bad volume).
    pub message: Option<String>,
}

/// The new status of a pod whose previous status was `prev`, at time `now` (RFC 3339). App
/// containers run only once every init container has exited 0; an init container that
/// failed under `restartPolicy: Never` fails the pod.
pub fn pod_status(
    prev: Option<&PodStatus>,
    init: &[ContainerView],
    containers: &[ContainerView],
    policy: RestartPolicy,
    facts: &PodFacts,
    now: &str,
) -> PodStatus {
    let incomplete: Vec<&str> = init
        .iter()
        .filter(|c| c.phase != ContainerPhase::Terminated(0))
        .map(|c| c.status.name.as_str())
        .collect();
    let init_failed = policy == RestartPolicy::Never
        && init
            .iter()
            .any(|c| matches!(c.phase, ContainerPhase::Terminated(code) if code != 0));
    let phases: Vec<ContainerPhase> = containers.iter().map(|c| c.phase).collect();
    let phase = if init_failed {
        PodPhase::Failed
    } else if !incomplete.is_empty() {
        PodPhase::Pending
    } else {
        pod_phase(&phases, policy)
    };
    let unready: Vec<&str> = containers
        .iter()
        .filter(|c| !c.status.ready)
        .map(|c| c.status.name.as_str())
        .collect();
    let finished = matches!(phase, PodPhase::Succeeded | PodPhase::Failed);
    let (ready, reason, message) = if finished {
        (false, "PodCompleted", String::new())
    } else if unready.is_empty() && !containers.is_empty() {
        (true, "", String::new())
    } else {
        (
            false,
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    };
    let old = |t: &str| {
        prev.and_then(|p| p.conditions.iter().find(|c| c.type_ == t))
            .cloned()
    };
    let condition = |t: &str, status: bool, reason: &str, message: &str| {
        let mut c = Condition::new(t, status, reason, message);
        c.last_transition_time = match old(t) {
            Some(o) if o.status == c.status => o.last_transition_time,
            _ => Some(now.to_string()),
        };
        c
    };
    let initialized = if incomplete.is_empty() {
        condition("Initialized", true, "", "")
    } else {
        condition(
            "Initialized",
            false,
            "ContainersNotInitialized",
            &format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            ),
        )
    };
    let conditions = vec![
        initialized,
        condition("Ready", ready, reason, &message),
        condition("ContainersReady", ready, reason, &message),
        condition("PodScheduled", true, "", ""),
    ];
    PodStatus {
        phase: Some(phase.as_str().to_string()),
        conditions,
        message: facts.message.clone(),
        host_ip: Some(facts.host_ip.clone()),
        pod_ip: facts.pod_ip.clone(),
        pod_ips: facts
            .pod_ip
            .iter()
            .map(|ip| PodIp { ip: ip.clone() })
            .collect(),
        start_time: Some(facts.start_time.clone()),
        container_statuses: containers.iter().map(|c| c.status.clone()).collect(),
        init_container_statuses: init.iter().map(|c| c.status.clone()).collect(),
        qos_class: Some("BestEffort".to_string()),
        ..PodStatus::default()
    }
}

/// `state` of a container that waits, with the kubelet's reason and message.
pub fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(berth_kube::pod::ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..ContainerState::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, ready: bool, phase: ContainerPhase) -> ContainerView {
        ContainerView {
            status: ContainerStatus {
                name: name.into(),
                ready,
                ..ContainerStatus::default()
            },
            phase,
        }
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn ready_follows_containers_and_keeps_transition_times() {
        let facts = PodFacts {
            pod_ip: Some("10.1.0.2".into()),
            host_ip: "10.1.0.1".into(),
            start_time: "t0".into(),
            message: None,
        };
        let a = [
            view("a", false, ContainerPhase::Running),
            view("b", true, ContainerPhase::Running),
        ];
        let s1 = pod_status(None, &[], &a, RestartPolicy::Always, &facts, "t1");
        assert_eq!(s1.phase.as_deref(), Some("Running"));
        let r = cond(&s1, "Ready");
        assert_eq!(r.status, "False");
        assert_eq!(r.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            r.message.as_deref(),
            Some("containers with unready status: [a]")
        );
        assert_eq!(
            cond(&s1, "PodScheduled").last_transition_time.as_deref(),
            Some("t1")
        );
        let s2 = pod_status(Some(&s1), &[], &a, RestartPolicy::Always, &facts, "t2");
        assert_eq!(
            cond(&s2, "Ready").last_transition_time.as_deref(),
            Some("t1")
        );
        let b = [
            view("a", true, ContainerPhase::Running),
            view("b", true, ContainerPhase::Running),
        ];
        let s3 = pod_status(Some(&s2), &[], &b, RestartPolicy::Always, &facts, "t3");
        assert!(cond(&s3, "Ready").is_true() && cond(&s3, "ContainersReady").is_true());
        assert_eq!(
            cond(&s3, "Ready").last_transition_time.as_deref(),
            Some("t3")
        );
        assert_eq!(
            cond(&s3, "Initialized").last_transition_time.as_deref(),
            Some("t1")
        );
        assert_eq!(
            s3.pod_ips,
            vec![PodIp {
                ip: "10.1.0.2".into()
            }]
        );
        assert_eq!(s3.start_time.as_deref(), Some("t0"));
    }

    #[test]
    fn a_finished_pod_is_not_ready() {
        let c = [view("a", false, ContainerPhase::Terminated(0))];
        let s = pod_status(
            None,
            &[],
            &c,
            RestartPolicy::Never,
            &PodFacts::default(),
            "t",
        );
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
    }

    #[test]
    fn init_containers_hold_the_pod_pending_and_a_failed_one_fails_it_under_never() {
        let app = [view(
            "app",
            false,
            ContainerPhase::Waiting { has_run: false },
        )];
        let running = [view("setup", false, ContainerPhase::Running)];
        let s = pod_status(
            None,
            &running,
            &app,
            RestartPolicy::Always,
            &PodFacts::default(),
            "t",
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let init = cond(&s, "Initialized");
        assert_eq!(init.status, "False");
        assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
        assert_eq!(
            init.message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
        assert_eq!(s.init_container_statuses.len(), 1);

        let done = [view("setup", false, ContainerPhase::Terminated(0))];
        let up = [view("app", true, ContainerPhase::Running)];
        let s = pod_status(
            Some(&s),
            &done,
            &up,
            RestartPolicy::Always,
            &PodFacts::default(),
            "t2",
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert!(cond(&s, "Initialized").is_true());
        assert_eq!(
            cond(&s, "Initialized").last_transition_time.as_deref(),
            Some("t2")
        );

        let failed = [view("setup", false, ContainerPhase::Terminated(1))];
        let s = pod_status(
            None,
            &failed,
            &app,
            RestartPolicy::Never,
            &PodFacts::default(),
            "t",
        );
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        // Under OnFailure (and Always) it is retried: the pod stays Pending.
        let s = pod_status(
            None,
            &failed,
            &app,
            RestartPolicy::OnFailure,
            &PodFacts::default(),
            "t",
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
    }
}

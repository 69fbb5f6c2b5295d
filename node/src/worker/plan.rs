//! The pod worker's decisions, pure: from what was observed of a container (its record's
//! state, its back-off) to what happens to it. The executor ([`super::sync`]) reads the
//! state, asks here, and does what the answer says.

use std::time::Duration;

use berth_kube::pod::{ContainerStateTerminated, CONTAINER_ID_PREFIX};

use super::runs::{ContainerRun, Waiting};
use crate::phase::RestartPolicy;

/// A berth container's state as observed, boiled down to what the plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    /// Its record is gone (removed behind our back).
    Gone,
    /// Its process runs, started at this time.
    Running {
        /// When its process started.
        started_at: Option<String>,
    },
    /// Created or restarting under a live monitor: not running yet.
    Starting,
    /// Its process ended.
    Exited {
        /// How it ended (128+n for signal n).
        code: i32,
        /// When its process started.
        started_at: Option<String>,
        /// When it ended.
        finished_at: Option<String>,
        /// Why it could not start, when it could not.
        error: Option<String>,
    },
}

/// What to do with a container after looking at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Observation {
    /// Nothing: it exited for good, or still runs as before, or is starting.
    Unchanged,
    /// It has no berth container (never made, or gone): make one.
    Make,
    /// It runs under a start time not seen before: its probes start now.
    Started {
        /// The new start time.
        started_at: Option<String>,
    },
    /// It exited: with `restart`, remove it and make it again (after the back-off);
    /// otherwise it is terminated for good.
    Exited {
        /// Its terminated state.
        terminated: ContainerStateTerminated,
        /// Whether the restart policy runs it again.
        restart: bool,
    },
}

/// What to do with container `c` (running berth container `id`) seen as `seen`.
pub(super) fn observe(c: &ContainerRun, seen: Seen, policy: RestartPolicy) -> Observation {
    if c.terminated.is_some() {
        return Observation::Unchanged;
    }
    let Some(id) = c.id.as_deref() else {
        return Observation::Make;
    };
    match seen {
        Seen::Gone => Observation::Make,
        Seen::Starting => Observation::Unchanged,
        Seen::Running { started_at } => {
            if c.started_at.is_none() || c.started_at != started_at {
                Observation::Started { started_at }
            } else {
                Observation::Unchanged
            }
        }
        Seen::Exited {
            code,
            started_at,
            finished_at,
            error,
        } => Observation::Exited {
            terminated: ContainerStateTerminated {
                exit_code: code,
                reason: Some(if code == 0 { "Completed" } else { "Error" }.to_string()),
                started_at,
                finished_at,
                container_id: Some(format!("{CONTAINER_ID_PREFIX}{id}")),
                message: error,
                ..ContainerStateTerminated::default()
            },
            restart: policy.restarts(code),
        },
    }
}

/// The exit code of a container that ended without recording one: never started (128), or
/// killed with its monitor (137).
pub(super) fn unrecorded_exit(created: bool) -> i32 {
    if created {
        128
    } else {
        137
    }
}

/// Names of the container and its Pod for back-off messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct Names<'a> {
    /// The container's name.
    pub(super) container: &'a str,
    /// The Pod's name.
    pub(super) pod: &'a str,
    /// The Pod's namespace.
    pub(super) namespace: &'a str,
    /// The Pod's uid.
    pub(super) uid: &'a str,
    /// The container's image.
    pub(super) image: &'a str,
}

/// What a container waits with while its back-off of `delay` runs, from why it waited
/// before (`previous`): a failed pull becomes `ImagePullBackOff`; a container that could
/// not be made or whose image may not be pulled keeps its reason; anything else, an exit,
/// is `CrashLoopBackOff`.
pub(super) fn back_off(previous: Option<&Waiting>, delay: Duration, names: Names<'_>) -> Waiting {
    let reason = match previous.map(|w| w.0.as_str()) {
        Some("ErrImagePull" | "ImagePullBackOff") => "ImagePullBackOff",
        Some(
            r @ ("CreateContainerError"
            | "CreateContainerConfigError"
            | "ErrImageNeverPull"
            | "InvalidImageName"),
        ) => r,
        _ => "CrashLoopBackOff",
    }
    .to_string();
    let crash = format!(
        "back-off {}s restarting failed container={} pod={}_{}({})",
        delay.as_secs(),
        names.container,
        names.pod,
        names.namespace,
        names.uid,
    );
    let message = match (reason.as_str(), previous) {
        ("ImagePullBackOff", Some((_, Some(m)))) if !m.starts_with("Back-off") => {
            Some(format!("Back-off pulling image {:?}: {m}", names.image))
        }
        ("CrashLoopBackOff", _) | (_, None) => Some(crash),
        (_, Some((_, m))) => m.clone(),
    };
    (reason, message)
}

/// Whether an init container is done: exited 0, so the next one (or the app containers)
/// may start.
pub(super) fn init_done(c: &ContainerRun) -> bool {
    c.terminated.as_ref().is_some_and(|t| t.exit_code == 0)
}

/// The restart count a new berth container for `c` gets, and whether making it is a
/// restart (it ran and exited before).
pub(super) fn next_restart(c: &ContainerRun) -> (i32, bool) {
    let restarted = c.last_terminated.is_some() && c.exited_at.is_some();
    (c.restart_count + i32::from(restarted), restarted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn made(id: &str) -> ContainerRun {
        let mut c = ContainerRun::new("app");
        c.id = Some(id.to_string());
        c
    }

    fn exited(code: i32) -> Seen {
        Seen::Exited {
            code,
            started_at: Some("s".into()),
            finished_at: Some("f".into()),
            error: None,
        }
    }

    #[test]
    fn containers_without_a_berth_container_are_made() {
        let c = ContainerRun::new("app");
        assert_eq!(
            observe(&c, Seen::Starting, RestartPolicy::Always),
            Observation::Make
        );
        assert_eq!(
            observe(&made("x"), Seen::Gone, RestartPolicy::Always),
            Observation::Make
        );
    }

    #[test]
    fn a_new_start_time_starts_the_probes_once() {
        let mut c = made("x");
        let seen = Seen::Running {
            started_at: Some("t1".into()),
        };
        assert_eq!(
            observe(&c, seen.clone(), RestartPolicy::Always),
            Observation::Started {
                started_at: Some("t1".into())
            }
        );
        c.started_at = Some("t1".into());
        assert_eq!(
            observe(&c, seen, RestartPolicy::Always),
            Observation::Unchanged
        );
        let again = Seen::Running {
            started_at: Some("t2".into()),
        };
        assert!(matches!(
            observe(&c, again, RestartPolicy::Always),
            Observation::Started { .. }
        ));
        assert_eq!(
            observe(&c, Seen::Starting, RestartPolicy::Always),
            Observation::Unchanged
        );
    }

    #[test]
    fn exits_restart_per_the_policy() {
        let c = made("abc");
        let Observation::Exited {
            terminated,
            restart,
        } = observe(&c, exited(1), RestartPolicy::OnFailure)
        else {
            panic!("an exit");
        };
        assert!(restart);
        assert_eq!(terminated.exit_code, 1);
        assert_eq!(terminated.reason.as_deref(), Some("Error"));
        assert_eq!(
            terminated.container_id,
            Some(format!("{CONTAINER_ID_PREFIX}abc"))
        );
        assert!(matches!(
            observe(&c, exited(0), RestartPolicy::OnFailure),
            Observation::Exited { restart: false, ref terminated } if terminated.reason.as_deref() == Some("Completed")
        ));
        assert!(matches!(
            observe(&c, exited(0), RestartPolicy::Always),
            Observation::Exited { restart: true, .. }
        ));
        assert!(matches!(
            observe(&c, exited(2), RestartPolicy::Never),
            Observation::Exited { restart: false, .. }
        ));
    }

    #[test]
    fn a_container_terminated_for_good_stays_so() {
        let mut c = made("x");
        c.terminated = Some(ContainerStateTerminated::default());
        assert_eq!(
            observe(&c, Seen::Gone, RestartPolicy::Always),
            Observation::Unchanged
        );
    }

    #[test]
    fn unrecorded_exits_get_the_kubelets_codes() {
        assert_eq!(unrecorded_exit(true), 128);
        assert_eq!(unrecorded_exit(false), 137);
    }

    fn names() -> Names<'static> {
        Names {
            container: "app",
            pod: "web",
            namespace: "default",
            uid: "u1",
            image: "example.invalid/x:1",
        }
    }

    #[test]
    fn back_off_reasons_follow_the_kubelet() {
        let d = Duration::from_secs(10);
        let (reason, message) = back_off(None, d, names());
        assert_eq!(reason, "CrashLoopBackOff");
        assert_eq!(
            message.as_deref(),
            Some("back-off 10s restarting failed container=app pod=web_default(u1)")
        );
        let pull = (
            "ErrImagePull".to_string(),
            Some("failed to pull image".to_string()),
        );
        let (reason, message) = back_off(Some(&pull), d, names());
        assert_eq!(reason, "ImagePullBackOff");
        assert_eq!(
            message.as_deref(),
            Some("Back-off pulling image \"example.invalid/x:1\": failed to pull image")
        );
        let again = (reason, message.clone());
        assert_eq!(
            back_off(Some(&again), d, names()).1,
            message,
            "not wrapped twice"
        );
        for kept in [
            "CreateContainerError",
            "ErrImageNeverPull",
            "InvalidImageName",
        ] {
            let w = (kept.to_string(), Some("why".to_string()));
            assert_eq!(
                back_off(Some(&w), d, names()),
                (kept.to_string(), Some("why".to_string()))
            );
        }
        let crashed = ("ContainerCreating".to_string(), None);
        assert_eq!(back_off(Some(&crashed), d, names()).0, "CrashLoopBackOff");
    }

    #[test]
    fn init_containers_are_done_only_after_a_clean_exit() {
        let mut c = ContainerRun::new("init");
        assert!(!init_done(&c));
        c.terminated = Some(ContainerStateTerminated {
            exit_code: 1,
            ..ContainerStateTerminated::default()
        });
        assert!(!init_done(&c));
        c.terminated = Some(ContainerStateTerminated::default());
        assert!(init_done(&c));
    }

    #[test]
    fn only_a_container_that_ran_and_exited_counts_a_restart() {
        let mut c = ContainerRun::new("app");
        assert_eq!(next_restart(&c), (0, false));
        c.exited_at = Some(Instant::now());
        assert_eq!(next_restart(&c), (0, false), "a failed start is no restart");
        c.last_terminated = Some(ContainerStateTerminated::default());
        c.restart_count = 2;
        assert_eq!(next_restart(&c), (3, true));
    }
}

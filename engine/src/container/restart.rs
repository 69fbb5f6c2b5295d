//! Restart policies (`--restart no|on-failure[:N]|always|unless-stopped`) and Docker's
//! backoff between restarts: 100 ms, doubling after each restart up to a minute, back to
//! 100 ms once the process ran for 10 seconds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The first delay before a restart.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest delay before a restart.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A process that ran this long resets the delay to [`FIRST_DELAY`].
const RESET_AFTER: Duration = Duration::from_secs(10);

/// A `--restart` value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid restart policy {0:?}: use no, on-failure[:max-retries], always or unless-stopped")]
pub struct RestartPolicyError(String);

/// When the monitor starts a container's process again after it exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RestartPolicy {
    /// Never (the default).
    #[default]
    No,
    /// When it exits with a non-zero code, at most `max_retries` times (0: no limit).
    OnFailure {
        /// The most restarts; 0 means no limit.
        max_retries: u32,
    },
    /// Whatever its exit code, unless the user stopped it.
    Always,
    /// As `always`; a container the user stopped also stays down when berth starts again.
    UnlessStopped,
}

impl RestartPolicy {
    /// Whether the process that exited with `exit_code` after `restart_count` restarts is
    /// started again. A container the user stopped or killed is never restarted.
    pub fn should_restart(
        &self,
        exit_code: i32,
        restart_count: u32,
        manually_stopped: bool,
    ) -> bool {
        if manually_stopped {
            return false;
        }
        match *self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure { max_retries } => {
                exit_code != 0 && (max_retries == 0 || restart_count < max_retries)
            }
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }

    /// Whether this is `no`.
    pub fn is_no(&self) -> bool {
        *self == RestartPolicy::No
    }
}

impl FromStr for RestartPolicy {
    type Err = RestartPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RestartPolicyError(s.to_string());
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        match (name, count) {
            ("no" | "", None) => Ok(RestartPolicy::No),
            ("always", None) => Ok(RestartPolicy::Always),
            ("unless-stopped", None) => Ok(RestartPolicy::UnlessStopped),
            ("on-failure", None) => Ok(RestartPolicy::OnFailure { max_retries: 0 }),
            ("on-failure", Some(n)) => n
                .parse()
                .map(|max_retries| RestartPolicy::OnFailure { max_retries })
                .map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure { max_retries: 0 } => f.write_str("on-failure"),
            RestartPolicy::OnFailure { max_retries } => write!(f, "on-failure:{max_retries}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl TryFrom<String> for RestartPolicy {
    type Error = RestartPolicyError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RestartPolicy> for String {
    fn from(p: RestartPolicy) -> String {
        p.to_string()
    }
}

/// The delay before the next restart (Docker's restart manager).
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    last: Option<Duration>,
}

impl Backoff {
    /// The delay before restarting a process that ran for `ran`.
    pub fn next(&mut self, ran: Duration) -> Duration {
        let delay = match self.last {
            Some(last) if ran < RESET_AFTER => (last * 2).min(MAX_DELAY),
            _ => FIRST_DELAY,
        };
        self.last = Some(delay);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_docker_policies() {
        for s in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:2",
        ] {
            assert_eq!(s.parse::<RestartPolicy>().unwrap().to_string(), s);
        }
        for bad in ["sometimes", "always:2", "on-failure:x", "on-failure:-1"] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&RestartPolicy::OnFailure { max_retries: 3 }).unwrap();
        assert_eq!(json, "\"on-failure:3\"");
    }

    #[test]
    fn decides_like_docker() {
        let on_failure_2 = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(on_failure_2.should_restart(1, 0, false));
        assert!(on_failure_2.should_restart(1, 1, false));
        assert!(!on_failure_2.should_restart(1, 2, false));
        assert!(!on_failure_2.should_restart(0, 0, false));
        assert!(RestartPolicy::OnFailure { max_retries: 0 }.should_restart(3, 1000, false));
        assert!(RestartPolicy::Always.should_restart(0, 5, false));
        assert!(!RestartPolicy::Always.should_restart(0, 5, true));
        assert!(!RestartPolicy::UnlessStopped.should_restart(1, 0, true));
        assert!(!RestartPolicy::No.should_restart(1, 0, false));
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        assert_eq!(b.next(quick), Duration::from_millis(100));
        assert_eq!(b.next(quick), Duration::from_millis(200));
        assert_eq!(b.next(quick), Duration::from_millis(400));
        assert_eq!(b.next(Duration::from_secs(11)), Duration::from_millis(100));
        for _ in 0..20 {
            b.next(quick);
        }
        assert_eq!(b.next(quick), Duration::from_secs(60));
    }
}

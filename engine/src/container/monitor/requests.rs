//! What a control request makes the monitor do, decided from what it knows of the container
//! ([`Facts`]) without acting: the plan ([`Action`]) is then carried out by the monitor.
//! Refusals are [`RequestError`]s, whose messages go back to the client.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::super::control::Request;

/// Why the monitor refused a request (sent back in the reply's `error`).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request line was not a [`Request`].
    #[error("unreadable request")]
    Unreadable,
    /// A resize for a container without a pty.
    #[error("the container has no terminal")]
    NoTerminal,
    /// A kill for a container whose process has exited.
    #[error("container is not running")]
    NotRunning,
    /// A signal number that is no signal.
    #[error("{0}")]
    BadSignal(nix::Error),
    /// Setting the terminal's size failed.
    #[error("{0}")]
    Resize(berth_runtime::tty::TtyError),
    /// The runtime could not deliver the signal.
    #[error("{0}")]
    Kill(berth_runtime::ContainerError),
    /// An exec without a command.
    #[error("exec: no command given")]
    NoCommand,
    /// An exec while [`MAX_EXECS`] commands run already.
    #[error("exec: {MAX_EXECS} commands are running already")]
    TooManyExecs,
    /// The exec's command could not be started.
    #[error("exec: {0}")]
    ExecFailed(super::super::ContainerError),
}

/// How many `exec` requests' commands may run at once (a pod's liveness and readiness
/// probes, with room to spare).
pub const MAX_EXECS: usize = 4;

/// What the monitor knows when a request comes in.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// The container's process runs.
    pub running: bool,
    /// It has a pty (whose master the monitor holds).
    pub tty: bool,
    /// `-i`: attached clients may write to its stdin.
    pub open_stdin: bool,
    /// The image's stop signal, when it set one.
    pub stop_signal: Option<Signal>,
    /// How many `exec` commands run.
    pub execs: usize,
}

/// What to do for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Attach the client; with `stdin`, its bytes go to the container.
    Attach {
        /// Whether the client's bytes reach the container's stdin.
        stdin: bool,
    },
    /// Set the pty's size.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// The restart policy no longer applies; when `signal` is set, send it and SIGKILL
    /// after `grace`.
    Stop {
        /// The first signal, for a running process.
        signal: Option<Signal>,
        /// How long before SIGKILL.
        grace: Duration,
    },
    /// Send `signal`; `manual` also ends the restart policy (SIGKILL or the stop signal, as
    /// Docker's kill).
    Kill {
        /// The signal.
        signal: Signal,
        /// Whether this counts as the user stopping the container.
        manual: bool,
    },
    /// Start `argv` in the container, kill it after `timeout`, answer when it ended.
    Exec {
        /// The command.
        argv: Vec<String>,
        /// How long it may run.
        timeout: Duration,
    },
}

/// Decides what `request` makes the monitor do.
pub fn plan(request: &Request, facts: Facts) -> Result<Action, RequestError> {
    match request {
        &Request::Attach { stdin } => Ok(Action::Attach {
            stdin: stdin && facts.open_stdin,
        }),
        &Request::Resize { rows, cols } if facts.tty => Ok(Action::Resize { rows, cols }),
        Request::Resize { .. } => Err(RequestError::NoTerminal),
        &Request::Stop {
            signal,
            timeout_secs,
        } => Ok(Action::Stop {
            signal: match facts.running {
                true => Some(Signal::try_from(signal).map_err(RequestError::BadSignal)?),
                false => None,
            },
            grace: Duration::from_secs(timeout_secs),
        }),
        &Request::Kill { signal } => {
            let signal = Signal::try_from(signal).map_err(RequestError::BadSignal)?;
            if !facts.running {
                return Err(RequestError::NotRunning);
            }
            let stop_signal = facts.stop_signal.is_none_or(|s| s == signal);
            Ok(Action::Kill {
                signal,
                manual: signal == Signal::SIGKILL || stop_signal,
            })
        }
        Request::Exec { argv, timeout_ms } => {
            if !facts.running {
                return Err(RequestError::NotRunning);
            }
            if argv.is_empty() {
                return Err(RequestError::NoCommand);
            }
            if facts.execs >= MAX_EXECS {
                return Err(RequestError::TooManyExecs);
            }
            Ok(Action::Exec {
                argv: argv.clone(),
                timeout: Duration::from_millis(*timeout_ms),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: Facts = Facts {
        running: true,
        tty: false,
        open_stdin: false,
        stop_signal: None,
        execs: 0,
    };

    #[test]
    fn attach_passes_stdin_only_with_dash_i() {
        let attach = Request::Attach { stdin: true };
        assert_eq!(
            plan(&attach, RUNNING).unwrap(),
            Action::Attach { stdin: false }
        );
        let open = Facts {
            open_stdin: true,
            ..RUNNING
        };
        assert_eq!(plan(&attach, open).unwrap(), Action::Attach { stdin: true });
    }

    #[test]
    fn resize_needs_a_terminal() {
        let resize = Request::Resize { rows: 24, cols: 80 };
        let e = plan(&resize, RUNNING).unwrap_err();
        assert_eq!(e.to_string(), "the container has no terminal");
        let tty = Facts {
            tty: true,
            ..RUNNING
        };
        assert_eq!(
            plan(&resize, tty).unwrap(),
            Action::Resize { rows: 24, cols: 80 }
        );
    }

    #[test]
    fn stop_signals_only_a_running_process() {
        let stop = Request::Stop {
            signal: 15,
            timeout_secs: 3,
        };
        assert_eq!(
            plan(&stop, RUNNING).unwrap(),
            Action::Stop {
                signal: Some(Signal::SIGTERM),
                grace: Duration::from_secs(3)
            }
        );
        let exited = Facts {
            running: false,
            ..RUNNING
        };
        assert_eq!(
            plan(&stop, exited).unwrap(),
            Action::Stop {
                signal: None,
                grace: Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn kill_ends_the_restart_policy_like_docker() {
        let kill = |n| Request::Kill { signal: n };
        // No stop signal set: any signal counts as a stop (Docker's SIGTERM default).
        assert_eq!(
            plan(&kill(10), RUNNING).unwrap(),
            Action::Kill {
                signal: Signal::SIGUSR1,
                manual: true
            }
        );
        let quit = Facts {
            stop_signal: Some(Signal::SIGQUIT),
            ..RUNNING
        };
        assert_eq!(
            plan(&kill(10), quit).unwrap(),
            Action::Kill {
                signal: Signal::SIGUSR1,
                manual: false
            }
        );
        for n in [3, 9] {
            assert!(matches!(
                plan(&kill(n), quit).unwrap(),
                Action::Kill { manual: true, .. }
            ));
        }
        let exited = Facts {
            running: false,
            ..RUNNING
        };
        assert_eq!(
            plan(&kill(9), exited).unwrap_err().to_string(),
            "container is not running"
        );
        assert!(matches!(
            plan(&kill(4242), RUNNING),
            Err(RequestError::BadSignal(_))
        ));
    }

    #[test]
    fn exec_needs_a_running_container_a_command_and_a_free_slot() {
        let exec = |argv: &[&str]| Request::Exec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout_ms: 2500,
        };
        assert_eq!(
            plan(&exec(&["cat", "/tmp/ready"]), RUNNING).unwrap(),
            Action::Exec {
                argv: vec!["cat".into(), "/tmp/ready".into()],
                timeout: Duration::from_millis(2500),
            }
        );
        let exited = Facts {
            running: false,
            ..RUNNING
        };
        assert_eq!(
            plan(&exec(&["true"]), exited).unwrap_err().to_string(),
            "container is not running"
        );
        assert_eq!(
            plan(&exec(&[]), RUNNING).unwrap_err().to_string(),
            "exec: no command given"
        );
        let busy = Facts {
            execs: MAX_EXECS,
            ..RUNNING
        };
        assert_eq!(
            plan(&exec(&["true"]), busy).unwrap_err().to_string(),
            "exec: 4 commands are running already"
        );
        let one_free = Facts {
            execs: MAX_EXECS - 1,
            ..RUNNING
        };
        assert!(plan(&exec(&["true"]), one_free).is_ok());
    }
}

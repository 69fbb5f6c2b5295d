//! A health check (or an `exec` request's command) under way: its process (started by a
//! [`helper`](super::helper)), its deadline, the output it wrote (kept up to [`MAX_OUTPUT`])
//! and, once reaped or timed out, the [`HealthResult`] (or [`ExecOutcome`]) it makes.

use std::fs::File;
use std::io::Read;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::super::control::ExecOutcome;
use super::super::health::{Health, HealthConfig, HealthResult, MAX_OUTPUT};
use super::super::state::now_rfc3339;
use super::helper::{self, Task};

/// A health check process.
pub struct Probe {
    /// Its pid (a child of the monitor once its helper exited).
    pub pid: Pid,
    start: String,
    deadline: Instant,
    output: File,
    buf: Vec<u8>,
    /// Its exit code, once reaped.
    pub exit: Option<i32>,
    timed_out: bool,
    /// Its output pipe reached its end (every writer closed it).
    closed: bool,
}

impl Probe {
    /// A check that started at `start` (RFC 3339) and may run for `timeout`, its output
    /// read from `output` (non-blocking).
    pub fn new(pid: Pid, start: String, timeout: Duration, output: File) -> Self {
        Probe {
            pid,
            start,
            deadline: Instant::now() + timeout,
            output,
            buf: Vec::new(),
            exit: None,
            timed_out: false,
            closed: false,
        }
    }

    /// Its output pipe, for polling.
    pub fn output(&self) -> &File {
        &self.output
    }

    /// Whether everything it wrote has been read (its pipe is at its end).
    pub fn output_closed(&self) -> bool {
        self.closed
    }

    /// When it times out, while that may still happen.
    pub fn deadline(&self) -> Option<Instant> {
        (!self.timed_out).then_some(self.deadline)
    }

    /// Kills it once its deadline passed at `now` (once).
    pub fn enforce_deadline(&mut self, now: Instant) {
        if self.exit.is_none() && !self.timed_out && now >= self.deadline {
            self.timed_out = true;
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        }
    }

    /// Reads what it wrote so far, keeping the first [`MAX_OUTPUT`] bytes.
    pub fn read_output(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.output.read(&mut buf) {
            if n == 0 {
                self.closed = true;
                break;
            }
            let room = MAX_OUTPUT.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&buf[..n.min(room)]);
        }
    }

    /// Its result, once reaped; `timeout` is the check's, for the message of one that ran
    /// too long.
    pub fn result(mut self, timeout: Duration) -> HealthResult {
        self.read_output();
        let (exit_code, output) = if self.timed_out {
            (
                -1,
                format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()),
            )
        } else {
            (
                self.exit.unwrap_or(-1),
                String::from_utf8_lossy(&self.buf).into_owned(),
            )
        };
        HealthResult {
            start: self.start,
            end: now_rfc3339(),
            exit_code,
            output,
        }
    }
}

impl Probe {
    /// How it ended, once reaped, for an `exec` request.
    pub fn exec_outcome(mut self) -> ExecOutcome {
        self.read_output();
        match self.timed_out {
            true => ExecOutcome::TimedOut,
            false => ExecOutcome::Exited {
                code: self.exit.unwrap_or(-1),
                output: String::from_utf8_lossy(&self.buf).into_owned(),
            },
        }
    }
}

/// The health check as the monitor runs it: started in a helper on its schedule, its
/// output read as it comes, its result recorded once reaped.
impl super::Monitor<'_> {
    /// Starts the health check in the container (in a helper), its output to a pipe.
    pub(super) fn start_probe(&mut self) {
        let Some(check) = self.config.monitor.healthcheck.clone() else {
            return;
        };
        let start = now_rfc3339();
        match helper::start_with_output(self.c, &self.helper, self.id(), Task::Probe) {
            Ok((pid, output)) => {
                if let Some(p) = &mut self.process {
                    p.probe = Some(Probe::new(pid, start, check.timeout(), output));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "health check");
                self.record_health(HealthResult {
                    start,
                    end: now_rfc3339(),
                    exit_code: -1,
                    output: e.to_string(),
                });
            }
        }
    }

    pub(super) fn read_probe(&mut self) {
        if let Some(probe) = self.process.as_mut().and_then(|p| p.probe.as_mut()) {
            probe.read_output();
        }
    }

    /// Records the health check's result once it was reaped.
    pub(super) fn finish_probe(&mut self) {
        let Some(p) = &mut self.process else { return };
        if p.probe.as_ref().is_none_or(|probe| probe.exit.is_none()) {
            return;
        }
        let Some(probe) = p.probe.take() else { return };
        let timeout = self
            .config
            .monitor
            .healthcheck
            .as_ref()
            .map(HealthConfig::timeout)
            .unwrap_or_default();
        self.record_health(probe.result(timeout));
    }

    fn record_health(&mut self, result: HealthResult) {
        let Some(check) = &self.config.monitor.healthcheck else {
            return;
        };
        let in_start_period = self
            .process
            .as_ref()
            .is_some_and(|p| p.started.elapsed() < check.start_period());
        let health = self.state.health.get_or_insert_with(Health::starting);
        health.record(result, check.retries(), in_start_period);
        tracing::debug!(status = ?health.status, streak = health.failing_streak, "health");
        if let Some(p) = &mut self.process {
            p.next_check = Some(Instant::now() + check.interval());
        }
        if let Err(e) = self.save() {
            tracing::warn!(error = %e, "recording health");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn probe_over_pipe(timeout: Duration) -> (Probe, File) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
        // A pid that is no process of ours: kill(2) on it fails harmlessly.
        let probe = Probe::new(Pid::from_raw(i32::MAX), "t0".into(), timeout, File::from(r));
        (probe, File::from(w))
    }

    #[test]
    fn output_is_kept_up_to_the_limit() {
        let (mut probe, mut w) = probe_over_pipe(Duration::from_secs(30));
        w.write_all(&vec![b'x'; MAX_OUTPUT + 100]).unwrap();
        drop(w);
        assert!(!probe.output_closed());
        probe.read_output();
        assert!(probe.output_closed(), "at the end of the pipe");
        probe.exit = Some(1);
        let r = probe.result(Duration::from_secs(30));
        assert_eq!((r.exit_code, r.output.len()), (1, MAX_OUTPUT));
        assert_eq!(r.start, "t0");
    }

    #[test]
    fn a_check_past_its_deadline_times_out() {
        let (mut probe, mut w) = probe_over_pipe(Duration::from_millis(1500));
        w.write_all(b"partial").unwrap();
        assert!(probe.deadline().is_some());
        probe.enforce_deadline(Instant::now());
        assert!(probe.deadline().is_some(), "not due yet");
        probe.enforce_deadline(Instant::now() + Duration::from_secs(2));
        assert_eq!(probe.deadline(), None);
        probe.exit = Some(137);
        let r = probe.result(Duration::from_millis(1500));
        assert_eq!(r.exit_code, -1);
        assert_eq!(r.output, "Health check exceeded timeout (1.5s)");
    }

    #[test]
    fn an_unreaped_check_counts_as_failed() {
        let (mut probe, mut w) = probe_over_pipe(Duration::from_secs(30));
        w.write_all(b"ok\n").unwrap();
        probe.read_output();
        let r = probe.result(Duration::from_secs(30));
        assert_eq!((r.exit_code, r.output.as_str()), (-1, "ok\n"));
    }

    #[test]
    fn an_exec_ends_with_its_code_and_bounded_output_or_times_out() {
        let (mut probe, mut w) = probe_over_pipe(Duration::from_secs(30));
        w.write_all(b"not ready\n").unwrap();
        w.write_all(&vec![b'x'; MAX_OUTPUT]).unwrap();
        drop(w);
        probe.exit = Some(1);
        let ExecOutcome::Exited { code, output } = probe.exec_outcome() else {
            panic!("not an exit");
        };
        assert_eq!((code, output.len()), (1, MAX_OUTPUT));
        assert!(output.starts_with("not ready\n"));

        let (mut probe, _w) = probe_over_pipe(Duration::from_millis(10));
        probe.enforce_deadline(Instant::now() + Duration::from_secs(1));
        probe.exit = Some(137);
        assert_eq!(probe.exec_outcome(), ExecOutcome::TimedOut);
    }
}

//! `exec` requests under way: each one's command (a [`Probe`]: pid, deadline, output) and
//! the client waiting for its answer, sent once the command was reaped (after it exited or
//! was killed at its deadline).

use std::fs::File;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::super::control::{ExecOutcome, Reply};
use super::probe::Probe;

/// How long writing an answer to a client may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The commands of `exec` requests that run, with their clients.
#[derive(Default)]
pub struct Execs {
    running: Vec<(Probe, UnixStream)>,
}

impl Execs {
    /// How many run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Adds a started command whose answer goes to `conn`.
    pub fn push(&mut self, probe: Probe, conn: UnixStream) {
        self.running.push((probe, conn));
    }

    /// Their output pipes, for polling (in the order [`Execs::read_output`] indexes).
    pub fn outputs(&self) -> impl Iterator<Item = &File> {
        self.running.iter().map(|(probe, _)| probe.output())
    }

    /// Reads what command `i` wrote.
    pub fn read_output(&mut self, i: usize) {
        if let Some((probe, _)) = self.running.get_mut(i) {
            probe.read_output();
        }
    }

    /// Records that `pid` exited with `code`; false when it is none of ours.
    pub fn reaped(&mut self, pid: Pid, code: i32) -> bool {
        match self.running.iter_mut().find(|(probe, _)| probe.pid == pid) {
            Some((probe, _)) => {
                probe.exit = Some(code);
                true
            }
            None => false,
        }
    }

    /// Kills the commands whose deadline passed at `now`.
    pub fn enforce_deadlines(&mut self, now: Instant) {
        for (probe, _) in &mut self.running {
            probe.enforce_deadline(now);
        }
    }

    /// The earliest deadline still to enforce.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.running
            .iter()
            .filter_map(|(probe, _)| probe.deadline())
            .min()
    }

    /// Answers the clients of the commands that were reaped.
    pub fn answer_finished(&mut self) {
        let (done, running) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|(probe, _)| probe.exit.is_some());
        self.running = running;
        for (probe, conn) in done {
            answer(conn, Ok(probe.exec_outcome()));
        }
    }

    /// The container's process ended: kills the commands still running and tells their
    /// clients.
    pub fn abandon(&mut self) {
        for (probe, conn) in self.running.drain(..) {
            let _ = nix::sys::signal::kill(probe.pid, Signal::SIGKILL);
            answer(
                conn,
                Err("the container exited while the command ran".into()),
            );
        }
    }
}

/// Sends a client its answer: how its command ended, or why it could not tell.
fn answer(mut conn: UnixStream, outcome: Result<ExecOutcome, String>) {
    let (error, exec) = match outcome {
        Ok(outcome) => (None, Some(outcome)),
        Err(why) => (Some(why), None),
    };
    let reply = Reply {
        error,
        tty: false,
        exec,
    };
    let mut line = serde_json::to_vec(&reply).unwrap_or_default();
    line.push(b'\n');
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    if let Err(e) = conn.write_all(&line) {
        tracing::debug!(error = %e, "exec client gone");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_over_pipes(pid: i32, timeout: Duration) -> (Execs, File, UnixStream) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
        let probe = Probe::new(Pid::from_raw(pid), "t0".into(), timeout, File::from(r));
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut execs = Execs::default();
        execs.push(probe, ours);
        (execs, File::from(w), theirs)
    }

    fn reply_of(client: UnixStream) -> Reply {
        let mut client = client;
        let line = super::super::super::control::read_line(&mut client).unwrap();
        serde_json::from_slice(&line).unwrap()
    }

    #[test]
    fn a_reaped_command_is_answered_with_its_code_and_output() {
        // Pids that are no process of ours: kill(2) on them fails harmlessly.
        let (mut execs, mut w, client) = exec_over_pipes(i32::MAX, Duration::from_secs(30));
        w.write_all(b"ready\n").unwrap();
        execs.read_output(0);
        assert_eq!(execs.outputs().count(), 1);
        assert!(!execs.reaped(Pid::from_raw(1), 0), "not ours");
        execs.answer_finished();
        assert_eq!(execs.len(), 1, "still running");
        assert!(execs.reaped(Pid::from_raw(i32::MAX), 0));
        execs.answer_finished();
        assert_eq!(execs.len(), 0);
        assert_eq!(
            reply_of(client).exec,
            Some(ExecOutcome::Exited {
                code: 0,
                output: "ready\n".into()
            })
        );
    }

    #[test]
    fn a_command_past_its_deadline_is_answered_as_timed_out() {
        let (mut execs, _w, client) = exec_over_pipes(i32::MAX - 1, Duration::from_millis(50));
        let due = execs.next_deadline().unwrap();
        execs.enforce_deadlines(due);
        assert_eq!(execs.next_deadline(), None, "killed once");
        execs.reaped(Pid::from_raw(i32::MAX - 1), 137);
        execs.answer_finished();
        assert_eq!(reply_of(client).exec, Some(ExecOutcome::TimedOut));
    }

    #[test]
    fn commands_of_an_exited_container_are_answered_with_an_error() {
        let (mut execs, _w, client) = exec_over_pipes(i32::MAX - 2, Duration::from_secs(30));
        execs.abandon();
        assert_eq!(execs.len(), 0);
        let reply = reply_of(client);
        assert_eq!(reply.exec, None);
        assert_eq!(
            reply.error.as_deref(),
            Some("the container exited while the command ran")
        );
    }
}

//! `exec` requests under way: each one's command (a [`Probe`]: pid, deadline, output) and
//! the client waiting for its answer, sent once the command was reaped (after it exited or
//! was killed at its deadline) and its output read to the end (or for [`DRAIN`] at most,
//! when something it started still holds its pipe).

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
/// How long a reaped command's output is still read, waiting for the end of its pipe.
const DRAIN: Duration = Duration::from_millis(500);

/// One command, its client, and when it was reaped.
struct Exec {
    probe: Probe,
    conn: UnixStream,
    reaped_at: Option<Instant>,
}

impl Exec {
    /// Whether its answer can go: reaped, and its output read or drained long enough.
    fn done(&self, now: Instant) -> bool {
        self.reaped_at
            .is_some_and(|at| self.probe.output_closed() || now >= at + DRAIN)
    }
}

/// The commands of `exec` requests that run, with their clients.
#[derive(Default)]
pub struct Execs {
    running: Vec<Exec>,
}

impl Execs {
    /// How many run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Adds a started command whose answer goes to `conn`.
    pub fn push(&mut self, probe: Probe, conn: UnixStream) {
        self.running.push(Exec {
            probe,
            conn,
            reaped_at: None,
        });
    }

    /// Their output pipes not yet at their end, for polling, with the index
    /// [`Execs::read_output`] takes.
    pub fn outputs(&self) -> impl Iterator<Item = (usize, &File)> {
        self.running
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.probe.output_closed())
            .map(|(i, e)| (i, e.probe.output()))
    }

    /// Reads what command `i` wrote.
    pub fn read_output(&mut self, i: usize) {
        if let Some(e) = self.running.get_mut(i) {
            e.probe.read_output();
        }
    }

    /// Records that `pid` exited with `code`; false when it is none of ours.
    pub fn reaped(&mut self, pid: Pid, code: i32) -> bool {
        match self.running.iter_mut().find(|e| e.probe.pid == pid) {
            Some(e) => {
                e.probe.exit = Some(code);
                e.probe.read_output();
                e.reaped_at = Some(Instant::now());
                true
            }
            None => false,
        }
    }

    /// Kills the commands whose deadline passed at `now`.
    pub fn enforce_deadlines(&mut self, now: Instant) {
        for e in &mut self.running {
            e.probe.enforce_deadline(now);
        }
    }

    /// The earliest deadline still to enforce, or end of a drain.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.running
            .iter()
            .filter_map(|e| match e.reaped_at {
                Some(at) => Some(at + DRAIN),
                None => e.probe.deadline(),
            })
            .min()
    }

    /// Answers the clients of the commands that are done.
    pub fn answer_finished(&mut self) {
        let now = Instant::now();
        let (done, running): (Vec<Exec>, _) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|e| e.done(now));
        self.running = running;
        for e in done {
            answer(e.conn, Ok(e.probe.exec_outcome()));
        }
    }

    /// The container's process ended: kills the commands still running and tells their
    /// clients.
    pub fn abandon(&mut self) {
        for e in self.running.drain(..) {
            let _ = nix::sys::signal::kill(e.probe.pid, Signal::SIGKILL);
            answer(
                e.conn,
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
        assert_eq!(execs.len(), 1, "its output is still open");
        drop(w);
        execs.read_output(0);
        assert_eq!(execs.outputs().count(), 0, "at its end: no longer polled");
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
        execs.reaped(Pid::from_raw(i32::MAX - 1), 137);
        // Something it started may hold its output open: answered after a drain anyway.
        let drained = execs.next_deadline().unwrap();
        assert!(drained > Instant::now());
        execs.answer_finished();
        assert_eq!(execs.len(), 1, "still draining");
        std::thread::sleep(drained.saturating_duration_since(Instant::now()));
        execs.answer_finished();
        assert_eq!(execs.len(), 0);
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

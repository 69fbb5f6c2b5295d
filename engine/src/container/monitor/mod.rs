//! The per-container monitor: `berth-monitor --root ROOT <id>`, started by `berth run` (and `start`)
//! and outliving it. It leaves the caller's session, becomes a child subreaper, has a short-lived
//! [`helper`] create and start the container (whose init is then re-parented to it), copies the container's output (pipes, or the pty master when it has a terminal) into the
//! json-file log and to attached clients, serves the [`control`](super::control) socket
//! (attach, resize, stop, kill, exec), runs the health check on its schedule, reaps the init and
//! records its exit status (128+n when killed by signal n), restarts it as its restart policy
//! says (keeping its network attachment and rootfs), and at the end releases what the
//! container held and, for `--rm`, removes it.
//!
//! It reports to whoever started it over its stdout (a pipe): `listening` (when asked to wait
//! for an attach before starting), `started`, or `error MESSAGE`, then `exit CODE` when the
//! container is gone. It stays single-threaded: one poll loop over a signalfd for SIGCHLD,
//! the control socket, the container's output and the clients; the runtime's create and exec
//! run in helpers, so their code and memory never become part of the monitor.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::control::{self, Reply, Request};
use super::health::Health;
use super::logs::{LogWriter, Stream};
use super::restart::Backoff;
use super::state::{now_rfc3339, State, Status};
use super::{io_err, lifecycle, ContainerConfig, ContainerError, Containers};
use crate::daemon::{self, DaemonError};
use attach::{Client, Input};
pub use config::MonitorConfig;
use execs::Execs;
pub use handle::{exe_beside, spawn, MonitorHandle};
use helper::{HelperStdio, Task};
use output::{pipe, set_nonblocking, Chunk};
use probe::Probe;
use requests::{Action, Facts, RequestError};

mod attach;
mod config;
mod execs;
mod handle;
pub mod helper;
mod output;
mod probe;
mod reap;
mod requests;

/// The exit code recorded when the container could not be started (Docker's 125).
const START_FAILED: i32 = 125;
/// How long output is still read after the init exited (for what its children wrote last).
const DRAIN: Duration = Duration::from_secs(2);
/// How long a monitor asked to wait for an attach waits before starting anyway.
const ATTACH_WAIT: Duration = Duration::from_secs(30);

/// The monitor's body (the `berth-monitor` binary): runs container `id` to its end. `helper`
/// is the monitor's own binary, run again to start the container's process and its health
/// checks (see [`helper`]).
pub fn serve(
    c: &Containers,
    id: &str,
    wait_attach: bool,
    helper: &Path,
) -> Result<(), ContainerError> {
    let mut reports = daemon::detach()
        .map_err(|DaemonError { path, source }| ContainerError::Io { path, source })?;
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a child subreaper");
    }
    let result = Monitor::new(
        c,
        id,
        helper,
        reports.try_clone().map_err(io_err(Path::new("stdout")))?,
    )
    .and_then(|mut m| m.supervise(wait_attach));
    if let Err(e) = &result {
        let _ = writeln!(reports, "error {e}");
    }
    result
}

/// One run of the container's process.
struct Process {
    pid: Pid,
    started: Instant,
    /// Its stdout and stderr pipes, or the pty master (as stdout).
    outputs: Vec<(File, Stream)>,
    /// Where attached clients' input goes (stdin pipe or pty master), with `-i`.
    stdin: Option<File>,
    /// The pty master, for resizes.
    master: Option<OwnedFd>,
    /// Its exit code and when it was reaped.
    exit: Option<(i32, Instant)>,
    /// The health check under way.
    probe: Option<Probe>,
    /// When the next health check starts.
    next_check: Option<Instant>,
}

/// What one poll round found ready.
enum Ready {
    Signal,
    Listener,
    Output(usize),
    Client(usize),
    Probe,
    Exec(usize),
}

/// What a request leads to besides its reply.
enum Answer {
    /// Nothing more: reply.
    Done,
    /// Reply, then attach the client (passing its input on with `true`).
    Attach(bool),
    /// Reply once this `exec` command ended.
    Exec(Probe),
}

struct Monitor<'a> {
    c: &'a Containers,
    config: ContainerConfig,
    dir: PathBuf,
    state: State,
    log: LogWriter,
    /// The monitor's own binary, run as a [`helper`].
    helper: PathBuf,
    reports: File,
    listener: UnixListener,
    sigchld: SignalFd,
    clients: Vec<Client>,
    process: Option<Process>,
    /// When `stop`'s grace period ends and SIGKILL goes out.
    kill_at: Option<Instant>,
    /// The commands of `exec` requests under way.
    execs: Execs,
}

impl<'a> Monitor<'a> {
    fn new(
        c: &'a Containers,
        id: &str,
        helper: &Path,
        reports: File,
    ) -> Result<Self, ContainerError> {
        let config = c.config(id)?;
        let dir = c.dir(id);
        let mut state = c.state(id)?;
        if state.status != Status::Created {
            return Err(ContainerError::WrongState {
                id: id.to_string(),
                reason: "container was started already".into(),
            });
        }
        state.monitor_pid = Some(std::process::id() as i32);
        state.save(&dir)?;
        let log = LogWriter::open(&c.log_path(id), config.monitor.log)?;
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block()
            .map_err(|e| ContainerError::Sys("sigprocmask", e))?;
        let sigchld = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| ContainerError::Sys("signalfd", e))?;
        let sock_dir = control::socket_dir(id);
        berth_image::perms::private_dir(&sock_dir).map_err(io_err(&sock_dir))?;
        let sock = control::socket_path(id);
        let _ = std::fs::remove_file(&sock);
        let listener = UnixListener::bind(&sock).map_err(io_err(&sock))?;
        listener.set_nonblocking(true).map_err(io_err(&sock))?;
        Ok(Monitor {
            c,
            config,
            dir,
            state,
            log,
            helper: helper.to_path_buf(),
            reports,
            listener,
            sigchld,
            clients: Vec::new(),
            process: None,
            kill_at: None,
            execs: Execs::default(),
        })
    }

    fn id(&self) -> &str {
        &self.config.id
    }

    fn save(&self) -> Result<(), ContainerError> {
        Ok(self.state.save(&self.dir)?)
    }

    fn supervise(&mut self, wait_attach: bool) -> Result<(), ContainerError> {
        let _span = tracing::info_span!("monitor", container = self.config.short_id()).entered();
        if wait_attach {
            let _ = writeln!(self.reports, "listening");
            let deadline = Instant::now() + ATTACH_WAIT;
            while self.clients.is_empty() && Instant::now() < deadline {
                self.poll_once(Some(deadline))?;
            }
        }
        let mut backoff = Backoff::default();
        let mut first = true;
        let code = loop {
            if let Err(e) = self.start_process() {
                self.state.exit_code = Some(START_FAILED);
                self.state.error = Some(e.to_string());
                self.state.finished_at = Some(now_rfc3339());
                // The first failure is reported as `error` (by serve), a later one as an exit.
                self.finish(START_FAILED, !first)?;
                if first {
                    return Err(e);
                }
                return Ok(());
            }
            if first {
                let _ = writeln!(self.reports, "started");
                first = false;
            }
            // Start-up's code goes from memory; the loop faults back in what it runs.
            if let Err(e) = berth_runtime::sys::resident::release_image_pages() {
                tracing::debug!(error = %e, "releasing start-up pages");
            }
            let (code, ran) = self.run_to_exit()?;
            self.state.exit_code = Some(code);
            self.state.finished_at = Some(now_rfc3339());
            self.state.pid = None;
            let policy = self.config.monitor.restart;
            if !policy.should_restart(code, self.state.restart_count, self.state.manually_stopped) {
                break code;
            }
            // The runtime's record and cgroup go; the network and rootfs stay for the next run.
            if let Err(e) = self.c.runtime().delete(self.id(), true) {
                tracing::warn!(error = %e, "runtime delete before a restart");
            }
            self.state.status = Status::Restarting;
            self.save()?;
            let delay = backoff.next(ran);
            tracing::info!(code, ?delay, "restarting per policy {policy}");
            let at = Instant::now() + delay;
            while Instant::now() < at && !self.state.manually_stopped {
                self.poll_once(Some(at))?;
            }
            if self.state.manually_stopped {
                break code;
            }
            self.state.restart_count += 1;
        };
        self.finish(code, true)
    }

    /// Creates and starts the container's process (in a [`helper`]), its stdio wired to us.
    fn start_process(&mut self) -> Result<(), ContainerError> {
        let id = self.id().to_string();
        let tty = self.config.monitor.tty;
        let open_stdin = self.config.monitor.open_stdin;
        let process = if tty {
            let sock = helper::console_socket(&id);
            let _ = std::fs::remove_file(&sock);
            let console = UnixListener::bind(&sock).map_err(io_err(&sock))?;
            // The runtime's diagnostics go to our stderr (monitor.log), as when it ran here.
            let stdio = HelperStdio {
                stderr: Stdio::inherit(),
                ..HelperStdio::null()
            };
            let started = helper::run(self.c, &self.helper, &id, Task::Create, stdio);
            // The runtime sent the master before the helper exited: it waits in the socket.
            let master = started.and_then(|pid| {
                console.set_nonblocking(true).map_err(io_err(&sock))?;
                let (conn, _) = console.accept().map_err(io_err(&sock))?;
                let master = berth_runtime::tty::receive_master(&conn)
                    .map_err(berth_runtime::ContainerError::from)?;
                Ok((pid, master))
            });
            let _ = std::fs::remove_file(&sock);
            let (pid, master) = master?;
            let out = master.try_clone().map_err(io_err(&sock))?;
            set_nonblocking(&out)?;
            let stdin = if open_stdin {
                Some(File::from(master.try_clone().map_err(io_err(&sock))?))
            } else {
                None
            };
            Process::new(
                pid,
                vec![(File::from(out), Stream::Stdout)],
                stdin,
                Some(master),
            )
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            // For -i, the container reads the pipe's read end; we keep its write end.
            let (stdin_r, stdin) = match open_stdin {
                true => {
                    let (r, w) = pipe()?;
                    (Stdio::from(OwnedFd::from(r)), Some(File::from(w)))
                }
                false => (Stdio::null(), None),
            };
            let stdio = HelperStdio {
                stdin: stdin_r,
                stdout: Stdio::from(out_w),
                stderr: Stdio::from(err_w),
            };
            let pid = helper::run(self.c, &self.helper, &id, Task::Create, stdio)?;
            set_nonblocking(&out_r)?;
            set_nonblocking(&err_r)?;
            Process::new(
                pid,
                vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)],
                stdin,
                None,
            )
        };
        tracing::info!(pid = %process.pid, "started");
        self.state.status = Status::Running;
        self.state.pid = Some(process.pid.as_raw());
        self.state.started_at = Some(now_rfc3339());
        self.state.exit_code = None;
        self.state.error = None;
        self.state.health = self
            .config
            .monitor
            .healthcheck
            .as_ref()
            .map(|_| Health::starting());
        self.process = Some(Process {
            next_check: self
                .config
                .monitor
                .healthcheck
                .as_ref()
                .map(|h| Instant::now() + h.interval()),
            ..process
        });
        self.save()
    }
}

impl Process {
    fn new(
        pid: Pid,
        outputs: Vec<(File, Stream)>,
        stdin: Option<File>,
        master: Option<OwnedFd>,
    ) -> Self {
        Process {
            pid,
            started: Instant::now(),
            outputs,
            stdin,
            master,
            exit: None,
            probe: None,
            next_check: None,
        }
    }

    fn running(&self) -> bool {
        self.exit.is_none()
    }
}

impl Monitor<'_> {
    /// Serves everything until the process has exited and its output is drained; returns its
    /// exit code and how long it ran.
    fn run_to_exit(&mut self) -> Result<(i32, Duration), ContainerError> {
        loop {
            let Some(p) = &self.process else {
                return Err(ContainerError::Monitor("no process to wait for".into()));
            };
            if let Some((code, at)) = p.exit {
                if p.outputs.is_empty() || at.elapsed() >= DRAIN {
                    let ran = at.duration_since(p.started);
                    if let Err(e) = self.log.flush() {
                        tracing::warn!(error = %e, "writing the container's log");
                    }
                    if let Some(p) = self.process.take() {
                        if let Some(probe) = p.probe {
                            let _ = nix::sys::signal::kill(probe.pid, Signal::SIGKILL);
                        }
                    }
                    self.kill_at = None;
                    self.execs.abandon();
                    tracing::info!(code, "exited");
                    return Ok((code, ran));
                }
            }
            self.timers();
            let deadline = self.next_deadline();
            self.poll_once(deadline)?;
        }
    }

    /// Acts on what is due: SIGKILL after stop's grace period, starting and timing out
    /// health checks.
    fn timers(&mut self) {
        let now = Instant::now();
        if self.kill_at.is_some_and(|t| now >= t) {
            self.kill_at = None;
            tracing::info!("still running after stop's timeout: SIGKILL");
            if let Err(e) = self.c.runtime().kill(self.id(), Signal::SIGKILL, true) {
                tracing::debug!(error = %e, "SIGKILL");
            }
        }
        self.execs.enforce_deadlines(now);
        let Some(p) = &mut self.process else { return };
        if !p.running() {
            return;
        }
        if let Some(probe) = &mut p.probe {
            probe.enforce_deadline(now);
        } else if p.next_check.is_some_and(|t| now >= t) {
            p.next_check = None;
            self.start_probe();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut times = vec![self.kill_at, self.execs.next_deadline()];
        if let Some(p) = &self.process {
            times.push(p.exit.map(|(_, at)| at + DRAIN));
            if p.running() {
                match &p.probe {
                    Some(probe) => times.push(probe.deadline()),
                    None => times.push(p.next_check),
                }
            }
        }
        times.into_iter().flatten().min()
    }

    /// One round: waits (until `deadline` at most) for a signal, a client, output or a health
    /// check's output, and handles what came.
    fn poll_once(&mut self, deadline: Option<Instant>) -> Result<(), ContainerError> {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.saturating_duration_since(Instant::now()).as_millis() + 1;
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::NONE)
            }
        };
        let mut ready = Vec::new();
        {
            let mut fds = vec![
                PollFd::new(self.sigchld.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
            ];
            let mut what = vec![Ready::Signal, Ready::Listener];
            if let Some(p) = &self.process {
                for (i, (f, _)) in p.outputs.iter().enumerate() {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    what.push(Ready::Output(i));
                }
                if let Some(probe) = &p.probe {
                    fds.push(PollFd::new(probe.output().as_fd(), PollFlags::POLLIN));
                    what.push(Ready::Probe);
                }
            }
            for (i, output) in self.execs.outputs() {
                fds.push(PollFd::new(output.as_fd(), PollFlags::POLLIN));
                what.push(Ready::Exec(i));
            }
            for (i, client) in self.clients.iter().enumerate() {
                if client.input_open {
                    fds.push(PollFd::new(client.conn.as_fd(), PollFlags::POLLIN));
                    what.push(Ready::Client(i));
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => return Ok(()),
                Err(e) => return Err(ContainerError::Sys("poll", e)),
            }
            for (fd, w) in fds.iter().zip(what) {
                if fd.revents().is_some_and(|r| !r.is_empty()) {
                    ready.push(w);
                }
            }
        }
        let mut closed_outputs = Vec::new();
        let mut dropped_clients = Vec::new();
        for r in ready {
            match r {
                Ready::Signal => self.reap(),
                Ready::Listener => self.accept(),
                Ready::Output(i) => {
                    if !self.read_output(i) {
                        closed_outputs.push(i);
                    }
                }
                Ready::Client(i) => {
                    if !self.read_client(i) {
                        dropped_clients.push(i);
                    }
                }
                Ready::Probe => self.read_probe(),
                Ready::Exec(i) => self.execs.read_output(i),
            }
        }
        if let Some(p) = &mut self.process {
            for i in closed_outputs.into_iter().rev() {
                p.outputs.remove(i);
            }
        }
        for i in dropped_clients.into_iter().rev() {
            self.clients.remove(i);
        }
        self.finish_probe();
        self.execs.answer_finished();
        Ok(())
    }

    /// Reaps every exited child: the init (its exit), a health check, or an orphan that was
    /// re-parented to us.
    fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigchld.read_signal() {}
        for (pid, code) in reap::reap_exited() {
            if self.execs.reaped(pid, code) {
                continue;
            }
            let Some(p) = &mut self.process else { continue };
            if pid == p.pid {
                p.exit = Some((code, Instant::now()));
            } else if let Some(probe) = p.probe.as_mut().filter(|probe| probe.pid == pid) {
                probe.exit = Some(code);
            }
        }
    }

    /// Reads output `i` into the log and to attached clients; false once it is closed.
    fn read_output(&mut self, i: usize) -> bool {
        let Some(p) = &mut self.process else {
            return false;
        };
        let Some((file, stream)) = p.outputs.get_mut(i) else {
            return false;
        };
        let stream = *stream;
        let mut buf = [0u8; 32 * 1024];
        let n = match output::read_chunk(file, &mut buf) {
            Chunk::Data(n) => n,
            Chunk::Pending => return true,
            Chunk::Closed => return false,
        };
        let bytes = &buf[..n];
        if let Err(e) = self.log.write(stream, bytes) {
            tracing::warn!(error = %e, "writing the container's log");
        }
        attach::broadcast(&mut self.clients, stream, bytes, self.config.monitor.tty);
        true
    }

    /// Reads client `i`'s input into the container's stdin; false when the client is gone.
    fn read_client(&mut self, i: usize) -> bool {
        let Some(client) = self.clients.get_mut(i) else {
            return false;
        };
        let mut buf = [0u8; 4096];
        match attach::read_input(client, &mut buf) {
            Input::Closed => {
                // `run -i` without a terminal: the attached client's end of input is the
                // container's (Docker's StdinOnce).
                if client.stdin && !self.config.monitor.tty {
                    if let Some(p) = &mut self.process {
                        p.stdin = None;
                    }
                }
                true
            }
            Input::Data(bytes) => {
                if let Some(stdin) = self.process.as_mut().and_then(|p| p.stdin.as_mut()) {
                    if let Err(e) = stdin.write_all(bytes) {
                        tracing::debug!(error = %e, "container stdin");
                    }
                }
                true
            }
            Input::Nothing => true,
            Input::Gone => false,
        }
    }

    /// Accepts control connections and answers their request.
    fn accept(&mut self) {
        while let Ok((mut conn, _)) = self.listener.accept() {
            let _ = conn.set_nonblocking(false);
            let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
            let request = control::read_line(&mut conn)
                .ok()
                .and_then(|line| serde_json::from_slice::<Request>(&line).ok());
            let _ = conn.set_read_timeout(None);
            let reply = match request {
                None => Err(RequestError::Unreadable),
                Some(r) => self.handle(&r),
            };
            let (line, attach) = match reply {
                Ok(Answer::Exec(probe)) => {
                    self.execs.push(probe, conn);
                    continue;
                }
                Ok(answer) => (
                    Reply {
                        error: None,
                        tty: self.config.monitor.tty,
                        exec: None,
                    },
                    answer,
                ),
                Err(e) => (
                    Reply {
                        error: Some(e.to_string()),
                        tty: false,
                        exec: None,
                    },
                    Answer::Done,
                ),
            };
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            // Only a client that got its answer is attached.
            if conn.write_all(&bytes).is_err() {
                continue;
            }
            if let Answer::Attach(stdin) = attach {
                self.clients.push(Client::new(conn, stdin));
            }
        }
    }

    /// Does what `request` asks.
    fn handle(&mut self, request: &Request) -> Result<Answer, RequestError> {
        let monitor = &self.config.monitor;
        let facts = Facts {
            running: self.process.as_ref().is_some_and(Process::running),
            tty: monitor.tty,
            open_stdin: monitor.open_stdin,
            stop_signal: monitor.stop_signal.as_ref().map(|_| monitor.stop_signal()),
            execs: self.execs.len(),
        };
        match requests::plan(request, facts)? {
            Action::Attach { stdin } => Ok(Answer::Attach(stdin)),
            Action::Resize { rows, cols } => {
                let Some(master) = self.process.as_ref().and_then(|p| p.master.as_ref()) else {
                    return Err(RequestError::NoTerminal);
                };
                berth_runtime::tty::set_window_size(master.as_fd(), rows, cols)
                    .map(|()| Answer::Done)
                    .map_err(RequestError::Resize)
            }
            Action::Stop { signal, grace } => {
                self.state.manually_stopped = true;
                let _ = self.save();
                if let Some(sig) = signal {
                    if let Err(e) = self.c.runtime().kill(self.id(), sig, false) {
                        tracing::debug!(error = %e, "stop signal");
                    }
                    self.kill_at = Some(Instant::now() + grace);
                }
                Ok(Answer::Done)
            }
            Action::Kill { signal, manual } => {
                if manual {
                    self.state.manually_stopped = true;
                    let _ = self.save();
                }
                self.c
                    .runtime()
                    .kill(self.id(), signal, false)
                    .map(|()| Answer::Done)
                    .map_err(RequestError::Kill)
            }
            Action::Exec { argv, timeout } => {
                let (pid, output) = helper::start_exec(self.c, &self.helper, self.id(), &argv)
                    .map_err(RequestError::ExecFailed)?;
                Ok(Answer::Exec(Probe::new(
                    pid,
                    now_rfc3339(),
                    timeout,
                    output,
                )))
            }
        }
    }

    /// The end: releases what the container held, records the exit, removes it for `--rm`,
    /// tells the caller, and lets attached clients go.
    fn finish(&mut self, code: i32, report: bool) -> Result<(), ContainerError> {
        // Released before the exit is recorded: once `stop` or `wait` see it, nothing is held.
        release(self.c, &self.config);
        self.state.status = Status::Exited;
        self.state.pid = None;
        self.state.exit_code = Some(code);
        if self.state.finished_at.is_none() {
            self.state.finished_at = Some(now_rfc3339());
        }
        self.save()?;
        let _ = std::fs::remove_file(control::socket_path(self.id()));
        remove_if_auto(self.c, &self.config);
        if report {
            let _ = writeln!(self.reports, "exit {code}");
        }
        for client in self.clients.drain(..) {
            let _ = client.conn.shutdown(std::net::Shutdown::Both);
        }
        Ok(())
    }
}

/// After the exit: release what the container held on the host.
fn release(c: &Containers, config: &ContainerConfig) {
    if let Err(e) = lifecycle::release(c, config) {
        tracing::warn!(error = %e, "cannot release the container");
    }
}

/// For `--rm`: remove the container once released (left in place when the release failed,
/// so `rm -f` can retry it).
fn remove_if_auto(c: &Containers, config: &ContainerConfig) {
    let rootfs = c.dir(&config.id).join("rootfs");
    if config.auto_remove && !lifecycle::is_mount_point(&rootfs) {
        if let Err(e) = c.records().remove(&config.id) {
            tracing::warn!(error = %e, "cannot remove");
        }
        c.release_name(&config.name, &config.id);
        if let Err(e) = super::remove_anonymous_volumes(c, config) {
            tracing::warn!(error = %e, "cannot remove the anonymous volumes");
        }
        control::remove_socket_dir(&config.id);
    }
}

//! The per-container monitor: `berth __monitor <id>`, started by `berth run` and outliving
//! it. It leaves the caller's session, becomes a child subreaper, creates and starts the
//! container through the runtime library (so the container's init is its child), copies the
//! container's stdout and stderr from pipes into the json-file log, reaps the init and records
//! its exit status (128+n when killed by signal n), then releases what the container held and,
//! for `--rm`, removes it.
//!
//! It reports to whoever started it over its stdout (a pipe): `started`, or `error MESSAGE`,
//! then `exit CODE` when the container is gone. The runtime forks, so the monitor stays
//! single-threaded.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::logs::{LogWriter, Stream};
use super::state::{now_rfc3339, Status};
use super::{io_err, lifecycle, ContainerConfig, ContainerError, Containers};

/// The exit code recorded when the container could not be started (Docker's 125).
const START_FAILED: i32 = 125;

/// A monitor started by [`spawn`]: read its reports.
#[derive(Debug)]
pub struct MonitorHandle {
    child: Child,
    reports: BufReader<ChildStdout>,
}

/// Starts `exe __monitor <id>` (exe being the `berth` binary) for a created container, its
/// own diagnostics going to `monitor.log` in the container's directory.
pub fn spawn(c: &Containers, exe: &Path, id: &str) -> Result<MonitorHandle, ContainerError> {
    let log_path = c.dir(id).join("monitor.log");
    let log = File::create(&log_path).map_err(io_err(&log_path))?;
    let mut child = Command::new(exe)
        .arg("--root")
        .arg(c.root())
        .arg("__monitor")
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(io_err(exe))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(ContainerError::Monitor("no report pipe".into()));
    };
    Ok(MonitorHandle {
        child,
        reports: BufReader::new(stdout),
    })
}

impl MonitorHandle {
    fn next_report(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reports.read_line(&mut line) {
            Ok(n) if n > 0 => Some(line.trim_end().to_string()),
            _ => None,
        }
    }

    /// Waits until the container runs, or returns why it could not be started.
    pub fn started(&mut self) -> Result<(), ContainerError> {
        match self.next_report() {
            Some(r) if r == "started" => Ok(()),
            Some(r) => Err(ContainerError::Monitor(
                r.strip_prefix("error ").unwrap_or(&r).to_string(),
            )),
            None => Err(ContainerError::Monitor(
                "exited before starting the container (see monitor.log)".into(),
            )),
        }
    }

    /// Waits until the container has exited and been released; returns its exit code.
    pub fn wait(mut self) -> Result<i32, ContainerError> {
        let report = self.next_report();
        let _ = self.child.wait();
        report
            .as_deref()
            .and_then(|r| r.strip_prefix("exit "))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| ContainerError::Monitor("exited without reporting an exit code".into()))
    }
}

/// The monitor's body (the `__monitor` subcommand): runs container `id` to its end.
pub fn serve(c: &Containers, id: &str) -> Result<(), ContainerError> {
    // Leave the caller's session so its terminal's signals do not reach us.
    let _ = nix::unistd::setsid();
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a child subreaper");
    }
    let reports = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(io_err(Path::new("stdout")))?;
    let mut reports = File::from(reports);
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(io_err(Path::new("/dev/null")))?;
    dup2(&null, 0)?;
    dup2(&null, 1)?;
    let result = supervise(c, id, &null, &mut reports);
    if let Err(e) = &result {
        let _ = writeln!(reports, "error {e}");
    }
    result
}

fn dup2(from: &impl AsRawFd, to: i32) -> Result<(), ContainerError> {
    nix::unistd::dup2(from.as_raw_fd(), to)
        .map(drop)
        .map_err(|e| ContainerError::Sys("dup2", e))
}

fn pipe() -> Result<(File, OwnedFd), ContainerError> {
    let (r, w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ContainerError::Sys("pipe2", e))?;
    Ok((File::from(r), w))
}

fn supervise(
    c: &Containers,
    id: &str,
    null: &File,
    reports: &mut File,
) -> Result<(), ContainerError> {
    let config = c.config(id)?;
    let dir = c.dir(id);
    let _span = tracing::info_span!("monitor", container = config.short_id()).entered();
    let mut state = c.state(id)?;
    if state.status != Status::Created {
        return Err(ContainerError::WrongState {
            id: id.to_string(),
            reason: "container was started already".into(),
        });
    }
    state.monitor_pid = Some(std::process::id() as i32);
    state.save(&dir)?;
    let mut log = LogWriter::open(&c.log_path(id))?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let runtime = c.runtime();
    let opts = berth_runtime::CreateOptions {
        id: id.to_string(),
        bundle: dir.join("bundle"),
        ..Default::default()
    };
    // The init inherits fds 1 and 2: point them at the pipes while it is forked.
    let own_stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(io_err(Path::new("stderr")))?;
    dup2(&out_w, 1)?;
    dup2(&err_w, 2)?;
    let created = runtime.create(&opts);
    dup2(null, 1)?;
    dup2(&own_stderr, 2)?;
    drop((out_w, err_w));
    let started = created.and_then(|pid| runtime.start(id).map(|()| pid));
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            let e = ContainerError::from(e);
            state.exit_code = Some(START_FAILED);
            state.error = Some(e.to_string());
            state.finished_at = Some(now_rfc3339());
            release(c, &config);
            state.status = Status::Exited;
            state.save(&dir)?;
            remove_if_auto(c, &config);
            return Err(e);
        }
    };
    state.status = Status::Running;
    state.pid = Some(pid.as_raw());
    state.started_at = Some(now_rfc3339());
    state.save(&dir)?;
    let _ = writeln!(reports, "started");
    tracing::info!(%pid, "started");

    if let Err(e) = pump(out_r, err_r, &mut log) {
        tracing::warn!(error = %e, "reading the container's output");
    }
    if let Err(e) = log.flush() {
        tracing::warn!(error = %e, "writing the container's log");
    }
    let code = reap(pid);
    state.finished_at = Some(now_rfc3339());
    tracing::info!(code, "exited");
    // Released before the exit is recorded: once `stop` or `wait` see it, nothing is held.
    release(c, &config);
    state.status = Status::Exited;
    state.pid = None;
    state.exit_code = Some(code);
    state.save(&dir)?;
    remove_if_auto(c, &config);
    let _ = writeln!(reports, "exit {code}");
    Ok(())
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
        let dir = c.dir(&config.id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot remove");
        }
        c.release_name(&config.name, &config.id);
        if let Err(e) = super::remove_anonymous_volumes(c, config) {
            tracing::warn!(error = %e, "cannot remove the anonymous volumes");
        }
    }
}

/// Copies the container's stdout and stderr into the log until both pipes are closed.
fn pump(out: File, err: File, log: &mut LogWriter) -> Result<(), ContainerError> {
    let mut open: Vec<(File, Stream)> = vec![(out, Stream::Stdout), (err, Stream::Stderr)];
    let mut buf = vec![0u8; 32 * 1024];
    while !open.is_empty() {
        let mut ready = Vec::new();
        {
            let mut fds: Vec<PollFd> = open
                .iter()
                .map(|(f, _)| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(ContainerError::Sys("poll", e)),
            }
            for (i, fd) in fds.iter().enumerate() {
                if fd.revents().is_some_and(|r| !r.is_empty()) {
                    ready.push(i);
                }
            }
        }
        let mut closed = Vec::new();
        for i in ready {
            let (file, stream) = &mut open[i];
            match file.read(&mut buf) {
                Ok(0) => closed.push(i),
                Ok(n) => log.write(*stream, &buf[..n])?,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            open.remove(i);
        }
    }
    Ok(())
}

/// Reaps children (we are a subreaper) until `pid` is among them; returns its exit code.
fn reap(pid: Pid) -> i32 {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return 128 + sig as i32,
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => {
                tracing::warn!(error = %e, "waitpid");
                return -1;
            }
        }
    }
}

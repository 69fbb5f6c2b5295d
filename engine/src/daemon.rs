//! The one way berth starts a process that outlives its caller (a container's monitor, a
//! pod's infra): [`spawn`] runs it with stdin on `/dev/null`, its diagnostics to a log file
//! and its stdout a pipe of one-line reports (`started`, `error MESSAGE`, ...) read through
//! [`Daemon`]; the process itself calls [`detach`] first, which leaves the caller's session
//! and keeps that pipe for its reports while its stdin and stdout go to `/dev/null`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// A daemon that could not be started or could not detach.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct DaemonError {
    /// What was acted on (the log, the program, a standard stream).
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError {
        path: path.to_path_buf(),
        source,
    }
}

/// How the daemon's log file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMode {
    /// Emptied first (one log per run).
    Truncate,
    /// Appended to (one log across runs).
    Append,
}

/// A process started by [`spawn`]: read its reports.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    reports: BufReader<ChildStdout>,
}

/// Starts `cmd` as a daemon: stdin `/dev/null`, stderr appended or truncated into `log`
/// (created owner-only), stdout the report pipe.
pub fn spawn(mut cmd: Command, log: &Path, mode: LogMode) -> Result<Daemon, DaemonError> {
    let mut options = File::options();
    options.create(true).mode(0o600);
    match mode {
        LogMode::Truncate => options.write(true).truncate(true),
        LogMode::Append => options.append(true),
    };
    let log_file = options.open(log).map_err(err(log))?;
    let program = PathBuf::from(cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .map_err(err(&program))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(DaemonError {
            path: program,
            source: std::io::Error::other("no report pipe"),
        });
    };
    Ok(Daemon {
        child,
        reports: BufReader::new(stdout),
    })
}

impl Daemon {
    /// The next report line (without its newline); `None` once the daemon closed its
    /// report pipe (it exited, or said all it had to).
    pub fn next_report(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reports.read_line(&mut line) {
            Ok(n) if n > 0 => Some(line.trim_end().to_string()),
            _ => None,
        }
    }

    /// Reads the last report and reaps the daemon (for a caller that waits for its end).
    pub fn finish(mut self) -> Option<String> {
        let report = self.next_report();
        let _ = self.child.wait();
        report
    }

    /// Leaves the daemon running and reaps it from a small thread once it exits, so a
    /// long-running caller is not left with a zombie.
    pub fn reap_in_background(self) {
        let mut child = self.child;
        let reaper = std::thread::Builder::new()
            .name("daemon-reaper".into())
            .stack_size(64 * 1024)
            .spawn(move || child.wait());
        if let Err(e) = reaper {
            tracing::warn!(error = %e, "cannot start a thread to reap a daemon");
        }
    }
}

/// The daemon's side, called first thing: leaves the caller's session (its terminal's
/// signals no longer reach us), returns the report pipe and points stdin and stdout at
/// `/dev/null` (stderr stays the log).
pub fn detach() -> Result<File, DaemonError> {
    let _ = nix::unistd::setsid();
    let stdout = Path::new("stdout");
    let reports = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(err(stdout))?;
    let null_path = Path::new("/dev/null");
    let null = File::options()
        .read(true)
        .write(true)
        .open(null_path)
        .map_err(err(null_path))?;
    for fd in [0, 1] {
        nix::unistd::dup2(null.as_raw_fd(), fd).map_err(|e| err(null_path)(e.into()))?;
    }
    Ok(File::from(reports))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[test]
    fn reports_come_over_stdout_and_diagnostics_go_to_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("d.log");
        std::fs::write(&log, "old run\n").unwrap();
        let script = "read x || echo stdin-is-null >&2; echo started; echo diag >&2; echo 'exit 3'";
        let mut d = spawn(sh(script), &log, LogMode::Truncate).unwrap();
        assert_eq!(d.next_report().as_deref(), Some("started"));
        assert_eq!(d.finish().as_deref(), Some("exit 3"));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "stdin-is-null\ndiag\n"
        );
    }

    #[test]
    fn an_appended_log_keeps_earlier_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("d.log");
        for run in ["one", "two"] {
            let mut d = spawn(sh(&format!("echo {run} >&2")), &log, LogMode::Append).unwrap();
            assert_eq!(d.next_report(), None);
            d.reap_in_background();
        }
        // The second daemon may still be finishing its write: wait for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(&log).unwrap() != "one\ntwo\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "log never got both runs"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a new log is owner-only");
    }

    #[test]
    fn a_missing_program_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let e = spawn(
            Command::new("/nonexistent/berth"),
            &tmp.path().join("l"),
            LogMode::Append,
        )
        .unwrap_err();
        assert_eq!(e.path, Path::new("/nonexistent/berth"));
    }
}

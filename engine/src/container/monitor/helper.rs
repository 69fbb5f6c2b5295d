//! Short-lived helpers of the monitor: creating and starting the container's process, and
//! starting a health check or an `exec` request's command in it, run in a child process (the monitor's own binary, run
//! again from its protected view in a helper mode) that exits once the process runs. The
//! process it started is then re-parented to the monitor, a child subreaper, which reaps it.
//!
//! So the runtime's create and exec code (spec parsing, cgroups, seccomp, namespaces) and
//! the memory they touch never become part of the long-lived monitor, as conmon leaves
//! them to runc. The helper is the process that enters the container: it runs from the
//! same read-only view of the binary as the monitor (CVE-2019-5736).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::Pid;

use super::super::{io_err, ContainerError, Containers};
use super::output::{pipe, set_nonblocking};

/// A helper that failed: what it recorded (the runtime's error, as the monitor would have
/// reported it itself), or how it ended when it recorded nothing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HelperError(String);

/// What a helper does, named on its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Create and start the container's process (its stdio is the helper's).
    Create,
    /// Start the health check in the container (its output is the helper's stdout).
    Probe,
    /// Start the command of an `exec` request (recorded by [`start_exec`]) in the
    /// container, its output the helper's stdout.
    Exec,
}

impl Task {
    /// The command-line flag that selects it.
    pub fn flag(self) -> &'static str {
        match self {
            Task::Create => "--create",
            Task::Probe => "--probe",
            Task::Exec => "--exec",
        }
    }

    /// The task a command-line flag selects.
    pub fn from_flag(flag: &str) -> Option<Self> {
        [Task::Create, Task::Probe, Task::Exec]
            .into_iter()
            .find(|t| t.flag() == flag)
    }

    fn file_stem(self) -> &'static str {
        match self {
            Task::Create => "create",
            Task::Probe => "health",
            Task::Exec => "exec",
        }
    }
}

/// Where the monitor records an `exec` request's argv for its helper (JSON).
fn argv_file(dir: &Path) -> PathBuf {
    dir.join("exec.argv")
}

/// Where a helper writes the pid of the process it started.
fn pid_file(dir: &Path, task: Task) -> PathBuf {
    dir.join(format!("{}.pid", task.file_stem()))
}

/// Where a helper writes why it failed (its stderr may be the container's).
fn error_file(dir: &Path, task: Task) -> PathBuf {
    dir.join(format!("{}.error", task.file_stem()))
}

/// The socket the runtime sends the pty master to, for a container with a terminal.
pub fn console_socket(id: &str) -> PathBuf {
    super::super::control::socket_dir(id).join("console.sock")
}

/// The stdio a helper's process gets.
pub struct HelperStdio {
    /// Its stdin.
    pub stdin: Stdio,
    /// Its stdout.
    pub stdout: Stdio,
    /// Its stderr.
    pub stderr: Stdio,
}

impl HelperStdio {
    /// All three on `/dev/null`.
    pub fn null() -> Self {
        HelperStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

/// Runs `exe --root ROOT FLAG ID` (`exe` being the monitor's binary) to do `task` for
/// container `id`, waits for it and returns the pid of the process it started.
pub fn run(
    c: &Containers,
    exe: &Path,
    id: &str,
    task: Task,
    stdio: HelperStdio,
) -> Result<Pid, ContainerError> {
    let dir = c.dir(id);
    let pid_path = pid_file(&dir, task);
    let error_path = error_file(&dir, task);
    for stale in [&pid_path, &error_path] {
        let _ = std::fs::remove_file(stale);
    }
    let status = Command::new(exe)
        .arg("--root")
        .arg(c.root())
        .arg(task.flag())
        .arg(id)
        .stdin(stdio.stdin)
        .stdout(stdio.stdout)
        .stderr(stdio.stderr)
        .status()
        .map_err(io_err(exe))?;
    if !status.success() {
        let why = std::fs::read_to_string(&error_path).unwrap_or_default();
        let _ = std::fs::remove_file(&error_path);
        return Err(HelperError(match why.trim() {
            "" => format!("monitor: {} helper failed ({status})", task.file_stem()),
            why => why.to_string(),
        })
        .into());
    }
    let pid = read_pid(&pid_path);
    let _ = std::fs::remove_file(&pid_path);
    pid
}

/// Runs the helper for `task` (`Probe` or `Exec`) with its stdout and stderr on a pipe;
/// returns the started process's pid and the pipe's read end (non-blocking).
pub fn start_with_output(
    c: &Containers,
    exe: &Path,
    id: &str,
    task: Task,
) -> Result<(Pid, File), ContainerError> {
    let (r, w) = pipe()?;
    let w2 = w.try_clone().map_err(io_err(Path::new("pipe")))?;
    let stdio = HelperStdio {
        stdout: Stdio::from(w),
        stderr: Stdio::from(w2),
        ..HelperStdio::null()
    };
    let pid = run(c, exe, id, task, stdio)?;
    set_nonblocking(&r)?;
    Ok((pid, r))
}

/// Starts `argv` in container `id` (through a helper, as a health check); returns its pid
/// and its output pipe.
pub fn start_exec(
    c: &Containers,
    exe: &Path,
    id: &str,
    argv: &[String],
) -> Result<(Pid, File), ContainerError> {
    let path = argv_file(&c.dir(id));
    let json = serde_json::to_vec(argv).map_err(|e| io_err(&path)(e.into()))?;
    std::fs::write(&path, json).map_err(io_err(&path))?;
    let started = start_with_output(c, exe, id, Task::Exec);
    let _ = std::fs::remove_file(&path);
    started
}

fn read_pid(path: &Path) -> Result<Pid, ContainerError> {
    std::fs::read_to_string(path)
        .map_err(io_err(path))?
        .trim()
        .parse()
        .map(Pid::from_raw)
        .map_err(|_| ContainerError::Monitor(format!("{}: not a pid", path.display())))
}

/// The helper's body (`berth-monitor --root ROOT FLAG ID`): does `task` for container `id`
/// and records the started process's pid; on failure records why for the monitor.
pub fn serve(c: &Containers, id: &str, task: Task) -> Result<(), ContainerError> {
    let dir = c.dir(id);
    let result = match task {
        Task::Create => create(c, id, &pid_file(&dir, task)),
        Task::Probe => match &c.config(id)?.monitor.healthcheck {
            Some(check) => exec_detached(c, id, check.argv(), &pid_file(&dir, task)),
            None => Err(ContainerError::Monitor("no health check configured".into())),
        },
        Task::Exec => read_argv(&argv_file(&dir))
            .and_then(|argv| exec_detached(c, id, argv, &pid_file(&dir, task))),
    };
    if let Err(e) = &result {
        let path = error_file(&dir, task);
        if let Err(w) = std::fs::write(&path, e.to_string()) {
            tracing::warn!(error = %w, path = %path.display(), "cannot record the error");
        }
    }
    result
}

/// Creates and starts the container's process, its stdio ours (or a pty for `-t`).
fn create(c: &Containers, id: &str, pid_file: &Path) -> Result<(), ContainerError> {
    let config = c.config(id)?;
    let runtime = c.runtime();
    let opts = berth_runtime::CreateOptions {
        id: id.to_string(),
        bundle: c.dir(id).join("bundle"),
        console_socket: config.monitor.tty.then(|| console_socket(id)),
        pid_file: Some(pid_file.to_path_buf()),
        ..Default::default()
    };
    runtime.create(&opts)?;
    runtime.start(id)?;
    Ok(())
}

/// The argv the monitor recorded for an `exec` helper.
fn read_argv(path: &Path) -> Result<Vec<String>, ContainerError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|source| ContainerError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

/// Starts `argv` in the container (a health check or an exec), detached, its output our
/// stdout and stderr.
fn exec_detached(
    c: &Containers,
    id: &str,
    argv: Vec<String>,
    pid_file: &Path,
) -> Result<(), ContainerError> {
    let spec_path = c.dir(id).join("bundle/config.json");
    let bytes = std::fs::read(&spec_path).map_err(io_err(&spec_path))?;
    let spec: oci_spec::runtime::Spec =
        serde_json::from_slice(&bytes).map_err(|source| ContainerError::Corrupt {
            path: spec_path.clone(),
            source,
        })?;
    c.runtime()
        .exec(&berth_runtime::container::ExecOptions {
            id: id.to_string(),
            process: probe_process(&spec, argv),
            console_socket: None,
            pid_file: Some(pid_file.to_path_buf()),
            detach: true,
            preserve_fds: 0,
        })
        .map(drop)
        .map_err(Into::into)
}

/// The container's process settings with `argv` (a health check's, an exec's), without a
/// terminal.
fn probe_process(spec: &oci_spec::runtime::Spec, argv: Vec<String>) -> oci_spec::runtime::Process {
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(argv));
    process.set_terminal(Some(false));
    process.set_console_size(None);
    process
}

#[cfg(test)]
mod tests {
    use super::super::super::health::HealthConfig;
    use super::*;

    #[test]
    fn tasks_round_trip_through_their_flags() {
        for task in [Task::Create, Task::Probe, Task::Exec] {
            assert_eq!(Task::from_flag(task.flag()), Some(task));
        }
        assert_eq!(Task::from_flag("--wait-attach"), None);
    }

    #[test]
    fn a_failed_helper_reports_what_it_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Containers::new(tmp.path().to_path_buf());
        let dir = c.dir("abc");
        std::fs::create_dir_all(&dir).unwrap();
        // A stand-in helper: records an error the way `serve` does and fails.
        let script = tmp.path().join("helper");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"runtime said no ($3)\" > {}\nexit 1\n",
                error_file(&dir, Task::Create).display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let err = run(&c, &script, "abc", Task::Create, HelperStdio::null()).unwrap_err();
        assert_eq!(err.to_string(), "runtime said no (--create)");
        assert!(!error_file(&dir, Task::Create).exists());
    }

    #[test]
    fn a_helper_that_succeeds_gives_the_pid_it_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Containers::new(tmp.path().to_path_buf());
        let dir = c.dir("abc");
        std::fs::create_dir_all(&dir).unwrap();
        let script = tmp.path().join("helper");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho probe output\necho 4242 > {}\n",
                pid_file(&dir, Task::Probe).display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let stdio = HelperStdio {
            stdout: Stdio::from(w),
            ..HelperStdio::null()
        };
        let pid = run(&c, &script, "abc", Task::Probe, stdio).unwrap();
        assert_eq!(pid, Pid::from_raw(4242));
        assert!(!pid_file(&dir, Task::Probe).exists());
        let mut out = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
        assert_eq!(out, "probe output\n");
    }

    #[test]
    fn an_exec_helper_gets_the_argv_and_its_output_is_piped() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Containers::new(tmp.path().to_path_buf());
        let dir = c.dir("abc");
        std::fs::create_dir_all(&dir).unwrap();
        // A stand-in helper: shows the argv it was given, on stdout and stderr.
        let script = tmp.path().join("helper");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$3\" = --exec ] || exit 1\ncat {argv}\necho >&2 err\necho 77 > {pid}\n",
                argv = argv_file(&dir).display(),
                pid = pid_file(&dir, Task::Exec).display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let argv = vec!["cat".to_string(), "/tmp/ready".to_string()];
        let (pid, mut out) = start_exec(&c, &script, "abc", &argv).unwrap();
        assert_eq!(pid, Pid::from_raw(77));
        assert!(!argv_file(&dir).exists(), "the argv file is removed");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut out, &mut text).unwrap();
        assert_eq!(text, "[\"cat\",\"/tmp/ready\"]err\n");
        assert!(read_argv(&argv_file(&dir)).is_err());
    }

    #[test]
    fn the_probe_runs_the_check_without_a_terminal() {
        let mut spec = oci_spec::runtime::Spec::default();
        let mut process = oci_spec::runtime::Process::default();
        process.set_terminal(Some(true));
        process.set_cwd("/srv".into());
        spec.set_process(Some(process));
        let check = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            ..Default::default()
        };
        let p = probe_process(&spec, check.argv());
        assert_eq!(p.args().clone().unwrap(), vec!["/bin/sh", "-c", "true"]);
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.cwd(), Path::new("/srv"));
    }
}

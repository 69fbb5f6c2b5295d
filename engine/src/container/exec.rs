//! `berth exec`: another process in a running container, through the runtime library's
//! exec. Docker's rules: the container's environment with `-e` values replacing the same
//! names (and `TERM=xterm` with a terminal), its working directory unless `-w`, its user
//! unless `-u` (resolved in the container's own `/etc/passwd`). A command that is missing or
//! not executable is refused before anything runs, with Docker's exit codes 127 and 126.
//!
//! [`exec_probe`] is the other way in, for callers that must not fork (the multi-threaded
//! daemon's `exec` probes): the container's monitor runs the command, as it runs health
//! checks, and answers with its exit code and output.

use std::path::PathBuf;
use std::time::Duration;

use berth_runtime::spec::DEFAULT_PATH;

use super::control::{self, ControlError, ExecOutcome, Reply, Request};
use super::state::Status;
use super::{ContainerConfig, ContainerError, Containers};

/// How much longer than its command's timeout an [`exec_probe`] waits for the monitor's
/// answer (starting the command and reaping it take time too).
const ANSWER_GRACE: Duration = Duration::from_secs(10);

/// What an [`exec_probe`]'s command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutput {
    /// Its exit code (128+n when killed by signal n).
    pub exit_code: i32,
    /// Its stdout and stderr, the first [`MAX_OUTPUT`](super::health::MAX_OUTPUT) bytes.
    pub output: String,
}

/// Why an [`exec_probe`] gave no exit code.
#[derive(Debug, thiserror::Error)]
pub enum ExecProbeError {
    /// The monitor could not be asked, or refused (the container is not running, the
    /// command could not be started, too many run already).
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The command ran past its timeout and was killed.
    #[error("container {id}: command timed out after {}s", timeout.as_secs_f64())]
    TimedOut {
        /// The container id.
        id: String,
        /// The timeout it had.
        timeout: Duration,
    },
    /// The monitor's answer said nothing of the command.
    #[error("container {id}: the monitor's answer has no exec result")]
    NoOutcome {
        /// The container id.
        id: String,
    },
}

/// Runs `argv` in running container `id` through its monitor (the container's process
/// settings, no terminal), killing it after `timeout`; returns its exit code and output.
/// Blocks until it ended: call it from a thread that may wait. Nothing is forked in the
/// caller, so a multi-threaded process may use it.
pub fn exec_probe(
    id: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<ProbeOutput, ExecProbeError> {
    let request = Request::Exec {
        argv: argv.to_vec(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let (_conn, reply) = control::request_within(id, &request, timeout + ANSWER_GRACE)?;
    probe_output(id, reply, timeout)
}

/// What the monitor's (positive) answer to an exec says.
fn probe_output(id: &str, reply: Reply, timeout: Duration) -> Result<ProbeOutput, ExecProbeError> {
    match reply.exec {
        Some(ExecOutcome::Exited { code, output }) => Ok(ProbeOutput {
            exit_code: code,
            output,
        }),
        Some(ExecOutcome::TimedOut) => Err(ExecProbeError::TimedOut {
            id: id.to_string(),
            timeout,
        }),
        None => Err(ExecProbeError::NoOutcome { id: id.to_string() }),
    }
}

/// Errors from `exec`, each with the exit code Docker gives it.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The container could not be used (not running included).
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The command does not exist in the container.
    #[error("container {id}: exec: {command:?}: {reason}")]
    NotFound {
        /// The container's short id.
        id: String,
        /// The command as given.
        command: String,
        /// What was looked at.
        reason: String,
    },
    /// The command exists but cannot be executed.
    #[error("container {id}: exec: {command:?}: permission denied (not an executable file)")]
    NotExecutable {
        /// The container's short id.
        id: String,
        /// The command as given.
        command: String,
    },
}

impl ExecError {
    /// The exit code `berth exec` ends with: 127 for a missing command, 126 for one that
    /// cannot be executed, 126 for other failures to start it (as Docker).
    pub fn exit_code(&self) -> u8 {
        match self {
            ExecError::NotFound { .. } => 127,
            ExecError::NotExecutable { .. } | ExecError::Container(_) => 126,
        }
    }
}

/// What `berth exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// `-e NAME=value` (or `NAME` alone, taken from berth's own environment).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u user[:group]`.
    pub user: Option<String>,
    /// `-t`: a pty, proxied to the caller's stdio.
    pub tty: bool,
    /// `-d`: return once it has started.
    pub detach: bool,
}

/// Runs `opts.cmd` in container `config`; returns its exit code (0 when detached). The
/// caller must be single-threaded (the runtime forks).
pub fn exec(
    c: &Containers,
    config: &ContainerConfig,
    opts: &ExecOptions,
) -> Result<i32, ExecError> {
    let not_running = || ContainerError::WrongState {
        id: config.id.clone(),
        reason: "container is not running".into(),
    };
    let state = c.state(&config.id)?;
    let pid = match state.pid {
        Some(pid) if state.status == Status::Running && state.is_running() => pid,
        _ => return Err(not_running().into()),
    };
    if opts.cmd.is_empty() {
        return Err(ContainerError::WrongState {
            id: config.id.clone(),
            reason: "exec needs a command".into(),
        }
        .into());
    }
    if opts.detach && opts.tty {
        return Err(ContainerError::WrongState {
            id: config.id.clone(),
            reason: "exec -d cannot hold a terminal (-t)".into(),
        }
        .into());
    }
    let _span = tracing::info_span!("exec", container = config.short_id()).entered();
    let bundle = c.dir(&config.id).join("bundle/config.json");
    let spec = oci_spec::runtime::Spec::load(&bundle).map_err(|e| {
        ContainerError::Monitor(format!(
            "container {}: bundle {}: {e}",
            config.short_id(),
            bundle.display()
        ))
    })?;
    let mut process = spec.process().clone().unwrap_or_default();
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let env = exec_env(process.env().as_deref().unwrap_or(&[]), &opts.env, opts.tty);
    check_command(&root, &opts.cmd[0], &env, config)?;
    if let Some(user) = &opts.user {
        let ids = berth_image::users::process_user(&root, user).map_err(ContainerError::from)?;
        let mut u = process.user().clone();
        u.set_uid(ids.uid);
        u.set_gid(ids.gid);
        u.set_additional_gids(Some(ids.additional_gids));
        process.set_user(u);
    }
    if let Some(w) = opts.workdir.as_ref().filter(|w| !w.is_empty()) {
        process.set_cwd(PathBuf::from(w));
    }
    process.set_args(Some(opts.cmd.clone()));
    process.set_env(Some(env));
    process.set_terminal(Some(opts.tty));
    let runtime_opts = berth_runtime::container::ExecOptions {
        id: config.id.clone(),
        process,
        console_socket: None,
        pid_file: None,
        detach: opts.detach,
        preserve_fds: 0,
    };
    let code = c.runtime().exec(&runtime_opts).map_err(|e| match e {
        berth_runtime::ContainerError::NotExist(_)
        | berth_runtime::ContainerError::WrongStatus(_) => not_running(),
        e => e.into(),
    })?;
    Ok(code)
}

/// Docker's exec environment: the container's, `-e` values replacing the same name (a bare
/// `NAME` takes berth's own value, or is dropped), `TERM=xterm` with a terminal unless set.
fn exec_env(container: &[String], overrides: &[String], tty: bool) -> Vec<String> {
    let key = |kv: &str| kv.split_once('=').map_or(kv, |(k, _)| k).to_string();
    let mut env: Vec<String> = container.to_vec();
    if tty && !env.iter().any(|e| key(e) == "TERM") {
        env.push("TERM=xterm".into());
    }
    for kv in overrides {
        let kv = match kv.split_once('=') {
            Some(_) => kv.clone(),
            None => match std::env::var(kv) {
                Ok(v) => format!("{kv}={v}"),
                Err(_) => continue,
            },
        };
        let k = key(&kv);
        env.retain(|e| key(e) != k);
        env.push(kv);
    }
    env
}

/// Refuses a command that is missing (127) or not executable (126) in the container at
/// `root`, looked up as the runtime will: a path as is, a name in the process's `PATH`.
fn check_command(
    root: &std::path::Path,
    command: &str,
    env: &[String],
    config: &ContainerConfig,
) -> Result<(), ExecError> {
    let not_found = |reason: String| ExecError::NotFound {
        id: config.short_id().to_string(),
        command: command.to_string(),
        reason,
    };
    let root = berth_image::rootpath::Root::open(root).map_err(ContainerError::from)?;
    let executable = |path: &str| -> Result<Option<bool>, ContainerError> {
        Ok(root.stat(path, true).ok().map(|st| {
            berth_image::rootpath::FileType::from_raw_mode(st.st_mode)
                == berth_image::rootpath::FileType::RegularFile
                && st.st_mode & 0o111 != 0
        }))
    };
    if command.contains('/') {
        let path = if command.starts_with('/') {
            command.to_string()
        } else {
            // Relative to the working directory; the runtime checks the rest.
            return Ok(());
        };
        return match executable(&path)? {
            Some(true) => Ok(()),
            Some(false) => Err(ExecError::NotExecutable {
                id: config.short_id().to_string(),
                command: command.to_string(),
            }),
            None => Err(not_found(format!("stat {path}: no such file or directory"))),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        if executable(&format!("{dir}/{command}"))? == Some(true) {
            return Ok(());
        }
    }
    Err(not_found("executable file not found in $PATH".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_probe_answer_becomes_an_output_or_a_typed_error() {
        let reply = |exec| Reply {
            error: None,
            tty: false,
            exec,
        };
        let second = Duration::from_secs(1);
        let exited = ExecOutcome::Exited {
            code: 3,
            output: "nope\n".into(),
        };
        assert_eq!(
            probe_output("c1", reply(Some(exited)), second).unwrap(),
            ProbeOutput {
                exit_code: 3,
                output: "nope\n".into()
            }
        );
        let e = probe_output("c1", reply(Some(ExecOutcome::TimedOut)), second).unwrap_err();
        assert!(matches!(e, ExecProbeError::TimedOut { .. }));
        assert_eq!(e.to_string(), "container c1: command timed out after 1s");
        let e = probe_output("c1", reply(None), second).unwrap_err();
        assert!(matches!(e, ExecProbeError::NoOutcome { .. }));
    }

    #[test]
    fn an_exec_probe_without_a_monitor_is_unreachable() {
        let e = exec_probe(
            "no-such-container-here",
            &["true".into()],
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            matches!(e, ExecProbeError::Control(ControlError::Unreachable { .. })),
            "{e}"
        );
    }
    use std::os::unix::fs::PermissionsExt;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn env_follows_docker() {
        let base = s(&["PATH=/bin", "A=1"]);
        assert_eq!(
            exec_env(&base, &s(&["A=2", "B=3"]), false),
            s(&["PATH=/bin", "A=2", "B=3"])
        );
        assert_eq!(
            exec_env(&base, &[], true),
            s(&["PATH=/bin", "A=1", "TERM=xterm"])
        );
        assert_eq!(
            exec_env(&base, &s(&["BERTH_SURELY_UNSET_VARIABLE"]), false),
            base
        );
    }

    #[test]
    fn missing_and_unexecutable_commands_get_docker_codes() {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(bin.join("data"), "x").unwrap();
        let config = super::super::sample_config();
        let env = s(&["PATH=/bin"]);
        check_command(root.path(), "tool", &env, &config).unwrap();
        check_command(root.path(), "/bin/tool", &env, &config).unwrap();
        let e = check_command(root.path(), "nope", &env, &config).unwrap_err();
        assert_eq!(e.exit_code(), 127, "{e}");
        let e = check_command(root.path(), "/bin/nope", &env, &config).unwrap_err();
        assert_eq!(e.exit_code(), 127, "{e}");
        let e = check_command(root.path(), "/bin/data", &env, &config).unwrap_err();
        assert_eq!(e.exit_code(), 126, "{e}");
        let e = check_command(root.path(), "data", &env, &config).unwrap_err();
        assert_eq!(e.exit_code(), 127, "{e}");
    }
}

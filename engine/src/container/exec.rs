//! `berth exec`: another process in a running container, through the runtime library's
//! exec. Docker's rules: the container's environment with `-e` values replacing the same
//! names (and `TERM=xterm` with a terminal), its working directory unless `-w`, its user
//! unless `-u` (resolved in the container's own `/etc/passwd`). A command that is missing or
//! not executable is refused before anything runs, with Docker's exit codes 127 and 126.

use std::path::PathBuf;

use berth_runtime::spec::DEFAULT_PATH;

use super::state::Status;
use super::{ContainerConfig, ContainerError, Containers};

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

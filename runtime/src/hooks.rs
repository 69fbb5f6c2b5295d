//! OCI hooks: each hook's program runs with the container's state JSON on its
//! stdin, its `args` and `env`, and an optional timeout in seconds.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The program could not be started.
    #[error("{stage} hook {path}: {source}")]
    Spawn {
        /// Which hook list.
        stage: &'static str,
        /// The program.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The hook exited non-zero.
    #[error("{stage} hook {path} failed: {status}: {stderr}")]
    Failed {
        /// Which hook list.
        stage: &'static str,
        /// The program.
        path: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The hook ran longer than its timeout and was killed.
    #[error("{stage} hook {path}: timed out after {secs} seconds")]
    Timeout {
        /// Which hook list.
        stage: &'static str,
        /// The program.
        path: String,
        /// The timeout.
        secs: i64,
    },
}

/// Runs `hooks` in order with `state` (the OCI state JSON) on stdin; stops at the first failure.
pub fn run(stage: &'static str, hooks: &[Hook], state: &str) -> Result<(), HookError> {
    for hook in hooks {
        run_one(stage, hook, state)?;
    }
    Ok(())
}

fn run_one(stage: &'static str, hook: &Hook, state: &str) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or(&[]) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HookError::Spawn {
            stage,
            path: path.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(source) => {
                return Err(HookError::Spawn {
                    stage,
                    path,
                    source,
                })
            }
        }
        if let Some((secs, at)) = deadline {
            if Instant::now() > at {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout { stage, path, secs });
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let out = child
        .wait_with_output()
        .map_err(|source| HookError::Spawn {
            stage,
            path: path.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(HookError::Failed {
            stage,
            path,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
            .env(vec!["GREETING=hi".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn hooks_get_the_state_on_stdin_and_their_env() {
        let dir = std::env::temp_dir().join(format!("berth-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let h = hook(
            &format!("cat > {0}; echo $GREETING >> {0}", out.display()),
            None,
        );
        run("poststart", &[h], r#"{"id":"c1"}"#).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"c1\"}hi\n"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failing_hook_stops_the_list_with_its_stderr() {
        let err = run(
            "prestart",
            &[hook("echo broken >&2; exit 3", None), hook("exit 0", None)],
            "{}",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("prestart hook /bin/sh failed"), "{msg}");
        assert!(msg.ends_with("broken"), "{msg}");
    }

    #[test]
    fn a_slow_hook_is_killed_at_its_timeout() {
        let err = run("poststop", &[hook("sleep 5", Some(1))], "{}").unwrap_err();
        assert!(matches!(err, HookError::Timeout { secs: 1, .. }), "{err}");
    }
}

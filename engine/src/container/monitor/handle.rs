//! The caller's side of a monitor: finding the `berth-monitor` binary, starting it as a
//! [daemon](crate::daemon) for a created container, and reading its reports (`listening`,
//! `started` or `error MESSAGE`, then `exit CODE`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::super::{ContainerError, Containers};
use crate::daemon::{self, Daemon, DaemonError, LogMode};

/// The `berth-monitor` binary installed next to the `berth` binary at `berth`.
pub fn exe_beside(berth: &Path) -> Result<PathBuf, ContainerError> {
    let exe = berth.with_file_name("berth-monitor");
    if exe.exists() {
        Ok(exe)
    } else {
        Err(ContainerError::Monitor(format!(
            "{} not found: berth-monitor is installed next to berth (cargo build -p berth-cli builds both)",
            exe.display()
        )))
    }
}

/// A monitor started by [`spawn`]: read its reports.
#[derive(Debug)]
pub struct MonitorHandle {
    daemon: Daemon,
}

/// Starts `exe --root ROOT <id>` (exe being the `berth-monitor` binary) for a created container, its
/// own diagnostics going to `monitor.log` in the container's directory. With `wait_attach`
/// it listens on the control socket first and starts the container once a client attached
/// (so a foreground `run -it` or `start -a` sees all of its output).
pub fn spawn(
    c: &Containers,
    exe: &Path,
    id: &str,
    wait_attach: bool,
) -> Result<MonitorHandle, ContainerError> {
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(c.root());
    if wait_attach {
        cmd.arg("--wait-attach");
    }
    cmd.arg(id);
    let daemon = daemon::spawn(cmd, &c.dir(id).join("monitor.log"), LogMode::Truncate)
        .map_err(|DaemonError { path, source }| ContainerError::Io { path, source })?;
    Ok(MonitorHandle { daemon })
}

impl MonitorHandle {
    fn expect(&mut self, what: &str) -> Result<(), ContainerError> {
        match self.daemon.next_report() {
            Some(r) if r == what => Ok(()),
            Some(r) => Err(ContainerError::Monitor(
                r.strip_prefix("error ").unwrap_or(&r).to_string(),
            )),
            None => Err(ContainerError::Monitor(
                "exited before starting the container (see monitor.log)".into(),
            )),
        }
    }

    /// For a monitor spawned with `wait_attach`: waits until its control socket listens.
    pub fn listening(&mut self) -> Result<(), ContainerError> {
        self.expect("listening")
    }

    /// Waits until the container runs, or returns why it could not be started.
    pub fn started(&mut self) -> Result<(), ContainerError> {
        self.expect("started")
    }

    /// Leaves the monitor to run the container on its own (reaped in the background).
    pub fn detach(self) {
        self.daemon.reap_in_background();
    }

    /// Waits until the container has exited and been released; returns its exit code.
    pub fn wait(self) -> Result<i32, ContainerError> {
        self.daemon
            .finish()
            .as_deref()
            .and_then(|r| r.strip_prefix("exit "))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| ContainerError::Monitor("exited without reporting an exit code".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in monitor that reports `lines` and exits.
    fn fake_monitor(dir: &Path, lines: &str) -> PathBuf {
        let exe = dir.join("berth-monitor");
        std::fs::write(
            &exe,
            format!("#!/bin/sh\necho \"$@\" >&2\nprintf '{lines}'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        exe
    }

    fn containers() -> (tempfile::TempDir, Containers) {
        let tmp = tempfile::tempdir().unwrap();
        let c = Containers::new(tmp.path().join("root"));
        std::fs::create_dir_all(c.dir("abc")).unwrap();
        (tmp, c)
    }

    #[test]
    fn reports_are_read_in_order_and_the_exit_code_parsed() {
        let (tmp, c) = containers();
        let exe = fake_monitor(tmp.path(), "listening\\nstarted\\nexit 3\\n");
        let mut h = spawn(&c, &exe, "abc", true).unwrap();
        h.listening().unwrap();
        h.started().unwrap();
        assert_eq!(h.wait().unwrap(), 3);
        let log = std::fs::read_to_string(c.dir("abc").join("monitor.log")).unwrap();
        assert!(log.contains("--wait-attach abc"), "{log}");
    }

    #[test]
    fn an_error_report_is_the_error() {
        let (tmp, c) = containers();
        let exe = fake_monitor(tmp.path(), "error port 80 is taken\\n");
        let mut h = spawn(&c, &exe, "abc", false).unwrap();
        let e = h.started().unwrap_err();
        assert_eq!(e.to_string(), "monitor: port 80 is taken");
        let (tmp2, c2) = containers();
        let silent = fake_monitor(tmp2.path(), "");
        let mut h = spawn(&c2, &silent, "abc", false).unwrap();
        assert!(h
            .started()
            .unwrap_err()
            .to_string()
            .contains("see monitor.log"));
    }

    #[test]
    fn the_monitor_is_found_beside_berth() {
        let tmp = tempfile::tempdir().unwrap();
        let berth = tmp.path().join("berth");
        assert!(exe_beside(&berth).is_err());
        fake_monitor(tmp.path(), "");
        assert_eq!(
            exe_beside(&berth).unwrap(),
            tmp.path().join("berth-monitor")
        );
    }
}

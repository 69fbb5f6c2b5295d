//! `kill`: send a signal to the container's init (or, with `--all`, to every
//! process of the container).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::info_span;

use super::state::ContainerStatus;
use super::{cgroup_of, ContainerError, Runtime};

/// Parses a signal as runc does: a name with or without `SIG`, or a number.
pub fn parse_signal(text: &str) -> Result<Signal, ContainerError> {
    let bad = || ContainerError::BadSignal(text.to_string());
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

impl Runtime {
    /// Sends `signal` to container `id`'s init, or to all its processes.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<(), ContainerError> {
        let _span = info_span!("kill", id, ?signal).entered();
        let record = self.dirs.load(id)?;
        let status = self.status_of(&record);
        if status == ContainerStatus::Stopped {
            return Err(ContainerError::WrongStatus("container not running".into()));
        }
        let mut pids = vec![record.pid];
        if all {
            let cgroup = cgroup_of(id, &record.config)?;
            let _ = cgroup.freeze();
            pids.extend(
                cgroup
                    .pids()?
                    .into_iter()
                    .map(|p| p.as_raw())
                    .filter(|p| *p != record.pid),
            );
        }
        for pid in pids {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(e) => return Err(ContainerError::Sys("kill", e)),
            }
        }
        if all && status != ContainerStatus::Paused {
            cgroup_of(id, &record.config)?.thaw()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}

//! `kill`: send a signal to the container's init (or, with `--all`, to every
//! process of the container).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::info_span;

use super::state::ContainerStatus;
use super::{ContainerError, Runtime};

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
            pids.extend(
                container_pids(record.pid)
                    .into_iter()
                    .filter(|p| *p != record.pid),
            );
        }
        for pid in pids {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(e) => return Err(ContainerError::Sys("kill", e)),
            }
        }
        Ok(())
    }
}

/// Every process in the same pid namespace as `init` (host pids).
pub(super) fn container_pids(init: i32) -> Vec<i32> {
    let Ok(ns) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &i32| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|p| p == ns)
        })
        .collect();
    pids.sort();
    pids
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

//! Reading a Pod container's json-file log for the API's `log` subresource: the last lines
//! so far, and when following, what the container writes next until it exits.

use std::time::Duration;

use berth_engine::container::logs::{LogEntry, LogError, LogReader};
use berth_engine::container::state::Status;
use berth_engine::container::Containers;
use tokio::sync::mpsc;

/// How often a followed log is polled for growth.
const POLL: Duration = Duration::from_millis(100);

/// A container's log as read: the text so far and, when following, a receiver of more
/// (closed when the container has exited).
pub struct ContainerLog {
    /// The log so far (after `tail`).
    pub text: String,
    /// More text as it is written, when following.
    pub follow: Option<mpsc::Receiver<String>>,
}

fn render(entries: &[LogEntry], timestamps: bool) -> String {
    let mut out = String::new();
    for e in entries {
        if timestamps {
            out.push_str(&e.time);
            out.push(' ');
        }
        out.push_str(&e.log);
    }
    out
}

/// Reads container `id`'s log: its last `tail` lines (all when `None`), each after its
/// timestamp when `timestamps`; when `follow`, a task polls for more until the container
/// exits or the receiver is dropped (it must be called inside a tokio runtime then).
pub fn read(
    containers: &Containers,
    id: &str,
    tail: Option<usize>,
    timestamps: bool,
    follow: bool,
) -> Result<ContainerLog, LogError> {
    let mut reader = LogReader::new(&containers.log_path(id));
    let entries = reader.read_new()?;
    let skip = tail.map_or(0, |n| entries.len().saturating_sub(n));
    let text = render(&entries[skip..], timestamps);
    if !follow {
        return Ok(ContainerLog { text, follow: None });
    }
    let (tx, rx) = mpsc::channel(16);
    let containers = containers.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        loop {
            let running = matches!(
                containers.state(&id),
                Ok(s) if s.status == Status::Created || (s.status == Status::Running && s.monitor_alive())
            );
            let entries = match reader.read_new() {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, container = %id, "following a pod log failed");
                    return;
                }
            };
            if !entries.is_empty() && tx.send(render(&entries, timestamps)).await.is_err() {
                return;
            }
            if !running || tx.is_closed() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Ok(ContainerLog {
        text,
        follow: Some(rx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(time: &str, log: &str) -> LogEntry {
        serde_json::from_value(serde_json::json!({"time": time, "log": log, "stream": "stdout"}))
            .unwrap()
    }

    #[test]
    fn renders_lines_with_and_without_timestamps() {
        let entries = [
            entry("2026-01-01T00:00:00Z", "a\n"),
            entry("2026-01-01T00:00:01Z", "b\n"),
        ];
        assert_eq!(render(&entries, false), "a\nb\n");
        assert_eq!(render(&entries[1..], true), "2026-01-01T00:00:01Z b\n");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let containers = Containers::new(dir.path().to_path_buf());
        let path = containers.log_path("c1");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let lines: String = ["one", "two", "three"]
            .iter()
            .map(|l| {
                let e = entry("2026-01-01T00:00:00Z", &format!("{l}\n"));
                serde_json::to_string(&e).unwrap() + "\n"
            })
            .collect();
        std::fs::write(&path, lines).unwrap();
        let log = read(&containers, "c1", Some(2), false, false).unwrap();
        assert_eq!(log.text, "two\nthree\n");
        assert!(log.follow.is_none());
        assert_eq!(
            read(&containers, "c1", None, false, false).unwrap().text,
            "one\ntwo\nthree\n"
        );
    }
}

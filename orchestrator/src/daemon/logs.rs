//! The pod `log` subresource: a container's json-file log, found through the pod's
//! `status.containerStatuses[].containerID` (`berth://<container id>`, as the pod controller
//! records it), with `container`, `tailLines`, `timestamps` and `follow`.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::api::Query;
use super::status::ApiError;
use crate::container::logs::{LogEntry, LogReader};
use crate::container::state::Status;
use crate::container::Containers;

/// The prefix of berth container ids in `containerID`.
pub const CONTAINER_ID_PREFIX: &str = "berth://";

/// How often a followed log is polled for growth.
const POLL: Duration = Duration::from_millis(100);

/// The berth container id of container `name` (or the pod's only/default container) of `pod`.
fn container_id(pod: &Value, name: Option<&str>) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let name = match name.filter(|n| !n.is_empty()) {
        Some(n) => n,
        None => match pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
            .as_str()
        {
            Some(d) => d,
            None if names.len() == 1 => names[0],
            None => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    names.join(" ")
                )))
            }
        },
    };
    if !names.contains(&name) {
        return Err(ApiError::bad_request(format!(
            "container {name} is not valid for pod {pod_name}"
        )));
    }
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"].as_str() == Some(name))
        .and_then(|s| s["containerID"].as_str())
        .and_then(|id| id.strip_prefix(CONTAINER_ID_PREFIX))
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "container {name:?} in pod {pod_name:?} is waiting to start: ContainerCreating"
            ))
        })
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

/// What a log request answers: the text so far, and, when following, a receiver of what the
/// container writes next (closed when the container has exited).
pub struct PodLog {
    /// The log so far (after `tailLines`).
    pub text: String,
    /// More text as it is written, when `follow=true`.
    pub follow: Option<mpsc::Receiver<String>>,
}

/// Reads the log of a container of `pod` as the query asks.
pub fn read(containers: &Containers, pod: &Value, q: &Query) -> Result<PodLog, ApiError> {
    let id = container_id(pod, q.get("container"))?;
    let timestamps = q.flag("timestamps");
    let tail = match q.get("tailLines") {
        None => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("tailLines {n:?}: expected a non-negative number"))
        })?),
    };
    let mut reader = LogReader::new(&containers.log_path(&id));
    let entries = reader
        .read_new()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let skip = tail.map_or(0, |n| entries.len().saturating_sub(n));
    let text = render(&entries[skip..], timestamps);
    if !q.flag("follow") {
        return Ok(PodLog { text, follow: None });
    }
    let (tx, rx) = mpsc::channel(16);
    let containers = containers.clone();
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
    Ok(PodLog {
        text,
        follow: Some(rx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_the_container() {
        let pod = json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"containerStatuses": [{"name": "a", "containerID": "berth://abc"}]}});
        assert_eq!(container_id(&pod, Some("a")).unwrap(), "abc");
        let e = container_id(&pod, None).unwrap_err();
        assert!(e.message.contains("choose one of: [a b]"), "{}", e.message);
        assert!(container_id(&pod, Some("b"))
            .unwrap_err()
            .message
            .contains("waiting to start"));
        assert!(container_id(&pod, Some("c"))
            .unwrap_err()
            .message
            .contains("not valid"));
    }
}

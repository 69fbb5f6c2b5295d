//! The pod `log` subresource: the container is found through the pod's
//! `status.containerStatuses[].containerID` (`berth://<container id>`, as the node records
//! it), with `container`, `tailLines`, `timestamps` and `follow`; its log is read by the
//! [`ContainerLogs`] the daemon was assembled with (the node's).

use serde_json::Value;
use tokio::sync::mpsc;

use berth_kube::pod::CONTAINER_ID_PREFIX;

use super::api::Query;
use super::status::ApiError;

/// What a container's log is read from: the node that runs it.
pub trait ContainerLogs: Send + Sync {
    /// The log of container `id` so far (its last `tail` lines, each after its timestamp when
    /// `timestamps`), and when `follow`, a receiver of what it writes next.
    fn read(
        &self,
        request: LogRequest<'_>,
    ) -> Result<PodLog, Box<dyn std::error::Error + Send + Sync>>;
}

/// One log request, as [`ContainerLogs::read`] gets it.
#[derive(Debug, Clone, Copy)]
pub struct LogRequest<'a> {
    /// The berth container id.
    pub id: &'a str,
    /// Only this many last lines.
    pub tail: Option<usize>,
    /// Each line after its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Keep sending what the container writes until it exits.
    pub follow: bool,
}

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

/// What a log request answers: the text so far, and, when following, a receiver of what the
/// container writes next (closed when the container has exited).
pub struct PodLog {
    /// The log so far (after `tailLines`).
    pub text: String,
    /// More text as it is written, when `follow=true`.
    pub follow: Option<mpsc::Receiver<String>>,
}

/// Reads the log of a container of `pod` as the query asks.
pub fn read(logs: &dyn ContainerLogs, pod: &Value, q: &Query) -> Result<PodLog, ApiError> {
    let id = container_id(pod, q.get("container"))?;
    let tail = match q.get("tailLines") {
        None => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("tailLines {n:?}: expected a non-negative number"))
        })?),
    };
    logs.read(LogRequest {
        id: &id,
        tail,
        timestamps: q.flag("timestamps"),
        follow: q.flag("follow"),
    })
    .map_err(|e| ApiError::internal(format!("container {id}: log: {e}")))
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

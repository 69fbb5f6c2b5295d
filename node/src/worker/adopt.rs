//! Adoption after a restart (even after `kill -9`): the berth pods and containers a previous
//! daemon made carry labels naming their Pod, so the worker takes over those whose Pod is
//! still stored, removes the others, and sweeps volumes no pod uses any more.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use berth_engine::container::{self, ContainerConfig};
use berth_engine::pod::PodReport;
use berth_kube::pod::{Container, ContainerStatus, Pod};

use super::runs::{restarts_label, ContainerRun, PodRun};
use super::{blocking, key, now_rfc3339, Node, LABEL_CONTAINER, LABEL_UID};
use crate::volumes;

impl Node {
    /// Takes over the berth pods a previous daemon made; removes those whose Pod is gone.
    pub(super) async fn adopt(&mut self) {
        let stored: HashMap<String, Pod> = self
            .stored_pods()
            .into_iter()
            .map(|p| (key(&p), p))
            .collect();
        let pods = self.pods.clone();
        let Some(Ok(reports)) = blocking(move || pods.list()).await else {
            return;
        };
        // Volumes (a Secret's tmpfs too) of pods with neither a Pod nor a berth pod left.
        let keep: HashSet<String> = stored
            .keys()
            .cloned()
            .chain(
                reports
                    .iter()
                    .filter_map(|r| r.record.labels.get(LABEL_UID).cloned()),
            )
            .collect();
        let root = self.ctx.containers.root().to_path_buf();
        if let Some(Err(e)) = blocking(move || volumes::sweep(&root, &keep)).await {
            tracing::warn!(error = %e, "removing volumes of removed pods");
        }
        for report in reports {
            let Some(uid) = report.record.labels.get(LABEL_UID).cloned() else {
                continue;
            };
            let pod = match stored.get(&uid) {
                Some(p) if !self.running.contains_key(&uid) && report.state.infra_running() => {
                    p.clone()
                }
                _ => {
                    tracing::info!(pod = %report.record.name, "removing an orphaned berth pod");
                    self.teardown_detached(report.record.clone(), Duration::from_secs(2), &uid);
                    continue;
                }
            };
            let status = pod.status.clone().unwrap_or_default();
            let init = pod
                .spec
                .init_containers
                .iter()
                .map(|c| self.adopt_container(c, &status.init_container_statuses, &report))
                .collect();
            let containers = pod
                .spec
                .containers
                .iter()
                .map(|c| self.adopt_container(c, &status.container_statuses, &report))
                .collect();
            let run = PodRun {
                record: report.record.clone(),
                ip: report.state.ip.map(|ip| ip.to_string()),
                start_time: status.start_time.clone().unwrap_or_else(now_rfc3339),
                init,
                containers,
                pod,
                volumes_refreshed: None,
                message: None,
            };
            tracing::info!(pod = %run.record.name, "adopted");
            self.running.insert(uid, run);
        }
    }

    /// The run of container `c` found in the berth pod `report` (the newest berth container
    /// made for it, by restart count; older ones are removed), with what `prev` said of it.
    fn adopt_container(
        &self,
        c: &Container,
        prev: &[ContainerStatus],
        report: &PodReport,
    ) -> ContainerRun {
        let mut cr = ContainerRun::new(&c.name);
        cr.last_terminated = prev
            .iter()
            .find(|s| s.name == c.name)
            .and_then(|s| s.last_state.as_ref())
            .and_then(|s| s.terminated.clone());
        let mine: Vec<&ContainerConfig> = report
            .containers
            .iter()
            .map(|(cfg, _)| cfg)
            .filter(|cfg| cfg.labels.get(LABEL_CONTAINER) == Some(&c.name))
            .collect();
        let (newest, older) = split_newest(mine, |cfg| restarts_label(cfg));
        if let Some(cfg) = newest {
            cr.id = Some(cfg.id.clone());
            cr.image_id = cfg.image_id.clone();
            cr.restart_count = restarts_label(cfg);
            cr.waiting = None;
        }
        for old in older {
            let c2 = self.ctx.containers.clone();
            let old = old.clone();
            tokio::task::spawn_blocking(move || container::remove(&c2, &old, true));
        }
        cr
    }
}

/// The item with the highest `restarts` (the last of equals) and the others.
fn split_newest<T>(mut items: Vec<T>, restarts: impl Fn(&T) -> i32) -> (Option<T>, Vec<T>) {
    items.sort_by_key(|i| restarts(i));
    let newest = items.pop();
    (newest, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_container_is_kept_and_older_ones_go() {
        let (newest, older) = split_newest(vec![("a", 1), ("b", 3), ("c", 0)], |i| i.1);
        assert_eq!(newest, Some(("b", 3)));
        assert_eq!(older, vec![("c", 0), ("a", 1)]);
        let (none, rest) = split_newest(Vec::<(&str, i32)>::new(), |i| i.1);
        assert!(none.is_none() && rest.is_empty());
    }
}

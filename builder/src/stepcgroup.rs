//! The cgroups of RUN steps. A step's container is named `berth-build-<pid>-<step>` after
//! the builder's pid and its cgroup is `/<parent>/<name>` under the installation's cgroup
//! parent (`BERTH_CGROUP_PARENT`, as containers' are). The step's init dies with the
//! builder (`PR_SET_PDEATHSIG`); what a builder killed at the wrong instant still leaves
//! is swept by the next build: [`sweep_stale`] kills the processes of every step cgroup
//! whose builder is gone and removes it, including those older berth versions made at
//! the top of each hierarchy.

use std::path::Path;
use std::time::Duration;

use berth_runtime::cgroups::Cgroup;
use nix::sys::signal::{kill, Signal};

/// How step containers and their cgroups are named.
pub const PREFIX: &str = "berth-build-";

/// Where the v1 hierarchies (or the v2 tree) are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The container id of step `step` of this builder process.
pub fn step_id(step: usize) -> String {
    format!("{PREFIX}{}-{step}", std::process::id())
}

/// The `linux.cgroupsPath` of the step container `id` under cgroup parent `parent`.
pub fn cgroups_path(parent: &str, id: &str) -> String {
    format!("/{}/{id}", parent.trim_matches('/'))
}

/// The builder pid a step container's name carries.
fn builder_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Whether `name` is a step cgroup whose builder is no longer running.
fn is_stale(name: &str) -> bool {
    builder_pid(name).is_some_and(|pid| {
        pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// Kills and removes the step cgroups under `parent` (and at the top of each hierarchy,
/// where berth used to put them) whose builder is gone. Failures are logged: a sweep
/// never fails a build.
pub fn sweep_stale(parent: &str) {
    let parent = parent.trim_matches('/');
    let mut stale: Vec<String> = match Cgroup::open(Some(parent), parent) {
        Ok(cg) => cg
            .child_names()
            .into_iter()
            .filter(|n| is_stale(n))
            .map(|n| cgroups_path(parent, &n))
            .collect(),
        Err(e) => {
            tracing::warn!(parent, error = %e, "cannot open the cgroup parent to sweep build steps");
            Vec::new()
        }
    };
    stale.extend(top_level_stale().into_iter().map(|n| format!("/{n}")));
    for path in stale {
        remove(&path);
    }
}

/// Step cgroups at the top of any hierarchy (berth before they moved under the parent).
fn top_level_stale() -> Vec<String> {
    let mut dirs = vec![Path::new(CGROUP_ROOT).to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(CGROUP_ROOT) {
        dirs.extend(entries.flatten().map(|e| e.path()));
    }
    let mut names: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_stale(n))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The cgroup parent as a build found it. A parent that did not exist when the build
/// began (its first RUN step made it) is removed when the build ends if nothing is in it,
/// so a build leaves the hierarchies as it found them; a parent that was there stays
/// (containers' parent stays until `berth system reset`, as Docker's does).
pub struct ParentCleanup {
    made_here: Option<Cgroup>,
}

impl ParentCleanup {
    /// Notes whether `parent` exists now.
    pub fn new(parent: &str) -> Self {
        let parent = parent.trim_matches('/');
        let made_here = Cgroup::open(Some(parent), parent)
            .ok()
            .filter(|cg| !cg.hierarchies().iter().any(|(_, dir)| dir.exists()));
        ParentCleanup { made_here }
    }
}

impl Drop for ParentCleanup {
    fn drop(&mut self) {
        let Some(cg) = &self.made_here else { return };
        let empty = cg.child_names().is_empty() && cg.pids().is_ok_and(|p| p.is_empty());
        if empty {
            if let Err(e) = cg.remove() {
                tracing::debug!(error = %e, "cannot remove the cgroup parent the build made");
            }
        }
    }
}

/// SIGKILLs everything in the cgroup at `path` until it is empty, then removes it.
fn remove(path: &str) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let cg = match Cgroup::open(Some(path), name) {
        Ok(cg) => cg,
        Err(e) => {
            tracing::warn!(path, error = %e, "cannot open a stale build step's cgroup");
            return;
        }
    };
    for _ in 0..100 {
        match cg.pids() {
            Ok(pids) if pids.is_empty() => break,
            Ok(pids) => {
                for pid in pids {
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
            Err(e) => {
                tracing::warn!(path, error = %e, "cannot list a stale build step's processes");
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::info!(path, "removing a stale build step's cgroup");
    if let Err(e) = cg.remove() {
        tracing::warn!(path, error = %e, "cannot remove a stale build step's cgroup");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_carry_the_builder_pid() {
        let id = step_id(7);
        assert_eq!(builder_pid(&id), Some(std::process::id()));
        assert_eq!(builder_pid("berth-build-42-3"), Some(42));
        assert_eq!(builder_pid("berth-build-x-3"), None);
        assert_eq!(builder_pid("other-42-3"), None);
    }

    #[test]
    fn own_steps_and_foreign_cgroups_are_not_stale() {
        assert!(!is_stale(&step_id(1)));
        assert!(!is_stale("system.slice"));
        // pid_max is at most 2^22: this pid cannot be running.
        assert!(is_stale("berth-build-99999999-1"));
    }

    #[test]
    fn step_cgroups_live_under_the_parent() {
        assert_eq!(
            cgroups_path("berth", "berth-build-1-2"),
            "/berth/berth-build-1-2"
        );
        assert_eq!(cgroups_path("/a/b/", "x"), "/a/b/x");
    }
}

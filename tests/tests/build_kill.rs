//! A SIGKILLed `berth build` leaves nothing running and no cgroup outside the cgroup
//! parent: the RUN step dies with its builder, its cgroup lives under
//! `BERTH_CGROUP_PARENT` (mode 0755), and the next build removes the step cgroup the
//! killed one could not; a parent the build made is removed again when it ends.

mod build_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use build_support::BuildEnv;

/// Pids of live (not zombie) processes whose cgroup names a step of builder `builder`.
fn step_processes(builder: u32) -> Vec<(u32, String)> {
    let marker = format!("berth-build-{builder}-");
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cgroup = fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if cgroup.contains(&marker) && !zombie {
            let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push((pid, comm.trim().to_string()));
        }
    }
    found
}

/// Every cgroup hierarchy's root directory.
fn hierarchies() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/sys/fs/cgroup")];
    dirs.extend(
        fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("cgroup.procs").exists()),
    );
    dirs
}

/// Directories named after a step of builder `builder` directly under `dir`.
fn step_cgroups_in(dir: &Path, builder: u32) -> Vec<PathBuf> {
    let prefix = format!("berth-build-{builder}-");
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills whatever of builder `.0`'s steps still runs and removes its step cgroups (under
/// parent `.1` and at the top of each hierarchy), so a failing run leaves nothing either.
struct StepGuard(u32, String);

impl Drop for StepGuard {
    fn drop(&mut self) {
        for (pid, _) in step_processes(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(200));
        for h in hierarchies() {
            for dir in step_cgroups_in(&h, self.0)
                .into_iter()
                .chain(step_cgroups_in(&h.join(&self.1), self.0))
            {
                let _ = fs::remove_dir(dir);
            }
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killed_build_leaves_no_step_running_and_the_next_build_removes_its_cgroup() {
    let mut env = BuildEnv::new();
    let parent = env.root.private_network().unwrap().cgroup_parent();
    let ctx = env.root.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:latest\nRUN sleep 300\n",
    )
    .unwrap();

    let mut berth = env
        .root
        .berth()
        .args(["build", "--no-cache", ctx.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let builder = berth.id();
    let _guard = StepGuard(builder, parent.clone());
    wait_until("the RUN step's sleep", Duration::from_secs(60), || {
        step_processes(builder).iter().any(|(_, c)| c == "sleep")
    });

    // The step's cgroup is under the parent in every hierarchy, 0755, and nowhere else.
    let mut under_parent = Vec::new();
    for h in hierarchies() {
        assert!(
            step_cgroups_in(&h, builder).is_empty(),
            "a step cgroup at the top of {}",
            h.display()
        );
        under_parent.extend(step_cgroups_in(&h.join(&parent), builder));
    }
    assert!(!under_parent.is_empty(), "no step cgroup under {parent}");
    for dir in &under_parent {
        let mode = fs::metadata(dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{} has mode {mode:o}", dir.display());
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(builder as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    berth.wait().unwrap();
    let start = Instant::now();
    while !step_processes(builder).is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = step_processes(builder);
    assert!(
        left.is_empty(),
        "the killed build's step outlived it: {left:?}"
    );

    // Nobody removed the killed builder's step cgroup: the next build sweeps it (and the
    // scratch), and leaves none of its own.
    assert!(
        under_parent.iter().any(|d| d.exists()),
        "the step cgroup is gone before the next build: {under_parent:?}"
    );
    fs::write(ctx.join("Dockerfile"), "FROM busybox:latest\nRUN true\n").unwrap();
    env.build_ok(&["--no-cache", ctx.to_str().unwrap()]);
    for h in hierarchies() {
        let left = step_cgroups_in(&h.join(&parent), builder);
        assert!(left.is_empty(), "stale step cgroups stay: {left:?}");
    }
    let scratch = env.root.store().join("build");
    let stale: Vec<_> = fs::read_dir(&scratch)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(stale.is_empty(), "build scratch stays: {stale:?}");
    let leftovers = env.root.teardown_private_network();
    assert!(leftovers.is_empty(), "left on the host: {leftovers:?}");
}

#[test]
fn a_build_removes_the_cgroup_parent_it_made() {
    let env = BuildEnv::new();
    let parent = format!("berth-test-build-parent-{}", std::process::id());
    let ctx = env.root.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM busybox:latest\nRUN true\n").unwrap();
    let made = || -> Vec<PathBuf> {
        hierarchies()
            .into_iter()
            .map(|h| h.join(&parent))
            .filter(|d| d.exists())
            .collect()
    };
    assert!(made().is_empty(), "{parent} exists before the build");
    let out = env
        .root
        .berth()
        .env("BERTH_CGROUP_PARENT", &parent)
        .args(["build", "--no-cache", ctx.to_str().unwrap()])
        .output()
        .unwrap();
    let left = made();
    for dir in &left {
        let _ = fs::remove_dir(dir);
    }
    assert!(
        out.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        left.is_empty(),
        "the build left its cgroup parent: {left:?}"
    );
}

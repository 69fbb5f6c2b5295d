//! `berth-monitor --root ROOT [--wait-attach] ID`: the per-container monitor as its own small
//! binary, so each running container costs less than a whole `berth` (no clap, registry
//! client, builder or kube code paged in). `berth run` and `start` find it next to `berth`.
//! `berth-monitor --root ROOT --create|--probe|--exec ID` is the monitor's short-lived helper
//! that creates and starts the container's process, a health check or an `exec` request's
//! command (see
//! `berth_engine::container::monitor::helper`).
//! Its diagnostics go to stderr (the container's `monitor.log`) at the level in `BERTH_LOG`
//! (error, warn, info, debug, trace; warn by default).

mod log;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use berth_engine::container::monitor::{self, helper::Task};
use berth_engine::container::Containers;

fn usage() -> ExitCode {
    eprintln!("usage: berth-monitor --root ROOT [--wait-attach | --create | --probe | --exec] CONTAINER-ID");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // The container's init and health checks are forks of this process: run from a read-only
    // view of the binary so the container cannot overwrite it (CVE-2019-5736).
    if let Err(e) = berth_runtime::sys::protected_exe::ensure_protected(&args) {
        eprintln!("berth-monitor: {e}");
        return ExitCode::FAILURE;
    }
    let mut root: Option<PathBuf> = None;
    let mut wait_attach = false;
    let mut task: Option<Task> = None;
    let mut id: Option<String> = None;
    let mut rest = args.into_iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            Some("--root") => root = rest.next().map(PathBuf::from),
            Some("--wait-attach") => wait_attach = true,
            Some(flag) if task.is_none() && Task::from_flag(flag).is_some() => {
                task = Task::from_flag(flag)
            }
            Some(s) if id.is_none() && !s.starts_with('-') => id = Some(s.to_string()),
            _ => return usage(),
        }
    }
    let (Some(root), Some(id)) = (root, id) else {
        return usage();
    };
    let level = std::env::var("BERTH_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    let _ = tracing::subscriber::set_global_default(log::StderrLog::new(level));
    let containers = Containers::new(root);
    let result = match task {
        Some(task) => monitor::helper::serve(&containers, &id, task),
        // Helpers run from the same protected view of this binary.
        None => monitor::serve(&containers, &id, wait_attach, Path::new("/proc/self/exe")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-monitor: {e}");
            ExitCode::FAILURE
        }
    }
}

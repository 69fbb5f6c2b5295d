//! Start, stop, restart, kill, wait and remove, acting through the container's monitor (its
//! control socket) and on what it records in `state.json`, and the one release every path
//! shares (failed create, exit, `rm -f`): runtime state and cgroup, network attachment,
//! network namespace, rootfs mount. Release is idempotent, so the monitor and `rm -f` may
//! both run it. A container whose monitor was killed keeps running (its port forwards live in
//! the kernel); `stop`, `kill` and `rm -f` then act on it directly and record its end. When
//! its init then ends on its own, its status is unknowable (it was the monitor's child): the
//! first reader of its state records exit 255 ([`settle_lost_exit`]), so every view agrees.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::control::{self, ControlError, Request};
use super::state::{now_rfc3339, State, Status};
use super::{monitor, prepare_start, ContainerConfig, ContainerError, Containers};
use crate::network::netns;

/// How long `rm -f` and the SIGKILL half of `stop` wait for the monitor to finish.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Removes what container `config` holds on the host, keeping its directory (logs, state);
/// it is detached from the network recorded in `config`, not the current settings' one.
pub(super) fn release(c: &Containers, config: &ContainerConfig) -> Result<(), ContainerError> {
    let id = config.id.as_str();
    let mode = config.network_mode();
    let mut first: Option<ContainerError> = None;
    let mut note = |r: Result<(), ContainerError>| {
        if let Err(e) = r {
            tracing::warn!(container = id, error = %e, "release");
            first.get_or_insert(e);
        }
    };
    note(match c.runtime().delete(id, true) {
        Ok(()) | Err(berth_runtime::ContainerError::NotExist(_)) => Ok(()),
        Err(e) => Err(e.into()),
    });
    if mode.attaches() {
        note(
            c.network_of(config)
                .and_then(|net| net.detach(id).map(drop).map_err(Into::into)),
        );
    }
    if mode.own_namespace() {
        let ns = Path::new(netns::DEFAULT_DIR).join(id);
        note(netns::remove(&ns).map(drop).map_err(Into::into));
    }
    let rootfs = c.dir(id).join("rootfs");
    if is_mount_point(&rootfs) {
        note(berth_image::snapshot::mount::unmount(&rootfs).map_err(Into::into));
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether `path` is a mount point in our mount namespace.
pub(super) fn is_mount_point(path: &Path) -> bool {
    let Ok(canonical) = std::fs::canonicalize(path) else {
        return false;
    };
    let Some(wanted) = canonical.to_str() else {
        return false;
    };
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
        info.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .any(|m| m == wanted)
    })
}

/// Sends `signal` to the container's init (Docker's `kill -s`). SIGKILL, or the container's
/// stop signal, also ends its restart policy, as Docker's kill does.
pub fn kill(
    c: &Containers,
    config: &ContainerConfig,
    signal: Signal,
) -> Result<(), ContainerError> {
    let state = c.state(&config.id)?;
    let not_running = || ContainerError::WrongState {
        id: config.id.clone(),
        reason: "container is not running".into(),
    };
    if !state.is_running() {
        return Err(not_running());
    }
    if state.monitor_alive() {
        match control::request(
            &config.id,
            &Request::Kill {
                signal: signal as i32,
            },
        ) {
            Ok(_) => return Ok(()),
            Err(ControlError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match c.runtime().kill(&config.id, signal, false) {
        Ok(()) => Ok(()),
        Err(berth_runtime::ContainerError::NotExist(_)) => Err(not_running()),
        Err(e) => Err(e.into()),
    }
}

/// The stop signal (the image's StopSignal, else SIGTERM), then SIGKILL to every process of
/// the container when it still runs after `timeout`; returns once its exit is recorded. The
/// restart policy no longer applies. A stopped container is left as is.
pub fn stop(
    c: &Containers,
    config: &ContainerConfig,
    timeout: Duration,
) -> Result<(), ContainerError> {
    let state = c.state(&config.id)?;
    if !state.is_running() {
        return Ok(());
    }
    let _span = tracing::info_span!("stop", container = config.short_id()).entered();
    let signal = config.monitor.stop_signal();
    if state.monitor_alive() {
        let request = Request::Stop {
            signal: signal as i32,
            timeout_secs: timeout.as_secs(),
        };
        match control::request(&config.id, &request) {
            Ok(_) => {
                return match wait_exit(c, &config.id, Some(timeout + KILL_WAIT))? {
                    Some(_) => Ok(()),
                    None => Err(ContainerError::WrongState {
                        id: config.id.clone(),
                        reason: format!("did not exit within {}s of SIGKILL", KILL_WAIT.as_secs()),
                    }),
                }
            }
            Err(ControlError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    stop_orphan(c, config, signal, timeout, state.monitor_pid)
}

/// Stops a container whose monitor (`monitor`) is gone and whose init still runs: signals the
/// init directly, waits, releases what it held and records the exit as 128 + the last signal
/// sent (143 after SIGTERM, 137 when SIGKILL was needed), the real status being lost with the
/// monitor.
fn stop_orphan(
    c: &Containers,
    config: &ContainerConfig,
    signal: Signal,
    timeout: Duration,
    monitor: Option<i32>,
) -> Result<(), ContainerError> {
    tracing::info!("the monitor is gone: stopping the container directly");
    let runtime = c.runtime();
    let mut last = signal;
    if let Err(e) = runtime.kill(&config.id, signal, false) {
        tracing::debug!(error = %e, "stop signal");
    }
    if !wait_init_gone(c, &config.id, timeout)? {
        last = Signal::SIGKILL;
        if let Err(e) = runtime.kill(&config.id, Signal::SIGKILL, true) {
            tracing::debug!(error = %e, "SIGKILL");
        }
        if !wait_init_gone(c, &config.id, KILL_WAIT)? {
            return Err(ContainerError::WrongState {
                id: config.id.clone(),
                reason: format!("did not exit within {}s of SIGKILL", KILL_WAIT.as_secs()),
            });
        }
    }
    record_orphan_exit(c, config, 128 + last as i32, true, monitor)
}

/// The exit code recorded for a container whose init exited after its monitor was killed:
/// the real status went with the monitor (containerd's "unknown exit status" is 255 too).
const UNKNOWN_EXIT: i32 = 255;

/// Whether `state` records a running (or restarting) container whose monitor and init are
/// both gone: its exit happened and nobody recorded it.
pub(super) fn exit_lost(state: &State) -> bool {
    matches!(state.status, Status::Running | Status::Restarting)
        && !state.monitor_alive()
        && !state.init_alive()
}

/// Records the exit of container `id` that [`exit_lost`] found lost: 255 for an init that
/// ended after its monitor was killed (a restarting container keeps the exit code its
/// monitor recorded), after releasing what it held. Returns the state as recorded; when
/// the record cannot be made (release failed), the state as it was, and a warning.
pub(super) fn settle_lost_exit(c: &Containers, id: &str) -> Result<State, ContainerError> {
    let dir = c.dir(id);
    // The monitor writes the exit before it goes: re-read once to be sure.
    let state = State::load(&dir)?;
    if !exit_lost(&state) {
        return Ok(state);
    }
    let code = match state.status {
        Status::Restarting => state.exit_code.unwrap_or(UNKNOWN_EXIT),
        _ => UNKNOWN_EXIT,
    };
    tracing::info!(
        container = id,
        code,
        "init gone after its monitor: recording its exit"
    );
    let config = c.config(id)?;
    if let Err(e) = record_orphan_exit(c, &config, code, state.manually_stopped, state.monitor_pid)
    {
        tracing::warn!(container = id, error = %e, "cannot record a lost exit");
        return Ok(state);
    }
    Ok(State::load(&dir)?)
}

/// Does what a killed monitor (`monitor`) no longer can for an init that is gone: releases
/// what the container held and records it exited with `code`. Nothing is recorded when a
/// new monitor took the container over meanwhile (a concurrent `start`).
fn record_orphan_exit(
    c: &Containers,
    config: &ContainerConfig,
    code: i32,
    manually_stopped: bool,
    monitor: Option<i32>,
) -> Result<(), ContainerError> {
    release(c, config)?;
    let mut state = State::load(&c.dir(&config.id))?;
    if state.monitor_pid != monitor || state.status == Status::Exited {
        return Ok(());
    }
    state.status = Status::Exited;
    state.exit_code = Some(code);
    state.pid = None;
    state.monitor_pid = None;
    state.manually_stopped = manually_stopped;
    state.finished_at = Some(now_rfc3339());
    state.save(&c.dir(&config.id))?;
    control::remove_socket_dir(&config.id);
    Ok(())
}

fn wait_init_gone(c: &Containers, id: &str, timeout: Duration) -> Result<bool, ContainerError> {
    let deadline = Instant::now() + timeout;
    loop {
        if !State::load(&c.dir(id))?.init_alive() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a created or exited container under a new monitor (`exe` is the `berth` binary)
/// and returns once it runs.
pub fn start(c: &Containers, config: &ContainerConfig, exe: &Path) -> Result<(), ContainerError> {
    prepare_start(c, config)?;
    let mut handle = monitor::spawn(c, exe, &config.id, false)?;
    handle.started()?;
    handle.detach();
    Ok(())
}

/// `stop` (with `timeout`), then `start`.
pub fn restart(
    c: &Containers,
    config: &ContainerConfig,
    exe: &Path,
    timeout: Duration,
) -> Result<(), ContainerError> {
    stop(c, config, timeout)?;
    start(c, config, exe)
}

/// Waits until container `id` has exited and returns its exit code; `None` when `timeout`
/// passed first. When its monitor was killed, this waits for the init itself; its exit is
/// recorded as [`UNKNOWN_EXIT`] once it is gone (by [`Containers::state`]).
pub fn wait_exit(
    c: &Containers,
    id: &str,
    timeout: Option<Duration>,
) -> Result<Option<i32>, ContainerError> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let state = c.state(id)?;
        if state.status == Status::Exited {
            return Ok(Some(state.exit_code.unwrap_or(-1)));
        }
        if exit_lost(&state) {
            // Recording failed: report what every view shows meanwhile.
            return Ok(Some(UNKNOWN_EXIT));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for the monitor recorded in `id`'s state to exit.
fn wait_monitor_gone(c: &Containers, id: &str) -> Result<(), ContainerError> {
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        match c.state(id) {
            Ok(s) if s.monitor_alive() => {}
            _ => return Ok(()),
        }
        if Instant::now() >= deadline {
            return Err(ContainerError::Monitor(format!(
                "the monitor of container {id} did not finish within {}s",
                KILL_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Removes a container and everything it holds; with `force`, kills it first when running.
pub fn remove(c: &Containers, config: &ContainerConfig, force: bool) -> Result<(), ContainerError> {
    let id = &config.id;
    let _span = tracing::info_span!("rm", container = config.short_id()).entered();
    let state = c.state(id)?;
    if state.is_running() && state.monitor_alive() {
        if !force {
            return Err(ContainerError::WrongState {
                id: id.clone(),
                reason: "cannot remove a running container: stop it first or use rm -f".into(),
            });
        }
        // Through the monitor, so its restart policy does not start it again.
        let stop_now = Request::Stop {
            signal: Signal::SIGKILL as i32,
            timeout_secs: 0,
        };
        if let Err(e) = control::request(id, &stop_now) {
            tracing::debug!(error = %e, "stop through the monitor");
        }
        if let Err(e) = c.runtime().kill(id, Signal::SIGKILL, true) {
            tracing::debug!(error = %e, "SIGKILL");
        }
        wait_monitor_gone(c, id)?;
    } else if state.monitor_alive() {
        // Exited and finishing its release, or still starting the container.
        wait_monitor_gone(c, id)?;
    }
    if state.is_running() && !force {
        return Err(ContainerError::WrongState {
            id: id.clone(),
            reason: "cannot remove a running container: stop it first or use rm -f".into(),
        });
    }
    release(c, config)?;
    control::remove_socket_dir(id);
    c.records().remove(id)?;
    c.release_name(&config.name, id);
    tracing::info!("removed");
    Ok(())
}

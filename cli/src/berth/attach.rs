//! Attaching to a container through its monitor's control socket (`attach`, `run -it`,
//! `start -a`), and `start` and `restart`. With a terminal, ours goes into raw mode, window
//! size changes are passed on, and ctrl-p ctrl-q detaches, leaving the container running.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_engine::container::control::{self, Request};
use berth_engine::container::{self, monitor, ContainerConfig, Stream};
use clap::Args;

use crate::containers::{each, monitor_exe, open};
use crate::Globals;

/// Docker's default detach keys: ctrl-p, ctrl-q.
const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// `berth attach`.
#[derive(Args)]
pub struct AttachArgs {
    /// Do not pass our stdin on.
    #[arg(long)]
    no_stdin: bool,
    /// The container.
    container: String,
}

/// `berth start`.
#[derive(Args)]
pub struct StartArgs {
    /// Attach to its output (and wait for it to exit).
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach stdin too.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth restart`.
#[derive(Args)]
pub struct RestartArgs {
    /// Seconds to wait after the stop signal before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Asks `config`'s monitor to attach us (with our stdin when `stdin` and the container keeps
/// its stdin open).
pub fn connect(config: &ContainerConfig, stdin: bool) -> Result<UnixStream> {
    let (conn, _) = control::request(
        &config.id,
        &Request::Attach {
            stdin: stdin && config.monitor.open_stdin,
        },
    )?;
    Ok(conn)
}

/// Copies the attached streams to ours until the container's output ends; returns true when
/// the user detached with ctrl-p ctrl-q instead.
pub fn stream(id: &str, conn: UnixStream, tty: bool, stdin: bool) -> Result<bool> {
    let id_conn = conn.try_clone().context("control socket")?;
    let detached = Arc::new(AtomicBool::new(false));
    let _raw = (tty && stdin).then(berth_runtime::tty::RawMode::enter);
    if tty {
        pass_window_size(id.to_string())?;
    }
    if stdin {
        let (mut to_container, detached) = (id_conn, detached.clone());
        std::thread::spawn(move || copy_stdin(&mut to_container, &detached));
    }
    let mut out = std::io::stdout();
    if tty {
        let mut conn = conn;
        let mut buf = [0u8; 32 * 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
    } else {
        let mut frames = control::frames(conn);
        while let Ok(Some((stream, bytes))) = control::read_frame(&mut frames) {
            match stream {
                Stream::Stdout => {
                    let _ = out.write_all(&bytes);
                    let _ = out.flush();
                }
                Stream::Stderr => {
                    let _ = std::io::stderr().write_all(&bytes);
                }
            }
        }
    }
    Ok(detached.load(Ordering::SeqCst))
}

/// Our stdin to the container until EOF (then its stdin is closed) or the detach keys.
fn copy_stdin(conn: &mut UnixStream, detached: &AtomicBool) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    let mut held = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = conn.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => n,
        };
        let mut send = Vec::with_capacity(n + 1);
        for &b in &buf[..n] {
            if held {
                held = false;
                if b == DETACH_KEYS[1] {
                    detached.store(true, Ordering::SeqCst);
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return;
                }
                send.push(DETACH_KEYS[0]);
            }
            if b == DETACH_KEYS[0] {
                held = true;
            } else {
                send.push(b);
            }
        }
        if conn.write_all(&send).is_err() {
            return;
        }
    }
}

/// Sends our terminal's size now and on every SIGWINCH.
fn pass_window_size(id: String) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let send = move || {
        let stdin = std::io::stdin();
        if let Some((rows, cols)) = berth_runtime::tty::window_size(stdin.as_fd()) {
            let _ = control::request(&id, &Request::Resize { rows, cols });
        }
    };
    send();
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    mask.thread_block().context("block SIGWINCH")?;
    std::thread::spawn(move || {
        while mask.wait().is_ok() {
            send();
        }
    });
    Ok(())
}

/// `berth attach`: streams a running container's output (and our stdin to it) until it
/// exits, then exits with its code; ctrl-p ctrl-q detaches.
pub fn attach(g: &Globals, a: AttachArgs) -> Result<ExitCode> {
    let c = open(g)?;
    let config = c.lookup(&a.container)?;
    if !c.state(&config.id)?.is_running() {
        bail!("you cannot attach to a stopped container, start it first");
    }
    let conn = connect(&config, !a.no_stdin)?;
    let stdin = !a.no_stdin && config.monitor.open_stdin;
    if stream(&config.id, conn, config.monitor.tty, stdin)? {
        return Ok(ExitCode::SUCCESS);
    }
    exit_code_of(&c, &config)
}

fn exit_code_of(c: &container::Containers, config: &ContainerConfig) -> Result<ExitCode> {
    let code = container::wait_exit(c, &config.id, Some(Duration::from_secs(10)))?.unwrap_or(0);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// `berth start`: starts created or exited containers under new monitors; with `-a`,
/// attaches to the one given and exits with its code.
pub fn start(g: &Globals, a: StartArgs) -> Result<ExitCode> {
    let exe = monitor_exe()?;
    if !a.attach {
        return each(g, &a.containers, |c, config| {
            if c.state(&config.id)?.is_running() {
                return Ok(());
            }
            if let Some(pod) = &config.pod {
                crate::pods::start_infra(c, pod)?;
            }
            Ok(container::start(c, config, &exe)?)
        });
    }
    let [name] = a.containers.as_slice() else {
        bail!("you cannot start and attach multiple containers at once");
    };
    let c = open(g)?;
    let config = c.lookup(name)?;
    if let Some(pod) = &config.pod {
        crate::pods::start_infra(&c, pod)?;
    }
    container::prepare_start(&c, &config)?;
    let mut handle = monitor::spawn(&c, &exe, &config.id, true)?;
    handle.listening()?;
    let conn = connect(&config, a.interactive)?;
    handle.started()?;
    let stdin = a.interactive && config.monitor.open_stdin;
    if stream(&config.id, conn, config.monitor.tty, stdin)? {
        return Ok(ExitCode::SUCCESS);
    }
    let code = handle.wait()?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// `berth restart`: stop (SIGKILL after `-t`), then start.
pub fn restart(g: &Globals, a: RestartArgs) -> Result<ExitCode> {
    let exe = monitor_exe()?;
    let t = Duration::from_secs(a.time);
    each(g, &a.containers, |c, config| {
        if let Some(pod) = &config.pod {
            crate::pods::start_infra(c, pod)?;
        }
        Ok(container::restart(c, config, &exe, t)?)
    })
}

//! The container's init process: runs in the forked child, sets up namespaces,
//! the root filesystem and the terminal, reports to the runtime over the
//! channel, waits on the start barrier (`exec.fifo`), then execs the process.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::Process;

use super::channel::{Channel, ChannelError, FromInit};
use crate::confine::{ConfineError, Confinement};
use crate::namespaces::{self, NamespaceError, NamespacePlan};
use crate::rootfs::{self, RootfsConfig, RootfsError};
use crate::sys::{Linux, SysError, Syscall};
use crate::tty::{self, TtyError};

/// Why init could not start the container's process.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Talking to the runtime failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A namespace could not be joined or set up.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// The root filesystem could not be built.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// The terminal could not be set up.
    #[error(transparent)]
    Tty(#[from] TtyError),
    /// The process's cwd is not a directory inside the container.
    #[error("cwd {0}: not a directory inside the container")]
    BadCwd(String),
    /// The command was not found (runc's wording, which podman maps to 127).
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    /// The process has no args.
    #[error("process args must not be empty")]
    NoArgs,
    /// A string with a NUL byte in args or env.
    #[error("process {0} contains a NUL byte")]
    Nul(&'static str),
    /// The start barrier failed.
    #[error("waiting for start on exec.fifo: {0}")]
    Fifo(std::io::Error),
    /// rlimits, user, capabilities, no_new_privs or seccomp failed.
    #[error(transparent)]
    Confine(#[from] ConfineError),
    /// execve failed.
    #[error("exec {path}: {source}")]
    Exec {
        /// The resolved program.
        path: String,
        /// Why.
        #[source]
        source: nix::Error,
    },
}

/// What init needs, prepared by the runtime before the fork.
pub struct InitConfig {
    /// Namespaces to join (the new ones come from clone flags).
    pub namespaces: NamespacePlan,
    /// The root filesystem to build; None for `exec` into an existing container.
    pub rootfs: Option<RootfsConfig>,
    /// The process to run.
    pub process: Process,
    /// rlimits, user, capabilities, no_new_privs and seccomp, compiled before the fork.
    pub confinement: Confinement,
    /// `hostname`, set when the container has its own UTS namespace.
    pub hostname: Option<String>,
    /// `domainname`, likewise.
    pub domainname: Option<String>,
    /// `linux.sysctl`.
    pub sysctl: Vec<(String, String)>,
    /// O_PATH fd of `exec.fifo`, the start barrier; None for `exec`.
    pub exec_fifo: Option<OwnedFd>,
    /// The connected console socket when `process.terminal` is set.
    pub console_socket: Option<OwnedFd>,
    /// Number of fds after stdio that the process inherits (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Signal the process gets when the thread that forked it dies (`PR_SET_PDEATHSIG`),
    /// so a container run in the foreground dies with its caller even when that caller
    /// is SIGKILLed (build steps). Set again after the credentials change, which clears it.
    pub parent_death_signal: Option<nix::sys::signal::Signal>,
}

/// Runs init in the forked child and never returns: on failure the error is
/// sent to the runtime (or printed when nobody listens) and the child exits 1.
pub fn run(cfg: InitConfig, chan: Channel) -> ! {
    let err = match setup_and_exec(cfg, &chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = err.to_string();
    if chan
        .send_to_runtime(&FromInit::Failed(msg.clone()))
        .is_err()
    {
        let _ = writeln!(std::io::stderr(), "berth-runtime init: {msg}");
    }
    // SAFETY: _exit takes an int and never returns, so no Rust value is used after it;
    // unlike exit it runs no atexit handlers and flushes no stdio buffers, which this
    // forked child shares copies of with the parent and must not run or write twice.
    unsafe {
        libc::_exit(if matches!(err, InitError::NotFound(_)) {
            127
        } else {
            1
        })
    }
}

fn setup_and_exec(cfg: InitConfig, chan: &Channel) -> Result<Infallible, InitError> {
    // Another container process must not reach our binary through
    // /proc/<pid>/exe while we are still the runtime (CVE-2019-5736).
    // SAFETY: PR_SET_DUMPABLE takes integer arguments only (no pointer is read or
    // written) and changes nothing but this process's dumpable flag.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    set_parent_death_signal(cfg.parent_death_signal)?;
    chan.recv_from_runtime()?;
    for (flag, path) in &cfg.namespaces.join {
        if *flag != CloneFlags::CLONE_NEWPID {
            namespaces::join(*flag, path)?;
        }
    }
    if cfg.namespaces.has(CloneFlags::CLONE_NEWUSER) {
        // Become root of the user namespace (its maps are written by now), so
        // files made during setup belong to a mapped id.
        let root_gid = nix::unistd::Gid::from_raw(0);
        let root_uid = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresgid(root_gid, root_gid, root_gid)
            .map_err(|e| SysError::new("setresgid", Path::new("0"), e))?;
        nix::unistd::setresuid(root_uid, root_uid, root_uid)
            .map_err(|e| SysError::new("setresuid", Path::new("0"), e))?;
    }
    let _ = nix::unistd::setsid();
    if cfg.namespaces.new.contains(CloneFlags::CLONE_NEWNET) {
        namespaces::loopback_up()?;
    }
    let sys = Linux;
    if let Some(rootfs_cfg) = &cfg.rootfs {
        rootfs::prepare(&sys, rootfs_cfg)?;
        rootfs::enter(&sys, rootfs_cfg)?;
    }
    if let Some(socket) = &cfg.console_socket {
        let size = cfg
            .process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        tty::setup_console(socket, size)?;
    }
    if let Some(name) = &cfg.hostname {
        sys.sethostname(name)?;
    }
    if let Some(name) = &cfg.domainname {
        sys.setdomainname(name)?;
    }
    for (key, value) in &cfg.sysctl {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        sys.write_file(&path, value)?;
    }
    if let Some(rootfs_cfg) = &cfg.rootfs {
        rootfs::finalize(&sys, rootfs_cfg)?;
    }
    enter_cwd(cfg.process.cwd())?;
    if let Some(mask) = cfg.process.user().umask() {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    } else if cfg.rootfs.is_some() {
        nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    }
    let args = cfg.process.args().clone().unwrap_or_default();
    let env = cfg.process.env().clone().unwrap_or_default();
    let program = resolve_program(args.first().ok_or(InitError::NoArgs)?, &env)?;
    let argv = to_cstrings(&args, "args")?;
    let envp = to_cstrings(&env, "env")?;
    let prog = CString::new(program.as_os_str().as_bytes()).map_err(|_| InitError::Nul("args"))?;

    chan.send_to_runtime(&FromInit::Ready)?;
    if let Some(fifo) = &cfg.exec_fifo {
        wait_for_start(fifo)?;
    }
    cfg.confinement.apply()?;
    // A change of user or group cleared it.
    set_parent_death_signal(cfg.parent_death_signal)?;
    reset_signals();
    close_fds_on_exec(3 + cfg.preserve_fds);
    let Err(source) = nix::unistd::execve(&prog, &argv, &envp);
    Err(InitError::Exec {
        path: program.display().to_string(),
        source,
    })
}

/// Asks the kernel to send `signal` to this process when the thread that forked it
/// dies. A parent that died before the first call is caught by the runtime channel
/// (its end closes, so the next receive fails); one that dies in the instant between
/// a change of credentials and the second call is not, and is left to the caller's
/// clean-up of its cgroups (the builder's stale-step sweep).
fn set_parent_death_signal(signal: Option<nix::sys::signal::Signal>) -> Result<(), InitError> {
    let Some(signal) = signal else {
        return Ok(());
    };
    // SAFETY: PR_SET_PDEATHSIG takes integer arguments only (a valid signal number from
    // `Signal`; no pointer is read or written) and sets this process's death signal.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(SysError::new(
            "prctl(PR_SET_PDEATHSIG)",
            Path::new(signal.as_str()),
            nix::Error::last(),
        )
        .into());
    }
    Ok(())
}

/// Gives the container process default signal dispositions and an empty signal
/// mask: ignored signals survive execve, and the runtime's caller (any Rust
/// program ignores SIGPIPE) must not pass its choices on to the container.
/// The raw rt_sigaction reaches the real-time signals glibc keeps for itself
/// (32 and 33), which its sigaction wrapper refuses to touch.
fn reset_signals() {
    /// The kernel's `struct sigaction` on x86_64 and aarch64.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=libc::SIGRTMAX() {
        // SAFETY: called in the single-threaded forked init just before execve;
        // `default` is a valid kernel sigaction with SIG_DFL and lives across
        // the call, the old action is not asked for, and 8 is the kernel's
        // sigset size. SIGKILL and SIGSTOP return EINVAL, which is ignored.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Changes to the process's cwd and checks the result lies inside the new root:
/// a cwd reached through a leaked host fd shows up as "(unreachable)" (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<(), InitError> {
    let shown = cwd.display().to_string();
    if !cwd.is_absolute() {
        return Err(InitError::BadCwd(shown));
    }
    if nix::unistd::chdir(cwd).is_err() {
        // runc creates a missing cwd; do the same, then enter it.
        std::fs::create_dir_all(cwd).map_err(|_| InitError::BadCwd(shown.clone()))?;
        nix::unistd::chdir(cwd).map_err(|_| InitError::BadCwd(shown.clone()))?;
    }
    match nix::unistd::getcwd() {
        Ok(now) if now.is_absolute() && !now.starts_with("(unreachable)") => Ok(()),
        _ => Err(InitError::BadCwd(shown)),
    }
}

/// Looks `name` up in the process's PATH, inside the container.
fn resolve_program(name: &str, env: &[String]) -> Result<PathBuf, InitError> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(InitError::NotFound(name.to_string()))
}

fn to_cstrings(list: &[String], what: &'static str) -> Result<Vec<CString>, InitError> {
    list.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| InitError::Nul(what)))
        .collect()
}

/// Blocks until `start` opens exec.fifo for reading, then writes one byte.
/// The fifo is reopened through /proc/self/fd because the host path is gone
/// after pivot_root.
fn wait_for_start(fifo: &OwnedFd) -> Result<(), InitError> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(OFlag::O_CLOEXEC.bits())
        .open(path)
        .map_err(InitError::Fifo)?;
    file.write_all(b"0").map_err(InitError::Fifo)
}

/// Marks every fd from `first` up close-on-exec, so nothing of the runtime
/// reaches the container beyond stdio and `--preserve-fds`.
fn close_fds_on_exec(first: u32) {
    // SAFETY: close_range takes integers only; with CLOSE_RANGE_CLOEXEC it closes
    // nothing, it only marks fds close-on-exec, so no `OwnedFd` or `File` anywhere in
    // this process is left holding a closed or reused number.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        // Old kernels: walk /proc/self/fd instead.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            for fd in fds.into_iter().filter(|fd| *fd >= first as i32) {
                // SAFETY: F_SETFD takes integers only and sets the fd's close-on-exec
                // flag without closing it, so whatever owns the fd still holds a valid
                // one; a number closed since the listing just fails with EBADF.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
    for fd in 3..first as i32 {
        // SAFETY: F_SETFD takes integers only and clears the close-on-exec flag of a
        // preserved fd without closing it; a number not open fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_with_a_slash_are_not_looked_up() {
        assert_eq!(resolve_program("./x", &[]).unwrap(), PathBuf::from("./x"));
    }

    #[test]
    fn programs_are_found_on_the_process_path() {
        let dir = std::env::temp_dir().join(format!("berth-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prog = dir.join("tool");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", dir.display())];
        assert_eq!(resolve_program("tool", &env).unwrap(), prog);
        let err = resolve_program("absent-tool", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec: \"absent-tool\": executable file not found in $PATH"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

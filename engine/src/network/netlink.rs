//! Runs rtnetlink requests in the host's network namespace or inside a named one.
//!
//! Why `rtnetlink` rather than spawning `ip` per step: one netlink socket per group of
//! operations instead of a process per step, kernel errors as errno values instead of
//! parsed stderr, and it is the crate the conventions name (`neli` would need every
//! attribute spelled out by hand). It is async, so each group runs on a throwaway
//! current-thread tokio runtime on its own thread: the caller may itself be inside a tokio
//! runtime (the daemon) or fully synchronous (the monitor), and a thread that joins another
//! network namespace with setns(2) never returns to the caller's code.

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use rtnetlink::Handle;

/// Errors from running a netlink session.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket or the runtime driving it could not be created.
    #[error("cannot start a netlink session: {0}")]
    Session(#[source] std::io::Error),
    /// The network namespace file could not be opened.
    #[error("cannot open network namespace {path}: {source}")]
    OpenNetns {
        /// The namespace file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// setns(2) into the network namespace failed.
    #[error("cannot join network namespace {path}: {source}")]
    JoinNetns {
        /// The namespace file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: nix::Error,
    },
    /// The worker thread died before answering.
    #[error("netlink worker thread panicked")]
    Worker,
    /// The kernel refused a request.
    #[error("{what}: {source}")]
    Request {
        /// What was being done, naming the link or address.
        what: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A link that must exist was not found.
    #[error("link {0} not found")]
    LinkNotFound(String),
}

impl NetlinkError {
    /// Builds a `map_err` closure that labels a failed request.
    pub(crate) fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Self {
        let what = what.into();
        move |source| NetlinkError::Request { what, source }
    }
}

/// Whether a netlink error carries the given errno (the kernel sends it negated).
pub(crate) fn is_errno(err: &rtnetlink::Error, errno: i32) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(msg) if msg.raw_code() == -errno)
}

/// Runs `f` with a fresh netlink handle on a worker thread, first joining the network
/// namespace at `netns` when one is given.
pub(crate) fn run<T, F, Fut>(netns: Option<&Path>, f: F) -> Result<T, NetlinkError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, NetlinkError>>,
{
    let ns = match netns {
        Some(path) => Some((
            File::open(path).map_err(|source| NetlinkError::OpenNetns {
                path: path.to_path_buf(),
                source,
            })?,
            path.to_path_buf(),
        )),
        None => None,
    };
    let worker = std::thread::spawn(move || {
        if let Some((file, path)) = ns {
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(|source| NetlinkError::JoinNetns { path, source })?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(NetlinkError::Session)?;
        runtime.block_on(async move {
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(NetlinkError::Session)?;
            let driver = tokio::spawn(connection);
            let result = f(handle).await;
            driver.abort();
            result
        })
    });
    worker.join().map_err(|_| NetlinkError::Worker)?
}

/// The index of the link called `name`, or `None` when there is none.
pub(crate) async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetlinkError> {
    use futures::TryStreamExt;
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(NetlinkError::request(format!("look up link {name}"))(e)),
    }
}

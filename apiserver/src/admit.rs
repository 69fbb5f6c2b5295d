//! Admission of the API's connections, so no client can stop others: at most
//! [`Limits::max_connections`] per listener; a connection that has not yet sent its first
//! request (TLS handshake or request headers outstanding) is "pending" and is the first to
//! go when room is needed; a TLS handshake and each request's headers must arrive within
//! their timeouts; and an `accept` failing for want of file descriptors (EMFILE, ENFILE)
//! closes the oldest pending connection and backs off instead of spinning, logging at most
//! once a second.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{oneshot, Notify};

/// How long a client has for its TLS handshake, by default.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's headers (and how long a kept-alive connection
/// may sit idle), by default: Go's `net/http` servers in Kubernetes use similar bounds.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// File descriptors kept for the daemon's own work (store, containers, logs) when the
/// connection limit is derived from `RLIMIT_NOFILE`.
const RESERVED_FDS: u64 = 128;
/// How long `accept` backs off after running out of file descriptors: briefly when pending
/// connections were closed to free some, longer when there were none to close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_IDLE: Duration = Duration::from_millis(100);
/// How many pending connections one out-of-descriptors failure closes.
const EVICT_BATCH: usize = 16;

/// Bounds on the API's connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections per listener (TCP, unix socket).
    pub max_connections: usize,
    /// Time for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time for a request's headers, and for an idle kept-alive connection.
    pub header_timeout: Duration,
}

impl Limits {
    /// The defaults, with `max_connections` (when not given) half of what the open-file
    /// limit leaves after a reserve for the daemon's own files, shared by both listeners.
    pub fn new(max_connections: Option<usize>) -> Self {
        let derived = || {
            let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024);
            (soft.saturating_sub(RESERVED_FDS) / 2).clamp(16, 16_384) as usize
        };
        Limits {
            max_connections: max_connections.unwrap_or_else(derived).max(1),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

/// The connections of one listener.
pub struct Gate {
    state: Mutex<GateState>,
    freed: Notify,
}

struct GateState {
    max: usize,
    open: usize,
    next_id: u64,
    /// Connections that have not sent a request yet, oldest first, with their eviction signal.
    pending: VecDeque<(u64, oneshot::Sender<()>)>,
    /// Evicted connections not yet gone; their slots were already handed on.
    evicted: HashSet<u64>,
}

impl GateState {
    /// Signals the oldest pending connection to close; its slot is free from now on.
    fn evict_oldest(&mut self) -> bool {
        let Some((id, evict)) = self.pending.pop_front() else {
            return false;
        };
        let _ = evict.send(());
        self.evicted.insert(id);
        self.open = self.open.saturating_sub(1);
        true
    }
}

impl Gate {
    /// A gate letting `max` connections in.
    pub fn new(max: usize) -> Arc<Gate> {
        Arc::new(Gate {
            state: Mutex::new(GateState {
                max,
                open: 0,
                next_id: 0,
                pending: VecDeque::new(),
                evicted: HashSet::new(),
            }),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a just-accepted connection: into a free slot, else into the slot of the oldest
    /// pending connection (closed for it), else it waits until a connection ends.
    pub async fn admit(self: &Arc<Self>) -> Admission {
        loop {
            let freed = self.freed.notified();
            {
                let mut s = self.lock();
                if s.open >= s.max {
                    s.evict_oldest();
                }
                if s.open < s.max {
                    s.open += 1;
                    s.next_id += 1;
                    let id = s.next_id;
                    let (tx, rx) = oneshot::channel();
                    s.pending.push_back((id, tx));
                    return Admission {
                        gate: self.clone(),
                        id,
                        evicted: rx,
                    };
                }
            }
            freed.await;
        }
    }

    /// Closes the oldest pending connection; false when there is none.
    pub fn evict_oldest(&self) -> bool {
        let evicted = self.lock().evict_oldest();
        if evicted {
            self.freed.notify_one();
        }
        evicted
    }

    fn establish(&self, id: u64) {
        self.lock().pending.retain(|(p, _)| *p != id);
    }
}

/// A connection's place at its [`Gate`]; given back on drop.
pub struct Admission {
    gate: Arc<Gate>,
    id: u64,
    evicted: oneshot::Receiver<()>,
}

impl Admission {
    /// Marks the connection as established (it sent a request): no longer evicted for room.
    pub fn established(&self) -> impl Fn() + Send + Sync + 'static {
        let (gate, id) = (self.gate.clone(), self.id);
        move || gate.establish(id)
    }

    /// Resolves when the gate closes this connection to make room for another.
    pub async fn evicted(&mut self) {
        if (&mut self.evicted).await.is_err() {
            // Established (or the gate is gone): never evicted.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.pending.retain(|(p, _)| *p != self.id);
        // An evicted connection's slot was already handed on.
        if !s.evicted.remove(&self.id) {
            s.open = s.open.saturating_sub(1);
        }
        drop(s);
        self.gate.freed.notify_one();
    }
}

/// Logs accept failures at most once a second, counting the ones it kept quiet about.
#[derive(Default)]
pub struct AcceptLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl AcceptLog {
    fn failed(&mut self, listener: &str, err: &std::io::Error) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(listener, error = %err, suppressed = self.suppressed, "accepting a connection failed");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Whether an accept error means the process or system is out of file descriptors or memory.
fn out_of_resources(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Handles a failed `accept`: logs it (rate-limited) and, when descriptors ran out, closes
/// the oldest pending connection of `gates` and backs off so the loop does not spin.
async fn accept_failed(
    err: std::io::Error,
    listener: &str,
    gates: &[&Gate],
    log: &Mutex<AcceptLog>,
) {
    if let Ok(mut log) = log.lock() {
        log.failed(listener, &err);
    }
    if out_of_resources(&err) {
        let mut evicted = 0;
        for gate in gates {
            while evicted < EVICT_BATCH && gate.evict_oldest() {
                evicted += 1;
            }
        }
        let backoff = if evicted > 0 {
            ACCEPT_BACKOFF
        } else {
            ACCEPT_BACKOFF_IDLE
        };
        tokio::time::sleep(backoff).await;
    }
}

/// Accepts the next TCP connection and admits it; `None` after a failure (handled).
pub async fn accept_tcp(
    tcp: &TcpListener,
    gate: &Arc<Gate>,
    others: &Gate,
    log: &Mutex<AcceptLog>,
) -> Option<(TcpStream, Admission)> {
    match tcp.accept().await {
        Ok((stream, _)) => Some((stream, gate.admit().await)),
        Err(e) => {
            accept_failed(e, "tcp", &[gate, others], log).await;
            None
        }
    }
}

/// Accepts the next unix-socket connection and admits it; `None` after a failure (handled).
pub async fn accept_unix(
    unix: &UnixListener,
    gate: &Arc<Gate>,
    others: &Gate,
    log: &Mutex<AcceptLog>,
) -> Option<(UnixStream, Admission)> {
    match unix.accept().await {
        Ok((stream, _)) => Some((stream, gate.admit().await)),
        Err(e) => {
            accept_failed(e, "unix", &[others, gate], log).await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_gate_evicts_the_oldest_pending_connection() {
        let gate = Gate::new(2);
        let mut first = gate.admit().await;
        let second = gate.admit().await;
        second.established()();
        // Full: the third takes the slot of the oldest pending one (the first).
        let third = gate.admit().await;
        tokio::time::timeout(Duration::from_secs(1), first.evicted())
            .await
            .expect("first evicted");
        drop(first);
        assert_eq!(gate.lock().open, 2);
        // Now both are established or pending-but-newest: the third is pending, evicted next.
        third.established()();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "no pending connection to evict: it waits"
        );
        drop(second);
        let fourth = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("admitted once a slot is free")
            .unwrap();
        assert_eq!(gate.lock().open, 2);
        drop((third, fourth));
        assert_eq!(gate.lock().open, 0);
    }

    #[test]
    fn accept_log_is_rate_limited() {
        let mut log = AcceptLog::default();
        let err = std::io::Error::from_raw_os_error(libc::EMFILE);
        for _ in 0..1000 {
            log.failed("tcp", &err);
        }
        assert_eq!(log.suppressed, 999);
        assert!(out_of_resources(&err));
    }

    #[test]
    fn limits_derive_from_the_open_file_limit() {
        assert_eq!(Limits::new(Some(7)).max_connections, 7);
        assert!(Limits::new(None).max_connections >= 16);
    }
}

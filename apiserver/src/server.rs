//! The daemon process: opens the store, serves the API over HTTPS on a loopback TCP port (for
//! kubectl, with the CA and bearer token in the kubeconfig it writes) and over plain HTTP on a
//! unix socket (for the `berth` CLI; mode 0600, so root only), and runs the registered
//! controllers until SIGTERM or SIGINT. Connections are admitted by [`admit`]: limited in
//! number, with handshake and header timeouts, so idle or stalled clients cannot stop others.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};

use super::admission::AdmissionChain;
use super::admit::{self, AcceptLog, Admission, Gate, Limits};
use super::api::{Api, Query, Target};
use super::logs::ContainerLogs;
use super::status::ApiError;
use super::{discovery, kubeconfig, logs, openapi, protobuf, table, tls};
use berth_kube::kinds::{self, Kind};
use berth_objectstore::{Allocator, Controller};
use berth_objectstore::{ObjectStore, StoreError};

/// Largest request body accepted (the API server's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// How the daemon is started.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The berth store root (`$ROOT`); the daemon keeps its state in `$ROOT/daemon`.
    pub root: PathBuf,
    /// Loopback address for the HTTP API (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Bounds on the API's connections.
    pub limits: Limits,
}

impl DaemonOptions {
    /// `$ROOT/daemon`: the store, the socket, the kubeconfig and the token.
    pub fn dir(&self) -> PathBuf {
        self.root.join("daemon")
    }

    /// The unix socket the `berth` CLI talks to.
    pub fn socket(&self) -> PathBuf {
        socket_path(&self.root)
    }
}

/// What the daemon is assembled with (`berth daemon` builds it): the admission chain, the
/// store's allocators, the controllers to run and where container logs are read.
pub struct Plugins {
    /// Defaulters and validators every write passes.
    pub admission: AdmissionChain,
    /// Allocators the store runs under its lock.
    pub allocators: Vec<Allocator>,
    /// Control loops started once the store is open, in order.
    pub controllers: Vec<Controller>,
    /// The `log` subresource's source.
    pub logs: Arc<dyn ContainerLogs>,
}

/// The unix socket of the daemon serving store root `root`.
pub fn socket_path(root: &Path) -> PathBuf {
    root.join("daemon").join("api.sock")
}

/// Errors starting or running the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another daemon holds the store.
    #[error("{path}: another berth daemon is serving this root")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A listener could not be set up.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address or socket path.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The daemon's certificates could not be set up.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A file under `$ROOT/daemon` could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Where a started daemon can be reached, for the caller to print.
#[derive(Debug, Clone)]
pub struct Serving {
    /// The HTTP address (with the port actually bound).
    pub addr: SocketAddr,
    /// The unix socket.
    pub socket: PathBuf,
    /// The kubeconfig written for kubectl.
    pub kubeconfig: PathBuf,
}

struct Shared {
    api: Api,
    logs: Arc<dyn ContainerLogs>,
    token: String,
}

type Body = BoxBody<Bytes, Infallible>;

/// Runs the daemon until SIGTERM or SIGINT; `started` is called once it serves.
pub async fn run(
    opts: DaemonOptions,
    plugins: Plugins,
    started: impl FnOnce(&Serving),
) -> Result<(), DaemonError> {
    let dir = opts.dir();
    std::fs::create_dir_all(&dir).map_err(|source| DaemonError::Io {
        path: dir.clone(),
        source,
    })?;
    let lock_path = dir.join("lock");
    let lock = std::fs::File::create(&lock_path).map_err(|source| DaemonError::Io {
        path: lock_path.clone(),
        source,
    })?;
    fs2::FileExt::try_lock_exclusive(&lock).map_err(|_| DaemonError::Locked {
        path: lock_path.clone(),
    })?;
    let store = ObjectStore::open(&dir.join("store"), plugins.allocators)?;
    let token = kubeconfig::token(&dir).map_err(|source| DaemonError::Io {
        path: dir.join("token"),
        source,
    })?;

    let tcp = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: opts.listen.to_string(),
            source,
        })?;
    let addr = tcp.local_addr().map_err(|source| DaemonError::Listen {
        addr: opts.listen.to_string(),
        source,
    })?;
    let socket = opts.socket();
    // We hold the lock: a socket file left here is from a daemon that is gone.
    let _ = std::fs::remove_file(&socket);
    let unix = bind_unix(&socket)?;
    let pki = tls::load_or_create(&dir.join("pki"))?;
    let kubeconfig =
        kubeconfig::write(&dir, addr, &pki.ca_pem, &token).map_err(|source| DaemonError::Io {
            path: dir.join("kubeconfig"),
            source,
        })?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for c in plugins.controllers {
        tracing::info!(controller = c.name, "starting controller");
        tasks.push(tokio::spawn(c.start(store.clone(), shutdown_rx.clone())));
    }
    let shared = Arc::new(Shared {
        api: Api {
            store,
            admission: plugins.admission,
        },
        logs: plugins.logs,
        token,
    });
    started(&Serving {
        addr,
        socket: socket.clone(),
        kubeconfig,
    });

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| DaemonError::Io {
            path: PathBuf::from("SIGTERM"),
            source,
        })?;
    let limits = opts.limits;
    let (tcp_gate, unix_gate) = (
        Gate::new(limits.max_connections),
        Gate::new(limits.max_connections),
    );
    let accept_log = Mutex::new(AcceptLog::default());
    tracing::info!(
        max_connections = limits.max_connections,
        "accepting connections"
    );
    loop {
        tokio::select! {
            accepted = admit::accept_tcp(&tcp, &tcp_gate, &unix_gate, &accept_log) => {
                if let Some((stream, mut admission)) = accepted {
                    let (acceptor, shared, shutdown) = (pki.acceptor.clone(), shared.clone(), shutdown_rx.clone());
                    tokio::spawn(async move {
                        let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream));
                        tokio::select! {
                            r = handshake => match r {
                                Ok(Ok(tls)) => serve(shared, tls, true, shutdown, admission, limits).await,
                                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!("TLS handshake timed out"),
                            },
                            _ = admission.evicted() => tracing::debug!("closed a connection still in its TLS handshake to make room"),
                        }
                    });
                }
            },
            accepted = admit::accept_unix(&unix, &unix_gate, &tcp_gate, &accept_log) => {
                if let Some((stream, admission)) = accepted {
                    tokio::spawn(serve(shared.clone(), stream, false, shutdown_rx.clone(), admission, limits));
                }
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .is_err()
        {
            tracing::warn!("a controller did not stop within 10s");
        }
    }
    let _ = std::fs::remove_file(&socket);
    drop(lock);
    Ok(())
}

fn bind_unix(path: &Path) -> Result<UnixListener, DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let listener = UnixListener::bind(path).map_err(|source| DaemonError::Listen {
        addr: path.display().to_string(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        DaemonError::Io {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(listener)
}

/// Serves HTTP/1 on one admitted connection until it ends, the daemon stops, or (before its
/// first request) the gate evicts it.
async fn serve<S>(
    shared: Arc<Shared>,
    stream: S,
    tcp: bool,
    mut shutdown: watch::Receiver<bool>,
    mut admission: Admission,
    limits: Limits,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let established = admission.established();
    let service = hyper::service::service_fn(move |req| {
        established();
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req, tcp).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r {
            tracing::debug!(error = %e, "connection ended");
        },
        _ = admission.evicted() => tracing::debug!("closed a connection that sent no request to make room"),
        _ = shutdown.changed() => conn.as_mut().graceful_shutdown(),
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>, tcp: bool) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = match respond(&shared, req, tcp).await {
        Ok(r) => r,
        Err(e) => json_response(e.code, &e.to_status()),
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}

async fn respond(
    shared: &Shared,
    req: Request<Incoming>,
    tcp: bool,
) -> Result<Response<Body>, ApiError> {
    if tcp && !authorized(&shared.token, req.headers().get(AUTHORIZATION)) {
        return Err(ApiError {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".into(),
            details: None,
        });
    }
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let q = Query::parse(req.uri().query());
    let accept = header(&req, hyper::header::ACCEPT);
    let content_type = header(&req, CONTENT_TYPE);
    let as_table = accept.contains("as=Table");
    let body = read_body(req).await?;
    // kubectl's `create namespace|configmap|secret NAME` generators send protobuf only.
    let body = if content_type.contains("protobuf") && !body.is_empty() {
        let obj = protobuf::decode(&body).map_err(|reason| ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!("{content_type}: {reason}; berth's API takes JSON (write a manifest and use `kubectl apply -f` or `kubectl create -f`)"),
            details: None,
        })?;
        Bytes::from(obj.to_string())
    } else {
        body
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();

    let fixed = match segs.as_slice() {
        ["version"] => Some(discovery::version()),
        ["healthz"] | ["readyz"] | ["livez"] => return Ok(text_response(200, "ok".into())),
        ["api"] => Some(discovery::core_versions()),
        ["apis"] => Some(discovery::groups()),
        ["apis", g] => discovery::group(g),
        ["api", v] => discovery::resources("", v),
        ["apis", g, v] => discovery::resources(g, v),
        ["openapi", "v3"] => Some(openapi::index()),
        ["openapi", "v3", rest @ ..] => openapi::document(&rest.join("/")),
        _ => None,
    };
    if let Some(v) = fixed {
        return if method == Method::GET {
            Ok(json_response(200, &v))
        } else {
            Err(ApiError::method_not_allowed(&path))
        };
    }
    let target = route(&segs).ok_or_else(|| ApiError::no_route(&path))?;
    let api = &shared.api;
    match (method, target.name.is_some(), target.sub.as_deref()) {
        (Method::GET, true, Some("log")) if std::ptr::eq(target.kind, &kinds::POD) => {
            let pod = api.get(&Target {
                sub: None,
                ..target.clone()
            })?;
            let log = logs::read(shared.logs.as_ref(), &pod, &q)?;
            Ok(log_response(log))
        }
        (Method::GET, true, _) => {
            let obj = api.get(&target)?;
            if as_table && target.sub.is_none() {
                Ok(json_response(
                    200,
                    &table::table(
                        target.kind,
                        &[obj],
                        json!({}),
                        q.get("includeObject") == Some("Object"),
                    ),
                ))
            } else {
                Ok(json_response(200, &obj))
            }
        }
        (Method::GET, false, None) if q.flag("watch") => watch(api, &target, &q, as_table),
        (Method::GET, false, None) => Ok(json_response(200, &api.list(&target, &q, as_table)?)),
        (Method::POST, false, None) => Ok(json_response(201, &api.create(&target, &body, &q)?)),
        (Method::PUT, true, _) => Ok(json_response(200, &api.replace(&target, &body, &q)?)),
        (Method::PATCH, true, _) => {
            let (obj, created) = api.patch(&target, &body, &content_type, &q)?;
            Ok(json_response(if created { 201 } else { 200 }, &obj))
        }
        (Method::DELETE, true, None) => Ok(json_response(200, &api.delete(&target, &body, &q)?)),
        _ => Err(ApiError::method_not_allowed(&path)),
    }
}

/// Maps `/api/v1/...` and `/apis/G/v1/...` onto a [`Target`].
fn route(segs: &[&str]) -> Option<Target> {
    let (group, rest) = match segs {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, "v1", rest @ ..] => (*g, rest),
        _ => return None,
    };
    let kind = |plural: &str| kinds::by_plural(group, plural);
    let owned = |s: &&str| s.to_string();
    let t =
        |kind: &'static Kind, ns: Option<&&str>, name: Option<&&str>, sub: Option<&&str>| Target {
            kind,
            namespace: ns.map(owned),
            name: name.map(owned),
            sub: sub.map(owned),
        };
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if kind(plural).is_some_and(|k| k.namespaced) && tail.len() <= 2 =>
        {
            Some(t(kind(plural)?, Some(ns), tail.first(), tail.get(1)))
        }
        [plural, tail @ ..] if tail.len() <= 2 => {
            let k = kind(plural)?;
            // A namespaced type without a namespace: list or watch across all namespaces.
            if k.namespaced && !tail.is_empty() {
                return None;
            }
            Some(t(k, None, tail.first(), tail.get(1)))
        }
        _ => None,
    }
}

fn watch(
    api: &Api,
    target: &Target,
    q: &Query,
    as_table: bool,
) -> Result<Response<Body>, ApiError> {
    let from = match q.get("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("resourceVersion {v:?}: expected a number"))
        })?),
    };
    let mut w = api.store.watch(
        target.kind,
        target.namespace.as_deref(),
        q.selector()?,
        from,
    )?;
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30 * 60));
    let kind = target.kind;
    let include_object = q.get("includeObject") == Some("Object");
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut first = true;
        loop {
            let event = tokio::select! {
                e = w.next() => e,
                _ = &mut deadline => return,
                _ = tx.closed() => return,
            };
            let line = match event {
                Ok(Some(e)) => {
                    let object = if as_table {
                        let mut t = table::table(kind, &[e.object], json!({}), include_object);
                        if !first {
                            t["columnDefinitions"] = json!([]);
                        }
                        t
                    } else {
                        e.object
                    };
                    first = false;
                    json!({"type": e.event_type.as_str(), "object": object})
                }
                Ok(None) => return,
                Err(e) => json!({"type": "ERROR", "object": ApiError::from(e).to_status()}),
            };
            let mut bytes = line.to_string().into_bytes();
            bytes.push(b'\n');
            let is_error = line["type"] == "ERROR";
            if tx.send(Bytes::from(bytes)).await.is_err() || is_error {
                return;
            }
        }
    });
    Ok(stream_response("application/json", None, rx))
}

fn log_response(log: logs::PodLog) -> Response<Body> {
    match log.follow {
        None => text_response(200, log.text),
        Some(mut more) => {
            let (tx, rx) = mpsc::channel::<Bytes>(16);
            tokio::spawn(async move {
                while let Some(text) = more.recv().await {
                    if tx.send(Bytes::from(text)).await.is_err() {
                        return;
                    }
                }
            });
            stream_response("text/plain", Some(log.text), rx)
        }
    }
}

fn stream_response(
    content_type: &'static str,
    first: Option<String>,
    rx: mpsc::Receiver<Bytes>,
) -> Response<Body> {
    let head = futures::stream::iter(
        first
            .filter(|f| !f.is_empty())
            .map(|f| Ok(Frame::data(Bytes::from(f)))),
    );
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let body = StreamBody::new(futures::StreamExt::chain(head, rest));
    let mut r = Response::new(BodyExt::boxed(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn text_response(code: u16, text: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text)).boxed());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn header(req: &Request<Incoming>, name: hyper::header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn authorized(token: &str, header: Option<&HeaderValue>) -> bool {
    header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == token)
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(ApiError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!("request body: {e}"),
            details: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let t = route(&["api", "v1", "namespaces", "x", "pods", "p", "log"]).unwrap();
        assert_eq!(t.kind, &kinds::POD);
        assert_eq!(t.namespace.as_deref(), Some("x"));
        assert_eq!(t.name.as_deref(), Some("p"));
        assert_eq!(t.sub.as_deref(), Some("log"));
        let t = route(&["api", "v1", "namespaces", "x"]).unwrap();
        assert_eq!(t.kind, &kinds::NAMESPACE);
        assert_eq!(t.name.as_deref(), Some("x"));
        let t = route(&["api", "v1", "namespaces", "x", "status"]).unwrap();
        assert_eq!(t.kind, &kinds::NAMESPACE);
        assert_eq!(t.sub.as_deref(), Some("status"));
        let t = route(&["apis", "apps", "v1", "deployments"]).unwrap();
        assert_eq!(t.kind, &kinds::DEPLOYMENT);
        assert!(t.namespace.is_none());
        assert!(route(&["apis", "apps", "v1", "pods"]).is_none());
        assert!(route(&["api", "v1", "pods", "p"]).is_none());
        assert!(authorized("t", Some(&HeaderValue::from_static("Bearer t"))));
        assert!(!authorized(
            "t",
            Some(&HeaderValue::from_static("Bearer u"))
        ));
        assert!(!authorized("t", None));
    }
}

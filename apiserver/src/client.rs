//! A client of the daemon's API for the `berth` CLI: plain HTTP over the unix socket
//! (`$ROOT/daemon/api.sock`), or HTTPS to the loopback port trusting the daemon's CA with its
//! bearer token. Calls are blocking (a small runtime per client); API errors come back as the
//! server's `Status` message.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Where the daemon is.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Plain HTTP over a unix socket.
    Socket(PathBuf),
    /// HTTPS to `host:port`, trusting `ca_pem`, with bearer `token`.
    Https {
        /// `127.0.0.1:6443`.
        addr: String,
        /// The daemon's CA certificate.
        ca_pem: String,
        /// The daemon's bearer token.
        token: String,
    },
}

impl Endpoint {
    /// The daemon of store root `root`: `server` (an `https://` URL, or a socket path) or the
    /// root's unix socket. HTTPS uses the CA and token kept in `$ROOT/daemon/`.
    pub fn for_root(root: &Path, server: Option<&str>) -> Result<Endpoint, ClientError> {
        let dir = root.join("daemon");
        match server {
            None => Ok(Endpoint::Socket(super::socket_path(root))),
            Some(url) if url.starts_with("https://") => {
                let read = |name: &str| {
                    let path = dir.join(name);
                    std::fs::read_to_string(&path).map_err(|source| ClientError::Io {
                        what: path.display().to_string(),
                        source,
                    })
                };
                Ok(Endpoint::Https {
                    addr: url
                        .trim_start_matches("https://")
                        .trim_end_matches('/')
                        .to_string(),
                    ca_pem: read("pki/ca.crt")?,
                    token: read("token")?.trim().to_string(),
                })
            }
            Some(url) if url.starts_with("http://") => Err(ClientError::Server(format!(
                "{url}: the daemon serves HTTPS on TCP (or plain HTTP on its unix socket)"
            ))),
            Some(path) => Ok(Endpoint::Socket(PathBuf::from(
                path.trim_start_matches("unix://"),
            ))),
        }
    }

    fn describe(&self) -> String {
        match self {
            Endpoint::Socket(p) => p.display().to_string(),
            Endpoint::Https { addr, .. } => format!("https://{addr}"),
        }
    }
}

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached.
    #[error("cannot reach the berth daemon at {endpoint} (is `berth daemon` running for this --root?): {reason}")]
    Connect {
        /// Where it was looked for.
        endpoint: String,
        /// Why not.
        reason: String,
    },
    /// A local file could not be read, or the runtime could not start.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or started.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server answered with an error `Status`.
    #[error("Error from server ({reason}): {message}")]
    Api {
        /// HTTP status.
        code: u16,
        /// The `Status` reason.
        reason: String,
        /// Its message.
        message: String,
    },
    /// The server's answer made no sense.
    #[error("berth daemon: {0}")]
    Server(String),
}

impl ClientError {
    /// Whether this is a 404 `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { code: 404, .. })
    }
}

/// One answer: status, content type and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// A blocking client of one daemon.
pub struct Client {
    endpoint: Endpoint,
    rt: tokio::runtime::Runtime,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Client {
    /// A client of the daemon at `endpoint`.
    pub fn new(endpoint: Endpoint) -> Result<Client, ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ClientError::Io {
                what: "async runtime".into(),
                source,
            })?;
        Ok(Client { endpoint, rt })
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let endpoint = self.endpoint.describe();
        let fail = |reason: String| ClientError::Connect {
            endpoint: endpoint.clone(),
            reason,
        };
        match &self.endpoint {
            Endpoint::Socket(path) => {
                let s = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                handshake(s).await.map_err(|e| fail(e.to_string()))
            }
            Endpoint::Https { addr, ca_pem, .. } => {
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let config = super::tls::client_config(ca_pem).map_err(|e| fail(e.to_string()))?;
                let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| fail(e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                handshake(tls).await.map_err(|e| fail(e.to_string()))
            }
        }
    }

    fn build(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        accept: &str,
        body: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("accept", accept);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Endpoint::Https { token, .. } = &self.endpoint {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req.body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Server(format!("{method} {path}: {e}")))
    }

    /// Sends one request and reads the whole answer; error statuses become [`ClientError::Api`].
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        accept: &str,
        body: Vec<u8>,
    ) -> Result<Answer, ClientError> {
        let req = self.build(method, path, content_type, accept, body)?;
        self.rt.block_on(async {
            let mut sender = self.connect().await?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| ClientError::Server(format!("{method} {path}: {e}")))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Server(format!("{method} {path}: {e}")))?
                .to_bytes();
            check(status, &body)?;
            Ok(Answer { status, body })
        })
    }

    /// Sends a JSON request and parses the JSON answer.
    pub fn json(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let a = self.request(method, path, content_type, "application/json", bytes)?;
        serde_json::from_slice(&a.body)
            .map_err(|e| ClientError::Server(format!("{method} {path}: answer is not JSON: {e}")))
    }

    /// GETs a streamed answer (a watch, a followed log), handing each chunk to `on_chunk`
    /// until it returns false or the stream ends.
    pub fn stream(
        &self,
        path: &str,
        accept: &str,
        on_chunk: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), ClientError> {
        let req = self.build("GET", path, None, accept, Vec::new())?;
        self.rt.block_on(async {
            let mut sender = self.connect().await?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| ClientError::Server(format!("GET {path}: {e}")))?;
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            if status >= 400 {
                let bytes = body
                    .collect()
                    .await
                    .map_err(|e| ClientError::Server(format!("GET {path}: {e}")))?
                    .to_bytes();
                return check(status, &bytes);
            }
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ClientError::Server(format!("GET {path}: {e}")))?;
                if let Some(data) = frame.data_ref() {
                    if !on_chunk(data) {
                        break;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Starts HTTP/1 on `stream`, driving the connection on a task of its own.
async fn handshake<S>(stream: S) -> Result<Sender, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "daemon connection ended");
        }
    });
    Ok(sender)
}

/// Turns an error status into [`ClientError::Api`] with the `Status` message.
fn check(status: u16, body: &[u8]) -> Result<(), ClientError> {
    if status < 400 {
        return Ok(());
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    Err(ClientError::Api {
        code: status,
        reason: v["reason"].as_str().unwrap_or("Unknown").to_string(),
        message: v["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    })
}

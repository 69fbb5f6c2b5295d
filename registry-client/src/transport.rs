//! The HTTP transport for one registry. It picks the scheme (pinging `/v2/`),
//! adds the `Authorization` header for the request's scopes, refreshes a token
//! the registry rejects with 401, and retries connection errors, 5xx and 429
//! with exponential backoff (honouring `Retry-After`), so callers never see a
//! 401 or a transient failure unless it persists.
//!
//! Every wait is bounded by [`RegistryOptions::timeout`]: connecting (TCP and
//! TLS), a request's progress until its response headers arrive (a body being
//! sent counts as progress), and reading a body ([`Transport::read_limited`]
//! for manifests, [`Transport::body_stream`] for blobs, which fails a body that
//! delivers fewer than [`MIN_RATE`] bytes a second over a window). A timeout is
//! final: it is not retried, so a silent registry costs one timeout, not minutes.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::BodyExt;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use tokio::sync::OnceCell;

use crate::auth::{Authenticator, Challenge, ChallengeError, Credentials, TokenError};
use crate::endpoint::{Endpoint, EndpointError, RegistryOptions};

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The registry could not be reached over any allowed scheme.
    #[error("registry {registry}: cannot connect: {message}")]
    Connect {
        /// The registry host.
        registry: String,
        /// What went wrong on each scheme tried.
        message: String,
    },
    /// HTTPS failed and plain HTTP is not allowed for this registry.
    #[error("registry {registry}: https failed ({message}); if it serves plain HTTP, pass --insecure-registry {registry}")]
    NotInsecure {
        /// The registry host.
        registry: String,
        /// Why HTTPS failed.
        message: String,
    },
    /// A request failed at the connection level after every retry.
    #[error("registry {registry}, repository {repository}: {method} {path}: {message}")]
    Request {
        /// The registry host.
        registry: String,
        /// The repository the request was for.
        repository: String,
        /// The HTTP method.
        method: Method,
        /// The URL path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The registry answered with an error status.
    #[error("registry {registry}, repository {repository}: {method} {path}: {status}{}", if .detail.is_empty() { String::new() } else { format!(": {}", .detail) })]
    Status {
        /// The registry host.
        registry: String,
        /// The repository the request was for.
        repository: String,
        /// The HTTP method.
        method: Method,
        /// The URL path.
        path: String,
        /// The status returned.
        status: StatusCode,
        /// The registry's error codes and messages.
        detail: String,
    },
    /// The registry's authentication challenge could not be understood.
    #[error("registry {registry}: {source}")]
    Challenge {
        /// The registry host.
        registry: String,
        /// The parse error.
        source: ChallengeError,
    },
    /// A token could not be obtained.
    #[error("registry {registry}: {source}")]
    Token {
        /// The registry host.
        registry: String,
        /// The token error.
        source: TokenError,
    },
    /// The registry (or its token server) stopped making progress.
    #[error("registry {registry}: {method} {path}: {what}")]
    Timeout {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: Method,
        /// The URL path.
        path: String,
        /// What did not happen in time ("no response headers within 30s").
        what: String,
    },
    /// A response body is larger than berth accepts for it.
    #[error("registry {registry}: {method} {path}: response body larger than {limit} bytes")]
    TooLarge {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: Method,
        /// The URL path.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// A request body could not be produced (e.g. a blob file could not be opened).
    #[error("registry {registry}: request body for {path}: {source}")]
    Body {
        /// The registry host.
        registry: String,
        /// The URL path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Produces a fresh request body for each attempt.
pub type BodyFn = Arc<dyn Fn() -> std::io::Result<reqwest::Body> + Send + Sync>;

/// One request to send through the transport.
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// A path under the registry (`/v2/...`) or an absolute URL (a `Location`).
    pub target: String,
    /// Scopes the request needs.
    pub scopes: Vec<String>,
    /// Extra headers.
    pub headers: HeaderMap,
    /// The body, rebuilt for each attempt.
    pub body: Option<BodyFn>,
    /// Whether connection errors and 5xx/429 may be retried (not for appends to an upload).
    pub retry: bool,
    /// The repository, for error messages.
    pub repository: String,
}

impl Request {
    /// A retried request without a body.
    pub fn new(
        method: Method,
        target: impl Into<String>,
        repository: &str,
        scopes: Vec<String>,
    ) -> Self {
        Request {
            method,
            target: target.into(),
            scopes,
            headers: HeaderMap::new(),
            body: None,
            retry: true,
            repository: repository.to_string(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: reqwest::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: BodyFn) -> Self {
        self.body = Some(body);
        self
    }
}

/// A connection to one registry, shared by every request of a pull or push.
pub struct Transport {
    endpoint: Endpoint,
    client: reqwest::Client,
    options: RegistryOptions,
    base: OnceCell<String>,
    auth: Authenticator,
}

impl Transport {
    /// Sets up a transport for `endpoint` with the user's credentials for it.
    pub fn new(
        endpoint: Endpoint,
        options: RegistryOptions,
        credentials: Option<Credentials>,
    ) -> Result<Self, TransportError> {
        let client = endpoint.http_client(&options)?;
        Ok(Transport {
            endpoint,
            client,
            options,
            base: OnceCell::new(),
            auth: Authenticator::new(credentials),
        })
    }

    /// The registry this transport talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The options it was built with.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// The scheme and host to use (`https://host` or `http://host`), pinging
    /// `/v2/` once to choose it and to learn the authentication challenge.
    pub async fn base(&self) -> Result<&str, TransportError> {
        self.base
            .get_or_try_init(|| self.ping())
            .await
            .map(String::as_str)
    }

    async fn ping(&self) -> Result<String, TransportError> {
        let mut failures = Vec::new();
        for base in self.endpoint.base_urls() {
            let mut attempt = 0;
            let url = format!("{base}/v2/");
            let reply = loop {
                let sent = self.client.get(&url).send();
                match self.within_timeout(sent, &Activity::new()).await {
                    Some(Ok(r))
                        if retriable_status(r.status()) && attempt < self.options.max_retries => {}
                    Some(Ok(r)) => break Ok(r),
                    Some(Err(e)) => {
                        break Err(self.timeout_message(&e).unwrap_or_else(|| error_chain(&e)))
                    }
                    None => break Err(self.headers_timeout_message(false)),
                }
                tokio::time::sleep(self.backoff(attempt, None)).await;
                attempt += 1;
            };
            match reply {
                Ok(r) if !(r.status().is_success() || r.status() == StatusCode::UNAUTHORIZED) => {
                    failures.push(format!("{base}/v2/: unexpected status {}", r.status()));
                }
                Ok(r) => {
                    let challenge = match r.headers().get(WWW_AUTHENTICATE) {
                        Some(h) if r.status() == StatusCode::UNAUTHORIZED => {
                            Some(Challenge::parse(h.to_str().unwrap_or_default()).map_err(
                                |source| TransportError::Challenge {
                                    registry: self.endpoint.host.clone(),
                                    source,
                                },
                            )?)
                        }
                        _ => None,
                    };
                    tracing::debug!(base = %base, status = %r.status(), ?challenge, "pinged registry");
                    self.auth.set_challenge(challenge);
                    return Ok(base);
                }
                Err(message) => failures.push(format!("{url}: {message}")),
            }
        }
        let message = failures.join("; ");
        // Only a TLS or protocol failure hints at a plain-HTTP registry; a name
        // that does not resolve or a refused connection does not.
        let unreachable = [
            "dns error",
            "Connection refused",
            "timed out",
            " within ",
            "No route to host",
        ]
        .iter()
        .any(|m| message.contains(m));
        if self.endpoint.allow_http || unreachable {
            Err(TransportError::Connect {
                registry: self.endpoint.host.clone(),
                message,
            })
        } else {
            Err(TransportError::NotInsecure {
                registry: self.endpoint.host.clone(),
                message,
            })
        }
    }

    fn backoff(&self, attempt: u32, reply: Option<&Response>) -> Duration {
        if let Some(after) = reply
            .and_then(|r| r.headers().get(RETRY_AFTER))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Duration::from_secs(after.min(60));
        }
        self.options.initial_backoff * 2u32.saturating_pow(attempt.min(6))
    }

    /// Resolves a path or `Location` against the registry's base URL.
    pub async fn url(&self, target: &str) -> Result<String, TransportError> {
        if target.starts_with("http://") || target.starts_with("https://") {
            return Ok(target.to_string());
        }
        let base = self.base().await?;
        Ok(format!("{base}{target}"))
    }

    /// Sends a request: authenticates it, refreshes a rejected token once, and
    /// retries transient failures. Returns the response for any other status;
    /// see [`Transport::check`] to turn an error status into an error.
    pub async fn send(&self, req: &Request) -> Result<Response, TransportError> {
        let url = self.url(&req.target).await?;
        let path = url_path(&url);
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        loop {
            let mut builder = self
                .client
                .request(req.method.clone(), &url)
                .headers(req.headers.clone());
            let token = self.auth.header(&self.client, &req.scopes);
            let header = match tokio::time::timeout(self.options.timeout + SLACK, token).await {
                Err(_) => {
                    return Err(self.timeout_error(
                        req,
                        &path,
                        format!(
                            "no token from the token server within {}",
                            seconds(self.options.timeout)
                        ),
                    ))
                }
                Ok(Ok(h)) => h,
                Ok(Err(e)) if e.is_timeout() => {
                    return Err(TransportError::Token {
                        registry: self.endpoint.host.clone(),
                        source: e,
                    })
                }
                Ok(Err(e)) if e.is_transient() && attempt < self.options.max_retries => {
                    let wait = self.backoff(attempt, None);
                    tracing::info!(error = %e, ?wait, "token server failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                Ok(Err(source)) => {
                    return Err(TransportError::Token {
                        registry: self.endpoint.host.clone(),
                        source,
                    })
                }
            };
            if let Some(h) = header {
                builder = builder.header(AUTHORIZATION, h);
            }
            let activity = Activity::new();
            if let Some(body) = &req.body {
                let body = body().map_err(|source| TransportError::Body {
                    registry: self.endpoint.host.clone(),
                    path: path.clone(),
                    source,
                })?;
                builder = builder.body(activity.watch(body));
            }
            let Some(sent) = self.within_timeout(builder.send(), &activity).await else {
                let what = self.headers_timeout_message(req.body.is_some());
                return Err(self.timeout_error(req, &path, what));
            };
            match sent {
                Ok(reply) if reply.status() == StatusCode::UNAUTHORIZED && !refreshed => {
                    refreshed = true;
                    if let Some(h) = reply
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|h| h.to_str().ok())
                    {
                        let challenge =
                            Challenge::parse(h).map_err(|source| TransportError::Challenge {
                                registry: self.endpoint.host.clone(),
                                source,
                            })?;
                        self.auth.set_challenge(Some(challenge));
                    }
                    tracing::debug!(path = %path, "registry rejected credentials; refreshing token");
                    self.auth.forget(&req.scopes).await;
                }
                Ok(reply)
                    if req.retry
                        && retriable_status(reply.status())
                        && attempt < self.options.max_retries =>
                {
                    let wait = self.backoff(attempt, Some(&reply));
                    tracing::info!(path = %path, status = %reply.status(), ?wait, "registry error; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Ok(reply) => return Ok(reply),
                Err(e) if self.timeout_message(&e).is_some() => {
                    let what = self.timeout_message(&e).unwrap_or_default();
                    return Err(self.timeout_error(req, &path, what));
                }
                Err(e) if req.retry && attempt < self.options.max_retries && !e.is_builder() => {
                    let wait = self.backoff(attempt, None);
                    tracing::info!(path = %path, error = %error_chain(&e), ?wait, "request failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(TransportError::Request {
                        registry: self.endpoint.host.clone(),
                        repository: req.repository.clone(),
                        method: req.method.clone(),
                        path,
                        message: error_chain(&e),
                    })
                }
            }
        }
    }

    /// Sends a request and turns an unsuccessful status into an error.
    pub async fn send_ok(&self, req: &Request) -> Result<Response, TransportError> {
        let reply = self.send(req).await?;
        self.check(req, reply).await
    }

    /// Returns `reply` if its status is a success, else an error naming the
    /// registry, repository, request and the registry's own error message.
    pub async fn check(&self, req: &Request, reply: Response) -> Result<Response, TransportError> {
        if reply.status().is_success() {
            return Ok(reply);
        }
        Err(self.status_error(req, reply).await)
    }

    /// The error for an unexpected response.
    pub async fn status_error(&self, req: &Request, reply: Response) -> TransportError {
        let status = reply.status();
        let path = url_path(reply.url().as_str());
        // Only the start of an error body is shown: read no more than that.
        let body = self
            .read_limited(req, reply, MAX_ERROR_BODY)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        TransportError::Status {
            registry: self.endpoint.host.clone(),
            repository: req.repository.clone(),
            method: req.method.clone(),
            path,
            status,
            detail: error_detail(&body),
        }
    }

    /// A connection-level failure while reading a response body, in the transport's words.
    pub fn body_error(&self, req: &Request, err: &reqwest::Error) -> TransportError {
        TransportError::Request {
            registry: self.endpoint.host.clone(),
            repository: req.repository.clone(),
            method: req.method.clone(),
            path: url_path(&req.target),
            message: error_chain(err),
        }
    }

    /// Reads a whole (small) response body: at most `limit` bytes, all of it
    /// within the timeout. A longer body is an error ([`TransportError::TooLarge`]).
    pub async fn read_limited(
        &self,
        req: &Request,
        reply: Response,
        limit: usize,
    ) -> Result<Vec<u8>, TransportError> {
        let path = url_path(reply.url().as_str());
        let too_large = || TransportError::TooLarge {
            registry: self.endpoint.host.clone(),
            method: req.method.clone(),
            path: path.clone(),
            limit,
        };
        if reply.content_length().is_some_and(|l| l > limit as u64) {
            return Err(too_large());
        }
        let mut stream = reply.bytes_stream();
        let read = async {
            let mut out = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.body_error(req, &e))?;
                if out.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        };
        match tokio::time::timeout(self.options.timeout, read).await {
            Ok(r) => r,
            Err(_) => Err(self.timeout_error(
                req,
                &path,
                format!(
                    "response body not received within {}",
                    seconds(self.options.timeout)
                ),
            )),
        }
    }

    /// The body of `reply` as a stream of chunks that fails when the registry
    /// stalls: fewer than [`MIN_RATE`] bytes a second over a window of the
    /// timeout (or less than the `remaining` bytes still expected). Big bodies
    /// take as long as they need while data keeps coming.
    pub fn body_stream<'a>(
        &'a self,
        req: &'a Request,
        reply: Response,
        remaining: u64,
    ) -> impl Stream<Item = Result<Bytes, TransportError>> + 'a {
        let window = self.options.timeout;
        let per_window = (MIN_RATE as f64 * window.as_secs_f64()) as u64;
        let path = url_path(reply.url().as_str());
        let pace = Pace {
            inner: Box::pin(reply.bytes_stream()),
            remaining,
            window_start: tokio::time::Instant::now(),
            seen: 0,
            done: false,
        };
        futures::stream::unfold(pace, move |mut pace| {
            let path = path.clone();
            async move {
                if pace.done {
                    return None;
                }
                let wanted = per_window.min(pace.remaining).max(1);
                let deadline = pace.window_start + window;
                let item = match tokio::time::timeout_at(deadline, pace.inner.next()).await {
                    Ok(None) => return None,
                    Ok(Some(Ok(chunk))) => {
                        let n = chunk.len() as u64;
                        pace.remaining = pace.remaining.saturating_sub(n);
                        pace.seen += n;
                        if pace.seen >= wanted {
                            // Enough for this window: the next one starts now.
                            pace.window_start = tokio::time::Instant::now();
                            pace.seen = 0;
                        }
                        Ok(chunk)
                    }
                    Ok(Some(Err(e))) => {
                        pace.done = true;
                        Err(self.body_error(req, &e))
                    }
                    Err(_) => {
                        pace.done = true;
                        let what = if pace.seen == 0 {
                            format!("no data for {}", seconds(window))
                        } else {
                            format!(
                                "only {} bytes in {} (slower than {MIN_RATE} bytes/s)",
                                pace.seen,
                                seconds(window)
                            )
                        };
                        Err(self.timeout_error(req, &path, what))
                    }
                };
                Some((item, pace))
            }
        })
    }

    /// Runs `fut` (a request being sent) until it finishes or makes no progress
    /// (no body bytes sent, no response headers) for the timeout; `None` then.
    async fn within_timeout<F: Future>(&self, fut: F, activity: &Activity) -> Option<F::Output> {
        // The connect timeout fires first for a connection that never
        // completes, so its error can say so.
        let limit = self.options.timeout + SLACK;
        let fut = std::pin::pin!(fut);
        let mut fut = fut;
        loop {
            let deadline = activity.last() + limit;
            tokio::select! {
                out = &mut fut => return Some(out),
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if activity.last() + limit <= Instant::now() {
                        return None;
                    }
                }
            }
        }
    }

    fn headers_timeout_message(&self, with_body: bool) -> String {
        let after = seconds(self.options.timeout);
        if with_body {
            format!("no progress sending the request or no response headers within {after}")
        } else {
            format!("no response headers within {after}")
        }
    }

    /// What timed out, for a reqwest error that is a timeout.
    fn timeout_message(&self, err: &reqwest::Error) -> Option<String> {
        if !err.is_timeout() {
            return None;
        }
        let after = seconds(self.options.timeout);
        Some(if err.is_connect() {
            format!("no connection (TCP connect and TLS handshake) within {after}")
        } else {
            format!("timed out after {after}")
        })
    }

    fn timeout_error(&self, req: &Request, path: &str, what: String) -> TransportError {
        TransportError::Timeout {
            registry: self.endpoint.host.clone(),
            method: req.method.clone(),
            path: path.to_string(),
            what,
        }
    }
}

/// Below this many bytes a second (over a window of the timeout), a response
/// body counts as stalled: a registry trickling bytes cannot hold a pull forever.
pub const MIN_RATE: u64 = 1024;

/// How much of an error response's body is read to show its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// How much later than the connect timeout a request's own watchdog fires, so
/// a connection that never completes is reported as such.
const SLACK: Duration = Duration::from_millis(250);

/// `30s`, `1.5s`: a timeout as the user gave it.
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// A body being read, and how much of the current window's bytes came in.
struct Pace {
    inner: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    remaining: u64,
    window_start: tokio::time::Instant,
    seen: u64,
    done: bool,
}

/// When a request last made progress: its start, then every body chunk sent.
#[derive(Clone)]
struct Activity(Arc<Mutex<Instant>>);

impl Activity {
    fn new() -> Self {
        Activity(Arc::new(Mutex::new(Instant::now())))
    }

    fn last(&self) -> Instant {
        match self.0.lock() {
            Ok(t) => *t,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn touch(&self) {
        if let Ok(mut t) = self.0.lock() {
            *t = Instant::now();
        }
    }

    /// `body`, recording each chunk hyper takes from it as progress. A body
    /// already in memory is left as it is, so reqwest still sends its length.
    fn watch(&self, body: reqwest::Body) -> reqwest::Body {
        if body.as_bytes().is_some() {
            return body;
        }
        let activity = self.clone();
        reqwest::Body::wrap(body.map_frame(move |frame| {
            activity.touch();
            frame
        }))
    }
}

fn retriable_status(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT
}

fn url_path(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.path().to_string(),
        Err(_) => url.to_string(),
    }
}

/// The registry's `{"errors":[{"code","message"}]}` body as one line, or the body's start.
fn error_detail(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Errors>(body) {
        Ok(e) => e
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => body.trim().chars().take(200).collect(),
    }
}

/// An error and its causes on one line (reqwest hides the cause in `source()`).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_detail_reads_registry_errors() {
        assert_eq!(
            error_detail(
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#
            ),
            "MANIFEST_UNKNOWN manifest unknown"
        );
        assert_eq!(error_detail("plain text\n"), "plain text");
    }

    #[test]
    fn url_path_strips_host_and_query() {
        assert_eq!(
            url_path("http://h:1/v2/a/blobs/uploads/x?_state=1"),
            "/v2/a/blobs/uploads/x"
        );
    }
}

#[cfg(test)]
#[path = "transport_timeouts.rs"]
mod timeout_tests;

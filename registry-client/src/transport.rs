//! The HTTP transport for one registry. It picks the scheme (pinging `/v2/`),
//! adds the `Authorization` header for the request's scopes, refreshes a token
//! the registry rejects with 401, and retries connection errors, 5xx and 429
//! with exponential backoff (honouring `Retry-After`), so callers never see a
//! 401 or a transient failure unless it persists.

use std::sync::Arc;
use std::time::Duration;

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
            let reply = loop {
                match self.client.get(format!("{base}/v2/")).send().await {
                    Ok(r) if retriable_status(r.status()) && attempt < self.options.max_retries => {
                    }
                    Ok(r) => break Ok(r),
                    Err(e) if e.is_timeout() && attempt < self.options.max_retries => {}
                    Err(e) => break Err(e),
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
                Err(e) => failures.push(format!("{base}: {}", error_chain(&e))),
            }
        }
        let message = failures.join("; ");
        // Only a TLS or protocol failure hints at a plain-HTTP registry; a name
        // that does not resolve or a refused connection does not.
        let unreachable = [
            "dns error",
            "Connection refused",
            "timed out",
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
            let header = match self.auth.header(&self.client, &req.scopes).await {
                Ok(h) => h,
                Err(e) if e.is_transient() && attempt < self.options.max_retries => {
                    let wait = self.backoff(attempt, None);
                    tracing::info!(error = %e, ?wait, "token server failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                Err(source) => {
                    return Err(TransportError::Token {
                        registry: self.endpoint.host.clone(),
                        source,
                    })
                }
            };
            if let Some(h) = header {
                builder = builder.header(AUTHORIZATION, h);
            }
            if let Some(body) = &req.body {
                let body = body().map_err(|source| TransportError::Body {
                    registry: self.endpoint.host.clone(),
                    path: path.clone(),
                    source,
                })?;
                builder = builder.body(body);
            }
            match builder.send().await {
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
        let body = reply.text().await.unwrap_or_default();
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

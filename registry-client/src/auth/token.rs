//! Docker's token protocol: trading credentials for a short-lived Bearer token
//! at the realm a registry's challenge names, with GET (Basic or anonymous) or
//! POST (OAuth2 refresh token) requests, and caching tokens until they expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::config::Credentials;

/// Errors from the token server.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token server could not be reached.
    #[error("token server {realm}: {source}")]
    Request {
        /// The token server URL.
        realm: String,
        /// Why the request failed.
        source: reqwest::Error,
    },
    /// The token server refused the credentials or the scopes.
    #[error("token server {realm}: {status} for scope {scope:?}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status {
        /// The token server URL.
        realm: String,
        /// The HTTP status returned.
        status: reqwest::StatusCode,
        /// The scopes asked for.
        scope: String,
        /// The start of the response body.
        body: String,
    },
    /// The reply had neither `token` nor `access_token`.
    #[error("token server {realm}: reply has no token")]
    NoToken {
        /// The token server URL.
        realm: String,
    },
}

impl TokenError {
    /// Whether the token server did not answer in time (final: not retried).
    pub fn is_timeout(&self) -> bool {
        matches!(self, TokenError::Request { source, .. } if source.is_timeout())
    }

    /// Whether trying again may help (the server was unreachable or failed).
    pub fn is_transient(&self) -> bool {
        match self {
            TokenError::Request { source, .. } => {
                !source.is_decode() && !source.is_builder() && !source.is_timeout()
            }
            TokenError::Status { status, .. } => {
                status.is_server_error() || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            TokenError::NoToken { .. } => false,
        }
    }
}

/// A Bearer token and when it stops being usable.
#[derive(Clone)]
pub struct Token {
    /// The opaque token sent as `Authorization: Bearer`.
    pub value: String,
    /// When to fetch a new one (a little before the server's expiry).
    pub refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The token spec's minimum lifetime when a server gives none (or less).
const MIN_LIFETIME: Duration = Duration::from_secs(60);

/// Fetches a token for `scopes` from `realm`.
pub async fn fetch(
    client: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<Token, TokenError> {
    let scope_text = scopes.join(" ");
    let request_err = |source| TokenError::Request {
        realm: realm.to_string(),
        source,
    };
    let reply = match creds {
        Some(Credentials::IdentityToken(refresh)) => {
            let mut form: Vec<(&str, &str)> = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", "berth"),
            ];
            if let Some(s) = service {
                form.push(("service", s));
            }
            if !scope_text.is_empty() {
                form.push(("scope", &scope_text));
            }
            client
                .post(realm)
                .form(&form)
                .send()
                .await
                .map_err(request_err)?
        }
        _ => {
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(s) = service {
                query.push(("service", s));
            }
            for s in scopes {
                query.push(("scope", s));
            }
            let mut req = client.get(realm).query(&query);
            if let Some(Credentials::Basic { username, password }) = creds {
                req = req.basic_auth(username, Some(password));
                req = req.query(&[("account", username.as_str())]);
            }
            req.send().await.map_err(request_err)?
        }
    };
    let status = reply.status();
    if !status.is_success() {
        let body = reply.text().await.unwrap_or_default();
        return Err(TokenError::Status {
            realm: realm.to_string(),
            status,
            scope: scope_text,
            body: body.chars().take(200).collect(),
        });
    }
    let parsed: TokenReply = reply.json().await.map_err(request_err)?;
    let value = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| TokenError::NoToken {
            realm: realm.to_string(),
        })?;
    let lifetime = parsed
        .expires_in
        .map(Duration::from_secs)
        .unwrap_or(MIN_LIFETIME)
        .max(MIN_LIFETIME);
    // Refresh a tenth early so a token never expires in flight.
    let refresh_at = Instant::now() + lifetime - lifetime / 10;
    Ok(Token { value, refresh_at })
}

/// Tokens by scope set, reused until they are due for refresh.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, Token>>,
}

impl TokenCache {
    /// A fresh token for `key`, if one is cached.
    pub async fn get(&self, key: &str) -> Option<String> {
        let tokens = self.tokens.lock().await;
        tokens
            .get(key)
            .filter(|t| t.refresh_at > Instant::now())
            .map(|t| t.value.clone())
    }

    /// Caches a token for `key`.
    pub async fn put(&self, key: String, token: Token) {
        self.tokens.lock().await.insert(key, token);
    }

    /// Drops the token for `key` (after the registry rejected it).
    pub async fn forget(&self, key: &str) {
        self.tokens.lock().await.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cache_expires() {
        let c = TokenCache::default();
        c.put(
            "a".into(),
            Token {
                value: "t".into(),
                refresh_at: Instant::now() + Duration::from_secs(30),
            },
        )
        .await;
        c.put(
            "b".into(),
            Token {
                value: "old".into(),
                refresh_at: Instant::now(),
            },
        )
        .await;
        assert_eq!(c.get("a").await.as_deref(), Some("t"));
        assert_eq!(c.get("b").await, None);
        c.forget("a").await;
        assert_eq!(c.get("a").await, None);
    }
}

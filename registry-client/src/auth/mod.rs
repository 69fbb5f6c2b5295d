//! Authentication against a registry: the challenge it sends, the user's
//! credentials, and the Bearer tokens traded for them.

pub mod challenge;
pub mod config;
pub mod token;

use base64::Engine as _;
use std::sync::Mutex;

pub use challenge::{Challenge, ChallengeError};
pub use config::{ConfigError, Credentials, DockerConfig};
pub use token::TokenError;

/// The `Authorization` header for each request to one registry, given the
/// scopes the request needs (`repository:<name>:pull,push`).
pub struct Authenticator {
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: token::TokenCache,
}

impl Authenticator {
    /// An authenticator with the user's credentials for this registry, if any.
    pub fn new(credentials: Option<Credentials>) -> Self {
        Authenticator {
            credentials,
            challenge: Mutex::new(None),
            tokens: token::TokenCache::default(),
        }
    }

    /// Records how the registry asked to be authenticated.
    pub fn set_challenge(&self, challenge: Option<Challenge>) {
        if let Ok(mut c) = self.challenge.lock() {
            *c = challenge;
        }
    }

    fn challenge(&self) -> Option<Challenge> {
        self.challenge.lock().ok().and_then(|c| c.clone())
    }

    /// Whether the registry asked for any authentication at all.
    pub fn is_required(&self) -> bool {
        self.challenge().is_some()
    }

    /// The header value to send for a request needing `scopes`, fetching a token when needed.
    pub async fn header(
        &self,
        client: &reqwest::Client,
        scopes: &[String],
    ) -> Result<Option<String>, TokenError> {
        match self.challenge() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(match &self.credentials {
                Some(Credentials::Basic { username, password }) => Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                )),
                _ => None,
            }),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = scope_key(scopes);
                if let Some(t) = self.tokens.get(&key).await {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let t = token::fetch(
                    client,
                    &realm,
                    service.as_deref(),
                    scopes,
                    self.credentials.as_ref(),
                )
                .await?;
                tracing::debug!(realm = %realm, scope = %key, "fetched registry token");
                let header = format!("Bearer {}", t.value);
                self.tokens.put(key, t).await;
                Ok(Some(header))
            }
        }
    }

    /// Drops the cached token for `scopes` after the registry rejected it.
    pub async fn forget(&self, scopes: &[String]) {
        self.tokens.forget(&scope_key(scopes)).await;
    }
}

fn scope_key(scopes: &[String]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
    s.sort_unstable();
    s.dedup();
    s.join(" ")
}

/// The scope to read a repository.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scope to read and write a repository.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

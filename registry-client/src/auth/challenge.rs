//! Parsing `WWW-Authenticate` challenges (RFC 7235) as registries send them:
//! `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..."`
//! or `Basic realm="Registry"`.

use std::collections::BTreeMap;

/// Errors from parsing a challenge header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChallengeError {
    /// The header names no scheme berth supports.
    #[error("authentication challenge {0:?}: no Basic or Bearer scheme")]
    UnsupportedScheme(String),
    /// A Bearer challenge without a realm cannot be answered.
    #[error("authentication challenge {0:?}: Bearer without a realm")]
    MissingRealm(String),
}

/// How a registry asks to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send `Authorization: Basic` with the user's credentials.
    Basic,
    /// Fetch a token from `realm` and send `Authorization: Bearer`.
    Bearer {
        /// The token server URL.
        realm: String,
        /// The `service` parameter to send to the token server.
        service: Option<String>,
        /// A scope the registry asked for, if any.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses one `WWW-Authenticate` header value, preferring Bearer when several
    /// schemes are offered.
    pub fn parse(header: &str) -> Result<Challenge, ChallengeError> {
        let challenges = split_challenges(header);
        if let Some(params) = challenges
            .iter()
            .find(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, p)| p)
        {
            let realm = params
                .get("realm")
                .cloned()
                .ok_or_else(|| ChallengeError::MissingRealm(header.to_string()))?;
            return Ok(Challenge::Bearer {
                realm,
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            });
        }
        if challenges
            .iter()
            .any(|(s, _)| s.eq_ignore_ascii_case("basic"))
        {
            return Ok(Challenge::Basic);
        }
        Err(ChallengeError::UnsupportedScheme(header.to_string()))
    }
}

/// Splits a header into `(scheme, params)` pairs. Parameters are `key=value`
/// or `key="quoted, value"`; a token without `=` starts a new challenge.
fn split_challenges(header: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut chars = header.chars().peekable();
    loop {
        // Skip separators.
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut token = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            token.push(c);
            chars.next();
        }
        if token.is_empty() {
            if chars.peek().is_none() {
                break;
            }
            chars.next();
            continue;
        }
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
            if let Some((_, params)) = out.last_mut() {
                params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            out.push((token, BTreeMap::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }
        );
    }

    #[test]
    fn scope_with_comma_in_quotes() {
        let c = Challenge::parse(
            r#"Bearer realm="http://127.0.0.1:1/t", scope="repository:a/b:pull,push", service=reg"#,
        )
        .unwrap();
        match c {
            Challenge::Bearer { scope, service, .. } => {
                assert_eq!(scope.as_deref(), Some("repository:a/b:pull,push"));
                assert_eq!(service.as_deref(), Some("reg"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn basic_and_case() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        assert_eq!(Challenge::parse("basic").unwrap(), Challenge::Basic);
        assert!(matches!(
            Challenge::parse(r#"bearer REALM="x""#).unwrap(),
            Challenge::Bearer { .. }
        ));
    }

    #[test]
    fn prefers_bearer_when_both() {
        let c = Challenge::parse(r#"Basic realm="r", Bearer realm="https://t/""#).unwrap();
        assert!(matches!(c, Challenge::Bearer { .. }));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Challenge::parse(r#"Negotiate abc"#),
            Err(ChallengeError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            Challenge::parse(r#"Bearer service="x""#),
            Err(ChallengeError::MissingRealm(_))
        ));
        assert!(Challenge::parse("").is_err());
    }
}

//! Docker's client configuration (`~/.docker/config.json`, or `$DOCKER_CONFIG/config.json`)
//! and the `docker-credential-*` helper protocol.
//!
//! Credentials come from `credHelpers[registry]`, else `credsStore`, else
//! `auths[registry].auth`. Writing keeps every other key of the file as it was,
//! so Docker and berth can share one file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Errors from reading or writing Docker's config file or running a helper.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read or written.
    #[error("docker config {path}: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The config file is not the JSON shape Docker writes.
    #[error("docker config {path}: invalid JSON: {source}")]
    Json {
        /// The config file.
        path: PathBuf,
        /// Why it failed.
        source: serde_json::Error,
    },
    /// An `auth` entry is not base64 of `user:password`.
    #[error(
        "docker config {path}: credentials for {registry}: `auth` is not base64 of user:password"
    )]
    BadAuth {
        /// The config file.
        path: PathBuf,
        /// The registry key.
        registry: String,
    },
    /// A credential helper could not be run or failed.
    #[error("credential helper docker-credential-{helper} {action} for {registry}: {message}")]
    Helper {
        /// The helper's suffix (`pass`, `ecr-login`, ...).
        helper: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// The registry key.
        registry: String,
        /// What went wrong.
        message: String,
    },
    /// Neither `$DOCKER_CONFIG` nor `$HOME` is set.
    #[error("cannot find docker config: neither DOCKER_CONFIG nor HOME is set")]
    NoHome,
}

/// What a registry account logs in with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or personal access token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An OAuth2 refresh token (Docker's `identitytoken`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Docker's config directory: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn default_config_dir() -> Result<PathBuf, ConfigError> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker"))
        .ok_or(ConfigError::NoHome)
}

/// Docker's `config.json`, kept as raw JSON so unknown keys survive a rewrite.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct HelperCredentials {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl DockerConfig {
    /// Loads `<dir>/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<DockerConfig, ConfigError> {
        let path = dir.join("config.json");
        let doc = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ConfigError::Json {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(source) => return Err(ConfigError::Io { path, source }),
        };
        Ok(DockerConfig { path, doc })
    }

    /// The file this config was loaded from and is saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn helper_for(&self, key: &str) -> Option<String> {
        self.doc
            .get("credHelpers")
            .and_then(|h| h.get(key))
            .and_then(Value::as_str)
            .or_else(|| self.doc.get("credsStore").and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The `auths` entry for `key`, also matching `https://key`, `http://key` and `.../v1/` forms.
    fn auth_entry(&self, key: &str) -> Option<(&String, &Value)> {
        let auths = self.doc.get("auths")?.as_object()?;
        auths.get_key_value(key).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| crate::endpoint::normalize_domain(&strip_path(k)) == key)
        })
    }

    /// Looks up credentials for a registry key (see [`crate::Endpoint::auth_key`]).
    pub fn credentials(&self, key: &str) -> Result<Option<Credentials>, ConfigError> {
        if let Some(helper) = self.helper_for(key) {
            return helper_get(&helper, key);
        }
        let Some((_, entry)) = self.auth_entry(key) else {
            return Ok(None);
        };
        if let Some(token) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(Credentials::IdentityToken(token.to_string())));
        }
        let bad = || ConfigError::BadAuth {
            path: self.path.clone(),
            registry: key.to_string(),
        };
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }));
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Some(Credentials::Basic {
                username: u.to_string(),
                password: p.to_string(),
            })),
            _ => Ok(None),
        }
    }

    /// Records credentials for `key`: in its credential helper when one is
    /// configured, else base64 in `auths`, as `docker login` does.
    pub fn store(&mut self, key: &str, creds: &Credentials) -> Result<(), ConfigError> {
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let helper = self.helper_for(key);
        let mut entry = Map::new();
        if let Some(helper) = &helper {
            let (username, secret) = match creds {
                Credentials::Basic { username, password } => (username.clone(), password.clone()),
                Credentials::IdentityToken(t) => ("<token>".to_string(), t.clone()),
            };
            let body = HelperCredentials {
                server_url: key.to_string(),
                username,
                secret,
            };
            let input = serde_json::to_vec(&body).map_err(|e| ConfigError::Helper {
                helper: helper.clone(),
                action: "store",
                registry: key.to_string(),
                message: e.to_string(),
            })?;
            run_helper(helper, "store", key, &input)?;
        } else {
            match creds {
                Credentials::Basic { username, password } => {
                    let auth = base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"));
                    entry.insert("auth".into(), Value::String(auth));
                }
                Credentials::IdentityToken(t) => {
                    entry.insert("identitytoken".into(), Value::String(t.clone()));
                }
            }
        }
        if let Some(map) = self.doc.get_mut("auths").and_then(Value::as_object_mut) {
            let old = map.get(key).is_some();
            if old {
                map.remove(key);
            }
            map.insert(key.to_string(), Value::Object(entry));
        }
        Ok(())
    }

    /// Forgets credentials for `key` (from the helper too). Returns whether any were recorded.
    pub fn remove(&mut self, key: &str) -> Result<bool, ConfigError> {
        let mut found = false;
        if let Some(helper) = self.helper_for(key) {
            found = run_helper(&helper, "erase", key, key.as_bytes()).is_ok();
        }
        let matching: Vec<String> = self
            .auth_entry(key)
            .map(|(k, _)| k.clone())
            .into_iter()
            .collect();
        if let Some(map) = self.doc.get_mut("auths").and_then(Value::as_object_mut) {
            for k in matching {
                found |= map.remove(&k).is_some();
            }
        }
        Ok(found)
    }

    /// Writes the config back atomically with mode 0600, creating its directory.
    pub fn save(&self) -> Result<(), ConfigError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |source| ConfigError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let bytes = serde_json::to_vec_pretty(&self.doc).map_err(|source| ConfigError::Json {
            path: self.path.clone(),
            source,
        })?;
        let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.write_all(b"\n").map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

fn strip_path(key: &str) -> String {
    let no_scheme = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    no_scheme.split('/').next().unwrap_or(no_scheme).to_string()
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>, ConfigError> {
    let out = match run_helper(helper, "get", key, key.as_bytes()) {
        Ok(out) => out,
        Err(ConfigError::Helper { message, .. }) if message.contains("credentials not found") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let creds: HelperCredentials =
        serde_json::from_slice(&out).map_err(|e| ConfigError::Helper {
            helper: helper.to_string(),
            action: "get",
            registry: key.to_string(),
            message: format!("invalid JSON reply: {e}"),
        })?;
    if creds.secret.is_empty() {
        return Ok(None);
    }
    if creds.username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(creds.secret)));
    }
    Ok(Some(Credentials::Basic {
        username: creds.username,
        password: creds.secret,
    }))
}

fn run_helper(
    helper: &str,
    action: &'static str,
    key: &str,
    input: &[u8],
) -> Result<Vec<u8>, ConfigError> {
    let err = |message: String| ConfigError::Helper {
        helper: helper.to_string(),
        action,
        registry: key.to_string(),
        message,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).map_err(|e| err(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let mut msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if msg.is_empty() {
            msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        return Err(err(format!("{}: {msg}", out.status)));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auths_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
                "http://reg.example:5000":{"identitytoken":"tok"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let c = DockerConfig::load(dir.path()).unwrap();
        assert_eq!(
            c.credentials("https://index.docker.io/v1/").unwrap(),
            Some(Credentials::Basic {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            c.credentials("reg.example:5000").unwrap(),
            Some(Credentials::IdentityToken("tok".into()))
        );
        assert_eq!(c.credentials("quay.io").unwrap(), None);
    }

    #[test]
    fn store_and_remove_keep_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"psFormat":"table"}"#).unwrap();
        let mut c = DockerConfig::load(dir.path()).unwrap();
        let creds = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        c.store("localhost:5000", &creds).unwrap();
        c.save().unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["psFormat"], "table");
        assert_eq!(v["auths"]["localhost:5000"]["auth"], "dTpw");
        let mut c = DockerConfig::load(dir.path()).unwrap();
        assert_eq!(c.credentials("localhost:5000").unwrap(), Some(creds));
        assert!(c.remove("localhost:5000").unwrap());
        assert!(!c.remove("localhost:5000").unwrap());
        assert_eq!(c.credentials("localhost:5000").unwrap(), None);
    }

    #[test]
    fn bad_auth_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"r":{"auth":"!!"}}}"#,
        )
        .unwrap();
        let c = DockerConfig::load(dir.path()).unwrap();
        assert!(matches!(
            c.credentials("r"),
            Err(ConfigError::BadAuth { .. })
        ));
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerConfig::load(dir.path()).unwrap();
        assert_eq!(c.credentials("x").unwrap(), None);
    }
}

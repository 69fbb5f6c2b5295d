//! [`RegistryOptions`] from the environment `berth pull` reads, for callers without its
//! command line (the node's pod worker): `BERTH_REGISTRY_TIMEOUT`, `BERTH_CERTS_DIR`,
//! `BERTH_MAX_CONCURRENT` and the `insecure-registries` of `BERTH_REGISTRY_CONFIG`
//! (default `/etc/berth/daemon.json`), each with `berth pull`'s default when unset.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::endpoint::{RegistryOptions, DEFAULT_CERTS_DIR};

/// `BERTH_REGISTRY_TIMEOUT`: [`RegistryOptions::timeout`], as [`parse_timeout`] reads it.
pub const TIMEOUT_ENV: &str = "BERTH_REGISTRY_TIMEOUT";
/// `BERTH_CERTS_DIR`: [`RegistryOptions::certs_dir`].
pub const CERTS_DIR_ENV: &str = "BERTH_CERTS_DIR";
/// `BERTH_REGISTRY_CONFIG`: a Docker-style `daemon.json` whose `insecure-registries` apply.
pub const CONFIG_ENV: &str = "BERTH_REGISTRY_CONFIG";
/// `BERTH_MAX_CONCURRENT`: [`RegistryOptions::max_concurrent_blobs`].
pub const MAX_CONCURRENT_ENV: &str = "BERTH_MAX_CONCURRENT";
/// Where the registry config is read from when [`CONFIG_ENV`] is unset.
pub const DEFAULT_CONFIG: &str = "/etc/berth/daemon.json";

/// Errors from reading the registry settings.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A variable's value does not parse.
    #[error("{name}={value:?}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry config could not be read.
    #[error("registry config {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The registry config is not the JSON expected.
    #[error("registry config {path}: {source}")]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// A timeout that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeoutError {
    /// Not a number with an optional unit.
    #[error("{0:?}: expected a duration such as 30s, 500ms or 2m")]
    Syntax(String),
    /// Zero, negative or longer than a day.
    #[error("{0:?}: a timeout is more than 0 and at most a day")]
    Range(String),
}

/// A positive duration of at most a day written as seconds (`30`, `1.5s`), milliseconds
/// (`500ms`) or minutes (`2m`).
pub fn parse_timeout(s: &str) -> Result<Duration, TimeoutError> {
    let (number, unit) = match s.trim() {
        t if t.ends_with("ms") => (&t[..t.len() - 2], 0.001),
        t if t.ends_with('s') => (&t[..t.len() - 1], 1.0),
        t if t.ends_with('m') => (&t[..t.len() - 1], 60.0),
        t => (t, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| TimeoutError::Syntax(s.to_string()))?;
    let secs = value * unit;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(TimeoutError::Range(s.to_string()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The registries a Docker-style `daemon.json` lists as insecure; none when it is missing.
pub fn insecure_registries(path: &Path) -> Result<Vec<String>, EnvError> {
    #[derive(serde::Deserialize)]
    struct Daemon {
        #[serde(rename = "insecure-registries", default)]
        insecure: Vec<String>,
    }
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<Daemon>(&bytes)
            .map(|d| d.insecure)
            .map_err(|source| EnvError::ParseConfig {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(EnvError::ReadConfig {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The options `berth pull` runs with when given no flags, from `lookup` (the process
/// environment in [`options_from_env`]).
pub fn options_from(lookup: impl Fn(&str) -> Option<String>) -> Result<RegistryOptions, EnvError> {
    let invalid = |name: &'static str, value: String, reason: String| EnvError::Invalid {
        name,
        value,
        reason,
    };
    let mut options = RegistryOptions {
        certs_dir: PathBuf::from(lookup(CERTS_DIR_ENV).unwrap_or_else(|| DEFAULT_CERTS_DIR.into())),
        ..RegistryOptions::default()
    };
    if let Some(v) = lookup(TIMEOUT_ENV) {
        options.timeout =
            parse_timeout(&v).map_err(|reason| invalid(TIMEOUT_ENV, v, reason.to_string()))?;
    }
    if let Some(v) = lookup(MAX_CONCURRENT_ENV) {
        let n: usize = v
            .trim()
            .parse()
            .map_err(|e| invalid(MAX_CONCURRENT_ENV, v.clone(), format!("{e}")))?;
        options.max_concurrent_blobs = n.max(1);
    }
    let config = PathBuf::from(lookup(CONFIG_ENV).unwrap_or_else(|| DEFAULT_CONFIG.into()));
    options.insecure_registries = insecure_registries(&config)?;
    Ok(options)
}

/// [`options_from`] the process environment.
pub fn options_from_env() -> Result<RegistryOptions, EnvError> {
    options_from(|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_berth_pull_reads_them() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "0", "-1s", "2h", "2d", "x", "nan", "1e9"] {
            assert!(parse_timeout(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unset_variables_give_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.json").display().to_string();
        let o = options_from(|n| (n == CONFIG_ENV).then(|| missing.clone())).unwrap();
        let d = RegistryOptions::default();
        assert_eq!(o.timeout, d.timeout);
        assert_eq!(o.certs_dir, d.certs_dir);
        assert_eq!(o.max_concurrent_blobs, d.max_concurrent_blobs);
        assert!(o.insecure_registries.is_empty());
    }

    #[test]
    fn variables_and_the_daemon_json_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("daemon.json");
        std::fs::write(&config, r#"{"insecure-registries": ["reg:5000"]}"#).unwrap();
        let config = config.display().to_string();
        let vars = [
            (TIMEOUT_ENV, "250ms".to_string()),
            (CERTS_DIR_ENV, "/certs".to_string()),
            (MAX_CONCURRENT_ENV, "0".to_string()),
            (CONFIG_ENV, config),
        ];
        let lookup = |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        let o = options_from(lookup).unwrap();
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!(o.certs_dir, PathBuf::from("/certs"));
        assert_eq!(o.max_concurrent_blobs, 1);
        assert_eq!(o.insecure_registries, vec!["reg:5000".to_string()]);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = options_from(|n| (n == TIMEOUT_ENV).then(|| "soon".to_string())).unwrap_err();
        assert!(e.to_string().starts_with("BERTH_REGISTRY_TIMEOUT="), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("daemon.json");
        std::fs::write(&config, "not json").unwrap();
        let config = config.display().to_string();
        let e = options_from(|n| (n == CONFIG_ENV).then(|| config.clone())).unwrap_err();
        assert!(matches!(e, EnvError::ParseConfig { .. }), "{e}");
    }
}

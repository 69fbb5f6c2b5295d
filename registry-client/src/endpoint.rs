//! Where a registry lives: Docker Hub's host mapping, which schemes may be
//! used, and which certificate authorities are trusted for it.
//!
//! `docker.io` (and its aliases) is served from `registry-1.docker.io`; every
//! other registry is reached at the host written in the reference. HTTPS is
//! used unless the registry is on loopback or listed as insecure, in which case
//! plain HTTP is tried when HTTPS does not answer, as Docker does.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The domain Docker references use for Docker Hub.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// The host that serves Docker Hub's distribution API.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The key Docker's `config.json` uses for Docker Hub credentials.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
/// Where Docker keeps per-registry certificate authorities.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// Errors from reading a registry's trust configuration.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A certificate file in the certs directory could not be read.
    #[error("certificate {path}: {source}")]
    ReadCertificate {
        /// The file that failed.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A certificate file in the certs directory is not PEM.
    #[error("certificate {path}: not a PEM certificate: {source}")]
    ParseCertificate {
        /// The file that failed.
        path: PathBuf,
        /// Why it failed.
        source: reqwest::Error,
    },
    /// The HTTP client for the registry could not be built.
    #[error("registry {registry}: cannot build HTTP client: {source}")]
    Client {
        /// The registry host.
        registry: String,
        /// Why it failed.
        source: reqwest::Error,
    },
}

/// Settings shared by every registry berth talks to.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host` or `host:port`) that may be reached over plain HTTP
    /// or HTTPS with an untrusted certificate.
    pub insecure_registries: Vec<String>,
    /// Directory of `<host[:port]>/*.crt` certificate authorities (Docker's `certs.d`).
    pub certs_dir: PathBuf,
    /// How many blobs are transferred at the same time.
    pub max_concurrent_blobs: usize,
    /// How many times a failed request is retried before giving up.
    pub max_retries: u32,
    /// Delay before the first retry; doubled for each further one.
    pub initial_backoff: std::time::Duration,
    /// When set, uploads are sent in PATCH chunks of this many bytes instead of one stream.
    pub upload_chunk_size: Option<u64>,
    /// The longest berth waits on a registry for one thing: a connection (TCP
    /// and TLS), a request's response headers, a manifest's whole body, or a
    /// blob's next window of data (see [`crate::transport::MIN_RATE`]).
    pub timeout: std::time::Duration,
}

/// [`RegistryOptions::timeout`] unless set: Docker's dial timeout.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            // Two cores: a few streams keep the network busy while hashing and
            // unpacking take the CPU.
            max_concurrent_blobs: 3,
            max_retries: 5,
            initial_backoff: std::time::Duration::from_millis(200),
            upload_chunk_size: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// One registry as berth reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The registry domain as written in references (`docker.io`, `localhost:5000`).
    pub domain: String,
    /// The `host[:port]` actually contacted.
    pub host: String,
    /// Plain HTTP may be used when HTTPS does not answer.
    pub allow_http: bool,
    /// HTTPS certificates are not verified (registry listed as insecure).
    pub skip_verify: bool,
}

impl Endpoint {
    /// Resolves a reference's registry domain to the endpoint to contact.
    pub fn new(domain: &str, options: &RegistryOptions) -> Endpoint {
        let domain = normalize_domain(domain);
        let host = if domain == DOCKER_HUB_DOMAIN {
            DOCKER_HUB_HOST.to_string()
        } else {
            domain.clone()
        };
        let listed = options
            .insecure_registries
            .iter()
            .any(|r| insecure_entry_matches(r, &domain) || insecure_entry_matches(r, &host));
        Endpoint {
            allow_http: listed || is_loopback(&host),
            skip_verify: listed,
            domain,
            host,
        }
    }

    /// The key under which `config.json` stores this registry's credentials.
    pub fn auth_key(&self) -> String {
        if self.domain == DOCKER_HUB_DOMAIN {
            DOCKER_HUB_AUTH_KEY.to_string()
        } else {
            self.domain.clone()
        }
    }

    /// Base URLs to try, in order: HTTPS, then HTTP when allowed.
    pub fn base_urls(&self) -> Vec<String> {
        let mut urls = vec![format!("https://{}", self.host)];
        if self.allow_http {
            urls.push(format!("http://{}", self.host));
        }
        urls
    }

    /// Builds the HTTP client for this registry, trusting the CAs in its certs directory.
    pub fn http_client(&self, options: &RegistryOptions) -> Result<reqwest::Client, EndpointError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.timeout)
            .pool_max_idle_per_host((options.max_concurrent_blobs * 2).max(16))
            .danger_accept_invalid_certs(self.skip_verify);
        for path in ca_files(&options.certs_dir, &self.domain, &self.host)? {
            let pem = std::fs::read(&path).map_err(|source| EndpointError::ReadCertificate {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                EndpointError::ParseCertificate {
                    path: path.clone(),
                    source,
                }
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder.build().map_err(|source| EndpointError::Client {
            registry: self.host.clone(),
            source,
        })
    }
}

/// Maps Docker Hub's aliases to `docker.io`; other domains are kept as written.
pub fn normalize_domain(domain: &str) -> String {
    match domain {
        "" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB_DOMAIN.to_string()
        }
        "https://index.docker.io/v1/" | "https://index.docker.io/v1" => {
            DOCKER_HUB_DOMAIN.to_string()
        }
        other => other
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

fn insecure_entry_matches(entry: &str, host: &str) -> bool {
    let entry = entry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    entry == host || (!entry.contains(':') && split_host(host) == entry)
}

/// The host part of `host[:port]`, with IPv6 brackets removed.
fn split_host(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    }
}

/// True for `localhost`, 127.0.0.0/8 and ::1, with or without a port.
pub fn is_loopback(host_port: &str) -> bool {
    let host = split_host(host_port);
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The `*.crt` files under `<certs_dir>/<domain>` and `<certs_dir>/<host>`, sorted.
fn ca_files(certs_dir: &Path, domain: &str, host: &str) -> Result<Vec<PathBuf>, EndpointError> {
    let mut files = Vec::new();
    let mut dirs = vec![certs_dir.join(domain)];
    if host != domain {
        dirs.push(certs_dir.join(host));
    }
    for dir in dirs {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(EndpointError::ReadCertificate { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| EndpointError::ReadCertificate {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "crt") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(insecure: &[&str]) -> RegistryOptions {
        RegistryOptions {
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            ..RegistryOptions::default()
        }
    }

    #[test]
    fn docker_hub_maps_to_registry_1() {
        for d in ["docker.io", "index.docker.io", "registry-1.docker.io", ""] {
            let e = Endpoint::new(d, &opts(&[]));
            assert_eq!(e.host, "registry-1.docker.io");
            assert_eq!(e.auth_key(), DOCKER_HUB_AUTH_KEY);
            assert!(!e.allow_http);
            assert_eq!(e.base_urls(), vec!["https://registry-1.docker.io"]);
        }
    }

    #[test]
    fn other_hosts_as_written() {
        let e = Endpoint::new("quay.io", &opts(&[]));
        assert_eq!(e.host, "quay.io");
        assert_eq!(e.auth_key(), "quay.io");
        assert!(!e.allow_http && !e.skip_verify);
    }

    #[test]
    fn loopback_may_use_http_but_still_verifies() {
        for d in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.2.1",
            "[::1]:5000",
            "localhost",
        ] {
            let e = Endpoint::new(d, &opts(&[]));
            assert!(e.allow_http, "{d}");
            assert!(!e.skip_verify, "{d}");
            assert_eq!(e.base_urls().len(), 2);
        }
        assert!(!Endpoint::new("128.0.0.1:5000", &opts(&[])).allow_http);
        assert!(!Endpoint::new("localhost.example.com", &opts(&[])).allow_http);
    }

    #[test]
    fn insecure_list_matches_host_or_host_port() {
        let e = Endpoint::new("reg.example:5000", &opts(&["reg.example:5000"]));
        assert!(e.allow_http && e.skip_verify);
        let e = Endpoint::new("reg.example:5000", &opts(&["reg.example"]));
        assert!(e.allow_http);
        let e = Endpoint::new("reg.example:5000", &opts(&["reg.example:5001"]));
        assert!(!e.allow_http);
        let e = Endpoint::new("reg.example", &opts(&["http://reg.example/"]));
        assert!(e.allow_http);
    }

    #[test]
    fn ca_files_found_by_domain() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("127.0.0.1:5000")).unwrap();
        std::fs::write(dir.path().join("127.0.0.1:5000/ca.crt"), "x").unwrap();
        std::fs::write(dir.path().join("127.0.0.1:5000/client.key"), "x").unwrap();
        let files = ca_files(dir.path(), "127.0.0.1:5000", "127.0.0.1:5000").unwrap();
        assert_eq!(files, vec![dir.path().join("127.0.0.1:5000/ca.crt")]);
        assert!(ca_files(dir.path(), "other", "other").unwrap().is_empty());
    }
}

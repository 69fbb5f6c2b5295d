//! ADD from a URL: a plain blocking HTTP(S) download (no async runtime, so nothing else
//! runs while a RUN step forks), hashed on the way, checked against `--checksum`, with the
//! file name and `Last-Modified` time Docker gives the added file.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// Why a URL could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed or the server answered with an error status.
    #[error("ADD {url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Writing the download failed.
    #[error("ADD {url}: writing {path}: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The file written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The content does not match `--checksum`.
    #[error("ADD {url}: checksum mismatch: expected {expected}, got {actual}")]
    Checksum {
        /// The URL.
        url: String,
        /// `--checksum`.
        expected: String,
        /// What was downloaded.
        actual: String,
    },
}

/// A downloaded file.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where it was saved.
    pub path: PathBuf,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// The name Docker gives it under a directory destination: the URL path's last segment.
    pub name: String,
    /// `Last-Modified`, seconds since the epoch, when the server sent it.
    pub mtime: Option<i64>,
}

/// The file name a URL gives an added file (`index.html` for a path ending in `/`).
pub fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.split_once('/').map(|(_, p)| p).unwrap_or_default();
    let path = path.split(['?', '#']).next().unwrap_or_default();
    match path.rsplit('/').next() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => "index.html".to_string(),
    }
}

/// Downloads `url` to `dest` (a new file), checking `checksum` (`sha256:...`) if given.
pub fn fetch(url: &str, dest: &Path, checksum: Option<&str>) -> Result<Fetched, FetchError> {
    let http = |reason: String| FetchError::Http {
        url: url.to_string(),
        reason,
    };
    let io_err = |source| FetchError::Io {
        url: url.to_string(),
        path: dest.to_path_buf(),
        source,
    };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(300))
        .build();
    let response = agent.get(url).call().map_err(|e| http(e.to_string()))?;
    let mtime = response
        .header("Last-Modified")
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp());
    let mut reader = response.into_reader();
    let mut file = fs::File::create(dest).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(http(format!("reading the body: {e}"))),
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(io_err)?;
    }
    file.flush().map_err(io_err)?;
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    if let Some(expected) = checksum {
        if expected != digest {
            return Err(FetchError::Checksum {
                url: url.to_string(),
                expected: expected.to_string(),
                actual: digest.clone(),
            });
        }
    }
    Ok(Fetched {
        path: dest.to_path_buf(),
        digest,
        name: url_file_name(url),
        mtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_from_urls() {
        assert_eq!(
            url_file_name("https://example.com/a/b.tar.gz?x=1"),
            "b.tar.gz"
        );
        assert_eq!(url_file_name("http://example.com/"), "index.html");
        assert_eq!(url_file_name("http://example.com"), "index.html");
    }
}

//! The kubeconfig `berth daemon` writes (`$ROOT/daemon/kubeconfig`, mode 0600) so kubectl can
//! reach the API on loopback over TLS (trusting the daemon's CA) with the daemon's bearer
//! token (`$ROOT/daemon/token`, made once).

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The daemon's bearer token, created (32 random bytes, hex) on first start.
pub fn token(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// The kubeconfig text for a daemon at `addr` with CA `ca_pem` and bearer token `token`.
pub fn render(addr: SocketAddr, ca_pem: &str, token: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: berth
  cluster:
    server: https://{addr}
    certificate-authority-data: {ca}
contexts:
- name: berth
  context:
    cluster: berth
    user: berth
    namespace: default
current-context: berth
users:
- name: berth
  user:
    token: {token}
"
    )
}

/// Writes the kubeconfig into `dir` and returns its path.
pub fn write(dir: &Path, addr: SocketAddr, ca_pem: &str, token: &str) -> std::io::Result<PathBuf> {
    let path = dir.join("kubeconfig");
    write_private(&path, render(addr, ca_pem, token).as_bytes())?;
    Ok(path)
}

/// Writes `bytes` to `path` atomically (temp file, rename), readable by the owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_kept_and_kubeconfig_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let t = token(dir.path()).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(token(dir.path()).unwrap(), t);
        let path = write(dir.path(), "127.0.0.1:6443".parse().unwrap(), "CA", &t).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("server: https://127.0.0.1:6443"));
        assert!(text.contains("certificate-authority-data: Q0E="));
        assert!(text.contains(&format!("token: {t}")));
    }
}

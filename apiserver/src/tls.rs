//! TLS for the API's TCP listener. kubectl sends credentials only over TLS, so the daemon
//! keeps its own CA (`$ROOT/daemon/pki/ca.crt`, `ca.key`, made on first start, key mode 0600)
//! and signs a fresh serving certificate for `127.0.0.1` and `localhost` at each start; the
//! kubeconfig carries the CA, so kubectl verifies the daemon.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use super::kubeconfig::write_private;

/// Errors setting up the daemon's certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A key or certificate file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A key or certificate could not be made or parsed.
    #[error("daemon certificates in {dir}: {reason}")]
    Cert {
        /// `$ROOT/daemon/pki`.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The CA data handed to a client holds no certificate.
    #[error("no certificate in the CA data")]
    NoCaCertificate,
    /// rustls refused the CA certificate or the protocol versions for a client.
    #[error(transparent)]
    Client(#[from] rustls::Error),
}

/// The daemon's CA (PEM, for kubeconfigs) and the acceptor serving with its certificate.
pub struct Pki {
    /// The CA certificate in PEM form.
    pub ca_pem: String,
    /// Accepts TLS connections with the serving certificate.
    pub acceptor: TlsAcceptor,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "berth-daemon-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Loads (or makes, on first start) the CA in `dir` and signs a serving certificate.
pub fn load_or_create(dir: &Path) -> Result<Pki, TlsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    let cert_err = |reason: String| TlsError::Cert {
        dir: dir.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (key_path, crt_path) = (dir.join("ca.key"), dir.join("ca.crt"));
    let (ca_key, ca_pem) = match (
        std::fs::read_to_string(&key_path),
        std::fs::read_to_string(&crt_path),
    ) {
        (Ok(key), Ok(crt)) => (
            KeyPair::from_pem(&key).map_err(|e| cert_err(format!("ca.key: {e}")))?,
            crt,
        ),
        _ => {
            let key = KeyPair::generate().map_err(|e| cert_err(e.to_string()))?;
            let crt = ca_params()
                .self_signed(&key)
                .map_err(|e| cert_err(e.to_string()))?;
            write_private(&key_path, key.serialize_pem().as_bytes()).map_err(io(&key_path))?;
            write_private(&crt_path, crt.pem().as_bytes()).map_err(io(&crt_path))?;
            (key, crt.pem())
        }
    };
    // The issuer as rcgen needs it: the same name and key as the stored CA certificate.
    let issuer = ca_params()
        .self_signed(&ca_key)
        .map_err(|e| cert_err(e.to_string()))?;
    let server_key = KeyPair::generate().map_err(|e| cert_err(e.to_string()))?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(|e| cert_err(e.to_string()))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "berth-daemon");
    let server = params
        .signed_by(&server_key, &issuer, &ca_key)
        .map_err(|e| cert_err(e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = vec![server.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| cert_err(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| cert_err(e.to_string()))?;
    Ok(Pki {
        ca_pem,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

/// A client configuration that trusts only the CA in `ca_pem` (for the `berth` CLI).
pub fn client_config(ca_pem: &str) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let der = pem_to_der(ca_pem).ok_or(TlsError::NoCaCertificate)?;
    roots.add(CertificateDer::from(der))?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?;
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// The DER bytes of the first certificate in a PEM text.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.ca_pem, b.ca_pem);
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(client_config(&a.ca_pem).is_ok());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_client_needs_a_certificate_in_the_ca_data() {
        let not_base64 = "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            client_config(not_base64),
            Err(TlsError::NoCaCertificate)
        ));
        // Nothing, or bytes that are no certificate: rustls refuses them.
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        for ca in ["not a pem", garbage] {
            assert!(
                matches!(client_config(ca), Err(TlsError::Client(_))),
                "{ca}"
            );
        }
    }
}

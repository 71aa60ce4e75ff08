//! HTTPS for the HTTP API (issue 14, item 4): acme-dns clients are set up
//! with `https://` URLs and send passwords.
//!
//! The certificate in force is a [`CertStore`], read by rustls at each
//! handshake (`ResolvesServerCert`) and replaced whole (ArcSwap) when a
//! new one is loaded: from the `https-cert`/`https-key` files, which
//! [`watch_files`] polls, or from the server's own ACME order
//! (`own_cert`). A pair that does not load (unreadable, not PEM, key not
//! matching the certificate) is logged and never replaces the one in
//! force. HTTP/1.1 and HTTP/2 are offered by ALPN.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the certificate and key files are checked for changes.
pub const FILE_POLL: Duration = Duration::from_secs(5);

/// Why a certificate and key did not load.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("{path}: not a PEM certificate chain: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error(
        "{path}: no usable PEM private key (PKCS#8, PKCS#1 or SEC1; RSA, ECDSA or Ed25519): {reason}"
    )]
    BadKey { path: PathBuf, reason: String },
    #[error("{key} is not the private key of the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// A certificate chain and its key, checked to belong together, with what
/// the status page shows of it.
#[derive(Clone)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub info: CertInfo,
}

/// What is known of the certificate in force (status page, metric,
/// renewal).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    /// The leaf's subject alternative DNS names.
    pub names: Vec<String>,
    /// notBefore and notAfter, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// "files" or "acme".
    pub source: &'static str,
}

/// Parse a PEM chain (leaf first) and a PEM private key into a
/// [`Loaded`]; the paths are only for the messages.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
    source: &'static str,
) -> Result<Loaded, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: cert_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    };
    let info = cert_info(leaf, source).map_err(|reason| TlsError::BadCertificate {
        path: cert_path.to_path_buf(),
        reason,
    })?;
    let bad_key = |reason: String| TlsError::BadKey {
        path: key_path.to_path_buf(),
        reason,
    };
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad_key(e.to_string()))?;
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| bad_key(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
    })?;
    Ok(Loaded {
        key: Arc::new(certified),
        info,
    })
}

/// Read and parse the files at `cert` and `key`.
pub fn load_files(cert: &Path, key: &Path, source: &'static str) -> Result<Loaded, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    parse_pair(&read(cert)?, &read(key)?, cert, key, source)
}

fn cert_info(leaf: &CertificateDer<'_>, source: &'static str) -> Result<CertInfo, String> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(leaf.as_ref())
        .map_err(|e| format!("leaf certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push(d.to_string()),
                GeneralName::IPAddress(b) => names.push(match b.len() {
                    4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*b).expect("4")).to_string(),
                    16 => std::net::IpAddr::from(<[u8; 16]>::try_from(*b).expect("16")).to_string(),
                    _ => continue,
                }),
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        source,
    })
}

/// The certificate in force, and the last failure to replace it.
#[derive(Default)]
pub struct CertStore {
    current: ArcSwapOption<Loaded>,
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("info", &self.info())
            .finish()
    }
}

impl CertStore {
    pub fn set(&self, loaded: Loaded) {
        self.current.store(Some(Arc::new(loaded)));
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Note a failed load or renewal (the certificate in force stays).
    pub fn failed(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    pub fn info(&self) -> Option<CertInfo> {
        self.current.load().as_ref().map(|l| l.info.clone())
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load().as_ref().map(|l| l.key.clone())
    }
}

/// The rustls server configuration: TLS 1.2 and 1.3 (ring), certificate
/// from `store`, ALPN h2 then http/1.1.
pub fn server_config(store: Arc<CertStore>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A fingerprint of the files' contents: a change to either (including an
/// atomic rename over them) changes it. None: one is unreadable.
pub fn fingerprint(paths: &[&PathBuf]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(p).ok()?;
        out.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
    }
    Some(out)
}

/// Poll `cert` and `key` every `every` and load them into `store` when
/// they change from `seen` (what was loaded at start). A pair that does not load is logged (once per version of
/// the files) and the certificate in force stays; a certificate written
/// before its key (the pair mismatches for a moment) is loaded once the
/// key follows.
pub async fn watch_files(
    store: Arc<CertStore>,
    cert: PathBuf,
    key: PathBuf,
    every: Duration,
    mut seen: Option<Vec<u8>>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let now = fingerprint(&[&cert, &key]);
        if now.is_none() || now == seen {
            continue;
        }
        seen = now;
        let (c, k) = (cert.clone(), key.clone());
        match tokio::task::spawn_blocking(move || load_files(&c, &k, "files")).await {
            Ok(Ok(loaded)) => {
                tracing::info!(
                    cert = %cert.display(),
                    names = ?loaded.info.names,
                    not_after = loaded.info.not_after,
                    "HTTPS certificate reloaded"
                );
                store.set(loaded);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "HTTPS certificate not reloaded; the one in force stays");
                store.failed(e.to_string());
            }
            Err(_) => {}
        }
    }
}

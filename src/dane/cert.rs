//! Certificate and public-key files, read once into owned, checked values:
//! the DER of each certificate, its SubjectPublicKeyInfo, its validity
//! dates, and which certificate of a chain issued the leaf.
//!
//! Accepted: PEM (any number of `CERTIFICATE` blocks; other blocks such as a
//! private key in a combined file are skipped) or DER (one certificate or
//! several concatenated). The first certificate is the leaf, the rest is
//! the chain, as in certbot's `fullchain.pem` and lego's `.crt`.

use std::path::{Path, PathBuf};

use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// What is wrong with a certificate (or public key) or with what is asked of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaneError {
    #[error("the file is empty")]
    Empty,
    #[error("not a certificate: {0}")]
    NotCertificate(String),
    #[error("not a public key or certificate: {0}")]
    NotPublicKey(String),
    #[error(
        "the certificate {subject:?} expired on {date} (notAfter); \
         is this the newly issued one?"
    )]
    Expired {
        subject: String,
        /// notAfter, Unix seconds.
        not_after: i64,
        /// notAfter as `YYYY-MM-DD hh:mm:ss UTC`.
        date: String,
    },
    #[error(
        "usage {usage} ({name}) needs the issuer of the leaf {leaf:?} ({issuer:?}), \
         and the file holds no certificate that issued it: give the chain \
         (certbot: fullchain.pem)"
    )]
    NoIssuer {
        usage: u8,
        name: &'static str,
        leaf: String,
        issuer: String,
    },
    #[error("selector 0 (the full certificate) needs a certificate; this is only a public key")]
    NeedCertificate,
    #[error("TLSA {field} {value} is not supported (usage 0-3, selector 0-1, matching 0-2)")]
    Unsupported { field: &'static str, value: u8 },
}

/// A [`DaneError`] with the file it came from.
#[derive(Debug, thiserror::Error)]
pub enum CertFileError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: DaneError,
    },
}

/// One parsed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    spki: Vec<u8>,
    subject: String,
    issuer: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

impl Certificate {
    /// Parse one DER certificate (trailing bytes are an error).
    pub fn from_der(der: &[u8]) -> Result<Self, DaneError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| DaneError::NotCertificate(format!("X.509 DER: {e}")))?;
        if !rest.is_empty() {
            return Err(DaneError::NotCertificate(format!(
                "{} octets after the certificate",
                rest.len()
            )));
        }
        Ok(Self::from_parsed(&cert, der))
    }

    fn from_parsed(cert: &X509Certificate<'_>, der: &[u8]) -> Self {
        Self {
            der: der.to_vec(),
            spki: cert.public_key().raw.to_vec(),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        }
    }

    /// The whole certificate, DER (what selector 0 selects).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER SubjectPublicKeyInfo (what selector 1 selects).
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The subject, as text (`CN=mx1.example.org`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer, as text.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// notBefore, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// notAfter, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Err(Expired) when `now` (Unix seconds) is past notAfter.
    pub fn check_not_expired(&self, now: i64) -> Result<(), DaneError> {
        if now > self.not_after {
            return Err(DaneError::Expired {
                subject: self.subject.clone(),
                not_after: self.not_after,
                date: utc(self.not_after),
            });
        }
        Ok(())
    }
}

/// A leaf certificate and the certificates that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    certs: Vec<Certificate>,
    /// Index into `certs` of the certificate that issued the leaf.
    issuer: Option<usize>,
}

impl Chain {
    /// Parse a PEM or DER file's contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DaneError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(DaneError::Empty);
        }
        let ders = if is_pem(bytes) {
            pem_blocks(bytes, |label| label == "CERTIFICATE")?
        } else {
            der_sequence(bytes)?
        };
        if ders.is_empty() {
            return Err(DaneError::NotCertificate(
                "no CERTIFICATE block in the PEM file".into(),
            ));
        }
        let parsed: Vec<X509Certificate<'_>> = ders
            .iter()
            .enumerate()
            .map(|(i, der)| match X509Certificate::from_der(der) {
                Ok(([], c)) => Ok(c),
                Ok(_) => Err(DaneError::NotCertificate(format!(
                    "certificate {} has trailing octets",
                    i + 1
                ))),
                Err(e) => Err(DaneError::NotCertificate(format!(
                    "certificate {}: {e}",
                    i + 1
                ))),
            })
            .collect::<Result<_, _>>()?;
        let issuer = find_issuer(&parsed);
        let certs = parsed
            .iter()
            .zip(&ders)
            .map(|(c, der)| Certificate::from_parsed(c, der))
            .collect();
        Ok(Self { certs, issuer })
    }

    /// Read and parse a file; errors name the file.
    pub fn read(path: &Path) -> Result<Self, CertFileError> {
        let bytes = std::fs::read(path).map_err(|source| CertFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|source| CertFileError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The first certificate: the server's own.
    pub fn leaf(&self) -> &Certificate {
        &self.certs[0]
    }

    /// The certificate in the chain that issued the leaf: its subject is the
    /// leaf's issuer and, where ring can check the algorithm, its key
    /// verifies the leaf's signature.
    pub fn issuer(&self) -> Option<&Certificate> {
        self.issuer.map(|i| &self.certs[i])
    }

    /// Every certificate, leaf first.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certs
    }
}

/// A next key pre-published beside the current one (RFC 7671 §8.1,
/// "current + next"): a public key, or a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextKey {
    PublicKey { spki: Vec<u8> },
    Certificate(Certificate),
}

impl NextKey {
    /// Parse PEM (`PUBLIC KEY` or `CERTIFICATE`, the first such block) or
    /// DER (a SubjectPublicKeyInfo or a certificate).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DaneError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(DaneError::Empty);
        }
        if is_pem(bytes) {
            for block in Pem::iter_from_buffer(bytes) {
                let block = block.map_err(|e| DaneError::NotPublicKey(format!("PEM: {e}")))?;
                match block.label.as_str() {
                    "PUBLIC KEY" => return spki_only(&block.contents),
                    "CERTIFICATE" => {
                        return Certificate::from_der(&block.contents).map(Self::Certificate);
                    }
                    "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
                        return Err(DaneError::NotPublicKey(
                            "this is a private key: give its public half \
                             (openssl pkey -in KEY -pubout -out next.pub)"
                                .into(),
                        ));
                    }
                    _ => {}
                }
            }
            return Err(DaneError::NotPublicKey(
                "no PUBLIC KEY or CERTIFICATE block in the PEM file".into(),
            ));
        }
        match Certificate::from_der(bytes) {
            Ok(c) => Ok(Self::Certificate(c)),
            Err(_) => spki_only(bytes),
        }
    }

    /// Read and parse a file; errors name the file.
    pub fn read(path: &Path) -> Result<Self, CertFileError> {
        let bytes = std::fs::read(path).map_err(|source| CertFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|source| CertFileError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> &[u8] {
        match self {
            Self::PublicKey { spki } => spki,
            Self::Certificate(c) => c.spki(),
        }
    }

    /// The whole certificate, when there is one.
    pub fn der(&self) -> Option<&[u8]> {
        match self {
            Self::PublicKey { .. } => None,
            Self::Certificate(c) => Some(c.der()),
        }
    }
}

fn spki_only(der: &[u8]) -> Result<NextKey, DaneError> {
    match SubjectPublicKeyInfo::from_der(der) {
        Ok(([], spki)) => Ok(NextKey::PublicKey {
            spki: spki.raw.to_vec(),
        }),
        Ok(_) => Err(DaneError::NotPublicKey(
            "trailing octets after the key".into(),
        )),
        Err(e) => Err(DaneError::NotPublicKey(format!(
            "neither an X.509 certificate nor a SubjectPublicKeyInfo: {e}"
        ))),
    }
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The DER contents of every PEM block whose label `want` accepts.
fn pem_blocks(bytes: &[u8], want: impl Fn(&str) -> bool) -> Result<Vec<Vec<u8>>, DaneError> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(bytes) {
        let block = block.map_err(|e| DaneError::NotCertificate(format!("PEM: {e}")))?;
        if want(&block.label) {
            out.push(block.contents);
        }
    }
    Ok(out)
}

/// Split concatenated DER certificates (each one a SEQUENCE).
fn der_sequence(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DaneError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (after, _) = X509Certificate::from_der(rest).map_err(|e| {
            DaneError::NotCertificate(if out.is_empty() {
                format!("neither PEM nor an X.509 DER certificate ({e})")
            } else {
                format!("certificate {} of the DER file: {e}", out.len() + 1)
            })
        })?;
        out.push(rest[..rest.len() - after.len()].to_vec());
        rest = after;
    }
    Ok(out)
}

/// The index (in `certs`, never 0) of the certificate that issued `certs[0]`.
fn find_issuer(certs: &[X509Certificate<'_>]) -> Option<usize> {
    let leaf = certs.first()?;
    let named: Vec<usize> = (1..certs.len())
        .filter(|&i| certs[i].subject().as_raw() == leaf.issuer().as_raw())
        .collect();
    // Prefer a certificate whose key verifies the leaf's signature; when ring
    // cannot check the algorithm, the name alone decides.
    let mut unsure = None;
    for i in named {
        match leaf.verify_signature(Some(certs[i].public_key())) {
            Ok(()) => return Some(i),
            Err(X509Error::SignatureUnsupportedAlgorithm) => {
                unsure.get_or_insert(i);
            }
            Err(_) => {}
        }
    }
    unsure
}

/// `YYYY-MM-DD hh:mm:ss UTC` for Unix seconds.
pub use crate::clock::utc;

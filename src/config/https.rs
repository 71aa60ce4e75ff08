//! `https`, `https-cert`, `https-key` and `[https-acme]` (issue 14, item
//! 4): an HTTPS listener for the HTTP API, with a certificate from files
//! or from an ACME CA by DNS-01 through the server's own zone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;
use serde::Deserialize;

use crate::diag::FileError;

/// `[https-acme]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpsAcmeFile {
    /// The ACME directory URL, or "letsencrypt" / "letsencrypt-staging".
    pub directory: String,
    /// The names the certificate is for.
    pub names: Vec<toml::Spanned<String>>,
    /// Account contacts ("mailto:..."), optional.
    pub contact: Option<Vec<String>>,
    /// A PEM file with the CA certificate the directory's own HTTPS is
    /// checked against, for test CAs (pebble); default: the system's roots.
    pub ca_root: Option<String>,
    /// Renew this many seconds before expiry (default: a third of the
    /// certificate's lifetime, at most 30 days).
    pub renew_before: Option<u64>,
    /// How often the certificate is checked, and a failed order retried,
    /// in seconds (default 3600).
    pub check_interval: Option<u64>,
    /// How long to wait for every nameserver of the zone to serve the
    /// challenge before telling the CA, in seconds (default 300).
    pub propagation_timeout: Option<u64>,
}

/// Where the HTTPS listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files, reloaded when they change.
    Files { cert: PathBuf, key: PathBuf },
    /// The server's own ACME order.
    Acme(HttpsAcme),
}

/// The validated `[https-acme]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsAcme {
    pub directory: String,
    pub names: Vec<Name>,
    pub contact: Vec<String>,
    pub ca_root: Option<PathBuf>,
    pub renew_before: Option<Duration>,
    pub check_interval: Duration,
    pub propagation_timeout: Duration,
}

pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Https {
    pub addr: SocketAddr,
    pub cert: CertSource,
}

/// What the config file says of HTTPS, validated.
pub(super) fn from_file(
    https: Option<toml::Spanned<String>>,
    cert: Option<String>,
    key: Option<String>,
    acme: Option<HttpsAcmeFile>,
    rel: impl Fn(String) -> PathBuf,
    path: &Path,
    text: &str,
) -> Result<Option<Https>, FileError> {
    let whole = |msg: &str| FileError::whole_file(path, msg.to_string());
    let Some(addr) = https.filter(|a| a.get_ref() != "off") else {
        if cert.is_some() || key.is_some() || acme.is_some() {
            return Err(whole(
                "https-cert, https-key and [https-acme] need an https listener address (https = \"ADDR:PORT\")",
            ));
        }
        return Ok(None);
    };
    let addr = addr.get_ref().parse::<SocketAddr>().map_err(|_| {
        FileError::at_offset(
            path,
            text,
            addr.span().start,
            format!(
                "https address {:?} is not ADDR:PORT or \"off\"",
                addr.get_ref()
            ),
        )
    })?;
    let cert = match (cert, key, acme) {
        (Some(cert), Some(key), None) => CertSource::Files {
            cert: rel(cert),
            key: rel(key),
        },
        (None, None, Some(a)) => CertSource::Acme(acme_from_file(a, rel, path, text)?),
        (None, None, None) => {
            return Err(whole(
                "https needs a certificate: https-cert and https-key (PEM files), or [https-acme]",
            ));
        }
        (Some(_), None, None) | (None, Some(_), None) => {
            return Err(whole("https-cert and https-key go together"));
        }
        _ => {
            return Err(whole(
                "https: either https-cert/https-key or [https-acme], not both",
            ));
        }
    };
    Ok(Some(Https { addr, cert }))
}

fn acme_from_file(
    a: HttpsAcmeFile,
    rel: impl Fn(String) -> PathBuf,
    path: &Path,
    text: &str,
) -> Result<HttpsAcme, FileError> {
    let directory = match a.directory.as_str() {
        "letsencrypt" => LETSENCRYPT.to_string(),
        "letsencrypt-staging" => LETSENCRYPT_STAGING.to_string(),
        url if url.starts_with("https://") => url.to_string(),
        other => {
            return Err(FileError::whole_file(
                path,
                format!(
                    "[https-acme] directory {other:?}: an https:// URL, \"letsencrypt\" or \"letsencrypt-staging\""
                ),
            ));
        }
    };
    if a.names.is_empty() {
        return Err(FileError::whole_file(
            path,
            "[https-acme] names: at least one name",
        ));
    }
    let mut names = Vec::new();
    for n in &a.names {
        let name = Name::from_ascii(n.get_ref())
            .ok()
            .filter(|name| !n.get_ref().is_empty() && !name.is_root() && !name.is_wildcard())
            .ok_or_else(|| {
                FileError::at_offset(
                    path,
                    text,
                    n.span().start,
                    format!(
                        "[https-acme] names: {:?} is not a host name (no wildcards)",
                        n.get_ref()
                    ),
                )
            })?;
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        names.push(name);
    }
    let contact = a.contact.unwrap_or_default();
    if let Some(c) = contact.iter().find(|c| !c.starts_with("mailto:")) {
        return Err(FileError::whole_file(
            path,
            format!("[https-acme] contact {c:?}: a mailto: URL"),
        ));
    }
    Ok(HttpsAcme {
        directory,
        names,
        contact,
        ca_root: a.ca_root.map(rel),
        renew_before: a.renew_before.map(Duration::from_secs),
        check_interval: Duration::from_secs(a.check_interval.unwrap_or(3600).max(1)),
        propagation_timeout: Duration::from_secs(a.propagation_timeout.unwrap_or(300).max(1)),
    })
}

//! A zone's signing key: a CSK (Combined Signing Key, DNSKEY flags 257:
//! Zone Key + Secure Entry Point, RFC 4034 §2.1.1, RFC 3757) per zone, and
//! what is derived from it: the DNSKEY, its key tag (RFC 4034 Appendix B),
//! the DS for the parent (SHA-256, digest type 2, RFC 4509) and the CDS and
//! CDNSKEY the zone publishes for its parent (RFC 7344 §3, RFC 8078).
//!
//! The private key is generated on first start with hickory-proto (ring)
//! and kept as PKCS#8 DER in `<data-dir>/dnssec/<zone>.pk8`, mode 0600. It
//! is written to a temporary file first and then linked into place, so a
//! crash never leaves half a key and an existing key is never overwritten.
//!
//! # Limitations
//!
//! The key material is a file (no HSM/PKCS#11); which keys a zone uses, and
//! in which state, is the database's (`zone::keys`, `dnssec::roll`).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::{CDNSKEY, CDS, DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{DigestType, PublicKey, PublicKeyBuf, SigningKey, TBS};
use hickory_proto::rr::{Name, RData, Record};

use super::KeyAlgorithm;

/// DNSKEY flags of a CSK: Zone Key (bit 7) and Secure Entry Point (bit 15).
pub const CSK_FLAGS: u16 = 257;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("DNSSEC key {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("DNSSEC key {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("DNSSEC key {path} is {found} but the zone file asks for {configured}")]
    AlgorithmMismatch {
        path: PathBuf,
        found: &'static str,
        configured: &'static str,
    },
    #[error(
        "no DNSSEC key for {zone} in {path}: start the server once (it creates the key on first start)"
    )]
    Missing { zone: Name, path: PathBuf },
}

/// One zone's signing key and its public records.
pub struct ZoneKey {
    pub zone: Name,
    pub algorithm: KeyAlgorithm,
    pub path: PathBuf,
    signing: Box<dyn SigningKey>,
    public: PublicKeyBuf,
    dnskey: DNSKEY,
    key_tag: u16,
}

impl std::fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneKey")
            .field("zone", &self.zone)
            .field("algorithm", &self.algorithm)
            .field("key_tag", &self.key_tag)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The file name of a zone's first key: its name without the final dot,
/// every octet that is not a letter, digit, `-`, `_` or `.` written as
/// `%XX`; later keys (rollovers) add `+<tag>+<created>` before `.pk8`.
pub fn key_path(data_dir: &Path, zone: &Name) -> PathBuf {
    key_dir(data_dir).join(format!("{}.pk8", file_stem(zone)))
}

/// CDS "delete" (RFC 8078 §4): `0 0 0 00`.
pub fn cds_delete() -> RData {
    RData::DNSSEC(DNSSECRData::CDS(CDS::new(
        0,
        None,
        DigestType::Unknown(0),
        vec![0],
    )))
}

/// CDNSKEY "delete" (RFC 8078 §4): `0 3 0 AA==`.
pub fn cdnskey_delete() -> RData {
    RData::DNSSEC(DNSSECRData::CDNSKEY(CDNSKEY::with_flags(0, None, vec![0])))
}

/// Where the key files are.
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("dnssec")
}

fn file_stem(zone: &Name) -> String {
    let ascii = zone.to_lowercase().to_ascii();
    let mut stem = String::new();
    for b in ascii.trim_end_matches('.').bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            stem.push(b as char);
        } else {
            stem.push_str(&format!("%{b:02X}"));
        }
    }
    if stem.is_empty() || stem.starts_with('.') {
        stem.insert(0, '%');
    }
    stem
}

fn decode(bytes: Vec<u8>) -> Option<(KeyAlgorithm, Box<dyn SigningKey>)> {
    let ecdsa: Result<EcdsaSigningKey, _> = EcdsaSigningKey::from_pkcs8(
        &bytes.clone().into(),
        KeyAlgorithm::EcdsaP256Sha256.dnssec(),
    );
    if let Ok(k) = ecdsa {
        return Some((KeyAlgorithm::EcdsaP256Sha256, Box::new(k)));
    }
    Ed25519SigningKey::from_pkcs8(&bytes.into())
        .ok()
        .map(|k| (KeyAlgorithm::Ed25519, Box::new(k) as Box<dyn SigningKey>))
}

fn generate(algorithm: KeyAlgorithm) -> Option<Vec<u8>> {
    let der = match algorithm {
        KeyAlgorithm::EcdsaP256Sha256 => EcdsaSigningKey::generate_pkcs8(algorithm.dnssec()),
        KeyAlgorithm::Ed25519 => Ed25519SigningKey::generate_pkcs8(),
    }
    .ok()?;
    Some(der.secret_pkcs8_der().to_vec())
}

/// Write `bytes` to `path` (mode 0600) unless it exists: temp file, fsync,
/// hard link into place (fails if the target exists), fsync the directory.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

impl ZoneKey {
    fn from_parts(
        zone: &Name,
        path: PathBuf,
        algorithm: KeyAlgorithm,
        signing: Box<dyn SigningKey>,
    ) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            path: path.clone(),
            reason,
        };
        let public = signing
            .to_public_key()
            .map_err(|e| invalid(format!("no public key: {e}")))?;
        let dnskey = DNSKEY::with_flags(CSK_FLAGS, public.clone());
        let key_tag = dnskey
            .calculate_key_tag()
            .map_err(|e| invalid(format!("key tag: {e}")))?;
        Ok(Self {
            zone: zone.to_lowercase(),
            algorithm,
            path,
            signing,
            public,
            dnskey,
            key_tag,
        })
    }

    /// Read the key of `zone` from `path`.
    pub fn load(zone: &Name, path: &Path) -> Result<Self, KeyError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing {
                    zone: zone.clone(),
                    path: path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(KeyError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %path.display(), "DNSSEC private key is readable by others; chmod 600 it");
        }
        let (algorithm, signing) = decode(bytes).ok_or_else(|| KeyError::Invalid {
            path: path.to_path_buf(),
            reason: "not a PKCS#8 ECDSA P-256 or Ed25519 private key".into(),
        })?;
        Self::from_parts(zone, path.to_path_buf(), algorithm, signing)
    }

    /// The zone's key from `<data_dir>/dnssec/`, generated if there is none.
    /// Returns the key and whether it was just made.
    pub fn load_or_create(
        data_dir: &Path,
        zone: &Name,
        algorithm: KeyAlgorithm,
    ) -> Result<(Self, bool), KeyError> {
        let path = key_path(data_dir, zone);
        let created = if path.exists() {
            false
        } else {
            let bytes = generate(algorithm).ok_or_else(|| KeyError::Invalid {
                path: path.clone(),
                reason: "cannot generate a key (no randomness?)".into(),
            })?;
            match write_new(&path, &bytes) {
                Ok(()) => true,
                // made by someone else in between: use theirs
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(source) => {
                    return Err(KeyError::Io {
                        path: path.clone(),
                        source,
                    });
                }
            }
        };
        let key = Self::load(zone, &path)?;
        if key.algorithm != algorithm {
            return Err(KeyError::AlgorithmMismatch {
                path,
                found: key.algorithm.config_name(),
                configured: algorithm.config_name(),
            });
        }
        Ok((key, created))
    }

    /// A new key for a rollover, in its own file
    /// (`<zone>+<tag>+<created>.pk8`, never overwriting one). Returns the
    /// key and its file name.
    pub fn create_next(
        data_dir: &Path,
        zone: &Name,
        algorithm: KeyAlgorithm,
        now: u64,
    ) -> Result<(Self, String), KeyError> {
        let dir = key_dir(data_dir);
        for attempt in 0..8u64 {
            let bytes = generate(algorithm).ok_or_else(|| KeyError::Invalid {
                path: dir.clone(),
                reason: "cannot generate a key (no randomness?)".into(),
            })?;
            let (alg, signing) = decode(bytes.clone()).ok_or_else(|| KeyError::Invalid {
                path: dir.clone(),
                reason: "a key just made does not decode".into(),
            })?;
            let probe = Self::from_parts(zone, dir.clone(), alg, signing)?;
            let file = format!(
                "{}+{:05}+{}.pk8",
                file_stem(zone),
                probe.key_tag,
                now + attempt
            );
            let path = dir.join(&file);
            match write_new(&path, &bytes) {
                Ok(()) => return Ok((Self::load(zone, &path)?, file)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(KeyError::Io { path, source }),
            }
        }
        Err(KeyError::Invalid {
            path: dir,
            reason: "no free file name for a new key".into(),
        })
    }

    /// The file name of this key in `<data-dir>/dnssec/`.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn key_tag(&self) -> u16 {
        self.key_tag
    }

    /// Whether `sig` claims to be made by this key (tag, algorithm, signer).
    pub fn made(&self, sig: &hickory_proto::dnssec::rdata::SigInput) -> bool {
        sig.key_tag == self.key_tag
            && sig.algorithm == self.algorithm.dnssec()
            && sig.signer_name == self.zone
    }

    pub fn dnskey(&self) -> &DNSKEY {
        &self.dnskey
    }

    pub fn public_key(&self) -> &PublicKeyBuf {
        &self.public
    }

    pub fn sign(&self, tbs: &TBS) -> Option<Vec<u8>> {
        self.signing.sign(tbs).ok()
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.public.verify(message, signature).is_ok()
    }

    /// The DS (SHA-256) the parent publishes for this key.
    pub fn ds(&self) -> DS {
        let digest = self
            .dnskey
            .to_digest(&self.zone, DigestType::SHA256)
            .map(|d| d.as_ref().to_vec())
            .unwrap_or_default();
        DS::new(
            self.key_tag,
            self.algorithm.dnssec(),
            DigestType::SHA256,
            digest,
        )
    }

    pub fn dnskey_rdata(&self) -> RData {
        RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone()))
    }

    /// CDS: the DS the parent should hold (RFC 7344 §3.1).
    pub fn cds_rdata(&self) -> RData {
        let ds = self.ds();
        RData::DNSSEC(DNSSECRData::CDS(CDS::new(
            ds.key_tag(),
            Some(ds.algorithm()),
            ds.digest_type(),
            ds.digest().to_vec(),
        )))
    }

    /// CDNSKEY: the DNSKEY the parent should make its DS from (RFC 7344 §3.2).
    pub fn cdnskey_rdata(&self) -> RData {
        RData::DNSSEC(DNSSECRData::CDNSKEY(CDNSKEY::with_flags(
            CSK_FLAGS,
            Some(self.algorithm.dnssec()),
            self.public.public_bytes().to_vec(),
        )))
    }

    /// DS and DNSKEY as records, for `zonewarden ds`.
    pub fn parent_records(&self, ttl: u32) -> (Record, Record) {
        (
            Record::from_rdata(
                self.zone.clone(),
                ttl,
                RData::DNSSEC(DNSSECRData::DS(self.ds())),
            ),
            Record::from_rdata(self.zone.clone(), ttl, self.dnskey_rdata()),
        )
    }
}

//! The six TSIG MAC algorithms of RFC 8945 §6: names (wire and key file),
//! lengths (§5.2.2.1 truncation floor) and the HMAC itself.
//!
//! HMAC is ring's `hmac` for SHA-1, SHA-256, SHA-384 and SHA-512 (the
//! algorithms ring offers, with its assembly SHA-2), and RustCrypto's
//! `hmac` crate for the two it does not: HMAC-MD5 (over `md-5`; certbot's
//! default) and HMAC-SHA224 (over `sha2`).

use std::fmt;

use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hmac::{Hmac, Mac};
use md5::Md5;
use ring::hmac as ring_hmac;
use sha2::Sha224;

/// A TSIG MAC algorithm (RFC 8945 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `HMAC-MD5.SIG-ALG.REG.INT`: certbot's dns-rfc2136 default.
    HmacMd5,
    /// `hmac-sha1`: mandatory to implement; lego's default.
    HmacSha1,
    /// `hmac-sha224`.
    HmacSha224,
    /// `hmac-sha256`: mandatory to implement, recommended.
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 6] = [
        Self::HmacMd5,
        Self::HmacSha1,
        Self::HmacSha224,
        Self::HmacSha256,
        Self::HmacSha384,
        Self::HmacSha512,
    ];

    /// The algorithm name as sent on the wire, without the trailing dot.
    fn wire_text(self) -> &'static str {
        match self {
            Self::HmacMd5 => "hmac-md5.sig-alg.reg.int",
            Self::HmacSha1 => "hmac-sha1",
            Self::HmacSha224 => "hmac-sha224",
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// Recognises a wire algorithm name, case-insensitively.
    pub fn from_name(name: &Name) -> Option<Self> {
        let text = name.to_ascii();
        let text = text.strip_suffix('.').unwrap_or(&text);
        Self::ALL
            .into_iter()
            .find(|alg| alg.wire_text().eq_ignore_ascii_case(text))
    }

    /// Recognises an algorithm as written in a BIND key file (`hmac-md5`,
    /// `HMAC-SHA256`, `hmac-md5.sig-alg.reg.int.`, ...).
    pub fn from_key_file(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s.strip_suffix('.').unwrap_or(s);
        Self::ALL.into_iter().find(|alg| {
            alg.key_file_name().eq_ignore_ascii_case(s) || alg.wire_text().eq_ignore_ascii_case(s)
        })
    }

    /// The wire name, fully qualified (`hmac-sha256.`).
    pub fn name(self) -> Name {
        // The literals are valid names; the fallback is unreachable.
        Name::from_ascii(format!("{}.", self.wire_text())).unwrap_or_else(|_| Name::root())
    }

    /// The name `tsig-keygen` writes (`hmac-md5`, `hmac-sha256`, ...).
    pub fn key_file_name(self) -> &'static str {
        match self {
            Self::HmacMd5 => "hmac-md5",
            other => other.wire_text(),
        }
    }

    /// Length of the untruncated MAC, in octets.
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacMd5 => 16,
            Self::HmacSha1 => 20,
            Self::HmacSha224 => 28,
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }

    /// Shortest MAC RFC 8945 §5.2.2.1 allows: "the larger of 10 (octets) and
    /// half the length of the hash function in use" (rounded up).
    pub fn min_mac_len(self) -> usize {
        self.output_len().div_ceil(2).max(10)
    }

    /// The same algorithm as hickory's type.
    pub fn to_hickory(self) -> TsigAlgorithm {
        match self {
            Self::HmacMd5 => TsigAlgorithm::HmacMd5,
            Self::HmacSha1 => TsigAlgorithm::HmacSha1,
            Self::HmacSha224 => TsigAlgorithm::HmacSha224,
            Self::HmacSha256 => TsigAlgorithm::HmacSha256,
            Self::HmacSha384 => TsigAlgorithm::HmacSha384,
            Self::HmacSha512 => TsigAlgorithm::HmacSha512,
        }
    }

    /// The full, untruncated HMAC of `data` under `secret`.
    pub(super) fn hmac(self, secret: &[u8], data: &[u8]) -> Vec<u8> {
        let ring_algorithm = match self {
            Self::HmacMd5 => return rustcrypto_hmac::<Hmac<Md5>>(secret, data),
            Self::HmacSha224 => return rustcrypto_hmac::<Hmac<Sha224>>(secret, data),
            Self::HmacSha1 => ring_hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::HmacSha256 => ring_hmac::HMAC_SHA256,
            Self::HmacSha384 => ring_hmac::HMAC_SHA384,
            Self::HmacSha512 => ring_hmac::HMAC_SHA512,
        };
        ring_hmac::sign(&ring_hmac::Key::new(ring_algorithm, secret), data)
            .as_ref()
            .to_vec()
    }
}

/// HMAC with the `hmac` crate. HMAC takes a key of any length (RFC 2104 §3),
/// so `new_from_slice` cannot fail; were it to, the empty MAC it returns
/// matches nothing ([`super::Key::mac_matches`] refuses MACs shorter than
/// RFC 8945 §5.2.2.1 allows).
fn rustcrypto_hmac<M: Mac + hmac::digest::KeyInit>(secret: &[u8], data: &[u8]) -> Vec<u8> {
    match <M as Mac>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key_file_name())
    }
}

//! Certificate → TLSA rdata, TLSA rdata ↔ certificate matching, and the
//! owner names `_<port>._<proto>.<host>` (RFC 6698 §3).

use std::fmt;
use std::str::FromStr;

use hickory_proto::rr::rdata::TLSA;
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::{Name, RData, Record};

use super::cert::{Certificate, Chain, DaneError, NextKey};

/// The three numbers in front of a TLSA record's data, checked to be ones
/// this module computes: usage 0-3 (RFC 6698 §2.1.1, names from RFC 7218),
/// selector 0-1 (§2.1.2), matching 0-2 (§2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlsaParams {
    usage: u8,
    selector: u8,
    matching: u8,
}

impl TlsaParams {
    /// `3 1 1`: DANE-EE, SPKI, SHA2-256 (RFC 7671 §5.1 recommends it).
    pub const DANE_EE_SPKI_SHA256: Self = Self {
        usage: 3,
        selector: 1,
        matching: 1,
    };

    pub fn new(usage: u8, selector: u8, matching: u8) -> Result<Self, DaneError> {
        if usage > 3 {
            return Err(DaneError::Unsupported {
                field: "usage",
                value: usage,
            });
        }
        if selector > 1 {
            return Err(DaneError::Unsupported {
                field: "selector",
                value: selector,
            });
        }
        if matching > 2 {
            return Err(DaneError::Unsupported {
                field: "matching",
                value: matching,
            });
        }
        Ok(Self {
            usage,
            selector,
            matching,
        })
    }

    /// The same numbers as a record carries them, when supported.
    pub fn of(rr: &TLSA) -> Result<Self, DaneError> {
        Self::new(
            u8::from(rr.cert_usage),
            u8::from(rr.selector),
            u8::from(rr.matching),
        )
    }

    pub fn usage(self) -> u8 {
        self.usage
    }
    pub fn selector(self) -> u8 {
        self.selector
    }
    pub fn matching(self) -> u8 {
        self.matching
    }

    /// Usages 1 and 3 name the server's own certificate; 0 and 2 a trust
    /// anchor above it (RFC 6698 §2.1.1).
    pub fn is_end_entity(self) -> bool {
        matches!(self.usage, 1 | 3)
    }

    /// RFC 7218 acronym of the usage.
    pub fn usage_name(self) -> &'static str {
        match self.usage {
            0 => "PKIX-TA",
            1 => "PKIX-EE",
            2 => "DANE-TA",
            _ => "DANE-EE",
        }
    }
}

impl Default for TlsaParams {
    fn default() -> Self {
        Self::DANE_EE_SPKI_SHA256
    }
}

impl fmt::Display for TlsaParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.usage, self.selector, self.matching)
    }
}

impl FromStr for TlsaParams {
    type Err = String;

    /// `"3 1 1"` (or `3-1-1`, `3,1,1`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s
            .split(|c: char| c.is_ascii_whitespace() || c == '-' || c == ',')
            .filter(|p| !p.is_empty())
            .collect();
        let [u, sel, m] = parts[..] else {
            return Err(format!("{s:?}: want three numbers, e.g. \"3 1 1\""));
        };
        let num = |p: &str| p.parse::<u8>().map_err(|e| format!("{p:?}: {e}"));
        Self::new(num(u)?, num(sel)?, num(m)?).map_err(|e| e.to_string())
    }
}

/// The certificate association data (RFC 6698 §2.1.2-2.1.4): the full
/// certificate (selector 0) or its SubjectPublicKeyInfo (1), as it is
/// (matching 0), or its SHA2-256 (1) or SHA2-512 (2) digest.
pub fn association(
    cert_der: Option<&[u8]>,
    spki: &[u8],
    params: TlsaParams,
) -> Result<Vec<u8>, DaneError> {
    let selected = match params.selector {
        0 => cert_der.ok_or(DaneError::NeedCertificate)?,
        _ => spki,
    };
    Ok(match params.matching {
        0 => selected.to_vec(),
        1 => ring::digest::digest(&ring::digest::SHA256, selected)
            .as_ref()
            .to_vec(),
        _ => ring::digest::digest(&ring::digest::SHA512, selected)
            .as_ref()
            .to_vec(),
    })
}

fn rdata(params: TlsaParams, data: Vec<u8>) -> TLSA {
    TLSA::new(
        CertUsage::from(params.usage),
        Selector::from(params.selector),
        Matching::from(params.matching),
        data,
    )
}

fn of_certificate(cert: &Certificate, params: TlsaParams) -> TLSA {
    let data = association(Some(cert.der()), cert.spki(), params)
        .expect("a certificate satisfies every selector");
    rdata(params, data)
}

/// The TLSA rdata for a chain: from the leaf for usages 1 and 3, from the
/// certificate that issued the leaf for 0 and 2. A leaf expired at `now`
/// (Unix seconds) is refused: DANE-EE clients ignore the dates (RFC 7671
/// §5.1), but an expired "new" certificate is the wrong file.
pub fn tlsa(chain: &Chain, params: TlsaParams, now: i64) -> Result<TLSA, DaneError> {
    chain.leaf().check_not_expired(now)?;
    let cert = if params.is_end_entity() {
        chain.leaf()
    } else {
        chain.issuer().ok_or_else(|| DaneError::NoIssuer {
            usage: params.usage,
            name: params.usage_name(),
            leaf: chain.leaf().subject().to_string(),
            issuer: chain.leaf().issuer().to_string(),
        })?
    };
    Ok(of_certificate(cert, params))
}

/// [`tlsa`] straight from a PEM or DER file's contents (the HTTP API's entry).
pub fn tlsa_from_pem(bytes: &[u8], params: TlsaParams, now: i64) -> Result<TLSA, DaneError> {
    tlsa(&Chain::from_bytes(bytes)?, params, now)
}

/// The TLSA rdata for a pre-published next key, with the same parameters.
pub fn tlsa_for_next(next: &NextKey, params: TlsaParams) -> Result<TLSA, DaneError> {
    Ok(rdata(params, association(next.der(), next.spki(), params)?))
}

/// Does this record authenticate a server presenting `chain`? Usages 1 and
/// 3 are compared with the leaf, 0 and 2 with every other certificate of
/// the chain; any selector and matching type this module knows. Records
/// with other parameters match nothing.
pub fn chain_matches(chain: &Chain, rr: &TLSA) -> bool {
    let Ok(params) = TlsaParams::of(rr) else {
        return false;
    };
    let candidates: &[Certificate] = if params.is_end_entity() {
        &chain.certificates()[..1]
    } else {
        &chain.certificates()[1..]
    };
    candidates
        .iter()
        .any(|c| of_certificate(c, params).cert_data == rr.cert_data)
}

/// Does this record name the next key (any usage; any selector the key
/// allows)?
pub fn next_matches(next: &NextKey, rr: &TLSA) -> bool {
    TlsaParams::of(rr)
        .ok()
        .and_then(|p| association(next.der(), next.spki(), p).ok())
        .is_some_and(|data| data == rr.cert_data)
}

/// Same parameters and data.
pub fn same_tlsa(a: &TLSA, b: &TLSA) -> bool {
    u8::from(a.cert_usage) == u8::from(b.cert_usage)
        && u8::from(a.selector) == u8::from(b.selector)
        && u8::from(a.matching) == u8::from(b.matching)
        && a.cert_data == b.cert_data
}

/// The owner name `_<port>._<proto>.<host>` (RFC 6698 §3). `host` is
/// absolute when it ends in a dot; otherwise it is relative to `zone`, or
/// stays relative when there is no zone (zone-file form). `@` is the zone
/// apex.
pub fn owner(port: u16, proto: &str, host: &str, zone: Option<&Name>) -> Result<Name, String> {
    if proto.is_empty()
        || !proto
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(format!("protocol {proto:?}: want tcp, udp or sctp"));
    }
    let text = if host == "@" {
        format!("_{port}._{proto}")
    } else {
        format!("_{port}._{proto}.{host}")
    };
    let name = Name::from_ascii(&text).map_err(|e| format!("host {host:?}: {e}"))?;
    match zone {
        Some(z) if !name.is_fqdn() => name
            .append_domain(z)
            .map_err(|e| format!("{text}.{z}: {e}")),
        _ => Ok(name),
    }
}

/// One zone-file line: `_25._tcp.mx1 300 IN TLSA 3 1 1 <hex>`.
pub fn zone_line(owner: &Name, ttl: u32, rr: &TLSA) -> String {
    format!("{owner} {ttl} IN TLSA {rr}")
}

/// A TLSA record ready for an UPDATE.
pub fn record(owner: &Name, ttl: u32, rr: &TLSA) -> Record {
    Record::from_rdata(owner.clone(), ttl, RData::TLSA(rr.clone()))
}

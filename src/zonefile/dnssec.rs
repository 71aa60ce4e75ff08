//! The zone file's `[dnssec]` table (or `dnssec = true/false`): the key
//! algorithm, signature and key timings, the denial of existence, the
//! rollover's timings and the parent's nameservers.

use std::net::IpAddr;
use std::path::Path;

use hickory_proto::dnssec::Algorithm;
use serde::Deserialize;

use crate::diag::FileError;

/// A zone's signing algorithm (RFC 8624 §3.1: both MUST be signable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256, algorithm 13 (the default).
    EcdsaP256Sha256,
    /// Ed25519, algorithm 15.
    Ed25519,
}

impl KeyAlgorithm {
    /// The zone-file spelling.
    pub fn from_config(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsap256sha256" | "ecdsa-p256-sha256" | "13" => Some(Self::EcdsaP256Sha256),
            "ed25519" | "15" => Some(Self::Ed25519),
            _ => None,
        }
    }

    pub fn config_name(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ecdsap256sha256",
            Self::Ed25519 => "ed25519",
        }
    }

    pub fn dnssec(self) -> Algorithm {
        match self {
            Self::EcdsaP256Sha256 => Algorithm::ECDSAP256SHA256,
            Self::Ed25519 => Algorithm::ED25519,
        }
    }
}

/// How the zone proves that a name or type does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Denial {
    /// An NSEC chain (RFC 4034 §4), the default.
    #[default]
    Nsec,
    /// An NSEC3 chain (RFC 5155) with RFC 9276's parameters: SHA-1, no
    /// extra iterations, no salt, no opt-out.
    Nsec3,
}

impl Denial {
    /// The zone-file spelling.
    pub fn from_config(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "nsec" => Some(Self::Nsec),
            "nsec3" => Some(Self::Nsec3),
            _ => None,
        }
    }
}

/// A zone's DNSSEC settings, from its `[dnssec]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub algorithm: KeyAlgorithm,
    /// Seconds from signing to expiration (before jitter).
    pub signature_validity: u32,
    /// Signatures with less than this left are re-signed.
    pub refresh_before: u32,
    /// TTL of DNSKEY, CDS and CDNSKEY.
    pub dnskey_ttl: u32,
    /// A key rollover starts this long after a key became active; None:
    /// only on demand (`zonewarden dnssec roll`).
    pub key_lifetime: Option<u32>,
    /// Added to every TTL a rollover waits for (secondaries it does not
    /// track, clocks).
    pub propagation_delay: u32,
    /// The parent's nameservers to ask for the zone's DS; empty: found by
    /// resolving the parent zone's NS.
    pub parent_nameservers: Vec<std::net::SocketAddr>,
    /// How often the parent's DS is asked for while a step waits for it.
    pub parent_check_interval: u32,
    /// NSEC or NSEC3 (`denial`); a change is applied at the next start.
    pub denial: Denial,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            algorithm: KeyAlgorithm::EcdsaP256Sha256,
            signature_validity: 14 * 86_400,
            refresh_before: 7 * 86_400,
            dnskey_ttl: 3_600,
            key_lifetime: None,
            propagation_delay: 300,
            parent_nameservers: Vec::new(),
            parent_check_interval: 60,
            denial: Denial::Nsec,
        }
    }
}

/// The zone file's name for [`Settings`].
pub type DnssecSettings = Settings;

/// `dnssec = true|false`, or a `[dnssec]` table.
#[derive(Debug)]
pub(super) enum DnssecFile {
    Flag(bool),
    Table(DnssecTable),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct DnssecTable {
    enabled: Option<bool>,
    algorithm: Option<String>,
    signature_validity: Option<u32>,
    refresh_before: Option<u32>,
    dnskey_ttl: Option<u32>,
    key_lifetime: Option<u32>,
    propagation_delay: Option<u32>,
    parent_nameservers: Option<Vec<String>>,
    parent_check_interval: Option<u32>,
    denial: Option<String>,
}

impl<'de> Deserialize<'de> for DnssecFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DnssecFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or a [dnssec] table")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<DnssecFile, E> {
                Ok(DnssecFile::Flag(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<DnssecFile, A::Error> {
                DnssecTable::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(DnssecFile::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// An address with an optional port (53 by default).
fn parse_server(s: &str) -> Option<std::net::SocketAddr> {
    let s = s.trim();
    s.parse()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| (ip, 53).into()))
}

/// The validated `dnssec` setting: whether signing is on, and the settings
/// (also when it is off: they say how to turn it off).
pub(super) fn dnssec_settings(
    path: &Path,
    text: &str,
    f: Option<&toml::Spanned<DnssecFile>>,
    ttl_max: u32,
) -> Result<(bool, DnssecSettings), FileError> {
    let at = |span: std::ops::Range<usize>, msg: String| {
        FileError::at_offset(path, text, span.start, msg)
    };
    let defaults = DnssecSettings::default();
    let Some(f) = f else {
        return Ok((true, defaults));
    };
    let t = match f.get_ref() {
        DnssecFile::Flag(on) => return Ok((*on, defaults)),
        DnssecFile::Table(t) => t,
    };
    let algorithm = match &t.algorithm {
        None => defaults.algorithm,
        Some(a) => KeyAlgorithm::from_config(a).ok_or_else(|| {
            at(
                f.span(),
                format!("[dnssec] algorithm {a:?}: use \"ecdsap256sha256\" or \"ed25519\""),
            )
        })?,
    };
    let denial = match &t.denial {
        None => defaults.denial,
        Some(d) => Denial::from_config(d).ok_or_else(|| {
            at(
                f.span(),
                format!("[dnssec] denial {d:?}: use \"nsec\" (the default) or \"nsec3\""),
            )
        })?,
    };
    let s = DnssecSettings {
        algorithm,
        denial,
        signature_validity: t.signature_validity.unwrap_or(defaults.signature_validity),
        refresh_before: t.refresh_before.unwrap_or(defaults.refresh_before),
        dnskey_ttl: t.dnskey_ttl.unwrap_or(defaults.dnskey_ttl),
        key_lifetime: t.key_lifetime,
        propagation_delay: t.propagation_delay.unwrap_or(defaults.propagation_delay),
        parent_nameservers: t
            .parent_nameservers
            .iter()
            .flatten()
            .map(|a| {
                parse_server(a).ok_or_else(|| {
                    at(
                        f.span(),
                        format!("[dnssec] parent-nameservers: {a:?} is not an address (192.0.2.1, 192.0.2.1:5353, [2001:db8::1]:53)"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        parent_check_interval: t.parent_check_interval.unwrap_or(defaults.parent_check_interval).max(1),
    };
    if let Some(l) = s.key_lifetime
        && u64::from(l) < 2 * (u64::from(s.dnskey_ttl) + u64::from(s.propagation_delay))
    {
        return Err(at(
            f.span(),
            format!(
                "[dnssec] key-lifetime ({l} s) must be at least twice dnskey-ttl plus propagation-delay ({} s): a rollover takes that long",
                2 * (u64::from(s.dnskey_ttl) + u64::from(s.propagation_delay))
            ),
        ));
    }
    // The refresh timer runs hourly; a signature must outlive a missed run
    // plus the longest TTL a resolver may cache it for.
    let floor = (2 * 3600u32).max(2 * ttl_max);
    if s.refresh_before < floor || s.refresh_before >= s.signature_validity {
        return Err(at(
            f.span(),
            format!(
                "[dnssec] refresh-before ({}) must be at least {floor} s (2 h, and twice [ttl] max) and less than signature-validity ({})",
                s.refresh_before, s.signature_validity
            ),
        ));
    }
    Ok((t.enabled != Some(false), s))
}

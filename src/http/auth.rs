//! Request authentication for the HTTP API with a machine's own TSIG key,
//! so a machine needs no second secret.
//!
//! The client sends
//!
//! ```text
//! Authorization: TSIG-HMAC key="mx1.", time="1795374496", nonce="3f9c0a7e51b2d8c4", mac="<base64>"
//! ```
//!
//! where `mac` is the HMAC, with the key's own algorithm (hmac-sha256 by
//! default), of
//!
//! ```text
//! METHOD "\n" PATH "\n" TIME "\n" NONCE "\n" BODY
//! ```
//!
//! (`PATH` with its query string, `TIME` Unix seconds in decimal, `NONCE`
//! 8 to 64 characters of `[A-Za-z0-9_-]`, `BODY` the raw request body). The
//! server accepts it when the key is known, the MAC matches (constant
//! time), `TIME` is within the server's TSIG fudge (300 s) of its clock,
//! and the same MAC was not seen within the last 2 × fudge (replay check).
//! The body (a certificate) is public, so the scheme protects integrity and
//! authenticity, not confidentiality: plain HTTP is enough on a trusted
//! path, and a TLS proxy in front changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use subtle::ConstantTimeEq as _;

use crate::replay::ReplayCache;
use crate::tsig::{Key, KeyRing};

pub const SCHEME: &str = "TSIG-HMAC";

/// Why a request was not authenticated (each is a 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header (scheme {SCHEME})")]
    Missing,
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    #[error("unknown key")]
    UnknownKey,
    #[error("bad MAC")]
    BadMac,
    #[error("time outside the server's window of {fudge} s (server time {now})")]
    BadTime { now: u64, fudge: u64 },
    #[error("replayed request")]
    Replay,
}

/// The string the MAC covers.
fn signed_bytes(method: &str, path: &str, time: u64, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut data = format!("{method}\n{path}\n{time}\n{nonce}\n").into_bytes();
    data.extend_from_slice(body);
    data
}

fn random_nonce() -> String {
    let mut b = [0u8; 12];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The Authorization header value for a request (the client side).
pub fn authorization(key: &Key, method: &str, path: &str, body: &[u8], now: u64) -> String {
    let nonce = random_nonce();
    let mac = key.mac(&signed_bytes(method, path, now, &nonce, body));
    format!(
        "{SCHEME} key=\"{}\", time=\"{now}\", nonce=\"{nonce}\", mac=\"{}\"",
        key.name,
        BASE64.encode(mac)
    )
}

struct Parsed {
    key: String,
    time: u64,
    nonce: String,
    mac: Vec<u8>,
}

fn parse(header: &str) -> Result<Parsed, AuthError> {
    let rest = header
        .strip_prefix(SCHEME)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(AuthError::Malformed("scheme is not TSIG-HMAC"))?;
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(AuthError::Malformed("expected key=\"value\" pairs"))?;
        let v = v
            .trim()
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or(AuthError::Malformed("values must be quoted"))?;
        if fields.insert(k.trim(), v).is_some() {
            return Err(AuthError::Malformed("a field appears twice"));
        }
    }
    let get = |k: &'static str| {
        fields.get(k).copied().ok_or(AuthError::Malformed(
            "key, time, nonce and mac are required",
        ))
    };
    let nonce = get("nonce")?;
    if !(8..=64).contains(&nonce.len())
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AuthError::Malformed(
            "nonce must be 8 to 64 of [A-Za-z0-9_-]",
        ));
    }
    Ok(Parsed {
        key: get("key")?.to_string(),
        time: get("time")?
            .parse()
            .map_err(|_| AuthError::Malformed("time must be Unix seconds"))?,
        nonce: nonce.to_string(),
        mac: BASE64
            .decode(get("mac")?)
            .map_err(|_| AuthError::Malformed("mac must be base64"))?,
    })
}

/// Server-side verification with a replay cache shared by all requests.
pub struct Verifier {
    fudge: u64,
    /// MACs accepted within the last 2 × fudge: a request passes the time
    /// check at most that long after it was first accepted.
    seen: Mutex<ReplayCache>,
}

/// Most remembered MACs (oldest forgotten first).
const REPLAY_CAPACITY: usize = 100_000;

impl Verifier {
    pub fn new(fudge: u16) -> Self {
        let fudge = u64::from(fudge);
        Self {
            fudge,
            seen: Mutex::new(ReplayCache::new(2 * fudge, REPLAY_CAPACITY)),
        }
    }

    /// The key that signed this request, or why it is refused.
    pub fn verify(
        &self,
        header: Option<&str>,
        keys: &KeyRing,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
    ) -> Result<Arc<Key>, AuthError> {
        let p = parse(header.ok_or(AuthError::Missing)?)?;
        let name = crate::zone::absolute_name(&p.key).map_err(|_| AuthError::UnknownKey)?;
        let key = keys.get(&name).ok_or(AuthError::UnknownKey)?;
        let want = key.mac(&signed_bytes(method, path, p.time, &p.nonce, body));
        if !bool::from(want.ct_eq(&p.mac)) {
            return Err(AuthError::BadMac);
        }
        if now.abs_diff(p.time) > self.fudge {
            return Err(AuthError::BadTime {
                now,
                fudge: self.fudge,
            });
        }
        let fresh = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(Arc::from(p.mac), now);
        if !fresh {
            return Err(AuthError::Replay);
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsig::Algorithm;
    use hickory_proto::rr::Name;

    fn ring_with(k: &Key) -> KeyRing {
        KeyRing::new([k.clone()])
    }

    #[test]
    fn a_signed_request_verifies_once_and_tampering_fails() {
        let key = Key::generate(Name::from_ascii("mx1.").unwrap(), Algorithm::HmacSha256).unwrap();
        let keys = ring_with(&key);
        let v = Verifier::new(300);
        let body = br#"{"host":"mx1"}"#;
        let h = authorization(&key, "POST", "/api/v1/tlsa", body, 1000);
        assert_eq!(
            v.verify(Some(&h), &keys, "POST", "/api/v1/tlsa", body, 1010)
                .unwrap()
                .name,
            key.name
        );
        assert_eq!(
            v.verify(Some(&h), &keys, "POST", "/api/v1/tlsa", body, 1010)
                .unwrap_err(),
            AuthError::Replay
        );
        let h = authorization(&key, "POST", "/api/v1/tlsa", body, 1000);
        assert_eq!(
            v.verify(Some(&h), &keys, "POST", "/api/v1/tlsa", b"{}", 1000)
                .unwrap_err(),
            AuthError::BadMac
        );
        assert_eq!(
            v.verify(Some(&h), &keys, "POST", "/api/v1/other", body, 1000)
                .unwrap_err(),
            AuthError::BadMac
        );
        assert!(matches!(
            v.verify(Some(&h), &keys, "POST", "/api/v1/tlsa", body, 2000),
            Err(AuthError::BadTime { .. })
        ));
        let other =
            Key::generate(Name::from_ascii("www1.").unwrap(), Algorithm::HmacSha256).unwrap();
        let h = authorization(&other, "POST", "/api/v1/tlsa", body, 1000);
        assert_eq!(
            v.verify(Some(&h), &keys, "POST", "/api/v1/tlsa", body, 1000)
                .unwrap_err(),
            AuthError::UnknownKey
        );
        assert_eq!(
            v.verify(None, &keys, "POST", "/", body, 1000).unwrap_err(),
            AuthError::Missing
        );
        assert!(matches!(
            v.verify(Some("Bearer x"), &keys, "POST", "/", body, 1000),
            Err(AuthError::Malformed(_))
        ));
    }
}

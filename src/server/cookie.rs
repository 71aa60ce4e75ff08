//! DNS COOKIEs (RFC 7873) with interoperable server cookies (RFC 9018): a
//! client that returns the server cookie we gave it has shown that it
//! receives packets at its source address, so its requests cannot be
//! spoofed and the response rate limiter (`rrl`) leaves them alone.
//!
//! A server cookie (RFC 9018 §4) is 16 octets: version 1, three reserved
//! octets, a 32-bit timestamp (Unix seconds, serial arithmetic), and
//! SipHash-2-4 of client cookie | version | reserved | timestamp | client
//! IP (4 or 16 octets) under a 128-bit server secret.
//!
//! What a request gets (RFC 7873 §5.2):
//! - no COOKIE option: processed normally, no cookie in the answer;
//! - a malformed option (§5.2.2: not 8 or 16 to 40 octets): FORMERR;
//! - a client cookie only, or a server cookie that is not ours, too old
//!   or from another address (§5.2.3, §5.2.4): processed normally, with a
//!   fresh server cookie in the answer; such a request may be rate-limited,
//!   and when the limiter lets a limited answer "slip", it is BADCOOKIE with
//!   the fresh cookie instead of TC=1 (as BIND does), so a real client
//!   retries with the cookie at once;
//! - a valid server cookie (§5.2.5): processed normally, never
//!   rate-limited; the answer carries the same server cookie while it is
//!   younger than half an hour, a fresh one after (RFC 9018 §4.3).
//!
//! # Limitations
//! - The secret is made at start and lives in memory only: after a restart
//!   every client gets a fresh cookie (its next request is simply not
//!   exempt). Servers of one anycast set do not share a secret, and there
//!   is no secret rollover (RFC 9018 §5) beyond the restart.
//! - A request without a valid server cookie is never refused for it
//!   (no "require cookies" mode): clients that do not speak COOKIE are
//!   most of the internet.

use std::net::IpAddr;

use hickory_proto::op::Edns;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use subtle::ConstantTimeEq;

/// The COOKIE option code (RFC 7873 §4).
pub const OPTION_CODE: u16 = 10;
/// A server cookie older than this is no longer accepted (RFC 9018 §4.3).
const MAX_AGE: u32 = 3600;
/// Nor one from further in the future than this (clock skew in a set).
const MAX_AHEAD: u32 = 300;
/// Past this age a valid cookie is replaced by a fresh one in the answer.
const RENEW_AFTER: u32 = 1800;

/// The COOKIE option of a request, judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// No EDNS or no COOKIE option.
    Absent,
    /// A COOKIE option of an impossible length (RFC 7873 §5.2.2): FORMERR.
    Malformed,
    /// A client cookie without a server cookie we accept (none, not ours,
    /// expired, or from another address).
    ClientOnly { client: [u8; 8] },
    /// A client cookie and a valid server cookie of ours.
    Valid { client: [u8; 8], server: [u8; 16] },
}

impl Seen {
    /// Whether the request proved its source address.
    pub fn is_valid(&self) -> bool {
        matches!(self, Seen::Valid { .. })
    }
}

/// The server secret and the cookie arithmetic.
pub struct Cookies {
    secret: [u8; 16],
}

impl std::fmt::Debug for Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookies { secret: (hidden) }")
    }
}

impl Cookies {
    /// With a fresh random secret.
    pub fn generate() -> Self {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut secret = [0u8; 16];
        SystemRandom::new()
            .fill(&mut secret)
            .expect("the system random source works");
        Self { secret }
    }

    pub fn with_secret(secret: [u8; 16]) -> Self {
        Self { secret }
    }

    /// The 8-octet hash of RFC 9018 §4.4 over the cookie's fields.
    fn hash(&self, client: &[u8; 8], head: &[u8; 8], ip: IpAddr) -> [u8; 8] {
        let mut h = SipHasher24::new_with_key(&self.secret);
        h.write(client);
        h.write(head);
        match ip {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        // SipHash's output is a little-endian 64-bit word (the reference
        // implementation writes it so); RFC 9018's vectors are its bytes.
        h.finish().to_le_bytes()
    }

    /// A fresh server cookie for `client` at `ip`, stamped `now`.
    pub fn server_cookie(&self, client: &[u8; 8], ip: IpAddr, now: u32) -> [u8; 16] {
        let mut head = [0u8; 8];
        head[0] = 1;
        head[4..].copy_from_slice(&now.to_be_bytes());
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&head);
        out[8..].copy_from_slice(&self.hash(client, &head, ip.to_canonical()));
        out
    }

    /// Whether `server` is a server cookie of ours for `client` at `ip`,
    /// within its lifetime at `now`.
    fn accepts(&self, client: &[u8; 8], server: &[u8], ip: IpAddr, now: u32) -> bool {
        let Ok(server) = <&[u8; 16]>::try_from(server) else {
            return false;
        };
        if server[0] != 1 {
            return false;
        }
        let stamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
        if !within_lifetime(stamp, now) {
            return false;
        }
        let head: [u8; 8] = server[..8].try_into().expect("8 octets");
        let mac = self.hash(client, &head, ip.to_canonical());
        bool::from(mac.ct_eq(&server[8..]))
    }

    /// Judge the COOKIE option of a request from `ip` at `now` (Unix
    /// seconds). Only the first COOKIE option counts (RFC 7873 §5.2).
    pub fn inspect(&self, edns: Option<&Edns>, ip: IpAddr, now: u64) -> Seen {
        match edns.and_then(|e| option_data(e)) {
            Some(data) => self.inspect_data(data, ip, now),
            None => Seen::Absent,
        }
    }

    /// Judge the data of a COOKIE option (the UDP fast path reads it from
    /// the wire itself).
    pub fn inspect_data(&self, data: &[u8], ip: IpAddr, now: u64) -> Seen {
        let now = now as u32; // serial arithmetic, mod 2^32 (RFC 9018 §4.3)
        match data.len() {
            8 | 16..=40 => {}
            _ => return Seen::Malformed,
        }
        let client: [u8; 8] = data[..8].try_into().expect("8 octets");
        if data.len() > 8 && self.accepts(&client, &data[8..], ip, now) {
            let server: [u8; 16] = data[8..].try_into().expect("accepted is 16 octets");
            return Seen::Valid { client, server };
        }
        Seen::ClientOnly { client }
    }

    /// The COOKIE option data of our answer: the client cookie and our
    /// server cookie (the one received while it is young, else a fresh one).
    pub fn answer(&self, seen: &Seen, ip: IpAddr, now: u64) -> Option<[u8; 24]> {
        let now32 = now as u32;
        let (client, server) = match seen {
            Seen::Absent | Seen::Malformed => return None,
            Seen::Valid { client, server }
                if now32.wrapping_sub(stamp_of(server)) < RENEW_AFTER =>
            {
                (client, *server)
            }
            Seen::Valid { client, .. } | Seen::ClientOnly { client } => {
                (client, self.server_cookie(client, ip, now32))
            }
        };
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(client);
        out[8..].copy_from_slice(&server);
        Some(out)
    }
}

/// The COOKIE option as an EDNS option of the answer.
pub fn option(data: &[u8; 24]) -> EdnsOption {
    EdnsOption::Unknown(OPTION_CODE, data.to_vec())
}

fn option_data(edns: &Edns) -> Option<&[u8]> {
    match edns.option(EdnsCode::Cookie)? {
        EdnsOption::Unknown(_, data) => Some(data),
        _ => None,
    }
}

fn stamp_of(server: &[u8; 16]) -> u32 {
    u32::from_be_bytes([server[4], server[5], server[6], server[7]])
}

/// RFC 9018 §4.3: at most an hour old, at most five minutes ahead, in
/// serial arithmetic.
fn within_lifetime(stamp: u32, now: u32) -> bool {
    now.wrapping_sub(stamp) <= MAX_AGE || stamp.wrapping_sub(now) <= MAX_AHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn secret(s: &str) -> Cookies {
        Cookies::with_secret(hex(s).try_into().unwrap())
    }

    fn edns_with(data: &[u8]) -> Edns {
        let mut e = Edns::new();
        e.options_mut()
            .insert(EdnsOption::Unknown(OPTION_CODE, data.to_vec()));
        e
    }

    const SECRET_1: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

    /// RFC 9018 Appendix A.1: learning a new server cookie.
    #[test]
    fn rfc9018_a1_a_new_server_cookie() {
        let c = secret(SECRET_1);
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        let seen = c.inspect(Some(&edns_with(&hex("2464c4abcf10c957"))), ip, 1559731985);
        assert!(matches!(seen, Seen::ClientOnly { .. }), "{seen:?}");
        let answer = c.answer(&seen, ip, 1559731985).unwrap();
        assert_eq!(
            answer.to_vec(),
            hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
        );
    }

    /// A.2: the same client, 40 minutes later, gets a renewed cookie.
    #[test]
    fn rfc9018_a2_a_renewed_cookie_for_the_same_client() {
        let c = secret(SECRET_1);
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        let sent = hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480");
        let seen = c.inspect(Some(&edns_with(&sent)), ip, 1559734385);
        assert!(seen.is_valid(), "{seen:?}");
        let answer = c.answer(&seen, ip, 1559734385).unwrap();
        assert_eq!(
            answer.to_vec(),
            hex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77")
        );
    }

    /// A.3: another client's cookie, reserved octets set by its server,
    /// is valid (they are part of the hash); the renewed one is ours.
    #[test]
    fn rfc9018_a3_reserved_octets_are_hashed_and_a_fresh_cookie_is_made() {
        let c = secret(SECRET_1);
        let ip: IpAddr = "203.0.113.203".parse().unwrap();
        let sent = hex("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        // Accepted within its lifetime ...
        let seen = c.inspect(Some(&edns_with(&sent)), ip, 0x5cf78f71 + 60);
        assert!(seen.is_valid(), "{seen:?}");
        // ... but at the example's time it is 1 h 52 min old: client only.
        let seen = c.inspect(Some(&edns_with(&sent)), ip, 1559734700);
        assert!(matches!(seen, Seen::ClientOnly { .. }), "{seen:?}");
        let answer = c.answer(&seen, ip, 1559734700).unwrap();
        assert_eq!(
            answer.to_vec(),
            hex("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e")
        );
        // From another address it is not ours.
        let other: IpAddr = "203.0.113.204".parse().unwrap();
        let seen = c.inspect(Some(&edns_with(&sent)), other, 0x5cf78f71 + 60);
        assert!(!seen.is_valid());
    }

    /// A.4: an IPv6 client; the cookie verifies under the secret that made
    /// it and not under another.
    #[test]
    fn rfc9018_a4_ipv6() {
        let ip: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let sent = hex("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
        let at = 0x5cf7c579 + 10;
        let old = secret("dd3bdf9344b678b185a6f5cb60fca715");
        assert!(old.inspect(Some(&edns_with(&sent)), ip, at).is_valid());
        let new = secret("445536bcd2513298075a5d379663c962");
        assert!(!new.inspect(Some(&edns_with(&sent)), ip, at).is_valid());
    }

    #[test]
    fn lengths_outside_rfc7873_are_malformed() {
        let c = secret(SECRET_1);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for (len, malformed) in [
            (0, true),
            (7, true),
            (8, false),
            (9, true),
            (15, true),
            (16, false),
            (24, false),
            (40, false),
            (41, true),
        ] {
            let seen = c.inspect(Some(&edns_with(&vec![7; len])), ip, 1000);
            assert_eq!(seen == Seen::Malformed, malformed, "{len}: {seen:?}");
        }
        assert_eq!(c.inspect(Some(&Edns::new()), ip, 1000), Seen::Absent);
        assert_eq!(c.inspect(None, ip, 1000), Seen::Absent);
    }

    #[test]
    fn lifetime_is_an_hour_back_and_five_minutes_ahead_across_the_wrap() {
        let now = 1559731985u32;
        assert!(within_lifetime(now, now));
        assert!(within_lifetime(now - 3600, now));
        assert!(!within_lifetime(now - 3601, now));
        assert!(within_lifetime(now + 300, now));
        assert!(!within_lifetime(now + 301, now));
        assert!(within_lifetime(u32::MAX - 100, 1000));
    }

    #[test]
    fn a_young_cookie_is_echoed_an_old_one_renewed() {
        let c = Cookies::generate();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let client = [1, 2, 3, 4, 5, 6, 7, 8];
        let server = c.server_cookie(&client, ip, 10_000);
        let mut sent = client.to_vec();
        sent.extend_from_slice(&server);
        let seen = c.inspect(Some(&edns_with(&sent)), ip, 10_100);
        assert!(seen.is_valid());
        assert_eq!(c.answer(&seen, ip, 10_100).unwrap()[8..], server);
        let seen = c.inspect(Some(&edns_with(&sent)), ip, 12_000);
        assert!(seen.is_valid());
        let renewed = c.answer(&seen, ip, 12_000).unwrap();
        assert_ne!(renewed[8..], server);
        assert_eq!(stamp_of(&renewed[8..].try_into().unwrap()), 12_000);
    }
}

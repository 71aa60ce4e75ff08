//! NSEC3 owner names (RFC 5155 §5): the hash of a name and its base32hex
//! label. Here, below both the signer (`dnssec::nsec3`, which keeps the
//! chain) and the answers (`query`, which pick the proofs), since those two
//! are of one layer and may not import each other.
//!
//! The hash is SHA-1 (algorithm 1, the only one defined) over the name in
//! canonical wire form and the salt, repeated for the extra iterations;
//! ring's SHA-1 computes it. The zone itself always uses RFC 9276's
//! parameters ([`Params::RFC9276`]: no extra iteration, no salt); others
//! are supported so the hash is checked against RFC 5155 Appendix A.

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC3PARAM};
use hickory_proto::rr::{Name, RData, RecordType};

use super::{ZoneData, canonical_wire};

/// The length of a SHA-1 hash, the only NSEC3 hash there is.
pub const HASH_LEN: usize = 20;

/// The extended hex alphabet of RFC 4648 §7, lowercase (owner names are
/// compared lowercase, and the letters then sort after the digits, so the
/// labels sort as the hashes do).
const BASE32HEX: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// NSEC3 hash parameters (RFC 5155 §3.1.3, §3.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub iterations: u16,
    pub salt: Vec<u8>,
}

impl Params {
    /// RFC 9276 §3.1: no extra iterations, an empty salt.
    pub const RFC9276: Params = Params {
        iterations: 0,
        salt: Vec::new(),
    };

    /// The parameters the zone's NSEC3PARAM publishes (RFC 5155 §4), None
    /// without one (the zone's answers then use NSEC).
    pub fn of_zone(zone: &ZoneData) -> Option<Params> {
        let set = zone.rrset(zone.origin(), RecordType::NSEC3PARAM)?;
        set.rdatas().iter().find_map(|r| match r {
            RData::DNSSEC(DNSSECRData::NSEC3PARAM(p)) => Some(Params {
                iterations: p.iterations(),
                salt: p.salt().to_vec(),
            }),
            _ => None,
        })
    }

    /// The NSEC3PARAM RDATA for these parameters: SHA-1, flags 0.
    pub fn nsec3param(&self) -> NSEC3PARAM {
        NSEC3PARAM::new(
            hickory_proto::dnssec::Nsec3HashAlgorithm::SHA1,
            false,
            self.iterations,
            self.salt.clone(),
        )
    }

    /// IH(salt, owner, iterations) of RFC 5155 §5: SHA-1 over the name in
    /// canonical form (lowercase, uncompressed) and the salt, then over the
    /// previous hash and the salt, `iterations` more times.
    pub fn hash(&self, name: &Name) -> [u8; HASH_LEN] {
        let mut x = canonical_wire(name);
        for _ in 0..=self.iterations {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
            ctx.update(&x);
            ctx.update(&self.salt);
            x = ctx.finish().as_ref().to_vec();
        }
        let mut out = [0u8; HASH_LEN];
        out.copy_from_slice(&x);
        out
    }

    /// The owner of `name`'s NSEC3: its hash in base32hex, a label below
    /// the apex (RFC 5155 §3).
    pub fn owner(&self, apex: &Name, name: &Name) -> Name {
        owner_of_hash(apex, &self.hash(name))
    }
}

/// The NSEC3 owner for a hash.
pub fn owner_of_hash(apex: &Name, hash: &[u8]) -> Name {
    // 32 characters of the alphabet: always a valid label, and the apex
    // leaves room for it (a zone whose origin is too long for one more
    // 33-octet label cannot hold NSEC3 records; it keeps the apex then).
    apex.prepend_label(base32hex(hash))
        .unwrap_or_else(|_| apex.clone())
}

/// `bytes` in base32hex without padding (RFC 4648 §7; RFC 5155 §1.3).
pub fn base32hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32HEX[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32HEX[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The hash a base32hex label stands for (either case), None if it is
/// not one.
pub fn from_base32hex(label: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(label.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in label {
        let v = BASE32HEX
            .iter()
            .position(|&a| a == c.to_ascii_lowercase())?;
        acc = (acc << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The hash an NSEC3 owner name stands for: its first label decoded.
pub fn hash_of_owner(owner: &Name) -> Option<Vec<u8>> {
    owner.iter().next().and_then(from_base32hex)
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

    /// RFC 5155 Appendix A: salt aabbccdd, 12 iterations.
    #[test]
    fn hashes_match_rfc5155_appendix_a() {
        let p = Params {
            iterations: 12,
            salt: hex("aabbccdd"),
        };
        let apex = Name::from_ascii("example.").unwrap();
        for (name, hash) in [
            ("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("ai.example.", "gjeqe526plbf1g8mklp59enfd789njgi"),
            ("ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr"),
            ("ns2.example.", "q04jkcevqvmu85r014c7dkba38o0ji5r"),
            ("w.example.", "k8udemvp1j2f7eg6jebps17vp3n8i58h"),
            ("*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
            ("x.w.example.", "b4um86eghhds6nea196smvmlo4ors995"),
            ("y.w.example.", "ji6neoaepv8b5o6k4ev33abha8ht9fgc"),
            ("x.y.w.example.", "2vptu5timamqttgl4luu9kg21e0aor3s"),
            ("xx.example.", "t644ebqk9bibcna874givr6joj62mlhv"),
            (
                "2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.",
                "kohar7mbb8dc2ce8a9qvl8hon4k53uhi",
            ),
            ("X.W.Example.", "b4um86eghhds6nea196smvmlo4ors995"),
        ] {
            let n = Name::from_ascii(name).unwrap();
            assert_eq!(base32hex(&p.hash(&n)), hash, "{name}");
            assert_eq!(
                p.owner(&apex, &n),
                Name::from_ascii(format!("{hash}.example.")).unwrap()
            );
            assert_eq!(from_base32hex(hash.as_bytes()).unwrap(), p.hash(&n));
        }
    }

    #[test]
    fn rfc9276_parameters_hash_once_without_salt() {
        // SHA-1 of the wire form of "example." alone, once:
        // `printf '\x07example\x00' | sha1sum`
        let n = Name::from_ascii("Example.").unwrap();
        let want =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b"\x07example\x00");
        assert_eq!(Params::RFC9276.hash(&n).as_slice(), want.as_ref());
        assert_eq!(base32hex(&[0xff; 5]), "vvvvvvvv");
        assert_eq!(base32hex(&[0]), "00");
        assert!(from_base32hex(b"w0").is_none(), "w is not base32hex");
        // label order is hash order
        let (a, b) = ([0x10u8; 20], [0x9fu8; 20]);
        assert!(base32hex(&a) < base32hex(&b));
    }
}

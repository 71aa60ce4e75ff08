//! HMAC (RFC 2104) for the two TSIG algorithms ring does not offer:
//! HMAC-MD5 (RFC 8945 §6 "mandatory"; certbot's default) and HMAC-SHA224.
//! The hashes are RustCrypto's `md-5` and `sha2`; ring does every other
//! algorithm. Also the constant-time comparison used for MACs.

use md5::Md5;
use sha2::{Digest, Sha224};

/// Both hashes work on 64-octet blocks (the "B" of RFC 2104 §2).
const BLOCK_LEN: usize = 64;

/// RFC 2104 §2: `H(K XOR opad, H(K XOR ipad, text))`, where "applications
/// that use keys longer than B bytes will first hash the key using H".
fn hmac<H: Digest>(key: &[u8], text: &[u8]) -> Vec<u8> {
    let mut block_key = if key.len() > BLOCK_LEN {
        H::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    block_key.resize(BLOCK_LEN, 0);
    let ipad: Vec<u8> = block_key.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block_key.iter().map(|b| b ^ 0x5c).collect();
    let inner = H::new().chain_update(&ipad).chain_update(text).finalize();
    H::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

pub(super) fn hmac_md5(key: &[u8], text: &[u8]) -> Vec<u8> {
    hmac::<Md5>(key, text)
}

pub(super) fn hmac_sha224(key: &[u8], text: &[u8]) -> Vec<u8> {
    hmac::<Sha224>(key, text)
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

//! Certificate parsing (src/dane/cert.rs): a PEM or DER chain, a next key
//! (RFC 7671 §8.1 pre-publication), a bare DER certificate.
//!
//! Checked, beyond "no panic": for every TLSA usage/selector/matching this
//! server computes, the record made from a parsed chain matches that same
//! chain (`chain_matches`, what a DANE client does), and a next key's
//! record is computed for every parameter it supports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zonewarden::dane::{
    Certificate, Chain, NextKey, TlsaParams, chain_matches, tlsa, tlsa_for_next,
};

fn params() -> impl Iterator<Item = TlsaParams> {
    (0..4u8).flat_map(|u| {
        (0..2u8).flat_map(move |s| (0..3u8).map(move |m| TlsaParams::new(u, s, m).unwrap()))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(chain) = Chain::from_bytes(data) {
        // At a time the leaf is valid, so only the DANE logic decides.
        let now = chain.leaf().not_before();
        for p in params() {
            if let Ok(rr) = tlsa(&chain, p, now) {
                assert!(
                    chain_matches(&chain, &rr),
                    "{rr} does not match its own chain"
                );
            }
        }
    }
    if let Ok(next) = NextKey::from_bytes(data) {
        assert!(!next.spki().is_empty());
        for p in params() {
            let _ = tlsa_for_next(&next, p);
        }
    }
    if let Ok(cert) = Certificate::from_der(data) {
        assert!(!cert.spki().is_empty());
        assert_eq!(cert.der(), data);
        let _ = cert.check_not_expired(0);
    }
});

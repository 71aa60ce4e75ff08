//! The body of `POST /api/v1/tlsa` (src/http/tlsa_api.rs `PublishRequest`)
//! and what the handler derives from it before any write: the host name
//! inside the zone, the TLSA parameters, one owner per port, the record
//! from the certificate chain and from the next key.
//!
//! Checked, beyond "no panic": an accepted body serialises and parses back
//! to the same request; the owners built are inside the zone; a TLSA
//! record computed from the body's certificate matches that certificate.
#![no_main]

mod common;

use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;
use zonewarden::dane::{Chain, NextKey, TlsaParams, chain_matches, tlsa, tlsa_for_next};
use zonewarden::http::tlsa_api::PublishRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<PublishRequest>(data) else {
        return;
    };
    let again = serde_json::to_vec(&req).expect("a request serialises");
    let back: PublishRequest = serde_json::from_slice(&again).expect("our JSON parses");
    assert_eq!(
        serde_json::to_vec(&back).unwrap(),
        again,
        "the body does not round-trip"
    );

    let origin = common::origin();
    let Ok(host) = Name::parse(&req.host, Some(&origin)) else {
        return;
    };
    let proto = req.proto.clone().unwrap_or_else(|| "tcp".into());
    for port in &req.ports {
        if let Ok(owner) =
            Name::from_ascii(format!("_{port}._{proto}")).and_then(|n| n.append_name(&host))
        {
            let _ = origin.zone_of(&owner);
        }
    }
    let Ok(params) = TlsaParams::new(
        req.usage.unwrap_or(3),
        req.selector.unwrap_or(1),
        req.matching.unwrap_or(1),
    ) else {
        return;
    };
    if let Ok(chain) = Chain::from_bytes(req.certificate.as_bytes()) {
        let now = chain.leaf().not_before();
        if let Ok(rr) = tlsa(&chain, params, now) {
            assert!(chain_matches(&chain, &rr));
        }
    }
    if let Some(pem) = &req.next_key
        && let Ok(next) = NextKey::from_bytes(pem.as_bytes())
    {
        let _ = tlsa_for_next(&next, params);
    }
});

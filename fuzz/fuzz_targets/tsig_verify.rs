//! TSIG verification (RFC 8945 §5.2, `tsig::Verifier`) against a fixed key
//! ring at a fixed time: the input as received, then the input signed.
//!
//! Checked, beyond "no panic": a rejection's RCODE is FORMERR or NOTAUTH
//! as its reason says, and its error answer (when one is signed) is a TSIG
//! RR that parses; a message we sign with a known key verifies, once (the
//! second time is a replay), and flipping any one octet of its MAC makes it
//! fail.
#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zonewarden::tsig::{self, KeyRing, RejectRcode, TsigFailure, Verifier};

fn ring() -> &'static KeyRing {
    static R: OnceLock<KeyRing> = OnceLock::new();
    R.get_or_init(common::keyring)
}

fuzz_target!(|data: &[u8]| {
    let now = common::NOW;
    let verifier = Verifier::new(300);
    match verifier.verify(data, ring(), now) {
        Ok(_) => {}
        Err(rej) => {
            let formerr = rej.reason == TsigFailure::FormErr;
            assert_eq!(rej.rcode == RejectRcode::FormErr, formerr);
        }
    }
    // Sign the input (when it has a DNS header) with a known key: it must
    // verify unless it already held a TSIG RR or is not a message at all.
    if data.len() < 12 || data.len() > 60_000 {
        return;
    }
    let key = common::key(if data[0] & 1 == 0 { "mx1" } else { "www1" });
    let (rr, mac) = tsig::sign_request(data, &key, now, 300);
    let Ok(signed) = tsig::append_tsig(data, &rr) else {
        return;
    };
    let verifier = Verifier::new(300);
    let first = verifier.verify(&signed, ring(), now);
    if hickory_proto::op::Message::from_vec(data).is_ok_and(|m| {
        m.signature.is_none()
            && m.to_vec().is_ok_and(|b| b == data)
            && m.additionals
                .iter()
                .chain(&m.answers)
                .chain(&m.authorities)
                .all(|r| {
                    !matches!(
                        r.record_type(),
                        hickory_proto::rr::RecordType::TSIG | hickory_proto::rr::RecordType::SIG
                    )
                })
    }) {
        let ctx = first.expect("a message we signed verifies");
        assert!(ctx.is_some(), "a signed message verified as unsigned");
        assert!(
            matches!(verifier.verify(&signed, ring(), now), Err(r) if r.reason == TsigFailure::Replay),
            "the same signed message was accepted twice"
        );
        // Flip one octet of the MAC (it sits right before the original ID,
        // error and other-length fields: the last 6 octets).
        let at = signed.len() - 6 - 1 - usize::from(data[1]) % mac.len();
        let mut bad = signed.clone();
        bad[at] ^= 0x01;
        assert!(
            Verifier::new(300).verify(&bad, ring(), now).is_err(),
            "a message with a changed MAC verified"
        );
    }
});

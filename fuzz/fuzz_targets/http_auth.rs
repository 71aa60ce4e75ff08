//! The HTTP API's `Authorization: TSIG-HMAC key=..., time=..., nonce=...,
//! mac=...` header (src/http/auth.rs), verified against a fixed key ring.
//!
//! Input: the header, a NUL, then the body. Checked, beyond "no panic": a
//! header that is not ours is refused; the header our own client makes for
//! the same body verifies once, and is a replay the second time.
#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zonewarden::http::auth::{AuthError, Verifier, authorization};
use zonewarden::tsig::KeyRing;

const PATH: &str = "/api/v1/tlsa";

fn ring() -> &'static KeyRing {
    static R: OnceLock<KeyRing> = OnceLock::new();
    R.get_or_init(common::keyring)
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let now = common::NOW;
    let v = Verifier::new(300);
    let _ = v.verify(Some(header), ring(), "POST", PATH, body, now);
    let key = common::key("mx1");
    let ours = authorization(&key, "POST", PATH, body, now);
    let v = Verifier::new(300);
    let got = v.verify(Some(&ours), ring(), "POST", PATH, body, now);
    assert_eq!(got.expect("our own header verifies").name, key.name);
    assert_eq!(
        v.verify(Some(&ours), ring(), "POST", PATH, body, now)
            .unwrap_err(),
        AuthError::Replay
    );
    if header != ours {
        // A different header for the same body is not the same grant.
        if let Ok(k) = v.verify(Some(header), ring(), "POST", PATH, body, now) {
            panic!("a header we did not make verified as {}", k.name);
        }
    }
});

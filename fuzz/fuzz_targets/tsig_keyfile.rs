//! The TSIG key file parser (BIND's `key "name" { algorithm ...; secret
//! "..."; };`, `tsig::parse_key_file`, src/tsig/keyfile.rs).
//!
//! Checked, beyond "no panic": errors are located inside the text; every
//! accepted key, written back in our own key file form, parses to the same
//! key (name, algorithm, secret), and signs the same MAC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zonewarden::tsig::parse_key_file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_key_file(text) {
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(e.line <= lines, "error on line {} of {lines}: {e}", e.line);
        }
        Ok(keys) => {
            for key in keys {
                let written = key.to_key_file();
                let back = parse_key_file(&written).expect("a key file we write parses");
                assert_eq!(back.len(), 1);
                assert_eq!(back[0].name, key.name);
                assert_eq!(back[0].algorithm, key.algorithm);
                assert_eq!(back[0].secret_base64(), key.secret_base64());
                assert_eq!(back[0].mac(b"probe"), key.mac(b"probe"));
            }
        }
    }
});

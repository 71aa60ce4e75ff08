//! The config file parser (`Config::parse`, src/config.rs).
//!
//! Checked, beyond "no panic": errors are located inside the text; an
//! accepted config listens somewhere, has an EDNS size of at least 512 and
//! intervals of at least a second.
#![no_main]

mod common;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use zonewarden::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(Path::new("/etc/zonewarden/config.toml"), text) {
        Err(e) => common::check_location(text, &e),
        Ok(c) => {
            assert!(!c.listen.is_empty());
            assert!(c.edns_udp_size >= 512);
            assert!(c.expiry_interval.as_secs() >= 1 && c.reload_interval.as_secs() >= 1);
            assert!(!c.http_require_token || c.http_token_file.is_some());
        }
    }
});

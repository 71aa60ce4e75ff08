//! The zone file parser (`zonefile::parse`, src/zonefile.rs).
//!
//! Checked, beyond "no panic": errors are located inside the text; an
//! accepted zone has an absolute origin, every record inside it, TTLs
//! within its own [ttl] bounds for the records UPDATE may add later, and
//! it builds a snapshot whose AXFR encodes and parses back to itself.
#![no_main]

mod common;

use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::{Message, OpCode};
use libfuzzer_sys::fuzz_target;
use zonewarden::zone::ZoneData;
use zonewarden::{xfr, zonefile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match zonefile::parse(Path::new("zones/fuzz.toml"), text) {
        Err(e) => common::check_location(text, &e),
        Ok(spec) => {
            assert!(spec.origin.is_fqdn());
            for r in &spec.records {
                assert!(
                    spec.origin.zone_of(&r.name),
                    "{} outside {}",
                    r.name,
                    spec.origin
                );
            }
            assert!(spec.ttl.min <= spec.ttl.max);
            let zone = Arc::new(ZoneData::new(Arc::new(spec), 1, []));
            for chunk in xfr::axfr(zone).messages() {
                let mut m = Message::response(1, OpCode::Query);
                m.answers = chunk;
                if let Ok(bytes) = m.to_vec() {
                    let back = Message::from_vec(&bytes).expect("our AXFR message parses");
                    assert_eq!(back.answers.len(), m.answers.len());
                }
            }
        }
    }
});

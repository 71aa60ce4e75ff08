//! The ACL file parser (`acl::Policy::parse_file`, src/acl/file.rs).
//!
//! Checked, beyond "no panic": a rejected file gets at least one error and
//! every error is located inside the text (line 1 onwards, a column within
//! that line); an accepted machine takes its name from the file and every
//! grant it holds answers a permission question without panicking.
#![no_main]

mod common;

use std::path::Path;

use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;
use zonewarden::acl::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = common::origin();
    match Policy::parse_file(
        Path::new("acl/fz1.toml"),
        text,
        std::slice::from_ref(&origin),
    ) {
        Err(errors) => {
            assert!(!errors.is_empty(), "rejected without an error");
            for e in &errors {
                common::check_location(text, e);
            }
        }
        Ok(machine) => {
            assert_eq!(machine.name, "fz1");
            let owners = ["_acme-challenge.fz1", "_25._tcp.fz1", "x.y.fz1"]
                .map(|o| Name::parse(o, Some(&origin)).unwrap());
            for name in owners.iter().chain([&origin]) {
                for t in [RecordType::TXT, RecordType::TLSA, RecordType::A] {
                    let _ = machine.permits(&origin, name, t);
                }
                let _ = machine.grantable_types_at(&origin, name);
            }
        }
    }
});

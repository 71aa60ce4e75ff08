//! The dns-persist-01 value parser (`persist::parse`, src/persist.rs).
//!
//! Checked, beyond "no panic": an accepted value prints (`Display`) as a
//! value that parses back to the same record, and `PersistValue::new`
//! accepts its parts; a rejected one says why in a non-empty detail;
//! `check` agrees with `parse` and with persistUntil against the time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zonewarden::persist::{self, PersistValue, Problem};

fuzz_target!(|data: &[u8]| {
    match persist::parse(data) {
        Ok(v) => {
            let printed = v.to_string();
            assert_eq!(
                persist::parse(printed.as_bytes()).as_ref(),
                Ok(&v),
                "{printed}"
            );
            let made = PersistValue::new(&v.issuer, &v.account_uri, v.wildcard, v.persist_until)
                .expect("the parts of a parsed value make a value");
            assert_eq!(made, v);
            let joined = persist::join(&persist::character_strings(&printed));
            assert_eq!(joined, printed.as_bytes());
            for now in [0, 1_767_225_600, u64::MAX] {
                match persist::check(data, now) {
                    Ok(c) => assert_eq!(c, v),
                    Err(e) => {
                        assert_eq!(e.problem, Problem::Expired);
                        assert!(v.persist_until.is_some_and(|u| u <= now));
                    }
                }
            }
        }
        Err(e) => {
            assert!(!e.detail.is_empty());
            assert_ne!(e.problem, Problem::Expired, "parse does not judge time");
            assert_eq!(
                persist::check(data, 0).map_err(|e| e.problem),
                Err(e.problem)
            );
        }
    }
});

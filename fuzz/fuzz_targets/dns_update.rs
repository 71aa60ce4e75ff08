//! RFC 2136 on a fixed zone snapshot: an UPDATE message (hickory's parser)
//! through `update::process` under a fixed machine's ACL, then IXFR and
//! AXFR of the result.
//!
//! Input: one byte choosing the machine (even: mx1, odd: www1), then the
//! message. Checked, beyond "no panic": an accepted update's journal entry
//! replayed on the old zone gives the new zone (what IXFR sends is what
//! changed); the serial moves forward; the new zone's records stay within
//! the zone's limits; every record our IXFR and AXFR would send encodes and
//! parses back to itself; a refused update says why with a refusing RCODE.
#![no_main]

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::Record;
use libfuzzer_sys::fuzz_target;
use zonewarden::acl::Machine;
use zonewarden::update::{self, Requester};
use zonewarden::xfr;
use zonewarden::zone::ZoneData;
use zonewarden::zone::change::{Action, JournalEntry, rdata_bytes};

struct Fixed {
    zone: ZoneData,
    machines: [(Machine, hickory_proto::rr::Name); 2],
}

fn fixed() -> &'static Fixed {
    static F: OnceLock<Fixed> = OnceLock::new();
    F.get_or_init(|| Fixed {
        zone: common::zone_data(),
        machines: [
            (common::machine("mx1"), common::key("mx1").name),
            (common::machine("www1"), common::key("www1").name),
        ],
    })
}

/// A zone's records as comparable keys (lower-cased owner, type, TTL, RDATA).
fn content(records: &[Record]) -> BTreeSet<(String, u16, u32, Vec<u8>)> {
    records
        .iter()
        .map(|r| {
            (
                r.name.to_lowercase().to_string(),
                u16::from(r.record_type()),
                r.ttl,
                rdata_bytes(&r.data),
            )
        })
        .collect()
}

fn round_trips(body: xfr::Body) {
    for chunk in body.messages() {
        let mut m = Message::response(7, hickory_proto::op::OpCode::Query);
        m.answers = chunk;
        let bytes = m.to_vec().expect("a transfer message encodes");
        let back = Message::from_vec(&bytes).expect("a transfer message parses");
        assert_eq!(
            content(&back.answers),
            content(&m.answers),
            "a record changed on the wire"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&who, msg)) = data.split_first() else {
        return;
    };
    let Ok(m) = Message::from_vec(msg) else {
        return;
    };
    let f = fixed();
    let (machine, key) = &f.machines[usize::from(who & 1)];
    let requester = Requester {
        machine,
        key,
        source: "127.0.0.1".parse().unwrap(),
    };
    match update::process(
        &f.zone,
        &m.answers,
        &m.authorities,
        &requester,
        Action::Update,
        1_700_000_000, // a fixed clock: a persistUntil is judged the same every run
    ) {
        Err(refusal) => assert_ne!(
            refusal.rcode,
            ResponseCode::NoError,
            "a refusal with NOERROR"
        ),
        Ok(None) => {}
        Ok(Some(applied)) => {
            let new = &applied.zone;
            let change = &applied.change;
            assert_eq!(change.serial_from, f.zone.serial);
            assert!(zonewarden::serial::at_least(
                change.serial_to,
                change.serial_from
            ));
            assert_ne!(change.serial_to, change.serial_from);
            assert!(new.record_count() <= new.spec.limits.records_per_zone);
            // Replaying the journal entry on the old zone gives the new one.
            let mut replay = f.zone.clone();
            for r in &change.removed {
                replay.remove(&r.name, r.record_type(), &r.data);
            }
            for r in &change.added {
                replay.add(&r.name, r.record_type(), r.ttl, r.data.clone());
            }
            assert_eq!(
                content(&replay.all_records()[1..]),
                content(&new.all_records()[1..]),
                "the journal entry does not describe the change"
            );
            let entry = JournalEntry {
                serial_from: change.serial_from,
                serial_to: change.serial_to,
                removed: change.removed.clone(),
                added: change.added.clone(),
            };
            let new = std::sync::Arc::new(new.clone());
            let (_, ixfr) = xfr::ixfr(&new, f.zone.serial, Some(vec![entry]));
            round_trips(ixfr);
            round_trips(xfr::axfr(new));
        }
    }
});

//! Outgoing zone transfers: what an AXFR (RFC 5936) or IXFR (RFC 1995)
//! answer contains, split into messages. Pure functions over a zone
//! snapshot and the stored diffs; `server` sends the messages, each one
//! TSIG-signed when the request was (RFC 8945 §5.3.1).
//!
//! AXFR: SOA, every other RR (DNSSEC records included, whatever the DO
//! bit), SOA. IXFR: one condensed difference sequence from the client's
//! serial to ours (RFC 1995 §4: the diffs in between are merged, an RR
//! added and removed again cancels out); the AXFR form when the journal
//! does not reach back; the current SOA alone when the client is current.
//!
//! # Limitations
//! - Messages are sent through hickory-server's per-connection response
//!   buffer, so one transfer is at most `MAX_MESSAGES` messages of
//!   `MESSAGE_BUDGET` octets (far beyond a challenge zone).

use hickory_proto::rr::Record;

use crate::serial;
use crate::zone::ZoneData;
use crate::zone::change::{JournalEntry, rdata_bytes};

/// Octets of (uncompressed) records per message; compression makes the
/// real message smaller, so it always fits in 64 KiB with room for TSIG.
pub const MESSAGE_BUDGET: usize = 32 * 1024;
/// The most messages one transfer may take (see the module limitations).
pub const MAX_MESSAGES: usize = 1024;

/// AXFR body: SOA, the rest, SOA.
pub fn axfr(zone: &ZoneData) -> Vec<Record> {
    let mut records = zone.all_records(); // SOA first
    records.push(zone.soa_record());
    records
}

/// What an IXFR answer holds, and which form it took (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IxfrForm {
    /// The client is current (or ahead): our SOA only.
    UpToDate,
    /// One condensed difference sequence.
    Incremental,
    /// The whole zone, AXFR-style (the journal does not reach back).
    Full,
}

/// The IXFR answer for a client at `client_serial`; `journal` is the chain
/// of diffs from `client_serial` to the zone's serial, if there is one.
pub fn ixfr(
    zone: &ZoneData,
    client_serial: u32,
    journal: Option<Vec<JournalEntry>>,
) -> (IxfrForm, Vec<Record>) {
    if serial::at_least(client_serial, zone.serial) {
        return (IxfrForm::UpToDate, vec![zone.soa_record()]);
    }
    let Some(entries) = journal else {
        return (IxfrForm::Full, axfr(zone));
    };
    let (removed, added) = condense(&entries);
    let origin = zone.origin();
    let current = zone.soa_record();
    let mut out = Vec::with_capacity(removed.len() + added.len() + 4);
    out.push(current.clone());
    out.push(zone.spec.soa.record(origin, client_serial));
    out.extend(removed);
    out.push(current.clone());
    out.extend(added);
    out.push(current);
    (IxfrForm::Incremental, out)
}

/// Merge consecutive diffs into one: (net removed, net added).
fn condense(entries: &[JournalEntry]) -> (Vec<Record>, Vec<Record>) {
    let key = |r: &Record| {
        (
            r.name.to_lowercase(),
            r.record_type(),
            r.ttl,
            rdata_bytes(&r.data),
        )
    };
    let mut removed: Vec<Record> = Vec::new();
    let mut added: Vec<Record> = Vec::new();
    for e in entries {
        for r in &e.removed {
            let k = key(r);
            if let Some(i) = added.iter().position(|a| key(a) == k) {
                added.remove(i);
            } else {
                removed.push(r.clone());
            }
        }
        for r in &e.added {
            let k = key(r);
            if let Some(i) = removed.iter().position(|x| key(x) == k) {
                removed.remove(i);
            } else {
                added.push(r.clone());
            }
        }
    }
    (removed, added)
}

/// The (uncompressed) size of records, an upper bound of their wire size.
pub fn size(records: &[Record]) -> usize {
    records.iter().map(record_size).sum()
}

fn record_size(r: &Record) -> usize {
    r.name.len() + 12 + rdata_bytes(&r.data).len()
}

/// Split records into messages of at most `MESSAGE_BUDGET` octets each.
pub fn chunk(records: Vec<Record>) -> Vec<Vec<Record>> {
    let mut out: Vec<Vec<Record>> = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for r in records {
        let len = record_size(&r);
        if !current.is_empty() && size + len > MESSAGE_BUDGET {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.push(r);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RData, RecordType};
    use std::path::Path;
    use std::sync::Arc;

    fn txt(name: &str, v: &str) -> Record {
        Record::from_rdata(
            Name::from_ascii(name).unwrap(),
            60,
            RData::try_from_str(RecordType::TXT, v).unwrap(),
        )
    }

    fn zone(serial: u32) -> ZoneData {
        let spec = crate::zonefile::parse(
            Path::new("z.toml"),
            "origin = \"z.test.\"\ncontact = \"h.z.test.\"\nnameservers = [\"ns1.other.test.\"]\n",
        )
        .unwrap();
        ZoneData::new(Arc::new(spec), serial, [txt("a.z.test.", "keep")])
    }

    #[test]
    fn condensed_ixfr_cancels_what_came_and_went() {
        let z = zone(12);
        let entries = vec![
            JournalEntry {
                serial_from: 10,
                serial_to: 11,
                removed: vec![txt("a.z.test.", "old")],
                added: vec![txt("b.z.test.", "tmp")],
            },
            JournalEntry {
                serial_from: 11,
                serial_to: 12,
                removed: vec![txt("b.z.test.", "tmp")],
                added: vec![txt("a.z.test.", "keep")],
            },
        ];
        let (form, recs) = ixfr(&z, 10, Some(entries));
        assert_eq!(form, IxfrForm::Incremental);
        // SOA 12, SOA 10, -old, SOA 12, +keep, SOA 12
        assert_eq!(recs.len(), 6);
        assert_eq!(recs[2].data, txt("a.z.test.", "old").data);
        assert_eq!(recs[4].data, txt("a.z.test.", "keep").data);
        assert_eq!(ixfr(&z, 12, None).0, IxfrForm::UpToDate);
        assert_eq!(ixfr(&z, 3, None).0, IxfrForm::Full);
    }

    #[test]
    fn axfr_starts_and_ends_with_the_soa_and_chunks_stay_under_budget() {
        let z = zone(7);
        let a = axfr(&z);
        assert_eq!(a.first().unwrap().record_type(), RecordType::SOA);
        assert_eq!(a.last().unwrap().record_type(), RecordType::SOA);
        let many: Vec<Record> = (0..3000)
            .map(|i| txt(&format!("n{i}.z.test."), &"x".repeat(40)))
            .collect();
        let chunks = chunk(many);
        assert!(chunks.len() > 2);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 3000);
    }
}

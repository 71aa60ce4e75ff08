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
//! The whole zone (AXFR, and IXFR's AXFR form) is read from the snapshot
//! one node at a time as the messages are sent ([`ZoneRecords`]): a
//! transfer of a million records never holds a second copy of the zone.
//! The snapshot it reads stays the one the transfer started on, however
//! many changes are published meanwhile.

use std::collections::VecDeque;
use std::iter::Peekable;
use std::sync::Arc;

use hickory_proto::rr::{Name, Record};

use crate::serial;
use crate::zone::change::{JournalEntry, rdata_bytes};
use crate::zone::{ZoneData, node_records};

/// Octets of (uncompressed) records per message; compression makes the
/// real message smaller, so it always fits in 64 KiB with room for TSIG.
pub const MESSAGE_BUDGET: usize = 32 * 1024;

/// The AXFR body read from a snapshot as it is sent: SOA, every other RR
/// in canonical order of names, SOA.
pub struct ZoneRecords {
    zone: Arc<ZoneData>,
    /// The last node whose records were taken.
    last: Option<Name>,
    /// The rest of that node's records.
    pending: VecDeque<Record>,
    started: bool,
    ended: bool,
}

impl ZoneRecords {
    pub fn new(zone: Arc<ZoneData>) -> Self {
        Self {
            zone,
            last: None,
            pending: VecDeque::new(),
            started: false,
            ended: false,
        }
    }
}

impl Iterator for ZoneRecords {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if !self.started {
            self.started = true;
            return Some(self.zone.soa_record());
        }
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some(r);
            }
            if self.ended {
                return None;
            }
            let next = match &self.last {
                None => self.zone.first_node(),
                Some(name) => self.zone.nodes_after(name).next(),
            };
            match next {
                Some((name, node)) => {
                    self.pending.extend(node_records(&name, node));
                    self.last = Some(name);
                }
                None => {
                    self.ended = true;
                    return Some(self.zone.soa_record());
                }
            }
        }
    }
}

/// What a transfer sends: a few records made beforehand, or the whole zone
/// read as it is sent.
pub enum Body {
    Records(std::vec::IntoIter<Record>),
    Zone(ZoneRecords),
}

impl Body {
    pub fn records(records: Vec<Record>) -> Self {
        Body::Records(records.into_iter())
    }

    /// Whether the (uncompressed) records fit in `limit` octets; reads at
    /// most `limit` octets' worth of the zone.
    pub fn fits(&self, limit: usize) -> bool {
        let mut size = 0;
        let mut over = |r: &Record| {
            size += record_size(r);
            size > limit
        };
        match self {
            Body::Records(v) => !v.as_slice().iter().any(over),
            Body::Zone(z) => !ZoneRecords::new(z.zone.clone()).any(|r| over(&r)),
        }
    }

    /// The records in messages of at most [`MESSAGE_BUDGET`] octets.
    pub fn messages(self) -> Messages<Self> {
        messages(self)
    }
}

impl Iterator for Body {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        match self {
            Body::Records(v) => v.next(),
            Body::Zone(z) => z.next(),
        }
    }
}

/// AXFR body: SOA, the rest, SOA.
pub fn axfr(zone: Arc<ZoneData>) -> Body {
    Body::Zone(ZoneRecords::new(zone))
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
    zone: &Arc<ZoneData>,
    client_serial: u32,
    journal: Option<Vec<JournalEntry>>,
) -> (IxfrForm, Body) {
    if serial::at_least(client_serial, zone.serial) {
        return (IxfrForm::UpToDate, Body::records(vec![zone.soa_record()]));
    }
    let Some(entries) = journal else {
        return (IxfrForm::Full, axfr(zone.clone()));
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
    (IxfrForm::Incremental, Body::records(out))
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

/// Records grouped into messages of at most `MESSAGE_BUDGET` octets each,
/// made one at a time as they are asked for.
pub struct Messages<I: Iterator<Item = Record>> {
    records: Peekable<I>,
}

/// Split records into messages (see [`Messages`]).
pub fn messages<I: Iterator<Item = Record>>(records: I) -> Messages<I> {
    Messages {
        records: records.peekable(),
    }
}

impl<I: Iterator<Item = Record>> Iterator for Messages<I> {
    type Item = Vec<Record>;

    fn next(&mut self) -> Option<Vec<Record>> {
        let mut out = Vec::new();
        let mut size = 0;
        while let Some(r) = self.records.peek() {
            let len = record_size(r);
            if !out.is_empty() && size + len > MESSAGE_BUDGET {
                break;
            }
            size += len;
            out.extend(self.records.next());
        }
        (!out.is_empty()).then_some(out)
    }
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
        let z = Arc::new(z);
        let (form, recs) = ixfr(&z, 10, Some(entries));
        let recs: Vec<Record> = recs.collect();
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
        let z = Arc::new(zone(7));
        let a: Vec<Record> = axfr(z.clone()).collect();
        assert_eq!(a.first().unwrap().record_type(), RecordType::SOA);
        assert_eq!(a.last().unwrap().record_type(), RecordType::SOA);
        let many: Vec<Record> = (0..3000)
            .map(|i| txt(&format!("n{i}.z.test."), &"x".repeat(40)))
            .collect();
        let chunks: Vec<Vec<Record>> = messages(many.into_iter()).collect();
        assert!(chunks.len() > 2);
        assert!(chunks.iter().all(|c| size(c) <= MESSAGE_BUDGET));
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 3000);
    }

    #[test]
    fn the_streamed_axfr_is_every_record_of_the_snapshot_in_order() {
        let mut z = zone(7);
        for i in 0..500 {
            let n = Name::from_ascii(format!("h{i}.z.test.")).unwrap();
            for v in ["a", "b", "c"] {
                z.add(
                    &n,
                    RecordType::TXT,
                    60,
                    RData::try_from_str(RecordType::TXT, v).unwrap(),
                );
            }
        }
        let z = Arc::new(z);
        let mut expected = z.all_records();
        expected.push(z.soa_record());
        let body = axfr(z.clone());
        assert!(!body.fits(1000));
        assert!(axfr(z.clone()).fits(1 << 20));
        let streamed: Vec<Record> = body.messages().flatten().collect();
        assert_eq!(streamed, expected);
    }
}

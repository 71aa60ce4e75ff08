//! Online DNSSEC signing: one key per zone, RRSIGs and an NSEC (or NSEC3) chain kept in
//! the zone snapshot, changed incrementally with every change to the zone.
//!
//! Owns: the zone's signing key and the records derived from it ([`key`]:
//! DNSKEY, CDS, CDNSKEY, DS for the parent), the NSEC chain ([`nsec`]) and
//! the RRSIGs ([`signer`]). It does not own when things happen: the zone writer (`writer`) calls
//! [`ZoneSigner::resign`] on every change before it commits (once per batch
//! of group-committed UPDATEs, with [`unchain`] between them), [`sync`] at
//! start, and [`ZoneSigner::refresh`] on a timer; every DNSSEC record made
//! or dropped is returned as a [`Delta`] that goes into the same journaled
//! change, the same SQLite transaction, as the change that caused it. The
//! records are stored as ordinary dynamic rows and loaded back with the rest
//! of the zone; [`sync`] at start keeps every signature that is ours and
//! fresh, so a restart does not re-sign anything, and whether each still
//! verifies is checked after the zone is served
//! ([`ZoneSigner::unverified`]), so a restart answers at once.
//!
//! RFCs: RFC 4033/4034/4035 (DNSKEY, RRSIG, NSEC, what is signed, §2.2 of
//! RFC 4035 for delegations and glue), RFC 6840 (clarifications), RFC 7344
//! (CDS/CDNSKEY), RFC 8624 (algorithms 13 and 15), RFC 9077 (NSEC TTL =
//! min(SOA TTL, SOA MINIMUM)). Signing primitives, key generation and wire
//! types are hickory-proto's; the data to be signed (RFC 4034 §3.1.8.1,
//! §6) is built here so that RRs are ordered by their canonical RDATA.
//!
//! Denial of existence is NSEC by default: NSEC is simpler to maintain
//! incrementally and correctly (a name inserted or removed changes one
//! other NSEC, its predecessor's), and zone walking reveals only machine
//! names that the public zone's CNAMEs already show. `[dnssec] denial =
//! "nsec3"` uses an NSEC3 chain instead ([`nsec3`], RFC 5155 with RFC
//! 9276's parameters), kept the same way; a switch either way is two
//! journaled changes at start ([`nsec3::step`]: NSEC3PARAM last on,
//! first off), and a name owns an NSEC exactly when the zone has no
//! NSEC3PARAM.
//!
//! # Limitations
//!
//! - CSKs only (flags 257), no split KSK/ZSK; rollovers by double
//!   signature ([`roll`]); no revocation (RFC 5011: no trust anchors here).
//! - No wildcards (the zone serves none), no NSEC3 opt-out, no NSEC3
//!   parameters but RFC 9276's.
//! - Keys are files on the data directory (PKCS#8), no HSM/PKCS#11.
//! - Glue in the additional section of answers is sent without RRSIGs.

pub mod key;
pub mod nsec;
pub mod nsec3;
pub mod parent;
pub mod parent_view;
pub mod roll;
pub mod signer;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet, hash_map::DefaultHasher};
use std::hash::{Hash, Hasher};

use hickory_proto::rr::{Name, Record, RecordType};

pub use key::{KeyError, ZoneKey};
pub use signer::ZoneSigner;

use crate::zone::change::{Action, Audit, Change, Source, rdata_bytes};
use crate::zone::{ZoneData, is_dnssec_type};

pub use crate::zonefile::{Denial, KeyAlgorithm, Settings};

/// How far back signatures' inception is set, for clocks that lag (RFC 6781 §4.4.2.2).
pub const INCEPTION_BACKDATE: u32 = 3_600;

/// How often the refresh timer looks for signatures to renew.
pub const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3_600);

/// DNSSEC records removed from and added to a zone, for the journal and the
/// database. An RR added and then removed again within one delta (the SOA's
/// RRSIG when the serial moves twice) cancels out.
#[derive(Debug, Default, Clone)]
pub struct Delta {
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
    added_keys: HashSet<u64>,
}

fn record_key(r: &Record) -> u64 {
    let mut h = DefaultHasher::new();
    r.name.to_lowercase().to_ascii().hash(&mut h);
    u16::from(r.record_type()).hash(&mut h);
    rdata_bytes(&r.data).hash(&mut h);
    h.finish()
}

fn same_rr(a: &Record, b: &Record) -> bool {
    a.name == b.name && a.record_type() == b.record_type() && a.data == b.data
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }

    pub fn add(&mut self, r: Record) {
        self.added_keys.insert(record_key(&r));
        self.added.push(r);
    }

    pub fn remove(&mut self, r: Record) {
        if self.added_keys.contains(&record_key(&r))
            && let Some(i) = self.added.iter().position(|a| same_rr(a, &r))
        {
            self.added.remove(i);
            return;
        }
        self.removed.push(r);
    }

    /// Append to a change about to be committed.
    pub fn into_change(self, change: &mut Change) {
        change.removed.extend(self.removed);
        change.added.extend(self.added);
    }
}

/// A journaled change of DNSSEC records only (signing at start, refresh,
/// stripping), moving `zone` to the next serial. `zone` must already hold
/// the new serial and the records of `delta`.
fn dnssec_change(serial_from: u32, zone: &ZoneData, delta: Delta, action: Action) -> Change {
    let detail = format!(
        "{action}: {} DNSSEC records removed, {} added",
        delta.removed.len(),
        delta.added.len()
    );
    Change {
        serial_from,
        serial_to: zone.serial,
        removed: delta.removed,
        added: delta.added,
        source: Source::Dynamic,
        audit: Audit::server(action, detail),
    }
}

/// Bring a zone just loaded at start in line with its DNSSEC settings:
/// with a signer, sign what is unsigned, out of line with the key and
/// settings, or suspected of not verifying ([`ZoneSigner::suspect`]:
/// signatures are checked after start, off the writer); everything on first
/// start, nothing on a restart; without one, strip every DNSSEC record. Returns the journaled change to commit, if anything changed
/// (`zone` then holds the new serial).
pub fn sync(signer: Option<&ZoneSigner>, zone: &mut ZoneData, now: u64) -> Option<Change> {
    let from = zone.serial;
    let (delta, action) = match signer {
        Some(s) => (s.sign_all(zone, now), Action::DnssecSign),
        None => (strip(zone), Action::DnssecOff),
    };
    (!delta.is_empty()).then(|| dnssec_change(from, zone, delta, action))
}

/// After the signer's keys changed (a rollover step, `roll`): the zone
/// brought in line with them (DNSKEY, CDS, CDNSKEY and every signature),
/// as the journaled change `detail` describes, if anything changed.
pub fn rekey(signer: &ZoneSigner, zone: &mut ZoneData, now: u64, detail: String) -> Option<Change> {
    let from = zone.serial;
    let delta = signer.sign_all(zone, now);
    (!delta.is_empty()).then(|| {
        let mut change = dnssec_change(from, zone, delta, Action::DnssecKey);
        change.audit.detail = format!("{detail} ({})", change.audit.detail);
        change
    })
}

/// Re-sign what is about to expire: the journaled change, if any.
pub fn refresh(signer: &ZoneSigner, zone: &mut ZoneData, now: u64) -> Option<Change> {
    let from = zone.serial;
    let delta = signer.refresh(zone, now);
    (!delta.is_empty()).then(|| dnssec_change(from, zone, delta, Action::DnssecRefresh))
}

/// The latest inception (Unix seconds) of the RRSIGs among `records`,
/// None when there is none. A signature whose inception is ahead of the
/// clock is not yet valid (RFC 4035 §5.3.1): the writer compares this with
/// the clock to notice that the clock went back.
pub fn latest_inception(records: &[Record]) -> Option<u64> {
    records
        .iter()
        .filter_map(|r| crate::zone::as_rrsig(&r.data))
        .map(|s| u64::from(s.input().sig_inception.get()))
        .max()
}

/// Between the UPDATEs of one batch, which is signed once after its last
/// UPDATE (`writer::group`): the NSEC and RRSIGs of the names a change
/// (`prev` to `next`, changing the RRsets in `touched`) took out of the
/// chain, removed from `next`: a name whose data is all gone, or that a
/// new delegation turned into glue. So the next UPDATE of the batch sees
/// such a name as gone, as it would after [`ZoneSigner::resign`] ("name
/// is not in use", RFC 2136 §2.4.5). Signs nothing; what stays in the
/// chain keeps its records until the batch is signed.
pub fn unchain(
    prev: &ZoneData,
    next: &mut ZoneData,
    touched: &BTreeSet<(Name, RecordType)>,
) -> Delta {
    let apex = next.origin().clone();
    let mut names: BTreeSet<Name> = BTreeSet::new();
    for (name, t) in touched {
        let name = name.to_lowercase();
        if *t == RecordType::NS && name != apex {
            names.extend(prev.subtree(&name).chain(next.subtree(&name)));
        }
        names.insert(name);
    }
    let mut delta = Delta::default();
    for name in names {
        // Nothing to drop (a name new in this batch has no NSEC yet): no
        // need to ask whether it is in the chain (a walk up its labels).
        let chained = |n: &crate::zone::Node| {
            n.contains_key(&RecordType::NSEC) || n.contains_key(&RecordType::RRSIG)
        };
        if !next.node(&name).is_some_and(chained) || nsec::in_chain(next, &name) {
            continue;
        }
        for t in [RecordType::NSEC, RecordType::RRSIG] {
            for r in next.records(&name, t) {
                delta.remove(r);
            }
            next.remove_rrset(&name, t);
        }
    }
    delta
}

/// Remove every record the signer makes (DS stays: it is delegation data).
/// Moves the serial when anything was removed.
pub fn strip(zone: &mut ZoneData) -> Delta {
    let mut delta = Delta::default();
    let names: Vec<_> = zone.names().collect();
    for name in names {
        let types: Vec<RecordType> = zone
            .node(&name)
            .map(|n| n.keys().copied().filter(|t| is_dnssec_type(*t)).collect())
            .unwrap_or_default();
        for t in types {
            for r in zone.records(&name, t) {
                delta.remove(r);
            }
            zone.remove_rrset(&name, t);
        }
    }
    if !delta.is_empty() {
        zone.serial = crate::serial::next(zone.serial);
    }
    delta
}

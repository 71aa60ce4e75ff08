//! The NSEC chain (RFC 4034 §4, RFC 4035 §2.3): which names are in it,
//! what each name's NSEC says, and the neighbours a change must fix.
//!
//! A name is in the chain when it is the apex or owns an authoritative
//! RRset or a delegation (NS below the apex): empty non-terminals own no
//! NSEC (the NSEC before them covers them, and its next name is below
//! them), and names below a delegation point are glue, outside the chain.
//! The last NSEC's next name is the apex (§4.1.1). The type bitmap lists
//! the types at the name plus NSEC and RRSIG; at a delegation point only
//! NS, DS (if any), NSEC and RRSIG (RFC 4035 §2.3). The NSEC TTL is
//! min(SOA TTL, SOA MINIMUM) (RFC 9077 §3), the zone's negative TTL.
//!
//! These functions look only at data types (not at RRSIG or NSEC RRsets),
//! so the answer does not depend on whether a neighbour's NSEC has been
//! fixed yet.
//!
//! # Limitations
//!
//! No wildcard owners (the zone serves none), so no wildcard proofs to
//! construct here beyond "no wildcard exists" in `query`.

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::zone::{Node, ZoneData};

/// Types the signer maintains per name; everything else at a node is data.
/// An NSEC3 is one: its hashed owner is no name of the NSEC chain.
fn is_chain_type(t: RecordType) -> bool {
    matches!(t, RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3)
}

/// Whether `node` holds data (anything but RRSIG, NSEC and NSEC3).
pub fn has_data(node: &Node) -> bool {
    node.keys().any(|t| !is_chain_type(*t))
}

/// Whether `name` is a delegation point (NS below the apex).
pub fn is_delegation(zone: &ZoneData, name: &Name) -> bool {
    name != zone.origin()
        && zone
            .node(name)
            .is_some_and(|n| n.contains_key(&RecordType::NS))
}

/// Whether `name` owns an NSEC: the apex, or a name with data that is not
/// below a delegation point.
pub fn in_chain(zone: &ZoneData, name: &Name) -> bool {
    if name == zone.origin() {
        return true;
    }
    zone.node(name).is_some_and(has_data)
        && zone.delegation_for(name).is_none_or(|cut| cut == *name)
}

/// The next name of the chain after `name`, or the apex after the last.
pub fn next_in_chain(zone: &ZoneData, name: &Name) -> Name {
    zone.nodes_after(name)
        .find(|(n, node)| has_data(node) && in_chain(zone, n))
        .map(|(n, _)| n)
        .unwrap_or_else(|| zone.origin().clone())
}

/// The chain name before `name` (the apex precedes every other name).
pub fn prev_in_chain(zone: &ZoneData, name: &Name) -> Name {
    zone.nodes_before(name)
        .find(|(n, node)| has_data(node) && in_chain(zone, n))
        .map(|(n, _)| n)
        .unwrap_or_else(|| zone.origin().clone())
}

/// The types an NSEC at `name` lists (RFC 4034 §4.1.2, RFC 4035 §2.3).
pub fn bitmap(zone: &ZoneData, name: &Name) -> Vec<RecordType> {
    let node = zone.node(name);
    let mut types: Vec<RecordType> = if is_delegation(zone, name) {
        let mut t = vec![RecordType::NS];
        if node.is_some_and(|n| n.contains_key(&RecordType::DS)) {
            t.push(RecordType::DS);
        }
        t
    } else {
        node.map(|n| n.keys().copied().filter(|t| !is_chain_type(*t)).collect())
            .unwrap_or_default()
    };
    if name == zone.origin() {
        types.push(RecordType::SOA);
    }
    types.push(RecordType::NSEC);
    types.push(RecordType::RRSIG);
    types
}

/// The NSEC RDATA `name` should own (only meaningful for chain names).
pub fn nsec_rdata(zone: &ZoneData, name: &Name) -> RData {
    RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(
        next_in_chain(zone, name),
        bitmap(zone, name),
    )))
}

/// The RRsets at a chain name that carry RRSIGs: every authoritative one
/// (with the synthesised SOA at the apex); at a delegation point only DS and
/// NSEC (RFC 4035 §2.2). Each as (type, TTL, RDATAs).
pub fn signed_rrsets(zone: &ZoneData, name: &Name) -> Vec<(RecordType, u32, Vec<RData>)> {
    let mut out = Vec::new();
    if name == zone.origin() {
        let soa = zone.soa_record();
        out.push((RecordType::SOA, soa.ttl, vec![soa.data]));
    }
    let Some(node) = zone.node(name) else {
        return out;
    };
    let delegation = is_delegation(zone, name);
    for (t, set) in node {
        let signed = match *t {
            RecordType::RRSIG => false,
            RecordType::DS | RecordType::NSEC => true,
            _ => !delegation,
        };
        if signed {
            out.push((*t, set.ttl, set.rdatas()));
        }
    }
    out
}

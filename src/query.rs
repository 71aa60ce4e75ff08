//! Authoritative answers from one zone snapshot: a pure function from
//! (snapshot, qname, qtype, DO bit) to the sections of the response.
//!
//! Implements RFC 1034 §4.3.2 (the lookup algorithm, less wildcards: the
//! zone serves none), RFC 2308 (NXDOMAIN versus NODATA, the SOA in
//! AUTHORITY with TTL = min(SOA TTL, SOA MINIMUM)), RFC 6604 (the RCODE of
//! a CNAME chain is that of its last name), RFC 8482 (ANY gets one RRset),
//! referrals below delegations, and additional-section processing: the
//! in-zone A/AAAA of NS name servers, MX exchanges (RFC 1035 §3.3.9) and
//! SRV targets (RFC 2782); glue below a zone cut goes unsigned.
//! Minimal responses: no NS in AUTHORITY of positive answers.
//!
//! DNSSEC (RFC 4035 §3.1), when the query has the DO bit and the zone is
//! signed: the RRSIGs of every RRset in ANSWER and AUTHORITY (CNAME chains
//! included); for NODATA the NSEC of the name, or for an empty non-terminal
//! the NSEC that covers it (§3.1.3.1); for NXDOMAIN the NSEC covering the
//! name and the NSEC covering the wildcard at its closest encloser
//! (§3.1.3.2), once if they are the same; in referrals the DS or the NSEC
//! proving there is none (§3.1.4). A zone whose apex holds an NSEC3PARAM
//! answers with NSEC3 instead (RFC 5155 §7.2): the matching NSEC3 for
//! NODATA, an empty non-terminal and a referral without DS, the closest
//! encloser proof for NXDOMAIN; the owner of an NSEC3 does not exist
//! (§7.2.8). The RRSIGs of authoritative addresses
//! in ADDITIONAL (§3.1.1; glue below a cut is not signed and gets none).
//! Without DO no DNSSEC record is added;
//! a query for RRSIG, NSEC or DNSKEY itself is answered like any type.
//!
//! # Limitations
//!
//! The SOA RRSIG in negative answers carries the negative TTL, like the
//! SOA itself. Additional addresses that do not fit are dropped (with
//! their RRSIGs) by the response, not truncated (RFC 4035 §3.1.1).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::zone::nsec3hash::Params;
use crate::zone::{ZoneData, is_dnssec_type};

/// The parts of a response the lookup decides.
#[derive(Debug, Default)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

/// Longest CNAME chain followed inside the zone.
const MAX_CNAME_CHAIN: usize = 8;

/// The names whose addresses go in ADDITIONAL for `records`: NS name
/// servers (RFC 1034 §4.3.2), MX exchanges (RFC 1035 §3.3.9), SRV targets
/// (RFC 2782). Each once, in order.
fn additional_targets(records: &[Record]) -> Vec<Name> {
    let mut out: Vec<Name> = Vec::new();
    for r in records {
        let target = match &r.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            _ => continue,
        };
        if !target.is_root() && !out.contains(target) {
            out.push(target.clone());
        }
    }
    out
}

/// Additional-section processing: the A and AAAA RRsets of every in-zone
/// target of `records`. Authoritative addresses carry their RRSIGs when
/// DNSSEC is asked for (RFC 4035 §3.1.1); addresses at or below a zone cut
/// are glue, sent as Knot sends them, unsigned.
fn additional(
    zone: &ZoneData,
    proofs: Option<&Proofs<'_>>,
    records: &[Record],
    out: &mut Vec<Record>,
) {
    for target in additional_targets(records) {
        if !zone.origin().zone_of(&target) {
            continue;
        }
        let below_cut = zone.delegation_for(&target).is_some();
        for rtype in [RecordType::A, RecordType::AAAA] {
            let set = zone.records(&target, rtype);
            out.extend(set.iter().cloned());
            if let Some(p) = proofs
                && !below_cut
            {
                p.signed(&set, out);
            }
        }
    }
}

/// Whether `name` exists: the apex, or a node with data. A hashed owner
/// holding only its NSEC3 (and RRSIG) does not (RFC 5155 §7.2.8: a
/// query for it gets a Name Error).
fn exists(zone: &ZoneData, name: &Name) -> bool {
    name == zone.origin()
        || zone.node(name).is_some_and(|n| {
            n.keys()
                .any(|t| !matches!(t, RecordType::NSEC3 | RecordType::RRSIG))
        })
}

/// What DNSSEC adds, if anything: None without DO or on an unsigned zone.
struct Proofs<'z> {
    zone: &'z ZoneData,
    /// The NSEC3 parameters when the zone's NSEC3PARAM says NSEC3 is in
    /// use (RFC 5155 §7.2); NSEC proofs otherwise.
    nsec3: Option<Params>,
}

impl<'z> Proofs<'z> {
    fn new(zone: &'z ZoneData, dnssec_ok: bool) -> Option<Self> {
        (dnssec_ok && zone.is_signed()).then(|| Self {
            zone,
            nsec3: Params::of_zone(zone),
        })
    }

    /// The NSEC3 RRset at `owner`, with its RRSIGs, unless already in `out`.
    fn nsec3_at(&self, owner: &Name, out: &mut Vec<Record>) {
        let already = out
            .iter()
            .any(|r| r.record_type() == RecordType::NSEC3 && r.name == *owner);
        if already {
            return;
        }
        let set = self.zone.records(owner, RecordType::NSEC3);
        out.extend(set.iter().cloned());
        self.signed(&set, out);
    }

    /// The NSEC3 matching `name` (RFC 5155 §7.2.3, §7.2.5, §7.2.7).
    fn nsec3_matching(&self, p: &Params, name: &Name, out: &mut Vec<Record>) {
        self.nsec3_at(&p.owner(self.zone.origin(), name), out);
    }

    /// The NSEC3 covering `name`'s hash: the last owner before it in hash
    /// order, or the last of all (the chain wraps around).
    fn nsec3_covering(&self, p: &Params, name: &Name, out: &mut Vec<Record>) {
        let owner = p.owner(self.zone.origin(), name);
        let cover = match self.zone.rrset(&owner, RecordType::NSEC3) {
            Some(_) => Some(owner),
            None => self.zone.nsec3_owner_before(&owner),
        };
        if let Some(cover) = cover {
            self.nsec3_at(&cover, out);
        }
    }

    /// NODATA at an existing name (or no DS at a delegation point): the
    /// name's own NSEC, or its matching NSEC3.
    fn nodata(&self, name: &Name, out: &mut Vec<Record>) {
        match &self.nsec3 {
            Some(p) => self.nsec3_matching(p, name, out),
            None => self.nsec_at(name, out),
        }
    }

    /// NODATA at an empty non-terminal: the NSEC covering it, or the
    /// NSEC3 matching it (RFC 5155 §7.1 gives every ENT one).
    fn empty_non_terminal(&self, name: &Name, out: &mut Vec<Record>) {
        match &self.nsec3 {
            Some(p) => self.nsec3_matching(p, name, out),
            None => self.covering(name, out),
        }
    }

    /// `records` (one RRset) followed by its RRSIGs.
    fn signed(&self, records: &[Record], out: &mut Vec<Record>) {
        if let Some(first) = records.first() {
            out.extend(
                self.zone
                    .rrsigs(&first.name, first.record_type())
                    .into_iter()
                    .map(|mut s| {
                        s.name = first.name.clone();
                        s
                    }),
            );
        }
    }

    /// The NSEC RRset owned by `name`, with its RRSIGs, unless already in `out`.
    fn nsec_at(&self, owner: &Name, out: &mut Vec<Record>) {
        let already = out
            .iter()
            .any(|r| r.record_type() == RecordType::NSEC && r.name == *owner);
        if already {
            return;
        }
        let nsec = self.zone.records(owner, RecordType::NSEC);
        if nsec.is_empty() {
            return;
        }
        out.extend(nsec.iter().cloned());
        self.signed(&nsec, out);
    }

    /// The NSEC whose owner is the last chain name at or before `name` in
    /// canonical order: it covers `name` when `name` does not exist.
    fn covering(&self, name: &Name, out: &mut Vec<Record>) {
        let owner = if self.zone.rrset(name, RecordType::NSEC).is_some() {
            Some(name.clone())
        } else {
            self.zone
                .nodes_before(name)
                .find(|(_, node)| node.contains_key(&RecordType::NSEC))
                .map(|(n, _)| n)
        };
        if let Some(owner) = owner {
            self.nsec_at(&owner, out);
        }
    }

    /// NXDOMAIN (RFC 4035 §3.1.3.2): the name does not exist, nor does a
    /// wildcard at its closest encloser.
    ///
    /// With NSEC3, the closest encloser proof of RFC 5155 §7.2.1-2: the
    /// NSEC3 matching the closest encloser, the one covering the next
    /// closer name, the one covering the wildcard at the closest encloser.
    fn nxdomain(&self, name: &Name, out: &mut Vec<Record>) {
        let zone = self.zone;
        let mut encloser = name.base_name();
        while encloser.num_labels() > zone.origin().num_labels()
            && !exists(zone, &encloser)
            && !zone.has_descendants(&encloser)
        {
            encloser = encloser.base_name();
        }
        let wildcard = encloser.prepend_label("*").ok();
        if let Some(p) = &self.nsec3 {
            self.nsec3_matching(p, &encloser, out);
            let next_closer = name.trim_to(usize::from(encloser.num_labels()) + 1);
            self.nsec3_covering(p, &next_closer, out);
            if let Some(w) = &wildcard {
                self.nsec3_covering(p, w, out);
            }
            return;
        }
        self.covering(name, out);
        if let Some(w) = &wildcard {
            self.covering(w, out);
        }
    }
}

/// The SOA for a negative answer (TTL = the negative TTL), with its RRSIGs.
fn negative(zone: &ZoneData, proofs: Option<&Proofs<'_>>, out: &mut Vec<Record>) {
    let mut soa = zone.soa_record();
    soa.ttl = zone.negative_ttl();
    let soa = [soa];
    out.extend(soa.iter().cloned());
    if let Some(p) = proofs {
        let at = out.len();
        p.signed(&soa, out);
        for r in &mut out[at..] {
            r.ttl = zone.negative_ttl();
        }
    }
}

pub fn lookup(zone: &ZoneData, qname: &Name, qtype: RecordType, dnssec_ok: bool) -> Answer {
    let proofs = Proofs::new(zone, dnssec_ok);
    let proofs = proofs.as_ref();
    let mut answer = Answer {
        authoritative: true,
        ..Answer::default()
    };
    let mut name = qname.clone();
    let mut visited: Vec<Name> = Vec::new();
    for _ in 0..MAX_CNAME_CHAIN {
        // Below a zone cut we are not authoritative: refer (DS lives at the parent side).
        if let Some(cut) = zone.delegation_for(&name)
            && !(qtype == RecordType::DS && cut == name)
        {
            let ns = zone.records(&cut, RecordType::NS);
            additional(zone, proofs, &ns, &mut answer.additionals);
            answer.authorities = ns;
            if let Some(p) = proofs {
                // RFC 4035 §3.1.4: the DS, or the NSEC proving there is none.
                let ds = zone.records(&cut, RecordType::DS);
                if ds.is_empty() {
                    p.nodata(&cut, &mut answer.authorities);
                } else {
                    answer.authorities.extend(ds.iter().cloned());
                    p.signed(&ds, &mut answer.authorities);
                }
            }
            answer.authoritative = !answer.answers.is_empty();
            return answer;
        }
        if !exists(zone, &name) {
            negative(zone, proofs, &mut answer.authorities);
            if zone.has_descendants(&name) {
                // empty non-terminal: NODATA (RFC 2308 §2.2), covered by
                // the NSEC before it, or its own NSEC3
                if let Some(p) = proofs {
                    p.empty_non_terminal(&name, &mut answer.authorities);
                }
            } else {
                answer.rcode = ResponseCode::NXDomain;
                if let Some(p) = proofs {
                    p.nxdomain(&name, &mut answer.authorities);
                }
            }
            return answer;
        }
        if qtype == RecordType::ANY {
            // RFC 8482 §4.1: answer with one RRset of the name (not a DNSSEC one).
            let pick = if name == *zone.origin() {
                vec![zone.soa_record()]
            } else {
                zone.node(&name)
                    .and_then(|n| n.keys().copied().find(|t| !is_dnssec_type(*t)))
                    .map(|t| zone.records(&name, t))
                    .unwrap_or_default()
            };
            answer.answers.extend(pick.iter().cloned());
            if let Some(p) = proofs {
                p.signed(&pick, &mut answer.answers);
            }
            return answer;
        }
        let found = zone.records(&name, qtype);
        if !found.is_empty() {
            if matches!(qtype, RecordType::NS | RecordType::MX | RecordType::SRV) {
                additional(zone, proofs, &found, &mut answer.additionals);
            }
            answer.answers.extend(found.iter().cloned());
            if let Some(p) = proofs
                && qtype != RecordType::RRSIG
            {
                p.signed(&found, &mut answer.answers);
            }
            return answer;
        }
        let cname = zone.records(&name, RecordType::CNAME);
        let Some(target) = cname.first().and_then(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.clone()),
            _ => None,
        }) else {
            // NODATA: the name's own NSEC (or NSEC3) shows the type is not there.
            negative(zone, proofs, &mut answer.authorities);
            if let Some(p) = proofs {
                p.nodata(&name, &mut answer.authorities);
            }
            return answer;
        };
        answer.answers.extend(cname.iter().cloned());
        if let Some(p) = proofs {
            p.signed(&cname, &mut answer.answers);
        }
        visited.push(name);
        if !zone.origin().zone_of(&target) || visited.contains(&target) {
            // out of zone, or a loop: the resolver follows from here
            return answer;
        }
        name = target;
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn zone() -> ZoneData {
        let spec = crate::zonefile::parse(
            Path::new("z.toml"),
            r#"origin = "z.test."
contact = "h.z.test."
nameservers = ["ns1"]
[glue]
ns1 = ["127.0.0.1"]
[[record]]
name = "a.b"
type = "TXT"
data = "x"
[[record]]
name = "alias"
type = "CNAME"
data = "a.b.z.test."
[[record]]
name = "dangling"
type = "CNAME"
data = "nope.z.test."
[[record]]
name = "sub"
type = "NS"
data = "ns.elsewhere.test."
"#,
        )
        .unwrap();
        ZoneData::new(Arc::new(spec), 5, [])
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn lookup0(z: &ZoneData, name: &Name, t: RecordType) -> Answer {
        lookup(z, name, t, false)
    }

    #[test]
    fn nxdomain_nodata_and_empty_non_terminal() {
        let z = zone();
        let a = lookup0(&z, &n("nope.z.test."), RecordType::TXT);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(a.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(a.authorities[0].ttl, 1);
        let a = lookup0(&z, &n("a.b.z.test."), RecordType::A);
        assert_eq!((a.rcode, a.answers.len()), (ResponseCode::NoError, 0));
        assert_eq!(a.authorities.len(), 1);
        let a = lookup0(&z, &n("b.z.test."), RecordType::TXT);
        assert_eq!((a.rcode, a.answers.len()), (ResponseCode::NoError, 0));
        // two labels below an existing name: still NXDOMAIN
        let a = lookup0(&z, &n("x.y.a.b.z.test."), RecordType::TXT);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
    }

    #[test]
    fn cname_chains_and_rcode_of_last_name() {
        let z = zone();
        let a = lookup0(&z, &n("alias.z.test."), RecordType::TXT);
        assert_eq!(a.answers.len(), 2);
        let a = lookup0(&z, &n("dangling.z.test."), RecordType::TXT);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(a.answers.len(), 1);
    }

    #[test]
    fn referral_below_a_delegation_and_glue_for_apex_ns() {
        let z = zone();
        let a = lookup0(&z, &n("www.sub.z.test."), RecordType::A);
        assert!(!a.authoritative);
        assert_eq!(a.authorities[0].record_type(), RecordType::NS);
        let a = lookup0(&z, &n("z.test."), RecordType::NS);
        assert_eq!(a.additionals.len(), 1);
        let a = lookup0(&z, &n("z.test."), RecordType::ANY);
        assert_eq!(a.answers.len(), 1);
    }
}

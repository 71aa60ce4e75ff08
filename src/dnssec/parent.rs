//! What the zone's parent serves, asked directly: the DS RRset of a zone at
//! one nameserver of its parent (like BIND's `checkds` and Knot's
//! `parent_ds_query.c`), the parent's nameservers found through a recursive
//! resolver, and DS comparison. A key rollover proceeds past "DS submitted"
//! only when **every** parent nameserver serves the new DS (and, before the
//! old key goes, none still serves the old one), so each nameserver is
//! asked on its own, without recursion, and every answer that is not an
//! authoritative statement about the DS RRset is an error that names the
//! server and what it said: a rollover never proceeds on a guess.
//!
//! Owns: the DS query and its interpretation ([`ds_at`]), the walk to the
//! parent's zone cut and its NS addresses ([`parent_nameservers`]), the
//! system resolver from `/etc/resolv.conf` ([`system_resolver`]), and
//! [`ds_matches`]. It does not own when to ask or what a rollover does with
//! the answers (the key lifecycle does), nor where the parent's addresses
//! come from when configured.
//!
//! RFCs: RFC 4035 §3.1.4.1 (DS is answered by the parent side of the cut;
//! RD clear, DO set, RFC 3225), RFC 2308 §5 (the negative TTL of a NODATA
//! answer: min(SOA TTL, SOA MINIMUM)), RFC 4034 §5 (DS fields), RFC 7583
//! (the rollover states these answers drive).
//!
//! # Limitations
//!
//! - The answers' RRSIGs are not validated here: the parent's nameservers
//!   are asked directly and trusted like a configured secondary is; what a
//!   validating resolver concludes is the rollover tests' job.
//! - The parent's nameservers are looked up through one recursive resolver
//!   (the one given); a resolver that lies about them is believed.
//! - Addresses found by [`parent_nameservers`] are on port 53.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::dnssec::rdata::{DNSSECRData, DS};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::dnsclient::{self, ClientError};

/// The EDNS payload size offered (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// What one parent nameserver serves for a zone's DS RRset.
#[derive(Debug, Clone)]
pub struct DsAnswer {
    /// The nameserver asked.
    pub server: SocketAddr,
    /// The DS RRset (empty: the parent says authoritatively there is none).
    pub records: Vec<DS>,
    /// The RRset's TTL; for an empty set the negative TTL (RFC 2308 §5:
    /// min(SOA TTL, SOA MINIMUM)), or 0 when the answer carries no SOA.
    pub ttl: u32,
}

impl DsAnswer {
    /// Whether the set holds a DS matching `ds` ([`ds_matches`]).
    pub fn contains(&self, ds: &DS) -> bool {
        self.records.iter().any(|r| ds_matches(r, ds))
    }
}

/// Why the parent's DS (or its nameservers) could not be learnt. Each
/// names the server asked and what it said. (Names are boxed: the error
/// stays small on the `Ok` path.)
#[derive(Debug, thiserror::Error)]
pub enum ParentError {
    #[error("parent nameserver {server}: no usable answer for {zone} DS: {source}")]
    Exchange {
        server: SocketAddr,
        zone: Box<Name>,
        #[source]
        source: ClientError,
    },
    #[error("parent nameserver {server} answered {} for {zone} DS", rcode_name(.rcode))]
    Rcode {
        server: SocketAddr,
        zone: Box<Name>,
        rcode: ResponseCode,
    },
    #[error(
        "parent nameserver {server} answered NXDOMAIN for {zone} DS: the parent does not delegate {zone}"
    )]
    NotDelegated { server: SocketAddr, zone: Box<Name> },
    #[error(
        "parent nameserver {server} referred the query for {zone} DS to {to} instead of answering: it is not authoritative for the parent of {zone}"
    )]
    Referral {
        server: SocketAddr,
        zone: Box<Name>,
        to: Box<Name>,
    },
    #[error(
        "parent nameserver {server} answered {zone} DS without authority (AA clear): lame for the parent of {zone}"
    )]
    NotAuthoritative { server: SocketAddr, zone: Box<Name> },
    #[error(
        "{server} answered {zone} DS from the zone {zone} itself: it is a nameserver of the child, not of its parent"
    )]
    ChildAnswered { server: SocketAddr, zone: Box<Name> },
    #[error("the root zone has no parent")]
    Root,
    #[error("resolver {resolver}: no usable answer for {name} {rtype}: {source}")]
    Resolver {
        resolver: SocketAddr,
        name: Box<Name>,
        rtype: RecordType,
        #[source]
        source: ClientError,
    },
    #[error("resolver {resolver} answered {} for {name} {rtype}", rcode_name(.rcode))]
    ResolverRcode {
        resolver: SocketAddr,
        name: Box<Name>,
        rtype: RecordType,
        rcode: ResponseCode,
    },
    #[error("resolver {resolver} found no zone above {zone} (no SOA up to the root)")]
    NoZoneCut { resolver: SocketAddr, zone: Name },
    #[error("resolver {resolver} found no NS records for {parent}, the parent of {zone}")]
    NoNameservers {
        resolver: SocketAddr,
        zone: Box<Name>,
        parent: Box<Name>,
    },
    #[error("resolver {resolver} found no A or AAAA records for {ns}, a nameserver of {parent}")]
    NoAddress {
        resolver: SocketAddr,
        parent: Box<Name>,
        ns: Box<Name>,
    },
    #[error("cannot read {path}: {source}")]
    ResolvConf {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} names no nameserver")]
    NoSystemResolver { path: String },
}

/// An RCODE's mnemonic as DNS tools print it (RFC 6895 §2.3): `SERVFAIL`,
/// `REFUSED`, ...
pub fn rcode_name(rcode: &ResponseCode) -> String {
    match u16::from(*rcode) {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        9 => "NOTAUTH".into(),
        n => format!("RCODE {n}"),
    }
}

/// Whether two DS records name the same key the same way: key tag,
/// algorithm, digest type and digest (compared as bytes, so however the
/// presentation form spelt the hex). The TTL and owner are not part of it.
pub fn ds_matches(a: &DS, b: &DS) -> bool {
    a.key_tag() == b.key_tag()
        && a.algorithm() == b.algorithm()
        && a.digest_type() == b.digest_type()
        && a.digest() == b.digest()
}

/// A DS from its presentation form (`"12345 13 2 ABCDEF..."`, hex in any
/// case, spaces inside the digest allowed) or a whole DS line (`owner [ttl]
/// [class] DS rdata`): what an admin or a test pastes.
pub fn parse_ds(text: &str) -> Option<DS> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let rdata = match words.iter().position(|w| w.eq_ignore_ascii_case("DS")) {
        Some(i) => words[i + 1..].join(" "),
        None => words.join(" "),
    };
    match RData::try_from_str(RecordType::DS, &rdata).ok()? {
        RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
        _ => None,
    }
}

/// The DS RRset of `zone` as served by `server`, one nameserver of its
/// parent: a non-recursive query (RD clear, DO set, EDNS 1232) over UDP,
/// again over TCP when truncated. Only an authoritative answer counts:
/// the RRset, or NODATA from the parent zone (an empty set). A referral, a
/// non-authoritative or child-side answer, NXDOMAIN, any other RCODE and a
/// timeout are errors naming `server`.
pub async fn ds_at(
    server: SocketAddr,
    zone: &Name,
    timeout: Duration,
) -> Result<DsAnswer, ParentError> {
    let mut m = Message::new(0, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = false;
    m.add_query(Query::query(zone.clone(), RecordType::DS));
    let mut e = Edns::new();
    e.set_max_payload(EDNS_PAYLOAD);
    e.set_dnssec_ok(true);
    m.set_edns(e);
    let answer = dnsclient::exchange(server, m, None, 0, timeout)
        .await
        .map_err(|source| ParentError::Exchange {
            server,
            zone: Box::new(zone.clone()),
            source,
        })?;
    interpret_ds(server, zone, &answer)
}

/// [`ds_at`]'s reading of the answer.
fn interpret_ds(
    server: SocketAddr,
    zone: &Name,
    answer: &Message,
) -> Result<DsAnswer, ParentError> {
    let zone_err = || Box::new(zone.clone());
    let asked = answer
        .queries
        .first()
        .is_some_and(|q| q.name() == zone && q.query_type() == RecordType::DS);
    if !asked {
        return Err(ParentError::Exchange {
            server,
            zone: zone_err(),
            source: ClientError::Malformed("the answer is for another question".into()),
        });
    }
    match answer.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain if answer.metadata.authoritative => {
            return Err(ParentError::NotDelegated {
                server,
                zone: zone_err(),
            });
        }
        rcode => {
            return Err(ParentError::Rcode {
                server,
                zone: zone_err(),
                rcode,
            });
        }
    }
    if !answer.metadata.authoritative {
        // A referral: NS records in the authority section, no answer.
        if let Some(ns) = answer
            .authorities
            .iter()
            .find(|r| r.record_type() == RecordType::NS)
        {
            return Err(ParentError::Referral {
                server,
                zone: zone_err(),
                to: Box::new(ns.name.clone()),
            });
        }
        return Err(ParentError::NotAuthoritative {
            server,
            zone: zone_err(),
        });
    }
    let records: Vec<(DS, u32)> = answer
        .answers
        .iter()
        .filter(|r| r.name == *zone)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DS(ds)) => Some((ds.clone(), r.ttl)),
            _ => None,
        })
        .collect();
    if !records.is_empty() {
        let ttl = records.iter().map(|(_, t)| *t).min().unwrap_or(0);
        return Ok(DsAnswer {
            server,
            records: records.into_iter().map(|(ds, _)| ds).collect(),
            ttl,
        });
    }
    // NODATA. From the parent, the SOA in the authority section is the
    // parent zone's, strictly above `zone`; the child's own servers answer
    // from the child's apex.
    let soa = answer.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some((r.name.clone(), r.ttl, soa.minimum)),
        _ => None,
    });
    match soa {
        Some((owner, _, _)) if owner == *zone || !owner.zone_of(zone) => {
            Err(ParentError::ChildAnswered {
                server,
                zone: zone_err(),
            })
        }
        Some((_, ttl, minimum)) => Ok(DsAnswer {
            server,
            records: Vec::new(),
            ttl: ttl.min(minimum),
        }),
        None => Ok(DsAnswer {
            server,
            records: Vec::new(),
            ttl: 0,
        }),
    }
}

/// Ask `resolver` (recursively, DO set) for `name` `rtype`; NOERROR and
/// NXDOMAIN answers are returned, anything else is an error.
async fn ask(
    resolver: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, ParentError> {
    let answer = dnsclient::resolve(resolver, name, rtype, timeout)
        .await
        .map_err(|source| ParentError::Resolver {
            resolver,
            name: Box::new(name.clone()),
            rtype,
            source,
        })?;
    match answer.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(answer),
        rcode => Err(ParentError::ResolverRcode {
            resolver,
            name: Box::new(name.clone()),
            rtype,
            rcode,
        }),
    }
}

/// The addresses (port 53) of the nameservers of `zone`'s parent, found
/// through the recursive resolver `resolver`: from the name above `zone`
/// up to the first name with an SOA (the parent's apex), its NS names, and
/// each name's A and AAAA records. Sorted, without duplicates. A parent NS
/// name without addresses is an error (a nameserver that could not be
/// asked would be a nameserver whose DS nobody checked).
pub async fn parent_nameservers(
    zone: &Name,
    resolver: SocketAddr,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, ParentError> {
    if zone.is_root() {
        return Err(ParentError::Root);
    }
    let mut name = zone.base_name();
    let parent = loop {
        let answer = ask(resolver, &name, RecordType::SOA, timeout).await?;
        let apex = answer.metadata.response_code == ResponseCode::NoError
            && answer
                .answers
                .iter()
                .any(|r| r.name == name && r.record_type() == RecordType::SOA);
        if apex {
            break name;
        }
        if name.is_root() {
            return Err(ParentError::NoZoneCut {
                resolver,
                zone: zone.clone(),
            });
        }
        name = name.base_name();
    };
    let answer = ask(resolver, &parent, RecordType::NS, timeout).await?;
    let mut ns_names: Vec<Name> = answer
        .answers
        .iter()
        .filter(|r| r.name == parent)
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.clone()),
            _ => None,
        })
        .collect();
    ns_names.sort();
    ns_names.dedup();
    if ns_names.is_empty() {
        return Err(ParentError::NoNameservers {
            resolver,
            zone: Box::new(zone.clone()),
            parent: Box::new(parent),
        });
    }
    let mut addrs = Vec::new();
    for ns in &ns_names {
        let mut found = Vec::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            let answer = ask(resolver, ns, rtype, timeout).await?;
            found.extend(answer.answers.iter().filter_map(|r| match &r.data {
                RData::A(a) if r.name == *ns => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) if r.name == *ns => Some(IpAddr::V6(a.0)),
                _ => None,
            }));
        }
        if found.is_empty() {
            return Err(ParentError::NoAddress {
                resolver,
                parent: Box::new(parent.clone()),
                ns: Box::new(ns.clone()),
            });
        }
        addrs.extend(found.into_iter().map(|ip| SocketAddr::new(ip, 53)));
    }
    addrs.sort();
    addrs.dedup();
    Ok(addrs)
}

/// The system's recursive resolver: the first `nameserver` line of
/// `/etc/resolv.conf`, port 53 (for zones whose file names no parent
/// nameservers).
pub fn system_resolver() -> Result<SocketAddr, ParentError> {
    let path = "/etc/resolv.conf";
    let text = std::fs::read_to_string(path).map_err(|source| ParentError::ResolvConf {
        path: path.into(),
        source,
    })?;
    first_nameserver(&text).ok_or_else(|| ParentError::NoSystemResolver { path: path.into() })
}

/// The first usable `nameserver` line of a resolv.conf text (a scoped IPv6
/// address `fe80::1%eth0` is skipped: it cannot be written as a
/// `SocketAddr` without its interface index).
fn first_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{NS, SOA};

    const DS_A: &str = "2371 13 2 1F987CC6583E92DF0890718C42F1FC1E8DF3B8E8E3EBE5E5BB22B7A4A2A1B1D0";

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn ds_record(owner: &str, ttl: u32, text: &str) -> Record {
        Record::from_rdata(
            name(owner),
            ttl,
            RData::DNSSEC(DNSSECRData::DS(parse_ds(text).unwrap())),
        )
    }

    fn soa_record(owner: &str, ttl: u32, minimum: u32) -> Record {
        Record::from_rdata(
            name(owner),
            ttl,
            RData::SOA(SOA::new(
                name("ns1.example.org."),
                name("hostmaster.example.org."),
                1,
                300,
                60,
                86400,
                minimum,
            )),
        )
    }

    /// A UDP responder on 127.0.0.1 that answers each query with what
    /// `respond` makes of it (None: stays silent). Stops with the test's
    /// runtime.
    async fn responder(
        respond: impl Fn(&Message) -> Option<Message> + Send + 'static,
    ) -> SocketAddr {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let Ok(req) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Some(resp) = respond(&req) {
                    let _ = sock.send_to(&resp.to_vec().unwrap(), from).await;
                }
            }
        });
        addr
    }

    /// The answer skeleton for `req`: same ID and question, `rcode`, AA as given.
    fn reply(req: &Message, rcode: ResponseCode, aa: bool) -> Message {
        let mut m = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = aa;
        m.metadata.response_code = rcode;
        for q in &req.queries {
            m.add_query(q.clone());
        }
        m
    }

    const T: Duration = Duration::from_millis(500);

    /// How a test responder answers a request (None: not at all).
    type Respond = fn(&Message) -> Option<Message>;

    fn child() -> Name {
        name("_acme.example.org.")
    }

    #[tokio::test]
    async fn ds_at_returns_the_authoritative_rrset_and_its_ttl() {
        let addr = responder(|req| {
            // What a parent does: RD clear and DO set are what it is sent.
            assert!(!req.metadata.recursion_desired);
            assert!(req.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok));
            let mut m = reply(req, ResponseCode::NoError, true);
            m.add_answer(ds_record("_acme.example.org.", 7, DS_A));
            Some(m)
        })
        .await;
        let a = ds_at(addr, &child(), T).await.unwrap();
        assert_eq!(a.records.len(), 1);
        assert_eq!(a.ttl, 7);
        assert!(a.contains(&parse_ds(&DS_A.to_lowercase()).unwrap()));
    }

    #[tokio::test]
    async fn ds_at_nodata_from_the_parent_is_an_empty_set_with_the_negative_ttl() {
        let addr = responder(|req| {
            let mut m = reply(req, ResponseCode::NoError, true);
            m.add_authority(soa_record("example.org.", 30, 5));
            Some(m)
        })
        .await;
        let a = ds_at(addr, &child(), T).await.unwrap();
        assert!(a.records.is_empty());
        assert_eq!(a.ttl, 5);
    }

    #[tokio::test]
    async fn ds_at_refuses_what_is_not_an_authoritative_parent_answer() {
        let cases: Vec<(&str, Respond, &str)> = vec![
            (
                "REFUSED",
                |req| Some(reply(req, ResponseCode::Refused, false)),
                "answered REFUSED",
            ),
            (
                "SERVFAIL",
                |req| Some(reply(req, ResponseCode::ServFail, true)),
                "answered SERVFAIL",
            ),
            (
                "referral",
                |req| {
                    let mut m = reply(req, ResponseCode::NoError, false);
                    m.add_authority(Record::from_rdata(
                        name("org."),
                        60,
                        RData::NS(NS(name("a.org.test."))),
                    ));
                    Some(m)
                },
                "referred the query",
            ),
            (
                "lame",
                |req| Some(reply(req, ResponseCode::NoError, false)),
                "without authority",
            ),
            (
                "child",
                |req| {
                    let mut m = reply(req, ResponseCode::NoError, true);
                    m.add_authority(soa_record("_acme.example.org.", 30, 5));
                    Some(m)
                },
                "nameserver of the child",
            ),
            (
                "NXDOMAIN",
                |req| Some(reply(req, ResponseCode::NXDomain, true)),
                "does not delegate",
            ),
            ("silent", |_| None, "no answer within"),
        ];
        for (what, respond, says) in cases {
            let addr = responder(respond).await;
            let err = ds_at(addr, &child(), T).await.unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains(&addr.to_string()),
                "{what}: {err}"
            );
        }
    }

    #[test]
    fn ds_matching_ignores_presentation_and_compares_every_field() {
        let a = parse_ds(DS_A).unwrap();
        let line = format!("_acme.example.org. 3600 IN DS {}", DS_A.to_lowercase());
        assert!(ds_matches(&a, &parse_ds(&line).unwrap()));
        let spaced = "2371 13 2 1F987CC6583E92DF0890718C42F1FC1E 8DF3B8E8E3EBE5E5BB22B7A4A2A1B1D0";
        assert!(ds_matches(&a, &parse_ds(spaced).unwrap()));
        for other in [
            "2372 13 2 1F987CC6583E92DF0890718C42F1FC1E8DF3B8E8E3EBE5E5BB22B7A4A2A1B1D0",
            "2371 15 2 1F987CC6583E92DF0890718C42F1FC1E8DF3B8E8E3EBE5E5BB22B7A4A2A1B1D0",
            "2371 13 4 1F987CC6583E92DF0890718C42F1FC1E8DF3B8E8E3EBE5E5BB22B7A4A2A1B1D01F987CC6583E92DF0890718C42F1FC1E",
            "2371 13 2 1F987CC6583E92DF0890718C42F1FC1E8DF3B8E8E3EBE5E5BB22B7A4A2A1B1D1",
        ] {
            assert!(!ds_matches(&a, &parse_ds(other).unwrap()), "{other}");
        }
        assert!(parse_ds("not a DS").is_none());
    }

    #[test]
    fn the_system_resolver_is_the_first_usable_nameserver_line() {
        let text = "# comment\nsearch example.org\nnameserver fe80::1%eth0\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n";
        assert_eq!(
            first_nameserver(text),
            Some("10.0.0.53:53".parse().unwrap())
        );
        assert_eq!(first_nameserver("search x\n"), None);
    }
}

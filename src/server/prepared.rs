//! Prepared answers: the UDP fast path for plain queries.
//!
//! Most of what a public authoritative server receives is a handful of
//! query shapes asked again and again (the SOA at the apex, a challenge
//! TXT, a TLSA, names that do not exist), against a zone that changes a
//! few times a second at most. So a plain query is answered from the wire
//! form of an earlier answer to the same question, with the query's ID,
//! its RD and CD bits and the case of its question (RFC 5452 §9.1, "0x20")
//! patched in; only the first query of each shape after a change is looked
//! up and encoded.
//!
//! - **Plain** ([`parse`]): opcode QUERY, one question of class IN, no
//!   answer or authority records, at most one additional record, which is
//!   an EDNS(0) OPT without options; not a transfer, meta or TSIG type;
//!   no TC or RCODE bits; nothing after the last record. Anything else
//!   (TSIG, COOKIE or NSID options, EDNS version 1, class CH, UPDATE,
//!   NOTIFY, a name outside our zones, a malformed packet) goes to the
//!   request front (`Handler`) as before, which answers it in full.
//! - **Prepared** ([`Answers`]): one table per zone per socket worker
//!   (no locks, no sharing between cores), keyed by the lowercased name,
//!   the type, and whether the query had EDNS and the DO bit. An entry is
//!   built by the query handler itself (`query::answer_from` on the zone's
//!   snapshot, encoded by `response::encode`, as the slow path sends it)
//!   for a canonical request: ID 0, no flags, the lowercased question.
//!   Names in the answer that equal the question are compressed to point
//!   at it, so they take the case the client sent, as Knot and NSD do.
//!   A table is emptied when its zone publishes a new snapshot (checked
//!   once per received batch) and when it holds [`MAX_ENTRIES`].
//! - **The same limits** as the slow path: the answer must fit the
//!   requester's UDP size (else the slow path truncates it); response
//!   rate limiting (`rrl`) classifies each prepared answer once and
//!   checks every answer sent (drops and slips counted as before: a slip
//!   is the TC=1 answer with the question only); the query counter is
//!   counted per answer.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use super::cookie::Seen;
use super::rrl::{self, Class, Verdict};
use super::{Context, query, response};
use crate::metrics;
use crate::writer::{ZoneHandle, Zones};
use crate::zone::{ZoneData, canonical_wire};

/// Header bits (RFC 1035 §4.1.1): octet 2.
const QR: u8 = 0x80;
const OPCODE: u8 = 0x78;
const AA: u8 = 0x04;
const TC: u8 = 0x02;
const RD: u8 = 0x01;
/// Octet 3.
const CD: u8 = 0x10;
const RCODE: u8 = 0x0f;
/// The DO bit of an OPT record's flags (RFC 3225).
const DO: u16 = 0x8000;

/// Entries kept per zone and worker before the table is emptied: a flood
/// of random names cannot make it grow past this (about 300 octets each).
pub const MAX_ENTRIES: usize = 16_384;

/// A plain query, as [`parse`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain {
    /// Offset just past the question's name.
    name_end: usize,
    qtype: u16,
    /// The requester's EDNS UDP payload size and DO bit, if it sent OPT.
    edns: Option<(u16, bool)>,
    /// Where its COOKIE option's data is, and how long, if it sent one.
    cookie: Option<(usize, usize)>,
}

/// The key of a prepared answer, and where the question name's labels
/// start (for finding its zone); reused for every query of a worker.
#[derive(Default)]
pub struct Key {
    /// The lowercased name in wire form, the type, and 0 (no EDNS), 1
    /// (EDNS) or 2 (EDNS with DO).
    bytes: Vec<u8>,
    /// Offsets in the name where a label starts, the root label last.
    starts: Vec<u8>,
}

impl Key {
    /// The lowercased question name, in wire form.
    pub fn name(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 3]
    }
}

impl Plain {
    /// The question's type.
    pub fn qtype(&self) -> u16 {
        self.qtype
    }

    /// The requester's EDNS UDP payload size and DO bit, if it sent OPT.
    pub fn edns(&self) -> Option<(u16, bool)> {
        self.edns
    }

    /// The COOKIE option's data (offset, length), if it sent one.
    pub fn cookie(&self) -> Option<(usize, usize)> {
        self.cookie
    }
}

/// Whether `p` is a plain query (see the module docs), and its key.
pub fn parse(p: &[u8], key: &mut Key) -> Option<Plain> {
    if p.len() < 17 || p[2] & (QR | OPCODE | TC) != 0 || p[3] & RCODE != 0 {
        return None;
    }
    if p[4..10] != [0, 1, 0, 0, 0, 0] {
        return None;
    }
    let arcount = u16::from_be_bytes([p[10], p[11]]);
    if arcount > 1 {
        return None;
    }
    key.bytes.clear();
    key.starts.clear();
    let mut i = 12;
    loop {
        let len = usize::from(*p.get(i)?);
        // A name is at most 255 octets (RFC 1035 §2.3.4).
        if i - 12 + 1 + len > 255 {
            return None;
        }
        key.starts.push((i - 12) as u8);
        if len == 0 {
            key.bytes.push(0);
            i += 1;
            break;
        }
        // Compression pointers and extended label types: not in a plain
        // question.
        if len > 63 {
            return None;
        }
        let label = p.get(i + 1..i + 1 + len)?;
        key.bytes.push(len as u8);
        key.bytes.extend(label.iter().map(u8::to_ascii_lowercase));
        i += 1 + len;
    }
    let name_end = i;
    let q = p.get(i..i + 4)?;
    let qtype = u16::from_be_bytes([q[0], q[1]]);
    if u16::from_be_bytes([q[2], q[3]]) != 1 {
        return None;
    }
    // OPT, TKEY, TSIG, IXFR, AXFR, MAILB, MAILA.
    if matches!(qtype, 41 | 249..=254) {
        return None;
    }
    i += 4;
    let mut cookie = None;
    let edns = if arcount == 1 {
        let o = p.get(i..i + 11)?;
        // Root owner, type OPT, extended RCODE 0, version 0.
        if o[0] != 0 || o[1..3] != [0, 41] || o[5] != 0 || o[6] != 0 {
            return None;
        }
        let rdlen = usize::from(u16::from_be_bytes([o[9], o[10]]));
        i += 11;
        // No options, or one COOKIE of a valid length (RFC 7873 §4; a
        // malformed one is the front's FORMERR).
        if rdlen > 0 {
            let opt = p.get(i..i + rdlen)?;
            if rdlen < 4 || opt[..2] != [0, 10] {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([opt[2], opt[3]]));
            if len != rdlen - 4 || !matches!(len, 8 | 16..=40) {
                return None;
            }
            cookie = Some((i + 4, len));
            i += rdlen;
        }
        let flags = u16::from_be_bytes([o[7], o[8]]);
        Some((u16::from_be_bytes([o[3], o[4]]), flags & DO != 0))
    } else {
        None
    };
    if i != p.len() {
        return None;
    }
    key.bytes.extend_from_slice(&qtype.to_be_bytes());
    key.bytes.push(match edns {
        None => 0,
        Some((_, false)) => 1,
        Some((_, true)) => 2,
    });
    Some(Plain {
        name_end,
        qtype,
        edns,
        cookie,
    })
}

/// One prepared answer.
struct Entry {
    /// The answer to the canonical request (ID 0, RD and CD clear, the
    /// lowercased question).
    bytes: Box<[u8]>,
    rcode: ResponseCode,
    authoritative: bool,
    /// Whether it ends with our OPT record, without options (where a
    /// COOKIE option is added).
    opt_last: bool,
    /// How response rate limiting classes it, and the name it is keyed by.
    class: Class,
    rrl_name: Option<Name>,
}

/// The prepared answers of one zone, for one snapshot.
struct ZoneAnswers {
    /// The origin in lowercased wire form.
    origin: Vec<u8>,
    zone: Arc<ZoneHandle>,
    snapshot: Arc<ZoneData>,
    entries: HashMap<Box<[u8]>, Entry>,
}

/// What became of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// The answer is in the output buffer.
    Send,
    /// Response rate limiting dropped it.
    Drop,
    /// Not for the fast path: give it to the request front.
    Slow,
}

/// One socket worker's prepared answers, for every zone.
pub struct Answers {
    zones: Vec<ZoneAnswers>,
    key: Key,
    /// UDP requests handled since the last [`Answers::flush`], by
    /// `metrics::UDP_*` path.
    counts: [u64; 4],
}

impl Answers {
    pub fn new(zones: &Zones) -> Self {
        Self {
            zones: zones
                .all()
                .iter()
                .map(|z| ZoneAnswers {
                    origin: canonical_wire(&z.origin),
                    zone: z.clone(),
                    snapshot: z.snapshot(),
                    entries: HashMap::new(),
                })
                .collect(),
            key: Key::default(),
            counts: [0; 4],
        }
    }

    /// Count a request handled elsewhere (`metrics::UDP_FRONT`,
    /// `metrics::UDP_OVERLOADED`).
    pub fn count(&mut self, path: usize) {
        self.counts[path] += 1;
    }

    /// Add the counts since the last call to `metrics` (once per batch:
    /// one shared counter update per batch, not per packet).
    pub fn flush(&mut self, metrics: &metrics::Metrics) {
        for (path, n) in self.counts.iter_mut().enumerate() {
            metrics.udp_requests.add(&[path], std::mem::take(n));
        }
    }

    /// Drop the answers of every zone that published a new snapshot since
    /// the last call (once per batch of packets).
    pub fn refresh(&mut self) {
        for z in &mut self.zones {
            let now = z.zone.snapshot();
            if !Arc::ptr_eq(&now, &z.snapshot) {
                z.snapshot = now;
                z.entries.clear();
            }
        }
    }

    /// Answer `packet` from `src` into `out` if it is a plain query for
    /// one of our zones.
    pub fn answer(&mut self, cx: &Context, packet: &[u8], src: IpAddr, out: &mut Vec<u8>) -> Fast {
        let Some(plain) = parse(packet, &mut self.key) else {
            return Fast::Slow;
        };
        let key = &self.key;
        let name = key.name();
        // Zones are ordered longest origin first: the first match is the
        // zone holding the name.
        let Some(z) = self.zones.iter_mut().find(|z| {
            name.len() >= z.origin.len() && {
                let at = name.len() - z.origin.len();
                name[at..] == z.origin[..] && key.starts.contains(&(at as u8))
            }
        }) else {
            return Fast::Slow;
        };
        let built = !z.entries.contains_key(&key.bytes[..]);
        if built {
            let Some(entry) = prepare(&z.snapshot, key, &plain, cx.edns_udp_size) else {
                return Fast::Slow;
            };
            if z.entries.len() >= MAX_ENTRIES {
                z.entries.clear();
            }
            z.entries
                .insert(key.bytes.clone().into_boxed_slice(), entry);
        }
        let entry = &z.entries[&key.bytes[..]];
        let limit = plain.edns.map_or(512, |(size, _)| {
            usize::from(size.clamp(512, cx.edns_udp_size.max(512)))
        });
        // A COOKIE option: judged as the front judges it; the answer gets
        // ours (4 + 24 octets). An answer to a client cookie alone that
        // rate limiting may slip is the front's (BADCOOKIE).
        let (seen, now) = match plain.cookie {
            None => (Seen::Absent, 0),
            Some((at, len)) => {
                let now = cx.clock.now();
                (
                    cx.protection.cookie_data(&packet[at..at + len], src, now),
                    now,
                )
            }
        };
        let cookie = match seen {
            Seen::Absent => None,
            Seen::Malformed => return Fast::Slow,
            Seen::ClientOnly { .. } if cx.protection.limits(src) => return Fast::Slow,
            Seen::ClientOnly { .. } | Seen::Valid { .. } => {
                cx.protection.cookie_answer_to(&seen, src, now)
            }
        };
        let room = if cookie.is_some() { 28 } else { 0 };
        if entry.bytes.len() + room > limit || (cookie.is_some() && !entry.opt_last) {
            return Fast::Slow;
        }
        match seen {
            Seen::Valid { .. } => cx.metrics.cookies.inc(&[metrics::COOKIE_VALID]),
            Seen::ClientOnly { .. } => cx.metrics.cookies.inc(&[metrics::COOKIE_CLIENT_ONLY]),
            Seen::Absent | Seen::Malformed => {}
        }
        self.counts[if built {
            metrics::UDP_BUILT
        } else {
            metrics::UDP_PREPARED
        }] += 1;
        let qtype = RecordType::from(plain.qtype);
        let verdict = if seen.is_valid() {
            Verdict::Send
        } else {
            cx.protection
                .check(src, entry.class, entry.rrl_name.as_ref(), qtype)
        };
        match verdict {
            Verdict::Send => {
                patch(entry, packet, &plain, out);
                if let Some(c) = cookie {
                    let n = out.len();
                    out[n - 2..].copy_from_slice(&28u16.to_be_bytes());
                    out.extend_from_slice(&[0, 10, 0, 24]);
                    out.extend_from_slice(&c);
                }
            }
            Verdict::Drop => {
                cx.metrics
                    .rrl_limited
                    .inc(&[metrics::RRL_DROPPED, entry.class.index()]);
                return Fast::Drop;
            }
            Verdict::Slip => {
                cx.metrics
                    .rrl_limited
                    .inc(&[metrics::RRL_SLIPPED, entry.class.index()]);
                truncated(entry, packet, &plain, cx.edns_udp_size, out);
            }
        }
        cx.metrics.queries.inc(Some(qtype), entry.rcode);
        Fast::Send
    }
}

/// The canonical request for `key`: ID 0, no flags, the lowercased
/// question, and an OPT with the DO bit if the query had EDNS.
fn canonical_request(key: &Key, plain: &Plain) -> Vec<u8> {
    let name = key.name();
    let mut req = Vec::with_capacity(12 + name.len() + 4 + 11);
    req.extend_from_slice(&[
        0,
        0,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(plain.edns.is_some()),
    ]);
    req.extend_from_slice(name);
    req.extend_from_slice(&plain.qtype.to_be_bytes());
    req.extend_from_slice(&[0, 1]);
    if let Some((_, dnssec_ok)) = plain.edns {
        let flags = if dnssec_ok { 0x80 } else { 0 };
        req.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, flags, 0, 0, 0]);
    }
    req
}

/// Look up and encode the answer to the canonical request for `key`, as
/// the request front would send it.
fn prepare(snapshot: &ZoneData, key: &Key, plain: &Plain, our_udp_size: u16) -> Option<Entry> {
    let src = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let request = Request::from_bytes(canonical_request(key, plain), src, Protocol::Udp).ok()?;
    let q = request.queries.queries().first()?;
    let qname: Name = q.name().into();
    let qtype = q.query_type();
    let reply = query::answer_from(&request, snapshot, &qname, qtype);
    let edns = response::response_edns(&request, our_udp_size);
    let bytes = response::encode(&request.queries, &reply, edns.as_ref());
    if bytes.len() < 12 {
        return None;
    }
    let (class, rrl_name) = rrl::classify(Some(&qname), qtype, &reply);
    let n = bytes.len();
    let opt_last = edns.is_some()
        && n >= 23
        && bytes[n - 11] == 0
        && bytes[n - 10..n - 8] == [0, 41]
        && bytes[n - 2..] == [0, 0];
    Some(Entry {
        opt_last,
        bytes: bytes.into_boxed_slice(),
        rcode: reply.metadata.response_code,
        authoritative: reply.metadata.authoritative,
        class,
        rrl_name: rrl_name.cloned(),
    })
}

/// `entry` as the answer to `packet`: its ID, RD and CD bits, and its
/// question's case.
fn patch(entry: &Entry, packet: &[u8], plain: &Plain, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&entry.bytes);
    out[..2].copy_from_slice(&packet[..2]);
    out[2] |= packet[2] & RD;
    out[3] |= packet[3] & CD;
    out[12..plain.name_end].copy_from_slice(&packet[12..plain.name_end]);
}

/// The slipped answer (RFC 1035 §4.2.1 and the RRL convention): TC=1, the
/// question, our OPT if the query had one, no records.
fn truncated(entry: &Entry, packet: &[u8], plain: &Plain, our_udp_size: u16, out: &mut Vec<u8>) {
    let rcode = u16::from(entry.rcode);
    out.clear();
    out.extend_from_slice(&packet[..2]);
    out.push(QR | if entry.authoritative { AA } else { 0 } | TC | (packet[2] & RD));
    out.push((packet[3] & CD) | (rcode & 0x0f) as u8);
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(plain.edns.is_some())]);
    out.extend_from_slice(&packet[12..plain.name_end + 4]);
    if let Some((_, dnssec_ok)) = plain.edns {
        let size = our_udp_size.max(512).to_be_bytes();
        let flags = if dnssec_ok { 0x80 } else { 0 };
        out.extend_from_slice(&[
            0,
            0,
            41,
            size[0],
            size[1],
            (rcode >> 4) as u8,
            0,
            flags,
            0,
            0,
            0,
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut p = vec![
            0x12,
            0x34,
            0x01,
            0x20,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(edns.is_some()),
        ];
        for label in name.trim_end_matches('.').split('.') {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        if let Some((size, d)) = edns {
            let s = size.to_be_bytes();
            p.extend_from_slice(&[
                0,
                0,
                41,
                s[0],
                s[1],
                0,
                0,
                if d { 0x80 } else { 0 },
                0,
                0,
                0,
            ]);
        }
        p
    }

    #[test]
    fn a_plain_query_is_parsed_and_keyed_in_lower_case() {
        let mut key = Key::default();
        let p = query("WwW.Example.ORG", 16, Some((1232, true)));
        let plain = parse(&p, &mut key).unwrap();
        assert_eq!(plain.qtype, 16);
        assert_eq!(plain.edns, Some((1232, true)));
        assert_eq!(plain.name_end, 12 + 17);
        assert_eq!(key.name(), b"\x03www\x07example\x03org\x00");
        assert_eq!(&key.bytes[key.bytes.len() - 3..], &[0, 16, 2]);
        assert_eq!(key.starts, vec![0, 4, 12, 16]);
        let mut other = Key::default();
        parse(&query("www.example.org", 16, Some((512, true))), &mut other).unwrap();
        assert_eq!(
            key.bytes, other.bytes,
            "the payload size is not part of the key"
        );
        parse(
            &query("www.example.org", 16, Some((512, false))),
            &mut other,
        )
        .unwrap();
        assert_ne!(key.bytes, other.bytes, "the DO bit is");
        parse(&query("www.example.org", 16, None), &mut other).unwrap();
        assert_eq!(*other.bytes.last().unwrap(), 0);
    }

    #[test]
    fn anything_but_a_plain_query_goes_to_the_slow_path() {
        let mut key = Key::default();
        let base = query("a.example.org", 1, Some((1232, false)));
        assert!(parse(&base, &mut key).is_some());
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut p = base.clone();
            f(&mut p);
            parse(&p, &mut Key::default())
        };
        assert!(with(&|p| p[2] |= QR).is_none(), "a response");
        assert!(with(&|p| p[2] |= 5 << 3).is_none(), "UPDATE");
        assert!(with(&|p| p[2] |= 4 << 3).is_none(), "NOTIFY");
        assert!(with(&|p| p[2] |= TC).is_none(), "TC set");
        assert!(with(&|p| p[3] |= 1).is_none(), "an RCODE");
        assert!(with(&|p| p[5] = 2).is_none(), "two questions");
        assert!(with(&|p| p[7] = 1).is_none(), "an answer record");
        assert!(with(&|p| p[9] = 1).is_none(), "an authority record");
        assert!(with(&|p| p[11] = 2).is_none(), "two additional records");
        assert!(with(&|p| p.push(0)).is_none(), "trailing octets");
        assert!(with(&|p| p.truncate(p.len() - 1)).is_none(), "cut short");
        let class_at = 12 + 15 + 2;
        assert!(with(&|p| p[class_at + 1] = 3).is_none(), "class CH");
        for qtype in [41u16, 249, 250, 251, 252, 253, 254] {
            let at = 12 + 15;
            assert!(
                with(&|p| p[at..at + 2].copy_from_slice(&qtype.to_be_bytes())).is_none(),
                "type {qtype}"
            );
        }
        let opt = base.len() - 11;
        assert!(with(&|p| p[opt + 6] = 1).is_none(), "EDNS version 1");
        assert!(with(&|p| p[opt + 5] = 1).is_none(), "an extended RCODE");
        assert!(
            with(&|p| {
                p[opt + 10] = 4;
                p.extend_from_slice(&[0, 3, 0, 0]);
            })
            .is_none(),
            "an EDNS option (NSID)"
        );
        assert!(
            with(&|p| p[opt + 2] = 1).is_none(),
            "an additional record that is not OPT"
        );
        let cookie = |len: usize, declared: u16| {
            with(&|p| {
                p[opt + 10] = 4 + len as u8;
                p.extend_from_slice(&[0, 10]);
                p.extend_from_slice(&declared.to_be_bytes());
                p.extend(std::iter::repeat_n(7, len));
            })
        };
        let c = cookie(8, 8).expect("a client cookie is plain");
        assert_eq!(c.cookie, Some((base.len() + 4, 8)));
        assert!(cookie(24, 24).is_some(), "client and server cookie");
        assert!(
            cookie(5, 5).is_none(),
            "a malformed cookie is the front's FORMERR"
        );
        assert!(cookie(41, 41).is_none(), "too long");
        assert!(cookie(8, 9).is_none(), "option length past the OPT");
        // Found by fuzzing (fuzz/fuzz_targets/udp_fast.rs): OPT data of 1 to
        // 3 octets, shorter than an option header, read out of bounds.
        for short in 1..4u8 {
            let p = with(&|p| {
                p[opt + 10] = short;
                p.extend(std::iter::repeat_n(0, usize::from(short)));
            });
            assert!(p.is_none(), "{short} octets of OPT data");
        }
        // A compression pointer in the question.
        let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert!(parse(&p, &mut key).is_none());
        // A name longer than 255 octets.
        let l63 = "a".repeat(63);
        p = query(&[&l63[..]; 4].join("."), 1, None);
        assert!(parse(&p, &mut key).is_none());
        p = query(&[&l63[..], &l63, &l63, &"a".repeat(61)].join("."), 1, None);
        assert!(parse(&p, &mut key).is_some(), "255 octets is allowed");
        // Shorter than a header and a question.
        assert!(parse(&base[..16], &mut key).is_none());
    }

    #[test]
    fn a_slipped_answer_is_what_the_front_sends_truncated() {
        for edns in [None, Some((1232, false)), Some((4096, true))] {
            for (rcode, authoritative) in [
                (ResponseCode::NoError, true),
                (ResponseCode::NXDomain, true),
                (ResponseCode::Refused, false),
            ] {
                let mut p = query("Nx.Example.ORG", 16, edns);
                p[3] |= CD;
                let plain = parse(&p, &mut Key::default()).unwrap();
                let src = SocketAddr::from((Ipv4Addr::LOCALHOST, 53));
                let request = Request::from_bytes(p.clone(), src, Protocol::Udp).unwrap();
                let mut reply = response::Reply::new(&request, rcode);
                reply.metadata.authoritative = authoritative;
                reply.metadata.truncation = true;
                let front = response::encode(
                    &request.queries,
                    &reply,
                    response::response_edns(&request, 1232).as_ref(),
                );
                let entry = Entry {
                    bytes: Box::new([]),
                    rcode,
                    authoritative,
                    opt_last: false,
                    class: Class::Nxdomain,
                    rrl_name: None,
                };
                let mut out = Vec::new();
                truncated(&entry, &p, &plain, 1232, &mut out);
                assert_eq!(out, front, "edns {edns:?}, {rcode}");
            }
        }
    }
}

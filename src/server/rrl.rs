//! What the request front does against abuse before it spends work or
//! bandwidth: response rate limiting (RRL) of UDP answers, DNS COOKIEs
//! (`cookie`) that exempt clients who proved their address, and a token
//! bucket per TSIG key for UPDATEs. Held together in [`Protection`], built
//! once from the configuration.
//!
//! # Response rate limiting
//! As BIND, Knot and NSD do it (NSD's `rrl.c` is the model): every UDP
//! answer to a request that is neither TSIG-signed with a valid key nor
//! carrying a valid server cookie is charged to a token bucket keyed by
//! the source's prefix (/24 IPv4, /56 IPv6 by default) and the answer's
//! [`Class`] with its name: the qname (and type) for positive answers,
//! the zone for NXDOMAIN and NODATA (so random names share one bucket),
//! the delegation for referrals, the prefix alone for errors. DNSKEY, ANY
//! and RRSIG answers, the large ones, have classes of their own. A bucket
//! holds one second of `responses-per-second` and refills continuously.
//! Past it, every `slip`-th answer goes out truncated (TC=1, question
//! only: a real client retries over TCP, which is never limited) or, when
//! the request had a client cookie, as BADCOOKIE with a fresh server
//! cookie (the client retries with it and is then exempt); the others are
//! dropped. The amplification an attacker gets from a spoofed flood is
//! then at most `responses-per-second` answers per second per bucket.
//!
//! The table is fixed at start (`rrl-table-size` entries in shards, each a
//! mutex over a slice): no allocation per packet. An entry is found by a
//! keyed hash (a random key, so the mapping cannot be predicted); a
//! different key hashing to the same slot takes it over with a full
//! bucket, as in NSD.
//!
//! # Limitations
//! - Answers synthesised from a wildcard are classed by their qname, so
//!   a flood of random names under a wildcard gets one bucket per name
//!   (NSD keys them by the wildcard); our zones have no wildcards unless a
//!   zone file adds one.
//! - Transfers (`transfer`) do not pass here: they need the zone's
//!   transfer ACL, and AXFR is TCP only.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use hickory_server::server::Request;
use ipnet::IpNet;

use super::cookie::{Cookies, Seen};
use super::response::Reply;
use crate::config::{Config, RrlConfig, UpdateRate};

/// What an answer is, for the limiter (NSD's classes, without wildcard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// NOERROR with answers (keyed by qname and qtype).
    Positive,
    /// NOERROR without answers (keyed by zone).
    Nodata,
    /// NXDOMAIN (keyed by zone).
    Nxdomain,
    /// A delegation (keyed by the delegated name).
    Referral,
    /// Any other RCODE (keyed by zone if known, else the prefix alone).
    Error,
    /// An answer to a query for ANY, RRSIG or DNSKEY: the large ones.
    Any,
    Rrsig,
    Dnskey,
}

impl Class {
    /// Every class, in the order of [`Class::index`].
    pub const ALL: [Class; 8] = [
        Class::Positive,
        Class::Nodata,
        Class::Nxdomain,
        Class::Referral,
        Class::Error,
        Class::Any,
        Class::Rrsig,
        Class::Dnskey,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Positive => "positive",
            Class::Nodata => "nodata",
            Class::Nxdomain => "nxdomain",
            Class::Referral => "referral",
            Class::Error => "error",
            Class::Any => "any",
            Class::Rrsig => "rrsig",
            Class::Dnskey => "dnskey",
        }
    }
}

/// The class of `reply` to a query for `qname`/`qtype`, and the name its
/// bucket is keyed with (None: the prefix alone).
pub fn classify<'a>(
    qname: Option<&'a Name>,
    qtype: RecordType,
    reply: &'a Reply,
) -> (Class, Option<&'a Name>) {
    let zone = || {
        reply
            .authorities
            .iter()
            .find(|r| r.record_type() == RecordType::SOA)
            .map(|r| &r.name)
    };
    match reply.metadata.response_code {
        ResponseCode::NXDomain => return (Class::Nxdomain, zone()),
        ResponseCode::NoError => {}
        _ => return (Class::Error, zone()),
    }
    if reply.answers.is_empty()
        && !reply.metadata.authoritative
        && let Some(ns) = reply
            .authorities
            .iter()
            .find(|r| r.record_type() == RecordType::NS)
    {
        return (Class::Referral, Some(&ns.name));
    }
    match qtype {
        RecordType::ANY => (Class::Any, qname),
        RecordType::RRSIG => (Class::Rrsig, qname),
        _ if reply.answers.is_empty() => (Class::Nodata, zone()),
        RecordType::DNSKEY => (Class::Dnskey, qname),
        _ => (Class::Positive, qname),
    }
}

/// What to do with one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send a truncated (or BADCOOKIE) answer instead.
    Slip,
    Drop,
}

/// One bucket. `tag` 0 is an empty slot.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    tag: u64,
    /// Thousandths of a response.
    tokens: i64,
    /// Milliseconds since the table was made.
    stamp: u64,
    /// Answers limited since the bucket last had a token (for `slip`).
    limited: u32,
}

const SHARDS: usize = 16;
/// One response, in the thousandths `tokens` counts.
const ONE: i64 = 1000;

/// The fixed table of buckets.
#[derive(Debug)]
pub struct Table {
    shards: Box<[Mutex<Box<[Entry]>>]>,
    per_shard: usize,
    hasher: RandomState,
    /// Thousandths of a response added per millisecond = responses per second.
    rate: i64,
    slip: u32,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl Table {
    pub fn new(c: &RrlConfig) -> Self {
        let per_shard = c.table_size.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(vec![Entry::default(); per_shard].into_boxed_slice()))
                .collect(),
            per_shard,
            hasher: RandomState::new(),
            rate: i64::from(c.responses_per_second),
            slip: c.slip,
            ipv4_prefix: c.ipv4_prefix,
            ipv6_prefix: c.ipv6_prefix,
        }
    }

    /// The bucket key's hash: prefix of `ip`, class, name (case-folded),
    /// and qtype for positive answers. Never 0.
    fn tag(&self, ip: IpAddr, class: Class, name: Option<&Name>, qtype: RecordType) -> u64 {
        let mut h = self.hasher.build_hasher();
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                h.write_u8(4);
                h.write_u32(u32::from(a) & mask32(self.ipv4_prefix));
            }
            IpAddr::V6(a) => {
                h.write_u8(6);
                h.write_u128(u128::from(a) & mask128(self.ipv6_prefix));
            }
        }
        h.write_u8(class as u8);
        if class == Class::Positive {
            h.write_u16(u16::from(qtype));
        }
        if let Some(name) = name {
            let mut buf = [0u8; 64];
            for label in name.iter() {
                let n = label.len().min(buf.len());
                for (b, l) in buf.iter_mut().zip(&label[..n]) {
                    *b = l.to_ascii_lowercase();
                }
                h.write_u8(n as u8);
                h.write(&buf[..n]);
            }
        }
        h.finish().max(1)
    }

    /// Charge one answer to its bucket at `now_ms` (milliseconds on a
    /// monotonic clock) and say what to do with it.
    pub fn check(
        &self,
        ip: IpAddr,
        class: Class,
        name: Option<&Name>,
        qtype: RecordType,
        now_ms: u64,
    ) -> Verdict {
        let tag = self.tag(ip, class, name, qtype);
        let shard = (tag >> 48) as usize % SHARDS;
        let slot = (tag as usize) % self.per_shard;
        let full = self.rate * ONE;
        let mut entries = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        let e = &mut entries[slot];
        if e.tag != tag {
            *e = Entry {
                tag,
                tokens: full,
                stamp: now_ms,
                limited: 0,
            };
        } else {
            let elapsed = now_ms.saturating_sub(e.stamp).min(1_000_000) as i64;
            e.tokens = (e.tokens + elapsed * self.rate).min(full);
            e.stamp = e.stamp.max(now_ms);
        }
        if e.tokens >= ONE {
            e.tokens -= ONE;
            e.limited = 0;
            return Verdict::Send;
        }
        e.limited = e.limited.wrapping_add(1);
        if self.slip > 0 && e.limited.is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

fn mask128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

/// A token bucket per TSIG key for UPDATEs: `per_second` refill, `burst`
/// capacity. Only verified keys reach it, so its map is bounded by the
/// keys ever configured.
#[derive(Debug)]
pub struct KeyRate {
    rate: i64,
    burst: i64,
    buckets: Mutex<HashMap<Name, (i64, u64)>>,
}

impl KeyRate {
    pub fn new(r: &UpdateRate) -> Self {
        Self {
            rate: i64::from(r.per_second),
            burst: i64::from(r.burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` may send one more UPDATE at `now_ms`.
    pub fn allow(&self, key: &Name, now_ms: u64) -> bool {
        let full = self.burst * ONE;
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, stamp) = map.entry(key.clone()).or_insert((full, now_ms));
        let elapsed = now_ms.saturating_sub(*stamp).min(100_000_000) as i64;
        *tokens = (*tokens + elapsed * self.rate).min(full);
        *stamp = (*stamp).max(now_ms);
        if *tokens >= ONE {
            *tokens -= ONE;
            true
        } else {
            false
        }
    }
}

/// The front's protections, built once from the configuration.
#[derive(Debug)]
pub struct Protection {
    rrl: Option<Table>,
    exempt: Vec<IpNet>,
    cookies: Option<Cookies>,
    update_rate: Option<KeyRate>,
    epoch: Instant,
}

impl Protection {
    pub fn new(config: &Config) -> Self {
        Self {
            rrl: config.rrl.enabled.then(|| Table::new(&config.rrl)),
            exempt: config.rrl.exempt.clone(),
            cookies: config.dns_cookies.then(Cookies::generate),
            update_rate: (config.update_rate.per_second > 0)
                .then(|| KeyRate::new(&config.update_rate)),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds on the monotonic clock (rates follow elapsed time, not
    /// the wall clock, which may step).
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The request's COOKIE option, judged (Absent when cookies are off).
    pub fn cookie(&self, request: &Request, now: u64) -> Seen {
        match &self.cookies {
            Some(c) => c.inspect(request.edns.as_ref(), request.src().ip(), now),
            None => Seen::Absent,
        }
    }

    /// The COOKIE option `data` of a request from `ip`, judged (Absent
    /// when cookies are off).
    pub fn cookie_data(&self, data: &[u8], ip: IpAddr, now: u64) -> Seen {
        match &self.cookies {
            Some(c) => c.inspect_data(data, ip, now),
            None => Seen::Absent,
        }
    }

    /// The COOKIE option data of the answer to a request from `ip`.
    pub fn cookie_answer_to(&self, seen: &Seen, ip: IpAddr, now: u64) -> Option<[u8; 24]> {
        self.cookies.as_ref().and_then(|c| c.answer(seen, ip, now))
    }

    /// Whether answers to `ip` without a valid cookie are rate-limited.
    pub fn limits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.rrl.is_some() && !self.exempt.iter().any(|n| n.contains(&ip))
    }

    /// The COOKIE option data of the answer.
    pub fn cookie_answer(&self, seen: &Seen, request: &Request, now: u64) -> Option<[u8; 24]> {
        self.cookie_answer_to(seen, request.src().ip(), now)
    }

    /// The verdict on a UDP answer `reply` to an unauthenticated `request`.
    pub fn limit(&self, request: &Request, reply: &Reply) -> (Verdict, Class) {
        let q = request.queries.queries().first();
        let qtype = q.map_or(RecordType::NULL, |q| q.query_type());
        let qname: Option<Name> = q.map(|q| q.name().into());
        let (class, name) = classify(qname.as_ref(), qtype, reply);
        (self.check(request.src().ip(), class, name, qtype), class)
    }

    /// The verdict on an answer of `class`, keyed by `name`, to a query of
    /// `qtype` from `ip` (the UDP fast path classified its prepared answer
    /// once, with [`classify`]).
    pub fn check(
        &self,
        ip: IpAddr,
        class: Class,
        name: Option<&Name>,
        qtype: RecordType,
    ) -> Verdict {
        match &self.rrl {
            Some(table) if self.limits(ip) => {
                table.check(ip.to_canonical(), class, name, qtype, self.now_ms())
            }
            _ => Verdict::Send,
        }
    }

    /// Whether `key` may send one more UPDATE now.
    pub fn update_allowed(&self, key: &Name) -> bool {
        self.update_rate
            .as_ref()
            .is_none_or(|r| r.allow(key, self.now_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rate: u32, slip: u32, size: usize) -> Table {
        Table::new(&RrlConfig {
            enabled: true,
            responses_per_second: rate,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            table_size: size,
            exempt: vec![],
        })
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_bucket_holds_one_second_and_refills_with_time() {
        let t = table(5, 0, 1024);
        let n = name("a.example.");
        let check = |at| {
            t.check(
                ip("192.0.2.1"),
                Class::Positive,
                Some(&n),
                RecordType::A,
                at,
            )
        };
        for _ in 0..5 {
            assert_eq!(check(0), Verdict::Send);
        }
        assert_eq!(check(0), Verdict::Drop);
        assert_eq!(check(100), Verdict::Drop, "half a token after 100 ms");
        assert_eq!(check(200), Verdict::Send, "one token after 200 ms at 5/s");
        assert_eq!(check(200), Verdict::Drop);
        // A long pause fills the bucket, never beyond one second's worth.
        let sent = (0..20).filter(|_| check(60_000) == Verdict::Send).count();
        assert_eq!(sent, 5);
    }

    #[test]
    fn every_slip_th_limited_answer_slips() {
        let t = table(1, 3, 1024);
        let n = name("a.example.");
        let verdicts: Vec<Verdict> = (0..10)
            .map(|_| t.check(ip("192.0.2.1"), Class::Positive, Some(&n), RecordType::A, 0))
            .collect();
        use Verdict::*;
        assert_eq!(
            verdicts,
            [Send, Drop, Drop, Slip, Drop, Drop, Slip, Drop, Drop, Slip]
        );
        // slip 1: every limited answer slips; slip 0: none does.
        let t1 = table(1, 1, 1024);
        let t0 = table(1, 0, 1024);
        for t in [&t1, &t0] {
            t.check(ip("192.0.2.1"), Class::Positive, Some(&n), RecordType::A, 0);
        }
        for _ in 0..5 {
            assert_eq!(
                t1.check(ip("192.0.2.1"), Class::Positive, Some(&n), RecordType::A, 0),
                Slip
            );
            assert_eq!(
                t0.check(ip("192.0.2.1"), Class::Positive, Some(&n), RecordType::A, 0),
                Drop
            );
        }
    }

    #[test]
    fn buckets_are_per_prefix_class_and_name() {
        let t = table(1, 0, 1 << 16);
        let a = name("a.example.");
        let z = name("example.");
        let send = |src: &str, class, n: &Name, qt| {
            t.check(ip(src), class, Some(n), qt, 0) == Verdict::Send
        };
        assert!(send("192.0.2.1", Class::Positive, &a, RecordType::A));
        // Same /24, same key: limited.
        assert!(!send("192.0.2.200", Class::Positive, &a, RecordType::A));
        // The name is case-folded.
        assert!(!send(
            "192.0.2.9",
            Class::Positive,
            &name("A.EXAMPLE."),
            RecordType::A
        ));
        // Another /24, another type, another class, another name: own buckets.
        assert!(send("192.0.3.1", Class::Positive, &a, RecordType::A));
        assert!(send("192.0.2.1", Class::Positive, &a, RecordType::TXT));
        assert!(send("192.0.2.1", Class::Nxdomain, &z, RecordType::A));
        assert!(send(
            "192.0.2.1",
            Class::Positive,
            &name("b.example."),
            RecordType::A
        ));
        // NXDOMAIN is keyed by zone: any qtype shares it.
        assert!(!send("192.0.2.1", Class::Nxdomain, &z, RecordType::TXT));
        // IPv6: /56 by default.
        assert!(send(
            "2001:db8:0:100::1",
            Class::Positive,
            &a,
            RecordType::A
        ));
        assert!(!send(
            "2001:db8:0:1ff::2",
            Class::Positive,
            &a,
            RecordType::A
        ));
        assert!(send(
            "2001:db8:0:200::1",
            Class::Positive,
            &a,
            RecordType::A
        ));
        // IPv4-mapped IPv6 counts as IPv4.
        assert!(!send(
            "::ffff:192.0.2.77",
            Class::Positive,
            &a,
            RecordType::A
        ));
    }

    #[test]
    fn a_tiny_table_still_limits_and_never_grows() {
        // One slot per shard: keys take slots over, but a flood of one key
        // is limited.
        let t = table(2, 0, 1);
        let a = name("a.example.");
        let sent = (0..100)
            .filter(|_| {
                t.check(ip("192.0.2.1"), Class::Positive, Some(&a), RecordType::A, 0)
                    == Verdict::Send
            })
            .count();
        assert_eq!(sent, 2);
        assert_eq!(t.shards.len() * t.per_shard, SHARDS);
    }

    #[test]
    fn metric_labels_follow_the_class_order() {
        let names: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, crate::metrics::RRL_CLASSES);
        assert!(Class::ALL.iter().enumerate().all(|(i, c)| c.index() == i));
    }

    #[test]
    fn masks() {
        assert_eq!(mask32(24), 0xffff_ff00);
        assert_eq!(mask32(32), u32::MAX);
        assert_eq!(mask32(0), 0);
        assert_eq!(mask128(56), u128::MAX << 72);
        assert_eq!(mask128(128), u128::MAX);
    }

    #[test]
    fn key_rate_allows_the_burst_then_the_rate() {
        let k = KeyRate::new(&UpdateRate {
            per_second: 2,
            burst: 4,
        });
        let mx1 = name("mx1.");
        let n = (0..10).filter(|_| k.allow(&mx1, 0)).count();
        assert_eq!(n, 4);
        assert!(!k.allow(&mx1, 400));
        assert!(k.allow(&mx1, 500), "one token after 500 ms at 2/s");
        assert!(
            k.allow(&name("www1."), 500),
            "another key has its own bucket"
        );
    }

    #[test]
    fn answers_are_classed_as_nsd_does() {
        use hickory_proto::op::{Message, MessageType, OpCode, Query};
        use hickory_proto::rr::{RData, Record, rdata};
        let zone = name("example.");
        let soa = Record::from_rdata(
            zone.clone(),
            60,
            RData::SOA(rdata::SOA::new(
                zone.clone(),
                zone.clone(),
                1,
                60,
                60,
                60,
                60,
            )),
        );
        let a = Record::from_rdata(
            name("a.example."),
            60,
            RData::A(rdata::A::new(192, 0, 2, 1)),
        );
        let ns = Record::from_rdata(
            name("sub.example."),
            60,
            RData::NS(rdata::NS(name("ns.sub.example."))),
        );
        let mut msg = Message::new(1, MessageType::Query, OpCode::Query);
        msg.add_query(Query::query(name("a.example."), RecordType::A));
        let reply = |rcode, aa: bool, answers: Vec<Record>, auth: Vec<Record>| {
            let mut metadata = msg.metadata;
            metadata.response_code = rcode;
            metadata.authoritative = aa;
            Reply {
                metadata,
                answers,
                authorities: auth,
                additionals: vec![],
                ede: None,
                options: vec![],
                cookie: None,
            }
        };
        let q = name("a.example.");
        let r = reply(ResponseCode::NXDomain, true, vec![], vec![soa.clone()]);
        assert_eq!(
            classify(Some(&q), RecordType::A, &r),
            (Class::Nxdomain, Some(&zone))
        );
        let r = reply(ResponseCode::NoError, true, vec![], vec![soa.clone()]);
        assert_eq!(
            classify(Some(&q), RecordType::TXT, &r),
            (Class::Nodata, Some(&zone))
        );
        let r = reply(ResponseCode::NoError, true, vec![a.clone()], vec![]);
        assert_eq!(
            classify(Some(&q), RecordType::A, &r),
            (Class::Positive, Some(&q))
        );
        assert_eq!(classify(Some(&q), RecordType::DNSKEY, &r).0, Class::Dnskey);
        assert_eq!(classify(Some(&q), RecordType::ANY, &r).0, Class::Any);
        assert_eq!(classify(Some(&q), RecordType::RRSIG, &r).0, Class::Rrsig);
        let r = reply(ResponseCode::NoError, false, vec![], vec![ns.clone()]);
        assert_eq!(
            classify(Some(&q), RecordType::A, &r),
            (Class::Referral, Some(&ns.name))
        );
        let r = reply(ResponseCode::Refused, false, vec![], vec![]);
        assert_eq!(classify(Some(&q), RecordType::A, &r), (Class::Error, None));
    }
}

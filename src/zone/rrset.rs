//! One RRset in the compact form the snapshot keeps: its RDATAs as wire
//! bytes in one allocation, decoded when read.
//!
//! Each RDATA is stored as a 2-octet length and the RDATA in uncompressed
//! wire form with the case of names in it kept (what the database stores,
//! `zone::change::rdata_bytes`), so what is decoded is what was put in, as
//! after a restart; it is not the DNSSEC canonical form (which lowercases
//! names in some types' RDATA: the signer makes that itself when it signs).
//! A hickory `RData` is 184 octets inline plus its heap parts; an RRSIG
//! here is its 2 + about 100 octets, a challenge TXT 2 + 44.

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{
    BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};

/// The RRs of one name and type; all share one TTL (RFC 2181 §5.2).
#[derive(Clone, PartialEq, Eq)]
pub struct RrSet {
    pub ttl: u32,
    pub(super) rtype: RecordType,
    /// The RDATAs, each as a big-endian u16 length and its wire form.
    wire: Box<[u8]>,
}

impl std::fmt::Debug for RrSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RrSet")
            .field("ttl", &self.ttl)
            .field("rtype", &self.rtype)
            .field("rdatas", &self.rdatas())
            .finish()
    }
}

/// An RDATA's wire form: uncompressed, names' case kept. None when it
/// cannot be encoded (over 65,535 octets).
pub fn encode(data: &RData) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut buf);
        let mut enc = enc.with_name_encoding(NameEncoding::Uncompressed);
        data.emit(&mut enc).ok()?;
    }
    u16::try_from(buf.len()).ok()?;
    Some(buf)
}

/// The RDATA of type `rtype` in `wire`, if it is one.
pub fn decode(rtype: RecordType, wire: &[u8]) -> Option<RData> {
    let len = u16::try_from(wire.len()).ok()?;
    let mut dec = BinDecoder::new(wire);
    let data = RData::read(&mut dec, rtype, Restrict::new(len)).ok()?;
    dec.is_empty().then_some(data)
}

impl RrSet {
    /// An empty RRset (the caller adds to it before anyone sees it).
    pub(super) fn new(rtype: RecordType, ttl: u32) -> Self {
        Self {
            ttl,
            rtype,
            wire: Box::default(),
        }
    }

    pub fn rtype(&self) -> RecordType {
        self.rtype
    }

    /// Each RDATA's wire form.
    pub fn raw(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest: &[u8] = &self.wire;
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<2>()?;
            let (one, tail) = tail.split_at(usize::from(u16::from_be_bytes(*len)));
            rest = tail;
            Some(one)
        })
    }

    /// The RDATAs, decoded, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = RData> + '_ {
        // Every RDATA was checked to decode when it was added.
        self.raw().filter_map(|w| decode(self.rtype, w))
    }

    /// The RDATAs, decoded.
    pub fn rdatas(&self) -> Vec<RData> {
        self.iter().collect()
    }

    pub fn len(&self) -> usize {
        self.raw().count()
    }

    pub fn is_empty(&self) -> bool {
        self.wire.is_empty()
    }

    /// Whether `wire` (of an RDATA of this type) is `data`, compared as
    /// hickory's `RData` compares: names in it case-insensitively. Equal
    /// RDATAs differ in their wire forms at most in the case of letters.
    fn same(&self, stored: &[u8], wire: &[u8], data: Option<&RData>) -> bool {
        if stored == wire {
            return true;
        }
        if !stored.eq_ignore_ascii_case(wire) {
            return false;
        }
        let decoded = decode(self.rtype, stored);
        match data {
            Some(d) => decoded.as_ref() == Some(d),
            None => decoded.is_some() && decoded == decode(self.rtype, wire),
        }
    }

    pub fn contains(&self, data: &RData) -> bool {
        encode(data).is_some_and(|w| self.raw().any(|s| self.same(s, &w, Some(data))))
    }

    /// Add `data`, whose wire form ([`encode`]) is `wire`, unless an equal
    /// RDATA is there (then false).
    pub(super) fn push(&mut self, data: &RData, wire: &[u8]) -> bool {
        if self.raw().any(|s| self.same(s, wire, Some(data))) {
            return false;
        }
        self.append(wire);
        true
    }

    /// Add an RDATA given in wire form (the database's rows), which the
    /// caller checked [`decode`]s as this type, unless an equal one is there
    /// (then false).
    pub(super) fn push_wire(&mut self, wire: &[u8]) -> bool {
        if self.raw().any(|s| self.same(s, wire, None)) {
            return false;
        }
        self.append(wire);
        true
    }

    /// Exactly as long as it is: one allocation per RRset.
    fn append(&mut self, wire: &[u8]) {
        let mut v = Vec::with_capacity(self.wire.len() + 2 + wire.len());
        v.extend_from_slice(&self.wire);
        v.extend_from_slice(&(wire.len() as u16).to_be_bytes());
        v.extend_from_slice(wire);
        self.wire = v.into_boxed_slice();
    }

    /// Remove every RDATA equal to `data`; how many.
    pub(super) fn remove(&mut self, data: &RData) -> usize {
        let Some(w) = encode(data) else {
            return 0;
        };
        let mut kept = Vec::with_capacity(self.wire.len());
        let mut removed = 0;
        for s in self.raw() {
            if self.same(s, &w, Some(data)) {
                removed += 1;
            } else {
                kept.extend_from_slice(&(s.len() as u16).to_be_bytes());
                kept.extend_from_slice(s);
            }
        }
        if removed > 0 {
            self.wire = kept.into_boxed_slice();
        }
        removed
    }
}

/// Fields of an RRSIG read from its wire form (RFC 4034 §3.1): type
/// covered at 0, original TTL at 4, expiration at 8, inception at 12.
pub mod rrsig_wire {
    fn u32_at(w: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_be_bytes(w.get(at..at + 4)?.try_into().ok()?))
    }

    pub fn type_covered(w: &[u8]) -> Option<u16> {
        Some(u16::from_be_bytes(w.get(0..2)?.try_into().ok()?))
    }

    pub fn original_ttl(w: &[u8]) -> Option<u32> {
        u32_at(w, 4)
    }

    pub fn expiration(w: &[u8]) -> Option<u32> {
        u32_at(w, 8)
    }

    pub fn inception(w: &[u8]) -> Option<u32> {
        u32_at(w, 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{CNAME, TXT};

    /// `push` with the wire form made here.
    struct Pusher<'a>(&'a mut RrSet);

    impl std::ops::Deref for Pusher<'_> {
        type Target = RrSet;
        fn deref(&self) -> &RrSet {
            self.0
        }
    }

    impl std::ops::DerefMut for Pusher<'_> {
        fn deref_mut(&mut self) -> &mut RrSet {
            self.0
        }
    }

    impl Pusher<'_> {
        fn push(&mut self, d: &RData) -> bool {
            self.0.push(d, &encode(d).unwrap())
        }
    }

    fn txt(s: &str) -> RData {
        RData::TXT(TXT::new(vec![s.to_string()]))
    }

    #[test]
    fn rdatas_come_back_as_added_and_duplicates_are_kept_once() {
        let mut s = RrSet::new(RecordType::TXT, 60);
        let mut s = Pusher(&mut s);
        assert!(s.is_empty());
        assert!(s.push(&txt("a")));
        assert!(s.push(&txt("A"))); // TXT is case-sensitive
        assert!(!s.push(&txt("a")));
        assert!(s.push(&txt("")));
        assert_eq!(s.rdatas(), vec![txt("a"), txt("A"), txt("")]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.remove(&txt("A")), 1);
        assert_eq!(s.rdatas(), vec![txt("a"), txt("")]);
        assert_eq!(s.remove(&txt("b")), 0);
        assert!(s.contains(&txt("")));
        assert_eq!(s.remove(&txt("a")) + s.remove(&txt("")), 2);
        assert!(s.is_empty());
    }

    #[test]
    fn names_in_rdata_keep_their_case_but_compare_without_it() {
        let upper = RData::CNAME(CNAME(Name::from_ascii("Target.Example.").unwrap()));
        let lower = RData::CNAME(CNAME(Name::from_ascii("target.example.").unwrap()));
        let mut set = RrSet::new(RecordType::CNAME, 60);
        let mut s = Pusher(&mut set);
        assert!(s.push(&upper));
        assert!(!s.push(&lower));
        assert!(s.contains(&lower));
        let back = s.rdatas();
        let RData::CNAME(c) = &back[0] else {
            panic!("{back:?}")
        };
        assert_eq!(c.0.to_ascii(), "Target.Example.");
        let s = &mut set;
        let mut w = Vec::new();
        for r in s.raw() {
            w.push(r.to_vec());
        }
        let mut t = RrSet::new(RecordType::CNAME, 60);
        assert!(t.push_wire(&w[0]));
        assert!(!t.push_wire(&encode(&lower).unwrap()));
        assert_eq!(s.remove(&lower), 1);
    }

    #[test]
    fn wire_that_is_not_an_rdata_of_the_type_does_not_decode() {
        assert!(decode(RecordType::A, &[1, 2, 3]).is_none());
        assert!(decode(RecordType::A, &[1, 2, 3, 4, 5]).is_none());
        assert!(decode(RecordType::TXT, &[5, b'a']).is_none());
        let mut s = RrSet::new(RecordType::A, 60);
        assert!(s.push_wire(&[1, 2, 3, 4]));
        assert!(!s.push_wire(&[1, 2, 3, 4]));
        assert!(s.raw().eq([&[1u8, 2, 3, 4][..]]));
    }
}

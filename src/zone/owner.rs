//! Owner names as the zone map's keys: one boxed byte string per name,
//! whose plain byte order is the canonical DNS name order of RFC 4034 §6.1.
//!
//! The key is the name's labels, most significant (rightmost) first, each
//! lowercased (ASCII letters only, as the RFC says) and ended by the two
//! octets `00 00`; an octet 0 inside a label is written `00 01`.
//!
//! Why not simply the wire form with its labels reversed: there a label
//! starts with its length, so byte order would sort labels by length first
//! (`b` before `aa`), while §6.1 compares labels as left-justified octet
//! strings ("the absence of an octet sorts before a zero value octet":
//! `aa` before `b`, `a` before `a\000`). With the terminator instead,
//! comparing two keys octet by octet compares the first label where they
//! differ as §6.1 wants: a label that is a prefix of the other ends first,
//! and its `00 00` sorts before any octet the other label goes on with
//! (`00 01` for an octet 0, anything above 0 otherwise); a name whose
//! labels all match the start of another's is shorter and sorts first.
//! Letters are lowercased and the escape keeps every key in one-to-one
//! correspondence with a name, so equal keys are equal names.
//!
//! A name is at or below another exactly when the other's key is a prefix
//! of its key (keys are read from the start, and a prefix that ends on a
//! terminator ends on a label boundary), which makes "is there a name below
//! this one" and "every name below this one" range scans without decoding.
//!
//! Keys are for FQDNs; the zone holds nothing else.

use std::borrow::Borrow;

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::BinDecodable;

/// The longest key: every octet of a 255-octet name an escaped 0 (each
/// label's length octet becomes its two terminator octets).
const MAX_KEY: usize = 2 * 255;

/// An owner name as a key of the zone's ordered map (see the module doc).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerKey(Box<[u8]>);

impl Borrow<[u8]> for OwnerKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerKey({})", self.to_name())
    }
}

impl OwnerKey {
    pub fn new(name: &Name) -> Self {
        Self(KeyBuf::new(name).as_slice().into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name again (lowercase, FQDN).
    pub fn to_name(&self) -> Name {
        key_to_name(&self.0)
    }
}

impl From<&KeyBuf> for OwnerKey {
    fn from(k: &KeyBuf) -> Self {
        Self(k.as_slice().into())
    }
}

/// A key built on the stack, for lookups: no allocation.
pub struct KeyBuf {
    len: usize,
    buf: [u8; MAX_KEY],
}

impl KeyBuf {
    pub fn new(name: &Name) -> Self {
        let mut k = KeyBuf {
            len: 0,
            buf: [0; MAX_KEY],
        };
        for label in name.iter().rev() {
            for &b in label {
                if b == 0 {
                    k.push(0);
                    k.push(1);
                } else {
                    k.push(b.to_ascii_lowercase());
                }
            }
            k.push(0);
            k.push(0);
        }
        k
    }

    fn push(&mut self, b: u8) {
        // A Name holds at most 255 octets of wire form, so MAX_KEY is
        // never passed.
        self.buf[self.len] = b;
        self.len += 1;
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Where each label of `key` ends (just past its terminator), in key order
/// (most significant label first).
pub fn label_ends(key: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < key.len() {
            if key[i] == 0 {
                i += 2;
                if key[i - 1] == 0 {
                    return Some(i);
                }
            } else {
                i += 1;
            }
        }
        None
    })
}

/// The name a key was made from.
pub fn key_to_name(key: &[u8]) -> Name {
    // The labels in key order, as (start, end) of their escaped octets.
    let mut labels = [(0u16, 0u16); 128];
    let mut n = 0;
    let mut start = 0;
    for end in label_ends(key) {
        labels[n] = (start as u16, (end - 2) as u16);
        n += 1;
        start = end;
    }
    // The wire form, labels in name order.
    let mut wire = [0u8; 256];
    let mut w = 0;
    for &(s, e) in labels[..n].iter().rev() {
        let len_at = w;
        w += 1;
        let mut i = s as usize;
        while i < e as usize {
            wire[w] = key[i];
            i += if key[i] == 0 { 2 } else { 1 };
            w += 1;
        }
        wire[len_at] = (w - len_at - 1) as u8;
    }
    wire[w] = 0;
    // Made from a valid name, so it decodes.
    Name::from_bytes(&wire[..=w]).expect("an owner key is a valid name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    /// A name from presentation form with `\DDD` and `\X` escapes, any
    /// octets allowed (`Name::from_ascii` would check hostname rules).
    fn n(text: &str) -> Name {
        let mut labels: Vec<Vec<u8>> = vec![Vec::new()];
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if b[i + 1].is_ascii_digit() => {
                    let v: u8 = text[i + 1..i + 4].parse().unwrap();
                    labels.last_mut().unwrap().push(v);
                    i += 4;
                }
                b'\\' => {
                    labels.last_mut().unwrap().push(b[i + 1]);
                    i += 2;
                }
                b'.' => {
                    labels.push(Vec::new());
                    i += 1;
                }
                c => {
                    labels.last_mut().unwrap().push(c);
                    i += 1;
                }
            }
        }
        labels.retain(|l| !l.is_empty());
        Name::from_labels(labels).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// RFC 4034 §6.1's example, in its order.
    const RFC_4034_ORDER: [&str; 9] = [
        "example.",
        "a.example.",
        "yljkjljk.a.example.",
        "Z.a.example.",
        "zABC.a.EXAMPLE.",
        "z.example.",
        "\\001.z.example.",
        "*.z.example.",
        "\\200.z.example.",
    ];

    fn names() -> Vec<Name> {
        let mut v: Vec<Name> = [
            ".",
            "org.",
            "example.org.",
            "EXAMPLE.org.",
            "a.example.org.",
            "A.example.org.",
            "aa.example.org.",
            "b.example.org.",
            "ab.example.org.",
            "a.b.example.org.",
            "z.a.example.org.",
            "*.example.org.",
            "-.example.org.",
            "_acme-challenge.m1._acme.example.org.",
            "_acme-challenge.m10._acme.example.org.",
            "_acme-challenge.m2._acme.example.org.",
            "_25._tcp.m1._acme.example.org.",
            "example.com.",
            "exampl.org.",
            "examplf.org.",
            "xn--bcher-kva.example.org.",
            "a-very-long-label-that-goes-on-for-quite-a-while-0123456789abcd.example.org.",
            "a\\000.example.",
            "a\\000\\000.example.",
            "a\\001.example.",
            "a\\255.example.",
            "\\000.example.",
            "\\000\\000.example.",
            "\\000a.example.",
            "\\255.example.",
            "\\[.example.",
            "\\[.\\000.example.",
            "a.\\000.example.",
            "\\000.\\000.example.",
            "a.\\000\\001.example.",
            "@.example.",
            "Ab\\000Cd.example.",
            "ab\\000cd.example.",
            "ab\\000ce.example.",
            "ab.cd.ef.gh.example.",
            "ab.cd.ef.example.",
            "ab.cd.efg.example.",
        ]
        .iter()
        .chain(&RFC_4034_ORDER)
        .map(|s| n(s))
        .collect();
        // Labels that are every octet, and binary labels of every length
        // up to a few.
        for b in 0..=255u8 {
            v.push(Name::from_labels([vec![b], b"x".to_vec()]).unwrap());
            v.push(Name::from_labels([vec![b, b], b"x".to_vec()]).unwrap());
            v.push(Name::from_labels([vec![b'a', b], b"x".to_vec()]).unwrap());
        }
        v.push(Name::from_labels([vec![0u8; 63], vec![0u8; 63], vec![0u8; 63]]).unwrap());
        v.push(Name::from_labels([vec![0u8; 63], vec![0u8; 63], vec![0u8; 62]]).unwrap());
        v.push(Name::from_labels([vec![0xffu8; 63], vec![0xff; 63], vec![0xff; 63]]).unwrap());
        v
    }

    #[test]
    fn byte_order_of_keys_is_hickorys_canonical_order() {
        let names = names();
        let keys: Vec<OwnerKey> = names.iter().map(OwnerKey::new).collect();
        for (a, ka) in names.iter().zip(&keys) {
            for (b, kb) in names.iter().zip(&keys) {
                assert_eq!(
                    ka.as_bytes().cmp(kb.as_bytes()),
                    a.cmp(b),
                    "{a:?} vs {b:?}: {:?} vs {:?}",
                    ka.as_bytes(),
                    kb.as_bytes()
                );
            }
        }
    }

    #[test]
    fn the_rfc_4034_example_sorts_as_listed() {
        let keys: Vec<OwnerKey> = RFC_4034_ORDER
            .iter()
            .map(|s| OwnerKey::new(&n(s)))
            .collect();
        for w in keys.windows(2) {
            assert_eq!(w[0].cmp(&w[1]), Ordering::Less, "{:?} < {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn a_key_turns_back_into_its_lowercase_name() {
        for n in names() {
            let k = OwnerKey::new(&n);
            let back = k.to_name();
            assert!(back.is_fqdn());
            assert!(back.eq_case(&n.to_lowercase()), "{n:?} -> {back:?}");
            assert_eq!(OwnerKey::new(&back), k);
        }
    }

    #[test]
    fn a_key_is_a_prefix_of_another_exactly_when_its_name_is_a_zone_of_the_other() {
        let names = names();
        for a in &names {
            let ka = OwnerKey::new(a);
            for b in &names {
                let kb = OwnerKey::new(b);
                assert_eq!(
                    kb.as_bytes().starts_with(ka.as_bytes()),
                    a.zone_of(b),
                    "{a:?} above {b:?}"
                );
            }
        }
    }

    #[test]
    fn label_ends_mark_each_label() {
        let k = OwnerKey::new(&n("a\\000.\\000b.example."));
        let ends: Vec<usize> = label_ends(k.as_bytes()).collect();
        // "example" 00 00 | 00 01 "b" 00 00 | "a" 00 01 00 00
        assert_eq!(ends, vec![9, 14, 19]);
        assert_eq!(k.as_bytes().len(), 19);
    }
}

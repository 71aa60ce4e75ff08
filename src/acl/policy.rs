//! The runtime policy and its decisions: which machine a TSIG key belongs
//! to ([`Policy::machine_for_key`]), whether a source address may use it
//! ([`Machine::source_allowed`]), and whether it may change an RRset
//! ([`Machine::permits`], [`Machine::grantable_types_at`]).
//!
//! Everything here is already validated (names, networks, patterns, types):
//! nothing parses text. The file format lives in `file.rs`, reading the
//! directories in `load.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;

/// What a machine is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Only what its grants say.
    #[default]
    Machine,
    /// Any name in its zones, any type but SOA/DNSSEC/meta.
    Admin,
}

/// One label of a name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PatLabel {
    /// This label, ignoring ASCII case (stored lowercase).
    Exact(Vec<u8>),
    /// `*`: exactly one label, any content.
    Any,
    /// `prefix*`: one label starting with prefix (stored lowercase).
    Prefix(Vec<u8>),
}

impl PatLabel {
    pub(super) fn matches(&self, label: &[u8]) -> bool {
        match self {
            PatLabel::Exact(want) => want.eq_ignore_ascii_case(label),
            PatLabel::Any => true,
            PatLabel::Prefix(prefix) => label
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        }
    }

    /// Bytes this label takes on the wire at least (length octet included).
    pub(super) fn min_wire_len(&self) -> usize {
        match self {
            PatLabel::Exact(l) => l.len() + 1,
            PatLabel::Any => 2,
            PatLabel::Prefix(p) => p.len().max(1) + 1,
        }
    }
}

/// Where a grant's names are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pattern {
    /// Labels left to right, before the zone origin (empty = the apex).
    Relative(Vec<PatLabel>),
    /// Labels left to right of a fully qualified name.
    Absolute(Vec<PatLabel>),
    /// The built-in admin grant: every name in the zone.
    AnyName,
}

/// One rule of an ACL: a name pattern and the record types allowed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub(super) pattern: Pattern,
    /// The pattern as written, after `{machine}` expansion.
    pub(super) text: String,
    pub(super) subtree: bool,
    pub(super) types: Vec<RecordType>,
    pub(super) max_rrset: Option<usize>,
}

/// The grant reported for an admin when no explicit grant matches.
pub(super) static ADMIN_GRANT: Grant = Grant {
    pattern: Pattern::AnyName,
    text: String::new(),
    subtree: true,
    types: Vec::new(),
    max_rrset: None,
};

impl Grant {
    /// At most this many RRs may be in the RRset after the update.
    pub fn max_rrset(&self) -> Option<usize> {
        self.max_rrset
    }

    /// The types granted. Empty for the built-in admin grant, which allows
    /// every type but SOA/DNSSEC/meta (see [`Grant::is_admin`]).
    pub fn types(&self) -> &[RecordType] {
        &self.types
    }

    /// Whether the grant covers names below the pattern too.
    pub fn subtree(&self) -> bool {
        self.subtree
    }

    /// Whether this is the built-in "admin: anything" grant.
    pub fn is_admin(&self) -> bool {
        self.pattern == Pattern::AnyName
    }

    /// The pattern as written, after `{machine}` expansion.
    pub fn pattern_text(&self) -> &str {
        &self.text
    }

    /// For logs, BIND-like: `_*._tcp.mx1 TLSA`, `_acme-challenge.mx1
    /// TXT(2)`, `hosts.mx1 (subtree) A AAAA`.
    pub fn describe(&self) -> String {
        if self.is_admin() {
            return "admin: any name, any type but SOA/DNSSEC/meta".to_string();
        }
        let mut out = self.text.clone();
        if self.subtree {
            out.push_str(" (subtree)");
        }
        for t in &self.types {
            out.push(' ');
            out.push_str(&t.to_string());
            if let Some(max) = self.max_rrset {
                out.push_str(&format!("({max})"));
            }
        }
        out
    }

    /// Whether the pattern covers `owner`, given that `owner` is in `zone`.
    /// Ignores types and the wildcard-owner rule.
    fn covers(&self, zone: &Name, owner: &Name) -> bool {
        let owner_labels: Vec<&[u8]> = owner.iter().collect();
        let (candidate, pattern): (&[&[u8]], &[PatLabel]) = match &self.pattern {
            Pattern::AnyName => return true,
            Pattern::Relative(labels) => {
                // The caller checked that the zone's labels end the owner.
                let zone_len = zone.iter().len();
                match owner_labels.len().checked_sub(zone_len) {
                    Some(rel) => (&owner_labels[..rel], labels),
                    None => return false,
                }
            }
            Pattern::Absolute(labels) => (&owner_labels, labels),
        };
        let start = if self.subtree {
            match candidate.len().checked_sub(pattern.len()) {
                Some(start) => start,
                None => return false,
            }
        } else if candidate.len() == pattern.len() {
            0
        } else {
            return false;
        };
        candidate[start..]
            .iter()
            .zip(pattern)
            .all(|(label, pat)| pat.matches(label))
    }

    /// "More permissive" order for choosing among matching grants.
    fn looser_than(&self, other: &Grant) -> bool {
        match (self.max_rrset, other.max_rrset) {
            (None, Some(_)) => true,
            (Some(a), Some(b)) => a > b,
            _ => false,
        }
    }
}

/// The record types a machine may change at one owner name.
///
/// `AllButProtected` means every type but the server-managed ones (SOA,
/// DNSSEC, ZONEMD, meta): NS is included, unlike
/// [`Policy::is_protected_type`], which is the machine-role list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypesAt {
    /// None at all.
    None,
    /// Exactly these (no duplicates, never a protected type).
    Some(Vec<RecordType>),
    /// Every type but SOA, DNSSEC, ZONEMD and meta types (role admin).
    AllButProtected,
}

impl TypesAt {
    /// Whether `rtype` is among them.
    pub fn contains(&self, rtype: RecordType) -> bool {
        match self {
            TypesAt::None => false,
            TypesAt::Some(types) => types.contains(&rtype),
            TypesAt::AllButProtected => !is_server_managed(rtype),
        }
    }
}

/// One machine's validated ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The machine name (the file stem).
    pub name: String,
    /// Its TSIG key name (fully qualified).
    pub key: Name,
    pub role: Role,
    /// Allowed source networks; empty = any source.
    pub networks: Vec<IpNet>,
    /// Zones it may change; `None` = every served zone.
    pub zones: Option<Vec<Name>>,
    pub grants: Vec<Grant>,
    /// An acme-dns account's password hash (`password-hash`): such a
    /// machine writes through `POST /update` and needs no TSIG key.
    pub password_hash: Option<PasswordHash>,
    /// The file it came from.
    pub path: PathBuf,
}

/// A bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, cost 4-31, 60
/// characters), as acme-dns stores them. Its Debug hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl PasswordHash {
    /// Check the shape of a bcrypt hash (not what it hashes).
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let shape = b.len() == 60
            && b.starts_with(b"$2")
            && matches!(b[2], b'a' | b'b' | b'x' | b'y')
            && b[3] == b'$'
            && b[4..6].iter().all(u8::is_ascii_digit)
            && b[6] == b'$'
            && b[7..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/'));
        let cost: u32 = s.get(4..6).and_then(|c| c.parse().ok()).unwrap_or(0);
        if shape && (4..=31).contains(&cost) {
            Ok(Self(s.to_string()))
        } else {
            Err(
                "password-hash is not a bcrypt hash ($2a$/$2b$/$2y$, cost 04-31, 60 characters)"
                    .into(),
            )
        }
    }

    /// Hash `password` with bcrypt at `cost`.
    pub fn make(password: &str, cost: u32) -> Result<Self, String> {
        bcrypt::hash(password, cost)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// Whether `password` matches (bcrypt's own comparison). Slow by design.
    pub fn verify(&self, password: &str) -> bool {
        bcrypt::verify(password, &self.0).unwrap_or(false)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Machine {
    /// A machine for the server's own changes (the challenges of its HTTPS
    /// certificate, issue 14): `rtype` at exactly `owners` in `zone`, from
    /// any source, no key file. Its changes go through the same ACL check,
    /// journal and audit (as `name`) as any machine's.
    pub fn internal(name: &str, zone: &Name, owners: &[Name], rtype: RecordType) -> Self {
        let grants = owners
            .iter()
            .map(|o| Grant {
                pattern: Pattern::Absolute(
                    o.iter()
                        .map(|l| PatLabel::Exact(l.to_ascii_lowercase()))
                        .collect(),
                ),
                text: o.to_ascii(),
                subtree: false,
                types: vec![rtype],
                max_rrset: None,
            })
            .collect();
        Self {
            name: name.to_string(),
            key: Name::from_ascii(format!("{name}.internal.")).unwrap_or_else(|_| Name::root()),
            role: Role::Machine,
            networks: Vec::new(),
            zones: Some(vec![zone.clone()]),
            grants,
            password_hash: None,
            path: PathBuf::new(),
        }
    }

    /// Whether a request from `ip` may use this machine's key. An
    /// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is compared as IPv4.
    pub fn source_allowed(&self, ip: IpAddr) -> bool {
        if self.networks.is_empty() {
            return true;
        }
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// Whether this machine may change anything in `zone` at all. `zone`
    /// is trusted to be a served zone.
    pub fn zone_allowed(&self, zone: &Name) -> bool {
        match &self.zones {
            None => true,
            Some(zones) => zones.iter().any(|z| same_name(z, zone)),
        }
    }

    /// The grant that lets this machine change `rtype` at `owner` in
    /// `zone`, if any. For an admin with no matching explicit grant, the
    /// built-in admin grant (no limit). `zone` is trusted to be a served
    /// zone; `owner` outside it is refused.
    pub fn permits(&self, zone: &Name, owner: &Name, rtype: RecordType) -> Option<&Grant> {
        if !self.zone_allowed(zone) || !is_in_zone(owner, zone) {
            return None;
        }
        match self.role {
            Role::Machine => {
                if is_protected_type(rtype) || has_wildcard_label(owner) {
                    return None;
                }
                self.loosest_grant(zone, owner, rtype)
            }
            Role::Admin => {
                if is_server_managed(rtype) {
                    return None;
                }
                self.loosest_grant(zone, owner, rtype)
                    .or(Some(&ADMIN_GRANT))
            }
        }
    }

    /// Record types this machine may change at `owner` in `zone` (for
    /// "delete all RRsets at a name": the server deletes only these).
    pub fn grantable_types_at(&self, zone: &Name, owner: &Name) -> TypesAt {
        if !self.zone_allowed(zone) || !is_in_zone(owner, zone) {
            return TypesAt::None;
        }
        match self.role {
            Role::Admin => TypesAt::AllButProtected,
            Role::Machine => {
                if has_wildcard_label(owner) {
                    return TypesAt::None;
                }
                let mut types = Vec::new();
                for grant in self.grants.iter().filter(|g| g.covers(zone, owner)) {
                    for &t in &grant.types {
                        if !types.contains(&t) && !is_protected_type(t) {
                            types.push(t);
                        }
                    }
                }
                if types.is_empty() {
                    TypesAt::None
                } else {
                    TypesAt::Some(types)
                }
            }
        }
    }

    fn loosest_grant(&self, zone: &Name, owner: &Name, rtype: RecordType) -> Option<&Grant> {
        let mut best: Option<&Grant> = None;
        for grant in &self.grants {
            if grant.types.contains(&rtype)
                && grant.covers(zone, owner)
                && best.is_none_or(|b| grant.looser_than(b))
            {
                best = Some(grant);
            }
        }
        best
    }
}

/// Every machine's ACL, indexed by key name.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    machines: Vec<Arc<Machine>>,
    by_key: HashMap<Vec<Vec<u8>>, usize>,
}

impl Policy {
    /// Add a validated machine. A machine whose key (compared as
    /// [`Policy::machine_for_key`] does) is already taken is not added:
    /// the machine holding it comes back as the error.
    pub(super) fn insert(&mut self, machine: Machine) -> Result<(), &Arc<Machine>> {
        let index_key = name_key(&machine.key);
        if let Some(&first) = self.by_key.get(&index_key) {
            return Err(&self.machines[first]);
        }
        self.by_key.insert(index_key, self.machines.len());
        self.machines.push(Arc::new(machine));
        Ok(())
    }

    /// The machine whose TSIG key is `key` (case-insensitive; a relative
    /// and a fully qualified spelling are the same key). Shared: a request
    /// can keep (clone) it and need not look it up again.
    pub fn machine_for_key(&self, key: &Name) -> Option<&Arc<Machine>> {
        self.by_key
            .get(&name_key(key))
            .and_then(|&i| self.machines.get(i))
    }

    /// Every machine, in file-name order.
    pub fn machines(&self) -> &[Arc<Machine>] {
        &self.machines
    }

    /// Types a machine can never be granted: SOA, NS, DNSSEC, ZONEMD and
    /// meta types. (An admin may have NS but none of the others.)
    pub fn is_protected_type(rtype: RecordType) -> bool {
        is_protected_type(rtype)
    }
}

// ---------------------------------------------------------------------------
// Type classes

/// SOA, NS, DNSSEC, ZONEMD and meta types: never grantable to a machine.
pub(super) fn is_protected_type(rtype: RecordType) -> bool {
    rtype == RecordType::NS || is_server_managed(rtype)
}

/// Types the server manages itself or that are not data: never grantable,
/// not even to an admin.
pub(super) fn is_server_managed(rtype: RecordType) -> bool {
    matches!(
        u16::from(rtype),
        0           // reserved / ZERO
        | 6         // SOA
        | 24 | 25  // SIG, KEY (RFC 2535 DNSSEC, SIG(0))
        | 30        // NXT
        | 41        // OPT
        | 43        // DS
        | 46..=48   // RRSIG, NSEC, DNSKEY
        | 50 | 51   // NSEC3, NSEC3PARAM
        | 59 | 60   // CDS, CDNSKEY
        | 63        // ZONEMD
        | 128..=255 // meta and query types: TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY
    )
}

// ---------------------------------------------------------------------------
// Names

/// Whether `a` and `b` are the same name (ASCII case-insensitive, raw label
/// bytes, fully qualified or not).
pub(super) fn same_name(a: &Name, b: &Name) -> bool {
    a.iter().len() == b.iter().len()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// Whether `owner` is `zone` or below it.
fn is_in_zone(owner: &Name, zone: &Name) -> bool {
    let (o, z) = (owner.iter().len(), zone.iter().len());
    o >= z
        && owner
            .iter()
            .rev()
            .zip(zone.iter().rev())
            .all(|(x, y)| x.eq_ignore_ascii_case(y))
}

fn has_wildcard_label(owner: &Name) -> bool {
    owner.iter().any(|label| label == b"*")
}

/// Index key for a key name: lowercased labels.
fn name_key(name: &Name) -> Vec<Vec<u8>> {
    name.iter().map(|l| l.to_ascii_lowercase()).collect()
}

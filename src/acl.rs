//! The update policy: which machine (TSIG key) may change which names and
//! record types, read from one `acl/<machine>.toml` file per machine.
//!
//! This module owns the ACL file format, its validation (every error with
//! path and line:column, all of them at once, all or nothing for a
//! directory) and the decision "may this key change this RRset?"
//! ([`Machine::permits`], [`Machine::grantable_types_at`]). It is the
//! local policy RFC 2136 §3.3 leaves to the server, in the spirit of BIND's
//! `update-policy` (`grant KEY name|subdomain NAME TYPES`, `TXT(2)` limits)
//! but with fewer, stricter rules. It does not verify TSIG, parse UPDATE
//! messages, check prerequisites, count RRsets (it only reports the
//! `max-rrset` a grant allows: the update path enforces it), or know which
//! zones exist beyond the list of served zone origins it is given.
//!
//! # File format
//!
//! ```toml
//! # acl/mx1.toml: the machine name is the file stem, "mx1"
//! key = "mx1"                      # TSIG key name; default: the machine name
//! role = "machine"                 # "machine" (default) or "admin"
//! networks = ["192.0.2.0/24", "::1/128", "127.0.0.1"]  # default: any source
//! zones = ["_acme.example.org."]   # default: every served zone
//!
//! [[grant]]
//! name = "_acme-challenge.{machine}"   # relative to the zone unless it ends in "."
//! types = ["TXT"]                      # mnemonics, case-insensitive; TYPEnnn too
//! max-rrset = 2                        # optional: at most 2 RRs after the update
//!
//! [[grant]]
//! name = "_*._tcp.{machine}"
//! types = ["TLSA"]
//!
//! [[grant]]
//! name = "hosts.{machine}"
//! subtree = true                       # this name and every name below it
//! types = ["A", "AAAA"]
//! ```
//!
//! # Matching rules
//!
//! Names are compared label by label, right to left, ignoring ASCII case
//! only, on the raw label bytes: an escaped dot inside a label
//! (`_acme-challenge\.mx1`) is one label and never matches two.
//!
//! - A pattern label is a literal (`[A-Za-z0-9_-]`), `*` (exactly one label
//!   of any content, never zero or several), or a prefix glob such as `_*`
//!   (one label starting with `_`, including `_` itself). `*` anywhere else
//!   in a label, and backslash escapes, are errors.
//! - `@` is the zone apex. A name ending in `.` is absolute and must lie in
//!   one of the machine's zones; otherwise the zone origin is appended.
//! - `subtree = true` covers the pattern's names and every name below them.
//! - `{machine}` (in `name` and `key`) expands to the machine name; any
//!   other `{...}` is an error.
//! - The owner must lie in the update's zone, and that zone must be one of
//!   the machine's `zones` (if given).
//! - Role machine: an owner with a literal `*` label anywhere (a DNS
//!   wildcard such as `*.mx1` or `*._tcp.mx1`) is never permitted, whatever
//!   the pattern: wildcard records are not grantable. SOA, NS, DNSSEC types
//!   (DS, RRSIG, NSEC, DNSKEY, NSEC3, NSEC3PARAM, CDS, CDNSKEY, and the old
//!   SIG, KEY, NXT), ZONEMD and meta/query types (0, OPT, 128–255: TKEY,
//!   TSIG, IXFR, AXFR, MAILA, MAILB, ANY) can never be granted: naming one is
//!   an error in the file.
//! - Role admin: any name in its zones (wildcards included) and any type
//!   but SOA, DNSSEC, ZONEMD and meta types. Grants are optional; a matching
//!   admin grant only adds its `max-rrset` limit.
//! - Several grants may match: permission is their union, and the most
//!   permissive matching grant (no limit, else the largest `max-rrset`) is
//!   the one reported.
//!
//! Empty `networks`, `zones` or `types` lists are errors (omit `networks` or
//! `zones` to mean "any"), as are a machine without grants, a network with
//! host bits set (`192.0.2.5/24`), a zone that is not served, and two
//! files with the same key name.

use std::collections::HashMap;
use std::fs;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::{Name, RecordType};
use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{self, FileError, FileErrors};

/// What a machine is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Only what its grants say.
    #[default]
    Machine,
    /// Any name in its zones, any type but SOA/DNSSEC/meta.
    Admin,
}

/// One label of a name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PatLabel {
    /// This label, ignoring ASCII case (stored lowercase).
    Exact(Vec<u8>),
    /// `*`: exactly one label, any content.
    Any,
    /// `prefix*`: one label starting with prefix (stored lowercase).
    Prefix(Vec<u8>),
}

impl PatLabel {
    fn matches(&self, label: &[u8]) -> bool {
        match self {
            PatLabel::Exact(want) => want.eq_ignore_ascii_case(label),
            PatLabel::Any => true,
            PatLabel::Prefix(prefix) => label
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        }
    }

    /// Bytes this label takes on the wire at least (length octet included).
    fn min_wire_len(&self) -> usize {
        match self {
            PatLabel::Exact(l) => l.len() + 1,
            PatLabel::Any => 2,
            PatLabel::Prefix(p) => p.len().max(1) + 1,
        }
    }
}

/// Where a grant's names are.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
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
    pattern: Pattern,
    text: String,
    subtree: bool,
    types: Vec<RecordType>,
    max_rrset: Option<usize>,
}

/// The grant reported for an admin when no explicit grant matches.
static ADMIN_GRANT: Grant = Grant {
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
    /// The file it came from.
    pub path: PathBuf,
}

impl Machine {
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
    machines: Vec<Machine>,
    by_key: HashMap<Vec<Vec<u8>>, usize>,
}

impl Policy {
    /// Load every `*.toml` in `dir` (other files, subdirectories and
    /// dotfiles are ignored; sorted by file name). All or nothing: any error
    /// in any file gives `Err` with every error found, so the caller keeps
    /// its previous policy. An empty directory is an empty policy.
    pub fn load_dir(dir: &Path, zones: &[Name]) -> Result<Policy, FileErrors> {
        let entries = fs::read_dir(dir)
            .map_err(|e| FileError::whole_file(dir, format!("cannot read ACL directory: {e}")))?;
        let mut paths = Vec::new();
        let mut errors = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    errors.push(FileError::whole_file(
                        dir,
                        format!("cannot read ACL directory: {e}"),
                    ));
                    continue;
                }
            };
            let path = entry.path();
            let file_name = entry.file_name();
            let hidden = file_name.as_encoded_bytes().starts_with(b".");
            let is_toml = path.extension().is_some_and(|ext| ext == "toml");
            if hidden || !is_toml {
                tracing::debug!(path = %path.display(), "not an ACL file, ignored");
                continue;
            }
            // fs::metadata follows symlinks, so a link to a file counts.
            if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            paths.push(path);
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            match read_text(&path) {
                Ok(text) => files.push((path, text)),
                Err(e) => errors.push(e),
            }
        }
        match Policy::from_texts(&files, zones) {
            Ok(policy) if errors.is_empty() => {
                tracing::debug!(
                    dir = %dir.display(),
                    machines = policy.machines.len(),
                    "ACL policy loaded"
                );
                Ok(policy)
            }
            Ok(_) => Err(FileErrors(errors)),
            Err(more) => {
                errors.extend(more.0);
                Err(FileErrors(errors))
            }
        }
    }

    /// Load one ACL file.
    pub fn load_file(path: &Path, zones: &[Name]) -> Result<Machine, Vec<FileError>> {
        let text = read_text(path).map_err(|e| vec![e])?;
        Policy::parse_file(path, &text, zones)
    }

    /// Validate one ACL file's `text` as if read from `path` (the file stem
    /// is the machine name). For tests and for `check`.
    pub fn parse_file(path: &Path, text: &str, zones: &[Name]) -> Result<Machine, Vec<FileError>> {
        parse_machine(path, text, zones).map(|(machine, _)| machine)
    }

    /// Build a policy from file contents, as [`Policy::load_dir`] does after
    /// reading: every file is validated, key names must be unique.
    pub fn from_texts(files: &[(PathBuf, String)], zones: &[Name]) -> Result<Policy, FileErrors> {
        let mut errors = Vec::new();
        let mut policy = Policy::default();
        for (path, text) in files {
            match parse_machine(path, text, zones) {
                Err(errs) => errors.extend(errs),
                Ok((machine, key_at)) => {
                    let index_key = name_key(&machine.key);
                    if let Some(&first) = policy.by_key.get(&index_key) {
                        let other: &Machine = &policy.machines[first];
                        let mut err = key_at;
                        err.message = format!(
                            "key {} is already used by {} (machine {}); each machine needs its own key",
                            machine.key,
                            other.path.display(),
                            other.name
                        );
                        errors.push(err);
                    } else {
                        policy.by_key.insert(index_key, policy.machines.len());
                        policy.machines.push(machine);
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(FileErrors(errors))
        }
    }

    /// The machine whose TSIG key is `key` (case-insensitive; a relative
    /// and a fully qualified spelling are the same key).
    pub fn machine_for_key(&self, key: &Name) -> Option<&Machine> {
        self.by_key
            .get(&name_key(key))
            .and_then(|&i| self.machines.get(i))
    }

    /// Every machine, in file-name order.
    pub fn machines(&self) -> &[Machine] {
        &self.machines
    }

    /// Types a machine can never be granted: SOA, NS, DNSSEC, ZONEMD and
    /// meta types. (An admin may have NS but none of the others.)
    pub fn is_protected_type(rtype: RecordType) -> bool {
        is_protected_type(rtype)
    }
}

/// The ACL file `machine add` writes: TXT at `_acme-challenge.<host>` and
/// TLSA at `_*._tcp.<host>` in `zone`, where `host` defaults to
/// `{machine}`. Values are quoted as TOML strings; validate the result with
/// [`Policy::parse_file`] before writing it.
pub fn skeleton(machine: &str, key_name: &str, zone: &Name, host: Option<&str>) -> String {
    let host = host.unwrap_or("{machine}");
    let mut zone_text = zone.to_ascii();
    if !zone_text.ends_with('.') {
        zone_text.push('.');
    }
    format!(
        "# ACL for machine {machine}, written by `zonewarden machine add`.\n\
         # Reference: names are relative to the zone unless they end in \".\";\n\
         # {{machine}} is the file name without .toml; \"*\" is one label, \"_*\" one\n\
         # label starting with \"_\"; `subtree = true` adds every name below.\n\
         key = {key}\n\
         role = \"machine\"\n\
         zones = [{zone}]\n\
         # networks = [\"192.0.2.10\", \"2001:db8::/64\"]   # default: any source address\n\
         \n\
         # ACME DNS-01: TXT at _acme-challenge.<host>\n\
         [[grant]]\n\
         name = {challenge}\n\
         types = [\"TXT\"]\n\
         # max-rrset = 2   # optional cap on the RRset size after an update\n\
         \n\
         # DANE: TLSA at _<port>._<proto>.<host>, e.g. _25._tcp, _443._tcp\n\
         [[grant]]\n\
         name = {tlsa}\n\
         types = [\"TLSA\"]\n",
        machine = toml_quote(machine),
        key = toml_quote(key_name),
        zone = toml_quote(&zone_text),
        challenge = toml_quote(&format!("_acme-challenge.{host}")),
        tlsa = toml_quote(&format!("_*._tcp.{host}")),
    )
}

// ---------------------------------------------------------------------------
// Type classes

/// SOA, NS, DNSSEC, ZONEMD and meta types: never grantable to a machine.
fn is_protected_type(rtype: RecordType) -> bool {
    rtype == RecordType::NS || is_server_managed(rtype)
}

/// Types the server manages itself or that are not data: never grantable,
/// not even to an admin.
fn is_server_managed(rtype: RecordType) -> bool {
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
fn same_name(a: &Name, b: &Name) -> bool {
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

fn wire_len(labels: impl Iterator<Item = usize>) -> usize {
    labels.map(|l| l + 1).sum::<usize>() + 1
}

// ---------------------------------------------------------------------------
// The file

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AclFile {
    key: Option<Spanned<String>>,
    #[serde(default)]
    role: Role,
    networks: Option<Spanned<Vec<Spanned<String>>>>,
    zones: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    grant: Vec<GrantFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GrantFile {
    name: Spanned<String>,
    #[serde(default)]
    subtree: bool,
    types: Spanned<Vec<Spanned<String>>>,
    max_rrset: Option<Spanned<usize>>,
}

fn read_text(path: &Path) -> Result<String, FileError> {
    let bytes =
        fs::read(path).map_err(|e| FileError::whole_file(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        FileError::whole_file(
            path,
            format!(
                "not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Errors of one file, located in its text.
struct Errors<'a> {
    path: &'a Path,
    text: &'a str,
    list: Vec<FileError>,
}

impl Errors<'_> {
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        self.list
            .push(FileError::at_offset(self.path, self.text, offset, message));
    }

    /// The offset of byte `index` of a string value whose TOML span is
    /// `span`: exact when the value is written without escapes, else the
    /// value's start.
    fn inside(&self, span: &Range<usize>, value: &str, index: usize) -> usize {
        let raw = self.text.get(span.clone()).unwrap_or("");
        let plain = raw.len() == value.len() + 2
            && (raw.starts_with('"') || raw.starts_with('\''))
            && raw.get(1..raw.len() - 1) == Some(value);
        if plain {
            span.start + 1 + index
        } else {
            span.start
        }
    }
}

/// Parse and validate one file. Also returns the position of the key name
/// (for a duplicate-key error) as a located error with an empty message.
fn parse_machine(
    path: &Path,
    text: &str,
    served: &[Name],
) -> Result<(Machine, FileError), Vec<FileError>> {
    let mut errs = Errors {
        path,
        text,
        list: Vec::new(),
    };

    let name = match path.file_stem().and_then(|s| s.to_str()) {
        Some(stem) if is_machine_name(stem) => Some(stem.to_string()),
        _ => {
            errs.list.push(FileError::whole_file(
                path,
                "the file name must be <machine>.toml, where <machine> is one DNS label of \
                 letters, digits, '-' and '_' (at most 63, not starting or ending with '-')",
            ));
            None
        }
    };

    let file: AclFile = match diag::parse_toml(path, text) {
        Ok(file) => file,
        Err(e) => {
            errs.list.push(e);
            return Err(errs.list);
        }
    };
    let Some(name) = name else {
        return Err(errs.list);
    };

    // key
    let (key, key_at) = match &file.key {
        None => (parse_key(&name), FileError::at_offset(path, text, 0, "")),
        Some(spanned) => {
            let span = spanned.span();
            let value = spanned.get_ref();
            let key = match expand(value, &name) {
                Err((i, msg)) => {
                    let at = errs.inside(&span, value, i);
                    errs.at(at, msg);
                    None
                }
                Ok(expanded) => {
                    let key = parse_key(&expanded);
                    if key.is_none() {
                        errs.at(span.start, format!("invalid key name {expanded:?}"));
                    }
                    key
                }
            };
            (key, FileError::at_offset(path, text, span.start, ""))
        }
    };

    // networks
    let mut networks = Vec::new();
    if let Some(list) = &file.networks {
        if list.get_ref().is_empty() {
            errs.at(
                list.span().start,
                "empty networks list: omit `networks` to allow any source address",
            );
        }
        for item in list.get_ref() {
            match parse_network(item.get_ref()) {
                Ok(net) => {
                    if !networks.contains(&net) {
                        networks.push(net);
                    }
                }
                Err(msg) => errs.at(item.span().start, msg),
            }
        }
    }

    // zones
    let zones = match &file.zones {
        None => None,
        Some(list) => {
            if list.get_ref().is_empty() {
                errs.at(
                    list.span().start,
                    "empty zones list: omit `zones` to allow every served zone",
                );
            }
            let mut zones: Vec<Name> = Vec::new();
            for item in list.get_ref() {
                let text_zone = item.get_ref();
                let parsed = Name::from_ascii(text_zone)
                    .ok()
                    .filter(|_| !text_zone.is_empty());
                match parsed {
                    None => errs.at(
                        item.span().start,
                        format!("invalid zone name {text_zone:?}"),
                    ),
                    Some(zone) => match served.iter().find(|s| same_name(s, &zone)) {
                        None => errs.at(
                            item.span().start,
                            format!(
                                "zone {text_zone:?} is not served here ({})",
                                list_names(served)
                            ),
                        ),
                        Some(served_zone) => {
                            if !zones.iter().any(|z| same_name(z, served_zone)) {
                                zones.push(served_zone.clone());
                            }
                        }
                    },
                }
            }
            Some(zones)
        }
    };
    let effective_zones: &[Name] = zones.as_deref().unwrap_or(served);

    // grants
    let mut grants = Vec::new();
    if file.role == Role::Machine && file.grant.is_empty() {
        errs.at(
            0,
            "a machine with no [[grant]] may change nothing: add a [[grant]] \
             (name and types), or set role = \"admin\"",
        );
    }
    for grant in &file.grant {
        if let Some(grant) = parse_grant(&mut errs, grant, &name, file.role, effective_zones) {
            grants.push(grant);
        }
    }

    match key {
        Some(key) if errs.list.is_empty() => Ok((
            Machine {
                name,
                key,
                role: file.role,
                networks,
                zones,
                grants,
                path: path.to_path_buf(),
            },
            key_at,
        )),
        _ => {
            if errs.list.is_empty() {
                // Only reachable when the default key (the machine name)
                // does not parse, which is_machine_name rules out.
                errs.at(0, format!("machine name {name:?} is not a valid key name"));
            }
            errs.list.sort_by_key(|e| (e.line, e.column));
            Err(errs.list)
        }
    }
}

fn parse_grant(
    errs: &mut Errors<'_>,
    grant: &GrantFile,
    machine: &str,
    role: Role,
    zones: &[Name],
) -> Option<Grant> {
    let mut ok = true;

    // name
    let raw = grant.name.get_ref();
    let span = grant.name.span();
    let mut pattern = None;
    let mut text = String::new();
    match expand(raw, machine) {
        Err((i, msg)) => {
            let at = errs.inside(&span, raw, i);
            errs.at(at, msg);
        }
        Ok(expanded) => match parse_pattern(&expanded) {
            Err(msg) => {
                // Point inside the value only when no expansion shifted it.
                let at = if expanded == *raw {
                    errs.inside(&span, raw, 0)
                } else {
                    span.start
                };
                errs.at(at, format!("name {expanded:?}: {msg}"));
            }
            Ok(p) => {
                if let Err(msg) = check_pattern_zones(&p, zones) {
                    errs.at(span.start, format!("name {expanded:?}: {msg}"));
                } else {
                    pattern = Some(p);
                    text = expanded;
                }
            }
        },
    }

    // types
    let mut types = Vec::new();
    if grant.types.get_ref().is_empty() {
        errs.at(
            grant.types.span().start,
            "empty types list: name at least one record type",
        );
        ok = false;
    }
    for item in grant.types.get_ref() {
        match parse_type(item.get_ref()) {
            None => {
                errs.at(
                    item.span().start,
                    format!("unknown record type {:?}", item.get_ref()),
                );
                ok = false;
            }
            Some(t) => {
                let forbidden = match role {
                    Role::Machine => is_protected_type(t),
                    Role::Admin => is_server_managed(t),
                };
                if forbidden {
                    let who = match role {
                        Role::Machine => {
                            "a machine (SOA, NS, DNSSEC, ZONEMD and meta types are managed by the server)"
                        }
                        Role::Admin => {
                            "anyone (SOA, DNSSEC, ZONEMD and meta types are managed by the server)"
                        }
                    };
                    errs.at(
                        item.span().start,
                        format!("record type {t} cannot be granted to {who}"),
                    );
                    ok = false;
                } else if !types.contains(&t) {
                    types.push(t);
                }
            }
        }
    }

    // max-rrset
    let mut max_rrset = None;
    if let Some(max) = &grant.max_rrset {
        if *max.get_ref() == 0 {
            errs.at(
                max.span().start,
                "max-rrset must be at least 1 (omit it for no limit)",
            );
            ok = false;
        } else {
            max_rrset = Some(*max.get_ref());
        }
    }

    match pattern {
        Some(pattern) if ok => Some(Grant {
            pattern,
            text,
            subtree: grant.subtree,
            types,
            max_rrset,
        }),
        _ => None,
    }
}

/// The machine name: one label of `[A-Za-z0-9_-]`, 1–63 bytes, no leading
/// or trailing `-`.
fn is_machine_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_key(s: &str) -> Option<Name> {
    if s.is_empty() || s == "." {
        return None;
    }
    let mut name = Name::from_ascii(s).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// Expand `{machine}`; any other `{...}` or a stray brace is an error at
/// that byte index.
fn expand(s: &str, machine: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut base = 0;
    loop {
        let Some(open) = rest.find(['{', '}']) else {
            out.push_str(rest);
            return Ok(out);
        };
        if rest[open..].starts_with('}') {
            return Err((base + open, "unmatched '}'".to_string()));
        }
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err((base + open, "unclosed '{'".to_string()));
        };
        let placeholder = &after[..close];
        if placeholder != "machine" {
            return Err((
                base + open,
                format!("unknown placeholder {{{placeholder}}}: only {{machine}} is supported"),
            ));
        }
        out.push_str(machine);
        let consumed = open + 1 + close + 1;
        base += consumed;
        rest = &rest[consumed..];
    }
}

fn parse_pattern(s: &str) -> Result<Pattern, String> {
    if s.is_empty() {
        return Err("empty name (use \"@\" for the zone apex)".to_string());
    }
    if s == "@" {
        return Ok(Pattern::Relative(Vec::new()));
    }
    if s.contains('\\') {
        return Err("escapes are not allowed in name patterns".to_string());
    }
    let (body, absolute) = match s.strip_suffix('.') {
        Some(body) => (body, true),
        None => (s, false),
    };
    let mut labels = Vec::new();
    if !body.is_empty() {
        for label in body.split('.') {
            labels.push(parse_pat_label(label)?);
        }
    }
    if absolute {
        Ok(Pattern::Absolute(labels))
    } else {
        Ok(Pattern::Relative(labels))
    }
}

fn parse_pat_label(label: &str) -> Result<PatLabel, String> {
    if label.is_empty() {
        return Err("empty label".to_string());
    }
    if label.len() > 63 {
        return Err(format!("label {label:?} is longer than 63 bytes"));
    }
    if let Some(bad) = label
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*'))
    {
        return Err(format!(
            "character {bad:?} not allowed (letters, digits, '-', '_', and '*' as a whole label or at the end of one)"
        ));
    }
    if label == "*" {
        return Ok(PatLabel::Any);
    }
    match label.strip_suffix('*') {
        Some(prefix) if !prefix.contains('*') => {
            Ok(PatLabel::Prefix(prefix.as_bytes().to_ascii_lowercase()))
        }
        _ if label.contains('*') => Err(format!(
            "label {label:?}: '*' may only be a whole label or end a label"
        )),
        _ => Ok(PatLabel::Exact(label.as_bytes().to_ascii_lowercase())),
    }
}

/// An absolute pattern must end in (literally) one of the zones; a relative
/// one must fit in 255 bytes below each zone.
fn check_pattern_zones(pattern: &Pattern, zones: &[Name]) -> Result<(), String> {
    match pattern {
        Pattern::AnyName => Ok(()),
        Pattern::Absolute(labels) => {
            let len = labels.iter().map(PatLabel::min_wire_len).sum::<usize>() + 1;
            if len > 255 {
                return Err("longer than 255 bytes".to_string());
            }
            let in_some_zone = zones.iter().any(|zone| {
                let zl: Vec<&[u8]> = zone.iter().collect();
                labels.len() >= zl.len()
                    && labels[labels.len() - zl.len()..]
                        .iter()
                        .zip(&zl)
                        .all(|(p, z)| matches!(p, PatLabel::Exact(e) if e.eq_ignore_ascii_case(z)))
            });
            if in_some_zone {
                Ok(())
            } else {
                Err(format!(
                    "absolute name is outside every zone this machine may change ({})",
                    list_names(zones)
                ))
            }
        }
        Pattern::Relative(labels) => {
            let rel = labels.iter().map(PatLabel::min_wire_len).sum::<usize>();
            for zone in zones {
                if rel + wire_len(zone.iter().map(<[u8]>::len)) > 255 {
                    return Err(format!("longer than 255 bytes in zone {zone}"));
                }
            }
            Ok(())
        }
    }
}

fn list_names(names: &[Name]) -> String {
    if names.is_empty() {
        return "no zones are served".to_string();
    }
    let list: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    format!("served: {}", list.join(", "))
}

/// A record type mnemonic (case-insensitive) or RFC 3597 `TYPEnnn`.
fn parse_type(s: &str) -> Option<RecordType> {
    let upper = s.to_ascii_uppercase();
    if let Some(digits) = upper.strip_prefix("TYPE")
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return digits.parse::<u16>().ok().map(RecordType::from);
    }
    RecordType::from_str(&upper).ok()
}

/// A network `a.b.c.d/n`, `x::/n`, or a bare address (/32, /128). Host bits
/// must be zero; an IPv4-mapped IPv6 network becomes the IPv4 network.
fn parse_network(s: &str) -> Result<IpNet, String> {
    let net = if let Ok(net) = s.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(format!(
                "network {s:?} has host bits set (did you mean {}?)",
                net.trunc()
            ));
        }
        net
    } else if let Ok(addr) = s.parse::<IpAddr>() {
        IpNet::from(addr)
    } else {
        return Err(format!(
            "invalid network {s:?} (expected an address or address/prefix, like 192.0.2.0/24 or 2001:db8::1)"
        ));
    };
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Some(prefix) = v6.prefix_len().checked_sub(96)
        && let Ok(v4net) = Ipv4Net::new(v4, prefix)
    {
        return Ok(IpNet::V4(v4net));
    }
    Ok(net)
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn toml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const ORG: &str = "_acme.example.org.";
    const NET: &str = "_acme.example.net.";

    const MX1: &str = r#"
key = "mx1"
networks = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]

[[grant]]
name = "_acme-challenge.{machine}"
types = ["TXT"]
max-rrset = 2

[[grant]]
name = "_*._tcp.{machine}"
types = ["tlsa"]

[[grant]]
name = "hosts.{machine}"
subtree = true
types = ["A", "AAAA"]

[[grant]]
name = "*.star.{machine}"
types = ["TXT"]
"#;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn served() -> Vec<Name> {
        vec![n(ORG), n(NET)]
    }

    fn parse(machine: &str, text: &str) -> Result<Machine, Vec<FileError>> {
        Policy::parse_file(Path::new(&format!("acl/{machine}.toml")), text, &served())
    }

    fn machine(machine: &str, text: &str) -> Machine {
        match parse(machine, text) {
            Ok(m) => m,
            Err(errs) => panic!("{}", FileErrors(errs)),
        }
    }

    fn errors(machine: &str, text: &str) -> Vec<FileError> {
        match parse(machine, text) {
            Ok(m) => panic!("expected errors, got {m:?}"),
            Err(errs) => errs,
        }
    }

    /// 1-based line and column of the first occurrence of `needle`.
    fn pos(text: &str, needle: &str) -> (usize, usize) {
        let offset = text.find(needle).expect("needle in text");
        let e = FileError::at_offset(Path::new("x"), text, offset, "");
        (e.line, e.column)
    }

    fn assert_one_error_at(errs: &[FileError], at: (usize, usize), contains: &str) {
        assert_eq!(errs.len(), 1, "{}", FileErrors(errs.to_vec()));
        let e = &errs[0];
        assert_eq!((e.line, e.column), at, "{e}");
        assert!(e.message.contains(contains), "{e}");
    }

    /// Whether `m` may change `rtype` at `owner` in zone ORG.
    fn may(m: &Machine, owner: &str, rtype: RecordType) -> bool {
        m.permits(&n(ORG), &n(owner), rtype).is_some()
    }

    // --- grants: what is allowed --------------------------------------

    #[test]
    fn own_challenge_txt_is_permitted_with_its_limit() {
        let m = machine("mx1", MX1);
        let g = m
            .permits(
                &n(ORG),
                &n("_acme-challenge.mx1._acme.example.org."),
                RecordType::TXT,
            )
            .unwrap();
        assert_eq!(g.max_rrset(), Some(2));
        assert_eq!(g.types(), &[RecordType::TXT]);
        assert_eq!(g.describe(), "_acme-challenge.mx1 TXT(2)");
        // A relative owner (not fully qualified) is the same name.
        assert!(may(
            &m,
            "_acme-challenge.mx1._acme.example.org",
            RecordType::TXT
        ));
    }

    #[test]
    fn case_variants_are_the_same_name() {
        let m = machine("mx1", MX1);
        assert!(may(
            &m,
            "_ACME-Challenge.MX1._acme.example.org.",
            RecordType::TXT
        ));
        assert!(may(
            &m,
            "_acme-challenge.mx1._ACME.Example.ORG.",
            RecordType::TXT
        ));
        assert!(may(&m, "_25._TCP.Mx1._acme.example.org.", RecordType::TLSA));
        let zone_upper = n("_ACME.EXAMPLE.ORG.");
        let owner = n("_acme-challenge.mx1._acme.example.org.");
        assert!(m.permits(&zone_upper, &owner, RecordType::TXT).is_some());
    }

    #[test]
    fn another_machines_names_are_refused() {
        let m = machine("mx1", MX1);
        for owner in [
            "_acme-challenge.mx2._acme.example.org.",
            "_acme-challenge.mx10._acme.example.org.",
            "_acme-challenge.xmx1._acme.example.org.",
            "_acme-challenge._acme.example.org.",
            "_acme-challenge.mx1.mx2._acme.example.org.",
            "_acme-challenge.a.mx1._acme.example.org.",
            "mx1._acme.example.org.",
            "_acme.example.org.",
        ] {
            assert!(!may(&m, owner, RecordType::TXT), "{owner}");
        }
        assert!(!may(
            &m,
            "_25._tcp.mx2._acme.example.org.",
            RecordType::TLSA
        ));
        assert!(!may(&m, "hosts.mx2._acme.example.org.", RecordType::A));
    }

    #[test]
    fn other_types_at_granted_names_are_refused() {
        let m = machine("mx1", MX1);
        let challenge = "_acme-challenge.mx1._acme.example.org.";
        for t in [
            RecordType::A,
            RecordType::TLSA,
            RecordType::CNAME,
            RecordType::AAAA,
        ] {
            assert!(!may(&m, challenge, t), "{t}");
        }
        assert!(!may(&m, "_25._tcp.mx1._acme.example.org.", RecordType::TXT));
        assert!(!may(&m, "hosts.mx1._acme.example.org.", RecordType::TXT));
    }

    #[test]
    fn server_managed_types_are_refused_to_a_machine_everywhere() {
        let m = machine("mx1", MX1);
        for owner in [
            "_acme-challenge.mx1._acme.example.org.",
            "a.hosts.mx1._acme.example.org.",
        ] {
            for t in [
                RecordType::SOA,
                RecordType::NS,
                RecordType::DNSKEY,
                RecordType::RRSIG,
                RecordType::NSEC,
                RecordType::NSEC3,
                RecordType::DS,
                RecordType::CDS,
                RecordType::CDNSKEY,
                RecordType::ANY,
                RecordType::AXFR,
                RecordType::TSIG,
            ] {
                assert!(!may(&m, owner, t), "{owner} {t}");
            }
        }
        assert!(Policy::is_protected_type(RecordType::NS));
        assert!(Policy::is_protected_type(RecordType::Unknown(249))); // TKEY
        assert!(Policy::is_protected_type(RecordType::from(63))); // ZONEMD
        assert!(!Policy::is_protected_type(RecordType::TXT));
        assert!(!Policy::is_protected_type(RecordType::TLSA));
    }

    #[test]
    fn names_outside_the_zone_or_in_a_sibling_zone_are_refused() {
        let m = machine("mx1", MX1);
        // The parent (the real zone) and lookalikes.
        for owner in [
            "_acme-challenge.mx1.example.org.",
            "_acme-challenge.mx1.x_acme.example.org.",
            "_acme-challenge.mx1._acme.example.org.evil.",
            "_acme-challenge.mx1.",
            ".",
        ] {
            assert!(!may(&m, owner, RecordType::TXT), "{owner}");
        }
        // A name of the sibling zone, claimed to be in ORG.
        assert!(!may(
            &m,
            "_acme-challenge.mx1._acme.example.net.",
            RecordType::TXT
        ));
        // In its own zone it is fine: no `zones` means every served zone.
        let owner = n("_acme-challenge.mx1._acme.example.net.");
        assert!(m.permits(&n(NET), &owner, RecordType::TXT).is_some());
    }

    #[test]
    fn a_zone_restricted_machine_is_refused_in_other_zones() {
        let text = format!("zones = [\"_ACME.example.ORG\"]\n{MX1}").replace("key = \"mx1\"\n", "");
        let m = machine("mx1", &text);
        assert_eq!(m.zones.as_deref(), Some(&[n(ORG)][..]));
        assert!(may(
            &m,
            "_acme-challenge.mx1._acme.example.org.",
            RecordType::TXT
        ));
        let owner = n("_acme-challenge.mx1._acme.example.net.");
        assert!(m.permits(&n(NET), &owner, RecordType::TXT).is_none());
        assert_eq!(m.grantable_types_at(&n(NET), &owner), TypesAt::None);
    }

    #[test]
    fn an_escaped_dot_is_one_label_and_never_matches_two() {
        let m = machine("mx1", MX1);
        let owner = n("_acme-challenge\\.mx1._acme.example.org.");
        assert_eq!(owner.iter().len(), 4);
        assert!(m.permits(&n(ORG), &owner, RecordType::TXT).is_none());
        // The same with raw labels, and under a glob / subtree pattern.
        let raw = Name::from_labels(vec![&b"_25._tcp"[..], b"mx1", b"_acme", b"example", b"org"])
            .unwrap();
        assert!(m.permits(&n(ORG), &raw, RecordType::TLSA).is_none());
        let raw = Name::from_labels(vec![&b"hosts.mx1"[..], b"_acme", b"example", b"org"]).unwrap();
        assert!(m.permits(&n(ORG), &raw, RecordType::A).is_none());
        // An owner whose zone part has an escaped dot is not in the zone.
        let owner = n("_acme-challenge.mx1._acme\\.example.org.");
        assert!(m.permits(&n(ORG), &owner, RecordType::TXT).is_none());
        // Nor is such a zone one of a zone-restricted machine's zones.
        let text = format!("zones = [\"{ORG}\"]\n{MX1}");
        let restricted = machine("mx1", &text);
        let zone = n("_acme\\.example.org.");
        assert!(restricted.permits(&zone, &owner, RecordType::TXT).is_none());
    }

    #[test]
    fn wildcard_owners_are_never_granted_to_a_machine() {
        let m = machine("mx1", MX1);
        assert!(!may(&m, "*.mx1._acme.example.org.", RecordType::TXT));
        assert!(!may(&m, "*._tcp.mx1._acme.example.org.", RecordType::TLSA));
        assert!(!may(&m, "*.hosts.mx1._acme.example.org.", RecordType::A));
        assert!(!may(&m, "a.*.hosts.mx1._acme.example.org.", RecordType::A));
        // `*.star.mx1` grants one label; the literal `*` label is not one.
        assert!(may(&m, "x.star.mx1._acme.example.org.", RecordType::TXT));
        assert!(!may(&m, "*.star.mx1._acme.example.org.", RecordType::TXT));
        let owner = n("*.hosts.mx1._acme.example.org.");
        assert_eq!(m.grantable_types_at(&n(ORG), &owner), TypesAt::None);
    }

    #[test]
    fn a_star_label_is_exactly_one_label() {
        let m = machine("mx1", MX1);
        assert!(may(&m, "a.star.mx1._acme.example.org.", RecordType::TXT));
        assert!(may(&m, "_X-1.star.mx1._acme.example.org.", RecordType::TXT));
        assert!(!may(&m, "star.mx1._acme.example.org.", RecordType::TXT));
        assert!(!may(&m, "a.b.star.mx1._acme.example.org.", RecordType::TXT));
        assert!(!may(&m, "a.star.mx2._acme.example.org.", RecordType::TXT));
    }

    #[test]
    fn an_underscore_glob_matches_one_label_starting_with_underscore() {
        let m = machine("mx1", MX1);
        for ok in [
            "_25._tcp.mx1",
            "_443._tcp.mx1",
            "_Submission._TCP.mx1",
            "_._tcp.mx1",
        ] {
            assert!(
                may(&m, &format!("{ok}._acme.example.org."), RecordType::TLSA),
                "{ok}"
            );
        }
        for bad in [
            "x25._tcp.mx1",
            "25._tcp.mx1",
            "_a._25._tcp.mx1",
            "_tcp.mx1",
            "_25._udp.mx1",
            "_25.x._tcp.mx1",
            "_25._tcp.mx2",
            "_25._tcp.x.mx1",
        ] {
            assert!(
                !may(&m, &format!("{bad}._acme.example.org."), RecordType::TLSA),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_subtree_grant_covers_the_name_and_everything_below_only() {
        let m = machine("mx1", MX1);
        for ok in ["hosts.mx1", "a.hosts.mx1", "a.b.HOSTS.mx1"] {
            assert!(
                may(&m, &format!("{ok}._acme.example.org."), RecordType::AAAA),
                "{ok}"
            );
        }
        for bad in ["xhosts.mx1", "hosts.mx2", "mx1", "hosts.x.mx1", "hosts"] {
            assert!(
                !may(&m, &format!("{bad}._acme.example.org."), RecordType::A),
                "{bad}"
            );
        }
        let g = m
            .permits(&n(ORG), &n("a.hosts.mx1._acme.example.org."), RecordType::A)
            .unwrap();
        assert_eq!(g.describe(), "hosts.mx1 (subtree) A AAAA");
        assert!(g.subtree());
    }

    #[test]
    fn absolute_patterns_and_the_apex() {
        let text = r#"
[[grant]]
name = "_acme-challenge.{machine}._acme.example.org."
types = ["TXT"]

[[grant]]
name = "@"
types = ["TXT"]
"#;
        let m = machine("web", text);
        assert!(may(
            &m,
            "_acme-challenge.web._acme.example.org.",
            RecordType::TXT
        ));
        assert!(may(&m, "_acme.example.org.", RecordType::TXT));
        assert!(!may(&m, "x._acme.example.org.", RecordType::TXT));
        // The absolute name is in ORG only: nothing of it applies in NET.
        let owner = n("_acme-challenge.web._acme.example.net.");
        assert!(m.permits(&n(NET), &owner, RecordType::TXT).is_none());
        assert!(m.permits(&n(NET), &n(NET), RecordType::TXT).is_some());
    }

    #[test]
    fn several_matching_grants_report_the_most_permissive() {
        let text = r#"
[[grant]]
name = "a"
types = ["TXT"]
max-rrset = 1

[[grant]]
name = "*"
types = ["TXT"]
max-rrset = 3

[[grant]]
name = "b"
types = ["TXT"]
max-rrset = 2

[[grant]]
name = "b"
types = ["TXT"]
"#;
        let m = machine("web", text);
        let max = |owner: &str| {
            m.permits(&n(ORG), &n(owner), RecordType::TXT)
                .map(Grant::max_rrset)
        };
        assert_eq!(max("a._acme.example.org."), Some(Some(3)));
        assert_eq!(max("b._acme.example.org."), Some(None));
        assert_eq!(max("c._acme.example.org."), Some(Some(3)));
        assert_eq!(max("c.d._acme.example.org."), None);
    }

    #[test]
    fn grantable_types_at_is_the_union_of_matching_grants() {
        let text = r#"
[[grant]]
name = "{machine}"
subtree = true
types = ["A", "txt"]

[[grant]]
name = "www.{machine}"
types = ["TXT", "AAAA", "TYPE65"]
"#;
        let m = machine("web", text);
        let at = |owner: &str| m.grantable_types_at(&n(ORG), &n(owner));
        assert_eq!(
            at("www.web._acme.example.org."),
            TypesAt::Some(vec![
                RecordType::A,
                RecordType::TXT,
                RecordType::AAAA,
                RecordType::HTTPS
            ])
        );
        assert_eq!(
            at("web._acme.example.org."),
            TypesAt::Some(vec![RecordType::A, RecordType::TXT])
        );
        assert_eq!(at("other._acme.example.org."), TypesAt::None);
        assert_eq!(at("web._acme.example.net."), TypesAt::None);
        assert!(at("www.web._acme.example.org.").contains(RecordType::HTTPS));
        assert!(!at("web._acme.example.org.").contains(RecordType::AAAA));
    }

    // --- admin -------------------------------------------------------

    #[test]
    fn an_admin_may_change_anything_but_server_managed_types_in_its_zones() {
        let text = "role = \"admin\"\nzones = [\"_acme.example.org.\"]\n";
        let m = machine("ops", text);
        assert_eq!(m.role, Role::Admin);
        for owner in [
            "_acme.example.org.",
            "x.y._acme.example.org.",
            "*.mx1._acme.example.org.",
        ] {
            for t in [
                RecordType::TXT,
                RecordType::NS,
                RecordType::A,
                RecordType::TLSA,
            ] {
                let g = m.permits(&n(ORG), &n(owner), t);
                assert!(g.is_some_and(Grant::is_admin), "{owner} {t}");
            }
            for t in [
                RecordType::SOA,
                RecordType::DNSKEY,
                RecordType::RRSIG,
                RecordType::NSEC3PARAM,
                RecordType::DS,
                RecordType::ANY,
                RecordType::IXFR,
                RecordType::OPT,
            ] {
                assert!(m.permits(&n(ORG), &n(owner), t).is_none(), "{owner} {t}");
            }
        }
        // Outside its zones, nothing.
        assert!(m.permits(&n(NET), &n(NET), RecordType::TXT).is_none());
        assert!(
            m.permits(&n(ORG), &n("example.org."), RecordType::TXT)
                .is_none()
        );
        let at = m.grantable_types_at(&n(ORG), &n("a._acme.example.org."));
        assert_eq!(at, TypesAt::AllButProtected);
        assert!(at.contains(RecordType::NS) && !at.contains(RecordType::SOA));
        assert_eq!(m.grantable_types_at(&n(NET), &n(NET)), TypesAt::None);
    }

    #[test]
    fn an_admin_grant_adds_its_limit_and_may_name_ns_but_not_soa() {
        let text = "role = \"admin\"\n[[grant]]\nname = \"sub\"\ntypes = [\"NS\"]\nmax-rrset = 4\n";
        let m = machine("ops", text);
        let g = m
            .permits(&n(ORG), &n("sub._acme.example.org."), RecordType::NS)
            .unwrap();
        assert_eq!(g.max_rrset(), Some(4));
        let text = "role = \"admin\"\n[[grant]]\nname = \"sub\"\ntypes = [\"SOA\"]\n";
        let errs = errors("ops", text);
        assert_one_error_at(&errs, pos(text, "\"SOA\""), "SOA cannot be granted");
    }

    // --- networks ----------------------------------------------------

    #[test]
    fn source_networks_v4_v6_mapped_and_bare_addresses() {
        let m = machine("mx1", MX1);
        let ok = |s: &str| m.source_allowed(s.parse().unwrap());
        assert!(ok("192.0.2.1"));
        assert!(ok("192.0.2.255"));
        assert!(!ok("192.0.3.1"));
        assert!(ok("2001:db8::53"));
        assert!(!ok("2001:db9::53"));
        assert!(ok("::ffff:192.0.2.9"));
        assert!(!ok("::ffff:10.0.0.1"));
        // A bare address is /32.
        assert!(ok("198.51.100.7"));
        assert!(!ok("198.51.100.8"));
        assert!(ok("::ffff:198.51.100.7"));
        assert!(!ok("127.0.0.1"));
        assert!(!ok("::1"));
        // No networks: any source.
        let any = machine("web", "[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n");
        assert!(any.networks.is_empty());
        assert!(any.source_allowed("203.0.113.1".parse().unwrap()));
    }

    #[test]
    fn bare_v6_and_mapped_networks_are_normalized() {
        let text = "networks = [\"::1\", \"::ffff:10.1.0.0/112\"]\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
        let m = machine("web", text);
        assert_eq!(
            m.networks,
            vec![
                "::1/128".parse::<IpNet>().unwrap(),
                "10.1.0.0/16".parse().unwrap()
            ]
        );
        assert!(m.source_allowed("::1".parse().unwrap()));
        assert!(!m.source_allowed("::2".parse().unwrap()));
        assert!(m.source_allowed("10.1.2.3".parse().unwrap()));
        assert!(m.source_allowed("::ffff:10.1.2.3".parse().unwrap()));
    }

    // --- keys --------------------------------------------------------

    #[test]
    fn machine_for_key_ignores_case_and_trailing_dot() {
        let files = vec![
            (PathBuf::from("acl/mx1.toml"), MX1.to_string()),
            (
                PathBuf::from("acl/web.toml"),
                "key = \"Web-Key.Example\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n"
                    .to_string(),
            ),
        ];
        let p = Policy::from_texts(&files, &served()).unwrap();
        assert_eq!(p.machines().len(), 2);
        assert_eq!(p.machine_for_key(&n("MX1.")).unwrap().name, "mx1");
        assert_eq!(p.machine_for_key(&n("mx1")).unwrap().name, "mx1");
        assert_eq!(
            p.machine_for_key(&n("web-key.example.")).unwrap().name,
            "web"
        );
        assert!(p.machine_for_key(&n("web")).is_none());
        assert!(p.machine_for_key(&n("mx1.example.")).is_none());
        assert!(p.machine_for_key(&n("mx1\\.example.")).is_none());
    }

    #[test]
    fn key_defaults_to_the_machine_name_and_may_use_the_placeholder() {
        let m = machine("db-2", "[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n");
        assert_eq!(m.key, n("db-2."));
        let m = machine(
            "db-2",
            "key = \"{machine}.keys\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n",
        );
        assert_eq!(m.key, n("db-2.keys."));
    }

    #[test]
    fn two_files_with_the_same_key_is_an_error_naming_both() {
        let second =
            "# same key, other case\nkey = \"MX1.\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
        let files = vec![
            (PathBuf::from("acl/mx1.toml"), MX1.to_string()),
            (PathBuf::from("acl/other.toml"), second.to_string()),
        ];
        let errs = Policy::from_texts(&files, &served()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs}");
        let e = &errs.0[0];
        assert_eq!(e.path, Path::new("acl/other.toml"));
        assert_eq!((e.line, e.column), pos(second, "\"MX1.\""));
        assert!(e.message.contains("acl/mx1.toml"), "{e}");
        // A defaulted key collides too.
        let files = vec![
            (
                PathBuf::from("acl/a.toml"),
                "key = \"b\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n".to_string(),
            ),
            (
                PathBuf::from("acl/b.toml"),
                "[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n".to_string(),
            ),
        ];
        let errs = Policy::from_texts(&files, &served()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs}");
        assert!(
            errs.to_string()
                .starts_with("acl/b.toml:1:1: key b. is already used by acl/a.toml"),
            "{errs}"
        );
    }

    // --- file errors ---------------------------------------------------

    #[test]
    fn an_unknown_field_is_an_error_at_its_key() {
        let text = "key = \"mx1\"\n\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n  max_rrset = 2\n";
        let errs = errors("mx1", text);
        assert_one_error_at(&errs, pos(text, "max_rrset"), "max_rrset");
        let text = "keys = \"mx1\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(&errors("mx1", text), (1, 1), "keys");
    }

    #[test]
    fn a_bad_type_mnemonic_is_an_error_at_that_entry() {
        let text = "[[grant]]\nname = \"x\"\ntypes = [\"TXT\",\n  \"TLSB\"]\n";
        assert_one_error_at(
            &errors("mx1", text),
            pos(text, "\"TLSB\""),
            "unknown record type \"TLSB\"",
        );
    }

    #[test]
    fn a_grant_of_ns_or_dnssec_types_is_an_error_naming_the_type() {
        let text = "[[grant]]\nname = \"x\"\ntypes = [\"TXT\", \"ns\"]\n\n[[grant]]\nname = \"y\"\ntypes = [\"DNSKEY\", \"ANY\"]\n";
        let errs = errors("mx1", text);
        assert_eq!(errs.len(), 3, "{}", FileErrors(errs.clone()));
        assert_eq!((errs[0].line, errs[0].column), pos(text, "\"ns\""));
        assert!(
            errs[0]
                .message
                .contains("record type NS cannot be granted to a machine"),
            "{}",
            errs[0]
        );
        assert_eq!((errs[1].line, errs[1].column), pos(text, "\"DNSKEY\""));
        assert!(errs[1].message.contains("DNSKEY"));
        assert_eq!((errs[2].line, errs[2].column), pos(text, "\"ANY\""));
        let text = "[[grant]]\nname = \"x\"\ntypes = [\"SOA\"]\n";
        assert_one_error_at(&errors("mx1", text), pos(text, "\"SOA\""), "SOA");
    }

    #[test]
    fn a_bad_network_is_an_error_at_that_entry() {
        let text = "networks = [\"192.0.2.0/24\",\n   \"192.0.2.300\"]\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(
            &errors("mx1", text),
            (2, 4),
            "invalid network \"192.0.2.300\"",
        );
        let text = "networks = [\"192.0.2.5/24\"]\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(&errors("mx1", text), (1, 13), "did you mean 192.0.2.0/24");
        let text = "networks = []\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(&errors("mx1", text), (1, 12), "empty networks");
    }

    #[test]
    fn an_unknown_placeholder_is_an_error_at_the_brace() {
        let text = "[[grant]]\nname = \"_acme-challenge.{host}\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(
            &errors("mx1", text),
            pos(text, "{host}"),
            "unknown placeholder {host}",
        );
        let text = "[[grant]]\nname = \"a.{machine\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(&errors("mx1", text), pos(text, "{machine"), "unclosed");
    }

    #[test]
    fn bad_patterns_are_errors_at_the_name() {
        for bad in [
            "a*b.x",
            "*a.x",
            "a**",
            "a..b",
            ".a",
            "a b",
            "x\\\\.y",
            "",
            "caf\u{e9}",
        ] {
            let text = format!("[[grant]]\nname = \"{bad}\"\ntypes = [\"TXT\"]\n");
            let errs = errors("mx1", &text);
            assert_eq!(errs.len(), 1, "{bad}: {}", FileErrors(errs.clone()));
            assert_eq!(errs[0].line, 2, "{bad}: {}", errs[0]);
            assert!(errs[0].message.starts_with("name "), "{}", errs[0]);
        }
    }

    #[test]
    fn an_absolute_name_outside_every_zone_is_an_error() {
        let text = "zones = [\"_acme.example.org.\"]\n[[grant]]\nname = \"_acme-challenge.mx1._acme.example.net.\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(&errors("mx1", text), (3, 8), "outside every zone");
        let text = "[[grant]]\nname = \"_acme-challenge.mx1.example.org.\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(&errors("mx1", text), (2, 8), "outside every zone");
        // A glob where the zone should be does not place it in the zone.
        let text = "[[grant]]\nname = \"x.*.example.org.\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(&errors("mx1", text), (2, 8), "outside every zone");
    }

    #[test]
    fn a_zone_not_served_is_an_error() {
        let text = "zones = [\"_acme.example.org.\", \"example.com.\"]\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(
            &errors("mx1", text),
            pos(text, "\"example.com.\""),
            "not served",
        );
        let text = "zones = []\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
        assert_one_error_at(&errors("mx1", text), (1, 9), "empty zones");
    }

    #[test]
    fn a_machine_without_grants_and_empty_types_are_errors() {
        let errs = errors("mx1", "key = \"mx1\"\n");
        assert_one_error_at(&errs, (1, 1), "no [[grant]]");
        let text = "[[grant]]\nname = \"x\"\ntypes = []\n";
        assert_one_error_at(&errors("mx1", text), (3, 9), "empty types");
        let text = "[[grant]]\nname = \"x\"\n";
        assert_one_error_at(&errors("mx1", text), (1, 1), "types");
        let text = "[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\nmax-rrset = 0\n";
        assert_one_error_at(&errors("mx1", text), (4, 13), "at least 1");
        let text = "role = \"root\"\n";
        assert_one_error_at(&errors("mx1", text), (1, 8), "root");
    }

    #[test]
    fn every_error_in_a_file_is_reported_in_order() {
        let text = "networks = [\"nope\"]\nzones = [\"other.\"]\n[[grant]]\nname = \"{host}\"\ntypes = [\"NS\", \"BOGUS\"]\n";
        let errs = errors("mx1", text);
        let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(
            at,
            vec![(1, 13), (2, 10), (4, 9), (5, 10), (5, 16)],
            "{}",
            FileErrors(errs)
        );
    }

    #[test]
    fn the_file_stem_must_be_one_dns_label() {
        for bad in ["mx.1", "-mx", "mx-", "m x", ""] {
            let path = format!("acl/{bad}.toml");
            let errs = Policy::parse_file(Path::new(&path), MX1, &served()).unwrap_err();
            assert_eq!(errs.len(), 1, "{bad}");
            assert!(errs[0].message.contains("file name"), "{}", errs[0]);
        }
        assert!(Policy::parse_file(Path::new("acl/Mx_1-b.toml"), MX1, &served()).is_ok());
    }

    // --- directories ---------------------------------------------------

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "zonewarden-acl-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_dir_reads_toml_files_in_order_and_ignores_the_rest() {
        let dir = TempDir::new("ok");
        dir.write(
            "web.toml",
            "[[grant]]\nname = \"www.{machine}\"\ntypes = [\"A\"]\n",
        );
        dir.write("mx1.toml", MX1);
        dir.write(".hidden.toml", "garbage = [");
        dir.write("README.md", "not toml");
        dir.write("mx1.toml~", "garbage = [");
        fs::create_dir(dir.0.join("sub.toml")).unwrap();
        let p = Policy::load_dir(&dir.0, &served()).unwrap();
        let names: Vec<&str> = p.machines().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["mx1", "web"]);
        assert_eq!(p.machines()[1].path, dir.0.join("web.toml"));
        assert!(p.machine_for_key(&n("web")).is_some());
    }

    #[test]
    fn load_dir_with_a_broken_file_fails_whole_listing_its_errors() {
        let dir = TempDir::new("broken");
        dir.write("mx1.toml", MX1);
        let bad = "[[grant]]\nname = \"{host}\"\ntypes = [\"TXT\", \"NS\"]\n";
        let bad_path = dir.write("web.toml", bad);
        let errs = Policy::load_dir(&dir.0, &served()).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs}");
        assert!(errs.iter().all(|e| e.path == bad_path), "{errs}");
        let shown = errs.to_string();
        assert!(
            shown.contains(&format!("{}:2:9: unknown placeholder", bad_path.display())),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("{}:3:17: record type NS", bad_path.display())),
            "{shown}"
        );
    }

    #[test]
    fn load_dir_reports_duplicate_keys_across_files() {
        let dir = TempDir::new("dup");
        dir.write(
            "a.toml",
            "key = \"shared\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n",
        );
        let b = dir.write(
            "b.toml",
            "key = \"Shared\"\n[[grant]]\nname = \"y\"\ntypes = [\"TXT\"]\n",
        );
        let errs = Policy::load_dir(&dir.0, &served()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs}");
        assert_eq!(errs.0[0].path, b);
        assert!(errs.0[0].message.contains("a.toml"), "{errs}");
    }

    #[test]
    fn load_dir_and_load_file_report_io_errors_without_position() {
        let dir = TempDir::new("io");
        let missing = dir.0.join("nope");
        let errs = Policy::load_dir(&missing, &served()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(!errs.0[0].has_position());
        assert!(errs.to_string().starts_with(&missing.display().to_string()));
        let errs = Policy::load_file(&dir.0.join("gone.toml"), &served()).unwrap_err();
        assert!(errs[0].message.starts_with("cannot read"), "{}", errs[0]);
        let path = dir.0.join("bin.toml");
        fs::write(&path, b"key = \"\xff\"\n").unwrap();
        let errs = Policy::load_file(&path, &served()).unwrap_err();
        assert!(errs[0].message.contains("UTF-8"), "{}", errs[0]);
        // A file is not a directory.
        assert!(Policy::load_dir(&path, &served()).is_err());
        // An empty directory is an empty policy.
        let empty = TempDir::new("empty");
        assert!(
            Policy::load_dir(&empty.0, &served())
                .unwrap()
                .machines()
                .is_empty()
        );
    }

    // --- skeleton ------------------------------------------------------

    #[test]
    fn the_skeleton_parses_back_and_grants_challenge_and_tlsa() {
        let text = skeleton("mx1", "mx1", &n(ORG), None);
        let dir = TempDir::new("skel");
        let path = dir.write("mx1.toml", &text);
        let m = Policy::load_file(&path, &served()).unwrap();
        assert_eq!(m.key, n("mx1."));
        assert_eq!(m.zones.as_deref(), Some(&[n(ORG)][..]));
        assert!(may(
            &m,
            "_acme-challenge.mx1._acme.example.org.",
            RecordType::TXT
        ));
        assert!(may(&m, "_25._tcp.mx1._acme.example.org.", RecordType::TLSA));
        assert!(!may(&m, "_25._tcp.mx1._acme.example.org.", RecordType::TXT));
        assert!(!may(
            &m,
            "_acme-challenge.mx2._acme.example.org.",
            RecordType::TXT
        ));

        let text = skeleton(
            "mx1",
            "mx1-key.example",
            &n("_acme.example.net"),
            Some("mail.site"),
        );
        let m = parse("mx1", &text).unwrap();
        assert_eq!(m.key, n("mx1-key.example."));
        let owner = n("_acme-challenge.mail.site._acme.example.net.");
        assert!(m.permits(&n(NET), &owner, RecordType::TXT).is_some());
        assert!(
            m.permits(
                &n(NET),
                &n("_443._tcp.mail.site._acme.example.net."),
                RecordType::TLSA
            )
            .is_some()
        );
        assert!(!may(
            &m,
            "_acme-challenge.mx1._acme.example.org.",
            RecordType::TXT
        ));
    }

    #[test]
    fn the_skeleton_quotes_hostile_input() {
        let text = skeleton(
            "mx1\nrole = \"admin\"",
            "k\"ey",
            &n(ORG),
            Some("h\"\nrole=1"),
        );
        // Whatever it is, it is not an admin and it is not accepted.
        let errs = parse("mx1", &text).unwrap_err();
        assert!(!errs.is_empty());
        assert!(!text.contains("\nrole = \"admin\""));
    }

    #[test]
    fn truncated_and_mangled_files_give_errors_not_panics() {
        let full = format!("zones = [\"{ORG}\"]\n{MX1}");
        for (i, _) in full.char_indices() {
            let _ = parse("mx1", &full[..i]);
            for junk in ["{", "}", "*", "\\", "\"", ".", "\u{e9}", "\n[[grant]]\n"] {
                let mangled = format!("{}{junk}{}", &full[..i], &full[i..]);
                if let Ok(m) = parse("mx1", &mangled) {
                    let _ = m.permits(&n(ORG), &n("*.mx1._acme.example.org."), RecordType::TXT);
                    let _ = m.grantable_types_at(&n(ORG), &Name::root());
                }
            }
        }
    }

    // --- small parts -----------------------------------------------------

    #[test]
    fn types_parse_case_insensitively_and_as_typennn() {
        assert_eq!(parse_type("txt"), Some(RecordType::TXT));
        assert_eq!(parse_type("Tlsa"), Some(RecordType::TLSA));
        assert_eq!(parse_type("TYPE52"), Some(RecordType::TLSA));
        assert_eq!(parse_type("type65280"), Some(RecordType::Unknown(65280)));
        assert_eq!(parse_type("TYPE70000"), None);
        assert_eq!(parse_type("TYPE"), None);
        assert_eq!(parse_type(" TXT"), None);
        assert_eq!(parse_type("*"), Some(RecordType::ANY));
    }

    #[test]
    fn placeholder_expansion() {
        assert_eq!(expand("a.{machine}.b", "mx1").unwrap(), "a.mx1.b");
        assert_eq!(expand("{machine}{machine}", "m").unwrap(), "mm");
        assert_eq!(expand("x.{Machine}", "m").unwrap_err().0, 2);
        assert_eq!(expand("a}", "m").unwrap_err().0, 1);
        assert_eq!(expand("{machine}.{", "m").unwrap_err().0, 10);
        assert_eq!(expand("{machine}.{x}", "m").unwrap_err().0, 10);
    }

    #[test]
    fn describe_lists_pattern_flags_and_types() {
        let m = machine("mx1", MX1);
        let d: Vec<String> = m.grants.iter().map(Grant::describe).collect();
        assert_eq!(
            d,
            [
                "_acme-challenge.mx1 TXT(2)",
                "_*._tcp.mx1 TLSA",
                "hosts.mx1 (subtree) A AAAA",
                "*.star.mx1 TXT"
            ]
        );
        assert_eq!(
            ADMIN_GRANT.describe(),
            "admin: any name, any type but SOA/DNSSEC/meta"
        );
    }
}

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
mod tests;

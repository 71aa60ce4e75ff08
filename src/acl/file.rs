//! The ACL file format: one `acl/<machine>.toml` per machine, its serde
//! spec types (kebab-case, unknown fields refused), and their validation
//! into the runtime types of `policy.rs` (`Name`, `IpNet`, record types,
//! name patterns), once, with every error located at path line:column.
//!
//! This file reads one file's text (`skeleton.rs` writes one). Reading directories, the duplicate-key
//! check across files and the TSIG key files are in `load.rs`; the
//! decisions made with the result are in `policy.rs`.

use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::{Name, RecordType};
use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;
use toml::Spanned;

use super::policy::{
    Grant, Machine, PasswordHash, PatLabel, Pattern, Policy, Role, is_protected_type,
    is_server_managed, same_name,
};
use crate::diag::{self, FileError};

// ---------------------------------------------------------------------------
// The spec

/// `role` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RoleSpec {
    #[default]
    Machine,
    Admin,
}

impl From<RoleSpec> for Role {
    fn from(spec: RoleSpec) -> Role {
        match spec {
            RoleSpec::Machine => Role::Machine,
            RoleSpec::Admin => Role::Admin,
        }
    }
}

/// One `acl/<machine>.toml` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AclFile {
    key: Option<Spanned<String>>,
    #[serde(default)]
    role: RoleSpec,
    networks: Option<Spanned<Vec<Spanned<String>>>>,
    zones: Option<Spanned<Vec<Spanned<String>>>>,
    /// An acme-dns account's password, as a bcrypt hash (`docs/acme-dns.md`).
    password_hash: Option<Spanned<String>>,
    #[serde(default)]
    grant: Vec<GrantFile>,
}

/// One `[[grant]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GrantFile {
    name: Spanned<String>,
    #[serde(default)]
    subtree: bool,
    types: Spanned<Vec<Spanned<String>>>,
    max_rrset: Option<Spanned<usize>>,
}

impl Policy {
    /// Validate one ACL file's `text` as if read from `path` (the file stem
    /// is the machine name). For tests and for `check`.
    pub fn parse_file(path: &Path, text: &str, zones: &[Name]) -> Result<Machine, Vec<FileError>> {
        parse_machine(path, text, zones).map(|(machine, _)| machine)
    }
}

// ---------------------------------------------------------------------------
// Validation

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
pub(super) fn parse_machine(
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
    let role = Role::from(file.role);
    let mut grants = Vec::new();
    if role == Role::Machine && file.grant.is_empty() {
        errs.at(
            0,
            "a machine with no [[grant]] may change nothing: add a [[grant]] \
             (name and types), or set role = \"admin\"",
        );
    }
    for grant in &file.grant {
        if let Some(grant) = parse_grant(&mut errs, grant, &name, role, effective_zones) {
            grants.push(grant);
        }
    }

    // password-hash (acme-dns accounts): a bcrypt hash, never a password
    let password_hash = match &file.password_hash {
        None => None,
        Some(h) => match PasswordHash::parse(h.get_ref()) {
            Ok(hash) => Some(hash),
            Err(msg) => {
                errs.at(h.span().start, msg);
                None
            }
        },
    };

    match key {
        Some(key) if errs.list.is_empty() => Ok((
            Machine {
                name,
                key,
                role,
                networks,
                zones,
                grants,
                password_hash,
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
pub(super) fn expand(s: &str, machine: &str) -> Result<String, (usize, String)> {
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
pub(super) fn parse_type(s: &str) -> Option<RecordType> {
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

/// The wire length of a name whose labels have these lengths (root included).
fn wire_len(labels: impl Iterator<Item = usize>) -> usize {
    labels.map(|l| l + 1).sum::<usize>() + 1
}

//! dns-persist-01 record values (draft-ietf-acme-dns-persist-00, §3 "The
//! Validation Record"): parsing, checking and making the TXT value at
//! `_validation-persist.<name>`. Pure: no I/O, time passed in.
//!
//! The value is a CAA issue-value (RFC 8659 §4.2):
//!
//! ```text
//! issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]
//! issuer-domain-name = label *("." label)
//! label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
//! parameters = (parameter *WSP ";" *WSP parameters) / parameter
//! parameter = tag *WSP "=" *WSP value
//! tag = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
//! value = *(%x21-3A / %x3C-7E)
//! ```
//!
//! with, from the draft: the issuer domain name is required (the CA picks
//! its record by it); `accounturi` is required (RFC 8657 §3: the account's
//! URI); `policy` is optional, its tag and value case-insensitive, and any
//! value but `wildcard` means "no policy"; `persistUntil` is optional, a
//! base-10 Unix time after which a CA must not use the record; a tag the
//! draft does not define is ignored (forward compatibility), never an
//! error. A TXT RR of several character-strings is one value, concatenated
//! (draft §8, long records).
//!
//! Decisions beyond the draft: tags are compared case-insensitively (as
//! RFC 8659 compares property tags); a known tag given twice is refused as
//! ambiguous (which would a CA take?); the `accounturi` must be an absolute
//! `https` URI with a host, as every ACME account URL is (RFC 8555 §6.1).

use std::fmt;

/// The record's label (draft §3).
pub const LABEL: &str = "_validation-persist";

/// A valid dns-persist-01 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistValue {
    /// The CA's issuer domain name, lowercased.
    pub issuer: String,
    /// The ACME account URI, as written.
    pub account_uri: String,
    /// `policy=wildcard`: the name, its subdomains and wildcards.
    pub wildcard: bool,
    /// `persistUntil`, Unix seconds.
    pub persist_until: Option<u64>,
}

/// What is wrong with a value, one kind per check (the refusal's short
/// text; [`Invalid`] carries the details).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// Not the issue-value syntax (RFC 8659 §4.2).
    Malformed,
    /// No issuer domain name before the parameters.
    NoIssuer,
    /// No `accounturi` parameter.
    NoAccountUri,
    /// The `accounturi` is not an absolute https URI.
    BadAccountUri,
    /// A parameter the draft defines, given twice.
    Duplicate,
    /// `persistUntil` is not a base-10 integer (Unix seconds).
    BadPersistUntil,
    /// `persistUntil` is not in the future.
    Expired,
}

impl Problem {
    /// A short text naming the problem (an EDE EXTRA-TEXT, RFC 8914).
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Malformed => "dns-persist-01 value malformed",
            Problem::NoIssuer => "dns-persist-01 value has no issuer domain name",
            Problem::NoAccountUri => "dns-persist-01 value has no accounturi",
            Problem::BadAccountUri => "dns-persist-01 accounturi is not an absolute https URI",
            Problem::Duplicate => "dns-persist-01 parameter given twice",
            Problem::BadPersistUntil => "dns-persist-01 persistUntil is not Unix seconds",
            Problem::Expired => "dns-persist-01 persistUntil is in the past",
        }
    }
}

/// A value that is not a valid dns-persist-01 record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub problem: Problem,
    /// Where or which (never the whole value: it may be long).
    pub detail: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.problem.as_str(), self.detail)
    }
}

impl std::error::Error for Invalid {}

fn invalid(problem: Problem, detail: impl Into<String>) -> Invalid {
    Invalid {
        problem,
        detail: detail.into(),
    }
}

/// Is `label` (one DNS label, as bytes) the dns-persist-01 label?
pub fn is_persist_label(label: &[u8]) -> bool {
    label.eq_ignore_ascii_case(LABEL.as_bytes())
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 8659's `label` / `tag`: (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)).
fn is_ldh(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn is_value_char(b: u8) -> bool {
    (0x21..=0x3a).contains(&b) || (0x3c..=0x7e).contains(&b)
}

/// The TXT character-strings of one RR, concatenated.
pub fn join(strings: &[impl AsRef<[u8]>]) -> Vec<u8> {
    strings.iter().flat_map(|s| s.as_ref().to_vec()).collect()
}

/// Parse a value (the TXT RR's strings concatenated). Checks the syntax
/// and the parameters, not time: see [`check`].
pub fn parse(value: &[u8]) -> Result<PersistValue, Invalid> {
    let text = std::str::from_utf8(value)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| invalid(Problem::Malformed, "not ASCII"))?;
    let (head, params) = match text.split_once(';') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    };
    let issuer = head.trim_matches(|c: char| c == ' ' || c == '\t');
    if issuer.is_empty() {
        return Err(invalid(Problem::NoIssuer, "nothing before the first ';'"));
    }
    if issuer.len() > 253 || !issuer.split('.').all(is_ldh) {
        return Err(invalid(
            Problem::Malformed,
            "the issuer is not a domain name (letters, digits, '-' and '.'; no trailing dot)",
        ));
    }
    let mut out = PersistValue {
        issuer: issuer.to_ascii_lowercase(),
        account_uri: String::new(),
        wildcard: false,
        persist_until: None,
    };
    let mut seen = (false, false, false);
    let Some(params) = params else {
        return Err(invalid(Problem::NoAccountUri, "no parameters"));
    };
    // `[parameters *WSP]` after "; *WSP": empty, or parameters separated
    // by ';' (each trimmed of WSP). An empty parameter between two ';' is
    // not in the grammar.
    let trimmed = params.trim_matches(|c: char| c == ' ' || c == '\t');
    if !trimmed.is_empty() {
        for (i, p) in trimmed.split(';').enumerate() {
            let p = p.trim_matches(|c: char| c == ' ' || c == '\t');
            let Some((tag, val)) = p.split_once('=') else {
                return Err(invalid(
                    Problem::Malformed,
                    format!("parameter {} is not tag=value", i + 1),
                ));
            };
            let (tag, val) = (
                tag.trim_end_matches(is_wsp_char),
                val.trim_start_matches(is_wsp_char),
            );
            if !is_ldh(tag) {
                return Err(invalid(
                    Problem::Malformed,
                    format!(
                        "parameter {}: tag {tag:?} is not letters, digits and '-'",
                        i + 1
                    ),
                ));
            }
            if !val.bytes().all(is_value_char) {
                return Err(invalid(
                    Problem::Malformed,
                    format!("parameter {tag}: the value holds a space or a control character"),
                ));
            }
            let dup = |flag: &mut bool| {
                if std::mem::replace(flag, true) {
                    Err(invalid(Problem::Duplicate, format!("{tag} given twice")))
                } else {
                    Ok(())
                }
            };
            if tag.eq_ignore_ascii_case("accounturi") {
                dup(&mut seen.0)?;
                out.account_uri = val.to_string();
            } else if tag.eq_ignore_ascii_case("policy") {
                dup(&mut seen.1)?;
                out.wildcard = val.eq_ignore_ascii_case("wildcard");
            } else if tag.eq_ignore_ascii_case("persistUntil") {
                dup(&mut seen.2)?;
                if val.is_empty() || !val.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(
                        Problem::BadPersistUntil,
                        format!("{val:?} is not a base-10 integer"),
                    ));
                }
                let until = val.parse::<u64>().map_err(|_| {
                    invalid(Problem::BadPersistUntil, format!("{val} is out of range"))
                })?;
                out.persist_until = Some(until);
            }
            // Any other tag: ignored (draft §3, forward compatibility).
        }
    }
    if !seen.0 {
        return Err(invalid(
            Problem::NoAccountUri,
            "the accounturi parameter is required",
        ));
    }
    if !is_https_uri(&out.account_uri) {
        return Err(invalid(
            Problem::BadAccountUri,
            format!("{:?} (want https://host/...)", shorten(&out.account_uri)),
        ));
    }
    Ok(out)
}

fn is_wsp_char(c: char) -> bool {
    c.is_ascii() && is_wsp(c as u8)
}

/// At most 64 characters of `s`, for messages.
fn shorten(s: &str) -> String {
    if s.len() <= 64 {
        s.to_string()
    } else {
        format!("{}...", &s[..64])
    }
}

/// `https://` (scheme case-insensitive), then a non-empty host, an
/// optional numeric port (RFC 3986 §3.2).
fn is_https_uri(uri: &str) -> bool {
    let Some(scheme) = uri.get(..8) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("https://") {
        return false;
    }
    let authority = uri[8..].split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':').or(rest.is_empty().then_some(""))),
            None => return false,
        }
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, Some("")),
        }
    };
    let Some(port) = port else {
        return false;
    };
    !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
}

/// [`parse`], and a `persistUntil` that is not after `now` (Unix seconds)
/// refused.
pub fn check(value: &[u8], now: u64) -> Result<PersistValue, Invalid> {
    let v = parse(value)?;
    match v.persist_until {
        Some(until) if until <= now => Err(invalid(
            Problem::Expired,
            format!("persistUntil={until} is {} seconds ago", now - until),
        )),
        _ => Ok(v),
    }
}

impl PersistValue {
    /// Seconds until `persistUntil` at `now` (negative once past); None
    /// when the record has none.
    pub fn seconds_left(&self, now: u64) -> Option<i64> {
        self.persist_until
            .map(|u| (u as i128 - now as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
}

impl fmt::Display for PersistValue {
    /// The value as the draft writes it: `issuer; accounturi=URI[;
    /// policy=wildcard][; persistUntil=N]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; accounturi={}", self.issuer, self.account_uri)?;
        if self.wildcard {
            write!(f, "; policy=wildcard")?;
        }
        if let Some(u) = self.persist_until {
            write!(f, "; persistUntil={u}")?;
        }
        Ok(())
    }
}

impl PersistValue {
    /// A value for `issuer` and `account_uri`, checked as [`parse`] would.
    pub fn new(
        issuer: &str,
        account_uri: &str,
        wildcard: bool,
        persist_until: Option<u64>,
    ) -> Result<Self, Invalid> {
        let v = Self {
            issuer: issuer.trim_end_matches('.').to_ascii_lowercase(),
            account_uri: account_uri.to_string(),
            wildcard,
            persist_until,
        };
        // What we print must parse back to itself.
        let back = parse(v.to_string().as_bytes())?;
        if back != v {
            return Err(invalid(Problem::Malformed, "the parts do not round-trip"));
        }
        Ok(v)
    }
}

/// One TXT character-string is at most 255 octets (RFC 1035 §3.3): a
/// longer value is cut into several strings, which CAs concatenate (draft
/// §8).
pub fn character_strings(value: &str) -> Vec<String> {
    value
        .as_bytes()
        .chunks(255)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

#[cfg(test)]
mod tests;

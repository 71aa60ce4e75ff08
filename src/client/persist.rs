//! `zonewarden persist`: the dns-persist-01 TXT value for a CA and an
//! ACME account (draft-ietf-acme-dns-persist-00 §3), offline; with a host
//! and a zone, the TXT line for the delegated zone and the CNAME the real
//! zone needs. The value is made and checked by `persist` (the parser the
//! server validates UPDATEs with), so what this prints is accepted.

use std::fmt::Write as _;

use hickory_proto::rr::Name;

use crate::persist::{self, PersistValue};

/// What `zonewarden persist` was asked for.
#[derive(Debug, Clone)]
pub struct PersistArgs<'a> {
    pub issuer: &'a str,
    pub account: &'a str,
    pub wildcard: bool,
    /// RFC 3339 (`2027-01-01T00:00:00Z`, or a bare date: midnight UTC) or
    /// Unix seconds.
    pub until: Option<&'a str>,
    /// The host part of the names (`www` for `www.example.org`).
    pub host: Option<&'a str>,
    /// The delegated zone (`_acme.example.org`).
    pub zone: Option<&'a str>,
    pub ttl: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("--until {0:?}: {1}")]
    Until(String, String),
    #[error("{0}")]
    Value(#[from] persist::Invalid),
    #[error("{0}")]
    Usage(String),
}

/// The output of `zonewarden persist` at `now` (Unix seconds).
pub fn persist_record(a: &PersistArgs<'_>, now: u64) -> Result<String, PersistError> {
    let until = match a.until {
        None => None,
        Some(s) => {
            let t = parse_date(s).map_err(|e| PersistError::Until(s.into(), e))?;
            if t <= now {
                return Err(PersistError::Until(
                    s.into(),
                    format!("{t} is not in the future (now {now}): the server would refuse it"),
                ));
            }
            Some(t)
        }
    };
    let value = PersistValue::new(a.issuer, a.account, a.wildcard, until)?.to_string();
    let (host, zone) = match (a.host, a.zone) {
        (None, None) => return Ok(format!("{value}\n")),
        (Some(h), Some(z)) => (h, z),
        _ => {
            return Err(PersistError::Usage("--host and --zone go together".into()));
        }
    };
    let zone = crate::zone::absolute_name(zone)
        .map_err(|e| PersistError::Usage(format!("--zone {zone:?}: {e}")))?;
    let host = host.trim_end_matches('.');
    let owner = Name::from_ascii(format!("{}.{host}.{zone}", persist::LABEL))
        .map_err(|e| PersistError::Usage(format!("--host {host:?}: {e}")))?;
    let real = Name::from_ascii(format!("{}.{host}.{}", persist::LABEL, zone.base_name()))
        .map_err(|e| PersistError::Usage(format!("--host {host:?}: {e}")))?;
    let strings: Vec<String> = persist::character_strings(&value)
        .iter()
        .map(|s| quote(s))
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "{owner} {} IN TXT {}", a.ttl, strings.join(" "));
    let _ = writeln!(out, "; in the real zone {} (once):", zone.base_name());
    let _ = writeln!(out, "{real} CNAME {owner}");
    Ok(out)
}

/// A TXT character-string in zone-file syntax (RFC 1035 §5.1).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// Unix seconds from `s`: decimal seconds, an RFC 3339 date-time
/// (`2027-01-01T00:00:00Z`, `2027-01-01T01:00:00+01:00`, fractions
/// dropped) or a bare RFC 3339 full-date (midnight UTC).
pub fn parse_date(s: &str) -> Result<u64, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map_err(|_| "too large for Unix seconds".into());
    }
    let bad = || "not Unix seconds or an RFC 3339 date (2027-01-01T00:00:00Z)".to_string();
    let num = |t: &str| -> Result<i64, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<i64>().map_err(|_| bad())
    };
    let (date, rest) = match s.split_once(['T', 't', ' ']) {
        Some((d, r)) => (d, Some(r)),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, dd] = d.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || dd.len() != 2 {
        return Err(bad());
    }
    let month = time::Month::try_from(num(m)? as u8).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(num(y)? as i32, month, num(dd)? as u8)
        .map_err(|e| format!("{e}"))?;
    let (secs_of_day, offset) = match rest {
        None => (0, 0),
        Some(r) => {
            let (clock, offset) = if let Some(c) = r.strip_suffix(['Z', 'z']) {
                (c, 0)
            } else {
                let at = r.rfind(['+', '-']).ok_or_else(bad)?;
                let (c, o) = r.split_at(at);
                let sign = if o.starts_with('-') { -1 } else { 1 };
                let (oh, om) = o[1..].split_once(':').ok_or_else(bad)?;
                if oh.len() != 2 || om.len() != 2 {
                    return Err(bad());
                }
                let (oh, om) = (num(oh)?, num(om)?);
                if oh > 23 || om > 59 {
                    return Err(bad());
                }
                (c, sign * (oh * 3600 + om * 60))
            };
            let clock = clock.split_once('.').map_or(clock, |(c, frac)| {
                if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) {
                    c
                } else {
                    ""
                }
            });
            let hms: Vec<&str> = clock.split(':').collect();
            let [h, mi, se] = hms.as_slice() else {
                return Err(bad());
            };
            if h.len() != 2 || mi.len() != 2 || se.len() != 2 {
                return Err(bad());
            }
            let (h, mi, se) = (num(h)?, num(mi)?, num(se)?);
            // RFC 3339 allows second 60 (a leap second); Unix time does not count it.
            if h > 23 || mi > 59 || se > 60 {
                return Err(bad());
            }
            (h * 3600 + mi * 60 + se.min(59), offset)
        }
    };
    let midnight = date.midnight().assume_utc().unix_timestamp();
    let t = midnight + secs_of_day - offset;
    u64::try_from(t).map_err(|_| "before 1970".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_unix_seconds_or_rfc_3339() {
        assert_eq!(parse_date("1767225600"), Ok(1_767_225_600));
        assert_eq!(parse_date("2026-01-01T00:00:00Z"), Ok(1_767_225_600));
        assert_eq!(parse_date("2026-01-01t00:00:00z"), Ok(1_767_225_600));
        assert_eq!(parse_date("2026-01-01T01:30:00+01:30"), Ok(1_767_225_600));
        assert_eq!(parse_date("2025-12-31T19:00:00-05:00"), Ok(1_767_225_600));
        assert_eq!(parse_date("2026-01-01T00:00:00.999Z"), Ok(1_767_225_600));
        assert_eq!(parse_date("2026-01-01"), Ok(1_767_225_600));
        assert_eq!(parse_date("2027-01-01T00:00:00Z"), Ok(1_798_761_600));
        for bad in [
            "",
            "tomorrow",
            "2026-13-01",
            "2026-02-30",
            "2026-1-1",
            "2026-01-01T00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00.5xZ",
            "1969-12-31T23:59:59Z",
            "-5",
            "99999999999999999999999",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}

//! Zone files: `zones/*.toml`, one delegated zone each, written by admins.
//!
//! A zone file holds what does not change at run time: the origin, SOA
//! timers, NS names and their glue, TTL bounds, limits for updates, and any
//! static records. Everything clients add by UPDATE lives in the database
//! (`store`). Records defined here are owned by the file: UPDATE cannot change
//! them, and an edited file replaces them at the next start.
//!
//! Wildcard owners (`*.x`) are rejected: every name in this zone belongs to
//! one machine, and a wildcard would answer for names nobody owns. So are
//! DNSSEC records (DNSKEY, RRSIG, NSEC, ...): the signer makes those. The
//! `dnssec` key is `true`/`false` or a `[dnssec]` table (see `dnssec`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use std::path::{Path, PathBuf};

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde::Deserialize;

use crate::diag::{self, FileError, FileErrors};

mod dnssec;
pub use dnssec::{Denial, DnssecSettings, KeyAlgorithm, Settings};
use dnssec::{DnssecFile, dnssec_settings};

/// Types the server makes and UPDATE never touches (RFC 4034, RFC 7344).
pub fn is_dnssec_type(t: RecordType) -> bool {
    matches!(
        t,
        RecordType::DNSKEY
            | RecordType::RRSIG
            | RecordType::NSEC
            | RecordType::NSEC3
            | RecordType::NSEC3PARAM
            | RecordType::CDS
            | RecordType::CDNSKEY
    )
}

/// The most RDATA one record holds: RDLENGTH is 16 bits (RFC 1035 §3.2.1).
pub const MAX_RDATA: usize = 65_535;

/// The RDATA's length on the wire (uncompressed), None if it cannot be
/// encoded.
fn wire_len(data: &RData) -> Option<usize> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
    let mut buf = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut buf);
        let mut enc = enc.with_name_encoding(NameEncoding::Uncompressed);
        data.emit(&mut enc).ok()?;
    }
    Some(buf.len())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ZoneFile {
    origin: toml::Spanned<String>,
    /// SOA RNAME, as a name (`hostmaster.example.org.`) or an address (`hostmaster@example.org`).
    contact: toml::Spanned<String>,
    /// NS names; the first is the SOA MNAME unless `primary` is set.
    nameservers: Vec<toml::Spanned<String>>,
    primary: Option<toml::Spanned<String>>,
    #[serde(default)]
    soa: SoaFile,
    #[serde(default)]
    ttl: TtlFile,
    #[serde(default)]
    limits: LimitsFile,
    /// Addresses for in-zone NS names.
    #[serde(default)]
    glue: BTreeMap<String, Vec<toml::Spanned<String>>>,
    #[serde(default, rename = "record")]
    records: Vec<RecordFile>,
    #[serde(default)]
    transfer: TransferFile,
    #[serde(default, rename = "secondary")]
    secondaries: Vec<SecondaryFile>,
    dnssec: Option<toml::Spanned<DnssecFile>>,
    #[serde(default)]
    persist: PersistFile,
}

/// `[persist]`: dns-persist-01 records (`docs/persist.md`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PersistFile {
    validate: Option<bool>,
}

/// What the zone does with dns-persist-01 records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistSettings {
    /// An UPDATE adding a TXT at a `_validation-persist` name is refused
    /// unless its value is a valid dns-persist-01 record whose
    /// persistUntil, if any, is in the future. Default true: the name has
    /// no other use, and a CA rejects a bad value only at issuance, when
    /// nobody is watching (`docs/persist.md`).
    pub validate: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TransferFile {
    /// TSIG keys allowed to transfer (besides the secondaries' keys).
    #[serde(default)]
    keys: Vec<toml::Spanned<String>>,
    /// Source networks allowed to transfer without a key.
    #[serde(default)]
    networks: Vec<toml::Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SecondaryFile {
    /// Where NOTIFY goes and where propagation is checked (ADDR:PORT, port 53 if left out).
    address: toml::Spanned<String>,
    /// TSIG key that signs NOTIFY; it may also transfer the zone.
    key: Option<toml::Spanned<String>>,
    /// A label for logs and status (e.g. its NS name).
    name: Option<String>,
    /// "paced" (the default) or "every-change".
    notify: Option<toml::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SoaFile {
    ttl: Option<u32>,
    refresh: Option<u32>,
    retry: Option<u32>,
    expire: Option<u32>,
    minimum: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TtlFile {
    default: Option<u32>,
    challenge: Option<u32>,
    tlsa: Option<u32>,
    min: Option<u32>,
    max: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LimitsFile {
    records_per_name: Option<usize>,
    records_per_zone: Option<toml::Spanned<usize>>,
    rdata_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RecordFile {
    name: toml::Spanned<String>,
    #[serde(rename = "type")]
    rtype: toml::Spanned<String>,
    ttl: Option<u32>,
    data: toml::Spanned<String>,
}

/// SOA fields other than the serial, which the database owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaParams {
    pub mname: Name,
    pub rname: Name,
    pub ttl: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// The negative-caching TTL (RFC 2308 §4).
    pub minimum: u32,
}

impl SoaParams {
    pub fn record(&self, origin: &Name, serial: u32) -> Record {
        Record::from_rdata(
            origin.clone(),
            self.ttl,
            RData::SOA(SOA::new(
                self.mname.clone(),
                self.rname.clone(),
                serial,
                self.refresh as i32,
                self.retry as i32,
                self.expire as i32,
                self.minimum,
            )),
        )
    }
}

/// TTLs: bounds that every updated record is clamped to, and the values our
/// own tools (hooks, `dane publish`) use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlPolicy {
    pub default: u32,
    pub challenge: u32,
    pub tlsa: u32,
    pub min: u32,
    pub max: u32,
}

impl TtlPolicy {
    pub fn clamp(&self, ttl: u32) -> u32 {
        ttl.clamp(self.min, self.max)
    }
}

/// Limits on what updates may create; exceeding one answers REFUSED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub records_per_name: usize,
    pub records_per_zone: usize,
    pub rdata_size: usize,
}

/// A nameserver that transfers the zone from us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secondary {
    pub address: SocketAddr,
    pub key: Option<Name>,
    pub label: String,
    pub notify: NotifyPacing,
}

/// When a secondary is told of newer serials while it transfers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NotifyPacing {
    /// One NOTIFY at a time: the next once it serves the last one notified
    /// (what NSD 4.6 needs: it turns several IXFRs in one reload into a
    /// full AXFR).
    #[default]
    Paced,
    /// A NOTIFY for every newer serial as soon as the last was
    /// acknowledged, also while it transfers (what Knot 3.2 needs under a
    /// steady stream of changes: a NOTIFY that lands in the second after a
    /// transfer ended waits up to a second there).
    EveryChange,
}

/// Who may transfer the zone (AXFR/IXFR): a request signed with one of
/// `keys`, or one from `networks`. Nobody by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferAcl {
    pub keys: Vec<Name>,
    pub networks: Vec<IpNet>,
}

impl TransferAcl {
    pub fn allows(&self, key: Option<&Name>, source: IpAddr) -> bool {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
            v4 => v4,
        };
        key.is_some_and(|k| self.keys.iter().any(|a| a == k))
            || self.networks.iter().any(|n| n.contains(&source))
    }
}

/// A validated zone file.
#[derive(Debug, Clone)]
pub struct ZoneSpec {
    pub origin: Name,
    pub path: PathBuf,
    pub soa: SoaParams,
    pub nameservers: Vec<Name>,
    pub ttl: TtlPolicy,
    pub limits: Limits,
    /// NS, glue and `[[record]]` entries.
    pub records: Vec<Record>,
    pub transfer: TransferAcl,
    pub secondaries: Vec<Secondary>,
    /// Signing settings; None when `dnssec = false`.
    pub dnssec: Option<DnssecSettings>,
    /// When DNSSEC is off: the `[dnssec]` table's other settings (the
    /// defaults for `dnssec = false`), for turning off a zone that is
    /// still signed (`dnssec::roll`). None when DNSSEC is on.
    pub dnssec_off: Option<DnssecSettings>,
    /// `[persist]`.
    pub persist: PersistSettings,
}

/// Load every `*.toml` in `dir`. All or nothing: every error of every file is returned.
pub fn load_dir(dir: &Path) -> Result<Vec<ZoneSpec>, FileErrors> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        FileErrors(vec![FileError::whole_file(
            dir,
            format!("cannot read zones directory: {e}"),
        )])
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "toml")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    let mut zones: Vec<ZoneSpec> = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match load_file(&path) {
            Ok(z) => {
                if let Some(other) = zones.iter().find(|o| o.origin == z.origin) {
                    errors.push(FileError::whole_file(
                        &path,
                        format!(
                            "zone {} is already defined in {}",
                            z.origin,
                            other.path.display()
                        ),
                    ));
                } else {
                    zones.push(z);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if zones.is_empty() && errors.is_empty() {
        errors.push(FileError::whole_file(dir, "no zone files (*.toml) found"));
    }
    if errors.is_empty() {
        Ok(zones)
    } else {
        Err(FileErrors(errors))
    }
}

/// Parse a name relative to `origin` unless it ends in a dot; must be at or below origin.
fn zone_name(
    path: &Path,
    text: &str,
    s: &toml::Spanned<String>,
    origin: Option<&Name>,
) -> Result<Name, FileError> {
    let at = |msg: String| FileError::at_offset(path, text, s.span().start, msg);
    let raw = s.get_ref().trim();
    let name = if raw == "@" {
        origin
            .cloned()
            .ok_or_else(|| at("@ needs an origin".into()))?
    } else {
        Name::parse(raw, origin).map_err(|e| at(format!("bad name {raw:?}: {e}")))?
    };
    if !name.is_fqdn() {
        return Err(at(format!("name {raw:?} must end in a dot")));
    }
    Ok(name)
}

pub fn load_file(path: &Path) -> Result<ZoneSpec, FileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| FileError::whole_file(path, format!("cannot read: {e}")))?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<ZoneSpec, FileError> {
    let f: ZoneFile = diag::parse_toml(path, text)?;
    let at = |span: std::ops::Range<usize>, msg: String| {
        FileError::at_offset(path, text, span.start, msg)
    };

    let origin = zone_name(path, text, &f.origin, None)?.to_lowercase();
    if origin.is_root() {
        return Err(at(f.origin.span(), "the root zone cannot be served".into()));
    }
    let rname = {
        let raw = f.contact.get_ref().trim();
        let as_name = match raw.split_once('@') {
            Some((local, domain)) => format!("{}.{}", local.replace('.', "\\."), domain),
            None => raw.to_string(),
        };
        let as_name = if as_name.ends_with('.') {
            as_name
        } else {
            format!("{as_name}.")
        };
        Name::from_ascii(&as_name)
            .map_err(|e| at(f.contact.span(), format!("bad contact {raw:?}: {e}")))?
    };
    if f.nameservers.is_empty() {
        return Err(FileError::whole_file(
            path,
            "nameservers: at least one NS name",
        ));
    }
    let mut nameservers = Vec::new();
    for ns in &f.nameservers {
        nameservers.push(zone_name(path, text, ns, Some(&origin))?);
    }
    let mname = match &f.primary {
        Some(p) => zone_name(path, text, p, Some(&origin))?,
        None => nameservers[0].clone(),
    };

    let soa = SoaParams {
        mname,
        rname,
        ttl: f.soa.ttl.unwrap_or(60),
        refresh: f.soa.refresh.unwrap_or(300),
        retry: f.soa.retry.unwrap_or(60),
        expire: f.soa.expire.unwrap_or(1_209_600),
        minimum: f.soa.minimum.unwrap_or(1),
    };
    let ttl = TtlPolicy {
        default: f.ttl.default.unwrap_or(60),
        challenge: f.ttl.challenge.unwrap_or(60),
        tlsa: f.ttl.tlsa.unwrap_or(300),
        min: f.ttl.min.unwrap_or(1),
        max: f.ttl.max.unwrap_or(3600),
    };
    if ttl.min > ttl.max {
        return Err(FileError::whole_file(path, "[ttl] min is greater than max"));
    }
    let limits = Limits {
        records_per_name: f.limits.records_per_name.unwrap_or(32),
        records_per_zone: f
            .limits
            .records_per_zone
            .as_ref()
            .map_or(20_000, |n| *n.get_ref()),
        rdata_size: f.limits.rdata_size.unwrap_or(4096),
    };

    let mut records = Vec::new();
    for ns in &nameservers {
        records.push(Record::from_rdata(
            origin.clone(),
            soa.ttl,
            RData::NS(NS(ns.clone())),
        ));
    }
    for (host, addrs) in &f.glue {
        let host_span = addrs.first().map(|a| a.span()).unwrap_or(0..0);
        let name = Name::parse(host, Some(&origin))
            .map_err(|e| at(host_span.clone(), format!("bad glue name {host:?}: {e}")))?;
        if !origin.zone_of(&name) {
            return Err(at(
                host_span,
                format!("glue for {name} outside the zone {origin}"),
            ));
        }
        for a in addrs {
            let ip: IpAddr = a
                .get_ref()
                .parse()
                .map_err(|_| at(a.span(), format!("bad address {:?}", a.get_ref())))?;
            let rdata = match ip {
                IpAddr::V4(v4) => RData::A(A(v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
            };
            records.push(Record::from_rdata(name.clone(), soa.ttl, rdata));
        }
    }
    for r in &f.records {
        let name = zone_name(path, text, &r.name, Some(&origin))?;
        if !origin.zone_of(&name) {
            return Err(at(
                r.name.span(),
                format!("{name} is outside the zone {origin}"),
            ));
        }
        if name.is_wildcard() {
            return Err(at(
                r.name.span(),
                "wildcard owner names are not supported".into(),
            ));
        }
        let rtype: RecordType = r
            .rtype
            .get_ref()
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| {
                at(
                    r.rtype.span(),
                    format!("unknown type {:?}", r.rtype.get_ref()),
                )
            })?;
        if is_dnssec_type(rtype) {
            return Err(at(
                r.rtype.span(),
                format!("{rtype} records are made by the signer, not written here"),
            ));
        }
        if matches!(
            rtype,
            RecordType::SOA | RecordType::NS if name == origin
        ) {
            return Err(at(
                r.rtype.span(),
                "the apex SOA and NS come from contact/nameservers".into(),
            ));
        }
        let rdata = RData::try_from_str(rtype, r.data.get_ref()).map_err(|e| {
            at(
                r.data.span(),
                format!("bad {rtype} data {:?}: {e}", r.data.get_ref()),
            )
        })?;
        // RFC 1035 §3.2.1: RDLENGTH is 16 bits. Longer RDATA parses (a TXT
        // of many strings) but cannot be signed, sent or transferred.
        match wire_len(&rdata) {
            Some(n) if n <= MAX_RDATA => {}
            size => {
                return Err(at(
                    r.data.span(),
                    format!(
                        "{rtype} data of {}; a record's RDATA holds at most {MAX_RDATA} octets (RFC 1035 §3.2.1), so the server could neither sign nor send it",
                        size.map_or_else(
                            || format!("more than {MAX_RDATA} octets"),
                            |n| format!("{n} octets")
                        )
                    ),
                ));
            }
        }
        records.push(Record::from_rdata(
            name,
            r.ttl.unwrap_or(ttl.default),
            rdata,
        ));
    }
    // Static records count against records-per-zone like any other: a
    // file that fills the limit leaves no room, and every UPDATE that adds
    // a record would be refused.
    let statics = records
        .iter()
        .map(|r| (r.name.to_lowercase(), r.record_type(), &r.data))
        .collect::<std::collections::HashSet<_>>()
        .len();
    if statics >= limits.records_per_zone {
        let message = format!(
            "records-per-zone {} leaves no room for updates: the zone file alone has {statics} records (NS, glue and [[record]]); raise it above {statics}",
            limits.records_per_zone
        );
        return Err(match &f.limits.records_per_zone {
            Some(n) => at(n.span(), message),
            None => FileError::whole_file(path, message),
        });
    }
    let key_name = |s: &toml::Spanned<String>| {
        let raw = s.get_ref().trim();
        let fq = if raw.ends_with('.') {
            raw.to_string()
        } else {
            format!("{raw}.")
        };
        Name::from_ascii(&fq).map_err(|e| at(s.span(), format!("bad key name {raw:?}: {e}")))
    };
    let mut transfer = TransferAcl::default();
    for k in &f.transfer.keys {
        transfer.keys.push(key_name(k)?);
    }
    for n in &f.transfer.networks {
        let raw = n.get_ref().trim();
        let net = raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| at(n.span(), format!("bad network {raw:?}")))?;
        transfer.networks.push(net);
    }
    let mut secondaries = Vec::new();
    for sec in &f.secondaries {
        let raw = sec.address.get_ref().trim();
        let address = raw
            .parse::<SocketAddr>()
            .or_else(|_| raw.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| {
                at(
                    sec.address.span(),
                    format!("bad address {raw:?}: use ADDR, ADDR:PORT or [V6]:PORT"),
                )
            })?;
        let key = sec.key.as_ref().map(key_name).transpose()?;
        if let Some(k) = &key
            && !transfer.keys.contains(k)
        {
            transfer.keys.push(k.clone());
        }
        let notify = match sec.notify.as_ref().map(|n| (n.get_ref().trim(), n.span())) {
            None | Some(("paced", _)) => NotifyPacing::Paced,
            Some(("every-change", _)) => NotifyPacing::EveryChange,
            Some((other, span)) => {
                return Err(at(
                    span,
                    format!("bad notify {other:?}: use \"paced\" or \"every-change\""),
                ));
            }
        };
        secondaries.push(Secondary {
            address,
            key,
            label: sec.name.clone().unwrap_or_else(|| address.to_string()),
            notify,
        });
    }
    let (on, settings) = dnssec_settings(path, text, f.dnssec.as_ref(), ttl.max)?;
    let (dnssec, dnssec_off) = if on {
        (Some(settings), None)
    } else {
        (None, Some(settings))
    };
    Ok(ZoneSpec {
        origin,
        path: path.to_path_buf(),
        soa,
        nameservers,
        ttl,
        limits,
        records,
        transfer,
        secondaries,
        dnssec,
        dnssec_off,
        persist: PersistSettings {
            validate: f.persist.validate.unwrap_or(true),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
origin = "_acme.example.org."
contact = "hostmaster@example.org"
nameservers = ["ns1", "ns2.example.net."]
[glue]
ns1 = ["127.0.0.1", "::1"]
[[record]]
name = "info"
type = "TXT"
data = "\"hello world\""
"#;

    #[test]
    fn parses_the_demo_shape() {
        let z = parse(Path::new("z.toml"), GOOD).unwrap();
        assert_eq!(z.origin, Name::from_ascii("_acme.example.org.").unwrap());
        assert_eq!(
            z.soa.rname,
            Name::from_ascii("hostmaster.example.org.").unwrap()
        );
        assert_eq!(z.soa.minimum, 1);
        // 2 NS + 2 glue + 1 TXT
        assert_eq!(z.records.len(), 5);
    }

    #[test]
    fn errors_point_at_the_field() {
        let bad = GOOD.replace("type = \"TXT\"", "type = \"TXTX\"");
        let e = parse(Path::new("z.toml"), &bad).unwrap_err();
        assert_eq!(e.line, 9, "{e}");
        let bad = GOOD.replace("\"::1\"", "\"::zz\"");
        let e = parse(Path::new("z.toml"), &bad).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        let bad = GOOD.replace("name = \"info\"", "name = \"*.info\"");
        let e = parse(Path::new("z.toml"), &bad).unwrap_err();
        assert!(e.message.contains("wildcard"), "{e}");
        let bad = format!("{GOOD}\nserial = 4\n");
        assert!(parse(Path::new("z.toml"), &bad).is_err());
        let bad = GOOD.replace("type = \"TXT\"", "type = \"RRSIG\"");
        let e = parse(Path::new("z.toml"), &bad).unwrap_err();
        assert!(e.message.contains("signer"), "{e}");
    }

    #[test]
    fn a_secondary_is_paced_unless_it_asks_for_every_change() {
        let with =
            |extra: &str| format!("{GOOD}\n[[secondary]]\naddress = \"127.0.0.1:5300\"\n{extra}");
        let z = parse(Path::new("z.toml"), &with("")).unwrap();
        assert_eq!(z.secondaries[0].notify, NotifyPacing::Paced);
        let z = parse(Path::new("z.toml"), &with("notify = \"paced\"\n")).unwrap();
        assert_eq!(z.secondaries[0].notify, NotifyPacing::Paced);
        let z = parse(Path::new("z.toml"), &with("notify = \"every-change\"\n")).unwrap();
        assert_eq!(z.secondaries[0].notify, NotifyPacing::EveryChange);
        let e = parse(Path::new("z.toml"), &with("notify = \"always\"\n")).unwrap_err();
        assert!(e.message.contains("every-change"), "{e}");
        assert!(e.line > 9, "{e}");
    }

    #[test]
    fn static_rdata_over_65535_octets_is_an_error_at_its_data() {
        // 300 strings of 255 octets: 76,800 octets of TXT RDATA.
        let big = format!("\\\"{}\\\" ", "x".repeat(255)).repeat(300);
        let text = GOOD.replace(
            "data = \"\\\"hello world\\\"\"",
            &format!("data = \"{big}\""),
        );
        assert_ne!(text, GOOD);
        let e = parse(Path::new("z.toml"), &text).unwrap_err();
        assert_eq!((e.line, e.column), (10, 8), "{e}");
        assert!(e.message.contains("more than 65535 octets"), "{e}");
        // 255 strings of 255 octets fit (65,280 octets).
        let fits = format!("\\\"{}\\\" ", "x".repeat(255)).repeat(255);
        let text = GOOD.replace(
            "data = \"\\\"hello world\\\"\"",
            &format!("data = \"{fits}\""),
        );
        assert!(parse(Path::new("z.toml"), &text).is_ok());
    }

    #[test]
    fn static_records_filling_records_per_zone_are_an_error() {
        // 2 NS + 2 glue + 1 TXT = 5 records.
        let text = format!("{GOOD}\n[limits]\nrecords-per-zone = 5\n");
        let e = parse(Path::new("z.toml"), &text).unwrap_err();
        assert_eq!((e.line, e.column), (13, 20), "{e}");
        assert!(e.message.contains("5 records"), "{e}");
        let text = format!("{GOOD}\n[limits]\nrecords-per-zone = 6\n");
        assert_eq!(
            parse(Path::new("z.toml"), &text)
                .unwrap()
                .limits
                .records_per_zone,
            6
        );
    }

    #[test]
    fn dnssec_is_on_by_default_and_takes_a_flag_or_a_table() {
        let z = parse(Path::new("z.toml"), GOOD).unwrap();
        assert_eq!(z.dnssec, Some(DnssecSettings::default()));
        let text = GOOD.replace("[glue]", "dnssec = false\n[glue]");
        assert_eq!(parse(Path::new("z.toml"), &text).unwrap().dnssec, None);
        let text = format!(
            "{GOOD}\n[dnssec]\nalgorithm = \"ed25519\"\nsignature-validity = 864000\nrefresh-before = 432000\ndnskey-ttl = 300\n"
        );
        let d = parse(Path::new("z.toml"), &text).unwrap().dnssec.unwrap();
        assert_eq!(d.algorithm, KeyAlgorithm::Ed25519);
        assert_eq!(
            (d.signature_validity, d.refresh_before, d.dnskey_ttl),
            (864000, 432000, 300)
        );
        let text = format!("{GOOD}\n[dnssec]\nenabled = false\n");
        assert_eq!(parse(Path::new("z.toml"), &text).unwrap().dnssec, None);
        // unknown fields and bad values are errors with a location
        let text = format!("{GOOD}\n[dnssec]\nnsec3 = true\n");
        let e = parse(Path::new("z.toml"), &text).unwrap_err();
        assert!(e.line >= 11 && e.message.contains("nsec3"), "{e}");
        let text = format!("{GOOD}\n[dnssec]\nalgorithm = \"rsasha1\"\n");
        assert!(parse(Path::new("z.toml"), &text).is_err());
        let text = format!("{GOOD}\n[dnssec]\nrefresh-before = 1209600\n");
        assert!(parse(Path::new("z.toml"), &text).is_err());
    }

    #[test]
    fn denial_is_nsec_unless_the_file_says_nsec3() {
        let z = parse(Path::new("z.toml"), GOOD).unwrap();
        assert_eq!(z.dnssec.unwrap().denial, Denial::Nsec);
        for (value, want) in [
            ("nsec", Denial::Nsec),
            ("nsec3", Denial::Nsec3),
            ("NSEC3", Denial::Nsec3),
        ] {
            let text = format!("{GOOD}\n[dnssec]\ndenial = \"{value}\"\n");
            let d = parse(Path::new("z.toml"), &text).unwrap().dnssec.unwrap();
            assert_eq!(d.denial, want);
        }
        for bad in ["nsec3-opt-out", "nsec5", ""] {
            let text = format!("{GOOD}\n[dnssec]\ndenial = \"{bad}\"\n");
            let e = parse(Path::new("z.toml"), &text).unwrap_err();
            assert!(
                e.message.contains("denial") && e.message.contains("\"nsec3\""),
                "{e}"
            );
        }
    }
}

//! What a change to a zone is, independent of where it is kept: the diff
//! (RRs removed and added, serial from and to), who made it and why. The
//! zone writer (`writer`) builds these, the store (`store`) persists them in
//! one transaction, transfers (`xfr`) read them back as IXFR history.
//!
//! Who made a change is typed ([`Actor`]): a machine through its TSIG key,
//! the server acting for a machine, or the server on its own. What kind of
//! change it was is typed too ([`Action`]); the audit table stores both
//! as columns, never as free text to be guessed later.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The zone file.
    Static,
    /// An UPDATE, the TLSA API, or the server's own DNSSEC records.
    Dynamic,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Static => "static",
            Source::Dynamic => "dynamic",
        }
    }
}

/// What kind of change an audit row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The zone was first stored.
    Create,
    /// An RFC 2136 UPDATE.
    Update,
    /// TLSA records published through the HTTP API.
    DanePublish,
    /// TLSA records retired after a rollover (RFC 7671 §8.1).
    DaneRetire,
    /// Challenge records past `challenge-max-age`.
    Expired,
    /// The zone file changed.
    ZoneFile,
    /// DNSSEC records made or repaired at start.
    DnssecSign,
    /// DNSSEC turned off: every DNSSEC record removed.
    DnssecOff,
    /// Signatures close to expiry renewed.
    DnssecRefresh,
    /// A DNSSEC key lifecycle step (rollover): keys published, submitted,
    /// retired.
    DnssecKey,
}

impl Action {
    const ALL: [Action; 10] = [
        Action::Create,
        Action::Update,
        Action::DanePublish,
        Action::DaneRetire,
        Action::Expired,
        Action::ZoneFile,
        Action::DnssecSign,
        Action::DnssecOff,
        Action::DnssecRefresh,
        Action::DnssecKey,
    ];

    /// The spelling in the audit table, the API and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::DanePublish => "dane-publish",
            Action::DaneRetire => "dane-retire",
            Action::Expired => "expired",
            Action::ZoneFile => "zone-file",
            Action::DnssecSign => "dnssec-sign",
            Action::DnssecOff => "dnssec-off",
            Action::DnssecRefresh => "dnssec-refresh",
            Action::DnssecKey => "dnssec-key",
        }
    }

    /// The action a stored spelling names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A machine, through its TSIG key (an UPDATE, or the TLSA API).
    Key {
        key: Name,
        machine: String,
        source: IpAddr,
    },
    /// The server acting for a machine (retiring the TLSA records that a
    /// machine's newer ones replaced).
    ForMachine(String),
    /// The server on its own (zone file, expiry, signatures).
    Server,
}

impl Actor {
    /// The key column of the audit table.
    pub fn key(&self) -> Option<&Name> {
        match self {
            Actor::Key { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The machine column of the audit table.
    pub fn machine(&self) -> Option<&str> {
        match self {
            Actor::Key { machine, .. } | Actor::ForMachine(machine) => Some(machine),
            Actor::Server => None,
        }
    }

    /// The source-address column of the audit table.
    pub fn source(&self) -> Option<IpAddr> {
        match self {
            Actor::Key { source, .. } => Some(*source),
            _ => None,
        }
    }
}

/// One audit row, as written with a change.
#[derive(Debug, Clone)]
pub struct Audit {
    pub actor: Actor,
    pub action: Action,
    pub detail: String,
}

impl Audit {
    /// A change the server makes on its own.
    pub fn server(action: Action, detail: String) -> Self {
        Self {
            actor: Actor::Server,
            action,
            detail,
        }
    }
}

/// One accepted change, ready to commit.
#[derive(Debug, Clone)]
pub struct Change {
    pub serial_from: u32,
    pub serial_to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
    pub source: Source,
    pub audit: Audit,
}

/// One stored diff: what went from `serial_from` to `serial_to` (IXFR).
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub serial_from: u32,
    pub serial_to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

/// RDATA in uncompressed wire form (what RR identity and size limits use).
pub fn rdata_bytes(data: &RData) -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut buf);
        let mut enc = enc.with_name_encoding(NameEncoding::Uncompressed);
        // emitting into a Vec without a size limit cannot fail for valid RData
        let _ = data.emit(&mut enc);
    }
    buf
}

/// "del X TXT "a"; add X 60 TXT "b"" for audit rows and logs.
pub fn describe(removed: &[Record], added: &[Record]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for r in removed {
        let _ = write!(
            s,
            "{}del {} {} {}",
            if s.is_empty() { "" } else { "; " },
            r.name,
            r.record_type(),
            r.data
        );
    }
    for r in added {
        let _ = write!(
            s,
            "{}add {} {} {} {}",
            if s.is_empty() { "" } else { "; " },
            r.name,
            r.ttl,
            r.record_type(),
            r.data
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn every_action_round_trips_through_its_stored_spelling() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("dane-publish "), None);
    }
}

//! The DNSSEC keys of a zone as records of their lifecycle (RFC 7583 §3:
//! generated, published, ready, active, retired, removed; and where the
//! parent's DS stands): what `store` keeps in the `dnssec_keys` table,
//! what `dnssec::roll` plans the next step from, and what `dnssec status`
//! shows. Plain data, so the store, the signer and the views share it.

use crate::zonefile::KeyAlgorithm;

/// Where a key is in its life (RFC 7583 §3.1 terms, with the two extra
/// stages of an algorithm rollover, RFC 6781 §4.1.4). A CSK is in the
/// DNSKEY RRset from `Published` to `Active` and signs every RRset from
/// `Signing` to `Withdrawn`; the zone's CDS and CDNSKEY name the `Ready`
/// key when there is one, else the `Active` one (or say "delete", RFC 8078
/// §4, while DNSSEC is being turned off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyState {
    /// The key file exists; the zone does not show the key.
    Generated,
    /// Algorithm rollover: its signatures are on every RRset, its DNSKEY
    /// not published yet (a validator that sees a DNSKEY of an algorithm
    /// expects that algorithm's signatures everywhere); waiting until no
    /// cache holds an RRset without them.
    Signing,
    /// Its DNSKEY is in the zone and it signs, beside the active key;
    /// waiting until every secondary serves it and caches holding the
    /// DNSKEY RRset without it have expired.
    Published,
    /// Known to every cache that may hold the DNSKEY RRset: the zone's
    /// CDS/CDNSKEY name it (its DS is submitted), waiting for the DS at
    /// every parent nameserver and then the DS TTL.
    Ready,
    /// The zone's key: its DS is at the parent.
    Active,
    /// Algorithm rollover: out of the DNSKEY RRset, its signatures still
    /// there until no cache holds the DNSKEY RRset with it.
    Withdrawn,
    /// Out of the DNSKEY RRset and signing nothing; waiting until every
    /// secondary serves the zone without it and its DNSKEY TTL passed.
    Retired,
    /// Gone from every cache; kept on record (and its file on disk).
    Removed,
}

impl KeyState {
    pub const ALL: [KeyState; 8] = [
        KeyState::Generated,
        KeyState::Signing,
        KeyState::Published,
        KeyState::Ready,
        KeyState::Active,
        KeyState::Withdrawn,
        KeyState::Retired,
        KeyState::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Generated => "generated",
            KeyState::Signing => "signing",
            KeyState::Published => "published",
            KeyState::Ready => "ready",
            KeyState::Active => "active",
            KeyState::Withdrawn => "withdrawn",
            KeyState::Retired => "retired",
            KeyState::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Its signatures are on every RRset.
    pub fn signs(self) -> bool {
        matches!(
            self,
            KeyState::Signing
                | KeyState::Published
                | KeyState::Ready
                | KeyState::Active
                | KeyState::Withdrawn
        )
    }

    /// The key a rollover is bringing in (not active yet).
    pub fn incoming(self) -> bool {
        matches!(
            self,
            KeyState::Signing | KeyState::Published | KeyState::Ready
        )
    }

    /// Its DNSKEY is in the DNSKEY RRset.
    pub fn published(self) -> bool {
        matches!(
            self,
            KeyState::Published | KeyState::Ready | KeyState::Active
        )
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key of a zone and its lifecycle so far. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The row's id; 0 for a key not stored yet.
    pub id: i64,
    pub tag: u16,
    pub algorithm: KeyAlgorithm,
    /// The PKCS#8 file's name in `<data-dir>/dnssec/`.
    pub file: String,
    pub state: KeyState,
    /// When it entered `state`.
    pub since: u64,
    /// The serial of the change that put it in `state` (the secondaries
    /// must serve at least this before the next step), None for a state
    /// that changed no record.
    pub since_serial: Option<u32>,
    pub created: u64,
    /// Algorithm rollover: when its signatures went in (before its DNSKEY).
    pub signing: Option<u64>,
    pub published: Option<u64>,
    pub ready: Option<u64>,
    pub active: Option<u64>,
    /// Algorithm rollover: when its DNSKEY left (its signatures stayed).
    pub withdrawn: Option<u64>,
    pub retired: Option<u64>,
    pub removed: Option<u64>,
    /// When every parent nameserver was first seen serving its DS.
    pub ds_seen: Option<u64>,
    /// The TTL of the DS RRset then (the longest any of them gave).
    pub ds_ttl: Option<u32>,
    /// When the parent was first seen with no DS of it, after it retired.
    pub ds_removed: Option<u64>,
    /// A rollover away from this key was asked for (`dnssec roll`).
    pub roll_requested: Option<u64>,
    /// DNSSEC is being turned off: since when the CDS and CDNSKEY say
    /// "delete" (RFC 8078 §4) instead of naming this key.
    pub ds_delete: Option<u64>,
}

impl KeyRecord {
    /// A key just made at `now`, not shown by the zone yet.
    pub fn generated(tag: u16, algorithm: KeyAlgorithm, file: String, now: u64) -> Self {
        Self {
            id: 0,
            tag,
            algorithm,
            file,
            state: KeyState::Generated,
            since: now,
            since_serial: None,
            created: now,
            signing: None,
            published: None,
            ready: None,
            active: None,
            withdrawn: None,
            retired: None,
            removed: None,
            ds_seen: None,
            ds_ttl: None,
            ds_removed: None,
            roll_requested: None,
            ds_delete: None,
        }
    }

    /// Move to `state` at `now`, by the change to `serial` (if any).
    pub fn enter(&mut self, state: KeyState, now: u64, serial: Option<u32>) {
        self.state = state;
        self.since = now;
        self.since_serial = serial;
        let stamp = match state {
            KeyState::Generated => None,
            KeyState::Signing => Some(&mut self.signing),
            KeyState::Withdrawn => Some(&mut self.withdrawn),
            KeyState::Published => Some(&mut self.published),
            KeyState::Ready => Some(&mut self.ready),
            KeyState::Active => Some(&mut self.active),
            KeyState::Retired => Some(&mut self.retired),
            KeyState::Removed => Some(&mut self.removed),
        };
        if let Some(s) = stamp {
            s.get_or_insert(now);
        }
    }
}

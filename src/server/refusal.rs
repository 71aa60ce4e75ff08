//! Refused writes, accounted in one place: one log line with the reason,
//! the `updates_refused` metric, and the machine's last refusal (kept in
//! memory for the status views: refusals change nothing, so they have no
//! audit row). Used by the UPDATE handler and the HTTP TLSA API alike.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};

use crate::metrics::{Metrics, RefusalReason, rcode_name};
use crate::update::Refusal;

/// A refused write: why (one reason per deciding place), the RCODE, the RR
/// at fault if one is.
#[derive(Debug, Clone)]
pub struct Refused {
    pub reason: RefusalReason,
    pub rcode: ResponseCode,
    pub detail: String,
    pub owner: Option<Name>,
    pub rtype: Option<RecordType>,
}

impl Refused {
    pub fn plain(reason: RefusalReason, rcode: ResponseCode, detail: impl Into<String>) -> Self {
        Self {
            reason,
            rcode,
            detail: detail.into(),
            owner: None,
            rtype: None,
        }
    }
}

impl From<Refusal> for Refused {
    fn from(r: Refusal) -> Self {
        Self {
            reason: RefusalReason::from(r.kind),
            rcode: r.rcode,
            detail: r.reason,
            owner: r.owner,
            rtype: r.rtype,
        }
    }
}

/// The last refused write of a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRefusal {
    pub time: u64,
    pub zone: Name,
    pub reason: RefusalReason,
    pub rcode: ResponseCode,
    pub source: IpAddr,
    /// Owner and type of the RR at fault, when one is.
    pub owner: Option<Name>,
    pub rtype: Option<RecordType>,
    /// What the deciding code said (never a secret).
    pub detail: String,
}

/// Who asked for a write and what it touches, for its one log line.
#[derive(Debug, Clone)]
pub struct WriteLog {
    pub zone: Option<Name>,
    pub key: Option<Name>,
    pub machine: Option<String>,
    pub source: SocketAddr,
    /// Owners and types of the update section, each once (at most 8).
    pub owners: String,
    pub types: String,
}

/// At most this many distinct owners and types are named (a log line, not
/// a dump; and cheap for a huge update section, which is logged before it
/// is authorised).
const SHOWN: usize = 8;

impl WriteLog {
    pub fn new(
        zone: Option<Name>,
        key: Option<Name>,
        source: SocketAddr,
        records: &[Record],
    ) -> Self {
        let mut owners: Vec<String> = Vec::new();
        let mut types: Vec<String> = Vec::new();
        for r in records {
            if owners.len() < SHOWN {
                let o = r.name.to_string();
                if !owners.contains(&o) {
                    owners.push(o);
                }
            }
            if types.len() < SHOWN {
                let t = r.record_type().to_string();
                if !types.contains(&t) {
                    types.push(t);
                }
            }
            if owners.len() == SHOWN && types.len() == SHOWN {
                break;
            }
        }
        Self {
            zone,
            key,
            machine: None,
            source,
            owners: owners.join(" "),
            types: types.join(" "),
        }
    }

    pub fn zone_label(&self) -> String {
        self.zone
            .as_ref()
            .map(|z| z.to_string())
            .unwrap_or_default()
    }

    pub fn key_label(&self) -> String {
        self.key.as_ref().map(|k| k.to_string()).unwrap_or_default()
    }

    pub fn machine_label(&self) -> &str {
        self.machine.as_deref().unwrap_or("")
    }
}

/// The last refusal of each machine since the process started.
#[derive(Debug, Default)]
pub struct Refusals(Mutex<HashMap<String, LastRefusal>>);

impl Refusals {
    pub fn snapshot(&self) -> HashMap<String, LastRefusal> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Account `refused`: log, metric, the machine's last refusal.
    pub fn record(&self, metrics: &Metrics, log: &WriteLog, refused: &Refused, now: u64) {
        metrics.updates_refused.inc(&[refused.reason.as_str()]);
        let owner = refused
            .owner
            .as_ref()
            .map_or_else(|| log.owners.clone(), |o| o.to_string());
        let rtype = refused
            .rtype
            .map_or_else(|| log.types.clone(), |t| t.to_string());
        tracing::warn!(
            zone = %log.zone_label(), key = %log.key_label(), machine = %log.machine_label(),
            source = %log.source, owner = %owner, rtype = %rtype,
            outcome = "refused", reason = refused.reason.as_str(), rcode = %rcode_name(refused.rcode),
            detail = %refused.detail,
            "update"
        );
        if let (Some(machine), Some(zone)) = (&log.machine, &log.zone) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(
                machine.clone(),
                LastRefusal {
                    time: now,
                    zone: zone.clone(),
                    reason: refused.reason,
                    rcode: refused.rcode,
                    source: log.source.ip(),
                    owner: refused.owner.clone(),
                    rtype: refused.rtype,
                    detail: refused.detail.clone(),
                },
            );
        }
    }
}

//! Refused writes, accounted in one place: one log line with the reason,
//! the `updates_refused` metric, and the machine's last refusal (kept in
//! memory for the status views: refusals change nothing, so they have no
//! audit row). Used by the UPDATE handler and the HTTP TLSA API alike.
//!
//! Lines about unauthenticated events (TSIG failures, refusals of UPDATEs
//! that carried no valid key) cost an attacker one packet each, so they
//! pass a [`LogGate`]: at most [`LINES_PER_SECOND`] a second per kind; the
//! rest are counted (`zonewarden_log_lines_suppressed_total`) and
//! summarised in one line per [`SUMMARY_INTERVAL`]. Refusals of a machine
//! with a valid key are logged one line each, always.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};

use crate::metrics::{self, Metrics, RefusalReason, rcode_name};
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

/// Log lines allowed per second for each kind of unauthenticated event.
pub const LINES_PER_SECOND: u32 = 10;
/// How often suppressed lines are summarised (at most).
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// One kind's window.
#[derive(Debug, Default)]
struct Window {
    /// The second (since the gate's epoch) `written` counts in.
    second: u64,
    written: u32,
    /// Suppressed since `since_ms` (not yet summarised).
    suppressed: u64,
    since_ms: u64,
}

/// The rate limit on log lines of unauthenticated events, per kind
/// (`metrics::LOG_KINDS`), on the monotonic clock.
#[derive(Debug)]
pub struct LogGate {
    kinds: [Mutex<Window>; 2],
    epoch: Instant,
}

impl Default for LogGate {
    fn default() -> Self {
        Self {
            kinds: Default::default(),
            epoch: Instant::now(),
        }
    }
}

/// Lines of one kind not written over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed {
    pub kind: usize,
    pub lines: u64,
    pub over: Duration,
}

impl Suppressed {
    fn log(self) {
        let kind = metrics::LOG_KINDS[self.kind];
        let seconds = self.over.as_secs().max(1);
        tracing::warn!(
            kind,
            suppressed = self.lines,
            seconds,
            "suppressed {} log lines of unauthenticated events ({kind}) in the last {seconds} s",
            self.lines
        );
    }
}

impl LogGate {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether a line of `kind` may be written at `now_ms`; a refused
    /// line is counted. Also returns the summary that is due, if one is.
    pub fn allow_at(&self, kind: usize, now_ms: u64) -> (bool, Option<Suppressed>) {
        let mut w = self.kinds[kind].lock().unwrap_or_else(|p| p.into_inner());
        let second = now_ms / 1000;
        if second != w.second {
            w.second = second;
            w.written = 0;
        }
        let allowed = w.written < LINES_PER_SECOND;
        if allowed {
            w.written += 1;
        } else {
            if w.suppressed == 0 {
                w.since_ms = now_ms;
            }
            w.suppressed += 1;
        }
        (allowed, Self::due(kind, &mut w, now_ms, false))
    }

    /// The summary of `kind` if one is due at `now_ms` (`force`: whatever
    /// the interval), resetting its count.
    fn due(kind: usize, w: &mut Window, now_ms: u64, force: bool) -> Option<Suppressed> {
        let over = Duration::from_millis(now_ms.saturating_sub(w.since_ms));
        if w.suppressed == 0 || (!force && over < SUMMARY_INTERVAL) {
            return None;
        }
        let s = Suppressed {
            kind,
            lines: w.suppressed,
            over,
        };
        w.suppressed = 0;
        Some(s)
    }

    /// Whether a line of `kind` may be written now (counting a suppressed
    /// one, and writing the summary that is due).
    pub fn allow(&self, kind: usize, metrics: &Metrics) -> bool {
        let (allowed, summary) = self.allow_at(kind, self.now_ms());
        if !allowed {
            metrics.log_suppressed.inc(&[kind]);
        }
        if let Some(s) = summary {
            s.log();
        }
        allowed
    }

    /// The summaries due at `now_ms` (a timer calls [`LogGate::flush`], so
    /// a flood that stops is still summarised).
    pub fn flush_at(&self, now_ms: u64) -> Vec<Suppressed> {
        (0..self.kinds.len())
            .filter_map(|kind| {
                let mut w = self.kinds[kind].lock().unwrap_or_else(|p| p.into_inner());
                Self::due(kind, &mut w, now_ms, true)
            })
            .collect()
    }

    /// Write the summaries of lines suppressed since the last one.
    pub fn flush(&self) {
        for s in self.flush_at(self.now_ms()) {
            s.log();
        }
    }
}

/// The last refusal of each machine since the process started, and the
/// gate on lines about unauthenticated events.
#[derive(Debug, Default)]
pub struct Refusals(Mutex<HashMap<String, LastRefusal>>, LogGate);

impl Refusals {
    pub fn snapshot(&self) -> HashMap<String, LastRefusal> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The gate on lines about unauthenticated events.
    pub fn log_gate(&self) -> &LogGate {
        &self.1
    }

    /// Account `refused`: log, metric, the machine's last refusal. A
    /// refusal of an UPDATE without a valid key (a TSIG failure, or no key
    /// at all) is logged within the gate's allowance.
    pub fn record(&self, metrics: &Metrics, log: &WriteLog, refused: &Refused, now: u64) {
        metrics.updates_refused.inc(&[refused.reason.as_str()]);
        let unauthenticated = refused.reason == RefusalReason::Tsig || log.key.is_none();
        if unauthenticated && !self.1.allow(metrics::LOG_UNAUTHENTICATED_REFUSAL, metrics) {
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_allows_so_many_lines_a_second_and_summarises_the_rest() {
        let g = LogGate::default();
        let kind = metrics::LOG_TSIG_FAILURE;
        let allowed = (0..1000).filter(|_| g.allow_at(kind, 5_000).0).count();
        assert_eq!(allowed, LINES_PER_SECOND as usize);
        // The other kind has its own allowance.
        assert!(g.allow_at(metrics::LOG_UNAUTHENTICATED_REFUSAL, 5_000).0);
        // Next second: allowed again; no summary before the interval.
        let (ok, summary) = g.allow_at(kind, 6_000);
        assert!(ok);
        assert_eq!(summary, None);
        for _ in 0..LINES_PER_SECOND {
            g.allow_at(kind, 6_500);
        }
        // Ten seconds after the first suppressed line, the next event
        // brings one summary of them all (990 + 1).
        let (ok, summary) = g.allow_at(kind, 15_000);
        assert!(ok);
        let s = summary.expect("a summary once the interval has passed");
        assert_eq!(s.kind, kind);
        assert_eq!(s.lines, 1000 - u64::from(LINES_PER_SECOND) + 1);
        assert_eq!(s.over, Duration::from_secs(10));
        for _ in 0..LINES_PER_SECOND {
            g.allow_at(kind, 15_100);
        }
        // Counted anew after a summary (one more this second); a timer
        // flush summarises what is pending, whatever the interval.
        let flushed = g.flush_at(15_200);
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].lines, 1);
        for _ in 0..5 {
            g.allow_at(kind, 15_300);
        }
        let flushed = g.flush_at(15_400);
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].lines, 5);
        assert!(g.flush_at(15_500).is_empty());
    }
}

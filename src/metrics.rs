//! What the server counts, and the Prometheus exposition of it.
//!
//! The metrics are `prometheus-client` ones (`Family` of `Counter`s,
//! `Histogram`), and `/metrics` is that crate's encoder for the Prometheus
//! text format 0.0.4 ([`CONTENT_TYPE`]): `# HELP`, `# TYPE`, samples, label
//! values escaped. Counters are updated where the outcome is decided
//! (`server` for queries, TSIG failures and update outcomes, `acl` for
//! reloads, `writer` for expiry and commit latency, `notify` for NOTIFY).
//! Gauges that describe state (serials, lag, signature horizon) are
//! computed when `/metrics` is scraped, from the same snapshots the DNS
//! side serves, and added to the scrape's [`Metrics::registry`]; see
//! `http::api::render_metrics`.
//!
//! The query path takes no lock and allocates nothing: a `Family` takes a
//! read lock and builds a label set per increment, so queries are counted
//! in a fixed table of atomics per (type, rcode) ([`QueryCounter`]) that a
//! `prometheus-client` collector reads at scrape time. The other families
//! count rarer events (UPDATEs, NOTIFYs, reloads, TSIG failures).
//!
//! Label values come from closed sets (record type names, RCODE names,
//! refusal reasons) or from configuration (zone, secondary and key names),
//! never from arbitrary request data, so an attacker cannot grow the series
//! count: a TSIG failure naming an unknown key is counted under
//! `key="(unknown)"`.
//!
//! This module imports no other module of the crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`encode`]'s output (Prometheus text, 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Why an UPDATE was not applied, one value per place the server decides
/// it (the `reason` label of `zonewarden_updates_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefusalReason {
    /// TSIG verification failed (BADKEY, BADSIG, BADTIME, replay, FORMERR).
    Tsig,
    /// No TSIG at all.
    Unsigned,
    /// The zone section names a zone we do not serve (NOTAUTH).
    NotAuthoritative,
    /// A valid key that no ACL names.
    NoAcl,
    /// The source address is outside the ACL's networks.
    Network,
    /// Malformed (FORMERR) or outside the zone (NOTZONE).
    Format,
    /// A prerequisite did not hold (RFC 2136 §3.2).
    Prerequisite,
    /// The ACL does not grant the change.
    Acl,
    /// A limit would be exceeded.
    Limit,
    /// The server is shutting down.
    ShuttingDown,
    /// The key sent more UPDATEs than `update-rate-per-key` allows.
    RateLimited,
    /// A dns-persist-01 record value is not valid (the zone validates them).
    Persist,
}

impl RefusalReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tsig => "tsig",
            Self::Unsigned => "unsigned",
            Self::NotAuthoritative => "not_authoritative",
            Self::NoAcl => "no_acl",
            Self::Network => "network",
            Self::Format => "format",
            Self::Prerequisite => "prerequisite",
            Self::Acl => "acl",
            Self::Limit => "limit",
            Self::ShuttingDown => "shutting_down",
            Self::RateLimited => "rate_limited",
            Self::Persist => "persist",
        }
    }
}

/// The RFC mnemonic of an RCODE (`NOERROR`, `REFUSED`, ...), `RCODE<n>`
/// for unassigned ones: the `rcode` label and what logs and views show.
pub fn rcode_name(rcode: hickory_proto::op::ResponseCode) -> String {
    use hickory_proto::op::ResponseCode as R;
    let name = match rcode {
        R::NoError => "NOERROR",
        R::FormErr => "FORMERR",
        R::ServFail => "SERVFAIL",
        R::NXDomain => "NXDOMAIN",
        R::NotImp => "NOTIMP",
        R::Refused => "REFUSED",
        R::YXDomain => "YXDOMAIN",
        R::YXRRSet => "YXRRSET",
        R::NXRRSet => "NXRRSET",
        R::NotAuth => "NOTAUTH",
        R::NotZone => "NOTZONE",
        R::BADVERS => "BADVERS",
        other => return format!("RCODE{}", u16::from(other)),
    };
    name.to_string()
}

/// Label pairs in the order their family names them.
pub type Labels = Vec<(&'static str, String)>;

/// A counter family whose label names are fixed at construction, counted
/// with the values alone: `inc(&[zone, "changed"])`.
#[derive(Debug, Clone)]
pub struct CounterVec {
    names: &'static [&'static str],
    family: Family<Labels, Counter>,
}

impl CounterVec {
    pub fn new(names: &'static [&'static str]) -> Self {
        Self {
            names,
            family: Family::default(),
        }
    }

    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    pub fn add(&self, values: &[&str], n: u64) {
        self.family.get_or_create(&self.labels(values)).inc_by(n);
    }

    /// The count for exactly these label values (0 if never counted).
    pub fn get(&self, values: &[&str]) -> u64 {
        self.family.get(&self.labels(values)).map_or(0, |c| c.get())
    }

    fn labels(&self, values: &[&str]) -> Labels {
        debug_assert_eq!(values.len(), self.names.len(), "{:?}", self.names);
        self.names
            .iter()
            .zip(values)
            .map(|(k, v)| (*k, v.to_string()))
            .collect()
    }
}

/// Answered queries by type and RCODE, counted without a lock or an
/// allocation (the query path never locks): one atomic per (type, rcode)
/// slot. Types outside [`QUERY_TYPES`] count as "other"; RCODEs above 16
/// as the last slot. Exposed as `zonewarden_queries_total` by its
/// [`Collector`] impl, one sample per non-zero slot.
#[derive(Debug, Clone)]
pub struct QueryCounter {
    slots: Arc<[AtomicU64]>,
}

/// The query types counted by name (what clients, secondaries and
/// resolvers ask a zone like ours); every other type is "other".
const QUERY_TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::NS,
    RecordType::CNAME,
    RecordType::SOA,
    RecordType::PTR,
    RecordType::MX,
    RecordType::TXT,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::DS,
    RecordType::RRSIG,
    RecordType::NSEC,
    RecordType::DNSKEY,
    RecordType::NSEC3PARAM,
    RecordType::TLSA,
    RecordType::CDS,
    RecordType::CDNSKEY,
    RecordType::SVCB,
    RecordType::HTTPS,
    RecordType::CAA,
    RecordType::ANY,
    RecordType::AXFR,
    RecordType::IXFR,
];
/// Type slots: the named types, "other", "none" (no question).
const TYPE_SLOTS: usize = QUERY_TYPES.len() + 2;
/// RCODE slots: 0 to 16 (BADVERS), then everything above.
const RCODE_SLOTS: usize = 18;

impl Default for QueryCounter {
    fn default() -> Self {
        Self {
            slots: (0..TYPE_SLOTS * RCODE_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl QueryCounter {
    /// Count one answer; `qtype` None when the query had no question.
    pub fn inc(&self, qtype: Option<RecordType>, rcode: ResponseCode) {
        let t = match qtype {
            None => TYPE_SLOTS - 1,
            Some(q) => QUERY_TYPES
                .iter()
                .position(|t| *t == q)
                .unwrap_or(QUERY_TYPES.len()),
        };
        let r = usize::from(u16::from(rcode)).min(RCODE_SLOTS - 1);
        self.slots[t * RCODE_SLOTS + r].fetch_add(1, Ordering::Relaxed);
    }

    /// The non-zero counts with their `type` and `rcode` labels.
    fn rows(&self) -> Vec<([(&'static str, String); 2], u64)> {
        let mut out = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let n = slot.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let (t, r) = (i / RCODE_SLOTS, i % RCODE_SLOTS);
            let qtype = match QUERY_TYPES.get(t) {
                Some(rt) => rt.to_string(),
                None if t == QUERY_TYPES.len() => "other".into(),
                None => "none".into(),
            };
            let rcode = if r == RCODE_SLOTS - 1 {
                "other".to_string()
            } else {
                rcode_name(<ResponseCode as From<u16>>::from(r as u16))
            };
            out.push(([("type", qtype), ("rcode", rcode)], n));
        }
        out
    }
}

impl Collector for QueryCounter {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // (the encoder appends `_total` to a counter's name)
        let mut family = encoder.encode_descriptor(
            "zonewarden_queries",
            "DNS queries answered, by query type and response code.",
            None,
            MetricType::Counter,
        )?;
        for (labels, n) in self.rows() {
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// A counter family over fixed label values, counted without a lock or an
/// allocation (one atomic per combination), like [`QueryCounter`]: for
/// events an attacker can cause at packet rate (rate-limited answers,
/// cookies, suppressed log lines). `labels` pairs each label name with
/// its closed set of values; `inc` takes one index per label.
#[derive(Debug, Clone)]
pub struct Tally {
    name: &'static str,
    help: &'static str,
    labels: &'static [(&'static str, &'static [&'static str])],
    slots: Arc<[AtomicU64]>,
}

impl Tally {
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [(&'static str, &'static [&'static str])],
    ) -> Self {
        let n: usize = labels.iter().map(|(_, v)| v.len()).product();
        Self {
            name,
            help,
            labels,
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, at: &[usize]) -> usize {
        debug_assert_eq!(at.len(), self.labels.len(), "{}", self.name);
        at.iter().zip(self.labels).fold(0, |acc, (i, (_, values))| {
            acc * values.len() + i.min(&(values.len() - 1))
        })
    }

    pub fn inc(&self, at: &[usize]) {
        self.add(at, 1);
    }

    pub fn add(&self, at: &[usize], n: u64) {
        if n > 0 {
            self.slots[self.slot(at)].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self, at: &[usize]) -> u64 {
        self.slots[self.slot(at)].load(Ordering::Relaxed)
    }

    /// The sum over every label combination.
    pub fn total(&self) -> u64 {
        self.slots.iter().map(|s| s.load(Ordering::Relaxed)).sum()
    }
}

impl Collector for Tally {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.total() == 0 {
            return Ok(());
        }
        let mut family =
            encoder.encode_descriptor(self.name, self.help, None, MetricType::Counter)?;
        for (i, slot) in self.slots.iter().enumerate() {
            let n = slot.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let mut rest = i;
            let mut labels: Vec<(&'static str, &'static str)> = Vec::new();
            for (name, values) in self.labels.iter().rev() {
                labels.push((name, values[rest % values.len()]));
                rest /= values.len();
            }
            labels.reverse();
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The answer classes of response rate limiting, in `server::rrl::Class`
/// order.
pub const RRL_CLASSES: &[&str] = &[
    "positive", "nodata", "nxdomain", "referral", "error", "any", "rrsig", "dnskey",
];
/// What the limiter did with an answer it limited.
pub const RRL_DROPPED: usize = 0;
pub const RRL_SLIPPED: usize = 1;
/// Requests by their COOKIE option: valid server cookie, client cookie
/// only (or a server cookie not accepted), malformed (FORMERR).
pub const COOKIE_VALID: usize = 0;
pub const COOKIE_CLIENT_ONLY: usize = 1;
pub const COOKIE_MALFORMED: usize = 2;
/// Log lines of unauthenticated events: TSIG failures, and refusals of
/// UPDATEs that carried no valid key.
pub const LOG_TSIG_FAILURE: usize = 0;
pub const LOG_UNAUTHENTICATED_REFUSAL: usize = 1;
pub const LOG_KINDS: &[&str] = &["tsig_failure", "unauthenticated_refusal"];
/// How a UDP request was answered (issue 12): from a prepared answer,
/// from one prepared for it, or by the request front (anything but a
/// plain query); and datagrams dropped because the front had too many
/// UDP requests in hand.
pub const UDP_PREPARED: usize = 0;
pub const UDP_BUILT: usize = 1;
pub const UDP_FRONT: usize = 2;
pub const UDP_OVERLOADED: usize = 3;

/// Upper bounds (seconds) of the commit latency buckets: an fsync on an SSD
/// is about a millisecond, on a busy disk tens.
pub const COMMIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Everything counted since the process started.
#[derive(Debug)]
pub struct Metrics {
    /// QUERY opcode answers: [type, rcode].
    pub queries: QueryCounter,
    /// Applied UPDATEs: [zone, result] with result "changed" or "unchanged".
    pub updates_accepted: CounterVec,
    /// Refused UPDATEs: [reason].
    pub updates_refused: CounterVec,
    /// UPDATEs that failed to commit (SERVFAIL).
    pub updates_failed: AtomicU64,
    /// TSIG verification failures on any message: [key, error].
    pub tsig_failures: CounterVec,
    /// ACL and key reloads: [result] "ok" or "failed".
    pub acl_reloads: CounterVec,
    /// Challenge records removed by expiry: [zone].
    pub records_expired: CounterVec,
    /// NOTIFYs acknowledged / not acknowledged: [zone, secondary].
    pub notify_sent: CounterVec,
    pub notify_failed: CounterVec,
    /// Zone transfers served: [form] "axfr", "ixfr", "ixfr_full".
    pub transfers: CounterVec,
    /// SQLite commit latency (every change: updates, expiry, refreshes).
    pub commit_seconds: Histogram,
    /// Commits that failed (the change was not applied).
    pub commit_failures: AtomicU64,
    /// Whether the last commit failed (readiness).
    pub last_commit_failed: AtomicBool,
    /// Changes (journal entries) in the commits counted by
    /// `commit_seconds`: more than its count when UPDATEs shared a commit
    /// (group commit, `writer`).
    pub committed_changes: AtomicU64,
    /// UPDATEs given to a zone writer and not answered yet (queued, or in
    /// the commit in progress).
    pub updates_waiting: AtomicU64,
    /// Issue 11: UDP answers limited by RRL: [action, class].
    pub rrl_limited: Tally,
    /// Requests carrying a COOKIE option: [result].
    pub cookies: Tally,
    /// Log lines of unauthenticated events not written: [kind].
    pub log_suppressed: Tally,
    /// Issue 12: UDP requests by how they were answered: [path].
    pub udp_requests: Tally,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            queries: QueryCounter::default(),
            updates_accepted: CounterVec::new(&["zone", "result"]),
            updates_refused: CounterVec::new(&["reason"]),
            updates_failed: AtomicU64::new(0),
            tsig_failures: CounterVec::new(&["key", "error"]),
            acl_reloads: CounterVec::new(&["result"]),
            records_expired: CounterVec::new(&["zone"]),
            notify_sent: CounterVec::new(&["zone", "secondary"]),
            notify_failed: CounterVec::new(&["zone", "secondary"]),
            transfers: CounterVec::new(&["form"]),
            commit_seconds: Histogram::new(COMMIT_BUCKETS.iter().copied()),
            commit_failures: AtomicU64::new(0),
            last_commit_failed: AtomicBool::new(false),
            committed_changes: AtomicU64::new(0),
            updates_waiting: AtomicU64::new(0),
            rrl_limited: Tally::new(
                "zonewarden_rrl_limited",
                "UDP answers limited by response rate limiting, by action (dropped, or slipped: sent truncated or BADCOOKIE) and answer class",
                &[("action", &["dropped", "slipped"]), ("class", RRL_CLASSES)],
            ),
            cookies: Tally::new(
                "zonewarden_cookies",
                "Requests with a DNS COOKIE option, by result (valid server cookie, client cookie only, malformed)",
                &[("result", &["valid", "client_only", "malformed"])],
            ),
            log_suppressed: Tally::new(
                "zonewarden_log_lines_suppressed",
                "Log lines of unauthenticated events not written (past the per-second allowance; summarised in the log)",
                &[("kind", LOG_KINDS)],
            ),
            udp_requests: Tally::new(
                "zonewarden_udp_requests",
                "UDP requests by how they were handled: answered from a prepared answer, from one prepared for it, by the request front, or dropped because the front had too many in hand",
                &[("path", &["prepared", "built", "front", "overloaded"])],
            ),
        }
    }
}

impl Metrics {
    /// Record one commit attempt of `changes` changes (called by `writer`).
    pub fn commit_done(&self, took: Duration, changes: usize, ok: bool) {
        if ok {
            self.commit_seconds.observe(took.as_secs_f64());
            self.committed_changes
                .fetch_add(changes as u64, Ordering::Relaxed);
        } else {
            self.commit_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.last_commit_failed.store(!ok, Ordering::Relaxed);
    }

    /// A registry of the counters and the histogram, for one scrape: the
    /// caller adds the state gauges ([`register_gauge`],
    /// [`register_gauges`]) and [`encode`]s it. Cheap: the families are
    /// shared, not copied.
    ///
    /// (Names are given without the `_total` the encoder appends to a
    /// counter's, and help texts without the full stop it appends.)
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register_collector(Box::new(self.queries.clone()));
        for t in [
            &self.rrl_limited,
            &self.cookies,
            &self.log_suppressed,
            &self.udp_requests,
        ] {
            r.register_collector(Box::new(t.clone()));
        }
        let families: [(&str, &str, &CounterVec); 8] = [
            (
                "zonewarden_updates_accepted",
                "UPDATEs accepted, by zone and whether they changed the zone",
                &self.updates_accepted,
            ),
            (
                "zonewarden_updates_refused",
                "UPDATEs refused, by reason",
                &self.updates_refused,
            ),
            (
                "zonewarden_tsig_failures",
                "TSIG verification failures, by key (\"(unknown)\" for keys not configured) and error",
                &self.tsig_failures,
            ),
            (
                "zonewarden_acl_reloads",
                "ACL and key reloads, by result",
                &self.acl_reloads,
            ),
            (
                "zonewarden_records_expired",
                "Stale challenge records removed by expiry",
                &self.records_expired,
            ),
            (
                "zonewarden_notify_sent",
                "NOTIFYs acknowledged by a secondary",
                &self.notify_sent,
            ),
            (
                "zonewarden_notify_failed",
                "NOTIFYs not acknowledged (timeout, error answer); each is retried",
                &self.notify_failed,
            ),
            (
                "zonewarden_transfers",
                "Zone transfers served, by form",
                &self.transfers,
            ),
        ];
        for (name, help, c) in families {
            r.register(name, help, c.family.clone());
        }
        r.register(
            "zonewarden_updates_failed",
            "UPDATEs that could not be committed (answered SERVFAIL, nothing changed)",
            ConstCounter::new(self.updates_failed.load(Ordering::Relaxed)),
        );
        r.register(
            "zonewarden_sqlite_commit_failures",
            "SQLite commits that failed (nothing changed)",
            ConstCounter::new(self.commit_failures.load(Ordering::Relaxed)),
        );
        r.register(
            "zonewarden_sqlite_committed_changes",
            "Changes committed (one journal entry each: an applied UPDATE, an expiry...); more than the commit count when UPDATEs shared a commit",
            ConstCounter::new(self.committed_changes.load(Ordering::Relaxed)),
        );
        r.register(
            "zonewarden_updates_waiting",
            "UPDATEs in the zone writers now, waiting for the commit that holds them (queued, or in the commit in progress)",
            ConstGauge::new(self.updates_waiting.load(Ordering::Relaxed) as f64),
        );
        r.register(
            "zonewarden_sqlite_commit_duration_seconds",
            "Time to commit one change to SQLite, fsync included",
            self.commit_seconds.clone(),
        );
        r
    }
}

/// Add a gauge without labels, valued at scrape time (`help` without the
/// final full stop, which the registry adds).
pub fn register_gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    registry.register(name, help, ConstGauge::new(value));
}

/// Add a gauge family valued at scrape time, one sample per label set (a
/// family without samples is left out of the exposition, as are counter
/// families nothing was counted in).
pub fn register_gauges(
    registry: &mut Registry,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, f64)>,
) {
    let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for (labels, v) in samples {
        family.get_or_create(&labels).set(v);
    }
    registry.register(name, help, family);
}

/// The registry in the Prometheus text format ([`CONTENT_TYPE`]).
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(m: &Metrics) -> String {
        encode(&m.registry()).unwrap()
    }

    #[test]
    fn query_counts_land_in_their_type_and_rcode_rows() {
        use hickory_proto::op::ResponseCode as R;
        let q = QueryCounter::default();
        q.inc(Some(RecordType::TXT), R::NoError);
        q.inc(Some(RecordType::TXT), R::NoError);
        q.inc(Some(RecordType::TXT), R::NXDomain);
        q.inc(Some(RecordType::Unknown(65280)), R::Refused);
        q.inc(None, R::FormErr);
        q.inc(Some(RecordType::SOA), R::BADKEY);
        let rows: Vec<(String, String, u64)> = q
            .rows()
            .into_iter()
            .map(|([(_, t), (_, r)], n)| (t, r, n))
            .collect();
        let get = |t: &str, r: &str| {
            rows.iter()
                .find(|row| row.0 == t && row.1 == r)
                .map_or(0, |row| row.2)
        };
        assert_eq!(get("TXT", "NOERROR"), 2);
        assert_eq!(get("TXT", "NXDOMAIN"), 1);
        assert_eq!(get("other", "REFUSED"), 1);
        assert_eq!(get("none", "FORMERR"), 1);
        assert_eq!(get("SOA", "other"), 1);
        assert_eq!(rows.len(), 5);
    }

    #[test]
    fn the_exposition_names_types_and_labels_every_family_as_before() {
        let m = Metrics::default();
        m.queries.inc(Some(RecordType::TXT), ResponseCode::NXDomain);
        m.updates_accepted.inc(&["_acme.example.org.", "changed"]);
        m.updates_failed.fetch_add(2, Ordering::Relaxed);
        m.tsig_failures.inc(&["(unknown)", "badkey"]);
        m.records_expired.add(&["_acme.example.org."], 3);
        m.updates_refused.inc(&["acl"]);
        let text = exposition(&m);
        for line in [
            "# HELP zonewarden_queries_total DNS queries answered, by query type and response code.\n",
            "# TYPE zonewarden_queries_total counter\n",
            "zonewarden_queries_total{type=\"TXT\",rcode=\"NXDOMAIN\"} 1\n",
            "# HELP zonewarden_updates_accepted_total UPDATEs accepted, by zone and whether they changed the zone.\n",
            "zonewarden_updates_accepted_total{zone=\"_acme.example.org.\",result=\"changed\"} 1\n",
            "# TYPE zonewarden_updates_failed_total counter\n",
            "zonewarden_updates_failed_total 2\n",
            "# HELP zonewarden_tsig_failures_total TSIG verification failures, by key (\"(unknown)\" for keys not configured) and error.\n",
            "zonewarden_tsig_failures_total{key=\"(unknown)\",error=\"badkey\"} 1\n",
            "zonewarden_records_expired_total{zone=\"_acme.example.org.\"} 3\n",
            "# TYPE zonewarden_updates_refused_total counter\n",
            "zonewarden_updates_refused_total{reason=\"acl\"} 1\n",
            "zonewarden_sqlite_commit_failures_total 0\n",
            "# TYPE zonewarden_sqlite_commit_duration_seconds histogram\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        // A family nothing was counted in has no samples, and is not declared.
        assert!(!text.contains("zonewarden_notify_failed"), "{text}");
        assert_eq!(m.records_expired.get(&["_acme.example.org."]), 3);
        assert_eq!(m.records_expired.get(&["other.test."]), 0);
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.notify_sent.inc(&["z.", "x\"y\\z\nw"]);
        let text = exposition(&m);
        assert!(
            text.contains(
                "zonewarden_notify_sent_total{zone=\"z.\",secondary=\"x\\\"y\\\\z\\nw\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let m = Metrics::default();
        m.commit_done(Duration::from_micros(500), 1, true);
        m.commit_done(Duration::from_millis(5), 1, true);
        m.commit_done(Duration::from_secs(1), 5, true);
        m.commit_done(Duration::from_secs(1), 2, false);
        let text = exposition(&m);
        let h = "zonewarden_sqlite_commit_duration_seconds";
        for line in [
            format!("{h}_bucket{{le=\"0.0005\"}} 1\n"),
            format!("{h}_bucket{{le=\"0.005\"}} 2\n"),
            format!("{h}_bucket{{le=\"1\"}} 3\n"),
            format!("{h}_bucket{{le=\"+Inf\"}} 3\n"),
            format!("{h}_count 3\n"),
            format!("{h}_sum 1.0055\n"),
            "zonewarden_sqlite_commit_failures_total 1\n".to_string(),
            // 7 changes in 3 commits: the failed one's 2 are not counted
            "zonewarden_sqlite_committed_changes_total 7\n".to_string(),
        ] {
            assert!(text.contains(&line), "{line:?} in\n{text}");
        }
        assert!(m.last_commit_failed.load(Ordering::Relaxed));
    }

    #[test]
    fn scrape_time_gauges_with_and_without_labels() {
        let mut r = Metrics::default().registry();
        register_gauge(&mut r, "g_plain", "A gauge", 1.0);
        register_gauges(
            &mut r,
            "g_family",
            "Per zone",
            [
                (vec![("zone", "a.".to_string())], 7.0),
                (vec![("zone", "b.".to_string())], f64::NAN),
            ],
        );
        register_gauges(&mut r, "g_empty", "None yet", []);
        let text = encode(&r).unwrap();
        for line in [
            "# HELP g_plain A gauge.\n# TYPE g_plain gauge\ng_plain 1",
            "g_family{zone=\"a.\"} 7",
            "g_family{zone=\"b.\"} NaN\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("g_empty"), "{text}");
    }

    #[test]
    fn tallies_count_by_fixed_labels_and_appear_once_counted() {
        let m = Metrics::default();
        assert!(!exposition(&m).contains("zonewarden_rrl_limited"));
        m.rrl_limited.inc(&[RRL_SLIPPED, 2]);
        m.rrl_limited.inc(&[RRL_SLIPPED, 2]);
        m.rrl_limited.inc(&[RRL_DROPPED, 7]);
        m.log_suppressed.inc(&[LOG_TSIG_FAILURE]);
        let text = exposition(&m);
        for line in [
            "# TYPE zonewarden_rrl_limited_total counter\n",
            "zonewarden_rrl_limited_total{action=\"slipped\",class=\"nxdomain\"} 2\n",
            "zonewarden_rrl_limited_total{action=\"dropped\",class=\"dnskey\"} 1\n",
            "zonewarden_log_lines_suppressed_total{kind=\"tsig_failure\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("zonewarden_cookies"), "{text}");
        assert_eq!(m.rrl_limited.get(&[RRL_SLIPPED, 2]), 2);
        assert_eq!(m.rrl_limited.total(), 3);
    }
}

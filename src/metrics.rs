//! What the server counts, and the Prometheus text exposition of it
//! (format 0.0.4: `# HELP`, `# TYPE`, samples; label values escaped).
//!
//! Hand-written rather than a crate: a dozen counter families, one
//! histogram, no dependencies. Counters are atomics or small maps behind a
//! mutex (queries: a fixed table of atomics, so the query path takes no
//! lock and allocates nothing), updated where the outcome is decided (`server` for queries, TSIG
//! failures and update outcomes, `app` for reloads and expiry, `notify` for
//! NOTIFY, `store` for commit latency). Gauges that describe state (serials,
//! lag, signature horizon) are computed when `/metrics` is scraped, from the
//! same snapshots the DNS side serves; see `http::api::render_metrics`.
//!
//! Label values come from closed sets (record type names, RCODE names,
//! refusal reasons) or from configuration (zone, secondary and key names),
//! never from arbitrary request data, so an attacker cannot grow the series
//! count: a TSIG failure naming an unknown key is counted under
//! `key="(unknown)"`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::rr::RecordType;

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

/// A counter with labels: label values → count.
#[derive(Debug, Default)]
pub struct CounterVec {
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterVec {
    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    pub fn add(&self, labels: &[&str], n: u64) {
        let mut m = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        *m.entry(key).or_insert(0) += n;
    }

    /// The count for exactly these label values (0 if never counted).
    pub fn get(&self, labels: &[&str]) -> u64 {
        let m = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        m.get(&key).copied().unwrap_or(0)
    }

    fn snapshot(&self) -> Vec<(Vec<String>, u64)> {
        let m = self.values.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Answered queries by type and RCODE, counted without a lock or an
/// allocation (the query path never locks): one atomic per (type, rcode)
/// slot. Types outside [`QUERY_TYPES`] count as "other"; RCODEs above 16
/// as the last slot.
#[derive(Debug)]
pub struct QueryCounter {
    slots: Vec<AtomicU64>,
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
    pub fn inc(&self, qtype: Option<RecordType>, rcode: hickory_proto::op::ResponseCode) {
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

    /// The non-zero counts as labelled rows, for the exposition.
    fn to_counter_vec(&self) -> CounterVec {
        let out = CounterVec::default();
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
                rcode_name(<hickory_proto::op::ResponseCode as From<u16>>::from(
                    r as u16,
                ))
            };
            out.add(&[&qtype, &rcode], n);
        }
        out
    }
}

/// Upper bounds (seconds) of the commit latency buckets: an fsync on an SSD
/// is about a millisecond, on a busy disk tens.
pub const COMMIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A fixed-bucket histogram of durations.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last one is +Inf.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

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
    pub last_commit_failed: std::sync::atomic::AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            queries: QueryCounter::default(),
            updates_accepted: CounterVec::default(),
            updates_refused: CounterVec::default(),
            updates_failed: AtomicU64::new(0),
            tsig_failures: CounterVec::default(),
            acl_reloads: CounterVec::default(),
            records_expired: CounterVec::default(),
            notify_sent: CounterVec::default(),
            notify_failed: CounterVec::default(),
            transfers: CounterVec::default(),
            commit_seconds: Histogram::new(COMMIT_BUCKETS),
            commit_failures: AtomicU64::new(0),
            last_commit_failed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// Record one commit attempt (called by `store`).
    pub fn commit_done(&self, took: Duration, ok: bool) {
        if ok {
            self.commit_seconds.observe(took);
        } else {
            self.commit_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.last_commit_failed.store(!ok, Ordering::Relaxed);
    }

    /// The counters and the histogram, in exposition format.
    pub fn render(&self, out: &mut Exposition) {
        out.counter_vec(
            "zonewarden_queries_total",
            "DNS queries answered, by query type and response code.",
            &["type", "rcode"],
            &self.queries.to_counter_vec(),
        );
        out.counter_vec(
            "zonewarden_updates_accepted_total",
            "UPDATEs accepted, by zone and whether they changed the zone.",
            &["zone", "result"],
            &self.updates_accepted,
        );
        out.counter_vec(
            "zonewarden_updates_refused_total",
            "UPDATEs refused, by reason.",
            &["reason"],
            &self.updates_refused,
        );
        out.counter(
            "zonewarden_updates_failed_total",
            "UPDATEs that could not be committed (answered SERVFAIL, nothing changed).",
            self.updates_failed.load(Ordering::Relaxed),
        );
        out.counter_vec(
            "zonewarden_tsig_failures_total",
            "TSIG verification failures, by key (\"(unknown)\" for keys not configured) and error.",
            &["key", "error"],
            &self.tsig_failures,
        );
        out.counter_vec(
            "zonewarden_acl_reloads_total",
            "ACL and key reloads, by result.",
            &["result"],
            &self.acl_reloads,
        );
        out.counter_vec(
            "zonewarden_records_expired_total",
            "Stale challenge records removed by expiry.",
            &["zone"],
            &self.records_expired,
        );
        out.counter_vec(
            "zonewarden_notify_sent_total",
            "NOTIFYs acknowledged by a secondary.",
            &["zone", "secondary"],
            &self.notify_sent,
        );
        out.counter_vec(
            "zonewarden_notify_failed_total",
            "NOTIFYs not acknowledged (timeout, error answer); each is retried.",
            &["zone", "secondary"],
            &self.notify_failed,
        );
        out.counter_vec(
            "zonewarden_transfers_total",
            "Zone transfers served, by form.",
            &["form"],
            &self.transfers,
        );
        out.counter(
            "zonewarden_sqlite_commit_failures_total",
            "SQLite commits that failed (nothing changed).",
            self.commit_failures.load(Ordering::Relaxed),
        );
        out.histogram(
            "zonewarden_sqlite_commit_duration_seconds",
            "Time to commit one change to SQLite, fsync included.",
            &self.commit_seconds,
        );
    }
}

/// A Prometheus text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// Escape a label value: backslash, double quote and line feed.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as the exposition format writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_string(self) -> String {
        self.text
    }

    /// `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, "counter");
        self.sample(name, &[], value as f64);
    }

    pub fn counter_vec(&mut self, name: &str, help: &str, labels: &[&str], c: &CounterVec) {
        self.family(name, help, "counter");
        for (values, n) in c.snapshot() {
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .copied()
                .zip(values.iter().map(|s| s.as_str()))
                .collect();
            self.sample(name, &pairs, n as f64);
        }
    }

    /// A gauge family with one sample per label set.
    pub fn gauge_vec(&mut self, name: &str, help: &str, samples: &[(Vec<(&str, &str)>, f64)]) {
        self.family(name, help, "gauge");
        for (labels, v) in samples {
            self.sample(name, labels, *v);
        }
    }

    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, b) in h.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let le = match h.bounds.get(i) {
                Some(v) => number(*v),
                None => "+Inf".into(),
            };
            self.sample(&bucket, &[("le", &le)], cumulative as f64);
        }
        let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], cumulative as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let rows = q.to_counter_vec();
        assert_eq!(rows.get(&["TXT", "NOERROR"]), 2);
        assert_eq!(rows.get(&["TXT", "NXDOMAIN"]), 1);
        assert_eq!(rows.get(&["other", "REFUSED"]), 1);
        assert_eq!(rows.get(&["none", "FORMERR"]), 1);
        assert_eq!(rows.get(&["SOA", "other"]), 1);
        assert_eq!(rows.snapshot().len(), 5);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::new();
        e.sample("m", &[("a", "x\"y\\z\nw")], 1.0);
        assert_eq!(e.into_string(), "m{a=\"x\\\"y\\\\z\\nw\"} 1\n");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        let mut e = Exposition::new();
        e.histogram("h", "help", &h);
        let text = e.into_string();
        assert!(text.contains("h_bucket{le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("h_bucket{le=\"0.01\"} 2\n"), "{text}");
        assert!(text.contains("h_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("h_count 3\n"), "{text}");
        assert!(text.contains("h_sum 1.0055\n"), "{text}");
    }
}

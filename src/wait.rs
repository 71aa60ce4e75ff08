//! `zonewarden wait`: return as soon as every nameserver of a zone serves a
//! serial (or a TXT value, or given records: `dane publish`), or report the
//! laggards. It asks each
//! nameserver directly (the primary's listen address and every configured
//! secondary), the way lego and the CAs' vantage points will see them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, Record};

use crate::config::Config;
use crate::dnsclient::{self, serial_at_least};
use crate::zonefile::ZoneSpec;

const ASK_TIMEOUT: Duration = Duration::from_secs(2);
const PAUSE: Duration = Duration::from_millis(250);

/// One nameserver to ask.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: String,
    pub addr: SocketAddr,
}

/// What to wait for.
#[derive(Debug, Clone)]
pub enum Goal {
    /// SOA serial at least this (RFC 1982).
    Serial(u32),
    /// This TXT value present at this name.
    Txt { name: Name, value: String },
    /// Every one of these records (owner, type and rdata; TTL ignored) served.
    Records(Vec<Record>),
}

/// The primary (our first listen address; a wildcard address is asked on
/// loopback) and every secondary of the zone.
pub fn targets(config: &Config, zone: &ZoneSpec) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(listen) = config.listen.first() {
        let ip = match listen.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let addr = SocketAddr::new(ip, listen.port());
        out.push(Target {
            label: format!("primary {addr}"),
            addr,
        });
    }
    for s in &zone.secondaries {
        out.push(Target {
            label: s.label.clone(),
            addr: s.address,
        });
    }
    out
}

/// What one target serves now, as a line for the report; Ok(true) when it
/// meets the goal.
async fn check(t: &Target, zone: &Name, goal: &Goal) -> (bool, String) {
    match goal {
        Goal::Serial(want) => match dnsclient::soa_serial(t.addr, zone, ASK_TIMEOUT).await {
            Ok(have) => (serial_at_least(have, *want), format!("serial {have}")),
            Err(e) => (false, e.to_string()),
        },
        Goal::Txt { name, value } => match dnsclient::txt(t.addr, name, ASK_TIMEOUT).await {
            Ok(values) => (values.iter().any(|v| v == value), format!("TXT {values:?}")),
            Err(e) => (false, e.to_string()),
        },
        Goal::Records(want) => {
            let mut missing = Vec::new();
            for r in want {
                match dnsclient::rrset(t.addr, &r.name, r.record_type(), ASK_TIMEOUT).await {
                    Ok(have) if have.iter().any(|h| h.data == r.data) => {}
                    Ok(_) => missing.push(format!("{} {} {}", r.name, r.record_type(), r.data)),
                    Err(e) => return (false, e.to_string()),
                }
            }
            if missing.is_empty() {
                (true, "serves every record".into())
            } else {
                (false, format!("lacks {}", missing.join("; ")))
            }
        }
    }
}

/// Poll every target until all meet the goal (Ok) or the time is up (Err
/// with each laggard and what it serves).
pub async fn wait(
    targets: &[Target],
    zone: &Name,
    goal: &Goal,
    timeout: Duration,
) -> Result<Duration, Vec<(String, String)>> {
    let start = Instant::now();
    let mut pending: Vec<Target> = targets.to_vec();
    loop {
        // Ask every pending nameserver at once; each question is bounded.
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in pending.iter().cloned().enumerate() {
            let (zone, goal) = (zone.clone(), goal.clone());
            set.spawn(async move { (i, check(&t, &zone, &goal).await) });
        }
        let mut results = vec![(false, String::from("no answer")); pending.len()];
        while let Some(Ok((i, r))) = set.join_next().await {
            results[i] = r;
        }
        let mut laggards = Vec::new();
        let mut still = Vec::new();
        for (t, (ok, state)) in pending.into_iter().zip(results) {
            if !ok {
                laggards.push((t.label.clone(), state));
                still.push(t);
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() + PAUSE >= timeout {
            return Err(laggards);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

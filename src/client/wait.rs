//! `zonewarden wait`: return as soon as every nameserver of a zone serves a
//! serial (or a TXT value, or given records: `dane publish`), or report the
//! laggards. It asks each
//! nameserver directly (the primary's listen address and every configured
//! secondary), the way lego and the CAs' vantage points will see them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::config::Config;
use crate::dnsclient;
use crate::serial;
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

/// Why the nameservers of a zone could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum NsSetError {
    /// The server did not answer the NS or glue question.
    #[error("{0}")]
    Unreachable(String),
    /// A nameserver name has no address.
    #[error("{0}")]
    NoAddress(String),
}

/// The nameservers a change must reach: `server` (the primary that took
/// it) first, then each of `extra`, or, when `extra` is empty, the zone's
/// NS set as `server` serves it: addresses from its glue for names inside
/// the zone, from the system resolver for names outside; port 53, as lego
/// and the CAs' vantage points ask them.
pub async fn server_and_nameservers(
    server: SocketAddr,
    zone: &Name,
    extra: &[SocketAddr],
    ask: Duration,
) -> Result<Vec<Target>, NsSetError> {
    let mut targets = vec![Target {
        label: format!("server {server}"),
        addr: server,
    }];
    let mut push = |label: String, addr: SocketAddr| {
        if !targets.iter().any(|t| t.addr == addr) {
            targets.push(Target { label, addr });
        }
    };
    if !extra.is_empty() {
        for a in extra {
            push(format!("nameserver {a}"), *a);
        }
        return Ok(targets);
    }
    let unreachable = |e: String| NsSetError::Unreachable(e);
    let ns = dnsclient::rrset(server, zone, RecordType::NS, ask)
        .await
        .map_err(|e| unreachable(format!("{zone} NS: {e}")))?;
    for r in &ns {
        let RData::NS(name) = &r.data else { continue };
        let name: &Name = &name.0;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        if zone.zone_of(name) {
            for t in [RecordType::A, RecordType::AAAA] {
                let glue = dnsclient::rrset(server, name, t, ask)
                    .await
                    .map_err(|e| unreachable(format!("{name} {t}: {e}")))?;
                addrs.extend(glue.iter().filter_map(|g| match &g.data {
                    RData::A(a) => Some(SocketAddr::new(a.0.into(), 53)),
                    RData::AAAA(a) => Some(SocketAddr::new(a.0.into(), 53)),
                    _ => None,
                }));
            }
        } else {
            let host = name.to_ascii();
            let found = tokio::net::lookup_host((host.trim_end_matches('.'), 53))
                .await
                .map_err(|e| {
                    NsSetError::NoAddress(format!(
                        "cannot find the address of nameserver {name}: {e}; \
                         list the nameservers with --nameserver ADDR:PORT"
                    ))
                })?;
            addrs.extend(found);
        }
        if addrs.is_empty() {
            return Err(NsSetError::NoAddress(format!(
                "nameserver {name} of {zone} has no address; list the nameservers with \
                 --nameserver ADDR:PORT"
            )));
        }
        // An address this host has no route to (IPv6 glue on an IPv4-only
        // machine) cannot be asked; the NS is reached through the others,
        // as lego and the CAs reach it through the family they have.
        let (routable, unroutable): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
            .into_iter()
            .partition(|a| dnsclient::route_source(*a).is_some());
        if routable.is_empty() {
            return Err(NsSetError::NoAddress(format!(
                "no address of nameserver {name} of {zone} is reachable from this host \
                 ({}); list the nameservers with --nameserver ADDR:PORT",
                unroutable
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for a in routable {
            push(format!("{name} ({a})"), a);
        }
    }
    Ok(targets)
}

/// What one target serves now, as a line for the report; Ok(true) when it
/// meets the goal.
async fn check(t: &Target, zone: &Name, goal: &Goal) -> (bool, String) {
    match goal {
        Goal::Serial(want) => match dnsclient::soa_serial(t.addr, zone, ASK_TIMEOUT).await {
            Ok(have) => (serial::at_least(have, *want), format!("serial {have}")),
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

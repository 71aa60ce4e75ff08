//! `zonewarden dane publish`: the deploy hook. Publishes the TLSA record of
//! a newly issued certificate and retires the old one without a moment in
//! which DANE clients would reject the service (RFC 7671 §8.1):
//!
//! 1. read the TLSA RRset the server serves at every port's owner name;
//! 2. if the wanted record is at every one and nothing stale is beside it
//!    (a reused key: certbot `--reuse-key`, RFC 8739 STAR), change nothing
//!    and run `--then` at once;
//! 3. otherwise add the missing records (and the `--next-key` record) in
//!    ONE TSIG-signed UPDATE, wait until every nameserver serves them, then
//!    hold 2 × the TTL of the RRset resolvers may have cached;
//! 4. run `--then` (the service switches to the new certificate);
//! 5. remove the records that match neither the current chain nor the next
//!    key, in one UPDATE whose prerequisite (RFC 2136 §2.4.2) is the RRset
//!    as just read: a concurrent change makes it fail (NXRRSET), it is read
//!    again and the removal recomputed, at most three times.
//!
//! Every step reads its state from DNS, so a run stopped anywhere can be
//! repeated; a failure leaves the old and the new record published (clients
//! accept either certificate) and the error says what to do next. Without
//! `--then` the old records are kept: nothing tells us when the service
//! presents the new certificate.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TLSA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::client::wait::{self, Goal, NsSetError, Target};
use crate::clock::Clock;
use crate::dane::cert::{Chain, NextKey};
use crate::dane::tlsa::{
    TlsaParams, chain_matches, next_matches, record, same_tlsa, tlsa, tlsa_for_next,
};
use crate::dnsclient::{self, ClientError};
use crate::tsig::Key;

/// How long one question to a nameserver may take.
const ASK: Duration = Duration::from_secs(5);
/// How often the removal is recomputed when its prerequisite fails.
const REMOVE_ATTEMPTS: usize = 3;

/// Everything `dane publish` needs, validated.
#[derive(Debug, Clone)]
pub struct Request {
    pub chain: Chain,
    pub next: Option<NextKey>,
    pub params: TlsaParams,
    /// The zone the UPDATEs name (RFC 2136 §2.3).
    pub zone: Name,
    /// `_<port>._<proto>.<host>` for every port.
    pub owners: Vec<Name>,
    /// TTL of the records added (the server clamps it to its limits).
    pub ttl: u32,
    /// The primary: where UPDATEs go and the RRsets are read.
    pub server: SocketAddr,
    pub key: Key,
    /// Nameservers that must serve the new record besides `server`; empty:
    /// the zone's NS set as `server` serves it (addresses from its glue, or
    /// the system resolver for names outside the zone), port 53.
    pub nameservers: Vec<SocketAddr>,
    /// Shell command that makes the service present the new certificate.
    pub then: Option<String>,
    /// How long to wait for every nameserver to serve the new record.
    pub timeout: Duration,
}

/// Waiting, injected so tests need not sleep through 2 × TTL.
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync {
    async fn sleep(&self, d: Duration);
}

/// The real thing.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait::async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

/// What a successful run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub added: Vec<(Name, TLSA)>,
    pub removed: Vec<(Name, TLSA)>,
    /// The 2 × TTL hold, when there was one.
    pub held: Option<Duration>,
    pub ran_then: bool,
}

/// Why a run stopped. Each message says what state DNS is in and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}\nNothing was changed.")]
    Input(String),
    #[error(
        "cannot read the TLSA records from {server}: {error}\nNothing was changed. \
         Check --server and that the server is running, then re-run."
    )]
    Unreachable { server: SocketAddr, error: String },
    #[error("the server answered {rcode} to the UPDATE adding {what}{hint}\nNothing was changed.")]
    Refused {
        rcode: String,
        what: String,
        hint: String,
    },
    #[error(
        "the UPDATE adding {what} got no usable answer: {error}\nIt may or may not have \
         been applied; re-running this same command is safe and finds out."
    )]
    AddUncertain { what: String, error: String },
    #[error(
        "not every nameserver serves the new TLSA record after {timeout} s:\n{laggards}\
         The new record is published on {server} beside any old ones, so clients accept \
         the old and the new certificate alike; --then was NOT run and nothing was removed.\n\
         When the lagging nameservers have caught up, re-run this same command: it finds \
         the new record in place and continues."
    )]
    Propagation {
        timeout: u64,
        server: SocketAddr,
        laggards: String,
    },
    #[error(
        "--then `{command}` {status}.\nThe old and the new TLSA records both stay \
         published, so clients accept either certificate. Fix the service, then re-run \
         this same command: it holds 2 x TTL again, runs --then and removes the old records."
    )]
    Then { command: String, status: String },
    #[error(
        "the service was switched (--then succeeded) but the old TLSA records were not \
         removed: {detail}\nThe old and the new records both stay published, which is \
         harmless. Re-run this same command to remove them (it runs --then once more)."
    )]
    Cleanup { detail: String },
}

impl PublishError {
    /// The process exit status (documented in docs/dane.md, "Failure handling").
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable { .. } | Self::AddUncertain { .. } => 1,
            Self::Input(_) => 2,
            Self::Refused { .. } => 3,
            Self::Propagation { .. } => 4,
            Self::Then { .. } => 5,
            Self::Cleanup { .. } => 6,
        }
    }
}

fn tlsa_of(r: &Record) -> Option<&TLSA> {
    match &r.data {
        RData::TLSA(t) => Some(t),
        _ => None,
    }
}

fn line(owner: &Name, t: &TLSA) -> String {
    format!("{owner} TLSA {t}")
}

macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
        let _ = $out.flush();
    }};
}

/// Run the whole rollover; progress goes to `out`.
pub async fn publish(
    req: &Request,
    clock: &dyn Clock,
    sleeper: &dyn Sleeper,
    out: &mut (dyn Write + Send),
) -> Result<Outcome, PublishError> {
    let now = clock.now();
    let wanted = tlsa(&req.chain, req.params, now as i64)
        .map_err(|e| PublishError::Input(format!("certificate: {e}")))?;
    let next = req
        .next
        .as_ref()
        .map(|n| tlsa_for_next(n, req.params))
        .transpose()
        .map_err(|e| PublishError::Input(format!("--next-key: {e}")))?
        // the next key being the current one adds nothing
        .filter(|n| !same_tlsa(n, &wanted));
    say!(
        out,
        "certificate {} (notAfter {}): TLSA {wanted}",
        req.chain.leaf().subject(),
        crate::dane::cert::utc(req.chain.leaf().not_after())
    );
    if let Some(n) = &next {
        say!(out, "next key: TLSA {n}");
    }
    let keep = |t: &TLSA| {
        chain_matches(&req.chain, t) || req.next.as_ref().is_some_and(|n| next_matches(n, t))
    };

    // 1. What the server serves now.
    let before = read_all(req).await?;
    let mut adds: Vec<Record> = Vec::new();
    let mut stale = 0usize;
    for (owner, rrs) in req.owners.iter().zip(&before) {
        let have: Vec<&TLSA> = rrs.iter().filter_map(tlsa_of).collect();
        for t in &have {
            let state = if same_tlsa(t, &wanted) {
                "current"
            } else if next.as_ref().is_some_and(|n| same_tlsa(t, n)) {
                "next key"
            } else if keep(t) {
                "matches the current chain"
            } else {
                stale += 1;
                "old: to be removed after --then"
            };
            say!(out, "  {}  ({state})", line(owner, t));
        }
        if have.is_empty() {
            say!(out, "  {owner}: no TLSA records yet");
        }
        for w in std::iter::once(&wanted).chain(next.as_ref()) {
            if !have.iter().any(|t| same_tlsa(t, w)) {
                adds.push(record(owner, req.ttl, w));
            }
        }
    }

    // 2. A reused key: DNS is already right.
    if adds.is_empty() && stale == 0 {
        say!(
            out,
            "every port already publishes TLSA {wanted}: nothing to change in DNS"
        );
        let ran_then = run_then(req, out).await?;
        return Ok(Outcome {
            ran_then,
            ..Outcome::default()
        });
    }

    // 3. Add, propagate, hold. Whom to ask is settled before anything changes.
    let targets = nameservers(req).await?;
    let mut outcome = Outcome::default();
    if !adds.is_empty() {
        let what = adds
            .iter()
            .filter_map(|r| tlsa_of(r).map(|t| line(&r.name, t)))
            .collect::<Vec<_>>()
            .join(", ");
        let rcode = dnsclient::update(
            req.server,
            &req.zone,
            Vec::new(),
            adds.clone(),
            &req.key,
            clock.now(),
            ASK,
        )
        .await
        .map_err(|e| add_error(req, &what, e))?;
        if rcode != ResponseCode::NoError {
            return Err(refused(req, rcode, what));
        }
        say!(out, "added {what}");
        outcome.added = adds
            .iter()
            .filter_map(|r| tlsa_of(r).map(|t| (r.name.clone(), t.clone())))
            .collect();
    }
    let mut goal: Vec<Record> = Vec::new();
    for owner in &req.owners {
        for w in std::iter::once(&wanted).chain(next.as_ref()) {
            goal.push(record(owner, req.ttl, w));
        }
    }
    say!(
        out,
        "waiting until {} nameserver(s) serve it: {}",
        targets.len(),
        targets
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    match wait::wait(&targets, &req.zone, &Goal::Records(goal), req.timeout).await {
        Ok(took) => say!(
            out,
            "every nameserver serves it (after {:.1} s)",
            took.as_secs_f64()
        ),
        Err(laggards) => {
            let mut text = String::new();
            for (label, state) in laggards {
                let _ = writeln!(text, "  {label}: {state}");
            }
            return Err(PublishError::Propagation {
                timeout: req.timeout.as_secs(),
                server: req.server,
                laggards: text,
            });
        }
    }
    // RFC 7671 §8.1: resolvers may hold the RRset as it was (without the
    // new record) for its TTL; a name without TLSA was cached as absent for
    // the negative TTL. Two of those, as the RFC asks.
    let negative = negative_ttl(req).await;
    let cached = before
        .iter()
        .map(|rrs| rrs.iter().map(|r| r.ttl).max().unwrap_or(negative))
        .max()
        .unwrap_or(0);
    let hold = Duration::from_secs(2 * u64::from(cached));
    say!(
        out,
        "holding {} s (2 x TTL {cached}, RFC 7671 section 8.1) so no resolver still holds a \
         TLSA set without the new record",
        hold.as_secs()
    );
    sleeper.sleep(hold).await;
    outcome.held = Some(hold);

    // 4. Switch the service.
    outcome.ran_then = run_then(req, out).await?;
    if !outcome.ran_then {
        say!(
            out,
            "no --then: the old records stay published, since nothing says when the service \
             presents the new certificate. Once it does, run this again with --then \
             (your reload command, or `true`) to remove them."
        );
        return Ok(outcome);
    }

    // 5. Remove what matches neither the current chain nor the next key.
    outcome.removed = remove_stale(req, &wanted, &keep, clock, out).await?;
    Ok(outcome)
}

/// The RRset at every owner, as the primary serves it.
async fn read_all(req: &Request) -> Result<Vec<Vec<Record>>, PublishError> {
    let mut all = Vec::with_capacity(req.owners.len());
    for owner in &req.owners {
        let rrs = dnsclient::rrset(req.server, owner, RecordType::TLSA, ASK)
            .await
            .map_err(|e| PublishError::Unreachable {
                server: req.server,
                error: format!("{owner} TLSA: {e}"),
            })?;
        all.push(rrs);
    }
    Ok(all)
}

/// min(SOA TTL, SOA MINIMUM) of the zone (RFC 2308 §5); 0 if unknown.
async fn negative_ttl(req: &Request) -> u32 {
    dnsclient::rrset(req.server, &req.zone, RecordType::SOA, ASK)
        .await
        .ok()
        .and_then(|rrs| {
            rrs.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })
        })
        .unwrap_or(0)
}

/// `--server` first, then each `--nameserver`, or else the zone's NS set.
async fn nameservers(req: &Request) -> Result<Vec<Target>, PublishError> {
    wait::server_and_nameservers(req.server, &req.zone, &req.nameservers, ASK)
        .await
        .map_err(|e| match e {
            NsSetError::Unreachable(error) => PublishError::Unreachable {
                server: req.server,
                error,
            },
            NsSetError::NoAddress(msg) => PublishError::Input(msg),
        })
}

fn add_error(req: &Request, what: &str, e: ClientError) -> PublishError {
    match e {
        ClientError::Tsig(detail) => PublishError::Refused {
            rcode: "NOTAUTH".into(),
            what: what.into(),
            hint: format!(
                ": the server did not accept the TSIG key {} ({detail}). Check the key file \
                 and that this machine's clock is within 5 minutes of the server's.",
                req.key.name
            ),
        },
        ClientError::Timeout(_) | ClientError::Io(_) | ClientError::Malformed(_) => {
            PublishError::AddUncertain {
                what: what.into(),
                error: e.to_string(),
            }
        }
        ClientError::Rcode(rcode) => refused(req, rcode, what.into()),
    }
}

fn refused(req: &Request, rcode: ResponseCode, what: String) -> PublishError {
    let hint = match rcode {
        ResponseCode::Refused => format!(
            ": key {} may not change these names. Its ACL (acl/<machine>.toml) needs a grant \
             covering them, such as name = \"_*._tcp.{{machine}}\", types = [\"TLSA\"]; \
             or use --host for a name the machine owns.",
            req.key.name
        ),
        ResponseCode::NotZone => format!(
            ": the names are not inside the zone {} (check --zone and --host).",
            req.zone
        ),
        ResponseCode::NotAuth => format!(
            ": the server is not authoritative for {} or rejected the key (check --zone and \
             --key).",
            req.zone
        ),
        _ => ".".into(),
    };
    PublishError::Refused {
        rcode: mnemonic(rcode),
        what,
        hint,
    }
}

/// REFUSED, NXRRSET, NOTAUTH ... as in RFC 2136 and dig.
fn mnemonic(rcode: ResponseCode) -> String {
    format!("{rcode:?}").to_ascii_uppercase()
}

/// Run `--then` through `sh -c`; Ok(false) when there is none.
async fn run_then(req: &Request, out: &mut (dyn Write + Send)) -> Result<bool, PublishError> {
    let Some(cmd) = &req.then else {
        return Ok(false);
    };
    say!(out, "running --then: {cmd}");
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .status()
        .await;
    match status {
        Ok(s) if s.success() => Ok(true),
        Ok(s) => Err(PublishError::Then {
            command: cmd.clone(),
            status: match s.code() {
                Some(c) => format!("exited with status {c}"),
                None => format!("was stopped ({s})"),
            },
        }),
        Err(e) => Err(PublishError::Then {
            command: cmd.clone(),
            status: format!("could not be started: {e}"),
        }),
    }
}

/// One removal UPDATE, computed from the RRsets as read (`sets`, one per
/// owner): the prerequisites (RFC 2136 §2.4.2, "RRset exists (value
/// dependent)": class IN, TTL 0, every RR of each set that loses a record)
/// and the deletes (§2.5.4: class NONE, TTL 0) of every record `keep`
/// rejects. None when nothing is stale; Err when `wanted` is missing
/// somewhere (then nothing may be removed).
#[derive(Debug, Clone, Default)]
pub struct Removal {
    pub prerequisites: Vec<Record>,
    pub deletes: Vec<Record>,
    pub removed: Vec<(Name, TLSA)>,
}

pub fn plan_removal(
    owners: &[Name],
    sets: &[Vec<Record>],
    wanted: &TLSA,
    keep: &dyn Fn(&TLSA) -> bool,
) -> Result<Option<Removal>, String> {
    let mut plan = Removal::default();
    for (owner, rrs) in owners.iter().zip(sets) {
        let have: Vec<&TLSA> = rrs.iter().filter_map(tlsa_of).collect();
        if !have.iter().any(|t| same_tlsa(t, wanted)) {
            return Err(format!(
                "the new record {} is no longer served; someone removed it. Nothing was \
                 removed; re-run this command to publish it again",
                line(owner, wanted)
            ));
        }
        let stale: Vec<&TLSA> = have.iter().copied().filter(|t| !keep(t)).collect();
        if stale.is_empty() {
            continue;
        }
        for r in rrs {
            let mut p = r.clone();
            p.ttl = 0;
            p.dns_class = DNSClass::IN;
            plan.prerequisites.push(p);
        }
        for t in stale {
            let mut d = record(owner, 0, t);
            d.dns_class = DNSClass::NONE;
            plan.deletes.push(d);
            plan.removed.push((owner.clone(), t.clone()));
        }
    }
    Ok((!plan.deletes.is_empty()).then_some(plan))
}

/// Delete the stale records with one UPDATE guarded by the RRsets it was
/// computed from; recompute when someone changed them meanwhile.
async fn remove_stale(
    req: &Request,
    wanted: &TLSA,
    keep: &dyn Fn(&TLSA) -> bool,
    clock: &dyn Clock,
    out: &mut (dyn Write + Send),
) -> Result<Vec<(Name, TLSA)>, PublishError> {
    let cleanup = |detail: String| PublishError::Cleanup { detail };
    for _ in 0..REMOVE_ATTEMPTS {
        let sets = read_all(req).await.map_err(|e| cleanup(e.to_string()))?;
        let Some(plan) = plan_removal(&req.owners, &sets, wanted, keep).map_err(cleanup)? else {
            say!(out, "no old TLSA records to remove");
            return Ok(Vec::new());
        };
        let rcode = dnsclient::update(
            req.server,
            &req.zone,
            plan.prerequisites,
            plan.deletes,
            &req.key,
            clock.now(),
            ASK,
        )
        .await
        .map_err(|e| cleanup(format!("the removal UPDATE failed: {e}")))?;
        match rcode {
            ResponseCode::NoError => {
                for (owner, t) in &plan.removed {
                    say!(out, "removed {}", line(owner, t));
                }
                return Ok(plan.removed);
            }
            ResponseCode::NXRRSet | ResponseCode::YXRRSet => {
                say!(
                    out,
                    "the TLSA records changed meanwhile (prerequisite failed: {}); \
                     reading them again",
                    mnemonic(rcode)
                );
            }
            other => {
                return Err(cleanup(format!(
                    "the server answered {} to the removal UPDATE",
                    mnemonic(other)
                )));
            }
        }
    }
    Err(cleanup(format!(
        "the TLSA records kept changing under us ({REMOVE_ATTEMPTS} attempts)"
    )))
}

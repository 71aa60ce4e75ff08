//! `zonewarden hook`: the DNS-01 challenge hook for ACME clients that cannot
//! send a TSIG-signed RFC 2136 UPDATE through a CNAME themselves: certbot
//! (`--manual-auth-hook` / `--manual-cleanup-hook`), dehydrated (`HOOK=`),
//! and any script (`hook add` / `hook remove`).
//!
//! For each challenge it does what lego's rfc2136 provider does, and waits
//! properly instead of guessing a `propagation_seconds`:
//!
//! 1. follow the CNAME chain of `_acme-challenge.<domain>` through the
//!    resolver (the real zone points it into the delegated zone);
//! 2. find the zone of the name it leads to (`--zone`, or the SOA the
//!    resolver reports) and its primary (`--server`, or the SOA MNAME);
//! 3. send the UPDATE (add the TXT value beside any others, or delete
//!    exactly that value), signed with the machine's key, over TCP;
//! 4. on add, return only when the primary and every nameserver of the
//!    zone serve the value ([`crate::client::wait`]), each asked directly on port 53
//!    as lego and the CAs' vantage points ask them.
//!
//! It asks the resolver only for CNAME, SOA, NS and addresses, never for
//! the TXT itself, so it does not put a negative answer for the challenge
//! into the cache the CA may share.
//!
//! # Limitations
//! One resolver (the first `nameserver` of `/etc/resolv.conf` unless
//! `--resolver`); no search domains; names are taken as absolute.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::client::wait::{self, Goal, NsSetError};
use crate::clock::Clock;
use crate::dnsclient::{self, ClientError};
use crate::tsig::Key;

/// The label in front of the domain (RFC 8555 §8.4).
pub const CHALLENGE_LABEL: &str = "_acme-challenge";
/// How long one question may take.
const ASK: Duration = Duration::from_secs(5);
/// CNAME chains longer than this are refused (resolvers stop near here too).
const MAX_CNAMES: usize = 8;

macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
        let _ = $out.flush();
    }};
}

/// Everything the hook needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The machine's TSIG key.
    pub key: Key,
    /// The delegated zone the challenges must land in; with it, a missing
    /// CNAME is reported with the line to add.
    pub zone: Option<Name>,
    /// Where UPDATEs go; default the zone's SOA MNAME, port 53.
    pub server: Option<SocketAddr>,
    /// The recursive resolver that follows CNAMEs and finds zones.
    pub resolver: SocketAddr,
    /// Nameservers that must serve the value besides the primary; empty:
    /// the zone's NS set.
    pub nameservers: Vec<SocketAddr>,
    /// TTL of the added TXT (the server clamps it to its limits).
    pub ttl: u32,
    /// How long to wait for every nameserver, in all.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
}

/// One DNS-01 challenge: the domain being validated and the TXT value.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub domain: Name,
    pub value: String,
}

impl Challenge {
    /// `domain` as ACME clients pass it (a wildcard's `*.` is dropped: its
    /// challenge lives at the base name, RFC 8555 §8.4).
    pub fn new(domain: &str, value: &str) -> Result<Self, HookError> {
        let bare = domain.strip_prefix("*.").unwrap_or(domain);
        let bare = bare.trim_end_matches('.');
        if bare.is_empty() {
            return Err(HookError::Input(format!("domain {domain:?} is empty")));
        }
        let domain = Name::from_ascii(format!("{bare}."))
            .map_err(|e| HookError::Input(format!("domain {domain:?}: {e}")))?;
        if value.is_empty() || value.len() > 255 {
            return Err(HookError::Input(format!(
                "challenge value for {domain} must be 1 to 255 characters, not {}",
                value.len()
            )));
        }
        Ok(Self {
            domain,
            value: value.to_string(),
        })
    }
}

/// Where a challenge's TXT record goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// `_acme-challenge.<domain>`, the name the CA asks for.
    pub asked: Name,
    /// The end of its CNAME chain: where the TXT record is written.
    pub owner: Name,
    pub zone: Name,
    /// The primary that takes the UPDATE.
    pub server: SocketAddr,
    /// Until when the resolver may still answer NXDOMAIN for `owner` from
    /// its cache, because we asked about it before it existed (RFC 2308:
    /// the SOA's negative TTL). A CA sharing that resolver would fail.
    pub denied_until: Option<Instant>,
}

/// Why the hook stopped; each message says what state DNS is in and what
/// to do. The exit status tells the kind (docs/acme-clients.md, "zonewarden hook").
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Bad arguments or environment: nothing was sent.
    #[error("{0}")]
    Input(String),
    /// The resolver or the server could not be asked, or the answer to the
    /// UPDATE was lost: re-running is safe.
    #[error("{0}")]
    Network(String),
    /// The CNAME in the real zone is missing or points elsewhere: nothing
    /// was sent.
    #[error("{0}")]
    Cname(String),
    /// The server answered the UPDATE with an error: nothing changed.
    #[error("{0}")]
    Refused(String),
    /// Added, but not every nameserver served it in time.
    #[error("{0}")]
    Propagation(String),
}

impl HookError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Network(_) => 1,
            Self::Input(_) => 2,
            Self::Cname(_) | Self::Refused(_) => 3,
            Self::Propagation(_) => 4,
        }
    }
}

/// Command-line values, before validation.
#[derive(Debug, Clone, Default)]
pub struct Args {
    pub key_file: std::path::PathBuf,
    pub zone: Option<String>,
    pub server: Option<String>,
    pub resolver: Option<String>,
    pub nameservers: Vec<String>,
    pub ttl: u32,
    pub timeout: Duration,
}

impl Settings {
    /// Validate the arguments: read the key file, parse the addresses, find
    /// the resolver in /etc/resolv.conf when none is given.
    pub fn from_args(a: &Args) -> Result<Self, HookError> {
        let input = HookError::Input;
        let key = crate::tsig::read_key_file(&a.key_file)
            .map_err(|e| input(format!("key file: {e}")))?
            .into_iter()
            .next()
            .ok_or_else(|| input(format!("{}: no key in the file", a.key_file.display())))?;
        let zone = a
            .zone
            .as_deref()
            .map(|z| crate::zone::absolute_name(z).map_err(|e| input(format!("--zone {z:?}: {e}"))))
            .transpose()?;
        let addr = |what: &str, s: &str| {
            crate::client::cli::parse_server(s).map_err(|e| input(format!("{what} {e}")))
        };
        let server = a
            .server
            .as_deref()
            .map(|s| addr("--server", s))
            .transpose()?;
        let resolver = match &a.resolver {
            Some(r) => addr("--resolver", r)?,
            None => {
                let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                // glibc's default when resolv.conf names none
                resolver_from_resolv_conf(&text)
                    .unwrap_or_else(|| "127.0.0.1:53".parse().expect("valid"))
            }
        };
        let nameservers = a
            .nameservers
            .iter()
            .map(|n| addr("--nameserver", n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            key,
            zone,
            server,
            resolver,
            nameservers,
            ttl: a.ttl,
            timeout: a.timeout,
        })
    }
}

/// certbot's manual hooks: the challenge from `CERTBOT_DOMAIN` and
/// `CERTBOT_VALIDATION` (certbot runs the hook once per challenge).
pub fn certbot_challenge(env: impl Fn(&str) -> Option<String>) -> Result<Challenge, HookError> {
    let get = |k: &str| {
        env(k).filter(|v| !v.is_empty()).ok_or_else(|| {
            HookError::Input(format!(
                "{k} is not set: this command is run by certbot as --manual-auth-hook or \
                 --manual-cleanup-hook (for other clients use `zonewarden hook add DOMAIN VALUE`)"
            ))
        })
    };
    Challenge::new(&get("CERTBOT_DOMAIN")?, &get("CERTBOT_VALIDATION")?)
}

/// A dehydrated hook call: `deploy_challenge` / `clean_challenge` with one
/// or more (with `HOOK_CHAIN=yes`) triples DOMAIN TOKEN_FILE TOKEN_VALUE.
/// Other handlers (deploy_cert, startup_hook, ...) are not ours: None, and
/// the hook does nothing, as dehydrated expects of unknown handlers.
pub fn dehydrated_call(
    handler: &str,
    args: &[String],
) -> Result<Option<(Action, Vec<Challenge>)>, HookError> {
    let action = match handler {
        "deploy_challenge" => Action::Add,
        "clean_challenge" => Action::Remove,
        _ => return Ok(None),
    };
    if args.is_empty() || !args.len().is_multiple_of(3) {
        return Err(HookError::Input(format!(
            "{handler} wants DOMAIN TOKEN_FILENAME TOKEN_VALUE (repeated with HOOK_CHAIN=yes), \
             got {} argument(s)",
            args.len()
        )));
    }
    let challenges = args
        .chunks(3)
        .map(|t| Challenge::new(&t[0], &t[2]))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((action, challenges)))
}

/// The first usable `nameserver` line of a resolv.conf text, port 53.
pub fn resolver_from_resolv_conf(text: &str) -> Option<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        // Scoped IPv6 (fe80::1%eth0) cannot be named by a SocketAddr here.
        .find_map(|a| a.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
}

/// Add or remove every challenge; on add, wait until every nameserver of
/// each zone serves its value. Progress goes to `out`.
pub async fn run(
    s: &Settings,
    action: Action,
    challenges: &[Challenge],
    clock: &dyn Clock,
    out: &mut (dyn Write + Send),
) -> Result<(), HookError> {
    let start = Instant::now();
    let mut sent = Vec::new();
    let mut failed = Vec::new();
    for c in challenges {
        let result = match locate(s, c).await {
            Ok(loc) => {
                if loc.owner != loc.asked {
                    say!(out, "{} is a CNAME to {}", loc.asked, loc.owner);
                }
                update(s, action, &loc, &c.value, clock.now())
                    .await
                    .map(|()| loc)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(loc) => {
                let verb = match action {
                    Action::Add => "added",
                    Action::Remove => "removed",
                };
                say!(
                    out,
                    "{verb} TXT \"{}\" at {} (zone {}, primary {})",
                    c.value,
                    loc.owner,
                    loc.zone,
                    loc.server
                );
                sent.push((loc, c.value.clone()));
            }
            // An add stops at the first failure (the CA would fail anyway);
            // a cleanup goes on with the others and reports them all.
            Err(e) if action == Action::Add => return Err(e),
            Err(e) => failed.push(e),
        }
    }
    if action == Action::Remove {
        return match failed.len() {
            0 => Ok(()),
            1 => Err(failed.remove(0)),
            _ => {
                let code = failed.iter().map(HookError::exit_code).min().unwrap_or(1);
                let text = failed
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                Err(if code == 1 {
                    HookError::Network(text)
                } else {
                    HookError::Refused(text)
                })
            }
        };
    }
    for (loc, value) in &sent {
        let added = |m: String| format!("TXT \"{value}\" at {} is added, but {m}", loc.owner);
        let targets = wait::server_and_nameservers(loc.server, &loc.zone, &s.nameservers, ASK)
            .await
            .map_err(|e| match e {
                NsSetError::Unreachable(m) => HookError::Network(added(format!(
                    "the nameservers of {} cannot be listed: {m}. Re-running is safe.",
                    loc.zone
                ))),
                NsSetError::NoAddress(m) => HookError::Propagation(added(m)),
            })?;
        let left = s.timeout.saturating_sub(start.elapsed());
        let goal = Goal::Txt {
            name: loc.owner.clone(),
            value: value.clone(),
        };
        if let Err(laggards) = wait::wait(&targets, &loc.zone, &goal, left).await {
            let mut m = added(format!(
                "after {:.0} s not every nameserver serves it:\n",
                start.elapsed().as_secs_f64()
            ));
            for (label, state) in laggards {
                let _ = writeln!(m, "  {label}: {state}");
            }
            m.push_str(
                "The CA would fail to see it from some vantage points. Check the \
                 secondaries (zonewarden's /api/v1/zones/ZONE/propagation), then retry.",
            );
            return Err(HookError::Propagation(m));
        }
        // Our own question may have left a cached NXDOMAIN in the resolver;
        // let it run out before the CA is told to look.
        if let Some(until) = loc.denied_until {
            let now = Instant::now();
            if until > now {
                let wait = until - now;
                if start.elapsed() + wait > s.timeout {
                    return Err(HookError::Propagation(added(format!(
                        "the resolver {} may answer NXDOMAIN for it from its cache for \
                         another {:.0} s (the zone's negative TTL), beyond --timeout. \
                         Give --zone so the hook does not ask the resolver about the name.",
                        s.resolver,
                        wait.as_secs_f64()
                    ))));
                }
                say!(
                    out,
                    "waiting {:.1} s for the resolver's cached NXDOMAIN of {} to expire",
                    wait.as_secs_f64(),
                    loc.owner
                );
                tokio::time::sleep(wait).await;
            }
        }
        say!(
            out,
            "{} nameserver(s) of {} serve it (after {:.1} s in all)",
            targets.len(),
            loc.zone,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Follow the CNAMEs of `_acme-challenge.<domain>` and find the zone and
/// the primary of the name they lead to.
pub async fn locate(s: &Settings, c: &Challenge) -> Result<Located, HookError> {
    let asked = Name::from_ascii(CHALLENGE_LABEL)
        .and_then(|l| l.append_domain(&c.domain))
        .map_err(|e| HookError::Input(format!("{CHALLENGE_LABEL}.{}: {e}", c.domain)))?;
    let (owner, mut denied_until) = follow_cnames(s.resolver, &asked, s.zone.as_ref()).await?;
    let zone = match &s.zone {
        Some(z) if z.zone_of(&owner) => z.clone(),
        Some(z) => return Err(cname_error(s.resolver, c, &asked, &owner, z).await),
        None => {
            let (zone, denied) = zone_of(s.resolver, &owner).await?;
            denied_until = denied_until.max(denied);
            zone
        }
    };
    let server = match s.server {
        Some(a) => a,
        None => primary_of(s.resolver, &zone).await?,
    };
    Ok(Located {
        asked,
        owner,
        zone,
        server,
        denied_until,
    })
}

/// Ask the resolver, mapping failures to messages that name it.
async fn ask(resolver: SocketAddr, name: &Name, rtype: RecordType) -> Result<Message, HookError> {
    let m = dnsclient::resolve(resolver, name, rtype, ASK)
        .await
        .map_err(|e| {
            HookError::Network(format!(
                "the resolver {resolver} did not answer {name} {rtype}: {e} (set it with \
                 --resolver ADDR[:PORT]; default the first nameserver in /etc/resolv.conf)"
            ))
        })?;
    match m.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(m),
        ResponseCode::ServFail => Err(HookError::Network(format!(
            "the resolver {resolver} answered SERVFAIL for {name} {rtype}: the name cannot be \
             resolved or fails DNSSEC validation (check the delegation of the zone: its NS and \
             DS in the parent)"
        ))),
        other => Err(HookError::Network(format!(
            "the resolver {resolver} answered {other} for {name} {rtype}"
        ))),
    }
}

/// Until when a resolver may answer NXDOMAIN from its cache after giving
/// this answer: the SOA's TTL capped by its MINIMUM (RFC 2308 §5), plus one
/// second because resolvers count TTLs in whole seconds (unbound keeps an
/// entry through the second it expires in); None for anything but NXDOMAIN
/// (a NODATA for CNAME says nothing of TXT).
fn denial_until(m: &Message) -> Option<Instant> {
    if m.metadata.response_code != ResponseCode::NXDomain {
        return None;
    }
    let ttl = m
        .authorities
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })
        .unwrap_or(0);
    Some(Instant::now() + Duration::from_secs(u64::from(ttl) + 1))
}

/// The end of the CNAME chain from `asked`. A name inside `zone` is taken
/// as the end without asking the resolver, so the resolver does not cache
/// its nonexistence just before the CA asks (the delegated zone holds no
/// CNAMEs of its own).
async fn follow_cnames(
    resolver: SocketAddr,
    asked: &Name,
    zone: Option<&Name>,
) -> Result<(Name, Option<Instant>), HookError> {
    let mut name = asked.clone();
    let mut seen = vec![name.clone()];
    for _ in 0..MAX_CNAMES {
        if zone.is_some_and(|z| z.zone_of(&name)) {
            return Ok((name, None));
        }
        let m = ask(resolver, &name, RecordType::CNAME).await?;
        let next = m.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(t) if r.name == name => Some(t.0.clone()),
            _ => None,
        });
        let Some(next) = next else {
            return Ok((name, denial_until(&m)));
        };
        if seen.contains(&next) {
            return Err(HookError::Cname(format!(
                "the CNAMEs of {asked} loop at {next}"
            )));
        }
        seen.push(next.clone());
        name = next;
    }
    Err(HookError::Cname(format!(
        "{asked} leads through more than {MAX_CNAMES} CNAMEs"
    )))
}

/// The zone `name` is in, from the SOA the resolver returns (in the answer
/// at an apex, else in the authority section), and until when the resolver
/// may answer NXDOMAIN for `name` from its cache.
async fn zone_of(resolver: SocketAddr, name: &Name) -> Result<(Name, Option<Instant>), HookError> {
    let m = ask(resolver, name, RecordType::SOA).await?;
    m.answers
        .iter()
        .chain(m.authorities.iter())
        .find(|r| r.record_type() == RecordType::SOA && r.name.zone_of(name))
        .map(|r| (r.name.clone(), denial_until(&m)))
        .ok_or_else(|| {
            HookError::Network(format!(
                "the resolver {resolver} returned no SOA for {name}: cannot tell its zone \
                 (give --zone)"
            ))
        })
}

/// The zone's SOA MNAME and its first address, port 53.
async fn primary_of(resolver: SocketAddr, zone: &Name) -> Result<SocketAddr, HookError> {
    let m = ask(resolver, zone, RecordType::SOA).await?;
    let mname = m
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == *zone => Some(soa.mname.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            HookError::Network(format!(
                "the resolver {resolver} returned no SOA for {zone}: cannot find its primary \
                 (give --server ADDR[:PORT])"
            ))
        })?;
    for t in [RecordType::A, RecordType::AAAA] {
        let m = ask(resolver, &mname, t).await?;
        if let Some(ip) = m.answers.iter().find_map(|r| match &r.data {
            RData::A(a) => Some(std::net::IpAddr::from(a.0)),
            RData::AAAA(a) => Some(std::net::IpAddr::from(a.0)),
            _ => None,
        }) {
            return Ok(SocketAddr::new(ip, 53));
        }
    }
    Err(HookError::Network(format!(
        "the primary of {zone}, {mname}, has no address (give --server ADDR[:PORT])"
    )))
}

/// The name the CNAME should point to: the domain relative to the zone's
/// parent, under the zone (`mx1.example.org`, `_acme.example.org` →
/// `_acme-challenge.mx1._acme.example.org`), as `machine add` prints it.
pub fn cname_target(domain: &Name, zone: &Name) -> Name {
    let parent = zone.base_name();
    let keep = if parent.zone_of(domain) {
        domain.num_labels() - parent.num_labels()
    } else {
        domain.num_labels()
    };
    let labels: Vec<&[u8]> = std::iter::once(CHALLENGE_LABEL.as_bytes())
        .chain(domain.iter().take(keep as usize))
        .collect();
    Name::from_labels(labels)
        .and_then(|n| n.append_domain(zone))
        .unwrap_or_else(|_| zone.clone())
}

/// The message for a challenge name that does not lead into `zone`.
async fn cname_error(
    resolver: SocketAddr,
    c: &Challenge,
    asked: &Name,
    owner: &Name,
    zone: &Name,
) -> HookError {
    let target = cname_target(&c.domain, zone);
    let line = format!("{asked} CNAME {target}");
    if owner == asked {
        let real = match zone_of(resolver, asked).await {
            Ok((z, _)) => format!("the zone {z}"),
            Err(_) => format!("the zone that holds {}", c.domain),
        };
        HookError::Cname(format!(
            "{asked} has no CNAME, so the CA would look for the challenge outside {zone}, \
             where this key cannot write. Add this record to {real} (once; `zonewarden \
             machine add` prints it):\n  {line}\nNothing was sent."
        ))
    } else {
        HookError::Cname(format!(
            "{asked} leads by CNAME to {owner}, which is outside {zone}. Point it into the \
             zone instead:\n  {line}\nNothing was sent."
        ))
    }
}

/// Send the UPDATE that adds (beside any other values: a wildcard and its
/// base name share one name) or removes exactly this value.
async fn update(
    s: &Settings,
    action: Action,
    loc: &Located,
    value: &str,
    now: u64,
) -> Result<(), HookError> {
    let mut rr = Record::from_rdata(
        loc.owner.clone(),
        s.ttl,
        RData::TXT(TXT::new(vec![value.to_string()])),
    );
    let what = match action {
        Action::Add => format!("adding TXT \"{value}\" at {}", loc.owner),
        Action::Remove => {
            rr.ttl = 0;
            rr.dns_class = DNSClass::NONE;
            format!("removing TXT \"{value}\" at {}", loc.owner)
        }
    };
    let rcode =
        match dnsclient::update(loc.server, &loc.zone, vec![], vec![rr], &s.key, now, ASK).await {
            Ok(rcode) => rcode,
            Err(ClientError::Tsig(detail)) => {
                return Err(HookError::Refused(format!(
                    "the server {} did not accept the key {} for the UPDATE {what}: {detail}. \
                 Check the key file, and that this machine's clock is within 5 minutes of \
                 the server's. Nothing changed.",
                    loc.server, s.key.name
                )));
            }
            Err(ClientError::Rcode(rcode)) => rcode,
            Err(e) => {
                return Err(HookError::Network(format!(
                    "the UPDATE {what} sent to {} got no usable answer: {e}. It may or may not \
                 have been applied; re-running is safe.",
                    loc.server
                )));
            }
        };
    let hint = match rcode {
        ResponseCode::NoError => return Ok(()),
        ResponseCode::ServFail => {
            // Temporary (the server is stopping, or its disk failed):
            // nothing changed and re-running is the fix.
            return Err(HookError::Network(format!(
                "the server {} answered SERVFAIL to the UPDATE {what}: it could not take \
                 the change now (restarting, or see its log). Nothing changed; re-running \
                 is safe.",
                loc.server
            )));
        }
        ResponseCode::Refused => {
            // A limit (max-rrset, records per name) refuses too: say so when
            // the name already holds values, e.g. left by a killed run.
            let held = match action {
                Action::Add => dnsclient::txt(loc.server, &loc.owner, ASK)
                    .await
                    .unwrap_or_default(),
                Action::Remove => Vec::new(),
            };
            let mut hint = format!(
                "key {} may not change {} TXT: the name belongs to another machine, or its \
                 ACL (acl/<machine>.toml on the server) lacks a grant such as name = \
                 \"_acme-challenge.{{machine}}\", types = [\"TXT\"]",
                s.key.name, loc.owner
            );
            if loc.owner != loc.asked {
                let _ = write!(
                    hint,
                    ". Check that the CNAME of {} points at this machine's own name",
                    loc.asked
                );
            }
            if !held.is_empty() {
                let _ = write!(
                    hint,
                    ". Or a limit: the name already holds {} value(s) ({}), perhaps left by \
                     an earlier run, and the ACL's max-rrset or the zone's records-per-name \
                     may allow no more; remove them with `zonewarden hook remove DOMAIN \
                     VALUE` or wait for the server's challenge-max-age",
                    held.len(),
                    held.join(", ")
                );
            }
            hint
        }
        ResponseCode::NotAuth | ResponseCode::NotZone => format!(
            "the server {} is not authoritative for {} (check --server and --zone)",
            loc.server, loc.zone
        ),
        _ => "see the server's log".to_string(),
    };
    Err(HookError::Refused(format!(
        "the server {} answered {} to the UPDATE {what}: {hint}. Nothing changed.",
        loc.server,
        format!("{rcode:?}").to_ascii_uppercase()
    )))
}

#[cfg(test)]
mod tests;

//! Operator verbs that do not serve: `check` (validate everything, like
//! named-checkconf), `machine add` (key + ACL + client snippets), `ds`
//! (the DS and DNSKEY records the parent zone needs), `tlsa` (certificate →
//! TLSA, offline), the argument side of `dane publish` (the work is in
//! `client::publish`) and `api tlsa` (the HTTP API's client).

use std::fmt::Write as _;
use std::path::Path;

use hickory_proto::rr::Name;

use crate::acl::{self, MissingKeys, Policy, load_policy};
use crate::config::Config;
use crate::dnssec::{self, ZoneKey};
use crate::tsig::{self, Algorithm, Key};
use crate::zonefile;

/// Validate config, zones, ACLs and keys; print every problem with its
/// location. Returns the report and whether everything was valid.
pub fn check(config: &Config) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let zones = match zonefile::load_dir(&config.zones_dir) {
        Ok(z) => z,
        Err(errors) => {
            let _ = writeln!(out, "{errors}");
            return (out, false);
        }
    };
    let stored = |zone: &hickory_proto::rr::Name| {
        if config.database.exists() {
            crate::store::Store::open(&config.database)
                .and_then(|s| s.keys(zone))
                .unwrap_or_default()
        } else {
            Vec::new()
        }
    };
    for z in &zones {
        let recorded = stored(&z.origin);
        let active = recorded
            .iter()
            .rev()
            .find(|k| k.state == crate::zone::keys::KeyState::Active);
        let Some(settings) = &z.dnssec else {
            if active.is_some() {
                let _ = writeln!(
                    out,
                    "{}: note: DNSSEC is off in the file but {} is signed: `serve` turns it off step by step (CDS delete, then the parent's DS gone; see `zonewarden dnssec status`)",
                    z.path.display(),
                    z.origin
                );
            }
            continue;
        };
        if let Some(a) = active {
            if a.algorithm != settings.algorithm {
                let _ = writeln!(
                    out,
                    "{}: note: the active key {} is {} and the file asks for {}: `serve` starts an algorithm rollover",
                    z.path.display(),
                    a.tag,
                    a.algorithm.config_name(),
                    settings.algorithm.config_name()
                );
            }
            let path = dnssec::key::key_dir(&config.data_dir).join(&a.file);
            if let Err(e) = ZoneKey::load(&z.origin, &path) {
                ok = false;
                let _ = writeln!(out, "{}: {e}", z.path.display());
            }
            continue;
        }
        let path = dnssec::key::key_path(&config.data_dir, &z.origin);
        match ZoneKey::load(&z.origin, &path) {
            Ok(k) if k.algorithm != settings.algorithm => {
                let _ = writeln!(
                    out,
                    "{}: note: {} is {} and the file asks for {}: `serve` makes a new key",
                    z.path.display(),
                    path.display(),
                    k.algorithm.config_name(),
                    settings.algorithm.config_name()
                );
            }
            Ok(_) => {}
            Err(dnssec::KeyError::Missing { .. }) => {
                let _ = writeln!(
                    out,
                    "{}: note: no DNSSEC key for {} yet; `serve` will generate it in {}",
                    z.path.display(),
                    z.origin,
                    path.display()
                );
            }
            Err(e) => {
                ok = false;
                let _ = writeln!(out, "{}: {e}", z.path.display());
            }
        }
    }
    // The HTTP token file: a bad one stops `serve`, so say so here first.
    if let Err(e) = crate::http::access::Token::load(config) {
        ok = false;
        let _ = writeln!(out, "{e}");
    }
    let origins: Vec<Name> = zones.iter().map(|z| z.origin.clone()).collect();
    let mode = if config.generate_missing_keys {
        MissingKeys::Ignore
    } else {
        MissingKeys::Error
    };
    match load_policy(config, &origins, mode) {
        Ok(p) => {
            for w in &p.warnings {
                let _ = writeln!(out, "warning: {w}");
            }
            for m in p.policy.machines() {
                if p.keys.get(&m.key).is_none() {
                    let _ = writeln!(
                        out,
                        "{}: note: key {} does not exist yet; `serve` will generate it in {}",
                        m.path.display(),
                        m.key,
                        config.keys_dir.display()
                    );
                }
            }
            let _ = writeln!(
                out,
                "ok: {} zone(s) [{}], {} machine(s), {} key(s)",
                zones.len(),
                origins
                    .iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                p.policy.machines().len(),
                p.keys.len()
            );
        }
        Err(errors) => {
            ok = false;
            let _ = writeln!(out, "{errors}");
        }
    }
    (out, ok)
}

#[derive(Debug, thiserror::Error)]
pub enum MachineAddError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `machine add NAME`: write `keys/NAME.key` (0600) and `acl/NAME.toml`, and
/// return the instructions to print.
pub fn machine_add(
    config: &Config,
    name: &str,
    zone: Option<&str>,
    host: Option<&str>,
    algorithm: Algorithm,
) -> Result<String, MachineAddError> {
    machine_add_with(config, name, zone, host, algorithm, false)
}

/// [`machine_add`], and with `persist` also the dns-persist-01 grant (TXT
/// at `_validation-persist.<host>`) and the CNAME the real zone needs for
/// it.
pub fn machine_add_with(
    config: &Config,
    name: &str,
    zone: Option<&str>,
    host: Option<&str>,
    algorithm: Algorithm,
    persist: bool,
) -> Result<String, MachineAddError> {
    let invalid = |m: String| MachineAddError::Invalid(m);
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(format!(
            "machine name {name:?}: use letters, digits, '-' and '_' (it names files and the key)"
        )));
    }
    let zones = zonefile::load_dir(&config.zones_dir).map_err(|e| invalid(e.to_string()))?;
    let zone = match zone {
        Some(z) => {
            let want =
                crate::zone::absolute_name(z).map_err(|e| invalid(format!("zone {z:?}: {e}")))?;
            zones.iter().find(|s| s.origin == want).ok_or_else(|| {
                invalid(format!(
                    "zone {want} is not served (zones in {})",
                    config.zones_dir.display()
                ))
            })?
        }
        None if zones.len() == 1 => &zones[0],
        None => {
            return Err(invalid(
                "several zones are served: say which with --zone".into(),
            ));
        }
    };
    let host = host.unwrap_or(name);
    let acl_path = config.acl_dir.join(format!("{name}.toml"));
    let key_path = config.keys_dir.join(format!("{name}.key"));
    for p in [&acl_path, &key_path] {
        if p.exists() {
            return Err(invalid(format!(
                "{} already exists: machine {name} is set up (remove both files to start over)",
                p.display()
            )));
        }
    }
    let key_name =
        Name::from_ascii(format!("{name}.")).map_err(|e| invalid(format!("key name: {e}")))?;
    // The ACL must parse before anything is written.
    let mut acl_text = acl::skeleton(name, name, &zone.origin, (host != name).then_some(host));
    if persist {
        acl_text.push_str(&acl::persist_grant((host != name).then_some(host)));
    }
    let tmp = tempdir_for(&config.acl_dir)?;
    let tmp_acl = tmp.join(format!("{name}.toml"));
    write(&tmp_acl, &acl_text)?;
    let parsed = Policy::load_file(&tmp_acl, std::slice::from_ref(&zone.origin));
    let _ = std::fs::remove_file(&tmp_acl);
    let _ = std::fs::remove_dir(&tmp);
    parsed.map_err(|errs| invalid(format!("generated ACL does not parse: {errs:?}")))?;

    let key = Key::generate(key_name, algorithm).map_err(|_| invalid("no randomness".into()))?;
    std::fs::create_dir_all(&config.keys_dir).map_err(|source| MachineAddError::Io {
        path: config.keys_dir.clone(),
        source,
    })?;
    tsig::write_key_file(&key_path, &key).map_err(|source| MachineAddError::Io {
        path: key_path.clone(),
        source,
    })?;
    std::fs::create_dir_all(&config.acl_dir).map_err(|source| MachineAddError::Io {
        path: config.acl_dir.clone(),
        source,
    })?;
    write(&acl_path, &acl_text)?;
    let mut out = instructions(
        config,
        &zone.origin,
        name,
        host,
        &key,
        &key_path,
        &acl_path,
        zone.ttl.challenge,
    );
    if persist {
        out.push_str(&persist_instructions(&zone.origin, host));
    }
    Ok(out)
}

/// What `machine add --persist` adds to the instructions: the CNAME for
/// the dns-persist-01 name and how to make its value.
fn persist_instructions(zone: &Name, host: &str) -> String {
    let real = format!("{host}.{}", zone.base_name());
    let delegated = format!("{host}.{zone}");
    format!(
        "\n\
-- dns-persist-01 (docs/persist.md) --\n\
Add this CNAME to the real zone too (once):\n\
\x20  _validation-persist.{real} CNAME _validation-persist.{delegated}\n\
Make the value with `zonewarden persist --issuer CA --account ACCOUNT-URI --until DATE`\n\
and add it as TXT at _validation-persist.{delegated} (it is never expired).\n"
    )
}

fn tempdir_for(dir: &Path) -> Result<std::path::PathBuf, MachineAddError> {
    let base = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    let tmp = base.join(format!(".zonewarden-machine-add-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|source| MachineAddError::Io {
        path: tmp.clone(),
        source,
    })?;
    Ok(tmp)
}

fn write(path: &Path, text: &str) -> Result<(), MachineAddError> {
    std::fs::write(path, text).map_err(|source| MachineAddError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[allow(clippy::too_many_arguments)]
fn instructions(
    config: &Config,
    zone: &Name,
    machine: &str,
    host: &str,
    key: &Key,
    key_path: &Path,
    acl_path: &Path,
    challenge_ttl: u32,
) -> String {
    let parent = zone.base_name();
    let real = format!("{host}.{parent}");
    let delegated = format!("{host}.{zone}");
    let server = config
        .listen
        .first()
        .copied()
        .unwrap_or_else(|| crate::config::DEFAULT_LISTEN.parse().expect("valid"));
    let (ip, port) = (server.ip(), server.port());
    let alg = key.algorithm.key_file_name();
    let secret = key.secret_base64();
    let kname = key.name.to_string();
    let kname_bare = kname.trim_end_matches('.');
    let hook = format!(
        "zonewarden hook --key {} --zone {zone} --server {ip}:{port}",
        key_path.display()
    );
    format!(
        "machine {machine}: key {kname} ({alg}) in {key}, ACL in {acl}\n\
\n\
1. Add these CNAMEs to the real zone {parent} (once):\n\
\x20  _acme-challenge.{real} CNAME _acme-challenge.{delegated}\n\
\x20  _25._tcp.{real} CNAME _25._tcp.{delegated}   (one per DANE port)\n\
\n\
2. Give {machine} the key file {key} (mode 0600). Settings for its ACME client:\n\
\n\
-- nsupdate (bind9-dnsutils) --\n\
nsupdate -k {key} <<EOF\n\
server {ip} {port}\n\
zone {zone}\n\
update add _acme-challenge.{delegated} {challenge_ttl} TXT \"token\"\n\
send\n\
EOF\n\
\n\
-- lego (rfc2136; follows the CNAME, asks every nameserver) --\n\
RFC2136_NAMESERVER={ip}:{port} RFC2136_TSIG_KEY={kname} RFC2136_TSIG_ALGORITHM={alg}. \\\n\
RFC2136_TSIG_SECRET={secret} RFC2136_TTL={challenge_ttl} \\\n\
\x20 lego --email admin@{parent_bare} --dns rfc2136 --domains {real_bare} run\n\
\n\
-- certbot (manual hooks: zonewarden follows the CNAME and waits for every nameserver) --\n\
certbot certonly --manual --preferred-challenges dns \\\n\
\x20 --manual-auth-hook '{hook} certbot-auth' \\\n\
\x20 --manual-cleanup-hook '{hook} certbot-cleanup' \\\n\
\x20 -d {real_bare}\n\
\n\
-- dehydrated (CHALLENGETYPE=dns-01, HOOK=scripts/hooks/dehydrated-dns01; /etc/zonewarden/hook.conf:) --\n\
ZONEWARDEN_KEY={key}\n\
ZONEWARDEN_ZONE={zone}\n\
ZONEWARDEN_SERVER={ip}:{port}\n\
\n\
-- certbot dns-rfc2136 ini (mode 0600; certbot does not follow CNAMEs: ask for names in {zone}) --\n\
dns_rfc2136_server = {ip}\n\
dns_rfc2136_port = {port}\n\
dns_rfc2136_name = {kname_bare}\n\
dns_rfc2136_secret = {secret}\n\
dns_rfc2136_algorithm = {alg_upper}\n\
\n\
-- acme.sh (dns_nsupdate with a challenge alias) --\n\
NSUPDATE_SERVER={ip} NSUPDATE_SERVER_PORT={port} NSUPDATE_KEY={key} NSUPDATE_ZONE={zone} \\\n\
\x20 acme.sh --issue --dns dns_nsupdate -d {real_bare} --challenge-alias {delegated_bare}\n",
        key = key_path.display(),
        acl = acl_path.display(),
        parent_bare = parent.to_string().trim_end_matches('.'),
        real_bare = real.trim_end_matches('.'),
        delegated_bare = delegated.trim_end_matches('.'),
        alg_upper = alg.to_ascii_uppercase(),
    )
}

/// `wait`: until every nameserver of the zone serves the serial (default:
/// the primary's current one) or the TXT value. Returns the report and
/// whether it succeeded.
pub async fn wait(
    config: &Config,
    zone: Option<&str>,
    serial: Option<u32>,
    name: Option<&str>,
    txt: Option<&str>,
    timeout: std::time::Duration,
) -> (String, bool) {
    use crate::client::wait::{Goal, targets, wait};
    let zones = match zonefile::load_dir(&config.zones_dir) {
        Ok(z) => z,
        Err(e) => return (format!("{e}\n"), false),
    };
    let spec = match pick_zone(&zones, zone) {
        Ok(z) => z,
        Err(e) => return (format!("{e}\n"), false),
    };
    let targets = targets(config, spec);
    let goal = match (name, txt, serial) {
        (Some(n), Some(v), None) => match Name::parse(n, Some(&spec.origin)) {
            Ok(name) => Goal::Txt {
                name,
                value: v.to_string(),
            },
            Err(e) => return (format!("bad name {n:?}: {e}\n"), false),
        },
        (None, None, Some(s)) => Goal::Serial(s),
        (None, None, None) => {
            let Some(primary) = targets.first() else {
                return ("no listen address configured\n".into(), false);
            };
            match crate::dnsclient::soa_serial(
                primary.addr,
                &spec.origin,
                std::time::Duration::from_secs(2),
            )
            .await
            {
                Ok(s) => Goal::Serial(s),
                Err(e) => {
                    return (
                        format!(
                            "cannot ask the primary {} for its serial: {e}\n",
                            primary.addr
                        ),
                        false,
                    );
                }
            }
        }
        _ => {
            return (
                "give --serial N, or --name NAME with --txt VALUE\n".into(),
                false,
            );
        }
    };
    match wait(&targets, &spec.origin, &goal, timeout).await {
        Ok(took) => (
            format!(
                "{} nameserver(s) of {} serve {goal:?} (after {:.1} s)\n",
                targets.len(),
                spec.origin,
                took.as_secs_f64()
            ),
            true,
        ),
        Err(laggards) => {
            let mut out = format!(
                "timed out after {} s; {} of {} nameserver(s) lag behind {goal:?}:\n",
                timeout.as_secs(),
                laggards.len(),
                targets.len()
            );
            for (label, state) in laggards {
                let _ = writeln!(out, "  {label}: {state}");
            }
            (out, false)
        }
    }
}

fn pick_zone<'a>(
    zones: &'a [zonefile::ZoneSpec],
    zone: Option<&str>,
) -> Result<&'a zonefile::ZoneSpec, String> {
    match zone {
        Some(z) => {
            let want = crate::zone::absolute_name(z).map_err(|e| format!("zone {z:?}: {e}"))?;
            zones
                .iter()
                .find(|s| s.origin == want)
                .ok_or_else(|| format!("zone {want} is not served"))
        }
        None if zones.len() == 1 => Ok(&zones[0]),
        None => Err("several zones are served: say which with --zone".into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DsError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Key(#[from] dnssec::KeyError),
}

/// `ds ZONE`: the DS (SHA-256) and DNSKEY for the parent, from the key the
/// server made in the data directory, and the line to add at the parent.
pub fn ds(config: &Config, zone: &str) -> Result<String, DsError> {
    let invalid = |m: String| DsError::Invalid(m);
    let specs = zonefile::load_dir(&config.zones_dir).map_err(|e| invalid(e.to_string()))?;
    let want =
        crate::zone::absolute_name(zone).map_err(|e| invalid(format!("zone {zone:?}: {e}")))?;
    let spec = specs.iter().find(|s| s.origin == want).ok_or_else(|| {
        invalid(format!(
            "zone {want} is not served (zones in {})",
            config.zones_dir.display()
        ))
    })?;
    let Some(settings) = &spec.dnssec else {
        return Err(invalid(format!(
            "DNSSEC is off for {want} ({}: dnssec = false): there is no DS to publish",
            spec.path.display()
        )));
    };
    // The key the parent's DS should be for: the incoming one during a
    // rollover, else the active one (the first key before any is recorded).
    let recorded = if config.database.exists() {
        crate::store::Store::open(&config.database)
            .and_then(|s| s.keys(&spec.origin))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let wanted = recorded
        .iter()
        .rev()
        .find(|k| k.state == crate::zone::keys::KeyState::Ready)
        .or_else(|| {
            recorded
                .iter()
                .rev()
                .find(|k| k.state == crate::zone::keys::KeyState::Active)
        });
    let path = match wanted {
        Some(k) => dnssec::key::key_dir(&config.data_dir).join(&k.file),
        None => dnssec::key::key_path(&config.data_dir, &spec.origin),
    };
    let key = ZoneKey::load(&spec.origin, &path)?;
    let (ds, dnskey) = key.parent_records(settings.dnskey_ttl);
    let line =
        |r: &hickory_proto::rr::Record| format!("{} IN {} {}", r.name, r.record_type(), r.data);
    Ok(format!(
        "; {zone}: key tag {tag}, algorithm {alg} ({algname}), key file {path}\n\
; Add this record to the parent zone {parent} (beside the NS records of {zone}):\n\
{ds}\n\
; The DNSKEY it is the SHA-256 digest of (served at {zone} with CDS and CDNSKEY, RFC 7344):\n\
{dnskey}\n",
        zone = spec.origin,
        tag = key.key_tag(),
        alg = u8::from(key.algorithm.dnssec()),
        algname = key.algorithm.dnssec(),
        path = key.path.display(),
        parent = spec.origin.base_name(),
        ds = line(&ds),
        dnskey = line(&dnskey),
    ))
}

/// `tlsa`: the TLSA records for a certificate file, offline. With a host,
/// zone-file lines (`_25._tcp.mx1 300 IN TLSA 3 1 1 ...`; the owner is
/// relative unless the host ends in a dot); without one, the rdata alone
/// (what `openssl s_client -dane_tlsa_rrdata` takes). Comment lines (`;`)
/// name the certificate.
pub fn tlsa(
    cert: &Path,
    host: Option<&str>,
    ports: &[u16],
    proto: &str,
    params: crate::dane::TlsaParams,
    ttl: u32,
    now: i64,
) -> Result<String, String> {
    use crate::dane;
    let chain = dane::Chain::read(cert).map_err(|e| e.to_string())?;
    let rr = dane::tlsa(&chain, params, now).map_err(|e| format!("{}: {e}", cert.display()))?;
    let leaf = chain.leaf();
    let mut out = format!(
        "; {} (notAfter {}), issuer {}\n; TLSA {params}: {}\n",
        leaf.subject(),
        dane::cert::utc(leaf.not_after()),
        leaf.issuer(),
        match (params.usage(), params.selector(), params.matching()) {
            (3, 1, 1) => "DANE-EE, public key, SHA2-256 (survives renewals that keep the key)",
            (u, _, _) if u == 0 || u == 2 => "from the issuer in the chain",
            _ => "from the leaf certificate",
        }
    );
    match host {
        None => {
            let _ = writeln!(out, "{rr}");
        }
        Some(h) => {
            for port in ports {
                let owner = dane::owner(*port, proto, h, None)?;
                let _ = writeln!(out, "{}", dane::zone_line(&owner, ttl, &rr));
            }
        }
    }
    Ok(out)
}

/// The TLSA parameters as typed (`--usage`, `--selector`, `--matching`).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct TlsaParamArgs {
    /// Certificate usage: 3 DANE-EE (default), 2 DANE-TA (the issuer), 1 PKIX-EE, 0 PKIX-TA.
    #[arg(long, default_value_t = 3)]
    pub usage: u8,
    /// Selector: 1 public key (default), 0 full certificate.
    #[arg(long, default_value_t = 1)]
    pub selector: u8,
    /// Matching type: 1 SHA2-256 (default), 2 SHA2-512, 0 exact.
    #[arg(long, default_value_t = 1)]
    pub matching: u8,
}

impl TlsaParamArgs {
    pub fn params(self) -> Result<crate::dane::TlsaParams, crate::dane::DaneError> {
        crate::dane::TlsaParams::new(self.usage, self.selector, self.matching)
    }
}

/// `dane publish` as typed on the command line (clap), before validation.
#[derive(clap::Args, Debug, Clone)]
pub struct PublishArgs {
    /// The new certificate (fullchain.pem: leaf first).
    #[arg(long)]
    pub cert: std::path::PathBuf,
    /// The primary that takes UPDATEs: ADDR[:PORT] (port 53 by default).
    #[arg(long)]
    pub server: String,
    /// This machine's TSIG key file (BIND format).
    #[arg(long)]
    pub key: std::path::PathBuf,
    /// The zone, e.g. _acme.example.org.
    #[arg(long)]
    pub zone: String,
    /// Host part of the owner names: relative to the zone unless it ends in a dot.
    #[arg(long)]
    pub host: String,
    /// Port (repeatable): _PORT._PROTO.HOST.
    #[arg(long = "port", required = true)]
    pub ports: Vec<u16>,
    #[arg(long, default_value = "tcp")]
    pub proto: String,
    /// TTL of the added records.
    #[arg(long, default_value_t = 300)]
    pub ttl: u32,
    #[command(flatten)]
    pub params: TlsaParamArgs,
    /// A pre-published next key (public key or certificate): its TLSA
    /// is published too and never removed.
    #[arg(long)]
    pub next_key: Option<std::path::PathBuf>,
    /// Shell command that makes the service present the new certificate.
    #[arg(long)]
    pub then: Option<String>,
    /// Nameservers that must serve the new record besides --server
    /// (repeatable); default: the zone's NS set, port 53.
    #[arg(long = "nameserver")]
    pub nameservers: Vec<String>,
    /// Seconds to wait for every nameserver.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// `ADDR`, `ADDR:PORT` or `[V6]:PORT`; port 53 when none is given.
pub fn parse_server(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?}: want ADDR, ADDR:PORT or [V6]:PORT"))
}

/// Validate the arguments into a publish request: every file read, every
/// name parsed. Errors here change nothing (exit status 2).
pub fn publish_request(
    args: &PublishArgs,
) -> Result<crate::client::publish::Request, crate::client::publish::PublishError> {
    use crate::client::publish::{self, PublishError};
    use crate::dane;
    let input = PublishError::Input;
    let params = args.params.params().map_err(|e| input(e.to_string()))?;
    let chain = dane::Chain::read(&args.cert).map_err(|e| input(e.to_string()))?;
    let next = args
        .next_key
        .as_deref()
        .map(dane::NextKey::read)
        .transpose()
        .map_err(|e| input(format!("--next-key {e}")))?;
    let key = tsig::read_key_file(&args.key)
        .map_err(|e| input(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| input(format!("{}: no key in the file", args.key.display())))?;
    let zone = crate::zone::absolute_name(&args.zone)
        .map_err(|e| input(format!("--zone {:?}: {e}", args.zone)))?;
    if args.ports.is_empty() {
        return Err(input("give at least one --port".into()));
    }
    let mut owners = Vec::new();
    for port in &args.ports {
        let owner = dane::owner(*port, &args.proto, &args.host, Some(&zone)).map_err(input)?;
        if !zone.zone_of(&owner) {
            return Err(input(format!(
                "{owner} is not inside the zone {zone}: the UPDATE could not change it"
            )));
        }
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    let server = parse_server(&args.server).map_err(|e| input(format!("--server {e}")))?;
    let nameservers = args
        .nameservers
        .iter()
        .map(|s| parse_server(s).map_err(|e| input(format!("--nameserver {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(publish::Request {
        chain,
        next,
        params,
        zone,
        owners,
        ttl: args.ttl,
        server,
        key,
        nameservers,
        then: args.then.clone(),
        timeout: std::time::Duration::from_secs(args.timeout),
    })
}

/// What `api tlsa` sends.
pub struct ApiTlsa<'a> {
    pub url: &'a str,
    pub key_file: &'a std::path::Path,
    pub cert_file: &'a std::path::Path,
    pub host: &'a str,
    pub ports: &'a [u16],
    pub zone: Option<&'a str>,
    pub next_key: Option<&'a std::path::Path>,
    pub ttl: Option<u32>,
}

/// `api tlsa`: ask the server to publish (with rollover) the TLSA records
/// of a certificate over the HTTP API, signed with the machine's key.
/// Returns the report and the exit status (0 done, 1 refused or failed).
pub async fn api_tlsa(req: &ApiTlsa<'_>, now: u64) -> (String, u8) {
    use crate::client::api;
    use crate::http::tlsa_api::{PATH, PublishRequest};
    let fail = |m: String| (format!("{m}\n"), 1u8);
    let key = match tsig::read_key_file(req.key_file) {
        Ok(mut k) if !k.is_empty() => k.remove(0),
        Ok(_) => return fail(format!("{}: no key in the file", req.key_file.display())),
        Err(e) => return fail(e.to_string()),
    };
    let certificate = match std::fs::read_to_string(req.cert_file) {
        Ok(c) => c,
        Err(e) => return fail(format!("{}: {e}", req.cert_file.display())),
    };
    let next_key = match req.next_key.map(std::fs::read_to_string).transpose() {
        Ok(n) => n,
        Err(e) => return fail(format!("--next-key: {e}")),
    };
    let body = PublishRequest {
        host: req.host.to_string(),
        ports: req.ports.to_vec(),
        certificate,
        zone: req.zone.map(str::to_string),
        proto: None,
        next_key,
        usage: None,
        selector: None,
        matching: None,
        ttl: req.ttl,
    };
    let bytes = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(e) => return fail(e.to_string()),
    };
    let addr = match api::parse_url(req.url) {
        Ok(a) => a,
        Err(e) => return fail(e.to_string()),
    };
    match api::post(
        addr,
        PATH,
        &bytes,
        &key,
        now,
        std::time::Duration::from_secs(30),
    )
    .await
    {
        Ok((status, body)) if (200..300).contains(&status) => (format!("{status}: {body}\n"), 0),
        Ok((status, body)) => fail(format!("refused ({status}): {body}")),
        Err(e) => fail(format!("{}: {e}", req.url)),
    }
}

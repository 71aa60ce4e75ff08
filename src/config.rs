//! The server configuration: where to listen, where the zones, ACLs, keys and
//! database live, and the few protocol knobs (TSIG fudge, EDNS size, challenge
//! expiry).
//!
//! Two layers, as in NLnetLabs/cascade: [`ConfigFile`] is the TOML on disk
//! (kebab-case, unknown fields are errors, errors carry path:line:column),
//! converted once into [`Config`], the validated runtime type the rest of the
//! server uses. `Config::embedded_default()` is what `zonewarden serve` runs
//! with no arguments. This module does not read zones or ACLs (see
//! `zonefile` and `acl`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::diag::{self, FileError};

pub mod https;
pub use https::{CertSource, Https, HttpsAcme};

/// The TOML file given with `--config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    /// DNS listen addresses, UDP and TCP on each (IPv4 and IPv6).
    pub listen: Option<Vec<toml::Spanned<String>>>,
    /// HTTP API address, or "off".
    pub http: Option<toml::Spanned<String>>,
    /// File holding the bearer token for HTTP reads from other machines.
    pub http_token_file: Option<String>,
    /// Ask for the token from loopback peers too.
    pub http_require_token: Option<bool>,
    /// State directory; `keys-dir` and `database` default below it.
    pub data_dir: Option<String>,
    pub zones_dir: Option<String>,
    pub acl_dir: Option<String>,
    pub keys_dir: Option<String>,
    pub database: Option<String>,
    /// Seconds of clock skew accepted on TSIG-signed messages (RFC 8945 §5.2.3).
    pub tsig_fudge: Option<u16>,
    /// EDNS(0) UDP payload size we advertise and honour (RFC 6891, DNS flag day 2020).
    pub edns_udp_size: Option<u16>,
    /// TXT records at `_acme-challenge` names older than this are removed.
    pub challenge_max_age: Option<u64>,
    /// How often the expiry sweep runs, in seconds.
    pub expiry_interval: Option<u64>,
    /// How often ACL and key files are checked for changes, in seconds.
    pub reload_interval: Option<u64>,
    /// Generate a key for an ACL file whose key does not exist yet.
    pub generate_missing_keys: Option<bool>,
    /// Cap on the database file, in MiB: past it updates answer SERVFAIL.
    pub database_max_size: Option<u64>,

    // Issue 11, protocol conformance: how the server names itself. Each is
    // off by default (see `server::identity`).
    /// NSID (RFC 5001) sent to requests that ask for it.
    pub nsid: Option<toml::Spanned<String>>,
    /// TXT answer to `id.server` and `hostname.bind` in class CH.
    pub identity: Option<toml::Spanned<String>>,
    /// TXT answer to `version.server` and `version.bind` in class CH.
    pub version: Option<toml::Spanned<String>>,
    // --- Issue 11, rate limiting and cookies (server/rrl.rs, server/cookie.rs) ---
    /// Response rate limiting of UDP answers on or off.
    pub rrl: Option<bool>,
    /// Answers per second per bucket (source prefix, answer class, name).
    pub rrl_responses_per_second: Option<toml::Spanned<u32>>,
    /// Every Nth limited answer goes out truncated (0: none, 1: all).
    pub rrl_slip: Option<toml::Spanned<u32>>,
    pub rrl_ipv4_prefix: Option<toml::Spanned<u8>>,
    pub rrl_ipv6_prefix: Option<toml::Spanned<u8>>,
    /// Buckets in the fixed table.
    pub rrl_table_size: Option<toml::Spanned<usize>>,
    /// Source networks never limited.
    pub rrl_exempt: Option<Vec<toml::Spanned<String>>>,
    /// DNS COOKIEs (RFC 7873/9018) on or off.
    pub dns_cookies: Option<bool>,
    /// UPDATEs per TSIG key per second (0: no limit) and the burst allowed.
    pub update_rate_per_key: Option<toml::Spanned<u32>>,
    pub update_burst_per_key: Option<toml::Spanned<u32>>,
    // Connection limits (issue 11, defect 1: TCP and HTTP exhaustion; the
    // request front's part). Validated into `ConnectionLimits`.
    pub tcp_max_connections: Option<toml::Spanned<u64>>,
    pub tcp_max_connections_per_source: Option<toml::Spanned<u64>>,
    pub tcp_idle_timeout: Option<toml::Spanned<u64>>,
    pub tcp_max_lifetime: Option<toml::Spanned<u64>>,
    pub tcp_max_queries: Option<toml::Spanned<u64>>,
    pub transfers_max: Option<toml::Spanned<u64>>,
    pub http_max_connections: Option<toml::Spanned<u64>>,
    pub http_max_connections_per_source: Option<toml::Spanned<u64>>,
    pub http_header_timeout: Option<toml::Spanned<u64>>,
    pub http_body_timeout: Option<toml::Spanned<u64>>,
    pub http_body_limit: Option<toml::Spanned<u64>>,
    pub tsig_failure_answers: Option<toml::Spanned<u64>>,
    // Issue 14: the acme-dns HTTP API (`http::acme_dns`).
    /// The zone acme-dns accounts get their subdomain in.
    pub acme_dns_zone: Option<toml::Spanned<String>>,
    /// Source networks `POST /register` is open to (default: none; the
    /// admin bearer token always opens it).
    pub acme_dns_register: Option<Vec<toml::Spanned<String>>>,
    /// HTTPS listener address (issue 14), its certificate and key files,
    /// or its own ACME certificate (`https`).
    pub https: Option<toml::Spanned<String>>,
    pub https_cert: Option<String>,
    pub https_key: Option<String>,
    pub https_acme: Option<https::HttpsAcmeFile>,
}

/// Response rate limiting (issue 11; see `server::rrl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    pub enabled: bool,
    pub responses_per_second: u32,
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub table_size: usize,
    pub exempt: Vec<ipnet::IpNet>,
}

/// The UPDATE token bucket per TSIG key (`per_second` 0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateRate {
    pub per_second: u32,
    pub burst: u32,
}

/// Connection limits of the DNS TCP and HTTP listeners (issue 11, defect
/// 1). A "source" is one IPv4 address or one IPv6 /64. What a client sees
/// past each limit is in docs/operations.md, "Connection limits".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// DNS over TCP: connections open at once, all sources together.
    pub tcp_max_connections: usize,
    /// DNS over TCP: connections open at once from one source.
    pub tcp_max_connections_per_source: usize,
    /// DNS over TCP: a connection is closed when no complete message
    /// arrives for this long (not restarted by a half-sent message).
    pub tcp_idle_timeout: Duration,
    /// DNS over TCP: a connection is closed this long after it was opened,
    /// however busy (RFC 7766 §6.2.3); the message in progress is answered.
    pub tcp_max_lifetime: Duration,
    /// DNS over TCP: messages answered on one connection before it is closed.
    pub tcp_max_queries: usize,
    /// Zone transfers (AXFR/IXFR) sent at once; more are REFUSED.
    pub transfers_max: usize,
    /// HTTP: connections open at once, all sources together.
    pub http_max_connections: usize,
    /// HTTP: connections open at once from one source.
    pub http_max_connections_per_source: usize,
    /// HTTP: a request's header must arrive within this; an idle keep-alive
    /// connection is closed after it too.
    pub http_header_timeout: Duration,
    /// HTTP: a request's body must arrive within this (408 otherwise).
    pub http_body_timeout: Duration,
    /// HTTP: request bodies above this many bytes are refused (413).
    pub http_body_limit: usize,
    /// TSIG failures over UDP answered per second; past it they are
    /// dropped unanswered (issue 11, defect 4).
    pub tsig_failure_answers: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            tcp_max_connections: 512,
            tcp_max_connections_per_source: 16,
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_max_lifetime: Duration::from_secs(120),
            tcp_max_queries: 100,
            transfers_max: 16,
            http_max_connections: 128,
            http_max_connections_per_source: 16,
            http_header_timeout: Duration::from_secs(10),
            http_body_timeout: Duration::from_secs(10),
            http_body_limit: 64 * 1024,
            tsig_failure_answers: 100,
        }
    }
}

impl ConnectionLimits {
    /// Validate the file's values (each must be at least 1 and within a
    /// sane maximum; a per-source cap may not exceed its total).
    fn from_file(f: &ConfigFile, path: &Path, text: &str) -> Result<Self, FileError> {
        let d = Self::default();
        let num = |v: Option<toml::Spanned<u64>>,
                   key: &str,
                   max: u64,
                   default: u64|
         -> Result<u64, FileError> {
            match v {
                None => Ok(default),
                Some(v) if (1..=max).contains(v.get_ref()) => Ok(*v.get_ref()),
                Some(v) => Err(FileError::at_offset(
                    path,
                    text,
                    v.span().start,
                    format!("{key} must be between 1 and {max}, not {}", v.get_ref()),
                )),
            }
        };
        let secs = |v, key, default: Duration| {
            num(v, key, 86_400, default.as_secs()).map(Duration::from_secs)
        };
        let per_source_span = |v: &Option<toml::Spanned<u64>>| v.as_ref().map(|v| v.span().start);
        let tcp_span = per_source_span(&f.tcp_max_connections_per_source);
        let http_span = per_source_span(&f.http_max_connections_per_source);
        let limits = Self {
            tcp_max_connections: num(
                f.tcp_max_connections.clone(),
                "tcp-max-connections",
                1_000_000,
                d.tcp_max_connections as u64,
            )? as usize,
            tcp_max_connections_per_source: num(
                f.tcp_max_connections_per_source.clone(),
                "tcp-max-connections-per-source",
                1_000_000,
                d.tcp_max_connections_per_source as u64,
            )? as usize,
            tcp_idle_timeout: secs(
                f.tcp_idle_timeout.clone(),
                "tcp-idle-timeout",
                d.tcp_idle_timeout,
            )?,
            tcp_max_lifetime: secs(
                f.tcp_max_lifetime.clone(),
                "tcp-max-lifetime",
                d.tcp_max_lifetime,
            )?,
            tcp_max_queries: num(
                f.tcp_max_queries.clone(),
                "tcp-max-queries",
                1_000_000,
                d.tcp_max_queries as u64,
            )? as usize,
            transfers_max: num(
                f.transfers_max.clone(),
                "transfers-max",
                10_000,
                d.transfers_max as u64,
            )? as usize,
            http_max_connections: num(
                f.http_max_connections.clone(),
                "http-max-connections",
                1_000_000,
                d.http_max_connections as u64,
            )? as usize,
            http_max_connections_per_source: num(
                f.http_max_connections_per_source.clone(),
                "http-max-connections-per-source",
                1_000_000,
                d.http_max_connections_per_source as u64,
            )? as usize,
            http_header_timeout: secs(
                f.http_header_timeout.clone(),
                "http-header-timeout",
                d.http_header_timeout,
            )?,
            http_body_timeout: secs(
                f.http_body_timeout.clone(),
                "http-body-timeout",
                d.http_body_timeout,
            )?,
            http_body_limit: num(
                f.http_body_limit.clone(),
                "http-body-limit",
                64 * 1024 * 1024,
                d.http_body_limit as u64,
            )? as usize,
            tsig_failure_answers: num(
                f.tsig_failure_answers.clone(),
                "tsig-failure-answers",
                1_000_000,
                d.tsig_failure_answers,
            )?,
        };
        let over = |span: Option<usize>, key: &str, total: &str| match span {
            Some(at) => {
                FileError::at_offset(path, text, at, format!("{key} may not exceed {total}"))
            }
            None => FileError::whole_file(path, format!("{key} may not exceed {total}")),
        };
        if limits.tcp_max_connections_per_source > limits.tcp_max_connections {
            return Err(over(
                tcp_span,
                "tcp-max-connections-per-source",
                "tcp-max-connections",
            ));
        }
        if limits.http_max_connections_per_source > limits.http_max_connections {
            return Err(over(
                http_span,
                "http-max-connections-per-source",
                "http-max-connections",
            ));
        }
        Ok(limits)
    }
}

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    /// The HTTP API; None when turned off.
    pub http: Option<SocketAddr>,
    /// The bearer token file for HTTP reads (see `http::access`).
    pub http_token_file: Option<PathBuf>,
    /// Require the token from loopback peers too.
    pub http_require_token: bool,
    pub data_dir: PathBuf,
    pub zones_dir: PathBuf,
    pub acl_dir: PathBuf,
    pub keys_dir: PathBuf,
    pub database: PathBuf,
    pub tsig_fudge: u16,
    pub edns_udp_size: u16,
    pub challenge_max_age: Duration,
    pub expiry_interval: Duration,
    pub reload_interval: Duration,
    pub generate_missing_keys: bool,
    /// Database size cap in bytes (None: only the disk limits it).
    pub database_max_size: Option<u64>,
    /// NSID (RFC 5001), `id.server`/`hostname.bind` and
    /// `version.server`/`version.bind` (class CH); None: not told.
    pub nsid: Option<String>,
    pub identity: Option<String>,
    pub version: Option<String>,
    /// Issue 11: response rate limiting, DNS COOKIEs, UPDATEs per key.
    pub rrl: RrlConfig,
    pub dns_cookies: bool,
    pub update_rate: UpdateRate,
    /// TCP and HTTP connection limits (issue 11).
    pub connections: ConnectionLimits,
    /// Issue 14, acme-dns: the accounts' zone (None: the only zone
    /// served) and the networks registration is open to.
    pub acme_dns_zone: Option<hickory_proto::rr::Name>,
    pub acme_dns_register: Vec<ipnet::IpNet>,
    /// Issue 14: the HTTPS listener of the same API (None: none).
    pub https: Option<https::Https>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5300";
pub const DEFAULT_HTTP: &str = "127.0.0.1:8053";

impl Config {
    /// The demo: the repository's `zones/` and `acl/`, DNS on 127.0.0.1:5300,
    /// state in `./data`.
    pub fn embedded_default() -> Self {
        Self::from_file(
            ConfigFile::default(),
            Path::new("."),
            Path::new("(default)"),
            "",
        )
        .expect("the embedded default is valid")
    }

    /// Read and validate a config file; relative paths are relative to the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| FileError::whole_file(path, format!("cannot read: {e}")))?;
        Self::parse(path, &text)
    }

    /// Validate a config file's `text` as if read from `path` (relative
    /// paths against its directory), without reading anything; the entry
    /// point of the `config_file` fuzz target.
    pub fn parse(path: &Path, text: &str) -> Result<Self, FileError> {
        let file: ConfigFile = diag::parse_toml(path, text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_file(file, base, path, text)
    }

    fn from_file(f: ConfigFile, base: &Path, path: &Path, text: &str) -> Result<Self, FileError> {
        let connections = ConnectionLimits::from_file(&f, path, text)?;
        let (rrl, update_rate) = rate_limits(&f, path, text)?;
        let rel = |p: String| {
            let p = PathBuf::from(p);
            if p.is_absolute() || base == Path::new(".") {
                p
            } else {
                base.join(p)
            }
        };
        let listen = match f.listen {
            None => vec![DEFAULT_LISTEN.parse().expect("valid default")],
            Some(list) => {
                let mut out = Vec::new();
                for item in list {
                    let addr: SocketAddr = item.get_ref().parse().map_err(|_| {
                        FileError::at_offset(
                            path,
                            text,
                            item.span().start,
                            format!(
                                "listen address {:?} is not ADDR:PORT (IPv6 as [::1]:53)",
                                item.get_ref()
                            ),
                        )
                    })?;
                    out.push(addr);
                }
                if out.is_empty() {
                    return Err(FileError::whole_file(path, "listen: at least one address"));
                }
                out
            }
        };
        let http = match f.http {
            None => Some(DEFAULT_HTTP.parse().expect("valid default")),
            Some(h) if h.get_ref() == "off" => None,
            Some(h) => Some(h.get_ref().parse::<SocketAddr>().map_err(|_| {
                FileError::at_offset(
                    path,
                    text,
                    h.span().start,
                    format!("http address {:?} is not ADDR:PORT or \"off\"", h.get_ref()),
                )
            })?),
        };
        let data_dir = rel(f.data_dir.unwrap_or_else(|| "data".into()));
        let keys_dir = f.keys_dir.map(rel).unwrap_or_else(|| data_dir.join("keys"));
        let database = f
            .database
            .map(rel)
            .unwrap_or_else(|| data_dir.join("zonewarden.sqlite"));
        let edns_udp_size = f.edns_udp_size.unwrap_or(1232);
        if edns_udp_size < 512 {
            return Err(FileError::whole_file(
                path,
                "edns-udp-size must be at least 512",
            ));
        }
        let http_require_token = f.http_require_token.unwrap_or(false);
        if http_require_token && f.http_token_file.is_none() {
            return Err(FileError::whole_file(
                path,
                "http-require-token = true needs http-token-file",
            ));
        }
        let nsid = server_name(path, text, "nsid", f.nsid)?;
        let identity = server_name(path, text, "identity", f.identity)?;
        let version = server_name(path, text, "version", f.version)?;
        let acme_dns_zone = match f.acme_dns_zone {
            None => None,
            Some(z) => Some(
                hickory_proto::rr::Name::from_ascii(z.get_ref())
                    .ok()
                    .filter(|_| !z.get_ref().is_empty())
                    .map(|mut n| {
                        n.set_fqdn(true);
                        n
                    })
                    .ok_or_else(|| {
                        FileError::at_offset(
                            path,
                            text,
                            z.span().start,
                            format!("acme-dns-zone {:?} is not a domain name", z.get_ref()),
                        )
                    })?,
            ),
        };
        let mut acme_dns_register = Vec::new();
        for item in f.acme_dns_register.unwrap_or_default() {
            let net = item
                .get_ref()
                .parse::<ipnet::IpNet>()
                .or_else(|_| item.get_ref().parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    FileError::at_offset(
                        path,
                        text,
                        item.span().start,
                        format!(
                            "acme-dns-register: {:?} is not a network (192.0.2.0/24, 2001:db8::/32) or address",
                            item.get_ref()
                        ),
                    )
                })?;
            acme_dns_register.push(net.trunc());
        }
        let https = https::from_file(
            f.https,
            f.https_cert,
            f.https_key,
            f.https_acme,
            rel,
            path,
            text,
        )?;
        Ok(Self {
            https,
            acme_dns_zone,
            acme_dns_register,
            connections,
            listen,
            http,
            http_token_file: f.http_token_file.map(rel),
            http_require_token,
            zones_dir: rel(f.zones_dir.unwrap_or_else(|| "zones".into())),
            acl_dir: rel(f.acl_dir.unwrap_or_else(|| "acl".into())),
            keys_dir,
            database,
            data_dir,
            tsig_fudge: f.tsig_fudge.unwrap_or(300),
            edns_udp_size,
            challenge_max_age: Duration::from_secs(f.challenge_max_age.unwrap_or(3600)),
            expiry_interval: Duration::from_secs(f.expiry_interval.unwrap_or(60).max(1)),
            reload_interval: Duration::from_secs(f.reload_interval.unwrap_or(2).max(1)),
            generate_missing_keys: f.generate_missing_keys.unwrap_or(true),
            database_max_size: f
                .database_max_size
                .map(|mib| mib.saturating_mul(1024 * 1024)),
            nsid,
            identity,
            version,
            rrl,
            dns_cookies: f.dns_cookies.unwrap_or(true),
            update_rate,
        })
    }

    /// `--data DIR`: move the state (keys and database) under DIR.
    pub fn with_data_dir(mut self, dir: PathBuf) -> Self {
        self.keys_dir = dir.join("keys");
        self.database = dir.join("zonewarden.sqlite");
        self.data_dir = dir;
        self
    }
}

/// `nsid`, `identity`, `version` (issue 11): 1 to 255 octets of printable
/// text, so each fits one TXT character-string and reads well in `dig`.
fn server_name(
    path: &Path,
    text: &str,
    key: &str,
    value: Option<toml::Spanned<String>>,
) -> Result<Option<String>, FileError> {
    let Some(v) = value else {
        return Ok(None);
    };
    let s = v.get_ref();
    let bad = if s.is_empty() {
        Some("is empty (leave the key out to send none)")
    } else if s.len() > 255 {
        Some("is longer than 255 octets")
    } else if s.chars().any(|c| c.is_control()) {
        Some("holds a control character")
    } else {
        None
    };
    match bad {
        Some(why) => Err(FileError::at_offset(
            path,
            text,
            v.span().start,
            format!("{key} {why}"),
        )),
        None => Ok(Some(s.clone())),
    }
}

// --- Issue 11, rate limiting and cookies: defaults and validation ---

/// Answers per second per RRL bucket: NSD's and Knot's order of magnitude
/// for an authoritative server whose legitimate clients are resolvers.
pub const DEFAULT_RRL_RESPONSES_PER_SECOND: u32 = 20;
pub const DEFAULT_RRL_SLIP: u32 = 2;
pub const DEFAULT_RRL_TABLE_SIZE: usize = 65_536;
/// Loopback cannot be spoofed from outside (martian sources are dropped),
/// and the operator's own tools on the host must not be limited.
pub const DEFAULT_RRL_EXEMPT: &[&str] = &["127.0.0.0/8", "::1/128"];
pub const DEFAULT_UPDATE_RATE_PER_KEY: u32 = 50;
pub const DEFAULT_UPDATE_BURST_PER_KEY: u32 = 100;

/// The `rrl-*` and `update-*-per-key` keys, validated.
fn rate_limits(
    f: &ConfigFile,
    path: &Path,
    text: &str,
) -> Result<(RrlConfig, UpdateRate), FileError> {
    fn ranged<T: Copy + PartialOrd + std::fmt::Display>(
        v: &Option<toml::Spanned<T>>,
        key: &str,
        default: T,
        (lo, hi): (T, T),
        path: &Path,
        text: &str,
    ) -> Result<T, FileError> {
        match v {
            None => Ok(default),
            Some(s) if *s.get_ref() >= lo && *s.get_ref() <= hi => Ok(*s.get_ref()),
            Some(s) => Err(FileError::at_offset(
                path,
                text,
                s.span().start,
                format!("{key} must be from {lo} to {hi}, not {}", s.get_ref()),
            )),
        }
    }
    let rrl = RrlConfig {
        enabled: f.rrl.unwrap_or(true),
        responses_per_second: ranged(
            &f.rrl_responses_per_second,
            "rrl-responses-per-second",
            DEFAULT_RRL_RESPONSES_PER_SECOND,
            (1, 1_000_000),
            path,
            text,
        )?,
        slip: ranged(
            &f.rrl_slip,
            "rrl-slip",
            DEFAULT_RRL_SLIP,
            (0, 10),
            path,
            text,
        )?,
        ipv4_prefix: ranged(
            &f.rrl_ipv4_prefix,
            "rrl-ipv4-prefix",
            24,
            (8, 32),
            path,
            text,
        )?,
        ipv6_prefix: ranged(
            &f.rrl_ipv6_prefix,
            "rrl-ipv6-prefix",
            56,
            (16, 128),
            path,
            text,
        )?,
        table_size: ranged(
            &f.rrl_table_size,
            "rrl-table-size",
            DEFAULT_RRL_TABLE_SIZE,
            (1024, 1 << 24),
            path,
            text,
        )?,
        exempt: match &f.rrl_exempt {
            None => DEFAULT_RRL_EXEMPT
                .iter()
                .map(|n| n.parse().expect("valid default"))
                .collect(),
            Some(list) => list
                .iter()
                .map(|item| {
                    item.get_ref().parse::<ipnet::IpNet>().map_err(|_| {
                        FileError::at_offset(
                            path,
                            text,
                            item.span().start,
                            format!(
                                "rrl-exempt: {:?} is not a network (ADDR/PREFIX)",
                                item.get_ref()
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        },
    };
    let update_rate = UpdateRate {
        per_second: ranged(
            &f.update_rate_per_key,
            "update-rate-per-key",
            DEFAULT_UPDATE_RATE_PER_KEY,
            (0, 1_000_000),
            path,
            text,
        )?,
        burst: ranged(
            &f.update_burst_per_key,
            "update-burst-per-key",
            DEFAULT_UPDATE_BURST_PER_KEY,
            (1, 1_000_000),
            path,
            text,
        )?,
    };
    Ok((rrl, update_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_an_error_with_location() {
        let text = "listen = [\"127.0.0.1:53\"]\nlisten-adress = 1\n";
        let err = diag::parse_toml::<ConfigFile>(Path::new("z.toml"), text).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn bad_listen_address_points_at_it() {
        let text = "listen = [\n  \"127.0.0.1:53\",\n  \"localhost\",\n]\n";
        let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text).unwrap();
        let err =
            Config::from_file(file, Path::new("/etc/zw"), Path::new("z.toml"), text).unwrap_err();
        assert_eq!((err.line, err.column), (3, 3), "{err}");
    }

    #[test]
    fn server_names_are_off_by_default_and_checked() {
        let c = Config::embedded_default();
        assert_eq!((c.nsid, c.identity, c.version), (None, None, None));
        let text = "nsid = \"ns1\"\nidentity = \"ns1.example.org\"\n";
        let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text).unwrap();
        let c = Config::from_file(file, Path::new("."), Path::new("z.toml"), text).unwrap();
        assert_eq!(c.nsid.as_deref(), Some("ns1"));
        assert_eq!(c.identity.as_deref(), Some("ns1.example.org"));
        for text in ["nsid = \"\"\n", "nsid = \"a\\u0007b\"\n"] {
            let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text).unwrap();
            let err =
                Config::from_file(file, Path::new("."), Path::new("z.toml"), text).unwrap_err();
            assert_eq!((err.line, err.column), (1, 8), "{err}");
        }
        let text = format!("identity = \"{}\"\n", "x".repeat(256));
        let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), &text).unwrap();
        assert!(Config::from_file(file, Path::new("."), Path::new("z.toml"), &text).is_err());
    }

    #[test]
    fn connection_limits_default_and_bad_values_point_at_them() {
        let c = Config::embedded_default();
        assert_eq!(c.connections, ConnectionLimits::default());
        let text = "tcp-idle-timeout = 5\ntcp-max-connections = 0\n";
        let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text).unwrap();
        let err = Config::from_file(file, Path::new("."), Path::new("z.toml"), text).unwrap_err();
        assert_eq!((err.line, err.column), (2, 23), "{err}");
        let text = "http-max-connections = 4\nhttp-max-connections-per-source = 8\n";
        let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text).unwrap();
        let err = Config::from_file(file, Path::new("."), Path::new("z.toml"), text).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let text = "tcp-max-lifetime = 30\ntsig-failure-answers = 5\n";
        let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text).unwrap();
        let c = Config::from_file(file, Path::new("."), Path::new("z.toml"), text).unwrap();
        assert_eq!(c.connections.tcp_max_lifetime, Duration::from_secs(30));
        assert_eq!(c.connections.tsig_failure_answers, 5);
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let text = "data-dir = \"state\"\nzones-dir = \"/srv/zones\"\n";
        let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text).unwrap();
        let c = Config::from_file(file, Path::new("/etc/zw"), Path::new("z.toml"), text).unwrap();
        assert_eq!(c.keys_dir, PathBuf::from("/etc/zw/state/keys"));
        assert_eq!(c.zones_dir, PathBuf::from("/srv/zones"));
        assert_eq!(c.acl_dir, PathBuf::from("/etc/zw/acl"));
    }

    #[test]
    fn rate_limit_keys_have_safe_defaults_and_bad_values_point_at_themselves() {
        let c = Config::embedded_default();
        assert!(c.rrl.enabled && c.dns_cookies);
        assert_eq!(c.rrl.responses_per_second, DEFAULT_RRL_RESPONSES_PER_SECOND);
        assert_eq!(
            (c.rrl.ipv4_prefix, c.rrl.ipv6_prefix, c.rrl.slip),
            (24, 56, 2)
        );
        assert_eq!(c.update_rate.per_second, 50);
        let load = |text: &str| {
            let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text)?;
            Config::from_file(file, Path::new("/etc/zw"), Path::new("z.toml"), text)
        };
        let c = load(
            "rrl = false\nrrl-slip = 1\nrrl-exempt = [\"192.0.2.0/24\"]\nupdate-rate-per-key = 0\n",
        )
        .unwrap();
        assert!(!c.rrl.enabled);
        assert_eq!(c.rrl.slip, 1);
        assert_eq!(
            c.rrl.exempt,
            vec!["192.0.2.0/24".parse::<ipnet::IpNet>().unwrap()]
        );
        assert_eq!(c.update_rate.per_second, 0);
        for (text, line, col) in [
            ("rrl-slip = 1\nrrl-ipv4-prefix = 33\n", 2, 19),
            ("rrl-responses-per-second = 0\n", 1, 28),
            ("rrl-exempt = [\"10.0.0.0/8\", \"nonsense\"]\n", 1, 29),
            ("rrl-table-size = 10\n", 1, 18),
            ("update-burst-per-key = 0\n", 1, 24),
        ] {
            let err = load(text).unwrap_err();
            assert_eq!((err.line, err.column), (line, col), "{text}: {err}");
        }
    }
}

//! The `zonewarden` command: argument parsing only; the work is in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zonewarden::config::Config;
use zonewarden::tsig::Algorithm;

#[derive(Parser)]
#[command(
    name = "zonewarden",
    version,
    about = "Authoritative DNS for ACME DNS-01 and DANE, updated by TSIG-signed RFC 2136 under per-machine ACLs"
)]
struct Cli {
    /// Configuration file (TOML); without it the embedded default is used.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// DNS listen address (repeatable); overrides the configuration.
    #[arg(long, global = true)]
    listen: Vec<SocketAddr>,
    /// HTTP API address, or "off"; overrides the configuration.
    #[arg(long, global = true)]
    http: Option<String>,
    /// State directory (keys, database); overrides the configuration.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// Log format on stderr: human-readable text, or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS (the default).
    Serve,
    /// Validate the configuration, zones, ACLs and keys.
    Check,
    /// Wait until every nameserver of a zone serves a serial or a TXT value.
    Wait {
        /// The zone (needed when several are served).
        #[arg(long)]
        zone: Option<String>,
        /// The serial to wait for (default: the primary's current serial).
        #[arg(long, conflicts_with_all = ["name", "txt"])]
        serial: Option<u32>,
        /// A name (relative to the zone unless it ends in a dot) ...
        #[arg(long, requires = "txt")]
        name: Option<String>,
        /// ... that must have this TXT value.
        #[arg(long, requires = "name")]
        txt: Option<String>,
        /// Give up after this many seconds (exit status 1, laggards listed).
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Print the DS and DNSKEY records the parent zone needs for ZONE.
    Ds { zone: String },
    /// DNSSEC keys and their rollover, asked of the running server.
    Dnssec {
        #[command(subcommand)]
        action: DnssecCmd,
    },
    /// Client calls to a server's HTTP API, signed with a machine's key.
    Api {
        #[command(subcommand)]
        action: ApiCmd,
    },
    /// acme-dns accounts (acl/acmedns-USER.toml): list, remove, change allowfrom.
    AcmeDns {
        #[command(subcommand)]
        action: AcmeDnsCmd,
    },
    /// Import accounts from another server (acme-dns's SQLite database).
    Import {
        #[command(subcommand)]
        action: ImportCmd,
    },
    /// Manage machines.
    Machine {
        #[command(subcommand)]
        action: MachineCmd,
    },
    /// Print a dns-persist-01 record value (draft-ietf-acme-dns-persist;
    /// offline); with --host and --zone the TXT line and the CNAME.
    Persist {
        /// The CA's issuer domain name (e.g. letsencrypt.org).
        #[arg(long)]
        issuer: String,
        /// The ACME account URI (https://...).
        #[arg(long)]
        account: String,
        /// policy=wildcard: the name, its subdomains and wildcard certificates.
        #[arg(long)]
        wildcard: bool,
        /// persistUntil: RFC 3339 (2027-01-01T00:00:00Z) or Unix seconds.
        #[arg(long)]
        until: Option<String>,
        /// The host part of the name (www for www.example.org).
        #[arg(long)]
        host: Option<String>,
        /// The delegated zone (_acme.example.org).
        #[arg(long)]
        zone: Option<String>,
        /// TTL of the TXT line.
        #[arg(long, default_value_t = 3600)]
        ttl: u32,
    },
    /// Print the TLSA records for a certificate (PEM or DER; offline).
    Tlsa {
        /// Certificate file; in a chain file the first is the leaf.
        #[arg(long)]
        cert: PathBuf,
        /// Host for the owner name `_PORT._PROTO.HOST` (absolute if it ends
        /// in a dot); without it only the rdata is printed.
        #[arg(long)]
        host: Option<String>,
        /// Port (repeatable).
        #[arg(long = "port", default_values_t = [25u16])]
        ports: Vec<u16>,
        #[arg(long, default_value = "tcp")]
        proto: String,
        #[command(flatten)]
        params: zonewarden::client::cli::TlsaParamArgs,
        #[arg(long, default_value_t = 300)]
        ttl: u32,
    },
    /// DNS-01 challenge hook for certbot, dehydrated and scripts: follows the
    /// CNAME of _acme-challenge.DOMAIN, sends the signed UPDATE, and (on add)
    /// returns when every nameserver serves the value. Exit status: 0 done,
    /// 1 resolver or server unreachable, or SERVFAIL (re-run), 2 bad input,
    /// 3 refused or CNAME missing (nothing changed), 4 added but not on
    /// every nameserver in time.
    Hook {
        #[command(flatten)]
        opts: HookOpts,
        #[command(subcommand)]
        action: HookCmd,
    },
    /// DANE: publish the TLSA of a new certificate with a safe rollover.
    Dane {
        #[command(subcommand)]
        action: DaneCmd,
    },
}

#[derive(Subcommand)]
enum DnssecCmd {
    /// Each key: state, since, next step and when, what it waits for, and
    /// what an admin must do. Exit status 0: nothing to do; 1: an admin
    /// must act (the ACTION lines); 2: the server could not be asked.
    Status {
        /// One zone (default: every signed zone).
        zone: Option<String>,
        /// Print the API's JSON instead.
        #[arg(long)]
        json: bool,
        /// Also draw the keys' timeline (SVG) into this file (needs ZONE).
        #[arg(long, requires = "zone")]
        svg: Option<PathBuf>,
    },
    /// Start a CSK rollover now (it completes on its own, as fast as the
    /// TTLs, the secondaries and the parent allow).
    Roll { zone: String },
}

#[derive(Subcommand)]
enum DaneCmd {
    /// The deploy hook: add the new TLSA beside the old, wait until every
    /// nameserver serves it and 2 x TTL have passed, run --then, remove the
    /// old. Exit status: 0 done (or nothing to do), 1 server unreachable or
    /// answer lost (re-run), 2 bad input (nothing changed), 3 UPDATE refused
    /// (nothing changed), 4 not propagated in time (old + new published,
    /// --then not run), 5 --then failed (old + new published), 6 old records
    /// not removed (old + new published).
    Publish(zonewarden::client::cli::PublishArgs),
}

#[derive(clap::Args)]
struct HookOpts {
    /// This machine's TSIG key file (BIND format).
    #[arg(long, env = "ZONEWARDEN_KEY")]
    key: PathBuf,
    /// The delegated zone, e.g. _acme.example.org: a challenge name that does
    /// not lead into it is reported with the CNAME to add.
    #[arg(long, env = "ZONEWARDEN_ZONE")]
    zone: Option<String>,
    /// The primary that takes UPDATEs: ADDR[:PORT] (default: the zone's SOA MNAME, port 53).
    #[arg(long, env = "ZONEWARDEN_SERVER")]
    server: Option<String>,
    /// Recursive resolver: ADDR[:PORT] (default: first nameserver in /etc/resolv.conf).
    #[arg(long, env = "ZONEWARDEN_RESOLVER")]
    resolver: Option<String>,
    /// Nameservers that must serve the value besides the primary (repeatable,
    /// or space-separated in the variable); default: the zone's NS set, port 53.
    #[arg(
        long = "nameserver",
        env = "ZONEWARDEN_NAMESERVERS",
        value_delimiter = ' '
    )]
    nameservers: Vec<String>,
    /// TTL of the TXT record (the server clamps it).
    #[arg(long, default_value_t = 60)]
    ttl: u32,
    /// Seconds to wait for every nameserver.
    #[arg(long, default_value_t = 120, env = "ZONEWARDEN_TIMEOUT")]
    timeout: u64,
}

#[derive(Subcommand)]
enum HookCmd {
    /// certbot --manual-auth-hook: adds CERTBOT_VALIDATION for CERTBOT_DOMAIN.
    CertbotAuth,
    /// certbot --manual-cleanup-hook: removes it.
    CertbotCleanup,
    /// dehydrated's HOOK: deploy_challenge / clean_challenge (HOOK_CHAIN=yes
    /// works); every other handler does nothing.
    Dehydrated {
        handler: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Add a value at _acme-challenge.DOMAIN and wait until it is everywhere.
    Add {
        domain: String,
        /// The challenge value (base64url: may start with '-').
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Remove a value from _acme-challenge.DOMAIN.
    Remove {
        domain: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
}

#[derive(Subcommand)]
enum ApiCmd {
    /// Publish the TLSA records of a certificate (POST /api/v1/tlsa); the
    /// server retires the old ones after propagation + 2 TTL.
    Tlsa {
        /// The API, e.g. http://127.0.0.1:8053
        #[arg(long, default_value = "http://127.0.0.1:8053")]
        url: String,
        /// The machine's TSIG key file.
        #[arg(long)]
        key: PathBuf,
        /// The new certificate (PEM; a chain file's first certificate is the leaf).
        #[arg(long)]
        cert: PathBuf,
        /// The host, relative to the zone unless it ends in a dot.
        #[arg(long)]
        host: String,
        /// A port to publish for (repeatable).
        #[arg(long = "port", required = true)]
        ports: Vec<u16>,
        #[arg(long)]
        zone: Option<String>,
        /// A pre-published next key (public key or certificate) to keep.
        #[arg(long)]
        next_key: Option<PathBuf>,
        #[arg(long)]
        ttl: Option<u32>,
    },
}

#[derive(Subcommand)]
enum AcmeDnsCmd {
    /// One line per account: username, fulldomain, allowfrom.
    List,
    /// Deregister an account (its ACL file is deleted).
    Remove { user: String },
    /// Replace an account's allowfrom networks (none given: any source).
    Allowfrom { user: String, cidrs: Vec<String> },
}

#[derive(Subcommand)]
enum ImportCmd {
    /// One acme-dns account (acl/acmedns-USER.toml) per row of acme-dns's
    /// SQLite database, same username, key, subdomain and allowfrom; all or
    /// nothing, idempotent.
    AcmeDns {
        /// acme-dns's database (its [database] connection), read-only.
        #[arg(long)]
        database: PathBuf,
        /// The zone (default: acme-dns-zone, else the only zone served).
        #[arg(long)]
        zone: Option<String>,
    },
}

#[derive(Subcommand)]
enum MachineCmd {
    /// Create a key and an ACL for a new machine and print client settings.
    Add {
        name: String,
        /// The zone (needed when several are served).
        #[arg(long)]
        zone: Option<String>,
        /// The host part of its names inside the zone (default: NAME).
        #[arg(long)]
        host: Option<String>,
        /// TSIG algorithm: hmac-sha256 (default), hmac-sha512, hmac-sha1, hmac-md5, ...
        #[arg(long, default_value = "hmac-sha256")]
        algorithm: String,
        /// Also grant TXT at _validation-persist.HOST (dns-persist-01) and
        /// print the CNAME the real zone needs for it.
        #[arg(long)]
        persist: bool,
    },
}

fn config(cli: &Cli) -> Result<Config, String> {
    let mut c = match &cli.config {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::embedded_default(),
    };
    if !cli.listen.is_empty() {
        c.listen = cli.listen.clone();
    }
    if let Some(h) = &cli.http {
        c.http = if h == "off" {
            None
        } else {
            Some(
                h.parse()
                    .map_err(|_| format!("--http {h:?}: not ADDR:PORT or \"off\""))?,
            )
        };
    }
    if let Some(d) = &cli.data {
        c = c.with_data_dir(d.clone());
    }
    Ok(c)
}

/// glibc gives a process up to 8 malloc arenas per core, each holding on
/// to what the busiest moment of its threads needed; tokio's workers and
/// the blocking UPDATE threads spread over them. Two arenas (unless
/// `MALLOC_ARENA_MAX` says otherwise) take about 6 MB off the resident
/// size of a small zone (docs/performance.md, "Scale and memory"). Called
/// before any thread exists.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread
        // is running yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("ZONEWARDEN_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,hickory_server=warn,hickory_proto=warn")
        });
    // Colours only on a terminal: journald, certbot and dehydrated logs get
    // plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let config = match config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zonewarden: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            match rt.block_on(zonewarden::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("zonewarden: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check => {
            let (report, ok) = zonewarden::client::cli::check(&config);
            finish(&report, ok)
        }
        Command::Wait {
            zone,
            serial,
            name,
            txt,
            timeout,
        } => {
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            let (report, ok) = rt.block_on(zonewarden::client::cli::wait(
                &config,
                zone.as_deref(),
                serial,
                name.as_deref(),
                txt.as_deref(),
                std::time::Duration::from_secs(timeout),
            ));
            finish(&report, ok)
        }
        Command::Ds { zone } => outcome(zonewarden::client::cli::ds(&config, &zone)),
        Command::Dnssec { action } => {
            use zonewarden::client::dnssec::{self, Verdict};
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            match action {
                DnssecCmd::Status { zone, json, svg } => {
                    let now = zonewarden::Clock::now(&zonewarden::SystemClock);
                    if let (Some(file), Some(z)) = (&svg, &zone)
                        && let Err(e) = rt.block_on(dnssec::write_svg(&config, z, file, now))
                    {
                        eprintln!("zonewarden: {e}");
                        return ExitCode::from(2);
                    }
                    let (text, verdict) =
                        rt.block_on(dnssec::status(&config, zone.as_deref(), json, now));
                    print!("{text}");
                    if json {
                        println!();
                    }
                    match verdict {
                        Verdict::Fine => ExitCode::SUCCESS,
                        Verdict::ActionNeeded => ExitCode::from(1),
                        Verdict::Failed => ExitCode::from(2),
                    }
                }
                DnssecCmd::Roll { zone } => outcome(rt.block_on(dnssec::roll(&config, &zone))),
            }
        }
        Command::Api {
            action:
                ApiCmd::Tlsa {
                    url,
                    key,
                    cert,
                    host,
                    ports,
                    zone,
                    next_key,
                    ttl,
                },
        } => {
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            let req = zonewarden::client::cli::ApiTlsa {
                url: &url,
                key_file: &key,
                cert_file: &cert,
                host: &host,
                ports: &ports,
                zone: zone.as_deref(),
                next_key: next_key.as_deref(),
                ttl,
            };
            let now = zonewarden::Clock::now(&zonewarden::SystemClock);
            let (report, code) = rt.block_on(zonewarden::client::cli::api_tlsa(&req, now));
            if code == 0 {
                print!("{report}");
            } else {
                eprint!("zonewarden: {report}");
            }
            ExitCode::from(code)
        }
        Command::Persist {
            issuer,
            account,
            wildcard,
            until,
            host,
            zone,
            ttl,
        } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let args = zonewarden::client::persist::PersistArgs {
                issuer: &issuer,
                account: &account,
                wildcard,
                until: until.as_deref(),
                host: host.as_deref(),
                zone: zone.as_deref(),
                ttl,
            };
            outcome(zonewarden::client::persist::persist_record(&args, now))
        }
        Command::Tlsa {
            cert,
            host,
            ports,
            proto,
            params,
            ttl,
        } => {
            let params = match tlsa_params(params) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            match zonewarden::client::cli::tlsa(
                &cert,
                host.as_deref(),
                &ports,
                &proto,
                params,
                ttl,
                now,
            ) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("zonewarden: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Hook { opts, action } => hook(opts, action),
        Command::Dane {
            action: DaneCmd::Publish(args),
        } => {
            let result = match zonewarden::client::cli::publish_request(&args) {
                Ok(req) => {
                    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
                    let mut out = std::io::stdout();
                    rt.block_on(zonewarden::client::publish::publish(
                        &req,
                        &zonewarden::SystemClock,
                        &zonewarden::client::publish::TokioSleeper,
                        &mut out,
                    ))
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("zonewarden: dane publish: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::AcmeDns { action } => outcome(match action {
            AcmeDnsCmd::List => zonewarden::client::acme_dns::list(&config),
            AcmeDnsCmd::Remove { user } => zonewarden::client::acme_dns::remove(&config, &user),
            AcmeDnsCmd::Allowfrom { user, cidrs } => {
                zonewarden::client::acme_dns::allowfrom(&config, &user, &cidrs)
            }
        }),
        Command::Import {
            action: ImportCmd::AcmeDns { database, zone },
        } => outcome(zonewarden::client::acme_dns_import::import(
            &config,
            &database,
            zone.as_deref(),
        )),
        Command::Machine {
            action:
                MachineCmd::Add {
                    name,
                    zone,
                    host,
                    algorithm,
                    persist,
                },
        } => {
            let Some(alg) = Algorithm::from_key_file(&algorithm) else {
                eprintln!("zonewarden: unknown TSIG algorithm {algorithm:?}");
                return ExitCode::from(2);
            };
            outcome(zonewarden::client::cli::machine_add_with(
                &config,
                &name,
                zone.as_deref(),
                host.as_deref(),
                alg,
                persist,
            ))
        }
    }
}

fn hook(opts: HookOpts, action: HookCmd) -> ExitCode {
    use zonewarden::client::hook::{self, Action, HookError};
    let call = match action {
        HookCmd::CertbotAuth => {
            hook::certbot_challenge(|k| std::env::var(k).ok()).map(|c| Some((Action::Add, vec![c])))
        }
        HookCmd::CertbotCleanup => hook::certbot_challenge(|k| std::env::var(k).ok())
            .map(|c| Some((Action::Remove, vec![c]))),
        HookCmd::Dehydrated { handler, args } => hook::dehydrated_call(&handler, &args),
        HookCmd::Add { domain, value } => {
            hook::Challenge::new(&domain, &value).map(|c| Some((Action::Add, vec![c])))
        }
        HookCmd::Remove { domain, value } => {
            hook::Challenge::new(&domain, &value).map(|c| Some((Action::Remove, vec![c])))
        }
    };
    let args = hook::Args {
        key_file: opts.key,
        zone: opts.zone,
        server: opts.server,
        resolver: opts.resolver,
        nameservers: opts.nameservers,
        ttl: opts.ttl,
        timeout: std::time::Duration::from_secs(opts.timeout),
    };
    let result = call.and_then(|call| match call {
        None => Ok(()),
        Some((action, challenges)) => {
            let settings = hook::Settings::from_args(&args)?;
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            // Progress goes to stderr: certbot keeps an auth hook's stdout,
            // and dehydrated reads some handlers' stdout.
            let mut out = std::io::stderr();
            rt.block_on(hook::run(
                &settings,
                action,
                &challenges,
                &zonewarden::SystemClock,
                &mut out,
            ))
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zonewarden hook: {e}");
            ExitCode::from(HookError::exit_code(&e))
        }
    }
}

/// Print a verb's report; success or failure as its exit status.
fn finish(report: &str, ok: bool) -> ExitCode {
    print!("{report}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Print a verb's output, or its error on stderr.
fn outcome<E: std::fmt::Display>(result: Result<String, E>) -> ExitCode {
    match result {
        Ok(text) => finish(&text, true),
        Err(e) => {
            eprintln!("zonewarden: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tlsa_params(
    a: zonewarden::client::cli::TlsaParamArgs,
) -> Result<zonewarden::dane::TlsaParams, ExitCode> {
    a.params().map_err(|e| {
        eprintln!("zonewarden: {e}");
        ExitCode::from(2)
    })
}

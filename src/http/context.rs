//! What the HTTP API works with: handles to the zones, the policy, the
//! metrics and the write path's drain, plus what only HTTP owns: the bearer
//! token for reads and the readiness probe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;

use super::access::Token;
use crate::acl::{LivePolicy, PolicyState, ReloadStatus};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::server::{LastRefusal, Refusals};
use crate::store::{AuditRow, StoreError};
use crate::writer::{Drain, ZoneHandle, Zones, signature_horizon};

/// One readiness check (`/readyz`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

pub struct Context {
    pub config: Arc<Config>,
    pub zones: Arc<Zones>,
    pub policy: Arc<LivePolicy>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub drain: Arc<Drain>,
    pub refusals: Arc<Refusals>,
    /// The bearer token for HTTP reads from off the machine, if configured.
    token: ArcSwap<Option<Token>>,
    /// The zone acme-dns accounts are registered in (`acme-dns-zone`, or
    /// the only zone served); None: several zones and none named.
    acme_dns_zone: Option<Name>,
    /// TSIG-HMAC verification of `POST /api/v1/tlsa`, with its replay
    /// cache: one for both listeners (HTTP and HTTPS).
    pub(crate) auth: Arc<super::auth::Verifier>,
    /// bcrypt checks of acme-dns passwords running at once (one per core):
    /// each costs tens of milliseconds of CPU and needs no login, and
    /// HTTP/2 lets one connection ask for 16 at a time.
    pub(crate) bcrypt_slots: Arc<tokio::sync::Semaphore>,
    /// The HTTPS listener's certificate (issue 14), when `https` is set.
    pub https_cert: Option<Arc<super::tls::CertStore>>,
    /// The last database write probe for /readyz and when it ran: probes
    /// take SQLite's write lock, so anonymous callers get a cached answer.
    db_probe: Mutex<Option<(Instant, Result<(), String>)>>,
}

/// Why the HTTP API could not start.
pub type TokenError = crate::diag::FileError;

impl Context {
    /// Load the token file (if configured) and bundle the handles.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<Config>,
        zones: Arc<Zones>,
        policy: Arc<LivePolicy>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        drain: Arc<Drain>,
        refusals: Arc<Refusals>,
    ) -> Result<Self, TokenError> {
        let token = Token::load(&config)?;
        let origins = zones.origins();
        let acme_dns_zone = match &config.acme_dns_zone {
            Some(z) => Some(origins.iter().find(|o| *o == z).cloned().ok_or_else(|| {
                crate::diag::FileError::whole_file(
                    std::path::Path::new("(config)"),
                    format!("acme-dns-zone {z} is not a served zone"),
                )
            })?),
            None if origins.len() == 1 => origins.first().cloned(),
            None if !config.acme_dns_register.is_empty() => {
                return Err(crate::diag::FileError::whole_file(
                    std::path::Path::new("(config)"),
                    "acme-dns-register is set and several zones are served: name one with acme-dns-zone",
                ));
            }
            None => None,
        };
        Ok(Self {
            acme_dns_zone,
            https_cert: config.https.as_ref().map(|_| Arc::default()),
            auth: Arc::new(super::auth::Verifier::new(config.tsig_fudge)),
            bcrypt_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            config,
            zones,
            policy,
            metrics,
            clock,
            drain,
            refusals,
            token: ArcSwap::from_pointee(token),
            db_probe: Mutex::new(None),
        })
    }

    pub fn zones(&self) -> &[Arc<ZoneHandle>] {
        self.zones.all()
    }

    pub fn zone_exact(&self, name: &Name) -> Option<&Arc<ZoneHandle>> {
        self.zones.zone_exact(name)
    }

    pub fn policy(&self) -> Arc<PolicyState> {
        self.policy.get()
    }

    pub fn reload_status(&self) -> ReloadStatus {
        self.policy.status()
    }

    pub fn last_refusals(&self) -> HashMap<String, LastRefusal> {
        self.refusals.snapshot()
    }

    /// The newest audit row of each machine. Blocking.
    pub fn last_changes(&self) -> Result<Vec<AuditRow>, StoreError> {
        self.zones.last_changes()
    }

    /// The zone acme-dns accounts are registered in.
    pub fn acme_dns_zone(&self) -> Option<Name> {
        self.acme_dns_zone.clone()
    }

    /// The bearer token in force.
    pub fn http_token(&self) -> Arc<Option<Token>> {
        self.token.load_full()
    }

    /// Read the token file again (SIGHUP); on error the old token stays.
    pub fn reload_http_token(&self) {
        match Token::load(&self.config) {
            Ok(t) => self.token.store(Arc::new(t)),
            Err(e) => {
                tracing::error!(error = %e, "HTTP token not reloaded; the previous one stays in force")
            }
        }
    }

    /// What `/readyz` checks: every zone loaded, the database takes writes
    /// and the last commit did not fail, and no served signature has
    /// expired. Blocking (SQLite).
    pub fn readiness(&self) -> Vec<Check> {
        let now = self.clock.now();
        let mut out = Vec::new();
        if self.drain.is_closing() {
            out.push(Check {
                name: "running".into(),
                ok: false,
                detail: "shutting down".into(),
            });
        }
        let zones = self.zones();
        out.push(Check {
            name: "zones".into(),
            ok: !zones.is_empty(),
            detail: format!("{} zone(s) loaded", zones.len()),
        });
        let db = self.probe_database();
        let failed = self
            .metrics
            .last_commit_failed
            .load(std::sync::atomic::Ordering::Relaxed);
        out.push(Check {
            name: "database".into(),
            ok: db.is_ok() && !failed,
            detail: match (db, failed) {
                (Err(e), _) => e,
                (Ok(()), true) => "the last commit failed".into(),
                (Ok(()), false) => "writable".into(),
            },
        });
        for z in zones.iter().filter(|z| z.signer.is_some()) {
            let (ok, detail) = match signature_horizon(&z.snapshot()) {
                None => (false, "no signatures".to_string()),
                Some(exp) if exp <= now => {
                    (false, format!("a signature expired {} s ago", now - exp))
                }
                Some(exp) => (true, format!("earliest expiry in {} s", exp - now)),
            };
            out.push(Check {
                name: format!("signatures {}", z.origin),
                ok,
                detail,
            });
        }
        out
    }

    /// Whether the database takes a write, probed at most every 5 s (the
    /// probe holds SQLite's write lock; /readyz is open to everyone). The
    /// error is reported without the file's path (the log has it).
    fn probe_database(&self) -> Result<(), String> {
        const EVERY: Duration = Duration::from_secs(5);
        let mut cached = self.db_probe.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, result)) = cached.as_ref()
            && at.elapsed() < EVERY
        {
            return result.clone();
        }
        let result = match self.zones().first() {
            None => Err("no zone, no database connection".to_string()),
            Some(z) => z.with_reader(|s| s.check_writable()).map_err(|e| {
                tracing::warn!(error = %e, "readiness: the database does not take a write");
                "the database does not take a write (see the log)".to_string()
            }),
        };
        *cached = Some((Instant::now(), result.clone()));
        result
    }
}

//! zonewarden: an authoritative DNS server for a small, volatile, delegated
//! zone (`_acme.example.org`) that machines change with TSIG-signed RFC 2136
//! UPDATEs, each within its own ACL.
//!
//! Library first: [`start`] binds the sockets and runs the server in-process
//! (tests use port 0), [`Running::shutdown`] stops it; `main.rs` only parses
//! arguments. `docs/architecture.md` draws both paths hop by hop.
//!
//! Module map, in layers, lowest first. A module imports only modules of
//! lower layers (never one of its own layer or above), so there are no
//! import cycles; `docs/architecture.md` draws the paths through them.
//!
//! 0. `clock`, `diag` (errors located in files), `metrics`, `replay` (the
//!    replay cache of TSIG and the HTTP API), `serial` (RFC 1982).
//! 1. `config`, `zonefile` (the zone file format), `tsig` (RFC 8945),
//!    `dane` (certificate to TLSA, pure), `persist` (dns-persist-01 record
//!    values, pure).
//! 2. `zone` (the snapshot, and `zone::change`: what a change is), `acl`
//!    (ACL files, the policy in force), `dnsclient` (messages we send).
//! 3. `dnssec` (signing), `store` (SQLite), `update` (RFC 2136, pure),
//!    `query` (answers, pure), `xfr` (transfer contents, pure), `notify`
//!    (NOTIFY and propagation to secondaries).
//! 4. `writer`: the zone writer, the only code that changes a zone.
//! 5. `server`: the DNS request front.
//! 6. `http`: the HTTP API and status page.
//! 7. `client`: the operator's tools (`cli`, `hook`, `wait`, `dane
//!    publish`, the HTTP API's client), used by `main.rs` only.

// 0
pub mod clock;
pub mod diag;
pub mod metrics;
pub mod replay;
pub mod serial;
// 1
pub mod config;
pub mod dane;
pub mod persist;
pub mod tsig;
pub mod zonefile;
// 2
pub mod acl;
pub mod dnsclient;
pub mod zone;
// 3
pub mod dnssec;
pub mod notify;
pub mod query;
pub mod store;
pub mod update;
pub mod xfr;
// 4
pub mod writer;
// 5
pub mod server;
// 6
pub mod http;
// 7
pub mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;

use crate::acl::LivePolicy;
use crate::diag::FileErrors;
use crate::metrics::Metrics;
use crate::server::{Refusals, Stats};
use crate::writer::{Drain, OpenError, Zones};

/// How long a shutdown waits for UPDATEs and HTTP requests in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Files(#[from] FileErrors),
    #[error(transparent)]
    Zone(#[from] OpenError),
    #[error(transparent)]
    Bind(#[from] server::BindError),
    #[error("cannot listen on {addr}: {source}")]
    HttpBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTPS certificate: {0}")]
    HttpsCert(#[from] http::tls::TlsError),
    #[error(
        "[https-acme] names: no served zone can hold the DNS-01 challenge of {0} (serve its zone, or a zone whose parent holds it, and CNAME its _acme-challenge there)"
    )]
    HttpsAcmeName(hickory_proto::rr::Name),
}

/// A server running in this process.
pub struct Running {
    pub config: Arc<Config>,
    pub zones: Arc<Zones>,
    pub policy: Arc<LivePolicy>,
    pub metrics: Arc<Metrics>,
    /// Transfers sent, by form.
    pub transfers: Arc<Stats>,
    pub http: Option<Arc<http::Context>>,
    drain: Arc<Drain>,
    dns_addrs: Vec<SocketAddr>,
    http_addr: Option<SocketAddr>,
    https_addr: Option<SocketAddr>,
    /// Our DNS socket loops: UDP (`server::udp`) and TCP accept
    /// (`server::tcp`).
    dns_tasks: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    /// The HTTP and HTTPS accept loops, each with its stop signal.
    http_tasks: Vec<HttpTask>,
}

impl Running {
    /// The DNS addresses actually bound (UDP and TCP share each).
    pub fn dns_addrs(&self) -> &[SocketAddr] {
        &self.dns_addrs
    }

    /// The HTTP API's address, if it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The HTTPS listener's address (issue 14), when `https` is set.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// Expire challenge records past `challenge-max-age` now (the timer
    /// does this every `expiry-interval`). Returns how many. Blocking.
    pub fn sweep_expired(&self) -> Result<usize, store::StoreError> {
        self.zones.sweep_expired(self.config.challenge_max_age)
    }

    /// Reload ACLs, keys and the HTTP token (SIGHUP). Blocking.
    pub fn reload(&self) {
        let _ = self.policy.reload(true);
        if let Some(h) = &self.http {
            h.reload_http_token();
        }
    }

    /// Stop gracefully: refuse new UPDATEs, let those in flight commit and
    /// be answered, stop the DNS and HTTP listeners (HTTP requests in
    /// progress finish), stop the timers, and wait for any commit still
    /// running (expiry, signature refresh, TLSA retirement).
    pub async fn shutdown(mut self) {
        self.drain.close();
        if !self.drain.wait_idle(DRAIN_LIMIT).await {
            tracing::warn!(
                "UPDATEs still in flight after {DRAIN_LIMIT:?}; stopping anyway (committed changes are kept)"
            );
        }
        for t in &self.tasks {
            t.abort();
        }
        for t in &self.dns_tasks {
            t.abort();
        }
        let mut waiting = Vec::new();
        for (stop, task) in self.http_tasks.drain(..) {
            let _ = stop.send(());
            waiting.push(task);
        }
        for task in waiting {
            if tokio::time::timeout(DRAIN_LIMIT, task).await.is_err() {
                tracing::warn!("HTTP requests still open after {DRAIN_LIMIT:?}; stopping anyway");
            }
        }
        let zones = self.zones.clone();
        let _ = tokio::task::spawn_blocking(move || zones.quiesce()).await;
    }
}

/// Run `job` (blocking) every `period`, logging its errors as `what`;
/// with `skip_first`, the first tick (right at start) is skipped.
fn every<E: std::fmt::Display + Send + 'static>(
    period: Duration,
    skip_first: bool,
    what: &'static str,
    job: impl Fn() -> Result<(), E> + Send + Sync + 'static,
) -> JoinHandle<()> {
    let job = Arc::new(job);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if skip_first {
            tick.tick().await;
        }
        loop {
            tick.tick().await;
            let job = job.clone();
            match tokio::task::spawn_blocking(move || job()).await {
                Ok(Err(e)) => tracing::error!(error = %e, "{what} failed; will retry"),
                Err(e) => tracing::error!(error = %e, "{what} task failed"),
                Ok(Ok(())) => {}
            }
        }
    })
}

/// Load everything, bind the sockets, start serving. Errors here are fatal
/// and say which file or address is at fault.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Running, StartError> {
    let config = Arc::new(config);
    check_fd_limit(&config.connections, config.https.is_some());
    let metrics = Arc::new(Metrics::default());
    let (zones, policy, accepted) = {
        let (config, clock, metrics) = (config.clone(), clock.clone(), metrics.clone());
        tokio::task::spawn_blocking(move || -> Result<_, StartError> {
            let specs = zonefile::load_dir(&config.zones_dir)?;
            let zones = Zones::open(specs, &config, clock.clone(), metrics.clone())?;
            let policy = LivePolicy::load(config.clone(), zones.origins(), clock, metrics)?;
            let accepted = zones.accepted_updates().map_err(OpenError::from)?;
            Ok((Arc::new(zones), Arc::new(policy), accepted))
        })
        .await
        .expect("start-up task does not panic")?
    };
    // The replay window of TSIG survives the restart (`store::Accepted`).
    let verifier = Arc::new(tsig::Verifier::new(config.tsig_fudge));
    for a in &accepted {
        if let Ok(key) = hickory_proto::rr::Name::from_ascii(&a.key) {
            verifier.restore(&key, &a.id, a.expires);
        }
    }
    let drain = Arc::new(Drain::default());
    let refusals = Arc::new(Refusals::default());
    let stats = Arc::new(Stats::default());
    let http_cx = match (config.http, &config.https) {
        (None, None) => None,
        _ => Some(Arc::new(
            http::Context::new(
                config.clone(),
                zones.clone(),
                policy.clone(),
                metrics.clone(),
                clock.clone(),
                drain.clone(),
                refusals.clone(),
            )
            .map_err(FileErrors::from)?,
        )),
    };
    let log_gate_refusals = refusals.clone();
    let cx = Arc::new(server::Context::new(
        &config,
        server::Shared {
            zones: zones.clone(),
            policy: policy.clone(),
            verifier,
            metrics: metrics.clone(),
            clock: clock.clone(),
            drain: drain.clone(),
            refusals,
            stats: stats.clone(),
        },
    ));
    let listeners = server::bind(&config.listen).await?;
    let handler = server::Handler::new(cx);
    // Our own loops: UDP with prepared answers, TCP with connection caps
    // and limits.
    let tcp_limiter = server::ConnLimiter::new(
        "dns-tcp",
        config.connections.tcp_max_connections,
        config.connections.tcp_max_connections_per_source,
    );
    let mut dns_addrs = Vec::new();
    let mut dns_tasks = Vec::new();
    for server::Listener { udp, tcp } in listeners {
        if let Ok(a) = tcp.local_addr() {
            dns_addrs.push(a);
        }
        for socket in udp {
            dns_tasks.push(tokio::spawn(server::udp::serve(socket, handler.clone())));
        }
        dns_tasks.push(tokio::spawn(server::tcp::serve(
            tcp,
            handler.clone(),
            tcp_limiter.clone(),
            (&config.connections).into(),
        )));
    }
    let mut tasks = Vec::new();
    let mut http_tasks = Vec::new();
    let http_addr = match (config.http, &http_cx) {
        (Some(addr), Some(cx)) => {
            let (bound, task) = serve_http(cx, addr, None).await?;
            http_tasks.push(task);
            tracing::info!(addr = %bound, "serving the HTTP API");
            Some(bound)
        }
        _ => None,
    };
    // Issue 14: the same API over HTTPS, its certificate from files
    // (reloaded when they change) or from its own ACME order.
    let https_addr = match (&config.https, &http_cx) {
        (Some(https), Some(cx)) => {
            let store = cx.https_cert.clone().expect("made when https is set");
            let mut watch = None;
            match &https.cert {
                config::CertSource::Files { cert, key } => {
                    let seen = http::tls::fingerprint(&[cert, key]);
                    store.set(http::tls::load_files(cert, key, "files")?);
                    watch = Some(http::tls::watch_files(
                        store.clone(),
                        cert.clone(),
                        key.clone(),
                        http::tls::FILE_POLL,
                        seen,
                    ));
                }
                config::CertSource::Acme(acme) => {
                    let origins = zones.origins();
                    if let Some(n) = acme
                        .names
                        .iter()
                        .find(|n| http::own_cert::challenge_at(&origins, n).is_none())
                    {
                        return Err(StartError::HttpsAcmeName(n.clone()));
                    }
                    let dir = config.data_dir.join("https-acme");
                    if let Some(stored) = http::own_cert::load_stored(&dir, acme) {
                        store.set(stored);
                    }
                }
            }
            let tls = http::tls::server_config(store.clone());
            let (bound, task) = serve_http(cx, https.addr, Some(tls)).await?;
            http_tasks.push(task);
            // Started once the listener is bound (a failed bind leaves
            // nothing running).
            tasks.extend(watch.map(tokio::spawn));
            if let config::CertSource::Acme(acme) = &https.cert {
                tasks.push(tokio::spawn(http::own_cert::run(
                    cx.clone(),
                    acme.clone(),
                    store,
                )));
            }
            tracing::info!(addr = %bound, "serving the HTTP API over HTTPS (HTTP/2 and HTTP/1.1)");
            Some(bound)
        }
        _ => None,
    };
    let followers = notify::Followers {
        listen: config.listen.clone(),
        keys: {
            let policy = policy.clone();
            Arc::new(move |name| policy.get().keys.get(name))
        },
        clock: clock.clone(),
        metrics: metrics.clone(),
    };
    for zone in zones.all() {
        tasks.extend(zone.propagation.spawn(&followers));
        // Issue 13: DNSSEC key rollovers, step by step.
        if zone.signer.is_some() {
            tasks.push(tokio::spawn(writer::drive_keys(zone.clone())));
        }
    }
    // The timed drafts: TLSA retirement, challenge expiry, signature
    // refresh (start just signed: its first tick is skipped); and the
    // policy files, polled for changes.
    let z = zones.clone();
    tasks.push(every(
        Duration::from_secs(1),
        false,
        "retiring old TLSA records",
        move || z.retire_due().map(drop),
    ));
    // Issue 11 (clock steps): signatures made while the clock was ahead
    // are re-signed as soon as it is set back (one comparison a second).
    let z = zones.clone();
    tasks.push(every(
        Duration::from_secs(1),
        true,
        "re-signing after a clock step",
        move || z.resign_after_clock_step().map(drop),
    ));
    let (z, max_age) = (zones.clone(), config.challenge_max_age);
    tasks.push(every(
        config.expiry_interval,
        false,
        "challenge expiry",
        move || z.sweep_expired(max_age).map(drop),
    ));
    let z = zones.clone();
    tasks.push(every(
        dnssec::REFRESH_INTERVAL,
        true,
        "signature refresh",
        move || z.refresh_signatures().map(drop),
    ));
    // Issue 11: lines about unauthenticated events suppressed by the log
    // gate are summarised even when the flood has stopped.
    tasks.push(every(
        server::LOG_SUMMARY_INTERVAL,
        true,
        "log summary",
        move || {
            log_gate_refusals.log_gate().flush();
            Ok::<(), std::convert::Infallible>(())
        },
    ));
    let p = policy.clone();
    tasks.push(every(
        config.reload_interval,
        true,
        "policy reload",
        move || {
            // Errors are logged (with path:line:column) by the reload itself.
            let _ = p.reload(false);
            Ok::<(), std::convert::Infallible>(())
        },
    ));
    for a in &dns_addrs {
        tracing::info!(addr = %a, "serving DNS (UDP and TCP)");
    }
    Ok(Running {
        config,
        zones,
        policy,
        metrics,
        transfers: stats,
        http: http_cx,
        drain,
        dns_addrs,
        http_addr,
        https_addr,
        dns_tasks,
        tasks,
        http_tasks,
    })
}

/// Bind `addr` and serve the HTTP API there (over TLS with `tls`): the
/// bound address, and the accept loop with its stop signal.
async fn serve_http(
    cx: &Arc<http::Context>,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(SocketAddr, HttpTask), StartError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::HttpBind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(http::serve(cx.clone(), listener, stopped, tls));
    Ok((bound, (stop, task)))
}

/// An HTTP accept loop and its stop signal.
type HttpTask = (tokio::sync::oneshot::Sender<()>, JoinHandle<()>);

/// Raise the soft limit on open files to the hard one (issue 11), and warn
/// when the connection caps could still exhaust it (the HTTPS listener,
/// when there is one, has the HTTP caps of its own).
fn check_fd_limit(limits: &config::ConnectionLimits, https: bool) {
    match server::raise_fd_limit() {
        Ok((soft, hard)) => {
            let http = limits.http_max_connections * if https { 2 } else { 1 };
            let wanted = (limits.tcp_max_connections + http) as u64 + server::conn::FD_RESERVE;
            if soft < wanted {
                tracing::warn!(
                    soft,
                    hard,
                    wanted,
                    "the open-files limit is below tcp-max-connections + http-max-connections (twice with https) + {}: raise LimitNOFILE / ulimit -n, or lower the caps",
                    server::conn::FD_RESERVE
                );
            } else {
                tracing::debug!(soft, hard, "open-files limit");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}

/// Run until SIGINT or SIGTERM; SIGHUP reloads ACLs and keys.
pub async fn run(config: Config) -> Result<(), StartError> {
    use tokio::signal::unix::{SignalKind, signal};
    let running = Arc::new(start(config, Arc::new(SystemClock)).await?);
    let mut hup = signal(SignalKind::hangup()).expect("install SIGHUP handler");
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading ACLs, keys and the HTTP token");
                let r = running.clone();
                let _ = tokio::task::spawn_blocking(move || r.reload()).await;
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down: finishing UPDATEs in flight");
    match Arc::try_unwrap(running) {
        Ok(running) => running.shutdown().await,
        Err(_) => tracing::warn!("a reload still runs; stopping without draining"),
    }
    tracing::info!("stopped");
    Ok(())
}

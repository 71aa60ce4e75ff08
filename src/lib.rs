//! zonewarden: an authoritative DNS server for a small, volatile, delegated
//! zone (`_acme.example.org`) that machines change with TSIG-signed RFC 2136
//! UPDATEs, each within its own ACL.
//!
//! Library first: [`start`] binds the sockets and runs the server in-process
//! (tests use port 0), [`Running::shutdown`] stops it; `main.rs` only parses
//! arguments. Module map, in the order a request meets them:
//! `server` (sockets, dispatch, response encoding) → `tsig` (RFC 8945) →
//! `query` (answers from a `zone` snapshot) or `update` (RFC 2136, checked
//! against `acl`) → `dnssec` (re-sign what changed) → `app` (commit to
//! `store`, swap the snapshot).
//! Files: `config`, `zonefile`, `acl`, key files in `tsig`; located errors
//! in `diag`. Operator verbs: `cli`.

pub mod acl;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dane;
pub mod diag;
pub mod dnsclient;
pub mod dnssec;
pub mod hook;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod query;
pub mod replay;
pub mod rollover;
pub mod serial;
pub mod server;
pub mod store;
pub mod tsig;
pub mod update;
pub mod wait;
pub mod xfr;
pub mod zone;
pub mod zonefile;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use app::{App, StartError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;

/// How long an idle TCP connection is kept.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// A server running in this process.
pub struct Running {
    pub app: Arc<App>,
    dns_addrs: Vec<SocketAddr>,
    http_addr: Option<SocketAddr>,
    server: hickory_server::Server<server::Handler>,
    tasks: Vec<JoinHandle<()>>,
    http: Option<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>,
}

/// How long a shutdown waits for UPDATEs and HTTP requests in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

impl Running {
    /// The DNS addresses actually bound (UDP and TCP share each).
    pub fn dns_addrs(&self) -> &[SocketAddr] {
        &self.dns_addrs
    }

    /// The HTTP API's address, if it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Stop gracefully: refuse new UPDATEs, let those in flight commit and
    /// be answered, stop the DNS and HTTP listeners (HTTP requests in
    /// progress finish), stop the timers, and wait for any commit still
    /// running (expiry, signature refresh, TLSA retirement).
    pub async fn shutdown(mut self) {
        self.app.drain.close();
        if !self.app.drain.wait_idle(DRAIN_LIMIT).await {
            tracing::warn!(
                "UPDATEs still in flight after {DRAIN_LIMIT:?}; stopping anyway (committed changes are kept)"
            );
        }
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.server.shutdown_gracefully().await;
        if let Some((stop, task)) = self.http.take() {
            let _ = stop.send(());
            if tokio::time::timeout(DRAIN_LIMIT, task).await.is_err() {
                tracing::warn!("HTTP requests still open after {DRAIN_LIMIT:?}; stopping anyway");
            }
        }
        let app = self.app.clone();
        let _ = tokio::task::spawn_blocking(move || app.quiesce()).await;
    }
}

/// Load everything, bind the sockets, start serving. Errors here are fatal
/// and say which file or address is at fault.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Running, StartError> {
    let listen = config.listen.clone();
    let app = {
        let config = config.clone();
        let clock = clock.clone();
        tokio::task::spawn_blocking(move || App::open(config, clock))
            .await
            .expect("start-up task does not panic")?
    };
    let app = Arc::new(app);
    let sockets = server::bind(&listen).await?;
    let mut server = hickory_server::Server::new(server::Handler::new(app.clone()));
    let mut dns_addrs = Vec::new();
    for (udp, tcp) in sockets {
        if let Ok(a) = udp.local_addr() {
            dns_addrs.push(a);
        }
        server.register_socket(udp);
        // Room for the largest zone transfer (see `xfr`): the buffer is only
        // allocated as it fills.
        server.register_listener(tcp, TCP_IDLE, xfr::MAX_MESSAGES + 8);
    }
    let mut tasks = Vec::new();
    let mut http = None;
    let http_addr = match app.config.http {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let bound = listener.local_addr().ok();
            let (stop, stopped) = tokio::sync::oneshot::channel();
            http = Some((
                stop,
                tokio::spawn(http::serve(app.clone(), listener, stopped)),
            ));
            if let Some(a) = bound {
                tracing::info!(addr = %a, "serving the HTTP API");
            }
            bound
        }
    };
    // DANE rollovers: retire old TLSA records when due.
    {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let a = app.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || a.retire_due()).await {
                    tracing::error!(error = %e, "retiring old TLSA records failed; will retry");
                }
            }
        }));
    }
    for zone in app.zones() {
        tasks.extend(zone.propagation.spawn(app.clone()));
    }
    // Challenge expiry.
    {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(app.config.expiry_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let a = app.clone();
                match tokio::task::spawn_blocking(move || a.sweep_expired()).await {
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "challenge expiry failed; will retry")
                    }
                    Err(e) => tracing::error!(error = %e, "challenge expiry task failed"),
                    Ok(Ok(_)) => {}
                }
            }
        }));
    }
    // Signatures close to expiry: re-sign (the first tick is skipped: start just did).
    {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(dnssec::REFRESH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let a = app.clone();
                if let Ok(Err(e)) =
                    tokio::task::spawn_blocking(move || a.refresh_signatures()).await
                {
                    tracing::error!(error = %e, "signature refresh failed; will retry");
                }
            }
        }));
    }
    // ACL and key files: poll for changes.
    {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(app.config.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let a = app.clone();
                let _ = tokio::task::spawn_blocking(move || a.reload_policy(false)).await;
            }
        }));
    }
    for a in &dns_addrs {
        tracing::info!(addr = %a, "serving DNS (UDP and TCP)");
    }
    Ok(Running {
        app,
        dns_addrs,
        http_addr,
        server,
        tasks,
        http,
    })
}

/// Run until SIGINT or SIGTERM; SIGHUP reloads ACLs and keys.
pub async fn run(config: Config) -> Result<(), StartError> {
    use tokio::signal::unix::{SignalKind, signal};
    let running = start(config, Arc::new(SystemClock)).await?;
    let mut hup = signal(SignalKind::hangup()).expect("install SIGHUP handler");
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading ACLs, keys and the HTTP token");
                let a = running.app.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let _ = a.reload_policy(true);
                    a.reload_http_token();
                })
                .await;
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down: finishing UPDATEs in flight");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

//! The HTTP API (axum), on the address in the configuration (`http`,
//! default 127.0.0.1:8053; "off" turns it off):
//!
//! - `GET /healthz` (the process runs), `GET /readyz` (zones loaded,
//!   database writable, signatures valid; 503 otherwise): open to all;
//! - `GET /metrics` (Prometheus), `GET /api/v1/zones`,
//!   `/api/v1/zones/{zone}`, `/api/v1/zones/{zone}/propagation`,
//!   `/api/v1/zones/{zone}/persist` (dns-persist-01 records),
//!   `/api/v1/machines`, `/api/v1/audit`, and the status page `GET /`:
//!   read-only, open on loopback, bearer token otherwise (`access`);
//! - `POST /api/v1/tlsa`: TLSA publishing, per-machine TSIG-HMAC (`auth`);
//! - `POST /register`, `POST /update`, `GET /health`: the acme-dns API
//!   (`acme_dns`), with acme-dns's own answers.
//!
//! Every answer has a real status code and, for errors, a JSON body
//! `{"error": "..."}`: 400 bad request or certificate, 401 authentication
//! (see `auth`), 403 the machine may not do this, 404 zone not served, 413
//! body too large, 422 expired certificate, 500 the database failed.
//! Nothing returned ever contains a secret.

pub mod access;
pub mod acme_dns;
pub mod api;
pub mod auth;
mod context;
pub mod dnssec_api;
pub mod own_cert;
pub mod page;
pub mod persist_view;
pub mod tls;
pub mod tlsa_api;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

pub use context::{Check, Context};

#[derive(Clone)]
pub(crate) struct State {
    pub(crate) app: Arc<Context>,
    auth: Arc<auth::Verifier>,
}

/// An error answer: a status and a JSON `{"error": ...}` body.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    pub(crate) fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        Self(status, msg.into())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.0, axum::Json(ErrorBody { error: &self.1 })).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(auth::SCHEME),
            );
        }
        resp
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

pub fn router(app: Arc<Context>) -> Router {
    let body_limit = app.config.connections.http_body_limit;
    let body_timeout = app.config.connections.http_body_timeout;
    let state = State {
        // One replay cache for the HTTP and HTTPS listeners: a request
        // seen on one is a replay on the other.
        auth: app.auth.clone(),
        app,
    };
    let reads = Router::new()
        .route("/", get(page::status_page))
        .route("/metrics", get(api::metrics))
        .route("/api/v1/zones", get(api::zones))
        .route("/api/v1/zones/{zone}", get(api::zone))
        .route(
            "/api/v1/zones/{zone}/propagation",
            get(api::zone_propagation),
        )
        .route("/api/v1/zones/{zone}/dnssec", get(dnssec_api::status))
        .route("/api/v1/zones/{zone}/persist", get(persist_view::list))
        .route("/api/v1/machines", get(api::machines_list))
        .route("/api/v1/audit", get(api::audit_list))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::require_reader,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/v1/tlsa", post(tlsa_api::publish))
        // Issue 14: the acme-dns API, at acme-dns's paths.
        .route("/register", post(acme_dns::register))
        .route("/update", post(acme_dns::update))
        .route("/health", get(acme_dns::health))
        .route("/api/v1/zones/{zone}/dnssec/roll", post(dnssec_api::roll))
        .merge(reads)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            (body_limit, body_timeout),
            read_body,
        ))
        .with_state(state)
}

/// Serve the API on `listener` until `stop` fires; requests in progress
/// are finished first. With `tls`, the listener speaks HTTPS: HTTP/2 or
/// HTTP/1.1 as ALPN chose.
///
/// Our own accept loop over hyper's connection (axum::serve has no
/// timeouts or caps; issue 11): connections past `http-max-connections`
/// (total) or `http-max-connections-per-source` are closed at once; the
/// TLS handshake and a request header (and, between requests, the next one
/// on a keep-alive connection) must arrive within `http-header-timeout`;
/// an HTTP/2 connection on which no request starts for as long is closed
/// (see [`serve_connection`]); a body must arrive within `http-body-timeout` (408) and
/// `http-body-limit` (413), see [`read_body`].
pub async fn serve(
    app: Arc<Context>,
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    use hyper::service::Service as _;

    let limits = app.config.connections.clone();
    let limiter = crate::server::ConnLimiter::new(
        if tls.is_some() { "https" } else { "http" },
        limits.http_max_connections,
        limits.http_max_connections_per_source,
    );
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let router = router(app);
    let (closing, close) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => break,
        };
        let (stream, src) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                // Out of descriptors or memory: back off rather than spin.
                tracing::debug!(error = %e, "HTTP accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        let Ok(guard) = limiter.admit(src.ip()) else {
            drop(stream);
            continue;
        };
        let inner = hyper_util::service::TowerToHyperService::new(router.clone());
        let last_request = LastRequest::default();
        let seen = last_request.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            seen.now();
            req.extensions_mut().insert(axum::extract::ConnectInfo(src));
            inner.call(req)
        });
        let (close, acceptor, limits) = (close.clone(), acceptor.clone(), limits.clone());
        conns.spawn(async move {
            let _guard = guard;
            let within = limits.http_header_timeout;
            match acceptor {
                None => serve_connection(stream, svc, false, within, last_request, close).await,
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(within, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%src, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    serve_connection(stream, svc, h2, within, last_request, close).await
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    while conns.join_next().await.is_some() {}
}

/// One connection, HTTP/1.1 (`h2` false) or HTTP/2, until it ends or the
/// listener closes (`close`: finish what is in progress, then stop).
///
/// An HTTP/2 connection on which no request has started for `idle` is
/// told to go away (GOAWAY; streams in progress may finish), and dropped
/// `idle` later whatever its streams do: a client that stalls its own
/// answers (a zero flow-control window) cannot hold a connection slot.
/// HTTP/1.1's idle limit is hyper's header-read timeout.
async fn serve_connection<IO, S, B>(
    io: IO,
    svc: S,
    h2: bool,
    idle: Duration,
    last_request: LastRequest,
    mut close: tokio::sync::watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST);
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = close.changed() => break,
            _ = tick.tick(), if h2 => {
                if last_request.elapsed() > idle {
                    break;
                }
            }
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(idle, conn).await;
}

/// Streams an HTTP/2 connection may have open at once.
const H2_MAX_STREAMS: u32 = 16;
/// Bytes of request header an HTTP/2 stream may send.
const H2_MAX_HEADER_LIST: u32 = 16 * 1024;

/// When a connection's last request started (the HTTP/2 idle limit).
#[derive(Clone)]
struct LastRequest(Arc<std::sync::Mutex<std::time::Instant>>);

impl Default for LastRequest {
    fn default() -> Self {
        Self(Arc::new(std::sync::Mutex::new(std::time::Instant::now())))
    }
}

impl LastRequest {
    fn now(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
    }

    fn elapsed(&self) -> Duration {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }
}

/// Read the whole request body before the handler runs, within
/// `http-body-timeout` (else 408) and `http-body-limit` (else 413), so a
/// client trickling a body cannot hold a handler (and its connection)
/// open. Bodies here are small (a certificate chain is a few KiB).
async fn read_body(
    axum::extract::State((limit, within)): axum::extract::State<(usize, Duration)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::body::{Body, HttpBody};

    let (parts, mut body) = req.into_parts();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes"),
        )
        .into_response()
    };
    if body.size_hint().lower() > limit as u64 {
        return too_large();
    }
    let read = async {
        let mut bytes = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let Ok(frame) = frame else {
                return Err(
                    ApiError::new(StatusCode::BAD_REQUEST, "request body unreadable")
                        .into_response(),
                );
            };
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > limit {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    };
    match tokio::time::timeout(within, read).await {
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {within:?}"),
        )
        .into_response(),
        Ok(Err(resp)) => resp,
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

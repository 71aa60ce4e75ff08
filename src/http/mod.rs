//! The HTTP API (axum), on the address in the configuration (`http`,
//! default 127.0.0.1:8053; "off" turns it off):
//!
//! - `GET /healthz` (the process runs), `GET /readyz` (zones loaded,
//!   database writable, signatures valid; 503 otherwise): open to all;
//! - `GET /metrics` (Prometheus), `GET /api/v1/zones`,
//!   `/api/v1/zones/{zone}`, `/api/v1/zones/{zone}/propagation`,
//!   `/api/v1/machines`, `/api/v1/audit`, and the status page `GET /`:
//!   read-only, open on loopback, bearer token otherwise (`access`);
//! - `POST /api/v1/tlsa`: TLSA publishing, per-machine TSIG-HMAC (`auth`).
//!
//! Every answer has a real status code and, for errors, a JSON body
//! `{"error": "..."}`: 400 bad request or certificate, 401 authentication
//! (see `auth`), 403 the machine may not do this, 404 zone not served, 413
//! body too large, 422 expired certificate, 500 the database failed.
//! Nothing returned ever contains a secret.

pub mod access;
pub mod api;
pub mod auth;
mod context;
pub mod page;
pub mod tlsa_api;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

pub use context::{Check, Context};

/// Request bodies above this are refused (413); a certificate chain is a
/// few KiB.
const BODY_LIMIT: usize = 64 * 1024;

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
    let state = State {
        auth: Arc::new(auth::Verifier::new(app.config.tsig_fudge)),
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
        .merge(reads)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serve the API on `listener` until `stop` fires; requests in progress
/// are finished first.
pub async fn serve(
    app: Arc<Context>,
    listener: tokio::net::TcpListener,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let router = router(app).into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = async move {
        let _ = stop.await;
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "HTTP API stopped");
    }
}

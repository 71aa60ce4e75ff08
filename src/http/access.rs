//! Who may read the operations views (`/metrics`, `/api/v1/...` reads,
//! the status page `/`).
//!
//! The rule, decided by [`decide`] from the peer address, the
//! configuration and the `Authorization` header:
//!
//! - A request with `Authorization: Bearer TOKEN` is let in when TOKEN is
//!   the configured token (compared in constant time) and refused (401)
//!   otherwise, from anywhere: a wrong token is a mistake worth seeing.
//! - Without a token, a loopback peer (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)
//!   is let in, unless `http-require-token = true`, if the request came
//!   straight to us ([`direct`]: no `Forwarded`/`X-Forwarded-For`/
//!   `X-Real-IP` header, `Host` an IP literal or `localhost`), so that a
//!   proxy on the machine or a DNS-rebinding browser page gets no free pass.
//! - Otherwise: 401 with `WWW-Authenticate: Bearer` when a token is
//!   configured, 403 with an explanation when none is (reads from other
//!   machines are off until the admin sets `http-token-file`).
//!
//! `/healthz` and `/readyz` are open to every peer (load balancers and
//! orchestrators probe without credentials; they reveal nothing but
//! readiness), and `POST /api/v1/tlsa` has its own per-machine TSIG
//! authentication (`auth`). The token grants reading only.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

use crate::config::Config;
use crate::diag::FileError;

/// The bearer token. `Debug` never shows it.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Tokens shorter than this are refused at start: guessable.
pub const MIN_TOKEN_LEN: usize = 16;

impl Token {
    pub fn new(secret: &[u8]) -> Self {
        Self(secret.to_vec())
    }

    /// The token from `http-token-file`, if one is configured: the file's
    /// content without surrounding white space, at least 16 characters.
    pub fn load(config: &Config) -> Result<Option<Token>, FileError> {
        let Some(path) = &config.http_token_file else {
            return Ok(None);
        };
        Self::read(path).map(Some)
    }

    fn read(path: &Path) -> Result<Token, FileError> {
        let text = std::fs::read(path)
            .map_err(|e| FileError::whole_file(path, format!("cannot read the HTTP token: {e}")))?;
        let token = text.trim_ascii();
        if token.len() < MIN_TOKEN_LEN || token.iter().any(|b| !b.is_ascii_graphic()) {
            return Err(FileError::whole_file(
                path,
                format!(
                    "the HTTP token must be at least {MIN_TOKEN_LEN} printable characters without spaces (e.g. `openssl rand -hex 32`)"
                ),
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path)
                && m.permissions().mode() & 0o027 != 0
            {
                // 0640 root:zonewarden (docs/operations.md, "Install") is
                // fine; other users reading it, or the group writing it, not.
                tracing::warn!(file = %path.display(), "the HTTP token file is readable by other users or writable by its group; chmod 640 (owner root, group zonewarden) or 600");
            }
        }
        Ok(Token(token.to_vec()))
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.0.as_slice().ct_eq(presented))
    }
}

/// Whether `ip` is this machine's loopback (IPv4-mapped IPv6 included).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Why a read was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// 401: no bearer token presented.
    Missing,
    /// 401: a token that is not the configured one.
    Wrong,
    /// 403: from another machine, and no token is configured.
    NotConfigured,
}

impl Denied {
    pub fn status(self) -> StatusCode {
        match self {
            Denied::Missing | Denied::Wrong => StatusCode::UNAUTHORIZED,
            Denied::NotConfigured => StatusCode::FORBIDDEN,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Denied::Missing => "a bearer token is required (Authorization: Bearer TOKEN)",
            Denied::Wrong => "wrong bearer token",
            Denied::NotConfigured => {
                "reads from other machines are off: set http-token-file in the configuration and send Authorization: Bearer TOKEN"
            }
        }
    }
}

/// Whether a request came straight to us: no proxy header
/// (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`), and a `Host` that is an
/// IP literal or `localhost` (a browser led to 127.0.0.1 by DNS
/// rebinding sends its own host name). Only such a request gets the
/// loopback trust: a proxy or tunnel on this machine connects from
/// loopback on behalf of anyone.
pub fn direct(headers: &axum::http::HeaderMap) -> bool {
    let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h));
    let host_ok = match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        None => true, // HTTP/1.0 without Host: no browser
        Some(h) => {
            let host = match h.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => h.rsplit_once(':').map_or(h, |(host, _)| host),
            };
            host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok()
        }
    };
    !proxied && host_ok
}

/// The access rule (see the module docs). `direct`: see [`direct`].
pub fn decide(
    peer: IpAddr,
    direct: bool,
    require_token: bool,
    token: Option<&Token>,
    authorization: Option<&[u8]>,
) -> Result<(), Denied> {
    let presented = authorization.and_then(|h| {
        let (scheme, rest) = h.split_at_checked(7)?;
        scheme
            .eq_ignore_ascii_case(b"bearer ")
            .then(|| rest.trim_ascii())
    });
    match (presented, token) {
        (Some(p), Some(t)) if t.matches(p) => return Ok(()),
        (Some(_), Some(_)) => return Err(Denied::Wrong),
        _ => {}
    }
    if is_loopback(peer) && direct && !require_token {
        return Ok(());
    }
    // A presented token with a configured one was decided above.
    match token {
        None => Err(Denied::NotConfigured),
        Some(_) => Err(Denied::Missing),
    }
}

/// Middleware in front of the read views.
pub(crate) async fn require_reader(
    State(state): State<super::State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let token = state.app.http_token();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match decide(
        peer.ip(),
        direct(req.headers()),
        state.app.config.http_require_token,
        token.as_ref().as_ref(),
        auth,
    ) {
        Ok(()) => next.run(req).await,
        Err(denied) => {
            // A wrong token is worth a warning; anonymous probes are not
            // (anyone could fill the log with them).
            if denied == Denied::Wrong {
                tracing::warn!(peer = %peer, path = %req.uri().path(), reason = denied.message(), "HTTP read refused");
            } else {
                tracing::debug!(peer = %peer, path = %req.uri().path(), reason = denied.message(), "HTTP read refused");
            }
            let mut resp = (
                denied.status(),
                axum::Json(serde_json::json!({ "error": denied.message() })),
            )
                .into_response();
            if denied.status() == StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"zonewarden\""),
                );
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const T: &[u8] = b"0123456789abcdef0123";

    #[test]
    fn loopback_reads_need_no_token_unless_required() {
        let tok = Token::new(T);
        for peer in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(decide(ip(peer), true, false, None, None), Ok(()), "{peer}");
            assert_eq!(
                decide(ip(peer), true, false, Some(&tok), None),
                Ok(()),
                "{peer}"
            );
            assert_eq!(
                decide(ip(peer), true, true, Some(&tok), None),
                Err(Denied::Missing),
                "{peer}"
            );
        }
    }

    #[test]
    fn other_machines_need_the_token_and_are_forbidden_without_one_configured() {
        let tok = Token::new(T);
        for peer in ["192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7", "0.0.0.0"] {
            assert_eq!(
                decide(ip(peer), true, false, None, None),
                Err(Denied::NotConfigured)
            );
            assert_eq!(
                decide(
                    ip(peer),
                    true,
                    false,
                    None,
                    Some(b"Bearer whatever-it-is-1234")
                ),
                Err(Denied::NotConfigured)
            );
            assert_eq!(
                decide(ip(peer), true, false, Some(&tok), None),
                Err(Denied::Missing)
            );
            assert_eq!(
                decide(ip(peer), true, false, Some(&tok), Some(b"Basic abc")),
                Err(Denied::Missing)
            );
            assert_eq!(
                decide(
                    ip(peer),
                    true,
                    false,
                    Some(&tok),
                    Some(b"Bearer 0123456789abcdef0124")
                ),
                Err(Denied::Wrong)
            );
            assert_eq!(
                decide(
                    ip(peer),
                    true,
                    false,
                    Some(&tok),
                    Some(b"Bearer 0123456789abcdef012")
                ),
                Err(Denied::Wrong)
            );
            let good = [b"bearer ".as_slice(), T].concat();
            assert_eq!(
                decide(ip(peer), true, false, Some(&tok), Some(&good)),
                Ok(())
            );
        }
    }

    #[test]
    fn a_wrong_token_is_refused_even_from_loopback() {
        let tok = Token::new(T);
        assert_eq!(
            decide(
                ip("127.0.0.1"),
                true,
                false,
                Some(&tok),
                Some(b"Bearer nope-nope-nope-nope")
            ),
            Err(Denied::Wrong)
        );
    }

    #[test]
    fn loopback_trust_needs_a_direct_request() {
        use axum::http::{HeaderMap, HeaderValue};
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(direct(&h(&[])));
        assert!(direct(&h(&[("host", "127.0.0.1:8053")])));
        assert!(direct(&h(&[("host", "localhost:8053")])));
        assert!(direct(&h(&[("host", "[::1]:8053")])));
        // DNS rebinding: a browser sends the attacker's name.
        assert!(!direct(&h(&[("host", "evil.example:8053")])));
        // A proxy on this machine forwards for someone else.
        assert!(!direct(&h(&[
            ("host", "127.0.0.1"),
            ("x-forwarded-for", "203.0.113.9")
        ])));
        assert!(!direct(&h(&[("forwarded", "for=203.0.113.9")])));
        assert!(!direct(&h(&[("x-real-ip", "203.0.113.9")])));
        let tok = Token::new(T);
        assert_eq!(
            decide(ip("127.0.0.1"), false, false, Some(&tok), None),
            Err(Denied::Missing)
        );
        assert_eq!(
            decide(ip("127.0.0.1"), false, false, None, None),
            Err(Denied::NotConfigured)
        );
    }

    #[test]
    fn token_debug_hides_the_secret() {
        assert_eq!(format!("{:?}", Token::new(T)), "Token(..)");
    }
}

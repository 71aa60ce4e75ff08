//! The client side of the HTTP API for the CLI (`zonewarden api tlsa`):
//! a plain HTTP/1.1 POST signed with the machine's TSIG key (see `auth`).
//! Plain HTTP only: the body is public and the MAC protects it; put a TLS
//! proxy in front and use any HTTP client with `auth::authorization` for
//! other set-ups.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http::auth;
use crate::tsig::Key;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad URL {0:?}: use http://ADDR:PORT")]
    Url(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("malformed HTTP answer")]
    Malformed,
}

/// `http://127.0.0.1:8053` → the socket address.
pub fn parse_url(url: &str) -> Result<SocketAddr, ClientError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ClientError::Url(url.into()))?;
    rest.trim_end_matches('/')
        .parse()
        .map_err(|_| ClientError::Url(url.into()))
}

/// An unsigned request (`GET`, or a `POST` without a body) to `path`; returns
/// (status, body).
pub async fn plain(
    addr: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), ClientError> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    exchange(addr, head.into_bytes(), timeout).await
}

/// POST `body` to `path`, signed with `key`; returns (status, body).
pub async fn post(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    key: &Key,
    now: u64,
    timeout: Duration,
) -> Result<(u16, String), ClientError> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        body.len(),
        auth::authorization(key, "POST", path, body, now)
    )
    .into_bytes();
    request.extend_from_slice(body);
    exchange(addr, request, timeout).await
}

/// Send one whole HTTP/1.1 request and read the answer to its end.
async fn exchange(
    addr: SocketAddr,
    request: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, String), ClientError> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(&request).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        Ok::<_, ClientError>(raw)
    };
    let raw = tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ClientError::Timeout(timeout))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or(ClientError::Malformed)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(ClientError::Malformed)?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): our own accept loop and
//! connection tasks, in place of hickory-server's (which has no connection
//! caps and restarts its idle timer with every message, so one query every
//! few seconds held a connection forever). UDP is `udp`'s.
//!
//! - Accept: each connection takes a place in the [`ConnLimiter`] (total
//!   and per source) or is closed at once. When `accept` itself fails for
//!   lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) the loop backs off
//!   (10 ms doubling to 1 s) instead of spinning on the error.
//! - A connection reads 2-octet length-prefixed messages and answers them
//!   one at a time, in order, through the same [`Handler`] UDP uses. It is
//!   closed (RFC 7766 §6.2.3, "servers MAY close idle connections and
//!   SHOULD limit how long any one connection is held"):
//!   - when no complete message arrives within `tcp-idle-timeout` of the
//!     previous answer (a message trickled in byte by byte does not reset
//!     it);
//!   - `tcp-max-lifetime` after it was opened, however busy: no new message
//!     is read after that, the one in progress is answered;
//!   - after `tcp-max-queries` messages;
//!   - when a response cannot be written within `tcp-idle-timeout` (a
//!     client that does not read).
//! - Every closing is a clean FIN after the last answer; the client opens a
//!   new connection for what it has left (RFC 7766 §6.2.3).
//!
//! Zone transfers stream many messages for one request over the same
//! connection; each message write has its own timeout, and how many run
//! at once is capped in `transfer` (`transfers-max`).
//!
//! # Limitations
//! Messages on one connection are answered in order, one at a time
//! (pipelining is accepted, RFC 7766 §6.2.1.1, but not processed
//! concurrently): one slow UPDATE delays the queries queued behind it on
//! that connection only.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use super::Handler;
use super::conn::{ConnGuard, ConnLimiter};
use crate::config::ConnectionLimits;

/// The per-connection limits (from `ConnectionLimits`).
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub idle: Duration,
    pub lifetime: Duration,
    pub max_queries: usize,
}

impl From<&ConnectionLimits> for TcpLimits {
    fn from(c: &ConnectionLimits) -> Self {
        Self {
            idle: c.tcp_idle_timeout,
            lifetime: c.tcp_max_lifetime,
            max_queries: c.tcp_max_queries,
        }
    }
}

/// Back-off bounds when `accept` fails for lack of resources.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Is this `accept` error a lack of resources (retrying at once would spin)?
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accept DNS connections on `listener` until the task is aborted (which
/// also closes every connection it opened).
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    limiter: Arc<ConnLimiter>,
    limits: TcpLimits,
) {
    let mut conns = JoinSet::new();
    let mut backoff = BACKOFF_MIN;
    loop {
        let (stream, src) = match listener.accept().await {
            Ok(accepted) => {
                backoff = BACKOFF_MIN;
                accepted
            }
            Err(e) if out_of_resources(&e) => {
                if backoff == BACKOFF_MIN {
                    tracing::error!(error = %e, "cannot accept DNS TCP connections (out of file descriptors or memory); backing off");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        let Ok(guard) = limiter.admit(src.ip()) else {
            // Closed at once: dropping the stream sends FIN (or RST).
            drop(stream);
            continue;
        };
        let handler = handler.clone();
        conns.spawn(connection(stream, src, handler, limits, guard));
    }
}

/// Read one length-prefixed message; `None` at a clean end of stream.
async fn read_message<R: AsyncReadExt + Unpin>(rd: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    rd.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Serve one connection under its limits.
async fn connection(
    stream: TcpStream,
    src: SocketAddr,
    handler: Handler,
    limits: TcpLimits,
    _guard: ConnGuard,
) {
    let _ = stream.set_nodelay(true);
    let end_of_life = Instant::now() + limits.lifetime;
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let responder = TcpResponder {
        wr: Arc::new(Mutex::new(wr)),
        write_timeout: limits.idle,
        failed: Arc::default(),
    };
    for _ in 0..limits.max_queries {
        // The idle limit counts from the last answer and is not restarted
        // by partial input; the lifetime caps it.
        let deadline = (Instant::now() + limits.idle).min(end_of_life);
        let msg = match timeout_at(deadline, read_message(&mut rd)).await {
            Ok(Ok(Some(msg))) => msg,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::debug!(%src, error = %e, "DNS TCP connection failed");
                return;
            }
            Err(_) => break,
        };
        super::dispatch(&handler, msg, src, Protocol::Tcp, responder.clone()).await;
        if responder.failed() {
            return;
        }
    }
    let mut wr = responder.wr.lock().await;
    let _ = timeout(limits.idle, wr.shutdown()).await;
}

/// Sends responses on one connection: encoded once, written with a length
/// prefix, each write bounded by the idle timeout.
#[derive(Clone)]
struct TcpResponder {
    wr: Arc<Mutex<OwnedWriteHalf>>,
    write_timeout: Duration,
    failed: Arc<AtomicBool>,
}

impl TcpResponder {
    /// Did a write fail or time out (the connection is then dropped)?
    fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    async fn write(&self, bytes: &[u8]) -> Result<(), NetError> {
        let len = u16::try_from(bytes.len())
            .map_err(|_| NetError::from("response longer than 65,535 octets"))?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(bytes);
        let mut wr = self.wr.lock().await;
        let result = match timeout(self.write_timeout, wr.write_all(&framed)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(NetError::from("response write timed out")),
        };
        self.failed.store(true, Ordering::Relaxed);
        result
    }
}

/// Encode like hickory does for TCP (up to 65,535 octets; SERVFAIL if the
/// message cannot be encoded).
pub(super) fn encode<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> Result<(ResponseInfo, Vec<u8>), NetError> {
    let id = response.metadata().id;
    let mut bytes = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut bytes);
    enc.set_max_size(u16::MAX);
    match response.destructive_emit(&mut enc) {
        Ok(info) => Ok((info, bytes)),
        Err(error) => {
            tracing::error!(%error, "cannot encode a response; answering SERVFAIL");
            bytes.clear();
            let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
            metadata.response_code = ResponseCode::ServFail;
            let header = Header {
                metadata,
                counts: HeaderCounts::default(),
            };
            header
                .emit(&mut BinEncoder::new(&mut bytes))
                .map_err(|e| NetError::from(e.to_string()))?;
            Ok((ResponseInfo::from(header), bytes))
        }
    }
}

#[async_trait::async_trait]
impl ResponseHandler for TcpResponder {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, bytes) = encode(response)?;
        self.write(&bytes).await?;
        Ok(info)
    }
}

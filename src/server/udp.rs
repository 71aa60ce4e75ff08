//! DNS over UDP: our own socket loop, in place of hickory-server's (whose
//! per-request task, parse and double encode cost four times what the
//! answer does; see docs/performance.md).
//!
//! - **Sockets**: each listen address gets one UDP socket per core, all
//!   bound to the same port with `SO_REUSEPORT`, so the kernel spreads
//!   clients over them; each has a 1 MiB receive buffer (bursts of
//!   UPDATEs are not lost behind a query flood) and its own task.
//! - **Batches**: a task takes up to [`BATCH`] datagrams with one
//!   `recvmmsg` call and sends the answers it prepared with one
//!   `sendmmsg` call (Linux; each is one system call instead of 32).
//! - **Two paths**: a plain query is answered on the spot from a prepared
//!   answer (`prepared`); anything else (TSIG, UPDATE, NOTIFY, cookies,
//!   NSID, class CH, an answer too large for the requester) is handed to
//!   the request front ([`Handler`], the same as for TCP) in a task of
//!   its own, which sends its answer itself. At most [`FRONT_MAX`] of those
//!   are in hand per socket; past that a datagram is dropped and counted
//!   (`zonewarden_udp_requests_total{path="overloaded"}`), as a full
//!   socket buffer would drop it.
//! - Datagrams shorter than a header, and responses, are dropped, as
//!   hickory's loop did; a request that does not parse is answered
//!   FORMERR by the front's dispatcher.

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use hickory_proto::rr::Record;
use hickory_server::net::NetError;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use socket2::{Domain, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use super::Handler;
use super::prepared::{Answers, Fast};
use crate::metrics;

/// Datagrams received (and answers sent) per system call.
pub const BATCH: usize = 32;
/// The largest datagram we accept whole.
const SLOT: usize = 65_535;
/// Requests handed to the front at once, per socket.
pub const FRONT_MAX: usize = 1_024;
/// The receive buffer asked for (the kernel caps it at `rmem_max`).
const RECV_BUFFER: usize = 1 << 20;

/// How many UDP sockets each address gets: one per core we may run on.
pub fn sockets_per_address() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(16))
}

/// A UDP socket on `addr` with `SO_REUSEPORT` (so more can share its port)
/// and a larger receive buffer, non-blocking.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    socket.set_reuse_port(true)?;
    // Best effort: an unprivileged process gets at most rmem_max.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Received datagrams and the answers to send back, reused for every batch.
struct Batch {
    bufs: Vec<u8>,
    lens: [usize; BATCH],
    addrs: [libc::sockaddr_storage; BATCH],
    addr_lens: [libc::socklen_t; BATCH],
    /// Answers: (index of the datagram it answers, bytes).
    outs: Vec<Vec<u8>>,
    ready: Vec<usize>,
}

impl Batch {
    fn new() -> Self {
        Self {
            // Zeroed memory is mapped lazily: only pages that datagrams
            // touch count towards the resident size.
            bufs: vec![0; BATCH * SLOT],
            lens: [0; BATCH],
            // SAFETY: an all-zero sockaddr_storage is a valid value.
            addrs: unsafe { MaybeUninit::zeroed().assume_init() },
            addr_lens: [0; BATCH],
            outs: (0..BATCH).map(|_| Vec::with_capacity(1232)).collect(),
            ready: Vec::with_capacity(BATCH),
        }
    }

    /// One `recvmmsg`: how many datagrams arrived (WouldBlock if none).
    fn recv(&mut self, fd: i32) -> io::Result<usize> {
        let mut iovs: [libc::iovec; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: all-zero mmsghdrs are valid; every pointer set below
        // points into `self`, which outlives the call.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        for i in 0..BATCH {
            iovs[i] = libc::iovec {
                iov_base: self.bufs[i * SLOT..].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            hdrs[i].msg_hdr.msg_name = (&raw mut self.addrs[i]).cast();
            hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdrs[i].msg_hdr.msg_iov = &raw mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs` holds BATCH valid headers whose buffers are
        // SLOT octets each, inside `self.bufs`.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, hdr) in hdrs.iter().enumerate().take(n) {
            self.lens[i] = hdr.msg_len as usize;
            self.addr_lens[i] = hdr.msg_hdr.msg_namelen;
        }
        Ok(n)
    }

    /// One `sendmmsg` of the ready answers from `from` on: how many went.
    fn send(&mut self, fd: i32, from: usize) -> io::Result<usize> {
        let todo = &self.ready[from..];
        let mut iovs: [libc::iovec; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: as in `recv`; the answers are not touched during the call.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        for (k, &i) in todo.iter().enumerate() {
            iovs[k] = libc::iovec {
                iov_base: self.outs[i].as_mut_ptr().cast(),
                iov_len: self.outs[i].len(),
            };
            hdrs[k].msg_hdr.msg_name = (&raw mut self.addrs[i]).cast();
            hdrs[k].msg_hdr.msg_namelen = self.addr_lens[i];
            hdrs[k].msg_hdr.msg_iov = &raw mut iovs[k];
            hdrs[k].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `todo.len()` valid headers.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                hdrs.as_mut_ptr(),
                todo.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

/// The address `recvmmsg` wrote.
fn source(addr: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(addr.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET, long
            // enough); sockaddr_storage is aligned for every address type.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, a sockaddr_in6.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Serve DNS on `socket` until the task is aborted.
pub async fn serve(socket: UdpSocket, handler: Handler) {
    let cx = handler.cx.clone();
    let socket = Arc::new(socket);
    let fd = socket.as_raw_fd();
    let front = Arc::new(Semaphore::new(FRONT_MAX));
    let mut answers = Answers::new(&cx.zones);
    let mut batch = Batch::new();
    loop {
        let n = match socket.async_io(Interest::READABLE, || batch.recv(fd)).await {
            Ok(n) => n,
            Err(e) => {
                // ECONNREFUSED and the like from an ICMP error: nothing to
                // do but read on.
                tracing::debug!(error = %e, "UDP receive failed");
                continue;
            }
        };
        answers.refresh();
        batch.ready.clear();
        for i in 0..n {
            let packet = &batch.bufs[i * SLOT..i * SLOT + batch.lens[i].min(SLOT)];
            // Shorter than a header, or a response: dropped.
            if packet.len() < 12 || packet[2] & 0x80 != 0 {
                continue;
            }
            let Some(src) = source(&batch.addrs[i], batch.addr_lens[i]) else {
                continue;
            };
            let mut out = std::mem::take(&mut batch.outs[i]);
            // A bug in the fast path must not end this socket's loop: the
            // datagram is dropped and the tables start afresh.
            let fast = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                answers.answer(&cx, packet, src.ip(), &mut out)
            }))
            .unwrap_or_else(|_| {
                tracing::error!(%src, "the UDP fast path panicked; datagram dropped");
                answers = Answers::new(&cx.zones);
                Fast::Drop
            });
            match fast {
                Fast::Send => batch.ready.push(i),
                Fast::Drop => {}
                Fast::Slow => match front.clone().try_acquire_owned() {
                    Ok(permit) => {
                        answers.count(metrics::UDP_FRONT);
                        let (handler, socket) = (handler.clone(), socket.clone());
                        let msg = packet.to_vec();
                        tokio::spawn(async move {
                            let _permit = permit;
                            let responder = UdpResponder { socket, dst: src };
                            super::dispatch(&handler, msg, src, Protocol::Udp, responder).await;
                        });
                    }
                    Err(_) => answers.count(metrics::UDP_OVERLOADED),
                },
            }
            batch.outs[i] = out;
        }
        answers.flush(&cx.metrics);
        send_ready(&socket, fd, &mut batch).await;
    }
}

/// Send every ready answer; an answer the kernel refuses (an unreachable
/// destination, say) is skipped.
async fn send_ready(socket: &UdpSocket, fd: i32, batch: &mut Batch) {
    let mut done = 0;
    // Each round sends at least one answer or skips one: bounded.
    for _ in 0..=BATCH {
        if done >= batch.ready.len() {
            return;
        }
        match socket
            .async_io(Interest::WRITABLE, || batch.send(fd, done))
            .await
        {
            Ok(0) => done += 1,
            Ok(n) => done += n,
            Err(e) => {
                tracing::debug!(error = %e, "UDP send failed");
                done += 1;
            }
        }
    }
}

/// Sends the request front's answer to one UDP request.
#[derive(Clone)]
struct UdpResponder {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for UdpResponder {
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
        // The front has already cut the answer to the requester's size.
        let (info, bytes) = super::tcp::encode(response)?;
        self.socket
            .send_to(&bytes, self.dst)
            .await
            .map_err(NetError::from)?;
        Ok(info)
    }
}

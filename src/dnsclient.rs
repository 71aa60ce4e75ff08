//! The little DNS client the server and the CLI need for talking to other
//! nameservers: SOA serial, TXT and RRset look-ups (propagation checks,
//! `wait`, `dane publish`), NOTIFY (RFC 1996 §3) and UPDATE (RFC 2136, for
//! `dane publish`), optionally TSIG-signed. UDP first, TCP when the
//! answer is truncated; every exchange is bounded by a timeout.
//!
//! Not a resolver: it asks one given address and follows nothing.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tsig::{self, Key};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("answered {0}")]
    Rcode(ResponseCode),
    #[error("answer failed TSIG verification: {0}")]
    Tsig(String),
}

fn new_id() -> u16 {
    let mut b = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u16::from_be_bytes(b)
}

/// The local address to send from: `source` when given (of the same
/// family), else any.
fn local_for(addr: SocketAddr, source: Option<IpAddr>) -> SocketAddr {
    match source {
        Some(ip) if ip.is_ipv6() == addr.is_ipv6() => SocketAddr::new(ip, 0),
        _ if addr.is_ipv6() => "[::]:0".parse().expect("valid"),
        _ => "0.0.0.0:0".parse().expect("valid"),
    }
}

/// The source address the kernel would use towards `to`, or None when it
/// has no route there (a UDP connect sends nothing).
pub fn route_source(to: SocketAddr) -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind(local_for(to, None)).ok()?;
    s.connect(to).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

async fn udp(
    addr: SocketAddr,
    bytes: &[u8],
    timeout: Duration,
    source: Option<IpAddr>,
) -> Result<Vec<u8>, ClientError> {
    let sock = tokio::net::UdpSocket::bind(local_for(addr, source)).await?;
    sock.connect(addr).await?;
    sock.send(bytes).await?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(timeout, sock.recv(&mut buf))
        .await
        .map_err(|_| ClientError::Timeout(timeout))??;
    buf.truncate(n);
    Ok(buf)
}

async fn tcp(
    addr: SocketAddr,
    bytes: &[u8],
    timeout: Duration,
    source: Option<IpAddr>,
) -> Result<Vec<u8>, ClientError> {
    let fut = async {
        let mut s = match source {
            Some(ip) if ip.is_ipv6() == addr.is_ipv6() => {
                let sock = if addr.is_ipv6() {
                    tokio::net::TcpSocket::new_v6()?
                } else {
                    tokio::net::TcpSocket::new_v4()?
                };
                sock.bind(SocketAddr::new(ip, 0))?;
                sock.connect(addr).await?
            }
            _ => tokio::net::TcpStream::connect(addr).await?,
        };
        let len = u16::try_from(bytes.len())
            .map_err(|_| ClientError::Malformed("request too large".into()))?;
        s.write_all(&len.to_be_bytes()).await?;
        s.write_all(bytes).await?;
        let mut l = [0u8; 2];
        s.read_exact(&mut l).await?;
        let mut buf = vec![0u8; u16::from_be_bytes(l) as usize];
        s.read_exact(&mut buf).await?;
        Ok::<_, ClientError>(buf)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}

/// Send `msg` (signed with `key` if given) and return the parsed answer,
/// retrying over TCP when it comes back truncated.
pub async fn exchange(
    addr: SocketAddr,
    msg: Message,
    key: Option<&Key>,
    now: u64,
    timeout: Duration,
) -> Result<Message, ClientError> {
    exchange_over(addr, msg, key, now, timeout, false, None).await
}

/// [`exchange`], over TCP only when `tcp_only` (UPDATEs: a lost UDP answer
/// must not make us resend a signed request the replay check would refuse).
/// `source`: the local address to send from (None: any).
async fn exchange_over(
    addr: SocketAddr,
    mut msg: Message,
    key: Option<&Key>,
    now: u64,
    timeout: Duration,
    tcp_only: bool,
    source: Option<IpAddr>,
) -> Result<Message, ClientError> {
    msg.metadata.id = new_id();
    let bytes_for = |msg: &Message| -> Result<(Vec<u8>, Option<Vec<u8>>), ClientError> {
        let unsigned = msg
            .to_vec()
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        match key {
            None => Ok((unsigned, None)),
            Some(k) => {
                let (rr, mac) = tsig::sign_request(&unsigned, k, now, tsig::DEFAULT_FUDGE);
                let signed = tsig::append_tsig(&unsigned, &rr)
                    .map_err(|e| ClientError::Malformed(e.to_string()))?;
                Ok((signed, Some(mac)))
            }
        }
    };
    let (bytes, mac) = bytes_for(&msg)?;
    let mut raw = if tcp_only {
        tcp(addr, &bytes, timeout, source).await?
    } else {
        udp(addr, &bytes, timeout, source).await?
    };
    let mut answer = Message::from_vec(&raw).map_err(|e| ClientError::Malformed(e.to_string()))?;
    if answer.metadata.truncation && !tcp_only {
        raw = tcp(addr, &bytes, timeout, source).await?;
        answer = Message::from_vec(&raw).map_err(|e| ClientError::Malformed(e.to_string()))?;
    }
    if answer.metadata.id != msg.metadata.id
        || answer.metadata.message_type != MessageType::Response
    {
        return Err(ClientError::Malformed(
            "answer does not match the request".into(),
        ));
    }
    if let (Some(k), Some(mac)) = (key, mac) {
        tsig::verify_response(&raw, k, &mac, now, tsig::DEFAULT_FUDGE)
            .map_err(|e| ClientError::Tsig(e.to_string()))?;
    }
    Ok(answer)
}

fn query(name: &Name, rtype: RecordType) -> Message {
    let mut m = Message::new(0, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name.clone(), rtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m
}

/// Ask a recursive resolver at `addr` (RD set, DO set so a validating
/// resolver reports AD) and return its whole answer, whatever the RCODE.
pub async fn resolve(
    addr: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, ClientError> {
    let mut m = query(name, rtype);
    m.metadata.recursion_desired = true;
    if let Some(e) = m.edns.as_mut() {
        e.set_dnssec_ok(true);
    }
    exchange(addr, m, None, 0, timeout).await
}

/// The serial of `zone` as served at `addr` (the answer must be authoritative).
pub async fn soa_serial(
    addr: SocketAddr,
    zone: &Name,
    timeout: Duration,
) -> Result<u32, ClientError> {
    let answer = exchange(addr, query(zone, RecordType::SOA), None, 0, timeout).await?;
    if answer.metadata.response_code != ResponseCode::NoError {
        return Err(ClientError::Rcode(answer.metadata.response_code));
    }
    answer
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == *zone => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| ClientError::Malformed("no SOA in the answer (not authoritative?)".into()))
}

/// The TXT strings at `name` as served at `addr` (each RR's strings joined).
pub async fn txt(
    addr: SocketAddr,
    name: &Name,
    timeout: Duration,
) -> Result<Vec<String>, ClientError> {
    let answer = exchange(addr, query(name, RecordType::TXT), None, 0, timeout).await?;
    match answer.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        other => return Err(ClientError::Rcode(other)),
    }
    Ok(answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

/// The RRset of `rtype` at `name` as served at `addr` (empty when the name
/// or the RRset does not exist). CNAMEs are not followed.
pub async fn rrset(
    addr: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Vec<Record>, ClientError> {
    let answer = exchange(addr, query(name, rtype), None, 0, timeout).await?;
    match answer.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        other => return Err(ClientError::Rcode(other)),
    }
    Ok(answer
        .answers
        .into_iter()
        .filter(|r| r.record_type() == rtype && r.name == *name)
        .collect())
}

/// RFC 2136: send an UPDATE for `zone` with these prerequisites (§2.4) and
/// updates (§2.5), TSIG-signed with `key`, over TCP. Returns the answer's
/// RCODE (NOERROR: applied; anything else: nothing changed); a TSIG
/// rejection (BADKEY, BADSIG, BADTIME) is `ClientError::Tsig`.
pub async fn update(
    addr: SocketAddr,
    zone: &Name,
    prerequisites: Vec<Record>,
    updates: Vec<Record>,
    key: &Key,
    now: u64,
    timeout: Duration,
) -> Result<ResponseCode, ClientError> {
    let mut m = Message::new(0, MessageType::Query, OpCode::Update);
    let mut q = Query::query(zone.clone(), RecordType::SOA);
    q.set_query_class(hickory_proto::rr::DNSClass::IN);
    m.add_query(q);
    m.insert_answers(prerequisites);
    m.insert_authorities(updates);
    let answer = exchange_over(addr, m, Some(key), now, timeout, true, None).await?;
    if answer.metadata.op_code != OpCode::Update {
        return Err(ClientError::Malformed(
            "answer is not an UPDATE response".into(),
        ));
    }
    Ok(answer.metadata.response_code)
}

/// RFC 1996 §3.6: send NOTIFY for `zone` with the current SOA as a hint;
/// Ok once the secondary acknowledged it (NOERROR). `source`: the address
/// to send from, the one secondaries know the primary by (their NOTIFY
/// ACLs name it; on loopback the kernel would pick 127.0.0.1).
pub async fn notify(
    addr: SocketAddr,
    source: Option<IpAddr>,
    zone: &Name,
    soa: Record,
    key: Option<&Key>,
    now: u64,
    timeout: Duration,
) -> Result<(), ClientError> {
    let mut m = Message::new(0, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(zone.clone(), RecordType::SOA));
    m.add_answer(soa);
    let answer = exchange_over(addr, m, key, now, timeout, false, source).await?;
    if answer.metadata.op_code != OpCode::Notify {
        return Err(ClientError::Malformed(
            "answer is not a NOTIFY response".into(),
        ));
    }
    match answer.metadata.response_code {
        ResponseCode::NoError => Ok(()),
        other => Err(ClientError::Rcode(other)),
    }
}

/// Serial comparison per RFC 1982: is `a` at or after `b`? Kept under this
/// name for the callers that still import it from here.
pub use crate::serial::at_least as serial_at_least;

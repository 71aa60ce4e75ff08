//! What the bench examples share: checking an answer, naming a failure,
//! one connection for UPDATEs over TCP or UDP, and percentiles. A module
//! of each example (`mod common;`), not an example of its own.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use clap::ValueEnum;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::Name;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use zonewarden::tsig::{Key, read_key_file};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    Tcp,
    Udp,
}

/// The RCODE of an answer to `id`, or why it is not one.
pub fn rcode_of(answer: &[u8], id: u16) -> Result<ResponseCode, String> {
    if answer.len() < 12 {
        return Err("short answer".into());
    }
    if u16::from_be_bytes([answer[0], answer[1]]) != id || answer[2] & 0x80 == 0 {
        return Err("answer with a wrong ID".into());
    }
    Ok(ResponseCode::from_low(answer[3] & 0x0f))
}

/// A non-NOERROR answer, named with its TSIG error if it carries one.
pub fn describe_failure(answer: &[u8], rcode: ResponseCode) -> String {
    let tsig_error = Message::from_vec(answer)
        .ok()
        .and_then(|m| m.signature().and_then(|s| s.data.error));
    match tsig_error {
        Some(e) => format!("{rcode}/{e:?}"),
        None => rcode.to_string(),
    }
}

/// The connection UPDATEs travel on (as in update_bench).
pub enum Conn {
    Tcp(Option<TcpStream>),
    Udp(UdpSocket),
}

pub async fn connected_udp(server: SocketAddr) -> Result<UdpSocket, String> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("valid");
    let s = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    s.connect(server)
        .await
        .map_err(|e| format!("connect {server}: {e}"))?;
    Ok(s)
}

impl Conn {
    pub async fn open(server: SocketAddr, transport: Transport) -> Result<Self, String> {
        match transport {
            Transport::Tcp => {
                let s = TcpStream::connect(server)
                    .await
                    .map_err(|e| format!("connect {server}: {e}"))?;
                let _ = s.set_nodelay(true);
                Ok(Conn::Tcp(Some(s)))
            }
            Transport::Udp => Ok(Conn::Udp(connected_udp(server).await?)),
        }
    }

    /// Send one message and read the answer to `id`.
    pub async fn exchange(
        &mut self,
        server: SocketAddr,
        bytes: &[u8],
        id: u16,
    ) -> Result<Vec<u8>, String> {
        match self {
            Conn::Tcp(slot) => {
                // A connection the server has closed (after its
                // tcp-max-queries, say) fails our next message before any
                // answer: send it again once on a new connection, as RFC
                // 7766 §6.2.1 has clients do. A fresh connection that fails
                // is an error.
                for attempt in 0..2 {
                    let reused = slot.is_some();
                    if slot.is_none() {
                        let s = TcpStream::connect(server)
                            .await
                            .map_err(|e| format!("connect: {e}"))?;
                        let _ = s.set_nodelay(true);
                        *slot = Some(s);
                    }
                    let s = slot.as_mut().expect("connected above");
                    let mut answered = false;
                    let result = async {
                        let mut framed = Vec::with_capacity(bytes.len() + 2);
                        framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                        framed.extend_from_slice(bytes);
                        s.write_all(&framed).await?;
                        let mut len = [0u8; 2];
                        s.read_exact(&mut len).await?;
                        answered = true;
                        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                        s.read_exact(&mut buf).await?;
                        Ok::<_, std::io::Error>(buf)
                    }
                    .await;
                    match result {
                        Ok(buf) => return Ok(buf),
                        Err(e) => {
                            *slot = None;
                            if !(reused && !answered && attempt == 0) {
                                return Err(format!("TCP: {}", e.kind()));
                            }
                        }
                    }
                }
                Err("TCP: closed twice".to_string())
            }
            Conn::Udp(s) => udp_exchange(s, bytes, id).await,
        }
    }
}

/// Send on a connected UDP socket and read the answer with our ID,
/// skipping late answers to earlier polls.
pub async fn udp_exchange(s: &UdpSocket, bytes: &[u8], id: u16) -> Result<Vec<u8>, String> {
    s.send(bytes)
        .await
        .map_err(|e| format!("UDP send: {}", e.kind()))?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..64 {
        let n = s
            .recv(&mut buf)
            .await
            .map_err(|e| format!("UDP recv: {}", e.kind()))?;
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            buf.truncate(n);
            return Ok(buf);
        }
    }
    Err("UDP: no answer with our ID".into())
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The first key of a key file and the zone as a fully qualified name,
/// or the message to print.
pub fn key_and_zone(key_file: &std::path::Path, zone: &str) -> Result<(Key, Name), String> {
    let key = match read_key_file(key_file) {
        Ok(mut keys) if !keys.is_empty() => keys.remove(0),
        Ok(_) => return Err(format!("{}: no key in the file", key_file.display())),
        Err(e) => return Err(e.to_string()),
    };
    let text = if zone.ends_with('.') {
        zone.to_string()
    } else {
        format!("{zone}.")
    };
    let zone = Name::from_ascii(&text).map_err(|e| format!("zone {text:?}: {e}"))?;
    Ok((key, zone))
}

//! A stand-in secondary for tests of NOTIFY and propagation.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::SOA;

use super::{ZONE, name};

/// A stand-in secondary on UDP that records the serial of every NOTIFY it
/// acknowledges and answers every other query with the SOA of [`ZONE`] at
/// serial `serves`; while `follows` is set it "transfers" at once (serves
/// each serial it is notified of), else it serves what the test sets.
pub struct Recorder {
    pub addr: SocketAddr,
    pub notified: Arc<Mutex<Vec<u32>>>,
    pub serves: Arc<AtomicU32>,
    pub follows: Arc<AtomicBool>,
}

pub async fn recorder(follows: bool, serves: u32) -> Recorder {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r = Recorder {
        addr: sock.local_addr().unwrap(),
        notified: Arc::default(),
        serves: Arc::new(AtomicU32::new(serves)),
        follows: Arc::new(AtomicBool::new(follows)),
    };
    let (notified, serves, follows) = (r.notified.clone(), r.serves.clone(), r.follows.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut resp =
                Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
            resp.metadata.authoritative = true;
            for q in &req.queries {
                resp.add_query(q.clone());
            }
            match req.metadata.op_code {
                OpCode::Notify => {
                    if let Some(s) = req.answers.iter().find_map(|r| match &r.data {
                        RData::SOA(soa) => Some(soa.serial),
                        _ => None,
                    }) {
                        notified.lock().unwrap().push(s);
                        if follows.load(Ordering::SeqCst) {
                            serves.store(s, Ordering::SeqCst);
                        }
                    }
                }
                _ => {
                    let soa = SOA::new(
                        name("ns2.example.net."),
                        name("hostmaster.example.net."),
                        serves.load(Ordering::SeqCst),
                        300,
                        60,
                        1209600,
                        1,
                    );
                    resp.add_answer(hickory_proto::rr::Record::from_rdata(
                        name(ZONE),
                        60,
                        RData::SOA(soa),
                    ));
                }
            }
            let _ = sock.send_to(&resp.to_vec().unwrap(), from).await;
        }
    });
    r
}

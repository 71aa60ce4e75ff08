//! TSIG (RFC 8945) as clients meet it, over real sockets.

mod common;

use std::sync::Arc;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{Name, RecordType};
use zonewarden::tsig::{self, Algorithm, Key};

#[tokio::test]
async fn a_signed_soa_query_gets_a_signed_answer_that_verifies() {
    // nsupdate and acme.sh start with a TSIG-signed SOA query; REFUSED is fatal for them.
    let h = Harness::start().await;
    for machine in ["mx1", "sha1box", "md5box", "sha512box"] {
        let key = h.key(machine);
        let q = query_msg(ZONE, RecordType::SOA, true);
        let unsigned = q.to_vec().unwrap();
        let (sig, mac) = tsig::sign_request(&unsigned, &key, h.clock_now(), 300);
        let mut q = q;
        q.set_signature(Box::new(sig));
        let resp = h.udp(&q.to_vec().unwrap()).await.unwrap();
        let m = Message::from_vec(&resp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{machine}");
        assert!(m.signature().is_some(), "{machine}: the answer is signed");
        tsig::verify_response(&resp, &key, &mac, h.clock_now(), 300)
            .unwrap_or_else(|e| panic!("{machine}: {e}"));
    }
}

#[tokio::test]
async fn unknown_key_wrong_secret_and_old_time_are_notauth_with_the_tsig_error() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let msg = || update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "x")]);

    let stranger = Key::generate(
        Name::from_ascii("stranger.").unwrap(),
        Algorithm::HmacSha256,
    )
    .unwrap();
    let real = h.key("mx1");
    let forged = Key::new(real.name.clone(), real.algorithm, vec![7u8; 32]);
    let now = h.clock_now();
    // (what, signing key, time signed, the TSIG error, octets of Other Data)
    let cases = [
        ("an unknown key", stranger, now, TsigError::BadKey, 0),
        ("a wrong secret", forged, now, TsigError::BadSig, 0),
        // Outside the server's 300 s fudge, whatever the client claims;
        // the answer carries the server's time.
        ("ten minutes ago", real, now - 600, TsigError::BadTime, 6),
    ];
    for (what, key, at, error, other) in cases {
        let m = Message::from_vec(&h.tcp(&sign(msg(), &key, at)).await).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NotAuth, "{what}");
        let sig = m
            .signature()
            .unwrap_or_else(|| panic!("{what}: the answer carries a TSIG"));
        assert_eq!(sig.data.error, Some(error), "{what}");
        assert_eq!(sig.data.other.len(), other, "{what}: Other Data");
    }

    assert!(
        h.txt(&n.to_string()).await.is_empty(),
        "nothing was applied"
    );
}

#[tokio::test]
async fn a_replayed_update_is_rejected() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let bytes = sign(
        update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "once")]),
        &h.key("mx1"),
        h.clock_now(),
    );
    let first = Message::from_vec(&h.tcp(&bytes).await).unwrap();
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    // Delete it, then replay the add: it must not come back.
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![del_rrset(&n, RecordType::TXT)])
        )
        .await,
        ResponseCode::NoError
    );
    let again = Message::from_vec(&h.tcp(&bytes).await).unwrap();
    assert_eq!(again.metadata.response_code, ResponseCode::NotAuth);
    assert!(h.txt(&n.to_string()).await.is_empty());
}

#[tokio::test]
async fn a_mac_truncated_below_policy_is_rejected() {
    let h = Harness::start().await;
    let key = h.key("mx1");
    let n = zname("_acme-challenge.mx1");
    let mut msg = update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "x")]);
    let unsigned = msg.to_vec().unwrap();
    let (mut sig, _) = tsig::sign_request(&unsigned, &key, h.clock_now(), 300);
    sig.data.mac.truncate(8); // below 10 octets and below half of 32
    msg.set_signature(Box::new(sig));
    let m = Message::from_vec(&h.tcp(&msg.to_vec().unwrap()).await).unwrap();
    assert!(
        matches!(
            m.metadata.response_code,
            ResponseCode::FormErr | ResponseCode::NotAuth
        ),
        "{:?}",
        m.metadata.response_code
    );
    assert!(h.txt(&n.to_string()).await.is_empty());
}

#[tokio::test]
async fn hickory_client_updates_with_tsig_and_verifies_our_signed_answers() {
    use hickory_net::client::{Client, ClientHandle};
    use hickory_net::runtime::TokioRuntimeProvider;
    use hickory_net::udp::UdpClientStream;
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::{RData, Record, TSigner};

    let h = Harness::start().await;
    let key = h.key("mx1");
    let secret = std::fs::read_to_string(h.path("data/keys/mx1.key")).unwrap();
    let b64 = secret.split('"').nth(3).unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let signer = TSigner::new(
        raw,
        Algorithm::HmacSha256.to_hickory(),
        key.name.clone(),
        300,
    )
    .unwrap();
    let conn = UdpClientStream::builder(h.addr, TokioRuntimeProvider::default())
        .with_signer(Some(Arc::new(signer).as_ref().clone()))
        .build();
    let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(conn);
    tokio::spawn(bg);
    let owner = zname("_acme-challenge.mx1");
    let rec = Record::from_rdata(
        owner.clone(),
        60,
        RData::TXT(TXT::new(vec!["from-hickory".into()])),
    );
    let r = client.append(rec.clone(), name(ZONE), false).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(h.txt(&owner.to_string()).await, vec!["from-hickory"]);
    let r = client.delete_by_rdata(rec, name(ZONE)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(h.txt(&owner.to_string()).await.is_empty());
}

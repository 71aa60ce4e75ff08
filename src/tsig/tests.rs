//! Unit tests: RFC 2202/4231 vectors, captured nsupdate requests, hickory interop, failures, fuzzing.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};

use super::wire::{BAD_TSIG_RR, NOT_LAST, TRAILING, u48_bytes};
use super::*;

/// Time Signed of the captured nsupdate requests below.
const NOW: u64 = 1_795_373_020;

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn test_key(algorithm: Algorithm) -> Key {
    Key::new(
        name("mx1"),
        algorithm,
        b"0123456789abcdef0123456789abcdef".to_vec(),
    )
}

fn ring_of(keys: &[&Key]) -> KeyRing {
    KeyRing::new(keys.iter().map(|key| (*key).clone()))
}

fn update_message(id: u16, token: &str) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Update);
    message.add_query(Query::query(name("_acme.example.org."), RecordType::SOA));
    message.authorities.push(Record::from_rdata(
        name("_acme-challenge.mx1._acme.example.org."),
        60,
        RData::TXT(TXT::new(vec![token.to_owned()])),
    ));
    message.to_vec().unwrap()
}

/// A request signed by our client side, and its MAC.
fn signed_update(key: &Key, id: u16, time: u64) -> (Vec<u8>, Vec<u8>) {
    let message = update_message(id, "token");
    let (tsig, mac) = sign_request(&message, key, time, 300);
    (append_tsig(&message, &tsig).unwrap(), mac)
}

/// A request whose MAC is replaced by `mac` (truncated, padded, ...).
fn with_mac(key: &Key, id: u16, time: u64, mac: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    let message = update_message(id, "token");
    let (mut tsig, full) = sign_request(&message, key, time, 300);
    tsig.data.mac = mac(full);
    append_tsig(&message, &tsig).unwrap()
}

/// The wire bytes of an answer to `request`, without TSIG.
fn response_for(request: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let request = Message::from_vec(request).unwrap();
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.response_code = rcode;
    response.add_queries(request.queries.clone());
    response.to_vec().unwrap()
}

fn signed_answer(ctx: &SignContext, request: &[u8], now: u64) -> Vec<u8> {
    let response = response_for(request, ResponseCode::NoError);
    append_tsig(&response, &ctx.sign_response(&response, now)).unwrap()
}

/// The error answer to a rejected request, and its TSIG RR if any.
fn error_answer(
    rejection: &Rejection,
    request: &[u8],
    now: u64,
) -> (Vec<u8>, Option<Record<TSIG>>) {
    let response = response_for(request, rejection.rcode.into());
    let tsig = rejection.error_tsig(&response, now);
    let wire = match &tsig {
        Some(tsig) => append_tsig(&response, tsig).unwrap(),
        None => response,
    };
    (wire, tsig)
}

fn rejection(result: Result<Option<SignContext>, Rejection>) -> Rejection {
    match result {
        Err(rejection) => rejection,
        Ok(Some(_)) => panic!("accepted"),
        Ok(None) => panic!("no TSIG found"),
    }
}

fn accepted(result: Result<Option<SignContext>, Rejection>) -> SignContext {
    match result {
        Ok(Some(ctx)) => ctx,
        Ok(None) => panic!("no TSIG found"),
        Err(rejection) => panic!("rejected: {rejection}"),
    }
}

/// A TSIG RR encoded alone, for building odd messages.
fn encoded_rr(tsig: &Record<TSIG>) -> Vec<u8> {
    let empty = [0u8; 12];
    append_tsig(&empty, tsig).unwrap()[12..].to_vec()
}

fn set_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

// ------------------------------------------------------------- HMAC

#[test]
fn hmac_md5_matches_rfc2202_vectors() {
    let cases: [(Vec<u8>, &[u8], &str); 7] = [
        (
            vec![0x0b; 16],
            b"Hi There",
            "9294727a3638bb1c13f48ef8158bfc9d",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?",
            "750c783e6ab0b503eaa86e310a5db738",
        ),
        (
            vec![0xaa; 16],
            &[0xdd; 50],
            "56be34521d144c88dbb8c733f0e8b3f6",
        ),
        (
            (1..=25).collect(),
            &[0xcd; 50],
            "697eaf0aca3a3aea3a75164746ffaa79",
        ),
        (
            vec![0x0c; 16],
            b"Test With Truncation",
            "56461ef2342edc00f9bab995690efd4c",
        ),
        (
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
        ),
        (
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
            "6f630fad67cda0ee1fb1f562db3aa53e",
        ),
    ];
    for (secret, data, expected) in cases {
        let key = Key::new(name("k"), Algorithm::HmacMd5, secret);
        assert_eq!(to_hex(&key.mac(data)), expected);
    }
}

#[test]
fn hmac_sha_family_matches_rfc2202_and_rfc4231_vectors() {
    let jefe = [
        (
            Algorithm::HmacSha1,
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        ),
        (
            Algorithm::HmacSha224,
            "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
        ),
        (
            Algorithm::HmacSha256,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            Algorithm::HmacSha384,
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
        ),
        (
            Algorithm::HmacSha512,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
    ];
    for (algorithm, expected) in jefe {
        let key = Key::new(name("k"), algorithm, b"Jefe".to_vec());
        let mac = key.mac(b"what do ya want for nothing?");
        assert_eq!(to_hex(&mac), expected, "{algorithm}");
        assert_eq!(mac.len(), algorithm.output_len());
    }
    // RFC 4231 test cases 1 and 6 (key longer than the block).
    let sha224 = |secret: Vec<u8>, data: &[u8]| {
        to_hex(&Key::new(name("k"), Algorithm::HmacSha224, secret).mac(data))
    };
    assert_eq!(
        sha224(vec![0x0b; 20], b"Hi There"),
        "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22"
    );
    assert_eq!(
        sha224(
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        ),
        "95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e"
    );
}

#[test]
fn mac_matches_compares_prefixes_no_shorter_than_rfc8945_allows() {
    let data = b"signed message";
    for algorithm in Algorithm::ALL {
        let key = Key::new(name("k"), algorithm, b"secret".to_vec());
        let full = key.mac(data);
        let min = algorithm.min_mac_len();
        assert!(key.mac_matches(data, &full), "{algorithm}");
        assert!(key.mac_matches(data, &full[..min]), "{algorithm}");
        // §5.2.2.1: a shorter prefix is never a match, however correct.
        assert!(!key.mac_matches(data, &full[..min - 1]), "{algorithm}");
        assert!(!key.mac_matches(data, &[]), "{algorithm}");
        // Longer than the output, or one bit off, is no match either.
        let mut longer = full.clone();
        longer.push(0);
        assert!(!key.mac_matches(data, &longer), "{algorithm}");
        let mut flipped = full.clone();
        flipped[min - 1] ^= 1;
        assert!(!key.mac_matches(data, &flipped), "{algorithm}");
        assert!(!key.mac_matches(b"other message", &full), "{algorithm}");
    }
}

#[test]
fn algorithm_names_round_trip() {
    let mins = [10, 10, 14, 16, 24, 32];
    for (algorithm, min) in Algorithm::ALL.into_iter().zip(mins) {
        assert_eq!(Algorithm::from_name(&algorithm.name()), Some(algorithm));
        assert_eq!(
            Algorithm::from_name(&algorithm.to_hickory().to_name()),
            Some(algorithm)
        );
        assert_eq!(
            Algorithm::from_key_file(algorithm.key_file_name()),
            Some(algorithm)
        );
        assert_eq!(
            Algorithm::from_key_file(&algorithm.key_file_name().to_uppercase()),
            Some(algorithm)
        );
        assert!(algorithm.name().is_fqdn());
        assert_eq!(algorithm.min_mac_len(), min);
    }
    assert_eq!(
        Algorithm::from_name(&name("HMAC-MD5.SIG-ALG.REG.INT.")),
        Some(Algorithm::HmacMd5)
    );
    assert_eq!(Algorithm::from_name(&name("hmac-md5.")), None);
    assert_eq!(Algorithm::from_name(&name("hmac-sha256-128.")), None);
    assert_eq!(
        Algorithm::from_key_file("hmac-md5.sig-alg.reg.int."),
        Some(Algorithm::HmacMd5)
    );
    assert_eq!(
        Algorithm::from_key_file("HMAC-SHA256."),
        Some(Algorithm::HmacSha256)
    );
    assert_eq!(Algorithm::from_key_file("hmac-sha3"), None);
    assert_eq!(
        Algorithm::HmacMd5.name().to_ascii(),
        "hmac-md5.sig-alg.reg.int."
    );
    let lens: Vec<usize> = Algorithm::ALL.map(Algorithm::output_len).to_vec();
    assert_eq!(lens, [16, 20, 28, 32, 48, 64]);
}

// ------------------------------------------------ request and answer

#[test]
fn every_algorithm_signs_verifies_and_answers() {
    for algorithm in Algorithm::ALL {
        let key = test_key(algorithm);
        let (request, mac) = signed_update(&key, 0x1234, NOW);
        let ctx = accepted(Verifier::default().verify(&request, &ring_of(&[&key]), NOW + 5));
        assert_eq!(ctx.key.name, name("mx1."));
        assert_eq!(ctx.request_mac, mac);
        assert_eq!(ctx.time_signed, NOW);
        assert_eq!(ctx.mac_len(), algorithm.output_len());

        let answer = signed_answer(&ctx, &request, NOW + 6);
        assert_eq!(
            verify_response(&answer, &key, &mac, NOW, 300),
            Ok(()),
            "{algorithm}"
        );
        let parsed = Message::from_vec(&answer).unwrap();
        let tsig = parsed.signature().unwrap();
        assert_eq!(tsig.data.oid, 0x1234);
        assert_eq!(tsig.data.time, NOW + 6);
        assert_eq!(tsig.data.fudge, DEFAULT_FUDGE);

        // Bound to the request: another request MAC does not verify it.
        let mut other_mac = mac.clone();
        other_mac[0] ^= 1;
        assert_eq!(
            verify_response(&answer, &key, &other_mac, NOW, 300),
            Err(TsigFailure::BadSig)
        );
        // And to the answer's bytes.
        let mut tampered = answer.clone();
        tampered[2] ^= 0x04; // AA bit
        assert_eq!(
            verify_response(&tampered, &key, &mac, NOW, 300),
            Err(TsigFailure::BadSig)
        );
    }
}

#[test]
fn message_without_tsig_is_not_signed() {
    let verifier = Verifier::default();
    let keys = ring_of(&[&test_key(Algorithm::HmacSha256)]);
    assert!(matches!(
        verifier.verify(&update_message(1, "x"), &keys, NOW),
        Ok(None)
    ));
    let key = test_key(Algorithm::HmacSha256);
    let answer = response_for(&update_message(1, "x"), ResponseCode::NoError);
    assert_eq!(
        verify_response(&answer, &key, &[0; 32], NOW, 300),
        Err(TsigFailure::Unsigned)
    );
}

#[test]
fn key_names_match_case_insensitively() {
    let server_key = Key::new(
        name("MX1.Example"),
        Algorithm::HmacSha256,
        b"s3cret".to_vec(),
    );
    let client_key = Key::new(
        name("mx1.example."),
        Algorithm::HmacSha256,
        b"s3cret".to_vec(),
    );
    let (request, _) = signed_update(&client_key, 7, NOW);
    accepted(Verifier::default().verify(&request, &ring_of(&[&server_key]), NOW));
}

// ---------------------------------------------------- interop: hickory

fn hickory_request(
    algorithm: TsigAlgorithm,
    secret: &[u8],
) -> (Vec<u8>, hickory_proto::rr::TSigVerifier) {
    let signer = TSigner::new(secret.to_vec(), algorithm, name("mx1."), 300).unwrap();
    let mut message = Message::from_vec(&update_message(0x4242, "hickory")).unwrap();
    let verifier = message.finalize(&signer, NOW).unwrap().unwrap();
    (message.to_vec().unwrap(), verifier)
}

#[test]
fn verifies_requests_signed_by_hickory_and_hickory_verifies_our_answers() {
    for (theirs, ours) in [
        (TsigAlgorithm::HmacSha256, Algorithm::HmacSha256),
        (TsigAlgorithm::HmacSha512, Algorithm::HmacSha512),
    ] {
        let key = test_key(ours);
        let (request, mut client) = hickory_request(theirs, &key.secret);
        let ctx = accepted(Verifier::default().verify(&request, &ring_of(&[&key]), NOW + 1));
        let answer = signed_answer(&ctx, &request, NOW + 2);
        client.verify(&answer).unwrap();

        // Wrong secret on our side: hickory's request is BADSIG here.
        let wrong = Key::new(name("mx1."), ours, b"another secret".to_vec());
        let failed = rejection(Verifier::default().verify(&request, &ring_of(&[&wrong]), NOW));
        assert_eq!(failed.reason, TsigFailure::BadSig);
    }
}

#[test]
fn hickory_verifies_our_multi_message_chain() {
    let key = test_key(Algorithm::HmacSha256);
    let (request, mut client) = hickory_request(TsigAlgorithm::HmacSha256, &key.secret);
    let mut ctx = accepted(Verifier::default().verify(&request, &ring_of(&[&key]), NOW));
    let messages: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            let response = response_for(&request, ResponseCode::NoError);
            let mut message = Message::from_vec(&response).unwrap();
            message.answers.push(Record::from_rdata(
                name("_acme.example.org."),
                60,
                RData::TXT(TXT::new(vec![format!("part {i}")])),
            ));
            message.to_vec().unwrap()
        })
        .collect();
    let first = ctx.sign_response(&messages[0], NOW);
    client
        .verify(&append_tsig(&messages[0], &first).unwrap())
        .unwrap();
    for (i, message) in messages.iter().enumerate().skip(1) {
        let tsig = ctx.sign_next(message, NOW + i as u64);
        assert_eq!(tsig.data.oid, 0x4242);
        if i == 3 {
            continue; // never delivered
        }
        let verified = client.verify(&append_tsig(message, &tsig).unwrap());
        // Skipping message 3 breaks the chain for message 4.
        assert_eq!(verified.is_ok(), i < 3, "message {i}");
    }
}

#[test]
fn sign_next_without_sign_response_signs_as_first_message() {
    let key = test_key(Algorithm::HmacSha256);
    let (request, mac) = signed_update(&key, 9, NOW);
    let mut ctx = accepted(Verifier::default().verify(&request, &ring_of(&[&key]), NOW));
    let response = response_for(&request, ResponseCode::NoError);
    let tsig = ctx.sign_next(&response, NOW);
    let answer = append_tsig(&response, &tsig).unwrap();
    assert_eq!(verify_response(&answer, &key, &mac, NOW, 300), Ok(()));
}

// ---------------------------------------------------- interop: BIND

/// Real `nsupdate` (BIND 9.18) UPDATEs, captured on a UDP socket, with
/// the keys `tsig-keygen` made for them.
const CAPTURED: [(&str, Algorithm, &str, &str); 3] = [
    (
        "mx1-md5",
        Algorithm::HmacMd5,
        "ljH5HT7TGdjxe3mL2yh3FA==",
        "762c28000001000000020001055f61636d65076578616d706c65036f726700000600010f5f61636d652d6368616c6c656e6765036d7831055f61636d65076578616d706c65036f726700001000ff000000000000c023001000010000003c000d0c746f6b2d686d61632d6d6435076d78312d6d64350000fa00ff00000000003a08686d61632d6d6435077369672d616c670372656703696e740000006b0337dc012c0010a18682df14f7043329abbbca5120a14c762c00000000",
    ),
    (
        "mx1-sha1",
        Algorithm::HmacSha1,
        "ZnTqp22obRrn62AzzoLBnbMlo+g=",
        "364028000001000000020001055f61636d65076578616d706c65036f726700000600010f5f61636d652d6368616c6c656e6765036d7831055f61636d65076578616d706c65036f726700001000ff000000000000c023001000010000003c000e0d746f6b2d686d61632d73686131086d78312d736861310000fa00ff00000000002f09686d61632d736861310000006b0337dc012c00148870485a1b9d18b64c2db3980d87c9a9fe2fc0bd364000000000",
    ),
    (
        "mx1-sha224",
        Algorithm::HmacSha224,
        "TxR3CpE0IN2CuH32eWd+wdDuES6Y8m4D0HKVuw==",
        "c88728000001000000020001055f61636d65076578616d706c65036f726700000600010f5f61636d652d6368616c6c656e6765036d7831055f61636d65076578616d706c65036f726700001000ff000000000000c023001000010000003c00100f746f6b2d686d61632d7368613232340a6d78312d7368613232340000fa00ff0000000000390b686d61632d7368613232340000006b0337dd012c001c17ce522dedb95f84617291ec9110b1c2552d00f6ab001efa4b3e9091c88700000000",
    ),
];

fn captured_key(key_name: &str, algorithm: Algorithm, secret: &str) -> Key {
    let text = format!(
        "key \"{key_name}\" {{\n\talgorithm {};\n\tsecret \"{secret}\";\n}};\n",
        algorithm.key_file_name()
    );
    parse_key_file(&text).unwrap().remove(0)
}

#[test]
fn verifies_updates_captured_from_nsupdate() {
    for (key_name, algorithm, secret, wire) in CAPTURED {
        let key = captured_key(key_name, algorithm, secret);
        let request = hex(wire);
        let ctx = accepted(Verifier::default().verify(&request, &ring_of(&[&key]), NOW + 1));
        assert_eq!(ctx.request_mac.len(), algorithm.output_len());
        assert!(ctx.time_signed == NOW || ctx.time_signed == NOW + 1);

        // One flipped bit in the TXT data breaks it.
        let mut tampered = request.clone();
        let at = tampered.windows(4).position(|w| w == b"tok-").unwrap();
        tampered[at] ^= 0x01;
        let failed = rejection(Verifier::default().verify(&tampered, &ring_of(&[&key]), NOW));
        assert_eq!(failed.reason, TsigFailure::BadSig, "{algorithm}");
    }
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh empty directory under the system temp dir.
fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "zonewarden-tsig-{}-{}-{}",
        std::process::id(),
        DIR_COUNTER.fetch_add(1, Ordering::Relaxed),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `nsupdate -k <key file>` against a UDP responder on 127.0.0.1
/// that answers with `respond`. Returns nsupdate's success and stderr.
fn nsupdate_exchange(key: &Key, mut respond: impl FnMut(&[u8]) -> Vec<u8>) -> (bool, String) {
    let dir = scratch_dir();
    let key_path = dir.join("key.conf");
    write_key_file(&key_path, key).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut child = Command::new("nsupdate")
        .args([
            "-k",
            key_path.to_str().unwrap(),
            "-t",
            "4",
            "-u",
            "2",
            "-r",
            "0",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script = format!(
        "server 127.0.0.1 {port}\nzone _acme.example.org\n\
         update add _acme-challenge.mx1._acme.example.org 60 TXT \"t\"\nsend\n"
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        let mut buf = [0u8; 65535];
        if let Ok((len, peer)) = socket.recv_from(&mut buf) {
            socket.send_to(&respond(&buf[..len]), peer).unwrap();
        }
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    (status.is_some_and(|status| status.success()), stderr)
}

#[test]
fn nsupdate_accepts_our_signed_answers() {
    assert!(
        which("nsupdate"),
        "nsupdate missing: scripts/test installs bind9-dnsutils"
    );
    for algorithm in Algorithm::ALL {
        let key = Key::generate(name("live-key"), algorithm).unwrap();
        let keys = ring_of(&[&key]);
        let verifier = Verifier::default();
        let (ok, stderr) = nsupdate_exchange(&key, |request| {
            let ctx = accepted(verifier.verify(request, &keys, wall_clock()));
            signed_answer(&ctx, request, wall_clock())
        });
        assert!(ok, "{algorithm}: nsupdate failed: {stderr}");
    }
    // A signed BADTIME answer verifies in BIND, which then reports it.
    let key = Key::generate(name("live-key"), Algorithm::HmacSha256).unwrap();
    let keys = ring_of(&[&key]);
    let verifier = Verifier::default();
    let (ok, stderr) = nsupdate_exchange(&key, |request| {
        let skewed = wall_clock() + 3600;
        let rejected = rejection(verifier.verify(request, &keys, skewed));
        assert!(matches!(rejected.reason, TsigFailure::BadTime { .. }));
        error_answer(&rejected, request, skewed).0
    });
    assert!(!ok);
    assert!(stderr.contains("clocks are unsynchronized"), "{stderr}");
    // Control: the same answer with one MAC bit flipped is refused as a
    // verification failure, so the line above proves BIND checked ours.
    let verifier = Verifier::default();
    let (ok, stderr) = nsupdate_exchange(&key, |request| {
        let skewed = wall_clock() + 3600;
        let rejected = rejection(verifier.verify(request, &keys, skewed));
        let response = response_for(request, ResponseCode::NotAuth);
        let mut tsig = rejected.error_tsig(&response, skewed).unwrap();
        tsig.data.mac[0] ^= 1;
        append_tsig(&response, &tsig).unwrap()
    });
    assert!(!ok);
    assert!(stderr.contains("tsig verify failure"), "{stderr}");
}

// ----------------------------------------------------------- failures

#[test]
fn unknown_key_is_badkey_with_an_unsigned_tsig() {
    let key = test_key(Algorithm::HmacSha256);
    let (request, mac) = signed_update(&key, 77, NOW);
    let other = Key::new(name("mx2."), Algorithm::HmacSha256, b"x".to_vec());
    let rejected = rejection(Verifier::default().verify(&request, &ring_of(&[&other]), NOW));
    assert_eq!(rejected.reason, TsigFailure::BadKey);
    assert_eq!(rejected.rcode, RejectRcode::NotAuth);
    assert_eq!(rejected.key_name, Some(name("mx1.")));
    assert!(!rejected.is_signed());
    let ready = rejected.tsig.as_ref().unwrap();
    assert_eq!(ready.data.error, Some(TsigError::BadKey));
    assert!(ready.data.mac.is_empty());
    assert_eq!(ready.name, name("mx1."));

    let (answer, tsig) = error_answer(&rejected, &request, NOW);
    let tsig = tsig.unwrap();
    assert!(tsig.data.mac.is_empty());
    assert_eq!(tsig.data.oid, 77);
    assert_eq!(
        verify_response(&answer, &key, &mac, NOW, 300),
        Err(TsigFailure::BadKey)
    );
    let parsed = Message::from_vec(&answer).unwrap();
    assert_eq!(parsed.metadata.response_code, ResponseCode::NotAuth);
}

#[test]
fn algorithm_mismatch_or_unknown_algorithm_is_badkey() {
    let server = test_key(Algorithm::HmacSha256);
    let client = test_key(Algorithm::HmacSha512);
    let (request, _) = signed_update(&client, 1, NOW);
    let rejected = rejection(Verifier::default().verify(&request, &ring_of(&[&server]), NOW));
    assert_eq!(rejected.reason, TsigFailure::BadKey);

    let message = update_message(2, "x");
    let tsig = make_tsig_record(
        name("mx1."),
        TSIG::new(
            TsigAlgorithm::Unknown(name("hmac-sha3-256.")),
            NOW,
            300,
            vec![0; 32],
            2,
            None,
            Vec::new(),
        ),
    );
    let request = append_tsig(&message, &tsig).unwrap();
    let rejected = rejection(Verifier::default().verify(&request, &ring_of(&[&server]), NOW));
    assert_eq!(rejected.reason, TsigFailure::BadKey);
    let (_, tsig) = error_answer(&rejected, &request, NOW);
    assert_eq!(
        tsig.unwrap().data.algorithm.to_name().to_ascii(),
        "hmac-sha3-256"
    );
}

#[test]
fn wrong_secret_is_badsig_with_an_unsigned_tsig() {
    let client = test_key(Algorithm::HmacMd5);
    let server = Key::new(name("mx1"), Algorithm::HmacMd5, b"not the same".to_vec());
    let (request, mac) = signed_update(&client, 3, NOW);
    let rejected = rejection(Verifier::default().verify(&request, &ring_of(&[&server]), NOW));
    assert_eq!(rejected.reason, TsigFailure::BadSig);
    assert_eq!(rejected.rcode, RejectRcode::NotAuth);
    let (answer, tsig) = error_answer(&rejected, &request, NOW);
    let tsig = tsig.unwrap();
    assert_eq!(tsig.data.error, Some(TsigError::BadSig));
    assert!(tsig.data.mac.is_empty());
    assert_eq!(
        verify_response(&answer, &client, &mac, NOW, 300),
        Err(TsigFailure::BadSig)
    );
    // RFC order: key, then MAC, then time.
    let late = rejection(Verifier::default().verify(&request, &ring_of(&[&server]), NOW + 9999));
    assert_eq!(late.reason, TsigFailure::BadSig);
    let unknown = rejection(Verifier::default().verify(&request, &KeyRing::default(), NOW + 9999));
    assert_eq!(unknown.reason, TsigFailure::BadKey);
}

#[test]
fn time_outside_the_server_fudge_is_a_signed_badtime_with_server_time() {
    let key = test_key(Algorithm::HmacSha256);
    let keys = ring_of(&[&key]);
    let verifier = Verifier::default();
    for (id, now) in [(1, NOW + 300), (2, NOW - 300)] {
        accepted(verifier.verify(&signed_update(&key, id, NOW).0, &keys, now));
    }
    let (request, mac) = signed_update(&key, 3, NOW);
    let late = NOW + 301;
    let rejected = rejection(verifier.verify(&request, &keys, late));
    assert_eq!(rejected.reason, TsigFailure::BadTime { server_time: late });
    assert_eq!(rejected.rcode, RejectRcode::NotAuth);
    assert!(rejected.is_signed());
    assert!(rejected.tsig.is_none());
    let (answer, tsig) = error_answer(&rejected, &request, late);
    let tsig = tsig.unwrap();
    assert_eq!(tsig.data.error, Some(TsigError::BadTime));
    assert_eq!(tsig.data.time, NOW, "Time Signed is the client's");
    assert_eq!(tsig.data.other, u48_bytes(late));
    assert_eq!(tsig.data.other.len(), 6);
    assert_eq!(tsig.data.mac.len(), 32);
    // The client can verify it and learns the server's time.
    assert_eq!(
        verify_response(&answer, &key, &mac, NOW, 300),
        Err(TsigFailure::BadTime { server_time: late })
    );
    // And it is really signed: a wrong key does not verify it.
    let wrong = Key::new(name("mx1"), Algorithm::HmacSha256, b"other".to_vec());
    assert_eq!(
        verify_response(&answer, &wrong, &mac, NOW, 300),
        Err(TsigFailure::BadSig)
    );
    let early = rejection(verifier.verify(&signed_update(&key, 4, NOW).0, &keys, NOW - 301));
    assert_eq!(
        early.reason,
        TsigFailure::BadTime {
            server_time: NOW - 301
        }
    );
}

#[test]
fn the_client_fudge_cannot_widen_the_window() {
    let key = test_key(Algorithm::HmacSha256);
    let message = update_message(5, "x");
    let (tsig, _) = sign_request(&message, &key, NOW, u16::MAX);
    let request = append_tsig(&message, &tsig).unwrap();
    let rejected = rejection(Verifier::new(300).verify(&request, &ring_of(&[&key]), NOW + 1000));
    assert!(matches!(rejected.reason, TsigFailure::BadTime { .. }));
    // A server configured wider accepts it.
    accepted(Verifier::new(2000).verify(&request, &ring_of(&[&key]), NOW + 1000));
}

#[test]
fn mac_sizes_outside_rfc_bounds_are_formerr_without_tsig() {
    let key = test_key(Algorithm::HmacSha256);
    let keys = ring_of(&[&key]);
    for (id, mac) in [
        (1, with_mac(&key, 1, NOW, |m| m[..15].to_vec())),
        (2, with_mac(&key, 2, NOW, |_| Vec::new())),
        (
            3,
            with_mac(&key, 3, NOW, |mut m| {
                m.push(0);
                m
            }),
        ),
    ] {
        let rejected = rejection(Verifier::default().verify(&mac, &keys, NOW));
        assert_eq!(rejected.reason, TsigFailure::FormErr, "case {id}");
        assert_eq!(rejected.rcode, RejectRcode::FormErr);
        assert!(
            rejected
                .error_tsig(&response_for(&mac, ResponseCode::FormErr), NOW)
                .is_none()
        );
    }
    // MD5: 10 octets is the floor (RFC 8945: "the larger of 10 ...").
    let md5 = test_key(Algorithm::HmacMd5);
    let md5_keys = ring_of(&[&md5]);
    let nine = with_mac(&md5, 4, NOW, |m| m[..9].to_vec());
    assert_eq!(
        rejection(Verifier::default().verify(&nine, &md5_keys, NOW)).reason,
        TsigFailure::FormErr
    );
    accepted(Verifier::default().verify(
        &with_mac(&md5, 5, NOW, |m| m[..10].to_vec()),
        &md5_keys,
        NOW,
    ));
}

#[test]
fn allowed_truncation_is_accepted_and_the_answer_truncated_alike() {
    let key = test_key(Algorithm::HmacSha256);
    let request = with_mac(&key, 6, NOW, |m| m[..16].to_vec());
    let ctx = accepted(Verifier::default().verify(&request, &ring_of(&[&key]), NOW));
    assert_eq!(ctx.mac_len(), 16);
    let answer = signed_answer(&ctx, &request, NOW);
    let tsig = Message::from_vec(&answer)
        .unwrap()
        .signature()
        .unwrap()
        .clone();
    assert_eq!(tsig.data.mac.len(), 16);
    assert_eq!(
        verify_response(&answer, &key, &ctx.request_mac, NOW, 300),
        Ok(())
    );
    // A wrong truncated MAC is still BADSIG.
    let bad = with_mac(&key, 7, NOW, |m| m[..16].iter().map(|b| b ^ 1).collect());
    assert_eq!(
        rejection(Verifier::default().verify(&bad, &ring_of(&[&key]), NOW)).reason,
        TsigFailure::BadSig
    );
}

#[test]
fn local_truncation_policy_gives_a_signed_badtrunc() {
    let key = test_key(Algorithm::HmacSha256);
    let keys = ring_of(&[&key]);
    let strict = Verifier::default().with_min_mac_len(usize::MAX);
    let request = with_mac(&key, 8, NOW, |m| m[..16].to_vec());
    let rejected = rejection(strict.verify(&request, &keys, NOW));
    assert_eq!(rejected.reason, TsigFailure::BadTrunc);
    assert_eq!(rejected.rcode, RejectRcode::NotAuth);
    assert!(rejected.is_signed());
    let request_mac = Message::from_vec(&request)
        .unwrap()
        .signature()
        .unwrap()
        .data
        .mac
        .clone();
    let (answer, tsig) = error_answer(&rejected, &request, NOW);
    assert_eq!(tsig.unwrap().data.error, Some(TsigError::BadTrunc));
    assert_eq!(
        verify_response(&answer, &key, &request_mac, NOW, 300),
        Err(TsigFailure::BadTrunc)
    );
    // Full-length MACs pass the strict policy.
    accepted(strict.verify(&signed_update(&key, 9, NOW).0, &keys, NOW));
}

#[test]
fn replayed_requests_are_refused_as_signed_badtime() {
    let key = test_key(Algorithm::HmacSha1);
    let keys = ring_of(&[&key]);
    let verifier = Verifier::default();
    let (request, mac) = signed_update(&key, 10, NOW);
    accepted(verifier.verify(&request, &keys, NOW));

    let again = rejection(verifier.verify(&request, &keys, NOW + 1));
    assert_eq!(again.reason, TsigFailure::Replay);
    assert_eq!(again.rcode, RejectRcode::NotAuth);
    let (answer, tsig) = error_answer(&again, &request, NOW + 1);
    assert_eq!(tsig.unwrap().data.error, Some(TsigError::BadTime));
    assert_eq!(
        verify_response(&answer, &key, &mac, NOW, 300),
        Err(TsigFailure::BadTime {
            server_time: NOW + 1
        })
    );

    // A new header ID does not make it new (the MAC covers Original ID).
    let mut renumbered = request.clone();
    set_u16(&mut renumbered, 0, 0xbeef);
    assert_eq!(
        rejection(verifier.verify(&renumbered, &keys, NOW)).reason,
        TsigFailure::Replay
    );
    // Nor does truncating its MAC.
    let truncated = with_mac(&key, 10, NOW, |m| m[..10].to_vec());
    assert_eq!(
        rejection(verifier.verify(&truncated, &keys, NOW)).reason,
        TsigFailure::Replay
    );
    // Another request is fine; another verifier has its own cache.
    accepted(verifier.verify(&signed_update(&key, 11, NOW).0, &keys, NOW));
    accepted(Verifier::default().verify(&request, &keys, NOW));
}

#[test]
fn a_long_mac_is_remembered_by_its_first_octets_and_its_truncated_copy_is_a_replay() {
    // HMAC-SHA512: a 32-octet prefix, of which the cache keeps 16.
    let key = test_key(Algorithm::HmacSha512);
    let keys = ring_of(&[&key]);
    let verifier = Verifier::default();
    let (request, _) = signed_update(&key, 20, NOW);
    accepted(verifier.verify(&request, &keys, NOW));
    let truncated = with_mac(&key, 20, NOW, |m| m[..32].to_vec());
    assert_eq!(
        rejection(verifier.verify(&truncated, &keys, NOW)).reason,
        TsigFailure::Replay
    );
    accepted(verifier.verify(&signed_update(&key, 21, NOW).0, &keys, NOW));
}

#[test]
fn replay_cache_is_bounded_per_key() {
    let key = test_key(Algorithm::HmacSha256);
    let keys = ring_of(&[&key]);
    let verifier = Verifier::default().with_replay_capacity(2);
    let requests: Vec<Vec<u8>> = (0..3).map(|id| signed_update(&key, id, NOW).0).collect();
    for request in &requests {
        accepted(verifier.verify(request, &keys, NOW));
    }
    assert_eq!(
        rejection(verifier.verify(&requests[2], &keys, NOW)).reason,
        TsigFailure::Replay
    );
    assert_eq!(
        verifier
            .replay
            .lock()
            .unwrap()
            .get(&name("mx1."))
            .unwrap()
            .len(),
        2
    );
    // The oldest was evicted; that is the price of the bound.
    accepted(verifier.verify(&requests[0], &keys, NOW));
    // Expired entries are dropped as time passes.
    let later = NOW + 10_000;
    let fresh = signed_update(&key, 50, later).0;
    accepted(verifier.verify(&fresh, &keys, later));
    let cache = verifier.replay.lock().unwrap();
    assert_eq!(cache.get(&name("mx1.")).unwrap().len(), 1);
}

#[test]
fn tsig_anywhere_but_last_is_formerr() {
    let key = test_key(Algorithm::HmacSha256);
    let keys = ring_of(&[&key]);
    let (request, _) = signed_update(&key, 12, NOW);

    // An OPT RR after the TSIG RR.
    let mut opt_after = request.clone();
    opt_after.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    set_u16(&mut opt_after, 10, 2);
    let rejected = rejection(Verifier::default().verify(&opt_after, &keys, NOW));
    assert_eq!(rejected.reason, TsigFailure::FormErr);
    assert_eq!(rejected.detail, NOT_LAST);
    assert_eq!(rejected.rcode, RejectRcode::FormErr);

    // Two TSIG RRs.
    let message = update_message(12, "token");
    let (tsig, _) = sign_request(&message, &key, NOW, 300);
    let twice = append_tsig(&append_tsig(&message, &tsig).unwrap(), &tsig).unwrap();
    assert_eq!(
        rejection(Verifier::default().verify(&twice, &keys, NOW)).detail,
        NOT_LAST
    );

    // The TSIG RR as the last record, but of the update (authority)
    // section: NSCOUNT 2, ARCOUNT 0.
    let mut in_authority = request.clone();
    set_u16(&mut in_authority, 8, 2);
    set_u16(&mut in_authority, 10, 0);
    assert_eq!(
        rejection(Verifier::default().verify(&in_authority, &keys, NOW)).detail,
        NOT_LAST
    );

    // Bytes after the TSIG RR.
    let mut trailing = request.clone();
    trailing.push(0);
    assert_eq!(
        rejection(Verifier::default().verify(&trailing, &keys, NOW)).detail,
        TRAILING
    );
}

#[test]
fn tsig_with_wrong_class_ttl_or_error_is_formerr() {
    let key = test_key(Algorithm::HmacSha256);
    let keys = ring_of(&[&key]);
    let message = update_message(13, "token");
    let (tsig, _) = sign_request(&message, &key, NOW, 300);
    let mut in_class = tsig.clone();
    in_class.dns_class = DNSClass::IN;
    let mut with_ttl = tsig.clone();
    with_ttl.ttl = 60;
    let mut with_error = tsig.clone();
    with_error.data.error = Some(TsigError::BadTime);
    for odd in [in_class, with_ttl, with_error] {
        let request = append_tsig(&message, &odd).unwrap();
        let rejected = rejection(Verifier::default().verify(&request, &keys, NOW));
        assert_eq!(rejected.reason, TsigFailure::FormErr);
        assert_eq!(rejected.key_name, Some(name("mx1.")));
    }
    // A TSIG RR whose RDLENGTH leaves out its last field (Other Len).
    let mut rr = encoded_rr(&tsig);
    let owner_len = rr.iter().position(|&b| b == 0).unwrap() + 1;
    let rdlength_at = owner_len + 8;
    let rdlength = u16::from_be_bytes([rr[rdlength_at], rr[rdlength_at + 1]]);
    set_u16(&mut rr, rdlength_at, rdlength - 2);
    rr.truncate(rr.len() - 2);
    let mut short = message.clone();
    set_u16(&mut short, 10, 1);
    short.extend_from_slice(&rr);
    let rejected = rejection(Verifier::default().verify(&short, &keys, NOW));
    assert_eq!(
        (rejected.reason, rejected.detail),
        (TsigFailure::FormErr, BAD_TSIG_RR)
    );
}

// ------------------------------------------------------- robustness

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_never_panic() {
    let key = test_key(Algorithm::HmacSha256);
    let keys = ring_of(&[&key]);
    let verifier = Verifier::default();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (template, _) = signed_update(&key, 14, NOW);
    for round in 0..20_000 {
        let len = (rng.next() % 600) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if round % 2 == 0 && len > 12 {
            // Plausible header counts make the walker go deeper.
            bytes[4..12].copy_from_slice(&template[4..12]);
        }
        let _ = verifier.verify(&bytes, &keys, NOW);
        let _ = verify_response(&bytes, &key, &[1; 32], NOW, 300);
        let _ = append_tsig(&bytes, &sign_request(&bytes, &key, NOW, 300).0);
    }
}

#[test]
fn every_truncation_and_byte_flip_of_a_signed_request_is_handled() {
    let key = test_key(Algorithm::HmacSha256);
    let keys = ring_of(&[&key]);
    let (request, mac) = signed_update(&key, 15, NOW);
    for len in 0..request.len() {
        let result = Verifier::default().verify(&request[..len], &keys, NOW);
        assert!(!matches!(result, Ok(Some(_))), "prefix {len} accepted");
        let _ = verify_response(&request[..len], &key, &mac, NOW, 300);
    }
    for at in 0..request.len() {
        let mut flipped = request.clone();
        flipped[at] ^= 0xff;
        let result = Verifier::default().verify(&flipped, &keys, NOW);
        // Only the header ID is outside the MAC (Original ID replaces it).
        assert_eq!(matches!(result, Ok(Some(_))), at < 2, "flip at {at}");
    }
}

// ---------------------------------------------------------- key files

/// Verbatim output of `tsig-keygen -a hmac-sha256 mx1` (BIND 9.18).
const TSIG_KEYGEN: &str = "key \"mx1\" {\n\talgorithm hmac-sha256;\n\tsecret \"evcMemadpOaAxMUc0j9jNtUM8WY/V5l+U6JDn/c2Vaw=\";\n};\n";

#[test]
fn parses_tsig_keygen_output_and_writes_it_back_identically() {
    let keys = parse_key_file(TSIG_KEYGEN).unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key.name, name("mx1."));
    assert_eq!(key.algorithm, Algorithm::HmacSha256);
    assert_eq!(key.secret.len(), 32);
    assert_eq!(
        key.secret_base64(),
        "evcMemadpOaAxMUc0j9jNtUM8WY/V5l+U6JDn/c2Vaw="
    );
    assert_eq!(key.to_key_file(), TSIG_KEYGEN);
}

#[test]
fn parses_several_keys_with_comments_and_bare_names() {
    let text = "# certbot's key\nkey \"MX1\" {\n  algorithm HMAC-MD5;   // legacy\n  secret \"ljH5HT7TGdjxe3mL2yh3FA==\";\n};\n\
                /* lego\n   uses sha1 */ key mx2.example. { secret \"ZnTqp22obRrn62AzzoLBnbMlo+g=\"; algorithm \"hmac-sha1\"; };\n\
                key\t\"mx3\"{algorithm hmac-md5.sig-alg.reg.int.;secret \"ljH5HT7T Gdjxe3mL\n 2yh3FA==\";};";
    let keys = parse_key_file(text).unwrap();
    let summary: Vec<(String, Algorithm)> = keys
        .iter()
        .map(|key| (key.name.to_ascii(), key.algorithm))
        .collect();
    assert_eq!(
        summary,
        [
            ("MX1.".to_owned(), Algorithm::HmacMd5),
            ("mx2.example.".to_owned(), Algorithm::HmacSha1),
            ("mx3.".to_owned(), Algorithm::HmacMd5),
        ]
    );
    assert_eq!(
        keys[2].secret, keys[0].secret,
        "whitespace inside the secret is ignored"
    );
    let ring = KeyRing::new(keys);
    assert_eq!(ring.len(), 3);
    assert!(!ring.is_empty());
    assert!(ring.get(&name("mx1")).is_some());
    assert!(ring.get(&name("MX2.EXAMPLE.")).is_some());
    assert!(ring.names().any(|n| *n == name("mx1.")));
    assert!(parse_key_file("  # nothing here\n").unwrap().is_empty());
}

fn parse_error(text: &str) -> KeyFileError {
    parse_key_file(text).unwrap_err()
}

#[test]
fn key_file_errors_have_line_and_column() {
    let secret = "evcMemadpOaAxMUc0j9jNtUM8WY/V5l+U6JDn/c2Vaw=";
    let missing_semicolon = parse_error(&format!(
        "key \"a\" {{\n\talgorithm hmac-sha256\n\tsecret \"{secret}\";\n}};\n"
    ));
    assert_eq!((missing_semicolon.line, missing_semicolon.column), (3, 2));
    assert_eq!(
        missing_semicolon.to_string(),
        "3:2: missing `;` after the algorithm (found `secret`)"
    );

    // A bare secret in a key file (`openssl rand -base64 32 > x.key`): the
    // error must not quote it (errors reach logs and the status page).
    let bare = parse_error(&format!("{secret}\n"));
    assert_eq!((bare.line, bare.column), (1, 1));
    assert!(!bare.to_string().contains(&secret[..8]), "{bare}");
    assert!(bare.to_string().contains("44 characters"), "{bare}");

    let bad_base64 = parse_error("key a {\n algorithm hmac-sha1;\n secret \"sec*ret!\";\n};");
    assert_eq!((bad_base64.line, bad_base64.column), (3, 9));
    assert_eq!(bad_base64.message, "the secret is not valid base64");

    let unknown = parse_error("key a {\n algorithm hmac-sha3-256;\n secret \"AAAA\";\n};");
    assert_eq!((unknown.line, unknown.column), (2, 12));
    assert!(
        unknown
            .message
            .starts_with("unknown algorithm `hmac-sha3-256`"),
        "{unknown}"
    );

    let no_secret = parse_error("key a {\n algorithm hmac-sha1;\n};");
    assert_eq!((no_secret.line, no_secret.column), (3, 1));
    assert_eq!(no_secret.message, "key `a` has no `secret`");

    let no_final = parse_error("key a { algorithm hmac-sha1; secret \"AAAA\"; }");
    assert_eq!((no_final.line, no_final.column), (1, 46));

    let duplicate = parse_error("key a { algorithm hmac-sha1; secret \"AAAA\"; };\nkey \"A.\" {};");
    assert_eq!((duplicate.line, duplicate.column), (2, 5));

    let unterminated = parse_error("key a {\n secret \"AAAA;\n};");
    assert_eq!((unterminated.line, unterminated.column), (2, 9));

    let comment = parse_error("key a { /* never closed");
    assert_eq!((comment.line, comment.column), (1, 9));

    let garbage = parse_error("zone \"example\" {};");
    assert_eq!(garbage.to_string(), "1:1: expected `key`, found `zone`");

    let stray = parse_error("key a { secret \"AAAA\" extra; };");
    assert!(!stray.message.contains("extra"), "{stray}");
}

#[test]
fn read_key_file_errors_name_the_path() {
    let dir = scratch_dir();
    let missing = dir.join("missing.key");
    let err = read_key_file(&missing).unwrap_err();
    assert!(matches!(err, KeyFileReadError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{err}"
    );

    let broken = dir.join("broken.key");
    fs::write(&broken, "key a {\n algorithm hmac-sha1\n};\n").unwrap();
    let err = read_key_file(&broken).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3:1: missing `;`", broken.display())),
        "{err}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn write_key_file_is_0600_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = scratch_dir();
    let path = dir.join("mx1.key");
    let key = Key::generate(name("mx1"), Algorithm::HmacSha256).unwrap();
    assert_eq!(key.secret.len(), 32);
    write_key_file(&path, &key).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), key.to_key_file());
    let back = read_key_file(&path).unwrap();
    assert_eq!(back[0].secret, key.secret);

    let other = Key::generate(name("mx1"), Algorithm::HmacSha256).unwrap();
    let err = write_key_file(&path, &other).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read_to_string(&path).unwrap(), key.to_key_file());
    let entries: Vec<_> = fs::read_dir(&dir).unwrap().collect();
    assert_eq!(entries.len(), 1, "no temporary file left behind");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let key = captured_key("mx1-md5", Algorithm::HmacMd5, "ljH5HT7TGdjxe3mL2yh3FA==");
    let secret = key.secret_base64();
    let keys = ring_of(&[&key]);
    assert!(!format!("{key:?}").contains(&secret));
    assert!(format!("{key:?}").contains("<redacted>"));
    assert!(!format!("{keys:?}").contains(&secret));
    let request = hex(CAPTURED[0].3);
    let ctx = accepted(Verifier::default().verify(&request, &keys, NOW));
    assert!(!format!("{ctx:?}").contains(&secret));
    let rejected = rejection(Verifier::default().verify(&request, &keys, NOW + 1000));
    assert!(!format!("{rejected:?}").contains(&secret));
    assert!(!rejected.to_string().contains(&secret));
    let err = parse_error(&format!(
        "key a {{ algorithm hmac-md5; secret \"{secret}\" }};"
    ));
    assert!(!err.to_string().contains(&secret), "{err}");
    let err = parse_error(&format!(
        "key a {{ algorithm hmac-md5; secret {secret}; secret x; }};"
    ));
    assert!(!err.to_string().contains(&secret), "{err}");
}

#[test]
fn tsig_keygen_output_parses() {
    assert!(
        which("tsig-keygen"),
        "tsig-keygen missing: scripts/test installs bind9"
    );
    for algorithm in Algorithm::ALL {
        let output = Command::new("tsig-keygen")
            .args(["-a", algorithm.key_file_name(), "machine-1"])
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        let keys = parse_key_file(&text).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].algorithm, algorithm);
        assert_eq!(keys[0].to_key_file(), text);
    }
}

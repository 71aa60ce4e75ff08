//! The HTTP API over a real socket: POST /api/v1/tlsa authenticated with a
//! machine's TSIG key, publishing within its ACL, with the server-side
//! rollover; and the status codes of every failure.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use hickory_proto::rr::{RData, RecordType};
use zonewarden::client::api;
use zonewarden::client::cli::{ApiTlsa, api_tlsa};
use zonewarden::http::tlsa_api::{PATH, PublishResponse};

/// The 3 1 1 data openssl computes for a certificate (SHA-256 of the SPKI).
fn openssl_311(crt: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("openssl x509 -in {} -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r", crt.display()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

async fn tlsa_at(h: &Harness, owner: &str) -> Vec<String> {
    let m = h.query(owner, RecordType::TLSA).await;
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(t) => Some(t.cert_data.iter().map(|b| format!("{b:02x}")).collect()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// A read view's body, fetched with curl (from loopback: no token needed).
async fn http_get(h: &Harness, path: &str) -> String {
    require("curl", "curl");
    let url = format!("{}{path}", api(h));
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", &url])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn api(h: &Harness) -> String {
    format!("http://{}", h.server.as_ref().unwrap().http_addr().unwrap())
}

fn req<'a>(
    url: &'a str,
    key: &'a Path,
    crt: &'a Path,
    host: &'a str,
    ports: &'a [u16],
) -> ApiTlsa<'a> {
    ApiTlsa {
        url,
        key_file: key,
        cert_file: crt,
        host,
        ports,
        zone: None,
        next_key: None,
        ttl: Some(60),
    }
}

#[tokio::test]
async fn publish_then_roll_over_then_retire_after_propagation_and_two_ttls() {
    let h = Harness::start().await;
    let url = api(&h);
    let key = h.path("data/keys/mx1.key");
    let first = cert(h.dir.path(), "mx1-a", 90);
    let (out, code) = api_tlsa(&req(&url, &key, &first, "mx1", &[25, 465]), h.clock_now()).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("201"), "{out}");
    let a = openssl_311(&first);
    for port in [25, 465] {
        assert_eq!(
            tlsa_at(&h, &format!("_{port}._tcp.mx1.{ZONE}")).await,
            vec![a.clone()],
            "port {port}"
        );
    }
    // The same certificate again (a reused key): nothing changes, not even the serial.
    let serial = h.serial(ZONE).await;
    let (out, code) = api_tlsa(&req(&url, &key, &first, "mx1", &[25, 465]), h.clock_now()).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("200"), "{out}");
    assert_eq!(h.serial(ZONE).await, serial);

    // A new key: the new record goes in beside the old one.
    let second = cert(h.dir.path(), "mx1-b", 90);
    let b = openssl_311(&second);
    let (out, code) = api_tlsa(&req(&url, &key, &second, "mx1", &[25, 465]), h.clock_now()).await;
    assert_eq!(code, 0, "{out}");
    let resp: PublishResponse =
        serde_json::from_str(out.split_once(": ").unwrap().1.trim()).unwrap();
    assert!(
        resp.changed && resp.sets.iter().all(|s| s.retiring.len() == 1),
        "{out}"
    );
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(tlsa_at(&h, &format!("_25._tcp.mx1.{ZONE}")).await, both);
    // No secondaries here: propagated at the first sweep; two TTLs (60 s) later it retires.
    assert_eq!(h.server().zones.retire_due().unwrap(), 0);
    h.clock.advance(100);
    assert_eq!(
        h.server().zones.retire_due().unwrap(),
        0,
        "not before 2 x TTL"
    );
    assert_eq!(tlsa_at(&h, &format!("_465._tcp.mx1.{ZONE}")).await, both);
    h.clock.advance(30);
    assert_eq!(h.server().zones.retire_due().unwrap(), 2);
    for port in [25, 465] {
        assert_eq!(
            tlsa_at(&h, &format!("_{port}._tcp.mx1.{ZONE}")).await,
            vec![b.clone()],
            "port {port}"
        );
    }
    let audit = h.server().zones.audit_tail(&name(ZONE), 1).unwrap();
    assert_eq!(audit[0].action.as_str(), "dane-retire");
}

/// Two machines roll over at once: the one retirement sweep that removes
/// both old records credits each removal to its own machine (it once
/// credited every record due in a sweep to the first one's machine).
#[tokio::test]
async fn retirements_due_together_are_credited_to_their_own_machines() {
    let h = Harness::start().await;
    let www1 =
        format!("{WWW1_ACL}[[grant]]\nname = \"_443._tcp.{{machine}}\"\ntypes = [\"TLSA\"]\n");
    std::fs::write(h.path("acl/www1.toml"), www1).unwrap();
    h.server().policy.reload(true).unwrap();
    let url = api(&h);
    for (machine, port) in [("mx1", 25), ("www1", 443)] {
        let key = h.path(&format!("data/keys/{machine}.key"));
        for generation in ["a", "b"] {
            let c = cert(h.dir.path(), &format!("{machine}-{generation}"), 90);
            let ports = [port];
            let r = ApiTlsa {
                zone: Some(ZONE),
                ..req(&url, &key, &c, machine, &ports)
            };
            let (out, code) = api_tlsa(&r, h.clock_now()).await;
            assert_eq!(code, 0, "{machine} {generation}: {out}");
        }
    }
    assert_eq!(h.server().zones.retire_due().unwrap(), 0, "propagated now");
    h.clock.advance(2 * 60 + 1);
    assert_eq!(h.server().zones.retire_due().unwrap(), 2);
    let rows = h.server().zones.audit_tail(&name(ZONE), 2).unwrap();
    let mut retired: Vec<(Option<String>, Option<String>, String)> = rows
        .into_iter()
        .map(|r| (r.machine, r.key, r.action.as_str().to_string()))
        .collect();
    retired.sort();
    assert_eq!(
        retired,
        vec![
            (Some("mx1".into()), None, "dane-retire".into()),
            (Some("www1".into()), None, "dane-retire".into()),
        ],
        "one retirement per machine, the server acting for each (no key)"
    );
    // the audit view filtered by machine finds each one's retirement
    let text = http_get(&h, "/api/v1/audit?machine=www1").await;
    let view: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = view["entries"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "dane-retire", "{text}");
    assert_eq!(entries[0]["machine"], "www1", "{text}");
    assert!(
        entries.iter().all(|e| e["machine"] == "www1"),
        "only www1's rows: {text}"
    );
}

#[tokio::test]
async fn a_planned_retirement_survives_a_restart() {
    let mut h = Harness::start().await;
    let key = h.path("data/keys/mx1.key");
    let one = cert(h.dir.path(), "one", 90);
    let two = cert(h.dir.path(), "two", 90);
    let url = api(&h);
    assert_eq!(
        api_tlsa(&req(&url, &key, &one, "mx1", &[25]), h.clock_now())
            .await
            .1,
        0
    );
    assert_eq!(
        api_tlsa(&req(&url, &key, &two, "mx1", &[25]), h.clock_now())
            .await
            .1,
        0
    );
    h.restart().await;
    h.server().zones.retire_due().unwrap();
    h.clock.advance(121);
    assert_eq!(h.server().zones.retire_due().unwrap(), 1);
    assert_eq!(
        tlsa_at(&h, &format!("_25._tcp.mx1.{ZONE}")).await,
        vec![openssl_311(&two)]
    );
}

#[tokio::test]
async fn failures_get_real_status_codes() {
    let h = Harness::start().await;
    let addr = h.server.as_ref().unwrap().http_addr().unwrap();
    let url = api(&h);
    let key_file = h.path("data/keys/mx1.key");
    let good = cert(h.dir.path(), "good", 30);
    let body = |host: &str, certificate: &str| {
        serde_json::json!({"host": host, "ports": [25], "certificate": certificate})
            .to_string()
            .into_bytes()
    };
    let pem = std::fs::read_to_string(&good).unwrap();
    let key = h.key("mx1");
    let post = |b: Vec<u8>, k: zonewarden::tsig::Key, now: u64| async move {
        api::post(addr, PATH, &b, &k, now, std::time::Duration::from_secs(10))
            .await
            .unwrap()
    };

    // another machine's name: 403
    let (status, text) = post(body("www1", &pem), key.clone(), h.clock_now()).await;
    assert_eq!(status, 403, "{text}");
    // not a certificate: 400
    let (status, text) = post(
        body(
            "mx1",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ),
        key.clone(),
        h.clock_now(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    // bad JSON: 400
    let (status, _) = post(b"{\"host\":".to_vec(), key.clone(), h.clock_now()).await;
    assert_eq!(status, 400);
    // a zone we do not serve: 404
    let b = serde_json::json!({"host": "mx1", "ports": [25], "certificate": pem, "zone": "example.com."}).to_string().into_bytes();
    let (status, _) = post(b, key.clone(), h.clock_now()).await;
    assert_eq!(status, 404);
    // a key the server does not know, and a stale timestamp: 401
    let stranger =
        zonewarden::tsig::Key::generate(name("stranger."), zonewarden::tsig::Algorithm::HmacSha256)
            .unwrap();
    let (status, _) = post(body("mx1", &pem), stranger, h.clock_now()).await;
    assert_eq!(status, 401);
    let (status, text) = post(body("mx1", &pem), key.clone(), h.clock_now() - 3600).await;
    assert_eq!(status, 401, "{text}");
    // no Authorization at all: 401 with WWW-Authenticate
    let raw = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, raw.as_bytes())
        .await
        .unwrap();
    let mut resp = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut resp)
        .await
        .unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 401")
            && resp
                .to_ascii_lowercase()
                .contains("www-authenticate: tsig-hmac"),
        "{resp}"
    );
    // too large: 413
    let (status, _) = post(vec![b' '; 200_000], key.clone(), h.clock_now()).await;
    assert_eq!(status, 413);
    // expired (the server's clock is 40 days on): 422
    h.clock.advance(40 * 86_400);
    let (status, text) = post(body("mx1", &pem), key.clone(), h.clock_now()).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("expired"), "{text}");
    // nothing was published by any of these
    assert!(
        tlsa_at(&h, &format!("_25._tcp.mx1.{ZONE}"))
            .await
            .is_empty()
    );
    // and the CLI reports a refusal with exit status 1
    let (out, code) = api_tlsa(&req(&url, &key_file, &good, "www1", &[25]), h.clock_now()).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("403"), "{out}");
    // health
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut s,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut resp = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut resp)
        .await
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_record_stays_while_a_secondary_lacks_the_new_one() {
    use common::free_port;
    use common::peers::knot_secondary;
    let xfr =
        zonewarden::tsig::Key::generate(name("xfr."), zonewarden::tsig::Algorithm::HmacSha256)
            .unwrap();
    let kp = free_port();
    let zone_file = format!(
        "{ZONE_FILE}\n[[secondary]]\naddress = \"127.0.0.1:{kp}\"\nkey = \"xfr\"\nname = \"late\"\n"
    );
    let k2 = xfr.clone();
    let h = Harness::start_with(move |c| {
        write(&c.zones_dir.join("acme.toml"), &zone_file);
        zonewarden::tsig::write_key_file(&c.keys_dir.join("xfr.key"), &k2).unwrap();
    })
    .await;
    // The server's clock starts three hours back, so the hours this test lets
    // pass end at real time, where the real Knot's TSIG clock is.
    h.clock.set(h.clock_now() - 3 * 3600);
    let url = api(&h);
    let key = h.path("data/keys/mx1.key");
    let (one, two) = (cert(h.dir.path(), "one", 90), cert(h.dir.path(), "two", 90));
    assert_eq!(
        api_tlsa(&req(&url, &key, &one, "mx1", &[25]), h.clock_now())
            .await
            .1,
        0
    );
    assert_eq!(
        api_tlsa(&req(&url, &key, &two, "mx1", &[25]), h.clock_now())
            .await
            .1,
        0
    );
    let owner = format!("_25._tcp.mx1.{ZONE}");
    // The secondary is down: hours pass, the old record stays.
    for _ in 0..3 {
        h.server().zones.retire_due().unwrap();
        h.clock.advance(3600);
    }
    assert_eq!(
        tlsa_at(&h, &owner).await.len(),
        2,
        "retired before every nameserver had the new record"
    );
    // It comes up (the primary port is needed for knot: the harness listens on one).
    let knot = knot_secondary(ZONE, kp, h.addr.port(), &xfr);
    let serial = h.serial(ZONE).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        h.server().zones.retire_due().unwrap();
        let st = h.server().zones.all()[0].propagation.statuses();
        if st[0].serial == Some(serial) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "knot never caught up: {st:?}\n{}",
            knot.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    h.server().zones.retire_due().unwrap(); // now propagated: the 2 x TTL wait starts
    assert_eq!(tlsa_at(&h, &owner).await.len(), 2);
    h.clock.advance(121);
    assert_eq!(h.server().zones.retire_due().unwrap(), 1);
    assert_eq!(tlsa_at(&h, &owner).await, vec![openssl_311(&two)]);
}

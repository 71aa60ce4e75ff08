//! Hardening (issue 11, defects 5-10): what a hostile or unlucky world does
//! to the server and its files, pinned down one behaviour per test: a
//! captured UPDATE replayed after a restart, key names defined twice, ACL
//! files caught mid-write, zone files the server could not serve, clock
//! steps, and the HTTP API's answers to oversized bodies and port 0.

mod common;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::tsig::TsigError;
use zonewarden::client::api;
use zonewarden::client::cli;
use zonewarden::http::tlsa_api::PATH;
use zonewarden::tsig::{Algorithm, Key};

/// POST to the TLSA API signed by mx1's key; (status, raw head, body).
async fn post_tlsa(h: &Harness, body: &[u8]) -> (u16, String) {
    let addr = h.server().http_addr().unwrap();
    api::post(
        addr,
        PATH,
        body,
        &h.key("mx1"),
        h.clock_now(),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn an_oversized_api_body_gets_the_json_error_body() {
    let h = Harness::start().await;
    let (status, text) = post_tlsa(&h, &vec![b' '; 200_000]).await;
    assert_eq!(status, 413, "{text}");
    let body: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("413 body is not JSON ({e}): {text:?}"));
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{text}"
    );
}

#[tokio::test]
async fn the_tlsa_api_refuses_port_zero() {
    let h = Harness::start().await;
    let pem = std::fs::read_to_string(cert(h.dir.path(), "mx1", 30)).unwrap();
    let body = serde_json::json!({"host": "mx1", "ports": [443, 0], "certificate": pem});
    let (status, text) = post_tlsa(&h, body.to_string().as_bytes()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("port"), "{text}");
    for owner in ["_0._tcp.mx1", "_443._tcp.mx1"] {
        let m = h.query(&format!("{owner}.{ZONE}"), RecordType::TLSA).await;
        assert!(m.answers.is_empty(), "{owner}: nothing published");
    }
}

/// A key file in the harness's keys directory.
fn write_key(h: &Harness, file: &str, key: &Key) {
    write(&h.path(&format!("data/keys/{file}")), &key.to_key_file());
}

#[tokio::test]
async fn a_key_defined_in_two_files_is_an_error_naming_both_and_the_running_keys_stay() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    // Another file defines mx1 again, with another secret (it sorts after
    // mx1.key, so file order would let it win).
    let imposter = Key::generate(name("mx1."), Algorithm::HmacSha256).unwrap();
    write_key(&h, "zz-copy.key", &imposter);

    let (report, ok) = cli::check(&h.config);
    assert!(!ok, "{report}");
    for file in ["mx1.key", "zz-copy.key"] {
        assert!(report.contains(file), "names {file}: {report}");
    }
    assert!(report.contains("zz-copy.key:1:"), "located: {report}");

    // On reload: refused, the running keys stay.
    assert!(h.server().policy.reload(true).is_err());
    let status = h.server().policy.status();
    let (_, error) = status.last_error.expect("the reload failed");
    assert!(
        error.contains("mx1.key") && error.contains("zz-copy.key"),
        "{error}"
    );
    let first = update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "v")]);
    assert_eq!(h.update_rcode("mx1", first).await, ResponseCode::NoError);
    let bytes = sign(
        update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "w")]),
        &imposter,
        h.clock_now(),
    );
    let answer = Message::from_vec(&h.tcp(&bytes).await).unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(h.txt(&n.to_string()).await, vec!["v".to_string()]);
}

#[tokio::test]
async fn check_warns_about_a_secret_below_128_bits_and_still_passes() {
    let h = Harness::start().await;
    write(
        &h.path("acl/weak.toml"),
        "[[grant]]\nname = \"_acme-challenge.{machine}\"\ntypes = [\"TXT\"]\n",
    );
    write_key(
        &h,
        "weak.key",
        &Key::new(name("weak."), Algorithm::HmacSha256, vec![7]),
    );
    let (report, ok) = cli::check(&h.config);
    assert!(ok, "a weak secret is allowed: {report}");
    let line = report
        .lines()
        .find(|l| l.contains("weak.key:"))
        .unwrap_or_else(|| panic!("no warning for weak.key: {report}"));
    assert!(
        line.starts_with("warning: ") && line.contains("128 bits"),
        "{line}"
    );
    assert!(!line.contains("Bw=="), "never the secret: {line}");
    // The server takes it, and logs the same warning (seen by the reload).
    assert!(h.server().policy.reload(true).unwrap());
    assert!(h.server().policy.get().keys.get(&name("weak.")).is_some());
}

#[tokio::test]
async fn an_acl_file_caught_mid_write_is_not_applied_until_it_settles() {
    // The test polls by hand: the timer must not poll in between.
    let h = Harness::start_with(|c| c.reload_interval = std::time::Duration::from_secs(3600)).await;
    let policy = &h.server().policy;
    let tlsa = zname("_443._tcp.mx1");
    let may_tlsa = || {
        let p = policy.get();
        let m = p.policy.machine_for_key(&name("mx1.")).unwrap().clone();
        m.grantable_types_at(&name(ZONE), &tlsa) != zonewarden::acl::TypesAt::None
    };
    assert!(may_tlsa());
    // mx1.toml rewritten in place: the first poll sees it half-written (a
    // valid policy that lacks the TLSA grant, which comes later).
    let full = format!("{MX1_ACL}[[grant]]\nname = \"shared\"\ntypes = [\"TXT\"]\n");
    let half = &full[..full.find("[[grant]]\nname = \"_*._tcp").unwrap()];
    write(&h.path("acl/mx1.toml"), half);
    assert!(
        !policy.reload(false).unwrap(),
        "a file seen changed once is not applied"
    );
    assert!(may_tlsa(), "the running policy stays");
    // The writer finishes: changed again, so still not applied ...
    write(&h.path("acl/mx1.toml"), &full);
    assert!(!policy.reload(false).unwrap());
    assert!(may_tlsa());
    // ... until it is the same at the next poll.
    assert!(policy.reload(false).unwrap());
    assert!(may_tlsa(), "the whole file is in force");
    let shared = zname("shared");
    let p = policy.get();
    let m = p.policy.machine_for_key(&name("mx1.")).unwrap();
    assert_ne!(
        m.grantable_types_at(&name(ZONE), &shared),
        zonewarden::acl::TypesAt::None
    );
}

#[tokio::test]
async fn a_captured_update_replayed_after_a_restart_is_refused() {
    let mut h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let key = h.key("mx1");
    let captured = sign(
        update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "once")]),
        &key,
        h.clock_now(),
    );
    let first = Message::from_vec(&h.tcp(&captured).await).unwrap();
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    // An UPDATE that changes nothing (the value is there): no commit
    // carries its MAC, it must be remembered all the same.
    let unchanged = sign(
        update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "once")]),
        &key,
        h.clock_now(),
    );
    assert_ne!(unchanged, captured);
    let answer = Message::from_vec(&h.tcp(&unchanged).await).unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    let del = update_msg(ZONE, vec![], vec![del_rrset(&n, RecordType::TXT)]);
    assert_eq!(h.update_rcode("mx1", del).await, ResponseCode::NoError);
    assert!(h.txt(&n.to_string()).await.is_empty());

    h.restart().await;
    // Inside the fudge window, after the restart: both copies refused
    // (signed BADTIME, the verifier's answer to a replay), nothing back.
    h.clock.advance(60);
    for (what, bytes) in [("the add", &captured), ("the unchanged add", &unchanged)] {
        let again = Message::from_vec(&h.tcp(bytes).await).unwrap();
        assert_eq!(
            again.metadata.response_code,
            ResponseCode::NotAuth,
            "{what}"
        );
        let tsig = again.signature().expect("a signed answer");
        assert_eq!(tsig.data.error, Some(TsigError::BadTime), "{what}");
        assert!(
            h.txt(&n.to_string()).await.is_empty(),
            "{what}: the value stays deleted"
        );
    }
    // A new UPDATE with the same key still works.
    let add_again = update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "twice")]);
    assert_eq!(
        h.update_rcode("mx1", add_again).await,
        ResponseCode::NoError
    );
}

#[tokio::test]
async fn a_clock_step_forward_expires_no_live_challenge_but_a_restart_counts_wall_time() {
    let mut h = Harness::start().await;
    let max_age = h.config.challenge_max_age.as_secs();
    let n = zname("_acme-challenge.mx1");
    let t0 = h.clock_now();
    let add_txt = update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "live")]);
    assert_eq!(h.update_rcode("mx1", add_txt).await, ResponseCode::NoError);
    // The wall clock jumps a day ahead (monotonic time does not move).
    h.clock.set(t0 + 86_400);
    assert_eq!(h.server().sweep_expired().unwrap(), 0, "nothing is old yet");
    assert_eq!(h.txt(&n.to_string()).await, vec!["live".to_string()]);
    // Time really passes: then it expires.
    h.clock.set(t0);
    h.clock.advance(max_age + 1);
    assert_eq!(h.server().sweep_expired().unwrap(), 1);
    assert!(h.txt(&n.to_string()).await.is_empty());

    // Across a restart there is only wall time: a record older than the
    // limit by the wall clock at start expires.
    let add_txt = update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "old")]);
    assert_eq!(h.update_rcode("mx1", add_txt).await, ResponseCode::NoError);
    h.restart().await;
    assert_eq!(h.server().sweep_expired().unwrap(), 0);
    h.clock.set(h.clock_now() + max_age + 1);
    h.restart().await;
    assert_eq!(h.server().sweep_expired().unwrap(), 1);
}

/// The inceptions of every RRSIG the zone holds.
fn inceptions(h: &Harness) -> Vec<u64> {
    let zone = h.server().zones.zone_exact(&name(ZONE)).unwrap().snapshot();
    zone.all_records()
        .iter()
        .filter_map(|r| zonewarden::zone::as_rrsig(&r.data))
        .map(|s| u64::from(s.input().sig_inception.get()))
        .collect()
}

#[tokio::test]
async fn signatures_made_while_the_clock_was_ahead_are_remade_when_it_goes_back() {
    let h = Harness::start().await;
    let t0 = h.clock_now();
    let n = zname("_acme-challenge.mx1");
    // A day ahead: an UPDATE is signed with inceptions in the future.
    h.clock.set(t0 + 86_400);
    let add_txt = update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "v")]);
    assert_eq!(h.update_rcode("mx1", add_txt).await, ResponseCode::NoError);
    assert!(inceptions(&h).iter().any(|i| *i > t0 + 3_600));
    // The step is undone: the server notices by itself (its timer) and
    // makes every signature valid now again, within a bounded wait.
    h.clock.set(t0 + 5);
    let mut ahead = usize::MAX;
    for _ in 0..150 {
        ahead = inceptions(&h)
            .iter()
            .filter(|i| **i > h.clock_now())
            .count();
        if ahead == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ahead, 0, "signatures not yet valid remain");
    assert_eq!(h.txt(&n.to_string()).await, vec!["v".to_string()]);
}

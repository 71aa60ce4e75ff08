//! Policy reloads, challenge expiry, and the operator verbs `check` and `machine add`.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

#[tokio::test]
async fn a_broken_acl_edit_keeps_the_previous_policy_and_a_good_one_takes_effect() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let extra = zname("_acme-challenge.extra.mx1");
    let add_extra = || update_msg(ZONE, vec![], vec![add(&extra, 60, RecordType::TXT, "x")]);
    assert_eq!(
        h.update_rcode("mx1", add_extra()).await,
        ResponseCode::Refused
    );

    // A typo: unknown field. The old policy (mx1 may write its challenge) stays.
    let broken = format!(
        "{MX1_ACL}\n[[grant]]\nname = \"_acme-challenge.extra.{{machine}}\"\ntypez = [\"TXT\"]\n"
    );
    write(&h.path("acl/mx1.toml"), &broken);
    let err = h.server().policy.reload(true).unwrap_err();
    let text = err.to_string();
    let line = broken.lines().position(|l| l.starts_with("typez")).unwrap() + 1;
    assert!(
        text.contains(&format!("mx1.toml:{line}:1:")),
        "error cites path and line: {text}"
    );
    let status = h.server().policy.status();
    assert!(status.last_error.is_some());
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![],
                vec![add(&n, 60, RecordType::TXT, "still works")]
            )
        )
        .await,
        ResponseCode::NoError
    );
    assert_eq!(
        h.update_rcode("mx1", add_extra()).await,
        ResponseCode::Refused
    );

    // Fixed: the new grant applies, picked up by the file watcher without SIGHUP.
    let fixed = broken.replace("typez", "types");
    write(&h.path("acl/mx1.toml"), &fixed);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if h.server().policy.status().last_error.is_none() {
            ok = true;
            break;
        }
    }
    assert!(ok, "the poller reloaded the fixed file within 10 s");
    assert_eq!(
        h.update_rcode("mx1", add_extra()).await,
        ResponseCode::NoError
    );
}

#[tokio::test]
async fn a_new_acl_file_gets_a_generated_key_and_works() {
    let h = Harness::start().await;
    write(
        &h.path("acl/db7.toml"),
        "[[grant]]\nname = \"_acme-challenge.{machine}\"\ntypes = [\"TXT\"]\n",
    );
    assert!(h.server().policy.reload(true).unwrap());
    let key_file = h.path("data/keys/db7.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let n = zname("_acme-challenge.db7");
    assert_eq!(
        h.update_rcode(
            "db7",
            update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TXT, "hi")])
        )
        .await,
        ResponseCode::NoError
    );
    // A removed ACL file removes the machine's rights.
    std::fs::remove_file(h.path("acl/db7.toml")).unwrap();
    assert!(h.server().policy.reload(true).unwrap());
    assert_eq!(
        h.update_rcode(
            "db7",
            update_msg(ZONE, vec![], vec![del_rrset(&n, RecordType::TXT)])
        )
        .await,
        ResponseCode::Refused
    );
}

#[tokio::test]
async fn stale_challenges_expire_as_journaled_changes() {
    let h = Harness::start().await;
    let old = zname("_acme-challenge.mx1");
    let fresh = zname("_acme-challenge.www1");
    let tlsa = zname("_25._tcp.mx1");
    let data = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![],
                vec![
                    add(&old, 60, RecordType::TXT, "forgotten"),
                    add(&tlsa, 300, RecordType::TLSA, data)
                ]
            )
        )
        .await,
        ResponseCode::NoError
    );
    h.clock.advance(3000);
    assert_eq!(
        h.update_rcode(
            "www1",
            update_msg(
                ZONE,
                vec![],
                vec![add(&fresh, 60, RecordType::TXT, "recent")]
            )
        )
        .await,
        ResponseCode::NoError
    );
    let serial = h.serial(ZONE).await;
    // 50 minutes on: nothing is an hour old yet.
    assert_eq!(h.server().sweep_expired().unwrap(), 0);
    h.clock.advance(700);
    assert_eq!(h.server().sweep_expired().unwrap(), 1);
    assert!(h.txt(&old.to_string()).await.is_empty());
    assert_eq!(h.txt(&fresh.to_string()).await, vec!["recent"]);
    assert_eq!(
        h.query(&tlsa.to_string(), RecordType::TLSA)
            .await
            .answers
            .len(),
        1,
        "TLSA records never expire"
    );
    assert_eq!(h.serial(ZONE).await, serial.wrapping_add(1));
    let audit = h.server().zones.audit_tail(&name(ZONE), 1).unwrap();
    assert_eq!(audit[0].action.as_str(), "expired");
    assert!(audit[0].detail.contains("forgotten"));
}

#[test]
fn check_reports_every_error_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let config = Harness::layout(dir.path());
    let (report, ok) = zonewarden::client::cli::check(&config);
    assert!(ok, "{report}");
    assert!(report.contains("ok: 2 zone(s)"), "{report}");
    write(
        &dir.path().join("acl/bad1.toml"),
        "[[grant]]\nname = \"x\"\ntypes = [\"SOA\"]\n",
    );
    write(&dir.path().join("acl/bad2.toml"), "role = \"wizard\"\n");
    let (report, ok) = zonewarden::client::cli::check(&config);
    assert!(!ok);
    assert!(report.contains("bad1.toml:3:"), "{report}");
    assert!(report.contains("bad2.toml:1:"), "{report}");
}

#[test]
fn machine_add_writes_a_0600_key_and_an_acl_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let config = Harness::layout(dir.path());
    let out = zonewarden::client::cli::machine_add(
        &config,
        "mx9",
        Some("_acme.example.org"),
        None,
        zonewarden::tsig::Algorithm::HmacSha256,
    )
    .unwrap();
    assert!(
        out.contains(
            "_acme-challenge.mx9.example.org. CNAME _acme-challenge.mx9._acme.example.org."
        ),
        "{out}"
    );
    assert!(out.contains("RFC2136_TSIG_ALGORITHM=hmac-sha256."), "{out}");
    assert!(out.contains("dns_rfc2136_name = mx9"), "{out}");
    let key = dir.path().join("data/keys/mx9.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (report, ok) = zonewarden::client::cli::check(&config);
    assert!(ok, "{report}");
    // Twice is an error, and nothing is overwritten.
    let before = std::fs::read(&key).unwrap();
    assert!(
        zonewarden::client::cli::machine_add(
            &config,
            "mx9",
            Some("_acme.example.org"),
            None,
            zonewarden::tsig::Algorithm::HmacSha256
        )
        .is_err()
    );
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // Several zones served: --zone is required.
    assert!(
        zonewarden::client::cli::machine_add(
            &config,
            "mx10",
            None,
            None,
            zonewarden::tsig::Algorithm::HmacSha256
        )
        .is_err()
    );
}

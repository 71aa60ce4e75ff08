//! dns-persist-01 (draft-ietf-acme-dns-persist): the `_validation-persist`
//! TXT record granted like any name, never removed by the challenge
//! expiry, validated on UPDATE, made by `zonewarden persist`, and shown by
//! the HTTP API, the status page and the metrics.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A machine that may publish its challenge and its persist record.
const PBOX_ACL: &str = r#"
[[grant]]
name = "_acme-challenge.{machine}"
types = ["TXT"]
[[grant]]
name = "_validation-persist.{machine}"
types = ["TXT"]
"#;

const VALUE: &str = "letsencrypt.org;accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/123";

/// An add of one TXT RR holding `value` as one character-string (the zone
/// file syntax `add` parses reads `;` as a comment).
fn add_txt(owner: &Name, value: &str) -> Record {
    Record::from_rdata(
        owner.clone(),
        60,
        RData::TXT(TXT::new(vec![value.to_string()])),
    )
}

async fn start() -> Harness {
    Harness::start_with(|c| write(&c.acl_dir.join("pbox.toml"), PBOX_ACL)).await
}

#[test]
fn machine_add_with_persist_grants_the_persist_name_and_prints_its_cname() {
    let dir = tempfile::tempdir().unwrap();
    let config = Harness::layout(dir.path());
    let out = zonewarden::client::cli::machine_add_with(
        &config,
        "pm1",
        Some("_acme.example.org"),
        None,
        zonewarden::tsig::Algorithm::HmacSha256,
        true,
    )
    .unwrap();
    assert!(
        out.contains(
            "_validation-persist.pm1.example.org. CNAME _validation-persist.pm1._acme.example.org."
        ),
        "{out}"
    );
    let acl = std::fs::read_to_string(dir.path().join("acl/pm1.toml")).unwrap();
    assert!(
        acl.contains("name = \"_validation-persist.{machine}\""),
        "{acl}"
    );
    let (report, ok) = zonewarden::client::cli::check(&config);
    assert!(ok, "{report}");
    // The loaded policy grants TXT there (and only there, beside the rest).
    let m = zonewarden::acl::Policy::load_file(&dir.path().join("acl/pm1.toml"), &[name(ZONE)])
        .unwrap();
    assert!(
        m.permits(
            &name(ZONE),
            &zname("_validation-persist.pm1"),
            RecordType::TXT
        )
        .is_some()
    );
    assert!(
        m.permits(
            &name(ZONE),
            &zname("_validation-persist.pm2"),
            RecordType::TXT
        )
        .is_none()
    );
    // Without --persist: no such grant, no such CNAME.
    let out = zonewarden::client::cli::machine_add(
        &config,
        "pm2",
        Some("_acme.example.org"),
        None,
        zonewarden::tsig::Algorithm::HmacSha256,
    )
    .unwrap();
    assert!(!out.contains("_validation-persist"), "{out}");
    let acl = std::fs::read_to_string(dir.path().join("acl/pm2.toml")).unwrap();
    assert!(!acl.contains("_validation-persist"), "{acl}");
}

#[tokio::test]
async fn the_expiry_sweep_removes_a_challenge_but_never_a_persist_record_of_the_same_age() {
    let mut h = start().await;
    let max_age = h.config.challenge_max_age.as_secs();
    let challenge = zname("_acme-challenge.pbox");
    let persist = zname("_validation-persist.pbox");
    let both = update_msg(
        ZONE,
        vec![],
        vec![
            add(&challenge, 60, RecordType::TXT, "token"),
            add_txt(&persist, VALUE),
        ],
    );
    assert_eq!(h.update_rcode("pbox", both).await, ResponseCode::NoError);
    assert_eq!(h.txt(&persist.to_string()).await, vec![VALUE.to_string()]);
    // Both are older than challenge-max-age (monotonic age, this run).
    h.clock.advance(max_age + 1);
    assert_eq!(h.server().sweep_expired().unwrap(), 1);
    assert!(h.txt(&challenge.to_string()).await.is_empty());
    assert_eq!(h.txt(&persist.to_string()).await, vec![VALUE.to_string()]);

    // Across a restart ages are wall time: a challenge added with it, both
    // a year old by the wall clock at start; still only the challenge goes.
    let again = update_msg(
        ZONE,
        vec![],
        vec![add(&challenge, 60, RecordType::TXT, "token2")],
    );
    assert_eq!(h.update_rcode("pbox", again).await, ResponseCode::NoError);
    h.clock.set(h.clock_now() + 365 * 86_400);
    h.restart().await;
    assert_eq!(h.server().sweep_expired().unwrap(), 1);
    assert!(h.txt(&challenge.to_string()).await.is_empty());
    assert_eq!(h.txt(&persist.to_string()).await, vec![VALUE.to_string()]);
}

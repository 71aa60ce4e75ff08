//! zonewarden's own HTTPS certificate from an ACME CA by DNS-01 through
//! its own zone (issue 14, item 4; acme-dns's `tls = "letsencrypt"`),
//! against pebble in the end-to-end lab (`acme/lab.rs`: a signed Knot
//! parent holding the `_acme-challenge.api` CNAME into the zone, a Knot
//! secondary, a validating unbound that pebble asks). zonewarden starts
//! before pebble, so its first order fails and is retried; then the
//! certificate pebble issues is served over HTTP/2 and HTTP/1.1, and
//! replaced by the renewal without a restart. Needs root, as
//! `tests/acme.rs`.

mod common;
#[allow(dead_code)]
#[path = "acme/lab.rs"]
mod lab;

use std::process::Command;
use std::time::{Duration, Instant};

use lab::{HTTPS_NAME, Lab, Setup};

/// `curl` over HTTPS to the primary's port 8443 as `HTTPS_NAME`, trusting
/// `root`: (success, HTTP version, body).
fn curl(lab: &Lab, root: &std::path::Path, http: &str, path: &str) -> (bool, String, String) {
    common::curl_https(HTTPS_NAME, &lab.primary, 8443, root, http, &[], path)
}

/// The serial of the certificate served on the primary's port 8443.
fn served_serial(lab: &Lab) -> Option<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {}:8443 -servername {HTTPS_NAME} </dev/null 2>/dev/null \
             | openssl x509 -noout -serial",
            lab.primary
        ))
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    s.starts_with("serial=").then_some(s)
}

#[tokio::test]
async fn own_certificate_from_pebble_by_dns01_served_and_renewed_without_restart() {
    let lab = Lab::start(Setup {
        cnames: vec!["api"],
        https_acme: true,
        ..Setup::default()
    })
    .await;
    // The root pebble issues under (it makes a new one each start).
    let root = lab.dir.join("pebble-root.pem");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(&lab.acme_ca)
        .arg("-o")
        .arg(&root)
        .arg(format!("https://127.0.0.1:{}/roots/0", lab.acme_mgmt_port))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The first order failed (pebble was not up); the retry succeeds.
    let deadline = Instant::now() + Duration::from_secs(120);
    let first = loop {
        let (ok, version, body) = curl(&lab, &root, "--http2", "/health");
        if ok {
            assert_eq!(version, "2", "{body}");
            break served_serial(&lab).expect("a certificate is served");
        }
        assert!(
            Instant::now() < deadline,
            "no HTTPS with pebble's certificate within 120 s: {body}\n{}",
            lab.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (ok, version, body) = curl(&lab, &root, "--http1.1", "/health");
    assert!(ok && version == "1.1", "{version} {body}");
    // Not trusted without pebble's root: the certificate is pebble's, not
    // something self-made.
    let (ok, _, _) = curl(&lab, &lab.acme_ca, "--http2", "/health");
    assert!(!ok, "the lab CA must not verify the served certificate");

    // Stored, key private; the challenge went through the zone writer as
    // the internal machine.
    let key = lab.dir.join("data/https-acme/key.pem");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "key.pem mode {mode:o}");
    assert!(lab.dir.join("data/https-acme/cert.pem").exists());
    let db = rusqlite::Connection::open_with_flags(
        lab.dir.join("data/zonewarden.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let audited: Vec<String> = db
        .prepare("SELECT detail FROM audit WHERE key = 'zonewarden-https.internal.'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        audited
            .iter()
            .any(|d| d.starts_with("add _acme-challenge.api._acme.example.test")),
        "the challenge went through the zone writer as the internal machine: {audited:?}"
    );
    assert!(
        audited
            .iter()
            .any(|d| d.starts_with("del _acme-challenge.api._acme.example.test")),
        "the challenge is removed after the order: {audited:?}"
    );
    let log = std::fs::read_to_string(lab.dir.join("zonewarden.log")).unwrap();
    assert!(
        log.contains("HTTPS certificate order failed"),
        "the first order (before pebble was up) failed and was retried:\n{log}"
    );

    // renew-before exceeds the lifetime: the next check renews, and the
    // listener serves the new certificate without a restart.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(now) = served_serial(&lab)
            && now != first
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the certificate was not renewed within 120 s\n{}",
            lab.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (ok, version, body) = curl(&lab, &root, "--http2", "/health");
    assert!(ok && version == "2", "after renewal: {version} {body}");
}

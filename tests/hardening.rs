//! Hardening (issue 11, defects 5-10): what a hostile or unlucky world does
//! to the server and its files, pinned down one behaviour per test: a
//! captured UPDATE replayed after a restart, key names defined twice, ACL
//! files caught mid-write, zone files the server could not serve, clock
//! steps, and the HTTP API's answers to oversized bodies and port 0.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use zonewarden::client::api;
use zonewarden::http::tlsa_api::PATH;

/// A self-signed ECDSA certificate made by openssl, valid `days` days.
fn cert(dir: &Path, name: &str, days: u32) -> PathBuf {
    require("openssl", "openssl");
    let (key, crt) = (
        dir.join(format!("{name}.key.pem")),
        dir.join(format!("{name}.pem")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            &days.to_string(),
        ])
        .args(["-subj", &format!("/CN={name}.example.org")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crt
}

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

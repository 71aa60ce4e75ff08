//! HTTPS on the HTTP API (issue 14, item 4) with certificate files: curl
//! over HTTP/2 and HTTP/1.1, the acme-dns API over HTTPS, a new pair
//! picked up without a restart, a bad pair never replacing the one in
//! force, a bad pair at start refused with the file named, and a stored
//! ACME certificate served at once after a restart (no order needed).
//! The whole ACME issuance against pebble is in `https_acme.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Harness, curl_https, require};
use zonewarden::config::{CertSource, Https, HttpsAcme};

/// A self-signed P-256 certificate for `localhost` (and 127.0.0.1), made
/// by openssl: (cert, key) under `dir` named `tag`.
fn pair(dir: &Path, tag: &str, name: &str) -> (PathBuf, PathBuf) {
    require("openssl", "openssl");
    std::fs::create_dir_all(dir).unwrap();
    let (crt, key) = (
        dir.join(format!("{tag}.pem")),
        dir.join(format!("{tag}.key")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", &format!("/CN={name}")])
        .args([
            "-addext",
            &format!("subjectAltName=DNS:{name},IP:127.0.0.1"),
        ])
        // A leaf, as a CA issues it (rustls's client refuses a CA
        // certificate as the server's).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
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
    (crt, key)
}

/// curl `https://localhost:<port><path>` trusting `ca`: (ok, version, body).
fn curl(port: u16, ca: &Path, http: &str, extra: &[&str], path: &str) -> (bool, String, String) {
    curl_https("localhost", "127.0.0.1", port, ca, http, extra, path)
}

fn https_files(cert: &Path, key: &Path) -> Option<Https> {
    Some(Https {
        addr: "127.0.0.1:0".parse().unwrap(),
        cert: CertSource::Files {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        },
    })
}

/// Replace `to` by `from` with a rename, as certbot's deploy hooks and
/// `install` do.
fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

fn metric(h: &Harness, name: &str) -> Option<f64> {
    let text = zonewarden::http::api::render_metrics(h.server().http.as_ref().unwrap()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_files_http2_http1_reload_and_bad_pairs_kept_out() {
    let mut files = None;
    let h = Harness::start_with(|c| {
        let dir = c.data_dir.join("tls");
        let (a, a_key) = pair(&dir, "a", "localhost");
        c.https = https_files(&dir.join("cert.pem"), &dir.join("key.pem"));
        std::fs::copy(&a, dir.join("cert.pem")).unwrap();
        std::fs::copy(&a_key, dir.join("key.pem")).unwrap();
        files = Some((dir, a));
    })
    .await;
    let (dir, a) = files.unwrap();
    let port = h.server().https_addr().expect("https listener").port();

    // Both protocols, by ALPN.
    let (ok, v, body) = curl(port, &a, "--http2", &[], "/health");
    assert!(ok && v == "2", "{v} {body}");
    let (ok, v, body) = curl(port, &a, "--http1.1", &[], "/api/v1/zones");
    assert!(ok && v == "1.1", "{v} {body}");
    assert!(body.contains("_acme.example.org"), "{body}");
    // The status page shows the certificate in force.
    let (ok, _, page) = curl(port, &a, "--http2", &[], "/");
    assert!(ok, "{page}");
    let https_box = page
        .split("id=\"https\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no HTTPS box on the status page: {page}"));
    assert!(
        https_box.contains("localhost") && https_box.contains("the certificate files"),
        "{https_box}"
    );
    // The acme-dns API over HTTPS: its own answer for a wrong user.
    let (ok, _, body) = curl(
        port,
        &a,
        "--http2",
        &[
            "-X",
            "POST",
            "-H",
            "X-Api-User: 0f6e5a3c-0000-4000-8000-000000000000",
            "-H",
            "X-Api-Key: wrong",
            "-d",
            "{}",
        ],
        "/update",
    );
    assert!(ok && body.contains("forbidden"), "{body}");
    // A client that does not trust the certificate is refused.
    let (other, _) = pair(&dir, "other", "localhost");
    assert!(!curl(port, &other, "--http2", &[], "/health").0);

    // A new pair, installed by renames: served without a restart.
    let (b, b_key) = pair(&dir, "b", "localhost");
    install(&b_key, &dir.join("key.pem"));
    install(&b, &dir.join("cert.pem"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !curl(port, &b, "--http2", &[], "/health").0 {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!curl(port, &a, "--http2", &[], "/health").0);
    assert_eq!(
        metric(&h, "zonewarden_https_certificate_failing"),
        Some(0.0)
    );
    let left = metric(&h, "zonewarden_https_certificate_expiry_seconds").unwrap();
    assert!(
        left > 29.0 * 86_400.0 && left <= 30.0 * 86_400.0 + 60.0,
        "{left}"
    );

    // A certificate whose key is not beside it: logged, counted, and the
    // one in force stays.
    let (c, _) = pair(&dir, "c", "localhost");
    install(&c, &dir.join("cert.pem"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&h, "zonewarden_https_certificate_failing") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the mismatched pair was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (ok, _, body) = curl(port, &b, "--http2", &[], "/health");
    assert!(ok, "the pair in force must stay: {body}");
    // Garbage in the key file: the same.
    std::fs::write(dir.join("key.pem"), "not a key\n").unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(curl(port, &b, "--http2", &[], "/health").0);

    // Fixed: the matching key follows, and that pair is served.
    let (_, c_key) = (c.clone(), dir.join("c.key"));
    install(&c_key, &dir.join("key.pem"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !curl(port, &c, "--http2", &[], "/health").0 {
        assert!(
            Instant::now() < deadline,
            "the mended pair was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        metric(&h, "zonewarden_https_certificate_failing"),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pair_at_start_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Harness::layout(dir.path());
    let (a, _) = pair(&dir.path().join("tls"), "a", "localhost");
    let (_, b_key) = pair(&dir.path().join("tls"), "b", "localhost");
    config.https = https_files(&a, &b_key);
    let clock = std::sync::Arc::new(zonewarden::ManualClock::starting_now());
    let err = zonewarden::start(config.clone(), clock.clone())
        .await
        .err()
        .expect("a key that is not the certificate's is refused")
        .to_string();
    assert!(
        err.contains("b.key") && err.contains("is not the private key"),
        "{err}"
    );
    config.https = https_files(&dir.path().join("missing.pem"), &b_key);
    let err = zonewarden::start(config, clock)
        .await
        .err()
        .expect("a missing file is refused")
        .to_string();
    assert!(
        err.contains("missing.pem") && err.contains("cannot read"),
        "{err}"
    );
}

fn acme_at(directory: &str) -> Option<Https> {
    Some(Https {
        addr: "127.0.0.1:0".parse().unwrap(),
        cert: CertSource::Acme(HttpsAcme {
            directory: directory.into(),
            names: vec![hickory_proto::rr::Name::from_ascii("api._acme.example.org.").unwrap()],
            contact: vec![],
            ca_root: None,
            renew_before: None,
            check_interval: Duration::from_secs(3600),
            propagation_timeout: Duration::from_secs(5),
        }),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_acme_certificate_is_served_at_start_only_from_the_same_directory() {
    // Nothing listens at either directory: an order would fail.
    const STAGING: &str = "https://127.0.0.1:1/staging/dir";
    const PRODUCTION: &str = "https://127.0.0.1:1/dir";
    let mut ca = None;
    let mut h = Harness::start_with(|c| {
        let dir = c.data_dir.join("https-acme");
        let (crt, key) = pair(&dir, "made", "api._acme.example.org");
        std::fs::rename(&crt, dir.join("cert.pem")).unwrap();
        std::fs::rename(&key, dir.join("key.pem")).unwrap();
        std::fs::write(dir.join("cert.directory"), STAGING).unwrap();
        ca = Some(dir.join("cert.pem"));
        c.https = acme_at(STAGING);
    })
    .await;
    let ca = ca.unwrap();
    let get = |h: &Harness| {
        let port = h.server().https_addr().unwrap().port();
        curl_https(
            "api._acme.example.org",
            "127.0.0.1",
            port,
            &ca,
            "--http2",
            &[],
            "/health",
        )
    };
    let (ok, v, body) = get(&h);
    assert!(ok && v == "2", "{v} {body}");
    // Not due: no order was tried (it would fail, and say so).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        metric(&h, "zonewarden_https_certificate_failing"),
        Some(0.0)
    );

    // Another directory (staging to production): the stored certificate
    // is not served; the order for a new one fails here, and says so.
    h.config.https = acme_at(PRODUCTION);
    h.restart().await;
    let (ok, _, body) = get(&h);
    assert!(
        !ok,
        "a certificate from another directory was served: {body}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&h, "zonewarden_https_certificate_failing") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the failed order was not reported"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An HTTP/2 client that sets its stream window to 0 and never reads the
/// answer: the server's answer stalls. Once no request has started for
/// `http-header-timeout` (1 s here) the server sends GOAWAY and, as the
/// stalled stream cannot finish, drops the connection a second later: a
/// client cannot hold a connection slot this way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_stalling_its_own_answer_loses_the_connection() {
    use rustls::pki_types::pem::PemObject;
    let mut ca = None;
    let h = Harness::start_with(|c| {
        let dir = c.data_dir.join("tls");
        let (a, key) = pair(&dir, "a", "localhost");
        c.https = https_files(&a, &key);
        c.connections.http_header_timeout = Duration::from_secs(1);
        ca = Some(a);
    })
    .await;
    let port = h.server().https_addr().unwrap().port();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca.unwrap()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_stream_window_size(0)
            .handshake::<_, String>(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(format!("https://localhost:{port}/api/v1/zones"))
        .body(String::new())
        .unwrap();
    // The head arrives; the body cannot (window 0), and is never read.
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(15), conn).await;
    assert!(
        ended.is_ok(),
        "the server kept the stalled HTTP/2 connection for 15 s"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    drop(resp);
}

#[test]
fn https_config_errors_are_clear() {
    let parse = |text: &str| {
        zonewarden::Config::parse(Path::new("/etc/zw.toml"), text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(parse("https = \"127.0.0.1:8443\"\n").contains("https needs a certificate"));
    assert!(
        parse("https-cert = \"a.pem\"\nhttps-key = \"a.key\"\n").contains("need an https listener")
    );
    assert!(parse("https = \"127.0.0.1:8443\"\nhttps-cert = \"a.pem\"\n").contains("go together"));
    assert!(
        parse("https = \"nowhere\"\nhttps-cert = \"a\"\nhttps-key = \"b\"\n")
            .contains("not ADDR:PORT")
    );
    assert!(
        parse("https = \"127.0.0.1:8443\"\n[https-acme]\ndirectory = \"http://ca/dir\"\nnames = [\"a.example\"]\n")
            .contains("https:// URL")
    );
    assert!(
        parse("https = \"127.0.0.1:8443\"\n[https-acme]\ndirectory = \"letsencrypt\"\nnames = [\"*.example\"]\n")
            .contains("no wildcards")
    );
    let ok = zonewarden::Config::parse(
        Path::new("/etc/zw.toml"),
        "https = \"127.0.0.1:8443\"\nhttps-cert = \"tls/a.pem\"\nhttps-key = \"tls/a.key\"\n",
    )
    .unwrap();
    assert_eq!(
        ok.https.unwrap().cert,
        CertSource::Files {
            cert: "/etc/tls/a.pem".into(),
            key: "/etc/tls/a.key".into()
        }
    );
}

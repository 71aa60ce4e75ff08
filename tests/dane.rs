//! DANE as the world checks it: `zonewarden dane publish` (the real binary)
//! puts TLSA records into the zone; a real TLS server (`openssl s_server`)
//! presents the certificate; names resolve through a validating unbound
//! that trusts the zone (trust anchor = our DS); and `ldns-dane verify`,
//! `danetool --check` and `openssl s_client -dane_tlsa_rrdata` must accept
//! the published certificate and reject another. Rollover, reused keys, a
//! failing `--then`, a lagging nameserver and the ACL are checked the same
//! way. `scripts/test` installs openssl, ldnsutils, gnutls-bin and unbound.
//!
//! The server under test listens on port 53 of a spare loopback address
//! and the zone's glue points there, so `dane publish` finds the
//! nameservers from NS + glue as it does in production.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::unbound::*;
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use zonewarden::client::publish::{self, PublishError, Request, Sleeper};
use zonewarden::dane::{Chain, TlsaParams};

const HOST: &str = "mx1._acme.example.org";

/// A server on `<spare loopback>:53` whose zone has TTL minimum 1 (so
/// `--ttl 1` holds 2 s) and glue pointing at it, plus `mx1 A 127.0.0.1`
/// (where the TLS servers listen) added by the admin key.
async fn start() -> Harness {
    start_with_zone(|z| z).await
}

/// [`start`], with the zone file text edited first.
async fn start_with_zone(edit: impl FnOnce(String) -> String) -> Harness {
    let ip = free_loopback_53();
    let zone = edit(ZONE_FILE.replace("min = 10", "min = 1").replace(
        "\"ns1\" = [\"127.0.0.1\"]",
        &format!("\"ns1\" = [\"{ip}\"]"),
    ));
    let h = Harness::start_with(move |c| {
        c.listen = vec![format!("{ip}:53").parse().unwrap()];
        write(&c.zones_dir.join("acme.toml"), &zone);
    })
    .await;
    let rc = h
        .update_rcode(
            "ops",
            update_msg(
                ZONE,
                vec![],
                vec![add(&zname("mx1"), 60, RecordType::A, "127.0.0.1")],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    h
}

/// Keys and self-signed certificates made by openssl: `a` (ECDSA P-256),
/// `b` (RSA 2048), `c` (ECDSA, never published), and `a2`: a renewal of
/// `a` with the same key (certbot --reuse-key).
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Self {
        require("openssl", "openssl");
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "set -e
            ec() {{ openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout $1.key -out $1.pem -subj /CN={HOST} -days 30 2>/dev/null; }}
            ec a; ec c
            openssl req -x509 -newkey rsa:2048 -nodes -keyout b.key -out b.pem \
              -subj /CN={HOST} -days 30 2>/dev/null
            openssl req -x509 -new -key a.key -out a2.pem -subj /CN={HOST} -days 60 \
              -set_serial 99 2>/dev/null
            openssl req -x509 -new -key c.key -out c1.pem -subj /CN={HOST} -days 1 2>/dev/null
            openssl x509 -in c1.pem -signkey c.key -days -1 -out expired.pem 2>/dev/null
            openssl pkey -in c.key -pubout -out c.pub
            : > empty.pem"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        Self { dir }
    }

    fn pem(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pem"))
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key"))
    }

    /// "3 1 1 <hex>" of a certificate.
    fn tlsa(&self, name: &str) -> String {
        let chain = Chain::read(&self.pem(name)).unwrap();
        zonewarden::dane::tlsa(&chain, TlsaParams::default(), now())
            .unwrap()
            .to_string()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A free TCP port on 127.0.0.1 that /etc/services does not name (danetool
/// would otherwise speak that service's STARTTLS).
fn tls_port() -> u16 {
    let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
    loop {
        let port = free_port();
        if !services.contains(&format!("\t{port}/tcp"))
            && !services.contains(&format!(" {port}/tcp"))
        {
            return port;
        }
    }
}

/// `openssl s_server` presenting a certificate; killed on drop.
struct TlsServer {
    child: std::process::Child,
}

impl TlsServer {
    async fn start(certs: &Certs, name: &str, port: u16) -> Self {
        let child = std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(certs.pem(name))
            .arg("-key")
            .arg(certs.key(name))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        let mut s = Self { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return s;
            }
            assert!(
                s.child.try_wait().unwrap().is_none(),
                "openssl s_server on port {port} exited"
            );
            assert!(Instant::now() < deadline, "s_server did not listen in 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `cmd` (no stdin, output captured, killed if dropped) within `secs`.
async fn run_bounded(mut cmd: tokio::process::Command, secs: u64, what: &str) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The real binary, bounded in time.
async fn zonewarden(args: &[String]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_zonewarden"));
    cmd.args(args);
    run_bounded(cmd, 90, "zonewarden").await
}

/// `dane publish` with mx1's names and `--ttl 1`; `extra` appended.
async fn publish_cli(
    h: &Harness,
    machine: &str,
    cert: &Path,
    ports: &[u16],
    extra: &[&str],
) -> Run {
    publish_host(h, machine, "mx1", cert, ports, extra).await
}

/// `dane publish --host HOST --ttl 1` (and `--timeout 20` unless `extra`
/// has one).
async fn publish_host(
    h: &Harness,
    machine: &str,
    host: &str,
    cert: &Path,
    ports: &[u16],
    extra: &[&str],
) -> Run {
    let mut args: Vec<String> = vec![
        "dane".into(),
        "publish".into(),
        "--cert".into(),
        cert.display().to_string(),
        "--server".into(),
        h.addr.to_string(),
        "--key".into(),
        h.path(&format!("data/keys/{machine}.key"))
            .display()
            .to_string(),
        "--zone".into(),
        ZONE.into(),
        "--host".into(),
        host.into(),
        "--ttl".into(),
        "1".into(),
    ];
    if !extra.contains(&"--timeout") {
        args.extend(["--timeout".into(), "20".into()]);
    }
    for p in ports {
        args.push("--port".into());
        args.push(p.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    zonewarden(&args).await
}

fn owner(port: u16) -> String {
    format!("_{port}._tcp.{HOST}.")
}

/// The TLSA rdata served by the primary at `_port._tcp.mx1`, sorted.
async fn served(h: &Harness, port: u16) -> Vec<String> {
    let m = h.query(&owner(port), RecordType::TLSA).await;
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The TLSA rdata as a validating resolver returns it (must be AD).
async fn via_unbound(u: &Unbound, port: u16) -> String {
    let text = u.validated(&owner(port), "TLSA", "NOERROR").await;
    let line = text
        .lines()
        .find(|l| l.contains("\tTLSA\t") && !l.starts_with(';'))
        .unwrap_or_else(|| panic!("no TLSA in\n{text}"));
    // dig splits long hex into words: "3 1 1 ABCD EF01"
    let rdata: Vec<&str> = line
        .split("\tTLSA\t")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    format!(
        "{} {} {} {}",
        rdata[0],
        rdata[1],
        rdata[2],
        rdata[3..].concat().to_lowercase()
    )
}

/// The three real DANE checkers against the TLS server on `port`:
/// (ldns-dane, danetool, openssl s_client) each (accepted, output).
async fn checkers(u: &Unbound, anchor: &str, port: u16) -> [(bool, String); 3] {
    require("ldns-dane", "ldnsutils");
    require("danetool", "gnutls-bin");
    let ldns = run(
        "ldns-dane",
        &[
            "-n".into(),
            "-r".into(),
            u.ip.clone(),
            "verify".into(),
            HOST.into(),
            port.to_string(),
        ],
    )
    .await;
    let ldns = (
        ldns.0 && ldns.1.contains("dane-validated successfully"),
        ldns.1,
    );
    let dane = danetool_check(u, anchor, port).await;
    let rrdata = via_unbound(u, port).await;
    let ssl = run(
        "openssl",
        &[
            "s_client".into(),
            "-brief".into(),
            "-connect".into(),
            format!("127.0.0.1:{port}"),
            "-dane_tlsa_domain".into(),
            HOST.into(),
            "-dane_tlsa_rrdata".into(),
            rrdata,
            "-verify_return_error".into(),
        ],
    )
    .await;
    let ssl = (ssl.0 && ssl.1.contains("Verification: OK"), ssl.1);
    [ldns, dane, ssl]
}

/// danetool resolves through libunbound, which reads /etc/resolv.conf (a
/// nameserver on port 53: our unbound's spare loopback address) and takes
/// its trust anchor from /usr/share/dns/root.key. Both are replaced, for
/// danetool alone, by bind mounts in a private mount namespace; nothing on
/// the machine changes.
async fn danetool_check(u: &Unbound, anchor: &str, port: u16) -> (bool, String) {
    require("unshare", "util-linux");
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    let ta = dir.path().join("anchor.key");
    std::fs::write(&resolv, format!("nameserver {}\n", u.ip)).unwrap();
    std::fs::write(&ta, format!("{anchor}\n")).unwrap();
    let script = format!(
        "set -e
        mount --bind {resolv} /etc/resolv.conf
        mount --bind {ta} /usr/share/dns/root.key
        cd {dir}
        exec danetool --check {HOST} --port {port} --proto tcp --local-dns",
        resolv = resolv.display(),
        ta = ta.display(),
        dir = dir.path().display(),
    );
    let (ok, text) = run(
        "unshare",
        &["--mount".into(), "sh".into(), "-c".into(), script],
    )
    .await;
    (
        ok && text.contains("Verification: Certificate matches"),
        text,
    )
}

fn assert_all(results: &[(bool, String); 3], accepted: bool, what: &str) {
    for (tool, (ok, text)) in ["ldns-dane verify", "danetool --check", "openssl s_client"]
        .iter()
        .zip(results)
    {
        assert_eq!(
            *ok,
            accepted,
            "{tool} {} {what}:\n{text}",
            if accepted {
                "must accept"
            } else {
                "must reject"
            }
        );
    }
}

async fn anchor_and_unbound(h: &Harness) -> (String, Unbound) {
    let anchor = ds_line(&zone_key(h));
    let u = Unbound::start_on_53(h.addr, &anchor).await;
    (anchor, u)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_tlsa_is_accepted_by_ldns_dane_danetool_and_openssl_and_another_key_is_not() {
    let h = start().await;
    let certs = Certs::make();
    let port = tls_port();
    let r = publish_cli(&h, "mx1", &certs.pem("a"), &[port], &["--then", "true"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(served(&h, port).await, vec![certs.tlsa("a")]);

    let (anchor, u) = anchor_and_unbound(&h).await;
    assert_eq!(via_unbound(&u, port).await, certs.tlsa("a"));
    {
        let _tls = TlsServer::start(&certs, "a", port).await;
        assert_all(
            &checkers(&u, &anchor, port).await,
            true,
            "the published key",
        );
        // danetool validates DNSSEC itself: with another key as its trust
        // anchor the same records are bogus and it refuses them.
        let other = tempfile::tempdir().unwrap();
        let (stranger, _) = zonewarden::dnssec::ZoneKey::load_or_create(
            other.path(),
            &name(ZONE),
            zonewarden::dnssec::KeyAlgorithm::EcdsaP256Sha256,
        )
        .unwrap();
        let (ok, text) = danetool_check(&u, &ds_line(&stranger), port).await;
        assert!(
            !ok && text.contains("DNSSEC signature is invalid"),
            "danetool must not trust an unvalidated TLSA:\n{text}"
        );
    }
    {
        let _tls = TlsServer::start(&certs, "c", port).await;
        assert_all(
            &checkers(&u, &anchor, port).await,
            false,
            "an unpublished key",
        );
    }
}

/// Hex digits of every TLSA in dig output, lowercased and joined (dig
/// splits long hex into words and prints it in capitals).
fn hex_in(text: &str) -> String {
    text.to_lowercase().split_whitespace().collect::<String>()
}

fn hash_of(tlsa: &str) -> String {
    tlsa.split_whitespace().nth(3).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_change_keeps_both_records_while_then_runs_and_removes_the_old_one_after() {
    require("dig", "bind9-dnsutils");
    let h = start().await;
    let certs = Certs::make();
    let (p1, p2) = (tls_port(), tls_port());
    let r = publish_cli(&h, "mx1", &certs.pem("a"), &[p1, p2], &["--then", "true"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (anchor, u) = anchor_and_unbound(&h).await;
    assert_eq!(via_unbound(&u, p1).await, certs.tlsa("a"));
    let serial = h.serial(ZONE).await;

    // --then looks at DNS while the service would switch: the primary
    // directly, and the validating resolver.
    let marker = h.path("during.txt");
    let then = format!(
        "set -e; for o in {o1} {o2}; do dig @{ip} -p {port} +short $o TLSA >> {m}; done; \
         dig @{uip} +dnssec {o1} TLSA >> {m}",
        o1 = owner(p1),
        o2 = owner(p2),
        ip = h.addr.ip(),
        port = h.addr.port(),
        uip = u.ip,
        m = marker.display()
    );
    let started = Instant::now();
    let r = publish_cli(&h, "mx1", &certs.pem("b"), &[p1, p2], &["--then", &then]).await;
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let during = std::fs::read_to_string(&marker).expect("--then ran");
    let (old, new) = (hash_of(&certs.tlsa("a")), hash_of(&certs.tlsa("b")));
    assert_eq!(
        hex_in(&during).matches(&old).count(),
        3,
        "the old record at both ports and via unbound while --then ran:\n{during}"
    );
    assert_eq!(hex_in(&during).matches(&new).count(), 3, "{during}");
    assert!(
        during.contains(" ad;") || during.contains(" ad "),
        "unbound validated it: {during}"
    );
    assert!(
        took >= Duration::from_secs(2),
        "held 2 x TTL 1 s before --then: {took:?}\n{}",
        r.stdout
    );
    assert!(r.stdout.contains("holding 2 s"), "{}", r.stdout);
    // After: only the new record, at both ports; one UPDATE added, one removed.
    for p in [p1, p2] {
        assert_eq!(served(&h, p).await, vec![certs.tlsa("b")], "port {p}");
        assert!(
            r.stdout
                .contains(&format!("removed {} TLSA {}", owner(p), certs.tlsa("a"))),
            "{}",
            r.stdout
        );
    }
    assert_eq!(h.serial(ZONE).await, serial.wrapping_add(2), "two UPDATEs");

    // The real checkers, once unbound's copy (TTL 1) has expired: unbound
    // counts whole seconds and still answers with TTL 0 in the second the
    // copy expires, so a TTL of 1 can last up to 2 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let d = u.dig(&owner(p1), "TLSA").await;
    assert!(
        hex_in(&d.text).contains(&new) && !hex_in(&d.text).contains(&old),
        "A={} B={}\n{}\n{}",
        certs.tlsa("a"),
        certs.tlsa("b"),
        d.text,
        u.log()
    );
    assert_eq!(via_unbound(&u, p1).await, certs.tlsa("b"));
    {
        let _tls = TlsServer::start(&certs, "b", p1).await;
        assert_all(&checkers(&u, &anchor, p1).await, true, "the new key");
    }
    {
        let _tls = TlsServer::start(&certs, "a", p1).await;
        assert_all(&checkers(&u, &anchor, p1).await, false, "the retired key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_with_the_same_key_changes_nothing_and_the_serial_stays() {
    let h = start().await;
    let certs = Certs::make();
    let port = tls_port();
    let r = publish_cli(&h, "mx1", &certs.pem("a"), &[port], &["--then", "true"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // a2 is another certificate for the same key (certbot --reuse-key)
    assert_ne!(
        std::fs::read(certs.pem("a")).unwrap(),
        std::fs::read(certs.pem("a2")).unwrap()
    );
    assert_eq!(certs.tlsa("a2"), certs.tlsa("a"));
    let serial = h.serial(ZONE).await;
    let marker = h.path("reloaded");
    let then = format!("touch {}", marker.display());
    let started = Instant::now();
    let r = publish_cli(&h, "mx1", &certs.pem("a2"), &[port], &["--then", &then]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("nothing to change in DNS"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("holding"), "no hold: {}", r.stdout);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(marker.exists(), "--then still runs (the service reloads)");
    assert_eq!(h.serial(ZONE).await, serial, "the zone did not change");
    assert_eq!(served(&h, port).await, vec![certs.tlsa("a")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_cannot_publish_tlsa_outside_its_acl() {
    let h = start().await;
    let certs = Certs::make();
    let serial = h.serial(ZONE).await;
    // www1's ACL grants no TLSA at all
    let r = publish_host(&h, "www1", "www1", &certs.pem("a"), &[25], &[]).await;
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("REFUSED") && r.stderr.contains("may not change these names"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Nothing was changed"), "{}", r.stderr);
    // mx1 may publish TLSA, but only at its own names
    let r = publish_host(&h, "mx1", "www1", &certs.pem("a"), &[25], &[]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    // a name outside the zone is refused before anything is sent
    let r = publish_host(&h, "mx1", "mx1.example.net.", &certs.pem("a"), &[25], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not inside the zone"), "{}", r.stderr);
    assert_eq!(h.serial(ZONE).await, serial);
    let m = h
        .query(&format!("_25._tcp.www1.{ZONE}"), RecordType::TLSA)
        .await;
    assert!(m.answers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_then_keeps_both_records_and_a_rerun_finishes_the_rollover() {
    let h = start().await;
    let certs = Certs::make();
    let port = tls_port();
    let r = publish_cli(&h, "mx1", &certs.pem("a"), &[port], &["--then", "true"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = publish_cli(&h, "mx1", &certs.pem("b"), &[port], &["--then", "exit 7"]).await;
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("exited with status 7") && r.stderr.contains("both stay"),
        "{}",
        r.stderr
    );
    let both = sorted(vec![certs.tlsa("a"), certs.tlsa("b")]);
    assert_eq!(served(&h, port).await, both);
    // Re-running picks up from what DNS shows: the new record is there, the
    // old one is stale: hold, --then, remove.
    let r = publish_cli(&h, "mx1", &certs.pem("b"), &[port], &["--then", "true"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("holding"), "{}", r.stdout);
    assert_eq!(served(&h, port).await, vec![certs.tlsa("b")]);
    // Without --then the old record is never removed.
    let r = publish_cli(&h, "mx1", &certs.pem("a"), &[port], &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("no --then"), "{}", r.stdout);
    assert_eq!(served(&h, port).await, both);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_nameserver_stops_the_rollover_before_then() {
    let h = start().await;
    let certs = Certs::make();
    let port = tls_port();
    let r = publish_cli(&h, "mx1", &certs.pem("a"), &[port], &["--then", "true"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dead = format!("127.0.0.1:{}", free_port());
    let marker = h.path("switched");
    let then = format!("touch {}", marker.display());
    let r = publish_cli(
        &h,
        "mx1",
        &certs.pem("b"),
        &[port],
        &["--nameserver", &dead, "--timeout", "2", "--then", &then],
    )
    .await;
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&dead), "names the laggard: {}", r.stderr);
    assert!(r.stderr.contains("--then was NOT run"), "{}", r.stderr);
    assert!(!marker.exists());
    assert_eq!(
        served(&h, port).await,
        sorted(vec![certs.tlsa("a"), certs.tlsa("b")]),
        "old and new both published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_and_changes_nothing() {
    let h = start().await;
    let certs = Certs::make();
    let serial = h.serial(ZONE).await;
    let r = publish_cli(&h, "mx1", &certs.pem("expired"), &[25], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("expired on 20"),
        "with the date: {}",
        r.stderr
    );
    let r = publish_cli(&h, "mx1", &certs.pem("empty"), &[25], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("the file is empty"), "{}", r.stderr);
    let r = publish_cli(&h, "mx1", &certs.key("a"), &[25], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a certificate"), "{}", r.stderr);
    let r = publish_cli(&h, "nobody", &certs.pem("a"), &[25], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nobody.key"), "{}", r.stderr);
    assert_eq!(h.serial(ZONE).await, serial);
}

#[tokio::test]
async fn tlsa_prints_zone_file_lines_offline() {
    let certs = Certs::make();
    let want = certs.tlsa("b");
    let cert = certs.pem("b").display().to_string();
    let r = zonewarden(&[
        "tlsa".into(),
        "--cert".into(),
        cert.clone(),
        "--host".into(),
        "mx1".into(),
        "--port".into(),
        "25".into(),
        "--port".into(),
        "465".into(),
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let records: Vec<&str> = r.stdout.lines().filter(|l| !l.starts_with(';')).collect();
    assert_eq!(
        records,
        vec![
            format!("_25._tcp.mx1 300 IN TLSA {want}"),
            format!("_465._tcp.mx1 300 IN TLSA {want}")
        ]
    );
    let r = zonewarden(&[
        "tlsa".into(),
        "--cert".into(),
        cert.clone(),
        "--host".into(),
        "mx1.example.org.".into(),
        "--selector".into(),
        "0".into(),
        "--matching".into(),
        "2".into(),
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("\n_25._tcp.mx1.example.org. 300 IN TLSA 3 0 2 "),
        "{}",
        r.stdout
    );
    let r = zonewarden(&["tlsa".into(), "--cert".into(), cert]).await;
    assert_eq!(r.stdout.lines().last().unwrap(), want);
    let r = zonewarden(&[
        "tlsa".into(),
        "--cert".into(),
        certs.pem("expired").display().to_string(),
    ])
    .await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
}

/// Records every hold instead of sleeping through it.
#[derive(Default)]
struct RecordingSleeper(Mutex<Vec<Duration>>);

#[async_trait::async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, d: Duration) {
        self.0.lock().unwrap().push(d);
    }
}

fn request(h: &Harness, cert: &Path, ttl: u32) -> Request {
    Request {
        chain: Chain::read(cert).unwrap(),
        next: None,
        params: TlsaParams::default(),
        zone: name(ZONE),
        owners: vec![name(&owner(25))],
        ttl,
        server: h.addr,
        key: h.key("mx1"),
        nameservers: vec![],
        then: Some("true".into()),
        timeout: Duration::from_secs(20),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hold_is_two_ttls_of_what_resolvers_cached_and_every_ns_is_asked() {
    // A second nameserver in NS + glue that never answers.
    let silent = free_loopback_53();
    let h = start_with_zone(|z| {
        z.replace(
            "nameservers = [\"ns1._acme.example.org.\"]",
            "nameservers = [\"ns1._acme.example.org.\", \"ns2\"]",
        )
        .replace("[ttl]", &format!("\"ns2\" = [\"{silent}\"]\n[ttl]"))
    })
    .await;
    let certs = Certs::make();
    let clock = zonewarden::SystemClock;
    let sleeper = RecordingSleeper::default();
    let mut out = Vec::new();

    // No TLSA was cached before, only the absence of one, for the negative
    // TTL (1 s): hold 2 s.
    let mut req = request(&h, &certs.pem("a"), 300);
    req.nameservers = vec![h.addr];
    let done = publish::publish(&req, &clock, &sleeper, &mut out)
        .await
        .unwrap();
    assert_eq!(done.held, Some(Duration::from_secs(2)));
    assert_eq!(done.added.len(), 1);
    assert!(done.ran_then);
    // A key change: resolvers may hold the old RRset for its TTL (300 s):
    // hold 600 s (not slept here: the sleeper is injected).
    let mut req = request(&h, &certs.pem("b"), 300);
    req.nameservers = vec![h.addr];
    let done = publish::publish(&req, &clock, &sleeper, &mut out)
        .await
        .unwrap();
    assert_eq!(done.held, Some(Duration::from_secs(600)));
    assert_eq!(done.added.len(), 1);
    assert_eq!(done.removed.len(), 1);
    assert_eq!(done.removed[0].1.to_string(), certs.tlsa("a"));
    assert_eq!(
        *sleeper.0.lock().unwrap(),
        vec![Duration::from_secs(2), Duration::from_secs(600)]
    );
    // Nameservers found from NS + glue: ns2 never answers, so the run stops
    // before the hold and --then, naming it.
    let mut req = request(&h, &certs.pem("c"), 300);
    req.owners = vec![name(&owner(26))];
    req.timeout = Duration::from_secs(2);
    let e = publish::publish(&req, &clock, &sleeper, &mut out)
        .await
        .unwrap_err();
    assert!(matches!(e, PublishError::Propagation { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("ns2._acme.example.org. ({silent}:53)")),
        "{e}"
    );
    assert_eq!(e.exit_code(), 4);
    assert_eq!(sleeper.0.lock().unwrap().len(), 2, "no hold, no --then");
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("2 x TTL 300, RFC 7671 section 8.1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_removal_is_refused_when_the_rrset_changed_since_it_was_read() {
    use zonewarden::client::publish::plan_removal;
    use zonewarden::dane::chain_matches;
    let h = start().await;
    let certs = Certs::make();
    let o = name(&owner(25));
    for c in ["a", "b"] {
        let rc = h
            .update_rcode(
                "mx1",
                update_msg(
                    ZONE,
                    vec![],
                    vec![add(&o, 60, RecordType::TLSA, &certs.tlsa(c))],
                ),
            )
            .await;
        assert_eq!(rc, ResponseCode::NoError);
    }
    let b = Chain::read(&certs.pem("b")).unwrap();
    let wanted = zonewarden::dane::tlsa(&b, TlsaParams::default(), now()).unwrap();
    let set = zonewarden::dnsclient::rrset(h.addr, &o, RecordType::TLSA, Duration::from_secs(2))
        .await
        .unwrap();
    let keep = |t: &hickory_proto::rr::rdata::TLSA| chain_matches(&b, t);
    let plan = plan_removal(std::slice::from_ref(&o), &[set], &wanted, &keep)
        .unwrap()
        .expect("a is stale");
    assert_eq!(plan.removed.len(), 1);
    // Someone adds a record between our read and our UPDATE ...
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![],
                vec![add(&o, 60, RecordType::TLSA, &certs.tlsa("c"))],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    let serial = h.serial(ZONE).await;
    // ... so the prerequisite fails and nothing is removed.
    let rc = zonewarden::dnsclient::update(
        h.addr,
        &name(ZONE),
        plan.prerequisites,
        plan.deletes,
        &h.key("mx1"),
        h.clock_now(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(rc, ResponseCode::NXRRSet);
    assert_eq!(h.serial(ZONE).await, serial);
    assert_eq!(
        served(&h, 25).await,
        sorted(vec![certs.tlsa("a"), certs.tlsa("b"), certs.tlsa("c")])
    );
}

/// Run a deploy hook from scripts/hooks with the settings in the
/// environment, as certbot, lego or dehydrated would.
async fn hook(
    h: &Harness,
    script: &str,
    args: &[&str],
    env: &[(&str, String)],
    ports: &str,
) -> Run {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/hooks")
        .join(script);
    let mut cmd = tokio::process::Command::new(path);
    cmd.args(args)
        .env("ZW_CONF", h.path("no-such.conf"))
        .env("ZW_BIN", env!("CARGO_BIN_EXE_zonewarden"))
        .env("ZW_SERVER", h.addr.to_string())
        .env("ZW_KEY", h.path("data/keys/mx1.key"))
        .env("ZW_ZONE", ZONE)
        .env("ZW_HOST", "mx1")
        .env("ZW_PORTS", ports)
        .env("ZW_TTL", "1")
        .env("ZW_NAMESERVERS", h.addr.to_string())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    run_bounded(cmd, 60, "the hook").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certbot_lego_and_dehydrated_hooks_publish_and_roll_over() {
    let h = start().await;
    let certs = Certs::make();
    let (p1, p2, p3) = (tls_port(), tls_port(), tls_port());
    let then = |m: &str| ("ZW_THEN", format!("touch {}", h.path(m).display()));

    // certbot: RENEWED_LINEAGE/fullchain.pem, two ports
    let live = h.path("live/mx1");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::copy(certs.pem("a"), live.join("fullchain.pem")).unwrap();
    let ports = format!("{p1} {p2}");
    let env = [
        ("RENEWED_LINEAGE", live.display().to_string()),
        then("certbot"),
    ];
    let r = hook(&h, "certbot-dane-deploy", &[], &env, &ports).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(h.path("certbot").exists());
    for p in [p1, p2] {
        assert_eq!(served(&h, p).await, vec![certs.tlsa("a")]);
    }
    // the next renewal has a new key: rolled over on both ports
    std::fs::copy(certs.pem("b"), live.join("fullchain.pem")).unwrap();
    let r = hook(&h, "certbot-dane-deploy", &[], &env, &ports).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for p in [p1, p2] {
        assert_eq!(served(&h, p).await, vec![certs.tlsa("b")]);
    }

    // lego v4: LEGO_CERT_PATH; lego v5: LEGO_HOOK_CERT_PATH
    let env = [
        ("LEGO_CERT_PATH", certs.pem("b").display().to_string()),
        then("lego"),
    ];
    let r = hook(&h, "lego-dane-deploy", &[], &env, &p3.to_string()).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(h.path("lego").exists());
    assert_eq!(served(&h, p3).await, vec![certs.tlsa("b")]);
    let env = [("LEGO_HOOK_CERT_PATH", certs.pem("b").display().to_string())];
    let r = hook(&h, "lego-dane-deploy", &[], &env, &p3.to_string()).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("nothing to change"), "{}", r.stdout);

    // dehydrated: deploy_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE CHAINFILE TIMESTAMP
    let (key, cert) = (
        certs.key("a").display().to_string(),
        certs.pem("a").display().to_string(),
    );
    let serial = h.serial(ZONE).await;
    let r = hook(
        &h,
        "dehydrated-dane-deploy",
        &["deploy_challenge", "mx1.example.org", "token", "value"],
        &[],
        &p3.to_string(),
    )
    .await;
    assert_eq!(r.code, 0, "other hook calls are ignored: {}", r.stderr);
    assert_eq!(h.serial(ZONE).await, serial);
    let r = hook(
        &h,
        "dehydrated-dane-deploy",
        &[
            "deploy_cert",
            "mx1.example.org",
            &key,
            &cert,
            &cert,
            &cert,
            "1700000000",
        ],
        &[then("dehydrated")],
        &p3.to_string(),
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(h.path("dehydrated").exists());
    assert_eq!(served(&h, p3).await, vec![certs.tlsa("a")]);

    // a missing setting is an error, before anything is sent
    let env = [
        ("LEGO_CERT_PATH", certs.pem("b").display().to_string()),
        ("ZW_HOST", String::new()),
    ];
    let r = hook(&h, "lego-dane-deploy", &[], &env, "25").await;
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("ZW_HOST"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_published_next_key_stays_through_rollovers_until_it_is_current() {
    let h = start().await;
    let certs = Certs::make();
    let port = tls_port();
    let next = certs.dir.path().join("c.pub").display().to_string();
    let next_args = ["--next-key", next.as_str(), "--then", "true"];
    // current a + next c (a public key file)
    let r = publish_cli(&h, "mx1", &certs.pem("a"), &[port], &next_args).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        served(&h, port).await,
        sorted(vec![certs.tlsa("a"), certs.tlsa("c")])
    );
    // a key change to b keeps the next key and drops a
    let r = publish_cli(&h, "mx1", &certs.pem("b"), &[port], &next_args).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        served(&h, port).await,
        sorted(vec![certs.tlsa("b"), certs.tlsa("c")])
    );
    // the next key becomes current: its record was there all along; b goes
    let r = publish_cli(&h, "mx1", &certs.pem("c"), &[port], &["--then", "true"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("added"), "{}", r.stdout);
    assert_eq!(served(&h, port).await, vec![certs.tlsa("c")]);
}

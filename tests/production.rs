//! Running in production: the real binary's JSON logs (one line per update
//! and per refusal, with its fields), a SIGTERM that lets the UPDATEs in
//! flight commit and be answered and exits 0 with nothing lost, and the
//! systemd unit checked by `systemd-analyze verify`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The real binary, killed when dropped (a failing assertion must not leak it).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn spawn(cfg: &Path, log: &Path, extra: &[&str]) -> Self {
        Server(
            Command::new(env!("CARGO_BIN_EXE_zonewarden"))
                .args(["--config", cfg.to_str().unwrap()])
                .args(extra)
                .arg("serve")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).unwrap())
                .spawn()
                .unwrap(),
        )
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Wait for the exit status, at most `limit`.
    async fn exit_status(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "no exit within {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A TCP exchange that reports failure instead of panicking (the server
/// may be going away).
async fn try_tcp(addr: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(&(bytes.len() as u16).to_be_bytes())
            .await
            .ok()?;
        s.write_all(bytes).await.ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.ok()?;
        Message::from_vec(&buf).ok()
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .ok()
        .flatten()
}

/// The standard layout and a config on a free port; (dir, config, DNS address).
fn setup() -> (tempfile::TempDir, std::path::PathBuf, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let _ = Harness::layout(dir.path());
    let port = free_port();
    let cfg = dir.path().join("zonewarden.toml");
    write(
        &cfg,
        &format!("listen = [\"127.0.0.1:{port}\"]\nhttp = \"127.0.0.1:0\"\ndata-dir = \"data\"\n"),
    );
    (dir, cfg, format!("127.0.0.1:{port}").parse().unwrap())
}

fn mx1_key(dir: &Path) -> zonewarden::tsig::Key {
    zonewarden::tsig::read_key_file(&dir.join("data/keys/mx1.key"))
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn json_logs_have_one_line_per_update_and_per_refusal_with_their_fields() {
    let (dir, cfg, addr) = setup();
    let log = dir.path().join("server.log");
    let mut server = Server::spawn(&cfg, &log, &["--log-format", "json"]);
    wait_serving(addr).await;
    let key = mx1_key(dir.path());
    let owner = zname("_acme-challenge.mx1");
    let ok = sign(
        update_msg(
            ZONE,
            vec![],
            vec![add(&owner, 60, RecordType::TXT, "logged")],
        ),
        &key,
        now(),
    );
    let r = try_tcp(addr, &ok).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    let theirs = zname("_acme-challenge.www1");
    let bad = sign(
        update_msg(
            ZONE,
            vec![],
            vec![add(&theirs, 60, RecordType::TXT, "nope")],
        ),
        &key,
        now(),
    );
    let r = try_tcp(addr, &bad).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    server.signal("-TERM");
    assert!(server.exit_status(Duration::from_secs(20)).await.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "{text}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
    }
    let updates: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["message"] == "update").collect();
    assert_eq!(updates.len(), 2, "one line per update: {text}");
    let applied = updates[0];
    assert_eq!(applied["outcome"], "applied", "{applied}");
    assert_eq!(applied["level"], "INFO");
    assert_eq!(applied["key"], "mx1.");
    assert_eq!(applied["machine"], "mx1");
    assert_eq!(applied["owner"], owner.to_string());
    assert_eq!(applied["rtype"], "TXT");
    assert!(
        applied["source"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(applied["serial"].is_u64());
    assert!(applied["change"].as_str().unwrap().contains("logged"));
    let refused = updates[1];
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert_eq!(refused["level"], "WARN");
    assert_eq!(refused["reason"], "acl");
    assert_eq!(refused["rcode"], "REFUSED");
    assert_eq!(refused["owner"], theirs.to_string());
    assert_eq!(refused["rtype"], "TXT");
    assert!(refused["detail"].as_str().unwrap().contains("no grant"));
    assert!(lines.iter().any(|l| l["message"] == "stopped"), "{text}");
}

#[tokio::test]
async fn sigterm_answers_the_updates_in_flight_exits_zero_and_loses_nothing() {
    let (dir, cfg, addr) = setup();
    // Four writers on one key, back to back: past the per-key UPDATE rate
    // (issue 11), which is not what this test is about.
    let text = std::fs::read_to_string(&cfg).unwrap();
    write(&cfg, &format!("{text}update-rate-per-key = 0\n"));
    let log = dir.path().join("server.log");
    let mut server = Server::spawn(&cfg, &log, &[]);
    wait_serving(addr).await;
    let key = mx1_key(dir.path());
    // Four writers send UPDATEs back to back (each adds a distinct TXT and
    // deletes it again never: the set grows) until the server goes away.
    let owner = zname("_acme-challenge.mx1");
    let mut writers = Vec::new();
    for w in 0..4 {
        let key = key.clone();
        let owner = owner.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut refused = 0;
            for i in 0.. {
                let v = format!("w{w}-{i}");
                // A fresh RRset each time, so the max-rrset limit never bites.
                let msg = sign(
                    update_msg(
                        ZONE,
                        vec![],
                        vec![
                            del_rrset(&owner, RecordType::TXT),
                            add(&owner, 60, RecordType::TXT, &v),
                        ],
                    ),
                    &key,
                    now(),
                );
                match try_tcp(addr, &msg).await {
                    Some(r) if r.metadata.response_code == ResponseCode::NoError => acked.push(v),
                    Some(r) => {
                        assert_eq!(
                            r.metadata.response_code,
                            ResponseCode::ServFail,
                            "only the shutdown's temporary failure"
                        );
                        refused += 1;
                    }
                    None => break, // the listener is gone
                }
            }
            (acked, refused)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.signal("-TERM");
    let status = server.exit_status(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status:?}");
    let mut acked = Vec::new();
    for w in writers {
        let (a, _refused) = w.await.unwrap();
        acked.extend(a);
    }
    assert!(
        acked.len() >= 4,
        "the writers got through before SIGTERM: {acked:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("shutting down") && text.contains("stopped"),
        "{text}"
    );
    // Restart on the same files: the last acknowledged change is served, and
    // the audit log holds every acknowledged one.
    let server = Server::spawn(&cfg, &log, &[]);
    wait_serving(addr).await;
    let m = Message::from_vec(
        &udp_exchange(
            addr,
            &query_msg(&owner.to_string(), RecordType::TXT, true)
                .to_vec()
                .unwrap(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        m.answers.len(),
        1,
        "one value (each update replaced the set)"
    );
    let served = m.answers[0].data.to_string().trim_matches('"').to_string();
    assert!(acked.contains(&served), "{served} was acknowledged");
    drop(server);
    let db = audit_details(&dir.path().join("data/zonewarden.sqlite"));
    for v in &acked {
        assert!(
            db.iter()
                .any(|d| d.contains(&format!("add {owner} 60 TXT {v}"))),
            "{v} in the audit log"
        );
    }
}

/// The details of every audit row of the test zone.
fn audit_details(db: &Path) -> Vec<String> {
    let store = zonewarden::store::Store::open(db).unwrap();
    store
        .audit_tail(&name(ZONE), 100_000)
        .unwrap()
        .into_iter()
        .map(|row| row.detail)
        .collect()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    require("systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/zonewarden.service"
    ))
    .unwrap();
    for must in [
        "User=zonewarden",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "StateDirectory=zonewarden",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(must), "the unit has {must}");
    }
    let dir = tempfile::tempdir().unwrap();
    // verify wants the ExecStart binary to exist: point it at the one built.
    let here = unit.replace(
        "/usr/local/bin/zonewarden",
        env!("CARGO_BIN_EXE_zonewarden"),
    );
    let verify = |text: &str| {
        let path = dir.path().join("zonewarden.service");
        std::fs::write(&path, text).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = verify(&here);
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify: {text}"
    );
    // The checker notices a mistake, so the pass above means something.
    let (ok, text) = verify(&here.replace(
        "ProtectSystem=strict",
        "ProtectSystem=strict\nProtectSytem=yes",
    ));
    assert!(
        !ok || !text.trim().is_empty(),
        "a misspelt key went unnoticed"
    );
}

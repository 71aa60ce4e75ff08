//! The real programs users run: nsupdate and dig (bind9-dnsutils), knsupdate
//! and kdig (knot-dnsutils), against the server; and the real binary killed
//! with SIGKILL mid-life. `scripts/test` installs the packages.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn secret_of(h: &Harness, machine: &str) -> String {
    let text = std::fs::read_to_string(h.path(&format!("data/keys/{machine}.key"))).unwrap();
    text.split('"').nth(3).unwrap().to_string()
}

#[tokio::test]
async fn nsupdate_adds_and_deletes_with_sha256_sha1_and_md5_keys() {
    require("nsupdate", "bind9-dnsutils");
    let h = Harness::start().await;
    for machine in ["mx1", "sha1box", "md5box"] {
        let key = h
            .path(&format!("data/keys/{machine}.key"))
            .display()
            .to_string();
        let owner = format!("_acme-challenge.{machine}.{ZONE}");
        // No `zone` line: nsupdate first finds the zone with a TSIG-signed SOA query.
        let script = format!(
            "server 127.0.0.1 {}\nupdate add {owner} 60 TXT \"nsupdate-{machine}\"\nsend\n",
            h.addr.port()
        );
        let (ok, out) = run_async("nsupdate", vec!["-k".into(), key.clone()], script).await;
        assert!(ok, "{machine}: nsupdate failed: {out}");
        assert_eq!(h.txt(&owner).await, vec![format!("nsupdate-{machine}")]);
        let script = format!(
            "server 127.0.0.1 {}\nzone {ZONE}\nupdate delete {owner} TXT \"nsupdate-{machine}\"\nsend\n",
            h.addr.port()
        );
        let (ok, out) = run_async("nsupdate", vec!["-k".into(), key], script).await;
        assert!(ok, "{machine}: nsupdate delete failed: {out}");
        assert!(h.txt(&owner).await.is_empty());
    }
}

#[tokio::test]
async fn nsupdate_is_refused_outside_its_acl_and_says_so() {
    require("nsupdate", "bind9-dnsutils");
    let h = Harness::start().await;
    let key = h.path("data/keys/mx1.key").display().to_string();
    let script = format!(
        "server 127.0.0.1 {}\nzone {ZONE}\nupdate add _acme-challenge.www1.{ZONE} 60 TXT \"stolen\"\nsend\n",
        h.addr.port()
    );
    let (ok, out) = run_async("nsupdate", vec!["-k".into(), key], script).await;
    assert!(!ok, "{out}");
    assert!(out.contains("REFUSED"), "{out}");
}

#[tokio::test]
async fn knsupdate_adds_and_deletes_with_sha256_sha1_and_md5_keys() {
    require("knsupdate", "knot-dnsutils");
    let h = Harness::start().await;
    for (machine, alg) in [
        ("mx1", "hmac-sha256"),
        ("sha1box", "hmac-sha1"),
        ("md5box", "hmac-md5"),
    ] {
        let y = format!("{alg}:{machine}.:{}", secret_of(&h, machine));
        let owner = format!("_acme-challenge.{machine}.{ZONE}");
        let script = format!(
            "server 127.0.0.1 {}\nzone {ZONE}\nadd {owner} 60 TXT \"knsupdate-{machine}\"\nsend\nanswer\n",
            h.addr.port()
        );
        let (ok, out) = run_async("knsupdate", vec!["-y".into(), y.clone()], script).await;
        assert!(ok, "{machine}: knsupdate failed: {out}");
        assert_eq!(h.txt(&owner).await, vec![format!("knsupdate-{machine}")]);
        let script = format!(
            "server 127.0.0.1 {}\nzone {ZONE}\ndel {owner} TXT\nsend\n",
            h.addr.port()
        );
        let (ok, out) = run_async("knsupdate", vec!["-y".into(), y], script).await;
        assert!(ok, "{machine}: knsupdate delete failed: {out}");
        assert!(h.txt(&owner).await.is_empty());
    }
}

#[tokio::test]
async fn dig_and_kdig_see_authoritative_answers_and_verify_signed_ones() {
    require("dig", "bind9-dnsutils");
    require("kdig", "knot-dnsutils");
    let h = Harness::start().await;
    let sha256 = format!("hmac-sha256:mx1.:{}", secret_of(&h, "mx1"));
    let md5 = format!("hmac-md5:md5box.:{}", secret_of(&h, "md5box"));
    let nothing = format!("nothing.{ZONE}");
    let stat = format!("static.{ZONE}");
    /// One run of a tool at the server, and what its output must (not) say.
    struct Case<'a> {
        what: &'a str,
        tool: &'static str,
        args: Vec<&'a str>,
        says: &'a [&'a str],
        /// Case-insensitive.
        never: &'a [&'a str],
    }
    #[rustfmt::skip]
    let cases = [
        Case { what: "dig: an authoritative SOA", tool: "dig", args: vec!["+norec", ZONE, "SOA"], says: &["status: NOERROR", " aa"], never: &[] },
        Case { what: "dig: NXDOMAIN", tool: "dig", args: vec![&nothing, "TXT"], says: &["status: NXDOMAIN"], never: &[] },
        // TSIG-signed queries: both tools verify our signature on the answer.
        Case { what: "dig -y hmac-sha256", tool: "dig", args: vec!["-y", &sha256, ZONE, "SOA"], says: &["status: NOERROR"], never: &["failure"] },
        Case { what: "kdig -y hmac-sha256", tool: "kdig", args: vec!["-y", &sha256, ZONE, "SOA"], says: &["NOERROR"], never: &["error: "] },
        Case { what: "kdig +tcp -y hmac-md5", tool: "kdig", args: vec!["+tcp", "-y", &md5, ZONE, "SOA"], says: &["NOERROR"], never: &[] },
        Case { what: "kdig over TCP", tool: "kdig", args: vec!["+tcp", &stat, "TXT"], says: &["from the zone file"], never: &[] },
    ];
    let port = h.addr.port().to_string();
    for c in cases {
        let mut args = vec!["@127.0.0.1".to_string(), "-p".into(), port.clone()];
        args.extend(c.args.iter().map(|a| a.to_string()));
        let (ok, out) = run_async(c.tool, args, String::new()).await;
        let what = c.what;
        assert!(ok, "{what}: failed\n{out}");
        for s in c.says {
            assert!(out.contains(s), "{what}: no {s:?} in\n{out}");
        }
        for s in c.never {
            assert!(!out.to_lowercase().contains(s), "{what}: {s:?} in\n{out}");
        }
    }
}

/// The real binary, killed when dropped (a failing assertion must not leak it).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn kill_dash_nine_loses_no_acknowledged_update() {
    let dir = tempfile::tempdir().unwrap();
    let _ = Harness::layout(dir.path());
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = dir.path().join("zonewarden.toml");
    write(
        &cfg,
        &format!("listen = [\"127.0.0.1:{port}\"]\nhttp = \"127.0.0.1:0\"\ndata-dir = \"data\"\n"),
    );
    let bin = env!("CARGO_BIN_EXE_zonewarden");
    let spawn = || {
        Server(
            Command::new(bin)
                .args(["--config", cfg.to_str().unwrap(), "serve"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut child = spawn();
    wait_serving(addr).await;
    let key = zonewarden::tsig::read_key_file(&dir.path().join("data/keys/mx1.key"))
        .unwrap()
        .remove(0);
    let owner = zname("_acme-challenge.mx1");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let mut acked = Vec::new();
    for i in 0..3 {
        let v = format!("acked-{i}");
        let msg = sign(
            update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, &v)]),
            &key,
            now(),
        );
        let resp = hickory_proto::op::Message::from_vec(&tcp_exchange(addr, &msg).await).unwrap();
        assert_eq!(resp.metadata.response_code, ResponseCode::NoError);
        acked.push(v);
    }
    let serial_q = query_msg(ZONE, RecordType::SOA, false);
    let serial_of =
        |b: Vec<u8>| match &hickory_proto::op::Message::from_vec(&b).unwrap().answers[0].data {
            hickory_proto::rr::RData::SOA(s) => s.serial,
            _ => panic!("no SOA"),
        };
    let serial_before = serial_of(
        udp_exchange(addr, &serial_q.to_vec().unwrap())
            .await
            .unwrap(),
    );
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let child = spawn();
    wait_serving(addr).await;
    let q = query_msg(&owner.to_string(), RecordType::TXT, true);
    let m = hickory_proto::op::Message::from_vec(
        &udp_exchange(addr, &q.to_vec().unwrap()).await.unwrap(),
    )
    .unwrap();
    let mut got: Vec<String> = m
        .answers
        .iter()
        .map(|r| r.data.to_string().trim_matches('"').to_string())
        .collect();
    got.sort();
    assert_eq!(got, acked);
    let serial_after = serial_of(
        udp_exchange(addr, &serial_q.to_vec().unwrap())
            .await
            .unwrap(),
    );
    assert_eq!(serial_after, serial_before, "the serial never goes back");
    drop(child);
}

#[tokio::test]
async fn sighup_reloads_acls_and_a_broken_file_keeps_the_old_policy_over_ipv4_and_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let _ = Harness::layout(dir.path());
    let (p4, p6) = (free_port(), free_port());
    let v4: SocketAddr = format!("127.0.0.1:{p4}").parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{p6}").parse().unwrap();
    let cfg = dir.path().join("zonewarden.toml");
    // The poller is slowed to an hour: only SIGHUP can reload here.
    write(
        &cfg,
        &format!(
            "listen = [\"{v4}\", \"{v6}\"]\nhttp = \"off\"\ndata-dir = \"data\"\nreload-interval = 3600\n"
        ),
    );
    let log = dir.path().join("server.log");
    let child = Server(
        Command::new(env!("CARGO_BIN_EXE_zonewarden"))
            .args(["--config", cfg.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_serving(v4).await;
    wait_serving(v6).await;
    let key = zonewarden::tsig::read_key_file(&dir.path().join("data/keys/mx1.key"))
        .unwrap()
        .remove(0);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let extra = zname("_acme-challenge.extra.mx1");
    let try_extra = |addr: SocketAddr| {
        let key = key.clone();
        let extra = extra.clone();
        async move {
            let msg = sign(
                update_msg(ZONE, vec![], vec![add(&extra, 60, RecordType::TXT, "x")]),
                &key,
                now(),
            );
            hickory_proto::op::Message::from_vec(&tcp_exchange(addr, &msg).await)
                .unwrap()
                .metadata
                .response_code
        }
    };
    let hup = |pid: u32| {
        let ok = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    assert_eq!(try_extra(v6).await, ResponseCode::Refused);
    let acl = dir.path().join("acl/mx1.toml");
    let good = format!(
        "{MX1_ACL}\n[[grant]]\nname = \"_acme-challenge.extra.{{machine}}\"\ntypes = [\"TXT\"]\n"
    );
    // Broken first: nothing changes.
    write(
        &acl,
        &good.replace("types = [\"TXT\"]\n", "types = [\"TXTT\"]\n"),
    );
    hup(child.0.id());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(try_extra(v4).await, ResponseCode::Refused);
    let n = zname("_acme-challenge.mx1");
    let msg = sign(
        update_msg(
            ZONE,
            vec![],
            vec![add(&n, 60, RecordType::TXT, "old policy")],
        ),
        &key,
        now(),
    );
    let rc = hickory_proto::op::Message::from_vec(&tcp_exchange(v4, &msg).await)
        .unwrap()
        .metadata
        .response_code;
    assert_eq!(rc, ResponseCode::NoError, "the previous policy still works");
    // Fixed: SIGHUP applies it.
    write(&acl, &good);
    hup(child.0.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while try_extra(v6).await != ResponseCode::NoError {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not apply the fixed ACL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(child);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("mx1.toml:") && log.contains("TXTT"),
        "the broken file was reported with its location: {log}"
    );
}

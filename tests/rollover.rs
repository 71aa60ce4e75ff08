//! DNSSEC key rollovers with real peers (issue 13): zonewarden as the
//! primary with a Knot secondary, a BIND parent (`example.org.`, signed by
//! BIND, optionally a second nameserver on Knot) whose DS set the test
//! changes from zonewarden's CDS as a parent with RFC 8078 automation
//! would, and two validating unbounds trusting only the parent's key, one
//! asking zonewarden and one the Knot secondary. While each transition
//! runs, with every timing cut to seconds, both are asked every half
//! second and every answer must validate (AD); `ldns-verify-zone` checks
//! the whole zone at every step; a restart in the middle resumes.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::parent::{Parent, ParentOptions, Question, ValidatingLoop};
use common::peers::{Peer, knot_secondary};
use common::unbound::{Unbound, ds_line, ldns_verify, zone_key, zone_text};
use common::*;
use hickory_proto::rr::RecordType;
use zonewarden::tsig::{Algorithm, Key};
use zonewarden::writer::KeyStatus;
use zonewarden::zone::keys::KeyState;

/// How long a whole transition may take before the test gives up.
const LIMIT: Duration = Duration::from_secs(120);

/// The test zone with every TTL a few seconds, a Knot secondary, and the
/// rollover's timings in seconds; `dnssec` is more of the `[dnssec]` table.
fn zone_file(knot_port: u16, dnssec: &str) -> String {
    let base = ZONE_FILE.replace(
        "[ttl]\nmin = 10\nmax = 600",
        "[soa]\nttl = 2\nminimum = 1\n[ttl]\nmin = 1\nmax = 3\ndefault = 2\nchallenge = 2\ntlsa = 2",
    );
    assert_ne!(
        base, ZONE_FILE,
        "the test zone file changed: fix the TTL edit"
    );
    format!(
        "{base}\n[[secondary]]\naddress = \"127.0.0.1:{knot_port}\"\nkey = \"xfr\"\nname = \"knot\"\n\n[dnssec]\ndnskey-ttl = 2\npropagation-delay = 1\nparent-check-interval = 1\n{dnssec}"
    )
}

/// Everything one rollover test runs against.
struct Rig {
    h: Harness,
    knot: Peer,
    knot_addr: SocketAddr,
    parent: Parent,
    /// Validating through zonewarden, and through the Knot secondary.
    via_primary: Unbound,
    via_knot: Unbound,
    knot_port: u16,
    /// Keeps the harness's manual clock on the wall clock (the rollover
    /// waits real seconds).
    ticking: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.ticking.abort();
    }
}

impl Rig {
    /// Restart zonewarden on the same address (the unbounds' stub).
    async fn restart(&mut self) {
        let before = self.h.addr;
        self.h.restart().await;
        assert_eq!(self.h.addr, before, "the restart moved the server");
    }

    /// `setting` added to the zone file's `[dnssec]` table (`base`, the
    /// file as the rig wrote it), then a restart.
    async fn restart_with(&mut self, base: &str, setting: &str) {
        let zf = self.h.config.zones_dir.join("acme.toml");
        write(
            &zf,
            &base.replace("[dnssec]\n", &format!("[dnssec]\n{setting}\n")),
        );
        self.restart().await;
    }

    /// The zone file as it is now.
    fn zone_file(&self) -> String {
        std::fs::read_to_string(self.h.config.zones_dir.join("acme.toml")).unwrap()
    }

    async fn start(second_parent_ns: bool) -> Rig {
        common::parent::peers_installed();
        require("ldns-verify-zone", "ldnsutils");
        let xfr = Key::generate(name("xfr."), Algorithm::HmacSha256).unwrap();
        let (p, kp) = (free_port(), free_port());
        let text = zone_file(kp, "");
        let key = xfr.clone();
        let mut h = Harness::start_with(move |c| {
            c.listen = vec![format!("127.0.0.1:{p}").parse().unwrap()];
            write(&c.zones_dir.join("acme.toml"), &text);
            zonewarden::tsig::write_key_file(&c.keys_dir.join("xfr.key"), &key).unwrap();
        })
        .await;
        let clock = h.clock.clone();
        let ticking = tokio::spawn(async move {
            loop {
                clock.set(zonewarden::Clock::now(&zonewarden::SystemClock));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let knot = knot_secondary(ZONE, kp, p, &xfr);
        let knot_addr: SocketAddr = format!("127.0.0.1:{kp}").parse().unwrap();
        let options = ParentOptions {
            ds_ttl: 2,
            second: second_parent_ns,
        };
        let parent = Parent::start_with(ZONE, p, &[ds_line(&zone_key(&h))], options).await;
        // Now that the parent's nameservers are known: name them.
        let list: Vec<String> = parent
            .nameservers()
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        let text = zone_file(kp, &format!("parent-nameservers = [{}]\n", list.join(", ")));
        write(&h.config.zones_dir.join("acme.toml"), &text);
        let before = h.addr;
        h.restart().await;
        assert_eq!(h.addr, before, "the restart moved the server");
        let via_primary = parent.unbound(h.addr, 30).await;
        let stubs = vec![
            (parent.zone.to_string(), parent.nameservers()),
            (ZONE.to_string(), vec![knot_addr]),
        ];
        let via_knot = Unbound::start_trusting(&parent.trust_anchor(), &stubs, 30).await;
        let rig = Rig {
            h,
            knot,
            knot_addr,
            parent,
            via_primary,
            via_knot,
            knot_port: kp,
            ticking,
        };
        rig.wait_knot_current().await;
        rig.via_primary.validated(ZONE, "SOA", "NOERROR").await;
        rig.via_knot.validated(ZONE, "SOA", "NOERROR").await;
        rig
    }

    /// Until Knot serves the primary's serial.
    async fn wait_knot_current(&self) {
        let serial = self.h.serial(ZONE).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let have = zonewarden::dnsclient::soa_serial(
                self.knot_addr,
                &name(ZONE),
                Duration::from_secs(2),
            )
            .await;
            if have
                .as_ref()
                .is_ok_and(|s| zonewarden::serial::at_least(*s, serial))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "knot never served {serial}: {have:?}\n{}",
                self.knot.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The configuration the CLI would read: `http` where the server
    /// listens now.
    fn cli_config(&self) -> zonewarden::Config {
        let mut c = self.h.config.clone();
        c.http = self.h.server().http_addr();
        c
    }

    fn status(&self) -> KeyStatus {
        let zone = self
            .h
            .server()
            .zones
            .zone_exact(&name(ZONE))
            .unwrap()
            .clone();
        zone.key_status().expect("the zone is signed")
    }

    /// Every key's tag and state.
    fn states(&self) -> Vec<(u16, KeyState)> {
        self.status()
            .keys
            .iter()
            .map(|(k, _, _)| (k.tag, k.state))
            .collect()
    }

    fn state_of(&self, tag: u16) -> KeyState {
        self.states()
            .into_iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, s)| s)
            .expect("a key with that tag")
    }

    /// Poll (every 200 ms, bounded by [`LIMIT`]) until `done` holds for
    /// the keys' status; each new state seen is checked with
    /// ldns-verify-zone and reported.
    async fn until(&self, what: &str, done: impl Fn(&KeyStatus) -> bool) -> KeyStatus {
        let start = Instant::now();
        let mut last = Vec::new();
        loop {
            let st = self.status();
            let now: Vec<(u16, KeyState)> =
                st.keys.iter().map(|(k, _, _)| (k.tag, k.state)).collect();
            if now != last {
                eprintln!("+{:.1}s keys {now:?}", start.elapsed().as_secs_f64());
                self.verify_zone().await;
                last = now;
            }
            if done(&st) {
                return st;
            }
            assert!(
                start.elapsed() < LIMIT,
                "{what}: not within {LIMIT:?}; keys now:\n{:#?}\nparent:\n{:#?}",
                st.keys,
                st.parent
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// ldns-verify-zone accepts the zone as served, with the DS of the
    /// active key (or of the key the CDS names) as trust anchor.
    async fn verify_zone(&self) {
        let st = self.status();
        let anchor = st
            .keys
            .iter()
            .rev()
            .find(|(k, _, _)| k.state == KeyState::Active)
            .or_else(|| st.keys.iter().rev().find(|(k, _, _)| k.state.published()))
            .and_then(|(_, ds, _)| ds.clone());
        let Some(ds) = anchor else {
            return; // unsigned: nothing to verify
        };
        let line = format!("{ZONE} 3600 IN DS {ds}");
        let text = zone_text(&self.h);
        let (ok, out) = ldns_verify(self.h.dir.path(), &text, &line, None).await;
        assert!(ok, "ldns-verify-zone rejects the zone:\n{out}\n{text}");
    }

    /// Both validating loops, over the questions that matter.
    fn watch(&self, insecure_ok: bool) -> (ValidatingLoop, ValidatingLoop) {
        let q: Vec<Question> = vec![
            (zname(""), RecordType::SOA),
            (zname(""), RecordType::DNSKEY),
            (zname("static"), RecordType::TXT),
            (zname("_25._tcp.mx1"), RecordType::TLSA),
            (zname("nothing-here"), RecordType::A),
        ];
        let start = |addr| {
            if insecure_ok {
                ValidatingLoop::start_allowing_insecure(addr, q.clone(), LIMIT * 2)
            } else {
                ValidatingLoop::start(addr, q.clone(), LIMIT * 2)
            }
        };
        (start(self.via_primary.addr()), start(self.via_knot.addr()))
    }

    async fn add_tlsa(&self) {
        let tlsa = "3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6";
        let upd = update_msg(
            ZONE,
            vec![],
            vec![add(&zname("_25._tcp.mx1"), 2, RecordType::TLSA, tlsa)],
        );
        assert_eq!(
            self.h.update_rcode("mx1", upd).await,
            hickory_proto::op::ResponseCode::NoError
        );
        self.wait_knot_current().await;
    }

    fn active_tag(&self) -> u16 {
        self.states()
            .into_iter()
            .rev()
            .find(|(_, s)| *s == KeyState::Active)
            .map(|(t, _)| t)
            .expect("an active key")
    }

    /// The key tags of the DNSKEY RRset Knot serves.
    async fn knot_dnskeys(&self) -> Vec<u16> {
        let rrs = zonewarden::dnsclient::rrset(
            self.knot_addr,
            &name(ZONE),
            RecordType::DNSKEY,
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        let mut tags: Vec<u16> = rrs
            .iter()
            .filter_map(|r| match &r.data {
                hickory_proto::rr::RData::DNSSEC(
                    hickory_proto::dnssec::rdata::DNSSECRData::DNSKEY(k),
                ) => k.calculate_key_tag().ok(),
                _ => None,
            })
            .collect();
        tags.sort();
        tags
    }

    async fn no_failures(&self, loops: (ValidatingLoop, ValidatingLoop)) {
        for (label, l) in [("via zonewarden", loops.0), ("via knot", loops.1)] {
            let report = l.stop().await;
            assert!(
                report.queries > 20,
                "{label}: the loop hardly ran: {report:?}"
            );
            assert!(
                report.failures.is_empty(),
                "{label}: answers that failed validation:\n{}\nunbound:\n{}\n{}",
                report.failures.join("\n"),
                self.via_primary.log(),
                self.via_knot.log()
            );
        }
    }
}

impl Rig {
    /// The keys' timeline as `zonewarden dnssec status ZONE --svg` draws
    /// it, from the times this run recorded: every key and stage shown.
    /// With ZW_TIMELINE_DIR set, also written there as `name` (how the
    /// figures in docs/dnssec.md are made).
    async fn timeline(&self, name: &str, stages: &[&str]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        let now = self.h.clock_now();
        zonewarden::client::dnssec::write_svg(&self.cli_config(), ZONE, &file, now)
            .await
            .unwrap();
        let svg = std::fs::read_to_string(&file).unwrap();
        for (k, _, _) in &self.status().keys {
            assert!(
                svg.contains(&format!("key {} (", k.tag)),
                "key {} missing:\n{svg}",
                k.tag
            );
        }
        for stage in stages {
            assert!(
                svg.contains(&format!(" {stage}: ")),
                "stage {stage} missing:\n{svg}"
            );
        }
        if let Ok(out) = std::env::var("ZW_TIMELINE_DIR") {
            std::fs::write(std::path::Path::new(&out).join(name), &svg).unwrap();
        }
    }
}

/// The tag of the key that is not `old`.
fn other_key(st: &KeyStatus, old: u16) -> u16 {
    st.keys
        .iter()
        .map(|(k, _, _)| k.tag)
        .find(|t| *t != old)
        .expect("a second key")
}

/// A TLS service of `mx1` with its DANE-EE TLSA (3 1 1) in the zone, and
/// a validating resolver on port 53 trusting only the parent, for
/// `ldns-dane verify` (a real DANE checker) during a rollover.
struct Dane {
    _certs: tempfile::TempDir,
    server: std::process::Child,
    port: u16,
    resolver: Unbound,
}

impl Drop for Dane {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

const HOST: &str = "mx1._acme.example.org";

impl Rig {
    async fn dane(&self) -> Dane {
        require("openssl", "openssl");
        require("ldns-dane", "ldnsutils");
        let certs = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-days", "30", "-subj",
            ])
            .arg(format!("/CN={HOST}"))
            .current_dir(certs.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl made no certificate");
        let chain = zonewarden::dane::Chain::read(&certs.path().join("c.pem")).unwrap();
        let now = self.h.clock_now() as i64;
        let tlsa = zonewarden::dane::tlsa(&chain, zonewarden::dane::TlsaParams::default(), now)
            .unwrap()
            .to_string();
        let port = free_port();
        let upd = update_msg(
            ZONE,
            vec![],
            vec![add(
                &zname(&format!("_{port}._tcp.mx1")),
                2,
                RecordType::TLSA,
                &tlsa,
            )],
        );
        assert_eq!(
            self.h.update_rcode("mx1", upd).await,
            hickory_proto::op::ResponseCode::NoError
        );
        let a = update_msg(
            ZONE,
            vec![],
            vec![add(&zname("mx1"), 2, RecordType::A, "127.0.0.1")],
        );
        assert_eq!(
            self.h.update_rcode("ops", a).await,
            hickory_proto::op::ResponseCode::NoError
        );
        self.wait_knot_current().await;
        let server = std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", "c.pem", "-key", "k.pem"])
            .current_dir(certs.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "s_server did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stubs = vec![
            (self.parent.zone.to_string(), self.parent.nameservers()),
            (ZONE.to_string(), vec![self.h.addr]),
        ];
        let resolver = Unbound::start_trusting_on_53(&self.parent.trust_anchor(), &stubs, 30).await;
        Dane {
            _certs: certs,
            server,
            port,
            resolver,
        }
    }
}

impl Dane {
    /// `ldns-dane verify` accepts the service: its TLSA, validated through
    /// the parent, matches the certificate.
    async fn verified(&self, when: &str) {
        let (ok, out) = common::unbound::run(
            "ldns-dane",
            &[
                "-n".into(),
                "-r".into(),
                self.resolver.ip.clone(),
                "verify".into(),
                HOST.into(),
                self.port.to_string(),
            ],
        )
        .await;
        assert!(
            ok && out.contains("dane-validated successfully"),
            "ldns-dane {when}:\n{out}\nunbound:\n{}",
            self.resolver.log()
        );
    }
}

fn key_in(st: &KeyStatus, tag: u16, state: KeyState) -> bool {
    st.keys
        .iter()
        .any(|(k, _, _)| k.tag == tag && k.state == state)
}

/// A whole CSK rollover asked for with `zonewarden dnssec roll`: the new
/// key is published and double-signs, its DS goes to the parent by CDS,
/// the old key retires and is removed; a restart half-way resumes; every
/// answer validates throughout, through zonewarden and through Knot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csk_rollover_never_breaks_validation() {
    let mut rig = Rig::start(false).await;
    rig.add_tlsa().await;
    let dane = rig.dane().await;
    dane.verified("before the rollover").await;
    let old = rig.active_tag();
    let loops = rig.watch(false);
    let said = zonewarden::client::dnssec::roll(&rig.cli_config(), ZONE)
        .await
        .expect("roll accepted");
    assert!(said.contains("asked for"), "{said}");
    let st = rig
        .until("a second key published", |st| st.keys.len() == 2)
        .await;
    let new = other_key(&st, old);
    // a second request while one is under way is refused
    let again = zonewarden::client::dnssec::roll(&rig.cli_config(), ZONE).await;
    assert!(again.is_err_and(|e| e.contains("already under way")));
    // a restart in the middle: the rollover goes on from where it was
    rig.restart().await;
    assert!(matches!(
        rig.state_of(new),
        KeyState::Published | KeyState::Ready
    ));
    rig.until("the new key ready (its DS submitted)", |st| {
        key_in(st, new, KeyState::Ready)
    })
    .await;
    // A parent that takes its time: nothing moves until it has the DS.
    dane.verified("with two keys signing").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rig.state_of(new),
        KeyState::Ready,
        "retired before the parent had the new DS"
    );
    assert_eq!(rig.state_of(old), KeyState::Active);
    // the parent takes the DS from the CDS (RFC 8078)
    let ds = rig.parent.follow_cds(rig.h.addr).await;
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert!(ds[0].starts_with(&format!("{new} 13 2 ")), "{ds:?}");
    rig.until("the old key retired", |st| {
        key_in(st, old, KeyState::Retired) && key_in(st, new, KeyState::Active)
    })
    .await;
    let st = rig
        .until("the old key removed", |st| {
            key_in(st, old, KeyState::Removed)
        })
        .await;
    rig.wait_knot_current().await;
    assert_eq!(
        rig.knot_dnskeys().await,
        vec![new],
        "Knot serves only the new key"
    );
    // Each step waited what it must (the zone file: TTLs 2 s, delay 1 s).
    let rec = |tag: u16| {
        st.keys
            .iter()
            .find(|(k, _, _)| k.tag == tag)
            .unwrap()
            .0
            .clone()
    };
    let (o, n) = (rec(old), rec(new));
    assert!(
        n.ready.unwrap() >= n.published.unwrap() + 3,
        "DNSKEY TTL + delay before the DS: {n:?}"
    );
    assert!(
        o.retired.unwrap() >= n.ds_seen.unwrap() + 3,
        "DS TTL + delay before retiring: {n:?} {o:?}"
    );
    assert!(
        o.removed.unwrap() >= o.retired.unwrap() + 3,
        "DNSKEY TTL + delay before removed: {o:?}"
    );
    // nothing left to do
    let (text, verdict) =
        zonewarden::client::dnssec::status(&rig.cli_config(), Some(ZONE), false, rig.h.clock_now())
            .await;
    assert!(
        matches!(verdict, zonewarden::client::dnssec::Verdict::Fine),
        "{text}"
    );
    assert!(
        text.contains(&format!("key {new} ecdsap256sha256 csk: active")),
        "{text}"
    );
    // a few more seconds of caches expiring, still validated
    tokio::time::sleep(Duration::from_secs(4)).await;
    dane.verified("after the rollover").await;
    rig.no_failures(loops).await;
    rig.timeline(
        "rollover-csk.svg",
        &["published", "ready", "active", "retired"],
    )
    .await;
    let audit = rig.h.server().zones.audit_tail(&name(ZONE), 20).unwrap();
    let steps: Vec<&str> = audit
        .iter()
        .filter(|a| a.action.as_str() == "dnssec-key")
        .map(|a| a.detail.as_str())
        .collect();
    assert!(steps.iter().any(|d| d.contains("published")), "{steps:?}");
    assert!(steps.iter().any(|d| d.contains("retired")), "{steps:?}");
}

/// The new key's DS appears at one of the parent's two nameservers only:
/// the rollover waits, says which nameserver lacks it and what to do
/// (`dnssec status` exits 1), and the zone stays valid; once the second
/// nameserver catches up, it completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ds_missing_at_one_parent_nameserver_holds_the_rollover() {
    let mut rig = Rig::start(true).await;
    let old = rig.active_tag();
    let loops = rig.watch(false);
    rig.parent.freeze_second().await;
    let second = rig.parent.second().unwrap();
    assert!(
        rig.h
            .server()
            .zones
            .zone_exact(&name(ZONE))
            .unwrap()
            .request_roll()
            .unwrap()
    );
    let st = rig
        .until("a second key ready", |st| {
            st.keys.iter().any(|(k, _, _)| k.state == KeyState::Ready)
        })
        .await;
    let new = other_key(&st, old);
    rig.parent.follow_cds(rig.h.addr).await;
    let st = rig
        .until("the wait for the lagging nameserver said", |st| {
            st.keys
                .iter()
                .any(|(k, _, o)| k.tag == new && o.waiting_for.contains(&second.to_string()))
        })
        .await;
    let (_, _, out) = st.keys.iter().find(|(k, _, _)| k.tag == new).unwrap();
    assert!(
        out.waiting_for.contains(&format!("has only key {old}")),
        "{out:?}"
    );
    assert!(
        out.action
            .as_deref()
            .unwrap_or("")
            .contains(&format!("{new} 13 2")),
        "{out:?}"
    );
    let (text, verdict) =
        zonewarden::client::dnssec::status(&rig.cli_config(), Some(ZONE), false, rig.h.clock_now())
            .await;
    assert!(
        matches!(verdict, zonewarden::client::dnssec::Verdict::ActionNeeded),
        "{text}"
    );
    assert!(text.contains("ACTION"), "{text}");
    // it does not move on a guess
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(rig.state_of(new), KeyState::Ready);
    assert_eq!(rig.state_of(old), KeyState::Active);
    rig.parent.thaw_second().await;
    rig.until("the rollover completed", |st| {
        key_in(st, old, KeyState::Removed) && key_in(st, new, KeyState::Active)
    })
    .await;
    rig.no_failures(loops).await;
}

/// An algorithm rollover (ECDSA P-256 to Ed25519, by editing the zone
/// file): the new key signs before it is published, the old one is
/// withdrawn before its signatures go; every answer validates throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_algorithm_rollover_never_breaks_validation() {
    let mut rig = Rig::start(false).await;
    rig.add_tlsa().await;
    let old = rig.active_tag();
    let loops = rig.watch(false);
    let base = rig.zone_file();
    rig.restart_with(&base, "algorithm = \"ed25519\"").await;
    let st = rig
        .until("the new key signing", |st| {
            st.keys.iter().any(|(k, _, _)| k.state == KeyState::Signing)
        })
        .await;
    let new = other_key(&st, old);
    let st = rig
        .until("the new key ready", |st| key_in(st, new, KeyState::Ready))
        .await;
    let n = st
        .keys
        .iter()
        .find(|(k, _, _)| k.tag == new)
        .unwrap()
        .0
        .clone();
    // signing first; published once the zone's longest TTL (3 s) + delay passed
    assert!(
        n.published.unwrap() >= n.created + 4,
        "published too soon: {n:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rig.state_of(old),
        KeyState::Active,
        "retired before the parent had the new DS"
    );
    let ds = rig.parent.follow_cds(rig.h.addr).await;
    assert!(ds[0].starts_with(&format!("{new} 15 2 ")), "{ds:?}");
    rig.until("the old key withdrawn", |st| {
        key_in(st, old, KeyState::Withdrawn)
    })
    .await;
    // a restart in the middle: the withdrawn key's signatures stay
    rig.restart().await;
    rig.until("the old key's signatures gone", |st| {
        key_in(st, old, KeyState::Retired)
    })
    .await;
    rig.until("the old key removed", |st| {
        key_in(st, old, KeyState::Removed)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    rig.no_failures(loops).await;
    rig.wait_knot_current().await;
    assert_eq!(rig.knot_dnskeys().await, vec![new]);
    rig.timeline(
        "rollover-algorithm.svg",
        &[
            "signing",
            "published",
            "ready",
            "active",
            "withdrawn",
            "retired",
        ],
    )
    .await;
}

/// `enabled = false`: CDS delete, the parent drops the DS, then every
/// DNSSEC record goes; answers go from secure to insecure and are never
/// bogus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_dnssec_off_never_makes_the_zone_bogus() {
    let mut rig = Rig::start(false).await;
    let key = rig.active_tag();
    let loops = rig.watch(true);
    let base = rig.zone_file();
    rig.restart_with(&base, "enabled = false").await;
    rig.until("CDS delete published", |st| {
        st.keys.iter().any(|(k, _, _)| k.ds_delete.is_some())
    })
    .await;
    // a restart in the middle: still signed, still saying delete
    rig.restart().await;
    let ds = rig.parent.follow_cds(rig.h.addr).await;
    assert!(ds.is_empty(), "the parent's DS set is emptied: {ds:?}");
    rig.until("the zone unsigned", |st| key_in(st, key, KeyState::Retired))
        .await;
    rig.wait_knot_current().await;
    assert!(rig.knot_dnskeys().await.is_empty(), "Knot serves no DNSKEY");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let d = rig.via_primary.dig(ZONE, "SOA").await;
    assert_eq!(
        (d.status.as_str(), d.ad),
        ("NOERROR", false),
        "insecure now"
    );
    rig.no_failures(loops).await;
    let _ = rig.knot_port;
}

/// NSEC to NSEC3 and back (`denial`, applied at start as two changes
/// each): negative answers keep validating throughout, cached ones too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_nsec_to_nsec3_and_back_never_breaks_validation() {
    let mut rig = Rig::start(false).await;
    let loops = rig.watch(false);
    let base = rig.zone_file();
    for (denial, nsec3) in [("nsec3", true), ("nsec", false)] {
        rig.restart_with(&base, &format!("denial = \"{denial}\""))
            .await;
        let snap = rig
            .h
            .server()
            .zones
            .zone_exact(&name(ZONE))
            .unwrap()
            .snapshot();
        assert_eq!(
            snap.rrset(snap.origin(), RecordType::NSEC3PARAM).is_some(),
            nsec3,
            "{denial} in place after the start"
        );
        rig.verify_zone().await;
        rig.wait_knot_current().await;
        // caches (TTLs 1 to 3 s) see the other denial before the next switch
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    rig.no_failures(loops).await;
}

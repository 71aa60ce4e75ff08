//! A real, signed parent for the child zone under test, and a validating
//! resolver whose only trust anchor is that parent: what key rollover tests
//! (issue 13) need to see the zone the way the Internet does.
//!
//! - [`Parent`]: BIND 9.18 (`named`) as the primary of the child's parent
//!   zone (`_acme.example.org.` → `example.org.`) on 127.0.0.1 and a free
//!   port, signed by BIND itself (`dnssec-policy`: one ECDSA P-256 CSK,
//!   signing updates as they come). The zone holds the delegation
//!   (`<child> NS ns1.<child>`, glue 127.0.0.1: resolvers get a stub for
//!   the child anyway) and the child's DS RRset, with a short TTL
//!   ([`ParentOptions::ds_ttl`], 2 s by default; the SOA's negative TTL is
//!   the same). The test changes the DS set with `nsupdate` and a TSIG key
//!   ([`Parent::set_ds`]), which returns once every following nameserver
//!   serves exactly that set, signed.
//! - With [`Parent::start_two`], a second parent nameserver: Knot DNS as a
//!   secondary of the parent zone (NOTIFY, then IXFR from BIND) on its own
//!   loopback address (127.x.y.z, a free port), so the parent's NS set has
//!   two addresses. [`Parent::freeze_second`] makes it stop following the
//!   primary while still serving its last copy (`knotc zone-freeze`), for
//!   "a DS that never appears at one parent nameserver";
//!   [`Parent::thaw_second`] lets it catch up.
//! - [`Parent::follow_cds`]: the DS set made to match the child's CDS, as
//!   a parent with RFC 8078 automation would (BIND 9.18 has none).
//! - [`Parent::trust_anchor`]: the parent's DNSKEY as an unbound
//!   `trust-anchor:`; [`Parent::unbound`]: a validating unbound trusting
//!   only it, with stubs for the parent (its nameservers) and the child
//!   (zonewarden), caching on, TTLs capped ([`super::unbound::Unbound::start_trusting`]).
//! - [`ValidatingLoop`]: asks a resolver a list of questions every 500 ms
//!   and records every answer that is not NOERROR/NXDOMAIN with AD, with
//!   the time and the question.
//!
//! Every process is killed on drop; every wait is bounded in time and
//! panics with the daemon's log when it runs out.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::dnssec::rdata::{DNSSECRData, DS};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use zonewarden::dnsclient;
use zonewarden::dnssec::parent::parse_ds;

use super::unbound::{Unbound, run};
use super::{free_port, have, require};

/// The programs a parent (and its tests) drive are installed.
pub fn peers_installed() {
    require("dig", "bind9-dnsutils");
    require("nsupdate", "bind9-dnsutils");
    for (p, package) in [
        ("named", "bind9"),
        ("knotd", "knot"),
        ("unbound", "unbound"),
    ] {
        assert!(
            have(p) || std::path::Path::new(&format!("/usr/sbin/{p}")).exists(),
            "{p} is not installed: apt-get install -y {package}"
        );
    }
}

/// How long a parent waits for its daemons or for a change to be served.
const WAIT: Duration = Duration::from_secs(30);

/// A daemon of the parent, killed on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn spawn(program: &str, args: &[&str], dir: &Path, log: PathBuf) -> Self {
        let child = super::peers::spawn(program, args, dir, &log);
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a program is (Debian puts daemons in sbin, which PATH may lack).
fn program(name: &str, package: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    require(name, package);
    name.to_string()
}

/// A loopback address other than 127.0.0.1 and a port free on it for UDP
/// and TCP (Knot and unbound bind any 127/8 address; BIND only addresses
/// of an interface, so it stays on 127.0.0.1).
fn free_loopback_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    for _ in 0..100 {
        let n = std::process::id()
            .wrapping_mul(2_654_435_761)
            .wrapping_add(NEXT.fetch_add(40_503, Ordering::Relaxed));
        let ip: IpAddr = format!(
            "127.{}.{}.{}",
            203 + n % 50,
            (n >> 8) % 256,
            2 + (n >> 16) % 250
        )
        .parse()
        .unwrap();
        let Ok(u) = std::net::UdpSocket::bind((ip, 0)) else {
            continue;
        };
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return SocketAddr::new(ip, port);
        }
    }
    panic!("no free loopback address and port");
}

/// What can be chosen about a parent.
#[derive(Debug, Clone)]
pub struct ParentOptions {
    /// The TTL of the child's DS RRset, and the parent's negative TTL.
    pub ds_ttl: u32,
    /// A second nameserver (Knot, a secondary of BIND).
    pub second: bool,
}

impl Default for ParentOptions {
    fn default() -> Self {
        Self {
            ds_ttl: 2,
            second: false,
        }
    }
}

/// A DS as compared here: key tag, algorithm, digest type, digest.
type DsKey = (u16, u8, u8, Vec<u8>);

fn ds_key(ds: &DS) -> DsKey {
    (
        ds.key_tag(),
        u8::from(ds.algorithm()),
        u8::from(ds.digest_type()),
        ds.digest().to_vec(),
    )
}

/// The DS set (sorted) a nameserver serves for `child`, if it answers
/// authoritatively and the answer is signed (an RRSIG over the DS RRset,
/// or for an empty set an NSEC with its RRSIG). None otherwise.
async fn served_ds(server: SocketAddr, child: &Name) -> Option<Vec<DsKey>> {
    let mut m = Message::new(0, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(child.clone(), RecordType::DS));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(true);
    m.set_edns(e);
    let a = dnsclient::exchange(server, m, None, 0, Duration::from_secs(2))
        .await
        .ok()?;
    if a.metadata.response_code != ResponseCode::NoError || !a.metadata.authoritative {
        return None;
    }
    let covers = |section: &[hickory_proto::rr::Record], t: RecordType| {
        section.iter().any(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) => s.input().type_covered == t,
            _ => false,
        })
    };
    let mut set: Vec<DsKey> = a
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DS(ds)) if r.name == *child => Some(ds_key(ds)),
            _ => None,
        })
        .collect();
    set.sort();
    let signed = if set.is_empty() {
        covers(&a.authorities, RecordType::NSEC)
    } else {
        covers(&a.answers, RecordType::DS)
    };
    signed.then_some(set)
}

/// The parent zone of the child under test, on BIND (and Knot).
pub struct Parent {
    /// The parent zone, e.g. `example.org.`.
    pub zone: Name,
    /// The child zone, e.g. `_acme.example.org.`.
    pub child: Name,
    /// Where the child's nameserver (zonewarden) listens, for stubs.
    pub child_ns_port: u16,
    pub options: ParentOptions,
    primary: Daemon,
    primary_addr: SocketAddr,
    second: Option<(Daemon, SocketAddr, PathBuf)>,
    second_frozen: bool,
    update_key: PathBuf,
    anchor: String,
    dir: tempfile::TempDir,
}

impl Parent {
    /// One parent nameserver (BIND), the child's DS RRset = `ds_lines`
    /// (DS records as `super::unbound::ds_line` prints them, or their
    /// RDATA; owner and TTL are the parent's).
    pub async fn start(child_zone: &str, child_ns_port: u16, ds_lines: &[String]) -> Self {
        Self::start_with(
            child_zone,
            child_ns_port,
            ds_lines,
            ParentOptions::default(),
        )
        .await
    }

    /// Two parent nameservers: BIND and a Knot secondary of it.
    pub async fn start_two(child_zone: &str, child_ns_port: u16, ds_lines: &[String]) -> Self {
        let options = ParentOptions {
            second: true,
            ..ParentOptions::default()
        };
        Self::start_with(child_zone, child_ns_port, ds_lines, options).await
    }

    pub async fn start_with(
        child_zone: &str,
        child_ns_port: u16,
        ds_lines: &[String],
        options: ParentOptions,
    ) -> Self {
        let named = program("named", "bind9");
        let child = Name::from_str(child_zone).unwrap();
        assert!(
            child.num_labels() >= 2,
            "{child_zone} has no parent to test with"
        );
        let zone = child.base_name();
        let ds = parse_lines(ds_lines);
        let second_addr = options.second.then(free_loopback_addr);
        // The port is picked free and then bound by named: if another test
        // took it in between, named does not serve and we try another.
        for attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            std::fs::create_dir_all(d.join("keys")).unwrap();
            let port = free_port();
            let primary_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
            std::fs::write(
                d.join("parent.db"),
                zone_text(&zone, &child, &ds, options.ds_ttl, second_addr),
            )
            .unwrap();
            let secret = zonewarden::tsig::Key::generate(
                Name::from_ascii("parent-update.").unwrap(),
                zonewarden::tsig::Algorithm::HmacSha256,
            )
            .unwrap()
            .secret_base64();
            let update_key = d.join("update.key");
            std::fs::write(
                &update_key,
                format!(
                    "key \"parent-update\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"
                ),
            )
            .unwrap();
            std::fs::write(
                d.join("named.conf"),
                named_conf(d, port, &zone, options.ds_ttl, second_addr),
            )
            .unwrap();
            let conf = d.join("named.conf");
            let mut primary = Daemon::spawn(
                &named,
                &["-g", "-n", "1", "-c", conf.to_str().unwrap()],
                d,
                d.join("named.log"),
            );
            // Up and signed: the DS RRset served with its RRSIG.
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut up = false;
            while Instant::now() < deadline && !primary.exited() {
                if served_ds(primary_addr, &child).await == Some(ds.clone()) {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !up {
                eprintln!(
                    "BIND did not serve the signed parent (attempt {attempt}):\n{}",
                    primary.log()
                );
                continue;
            }
            let anchor = read_anchor(&d.join("keys"), &zone);
            let mut parent = Self {
                zone: zone.clone(),
                child: child.clone(),
                child_ns_port,
                options: options.clone(),
                primary,
                primary_addr,
                second: None,
                second_frozen: false,
                update_key,
                anchor,
                dir,
            };
            if let Some(addr) = second_addr {
                parent.start_second(addr, &ds).await;
            }
            return parent;
        }
        panic!("BIND did not serve the parent zone three times");
    }

    /// Knot as a secondary of the parent zone at `addr`, waited for until
    /// it serves `ds`.
    async fn start_second(&mut self, addr: SocketAddr, ds: &[DsKey]) {
        let knotd = program("knotd", "knot");
        let d = self.dir.path().join("knot");
        for sub in ["run", "db", "zones"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let conf = d.join("knot.conf");
        std::fs::write(
            &conf,
            format!(
                r#"server:
    rundir: "{dir}/run"
    listen: {ip}@{port}
log:
  - target: stderr
    any: info
database:
    storage: "{dir}/db"
remote:
  - id: primary
    address: {primary}
acl:
  - id: notify_from_primary
    address: 127.0.0.0/8
    action: notify
template:
  - id: default
    storage: "{dir}/zones"
zone:
  - domain: {zone}
    master: primary
    acl: [notify_from_primary]
    zonefile-sync: -1
"#,
                dir = d.display(),
                ip = addr.ip(),
                port = addr.port(),
                primary = format_args!("{}@{}", self.primary_addr.ip(), self.primary_addr.port()),
                zone = self.zone,
            ),
        )
        .unwrap();
        let knot = Daemon::spawn(
            &knotd,
            &["-c", conf.to_str().unwrap()],
            &d,
            d.join("knot.log"),
        );
        self.second = Some((knot, addr, conf));
        self.wait_served(addr, ds, "the Knot secondary").await;
    }

    /// The parent's nameservers: BIND, then the Knot secondary if any.
    pub fn nameservers(&self) -> Vec<SocketAddr> {
        let mut v = vec![self.primary_addr];
        if let Some((_, a, _)) = &self.second {
            v.push(*a);
        }
        v
    }

    /// BIND, the primary (where `set_ds` sends its UPDATE).
    pub fn primary(&self) -> SocketAddr {
        self.primary_addr
    }

    /// The Knot secondary, if started.
    pub fn second(&self) -> Option<SocketAddr> {
        self.second.as_ref().map(|(_, a, _)| *a)
    }

    /// The parent's CSK as an unbound `trust-anchor:` value
    /// (`example.org. 2 IN DNSKEY 257 3 13 ...`).
    pub fn trust_anchor(&self) -> String {
        self.anchor.clone()
    }

    /// A validating unbound trusting only this parent: stubs for the parent
    /// (every nameserver) and for the child at `child` (zonewarden), TTLs
    /// capped at `cache_max_ttl`.
    pub async fn unbound(&self, child: SocketAddr, cache_max_ttl: u32) -> Unbound {
        let stubs = vec![
            (self.zone.to_string(), self.nameservers()),
            (self.child.to_string(), vec![child]),
        ];
        Unbound::start_trusting(&self.anchor, &stubs, cache_max_ttl).await
    }

    /// Replace the child's DS RRset by `ds_lines` (empty: no DS, the child
    /// becomes insecure) with nsupdate, then wait until BIND and the
    /// second nameserver serve exactly that set, signed; a frozen second
    /// nameserver only until it has been notified of the new serial.
    pub async fn set_ds(&self, ds_lines: &[String]) {
        let ds = parse_lines(ds_lines);
        let mut script = format!(
            "server {} {}\nzone {}\nupdate delete {} DS\n",
            self.primary_addr.ip(),
            self.primary_addr.port(),
            self.zone,
            self.child
        );
        for line in ds_lines {
            let rdata = parse_ds(line).unwrap();
            script.push_str(&format!(
                "update add {} {} IN DS {}\n",
                self.child, self.options.ds_ttl, rdata
            ));
        }
        script.push_str("send\n");
        let file = self.dir.path().join("set-ds.nsupdate");
        std::fs::write(&file, &script).unwrap();
        let (ok, out) = run(
            &program("nsupdate", "bind9-dnsutils"),
            &[
                "-k".into(),
                self.update_key.display().to_string(),
                file.display().to_string(),
            ],
        )
        .await;
        assert!(
            ok,
            "nsupdate failed: {out}\n{script}\nBIND log:\n{}",
            self.primary.log()
        );
        self.wait_served(self.primary_addr, &ds, "BIND").await;
        match (&self.second, self.second_frozen) {
            (Some((_, addr, _)), false) => self.wait_served(*addr, &ds, "the Knot secondary").await,
            (Some((knot, _, _)), true) => {
                // Frozen: it must at least have been told, so that what it
                // serves afterwards is its choice, not a NOTIFY in flight.
                let serial =
                    dnsclient::soa_serial(self.primary_addr, &self.zone, Duration::from_secs(2))
                        .await
                        .expect("BIND answers its SOA");
                let heard = format!("notify, incoming, remote {}@", self.primary_addr.ip());
                let deadline = Instant::now() + WAIT;
                while !knot
                    .log()
                    .lines()
                    .any(|l| l.contains(&heard) && l.ends_with(&format!("serial {serial}")))
                {
                    assert!(
                        Instant::now() < deadline,
                        "the frozen Knot secondary was not notified of serial {serial} within {WAIT:?}\n{}",
                        self.logs()
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            (None, _) => {}
        }
    }

    /// Do what a parent with CDS automation (RFC 8078) does: read the
    /// child's CDS RRset at `child_ns` and make the DS set match it (the
    /// delete form `0 0 0 00` empties it). The CDS is not validated here.
    /// Returns the DS lines set.
    pub async fn follow_cds(&self, child_ns: SocketAddr) -> Vec<String> {
        let cds = dnsclient::rrset(
            child_ns,
            &self.child,
            RecordType::CDS,
            Duration::from_secs(2),
        )
        .await
        .expect("the child answers its CDS RRset");
        let mut lines = Vec::new();
        for r in &cds {
            let RData::DNSSEC(DNSSECRData::CDS(c)) = &r.data else {
                continue;
            };
            match c.algorithm() {
                Some(alg) if !c.is_delete() => {
                    let ds = DS::new(c.key_tag(), alg, c.digest_type(), c.digest().to_vec());
                    lines.push(ds.to_string());
                }
                _ => {
                    lines.clear();
                    break;
                }
            }
        }
        self.set_ds(&lines).await;
        lines
    }

    async fn wait_served(&self, addr: SocketAddr, ds: &[DsKey], who: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let served = served_ds(addr, &self.child).await;
            if served.as_deref() == Some(ds) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{who} at {addr} does not serve the DS set {ds:?} signed within {WAIT:?} (serves {served:?})\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn knotc(&self, args: &[&str]) {
        let (_, _, conf) = self.second.as_ref().expect("no second nameserver");
        let out = Command::new(program("knotc", "knot"))
            .arg("-c")
            .arg(conf)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "knotc {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The second nameserver stops following the primary (NOTIFY and
    /// refresh are held) and keeps serving its last copy.
    /// Returns once Knot has frozen the zone (`zone-freeze` only queues the
    /// freeze; a NOTIFY handled before it would still be followed).
    pub async fn freeze_second(&mut self) {
        let frozen_lines = |p: &Self| {
            p.second
                .as_ref()
                .map(|(k, _, _)| k.log().matches("zone updates frozen").count())
                .unwrap_or(0)
        };
        let before = frozen_lines(self);
        self.knotc(&["zone-freeze", &self.zone.to_string()]);
        let deadline = Instant::now() + WAIT;
        while frozen_lines(self) == before {
            assert!(
                Instant::now() < deadline,
                "Knot did not freeze {} within {WAIT:?}\n{}",
                self.zone,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.second_frozen = true;
    }

    /// The second nameserver follows the primary again; returns once it
    /// serves the primary's DS set.
    pub async fn thaw_second(&mut self) {
        let zone = self.zone.to_string();
        self.knotc(&["zone-thaw", &zone]);
        self.knotc(&["zone-refresh", &zone]);
        self.second_frozen = false;
        let ds = served_ds(self.primary_addr, &self.child)
            .await
            .expect("BIND serves the DS set");
        let addr = self.second().unwrap();
        self.wait_served(addr, &ds, "the Knot secondary").await;
    }

    /// The daemons' logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = format!("BIND log:\n{}", self.primary.log());
        if let Some((k, _, _)) = &self.second {
            s.push_str(&format!("\nKnot log:\n{}", k.log()));
        }
        s
    }
}

/// The DS lines as compared (sorted), each checked.
fn parse_lines(lines: &[String]) -> Vec<DsKey> {
    let mut v: Vec<DsKey> = lines
        .iter()
        .map(|l| ds_key(&parse_ds(l).unwrap_or_else(|| panic!("not a DS: {l}"))))
        .collect();
    v.sort();
    v.dedup();
    v
}

fn zone_text(
    zone: &Name,
    child: &Name,
    ds: &[DsKey],
    ttl: u32,
    second: Option<SocketAddr>,
) -> String {
    let mut t = format!(
        "$TTL {ttl}\n\
         {zone} {ttl} IN SOA ns1.{zone} hostmaster.{zone} 1 60 10 86400 {ttl}\n\
         {zone} IN NS ns1.{zone}\n\
         ns1.{zone} IN A 127.0.0.1\n"
    );
    if let Some(a) = second {
        t.push_str(&format!(
            "{zone} IN NS ns2.{zone}\nns2.{zone} IN A {}\n",
            a.ip()
        ));
    }
    t.push_str(&format!(
        "{child} IN NS ns1.{child}\nns1.{child} IN A 127.0.0.1\n"
    ));
    for (tag, alg, digest_type, digest) in ds {
        let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
        t.push_str(&format!("{child} IN DS {tag} {alg} {digest_type} {hex}\n"));
    }
    t
}

fn named_conf(d: &Path, port: u16, zone: &Name, ttl: u32, second: Option<SocketAddr>) -> String {
    let also_notify = match second {
        Some(a) => format!("also-notify {{ {} port {}; }};", a.ip(), a.port()),
        None => String::new(),
    };
    format!(
        r#"controls {{ }};
options {{
    directory "{d}";
    key-directory "{d}/keys";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file none;
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    recursion no;
    dnssec-validation no;
    check-names primary ignore;
    notify explicit;
    notify-delay 0;
    notify-source 127.0.0.1;
}};
include "{d}/update.key";
dnssec-policy "parent" {{
    keys {{ csk lifetime unlimited algorithm ecdsap256sha256; }};
    dnskey-ttl {ttl};
    max-zone-ttl 60;
    zone-propagation-delay 1;
}};
zone "{zone}" {{
    type primary;
    file "{d}/parent.db";
    dnssec-policy "parent";
    allow-update {{ key "parent-update"; }};
    allow-transfer {{ 127.0.0.0/8; }};
    {also_notify}
}};
"#,
        d = d.display(),
    )
}

/// The CSK BIND made for the parent, from its key file, as one line.
fn read_anchor(keys: &Path, zone: &Name) -> String {
    for e in std::fs::read_dir(keys).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "key") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Some(line) = text
                .lines()
                .find(|l| !l.starts_with(';') && l.contains("DNSKEY"))
            {
                assert!(
                    line.to_lowercase()
                        .starts_with(&zone.to_string().to_lowercase()),
                    "{path:?}: {line}"
                );
                return line.trim().to_string();
            }
        }
    }
    panic!("BIND made no key for {zone} in {keys:?}");
}

/// One question the [`ValidatingLoop`] asks.
pub type Question = (Name, RecordType);

/// What a [`ValidatingLoop`] saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Questions asked (answered or not).
    pub queries: usize,
    /// Every answer that was not NOERROR/NXDOMAIN with AD, as
    /// `+12.5s name TYPE: what`.
    pub failures: Vec<String>,
}

/// Asks a validating resolver `questions` every 500 ms (RD and DO set, 2 s
/// timeout each) until stopped or `max` has passed, recording every answer
/// that is not NOERROR or NXDOMAIN with the AD flag (SERVFAIL, no AD, a
/// timeout), with the time since the start and the question.
pub struct ValidatingLoop {
    report: Arc<Mutex<Report>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ValidatingLoop {
    pub fn start(resolver: SocketAddr, questions: Vec<Question>, max: Duration) -> Self {
        Self::start_with(resolver, questions, max, false)
    }

    /// Like [`ValidatingLoop::start`], but an insecure answer (NOERROR or
    /// NXDOMAIN without AD) is fine too: only SERVFAIL and timeouts count.
    /// For a zone that is going unsigned: secure until the parent's DS is
    /// gone, insecure after, and never bogus in between.
    pub fn start_allowing_insecure(
        resolver: SocketAddr,
        questions: Vec<Question>,
        max: Duration,
    ) -> Self {
        Self::start_with(resolver, questions, max, true)
    }

    fn start_with(
        resolver: SocketAddr,
        questions: Vec<Question>,
        max: Duration,
        insecure_ok: bool,
    ) -> Self {
        let report = Arc::new(Mutex::new(Report::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let r = report.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while start.elapsed() < max {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tick.tick() => {}
                }
                for (name, rtype) in &questions {
                    let verdict =
                        match dnsclient::resolve(resolver, name, *rtype, Duration::from_secs(2))
                            .await
                        {
                            Ok(a) => {
                                let rcode = a.metadata.response_code;
                                let ok =
                                    matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain)
                                        && (a.metadata.authentic_data || insecure_ok);
                                (!ok).then(|| {
                                    format!(
                                        "{} ad={}",
                                        zonewarden::dnssec::parent::rcode_name(&rcode),
                                        a.metadata.authentic_data
                                    )
                                })
                            }
                            Err(e) => Some(e.to_string()),
                        };
                    let mut rep = r.lock().unwrap();
                    rep.queries += 1;
                    if let Some(what) = verdict {
                        rep.failures.push(format!(
                            "+{:.1}s {name} {rtype}: {what}",
                            start.elapsed().as_secs_f64()
                        ));
                    }
                }
            }
        });
        Self {
            report,
            stop: Some(stop),
            task,
        }
    }

    /// What it saw so far.
    pub fn report(&self) -> Report {
        self.report.lock().unwrap().clone()
    }

    /// Stop (after the round in progress) and return what it saw.
    pub async fn stop(mut self) -> Report {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
        self.report()
    }
}

impl Drop for ValidatingLoop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

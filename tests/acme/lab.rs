//! The end-to-end lab: everything a real issuance touches, on loopback,
//! from Debian's packages, started per test and stopped on drop.
//!
//! - the parent zone `example.test` on Knot, DNSSEC-signed by Knot, with
//!   the per-machine CNAMEs into `_acme.example.test` and its NS + DS;
//! - zonewarden (the real binary) serving `_acme.example.test`, signed,
//!   with a Knot secondary that follows it by NOTIFY + IXFR (two NS);
//! - a validating unbound whose only trust anchor is the parent's KSK;
//! - pebble, the ACME test CA, validating DNS-01 through that unbound.
//!
//! Each server sits on port 53 of its own loopback address, since glue
//! cannot carry ports and lego asks every NS on port 53. Clients run in a
//! private mount namespace whose /etc/resolv.conf names only the lab's
//! unbound (`unshare -m` + a bind mount): lego looks nameserver names up
//! through the system resolver whatever `--dns.resolvers` says, and no
//! query may leave the machine. That needs root, as CI has.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use zonewarden::dnsclient;
use zonewarden::tsig::{Algorithm, Key};

use crate::common::unbound::free_loopback_53;
use crate::common::{require, write};

pub const PARENT: &str = "example.test.";
pub const ZONE: &str = "_acme.example.test.";
/// A second delegated zone whose names are hosts (no `_` label), for
/// clients that cannot follow CNAMEs (certbot's dns-rfc2136).
pub const HOSTS_ZONE: &str = "dyn.example.test.";
/// How long one client run may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(240);

pub const ZW: &str = env!("CARGO_BIN_EXE_zonewarden");

/// A child process killed on drop, its output in a log file.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} (scripts/test installs it)"));
        Self {
            name: name.into(),
            child,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(st) = self.child.try_wait().unwrap() {
            panic!("{} exited ({st}):\n{}", self.name, self.log());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a lab holds besides the defaults.
pub struct Setup {
    /// Machines: name and TSIG algorithm, made with `zonewarden machine add`.
    pub machines: Vec<(&'static str, &'static str)>,
    /// Machines (hmac-sha256) in [`HOSTS_ZONE`]; the zone exists only with them.
    pub host_machines: Vec<&'static str>,
    /// Extra grants appended to a machine's ACL file.
    pub acl_extra: Vec<(&'static str, &'static str)>,
    /// Names in the parent (relative) whose `_acme-challenge` gets a CNAME
    /// to the delegated name `machine add` prints for that host.
    pub cnames: Vec<&'static str>,
    /// `challenge-max-age` of the server, seconds.
    pub challenge_max_age: u64,
    /// The zone's `[limits] records-per-name` (default: the server's).
    pub records_per_name: Option<usize>,
    /// The HTTP API on the primary's address, port 8053, with acme-dns
    /// registration open to loopback (issue 14).
    pub acme_dns: bool,
    /// zonewarden's own HTTPS certificate from pebble (issue 14): an
    /// HTTPS listener on the primary's port 8443 for [`HTTPS_NAME`],
    /// checked every 2 s and renewed at each check (`renew-before` beyond
    /// any lifetime). Add "api" to `cnames` for the challenge's CNAME.
    pub https_acme: bool,
}

/// The name zonewarden's own HTTPS certificate is for (`https_acme`).
pub const HTTPS_NAME: &str = "api.example.test";

impl Default for Setup {
    fn default() -> Self {
        Self {
            machines: vec![],
            host_machines: vec![],
            acl_extra: vec![],
            cnames: vec![],
            challenge_max_age: 3600,
            records_per_name: None,
            acme_dns: false,
            https_acme: false,
        }
    }
}

pub struct Lab {
    pub dir: PathBuf,
    /// zonewarden, the Knot secondary, unbound (each on port 53).
    pub primary: String,
    pub secondary: String,
    pub resolver: String,
    /// `zonewarden machine add` output per machine.
    pub machine_add: BTreeMap<String, String>,
    /// pebble's directory URL and the CA file that trusts its TLS.
    pub acme_url: String,
    pub acme_ca: PathBuf,
    /// pebble's management port (`/roots/0`: the root it issues under).
    #[allow(dead_code)]
    pub acme_mgmt_port: u16,
    resolv_conf: PathBuf,
    procs: Vec<Proc>,
    _tmp: tempfile::TempDir,
}

/// One client run: exit success, stdout + stderr, wall time.
pub struct Run {
    pub ok: bool,
    /// The exit status (None: killed by a signal).
    pub code: Option<i32>,
    pub output: String,
    pub took: Duration,
}

fn distinct_loopbacks(n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for _ in 0..100 {
        let ip = free_loopback_53();
        if !out.contains(&ip) {
            out.push(ip);
        }
        if out.len() == n {
            return out;
        }
    }
    panic!("no {n} distinct loopback addresses with a free port 53");
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run a command that must succeed; its stdout.
fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh(cmd: &str, dir: &Path) -> String {
    run_ok(
        Command::new("sh").arg("-c").arg(cmd).current_dir(dir),
        &format!("`{cmd}`"),
    )
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn addr(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 53)
}

/// Poll `check` every 100 ms for up to `limit`; panic with `what` after.
async fn until<F, Fut>(limit: Duration, what: impl Fn() -> String, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{}", what());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Lab {
    pub async fn start(setup: Setup) -> Self {
        assert!(
            is_root(),
            "the end-to-end tests need root: servers bind port 53 on loopback addresses and \
             clients run in a private mount namespace (unshare -m); CI runs as root"
        );
        for (p, pkg) in [
            ("knotd", "knot"),
            ("unbound", "unbound"),
            ("pebble", "pebble"),
            ("lego", "lego"),
            ("certbot", "certbot"),
            ("dehydrated", "dehydrated"),
            ("openssl", "openssl"),
            ("unshare", "util-linux"),
        ] {
            require(p, pkg);
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let ips = distinct_loopbacks(4);
        let (primary, parent, secondary, resolver) = (
            ips[0].clone(),
            ips[1].clone(),
            ips[2].clone(),
            ips[3].clone(),
        );
        let mut procs = Vec::new();
        let (acme_port, mgmt_port) = (free_tcp_port(), free_tcp_port());

        // zonewarden: config, zone, the secondary's transfer key, machines.
        for sub in [
            "zones", "acl", "keys", "data", "knotp/db", "knots/db", "unbound", "pebble",
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        write(
            &dir.join("zonewarden.toml"),
            &format!(
                "listen = [\"{primary}:53\"]\n{http}data-dir = \"data\"\n\
                 zones-dir = \"zones\"\nacl-dir = \"acl\"\nkeys-dir = \"keys\"\n\
                 challenge-max-age = {}\nexpiry-interval = 1\nreload-interval = 1\n{https}",
                setup.challenge_max_age,
                https = if setup.https_acme {
                    format!(
                        "https = \"{primary}:8443\"\n[https-acme]\n\
                         directory = \"https://127.0.0.1:{acme_port}/dir\"\n\
                         names = [\"{HTTPS_NAME}\"]\nca-root = \"pebble/ca.pem\"\n\
                         check-interval = 2\npropagation-timeout = 30\n\
                         renew-before = 315360000\n"
                    )
                } else {
                    String::new()
                },
                http = if setup.acme_dns {
                    format!(
                        "http = \"{primary}:8053\"\nacme-dns-zone = \"{ZONE}\"\n\
                         acme-dns-register = [\"127.0.0.0/8\"]\n"
                    )
                } else {
                    "http = \"off\"\n".to_string()
                }
            ),
        );
        write(
            &dir.join(format!("zones/{ZONE}toml")),
            &format!(
                r#"origin = "{ZONE}"
contact = "hostmaster@example.test"
nameservers = ["ns1.{ZONE}", "ns2.{ZONE}"]
[glue]
"ns1" = ["{primary}"]
"ns2" = ["{secondary}"]
[soa]
ttl = 60
refresh = 300
retry = 60
expire = 1209600
minimum = 1
[[secondary]]
address = "{secondary}:53"
key = "xfr"
name = "ns2.{ZONE}"
{limits}"#,
                limits = setup
                    .records_per_name
                    .map(|n| format!("[limits]\nrecords-per-name = {n}\n"))
                    .unwrap_or_default()
                    // acme-dns serves its TXT with TTL 1: a renewal's new
                    // value is not hidden by the resolver's cached old one.
                    // The own certificate is renewed every 2 s (https_acme):
                    // the same.
                    + if setup.acme_dns || setup.https_acme {
                        "[ttl]\nchallenge = 1\n"
                    } else {
                        ""
                    }
            ),
        );
        if !setup.host_machines.is_empty() {
            // Served by the primary only (its NS is the primary's name).
            write(
                &dir.join(format!("zones/{HOSTS_ZONE}toml")),
                &format!(
                    "origin = \"{HOSTS_ZONE}\"\ncontact = \"hostmaster@example.test\"\n\
                     nameservers = [\"ns1.{ZONE}\"]\n[soa]\nminimum = 1\n"
                ),
            );
        }
        let xfr = Key::generate(name("xfr."), Algorithm::HmacSha256).unwrap();
        zonewarden::tsig::write_key_file(&dir.join("keys/xfr.key"), &xfr).unwrap();
        let mut machine_add = BTreeMap::new();
        let all = setup.machines.iter().map(|(m, alg)| (*m, ZONE, *alg));
        let hosts = setup
            .host_machines
            .iter()
            .map(|m| (*m, HOSTS_ZONE, "hmac-sha256"));
        for (m, zone, alg) in all.chain(hosts) {
            let out = run_ok(
                Command::new(ZW)
                    .args(["--config", "zonewarden.toml", "machine", "add", m])
                    .args(["--zone", zone, "--algorithm", alg])
                    .current_dir(&dir),
                &format!("machine add {m}"),
            );
            machine_add.insert(m.to_string(), out);
        }
        for (m, extra) in &setup.acl_extra {
            let p = dir.join(format!("acl/{m}.toml"));
            let text = std::fs::read_to_string(&p).unwrap();
            write(&p, &format!("{text}\n{extra}\n"));
        }
        let mut zw = Proc::spawn(
            "zonewarden",
            Command::new(ZW)
                .args(["--config", "zonewarden.toml", "serve"])
                .current_dir(&dir),
            dir.join("zonewarden.log"),
        );
        until(
            Duration::from_secs(20),
            || format!("zonewarden did not start:\n{}", zw.log()),
            || async {
                dnsclient::soa_serial(addr(&primary), &name(ZONE), Duration::from_secs(1))
                    .await
                    .is_ok()
            },
        )
        .await;
        zw.assert_running();
        procs.push(zw);
        let ds_of = |zone: &str| {
            sh(&format!("{ZW} --config zonewarden.toml ds {zone}"), &dir)
                .lines()
                .find(|l| l.contains(" DS "))
                .expect("zonewarden ds prints a DS")
                .to_string()
        };
        let mut ds = ds_of(ZONE);
        if !setup.host_machines.is_empty() {
            ds = format!("{ds}\ndyn NS ns1.{ZONE}\n{}", ds_of(HOSTS_ZONE));
        }

        // The parent zone on Knot, signed by Knot.
        let mut zone = format!(
            "$ORIGIN {PARENT}\n$TTL 60\n\
             @ SOA ns.{PARENT} hostmaster.{PARENT} 1 300 60 1209600 1\n\
             @ NS ns.{PARENT}\nns A {parent}\n\
             _acme NS ns1._acme\n_acme NS ns2._acme\n\
             ns1._acme A {primary}\nns2._acme A {secondary}\n{ds}\n"
        );
        for host in &setup.cnames {
            zone.push_str(&format!(
                "_acme-challenge.{host} CNAME _acme-challenge.{host}._acme\n"
            ));
        }
        write(&dir.join("knotp/example.test.zone"), &zone);
        write(
            &dir.join("knotp/knot.conf"),
            &format!(
                "server:\n  rundir: \"{d}/knotp\"\n  listen: {parent}@53\n\
                 log:\n  - target: stderr\n    any: info\n\
                 database:\n  storage: \"{d}/knotp/db\"\n\
                 template:\n  - id: default\n    storage: \"{d}/knotp\"\n    dnssec-signing: on\n\
                 zone:\n  - domain: {PARENT}\n    file: \"example.test.zone\"\n",
                d = dir.display()
            ),
        );
        procs.push(Proc::spawn(
            "knotd (parent)",
            Command::new(knotd()).args(["-c", &format!("{}/knotp/knot.conf", dir.display())]),
            dir.join("knotp/knot.log"),
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        let ksk = loop {
            let keys = dnsclient::rrset(
                addr(&parent),
                &name(PARENT),
                RecordType::DNSKEY,
                Duration::from_secs(1),
            )
            .await
            .unwrap_or_default();
            if let Some(k) = keys
                .iter()
                .map(|r| r.data.to_string())
                .find(|d| d.starts_with("257 "))
            {
                break k;
            }
            assert!(
                Instant::now() < deadline,
                "Knot did not serve a signed {PARENT}:\n{}",
                procs.last().map(Proc::log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };

        // The Knot secondary of the delegated zone.
        write(
            &dir.join("knots/knot.conf"),
            &format!(
                "server:\n  rundir: \"{d}/knots\"\n  listen: {secondary}@53\n\
                 log:\n  - target: stderr\n    any: info\n\
                 database:\n  storage: \"{d}/knots/db\"\n\
                 key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {secret}\n\
                 remote:\n  - id: primary\n    address: {primary}@53\n    key: xfr\n\
                 acl:\n  - id: notify\n    address: {primary}\n    key: xfr\n    action: notify\n\
                 template:\n  - id: default\n    storage: \"{d}/knots\"\n\
                 zone:\n  - domain: {ZONE}\n    master: primary\n    acl: [notify]\n",
                d = dir.display(),
                secret = xfr.secret_base64()
            ),
        );
        procs.push(Proc::spawn(
            "knotd (secondary)",
            Command::new(knotd()).args(["-c", &format!("{}/knots/knot.conf", dir.display())]),
            dir.join("knots/knot.log"),
        ));
        until(
            Duration::from_secs(20),
            || "the Knot secondary did not load the zone".into(),
            || async {
                dnsclient::soa_serial(addr(&secondary), &name(ZONE), Duration::from_secs(1))
                    .await
                    .is_ok()
            },
        )
        .await;

        // The validating resolver: trust anchor = the parent's KSK only.
        write(
            &dir.join("unbound/unbound.conf"),
            &format!(
                "server:\n  interface: {resolver}\n  port: 53\n  do-ip6: no\n\
                 do-not-query-localhost: no\n  chroot: \"\"\n  username: \"\"\n  pidfile: \"\"\n\
                 directory: \"{d}/unbound\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n\
                 val-log-level: 2\n  module-config: \"validator iterator\"\n\
                 trust-anchor: \"{PARENT} DNSKEY {ksk}\"\n  local-zone: \"test.\" nodefault\n\
                 num-threads: 1\n  so-reuseport: no\n\
                 stub-zone:\n  name: \"{PARENT}\"\n  stub-addr: {parent}\n\
                 remote-control:\n  control-enable: no\n",
                d = dir.display()
            ),
        );
        procs.push(Proc::spawn(
            "unbound",
            Command::new(unbound()).args([
                "-d",
                "-c",
                &format!("{}/unbound/unbound.conf", dir.display()),
            ]),
            dir.join("unbound/unbound.log"),
        ));
        until(
            Duration::from_secs(20),
            || "unbound does not validate the delegation to zonewarden".into(),
            || async {
                match dnsclient::resolve(
                    addr(&resolver),
                    &name(ZONE),
                    RecordType::SOA,
                    Duration::from_secs(2),
                )
                .await
                {
                    Ok(m) => {
                        m.metadata.response_code == ResponseCode::NoError
                            && m.metadata.authentic_data
                    }
                    Err(_) => false,
                }
            },
        )
        .await;
        let resolv_conf = dir.join("resolv.conf");
        write(&resolv_conf, &format!("nameserver {resolver}\n"));

        // pebble, with a TLS certificate of our own CA.
        let p = dir.join("pebble");
        sh(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
               -out ca.pem -days 2 -subj '/CN=zonewarden lab CA' 2>/dev/null && \
             openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
               -out cert.csr -subj '/CN=localhost' 2>/dev/null && \
             printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && \
             openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
               -out cert.pem -days 2 -extfile ext 2>/dev/null",
            &p,
        );
        write(
            &p.join("pebble.json"),
            &format!(
                r#"{{"pebble": {{"listenAddress": "127.0.0.1:{acme_port}", "managementListenAddress": "127.0.0.1:{mgmt_port}", "certificate": "{d}/cert.pem", "privateKey": "{d}/key.pem", "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}"#,
                d = p.display()
            ),
        );
        let mut pebble = Proc::spawn(
            "pebble",
            Command::new("pebble")
                .args(["-config", &format!("{}/pebble.json", p.display())])
                .args(["-dnsserver", &format!("{resolver}:53")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0")
                .env_remove("PEBBLE_VA_ALWAYS_VALID"),
            p.join("pebble.log"),
        );
        until(
            Duration::from_secs(20),
            || "pebble did not start".into(),
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", acme_port))
                    .await
                    .is_ok()
            },
        )
        .await;
        pebble.assert_running();
        procs.push(pebble);

        Self {
            acme_url: format!("https://127.0.0.1:{acme_port}/dir"),
            acme_ca: p.join("ca.pem"),
            acme_mgmt_port: mgmt_port,
            dir,
            primary,
            secondary,
            resolver,
            machine_add,
            resolv_conf,
            procs,
            _tmp: tmp,
        }
    }

    /// Add `owner CNAME target` to the parent zone (Knot signs it), as
    /// the user of an acme-dns account does once it is registered
    /// (tests/acme_dns_certbot.rs; tests/acme.rs does not use it).
    #[allow(dead_code)]
    pub fn parent_cname(&self, owner: &str, target: &str) {
        let conf = format!("{}/knotp/knot.conf", self.dir.display());
        let knotc = sbin("knotc");
        for args in [
            vec!["zone-begin", PARENT],
            vec!["zone-set", PARENT, owner, "60", "CNAME", target],
            vec!["zone-commit", PARENT],
        ] {
            run_ok(
                Command::new(&knotc).arg("-c").arg(&conf).args(&args),
                &format!("knotc {args:?}"),
            );
        }
    }

    pub fn key_file(&self, machine: &str) -> PathBuf {
        self.dir.join(format!("keys/{machine}.key"))
    }

    /// Every server's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for p in &self.procs {
            let log = p.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            s.push_str(&format!("---- {} (last 40 lines)\n", p.name));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// Run a client in a private mount namespace whose /etc/resolv.conf
    /// names only the lab's resolver; bounded in time.
    pub async fn client(&self, program: &str, args: &[String], env: &[(String, String)]) -> Run {
        let mut cmd = tokio::process::Command::new("unshare");
        cmd.arg("-m")
            .arg("sh")
            .arg("-c")
            .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
            .arg(&self.resolv_conf)
            .arg(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let start = Instant::now();
        let out = tokio::time::timeout(CLIENT_LIMIT, cmd.output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{program} ran longer than {CLIENT_LIMIT:?}\n{}",
                    self.logs()
                )
            })
            .unwrap();
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            took: start.elapsed(),
        }
    }

    /// The TXT values the lab's validating resolver returns (what the CA
    /// sees), and whether they were validated (AD).
    pub async fn txt_via_resolver(&self, qname: &str) -> (Vec<String>, bool) {
        let m = dnsclient::resolve(
            addr(&self.resolver),
            &name(qname),
            RecordType::TXT,
            Duration::from_secs(3),
        )
        .await
        .unwrap();
        let values = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                hickory_proto::rr::RData::TXT(t) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        (values, m.metadata.authentic_data)
    }

    /// The TXT values one of the zone's nameservers serves (no cache).
    pub async fn txt_at(&self, ip: &str, qname: &str) -> Vec<String> {
        dnsclient::txt(addr(ip), &name(qname), Duration::from_secs(2))
            .await
            .unwrap()
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn knotd() -> String {
    sbin("knotd")
}

fn unbound() -> String {
    sbin("unbound")
}

fn sbin(p: &str) -> String {
    for d in ["/usr/sbin", "/usr/bin", "/sbin"] {
        let f = format!("{d}/{p}");
        if Path::new(&f).exists() {
            return f;
        }
    }
    p.to_string()
}

/// `KEY=VALUE` words of the lines of a `machine add` section that start
/// with one of `prefixes` (the copy-paste settings, as a user takes them).
pub fn settings_from(output: &str, section: &str, prefixes: &[&str]) -> Vec<(String, String)> {
    let body = output
        .split(&format!("-- {section}"))
        .nth(1)
        .unwrap_or_else(|| panic!("machine add prints no {section:?} section:\n{output}"));
    let body = body.split("\n-- ").next().unwrap();
    body.split_whitespace()
        .filter(|w| prefixes.iter().any(|p| w.starts_with(p)))
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

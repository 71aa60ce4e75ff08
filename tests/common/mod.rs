//! Test harness: a zonewarden server in this process on 127.0.0.1:0, with
//! its own zones, ACLs, keys and database in a temporary directory, and a
//! small wire-level client that can send anything (including what a real
//! client never would) over UDP or TCP.
#![allow(dead_code)]

pub mod parent;
pub mod peers;
pub mod secondary;
pub mod unbound;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zonewarden::tsig::{self, Algorithm, Key};
use zonewarden::{Config, ManualClock, Running};

pub const ZONE: &str = "_acme.example.org.";

pub const ZONE_FILE: &str = r#"
origin = "_acme.example.org."
contact = "hostmaster@example.org"
nameservers = ["ns1._acme.example.org."]
[glue]
"ns1" = ["127.0.0.1"]
[ttl]
min = 10
max = 600
[limits]
records-per-name = 8
records-per-zone = 200
rdata-size = 512
[[record]]
name = "static"
type = "TXT"
data = '"from the zone file"'
"#;

pub const OTHER_ZONE_FILE: &str = r#"
origin = "other.test."
contact = "hostmaster.other.test."
nameservers = ["ns.other.test."]
[glue]
"ns" = ["127.0.0.2"]
"#;

pub const MX1_ACL: &str = r#"
zones = ["_acme.example.org."]
[[grant]]
name = "_acme-challenge.{machine}"
types = ["TXT"]
max-rrset = 3
[[grant]]
name = "_*._tcp.{machine}"
types = ["TLSA"]
"#;

pub const WWW1_ACL: &str = r#"
[[grant]]
name = "_acme-challenge.{machine}"
types = ["TXT"]
[[grant]]
name = "shared"
types = ["TXT"]
"#;

pub const NETBOX_ACL: &str = r#"
networks = ["192.0.2.0/24"]
[[grant]]
name = "_acme-challenge.{machine}"
types = ["TXT"]
"#;

pub const OPS_ACL: &str = r#"
role = "admin"
"#;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub clock: Arc<ManualClock>,
    pub server: Option<Running>,
    pub addr: SocketAddr,
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Keys with chosen algorithms, written before start (others are generated).
pub const PRESET_KEYS: &[(&str, Algorithm)] = &[
    ("mx1", Algorithm::HmacSha256),
    ("www1", Algorithm::HmacSha256),
    ("sha1box", Algorithm::HmacSha1),
    ("md5box", Algorithm::HmacMd5),
    ("sha512box", Algorithm::HmacSha512),
];

impl Harness {
    pub fn layout(dir: &Path) -> Config {
        write(&dir.join("zones/acme.toml"), ZONE_FILE);
        write(&dir.join("zones/other.toml"), OTHER_ZONE_FILE);
        write(&dir.join("acl/mx1.toml"), MX1_ACL);
        write(&dir.join("acl/www1.toml"), WWW1_ACL);
        write(&dir.join("acl/netbox.toml"), NETBOX_ACL);
        write(&dir.join("acl/ops.toml"), OPS_ACL);
        for name in ["sha1box", "md5box", "sha512box"] {
            write(
                &dir.join(format!("acl/{name}.toml")),
                "[[grant]]\nname = \"_acme-challenge.{machine}\"\ntypes = [\"TXT\"]\n",
            );
        }
        let keys = dir.join("data/keys");
        std::fs::create_dir_all(&keys).unwrap();
        for (name, alg) in PRESET_KEYS {
            let key = Key::generate(Name::from_ascii(format!("{name}.")).unwrap(), *alg).unwrap();
            tsig::write_key_file(&keys.join(format!("{name}.key")), &key).unwrap();
        }
        let mut config = Config::embedded_default().with_data_dir(dir.join("data"));
        config.listen = vec!["127.0.0.1:0".parse().unwrap()];
        config.http = Some("127.0.0.1:0".parse().unwrap());
        config.zones_dir = dir.join("zones");
        config.acl_dir = dir.join("acl");
        config
    }

    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Start with the standard layout, after `edit` may change files or config.
    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Self::layout(dir.path());
        edit(&mut config);
        let clock = Arc::new(ManualClock::starting_now());
        let server = zonewarden::start(config.clone(), clock.clone())
            .await
            .expect("server starts");
        let addr = server.dns_addrs()[0];
        Self {
            dir,
            config,
            clock,
            server: Some(server),
            addr,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Stop and start again on the same files and database (the port may change).
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        let mut config = self.config.clone();
        config.listen = vec![self.addr];
        let server = match zonewarden::start(config, self.clock.clone()).await {
            Ok(s) => s,
            Err(_) => {
                let mut config = self.config.clone();
                config.listen = vec!["127.0.0.1:0".parse().unwrap()];
                zonewarden::start(config, self.clock.clone())
                    .await
                    .expect("server restarts")
            }
        };
        self.addr = server.dns_addrs()[0];
        self.server = Some(server);
    }

    /// The server running in this process.
    pub fn server(&self) -> &zonewarden::Running {
        self.server.as_ref().unwrap()
    }

    pub fn key(&self, machine: &str) -> Key {
        let path = self.path(&format!("data/keys/{machine}.key"));
        tsig::read_key_file(&path).unwrap().remove(0)
    }

    pub async fn udp(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        udp_exchange(self.addr, bytes).await
    }

    pub async fn tcp(&self, bytes: &[u8]) -> Vec<u8> {
        tcp_exchange(self.addr, bytes).await
    }

    /// A plain query over UDP with EDNS.
    pub async fn query(&self, name: &str, rtype: RecordType) -> Message {
        let msg = query_msg(name, rtype, true);
        let resp = self.udp(&msg.to_vec().unwrap()).await.expect("an answer");
        Message::from_vec(&resp).unwrap()
    }

    /// Sign with `machine`'s key at the harness clock's time, send over TCP, parse.
    pub async fn update(&self, machine: &str, msg: Message) -> Message {
        let key = self.key(machine);
        let bytes = sign(msg, &key, self.clock_now());
        Message::from_vec(&self.tcp(&bytes).await).unwrap()
    }

    pub async fn update_rcode(&self, machine: &str, msg: Message) -> ResponseCode {
        self.update(machine, msg).await.metadata.response_code
    }

    pub fn clock_now(&self) -> u64 {
        use zonewarden::Clock;
        self.clock.now()
    }

    /// The TXT strings at a name, as served.
    pub async fn txt(&self, name: &str) -> Vec<String> {
        let m = self.query(name, RecordType::TXT).await;
        let mut out: Vec<String> = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    pub async fn serial(&self, zone: &str) -> u32 {
        let m = self.query(zone, RecordType::SOA).await;
        match &m.answers[0].data {
            RData::SOA(s) => s.serial,
            other => panic!("not a SOA: {other:?}"),
        }
    }
}

pub fn sign(mut msg: Message, key: &Key, now: u64) -> Vec<u8> {
    let unsigned = msg.to_vec().unwrap();
    let (tsig, _mac) = tsig::sign_request(&unsigned, key, now, 300);
    msg.set_signature(Box::new(tsig));
    msg.to_vec().unwrap()
}

pub async fn udp_exchange(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let local = if addr.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let sock = tokio::net::UdpSocket::bind(local).await.unwrap();
    sock.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub async fn tcp_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&(bytes.len() as u16).to_be_bytes())
            .await
            .unwrap();
        s.write_all(bytes).await.unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.unwrap();
        buf
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("TCP answer within 10 s")
}

pub fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// A name relative to the test zone.
pub fn zname(rel: &str) -> Name {
    if rel.is_empty() {
        name(ZONE)
    } else {
        name(&format!("{rel}.{ZONE}"))
    }
}

pub fn query_msg(qname: &str, rtype: RecordType, edns: bool) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name(qname), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

pub fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(4242);
    NEXT.fetch_add(7, Ordering::Relaxed)
}

/// An UPDATE for `zone` with the given prerequisites and updates.
pub fn update_msg(zone: &str, prereqs: Vec<Record>, updates: Vec<Record>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Update);
    let mut q = Query::query(name(zone), RecordType::SOA);
    q.set_query_class(DNSClass::IN);
    m.add_query(q);
    m.insert_answers(prereqs);
    m.insert_authorities(updates);
    m
}

pub fn rr(owner: &Name, ttl: u32, rtype: RecordType, data: &str) -> Record {
    Record::from_rdata(
        owner.clone(),
        ttl,
        RData::try_from_str(rtype, data).unwrap(),
    )
}

/// Add (class IN).
pub fn add(owner: &Name, ttl: u32, rtype: RecordType, data: &str) -> Record {
    rr(owner, ttl, rtype, data)
}

fn empty(owner: &Name, rtype: RecordType, class: DNSClass) -> Record {
    let mut r = Record::update0(owner.clone(), 0, rtype);
    r.dns_class = class;
    r
}

/// Delete an RRset (class ANY, type T).
pub fn del_rrset(owner: &Name, rtype: RecordType) -> Record {
    empty(owner, rtype, DNSClass::ANY)
}

/// Delete all RRsets at a name (class ANY, type ANY).
pub fn del_all(owner: &Name) -> Record {
    empty(owner, RecordType::ANY, DNSClass::ANY)
}

/// Delete one RR (class NONE).
pub fn del_rr(owner: &Name, rtype: RecordType, data: &str) -> Record {
    let mut r = rr(owner, 0, rtype, data);
    r.dns_class = DNSClass::NONE;
    r
}

/// Prerequisite: RRset exists, value independent.
pub fn pre_exists(owner: &Name, rtype: RecordType) -> Record {
    empty(owner, rtype, DNSClass::ANY)
}

/// Prerequisite: RRset exists with exactly these values (one RR per call).
pub fn pre_value(owner: &Name, rtype: RecordType, data: &str) -> Record {
    rr(owner, 0, rtype, data)
}

/// Prerequisite: RRset does not exist.
pub fn pre_absent(owner: &Name, rtype: RecordType) -> Record {
    empty(owner, rtype, DNSClass::NONE)
}

/// Prerequisite: name is in use.
pub fn pre_in_use(owner: &Name) -> Record {
    empty(owner, RecordType::ANY, DNSClass::ANY)
}

/// Prerequisite: name is not in use.
pub fn pre_not_in_use(owner: &Name) -> Record {
    empty(owner, RecordType::ANY, DNSClass::NONE)
}

/// A loopback port free for both UDP and TCP (picked, not held: whoever
/// binds it next may lose a race, which the callers retry or tolerate).
pub fn free_port() -> u16 {
    loop {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Wait (at most 20 s) until a server answers an SOA query for [`ZONE`] at
/// `addr`.
pub async fn wait_serving(addr: SocketAddr) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let q = query_msg(ZONE, RecordType::SOA, false);
        if let Some(b) = udp_exchange(addr, &q.to_vec().unwrap()).await
            && Message::from_vec(&b).is_ok()
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not come up on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Tests that drive real clients need them; the test command installs them.
pub fn require(program: &str, package: &str) {
    assert!(
        have(program),
        "{program} is not installed: run scripts/test (it installs {package}) or apt-get install -y {package}"
    );
}

/// A self-signed ECDSA P-256 certificate made by openssl for
/// `<name>.example.org`, valid `days` days: its PEM file (the key beside it).
pub fn cert(dir: &Path, name: &str, days: u32) -> PathBuf {
    let (key, crt) = (
        dir.join(format!("{name}.key.pem")),
        dir.join(format!("{name}.pem")),
    );
    require("openssl", "openssl");
    let out = std::process::Command::new("openssl")
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

/// Run a program with `stdin` as its input, bounded by `timeout` (30 s);
/// (success, stdout+stderr).
pub fn run_with_input(program: &str, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("timeout")
        .arg("30")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// [`run_with_input`] off the async threads.
pub async fn run_async(program: &'static str, args: Vec<String>, stdin: String) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        run_with_input(program, &args, &stdin)
    })
    .await
    .unwrap()
}

/// curl `https://<host>:<port><path>` with `host` resolved to `ip`,
/// trusting only `ca`, with `http` (`--http2`, `--http1.1`) and `extra`
/// arguments: (success, the HTTP version, body and curl's errors).
pub fn curl_https(
    host: &str,
    ip: &str,
    port: u16,
    ca: &Path,
    http: &str,
    extra: &[&str],
    path: &str,
) -> (bool, String, String) {
    require("curl", "curl");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", http, "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:{ip}")])
        .args(extra)
        .args(["-w", "\n%{http_version}"])
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, version) = text.rsplit_once('\n').unwrap_or(("", ""));
    (
        out.status.success(),
        version.to_string(),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// Run the zonewarden binary with a config file in `dir` naming its
/// `zones`, `acl` and `data` directories, HTTP off, plus `extra` config
/// lines: (success, stdout, stderr).
pub fn zw_cli(dir: &Path, extra: &str, args: &[&str]) -> (bool, String, String) {
    let conf = dir.join("zonewarden.toml");
    write(
        &conf,
        &format!(
            "zones-dir = \"zones\"\nacl-dir = \"acl\"\ndata-dir = \"data\"\nhttp = \"off\"\n{extra}"
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zonewarden"))
        .arg("--config")
        .arg(&conf)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// curl from `from` (a loopback address) with `args`: (HTTP status, body).
pub async fn curl_from(from: &str, args: &[&str]) -> (u16, String) {
    require("curl", "curl");
    let mut all = vec![
        "-sS".to_string(),
        "--max-time".into(),
        "10".into(),
        "--interface".into(),
        from.into(),
        "-o".into(),
        "-".into(),
        "-w".into(),
        "\n%{http_code}".into(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let (ok, out) = run_async("curl", all, String::new()).await;
    assert!(ok, "curl failed: {out}");
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    (code.trim().parse().unwrap(), body.to_string())
}

/// The TXT strings served at `fqdn` by the server at `addr`, read with
/// kdig, sorted.
pub async fn kdig_txt(addr: SocketAddr, fqdn: &str) -> Vec<String> {
    require("kdig", "knot-dnsutils");
    let args = vec![
        format!("@{}", addr.ip()),
        "-p".into(),
        addr.port().to_string(),
        "+short".into(),
        "TXT".into(),
        fqdn.into(),
    ];
    let (ok, out) = run_async("kdig", args, String::new()).await;
    assert!(ok, "kdig: {out}");
    let mut v: Vec<String> = out
        .lines()
        .map(|l| l.trim().trim_matches('"').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

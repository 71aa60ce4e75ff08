//! A validating unbound for tests: started on a loopback address, trust
//! anchor = the zone's DS, stub zone pointing at the server under test;
//! and the small process helpers the DNSSEC and DANE tests share.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::*;
use zonewarden::dnssec::{ZoneKey, key::key_path};

/// Run a program, bounded in time; (exit success, stdout+stderr).
pub async fn run(program: &str, args: &[String]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{program} took longer than 30 s"))
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn zone_key(h: &Harness) -> ZoneKey {
    ZoneKey::load(&name(ZONE), &key_path(&h.config.data_dir, &name(ZONE))).unwrap()
}

/// The DS of the zone's key, as a zone-file line (the trust anchor).
pub fn ds_line(key: &ZoneKey) -> String {
    let (ds, _) = key.parent_records(3600);
    format!("{} 3600 IN DS {}", ds.name, ds.data)
}

/// A validating unbound on a loopback address, stub zone → zonewarden,
/// trust anchor given.
pub struct Unbound {
    child: tokio::process::Child,
    pub ip: String,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn unbound_conf(
    ip: &str,
    port: u16,
    dir: &tempfile::TempDir,
    anchor: &str,
    stub: &str,
) -> String {
    format!(
        r#"server:
    interface: {ip}
    port: {port}
    do-ip6: no
    do-not-query-localhost: no
    chroot: ""
    username: ""
    pidfile: ""
    directory: "{dir}"
    use-syslog: no
    logfile: ""
    verbosity: 1
    val-log-level: 2
    module-config: "validator iterator"
    trust-anchor: "{anchor}"
    qname-minimisation: no
    aggressive-nsec: no
    num-threads: 1
    msg-cache-size: 1m
    rrset-cache-size: 1m
    key-cache-size: 1m
    neg-cache-size: 1m
    so-reuseport: no
stub-zone:
    name: "{ZONE}"
    stub-addr: {stub}
remote-control:
    control-enable: no
"#,
        dir = dir.path().display()
    )
}

/// [`unbound_conf`] for a resolver that trusts only `anchor` and reaches
/// each of `stubs` (zone, addresses) directly; TTLs capped at
/// `cache_max_ttl`, no aggressive use of NSEC, small caches.
pub fn unbound_conf_trusting(
    ip: &str,
    port: u16,
    dir: &tempfile::TempDir,
    anchor: &str,
    stubs: &[(String, Vec<std::net::SocketAddr>)],
    cache_max_ttl: u32,
) -> String {
    let mut conf = unbound_conf(ip, port, dir, anchor, "127.0.0.1@1")
        .split("stub-zone:")
        .next()
        .unwrap()
        .to_string();
    conf.push_str(&format!("    cache-max-ttl: {cache_max_ttl}\n"));
    for (zone, addrs) in stubs {
        conf.push_str(&format!("stub-zone:\n    name: \"{zone}\"\n"));
        for a in addrs {
            conf.push_str(&format!("    stub-addr: {}@{}\n", a.ip(), a.port()));
        }
    }
    conf.push_str("remote-control:\n    control-enable: no\n");
    conf
}

/// A loopback address other than 127.0.0.1 whose port 53 is free (UDP and
/// TCP), for tools that cannot be given a resolver port (ldns-dane -r,
/// resolv.conf).
pub fn free_loopback_53() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id() ^ NEXT.fetch_add(7919, Ordering::Relaxed);
    for i in 0..200u32 {
        let n = seed
            .wrapping_mul(2_654_435_761)
            .wrapping_add(i.wrapping_mul(40_503));
        let ip = format!(
            "127.{}.{}.{}",
            53 + (n >> 16) % 150,
            (n >> 8) % 256,
            2 + n % 250
        );
        if std::net::UdpSocket::bind((ip.as_str(), 53)).is_ok()
            && std::net::TcpListener::bind((ip.as_str(), 53)).is_ok()
        {
            return ip;
        }
    }
    panic!("no loopback address with a free port 53");
}

pub struct Dig {
    pub status: String,
    pub ad: bool,
    pub text: String,
}

impl Unbound {
    /// On 127.0.0.1, a free port; the zone's server at 127.0.0.1:`zone_port`.
    pub async fn start(zone_port: u16, anchor: &str) -> Self {
        let stub = format!("127.0.0.1@{zone_port}");
        Self::launch(
            || ("127.0.0.1".to_string(), free_port()),
            |ip, port, dir| unbound_conf(ip, port, dir, anchor, &stub),
        )
        .await
    }

    /// On 127.0.0.1, a free port, trusting only `anchor` (e.g. a parent
    /// zone's key, [`super::parent::Parent::trust_anchor`]) and reaching
    /// each zone of `stubs` at its addresses (the parent at its
    /// nameservers, the child at zonewarden): the chain of trust runs
    /// through the parent's DS. Caching stays on (TTLs, DS TTLs included,
    /// matter as they do for a real resolver), with every TTL capped at
    /// `cache_max_ttl` seconds.
    pub async fn start_trusting(
        anchor: &str,
        stubs: &[(String, Vec<std::net::SocketAddr>)],
        cache_max_ttl: u32,
    ) -> Self {
        Self::launch(
            || ("127.0.0.1".to_string(), free_port()),
            |ip, port, dir| unbound_conf_trusting(ip, port, dir, anchor, stubs, cache_max_ttl),
        )
        .await
    }

    /// [`Unbound::start_trusting`] on port 53 of a spare loopback address
    /// (for tools that cannot be given a resolver port: ldns-dane).
    pub async fn start_trusting_on_53(
        anchor: &str,
        stubs: &[(String, Vec<std::net::SocketAddr>)],
        cache_max_ttl: u32,
    ) -> Self {
        Self::launch(
            || (free_loopback_53(), 53),
            |ip, port, dir| unbound_conf_trusting(ip, port, dir, anchor, stubs, cache_max_ttl),
        )
        .await
    }

    /// Where it answers.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.ip.parse().unwrap(), self.port)
    }

    /// On port 53 of another loopback address (see [`free_loopback_53`]);
    /// the zone's server at `zone`.
    pub async fn start_on_53(zone: std::net::SocketAddr, anchor: &str) -> Self {
        let stub = format!("{}@{}", zone.ip(), zone.port());
        Self::launch(
            || (free_loopback_53(), 53),
            |ip, port, dir| unbound_conf(ip, port, dir, anchor, &stub),
        )
        .await
    }

    async fn launch(
        pick: impl Fn() -> (String, u16),
        conf_for: impl Fn(&str, u16, &tempfile::TempDir) -> String,
    ) -> Self {
        // dig asks unbound whether it is up, and the tests ask through it.
        require("dig", "bind9-dnsutils");
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let program = if have("unbound") {
            "unbound"
        } else if Path::new("/usr/sbin/unbound").exists() {
            "/usr/sbin/unbound"
        } else {
            require("unbound", "unbound");
            unreachable!()
        };
        // The port is picked free and then bound by unbound: if another test
        // took it in between, unbound exits and we try another.
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let (ip, port) = pick();
            let conf = dir.path().join("unbound.conf");
            let log = dir.path().join("unbound.log");
            std::fs::write(&conf, conf_for(&ip, port, &dir)).unwrap();
            let child = tokio::process::Command::new(program)
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .kill_on_drop(true)
                .spawn()
                .expect("unbound starts");
            let mut u = Self {
                child,
                ip,
                port,
                log,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if u.child.try_wait().unwrap().is_some() {
                    break; // exited: port taken? try again
                }
                let (ok, _) = run(
                    "dig",
                    &[
                        format!("@{}", u.ip),
                        "-p".into(),
                        port.to_string(),
                        "+time=1".into(),
                        "+tries=1".into(),
                        "version.bind".into(),
                        "CH".into(),
                        "TXT".into(),
                    ],
                )
                .await;
                if ok {
                    return u;
                }
                assert!(
                    Instant::now() < deadline,
                    "unbound did not start: {}",
                    u.log()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            eprintln!("unbound exited at start, retrying: {}", u.log());
        }
        panic!("unbound did not start three times");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn dig(&self, qname: &str, qtype: &str) -> Dig {
        let (ok, text) = run(
            "dig",
            &[
                format!("@{}", self.ip),
                "-p".into(),
                self.port.to_string(),
                "+dnssec".into(),
                "+time=5".into(),
                "+tries=1".into(),
                qname.into(),
                qtype.into(),
            ],
        )
        .await;
        assert!(ok, "dig via unbound failed: {text}");
        let status = text
            .split("status: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or("?")
            .to_string();
        let ad = text
            .lines()
            .find(|l| l.starts_with(";; flags:"))
            .is_some_and(|l| {
                l.split(';')
                    .nth(2)
                    .is_some_and(|f| f.split_whitespace().any(|w| w == "ad"))
            });
        Dig { status, ad, text }
    }

    /// Assert a validated (AD) answer with this status.
    pub async fn validated(&self, qname: &str, qtype: &str, status: &str) -> String {
        let d = self.dig(qname, qtype).await;
        assert!(
            d.status == status && d.ad,
            "{qname} {qtype}: want {status} with AD, got {} ad={}\n{}\nunbound log:\n{}",
            d.status,
            d.ad,
            d.text,
            self.log()
        );
        d.text
    }
}

/// ldns-verify-zone on `text` with our DS as the trust anchor, at `at`
/// (Unix time) or now.
pub async fn ldns_verify(dir: &Path, text: &str, anchor: &str, at: Option<u64>) -> (bool, String) {
    require("ldns-verify-zone", "ldnsutils");
    let zone_file = dir.join(format!("zone-{}.txt", rand_id()));
    let key_file = dir.join("anchor.ds");
    std::fs::write(&zone_file, text).unwrap();
    std::fs::write(&key_file, format!("{anchor}\n")).unwrap();
    let mut args = vec![
        "-V".to_string(),
        "1".into(),
        "-k".into(),
        key_file.display().to_string(),
    ];
    if let Some(t) = at {
        args.push("-t".into());
        args.push(ldns_time(t));
    }
    args.push(zone_file.display().to_string());
    run("ldns-verify-zone", &args).await
}

/// YYYYMMDDhhmmss in UTC.
pub fn ldns_time(t: u64) -> String {
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
    time::OffsetDateTime::from_unix_timestamp(t as i64)
        .unwrap()
        .format(format)
        .unwrap()
}

/// Every record of the served zone, in presentation format.
pub fn zone_text(h: &Harness) -> String {
    let zone = h.server().zones.zone_exact(&name(ZONE)).unwrap().snapshot();
    presentation(&zone.all_records())
}

/// RFC 1035 §5.1 presentation lines. hickory prints TXT strings bare, so
/// those are quoted here (with `\"`, `\\` and `\DDD` escapes).
pub fn presentation(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        match &r.data {
            RData::TXT(txt) => {
                let strings: Vec<String> = txt
                    .txt_data
                    .iter()
                    .map(|s| {
                        let mut q = String::from("\"");
                        for &b in s.iter() {
                            match b {
                                b'"' | b'\\' => {
                                    q.push('\\');
                                    q.push(b as char);
                                }
                                0x20..=0x7e => q.push(b as char),
                                _ => q.push_str(&format!("\\{b:03}")),
                            }
                        }
                        q.push('"');
                        q
                    })
                    .collect();
                out.push_str(&format!(
                    "{} {} IN TXT {}\n",
                    r.name,
                    r.ttl,
                    strings.join(" ")
                ));
            }
            _ => out.push_str(&format!("{r}\n")),
        }
    }
    out
}

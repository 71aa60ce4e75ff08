//! What the fuzz targets share: a fixed zone, ACLs and keys (the repo's own
//! demo zone and machine, plus a transfer network), and a whole request
//! front (`zonewarden::server::Handler`) over a real zone writer and SQLite
//! store in a temporary directory, driven without sockets.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use zonewarden::acl::{LivePolicy, Machine, Policy};
use zonewarden::metrics::Metrics;
use zonewarden::tsig::{Algorithm, Key, KeyRing};
use zonewarden::writer::{Drain, Zones};
use zonewarden::zone::ZoneData;
use zonewarden::zonefile::{self, ZoneSpec};
use zonewarden::{Clock, Config, ManualClock};

pub const ZONE: &str = "_acme.example.org.";

/// The repository's demo zone (zones/_acme.example.org.toml), smaller
/// limits so that a long run cannot grow it without bound, a static
/// record, and transfers allowed from 127.0.0.0/8.
pub const ZONE_FILE: &str = r#"
origin = "_acme.example.org."
contact = "hostmaster@example.org"
nameservers = ["ns1._acme.example.org."]
[glue]
"ns1" = ["127.0.0.1", "::1"]
[dnssec]
algorithm = "ecdsap256sha256"
[soa]
ttl = 60
minimum = 1
[ttl]
challenge = 60
tlsa = 300
min = 1
max = 3600
[limits]
records-per-name = 8
records-per-zone = 300
rdata-size = 1024
[transfer]
networks = ["127.0.0.0/8", "::1/128"]
[[record]]
name = "static"
type = "TXT"
data = '"from the zone file"'
[[record]]
name = "alias"
type = "CNAME"
data = "static"
[[record]]
name = "mail"
type = "MX"
data = "10 ns1"
"#;

/// The repository's acl/mx1.toml.
pub const MX1_ACL: &str = include_str!("../../../acl/mx1.toml");
/// A second machine with a subtree grant and a bounded RRset.
pub const WWW1_ACL: &str = r#"
zones = ["_acme.example.org."]
[[grant]]
name = "_acme-challenge.{machine}"
types = ["TXT"]
max-rrset = 2
[[grant]]
name = "shared"
subtree = true
types = ["TXT", "A", "AAAA", "CNAME"]
"#;

/// A fixed key per machine (fixed, so that runs are reproducible).
pub fn key(machine: &str) -> Key {
    let name = Name::from_ascii(format!("{machine}.")).expect("a key name");
    let byte = machine.bytes().fold(7u8, |a, b| a.wrapping_add(b));
    Key::new(name, Algorithm::HmacSha256, vec![byte; 32])
}

pub fn keyring() -> KeyRing {
    KeyRing::new([key("mx1"), key("www1")])
}

pub fn origin() -> Name {
    Name::from_ascii(ZONE).expect("origin")
}

pub fn zone_spec() -> ZoneSpec {
    zonefile::parse(Path::new("fuzz/_acme.example.org.toml"), ZONE_FILE)
        .expect("the fuzz zone parses")
}

/// The fixed zone snapshot: the zone file's records plus a few dynamic
/// ones at names the machines own.
pub fn zone_data() -> ZoneData {
    use hickory_proto::rr::{RData, Record, rdata::TXT};
    let o = origin();
    let txt = |n: &str, v: &str| {
        Record::from_rdata(
            Name::parse(n, Some(&o)).unwrap(),
            60,
            RData::TXT(TXT::new(vec![v.to_string()])),
        )
    };
    ZoneData::new(
        Arc::new(zone_spec()),
        7,
        [
            txt("_acme-challenge.mx1", "token-a"),
            txt("_acme-challenge.mx1", "token-b"),
            txt("_acme-challenge.www1", "w"),
            txt("a.shared", "s"),
        ],
    )
}

pub fn machine(name: &str) -> Machine {
    let text = match name {
        "mx1" => MX1_ACL,
        _ => WWW1_ACL,
    };
    Policy::parse_file(Path::new(&format!("acl/{name}.toml")), text, &[origin()])
        .expect("the fuzz ACL parses")
}

/// A response handler that keeps the bytes of every message sent.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<Vec<u8>>>>);

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut buf = Vec::with_capacity(512);
        let info = {
            let mut enc = BinEncoder::new(&mut buf);
            response.destructive_emit(&mut enc)?
        };
        self.0.lock().unwrap().push(buf);
        Ok(info)
    }
}

/// A request front over a real writer and store, opened once per process.
pub struct Front {
    pub runtime: tokio::runtime::Runtime,
    pub handler: zonewarden::server::Handler,
    pub clock: Arc<ManualClock>,
    pub dir: PathBuf,
}

impl Front {
    pub fn get() -> &'static Front {
        static FRONT: OnceLock<Front> = OnceLock::new();
        FRONT.get_or_init(Front::open)
    }

    fn open() -> Front {
        // tmpfs when there is one: each accepted UPDATE is a commit.
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        // Directories of earlier runs whose process is gone (libFuzzer
        // exits without dropping statics).
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("zonewarden-fuzz-")
                    && !Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = base.join(format!("zonewarden-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let write = |rel: &str, text: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("zones/acme.toml", ZONE_FILE);
        write("acl/mx1.toml", MX1_ACL);
        write("acl/www1.toml", WWW1_ACL);
        for m in ["mx1", "www1"] {
            write(&format!("data/keys/{m}.key"), &key(m).to_key_file());
        }
        let mut config = Config::embedded_default().with_data_dir(dir.join("data"));
        config.zones_dir = dir.join("zones");
        config.acl_dir = dir.join("acl");
        config.http = None;
        // Every input may be an UPDATE under one key: no per-key rate, so the
        // write path is reached as often as the fuzzer likes.
        config.update_rate.per_second = 0;
        let config = Arc::new(config);
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let metrics = Arc::new(Metrics::default());
        let specs = zonefile::load_dir(&config.zones_dir).expect("fuzz zones load");
        let zones = Arc::new(
            Zones::open(specs, &config, clock.clone(), metrics.clone()).expect("fuzz zones open"),
        );
        let policy = Arc::new(
            LivePolicy::load(
                config.clone(),
                zones.origins(),
                clock.clone(),
                metrics.clone(),
            )
            .expect("fuzz policy loads"),
        );
        let cx = Arc::new(zonewarden::server::Context::new(
            &config,
            zonewarden::server::Shared {
                zones,
                policy,
                verifier: Arc::new(zonewarden::tsig::Verifier::new(config.tsig_fudge)),
                metrics,
                clock: clock.clone(),
                drain: Arc::new(Drain::default()),
                refusals: Arc::new(zonewarden::server::Refusals::default()),
                stats: Arc::new(zonewarden::server::Stats::default()),
            },
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Front {
            runtime,
            handler: zonewarden::server::Handler::new(cx),
            clock,
            dir,
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Hand `raw` to the request front as hickory-server would; the
    /// messages sent back, or None when hickory itself cannot parse it
    /// (hickory answers those without us).
    pub fn handle(&self, raw: &[u8], src: SocketAddr, protocol: Protocol) -> Option<Vec<Vec<u8>>> {
        let request = Request::from_bytes(raw.to_vec(), src, protocol).ok()?;
        let capture = Capture::default();
        self.runtime.block_on(
            self.handler
                .handle_request::<_, TokioTime>(&request, capture.clone()),
        );
        let out = std::mem::take(&mut *capture.0.lock().unwrap());
        Some(out)
    }
}

/// Seconds since the epoch the fixed-zone targets run at.
pub const NOW: u64 = 1_800_000_000;

/// A file error points inside `text`: the whole file (0:0), or a line that
/// exists and a column within it (or just past its end).
pub fn check_location(text: &str, e: &zonewarden::diag::FileError) {
    if e.line == 0 {
        assert_eq!(e.column, 0, "a column without a line: {e}");
        return;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        e.line <= lines.len(),
        "line {} of {}: {e}",
        e.line,
        lines.len()
    );
    let chars = lines[e.line - 1].chars().count();
    assert!(
        e.column >= 1 && e.column <= chars + 1,
        "column {} of a line of {chars}: {e}",
        e.column
    );
    assert!(!e.message.is_empty());
}

//! Real peers for tests: Knot DNS and BIND as secondaries of zonewarden,
//! each in its own temporary directory on a loopback port, stopped on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use zonewarden::tsig::Key;

/// A running peer; killed (and its log kept for failure messages) on drop.
pub struct Peer {
    pub name: &'static str,
    pub port: u16,
    child: Child,
    pub dir: PathBuf,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Peer {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Start `program` in `dir`, its stdout and stderr into `log`.
pub fn spawn(program: &str, args: &[&str], dir: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {program}: {e} (scripts/test installs knot, bind9 and nsd)")
        })
}

/// Where a daemon is (Debian puts them in sbin, which PATH may lack); a
/// missing one fails the test, naming the `package` to install.
/// Write `conf` into `tmp` and start that daemon on it: "knot" (knotd)
/// or "bind" (named in the foreground).
fn start(tmp: tempfile::TempDir, port: u16, name: &'static str, conf: &str) -> Peer {
    let dir = tmp.path().to_path_buf();
    let (file, log, program, package) = match name {
        "knot" => ("knot.conf", "knot.log", "knotd", "knot"),
        "bind" => ("named.conf", "named.log", "named", "bind9"),
        other => panic!("no such peer kind {other}"),
    };
    let conf_path = dir.join(file);
    std::fs::write(&conf_path, conf).unwrap();
    let log = dir.join(log);
    let conf_arg = conf_path.to_str().unwrap();
    let args: Vec<&str> = match name {
        "knot" => vec!["-c", conf_arg],
        _ => vec!["-g", "-n", "1", "-c", conf_arg],
    };
    let child = spawn(&which(program, package), &args, &dir, &log);
    Peer {
        name,
        port,
        child,
        dir,
        log,
        _tmp: tmp,
    }
}

fn which(program: &str, package: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = format!("{dir}/{program}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!(
        "{program} is not installed: run scripts/test (it installs {package}) or apt-get install -y {package}"
    );
}

/// Knot DNS as a secondary of `zone`, pulling from 127.0.0.1:`primary`
/// with `key`, accepting NOTIFY signed with it.
pub fn knot_secondary(zone: &str, port: u16, primary: u16, key: &Key) -> Peer {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    for sub in ["run", "db", "zones"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let conf = format!(
        r#"server:
    rundir: "{d}/run"
    listen: 127.0.0.1@{port}
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
key:
  - id: {kname}
    algorithm: {alg}
    secret: {secret}
remote:
  - id: primary
    address: 127.0.0.1@{primary}
    key: {kname}
acl:
  - id: notify_from_primary
    address: 127.0.0.1
    key: {kname}
    action: notify
  - id: transfer_with_key
    key: {kname}
    action: transfer
template:
  - id: default
    storage: "{d}/zones"
zone:
  - domain: {zone}
    master: primary
    acl: [notify_from_primary, transfer_with_key]
"#,
        d = dir.display(),
        kname = key.name,
        alg = key.algorithm.key_file_name(),
        secret = key.secret_base64(),
    );
    start(tmp, port, "knot", &conf)
}

/// BIND (named) as a secondary of `zone`.
pub fn bind_secondary(zone: &str, port: u16, primary: u16, key: &Key) -> Peer {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let kname = key.name.to_string();
    let kname = kname.trim_end_matches('.');
    let conf = format!(
        r#"options {{
    directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file none;
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    recursion no;
    notify no;
    dnssec-validation no;
}};
key "{kname}" {{ algorithm {alg}; secret "{secret}"; }};
zone "{zone}" {{
    type secondary;
    primaries port {primary} {{ 127.0.0.1 key "{kname}"; }};
    file "{d}/secondary.db";
    allow-notify {{ key "{kname}"; }};
}};
"#,
        d = dir.display(),
        alg = key.algorithm.key_file_name(),
        secret = key.secret_base64(),
    );
    start(tmp, port, "bind", &conf)
}

/// NSD as a secondary of `zone` (IXFR when it can, as NSD does by default).
pub fn nsd_secondary(zone: &str, port: u16, primary: u16, key: &Key) -> Peer {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let conf = format!(
        r#"server:
    ip-address: 127.0.0.1@{port}
    zonesdir: "{d}"
    database: ""
    pidfile: "{d}/nsd.pid"
    username: ""
    chroot: ""
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    zonelistfile: "{d}/zone.list"
    verbosity: 2
remote-control:
    control-enable: no
key:
    name: "{kname}"
    algorithm: {alg}
    secret: "{secret}"
zone:
    name: "{zone}"
    zonefile: "secondary.zone"
    request-xfr: 127.0.0.1@{primary} {kname}
    allow-notify: 127.0.0.1 {kname}
"#,
        d = dir.display(),
        kname = key.name,
        alg = key.algorithm.key_file_name(),
        secret = key.secret_base64(),
    );
    std::fs::write(dir.join("nsd.conf"), conf).unwrap();
    let log = dir.join("nsd.log");
    let conf_path = dir.join("nsd.conf");
    let child = spawn(
        &which("nsd", "nsd"),
        &["-d", "-c", conf_path.to_str().unwrap()],
        &dir,
        &log,
    );
    Peer {
        name: "nsd",
        port,
        child,
        dir,
        log,
        _tmp: tmp,
    }
}

/// Knot DNS as a primary of `zone`, serving `zone_text` (a master file),
/// signed by Knot itself (ECDSA P-256, NSEC) when `sign`; `extra` is added
/// to the `server:` section (e.g. `nsid: ...`).
pub fn knot_primary(zone: &str, zone_text: &str, port: u16, sign: bool, extra: &str) -> Peer {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    for sub in ["run", "db", "zones"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("zones/primary.zone"), zone_text).unwrap();
    let signing = if sign {
        "    dnssec-signing: on\n    dnssec-policy: p\n"
    } else {
        ""
    };
    let conf = format!(
        r#"server:
    rundir: "{d}/run"
    listen: 127.0.0.1@{port}
{extra}
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
policy:
  - id: p
    algorithm: ecdsap256sha256
template:
  - id: default
    storage: "{d}/zones"
zone:
  - domain: {zone}
    file: primary.zone
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
{signing}"#,
        d = dir.display(),
    );
    start(tmp, port, "knot", &conf)
}

/// BIND (named) as a primary of `zone`, serving `zone_text` unsigned.
pub fn bind_primary(zone: &str, zone_text: &str, port: u16) -> Peer {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("primary.db"), zone_text).unwrap();
    let conf = format!(
        r#"options {{
    directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file none;
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    recursion no;
    notify no;
    dnssec-validation no;
}};
zone "{zone}" {{
    type primary;
    file "{d}/primary.db";
}};
"#,
        d = dir.display(),
    );
    start(tmp, port, "bind", &conf)
}

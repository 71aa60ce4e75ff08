//! propagation_bench: how long an UPDATE takes to reach every secondary.
//!
//! Sends N TSIG-signed RFC 2136 UPDATEs to a primary (zonewarden, Knot,
//! BIND...), one after another. After each UPDATE's answer (NOERROR) it
//! asks every `--secondary label=ADDR` for the TXT at the updated name, by
//! UDP every `--poll-ms`, until that secondary serves the new value or
//! `--update-timeout` passes; the next UPDATE is sent once every secondary
//! has the value (or timed out) and `--pause-ms` has passed. It measures,
//! from the moment the UPDATE's answer was read:
//!
//! - per secondary: the time until it first answered with the new value;
//! - "all": the time until the last of them did (a timeout if one never did).
//!
//! Each UPDATE gives one TXT a value no earlier UPDATE used,
//! `<run-id>-<k>`:
//!
//! - `--mode replace` (default): delete the TXT RRset at name `k % --names`
//!   and add the new value, in one UPDATE (what lego does);
//! - `--mode add`: add the value at a new name `k` (from `--start`).
//!
//! `--name-template` gives the owner names (`{i}` is replaced by the name's
//! index; relative to `--zone` unless it ends with a dot). The same
//! `--run-id` against two primaries sends them the very same UPDATE stream.
//!
//! Before the first UPDATE it waits (`--ready-timeout`) until every
//! secondary serves the primary's current SOA serial, so a secondary still
//! loading the zone does not count as slow, then `--settle-ms` more (BIND
//! and NSD hold back a refresh or reload that follows the last one closely).
//!
//! Only RFC 2136 + TSIG and plain queries are spoken, so any primary and
//! any secondaries work. A poll's resolution is the poll interval plus one
//! round trip (a lost answer costs 50 ms); the primary's own propagation
//! work (NOTIFY, the secondary's SOA query, IXFR, the secondary's reload)
//! all falls inside the measured time. Polling at 2 ms is 500 queries/s
//! from one address: turn off response rate limiting on the secondaries
//! (NSD has it on by default: `rrl-ratelimit: 0`), or it drops and
//! truncates the polls and adds its own delay.
//!
//! The last lines of output are `RESULT target=<label> key=value ...`, one
//! per secondary, one for `all` and one for `update` (the UPDATE round
//! trip), for scripts. `--csv FILE` writes one row per UPDATE with wall
//! clock times, to line up with the servers' logs. Exit status: 0 when all
//! N UPDATEs were sent (whatever their RCODEs and timeouts), 2 when the
//! overall `--timeout` stopped the run, 1 on a setup error.
//!
//! ```text
//! cargo run --release --example propagation_bench -- --server 127.0.0.1:5300 \
//!     --zone _acme.example.org --key data/keys/bench.key \
//!     --secondary knot=127.0.0.1:5301 --secondary bind=127.0.0.1:5302 --count 100
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::time::MissedTickBehavior;
use zonewarden::dnsclient::serial_at_least;
use zonewarden::tsig::{Key, sign_request};

mod common;
use common::{
    Conn, Transport, connected_udp, describe_failure, ms, percentile, rcode_of, udp_exchange,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Replace,
    Add,
}

/// One nameserver to watch: `label=ADDR:PORT`.
#[derive(Clone, Debug)]
struct Target {
    label: String,
    addr: SocketAddr,
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (label, addr) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected LABEL=ADDR:PORT"))?;
        if label.is_empty() || label == "all" || label == "update" {
            return Err(format!(
                "{s:?}: the label must be a word other than all and update"
            ));
        }
        let addr = addr
            .parse()
            .map_err(|e| format!("{s:?}: address {addr:?}: {e}"))?;
        Ok(Target {
            label: label.to_string(),
            addr,
        })
    }
}

#[derive(Parser, Debug)]
#[command(
    about = "Send N TSIG-signed UPDATEs one at a time and time each until every secondary serves it"
)]
struct Args {
    /// The primary's address, ADDR:PORT: where UPDATEs go.
    #[arg(long)]
    server: SocketAddr,
    /// The zone to update (the UPDATE's zone section).
    #[arg(long)]
    zone: String,
    /// TSIG key in BIND key-file format (the first key in the file is used).
    #[arg(long)]
    key: PathBuf,
    /// A nameserver to watch, LABEL=ADDR:PORT; repeat for each.
    #[arg(long = "secondary", required = true)]
    secondaries: Vec<Target>,
    /// How many UPDATEs to send.
    #[arg(long, default_value_t = 100)]
    count: usize,
    #[arg(long, value_enum, default_value = "replace")]
    mode: Mode,
    /// Owner name of name i; `{i}` is replaced; relative to --zone unless it ends with a dot.
    #[arg(long, default_value = "_acme-challenge.prop{i}")]
    name_template: String,
    /// --mode replace: how many names the UPDATEs cycle over.
    #[arg(long, default_value_t = 1)]
    names: usize,
    /// --mode add: first index i.
    #[arg(long, default_value_t = 0)]
    start: usize,
    /// Prefix of every TXT value (default: derived from the clock).
    #[arg(long)]
    run_id: Option<String>,
    /// Milliseconds between two polls of one secondary.
    #[arg(long, default_value_t = 2)]
    poll_ms: u64,
    /// Seconds each secondary has to serve an UPDATE's value before it counts as a timeout.
    #[arg(long, default_value_t = 10.0)]
    update_timeout: f64,
    /// Milliseconds to wait after one UPDATE has propagated before sending the next.
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
    /// Seconds every secondary has to serve the primary's serial before the first UPDATE.
    #[arg(long, default_value_t = 30)]
    ready_timeout: u64,
    /// Milliseconds of quiet once they do, before the first UPDATE (secondaries
    /// rate-limit refreshes and reloads right after loading the zone).
    #[arg(long, default_value_t = 2000)]
    settle_ms: u64,
    /// How UPDATEs travel (polls are always UDP).
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// TTL of added records.
    #[arg(long, default_value_t = 60)]
    ttl: u32,
    /// TSIG fudge, seconds.
    #[arg(long, default_value_t = 300)]
    fudge: u16,
    /// Seconds to wait for one UPDATE's answer.
    #[arg(long, default_value_t = 5)]
    request_timeout: u64,
    /// Seconds the whole run may take.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Write one CSV row per UPDATE (wall-clock times, per-secondary delays) here.
    #[arg(long)]
    csv: Option<PathBuf>,
}

/// What happened to one UPDATE.
struct Row {
    k: usize,
    name: Name,
    value: String,
    /// Wall clock (Unix µs) when the UPDATE was sent and answered.
    sent_us: u128,
    answered_us: u128,
    /// The UPDATE's round trip, or None when it got no answer.
    rtt: Option<Duration>,
    /// Its RCODE (or why there was none) when not NOERROR.
    failure: Option<String>,
    /// Per secondary (in --secondary order): time from the answer until it
    /// served the value; None on timeout (or when the UPDATE failed).
    seen: Vec<Option<Duration>>,
}

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn fqdn(text: &str, zone: &Name) -> Result<Name, String> {
    let full = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.{zone}")
    };
    Name::from_str(&full).map_err(|e| format!("name {full:?}: {e}"))
}

/// The owner name and TXT value of UPDATE number `k` (0-based).
fn target_of(args: &Args, zone: &Name, run_id: &str, k: usize) -> Result<(Name, String), String> {
    let i = match args.mode {
        Mode::Replace => k % args.names,
        Mode::Add => args.start + k,
    };
    let name = fqdn(&args.name_template.replace("{i}", &i.to_string()), zone)?;
    Ok((name, format!("{run_id}-{k:06}")))
}

/// The signed wire form of the UPDATE that gives `name` the TXT `value`.
fn build_update(
    args: &Args,
    key: &Key,
    zone: &Name,
    name: &Name,
    value: &str,
    id: u16,
) -> Result<Vec<u8>, String> {
    let mut updates = Vec::with_capacity(2);
    if args.mode == Mode::Replace {
        // RFC 2136 §2.5.2: delete an RRset (class ANY, TTL 0, no RDATA).
        let mut del = Record::update0(name.clone(), 0, RecordType::TXT);
        del.dns_class = DNSClass::ANY;
        updates.push(del);
    }
    updates.push(Record::from_rdata(
        name.clone(),
        args.ttl,
        RData::TXT(TXT::new(vec![value.to_string()])),
    ));
    let mut msg = Message::new(id, MessageType::Query, OpCode::Update);
    let mut q = Query::query(zone.clone(), RecordType::SOA);
    q.set_query_class(DNSClass::IN);
    msg.add_query(q);
    msg.insert_authorities(updates);
    let unsigned = msg.to_vec().map_err(|e| format!("encode: {e}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (sig, _mac) = sign_request(&unsigned, key, now, args.fudge);
    msg.set_signature(Box::new(sig));
    msg.to_vec().map_err(|e| format!("encode: {e}"))
}

/// A plain (non-recursive, no EDNS) query; its ID is patched per poll.
fn build_query(name: &Name, rtype: RecordType) -> Result<Vec<u8>, String> {
    let mut msg = Message::new(0, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = false;
    msg.add_query(Query::query(name.clone(), rtype));
    msg.to_vec().map_err(|e| format!("encode: {e}"))
}

/// One secondary being polled: a connected UDP socket and a query ID counter.
struct Watcher {
    target: Target,
    sock: UdpSocket,
    next_id: u16,
}

/// What a poll saw.
enum Seen {
    Value,
    /// Not (yet) the value: the RCODE and TXT strings served instead.
    Other(String),
}

impl Watcher {
    /// One query; `template` is a query whose ID gets replaced.
    async fn ask(&mut self, template: &[u8], wait: Duration) -> Result<Message, String> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        let mut q = template.to_vec();
        q[..2].copy_from_slice(&id.to_be_bytes());
        let raw = tokio::time::timeout(wait, udp_exchange(&self.sock, &q, id))
            .await
            .map_err(|_| "no answer".to_string())??;
        Message::from_vec(&raw).map_err(|e| format!("malformed answer: {e}"))
    }

    async fn poll_txt(&mut self, template: &[u8], name: &Name, value: &str) -> Seen {
        // A lost query or answer costs at most this before the next poll.
        match self.ask(template, Duration::from_millis(50)).await {
            Err(e) => Seen::Other(e),
            Ok(m) => {
                let txts: Vec<String> = m
                    .answers
                    .iter()
                    .filter(|r| r.name == *name)
                    .filter_map(|r| match &r.data {
                        RData::TXT(t) => Some(
                            t.txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s).into_owned())
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                if txts.iter().any(|t| t == value) {
                    Seen::Value
                } else {
                    Seen::Other(format!("{} {:?}", m.metadata.response_code, txts))
                }
            }
        }
    }

    /// Poll every `poll` until the value is served or `deadline`; the time
    /// from `since` to the answer that had it.
    async fn until_served(
        &mut self,
        template: &[u8],
        name: &Name,
        value: &str,
        since: Instant,
        deadline: Instant,
        poll: Duration,
    ) -> Result<Duration, String> {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last = String::from("never asked");
        // Bounded: one poll per tick until the deadline.
        let max_polls = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            / poll.as_millis().max(1)
            + 2;
        for _ in 0..max_polls {
            tick.tick().await;
            if Instant::now() >= deadline {
                break;
            }
            match self.poll_txt(template, name, value).await {
                Seen::Value => return Ok(since.elapsed()),
                Seen::Other(what) => last = what,
            }
        }
        Err(last)
    }

    /// The SOA serial it serves (authoritatively), if any.
    async fn serial(&mut self, zone: &Name) -> Result<u32, String> {
        let template = build_query(zone, RecordType::SOA)?;
        let m = self.ask(&template, Duration::from_millis(500)).await?;
        if m.metadata.response_code != ResponseCode::NoError || !m.metadata.authoritative {
            return Err(format!(
                "{}{}",
                m.metadata.response_code,
                if m.metadata.authoritative {
                    ""
                } else {
                    ", not authoritative"
                }
            ));
        }
        m.answers
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) if r.name == *zone => Some(soa.serial),
                _ => None,
            })
            .ok_or_else(|| "no SOA in the answer".to_string())
    }
}

/// Wait until every watcher serves at least the primary's serial.
async fn wait_ready(
    primary: &mut Watcher,
    watchers: &mut [Watcher],
    zone: &Name,
    timeout: Duration,
) -> Result<u32, String> {
    let deadline = Instant::now() + timeout;
    let mut want = None;
    // Bounded: 10 rounds per second until the deadline.
    for _ in 0..timeout.as_millis() / 100 + 1 {
        if want.is_none() {
            want = primary.serial(zone).await.ok();
        }
        if let Some(w) = want {
            let mut behind = Vec::new();
            for wt in watchers.iter_mut() {
                match wt.serial(zone).await {
                    Ok(s) if serial_at_least(s, w) => {}
                    Ok(s) => behind.push(format!("{} serves serial {s}", wt.target.label)),
                    Err(e) => behind.push(format!("{}: {e}", wt.target.label)),
                }
            }
            if behind.is_empty() {
                return Ok(w);
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready for serial {w}: {}", behind.join("; ")));
            }
        } else if Instant::now() >= deadline {
            return Err("the primary does not answer SOA for the zone".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("not ready in time".into())
}

/// Summary line (human) and RESULT line (script) of one series.
fn summarize(label: &str, values: &[Option<Duration>]) -> (String, String) {
    let mut ok: Vec<Duration> = values.iter().flatten().copied().collect();
    ok.sort_unstable();
    let timeouts = values.len() - ok.len();
    let (p50, p99, max) = (
        ms(percentile(&ok, 50.0)),
        ms(percentile(&ok, 99.0)),
        ms(ok.last().copied().unwrap_or_default()),
    );
    let mean = if ok.is_empty() {
        0.0
    } else {
        ms(ok.iter().sum::<Duration>()) / ok.len() as f64
    };
    let min = ms(ok.first().copied().unwrap_or_default());
    (
        format!(
            "  {label:<10} p50 {p50:8.1} ms  p99 {p99:8.1} ms  max {max:8.1} ms  (min {min:.1}, mean {mean:.1}; {} measured, {timeouts} timeouts)",
            ok.len()
        ),
        format!(
            "RESULT target={label} n={} ok={} timeouts={timeouts} p50_ms={p50:.1} p99_ms={p99:.1} max_ms={max:.1} min_ms={min:.1} mean_ms={mean:.1}",
            values.len(),
            ok.len()
        ),
    )
}

fn report(args: &Args, rows: &[Row], elapsed: Duration, stopped: Option<&str>) {
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    for f in rows.iter().filter_map(|r| r.failure.as_deref()) {
        *failures.entry(f).or_default() += 1;
    }
    let good: Vec<&Row> = rows.iter().filter(|r| r.failure.is_none()).collect();
    println!(
        "{} UPDATEs ({:?}, {:?}) to {} over {:?}, one at a time: {} done, {} NOERROR, in {:.1} s{}",
        args.count,
        args.mode,
        args.name_template,
        args.server,
        args.transport,
        rows.len(),
        good.len(),
        elapsed.as_secs_f64(),
        stopped
            .map(|why| format!(" (stopped early: {why})"))
            .unwrap_or_default()
    );
    for (what, n) in &failures {
        println!("  {n} × UPDATE answered {what}");
    }
    println!(
        "time from the UPDATE's answer until the secondary serves the new TXT (polled every {} ms over UDP, timeout {} s):",
        args.poll_ms, args.update_timeout
    );
    let mut results = Vec::new();
    for (j, t) in args.secondaries.iter().enumerate() {
        let series: Vec<Option<Duration>> = good.iter().map(|r| r.seen[j]).collect();
        let (human, machine) = summarize(&t.label, &series);
        println!("{human}");
        results.push(machine);
    }
    let all: Vec<Option<Duration>> = good
        .iter()
        .map(|r| {
            r.seen
                .iter()
                .copied()
                .collect::<Option<Vec<Duration>>>()
                .and_then(|v| v.into_iter().max())
        })
        .collect();
    let (human, machine) = summarize("all", &all);
    println!("{human}");
    results.push(machine);
    let rtts: Vec<Option<Duration>> = rows.iter().map(|r| r.rtt).collect();
    let (human, machine) = summarize("update", &rtts);
    println!("UPDATE round trip (sent → answer read):\n{human}");
    results.push(machine);
    for r in results {
        println!("{r}");
    }
}

fn write_csv(path: &PathBuf, args: &Args, rows: &[Row]) -> Result<(), String> {
    let mut out = String::from("k,name,value,sent_unix_us,answered_unix_us,update_ms,rcode");
    for t in &args.secondaries {
        let _ = write!(out, ",{}_ms", t.label);
    }
    out.push_str(",all_ms\n");
    let cell = |d: Option<Duration>| d.map(|d| format!("{:.3}", ms(d))).unwrap_or_default();
    for r in rows {
        let all = r
            .seen
            .iter()
            .copied()
            .collect::<Option<Vec<Duration>>>()
            .and_then(|v| v.into_iter().max());
        let _ = write!(
            out,
            "{},{},{},{},{},{},{}",
            r.k,
            r.name,
            r.value,
            r.sent_us,
            r.answered_us,
            cell(r.rtt),
            r.failure.as_deref().unwrap_or("NOERROR")
        );
        for s in &r.seen {
            let _ = write!(out, ",{}", cell(*s));
        }
        let _ = writeln!(
            out,
            ",{}",
            if r.failure.is_some() {
                String::new()
            } else {
                cell(all)
            }
        );
    }
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

/// Send the UPDATEs and watch them arrive; rows are pushed as they finish.
async fn run(
    args: &Args,
    key: &Key,
    zone: &Name,
    run_id: &str,
    watchers: &mut [Watcher],
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let mut conn = Conn::open(args.server, args.transport).await?;
    let per_request = Duration::from_secs(args.request_timeout);
    let per_update = Duration::from_secs_f64(args.update_timeout);
    let poll = Duration::from_millis(args.poll_ms.max(1));
    let mut timeout_notes: BTreeMap<String, usize> = BTreeMap::new();
    for k in 0..args.count {
        let (name, value) = target_of(args, zone, run_id, k)?;
        let id = (k as u16).wrapping_mul(7919).wrapping_add(1);
        let bytes = build_update(args, key, zone, &name, &value, id)?;
        let template = build_query(&name, RecordType::TXT)?;
        let sent_us = unix_us();
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(per_request, conn.exchange(args.server, &bytes, id)).await;
        let answered = Instant::now();
        let answered_us = unix_us();
        let (rtt, failure) = match outcome {
            Err(_) => {
                if let Conn::Tcp(slot) = &mut conn {
                    *slot = None; // the stream is mid-answer: start over
                }
                (None, Some("timeout".to_string()))
            }
            Ok(Err(e)) => (None, Some(e)),
            Ok(Ok(answer)) => match rcode_of(&answer, id) {
                Err(e) => (None, Some(e)),
                Ok(ResponseCode::NoError) => (Some(answered - started), None),
                Ok(rcode) => (
                    Some(answered - started),
                    Some(describe_failure(&answer, rcode)),
                ),
            },
        };
        let mut seen = vec![None; watchers.len()];
        if failure.is_none() {
            let deadline = answered + per_update;
            let polls = watchers.iter_mut().map(|w| {
                let (template, name, value) = (&template, &name, &value);
                async move {
                    w.until_served(template, name, value, answered, deadline, poll)
                        .await
                }
            });
            for (j, r) in futures_join_all(polls).await.into_iter().enumerate() {
                match r {
                    Ok(d) => seen[j] = Some(d),
                    Err(last) => {
                        *timeout_notes
                            .entry(format!("{}: {last}", watchers[j].target.label))
                            .or_default() += 1;
                    }
                }
            }
        }
        rows.push(Row {
            k,
            name,
            value,
            sent_us,
            answered_us,
            rtt,
            failure,
            seen,
        });
        if args.pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
        }
    }
    for (what, n) in &timeout_notes {
        eprintln!("propagation_bench: {n} timeout(s); last answer {what}");
    }
    Ok(())
}

/// Run futures concurrently on this task and collect their outputs in order
/// (tokio has no join_all; the futures borrow the watchers mutably, so they
/// cannot be spawned).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.count == 0 || args.names == 0 || args.update_timeout <= 0.0 {
        eprintln!("propagation_bench: --count, --names and --update-timeout must be positive");
        return ExitCode::from(1);
    }
    let (key, zone) = match common::key_and_zone(&args.key, &args.zone) {
        Ok(kz) => kz,
        Err(e) => {
            eprintln!("propagation_bench: {e}");
            return ExitCode::from(1);
        }
    };
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        format!(
            "zw-prop-{:x}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        )
    });
    if let Err(e) = target_of(&args, &zone, &run_id, 0) {
        eprintln!("propagation_bench: --name-template: {e}");
        return ExitCode::from(1);
    }
    let mut watchers = Vec::new();
    let primary_target = Target {
        label: "primary".into(),
        addr: args.server,
    };
    for t in std::iter::once(&primary_target).chain(&args.secondaries) {
        match connected_udp(t.addr).await {
            Ok(sock) => watchers.push(Watcher {
                target: t.clone(),
                sock,
                next_id: 0,
            }),
            Err(e) => {
                eprintln!("propagation_bench: {}: {e}", t.label);
                return ExitCode::from(1);
            }
        }
    }
    let mut primary = watchers.remove(0);
    match wait_ready(
        &mut primary,
        &mut watchers,
        &zone,
        Duration::from_secs(args.ready_timeout),
    )
    .await
    {
        Ok(serial) => {
            eprintln!(
                "propagation_bench: every secondary serves serial {serial}; sending {} UPDATEs in {} ms",
                args.count, args.settle_ms
            );
            tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
        }
        Err(e) => {
            eprintln!("propagation_bench: {e}");
            return ExitCode::from(1);
        }
    }

    let started = Instant::now();
    let mut rows = Vec::with_capacity(args.count);
    let outcome = tokio::time::timeout(
        Duration::from_secs(args.timeout),
        run(&args, &key, &zone, &run_id, &mut watchers, &mut rows),
    )
    .await;
    let elapsed = started.elapsed();
    if let Some(path) = &args.csv
        && let Err(e) = write_csv(path, &args, &rows)
    {
        eprintln!("propagation_bench: --csv: {e}");
    }
    match outcome {
        Ok(Ok(())) => {
            report(&args, &rows, elapsed, None);
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("propagation_bench: {e}");
            report(&args, &rows, elapsed, Some(&e));
            ExitCode::from(1)
        }
        Err(_) => {
            report(&args, &rows, elapsed, Some("overall --timeout"));
            ExitCode::from(2)
        }
    }
}

//! update_bench: a load generator for RFC 2136 UPDATE.
//!
//! Sends N TSIG-signed UPDATEs to any RFC 2136 server (zonewarden, Knot,
//! BIND...), C at a time: C workers, each with its own connection (TCP,
//! the default, or a connected UDP socket) and one request in flight, so C
//! is the number of UPDATEs in flight. Each UPDATE changes one TXT record:
//!
//! - `--mode add`: add `"<token i>"` at name i (one distinct name each);
//! - `--mode delete`: delete that exact RR at name i (undoes `add`);
//! - `--mode flip`: alternate add / delete of one RR at one name (i = 0).
//! - `--mode churn`: ACME's pattern at a steady zone size: the first
//!   `--window W` UPDATEs add names 0..W, then adds of new names alternate
//!   with deletes of the oldest, so about W names are live at any time
//!   (each lives for about 2 W UPDATEs, as a challenge lives until it is
//!   validated).
//!
//! `--rtype tlsa` sends a TLSA record (`3 1 1 <i as 64 hex digits>`, the
//! shape of a DANE-EE record) instead of the TXT, for loading DANE zones.
//!
//! Names come from `--name-template`, where `{i}` is the update's index
//! (from `--start`); a name without a trailing dot is relative to `--zone`.
//! Latency is measured per UPDATE from the first byte sent to the whole
//! answer read. The last line of output is `RESULT key=value ...` for
//! scripts. `--rate R` paces the run at R UPDATEs a second (a steady
//! background load); SIGINT then ends it with its report. Exit status: 0
//! when all N were answered (whatever the RCODEs), 2 when the overall
//! `--timeout` or SIGINT stopped the run, 1 on a setup error.
//!
//! ```text
//! cargo run --release --example update_bench -- --server 127.0.0.1:5300 \
//!     --zone _acme.example.org --key data/keys/bench.key \
//!     --name-template '_acme-challenge.m{i}' --count 2000 --concurrency 16
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use zonewarden::tsig::{Key, sign_request};

mod common;
use common::{Conn, Transport, describe_failure, ms, percentile, rcode_of};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Add,
    Delete,
    Flip,
    Churn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Rtype {
    Txt,
    Tlsa,
}

#[derive(Parser, Debug)]
#[command(
    about = "Send N TSIG-signed RFC 2136 UPDATEs, C in flight, and report updates/s and latency"
)]
struct Args {
    /// Server address, ADDR:PORT.
    #[arg(long)]
    server: SocketAddr,
    /// The zone to update (the UPDATE's zone section).
    #[arg(long)]
    zone: String,
    /// TSIG key in BIND key-file format (the first key in the file is used).
    #[arg(long)]
    key: PathBuf,
    /// Owner name of update i; `{i}` is replaced; relative to --zone unless it ends with a dot.
    #[arg(long, default_value = "_acme-challenge.m{i}")]
    name_template: String,
    /// How many UPDATEs to send.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// UPDATEs in flight (one per connection).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// First index i.
    #[arg(long, default_value_t = 0)]
    start: usize,
    #[arg(long, value_enum, default_value = "add")]
    mode: Mode,
    /// `--mode churn`: how many names are live at once.
    #[arg(long, default_value_t = 1000)]
    window: usize,
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// The type of the record each UPDATE adds or deletes.
    #[arg(long, value_enum, default_value = "txt")]
    rtype: Rtype,
    /// TTL of added records.
    #[arg(long, default_value_t = 60)]
    ttl: u32,
    /// TSIG fudge, seconds.
    #[arg(long, default_value_t = 300)]
    fudge: u16,
    /// Seconds to wait for one answer before counting a timeout.
    #[arg(long, default_value_t = 5)]
    request_timeout: u64,
    /// Seconds the whole run may take.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Send at most this many UPDATEs per second in all (0: as fast as
    /// answers come): UPDATE i is not sent before i / rate seconds after
    /// the start. A steady background load for scripts/bench-propagation.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
}

/// What every worker needs, shared.
struct Plan {
    args: Args,
    key: Key,
    zone: Name,
    next: AtomicUsize,
    stats: Mutex<Stats>,
    /// When the run started (for --rate).
    started: Instant,
}

#[derive(Default)]
struct Stats {
    /// One per answer (NOERROR or not).
    latencies: Vec<Duration>,
    noerror: usize,
    /// Answers other than NOERROR, and failures, by what happened.
    failures: BTreeMap<String, usize>,
}

impl Stats {
    fn fail(&mut self, what: impl Into<String>) {
        *self.failures.entry(what.into()).or_default() += 1;
    }
}

/// The 43-character value of TXT i (the length of an ACME DNS-01 token).
fn token(i: usize) -> String {
    format!("zw-bench-{i:034}")
}

fn owner(plan: &Plan, i: usize) -> Result<Name, String> {
    let rel = plan.args.name_template.replace("{i}", &i.to_string());
    let full = if rel.ends_with('.') {
        rel
    } else {
        format!("{rel}.{}", plan.zone)
    };
    Name::from_str(&full).map_err(|e| format!("name {full:?}: {e}"))
}

/// `--mode churn`: the index UPDATE `k` touches, and whether it adds.
fn churn(window: usize, k: usize) -> (usize, bool) {
    match k.checked_sub(window) {
        None => (k, true),
        Some(m) if m.is_multiple_of(2) => (window + m / 2, true),
        Some(m) => (m / 2, false),
    }
}

/// The signed wire form of update number `k` (0-based), with message ID `id`.
fn build(plan: &Plan, k: usize, id: u16) -> Result<Vec<u8>, String> {
    let (i, add) = match plan.args.mode {
        Mode::Add => (plan.args.start + k, true),
        Mode::Delete => (plan.args.start + k, false),
        Mode::Flip => (plan.args.start, k.is_multiple_of(2)),
        Mode::Churn => {
            let (i, add) = churn(plan.args.window, k);
            (plan.args.start + i, add)
        }
    };
    let name = owner(plan, i)?;
    let data = match plan.args.rtype {
        Rtype::Txt => RData::TXT(TXT::new(vec![token(i)])),
        Rtype::Tlsa => RData::try_from_str(RecordType::TLSA, &format!("3 1 1 {i:064x}"))
            .map_err(|e| format!("TLSA: {e}"))?,
    };
    let rr = if add {
        Record::from_rdata(name, plan.args.ttl, data)
    } else {
        // RFC 2136 §2.5.4: delete an RR from an RRset (class NONE, TTL 0).
        let mut r = Record::from_rdata(name, 0, data);
        r.dns_class = DNSClass::NONE;
        r
    };
    let mut msg = Message::new(id, MessageType::Query, OpCode::Update);
    let mut q = Query::query(plan.zone.clone(), RecordType::SOA);
    q.set_query_class(DNSClass::IN);
    msg.add_query(q);
    msg.insert_authorities(vec![rr]);
    let unsigned = msg.to_vec().map_err(|e| format!("encode: {e}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (sig, _mac) = sign_request(&unsigned, &plan.key, now, plan.args.fudge);
    msg.set_signature(Box::new(sig));
    msg.to_vec().map_err(|e| format!("encode: {e}"))
}

async fn worker(plan: Arc<Plan>, worker_no: usize) -> Result<(), String> {
    let mut conn = Conn::open(plan.args.server, plan.args.transport).await?;
    let per_request = Duration::from_secs(plan.args.request_timeout);
    loop {
        let k = plan.next.fetch_add(1, Ordering::Relaxed);
        if k >= plan.args.count {
            return Ok(());
        }
        if plan.args.rate > 0.0 {
            let due = plan.started + Duration::from_secs_f64(k as f64 / plan.args.rate);
            tokio::time::sleep_until(due.into()).await;
        }
        // Distinct IDs across workers (a TCP answer is matched by ID too).
        let id = (k as u16).wrapping_add((worker_no as u16).wrapping_mul(4099));
        let bytes = build(&plan, k, id)?;
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(per_request, conn.exchange(plan.args.server, &bytes, id)).await;
        let elapsed = started.elapsed();
        let mut stats = plan.stats.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Err(_) => {
                stats.fail("timeout");
                if let Conn::Tcp(slot) = &mut conn {
                    *slot = None; // the stream is mid-answer: start over
                }
            }
            Ok(Err(e)) => stats.fail(e),
            Ok(Ok(answer)) => match rcode_of(&answer, id) {
                Err(e) => stats.fail(e),
                Ok(ResponseCode::NoError) => {
                    stats.latencies.push(elapsed);
                    stats.noerror += 1;
                }
                Ok(rcode) => {
                    stats.latencies.push(elapsed);
                    stats.fail(describe_failure(&answer, rcode));
                }
            },
        }
    }
}

/// `stopped`: why the run ended early, if it did.
fn report(plan: &Plan, elapsed: Duration, stopped: Option<&str>) {
    let stats = plan.stats.lock().unwrap_or_else(|p| p.into_inner());
    let mut lat = stats.latencies.clone();
    lat.sort_unstable();
    let failed: usize = stats.failures.values().sum();
    let noerror = stats.noerror;
    let done = noerror + failed;
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let a = &plan.args;
    println!(
        "{} UPDATEs ({:?}, {:?}) to {} over {:?}, {} in flight: {done} done in {:.2} s{}",
        a.count,
        a.mode,
        a.name_template,
        a.server,
        a.transport,
        a.concurrency,
        elapsed.as_secs_f64(),
        stopped
            .map(|why| format!(" (stopped early: {why})"))
            .unwrap_or_default()
    );
    println!(
        "  {rate:.1} updates/s; latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {failed} not NOERROR",
        ms(percentile(&lat, 50.0)),
        ms(percentile(&lat, 99.0)),
        ms(lat.last().copied().unwrap_or_default())
    );
    for (what, n) in &stats.failures {
        println!("  {n} × {what}");
    }
    println!(
        "RESULT done={done} noerror={noerror} errors={failed} seconds={:.3} ups={rate:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} finished={}",
        elapsed.as_secs_f64(),
        ms(percentile(&lat, 50.0)),
        ms(percentile(&lat, 99.0)),
        ms(lat.last().copied().unwrap_or_default()),
        u8::from(stopped.is_none())
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.concurrency == 0 || args.count == 0 {
        eprintln!("update_bench: --count and --concurrency must be at least 1");
        return ExitCode::from(1);
    }
    let (key, zone) = match common::key_and_zone(&args.key, &args.zone) {
        Ok(kz) => kz,
        Err(e) => {
            eprintln!("update_bench: {e}");
            return ExitCode::from(1);
        }
    };
    let overall = Duration::from_secs(args.timeout);
    let workers = args.concurrency.min(args.count);
    let plan = Arc::new(Plan {
        args,
        key,
        zone,
        next: AtomicUsize::new(0),
        stats: Mutex::new(Stats::default()),
        started: Instant::now(),
    });
    if let Err(e) = owner(&plan, plan.args.start) {
        eprintln!("update_bench: --name-template: {e}");
        return ExitCode::from(1);
    }

    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        set.spawn(worker(plan.clone(), w));
    }
    let all = async {
        let mut setup_error = None;
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Err(e)) => setup_error = Some(e),
                Err(e) => setup_error = Some(format!("worker failed: {e}")),
                Ok(Ok(())) => {}
            }
        }
        setup_error
    };
    // SIGINT ends a --rate run early (a background load): the report
    // covers what was sent until then.
    let outcome = tokio::select! {
        r = tokio::time::timeout(overall, all) => r,
        _ = tokio::signal::ctrl_c() => {
            report(&plan, started.elapsed(), Some("interrupted"));
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(None) => {
            report(&plan, started.elapsed(), None);
            ExitCode::SUCCESS
        }
        Ok(Some(e)) => {
            eprintln!("update_bench: {e}");
            report(&plan, started.elapsed(), Some(&e));
            ExitCode::from(1)
        }
        Err(_) => {
            report(&plan, started.elapsed(), Some("overall --timeout"));
            ExitCode::from(2)
        }
    }
}

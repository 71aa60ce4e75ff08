//! The operations side over a real socket with a real HTTP client (curl):
//! health and readiness, the JSON views, Prometheus metrics that move with
//! updates, refusals, TSIG failures, reloads, expiry and NOTIFY (parsed
//! strictly), the bearer token, a broken ACL reload on the machines view
//! and the page, and no secret in any answer.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use zonewarden::tsig::{Algorithm, Key};

struct Http {
    status: u16,
    headers: String,
    body: String,
}

/// GET with curl (`-i`: status line and headers, then the body).
async fn get_with(url: String, extra: Vec<String>) -> Http {
    require("curl", "curl");
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args(["-sS", "-i", "--max-time", "10"])
            .args(&extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("headers and body");
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        Http {
            status,
            headers: head.to_ascii_lowercase(),
            body: body.to_string(),
        }
    })
    .await
    .unwrap()
}

fn base(h: &Harness) -> String {
    format!("http://{}", h.server.as_ref().unwrap().http_addr().unwrap())
}

async fn get(h: &Harness, path: &str) -> Http {
    get_with(format!("{}{path}", base(h)), vec![]).await
}

async fn get_json(h: &Harness, path: &str) -> serde_json::Value {
    let r = get(h, path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    assert!(
        r.headers.contains("content-type: application/json"),
        "{path}: {}",
        r.headers
    );
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
}

/// A metric sample: name and sorted label pairs.
type Series = (String, Vec<(String, String)>);

/// Parse the Prometheus text format (0.0.4) with a real parser
/// (`openmetrics-parser`'s grammar: names, label escapes, numbers; no series
/// twice, no family split, histogram buckets cumulative with a +Inf one),
/// then check what the server promises on top: every family declared with
/// HELP and TYPE, a histogram's +Inf bucket equal to its `_count`.
/// Flattened to one value per series, a histogram as its `_bucket`, `_sum`
/// and `_count` samples.
fn parse_metrics(text: &str) -> BTreeMap<Series, f64> {
    use openmetrics_parser::prometheus::parse_prometheus;
    use openmetrics_parser::{PrometheusType, PrometheusValue};
    let exposition = parse_prometheus(text).unwrap_or_else(|e| panic!("{e:?} in:\n{text}"));
    let mut out = BTreeMap::new();
    let mut put = |name: String, mut labels: Vec<(String, String)>, v: f64| {
        labels.sort();
        let series = (name, labels);
        assert!(out.insert(series.clone(), v).is_none(), "twice: {series:?}");
    };
    for (name, family) in &exposition.families {
        assert!(!family.help.is_empty(), "{name}: no HELP");
        assert_ne!(
            family.family_type,
            PrometheusType::Unknown,
            "{name}: no TYPE"
        );
        for sample in family.iter_samples() {
            let labels: Vec<(String, String)> = sample
                .get_labelset()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            match &sample.value {
                PrometheusValue::Counter(c) => put(name.clone(), labels, c.value.as_f64()),
                PrometheusValue::Gauge(v) => put(name.clone(), labels, v.as_f64()),
                PrometheusValue::Histogram(h) => {
                    let count = h.count.unwrap_or_else(|| panic!("{name}: no _count")) as f64;
                    let inf = h.buckets.iter().find(|b| b.upper_bound == f64::INFINITY);
                    assert_eq!(
                        inf.map(|b| b.count.as_f64()),
                        Some(count),
                        "{name}: +Inf bucket equals _count"
                    );
                    for b in &h.buckets {
                        let mut l = labels.clone();
                        let le = if b.upper_bound == f64::INFINITY {
                            "+Inf".to_string()
                        } else {
                            b.upper_bound.to_string()
                        };
                        l.push(("le".into(), le));
                        put(format!("{name}_bucket"), l, b.count.as_f64());
                    }
                    let sum = h.sum.unwrap_or_else(|| panic!("{name}: no _sum"));
                    put(format!("{name}_sum"), labels.clone(), sum.as_f64());
                    put(format!("{name}_count"), labels, count);
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
    }
    out
}

async fn scrape(h: &Harness) -> BTreeMap<Series, f64> {
    let r = get(h, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.headers
    );
    parse_metrics(&r.body)
}

fn val(m: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    m.get(&(name.to_string(), l)).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn the_exposition_parser_rejects_what_prometheus_would() {
    for bad in [
        "m 1\n",                                                                            // no TYPE
        "# HELP m x\n# TYPE m counter\nm{a=\"x\\q\"} 1\n", // bad escape
        "# HELP m x\n# TYPE m counter\nm{a=\"x} 1\n",      // unclosed
        "# HELP m x\n# TYPE m counter\nm 1\nm 2\n",        // twice
        "# HELP m x\n# TYPE m counter\nm one\n",           // not a number
        "# HELP m x\n# TYPE m gauge\nm 1\n# HELP n x\n# TYPE n gauge\nn 1\nm{a=\"b\"} 1\n", // split
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", // +Inf != count
    ] {
        let r = std::panic::catch_unwind(|| parse_metrics(bad));
        assert!(r.is_err(), "accepted {bad:?}");
    }
    // ... and reads a good one, escapes undone.
    let good = parse_metrics(
        "# HELP m x\n# TYPE m counter\nm{a=\"x\\\"y\\\\z\\nw\"} 1\n\
         # HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n",
    );
    assert_eq!(val(&good, "m", &[("a", "x\"y\\z\nw")]), 1.0, "{good:?}");
    assert_eq!(val(&good, "h_bucket", &[("le", "1")]), 1.0, "{good:?}");
    assert_eq!(val(&good, "h_sum", &[]), 1.5, "{good:?}");
    assert_eq!(val(&good, "h_count", &[]), 2.0, "{good:?}");
    assert_eq!(good.len(), 5, "{good:?}");
}

#[tokio::test]
async fn health_readiness_and_every_json_view_answer_with_real_status_codes() {
    let h = Harness::start().await;
    let r = get(&h, "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let ready = get_json(&h, "/readyz").await;
    assert_eq!(ready["ready"], true, "{ready}");
    let names: Vec<&str> = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"database") && names.contains(&"zones"),
        "{names:?}"
    );
    assert!(
        names.contains(&"signatures _acme.example.org."),
        "{names:?}"
    );

    let owner = zname("_acme-challenge.mx1");
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, "v1")]),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    let serial = h.serial(ZONE).await;

    let zones = get_json(&h, "/api/v1/zones").await;
    let z = zones
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == ZONE)
        .unwrap_or_else(|| panic!("{zones}"));
    assert_eq!(z["serial"], serial);
    assert_eq!(z["dnssec"]["enabled"], true);
    assert_eq!(z["dnssec"]["algorithm"], "ecdsap256sha256");
    let horizon = z["dnssec"]["signature_horizon_seconds"].as_i64().unwrap();
    assert!(horizon > 86_400 && horizon <= 14 * 86_400, "{z}");

    for path in [
        "/api/v1/zones/_acme.example.org",
        "/api/v1/zones/_acme.example.org.",
    ] {
        let d = get_json(&h, path).await;
        assert_eq!(d["serial"], serial);
        assert!(d["ds"].as_str().unwrap().contains(" DS "), "{d}");
        assert!(d["dnskey"].as_str().unwrap().contains("DNSKEY"), "{d}");
        assert!(d["dnssec_records"].as_u64().unwrap() > 0);
        assert!(
            d["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == owner.to_string()
                    && r["type"] == "TXT"
                    && r["data"].as_str().unwrap().contains("v1")),
            "{d}"
        );
    }
    let other = get_json(&h, "/api/v1/zones/other.test").await;
    assert_eq!(other["dnssec"]["enabled"], true);

    let p = get_json(&h, "/api/v1/zones/_acme.example.org/propagation").await;
    assert_eq!(p["serial"], serial);
    assert_eq!(p["in_sync"], true);
    assert_eq!(p["nameservers"][0]["role"], "primary");

    let m = get_json(&h, "/api/v1/machines").await;
    assert_eq!(m["reload"]["ok"], true);
    let mx1 = m["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "mx1")
        .unwrap()
        .clone();
    assert_eq!(mx1["key"], "mx1.");
    assert!(
        mx1["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "_acme-challenge.mx1 TXT(3)"),
        "{mx1}"
    );
    assert_eq!(mx1["last_change"]["action"], "update");
    assert!(
        mx1["last_change"]["detail"]
            .as_str()
            .unwrap()
            .contains("v1")
    );
    assert!(mx1["last_refusal"].is_null());

    let a = get_json(&h, &format!("/api/v1/audit?zone={ZONE}&machine=mx1")).await;
    let entries = a["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{a}");
    assert_eq!(entries[0]["machine"], "mx1");
    assert_eq!(entries[0]["source"], "127.0.0.1");
    let all = get_json(&h, "/api/v1/audit").await;
    assert!(
        all["entries"].as_array().unwrap().len() > 1,
        "zone creation rows too"
    );
    let later = get_json(&h, &format!("/api/v1/audit?since={}", h.clock_now() + 1)).await;
    assert_eq!(later["entries"].as_array().unwrap().len(), 0);
    let none = get_json(&h, "/api/v1/audit?machine=www1").await;
    assert_eq!(none["entries"].as_array().unwrap().len(), 0);
    // Empty parameters, as docs/http-api.md writes them, mean "no filter"; a
    // `since` past SQLite's integers matches nothing instead of wrapping.
    let empty = get_json(&h, "/api/v1/audit?zone=&machine=&since=&limit=").await;
    assert_eq!(empty["entries"], all["entries"]);
    let far = get_json(&h, "/api/v1/audit?since=18446744073709551615").await;
    assert_eq!(far["entries"].as_array().unwrap().len(), 0);

    for (path, status) in [
        ("/api/v1/zones/nope.example", 404),
        ("/api/v1/zones/nope.example/propagation", 404),
        ("/api/v1/audit?zone=nope.example", 404),
        ("/api/v1/audit?since=yesterday", 400),
        ("/api/v1/audit?color=red", 400),
        ("/api/v1/nothing", 404),
    ] {
        let r = get(&h, path).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        let e: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert!(e["error"].is_string(), "{path}: {}", r.body);
    }
}

async fn wait_for(h: &Harness, what: &str, mut ok: impl FnMut(&BTreeMap<Series, f64>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = scrape(h).await;
        if ok(&m) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {m:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn metrics_move_with_updates_refusals_tsig_failures_reloads_expiry_and_notify() {
    let fake = common::secondary::recorder(false, 1).await;
    let (secondary, serial_at_secondary) = (fake.addr, fake.serves.clone());
    let dead = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap() // bound and never read: NOTIFY times out
    };
    let h = Harness::start_with(|c| {
        write(
            &c.zones_dir.join("acme.toml"),
            &format!(
                "{ZONE_FILE}\n[[secondary]]\naddress = \"{secondary}\"\nname = \"fake\"\n\n[[secondary]]\naddress = \"{dead}\"\nname = \"dead\"\n"
            ),
        );
    })
    .await;
    let before = scrape(&h).await;
    let owner = zname("_acme-challenge.mx1");

    // Queries by type and rcode.
    h.query(ZONE, RecordType::SOA).await;
    h.query(&format!("nothing.{ZONE}"), RecordType::TXT).await;
    h.query("example.com.", RecordType::A).await;
    // Accepted: one change, one no-op.
    // (two messages: the same one twice would be a replay)
    let add1 = || update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, "a")]);
    assert_eq!(h.update_rcode("mx1", add1()).await, ResponseCode::NoError);
    assert_eq!(h.update_rcode("mx1", add1()).await, ResponseCode::NoError);
    // Refused by the ACL, a prerequisite, a limit (max-rrset 3).
    let theirs = zname("_acme-challenge.www1");
    let r = h
        .update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![add(&theirs, 60, RecordType::TXT, "x")]),
        )
        .await;
    assert_eq!(r, ResponseCode::Refused);
    let r = h
        .update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![pre_exists(&zname("_acme-challenge.mx1"), RecordType::TLSA)],
                vec![add(&owner, 60, RecordType::TXT, "b")],
            ),
        )
        .await;
    assert_eq!(r, ResponseCode::NXRRSet);
    let four: Vec<Record> = ["b", "c", "d"]
        .iter()
        .map(|v| add(&owner, 60, RecordType::TXT, v))
        .collect();
    let r = h.update_rcode("mx1", update_msg(ZONE, vec![], four)).await;
    assert_eq!(r, ResponseCode::Refused);
    // TSIG: a wrong secret under mx1's name, and a key nobody configured.
    let forged = Key::generate(name("mx1."), Algorithm::HmacSha256).unwrap();
    let msg = sign(
        update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, "f")]),
        &forged,
        h.clock_now(),
    );
    let resp = Message::from_vec(&h.tcp(&msg).await).unwrap();
    assert_eq!(resp.metadata.response_code, ResponseCode::NotAuth);
    let stranger = Key::generate(name("stranger."), Algorithm::HmacSha256).unwrap();
    let msg = sign(
        query_msg(ZONE, RecordType::SOA, false),
        &stranger,
        h.clock_now(),
    );
    let resp = Message::from_vec(&h.tcp(&msg).await).unwrap();
    assert_eq!(resp.metadata.response_code, ResponseCode::NotAuth);
    // Unsigned.
    let r = Message::from_vec(
        &h.tcp(
            &update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, "u")])
                .to_vec()
                .unwrap(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    // Reloads: one good, one broken.
    h.server().policy.reload(true).unwrap();
    write(&h.path("acl/www1.toml"), "[[grant]]\nname = 1\n");
    assert!(h.server().policy.reload(true).is_err());
    // Expiry.
    h.clock.advance(3601);
    assert_eq!(h.server().sweep_expired().unwrap(), 1);

    let after = scrape(&h).await;
    let d = |name: &str, labels: &[(&str, &str)]| {
        val(&after, name, labels) - val(&before, name, labels)
    };
    assert_eq!(
        d(
            "zonewarden_queries_total",
            &[("type", "SOA"), ("rcode", "NOERROR")]
        ),
        1.0
    );
    assert_eq!(
        d(
            "zonewarden_queries_total",
            &[("type", "TXT"), ("rcode", "NXDOMAIN")]
        ),
        1.0
    );
    assert_eq!(
        d(
            "zonewarden_queries_total",
            &[("type", "A"), ("rcode", "REFUSED")]
        ),
        1.0
    );
    assert_eq!(
        d(
            "zonewarden_queries_total",
            &[("type", "SOA"), ("rcode", "NOTAUTH")]
        ),
        1.0
    );
    let zone = [("zone", ZONE), ("result", "changed")];
    assert_eq!(d("zonewarden_updates_accepted_total", &zone), 1.0);
    assert_eq!(
        d(
            "zonewarden_updates_accepted_total",
            &[("zone", ZONE), ("result", "unchanged")]
        ),
        1.0
    );
    for (reason, n) in [
        ("acl", 1.0),
        ("prerequisite", 1.0),
        ("limit", 1.0),
        ("tsig", 1.0),
        ("unsigned", 1.0),
    ] {
        assert_eq!(
            d("zonewarden_updates_refused_total", &[("reason", reason)]),
            n,
            "{reason}"
        );
    }
    assert_eq!(
        d(
            "zonewarden_tsig_failures_total",
            &[("key", "mx1."), ("error", "badsig")]
        ),
        1.0
    );
    assert_eq!(
        d(
            "zonewarden_tsig_failures_total",
            &[("key", "(unknown)"), ("error", "badkey")]
        ),
        1.0
    );
    assert_eq!(d("zonewarden_acl_reloads_total", &[("result", "ok")]), 1.0);
    // (the 2 s poller may see the broken file first: at least one)
    assert!(d("zonewarden_acl_reloads_total", &[("result", "failed")]) >= 1.0);
    assert_eq!(val(&after, "zonewarden_acl_reload_failing", &[]), 1.0);
    assert_eq!(
        d("zonewarden_records_expired_total", &[("zone", ZONE)]),
        1.0
    );
    // Two changes (the add, the expiry) committed, each timed.
    assert!(d("zonewarden_sqlite_commit_duration_seconds_count", &[]) >= 2.0);
    let serial = h.serial(ZONE).await;
    assert_eq!(
        val(&after, "zonewarden_zone_serial", &[("zone", ZONE)]),
        f64::from(serial)
    );
    let horizon = val(
        &after,
        "zonewarden_signature_expiry_horizon_seconds",
        &[("zone", ZONE)],
    );
    assert!(horizon > 86_400.0, "{horizon}");

    // The fake secondary acknowledges NOTIFY and serves serial 1: far behind.
    let fake = [("zone", ZONE), ("secondary", "fake")];
    let dead = [("zone", ZONE), ("secondary", "dead")];
    wait_for(&h, "NOTIFY acknowledged by fake, failed to dead", |m| {
        val(m, "zonewarden_notify_sent_total", &fake) >= 1.0
            && val(m, "zonewarden_notify_failed_total", &dead) >= 1.0
            && val(m, "zonewarden_secondary_serial", &fake) == 1.0
            && val(m, "zonewarden_secondary_error", &dead) == 1.0
    })
    .await;
    let m = scrape(&h).await;
    assert_eq!(
        val(&m, "zonewarden_secondary_serial_lag", &fake),
        f64::from(serial.wrapping_sub(1))
    );
    assert!(
        val(&m, "zonewarden_secondary_seconds_behind", &fake) >= 3601.0,
        "behind since the start (the clock moved an hour): {m:?}"
    );
    let dead_lag: Series = (
        "zonewarden_secondary_serial_lag".to_string(),
        vec![
            ("secondary".to_string(), "dead".to_string()),
            ("zone".to_string(), ZONE.to_string()),
        ],
    );
    assert!(
        !m.contains_key(&dead_lag),
        "no lag for a secondary that never answered"
    );
    let p = get_json(&h, &format!("/api/v1/zones/{ZONE}/propagation")).await;
    assert_eq!(p["in_sync"], false);
    let fake_view = p["nameservers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "fake")
        .unwrap();
    assert_eq!(fake_view["serial"], 1);
    assert_eq!(fake_view["in_sync"], false);

    // It catches up: lag and seconds behind drop to 0.
    serial_at_secondary.store(serial, Ordering::SeqCst);
    wait_for(&h, "the fake secondary in sync", |m| {
        val(m, "zonewarden_secondary_serial", &fake) == f64::from(serial)
            && val(m, "zonewarden_secondary_serial_lag", &fake) == 0.0
            && val(m, "zonewarden_secondary_seconds_behind", &fake) == 0.0
    })
    .await;
}

#[tokio::test]
async fn a_broken_acl_reload_shows_on_the_machines_view_and_the_page_escaped() {
    let h = Harness::start().await;
    // A refusal first, so the machine has a last refusal.
    let r = h
        .update_rcode(
            "www1",
            update_msg(
                ZONE,
                vec![],
                vec![add(&zname("_acme-challenge.mx1"), 60, RecordType::TXT, "x")],
            ),
        )
        .await;
    assert_eq!(r, ResponseCode::Refused);
    write(
        &h.path("acl/www1.toml"),
        "[[grant]]\nname = \"ok\"\ntypes = [\"TXT\"]\n\"<b>bold</b>\" = 1\n",
    );
    assert!(h.server().policy.reload(true).is_err());
    let m = get_json(&h, "/api/v1/machines").await;
    assert_eq!(m["reload"]["ok"], false, "{m}");
    let err = m["reload"]["last_error"].as_str().unwrap();
    assert!(err.contains("www1.toml:4:"), "path:line:column: {err}");
    assert!(err.contains("<b>bold</b>"), "{err}");
    let www1 = m["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "www1")
        .unwrap();
    assert_eq!(www1["last_refusal"]["reason"], "acl", "{www1}");
    assert_eq!(www1["last_refusal"]["rcode"], "REFUSED");
    assert_eq!(
        www1["last_refusal"]["owner"],
        zname("_acme-challenge.mx1").to_string()
    );
    let page = get(&h, "/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers.contains("content-type: text/html"),
        "{}",
        page.headers
    );
    assert!(
        page.body.contains("The last reload failed"),
        "{}",
        page.body
    );
    assert!(page.body.contains("www1.toml:4:"));
    assert!(page.body.contains("&lt;b&gt;bold&lt;/b&gt;"), "escaped");
    assert!(!page.body.contains("<b>bold"), "never raw");
    assert!(
        page.body.contains("(acl)"),
        "the last refusal with its reason"
    );
    // Fixed: the page says so.
    write(&h.path("acl/www1.toml"), WWW1_ACL);
    h.server().policy.reload(true).unwrap();
    let m = get_json(&h, "/api/v1/machines").await;
    assert_eq!(m["reload"]["ok"], true);
    assert!(m["reload"]["last_error"].is_null());
    assert!(get(&h, "/").await.body.contains("ACLs and keys loaded"));
}

const TOKEN: &str = "s3cr3t-token-0123456789abcdef";

#[tokio::test]
async fn with_http_require_token_reads_need_the_bearer_token_and_probes_do_not() {
    let h = Harness::start_with(|c| {
        let path = c.zones_dir.parent().unwrap().join("http.token");
        write(&path, &format!("{TOKEN}\n"));
        c.http_token_file = Some(path);
        c.http_require_token = true;
    })
    .await;
    for path in [
        "/",
        "/metrics",
        "/api/v1/zones",
        "/api/v1/machines",
        "/api/v1/audit",
    ] {
        let url = format!("{}{path}", base(&h));
        let r = get_with(url.clone(), vec![]).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(
            r.headers.contains("www-authenticate: bearer"),
            "{path}: {}",
            r.headers
        );
        let r = get_with(
            url.clone(),
            vec![
                "-H".into(),
                "Authorization: Bearer wrong-token-0123456789".into(),
            ],
        )
        .await;
        assert_eq!(r.status, 401, "{path}");
        let r = get_with(
            url,
            vec!["-H".into(), format!("Authorization: Bearer {TOKEN}")],
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    assert_eq!(get(&h, "/healthz").await.status, 200);
    assert_eq!(get(&h, "/readyz").await.status, 200);
    // The TLSA endpoint keeps its own TSIG-HMAC scheme; a bearer token is no substitute.
    let r = get_with(
        format!("{}/api/v1/tlsa", base(&h)),
        vec![
            "-X".into(),
            "POST".into(),
            "-H".into(),
            format!("Authorization: Bearer {TOKEN}"),
            "-d".into(),
            "{}".into(),
        ],
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers.contains("www-authenticate: tsig-hmac"),
        "{}",
        r.headers
    );
}

#[tokio::test]
async fn a_token_file_that_is_too_short_stops_the_start_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Harness::layout(dir.path());
    let path = dir.path().join("http.token");
    write(&path, "short\n");
    c.http_token_file = Some(path);
    // `check` finds it before `serve` would.
    let (report, ok) = zonewarden::client::cli::check(&c);
    assert!(
        !ok && report.contains("http.token") && report.contains("at least 16"),
        "{report}"
    );
    let err = match zonewarden::start(c, Arc::new(zonewarden::ManualClock::starting_now())).await {
        Ok(_) => panic!("started with a 5-character token"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("http.token") && err.contains("at least 16"),
        "{err}"
    );
}

#[tokio::test]
async fn no_answer_of_any_endpoint_contains_a_secret() {
    let h = Harness::start_with(|c| {
        let path = c.zones_dir.parent().unwrap().join("http.token");
        write(&path, TOKEN);
        c.http_token_file = Some(path);
    })
    .await;
    // Make every view non-trivial: a change, refusals, a broken reload.
    let owner = zname("_acme-challenge.mx1");
    h.update_rcode(
        "mx1",
        update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, "a")]),
    )
    .await;
    h.update_rcode(
        "www1",
        update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, "b")]),
    )
    .await;
    write(&h.path("acl/www1.toml"), "key = 12\n");
    let _ = h.server().policy.reload(true);
    let mut secrets: Vec<String> = vec![TOKEN.into()];
    for entry in std::fs::read_dir(h.path("data/keys")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let secret = text.split('"').nth(3).unwrap().to_string();
        assert!(secret.len() >= 20);
        secrets.push(secret);
    }
    assert!(secrets.len() >= 6, "every demo key: {secrets:?}");
    let auth = vec!["-H".to_string(), format!("Authorization: Bearer {TOKEN}")];
    let mut seen = 0;
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/zones",
        "/api/v1/zones/_acme.example.org",
        "/api/v1/zones/other.test",
        "/api/v1/zones/_acme.example.org/propagation",
        "/api/v1/machines",
        "/api/v1/audit",
        "/api/v1/audit?machine=mx1",
        "/api/v1/nothing",
    ] {
        let r = get_with(format!("{}{path}", base(&h)), auth.clone()).await;
        let all = format!("{}\n{}", r.headers, r.body);
        for s in &secrets {
            assert!(!all.contains(s.as_str()), "{path} shows a secret");
            assert!(
                !all.to_lowercase().contains(&s.to_lowercase()),
                "{path} shows a secret"
            );
        }
        seen += r.body.len();
    }
    assert!(seen > 5000, "the views said something");
}

//! dns-persist-01 (draft-ietf-acme-dns-persist): the `_validation-persist`
//! TXT record granted like any name, never removed by the challenge
//! expiry, validated on UPDATE, made by `zonewarden persist`, and shown by
//! the HTTP API, the status page and the metrics.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A machine that may publish its challenge and its persist record.
const PBOX_ACL: &str = r#"
[[grant]]
name = "_acme-challenge.{machine}"
types = ["TXT"]
[[grant]]
name = "_validation-persist.{machine}"
types = ["TXT"]
"#;

const VALUE: &str = "letsencrypt.org;accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/123";

/// An add of one TXT RR holding `value` as one character-string (the zone
/// file syntax `add` parses reads `;` as a comment).
fn add_txt(owner: &Name, value: &str) -> Record {
    Record::from_rdata(
        owner.clone(),
        60,
        RData::TXT(TXT::new(vec![value.to_string()])),
    )
}

async fn start() -> Harness {
    Harness::start_with(|c| write(&c.acl_dir.join("pbox.toml"), PBOX_ACL)).await
}

#[test]
fn machine_add_with_persist_grants_the_persist_name_and_prints_its_cname() {
    let dir = tempfile::tempdir().unwrap();
    let config = Harness::layout(dir.path());
    let out = zonewarden::client::cli::machine_add_with(
        &config,
        "pm1",
        Some("_acme.example.org"),
        None,
        zonewarden::tsig::Algorithm::HmacSha256,
        true,
    )
    .unwrap();
    assert!(
        out.contains(
            "_validation-persist.pm1.example.org. CNAME _validation-persist.pm1._acme.example.org."
        ),
        "{out}"
    );
    let acl = std::fs::read_to_string(dir.path().join("acl/pm1.toml")).unwrap();
    assert!(
        acl.contains("name = \"_validation-persist.{machine}\""),
        "{acl}"
    );
    let (report, ok) = zonewarden::client::cli::check(&config);
    assert!(ok, "{report}");
    // The loaded policy grants TXT there (and only there, beside the rest).
    let m = zonewarden::acl::Policy::load_file(&dir.path().join("acl/pm1.toml"), &[name(ZONE)])
        .unwrap();
    assert!(
        m.permits(
            &name(ZONE),
            &zname("_validation-persist.pm1"),
            RecordType::TXT
        )
        .is_some()
    );
    assert!(
        m.permits(
            &name(ZONE),
            &zname("_validation-persist.pm2"),
            RecordType::TXT
        )
        .is_none()
    );
    // Without --persist: no such grant, no such CNAME.
    let out = zonewarden::client::cli::machine_add(
        &config,
        "pm2",
        Some("_acme.example.org"),
        None,
        zonewarden::tsig::Algorithm::HmacSha256,
    )
    .unwrap();
    assert!(!out.contains("_validation-persist"), "{out}");
    let acl = std::fs::read_to_string(dir.path().join("acl/pm2.toml")).unwrap();
    assert!(!acl.contains("_validation-persist"), "{acl}");
}

#[tokio::test]
async fn the_expiry_sweep_removes_a_challenge_but_never_a_persist_record_of_the_same_age() {
    let mut h = start().await;
    let max_age = h.config.challenge_max_age.as_secs();
    let challenge = zname("_acme-challenge.pbox");
    let persist = zname("_validation-persist.pbox");
    let both = update_msg(
        ZONE,
        vec![],
        vec![
            add(&challenge, 60, RecordType::TXT, "token"),
            add_txt(&persist, VALUE),
        ],
    );
    assert_eq!(h.update_rcode("pbox", both).await, ResponseCode::NoError);
    assert_eq!(h.txt(&persist.to_string()).await, vec![VALUE.to_string()]);
    // Both are older than challenge-max-age (monotonic age, this run).
    h.clock.advance(max_age + 1);
    assert_eq!(h.server().sweep_expired().unwrap(), 1);
    assert!(h.txt(&challenge.to_string()).await.is_empty());
    assert_eq!(h.txt(&persist.to_string()).await, vec![VALUE.to_string()]);

    // Across a restart ages are wall time: a challenge added with it, both
    // a year old by the wall clock at start; still only the challenge goes.
    let again = update_msg(
        ZONE,
        vec![],
        vec![add(&challenge, 60, RecordType::TXT, "token2")],
    );
    assert_eq!(h.update_rcode("pbox", again).await, ResponseCode::NoError);
    h.clock.set(h.clock_now() + 365 * 86_400);
    h.restart().await;
    assert_eq!(h.server().sweep_expired().unwrap(), 1);
    assert!(h.txt(&challenge.to_string()).await.is_empty());
    assert_eq!(h.txt(&persist.to_string()).await, vec![VALUE.to_string()]);
}

/// The Extended DNS Error of an answer (RFC 8914): INFO-CODE and text.
fn ede(m: &hickory_proto::op::Message) -> Option<Vec<u8>> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    m.edns
        .as_ref()?
        .options()
        .get(EdnsCode::Unknown(15))
        .and_then(|o| match o {
            EdnsOption::Unknown(15, data) => Some(data.clone()),
            _ => None,
        })
}

/// A read view's body, fetched with curl (from loopback: no token needed).
async fn http_get(h: &Harness, path: &str) -> String {
    require("curl", "curl");
    let url = format!("http://{}{path}", h.server().http_addr().unwrap());
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", &url])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "curl {url}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn bad_persist_values_are_refused_saying_which_and_good_ones_published() {
    let h = start().await;
    let persist = zname("_validation-persist.pbox");
    let now = h.clock_now();
    let future = format!("{VALUE};persistUntil={}", now + 86_400);
    let cases: Vec<(String, &str)> = vec![
        (
            ";accounturi=https://ca.example/acct/1".into(),
            "no issuer domain name",
        ),
        ("letsencrypt.org".into(), "no accounturi"),
        ("letsencrypt.org;policy=wildcard".into(), "no accounturi"),
        (
            "letsencrypt.org;accounturi=http://ca.example/acct/1".into(),
            "not an absolute https URI",
        ),
        (
            format!("{VALUE};persistUntil={}", now - 10),
            "persistUntil is in the past",
        ),
        (
            format!("{VALUE};persistUntil=tomorrow"),
            "persistUntil is not Unix seconds",
        ),
        (format!("{VALUE};;x=1"), "malformed"),
        (
            format!("{VALUE};accounturi=https://b.example/2"),
            "given twice",
        ),
    ];
    for (value, says) in &cases {
        let mut up = update_msg(ZONE, vec![], vec![add_txt(&persist, value)]);
        up.set_edns(hickory_proto::op::Edns::new());
        let m = h.update("pbox", up).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{value}");
        let ede = ede(&m).unwrap_or_else(|| panic!("{value}: no EDE"));
        assert_eq!(&ede[..2], &[0, 18], "{value}");
        let text = String::from_utf8(ede[2..].to_vec()).unwrap();
        assert!(text.contains(says), "{value}: {text}");
        assert!(h.txt(&persist.to_string()).await.is_empty(), "{value}");
    }
    // The machine's last refusal (status views) has the detail: how long ago.
    let machines = http_get(&h, "/api/v1/machines").await;
    assert!(machines.contains("\"persist\""), "{machines}");
    assert!(machines.contains("given twice"), "{machines}");
    let past = update_msg(
        ZONE,
        vec![],
        vec![add_txt(
            &persist,
            &format!("{VALUE};persistUntil={}", now - 10),
        )],
    );
    assert_eq!(h.update_rcode("pbox", past).await, ResponseCode::Refused);
    let machines = http_get(&h, "/api/v1/machines").await;
    assert!(machines.contains("seconds ago"), "{machines}");

    // Good values: plain, wildcard, a future persistUntil, unknown tags.
    for value in [
        VALUE.to_string(),
        future.clone(),
        "ca2.example; accounturi=https://ca2.example/acme/acct/67890; policy=wildcard; future-tag=1"
            .to_string(),
    ] {
        let up = update_msg(ZONE, vec![], vec![add_txt(&persist, &value)]);
        assert_eq!(h.update_rcode("pbox", up).await, ResponseCode::NoError, "{value}");
    }
    assert_eq!(h.txt(&persist.to_string()).await.len(), 3);
    // Only persist names are judged: any TXT at a challenge name is fine.
    let up = update_msg(
        ZONE,
        vec![],
        vec![add_txt(&zname("_acme-challenge.pbox"), "letsencrypt.org")],
    );
    assert_eq!(h.update_rcode("pbox", up).await, ResponseCode::NoError);
}

#[tokio::test]
async fn a_zone_with_persist_validate_false_takes_any_value() {
    let h = Harness::start_with(|c| {
        write(&c.acl_dir.join("pbox.toml"), PBOX_ACL);
        write(
            &c.zones_dir.join("acme.toml"),
            &format!("{ZONE_FILE}\n[persist]\nvalidate = false\n"),
        );
    })
    .await;
    let persist = zname("_validation-persist.pbox");
    let up = update_msg(ZONE, vec![], vec![add_txt(&persist, "not a persist value")]);
    assert_eq!(h.update_rcode("pbox", up).await, ResponseCode::NoError);
    assert_eq!(
        h.txt(&persist.to_string()).await,
        vec!["not a persist value"]
    );
}

#[test]
fn an_unknown_key_in_the_persist_table_is_an_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = Harness::layout(dir.path());
    write(
        &config.zones_dir.join("acme.toml"),
        &format!("{ZONE_FILE}\n[persist]\nvalidte = true\n"),
    );
    let (report, ok) = zonewarden::client::cli::check(&config);
    assert!(!ok, "{report}");
    assert!(
        report.contains("acme.toml:") && report.contains("validte"),
        "{report}"
    );
}

/// RFC 8659 §4.2's issue-value, read byte by byte straight from its ABNF
/// (not `zonewarden::persist`): the issuer domain name and the
/// (tag, value) pairs in order; None if the text is not an issue-value.
fn abnf_issue_value(s: &str) -> Option<(String, Vec<(String, String)>)> {
    let b = s.as_bytes();
    let mut i = 0;
    let wsp = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    // label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)); also `tag`.
    let ldh = |i: &mut usize| -> Option<String> {
        let start = *i;
        if *i >= b.len() || !b[*i].is_ascii_alphanumeric() {
            return None;
        }
        *i += 1;
        loop {
            let mut j = *i;
            while j < b.len() && b[j] == b'-' {
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_alphanumeric() {
                *i = j + 1;
            } else {
                break;
            }
        }
        Some(s[start..*i].to_string())
    };
    wsp(&mut i);
    let mut issuer = ldh(&mut i)?;
    while i < b.len() && b[i] == b'.' {
        i += 1;
        issuer.push('.');
        issuer.push_str(&ldh(&mut i)?);
    }
    wsp(&mut i);
    let mut params = Vec::new();
    if i == b.len() {
        return Some((issuer, params));
    }
    if b[i] != b';' {
        return None;
    }
    i += 1;
    wsp(&mut i);
    while i < b.len() {
        let tag = ldh(&mut i)?;
        wsp(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return None;
        }
        i += 1;
        wsp(&mut i);
        let start = i;
        while i < b.len() && matches!(b[i], 0x21..=0x3a | 0x3c..=0x7e) {
            i += 1;
        }
        params.push((tag, s[start..i].to_string()));
        wsp(&mut i);
        if i < b.len() {
            if b[i] != b';' {
                return None;
            }
            i += 1;
            wsp(&mut i);
            if i == b.len() {
                return None; // `parameters` after ";" must be one more
            }
        }
    }
    Some((issuer, params))
}

/// The draft's reading of the pairs: (issuer, accounturi, wildcard, persistUntil).
fn draft_reading(s: &str) -> (String, String, bool, Option<u64>) {
    let (issuer, params) = abnf_issue_value(s).unwrap_or_else(|| panic!("not an issue-value: {s}"));
    let get = |t: &str| {
        let v: Vec<&String> = params
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(t))
            .map(|(_, v)| v)
            .collect();
        assert!(v.len() <= 1, "{t} twice in {s}");
        v.first().map(|v| v.to_string())
    };
    (
        issuer,
        get("accounturi").expect("accounturi"),
        get("policy").is_some_and(|p| p.eq_ignore_ascii_case("wildcard")),
        get("persistUntil").map(|u| u.parse().expect("base-10 persistUntil")),
    )
}

/// The TXT line's character-strings (zone-file quoting), concatenated.
fn txt_line_value(line: &str) -> (String, u32, String) {
    let mut parts = line.splitn(5, ' ');
    let owner = parts.next().unwrap().to_string();
    let ttl = parts.next().unwrap().parse().unwrap();
    assert_eq!(parts.next(), Some("IN"));
    assert_eq!(parts.next(), Some("TXT"));
    let rest = parts.next().unwrap();
    let (mut value, mut inside, mut escaped) = (String::new(), false, false);
    for c in rest.chars() {
        match (inside, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, false, '"') => inside = false,
            (true, _, c) => {
                value.push(c);
                escaped = false;
            }
            (false, _, '"') => inside = true,
            (false, _, ' ') => {}
            (false, _, c) => panic!("{c:?} outside a string in {line}"),
        }
    }
    assert!(!inside, "{line}");
    (owner, ttl, value)
}

fn zonewarden(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zonewarden"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn persist_prints_a_value_both_parsers_read_back() {
    let account = "https://acme-v02.api.letsencrypt.org/acme/acct/1234567";
    let cases: &[(&[&str], bool, Option<u64>)] = &[
        (&[], false, None),
        (&["--wildcard"], true, None),
        (
            &["--until", "2099-01-01T00:00:00Z"],
            false,
            Some(4_070_908_800),
        ),
        (
            &["--wildcard", "--until", "4070908800"],
            true,
            Some(4_070_908_800),
        ),
        (
            &["--until", "2099-01-01T02:00:00+02:00"],
            false,
            Some(4_070_908_800),
        ),
    ];
    for (extra, wildcard, until) in cases {
        let mut args = vec![
            "persist",
            "--issuer",
            "LetsEncrypt.org",
            "--account",
            account,
        ];
        args.extend_from_slice(extra);
        let (ok, out, err) = zonewarden(&args);
        assert!(ok, "{args:?}: {err}");
        let value = out.trim_end_matches('\n');
        assert_eq!(out.lines().count(), 1, "{out}");
        let ours = zonewarden::persist::parse(value.as_bytes()).unwrap();
        let theirs = draft_reading(value);
        assert_eq!(
            theirs,
            (
                "letsencrypt.org".to_string(),
                account.to_string(),
                *wildcard,
                *until
            ),
            "{value}"
        );
        assert_eq!(
            (
                ours.issuer,
                ours.account_uri,
                ours.wildcard,
                ours.persist_until
            ),
            theirs,
            "{value}"
        );
    }

    // With --host and --zone: the TXT line (one long account URI, cut in
    // character-strings) and the CNAME for the real zone.
    let long = format!("https://ca.example/acct/{}\"q\\", "9".repeat(300));
    let (ok, out, err) = zonewarden(&[
        "persist",
        "--issuer",
        "ca.example",
        "--account",
        &long,
        "--until",
        "2099-01-01",
        "--host",
        "www",
        "--zone",
        "_acme.example.org",
        "--ttl",
        "600",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with(';')).collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (owner, ttl, value) = txt_line_value(lines[0]);
    assert_eq!(owner, "_validation-persist.www._acme.example.org.");
    assert_eq!(ttl, 600);
    assert!(
        lines[0].matches("\" \"").count() >= 1,
        "cut in strings: {}",
        lines[0]
    );
    assert_eq!(
        draft_reading(&value),
        (
            "ca.example".to_string(),
            long.clone(),
            false,
            Some(4_070_908_800)
        )
    );
    assert_eq!(
        zonewarden::persist::parse(value.as_bytes())
            .unwrap()
            .account_uri,
        long
    );
    assert_eq!(
        lines[1],
        "_validation-persist.www.example.org. CNAME _validation-persist.www._acme.example.org."
    );

    // Errors: clear, on stderr, nothing on stdout.
    for (args, says) in [
        (vec!["--account", "http://ca.example/1"], "https"),
        (
            vec!["--account", account, "--until", "tomorrow"],
            "RFC 3339",
        ),
        (
            vec!["--account", account, "--until", "2001-01-01T00:00:00Z"],
            "not in the future",
        ),
        (
            vec!["--account", account, "--host", "www"],
            "--host and --zone",
        ),
    ] {
        let mut all = vec!["persist", "--issuer", "ca.example"];
        all.extend(args);
        let (ok, out, err) = zonewarden(&all);
        assert!(!ok && out.is_empty(), "{all:?}: {out}");
        assert!(err.contains(says), "{all:?}: {err}");
    }
}

#[test]
fn the_test_parser_rejects_what_the_grammar_rejects() {
    // So that agreeing with it means something.
    assert!(abnf_issue_value("ca.example; accounturi=https://a/1").is_some());
    assert!(abnf_issue_value("ca.example; accounturi=https://a/1 x").is_none());
    assert!(abnf_issue_value("ca..example; a=b").is_none());
    assert!(abnf_issue_value("ca.example; a=b;").is_none());
    assert!(abnf_issue_value("ca.example a=b").is_none());
    assert!(abnf_issue_value("ca.example; _a=b").is_none());
}

#[tokio::test]
async fn real_clients_publish_persist_records_and_the_views_show_them_with_warnings() {
    require("nsupdate", "bind9-dnsutils");
    require("knsupdate", "knot-dnsutils");
    require("kdig", "knot-dnsutils");
    let h = start().await;
    let port = h.addr.port();
    let owner = format!("_validation-persist.pbox.{ZONE}");
    let now = h.clock_now();
    let soon = now + 10 * 86_400;
    // nsupdate (its key file), a record without persistUntil.
    let key = h.path("data/keys/pbox.key").display().to_string();
    let script = format!(
        "server 127.0.0.1 {port}\nzone {ZONE}\nupdate add {owner} 3600 TXT \"letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/42\"\nsend\n"
    );
    let (ok, out) = run_async("nsupdate", vec!["-k".into(), key.clone()], script).await;
    assert!(ok, "nsupdate: {out}");
    // knsupdate (-y), another CA's record that lapses in 10 days.
    let secret = std::fs::read_to_string(&key).unwrap();
    let secret = secret.split('"').nth(3).unwrap();
    let script = format!(
        "server 127.0.0.1 {port}\nzone {ZONE}\nadd {owner} 3600 TXT \"ca2.example; accounturi=https://ca2.example/acme/acct/7; policy=wildcard; persistUntil={soon}\"\nsend\nanswer\n"
    );
    let y = format!("hmac-sha256:pbox.:{secret}");
    let (ok, out) = run_async("knsupdate", vec!["-y".into(), y.clone()], script).await;
    assert!(ok, "knsupdate: {out}");
    // nsupdate is told why a bad one is refused (REFUSED; the EDE says which).
    let script = format!(
        "server 127.0.0.1 {port}\nzone {ZONE}\nupdate add {owner} 3600 TXT \"ca3.example; policy=wildcard\"\nsend\n"
    );
    let (ok, out) = run_async("nsupdate", vec!["-k".into(), key], script).await;
    assert!(!ok && out.contains("REFUSED"), "{out}");

    // kdig reads both back.
    let (ok, out) = run_async(
        "kdig",
        vec![
            "@127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "+short".into(),
            owner.clone(),
            "TXT".into(),
        ],
        String::new(),
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "\"letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/42\""
        ),
        "{out}"
    );
    assert!(out.contains(&format!("persistUntil={soon}")), "{out}");
    assert!(!out.contains("ca3.example"), "{out}");

    // The API: both, the lapsing one flagged.
    let body = http_get(&h, &format!("/api/v1/zones/{ZONE}/persist")).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{body}");
    let by_issuer = |i: &str| {
        records
            .iter()
            .find(|r| r["issuer"] == i)
            .unwrap_or_else(|| panic!("{i}: {body}"))
            .clone()
    };
    let le = by_issuer("letsencrypt.org");
    assert_eq!(
        le["account_uri"],
        "https://acme-v02.api.letsencrypt.org/acme/acct/42"
    );
    assert_eq!(le["persist_until"], serde_json::Value::Null);
    assert_eq!(
        (le["status"].as_str(), le["warning"].as_bool()),
        (Some("ok"), Some(false))
    );
    let ca2 = by_issuer("ca2.example");
    assert_eq!(ca2["persist_until"], soon);
    assert_eq!(ca2["wildcard"], true);
    assert_eq!(
        (ca2["status"].as_str(), ca2["warning"].as_bool()),
        (Some("lapsing"), Some(true))
    );
    assert_eq!(ca2["seconds_left"], 10 * 86_400);

    // The page: a table, the warning class on the lapsing one only.
    let page = http_get(&h, "/").await;
    let table = page
        .split("<table id=\"persist\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no persist table: {page}"));
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 2, "{table}");
    let row = |i: &str| *rows.iter().find(|r| r.contains(i)).unwrap();
    assert!(row("ca2.example").contains("class=\"warn\""), "{table}");
    assert!(row("letsencrypt.org").contains("class=\"ok\""), "{table}");
    assert!(
        !row("letsencrypt.org").contains("class=\"warn\""),
        "{table}"
    );

    // The metric: seconds left, for the record that has a persistUntil only.
    let metrics = http_get(&h, "/metrics").await;
    let line = format!(
        "zonewarden_persist_until_seconds{{zone=\"{ZONE}\",name=\"{owner}\",issuer=\"ca2.example\"}} 864000"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == line || l == format!("{line}.0")),
        "{line}\n{metrics}"
    );
    assert!(!metrics.contains("issuer=\"letsencrypt.org\""), "{metrics}");

    // Eleven days on: lapsed, on the API, the page and the metric.
    h.clock.set(now + 11 * 86_400);
    let body = http_get(&h, &format!("/api/v1/zones/{ZONE}/persist")).await;
    assert!(body.contains("\"status\":\"lapsed\""), "{body}");
    let page = http_get(&h, "/").await;
    assert!(
        page.contains("lapsed: the CA no longer accepts it"),
        "{page}"
    );
    let metrics = http_get(&h, "/metrics").await;
    assert!(
        metrics.contains("issuer=\"ca2.example\"} -86400"),
        "{metrics}"
    );
}

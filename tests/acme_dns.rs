//! The acme-dns HTTP API (issue 14) over real sockets, with curl as the
//! client and kdig reading back what is served: closed and open
//! registration, acme-dns's answer shapes and error strings, the last two
//! values kept, the account's own subdomain only, allowfrom.

mod common;

use common::*;
use serde_json::Value;

const TOKEN: &str = "s3cr3t-token-0123456789abcdef";

/// Start with registration open to 127.0.0.2 and the admin token set.
async fn start() -> Harness {
    Harness::start_with(|c| {
        let path = c.zones_dir.parent().unwrap().join("http.token");
        write(&path, &format!("{TOKEN}\n"));
        c.http_token_file = Some(path);
        c.acme_dns_register = vec!["127.0.0.2/32".parse().unwrap()];
        c.acme_dns_zone = Some(name("_acme.example.org."));
    })
    .await
}

fn base(h: &Harness) -> String {
    format!("http://{}", h.server().http_addr().unwrap())
}

async fn curl(from: &str, args: &[&str]) -> (u16, String) {
    curl_from(from, args).await
}

async fn register(h: &Harness, from: &str, extra: &[&str]) -> (u16, String) {
    let url = format!("{}/register", base(h));
    let mut args = vec!["-X", "POST"];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(from, &args).await
}

async fn update(h: &Harness, from: &str, user: &str, key: &str, body: &str) -> (u16, String) {
    let url = format!("{}/update", base(h));
    let u = format!("X-Api-User: {user}");
    let k = format!("X-Api-Key: {key}");
    curl(
        from,
        &[
            "-X",
            "POST",
            "-H",
            &u,
            "-H",
            &k,
            "--data-binary",
            body,
            &url,
        ],
    )
    .await
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

fn error_is(resp: &(u16, String), status: u16, code: &str) {
    assert_eq!(resp.0, status, "{resp:?}");
    assert_eq!(
        json(&resp.1),
        serde_json::json!({ "error": code }),
        "{resp:?}"
    );
}

/// The TXT strings served at `fqdn`, read with kdig.
async fn kdig_txt(h: &Harness, fqdn: &str) -> Vec<String> {
    common::kdig_txt(h.addr, fqdn).await
}

fn txt_value(c: char) -> String {
    std::iter::repeat_n(c, 43).collect()
}

#[tokio::test]
async fn registration_is_closed_unless_the_network_or_the_token_opens_it() {
    let h = start().await;
    // Not in acme-dns-register, no token: closed.
    error_is(
        &register(&h, "127.0.0.1", &[]).await,
        403,
        "registration_closed",
    );
    // A wrong token: forbidden.
    error_is(
        &register(
            &h,
            "127.0.0.1",
            &["-H", "Authorization: Bearer wrong-token-000000"],
        )
        .await,
        401,
        "forbidden",
    );
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let (status, body) = register(&h, "127.0.0.1", &["-H", &bearer]).await;
    assert_eq!(status, 201, "{body}");
    // From the open network, with allowfrom.
    let (status, body) = register(
        &h,
        "127.0.0.2",
        &[
            "--data-binary",
            r#"{"allowfrom": ["192.168.100.1/24", "[::1]/128"]}"#,
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let reg = json(&body);
    let keys: Vec<&str> = reg
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "allowfrom",
            "fulldomain",
            "password",
            "subdomain",
            "username"
        ]
        .into_iter()
        .collect()
    );
    let sub = reg["subdomain"].as_str().unwrap();
    assert_eq!(sub.len(), 36);
    assert_eq!(reg["username"].as_str().unwrap().len(), 36);
    assert_eq!(reg["password"].as_str().unwrap().len(), 40);
    assert_eq!(reg["fulldomain"], format!("{sub}._acme.example.org"));
    assert_eq!(
        reg["allowfrom"],
        serde_json::json!(["192.168.100.0/24", "::1/128"])
    );
    // Bad bodies, acme-dns's errors.
    error_is(
        &register(&h, "127.0.0.2", &["--data-binary", "{not json"]).await,
        400,
        "malformed_json_payload",
    );
    error_is(
        &register(
            &h,
            "127.0.0.2",
            &["--data-binary", r#"{"allowfrom": ["1.2.3.4"]}"#],
        )
        .await,
        400,
        "invalid_allowfrom_cidr",
    );
    // The account is a machine with a bcrypt hash, no TSIG key.
    let file = h.path(&format!(
        "acl/acmedns-{}.toml",
        reg["username"].as_str().unwrap()
    ));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("password-hash = \"$2"), "{text}");
    assert!(!text.contains(reg["password"].as_str().unwrap()));
    assert!(
        !h.path(&format!(
            "data/keys/acmedns-{}.key",
            reg["username"].as_str().unwrap()
        ))
        .exists()
    );
    // Health.
    let (status, _) = curl("127.0.0.1", &[&format!("{}/health", base(&h))]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn update_writes_the_accounts_txt_keeps_the_last_two_and_refuses_everything_else() {
    let h = start().await;
    let (status, body) = register(&h, "127.0.0.2", &[]).await;
    assert_eq!(status, 201, "{body}");
    let reg = json(&body);
    let (user, key, sub, full) = (
        reg["username"].as_str().unwrap().to_string(),
        reg["password"].as_str().unwrap().to_string(),
        reg["subdomain"].as_str().unwrap().to_string(),
        reg["fulldomain"].as_str().unwrap().to_string(),
    );
    let body_for = |txt: &str| format!(r#"{{"subdomain": "{sub}", "txt": "{txt}"}}"#);
    let (a, b, c) = (txt_value('a'), txt_value('b'), txt_value('c'));
    let serial0 = h.serial("_acme.example.org.").await;

    let resp = update(&h, "127.0.0.1", &user, &key, &body_for(&a)).await;
    assert_eq!(resp.0, 200, "{resp:?}");
    assert_eq!(json(&resp.1), serde_json::json!({ "txt": a }));
    assert_eq!(kdig_txt(&h, &full).await, vec![a.clone()]);
    assert!(
        h.serial("_acme.example.org.").await > serial0,
        "a journaled change"
    );

    assert_eq!(
        update(&h, "127.0.0.1", &user, &key, &body_for(&b)).await.0,
        200
    );
    assert_eq!(kdig_txt(&h, &full).await, vec![a.clone(), b.clone()]);
    // The third value drops the oldest.
    assert_eq!(
        update(&h, "127.0.0.1", &user, &key, &body_for(&c)).await.0,
        200
    );
    assert_eq!(kdig_txt(&h, &full).await, vec![b.clone(), c.clone()]);

    // Wrong user, wrong key, a user that is no UUID, a short key.
    let other_user = "c36f50e8-4632-44f0-83fe-e070fef28a10";
    error_is(
        &update(&h, "127.0.0.1", other_user, &key, &body_for(&a)).await,
        401,
        "forbidden",
    );
    let wrong_key: String = key.chars().rev().collect();
    error_is(
        &update(&h, "127.0.0.1", &user, &wrong_key, &body_for(&a)).await,
        401,
        "forbidden",
    );
    error_is(
        &update(&h, "127.0.0.1", "nobody", &key, &body_for(&a)).await,
        401,
        "forbidden",
    );
    error_is(
        &update(&h, "127.0.0.1", &user, &key[..39], &body_for(&a)).await,
        401,
        "forbidden",
    );
    // Another subdomain (another account's, or a name of the zone).
    let (_, body2) = register(&h, "127.0.0.2", &[]).await;
    let sub2 = json(&body2)["subdomain"].as_str().unwrap().to_string();
    for s in [sub2.as_str(), "ns1", "_acme-challenge", "a.b", ""] {
        let body = format!(r#"{{"subdomain": "{s}", "txt": "{a}"}}"#);
        error_is(
            &update(&h, "127.0.0.1", &user, &key, &body).await,
            401,
            "forbidden",
        );
    }
    // Malformed JSON: acme-dns answers forbidden (the subdomain does not match).
    error_is(
        &update(&h, "127.0.0.1", &user, &key, "{nope").await,
        401,
        "forbidden",
    );
    // A 42-character value.
    let short: String = a[..42].to_string();
    error_is(
        &update(&h, "127.0.0.1", &user, &key, &body_for(&short)).await,
        400,
        "bad_txt",
    );
    let bad = format!("{}=", &a[..42]);
    error_is(
        &update(&h, "127.0.0.1", &user, &key, &body_for(&bad)).await,
        400,
        "bad_txt",
    );
    // Nothing of that changed what is served.
    assert_eq!(kdig_txt(&h, &full).await, vec![b.clone(), c.clone()]);
    // An oversized body: the listener's limit.
    let big = format!(
        r#"{{"subdomain": "{sub}", "txt": "{}"}}"#,
        "x".repeat(h.config.connections.http_body_limit + 1)
    );
    let resp = update(&h, "127.0.0.1", &user, &key, &big).await;
    assert_eq!(resp.0, 413, "{resp:?}");
    assert!(json(&resp.1)["error"].is_string());
}

#[tokio::test]
async fn update_from_outside_allowfrom_is_forbidden() {
    let h = start().await;
    let (status, body) = register(
        &h,
        "127.0.0.2",
        &["--data-binary", r#"{"allowfrom": ["127.0.0.3/32"]}"#],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let reg = json(&body);
    let (user, key, sub, full) = (
        reg["username"].as_str().unwrap(),
        reg["password"].as_str().unwrap(),
        reg["subdomain"].as_str().unwrap(),
        reg["fulldomain"].as_str().unwrap(),
    );
    let a = txt_value('a');
    let body = format!(r#"{{"subdomain": "{sub}", "txt": "{a}"}}"#);
    error_is(
        &update(&h, "127.0.0.1", user, key, &body).await,
        401,
        "forbidden",
    );
    assert!(kdig_txt(&h, full).await.is_empty());
    let resp = update(&h, "127.0.0.3", user, key, &body).await;
    assert_eq!(resp.0, 200, "{resp:?}");
    assert_eq!(kdig_txt(&h, full).await, vec![a]);
}

/// The zonewarden binary with a config file naming the harness's directories.
fn cli(h: &Harness, args: &[&str]) -> (bool, String, String) {
    zw_cli(h.dir.path(), "", args)
}

#[tokio::test]
async fn the_cli_changes_allowfrom_and_deregisters_and_a_reload_applies_it() {
    let h = start().await;
    let (status, body) = register(&h, "127.0.0.2", &[]).await;
    assert_eq!(status, 201, "{body}");
    let reg = json(&body);
    let (user, key, sub, full) = (
        reg["username"].as_str().unwrap(),
        reg["password"].as_str().unwrap(),
        reg["subdomain"].as_str().unwrap(),
        reg["fulldomain"].as_str().unwrap(),
    );
    let (a, b) = (txt_value('a'), txt_value('b'));
    let body_a = format!(r#"{{"subdomain": "{sub}", "txt": "{a}"}}"#);
    let body_b = format!(r#"{{"subdomain": "{sub}", "txt": "{b}"}}"#);
    assert_eq!(update(&h, "127.0.0.1", user, key, &body_a).await.0, 200);

    let (ok, out, err) = cli(&h, &["acme-dns", "list"]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("{user} {full}. any\n"));

    // A bad network: refused, the file unchanged.
    let file = h.path(&format!("acl/acmedns-{user}.toml"));
    let before = std::fs::read_to_string(&file).unwrap();
    let (ok, _, err) = cli(&h, &["acme-dns", "allowfrom", user, "300.0.0.0/8"]);
    assert!(!ok && err.contains("300.0.0.0/8"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    let (ok, out, err) = cli(&h, &["acme-dns", "allowfrom", user, "127.0.0.3/32"]);
    assert!(ok, "{err}");
    assert!(out.contains("127.0.0.3/32"), "{out}");
    h.server().reload();
    error_is(
        &update(&h, "127.0.0.1", user, key, &body_b).await,
        401,
        "forbidden",
    );
    assert_eq!(update(&h, "127.0.0.3", user, key, &body_b).await.0, 200);
    assert_eq!(kdig_txt(&h, full).await, vec![a.clone(), b.clone()]);

    let (ok, _, err) = cli(&h, &["acme-dns", "remove", user]);
    assert!(ok, "{err}");
    assert!(!file.exists());
    h.server().reload();
    error_is(
        &update(&h, "127.0.0.3", user, key, &body_a).await,
        401,
        "forbidden",
    );
    let (ok, _, err) = cli(&h, &["acme-dns", "remove", user]);
    assert!(!ok && err.contains("no acme-dns account"), "{err}");
    // A machine that is no acme-dns account is not touched.
    let (ok, _, _) = cli(&h, &["acme-dns", "remove", "../mx1"]);
    assert!(!ok);
    assert!(h.path("acl/mx1.toml").exists());
}

/// What goacmedns (the client library of lego's `acme-dns` provider and of
/// Traefik) sends, request for request (its client.go): `POST /register`
/// with `{"AllowFrom": [...]}` (no body without an allow list), `POST
/// /update` with `{"SubDomain", "Txt"}`, `Content-Type: application/json`
/// and its User-Agent; it wants 201 and 200. acme-dns matches JSON keys
/// as Go does (ignoring case), so must we. (Debian's lego is built without
/// that provider: this replays its requests with curl.)
#[tokio::test]
async fn goacmedns_requests_with_go_field_names_work() {
    let h = start().await;
    let goacmedns = [
        "-H",
        "Content-Type: application/json",
        "-H",
        "User-Agent: goacmedns (linux; amd64)",
    ];
    let mut args = goacmedns.to_vec();
    args.extend(["--data-binary", r#"{"AllowFrom":["127.0.0.0/8"]}"#]);
    let resp = register(&h, "127.0.0.2", &args).await;
    assert_eq!(resp.0, 201, "{}", resp.1);
    let reg = json(&resp.1);
    assert_eq!(reg["allowfrom"], serde_json::json!(["127.0.0.0/8"]));
    let (user, key, sub) = (
        reg["username"].as_str().unwrap(),
        reg["password"].as_str().unwrap(),
        reg["subdomain"].as_str().unwrap(),
    );
    // lego registers with no body at all when it has no allow list.
    let resp = register(&h, "127.0.0.2", &goacmedns).await;
    assert_eq!(resp.0, 201, "{}", resp.1);

    let value = txt_value('g');
    let url = format!("{}/update", base(&h));
    let (u, k) = (format!("X-Api-User: {user}"), format!("X-Api-Key: {key}"));
    let body = format!(r#"{{"SubDomain":"{sub}","Txt":"{value}"}}"#);
    let mut args = goacmedns.to_vec();
    args.extend([
        "-X",
        "POST",
        "-H",
        &u,
        "-H",
        &k,
        "--data-binary",
        &body,
        &url,
    ]);
    let resp = curl("127.0.0.1", &args).await;
    assert_eq!(resp.0, 200, "{}", resp.1);
    assert_eq!(json(&resp.1)["txt"], value.as_str());
    assert_eq!(
        kdig_txt(&h, &format!("{sub}._acme.example.org.")).await,
        vec![value]
    );
}

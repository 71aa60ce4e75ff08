//! Whole ACME issuances, end to end, with the clients users run and a real
//! CA: lego (rfc2136), certbot with `zonewarden hook`, certbot's own
//! dns-rfc2136 plugin and dehydrated, against pebble validating DNS-01
//! through a validating unbound that reaches zonewarden only through a
//! DNSSEC-signed delegation from a Knot parent (see `acme/lab.rs`). The
//! client settings are the ones `zonewarden machine add` prints.
//!
//! Each test prints `TIMING ...` lines (run with --nocapture to see them):
//! the wall time of each issuance and, for the hook, the time it waited for
//! every nameserver.

mod common;
#[path = "acme/lab.rs"]
mod lab;

use std::time::{Duration, Instant};

use lab::{HOSTS_ZONE, Lab, Setup, ZONE, ZW, settings_from};

fn s(v: &str) -> String {
    v.to_string()
}

/// lego's command line for these domains, against the lab's pebble.
fn lego_args(lab: &Lab, path: &str, domains: &[&str]) -> Vec<String> {
    let mut a = vec![
        s("--server"),
        lab.acme_url.clone(),
        s("--accept-tos"),
        s("--email"),
        s("admin@example.test"),
        s("--dns"),
        s("rfc2136"),
        s("--dns.resolvers"),
        format!("{}:53", lab.resolver),
        s("--path"),
        lab.dir.join(path).display().to_string(),
    ];
    for d in domains {
        a.push(s("--domains"));
        a.push(s(d));
    }
    a.push(s("run"));
    a
}

/// lego's environment: the `machine add` settings plus the lab's CA.
fn lego_env(lab: &Lab, machine: &str) -> Vec<(String, String)> {
    let mut env = settings_from(&lab.machine_add[machine], "lego", &["RFC2136_"]);
    assert!(env.len() >= 5, "lego settings: {env:?}");
    env.push((s("LEGO_CA_CERTIFICATES"), lab.acme_ca.display().to_string()));
    env
}

/// The subject alternative names of a PEM certificate (openssl).
fn sans(pem: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    assert!(out.status.success(), "no certificate at {}", pem.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v: Vec<String> = text
        .split([',', '\n'])
        .filter_map(|p| p.trim().strip_prefix("DNS:").map(str::to_string))
        .collect();
    v.sort();
    v
}

fn assert_sans(pem: &std::path::Path, want: &[&str]) {
    let mut want: Vec<String> = want.iter().map(|w| s(w)).collect();
    want.sort();
    assert_eq!(sans(pem), want, "{}", pem.display());
}

fn timing(client: &str, took: Duration, waited: Option<f64>) {
    match waited {
        Some(w) => eprintln!(
            "TIMING client={client} issuance={:.1}s waited_for_nameservers={w:.1}s",
            took.as_secs_f64()
        ),
        None => eprintln!("TIMING client={client} issuance={:.1}s", took.as_secs_f64()),
    }
}

/// When lego reached each phase (its log's HH:MM:SS), for the TIMING line.
fn lego_phases(output: &str) -> String {
    [
        ("Trying to solve DNS-01", "update"),
        ("Wait for propagation", "propagation-check"),
        ("The server validated", "validated"),
        ("Server responded with a certificate", "certificate"),
    ]
    .iter()
    .filter_map(|(marker, label)| {
        let line = output.lines().find(|l| l.contains(marker))?;
        let time = line.split_whitespace().nth(1)?;
        Some(format!("{label}@{time}"))
    })
    .collect::<Vec<_>>()
    .join(" ")
}

/// The seconds `zonewarden hook` reports having waited, summed over its runs.
fn hook_waits(output: &str) -> f64 {
    output
        .lines()
        .filter_map(|l| l.split("(after ").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The `--manual-*-hook` commands `machine add` prints, with the binary's path.
fn certbot_hooks(lab: &Lab, machine: &str) -> (String, String) {
    let out = &lab.machine_add[machine];
    let hook = |flag: &str| {
        let line = out
            .lines()
            .find(|l| l.contains(flag))
            .unwrap_or_else(|| panic!("machine add prints no {flag}:\n{out}"));
        let cmd = line.split('\'').nth(1).unwrap();
        cmd.replacen("zonewarden ", &format!("{ZW} "), 1)
    };
    (hook("--manual-auth-hook"), hook("--manual-cleanup-hook"))
}

fn certbot_args(lab: &Lab, dir: &str, domains: &[&str]) -> Vec<String> {
    let d = lab.dir.join(dir).display().to_string();
    let mut a = vec![
        s("certonly"),
        s("--non-interactive"),
        s("--agree-tos"),
        s("--register-unsafely-without-email"),
        s("--server"),
        lab.acme_url.clone(),
        s("--config-dir"),
        d.clone(),
        s("--work-dir"),
        d.clone(),
        s("--logs-dir"),
        d,
        s("--cert-name"),
        s("test"),
    ];
    for dom in domains {
        a.push(s("-d"));
        a.push(s(dom));
    }
    a
}

/// certbot with the `zonewarden hook` commands `machine add` printed for
/// `machine`.
fn certbot_with_hooks(lab: &Lab, machine: &str, domains: &[&str]) -> Vec<String> {
    let (auth, cleanup) = certbot_hooks(lab, machine);
    let mut args = certbot_args(lab, "certbot", domains);
    args.extend([
        s("--manual"),
        s("--preferred-challenges"),
        s("dns"),
        s("--manual-auth-hook"),
        auth,
        s("--manual-cleanup-hook"),
        cleanup,
    ]);
    args
}

fn certbot_env(lab: &Lab) -> Vec<(String, String)> {
    vec![(s("REQUESTS_CA_BUNDLE"), lab.acme_ca.display().to_string())]
}

#[tokio::test]
async fn lego_issues_with_hmac_sha1_by_default_and_with_hmac_sha256() {
    let lab = Lab::start(Setup {
        machines: vec![("mx1", "hmac-sha1"), ("mx2", "hmac-sha256")],
        cnames: vec!["mx1", "mx2"],
        ..Setup::default()
    })
    .await;

    // mx1: lego's default algorithm (hmac-sha1), so the printed algorithm
    // setting is left out.
    let env: Vec<_> = lego_env(&lab, "mx1")
        .into_iter()
        .filter(|(k, _)| k != "RFC2136_TSIG_ALGORITHM")
        .collect();
    let run = lab
        .client(
            "lego",
            &lego_args(&lab, "lego1", &["mx1.example.test"]),
            &env,
        )
        .await;
    assert!(run.ok, "lego (hmac-sha1): {}\n{}", run.output, lab.logs());
    assert!(run.output.contains("Found CNAME entry"), "{}", run.output);
    assert_sans(
        &lab.dir.join("lego1/certificates/mx1.example.test.crt"),
        &["mx1.example.test"],
    );
    timing("lego hmac-sha1", run.took, None);
    eprintln!("TIMING lego phases: {}", lego_phases(&run.output));

    // mx2: exactly the printed settings (hmac-sha256. with lego's trailing dot).
    let env = lego_env(&lab, "mx2");
    assert!(
        env.iter()
            .any(|(k, v)| k == "RFC2136_TSIG_ALGORITHM" && v == "hmac-sha256."),
        "{env:?}"
    );
    let run = lab
        .client(
            "lego",
            &lego_args(&lab, "lego2", &["mx2.example.test"]),
            &env,
        )
        .await;
    assert!(run.ok, "lego (hmac-sha256): {}\n{}", run.output, lab.logs());
    assert_sans(
        &lab.dir.join("lego2/certificates/mx2.example.test.crt"),
        &["mx2.example.test"],
    );
    timing("lego hmac-sha256", run.took, None);
    eprintln!("TIMING lego phases: {}", lego_phases(&run.output));

    // lego cleaned up: no challenge left on either nameserver.
    for ip in [&lab.primary, &lab.secondary] {
        for m in ["mx1", "mx2"] {
            let q = format!("_acme-challenge.{m}.{ZONE}");
            assert!(lab.txt_at(ip, &q).await.is_empty(), "{q} left at {ip}");
        }
    }
}

#[tokio::test]
async fn lego_issues_for_several_names_and_a_wildcard_with_its_base_name() {
    let lab = Lab::start(Setup {
        machines: vec![("multi", "hmac-sha256")],
        // www.multi's challenge is the machine's too.
        acl_extra: vec![(
            "multi",
            "[[grant]]\nname = \"_acme-challenge.www.{machine}\"\ntypes = [\"TXT\"]",
        )],
        cnames: vec!["multi", "www.multi"],
        ..Setup::default()
    })
    .await;
    // lego solves rfc2136 challenges one after the other, replacing the
    // TXT RRset each time and pausing RFC2136_SEQUENCE_INTERVAL (60 s by
    // default, the challenge TTL) so resolvers forget the previous value.
    // A 1 s TTL lets the pause be 3 s (docs/acme-clients.md, "lego").
    let mut env: Vec<_> = lego_env(&lab, "multi")
        .into_iter()
        .filter(|(k, _)| k != "RFC2136_TTL")
        .collect();
    env.push((s("RFC2136_TTL"), s("1")));
    env.push((s("RFC2136_SEQUENCE_INTERVAL"), s("3")));
    let domains = [
        "multi.example.test",
        "*.multi.example.test",
        "www.multi.example.test",
    ];
    let run = lab
        .client("lego", &lego_args(&lab, "lego", &domains), &env)
        .await;
    assert!(run.ok, "lego: {}\n{}", run.output, lab.logs());
    assert_sans(
        &lab.dir.join("lego/certificates/multi.example.test.crt"),
        &domains,
    );
    timing("lego 3 names incl. wildcard", run.took, None);
}

#[tokio::test]
async fn certbot_manual_hooks_follow_the_cname_and_put_two_values_at_one_name() {
    let lab = Lab::start(Setup {
        machines: vec![("web1", "hmac-sha256")],
        cnames: vec!["web1"],
        ..Setup::default()
    })
    .await;
    // A wildcard and its base name: two challenges at one name, both in DNS
    // before certbot asks the CA to validate either.
    let args = certbot_with_hooks(&lab, "web1", &["web1.example.test", "*.web1.example.test"]);
    let run = lab.client("certbot", &args, &certbot_env(&lab)).await;
    let log = std::fs::read_to_string(lab.dir.join("certbot/letsencrypt.log")).unwrap_or_default();
    assert!(run.ok, "certbot: {}\n{}\n{}", run.output, log, lab.logs());
    assert_sans(
        &lab.dir.join("certbot/live/test/cert.pem"),
        &["*.web1.example.test", "web1.example.test"],
    );
    // The auth hook's progress is in certbot's log: each one waited for
    // both nameservers.
    assert_eq!(
        log.matches("2 nameserver(s) of _acme.example.test. serve it")
            .count(),
        2,
        "{log}"
    );
    timing(
        "certbot + zonewarden hook (2 challenges)",
        run.took,
        Some(hook_waits(&log)),
    );
    // The cleanup hook removed both values everywhere.
    let q = format!("_acme-challenge.web1.{ZONE}");
    for ip in [&lab.primary, &lab.secondary] {
        assert!(lab.txt_at(ip, &q).await.is_empty(), "{q} left at {ip}");
    }
}

#[tokio::test]
async fn certbot_dns_rfc2136_plugin_for_a_host_inside_a_delegated_zone() {
    let lab = Lab::start(Setup {
        host_machines: vec!["box1"],
        ..Setup::default()
    })
    .await;
    // certbot's plugin cannot follow CNAMEs: the certificate is for a host
    // whose name lives in a delegated zone itself (not `_acme`: a CA
    // refuses '_' in a host name).
    let ini: String = lab.machine_add["box1"]
        .lines()
        .filter(|l| l.starts_with("dns_rfc2136_"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(ini.lines().count(), 5, "{ini}");
    let ini_path = lab.dir.join("rfc2136.ini");
    common::write(&ini_path, &ini);
    std::fs::set_permissions(
        &ini_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let domain = format!("box1.{}", HOSTS_ZONE.trim_end_matches('.'));
    let domain = domain.as_str();
    let mut args = certbot_args(&lab, "certbot", &[domain]);
    args.extend([
        s("--authenticator"),
        s("dns-rfc2136"),
        s("--dns-rfc2136-credentials"),
        ini_path.display().to_string(),
        // zonewarden's secondaries have it within milliseconds; certbot
        // cannot check, so it sleeps this long.
        s("--dns-rfc2136-propagation-seconds"),
        s("2"),
    ]);
    let run = lab.client("certbot", &args, &certbot_env(&lab)).await;
    let log = std::fs::read_to_string(lab.dir.join("certbot/letsencrypt.log")).unwrap_or_default();
    assert!(
        run.ok,
        "certbot dns-rfc2136: {}\n{}\n{}",
        run.output,
        log,
        lab.logs()
    );
    assert_sans(&lab.dir.join("certbot/live/test/cert.pem"), &[domain]);
    timing("certbot dns-rfc2136 (fixed 2 s sleep)", run.took, Some(2.0));
}

#[tokio::test]
async fn dehydrated_hook_chain_with_a_wildcard() {
    let lab = Lab::start(Setup {
        machines: vec![("dh1", "hmac-sha512")],
        cnames: vec!["dh1"],
        ..Setup::default()
    })
    .await;
    let d = lab.dir.join("dehydrated");
    std::fs::create_dir_all(&d).unwrap();
    // The hook settings exactly as `machine add` prints them.
    let conf: String = settings_from(&lab.machine_add["dh1"], "dehydrated", &["ZONEWARDEN_"])
        .into_iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    assert_eq!(conf.lines().count(), 3, "{conf}");
    common::write(&d.join("hook.conf"), &format!("{conf}ZONEWARDEN={ZW}\n"));
    common::write(
        &d.join("domains.txt"),
        "dh1.example.test *.dh1.example.test\n",
    );
    let hook =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hooks/dehydrated-dns01");
    common::write(
        &d.join("config"),
        &format!(
            "CA=\"{}\"\nCHALLENGETYPE=\"dns-01\"\nHOOK=\"{}\"\nHOOK_CHAIN=\"yes\"\n\
             BASEDIR=\"{dir}\"\nDOMAINS_TXT=\"{dir}/domains.txt\"\n",
            lab.acme_url,
            hook.display(),
            dir = d.display()
        ),
    );
    let env = vec![
        (s("CURL_CA_BUNDLE"), lab.acme_ca.display().to_string()),
        (
            s("ZONEWARDEN_HOOK_CONF"),
            d.join("hook.conf").display().to_string(),
        ),
    ];
    let cfg = d.join("config").display().to_string();
    let reg = lab
        .client(
            "dehydrated",
            &[
                s("--config"),
                cfg.clone(),
                s("--register"),
                s("--accept-terms"),
            ],
            &env,
        )
        .await;
    assert!(reg.ok, "dehydrated --register: {}", reg.output);
    let run = lab
        .client("dehydrated", &[s("--config"), cfg, s("--cron")], &env)
        .await;
    assert!(run.ok, "dehydrated: {}\n{}", run.output, lab.logs());
    assert_sans(
        &d.join("certs/dh1.example.test/cert.pem"),
        &["*.dh1.example.test", "dh1.example.test"],
    );
    // HOOK_CHAIN: one deploy_challenge call added both values, then waited.
    assert_eq!(run.output.matches("added TXT").count(), 2, "{}", run.output);
    timing(
        "dehydrated + zonewarden hook (2 challenges, chained)",
        run.took,
        Some(hook_waits(&run.output)),
    );
    let q = format!("_acme-challenge.dh1.{ZONE}");
    for ip in [&lab.primary, &lab.secondary] {
        assert!(lab.txt_at(ip, &q).await.is_empty(), "{q} left at {ip}");
    }
}

#[tokio::test]
async fn another_machines_name_a_limit_and_a_missing_cname_fail_clearly() {
    let lab = Lab::start(Setup {
        machines: vec![("mx1", "hmac-sha256"), ("mx2", "hmac-sha256")],
        cnames: vec!["mx1", "mx2"],
        records_per_name: Some(2),
        ..Setup::default()
    })
    .await;
    let mx1_name = format!("_acme-challenge.mx1.{ZONE}");
    let hook = |key: &str| {
        vec![
            s("hook"),
            s("--key"),
            lab.key_file(key).display().to_string(),
            s("--zone"),
            s(ZONE),
        ]
    };

    // mx2's key for mx1's name: the server refuses, the hook says why.
    let mut args = hook("mx2");
    args.extend([s("add"), s("mx1.example.test"), s("stolen")]);
    let run = lab.client(ZW, &args, &[]).await;
    assert_eq!(run.code, Some(3), "{}", run.output);
    assert!(
        run.output.contains("answered REFUSED") && run.output.contains("key mx2. may not change"),
        "{}",
        run.output
    );
    assert!(lab.txt_at(&lab.primary, &mx1_name).await.is_empty());

    // The same through certbot: its error shows the hook's message.
    let args = certbot_with_hooks(&lab, "mx2", &["mx1.example.test"]);
    let run = lab.client("certbot", &args, &certbot_env(&lab)).await;
    assert!(!run.ok, "{}", run.output);
    assert!(run.output.contains("answered REFUSED"), "{}", run.output);

    // And through lego with mx2's settings.
    let run = lab
        .client(
            "lego",
            &lego_args(&lab, "lego", &["mx1.example.test"]),
            &lego_env(&lab, "mx2"),
        )
        .await;
    assert!(!run.ok, "{}", run.output);
    assert!(run.output.contains("REFUSED"), "{}", run.output);
    assert!(lab.txt_at(&lab.primary, &mx1_name).await.is_empty());

    // Values left at the name (a run killed before its cleanup) and a
    // limit: the refusal names them and says how to clear them.
    for v in ["left-1", "left-2"] {
        let mut args = hook("mx1");
        args.extend([s("add"), s("mx1.example.test"), s(v)]);
        let run = lab.client(ZW, &args, &[]).await;
        assert!(run.ok, "{}", run.output);
    }
    let mut args = hook("mx1");
    args.extend([s("add"), s("mx1.example.test"), s("third")]);
    let run = lab.client(ZW, &args, &[]).await;
    assert_eq!(run.code, Some(3), "{}", run.output);
    assert!(
        run.output.contains("already holds 2 value(s)")
            && run.output.contains("left-1")
            && run.output.contains("zonewarden hook remove"),
        "{}",
        run.output
    );
    // Cleanup of both in one call would be dehydrated's; here one by one.
    for v in ["left-1", "left-2"] {
        let mut args = hook("mx1");
        args.extend([s("remove"), s("mx1.example.test"), s(v)]);
        assert!(lab.client(ZW, &args, &[]).await.ok);
    }
    assert!(lab.txt_at(&lab.primary, &mx1_name).await.is_empty());

    // A name whose CNAME was never added to the real zone: the hook names
    // the record to add and sends nothing.
    let mut args = hook("mx1");
    args.extend([s("add"), s("mx3.example.test"), s("value")]);
    let run = lab.client(ZW, &args, &[]).await;
    assert_eq!(run.code, Some(3), "{}", run.output);
    assert!(
        run.output
            .contains("_acme-challenge.mx3.example.test. has no CNAME")
            && run.output.contains(
                "_acme-challenge.mx3.example.test. CNAME _acme-challenge.mx3._acme.example.test."
            )
            && run.output.contains("to the zone example.test."),
        "{}",
        run.output
    );
}

#[tokio::test]
async fn hook_finds_zone_primary_and_resolver_itself_and_the_resolver_sees_the_value_at_once() {
    let lab = Lab::start(Setup {
        machines: vec![("mx1", "hmac-sha256")],
        cnames: vec!["mx1"],
        ..Setup::default()
    })
    .await;
    // No --zone, --server or --resolver: the resolver comes from
    // /etc/resolv.conf (the lab's unbound, in the client's namespace), the
    // zone from the SOA it reports, the primary from the SOA MNAME. Finding
    // the zone asks about the challenge name before it exists, so the
    // resolver caches NXDOMAIN for the zone's negative TTL; the hook must
    // outlast that, or a CA sharing the resolver fails.
    let key = lab.key_file("mx1").display().to_string();
    let hook = |verb: &str| {
        [
            s("hook"),
            s("--key"),
            key.clone(),
            s(verb),
            s("mx1.example.test"),
            // base64url: one value in 64 starts with '-'
            s("-v1"),
        ]
    };
    let run = lab.client(ZW, &hook("add"), &[]).await;
    assert!(run.ok, "{}\n{}", run.output, lab.logs());
    assert!(
        run.output
            .contains(&format!("zone {ZONE}, primary {}:53", lab.primary)),
        "{}",
        run.output
    );
    let (seen, validated) = lab
        .txt_via_resolver("_acme-challenge.mx1.example.test.")
        .await;
    assert!(
        seen == ["-v1"] && validated,
        "the resolver returns {seen:?} (AD {validated}) right after the hook returned\n{}",
        run.output
    );
    let run = lab.client(ZW, &hook("remove"), &[]).await;
    assert!(run.ok, "{}", run.output);
    assert!(
        lab.txt_at(&lab.primary, &format!("_acme-challenge.mx1.{ZONE}"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_challenge_left_by_a_killed_client_is_expired_everywhere() {
    let lab = Lab::start(Setup {
        machines: vec![("mx1", "hmac-sha256")],
        cnames: vec!["mx1"],
        challenge_max_age: 4,
        ..Setup::default()
    })
    .await;
    let q = format!("_acme-challenge.mx1.{ZONE}");
    // lego, killed as soon as its challenge is in the zone: no cleanup runs.
    let args = lego_args(&lab, "lego", &["mx1.example.test"]);
    let env = lego_env(&lab, "mx1");
    let lego = lab.client("lego", &args, &env);
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while lab.txt_at(&lab.primary, &q).await.is_empty() {
            assert!(Instant::now() < deadline, "lego never added its challenge");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        run = lego => panic!("lego finished before it could be killed: {}", run.output),
        _ = watch => {} // dropping the lego future kills it
    }
    let left = lab.txt_at(&lab.primary, &q).await;
    assert_eq!(left.len(), 1, "the killed client's challenge is there");
    // The server removes it after challenge-max-age (4 s here), and the
    // removal reaches the secondary too.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let p = lab.txt_at(&lab.primary, &q).await;
        let s2 = lab.txt_at(&lab.secondary, &q).await;
        if p.is_empty() && s2.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stale challenge not expired: primary {p:?}, secondary {s2:?}\n{}",
            lab.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

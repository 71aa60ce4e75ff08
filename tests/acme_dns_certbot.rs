//! certbot with the `certbot-dns-acmedns` plugin (PyPI) against
//! zonewarden's acme-dns API (issue 14), obtaining certificates from pebble
//! through the end-to-end lab (`acme/lab.rs`: a signed Knot parent, a
//! validating unbound, pebble): the account is registered with curl as the
//! plugin's README says, the CNAME it names is added to the parent, and
//! certbot's `/update` calls make the challenge; a second issuance reuses
//! the account and leaves the last two values served. Needs root, as
//! `tests/acme.rs`, and a Python with certbot and the plugin: scripts/test
//! makes one (target/certbot-acmedns; or set ZW_CERTBOT_ACMEDNS_PYTHON).

mod common;
#[allow(dead_code)]
#[path = "acme/lab.rs"]
mod lab;

use lab::{Lab, Setup, ZONE};

const DOMAIN: &str = "web.example.test";

fn s(v: &str) -> String {
    v.to_string()
}

fn python() -> String {
    let p = std::env::var("ZW_CERTBOT_ACMEDNS_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/target/certbot-acmedns/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let ok = std::process::Command::new(&p)
        .args(["-c", "import certbot, certbot_dns_acmedns"])
        .status()
        .is_ok_and(|st| st.success());
    assert!(
        ok,
        "{p} has no certbot with certbot-dns-acmedns: run scripts/test (it makes that venv)"
    );
    p
}

fn write_0600(path: &std::path::Path, text: &str) {
    common::write(path, text);
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

fn certbot_args(lab: &Lab, ini: &std::path::Path) -> Vec<String> {
    let d = lab.dir.join("certbot").display().to_string();
    vec![
        s("-c"),
        s("import sys; from certbot.main import main; sys.exit(main(sys.argv[1:]))"),
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
        s("-d"),
        s(DOMAIN),
        s("--authenticator"),
        s("dns-acmedns"),
        s("--dns-acmedns-credentials"),
        ini.display().to_string(),
        s("--dns-acmedns-propagation-seconds"),
        s("2"),
    ]
}

#[tokio::test]
async fn certbot_dns_acmedns_issues_through_the_cname_and_a_second_run_reuses_the_account() {
    let python = python();
    let lab = Lab::start(Setup {
        acme_dns: true,
        ..Setup::default()
    })
    .await;
    let api = format!("http://{}:8053", lab.primary);

    // Register as the plugin's README says (curl), store it for the plugin.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-X",
            "POST",
            &format!("{api}/register"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reg: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let full = reg["fulldomain"].as_str().expect("fulldomain").to_string();
    assert!(full.ends_with(ZONE.trim_end_matches('.')), "{full}");
    let registration = lab.dir.join("acmedns-registration.json");
    write_0600(
        &registration,
        &serde_json::json!({ DOMAIN: reg }).to_string(),
    );
    let ini = lab.dir.join("acmedns.ini");
    write_0600(
        &ini,
        &format!(
            "dns_acmedns_api_url = {api}\ndns_acmedns_registration_file = {}\n",
            registration.display()
        ),
    );
    // The one CNAME the user adds.
    lab.parent_cname("_acme-challenge.web", &format!("{full}."));

    let env = vec![(s("REQUESTS_CA_BUNDLE"), lab.acme_ca.display().to_string())];
    let log =
        || std::fs::read_to_string(lab.dir.join("certbot/letsencrypt.log")).unwrap_or_default();
    let run = lab.client(&python, &certbot_args(&lab, &ini), &env).await;
    assert!(
        run.ok,
        "certbot dns-acmedns: {}\n{}\n{}",
        run.output,
        log(),
        lab.logs()
    );
    assert!(lab.dir.join("certbot/live/test/cert.pem").exists());
    let first = lab.txt_at(&lab.primary, &full).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].len(), 43, "{first:?}");

    // Again (a renewal): the same account, a second value beside the first.
    let mut args = certbot_args(&lab, &ini);
    args.push(s("--force-renewal"));
    let run = lab.client(&python, &args, &env).await;
    assert!(
        run.ok,
        "certbot dns-acmedns, renewal: {}\n{}\n{}",
        run.output,
        log(),
        lab.logs()
    );
    let second = lab.txt_at(&lab.primary, &full).await;
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(second.contains(&first[0]), "{second:?}");
    let accounts = std::fs::read_dir(lab.dir.join("acl"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("acmedns-")
        })
        .count();
    assert_eq!(accounts, 1);
}

//! TLSA values checked against other tools: certificates made by openssl in
//! the test, TLSA computed by `ldns-dane create` (ldnsutils), `danetool
//! --tlsa-rr` (gnutls-bin) and the openssl pipeline `x509 -pubkey | pkey
//! -pubin -outform DER | dgst -sha256`. `scripts/test` installs them all.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

struct Certs {
    dir: tempfile::TempDir,
}

fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{program} is not installed: run scripts/test (it installs {package})"
    );
}

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Certs {
    /// A self-signed ECDSA P-256 and RSA 2048 certificate, and a chain: an
    /// RSA CA and an ECDSA leaf it issued (`chain.pem` = leaf + CA), plus
    /// DER copies and an expired leaf from the same CA.
    fn make() -> Self {
        require("openssl", "openssl");
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            "set -e
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
              -keyout ec.key -out ec.pem -subj /CN=mx1.example.org -days 30 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes \
              -keyout rsa.key -out rsa.pem -subj /CN=mx1.example.org -days 30 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
              -subj '/CN=zonewarden test CA' -days 30 \
              -addext basicConstraints=critical,CA:true 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
              -keyout leaf.key -out leaf.csr -subj /CN=mx1.example.org 2>/dev/null
            openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 2 \
              -days 20 -out leaf.pem 2>/dev/null
            openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 3 \
              -days -1 -out expired.pem 2>/dev/null
            cat leaf.pem ca.pem > chain.pem
            openssl x509 -in ec.pem -outform DER -out ec.der
            openssl x509 -in leaf.pem -outform DER -out leaf.der
            openssl x509 -in ca.pem -outform DER -out ca.der
            cat leaf.der ca.der > chain.der
            openssl pkey -in ec.key -pubout -out ec.pub
            openssl pkey -in ec.key -pubout -outform DER -out ec.pub.der
            cat ec.key ec.pem > combined.pem",
        );
        Self { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn chain(&self, f: &str) -> Chain {
        Chain::read(&self.path(f)).unwrap()
    }

    fn sh(&self, script: &str) -> String {
        sh(self.dir.path(), script)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn ours(chain: &Chain, p: &str) -> String {
    tlsa(chain, p.parse().unwrap(), now()).unwrap().to_string()
}

/// `ldns-dane create`'s rdata for the file (`-n`: no name check; `-s`: no
/// PKIX validation, needed for usage 0).
fn ldns(c: &Certs, file: &str, p: &str) -> String {
    require("ldns-dane", "ldnsutils");
    let out = c.sh(&format!(
        "ldns-dane -n -s -c {file} create mx1.example.org 25 {p}"
    ));
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields[3], "TLSA", "{out}");
    fields[4..].join(" ")
}

/// `danetool --tlsa-rr`'s rdata (it prints `( 03 01 01 hex )`).
fn danetool(c: &Certs, file: &str, args: &str) -> String {
    require("danetool", "gnutls-bin");
    let out = c.sh(&format!(
        "danetool --tlsa-rr --host mx1.example.org --port 25 --load-certificate {file} {args}"
    ));
    let inner = out.split('(').nth(1).unwrap().split(')').next().unwrap();
    let f: Vec<&str> = inner.split_whitespace().collect();
    let n = |s: &str| s.parse::<u8>().unwrap().to_string();
    format!("{} {} {} {}", n(f[0]), n(f[1]), n(f[2]), f[3])
}

#[test]
fn every_end_entity_combination_matches_ldns_dane_for_ecdsa_and_rsa() {
    let c = Certs::make();
    for file in ["ec.pem", "rsa.pem", "chain.pem"] {
        let chain = c.chain(file);
        for usage in [1, 3] {
            for selector in [0, 1] {
                for matching in [0, 1, 2] {
                    let p = format!("{usage} {selector} {matching}");
                    assert_eq!(ours(&chain, &p), ldns(&c, file, &p), "{file} {p}");
                }
            }
        }
    }
}

#[test]
fn danetool_and_the_openssl_pipeline_agree() {
    let c = Certs::make();
    for file in ["ec.pem", "rsa.pem"] {
        let chain = c.chain(file);
        assert_eq!(ours(&chain, "3 1 1"), danetool(&c, file, ""), "{file}");
        assert_eq!(
            ours(&chain, "3 0 1"),
            danetool(&c, file, "--x509"),
            "{file}"
        );
        assert_eq!(
            ours(&chain, "3 1 2"),
            danetool(&c, file, "--hash sha512"),
            "{file}"
        );
        let digest = c.sh(&format!(
            "openssl x509 -in {file} -pubkey -noout | openssl pkey -pubin -outform DER \
             | openssl dgst -sha256 -r"
        ));
        let hex = digest.split_whitespace().next().unwrap();
        assert_eq!(ours(&chain, "3 1 1"), format!("3 1 1 {hex}"), "{file}");
    }
    // the default is 3 1 1
    assert_eq!(
        tlsa(&c.chain("ec.pem"), TlsaParams::default(), now())
            .unwrap()
            .to_string(),
        ours(&c.chain("ec.pem"), "3 1 1")
    );
}

#[test]
fn trust_anchor_usages_come_from_the_issuer_in_the_chain() {
    let c = Certs::make();
    let chain = c.chain("chain.pem");
    assert_eq!(chain.certificates().len(), 2);
    assert_eq!(chain.issuer().unwrap().subject(), "CN=zonewarden test CA");
    for p in ["2 1 1", "2 0 1", "2 1 2", "2 0 0", "0 0 1", "0 1 1"] {
        assert_eq!(ours(&chain, p), ldns(&c, "chain.pem", p), "{p}");
    }
    // danetool on the CA certificate itself
    assert_eq!(
        ours(&chain, "2 1 1"),
        danetool(&c, "ca.pem", "--ca"),
        "2 1 1 vs danetool --ca"
    );
    // and 3 1 1 from the same chain file is the leaf's
    assert_eq!(ours(&chain, "3 1 1"), ours(&c.chain("leaf.pem"), "3 1 1"));
}

#[test]
fn der_input_gives_the_same_records_as_pem() {
    let c = Certs::make();
    assert_eq!(c.chain("ec.der"), c.chain("ec.pem"));
    assert_eq!(c.chain("chain.der"), c.chain("chain.pem"));
    assert_eq!(
        ours(&c.chain("chain.der"), "2 1 1"),
        ours(&c.chain("chain.pem"), "2 1 1")
    );
    // a private key in front of the certificate (combined PEM) is skipped
    assert_eq!(c.chain("combined.pem"), c.chain("ec.pem"));
    // the HTTP entry point takes the bytes
    let bytes = std::fs::read(c.path("chain.pem")).unwrap();
    assert_eq!(
        tlsa_from_pem(&bytes, TlsaParams::default(), now())
            .unwrap()
            .to_string(),
        ours(&c.chain("chain.pem"), "3 1 1")
    );
}

#[test]
fn bad_files_give_typed_errors() {
    let c = Certs::make();
    assert_eq!(Chain::from_bytes(b""), Err(DaneError::Empty));
    assert_eq!(Chain::from_bytes(b" \n\n"), Err(DaneError::Empty));
    assert!(matches!(
        Chain::from_bytes(b"hello, not a certificate\n"),
        Err(DaneError::NotCertificate(_))
    ));
    let key_only = std::fs::read(c.path("ec.key")).unwrap();
    match Chain::from_bytes(&key_only) {
        Err(DaneError::NotCertificate(m)) => assert!(m.contains("no CERTIFICATE"), "{m}"),
        other => panic!("{other:?}"),
    }
    // a truncated certificate
    let der = std::fs::read(c.path("ec.der")).unwrap();
    assert!(matches!(
        Chain::from_bytes(&der[..der.len() - 10]),
        Err(DaneError::NotCertificate(_))
    ));
    // a PEM block with broken base64
    assert!(matches!(
        Chain::from_bytes(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
        Err(DaneError::NotCertificate(_))
    ));
    // file errors name the file
    let e = Chain::read(&c.path("missing.pem")).unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
    std::fs::write(c.path("empty.pem"), "").unwrap();
    let e = Chain::read(&c.path("empty.pem")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: the file is empty", c.path("empty.pem").display())
    );
}

#[test]
fn an_expired_leaf_is_refused_with_its_date() {
    let c = Certs::make();
    let chain = c.chain("expired.pem");
    let openssl_date = c.sh("openssl x509 -in expired.pem -noout -enddate -dateopt iso_8601");
    // "notAfter=2026-11-21 19:39:57Z"
    let want = openssl_date
        .trim()
        .trim_start_matches("notAfter=")
        .trim_end_matches('Z')
        .to_string();
    match tlsa(&chain, TlsaParams::default(), now()) {
        Err(DaneError::Expired { date, .. }) => assert_eq!(date, format!("{want} UTC")),
        other => panic!("{other:?}"),
    }
    let e = tlsa(&chain, TlsaParams::default(), now()).unwrap_err();
    assert!(e.to_string().contains(&want), "{e}");
    // a valid one expires too, when the injected time is past its notAfter
    let good = c.chain("ec.pem");
    let after = good.leaf().not_after() + 1;
    assert!(matches!(
        tlsa(&good, TlsaParams::default(), after),
        Err(DaneError::Expired { .. })
    ));
    assert!(tlsa(&good, TlsaParams::default(), after - 1).is_ok());
}

#[test]
fn trust_anchor_usage_without_an_issuer_is_an_error() {
    let c = Certs::make();
    for file in ["ec.pem", "leaf.pem"] {
        match tlsa(&c.chain(file), "2 1 1".parse().unwrap(), now()) {
            Err(DaneError::NoIssuer { usage: 2, .. }) => {}
            other => panic!("{file}: {other:?}"),
        }
    }
    // a chain whose second certificate did not issue the leaf
    c.sh("cat leaf.pem rsa.pem > wrong-chain.pem");
    let chain = c.chain("wrong-chain.pem");
    assert!(chain.issuer().is_none());
    let e = tlsa(&chain, "2 1 1".parse().unwrap(), now()).unwrap_err();
    assert!(e.to_string().contains("fullchain.pem"), "{e}");
    // and one with the CA's name but another key: the signature decides
    c.sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout fake.key -out fake.pem \
         -subj '/CN=zonewarden test CA' -days 30 2>/dev/null; cat leaf.pem fake.pem > fake-chain.pem",
    );
    assert!(c.chain("fake-chain.pem").issuer().is_none());
}

#[test]
fn records_are_matched_to_chains_and_next_keys() {
    let c = Certs::make();
    let chain = c.chain("chain.pem");
    let other = c.chain("rsa.pem");
    for p in [
        "3 1 1", "3 0 1", "3 1 2", "1 1 1", "2 1 1", "2 0 2", "0 0 1",
    ] {
        let rr = tlsa(&chain, p.parse().unwrap(), now()).unwrap();
        assert!(chain_matches(&chain, &rr), "{p}");
        assert!(!chain_matches(&other, &rr), "{p}");
    }
    // the next key: a public key (PEM or DER) or a certificate
    let ec = c.chain("ec.pem");
    let want = tlsa(&ec, TlsaParams::default(), now()).unwrap();
    for file in ["ec.pub", "ec.pub.der", "ec.pem", "ec.der"] {
        let next = NextKey::read(&c.path(file)).unwrap();
        assert!(next_matches(&next, &want), "{file}");
        assert!(same_tlsa(
            &tlsa_for_next(&next, TlsaParams::default()).unwrap(),
            &want
        ));
        assert!(!next_matches(
            &next,
            &tlsa(&chain, TlsaParams::default(), now()).unwrap()
        ));
    }
    let pubkey = NextKey::read(&c.path("ec.pub")).unwrap();
    assert_eq!(
        tlsa_for_next(&pubkey, "3 0 1".parse().unwrap()),
        Err(DaneError::NeedCertificate)
    );
    match NextKey::read(&c.path("ec.key")) {
        Err(CertFileError::Invalid {
            source: DaneError::NotPublicKey(m),
            ..
        }) => assert!(m.contains("-pubout"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn params_parse_and_reject_what_is_not_computed() {
    assert_eq!(
        "3 1 1".parse::<TlsaParams>().unwrap(),
        TlsaParams::DANE_EE_SPKI_SHA256
    );
    assert_eq!("2-1-1".parse::<TlsaParams>().unwrap().to_string(), "2 1 1");
    assert!("4 1 1".parse::<TlsaParams>().is_err());
    assert!("3 2 1".parse::<TlsaParams>().is_err());
    assert!("3 1 3".parse::<TlsaParams>().is_err());
    assert!("3 1".parse::<TlsaParams>().is_err());
    assert_eq!(TlsaParams::new(2, 1, 1).unwrap().usage_name(), "DANE-TA");
}

#[test]
fn owner_names_are_relative_to_the_zone_unless_absolute() {
    use hickory_proto::rr::Name;
    let zone = Name::from_ascii("_acme.example.org.").unwrap();
    assert_eq!(
        owner(25, "tcp", "mx1", Some(&zone)).unwrap().to_string(),
        "_25._tcp.mx1._acme.example.org."
    );
    assert_eq!(
        owner(443, "tcp", "www.example.net.", Some(&zone))
            .unwrap()
            .to_string(),
        "_443._tcp.www.example.net."
    );
    assert_eq!(
        owner(25, "tcp", "mx1", None).unwrap().to_string(),
        "_25._tcp.mx1"
    );
    assert_eq!(
        owner(53, "udp", "@", Some(&zone)).unwrap().to_string(),
        "_53._udp._acme.example.org."
    );
    assert!(owner(25, "t cp", "mx1", None).is_err());
    let rr = tlsa_from_pem(b"", TlsaParams::default(), 0).unwrap_err();
    assert_eq!(rr, DaneError::Empty);
}

use super::*;

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

#[test]
fn cname_target_is_relative_to_the_zones_parent() {
    let z = n("_acme.example.org.");
    assert_eq!(
        cname_target(&n("mx1.example.org."), &z),
        n("_acme-challenge.mx1._acme.example.org.")
    );
    assert_eq!(
        cname_target(&n("a.b.example.org."), &z),
        n("_acme-challenge.a.b._acme.example.org.")
    );
    assert_eq!(
        cname_target(&n("example.org."), &z),
        n("_acme-challenge._acme.example.org.")
    );
    assert_eq!(
        cname_target(&n("www.other.net."), &z),
        n("_acme-challenge.www.other.net._acme.example.org.")
    );
}

#[test]
fn challenges_drop_the_wildcard_label() {
    let c = Challenge::new("*.example.org", "v").unwrap();
    assert_eq!(c.domain, n("example.org."));
    assert!(Challenge::new("*.", "v").is_err());
    assert!(Challenge::new("example.org", "").is_err());
    assert!(Challenge::new("exa mple..org", "v").is_err());
}

#[test]
fn dehydrated_calls() {
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (a, cs) = dehydrated_call(
        "deploy_challenge",
        &args(&["example.org", "tok1", "v1", "*.example.org", "tok2", "v2"]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(a, Action::Add);
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[1].domain, n("example.org."));
    assert_eq!(cs[1].value, "v2");
    let (a, _) = dehydrated_call("clean_challenge", &args(&["example.org", "t", "v"]))
        .unwrap()
        .unwrap();
    assert_eq!(a, Action::Remove);
    assert!(
        dehydrated_call("deploy_cert", &args(&["x", "a", "b", "c"]))
            .unwrap()
            .is_none()
    );
    assert!(dehydrated_call("startup_hook", &[]).unwrap().is_none());
    assert!(dehydrated_call("deploy_challenge", &args(&["example.org", "t"])).is_err());
}

#[test]
fn certbot_environment() {
    let env = |k: &str| match k {
        "CERTBOT_DOMAIN" => Some("*.mx1.example.org".to_string()),
        "CERTBOT_VALIDATION" => Some("abc".to_string()),
        _ => None,
    };
    let c = certbot_challenge(env).unwrap();
    assert_eq!(c.domain, n("mx1.example.org."));
    let e = certbot_challenge(|_| None).unwrap_err();
    assert!(e.to_string().contains("CERTBOT_DOMAIN is not set"), "{e}");
}

#[test]
fn resolv_conf_first_usable_nameserver() {
    let text = "# comment\nsearch example.org\nnameserver fe80::1%eth0\nnameserver 127.53.1.2\nnameserver 192.0.2.1\n";
    assert_eq!(
        resolver_from_resolv_conf(text),
        Some("127.53.1.2:53".parse().unwrap())
    );
    assert_eq!(
        resolver_from_resolv_conf("nameserver ::1"),
        Some("[::1]:53".parse().unwrap())
    );
    assert_eq!(resolver_from_resolv_conf("options ndots:1\n"), None);
}

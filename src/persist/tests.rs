use super::*;

fn ok(v: &str) -> PersistValue {
    parse(v.as_bytes()).unwrap_or_else(|e| panic!("{v:?}: {e}"))
}

fn problem(v: &str) -> Problem {
    match parse(v.as_bytes()) {
        Ok(p) => panic!("{v:?} parsed: {p:?}"),
        Err(e) => e.problem,
    }
}

#[test]
fn the_drafts_examples_parse() {
    // §3: one RR of two character-strings, concatenated.
    let one = join(&[
        "authority.example;",
        " accounturi=https://ca.example/acct/123",
    ]);
    assert_eq!(
        parse(&one).unwrap(),
        PersistValue {
            issuer: "authority.example".into(),
            account_uri: "https://ca.example/acct/123".into(),
            wildcard: false,
            persist_until: None,
        }
    );
    // §4.2: two CAs at one name.
    let ca1 = ok("ca1.example; accounturi=https://ca1.example/acme/acct/12345; policy=wildcard");
    assert!(ca1.wildcard);
    assert_eq!(ca1.persist_until, None);
    let ca2 =
        ok("ca2.example; accounturi=https://ca2.example/acme/acct/67890; persistUntil=1767225600");
    assert_eq!(ca2.issuer, "ca2.example");
    assert_eq!(ca2.persist_until, Some(1_767_225_600));
    assert!(!ca2.wildcard);
}

#[test]
fn tags_and_the_policy_value_are_case_insensitive_and_unknown_tags_ignored() {
    let v = ok("CA.Example ;AccountURI = https://a.example/1 ;POLICY=WildCard; PERSISTUNTIL=5");
    assert_eq!(v.issuer, "ca.example");
    assert_eq!(v.account_uri, "https://a.example/1");
    assert!(v.wildcard);
    assert_eq!(v.persist_until, Some(5));
    // Any other policy value is "no policy" (§3 item 4).
    assert!(!ok("ca.example; accounturi=https://a.example/1; policy=subdomains").wildcard);
    // An unknown, well-formed tag is ignored, in any place (§3 item 1).
    assert_eq!(
        ok("ca.example; future-param=x; accounturi=https://a.example/1; other=").account_uri,
        "https://a.example/1"
    );
    // Leading and trailing WSP are in RFC 8659's grammar.
    ok("  ca.example ;  accounturi=https://a.example/1  ");
    ok("ca.example; accounturi=https://a.example:8443/acct?x=1#f");
    ok("ca.example; accounturi=https://[2001:db8::1]:443/acct/1");
}

#[test]
fn malformed_values_say_what_is_wrong() {
    use Problem::*;
    let cases: &[(&str, Problem)] = &[
        ("", NoIssuer),
        ("   ", NoIssuer),
        ("; accounturi=https://a.example/1", NoIssuer),
        ("ca.example", NoAccountUri),
        ("ca.example;", NoAccountUri),
        ("ca.example; policy=wildcard", NoAccountUri),
        ("ca.example; accounturi=http://a.example/1", BadAccountUri),
        ("ca.example; accounturi=", BadAccountUri),
        ("ca.example; accounturi=urn:acct:1", BadAccountUri),
        ("ca.example; accounturi=https:///acct/1", BadAccountUri),
        (
            "ca.example; accounturi=https://a.example:x/1",
            BadAccountUri,
        ),
        ("ca.example; accounturi=https://[::1/1", BadAccountUri),
        (
            "ca.example; accounturi=https://a.example/1; accounturi=https://b.example/2",
            Duplicate,
        ),
        (
            "ca.example; accounturi=https://a.example/1; policy=wildcard; POLICY=none",
            Duplicate,
        ),
        (
            "ca.example; accounturi=https://a.example/1; persistUntil=soon",
            BadPersistUntil,
        ),
        (
            "ca.example; accounturi=https://a.example/1; persistUntil=-5",
            BadPersistUntil,
        ),
        (
            "ca.example; accounturi=https://a.example/1; persistUntil=+5",
            BadPersistUntil,
        ),
        (
            "ca.example; accounturi=https://a.example/1; persistUntil=",
            BadPersistUntil,
        ),
        (
            "ca.example; accounturi=https://a.example/1; persistUntil=2026-01-01T00:00:00Z",
            BadPersistUntil,
        ),
        (
            "ca.example; accounturi=https://a.example/1; persistUntil=99999999999999999999999",
            BadPersistUntil,
        ),
        (
            "ca.example; accounturi=https://a.example/1;; policy=wildcard",
            Malformed,
        ),
        ("ca.example; accounturi", Malformed),
        ("ca..example; accounturi=https://a.example/1", Malformed),
        ("ca.example.; accounturi=https://a.example/1", Malformed),
        ("-ca.example; accounturi=https://a.example/1", Malformed),
        ("ca_x.example; accounturi=https://a.example/1", Malformed),
        ("ca example; accounturi=https://a.example/1", Malformed),
        (
            "ca.example; bad_tag=1; accounturi=https://a.example/1",
            Malformed,
        ),
        (
            "ca.example; -tag=1; accounturi=https://a.example/1",
            Malformed,
        ),
        ("ca.example; accounturi=https://a.example/1 x", Malformed),
        ("ca.example; accounturi=https://a.example/\x01", Malformed),
        ("ca.exämple; accounturi=https://a.example/1", Malformed),
    ];
    for (v, want) in cases {
        assert_eq!(problem(v), *want, "{v:?}");
    }
    // The detail names the part at fault.
    let e = parse(b"ca.example; accounturi=https://a.example/1; persistUntil=soon").unwrap_err();
    assert!(e.to_string().contains("\"soon\""), "{e}");
    let e = parse(b"ca.example; accounturi=http://a.example/1").unwrap_err();
    assert!(e.to_string().contains("http://a.example/1"), "{e}");
}

#[test]
fn a_persist_until_not_after_now_is_expired() {
    let v = b"ca.example; accounturi=https://a.example/1; persistUntil=1000";
    assert_eq!(check(v, 999).unwrap().persist_until, Some(1000));
    assert_eq!(check(v, 1000).unwrap_err().problem, Problem::Expired);
    let e = check(v, 1060).unwrap_err();
    assert_eq!(e.problem, Problem::Expired);
    assert!(e.to_string().contains("60 seconds ago"), "{e}");
    // No persistUntil: never expired.
    assert!(check(b"ca.example; accounturi=https://a.example/1", u64::MAX).is_ok());
    assert_eq!(parse(v).unwrap().seconds_left(400), Some(600));
    assert_eq!(parse(v).unwrap().seconds_left(1600), Some(-600));
}

#[test]
fn made_values_round_trip_and_long_ones_are_cut_into_character_strings() {
    for (wildcard, until) in [
        (false, None),
        (true, None),
        (false, Some(7)),
        (true, Some(1_767_225_600)),
    ] {
        let v = PersistValue::new(
            "LetsEncrypt.org.",
            "https://acme-v02.api.letsencrypt.org/acme/acct/1",
            wildcard,
            until,
        )
        .unwrap();
        assert_eq!(v.issuer, "letsencrypt.org");
        assert_eq!(parse(v.to_string().as_bytes()).unwrap(), v);
    }
    assert_eq!(
        PersistValue::new("ca.example", "https://a.example/1", true, Some(9))
            .unwrap()
            .to_string(),
        "ca.example; accounturi=https://a.example/1; policy=wildcard; persistUntil=9"
    );
    assert_eq!(
        PersistValue::new("ca.example", "http://a.example/1", false, None)
            .unwrap_err()
            .problem,
        Problem::BadAccountUri
    );
    assert_eq!(
        PersistValue::new(
            "ca.example",
            "https://a.example/1;policy=wildcard",
            false,
            None
        )
        .unwrap_err()
        .problem,
        Problem::Malformed
    );
    let long = format!("https://ca.example/acct/{}", "7".repeat(600));
    let v = PersistValue::new("ca.example", &long, false, None)
        .unwrap()
        .to_string();
    let strings = character_strings(&v);
    assert_eq!(strings.len(), 3);
    assert!(strings.iter().all(|s| s.len() <= 255));
    assert_eq!(parse(&join(&strings)).unwrap().account_uri, long);
}

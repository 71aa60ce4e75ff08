//! Unit tests of ACL parsing and matching, including the bypass battery.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;

use super::file::{expand, parse_type};
use super::policy::ADMIN_GRANT;
use super::*;
use crate::diag::{FileError, FileErrors};

const ORG: &str = "_acme.example.org.";
const NET: &str = "_acme.example.net.";

const MX1: &str = r#"
key = "mx1"
networks = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]

[[grant]]
name = "_acme-challenge.{machine}"
types = ["TXT"]
max-rrset = 2

[[grant]]
name = "_*._tcp.{machine}"
types = ["tlsa"]

[[grant]]
name = "hosts.{machine}"
subtree = true
types = ["A", "AAAA"]

[[grant]]
name = "*.star.{machine}"
types = ["TXT"]
"#;

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn served() -> Vec<Name> {
    vec![n(ORG), n(NET)]
}

fn parse(machine: &str, text: &str) -> Result<Machine, Vec<FileError>> {
    Policy::parse_file(Path::new(&format!("acl/{machine}.toml")), text, &served())
}

fn machine(machine: &str, text: &str) -> Machine {
    match parse(machine, text) {
        Ok(m) => m,
        Err(errs) => panic!("{}", FileErrors(errs)),
    }
}

fn errors(machine: &str, text: &str) -> Vec<FileError> {
    match parse(machine, text) {
        Ok(m) => panic!("expected errors, got {m:?}"),
        Err(errs) => errs,
    }
}

/// 1-based line and column of the first occurrence of `needle`.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).expect("needle in text");
    let e = FileError::at_offset(Path::new("x"), text, offset, "");
    (e.line, e.column)
}

fn assert_one_error_at(errs: &[FileError], at: (usize, usize), contains: &str) {
    assert_eq!(errs.len(), 1, "{}", FileErrors(errs.to_vec()));
    let e = &errs[0];
    assert_eq!((e.line, e.column), at, "{e}");
    assert!(e.message.contains(contains), "{e}");
}

/// Whether `m` may change `rtype` at `owner` in zone ORG.
fn may(m: &Machine, owner: &str, rtype: RecordType) -> bool {
    m.permits(&n(ORG), &n(owner), rtype).is_some()
}

// --- grants: what is allowed --------------------------------------

#[test]
fn own_challenge_txt_is_permitted_with_its_limit() {
    let m = machine("mx1", MX1);
    let g = m
        .permits(
            &n(ORG),
            &n("_acme-challenge.mx1._acme.example.org."),
            RecordType::TXT,
        )
        .unwrap();
    assert_eq!(g.max_rrset(), Some(2));
    assert_eq!(g.types(), &[RecordType::TXT]);
    assert_eq!(g.describe(), "_acme-challenge.mx1 TXT(2)");
    // A relative owner (not fully qualified) is the same name.
    assert!(may(
        &m,
        "_acme-challenge.mx1._acme.example.org",
        RecordType::TXT
    ));
}

#[test]
fn case_variants_are_the_same_name() {
    let m = machine("mx1", MX1);
    assert!(may(
        &m,
        "_ACME-Challenge.MX1._acme.example.org.",
        RecordType::TXT
    ));
    assert!(may(
        &m,
        "_acme-challenge.mx1._ACME.Example.ORG.",
        RecordType::TXT
    ));
    assert!(may(&m, "_25._TCP.Mx1._acme.example.org.", RecordType::TLSA));
    let zone_upper = n("_ACME.EXAMPLE.ORG.");
    let owner = n("_acme-challenge.mx1._acme.example.org.");
    assert!(m.permits(&zone_upper, &owner, RecordType::TXT).is_some());
}

#[test]
fn another_machines_names_are_refused() {
    let m = machine("mx1", MX1);
    for owner in [
        "_acme-challenge.mx2._acme.example.org.",
        "_acme-challenge.mx10._acme.example.org.",
        "_acme-challenge.xmx1._acme.example.org.",
        "_acme-challenge._acme.example.org.",
        "_acme-challenge.mx1.mx2._acme.example.org.",
        "_acme-challenge.a.mx1._acme.example.org.",
        "mx1._acme.example.org.",
        "_acme.example.org.",
    ] {
        assert!(!may(&m, owner, RecordType::TXT), "{owner}");
    }
    assert!(!may(
        &m,
        "_25._tcp.mx2._acme.example.org.",
        RecordType::TLSA
    ));
    assert!(!may(&m, "hosts.mx2._acme.example.org.", RecordType::A));
}

#[test]
fn other_types_at_granted_names_are_refused() {
    let m = machine("mx1", MX1);
    let challenge = "_acme-challenge.mx1._acme.example.org.";
    for t in [
        RecordType::A,
        RecordType::TLSA,
        RecordType::CNAME,
        RecordType::AAAA,
    ] {
        assert!(!may(&m, challenge, t), "{t}");
    }
    assert!(!may(&m, "_25._tcp.mx1._acme.example.org.", RecordType::TXT));
    assert!(!may(&m, "hosts.mx1._acme.example.org.", RecordType::TXT));
}

#[test]
fn server_managed_types_are_refused_to_a_machine_everywhere() {
    let m = machine("mx1", MX1);
    for owner in [
        "_acme-challenge.mx1._acme.example.org.",
        "a.hosts.mx1._acme.example.org.",
    ] {
        for t in [
            RecordType::SOA,
            RecordType::NS,
            RecordType::DNSKEY,
            RecordType::RRSIG,
            RecordType::NSEC,
            RecordType::NSEC3,
            RecordType::DS,
            RecordType::CDS,
            RecordType::CDNSKEY,
            RecordType::ANY,
            RecordType::AXFR,
            RecordType::TSIG,
        ] {
            assert!(!may(&m, owner, t), "{owner} {t}");
        }
    }
    assert!(Policy::is_protected_type(RecordType::NS));
    assert!(Policy::is_protected_type(RecordType::Unknown(249))); // TKEY
    assert!(Policy::is_protected_type(RecordType::from(63))); // ZONEMD
    assert!(!Policy::is_protected_type(RecordType::TXT));
    assert!(!Policy::is_protected_type(RecordType::TLSA));
}

#[test]
fn names_outside_the_zone_or_in_a_sibling_zone_are_refused() {
    let m = machine("mx1", MX1);
    // The parent (the real zone) and lookalikes.
    for owner in [
        "_acme-challenge.mx1.example.org.",
        "_acme-challenge.mx1.x_acme.example.org.",
        "_acme-challenge.mx1._acme.example.org.evil.",
        "_acme-challenge.mx1.",
        ".",
    ] {
        assert!(!may(&m, owner, RecordType::TXT), "{owner}");
    }
    // A name of the sibling zone, claimed to be in ORG.
    assert!(!may(
        &m,
        "_acme-challenge.mx1._acme.example.net.",
        RecordType::TXT
    ));
    // In its own zone it is fine: no `zones` means every served zone.
    let owner = n("_acme-challenge.mx1._acme.example.net.");
    assert!(m.permits(&n(NET), &owner, RecordType::TXT).is_some());
}

#[test]
fn a_zone_restricted_machine_is_refused_in_other_zones() {
    let text = format!("zones = [\"_ACME.example.ORG\"]\n{MX1}").replace("key = \"mx1\"\n", "");
    let m = machine("mx1", &text);
    assert_eq!(m.zones.as_deref(), Some(&[n(ORG)][..]));
    assert!(may(
        &m,
        "_acme-challenge.mx1._acme.example.org.",
        RecordType::TXT
    ));
    let owner = n("_acme-challenge.mx1._acme.example.net.");
    assert!(m.permits(&n(NET), &owner, RecordType::TXT).is_none());
    assert_eq!(m.grantable_types_at(&n(NET), &owner), TypesAt::None);
}

#[test]
fn an_escaped_dot_is_one_label_and_never_matches_two() {
    let m = machine("mx1", MX1);
    let owner = n("_acme-challenge\\.mx1._acme.example.org.");
    assert_eq!(owner.iter().len(), 4);
    assert!(m.permits(&n(ORG), &owner, RecordType::TXT).is_none());
    // The same with raw labels, and under a glob / subtree pattern.
    let raw =
        Name::from_labels(vec![&b"_25._tcp"[..], b"mx1", b"_acme", b"example", b"org"]).unwrap();
    assert!(m.permits(&n(ORG), &raw, RecordType::TLSA).is_none());
    let raw = Name::from_labels(vec![&b"hosts.mx1"[..], b"_acme", b"example", b"org"]).unwrap();
    assert!(m.permits(&n(ORG), &raw, RecordType::A).is_none());
    // An owner whose zone part has an escaped dot is not in the zone.
    let owner = n("_acme-challenge.mx1._acme\\.example.org.");
    assert!(m.permits(&n(ORG), &owner, RecordType::TXT).is_none());
    // Nor is such a zone one of a zone-restricted machine's zones.
    let text = format!("zones = [\"{ORG}\"]\n{MX1}");
    let restricted = machine("mx1", &text);
    let zone = n("_acme\\.example.org.");
    assert!(restricted.permits(&zone, &owner, RecordType::TXT).is_none());
}

#[test]
fn wildcard_owners_are_never_granted_to_a_machine() {
    let m = machine("mx1", MX1);
    assert!(!may(&m, "*.mx1._acme.example.org.", RecordType::TXT));
    assert!(!may(&m, "*._tcp.mx1._acme.example.org.", RecordType::TLSA));
    assert!(!may(&m, "*.hosts.mx1._acme.example.org.", RecordType::A));
    assert!(!may(&m, "a.*.hosts.mx1._acme.example.org.", RecordType::A));
    // `*.star.mx1` grants one label; the literal `*` label is not one.
    assert!(may(&m, "x.star.mx1._acme.example.org.", RecordType::TXT));
    assert!(!may(&m, "*.star.mx1._acme.example.org.", RecordType::TXT));
    let owner = n("*.hosts.mx1._acme.example.org.");
    assert_eq!(m.grantable_types_at(&n(ORG), &owner), TypesAt::None);
}

#[test]
fn a_star_label_is_exactly_one_label() {
    let m = machine("mx1", MX1);
    assert!(may(&m, "a.star.mx1._acme.example.org.", RecordType::TXT));
    assert!(may(&m, "_X-1.star.mx1._acme.example.org.", RecordType::TXT));
    assert!(!may(&m, "star.mx1._acme.example.org.", RecordType::TXT));
    assert!(!may(&m, "a.b.star.mx1._acme.example.org.", RecordType::TXT));
    assert!(!may(&m, "a.star.mx2._acme.example.org.", RecordType::TXT));
}

#[test]
fn an_underscore_glob_matches_one_label_starting_with_underscore() {
    let m = machine("mx1", MX1);
    for ok in [
        "_25._tcp.mx1",
        "_443._tcp.mx1",
        "_Submission._TCP.mx1",
        "_._tcp.mx1",
    ] {
        assert!(
            may(&m, &format!("{ok}._acme.example.org."), RecordType::TLSA),
            "{ok}"
        );
    }
    for bad in [
        "x25._tcp.mx1",
        "25._tcp.mx1",
        "_a._25._tcp.mx1",
        "_tcp.mx1",
        "_25._udp.mx1",
        "_25.x._tcp.mx1",
        "_25._tcp.mx2",
        "_25._tcp.x.mx1",
    ] {
        assert!(
            !may(&m, &format!("{bad}._acme.example.org."), RecordType::TLSA),
            "{bad}"
        );
    }
}

#[test]
fn a_subtree_grant_covers_the_name_and_everything_below_only() {
    let m = machine("mx1", MX1);
    for ok in ["hosts.mx1", "a.hosts.mx1", "a.b.HOSTS.mx1"] {
        assert!(
            may(&m, &format!("{ok}._acme.example.org."), RecordType::AAAA),
            "{ok}"
        );
    }
    for bad in ["xhosts.mx1", "hosts.mx2", "mx1", "hosts.x.mx1", "hosts"] {
        assert!(
            !may(&m, &format!("{bad}._acme.example.org."), RecordType::A),
            "{bad}"
        );
    }
    let g = m
        .permits(&n(ORG), &n("a.hosts.mx1._acme.example.org."), RecordType::A)
        .unwrap();
    assert_eq!(g.describe(), "hosts.mx1 (subtree) A AAAA");
    assert!(g.subtree());
}

#[test]
fn absolute_patterns_and_the_apex() {
    let text = r#"
[[grant]]
name = "_acme-challenge.{machine}._acme.example.org."
types = ["TXT"]

[[grant]]
name = "@"
types = ["TXT"]
"#;
    let m = machine("web", text);
    assert!(may(
        &m,
        "_acme-challenge.web._acme.example.org.",
        RecordType::TXT
    ));
    assert!(may(&m, "_acme.example.org.", RecordType::TXT));
    assert!(!may(&m, "x._acme.example.org.", RecordType::TXT));
    // The absolute name is in ORG only: nothing of it applies in NET.
    let owner = n("_acme-challenge.web._acme.example.net.");
    assert!(m.permits(&n(NET), &owner, RecordType::TXT).is_none());
    assert!(m.permits(&n(NET), &n(NET), RecordType::TXT).is_some());
}

#[test]
fn several_matching_grants_report_the_most_permissive() {
    let text = r#"
[[grant]]
name = "a"
types = ["TXT"]
max-rrset = 1

[[grant]]
name = "*"
types = ["TXT"]
max-rrset = 3

[[grant]]
name = "b"
types = ["TXT"]
max-rrset = 2

[[grant]]
name = "b"
types = ["TXT"]
"#;
    let m = machine("web", text);
    let max = |owner: &str| {
        m.permits(&n(ORG), &n(owner), RecordType::TXT)
            .map(Grant::max_rrset)
    };
    assert_eq!(max("a._acme.example.org."), Some(Some(3)));
    assert_eq!(max("b._acme.example.org."), Some(None));
    assert_eq!(max("c._acme.example.org."), Some(Some(3)));
    assert_eq!(max("c.d._acme.example.org."), None);
}

#[test]
fn grantable_types_at_is_the_union_of_matching_grants() {
    let text = r#"
[[grant]]
name = "{machine}"
subtree = true
types = ["A", "txt"]

[[grant]]
name = "www.{machine}"
types = ["TXT", "AAAA", "TYPE65"]
"#;
    let m = machine("web", text);
    let at = |owner: &str| m.grantable_types_at(&n(ORG), &n(owner));
    assert_eq!(
        at("www.web._acme.example.org."),
        TypesAt::Some(vec![
            RecordType::A,
            RecordType::TXT,
            RecordType::AAAA,
            RecordType::HTTPS
        ])
    );
    assert_eq!(
        at("web._acme.example.org."),
        TypesAt::Some(vec![RecordType::A, RecordType::TXT])
    );
    assert_eq!(at("other._acme.example.org."), TypesAt::None);
    assert_eq!(at("web._acme.example.net."), TypesAt::None);
    assert!(at("www.web._acme.example.org.").contains(RecordType::HTTPS));
    assert!(!at("web._acme.example.org.").contains(RecordType::AAAA));
}

// --- admin -------------------------------------------------------

#[test]
fn an_admin_may_change_anything_but_server_managed_types_in_its_zones() {
    let text = "role = \"admin\"\nzones = [\"_acme.example.org.\"]\n";
    let m = machine("ops", text);
    assert_eq!(m.role, Role::Admin);
    for owner in [
        "_acme.example.org.",
        "x.y._acme.example.org.",
        "*.mx1._acme.example.org.",
    ] {
        for t in [
            RecordType::TXT,
            RecordType::NS,
            RecordType::A,
            RecordType::TLSA,
        ] {
            let g = m.permits(&n(ORG), &n(owner), t);
            assert!(g.is_some_and(Grant::is_admin), "{owner} {t}");
        }
        for t in [
            RecordType::SOA,
            RecordType::DNSKEY,
            RecordType::RRSIG,
            RecordType::NSEC3PARAM,
            RecordType::DS,
            RecordType::ANY,
            RecordType::IXFR,
            RecordType::OPT,
        ] {
            assert!(m.permits(&n(ORG), &n(owner), t).is_none(), "{owner} {t}");
        }
    }
    // Outside its zones, nothing.
    assert!(m.permits(&n(NET), &n(NET), RecordType::TXT).is_none());
    assert!(
        m.permits(&n(ORG), &n("example.org."), RecordType::TXT)
            .is_none()
    );
    let at = m.grantable_types_at(&n(ORG), &n("a._acme.example.org."));
    assert_eq!(at, TypesAt::AllButProtected);
    assert!(at.contains(RecordType::NS) && !at.contains(RecordType::SOA));
    assert_eq!(m.grantable_types_at(&n(NET), &n(NET)), TypesAt::None);
}

#[test]
fn an_admin_grant_adds_its_limit_and_may_name_ns_but_not_soa() {
    let text = "role = \"admin\"\n[[grant]]\nname = \"sub\"\ntypes = [\"NS\"]\nmax-rrset = 4\n";
    let m = machine("ops", text);
    let g = m
        .permits(&n(ORG), &n("sub._acme.example.org."), RecordType::NS)
        .unwrap();
    assert_eq!(g.max_rrset(), Some(4));
    let text = "role = \"admin\"\n[[grant]]\nname = \"sub\"\ntypes = [\"SOA\"]\n";
    let errs = errors("ops", text);
    assert_one_error_at(&errs, pos(text, "\"SOA\""), "SOA cannot be granted");
}

// --- networks ----------------------------------------------------

#[test]
fn source_networks_v4_v6_mapped_and_bare_addresses() {
    let m = machine("mx1", MX1);
    let ok = |s: &str| m.source_allowed(s.parse().unwrap());
    assert!(ok("192.0.2.1"));
    assert!(ok("192.0.2.255"));
    assert!(!ok("192.0.3.1"));
    assert!(ok("2001:db8::53"));
    assert!(!ok("2001:db9::53"));
    assert!(ok("::ffff:192.0.2.9"));
    assert!(!ok("::ffff:10.0.0.1"));
    // A bare address is /32.
    assert!(ok("198.51.100.7"));
    assert!(!ok("198.51.100.8"));
    assert!(ok("::ffff:198.51.100.7"));
    assert!(!ok("127.0.0.1"));
    assert!(!ok("::1"));
    // No networks: any source.
    let any = machine("web", "[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n");
    assert!(any.networks.is_empty());
    assert!(any.source_allowed("203.0.113.1".parse().unwrap()));
}

#[test]
fn bare_v6_and_mapped_networks_are_normalized() {
    let text = "networks = [\"::1\", \"::ffff:10.1.0.0/112\"]\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
    let m = machine("web", text);
    assert_eq!(
        m.networks,
        vec![
            "::1/128".parse::<IpNet>().unwrap(),
            "10.1.0.0/16".parse().unwrap()
        ]
    );
    assert!(m.source_allowed("::1".parse().unwrap()));
    assert!(!m.source_allowed("::2".parse().unwrap()));
    assert!(m.source_allowed("10.1.2.3".parse().unwrap()));
    assert!(m.source_allowed("::ffff:10.1.2.3".parse().unwrap()));
}

// --- keys --------------------------------------------------------

#[test]
fn machine_for_key_ignores_case_and_trailing_dot() {
    let files = vec![
        (PathBuf::from("acl/mx1.toml"), MX1.to_string()),
        (
            PathBuf::from("acl/web.toml"),
            "key = \"Web-Key.Example\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n".to_string(),
        ),
    ];
    let p = Policy::from_texts(&files, &served()).unwrap();
    assert_eq!(p.machines().len(), 2);
    assert_eq!(p.machine_for_key(&n("MX1.")).unwrap().name, "mx1");
    assert_eq!(p.machine_for_key(&n("mx1")).unwrap().name, "mx1");
    assert_eq!(
        p.machine_for_key(&n("web-key.example.")).unwrap().name,
        "web"
    );
    assert!(p.machine_for_key(&n("web")).is_none());
    assert!(p.machine_for_key(&n("mx1.example.")).is_none());
    assert!(p.machine_for_key(&n("mx1\\.example.")).is_none());
}

#[test]
fn machine_for_key_shares_the_policys_machine_and_it_outlives_the_policy() {
    let files = vec![(PathBuf::from("acl/mx1.toml"), MX1.to_string())];
    let p = Policy::from_texts(&files, &served()).unwrap();
    let held = std::sync::Arc::clone(p.machine_for_key(&n("mx1")).unwrap());
    assert!(std::sync::Arc::ptr_eq(&held, &p.machines()[0]));
    drop(p);
    assert!(may(
        &held,
        "_acme-challenge.mx1._acme.example.org.",
        RecordType::TXT
    ));
}

#[test]
fn key_defaults_to_the_machine_name_and_may_use_the_placeholder() {
    let m = machine("db-2", "[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n");
    assert_eq!(m.key, n("db-2."));
    let m = machine(
        "db-2",
        "key = \"{machine}.keys\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n",
    );
    assert_eq!(m.key, n("db-2.keys."));
}

#[test]
fn two_files_with_the_same_key_is_an_error_naming_both() {
    let second =
        "# same key, other case\nkey = \"MX1.\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
    let files = vec![
        (PathBuf::from("acl/mx1.toml"), MX1.to_string()),
        (PathBuf::from("acl/other.toml"), second.to_string()),
    ];
    let errs = Policy::from_texts(&files, &served()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs}");
    let e = &errs.0[0];
    assert_eq!(e.path, Path::new("acl/other.toml"));
    assert_eq!((e.line, e.column), pos(second, "\"MX1.\""));
    assert!(e.message.contains("acl/mx1.toml"), "{e}");
    // A defaulted key collides too.
    let files = vec![
        (
            PathBuf::from("acl/a.toml"),
            "key = \"b\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n".to_string(),
        ),
        (
            PathBuf::from("acl/b.toml"),
            "[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n".to_string(),
        ),
    ];
    let errs = Policy::from_texts(&files, &served()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs}");
    assert!(
        errs.to_string()
            .starts_with("acl/b.toml:1:1: key b. is already used by acl/a.toml"),
        "{errs}"
    );
}

// --- file errors ---------------------------------------------------

#[test]
fn an_unknown_field_is_an_error_at_its_key() {
    let text = "key = \"mx1\"\n\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n  max_rrset = 2\n";
    let errs = errors("mx1", text);
    assert_one_error_at(&errs, pos(text, "max_rrset"), "max_rrset");
    let text = "keys = \"mx1\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(&errors("mx1", text), (1, 1), "keys");
}

#[test]
fn a_bad_type_mnemonic_is_an_error_at_that_entry() {
    let text = "[[grant]]\nname = \"x\"\ntypes = [\"TXT\",\n  \"TLSB\"]\n";
    assert_one_error_at(
        &errors("mx1", text),
        pos(text, "\"TLSB\""),
        "unknown record type \"TLSB\"",
    );
}

#[test]
fn a_grant_of_ns_or_dnssec_types_is_an_error_naming_the_type() {
    let text = "[[grant]]\nname = \"x\"\ntypes = [\"TXT\", \"ns\"]\n\n[[grant]]\nname = \"y\"\ntypes = [\"DNSKEY\", \"ANY\"]\n";
    let errs = errors("mx1", text);
    assert_eq!(errs.len(), 3, "{}", FileErrors(errs.clone()));
    assert_eq!((errs[0].line, errs[0].column), pos(text, "\"ns\""));
    assert!(
        errs[0]
            .message
            .contains("record type NS cannot be granted to a machine"),
        "{}",
        errs[0]
    );
    assert_eq!((errs[1].line, errs[1].column), pos(text, "\"DNSKEY\""));
    assert!(errs[1].message.contains("DNSKEY"));
    assert_eq!((errs[2].line, errs[2].column), pos(text, "\"ANY\""));
    let text = "[[grant]]\nname = \"x\"\ntypes = [\"SOA\"]\n";
    assert_one_error_at(&errors("mx1", text), pos(text, "\"SOA\""), "SOA");
}

#[test]
fn a_bad_network_is_an_error_at_that_entry() {
    let text = "networks = [\"192.0.2.0/24\",\n   \"192.0.2.300\"]\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(
        &errors("mx1", text),
        (2, 4),
        "invalid network \"192.0.2.300\"",
    );
    let text = "networks = [\"192.0.2.5/24\"]\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(&errors("mx1", text), (1, 13), "did you mean 192.0.2.0/24");
    let text = "networks = []\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(&errors("mx1", text), (1, 12), "empty networks");
}

#[test]
fn an_unknown_placeholder_is_an_error_at_the_brace() {
    let text = "[[grant]]\nname = \"_acme-challenge.{host}\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(
        &errors("mx1", text),
        pos(text, "{host}"),
        "unknown placeholder {host}",
    );
    let text = "[[grant]]\nname = \"a.{machine\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(&errors("mx1", text), pos(text, "{machine"), "unclosed");
}

#[test]
fn bad_patterns_are_errors_at_the_name() {
    for bad in [
        "a*b.x",
        "*a.x",
        "a**",
        "a..b",
        ".a",
        "a b",
        "x\\\\.y",
        "",
        "caf\u{e9}",
    ] {
        let text = format!("[[grant]]\nname = \"{bad}\"\ntypes = [\"TXT\"]\n");
        let errs = errors("mx1", &text);
        assert_eq!(errs.len(), 1, "{bad}: {}", FileErrors(errs.clone()));
        assert_eq!(errs[0].line, 2, "{bad}: {}", errs[0]);
        assert!(errs[0].message.starts_with("name "), "{}", errs[0]);
    }
}

#[test]
fn an_absolute_name_outside_every_zone_is_an_error() {
    let text = "zones = [\"_acme.example.org.\"]\n[[grant]]\nname = \"_acme-challenge.mx1._acme.example.net.\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(&errors("mx1", text), (3, 8), "outside every zone");
    let text = "[[grant]]\nname = \"_acme-challenge.mx1.example.org.\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(&errors("mx1", text), (2, 8), "outside every zone");
    // A glob where the zone should be does not place it in the zone.
    let text = "[[grant]]\nname = \"x.*.example.org.\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(&errors("mx1", text), (2, 8), "outside every zone");
}

#[test]
fn a_zone_not_served_is_an_error() {
    let text = "zones = [\"_acme.example.org.\", \"example.com.\"]\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(
        &errors("mx1", text),
        pos(text, "\"example.com.\""),
        "not served",
    );
    let text = "zones = []\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n";
    assert_one_error_at(&errors("mx1", text), (1, 9), "empty zones");
}

#[test]
fn a_machine_without_grants_and_empty_types_are_errors() {
    let errs = errors("mx1", "key = \"mx1\"\n");
    assert_one_error_at(&errs, (1, 1), "no [[grant]]");
    let text = "[[grant]]\nname = \"x\"\ntypes = []\n";
    assert_one_error_at(&errors("mx1", text), (3, 9), "empty types");
    let text = "[[grant]]\nname = \"x\"\n";
    assert_one_error_at(&errors("mx1", text), (1, 1), "types");
    let text = "[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\nmax-rrset = 0\n";
    assert_one_error_at(&errors("mx1", text), (4, 13), "at least 1");
    let text = "role = \"root\"\n";
    assert_one_error_at(&errors("mx1", text), (1, 8), "root");
}

#[test]
fn every_error_in_a_file_is_reported_in_order() {
    let text = "networks = [\"nope\"]\nzones = [\"other.\"]\n[[grant]]\nname = \"{host}\"\ntypes = [\"NS\", \"BOGUS\"]\n";
    let errs = errors("mx1", text);
    let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        at,
        vec![(1, 13), (2, 10), (4, 9), (5, 10), (5, 16)],
        "{}",
        FileErrors(errs)
    );
}

#[test]
fn the_file_stem_must_be_one_dns_label() {
    for bad in ["mx.1", "-mx", "mx-", "m x", ""] {
        let path = format!("acl/{bad}.toml");
        let errs = Policy::parse_file(Path::new(&path), MX1, &served()).unwrap_err();
        assert_eq!(errs.len(), 1, "{bad}");
        assert!(errs[0].message.contains("file name"), "{}", errs[0]);
    }
    assert!(Policy::parse_file(Path::new("acl/Mx_1-b.toml"), MX1, &served()).is_ok());
}

// --- directories ---------------------------------------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "zonewarden-acl-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_dir_reads_toml_files_in_order_and_ignores_the_rest() {
    let dir = TempDir::new("ok");
    dir.write(
        "web.toml",
        "[[grant]]\nname = \"www.{machine}\"\ntypes = [\"A\"]\n",
    );
    dir.write("mx1.toml", MX1);
    dir.write(".hidden.toml", "garbage = [");
    dir.write("README.md", "not toml");
    dir.write("mx1.toml~", "garbage = [");
    fs::create_dir(dir.0.join("sub.toml")).unwrap();
    let p = Policy::load_dir(&dir.0, &served()).unwrap();
    let names: Vec<&str> = p.machines().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["mx1", "web"]);
    assert_eq!(p.machines()[1].path, dir.0.join("web.toml"));
    assert!(p.machine_for_key(&n("web")).is_some());
}

#[test]
fn load_dir_with_a_broken_file_fails_whole_listing_its_errors() {
    let dir = TempDir::new("broken");
    dir.write("mx1.toml", MX1);
    let bad = "[[grant]]\nname = \"{host}\"\ntypes = [\"TXT\", \"NS\"]\n";
    let bad_path = dir.write("web.toml", bad);
    let errs = Policy::load_dir(&dir.0, &served()).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(errs.iter().all(|e| e.path == bad_path), "{errs}");
    let shown = errs.to_string();
    assert!(
        shown.contains(&format!("{}:2:9: unknown placeholder", bad_path.display())),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{}:3:17: record type NS", bad_path.display())),
        "{shown}"
    );
}

#[test]
fn load_dir_reports_duplicate_keys_across_files() {
    let dir = TempDir::new("dup");
    dir.write(
        "a.toml",
        "key = \"shared\"\n[[grant]]\nname = \"x\"\ntypes = [\"TXT\"]\n",
    );
    let b = dir.write(
        "b.toml",
        "key = \"Shared\"\n[[grant]]\nname = \"y\"\ntypes = [\"TXT\"]\n",
    );
    let errs = Policy::load_dir(&dir.0, &served()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs}");
    assert_eq!(errs.0[0].path, b);
    assert!(errs.0[0].message.contains("a.toml"), "{errs}");
}

#[test]
fn load_dir_and_load_file_report_io_errors_without_position() {
    let dir = TempDir::new("io");
    let missing = dir.0.join("nope");
    let errs = Policy::load_dir(&missing, &served()).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(!errs.0[0].has_position());
    assert!(errs.to_string().starts_with(&missing.display().to_string()));
    let errs = Policy::load_file(&dir.0.join("gone.toml"), &served()).unwrap_err();
    assert!(errs[0].message.starts_with("cannot read"), "{}", errs[0]);
    let path = dir.0.join("bin.toml");
    fs::write(&path, b"key = \"\xff\"\n").unwrap();
    let errs = Policy::load_file(&path, &served()).unwrap_err();
    assert!(errs[0].message.contains("UTF-8"), "{}", errs[0]);
    // A file is not a directory.
    assert!(Policy::load_dir(&path, &served()).is_err());
    // An empty directory is an empty policy.
    let empty = TempDir::new("empty");
    assert!(
        Policy::load_dir(&empty.0, &served())
            .unwrap()
            .machines()
            .is_empty()
    );
}

// --- skeleton ------------------------------------------------------

#[test]
fn the_skeleton_parses_back_and_grants_challenge_and_tlsa() {
    let text = skeleton("mx1", "mx1", &n(ORG), None);
    let dir = TempDir::new("skel");
    let path = dir.write("mx1.toml", &text);
    let m = Policy::load_file(&path, &served()).unwrap();
    assert_eq!(m.key, n("mx1."));
    assert_eq!(m.zones.as_deref(), Some(&[n(ORG)][..]));
    assert!(may(
        &m,
        "_acme-challenge.mx1._acme.example.org.",
        RecordType::TXT
    ));
    assert!(may(&m, "_25._tcp.mx1._acme.example.org.", RecordType::TLSA));
    assert!(!may(&m, "_25._tcp.mx1._acme.example.org.", RecordType::TXT));
    assert!(!may(
        &m,
        "_acme-challenge.mx2._acme.example.org.",
        RecordType::TXT
    ));

    let text = skeleton(
        "mx1",
        "mx1-key.example",
        &n("_acme.example.net"),
        Some("mail.site"),
    );
    let m = parse("mx1", &text).unwrap();
    assert_eq!(m.key, n("mx1-key.example."));
    let owner = n("_acme-challenge.mail.site._acme.example.net.");
    assert!(m.permits(&n(NET), &owner, RecordType::TXT).is_some());
    assert!(
        m.permits(
            &n(NET),
            &n("_443._tcp.mail.site._acme.example.net."),
            RecordType::TLSA
        )
        .is_some()
    );
    assert!(!may(
        &m,
        "_acme-challenge.mx1._acme.example.org.",
        RecordType::TXT
    ));
}

#[test]
fn the_skeleton_quotes_hostile_input() {
    let text = skeleton(
        "mx1\nrole = \"admin\"",
        "k\"ey",
        &n(ORG),
        Some("h\"\nrole=1"),
    );
    // Whatever it is, it is not an admin and it is not accepted.
    let errs = parse("mx1", &text).unwrap_err();
    assert!(!errs.is_empty());
    assert!(!text.contains("\nrole = \"admin\""));
}

#[test]
fn truncated_and_mangled_files_give_errors_not_panics() {
    let full = format!("zones = [\"{ORG}\"]\n{MX1}");
    for (i, _) in full.char_indices() {
        let _ = parse("mx1", &full[..i]);
        for junk in ["{", "}", "*", "\\", "\"", ".", "\u{e9}", "\n[[grant]]\n"] {
            let mangled = format!("{}{junk}{}", &full[..i], &full[i..]);
            if let Ok(m) = parse("mx1", &mangled) {
                let _ = m.permits(&n(ORG), &n("*.mx1._acme.example.org."), RecordType::TXT);
                let _ = m.grantable_types_at(&n(ORG), &Name::root());
            }
        }
    }
}

// --- small parts -----------------------------------------------------

#[test]
fn types_parse_case_insensitively_and_as_typennn() {
    assert_eq!(parse_type("txt"), Some(RecordType::TXT));
    assert_eq!(parse_type("Tlsa"), Some(RecordType::TLSA));
    assert_eq!(parse_type("TYPE52"), Some(RecordType::TLSA));
    assert_eq!(parse_type("type65280"), Some(RecordType::Unknown(65280)));
    assert_eq!(parse_type("TYPE70000"), None);
    assert_eq!(parse_type("TYPE"), None);
    assert_eq!(parse_type(" TXT"), None);
    assert_eq!(parse_type("*"), Some(RecordType::ANY));
}

#[test]
fn placeholder_expansion() {
    assert_eq!(expand("a.{machine}.b", "mx1").unwrap(), "a.mx1.b");
    assert_eq!(expand("{machine}{machine}", "m").unwrap(), "mm");
    assert_eq!(expand("x.{Machine}", "m").unwrap_err().0, 2);
    assert_eq!(expand("a}", "m").unwrap_err().0, 1);
    assert_eq!(expand("{machine}.{", "m").unwrap_err().0, 10);
    assert_eq!(expand("{machine}.{x}", "m").unwrap_err().0, 10);
}

#[test]
fn describe_lists_pattern_flags_and_types() {
    let m = machine("mx1", MX1);
    let d: Vec<String> = m.grants.iter().map(Grant::describe).collect();
    assert_eq!(
        d,
        [
            "_acme-challenge.mx1 TXT(2)",
            "_*._tcp.mx1 TLSA",
            "hosts.mx1 (subtree) A AAAA",
            "*.star.mx1 TXT"
        ]
    );
    assert_eq!(
        ADMIN_GRANT.describe(),
        "admin: any name, any type but SOA/DNSSEC/meta"
    );
}

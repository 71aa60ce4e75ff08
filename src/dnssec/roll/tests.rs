//! The rollover's plan, step by step, on made-up observations.

use super::*;
use crate::dnssec::parent_view::ServerDs;
use crate::zonefile::KeyAlgorithm;

const T: Timings = Timings {
    dnskey_ttl: 60,
    propagation_delay: 10,
    key_lifetime: None,
    algorithm: KeyAlgorithm::EcdsaP256Sha256,
    max_ttl: 300,
    enabled: true,
};

fn ds(tag: u16) -> DsId {
    DsId {
        tag,
        algorithm: 13,
        digest_type: 2,
        digest: vec![tag as u8; 32],
    }
}

fn key(id: i64, tag: u16, state: KeyState, since: u64, serial: Option<u32>) -> KeyRecord {
    let mut k = KeyRecord::generated(tag, KeyAlgorithm::EcdsaP256Sha256, format!("k{tag}"), 0);
    k.id = id;
    k.enter(state, since, serial);
    k
}

fn parent(servers: &[&[u16]], ttl: u32, at: u64) -> ParentView {
    ParentView {
        at,
        servers: servers
            .iter()
            .enumerate()
            .map(|(i, tags)| ServerDs {
                server: format!("192.0.2.{i}:53"),
                answer: Ok((tags.iter().map(|t| ds(*t)).collect(), ttl)),
            })
            .collect(),
    }
}

fn at(now: u64, served: Option<u32>, parent: Option<ParentView>) -> Observed {
    Observed {
        now,
        served,
        parent,
    }
}

fn run(keys: &[KeyRecord], o: &Observed) -> Plan {
    plan(keys, &T, o, "z.example.", "example.", |k| Some(ds(k.tag)))
}

#[test]
fn nothing_happens_without_a_lifetime_or_a_request() {
    let keys = [key(1, 100, KeyState::Active, 0, None)];
    let p = run(
        &keys,
        &at(1_000_000, Some(5), Some(parent(&[&[100]], 60, 0))),
    );
    // the parent's DS of the active key is recorded once seen
    assert_eq!(p.step, Some(Step::DsSeen { key: 1, ttl: 60 }));
    let mut seen = keys.clone();
    seen[0].ds_seen = Some(1);
    let p = run(
        &seen,
        &at(1_000_000, Some(5), Some(parent(&[&[100]], 60, 0))),
    );
    assert_eq!(p.step, None);
    assert!(p.keys[0].1.action.is_none());
}

#[test]
fn a_missing_ds_for_the_active_key_is_an_action() {
    let keys = [key(1, 100, KeyState::Active, 0, None)];
    let p = run(&keys, &at(10, Some(5), Some(parent(&[&[100], &[]], 60, 0))));
    assert_eq!(p.step, None);
    let action = p.keys[0].1.action.clone().unwrap();
    assert!(action.contains("z.example. IN DS 100 13 2"), "{action}");
    assert!(action.contains("192.0.2.1:53 has no DS"), "{action}");
}

#[test]
fn a_requested_roll_or_lifetime_starts_one() {
    let mut k = key(1, 100, KeyState::Active, 0, None);
    k.ds_seen = Some(0);
    k.roll_requested = Some(50);
    let p = run(&[k.clone()], &at(50, Some(5), None));
    assert!(matches!(p.step, Some(Step::Start { old: 1, .. })));
    k.roll_requested = None;
    let t = Timings {
        key_lifetime: Some(1000),
        ..T
    };
    let p = plan(&[k.clone()], &t, &at(999, Some(5), None), "z.", "p.", |k| {
        Some(ds(k.tag))
    });
    assert_eq!(p.step, None);
    assert_eq!(p.keys[0].1.at, Some(1000));
    let p = plan(&[k], &t, &at(1000, Some(5), None), "z.", "p.", |k| {
        Some(ds(k.tag))
    });
    assert!(matches!(p.step, Some(Step::Start { old: 1, .. })));
}

#[test]
fn a_whole_rollover_waits_for_each_condition_in_turn() {
    let mut old = key(1, 100, KeyState::Active, 0, None);
    old.ds_seen = Some(0);
    // 1. published at 1000 by serial 7: waits for the secondaries, then the TTL
    let new = key(2, 200, KeyState::Published, 1000, Some(7));
    let keys = vec![old.clone(), new.clone()];
    let p = run(&keys, &at(2000, Some(6), None));
    assert_eq!(p.step, None);
    assert!(
        p.keys[1].1.waiting_for.contains("serial 7"),
        "{:?}",
        p.keys[1]
    );
    let p = run(&keys, &at(1069, Some(7), None));
    assert_eq!(p.step, None, "DNSKEY TTL + delay = 70 s");
    assert!(p.keys[1].1.waiting_for.contains("DNSKEY TTL"));
    let p = run(&keys, &at(1070, Some(7), None));
    assert_eq!(p.step, Some(Step::Submit { key: 2 }));
    // 2. ready: waits for its DS at every parent nameserver
    let mut new = key(2, 200, KeyState::Ready, 1070, Some(8));
    let keys = vec![old.clone(), new.clone()];
    let one_lags = parent(&[&[200], &[100]], 120, 1100);
    let p = run(&keys, &at(5000, Some(8), Some(one_lags)));
    assert_eq!(p.step, None, "one parent nameserver lacks the new DS");
    let out = &p.keys[1].1;
    assert!(
        out.waiting_for.contains("192.0.2.1:53 has only key 100"),
        "{out:?}"
    );
    assert!(
        out.action.as_deref().unwrap().contains("200 13 2"),
        "{out:?}"
    );
    // the old key's outlook has no second action for the same thing
    assert!(p.keys[0].1.action.is_none(), "{:?}", p.keys[0]);
    let both = parent(&[&[200], &[200, 100]], 120, 1200);
    let p = run(&keys, &at(1200, Some(8), Some(both.clone())));
    assert_eq!(p.step, Some(Step::DsSeen { key: 2, ttl: 120 }));
    new.ds_seen = Some(1200);
    new.ds_ttl = Some(120);
    let keys = vec![old.clone(), new.clone()];
    // DS TTL + delay = 130 s after it was seen
    let p = run(&keys, &at(1329, Some(8), Some(both.clone())));
    assert_eq!(p.step, None);
    // a parent that lost the DS again stops the retirement
    let lost = parent(&[&[200], &[100]], 120, 1330);
    let p = run(&keys, &at(1330, Some(8), Some(lost)));
    assert_eq!(p.step, None);
    assert!(p.keys[1].1.waiting_for.contains("still"), "{:?}", p.keys[1]);
    let p = run(&keys, &at(1330, Some(8), Some(both.clone())));
    assert_eq!(p.step, Some(Step::Retire { old: 1, new: 2 }));
    // 3. retired by serial 9: removed once served and the DNSKEY TTL passed
    let retired = key(1, 100, KeyState::Retired, 1330, Some(9));
    let active = {
        let mut k = key(2, 200, KeyState::Active, 1330, Some(9));
        k.ds_seen = Some(1200);
        k
    };
    let keys = vec![retired, active];
    let p = run(&keys, &at(1400, None, Some(both.clone())));
    assert_eq!(p.step, None, "a secondary not heard from");
    let p = run(
        &keys,
        &at(1399, Some(9), Some(parent(&[&[200], &[200]], 120, 1399))),
    );
    assert_eq!(p.step, Some(Step::DsRemoved { key: 1 }));
    let mut keys = keys;
    keys[0].ds_removed = Some(1399);
    let p = run(&keys, &at(1399, Some(9), None));
    assert_eq!(p.step, None);
    let p = run(&keys, &at(1400, Some(9), None));
    assert_eq!(p.step, Some(Step::Remove { key: 1 }));
}

#[test]
fn an_unanswering_parent_nameserver_holds_the_rollover() {
    let mut old = key(1, 100, KeyState::Active, 0, None);
    old.ds_seen = Some(0);
    let new = key(2, 200, KeyState::Ready, 1070, Some(8));
    let mut view = parent(&[&[200], &[200]], 60, 2000);
    view.servers[1].answer = Err("timed out".into());
    let p = run(&[old, new], &at(2000, Some(8), Some(view)));
    assert_eq!(p.step, None);
    assert!(p.keys[1].1.waiting_for.contains("timed out"));
}

#[test]
fn an_algorithm_rollover_signs_first_and_unsigns_last() {
    let mut old = key(1, 100, KeyState::Active, 0, None);
    old.ds_seen = Some(0);
    let t = Timings {
        algorithm: KeyAlgorithm::Ed25519,
        ..T
    };
    let run = |keys: &[KeyRecord], o: &Observed| plan(keys, &t, o, "z.", "p.", |k| Some(ds(k.tag)));
    // the zone file asks for another algorithm: a rollover starts at once
    let p = run(&[old.clone()], &at(5, Some(1), None));
    assert!(
        matches!(
            &p.step,
            Some(Step::Start {
                old: 1,
                algorithm: KeyAlgorithm::Ed25519,
                ..
            })
        ),
        "{:?}",
        p.step
    );
    // signing only: published once the zone's longest TTL + delay passed
    let mut s = key(2, 200, KeyState::Signing, 1000, Some(7));
    s.algorithm = KeyAlgorithm::Ed25519;
    let p = run(&[old.clone(), s.clone()], &at(1309, Some(7), None));
    assert_eq!(p.step, None);
    assert!(
        p.keys[1].1.waiting_for.contains("longest TTL (300 s)"),
        "{:?}",
        p.keys[1]
    );
    let p = run(&[old.clone(), s.clone()], &at(1310, Some(7), None));
    assert_eq!(p.step, Some(Step::Publish { key: 2 }));
    // no second rollover starts while one runs
    assert!(!matches!(p.step, Some(Step::Start { .. })));
    // withdrawn: its signatures go a DNSKEY TTL + delay later
    let w = key(1, 100, KeyState::Withdrawn, 2000, Some(12));
    let mut a = key(2, 200, KeyState::Active, 2000, Some(12));
    a.algorithm = KeyAlgorithm::Ed25519;
    a.ds_seen = Some(1900);
    let p = run(&[w.clone(), a.clone()], &at(2069, Some(12), None));
    assert_eq!(p.step, None);
    let p = run(&[w, a], &at(2070, Some(12), None));
    assert_eq!(p.step, Some(Step::Unsign { key: 1 }));
}

#[test]
fn turning_dnssec_off_waits_for_the_parent_to_drop_every_ds() {
    let off = Timings {
        enabled: false,
        ..T
    };
    let run =
        |keys: &[KeyRecord], o: &Observed| plan(keys, &off, o, "z.", "p.", |k| Some(ds(k.tag)));
    let mut a = key(1, 100, KeyState::Active, 0, None);
    a.ds_seen = Some(0);
    a.ds_ttl = Some(120);
    let p = run(
        &[a.clone()],
        &at(10, Some(1), Some(parent(&[&[100]], 120, 10))),
    );
    assert_eq!(p.step, Some(Step::Leave { key: 1 }));
    a.ds_delete = Some(10);
    // one nameserver still has the DS: wait, and say what to do
    let p = run(
        &[a.clone()],
        &at(20, Some(1), Some(parent(&[&[], &[100]], 120, 20))),
    );
    assert_eq!(p.step, None);
    let out = &p.keys[0].1;
    assert!(
        out.waiting_for.contains("192.0.2.1:53 still has key 100"),
        "{out:?}"
    );
    assert!(
        out.action
            .as_deref()
            .unwrap()
            .contains("remove the DS records of z.")
    );
    // a nameserver that does not answer is not "no DS"
    let mut silent = parent(&[&[], &[]], 0, 30);
    silent.servers[1].answer = Err("timed out".into());
    assert_eq!(run(&[a.clone()], &at(30, Some(1), Some(silent))).step, None);
    let p = run(
        &[a.clone()],
        &at(40, Some(1), Some(parent(&[&[], &[]], 0, 40))),
    );
    assert_eq!(p.step, Some(Step::DsRemoved { key: 1 }));
    a.ds_removed = Some(40);
    // then the DS TTL the caches may still hold it for, plus the delay
    assert_eq!(run(&[a.clone()], &at(169, Some(1), None)).step, None);
    assert_eq!(
        run(&[a.clone()], &at(170, Some(1), None)).step,
        Some(Step::Off { key: 1 })
    );
    // on again before it was off: the CDS names the key again
    let p = plan(&[a], &T, &at(100, Some(1), None), "z.", "p.", |k| {
        Some(ds(k.tag))
    });
    assert_eq!(p.step, Some(Step::Stay { key: 1 }));
}

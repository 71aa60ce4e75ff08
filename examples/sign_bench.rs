//! What signing costs: time to sign a whole zone, to check it at a restart,
//! to re-sign after one update, and how much the zone grows.
//! `cargo run --release --example sign_bench [NAMES] [ALGORITHM] [nsec|nsec3]`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::rr::{Name, RData, RecordType};
use zonewarden::dnssec::{Denial, KeyAlgorithm, Settings, ZoneKey, ZoneSigner};
use zonewarden::store::encode_records;
use zonewarden::zone::ZoneData;

/// Octets of the records in uncompressed wire form (as in an AXFR, less compression).
fn wire(records: &[hickory_proto::rr::Record]) -> usize {
    records
        .iter()
        .map(|r| encode_records(std::slice::from_ref(r)).len())
        .sum()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let names: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let alg = args
        .next()
        .and_then(|a| KeyAlgorithm::from_config(&a))
        .unwrap_or(KeyAlgorithm::EcdsaP256Sha256);
    let denial = args
        .next()
        .and_then(|a| Denial::from_config(&a))
        .unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let origin = Name::from_ascii("_acme.example.org.").unwrap();
    let spec = zonewarden::zonefile::parse(
        Path::new("bench.toml"),
        "origin = \"_acme.example.org.\"\ncontact = \"h.example.org.\"\nnameservers = [\"ns1\"]\n[glue]\nns1 = [\"192.0.2.1\"]\n",
    )
    .unwrap();
    let (key, _) = ZoneKey::load_or_create(dir.path(), &origin, alg).unwrap();
    let signer = ZoneSigner::new(
        key,
        Settings {
            algorithm: alg,
            denial,
            ..Settings::default()
        },
    );
    let tlsa = RData::try_from_str(
        RecordType::TLSA,
        "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
    )
    .unwrap();
    let txt = RData::try_from_str(
        RecordType::TXT,
        "\"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\"",
    )
    .unwrap();
    let mut zone = ZoneData::new(Arc::new(spec), 1, []);
    for i in 0..names {
        let host = format!("host{i}.{origin}");
        let n = |p: &str| Name::from_ascii(format!("{p}.{host}")).unwrap();
        if i % 2 == 0 {
            zone.add(&n("_acme-challenge"), RecordType::TXT, 60, txt.clone());
        } else {
            zone.add(&n("_25._tcp"), RecordType::TLSA, 300, tlsa.clone());
        }
    }
    let now = 1_800_000_000;
    let unsigned = zone.all_records();
    let unsigned_bytes = wire(&unsigned);

    let t = Instant::now();
    let delta = signer.sign_all(&mut zone, now);
    let sign_all = t.elapsed();
    let signed = zone.all_records();
    let signed_bytes = wire(&signed);

    let t = Instant::now();
    let again = signer.sign_all(&mut zone.clone(), now + 60);
    let restart = t.elapsed();
    assert!(again.is_empty());
    let t = Instant::now();
    let bad = signer.unverified(&zone, || true);
    let check = t.elapsed();
    assert_eq!(bad, Some(vec![]));

    // 200 updates, each one new challenge name, re-signed incrementally
    let mut per_update = Vec::new();
    let mut z = zone.clone();
    for i in 0..200 {
        let mut next = z.clone();
        let n = Name::from_ascii(format!("_acme-challenge.new{i}.{origin}")).unwrap();
        next.add(&n, RecordType::TXT, 60, txt.clone());
        next.serial += 1;
        let touched = BTreeSet::from([(n, RecordType::TXT)]);
        let t = Instant::now();
        let d = signer.resign(&z, &mut next, &touched, now + 120);
        per_update.push((t.elapsed(), d.removed.len() + d.added.len()));
        z = next;
    }
    per_update.sort();
    let t = Instant::now();
    let refreshed = signer.refresh(&mut zone, now + 8 * 86_400);
    let refresh = t.elapsed();

    println!(
        "algorithm {} names {names} denial {denial:?}",
        alg.config_name()
    );
    println!(
        "records: {} unsigned -> {} signed ({} DNSSEC records added)",
        unsigned.len(),
        signed.len(),
        delta.added.len()
    );
    println!(
        "wire size: {unsigned_bytes} -> {signed_bytes} octets (x{:.1})",
        signed_bytes as f64 / unsigned_bytes as f64
    );
    println!(
        "sign_all: {:.1} ms ({:.1} us per RRSIG)",
        sign_all.as_secs_f64() * 1e3,
        sign_all.as_secs_f64() * 1e6 / delta.added.len() as f64
    );
    println!(
        "sign_all on a signed zone (restart, before the first answer): {:.1} ms",
        restart.as_secs_f64() * 1e3
    );
    println!(
        "unverified (after start, off the writer: verify every RRSIG): {:.1} ms",
        check.as_secs_f64() * 1e3
    );
    println!(
        "resign after adding one name: p50 {:.0} us, p99 {:.0} us, {} records in the diff",
        per_update[100].0.as_secs_f64() * 1e6,
        per_update[198].0.as_secs_f64() * 1e6,
        per_update[100].1
    );
    println!(
        "refresh of every signature: {:.1} ms ({} records in the diff)",
        refresh.as_secs_f64() * 1e3,
        refreshed.removed.len() + refreshed.added.len()
    );
}

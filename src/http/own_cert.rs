//! The HTTPS listener's own certificate from an ACME CA (issue 14, item
//! 4; acme-dns's `tls = "letsencrypt"`), by DNS-01 through the zone this
//! server serves: `[https-acme]`.
//!
//! Each name's challenge goes where a served zone holds it:
//! `_acme-challenge.<name>` itself when the name is in a served zone, else
//! its delegated twin `_acme-challenge.<host>.<zone>` (the CNAME the real
//! zone needs for it, as `machine add` prints for machines). The TXT is
//! written by the zone writer like any change (ACL check against an
//! internal machine `zonewarden-https`, journal, signatures, NOTIFY,
//! audit), and the CA is told only once every nameserver serves it.
//!
//! State in `<data-dir>/https-acme/`: the ACME account per directory URL
//! (`account-<hash>.json`, 0600), `cert.pem` (chain) and `key.pem` (0600),
//! loaded at start when they still cover the names. Renewal: when less
//! than `renew-before` (default a third of the lifetime, at most 30 days)
//! is left; a failed order is retried after 1 minute, doubling up to
//! `check-interval`; the certificate in force stays meanwhile.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use super::Context;
use super::acme_dns::write_atomic_mode;
use super::tls::{CertStore, Loaded, parse_pair};
use crate::acl::Machine;
use crate::config::HttpsAcme;
use crate::notify::Propagation;
use crate::writer::{UpdateDraft, WriteError, ZoneHandle};

/// The name the server's own changes are audited under.
pub const MACHINE: &str = "zonewarden-https";

/// How long one ACME order may take, beyond `propagation-timeout`
/// (instant-acme's HTTP client has no timeout of its own: a CA that
/// accepts the connection and never answers would stop renewals).
const ORDER_LIMIT: Duration = Duration::from_secs(600);

/// Where one name's DNS-01 challenge is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeAt {
    /// The served zone that holds it.
    pub zone: Name,
    /// The TXT owner in that zone.
    pub owner: Name,
    /// `_acme-challenge.<name>`, when it must be a CNAME to `owner` in the
    /// real zone (None: `owner` is that name).
    pub cname_from: Option<Name>,
}

/// Where the challenge of `name` goes, given the served zones; None when
/// no served zone can hold it.
pub fn challenge_at(zones: &[Name], name: &Name) -> Option<ChallengeAt> {
    let label = Name::from_ascii("_acme-challenge").expect("valid label");
    let direct = label.clone().append_name(name).ok()?;
    // Directly: the deepest served zone that holds the name.
    if let Some(zone) = zones
        .iter()
        .filter(|z| z.zone_of(&direct))
        .max_by_key(|z| z.num_labels())
    {
        return Some(ChallengeAt {
            zone: zone.clone(),
            owner: direct,
            cname_from: None,
        });
    }
    // The delegated twin: `<host>.<parent>` maps to `<host>.<zone>`.
    for zone in zones {
        let parent = zone.base_name();
        if parent.is_root() || !parent.zone_of(name) || name == &parent {
            continue;
        }
        let host_labels = name.num_labels() - parent.num_labels();
        let host = Name::from_labels(name.iter().take(host_labels as usize)).ok()?;
        let owner = label
            .clone()
            .append_name(&host)
            .ok()?
            .append_name(zone)
            .ok()?;
        return Some(ChallengeAt {
            zone: zone.clone(),
            owner,
            cname_from: Some(direct),
        });
    }
    None
}

/// The file beside `cert.pem` naming the directory (CA) it came from.
pub const ISSUER_FILE: &str = "cert.directory";

/// Load the stored certificate if it is still for the configured names
/// and from the configured directory (a staging certificate is not
/// served once `directory` names the production CA).
pub fn load_stored(dir: &Path, acme: &HttpsAcme) -> Option<Loaded> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !cert.exists() {
        return None;
    }
    let issuer = std::fs::read_to_string(dir.join(ISSUER_FILE)).unwrap_or_default();
    if issuer.trim() != acme.directory {
        tracing::info!(cert = %cert.display(), stored = issuer.trim(), directory = %acme.directory, "the stored HTTPS certificate is from another ACME directory; ordering a new one");
        return None;
    }
    match super::tls::load_files(&cert, &key, "acme") {
        Ok(l) if covers(&l, acme) => Some(l),
        Ok(_) => {
            tracing::info!(cert = %cert.display(), "the stored HTTPS certificate is for other names; ordering a new one");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the stored HTTPS certificate does not load; ordering a new one");
            None
        }
    }
}

fn covers(l: &Loaded, acme: &HttpsAcme) -> bool {
    acme.names.iter().all(|n| {
        let want = n.to_ascii();
        let want = want.trim_end_matches('.');
        l.info.names.iter().any(|h| h.eq_ignore_ascii_case(want))
    })
}

/// When the certificate in force is due for renewal (Unix seconds).
pub fn renew_at(not_before: i64, not_after: i64, renew_before: Option<Duration>) -> i64 {
    let lifetime = (not_after - not_before).max(0);
    let before = match renew_before {
        Some(d) => d.as_secs() as i64,
        None => (lifetime / 3).min(30 * 86_400),
    };
    not_after - before
}

/// Keep the certificate in `store` ordered and renewed, until the task is
/// dropped.
pub async fn run(cx: Arc<Context>, acme: HttpsAcme, store: Arc<CertStore>) {
    let dir = cx.config.data_dir.join("https-acme");
    let origins = cx.zones.origins();
    // Every name has a place (checked at start, `StartError::HttpsAcmeName`).
    for name in &acme.names {
        if let Some(ChallengeAt {
            cname_from: Some(from),
            owner,
            ..
        }) = challenge_at(&origins, name)
        {
            tracing::info!(
                "HTTPS certificate for {name}: the real zone needs {from} CNAME {owner}"
            );
        }
    }
    let retry_first = Duration::from_secs(60).min(acme.check_interval);
    let mut retry = retry_first;
    loop {
        let now = cx.clock.now() as i64;
        let due = match store.info() {
            None => true,
            Some(i) => now >= renew_at(i.not_before, i.not_after, acme.renew_before),
        };
        let wait = if due {
            let limit = ORDER_LIMIT + acme.propagation_timeout;
            let outcome = match tokio::time::timeout(limit, order(&cx, &acme, &dir)).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "the order did not finish within {limit:?} (the CA does not answer?)"
                )),
            };
            match outcome {
                Ok(loaded) => {
                    tracing::info!(
                        names = ?loaded.info.names,
                        not_after = loaded.info.not_after,
                        "HTTPS certificate issued"
                    );
                    let i = &loaded.info;
                    if renew_at(i.not_before, i.not_after, acme.renew_before) <= now {
                        tracing::warn!(
                            lifetime_s = i.not_after - i.not_before,
                            "[https-acme] renew-before is longer than the certificate's lifetime: it is renewed at every check (check-interval); lower renew-before"
                        );
                    }
                    store.set(loaded);
                    retry = retry_first;
                    acme.check_interval
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?retry, "HTTPS certificate order failed; the certificate in force (if any) stays");
                    store.failed(e);
                    let w = retry;
                    retry = (retry * 2).min(acme.check_interval);
                    w
                }
            }
        } else {
            acme.check_interval
        };
        tokio::time::sleep(wait).await;
    }
}

/// One whole order: account, challenges published and propagated, CSR,
/// certificate stored. The challenges are removed again however it ends.
async fn order(cx: &Arc<Context>, acme: &HttpsAcme, dir: &Path) -> Result<Loaded, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (account, account_path) = account(acme, dir).await?;
    let identifiers: Vec<Identifier> = acme
        .names
        .iter()
        .map(|n| Identifier::Dns(n.to_ascii().trim_end_matches('.').to_string()))
        .collect();
    let mut order = match account.new_order(&NewOrder::new(&identifiers)).await {
        Ok(o) => o,
        Err(e) => {
            // A deactivated account, or a CA that forgot it (pebble keeps
            // them in memory): set it aside, the next attempt makes a new one.
            if let instant_acme::Error::Api(p) = &e
                && p.r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":accountDoesNotExist"))
            {
                let stale = account_path.with_extension("json.invalid");
                let _ = std::fs::rename(&account_path, &stale);
                tracing::warn!(moved_to = %stale.display(), "the CA does not know the stored ACME account; a new one is made at the next attempt");
            }
            return Err(format!("new order at {}: {e}", acme.directory));
        }
    };
    // The values to publish, per pending authorization.
    let mut values: Vec<(ChallengeAt, String)> = Vec::new();
    let origins = cx.zones.origins();
    {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.map_err(|e| format!("authorization: {e}"))?;
            if a.status == AuthorizationStatus::Valid {
                continue;
            }
            let Identifier::Dns(domain) = a.identifier().identifier.clone() else {
                return Err("the CA asks to authorize something other than a DNS name".into());
            };
            let ch = a
                .challenge(ChallengeType::Dns01)
                .ok_or_else(|| format!("the CA offers no dns-01 challenge for {domain}"))?;
            let value = ch.key_authorization().dns_value();
            let name = Name::from_ascii(format!("{domain}."))
                .map_err(|e| format!("the CA's identifier {domain:?}: {e}"))?;
            // Only what was asked for: the internal machine writes nowhere
            // else, whatever the CA says.
            if !acme.names.contains(&name) {
                return Err(format!(
                    "the CA asks to authorize {domain}, which is not in [https-acme] names"
                ));
            }
            let at = challenge_at(&origins, &name)
                .ok_or_else(|| format!("{domain}: no served zone holds its challenge"))?;
            values.push((at, value));
        }
    }
    let published = publish(cx, &values).await;
    let result = async {
        let serials = published?;
        wait_everywhere(&serials, acme.propagation_timeout).await;
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.map_err(|e| format!("authorization: {e}"))?;
            if a.status != AuthorizationStatus::Pending {
                continue;
            }
            if let Some(mut ch) = a.challenge(ChallengeType::Dns01) {
                ch.set_ready()
                    .await
                    .map_err(|e| format!("challenge ready: {e}"))?;
            }
        }
        let retries = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .timeout(Duration::from_secs(120));
        let status = order
            .poll_ready(&retries)
            .await
            .map_err(|e| format!("the CA did not validate: {e}"))?;
        if status != OrderStatus::Ready {
            return Err(format!(
                "order {status:?}, not ready (the CA did not validate the challenges)"
            ));
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain_pem = order
            .poll_certificate(&retries)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        Ok((key_pem, chain_pem))
    }
    .await;
    withdraw(cx, &values).await;
    let (key_pem, chain_pem) = result?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    let loaded = parse_pair(
        chain_pem.as_bytes(),
        key_pem.as_bytes(),
        &cert_path,
        &key_path,
        "acme",
    )
    .map_err(|e| format!("the CA's certificate: {e}"))?;
    write_atomic_mode(&key_path, &key_pem, 0o600)
        .and_then(|()| write_atomic_mode(&cert_path, &chain_pem, 0o644))
        .and_then(|()| write_atomic_mode(&dir.join(ISSUER_FILE), &acme.directory, 0o644))
        .map_err(|e| format!("storing the certificate in {}: {e}", dir.display()))?;
    Ok(loaded)
}

/// The ACME account for this directory: stored credentials, or a new
/// account (stored before use); and the file it is stored in.
async fn account(acme: &HttpsAcme, dir: &Path) -> Result<(Account, PathBuf), String> {
    let builder = || match &acme.ca_root {
        Some(root) => {
            Account::builder_with_root(root).map_err(|e| format!("ca-root {}: {e}", root.display()))
        }
        None => Account::builder().map_err(|e| format!("ACME client: {e}")),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, acme.directory.as_bytes());
    let tag: String = digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path: PathBuf = dir.join(format!("account-{tag}.json"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        let creds: AccountCredentials = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not ACME account credentials: {e}", path.display()))?;
        let account = builder()?
            .from_credentials(creds)
            .await
            .map_err(|e| format!("ACME account from {}: {e}", path.display()))?;
        return Ok((account, path));
    }
    let contact: Vec<&str> = acme.contact.iter().map(String::as_str).collect();
    let (account, creds) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            acme.directory.clone(),
            None,
        )
        .await
        .map_err(|e| format!("new ACME account at {}: {e}", acme.directory))?;
    let text = serde_json::to_string(&creds).map_err(|e| e.to_string())?;
    write_atomic_mode(&path, &text, 0o600).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((account, path))
}

/// Add each challenge value; the serial each zone reached.
async fn publish(
    cx: &Arc<Context>,
    values: &[(ChallengeAt, String)],
) -> Result<Vec<(Arc<ZoneHandle>, u32)>, String> {
    let mut serials = Vec::new();
    for (at, value) in values {
        if let Some(serial) = change(cx, at, value, true).await? {
            serials.push(serial);
        }
    }
    Ok(serials)
}

/// Remove each challenge value, all of them even when one fails.
async fn withdraw(cx: &Arc<Context>, values: &[(ChallengeAt, String)]) {
    for (at, value) in values {
        if let Err(e) = change(cx, at, value, false).await {
            tracing::warn!(error = %e, "HTTPS challenge record not removed (the challenge expiry will)");
        }
    }
}

/// Add or remove one TXT value as the internal machine.
async fn change(
    cx: &Arc<Context>,
    at: &ChallengeAt,
    value: &str,
    add: bool,
) -> Result<Option<(Arc<ZoneHandle>, u32)>, String> {
    let zone = cx
        .zone_exact(&at.zone)
        .cloned()
        .ok_or_else(|| format!("zone {} is not served", at.zone))?;
    let machine = Arc::new(Machine::internal(
        MACHINE,
        &at.zone,
        std::slice::from_ref(&at.owner),
        RecordType::TXT,
    ));
    let mut record = Record::from_rdata(
        at.owner.clone(),
        zone.snapshot().spec.ttl.challenge,
        RData::TXT(TXT::new(vec![value.to_string()])),
    );
    if !add {
        record.dns_class = DNSClass::NONE;
        record.ttl = 0;
    }
    let draft = UpdateDraft {
        prereqs: Vec::new(),
        updates: vec![record],
        key: machine.key.clone(),
        machine,
        source: IpAddr::V4(Ipv4Addr::LOCALHOST),
        accepted: None,
    };
    match zone.clone().update(draft).await {
        Ok(w) => Ok(w.serial.map(|s| (zone, s))),
        Err(WriteError::Refused(r)) => Err(format!("{}: refused: {}", at.owner, r.reason)),
        Err(e) => Err(format!("{}: {e}", at.owner)),
    }
}

/// Wait until every secondary of each zone serves its serial, at most
/// `limit` (then go on: the CA may still find it, and says if not).
async fn wait_everywhere(serials: &[(Arc<ZoneHandle>, u32)], limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    for (zone, serial) in serials {
        loop {
            let p = &zone.propagation;
            let low = Propagation::lowest_served(p.current(), &p.statuses());
            if low.is_some_and(|l| crate::serial::at_least(l, *serial)) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(zone = %zone.origin, serial, "not every secondary serves the HTTPS challenge yet; telling the CA anyway");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn challenge_owner_direct_or_delegated_twin() {
        let zones = [n("_acme.example.org."), n("example.net.")];
        assert_eq!(
            challenge_at(&zones, &n("api._acme.example.org.")),
            Some(ChallengeAt {
                zone: n("_acme.example.org."),
                owner: n("_acme-challenge.api._acme.example.org."),
                cname_from: None,
            })
        );
        assert_eq!(
            challenge_at(&zones, &n("dns.example.org.")),
            Some(ChallengeAt {
                zone: n("_acme.example.org."),
                owner: n("_acme-challenge.dns._acme.example.org."),
                cname_from: Some(n("_acme-challenge.dns.example.org.")),
            })
        );
        assert_eq!(
            challenge_at(&zones, &n("a.b.example.org.")).unwrap().owner,
            n("_acme-challenge.a.b._acme.example.org.")
        );
        assert_eq!(challenge_at(&zones, &n("example.com.")), None);
        assert_eq!(challenge_at(&zones, &n("example.org.")), None);
    }

    #[test]
    fn renewal_is_a_third_of_the_lifetime_at_most_30_days() {
        let day = 86_400;
        // 90 days: renew 30 days before.
        assert_eq!(renew_at(0, 90 * day, None), 60 * day);
        // 6 days (short-lived): renew 2 days before.
        assert_eq!(renew_at(0, 6 * day, None), 4 * day);
        // 5 years: at most 30 days.
        assert_eq!(renew_at(0, 1825 * day, None), 1795 * day);
        assert_eq!(
            renew_at(0, 90 * day, Some(Duration::from_secs(10 * day as u64))),
            80 * day
        );
    }
}

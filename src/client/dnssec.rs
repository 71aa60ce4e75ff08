//! `zonewarden dnssec status [ZONE]` and `zonewarden dnssec roll ZONE`:
//! asked of the running server over its HTTP API (`http` in the
//! configuration; from this machine, so no token is needed unless
//! `http-require-token` is set, which `roll` does not honour: it is
//! loopback-only).

use std::time::Duration;

use crate::config::Config;
use crate::http::dnssec_api::{DnssecStatusView, RollView};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Exit status of `dnssec status`: nothing to do, an admin must act,
/// the server could not be asked.
pub enum Verdict {
    Fine,
    ActionNeeded,
    Failed,
}

fn http_addr(config: &Config) -> Result<std::net::SocketAddr, String> {
    let addr = config.http.ok_or_else(|| {
        "the server has no HTTP listener (`http = \"127.0.0.1:8053\"` in the configuration)"
            .to_string()
    })?;
    // A wildcard listener is reached over loopback.
    Ok(match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => ([127, 0, 0, 1], addr.port()).into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            (std::net::Ipv6Addr::LOCALHOST, addr.port()).into()
        }
        _ => addr,
    })
}

fn zone_path(zone: &str) -> String {
    let z = zone.trim_end_matches('.');
    format!("/api/v1/zones/{z}./dnssec")
}

fn time(t: u64) -> String {
    crate::clock::utc(t as i64)
}

/// One zone's keys in words.
pub fn render(v: &DnssecStatusView, now: u64) -> String {
    let mut out = format!("{} (parent {})\n", v.zone, v.parent_zone);
    for k in &v.keys {
        out.push_str(&format!(
            "  key {} {} {}: {} since {}\n",
            k.tag,
            k.algorithm,
            k.role,
            k.state,
            time(k.since)
        ));
        if k.state == "removed" {
            continue;
        }
        if let Some(ds) = &k.ds {
            out.push_str(&format!("    DS       {ds}\n"));
        }
        if !k.next.is_empty() {
            let when = match k.next_at {
                Some(at) if at > now => format!(" at {} (in {} s)", time(at), at - now),
                Some(_) => " when what it waits for is there".to_string(),
                None => String::new(),
            };
            out.push_str(&format!("    next     {}{when}\n", k.next));
        }
        if !k.waiting_for.is_empty() {
            out.push_str(&format!("    waits    for {}\n", k.waiting_for));
        }
        if let Some(a) = &k.action {
            out.push_str(&format!("    ACTION   {a}\n"));
        }
        if let Some(n) = &k.note {
            out.push_str(&format!("    note     {n}\n"));
        }
    }
    if let Some(at) = v.parent_checked_at {
        out.push_str(&format!("  parent nameservers, asked {}:\n", time(at)));
        for s in &v.parent {
            match &s.error {
                Some(e) => out.push_str(&format!("    {}: {e}\n", s.server)),
                None => out.push_str(&format!(
                    "    {}: DS of key {} (TTL {} s)\n",
                    s.server,
                    if s.ds_tags.is_empty() {
                        "none".to_string()
                    } else {
                        s.ds_tags
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    s.ttl.unwrap_or(0)
                )),
            }
        }
    }
    if let Some(e) = v.signature_expiry {
        out.push_str(&format!("  earliest signature expiry {}\n", time(e)));
    }
    out
}

/// `zonewarden dnssec status [ZONE] [--json]`: the text (or JSON) and the verdict.
pub async fn status(
    config: &Config,
    zone: Option<&str>,
    json: bool,
    now: u64,
) -> (String, Verdict) {
    let addr = match http_addr(config) {
        Ok(a) => a,
        Err(e) => return (e, Verdict::Failed),
    };
    let zones: Vec<String> = match zone {
        Some(z) => vec![z.to_string()],
        None => match crate::zonefile::load_dir(&config.zones_dir) {
            Ok(specs) => specs
                .iter()
                .filter(|s| s.dnssec.is_some())
                .map(|s| s.origin.to_string())
                .collect(),
            Err(e) => return (e.to_string(), Verdict::Failed),
        },
    };
    let mut text = String::new();
    let mut views = Vec::new();
    let mut verdict = Verdict::Fine;
    for z in zones {
        match crate::client::api::plain(addr, "GET", &zone_path(&z), TIMEOUT).await {
            Ok((200, body)) => match serde_json::from_str::<DnssecStatusView>(&body) {
                Ok(v) => {
                    if v.action_needed && !matches!(verdict, Verdict::Failed) {
                        verdict = Verdict::ActionNeeded;
                    }
                    text.push_str(&render(&v, now));
                    views.push(v);
                }
                Err(e) => {
                    text.push_str(&format!("{z}: unreadable answer from {addr}: {e}\n"));
                    verdict = Verdict::Failed;
                }
            },
            Ok((code, body)) => {
                text.push_str(&format!("{z}: HTTP {code} from {addr}: {}\n", body.trim()));
                verdict = Verdict::Failed;
            }
            Err(e) => {
                text.push_str(&format!("{z}: cannot ask the server at {addr}: {e}\n"));
                verdict = Verdict::Failed;
            }
        }
    }
    if json {
        text = serde_json::to_string_pretty(&views).unwrap_or_default();
    }
    (text, verdict)
}

/// One zone's status view, as the server gives it.
pub async fn view(config: &Config, zone: &str) -> Result<DnssecStatusView, String> {
    let addr = http_addr(config)?;
    match crate::client::api::plain(addr, "GET", &zone_path(zone), TIMEOUT).await {
        Ok((200, body)) => {
            serde_json::from_str(&body).map_err(|e| format!("unreadable answer from {addr}: {e}"))
        }
        Ok((code, body)) => Err(format!("HTTP {code} from {addr}: {}", body.trim())),
        Err(e) => Err(format!("cannot ask the server at {addr}: {e}")),
    }
}

/// `zonewarden dnssec status ZONE --svg FILE`: the keys' timeline drawn
/// into FILE (`timeline`).
pub async fn write_svg(
    config: &Config,
    zone: &str,
    file: &std::path::Path,
    now: u64,
) -> Result<String, String> {
    let v = view(config, zone).await?;
    std::fs::write(file, crate::client::timeline::svg(&v, now))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(format!(
        "{}: the timeline of {} keys of {}\n",
        file.display(),
        v.keys.len(),
        v.zone
    ))
}

/// `zonewarden dnssec roll ZONE`.
pub async fn roll(config: &Config, zone: &str) -> Result<String, String> {
    let addr = http_addr(config)?;
    let path = format!("{}/roll", zone_path(zone));
    match crate::client::api::plain(addr, "POST", &path, TIMEOUT).await {
        Ok((202, body)) | Ok((409, body)) => {
            let v: RollView =
                serde_json::from_str(&body).map_err(|e| format!("unreadable answer: {e}"))?;
            if v.started {
                Ok(v.message)
            } else {
                Err(v.message)
            }
        }
        Ok((code, body)) => Err(format!("HTTP {code} from {addr}: {}", body.trim())),
        Err(e) => Err(format!("cannot ask the server at {addr}: {e}")),
    }
}

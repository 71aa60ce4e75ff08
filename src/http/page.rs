//! `GET /`: the status page for admins, server-rendered HTML with a little
//! inline CSS, no script, refreshed by the browser every 30 s.
//!
//! It shows the same views as the JSON API (`api`): zones with serial and
//! signature horizon, every secondary with its lag, every machine with its
//! last change and last refusal, the last ACL reload with its error text,
//! and the latest audit rows. Every value is HTML-escaped ([`escape`]):
//! names, ACL error text and audit details come from files and clients.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Context;
use super::State as HttpState;
use super::api::{self, AuditQuery, MachinesView, PropagationView, ZoneSummary};

/// Audit rows shown on the page.
const AUDIT_ROWS: usize = 30;

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-22 18:53:06 UTC`
pub fn utc(t: u64) -> String {
    crate::clock::utc(i64::try_from(t).unwrap_or(i64::MAX))
}

/// `3d 4h`, `5m 2s`, `12s`; negative as `-...`.
pub fn span(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (d, h, m, r) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let text = if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {r}s")
    } else {
        format!("{r}s")
    };
    format!("{sign}{text}")
}

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f4f6f9; }
header { background: #1f3a5f; color: #fff; padding: 12px 24px; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 2px 0 0; color: #c9d6e8; }
main { padding: 8px 24px 24px; }
h2 { font-size: 16px; margin: 20px 0 6px; }
table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e3e7ee; vertical-align: top; }
th { background: #e8edf4; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; }
.ok { color: #17663a; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
.warn { color: #8a5a00; font-weight: 600; }
.muted { color: #6b7585; }
pre.err { background: #fdecea; color: #7a1712; border: 1px solid #f5c2bd; padding: 8px; white-space: pre-wrap; margin: 0; }
.box { background: #fff; padding: 8px 10px; box-shadow: 0 1px 2px #0002; }
";

fn cell(out: &mut String, text: &str) {
    let _ = write!(out, "<td>{}</td>", escape(text));
}

fn cell_class(out: &mut String, class: &str, text: &str) {
    let _ = write!(out, "<td class=\"{class}\">{}</td>", escape(text));
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "–".to_string(), |v| v.to_string())
}

fn zones_table(out: &mut String, zones: &[ZoneSummary]) {
    out.push_str("<h2>Zones</h2><table id=\"zones\"><tr><th>zone</th><th>serial</th><th>records</th><th>DNSSEC</th><th>signature horizon</th><th>secondaries in sync</th></tr>");
    for z in zones {
        out.push_str("<tr>");
        cell(out, &z.zone);
        cell_class(out, "num", &z.serial.to_string());
        cell_class(out, "num", &z.records.to_string());
        let d = &z.dnssec;
        if d.enabled {
            cell(
                out,
                &format!(
                    "{} key tag {}",
                    d.algorithm.as_deref().unwrap_or(""),
                    opt(d.key_tag)
                ),
            );
            match (d.signature_horizon_seconds, d.signature_expiry) {
                (Some(h), Some(e)) => {
                    let class = if h <= 0 {
                        "bad"
                    } else if d
                        .refresh_before_seconds
                        .is_some_and(|r| h < i64::from(r) / 2)
                    {
                        "warn"
                    } else {
                        "ok"
                    };
                    cell_class(
                        out,
                        class,
                        &format!("{} (earliest expiry {})", span(h), utc(e)),
                    );
                }
                _ => cell_class(out, "bad", "no signatures"),
            }
        } else {
            cell_class(out, "muted", "off");
            cell_class(out, "muted", "–");
        }
        let class = if z.secondaries_in_sync == z.secondaries {
            "ok"
        } else {
            "warn"
        };
        cell_class(
            out,
            class,
            &format!("{} / {}", z.secondaries_in_sync, z.secondaries),
        );
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn secondaries_table(out: &mut String, props: &[PropagationView], now: u64) {
    out.push_str("<h2>Nameservers</h2><table id=\"secondaries\"><tr><th>zone</th><th>nameserver</th><th>address</th><th>serial</th><th>lag</th><th>behind</th><th>last NOTIFY acknowledged</th><th>last checked</th><th>last error</th></tr>");
    for p in props {
        for n in &p.nameservers {
            out.push_str("<tr>");
            cell(out, &p.zone);
            cell(out, &format!("{} ({})", n.name, n.role));
            cell(out, &n.address);
            cell_class(out, "num", &opt(n.serial));
            let (class, lag) = match n.lag {
                None => ("bad", "unknown".to_string()),
                Some(0) => ("ok", "in sync".to_string()),
                Some(l) => ("warn", format!("{l} change(s)")),
            };
            cell_class(out, class, &lag);
            cell_class(
                out,
                "num",
                &n.seconds_behind.map_or("–".into(), |s| span(s as i64)),
            );
            cell_class(out, "num", &opt(n.notified));
            cell(
                out,
                &n.checked_at.map_or("–".into(), |t| {
                    format!("{} ago", span(now as i64 - t as i64))
                }),
            );
            match &n.last_error {
                Some(e) => cell_class(out, "bad", e),
                None => cell_class(out, "muted", "–"),
            }
            out.push_str("</tr>");
        }
    }
    out.push_str("</table>");
}

fn machines_table(out: &mut String, m: &MachinesView) {
    out.push_str("<h2>ACL reload</h2><div class=\"box\" id=\"reload\">");
    match (&m.reload.last_error, m.reload.last_error_time) {
        (Some(err), t) => {
            let _ = write!(
                out,
                "<p class=\"bad\">The last reload failed{}; the previous ACLs and keys stay in force.</p><pre class=\"err\">{}</pre>",
                t.map_or(String::new(), |t| format!(" at {}", utc(t))),
                escape(err)
            );
        }
        (None, _) => {
            let _ = write!(
                out,
                "<p class=\"ok\">ACLs and keys loaded{}.</p>",
                m.reload
                    .last_ok
                    .map_or(String::new(), |t| format!(" at {}", utc(t)))
            );
        }
    }
    out.push_str("</div>");
    out.push_str("<h2>Machines</h2><table id=\"machines\"><tr><th>machine</th><th>key</th><th>role</th><th>grants</th><th>networks</th><th>last change</th><th>last refusal</th></tr>");
    for mv in &m.machines {
        out.push_str("<tr>");
        cell(out, &mv.name);
        cell(out, &mv.key);
        cell(out, &mv.role);
        cell(out, &mv.grants.join("; "));
        cell(
            out,
            &if mv.networks.is_empty() {
                "any".to_string()
            } else {
                mv.networks.join(" ")
            },
        );
        match &mv.last_change {
            Some(c) => cell(
                out,
                &format!("{} {} {}: {}", utc(c.time), c.zone, c.action, c.detail),
            ),
            None => cell_class(out, "muted", "–"),
        }
        match &mv.last_refusal {
            Some(r) => cell_class(
                out,
                "bad",
                &format!(
                    "{} {} ({}) from {}: {}{}",
                    utc(r.time),
                    r.rcode,
                    r.reason,
                    r.source,
                    r.detail,
                    match (&r.owner, &r.rtype) {
                        (Some(o), Some(t)) => format!(" [{o} {t}]"),
                        _ => String::new(),
                    }
                ),
            ),
            None => cell_class(out, "muted", "–"),
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn audit_table(out: &mut String, app: &Context) {
    let q = AuditQuery {
        limit: Some(AUDIT_ROWS.to_string()),
        ..Default::default()
    };
    out.push_str("<h2>Recent changes</h2><table id=\"audit\"><tr><th>time</th><th>zone</th><th>machine / key</th><th>source</th><th>action</th><th>change</th></tr>");
    if let Ok(view) = api::audit(app, &q) {
        for e in view.entries {
            out.push_str("<tr>");
            cell(out, &utc(e.time));
            cell(out, &e.zone);
            cell(
                out,
                &match (&e.machine, &e.key) {
                    (Some(m), _) => m.clone(),
                    (None, Some(k)) => k.clone(),
                    (None, None) => "server".into(),
                },
            );
            cell(out, e.source.as_deref().unwrap_or("–"));
            cell(out, &e.action);
            cell(out, &e.detail);
            out.push_str("</tr>");
        }
    }
    out.push_str("</table>");
}

/// The whole page. Blocking (reads the audit table).
/// Every signed zone's keys: state, next step, what it waits for, and
/// what an admin must do (as `zonewarden dnssec status`).
fn keys_table(out: &mut String, app: &Context, now: u64) {
    let views: Vec<_> = app
        .zones()
        .iter()
        .filter_map(|z| super::dnssec_api::status_view(z, now))
        .collect();
    if views.is_empty() {
        return;
    }
    out.push_str("<h2>DNSSEC keys</h2><table id=\"keys\"><tr><th>zone</th><th>key</th><th>state</th><th>since</th><th>next step</th><th>waiting for</th><th>to do</th></tr>");
    for v in &views {
        for k in v.keys.iter().filter(|k| k.state != "removed") {
            out.push_str("<tr>");
            cell(out, &v.zone);
            cell(out, &format!("{} {} ({})", k.tag, k.algorithm, k.role));
            cell(out, &k.state);
            cell(out, &utc(k.since));
            let next = match k.next_at {
                Some(at) if at > now => format!("{} in {}", k.next, span((at - now) as i64)),
                _ => k.next.clone(),
            };
            cell(out, &next);
            cell(out, &k.waiting_for);
            match (&k.action, &k.note) {
                (Some(a), _) => cell_class(out, "bad", a),
                (None, Some(n)) => cell_class(out, "muted", n),
                (None, None) => cell_class(out, "ok", "nothing"),
            }
            out.push_str("</tr>");
        }
    }
    out.push_str("</table>");
}

/// Every zone's dns-persist-01 records: CA, account, persistUntil, and a
/// warning class when it lapses within 30 days, has lapsed, or is not a
/// valid value (`persist_view`).
fn persist_table(out: &mut String, app: &Context, now: u64) {
    let rows: Vec<(String, super::persist_view::PersistRecordView)> = app
        .zones()
        .iter()
        .flat_map(|z| {
            let zone = z.origin.to_string();
            super::persist_view::persist_records(&z.snapshot(), now)
                .into_iter()
                .map(move |r| (zone.clone(), r))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("<h2>dns-persist-01 records</h2><table id=\"persist\"><tr><th>zone</th><th>name</th><th>CA</th><th>account</th><th>policy</th><th>persistUntil</th><th>status</th></tr>");
    for (zone, r) in &rows {
        out.push_str("<tr>");
        cell(out, zone);
        cell(out, &r.name);
        cell(out, &opt(r.issuer.as_deref()));
        cell(out, &opt(r.account_uri.as_deref()));
        cell(out, if r.wildcard { "wildcard" } else { "–" });
        let until = match (r.persist_until, r.seconds_left) {
            (Some(u), Some(left)) if left > 0 => format!("{} (in {})", utc(u), span(left)),
            (Some(u), _) => format!("{} (past)", utc(u)),
            _ => "none".to_string(),
        };
        cell(out, &until);
        match r.status {
            "ok" => cell_class(out, "ok", "ok"),
            "lapsing" => cell_class(out, "warn", "lapses within 30 days"),
            "lapsed" => cell_class(out, "bad", "lapsed: the CA no longer accepts it"),
            _ => cell_class(out, "bad", r.problem.as_deref().unwrap_or("invalid")),
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// Issue 14: the HTTPS listener's certificate, when `https` is set.
fn https_box(out: &mut String, app: &Context, now: u64) {
    let Some(store) = &app.https_cert else {
        return;
    };
    out.push_str("<h2>HTTPS certificate</h2><div class=\"box\" id=\"https\">");
    match store.info() {
        Some(i) => {
            let left = i.not_after - now as i64;
            let class = if left <= 0 {
                "bad"
            } else if left < 14 * 86_400 {
                "warn"
            } else {
                "ok"
            };
            let _ = write!(
                out,
                "<p class=\"{class}\">{} · from {} · expires {} ({})</p>",
                escape(&i.names.join(", ")),
                if i.source == "acme" {
                    "the server's own ACME order"
                } else {
                    "the certificate files"
                },
                escape(&utc(i.not_after.max(0) as u64)),
                if left > 0 {
                    format!("in {}", span(left))
                } else {
                    "expired".into()
                },
            );
        }
        None => out.push_str("<p class=\"bad\">no certificate yet: HTTPS handshakes fail</p>"),
    }
    if let Some(e) = store.last_error() {
        let _ = write!(
            out,
            "<p class=\"bad\">last attempt failed (the certificate above stays): {}</p>",
            escape(&e)
        );
    }
    out.push_str("</div>");
}

pub fn render(app: &Context) -> String {
    let now = app.clock.now();
    let zones: Vec<ZoneSummary> = app
        .zones()
        .iter()
        .map(|z| api::zone_summary(app, z))
        .collect();
    let props: Vec<PropagationView> = app
        .zones()
        .iter()
        .map(|z| api::propagation(app, z))
        .collect();
    let machines = api::machines(app);
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"30\"><title>zonewarden status</title><style>{STYLE}</style></head><body><header><h1>zonewarden</h1><p>{} · version {}</p></header><main>",
        escape(&utc(now)),
        env!("CARGO_PKG_VERSION")
    );
    zones_table(&mut out, &zones);
    keys_table(&mut out, app, now);
    persist_table(&mut out, app, now);
    https_box(&mut out, app, now);
    secondaries_table(&mut out, &props, now);
    machines_table(&mut out, &machines);
    audit_table(&mut out, app);
    out.push_str("</main></body></html>\n");
    out
}

pub(crate) async fn status_page(State(s): State<HttpState>) -> Response {
    let app = s.app.clone();
    match tokio::task::spawn_blocking(move || render(&app)).await {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(_) => super::ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "page rendering failed",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<b a=\"x\">&'</b>"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(5), "5s");
        assert_eq!(span(65), "1m 5s");
        assert_eq!(span(3 * 3600 + 120), "3h 2m");
        assert_eq!(span(13 * 86_400 + 7200), "13d 2h");
        assert_eq!(span(-30), "-30s");
    }
}

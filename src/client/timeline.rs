//! A picture of a zone's key rollovers (`zonewarden dnssec status ZONE
//! --svg FILE`): one row per key, a bar coloured by state from each
//! recorded time to the next (RFC 7583's timeline, drawn from the times the
//! server recorded), and a mark where every parent nameserver was first
//! seen serving the key's DS. Plain SVG, no script, no external fonts.

use std::fmt::Write as _;

use crate::http::dnssec_api::{DnssecStatusView, KeyView};

/// The states in the order a key goes through them, with their colours.
const STAGES: [(&str, &str); 7] = [
    ("signing", "#c9b3e6"),
    ("published", "#a6cee3"),
    ("ready", "#fdbf6f"),
    ("active", "#33a02c"),
    ("withdrawn", "#fb9a99"),
    ("retired", "#bdbdbd"),
    ("removed", "#ffffff"),
];

fn stamps(k: &KeyView) -> [Option<u64>; 7] {
    [
        k.signing,
        k.published,
        k.ready,
        k.active,
        k.withdrawn,
        k.retired,
        k.removed,
    ]
}

/// The SVG. `now` ends the bars of keys still in a state; the time axis
/// runs from the earliest time shown (for a key that was active long
/// before, from a little before the first later key was made).
pub fn svg(v: &DnssecStatusView, now: u64) -> String {
    let keys: Vec<&KeyView> = v.keys.iter().collect();
    let first_new = keys.iter().skip(1).map(|k| k.created).min();
    let end = keys
        .iter()
        .flat_map(|k| stamps(k).into_iter().flatten().chain(k.ds_seen))
        .chain([now])
        .max()
        .unwrap_or(now);
    let start = match first_new {
        Some(t) => t.saturating_sub((end.saturating_sub(t) / 10).max(1)),
        None => keys.iter().map(|k| k.created).min().unwrap_or(now),
    };
    let span = end.saturating_sub(start).max(1) as f64;
    let (left, width, row, top) = (190.0, 700.0, 34.0, 40.0);
    let x = |t: u64| left + (t.max(start) - start) as f64 / span * width;
    let height = top + row * keys.len() as f64 + 70.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">
<title>DNSSEC keys of {zone}</title>
<text x="10" y="20" font-size="14">DNSSEC keys of {zone} (seconds from {start_s})</text>
"#,
        w = left + width + 20.0,
        zone = v.zone,
        start_s = crate::clock::utc(start as i64),
    );
    for (i, k) in keys.iter().enumerate() {
        let y = top + row * i as f64;
        let _ = writeln!(
            out,
            r#"<text x="10" y="{ty}">key {} ({})</text>"#,
            k.tag,
            k.algorithm,
            ty = y + 17.0
        );
        let st = stamps(k);
        for (j, (name, colour)) in STAGES.iter().enumerate() {
            let Some(from) = st[j] else { continue };
            if *name == "removed" {
                continue;
            }
            let to = st[j + 1..].iter().flatten().min().copied().unwrap_or(end);
            if to <= start {
                continue; // over before the picture starts
            }
            let (x0, x1) = (x(from), x(to));
            let _ = writeln!(
                out,
                r##"<rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="22" fill="{colour}" stroke="#555"><title>key {tag} {name}: {a} to {b} s</title></rect>"##,
                w = (x1 - x0).max(1.0),
                tag = k.tag,
                a = from.saturating_sub(start),
                b = to.saturating_sub(start),
            );
            if x1 - x0 > 48.0 {
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}">{name}</text>"#,
                    x0 + 4.0,
                    y + 15.0
                );
            }
        }
        if let Some(seen) = k.ds_seen.filter(|s| *s >= start) {
            let xs = x(seen);
            let _ = writeln!(
                out,
                r##"<path d="M{xs:.1},{a:.1} l-5,-8 h10 z" fill="#e31a1c"><title>DS of key {tag} at every parent nameserver: {t} s</title></path>"##,
                a = y,
                tag = k.tag,
                t = seen - start,
            );
        }
    }
    // The axis: a tick every 1, 2, 5, 10 ... seconds, about ten of them.
    let ay = top + row * keys.len() as f64 + 10.0;
    let _ = writeln!(
        out,
        r##"<line x1="{left}" y1="{ay}" x2="{r}" y2="{ay}" stroke="#000"/>"##,
        r = left + width
    );
    let raw = span / 10.0;
    let step = (0..12u32)
        .flat_map(|e| [1u64, 2, 5].map(|m| m * 10u64.pow(e)))
        .find(|s| *s as f64 >= raw)
        .unwrap_or(1);
    let mut t = 0;
    while t as f64 <= span {
        let tx = x(start + t);
        let _ = writeln!(
            out,
            r##"<line x1="{tx:.1}" y1="{ay}" x2="{tx:.1}" y2="{b}" stroke="#000"/><text x="{tx:.1}" y="{c}" text-anchor="middle">{t}</text>"##,
            b = ay + 5.0,
            c = ay + 18.0
        );
        t += step;
    }
    // The legend.
    let ly = ay + 40.0;
    let mut lx = left;
    for (name, colour) in STAGES.iter().take(6) {
        let _ = writeln!(
            out,
            r##"<rect x="{lx}" y="{a}" width="12" height="12" fill="{colour}" stroke="#555"/><text x="{b}" y="{ly}">{name}</text>"##,
            a = ly - 10.0,
            b = lx + 16.0
        );
        lx += 95.0;
    }
    let _ = writeln!(
        out,
        r##"<path d="M{lx},{a} l-5,-8 h10 z" fill="#e31a1c"/><text x="{b}" y="{ly}">DS at the parent</text>"##,
        lx = lx + 5.0,
        a = ly + 2.0,
        b = lx + 16.0
    );
    out.push_str("</svg>\n");
    out
}

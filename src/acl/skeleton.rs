//! The ACL file `zonewarden machine add` writes: a commented starting
//! point in the format `file.rs` reads, which the caller validates with
//! [`Policy::parse_file`](super::Policy::parse_file) before writing it.

use hickory_proto::rr::Name;

/// The ACL file `machine add` writes: TXT at `_acme-challenge.<host>` and
/// TLSA at `_*._tcp.<host>` in `zone`, where `host` defaults to
/// `{machine}`. Values are quoted as TOML strings; validate the result with
/// [`Policy::parse_file`](super::Policy::parse_file) before writing it.
pub fn skeleton(machine: &str, key_name: &str, zone: &Name, host: Option<&str>) -> String {
    let host = host.unwrap_or("{machine}");
    let mut zone_text = zone.to_ascii();
    if !zone_text.ends_with('.') {
        zone_text.push('.');
    }
    format!(
        "# ACL for machine {machine}, written by `zonewarden machine add`.\n\
         # Reference: names are relative to the zone unless they end in \".\";\n\
         # {{machine}} is the file name without .toml; \"*\" is one label, \"_*\" one\n\
         # label starting with \"_\"; `subtree = true` adds every name below.\n\
         key = {key}\n\
         role = \"machine\"\n\
         zones = [{zone}]\n\
         # networks = [\"192.0.2.10\", \"2001:db8::/64\"]   # default: any source address\n\
         \n\
         # ACME DNS-01: TXT at _acme-challenge.<host>\n\
         [[grant]]\n\
         name = {challenge}\n\
         types = [\"TXT\"]\n\
         # max-rrset = 2   # optional cap on the RRset size after an update\n\
         \n\
         # DANE: TLSA at _<port>._<proto>.<host>, e.g. _25._tcp, _443._tcp\n\
         [[grant]]\n\
         name = {tlsa}\n\
         types = [\"TLSA\"]\n",
        machine = toml_quote(machine),
        key = toml_quote(key_name),
        zone = toml_quote(&zone_text),
        challenge = toml_quote(&format!("_acme-challenge.{host}")),
        tlsa = toml_quote(&format!("_*._tcp.{host}")),
    )
}

/// The grant `machine add --persist` appends to [`skeleton`]: TXT at
/// `_validation-persist.<host>`, the dns-persist-01 record
/// (draft-ietf-acme-dns-persist), which the challenge expiry never removes.
pub fn persist_grant(host: Option<&str>) -> String {
    let host = host.unwrap_or("{machine}");
    format!(
        "\n\
         # dns-persist-01: the persistent TXT at _validation-persist.<host>\n\
         # (never expired like a challenge; keep persistUntil short)\n\
         [[grant]]\n\
         name = {persist}\n\
         types = [\"TXT\"]\n",
        persist = toml_quote(&format!("_validation-persist.{host}")),
    )
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn toml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

# Shared by the DANE deploy hooks (sourced, not run): turns the settings
# into `zonewarden dane publish` arguments and runs it.
#
# Settings: environment variables, or the file named by ZW_CONF
# (default /etc/zonewarden/dane-hook.conf) when it exists:
#   ZW_SERVER   primary that takes UPDATEs, ADDR[:PORT]          (required)
#   ZW_KEY      this machine's TSIG key file                     (required)
#   ZW_ZONE     the delegated zone, e.g. _acme.example.org       (required)
#   ZW_HOST     host part of the TLSA names, e.g. mx1            (required)
#   ZW_PORTS    ports, e.g. "25 465 587"                         (required)
#   ZW_THEN     reload command, e.g. "systemctl reload postfix"  (strongly advised)
#   ZW_NEXT_KEY pre-published next public key or certificate     (optional)
#   ZW_TTL, ZW_TIMEOUT, ZW_NAMESERVERS ("ADDR:PORT ...")         (optional)
#   ZW_BIN      the zonewarden binary (default: zonewarden on PATH)
zw_publish() {
    cert=$1
    conf=${ZW_CONF:-/etc/zonewarden/dane-hook.conf}
    if [ -r "$conf" ]; then . "$conf"; fi
    : "${ZW_SERVER:?set ZW_SERVER}" "${ZW_KEY:?set ZW_KEY}" "${ZW_ZONE:?set ZW_ZONE}"
    : "${ZW_HOST:?set ZW_HOST}" "${ZW_PORTS:?set ZW_PORTS}"
    set -- --cert "$cert" --server "$ZW_SERVER" --key "$ZW_KEY" --zone "$ZW_ZONE" --host "$ZW_HOST"
    for p in $ZW_PORTS; do set -- "$@" --port "$p"; done
    for n in ${ZW_NAMESERVERS:-}; do set -- "$@" --nameserver "$n"; done
    if [ -n "${ZW_THEN:-}" ]; then set -- "$@" --then "$ZW_THEN"; fi
    if [ -n "${ZW_NEXT_KEY:-}" ]; then set -- "$@" --next-key "$ZW_NEXT_KEY"; fi
    if [ -n "${ZW_TTL:-}" ]; then set -- "$@" --ttl "$ZW_TTL"; fi
    if [ -n "${ZW_TIMEOUT:-}" ]; then set -- "$@" --timeout "$ZW_TIMEOUT"; fi
    exec "${ZW_BIN:-zonewarden}" dane publish "$@"
}

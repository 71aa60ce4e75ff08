#!/usr/bin/env python3
"""Seed the DNS fuzz corpora with what real clients send.

Listens on 127.0.0.1:PORT (UDP and TCP), runs nsupdate, knsupdate, dig and
kdig against it (with the fuzz targets' fixed keys), and writes each message
received into fuzz/corpus/<target>/ in each target's input form: dns_server
(a flag byte, then the message: as sent, and unsigned with the flag that
makes the target sign it), dns_update (machine byte + message) and
tsig_verify (the message). Usage: fuzz/capture_seeds.py (from the repo top).
"""
import base64, hashlib, os, socket, struct, subprocess, threading, time

PORT = 53535
ZONE = "_acme.example.org."
def secret(machine):
    b = 7
    for c in machine.encode():
        b = (b + c) % 256
    return base64.b64encode(bytes([b]) * 32).decode()

got = []
def udp_loop(s):
    while True:
        try:
            data, _ = s.recvfrom(65535)
        except OSError:
            return
        got.append(("udp", data))
def tcp_loop(s):
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            return
        c.settimeout(1)
        try:
            n = struct.unpack("!H", c.recv(2))[0]
            data = b""
            while len(data) < n:
                chunk = c.recv(n - len(data))
                if not chunk:
                    break
                data += chunk
            got.append(("tcp", data))
        except Exception:
            pass
        c.close()

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", PORT))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("127.0.0.1", PORT)); t.listen(16)
threading.Thread(target=udp_loop, args=(u,), daemon=True).start()
threading.Thread(target=tcp_loop, args=(t,), daemon=True).start()

def run(cmd, stdin=None):
    subprocess.run(cmd, input=stdin, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)

key = lambda m: f"hmac-sha256:{m}:{secret(m)}"
updates = [
    "update add _acme-challenge.mx1._acme.example.org. 60 TXT \"token-123\"",
    "update delete _acme-challenge.mx1._acme.example.org. TXT",
    "prereq nxrrset _acme-challenge.mx1._acme.example.org. TXT\nupdate add _acme-challenge.mx1._acme.example.org. 60 TXT \"t\"",
    "update add _25._tcp.mx1._acme.example.org. 300 TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "update delete _acme-challenge.mx1._acme.example.org. TXT \"token-a\"",
    "prereq yxdomain mx1._acme.example.org.\nupdate delete mx1._acme.example.org.",
]
for i, u_ in enumerate(updates):
    for tcp in (False, True):
        script = f"server 127.0.0.1 {PORT}\nzone {ZONE}\n{u_}\nsend\n"
        run(["nsupdate", "-t", "1", "-u", "1", "-r", "0", "-y", key("mx1")] + (["-v"] if tcp else []), script)
        run(["knsupdate", "-t", "1", "-r", "0", "-y", key("mx1")] + (["-T"] if tcp else []), script)
for q in ["_acme.example.org. SOA", "_acme-challenge.mx1._acme.example.org. TXT", "_acme.example.org. DNSKEY",
          "nothing._acme.example.org. A", "_25._tcp.mx1._acme.example.org. TLSA", "_acme.example.org. ANY"]:
    name, qt = q.split()
    run(["dig", "+tries=1", "+time=1", "+dnssec", "-p", str(PORT), "@127.0.0.1", name, qt])
    run(["kdig", "+retry=0", "+time=1", "+dnssec", "-p", str(PORT), "@127.0.0.1", name, qt])
    run(["kdig", "+tcp", "+retry=0", "+time=1", "-p", str(PORT), "@127.0.0.1", name, qt])
run(["kdig", "+retry=0", "+time=1", "-p", str(PORT), "@127.0.0.1", "-y", key("www1"), "_acme.example.org.", "AXFR"])
run(["kdig", "+retry=0", "+time=1", "-p", str(PORT), "@127.0.0.1", "_acme.example.org.", "IXFR=3"])
run(["dig", "+tries=1", "+time=1", "-p", str(PORT), "@127.0.0.1", "-y", key("mx1"), "_acme.example.org.", "AXFR"])
run(["kdig", "+retry=0", "+time=1", "-p", str(PORT), "@127.0.0.1", "+notify", "_acme.example.org.", "SOA"])
time.sleep(0.5)

def strip_tsig(m):
    """The message without its last additional RR if that is a TSIG."""
    ar = struct.unpack("!H", m[10:12])[0]
    if ar == 0:
        return None
    # find the TSIG owner by scanning for type 250 class ANY from the end
    for i in range(len(m) - 11, 11, -1):
        if m[i:i + 4] == b"\x00\xfa\x00\xff":
            j = i
            # owner name ends right before; walk back to the label start is
            # ambiguous, so re-scan forward from the header for it
            for start in range(12, i):
                k, ok = start, True
                while k < i:
                    if m[k] == 0:
                        break
                    k += m[k] + 1
                if k == i - 1 and m[k] == 0:
                    return m[:start - 0][:10] + struct.pack("!H", ar - 1) + m[12:start]
            return None
    return None

def save(target, data):
    d = os.path.join("fuzz/corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)

for proto, m in got:
    flag = 1 if proto == "tcp" else 0
    save("dns_server", bytes([flag]) + m)
    save("tsig_verify", m)
    bare = strip_tsig(m)
    if bare:
        save("dns_server", bytes([flag | 2]) + bare)
        save("dns_server", bytes([flag | 4]) + bare)
        save("dns_update", b"\x00" + bare)
        save("tsig_verify", bare)
    else:
        save("dns_update", b"\x00" + m)
print(f"captured {len(got)} messages")

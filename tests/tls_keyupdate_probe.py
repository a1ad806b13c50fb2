# SPDX-License-Identifier: BSD-2-Clause
"""tests/tls_keyupdate_probe.py: qdbd's TLS record layer against OpenSSL's own.

After OpenSSL's handshake qdbd seals and opens the TLS 1.3 records itself
(transport-real/tls.c).  Here the peer is `openssl s_client` holding the
client identity's PSK, driven through its command letters: "k" sends a
KeyUpdate, "K" one that asks for ours (RFC 8446 4.6.3).  s_client's -msg
trace shows what it receives, so the checks are on the wire:
  - a session opened and an entry put before any KeyUpdate;
  - after each "k": no KeyUpdate comes back, the next GET returns the entry;
  - after each "K": exactly one KeyUpdate comes back, and the GET after it,
    sealed and opened under the new keys on both sides, returns the entry;
  - three rounds of each, alternating, on one connection.
Exits 0 when every check holds, 1 otherwise.

usage: tls_keyupdate_probe.py ADDR:PORT KEYFILE
"""
import hashlib
import hmac
import os
import select
import struct
import subprocess
import sys
import time

import limits_probe as lp

ADDR, PORT = sys.argv[1].rsplit(":", 1)
PORT = int(PORT)
KU_IN = b"<<< TLS 1.3, Handshake [length 0005], KeyUpdate"
VALUE = b"sealed-before-any-key-update"


def client_psk(path):
    """PSK = HKDF-SHA256(salt "qdb hive key v1", key, info "qdb-client"), 32 bytes."""
    with open(path) as f:
        key = bytes.fromhex(f.read().strip())
    prk = hmac.new(b"qdb hive key v1", key, hashlib.sha256).digest()
    return hmac.new(prk, b"qdb-client\x01", hashlib.sha256).hexdigest()


proc = subprocess.Popen(
    ["openssl", "s_client", "-connect", "%s:%d" % (ADDR, PORT), "-tls1_3", "-ciphersuites",
     "TLS_AES_128_GCM_SHA256", "-psk", client_psk(sys.argv[2]), "-psk_identity", "qdb-client",
     "-msg"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
out = proc.stdout.fileno()


def drain(quiet_s=0.5, limit_s=5.0):
    """What s_client printed until it has been quiet for quiet_s."""
    got, end = b"", time.time() + limit_s
    while time.time() < end:
        r, _, _ = select.select([out], [], [], quiet_s)
        if not r:
            break
        b = os.read(out, 65536)
        if not b:
            break
        got += b
    return got


def send(data):
    proc.stdin.write(data)
    proc.stdin.flush()


fails = 0


def check(ok, what):
    global fails
    print(("ok: " if ok else "FAIL: ") + what)
    fails += 0 if ok else 1


drain(1.0)
send(lp.frame(lp.HELLO, struct.pack(">Q", 77)))
check(len(drain()) > 0, "a session opened over TLS (the HELLO answered)")
send(lp.request(lp.PUT, 1, b"ku", VALUE))
drain()
seq = 2
for rnd in range(3):
    for letter in (b"k", b"K"):
        send(letter + b"\n")
        seen = drain().count(KU_IN)
        want = 1 if letter == b"K" else 0
        check(seen == want, "round %d, %s: %d KeyUpdate back from qdbd (want %d)" %
              (rnd + 1, letter.decode(), seen, want))
        send(lp.request(lp.GET, seq, b"ku"))
        seq += 1
        check(VALUE in drain(), "round %d, %s: the GET after it returns the entry" %
              (rnd + 1, letter.decode()))
proc.kill()
proc.wait()
sys.exit(1 if fails else 0)

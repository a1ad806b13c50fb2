# SPDX-License-Identifier: BSD-2-Clause
"""tests/limits_tls_probe.py: qdbd's resource limits over TLS, for tests/limits.sh.

The same hostile client as tests/limits_probe.py (whose helpers it uses), on a
qdbd with a hive key: its TLS connections are openssl s_client processes
holding the client identity's PSK (derived here from the key as tls.h says),
fed frames on their standard input; strangers are plain sockets that never
finish a handshake.  Checks, with numbers:
  - unfinished frames sent over TLS stay within --input-memory, wait, and the
    stalled holders are closed;
  - strangers that open connections and never finish the handshake count
    against --sessions, and are closed by --handshake-timeout (well before
    --idle-timeout), giving their descriptors back;
  - an idle TLS connection outlives the handshake timeout and is closed by
    --idle-timeout.
Exits 0 when every check holds, 1 otherwise.

usage: limits_tls_probe.py ADDR:PORT PID LOGFILE QDBSH KEYFILE HANDSHAKE_S
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

KEY_FILE = sys.argv[5]
HANDSHAKE_S = int(sys.argv[6])


def client_psk():
    """PSK = HKDF-SHA256(salt "qdb hive key v1", key, info "qdb-client"), 32 bytes."""
    with open(KEY_FILE) as f:
        key = bytes.fromhex(f.read().strip())
    prk = hmac.new(b"qdb hive key v1", key, hashlib.sha256).digest()
    return hmac.new(prk, b"qdb-client\x01", hashlib.sha256).hexdigest()


class TlsClient:
    """One TLS 1.3-PSK connection: an openssl s_client fed on its stdin."""

    def __init__(self):
        self.proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", "%s:%d" % (lp.ADDR, lp.PORT), "-tls1_3",
             "-ciphersuites", "TLS_AES_128_GCM_SHA256", "-psk", PSK,
             "-psk_identity", "qdb-client", "-quiet", "-nocommands"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.out = self.proc.stdout.fileno()

    def hello(self, client_id):
        """Open a session: proves the handshake is done (the reply came back)."""
        self.proc.stdin.write(lp.frame(lp.HELLO, struct.pack(">Q", client_id)))
        self.proc.stdin.flush()
        r, _, _ = select.select([self.out], [], [], 5)
        return bool(r) and len(os.read(self.out, 4096)) > 0

    def send(self, data):
        """Once stdin is non-blocking: as socket.send, BlockingIOError when full."""
        return os.write(self.proc.stdin.fileno(), data)

    def closed_within(self, seconds):
        """True when qdbd closes the connection within seconds (s_client ends)."""
        try:
            self.proc.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


def fds():
    return len(os.listdir("/proc/%d/fd" % lp.PID))


# ---- unfinished frames over TLS: limits_probe's probe, through s_client -------
def tls_conn():
    c = TlsClient()
    lp.check(c.hello(200), "a TLS session opened with the hive key")
    os.set_blocking(c.proc.stdin.fileno(), False)
    return c


# ---- handshakes never finished: they count, and time out --------------------
def probe_handshake():
    time.sleep(0.5)  # the closes above are seen
    fd0 = fds()
    hello = bytes([22, 3, 1, 0, 200, 1, 0, 0, 196]) + b"\0" * 20  # a ClientHello, cut short
    strangers = []
    for i in range(lp.SESSIONS):
        s = lp.connect()
        if i % 2:
            s.sendall(hello)
        strangers.append(s)
    time.sleep(0.3)
    held = fds() - fd0
    extra = lp.connect()
    t0 = time.time()
    refused = lp.closed_within(extra, 2)
    lp.check(refused and held >= lp.SESSIONS,
             "%d strangers without the key hold %d descriptors; connection %d closed at once "
             "(%.0f ms)" % (lp.SESSIONS, held, lp.SESSIONS + 1, (time.time() - t0) * 1000))
    extra.close()
    deadline = t0 + HANDSHAKE_S + 2.5
    gone = [lp.closed_within(s, max(0.0, deadline - time.time())) for s in strangers]
    dt = time.time() - t0
    time.sleep(0.3)
    left = fds() - fd0
    lp.check(all(gone) and dt < lp.IDLE_S and left <= 0,
             "%d of %d closed after %.1f s (--handshake-timeout=%d, --idle-timeout=%d); "
             "%d descriptors still held" % (sum(gone), lp.SESSIONS, dt, HANDSHAKE_S, lp.IDLE_S,
                                            max(left, 0)))
    st = lp.stats()
    lp.check(st["handshakes timed out"] >= lp.SESSIONS,
             "%d handshakes timed out" % st["handshakes timed out"])
    for s in strangers:
        s.close()
    lp.check(lp.normal_requests("tls-after"), "put and get over TLS once the strangers are gone")


# ---- an idle TLS connection: the idle timeout, not the handshake's ----------
def probe_idle():
    quiet = TlsClient()
    partial = TlsClient()
    ok = quiet.hello(300) and partial.hello(301)
    partial.proc.stdin.write(lp.varint(50) + bytes([(1 << 5) | lp.GET]))  # never finished
    partial.proc.stdin.flush()
    t0 = time.time()
    early = quiet.closed_within(HANDSHAKE_S + 1.5)
    a = quiet.closed_within(lp.IDLE_S + 2.5 - (time.time() - t0))
    b = partial.closed_within(1)
    lp.check(ok and not early and a and b,
             "idle TLS connections kept past the handshake timeout, closed after %.1f s "
             "(--idle-timeout=%d)" % (time.time() - t0, lp.IDLE_S))
    quiet.close()
    partial.close()


lp.configure(sys.argv)
lp.QDBSH_ARGS = ["--key-file=" + KEY_FILE]
PSK = client_psk()
lp.probe_unfinished(tls_conn, " over TLS")
probe_handshake()
probe_idle()
sys.exit(lp.verdict())

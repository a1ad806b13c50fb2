# SPDX-License-Identifier: BSD-2-Clause
"""tests/limits_probe.py: a hostile client of one real qdbd, for tests/limits.sh.

Speaks the wire format of node/codec.h directly (frames a library would
never send) and checks each bound of qdbd(8)'s LIMITS with a number.  The
qdbd it talks to runs with small limits (see tests/limits.sh), so every
probe is quick.  Prints one "limits: ..." line per check with its figure;
exits 0 when every check holds, 1 otherwise.

usage: limits_probe.py ADDR:PORT PID LOGFILE QDBSH
"""
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

ADDR, PORT, PID, LOG, QDBSH = None, 0, 0, None, None
QDBSH_ARGS = []  # more qdbsh options: the key file, over TLS


def configure(argv):
    """The qdbd to probe, from the command line (see usage); also what
    tests/limits_tls_probe.py, which imports these helpers, calls."""
    global ADDR, PORT, PID, LOG, QDBSH
    ADDR, port = argv[1].split(":")
    PORT, PID, LOG, QDBSH = int(port), int(argv[2]), argv[3], argv[4]

# what tests/limits.sh gives qdbd
SESSIONS = 16
IDLE_S = 8
MAX_CONTENT = 1 << 20
MAX_FRAME = 2 * MAX_CONTENT + (64 << 10)
INPUT_MEMORY = int(os.environ.get("PROBE_INPUT_MEMORY", 8 << 20))
AMO_BYTES = 4 << 20

# node/codec.h, node/error.h
HELLO, PUT, GET, GET_UPDATE, REPLY = 1, 2, 3, 7, 9
OK, ALIAS_TOO_LONG, OUTCOME_UNKNOWN, ALIAS_EMPTY, CONTENT_TOO_LARGE = 0, 11, 13, 28, 29

failed = []
# set by tests/limits.sh under AddressSanitizer: RSS is reported, not judged
NO_RSS = bool(os.environ.get("PROBE_NO_RSS"))


def check_rss(ok, what):
    check(ok or NO_RSS, what + (" (not judged: sanitizer build)" if NO_RSS else ""))


def check(ok, what):
    print("limits: %s: %s" % ("ok" if ok else "FAILED", what), flush=True)
    if not ok:
        failed.append(what)


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def frame(mtype, body, version=1):
    inner = bytes([(version << 5) | mtype]) + body
    return varint(len(inner)) + inner


def request(mtype, seq, alias, content=b""):
    return frame(mtype, varint(seq) + varint(len(alias)) + alias + content)


def connect():
    s = socket.create_connection((ADDR, PORT), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_varint(s):
    v, shift = 0, 0
    while True:
        b = s.recv(1)
        if not b:
            raise EOFError
        v |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            return v


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def read_reply(s):
    """(seq, status, payload) of the next REPLY."""
    body = recv_exact(s, read_varint(s))
    assert body[0] == (1 << 5) | REPLY, body[:1]
    v, shift, i = 0, 0, 1
    while True:
        v |= (body[i] & 0x7F) << shift
        shift += 7
        i += 1
        if not body[i - 1] & 0x80:
            break
    return v, body[i], body[i + 1:]


def session(client_id):
    s = connect()
    s.sendall(frame(HELLO, struct.pack(">Q", client_id)))
    seq, status, _ = read_reply(s)
    assert seq == 0 and status == OK
    return s


def closed_within(s, seconds):
    """True when the peer closes s within seconds (EOF or reset)."""
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.time()))
        if r:
            try:
                if not s.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
    return False


def status_kb(field):
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def stats():
    """The counters of qdbd's last "stats:" line, after a SIGUSR1."""
    before = open(LOG, errors="replace").read().count("stats: ")
    os.kill(PID, signal.SIGUSR1)
    for _ in range(50):
        text = open(LOG, errors="replace").read()
        if text.count("stats: ") > before:
            line = text[text.rindex("stats: "):].split("\n")[0]
            tail = line.split("limits: ")[1]
            return {k: int(v) for v, k in
                    (p.strip().split(" ", 1) for p in tail.split(","))}
        time.sleep(0.1)
    raise RuntimeError("no stats line")


def qdbsh_ok(*args):
    r = subprocess.run([QDBSH, "--daemon=%s:%d" % (ADDR, PORT), "--timeout=5000"] + QDBSH_ARGS + list(args),
                       capture_output=True, timeout=15)
    return r.returncode == 0, r.stdout.decode(errors="replace").strip()


def normal_requests(tag):
    ok1, _ = qdbsh_ok("put", "normal-" + tag, "v-" + tag)
    ok2, out = qdbsh_ok("get", "normal-" + tag)
    return ok1 and ok2 and out == "v-" + tag


# ---- malformed and oversized requests: an error reply at once ---------------
def probe_replies():
    s = session(1)
    cases = [
        ("alias of 1,025 bytes", request(PUT, 1, b"a" * 1025, b"x"), ALIAS_TOO_LONG),
        ("empty alias", request(PUT, 2, b"", b"x"), ALIAS_EMPTY),
        ("content of max + 1 bytes", request(PUT, 3, b"big", b"c" * (MAX_CONTENT + 1)),
         CONTENT_TOO_LARGE),
        # over the largest frame: never buffered, answered by the loop, its
        # bytes dropped, and the connection still serves
        ("frame of twice the largest", request(PUT, 4, b"huge", b"h" * (2 * MAX_FRAME)),
         CONTENT_TOO_LARGE),
        ("normal request after them", request(PUT, 5, b"fine", b"ok"), OK),
    ]
    for what, data, want in cases:
        t0 = time.time()
        s.sendall(data)
        seq, status, _ = read_reply(s)
        dt = time.time() - t0
        check(status == want and dt < 2,
              "%s: status %d (want %d) in %.0f ms" % (what, status, want, dt * 1000))
    s.close()


# ---- unfinished frames: bounded memory, back-pressure, then closing ---------
def plain_conn():
    s = connect()
    s.setblocking(False)
    return s


def probe_unfinished(open_conn=plain_conn, over=""):
    """open_conn() gives a connection with send() (non-blocking: it raises
    BlockingIOError when full) and close(); over names the transport."""
    n, flen = 8, MAX_FRAME - 16
    rss0 = status_kb("VmRSS")
    conns = [open_conn() for _ in range(n)]
    head = varint(flen) + bytes([(1 << 5) | PUT]) + varint(100 + 1) + varint(1) + b"u"
    payload = head + b"p" * (flen - 200)  # all but the last bytes
    sent = [0] * n
    end = time.time() + 6
    while time.time() < end and min(sent) < len(payload):
        progress = False
        for i, s in enumerate(conns):
            if sent[i] < len(payload):
                try:
                    sent[i] += s.send(payload[sent[i]:sent[i] + 262144])
                    progress = True
                except BlockingIOError:
                    pass
        if not progress:
            time.sleep(0.05)
    time.sleep(1)  # the kernel takes it all at once: give qdbd time to read it
    rss = status_kb("VmRSS")
    hwm = status_kb("VmHWM")
    grew = (hwm - rss0) / 1024.0
    unbounded = n * flen / 1048576.0
    check_rss(grew < INPUT_MEMORY / 1048576.0 + 4,
          "8 connections%s x %.1f MiB unfinished frames (%.1f MiB sent): peak RSS +%.1f MiB "
          "(budget %d MiB, unbounded %.0f MiB; RSS now %d MiB)" %
          (over, flen / 1048576.0, sum(sent) / 1048576.0, grew, INPUT_MEMORY >> 20, unbounded,
           rss >> 10))
    check(normal_requests("during"), "put and get%s while the frames wait" % over)
    # the holders sent nothing more: within a few sweeps the largest is closed
    time.sleep(3.5)
    st = stats()
    check(st["input waits"] >= 1 and st["stalled closed"] >= 1,
          "back-pressure%s: %d connections waited, %d stalled holders closed" %
          (over, st["input waits"], st["stalled closed"]))
    for s in conns:
        s.close()


# ---- sessions: one over the cap is closed at once ---------------------------
def probe_sessions():
    time.sleep(0.3)  # the closes above are seen
    held = [session(100 + i) for i in range(SESSIONS)]
    extra = connect()
    t0 = time.time()
    refused = closed_within(extra, 2)
    check(refused, "connection %d of --sessions=%d closed at once (%.0f ms)" %
          (SESSIONS + 1, SESSIONS, (time.time() - t0) * 1000))
    # the held ones still serve
    held[0].sendall(request(GET, 1, b"fine"))
    seq, status, payload = read_reply(held[0])
    check(status == OK and payload == b"ok", "a held session still serves")
    for s in held[:4]:
        s.close()
    time.sleep(0.3)
    check(normal_requests("sessions"), "put and get once sessions are free again")
    st = stats()
    check(st["sessions refused"] >= 1, "%d sessions refused" % st["sessions refused"])
    for s in held[4:]:
        s.close()
    extra.close()


# ---- idle connections -------------------------------------------------------
def probe_idle():
    quiet = connect()
    partial = connect()
    partial.sendall(varint(50) + bytes([(1 << 5) | GET]))  # a frame never finished
    t0 = time.time()
    a = closed_within(quiet, IDLE_S + 2.5)
    b = closed_within(partial, 1)
    check(a and b, "idle connections closed after %.1f s (--idle-timeout=%d)" %
          (time.time() - t0, IDLE_S))


# ---- the at-most-once table: bounded in bytes, never a replay ----------------
def probe_amo():
    s = session(7)
    size, calls = 900 << 10, 24
    s.sendall(request(PUT, 1, b"amo", b"0" * size))
    check(read_reply(s)[1] == OK, "a 900 KiB entry stored")
    rss0 = status_kb("VmRSS")
    for i in range(calls):
        s.sendall(request(GET_UPDATE, 2 + i, b"amo", bytes([65 + i % 26]) * size))
        seq, status, payload = read_reply(s)
        assert status == OK and len(payload) == size, (status, len(payload))
    grew = (status_kb("VmRSS") - rss0) / 1024.0
    check_rss(grew < (AMO_BYTES >> 20) + 8,
          "%d GET_UPDATE replies of 900 KiB: RSS +%.1f MiB (budget %d MiB, unbounded %.0f MiB)"
          % (calls, grew, AMO_BYTES >> 20, calls * size / 1048576.0))
    # a copy of the first: its reply went, so "outcome unknown", not a second run
    s.sendall(request(GET_UPDATE, 2, b"amo", b"Z" * size))
    seq, status, _ = read_reply(s)
    check(status == OUTCOME_UNKNOWN, "a copy of an early GET_UPDATE: status %d (want %d)" %
          (status, OUTCOME_UNKNOWN))
    # a copy of the last: the same reply, from the table
    last = 2 + calls - 1
    s.sendall(request(GET_UPDATE, last, b"amo", b"Z" * size))
    seq, status, payload = read_reply(s)
    check(status == OK and payload == bytes([65 + (calls - 2) % 26]) * size,
          "a copy of the last GET_UPDATE gets its reply again")
    s.sendall(request(GET, last + 1, b"amo"))
    seq, status, payload = read_reply(s)
    check(status == OK and payload == bytes([65 + (calls - 1) % 26]) * size,
          "neither copy ran again")
    s.close()


# ---- a client that asks and does not read: not read either ------------------
def probe_unread():
    s = session(8)
    size, n = 900 << 10, 100
    rss0 = status_kb("VmRSS")
    s.sendall(b"".join(request(GET, 1 + i, b"amo") for i in range(n)))
    time.sleep(1)
    grew = (status_kb("VmRSS") - rss0) / 1024.0
    got = 0
    for i in range(n):
        seq, status, payload = read_reply(s)
        got += status == OK and seq == 1 + i and len(payload) == size
    check(got == n, "all %d GETs answered once read" % n)
    check_rss(grew < 2 * MAX_FRAME / 1048576.0 + 6,
          "%d GETs of 900 KiB not read: RSS +%.1f MiB (unbounded %.0f MiB)" %
          (n, grew, n * size / 1048576.0))
    s.close()


# ---- bad frames: the log stays small ----------------------------------------
def probe_log():
    size0 = os.path.getsize(LOG)
    s = connect()
    s.settimeout(60)  # a sanitizer build takes its time over 400,000 frames
    bad = frame(3, b"\x01\x01x", version=2)  # a version nobody speaks: dropped
    blob = bad * (2000000 // len(bad))
    t0 = time.time()
    s.sendall(blob)
    s.sendall(request(GET, 1, b"x"))  # no session: answered, so all was read
    read_reply(s)
    dt = time.time() - t0
    time.sleep(1.1)
    # a line after the second is over brings the count
    normal_requests("log")
    os.kill(PID, signal.SIGUSR1)
    time.sleep(0.3)
    grew = os.path.getsize(LOG) - size0
    text = open(LOG, errors="replace").read()
    check(grew < 64 * 1024 and "suppressed" in text,
          "%d bad frames (%.1f MB) in %.1f s: %d bytes of log, with a 'suppressed' count" %
          (len(blob) // len(bad), len(blob) / 1e6, dt, grew))
    s.close()


def verdict():
    print("limits: %s" % ("all bounds hold" if not failed else "%d failed" % len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    configure(sys.argv)
    probe_replies()
    probe_unfinished()
    probe_sessions()
    probe_idle()
    probe_amo()
    probe_unread()
    probe_log()
    sys.exit(verdict())

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""tests/hostile.py: forge qdb frames against a real qdbd (tests/hostile.sh).

    hostile.py VICTIM_HOST:PORT VICTIM_ID_HEX ROGUE_IP ATTACK

Speaks the wire format of node/codec.h by hand (no libqdb): varint length,
tag (version 1 << 5 | type), body.  Each ATTACK prints one line "ATTACK:
result" and exits 0 when the node resisted, 1 when it did not.  Every wait
is bounded (a few seconds).
"""
import socket, struct, sys, time

HELLO, PUT, REPLY, STABILIZE, STABILIZE_REPLY, NOTIFY, HANDOVER, HANDOVER_ACK = \
    1, 2, 9, 12, 13, 14, 17, 18
OK, NO_SESSION = 0, 14


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def frame(t, body):
    inner = bytes([(1 << 5) | t]) + body
    return varint(len(inner)) + inner


def peer(idhex, ip, port):
    return bytes.fromhex(idhex) + socket.inet_aton(ip) + struct.pack(">H", port)


def alias(a):
    return varint(len(a)) + a


def read_frames(sock, seconds):
    """Every frame that arrives within seconds: [(type, body)]."""
    sock.settimeout(0.2)
    buf, out, end = b"", [], time.time() + seconds
    while time.time() < end:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not d:
            break
        buf += d
        while buf:
            n, shift, i = 0, 0, 0
            while i < len(buf):
                n |= (buf[i] & 0x7F) << shift
                shift += 7
                i += 1
                if not buf[i - 1] & 0x80:
                    break
            else:
                break
            if len(buf) < i + n:
                break
            out.append((buf[i] & 0x1F, buf[i + 1:i + n]))
            buf = buf[i + n:]
    return out


def connect(victim, src_ip, src_port=0, linger0=False):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if linger0:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.bind((src_ip, src_port))
    s.connect(victim)
    return s


def prev_id(idhex):
    v = int(idhex, 16) - 1
    return "%064x" % (v % (1 << 256))


def attack_notify(victim, vid, rogue):
    """Issue 9: a NOTIFY (joining) from a plain listener, which then
    acknowledges every HANDOVER it gets.  Resisted: no HANDOVER comes."""
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((rogue, 0))
    lst.listen(8)
    lport = lst.getsockname()[1]
    s = connect(victim, rogue)
    body = varint(1) + bytes([1]) + peer(prev_id(vid), rogue, lport)
    for _ in range(10):
        s.sendall(frame(NOTIFY, body))
    got = {}
    lst.settimeout(0.2)
    end = time.time() + 4
    conns = []
    while time.time() < end:
        try:
            c, _ = lst.accept()
            conns.append(c)
        except socket.timeout:
            pass
        for c in conns:
            for t, b in read_frames(c, 0.1):
                got[t] = got.get(t, 0) + 1
                if t == HANDOVER:  # "taken": the node would delete them
                    c.sendall(frame(HANDOVER_ACK, read_rpc(b)))
    print("notify: frames the rogue listener received: %s" % (
        ", ".join("%s x%d" % ({STABILIZE: "STABILIZE", HANDOVER: "HANDOVER"}.get(t, t), n)
                  for t, n in sorted(got.items())) or "none"))
    return got.get(HANDOVER, 0) == 0 and got.get(STABILIZE, 0) <= 1


def read_rpc(body):
    i = 0
    while body[i] & 0x80:
        i += 1
    return body[:i + 1]


def attack_handover(victim, vid, rogue):
    """A HANDOVER from a stranger, claiming itself: no HANDOVER_ACK."""
    s = connect(victim, rogue)
    key = bytes.fromhex(vid)[:31] + b"\x00" + b"planted"
    entries = varint(1) + varint(len(key)) + key + varint(4) + b"evil"
    body = varint(7) + bytes([1]) + peer(prev_id(vid), rogue, 2836) + entries
    s.sendall(frame(HANDOVER, body))
    got = [t for t, _ in read_frames(s, 2)]
    print("handover: answers: %s" % (got or "none"))
    return HANDOVER_ACK not in got


def attack_stabilize_on_session(victim, vid, rogue):
    """HELLO, then a STABILIZE on that client session: no topology."""
    s = connect(victim, rogue)
    s.sendall(frame(HELLO, struct.pack(">Q", 0x1234)))
    s.sendall(frame(STABILIZE, varint(3) + peer(prev_id(vid), rogue, 2836)))
    got = [t for t, _ in read_frames(s, 2)]
    print("stabilize on a client session: answers: %s" % got)
    return STABILIZE_REPLY not in got and REPLY in got


def status_of(frames, seq):
    for t, b in frames:
        if t == REPLY and b[0] == seq:
            return b[1]
    return None


def attack_session_reuse(victim, vid, rogue):
    """A request without HELLO, on a reused source port, with the seq of the
    last client's request: NO_SESSION, never that client's reply."""
    probe = socket.socket()
    probe.bind((rogue, 0))
    port = probe.getsockname()[1]
    probe.close()
    a = connect(victim, rogue, port, linger0=True)
    a.sendall(frame(HELLO, struct.pack(">Q", 0xC0FFEE)))
    a.sendall(frame(PUT, varint(1) + alias(b"hostile-s1") + b"v"))
    first = status_of(read_frames(a, 1), 1)
    a.close()  # RST: the port is free at once
    time.sleep(0.2)
    b = connect(victim, rogue, port)
    b.sendall(frame(PUT, varint(1) + alias(b"hostile-s2") + b"v"))
    second = status_of(read_frames(b, 2), 1)
    print("session reuse: first client's put %s, the reused port's put without HELLO %s" % (
        first, second))
    return first == OK and second == NO_SESSION


ATTACKS = {"notify": attack_notify, "handover": attack_handover,
           "stabilize": attack_stabilize_on_session, "session": attack_session_reuse}

if __name__ == "__main__":
    host, port = sys.argv[1].rsplit(":", 1)
    ok = ATTACKS[sys.argv[4]]((host, int(port)), sys.argv[2], sys.argv[3])
    sys.exit(0 if ok else 1)

# SPDX-License-Identifier: BSD-2-Clause
"""tests/fdreserve_flood.py: idle clients that take every session of one qdbd,
for tests/fdreserve.sh.

Opens COUNT connections to ADDR:PORT, one after the other, sends nothing,
and after a second counts those the node kept (it accepts and closes at
once a connection over --sessions, and one it has no descriptor for).
Writes that count to OUT, then holds the connections, idle, until killed.
SIGUSR1 closes FREE of them (a session for a client), and appends
"freed FREE" to OUT.

usage: fdreserve_flood.py ADDR:PORT COUNT FREE OUT
"""
import resource
import signal
import socket
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
COUNT, FREE, OUT = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

# room for COUNT sockets here, whatever the node's limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < COUNT + 64:
    want = COUNT + 64 if hard == resource.RLIM_INFINITY else min(COUNT + 64, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

conns = []
for _ in range(COUNT):
    try:
        conns.append(socket.create_connection((host, int(port)), timeout=2))
    except OSError:
        pass  # refused or reset: the node is out of descriptors
time.sleep(1.0)


def kept(s):
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""  # bytes: not ours to expect
    except BlockingIOError:
        return True  # open, silent
    except OSError:
        return False  # reset


alive = [s for s in conns if kept(s)]
for s in conns:
    if s not in alive:
        s.close()
with open(OUT, "w") as f:
    f.write("%d\n" % len(alive))


def free(signum, frame):
    for s in alive[:FREE]:
        s.close()
    del alive[:FREE]
    with open(OUT, "a") as f:
        f.write("freed %d\n" % FREE)


signal.signal(signal.SIGUSR1, free)
while True:
    signal.pause()

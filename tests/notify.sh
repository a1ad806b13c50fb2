#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/notify.sh: qdbd speaks systemd's notify protocol (Type=notify).
# Plays the service manager: a python3 listener on an AF_UNIX datagram
# socket, named to qdbd by NOTIFY_SOCKET, with WATCHDOG_USEC set.  Checks
# that READY=1 arrives (with MAINPID, and the node then answers qdbsh;
# SIGUSR1 then logs "1 entry"),
# then STATUS= and WATCHDOG=1, and that SIGTERM brings STOPPING=1 and exit 0.
# Exit 0 pass, 77 skip (no qdbd, no python3, built without libsystemd), 1 fail.
# Also run by ./dev.sh package against the installed /usr/sbin/qdbd.
QDBD=${QDBD:-transport-real/qdbd}
QDBSH=${QDBSH:-client/qdbsh}
[ -x "$QDBD" ] || { echo "SKIP: $QDBD is not built"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3 to listen on the socket"; exit 77; }
if [ -f config.h ] && ! grep -q '^#define HAVE_LIBSYSTEMD 1' config.h; then
    echo "SKIP: qdbd was built without libsystemd (configure found no libsystemd-dev)"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-notify.XXXXXX") || exit 99
pid= lpid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ -n "$lpid" ] && kill "$lpid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP
fail() {
    echo "FAIL: $*"
    echo "-- messages received:"; cat "$tmp/messages" 2>/dev/null
    echo "-- qdbd's log:"; cat "$tmp/qdbd.log" 2>/dev/null
    exit 1
}
# wait_for PATTERN SECONDS: until a message matches
wait_for() {
    _n=$(( $2 * 10 ))
    while [ $_n -gt 0 ]; do
        grep -q "$1" "$tmp/messages" 2>/dev/null && return 0
        sleep 0.1; _n=$(( _n - 1 ))
    done
    return 1
}

# the listener: one line per datagram (newlines inside become spaces); it
# stops after STOPPING=1 and a second of quiet, or after 60 s in all
python3 - "$tmp/notify.sock" "$tmp/messages" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
end, stopping = time.time() + 60, False
with open(sys.argv[2], "a") as out:
    while time.time() < end:
        s.settimeout(1.0 if stopping else end - time.time())
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            break
        out.write(m.replace("\n", " ") + "\n")
        out.flush()
        stopping = stopping or "STOPPING=1" in m
PY
lpid=$!
n=50
while [ ! -S "$tmp/notify.sock" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
[ -S "$tmp/notify.sock" ] || fail "the listener did not bind its socket"

port=$(( 20000 + ($$ * 7) % 20000 ))
addr=127.0.0.4:$port
NOTIFY_SOCKET=$tmp/notify.sock WATCHDOG_USEC=200000 \
    "$QDBD" --config=/dev/null -a "$addr" --transient -l "$tmp/qdbd.log" &
pid=$!
wait_for '^READY=1' 10 || fail "no READY=1 within 10 s"
grep -q "^READY=1 MAINPID=$pid" "$tmp/messages" || fail "READY=1 without MAINPID=$pid"
if [ -x "$QDBSH" ]; then
    out=$("$QDBSH" --daemon="$addr" get probe 2>&1)
    echo "$out" | grep -q "not found" || fail "READY=1 sent, but the node does not serve: $out"
    # and its counters count in English: "1 entry", not "1 entries"
    "$QDBSH" --daemon="$addr" put probe value || fail "put probe failed"
    kill -USR1 "$pid"
    n=30
    while ! grep -q "stats: 1 entry," "$tmp/qdbd.log" && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
    grep -q "stats: 1 entry," "$tmp/qdbd.log" || fail "SIGUSR1 did not log 'stats: 1 entry,'"
fi
wait_for '^STATUS=ring: ' 5 || fail "no STATUS= line"
wait_for '^WATCHDOG=1' 2 || fail "no WATCHDOG=1 within 2 s with WATCHDOG_USEC=200000"
kill -TERM "$pid"
wait "$pid"; rc=$?; pid=
[ $rc -eq 0 ] || fail "qdbd exited $rc after SIGTERM"
wait_for '^STOPPING=1' 3 || fail "no STOPPING=1 after SIGTERM"
# READY before STOPPING, STOPPING once
order=$(grep -n -e '^READY=1' -e '^STOPPING=1' "$tmp/messages" | cut -d= -f1 | tr -d '0-9:' | tr '\n' ' ')
[ "$order" = "READY STOPPING " ] || fail "READY/STOPPING order: $order"
echo "notify: READY=1 with MAINPID, STATUS=, WATCHDOG=1, STOPPING=1 on SIGTERM: ok"
exit 0

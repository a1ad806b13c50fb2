#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/limits.sh: qdbd's resource limits (qdbd(8), LIMITS) against a hostile
# client, with numbers.  One real qdbd on 127.0.0.7 with small limits, and
# tests/limits_probe.py speaking the wire format directly: error replies to
# malformed and oversized requests, peak RSS under unfinished frames, the
# --sessions cap, idle connections, the at-most-once table's bytes, and the
# log under a flood of bad frames -- while qdbsh's put and get still work.
# Exit 0 pass, 77 skip (no qdbd, qdbsh or python3), 1 fail.  About 25 s.
QDBD=${QDBD:-transport-real/qdbd}
QDBSH=${QDBSH:-client/qdbsh}
[ -x "$QDBD" ] && [ -x "$QDBSH" ] || { echo "SKIP: qdbd or qdbsh is not built"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3 for the probe"; exit 77; }
[ -r /proc/self/status ] || { echo "SKIP: no /proc to read RSS from"; exit 77; }
srcdir=${srcdir:-.}
# Under AddressSanitizer RSS holds its shadow memory and the freed blocks it
# quarantines: the probe then reports the figures without judging them.
if ldd "$QDBD" 2>/dev/null | grep -q libasan; then
    export PROBE_NO_RSS=1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-limits.XXXXXX") || exit 99
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP

# a free port on 127.0.0.7 (no other test uses that address)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.7", 0)); print(s.getsockname()[1])') ||
    { echo "SKIP: 127.0.0.7 is not usable here"; exit 77; }
addr=127.0.0.7:$port
"$QDBD" --config=/dev/null -a "$addr" --transient -l "$tmp/qdbd.log" --log-level=info \
    --sessions=16 --idle-timeout=8 --max-content-size=1M --input-memory=8M --amo-bytes=4M \
    --log-rate=5 &
pid=$!
n=50
until "$QDBSH" --daemon="$addr" --timeout=1000 get nothing 2>&1 | grep -q "not found"; do
    n=$((n - 1))
    [ $n -gt 0 ] || { echo "FAIL: qdbd did not serve within 10 s"; cat "$tmp/qdbd.log"; exit 1; }
    sleep 0.2
done
timeout 90 python3 "$srcdir/tests/limits_probe.py" "$addr" "$pid" "$tmp/qdbd.log" "$QDBSH"
rc=$?
kill -0 "$pid" 2>/dev/null || { echo "FAIL: qdbd died"; rc=1; }
if [ $rc -ne 0 ]; then
    echo "-- qdbd's log (last 40 lines):"
    tail -n 40 "$tmp/qdbd.log"
    exit 1
fi
exit 0

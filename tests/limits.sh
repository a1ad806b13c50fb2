#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/limits.sh: qdbd's resource limits (qdbd(8), LIMITS) against a hostile
# client, with numbers.  One real qdbd on 127.0.0.7 with small limits, and
# tests/limits_probe.py speaking the wire format directly: error replies to
# malformed and oversized requests, peak RSS under unfinished frames, the
# --sessions cap, idle connections, the at-most-once table's bytes, and the
# log under a flood of bad frames -- while qdbsh's put and get still work.
# Then the same over TLS: a second qdbd on 127.0.0.77 with a hive key, and
# tests/limits_tls_probe.py (openssl s_client holding the PSK, and strangers
# that never finish a handshake): unfinished frames, --handshake-timeout
# against --sessions, --idle-timeout.  That part is skipped, with a line,
# when there is no openssl program.
# Exit 0 pass, 77 skip (no qdbd, qdbsh or python3), 1 fail.  About 50 s.
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

# run_part NAME IP PROBE [PROBE-ARGS...] -- [QDBD-ARGS...]: one qdbd on a free
# port of IP with the small limits the probes expect, probed; 0 when they pass
run_part() {
    name=$1 ip=$2 probe=$3
    shift 3
    pargs=""
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        pargs="$pargs $1"
        shift
    done
    shift
    port=$(python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$ip") ||
        { echo "SKIP: $ip is not usable here"; exit 77; }
    addr=$ip:$port
    log=$tmp/qdbd-$name.log
    "$QDBD" --config=/dev/null -a "$addr" --transient -l "$log" --log-level=info \
        --sessions=16 --idle-timeout=8 --max-content-size=1M --input-memory=8M --amo-bytes=4M \
        --log-rate=5 "$@" &
    pid=$!
    n=50
    # shellcheck disable=SC2086 # the key file option, when there is one
    until "$QDBSH" --daemon="$addr" --timeout=1000 $qdbsh_key get nothing 2>&1 | grep -q "not found"; do
        n=$((n - 1))
        [ $n -gt 0 ] || { echo "FAIL: qdbd ($name) did not serve within 10 s"; cat "$log"; return 1; }
        sleep 0.2
    done
    # shellcheck disable=SC2086 # the probe's extra arguments, split on purpose
    PYTHONPATH="$srcdir/tests" timeout 90 python3 "$srcdir/tests/$probe" "$addr" "$pid" "$log" \
        "$QDBSH" $pargs
    rc=$?
    kill -0 "$pid" 2>/dev/null || { echo "FAIL: qdbd ($name) died"; rc=1; }
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
    if [ $rc -ne 0 ]; then
        echo "-- qdbd's log ($name, last 40 lines):"
        tail -n 40 "$log"
        return 1
    fi
    return 0
}

# in the clear, on 127.0.0.7 (no other test uses that address)
qdbsh_key=
run_part plain 127.0.0.7 limits_probe.py -- || exit 1
# over TLS, on 127.0.0.77 (no other test uses that address either)
if ! command -v openssl >/dev/null; then
    echo "limits: over TLS: SKIPPED, no openssl program for the probe's TLS clients"
    exit 0
fi
(umask 077 && "$QDBD" --gen-key >"$tmp/hive.key") || { echo "FAIL: qdbd --gen-key"; exit 1; }
qdbsh_key=--key-file=$tmp/hive.key
run_part tls 127.0.0.77 limits_tls_probe.py "$tmp/hive.key" 2 -- \
    --hive-key-file="$tmp/hive.key" --handshake-timeout=2 || exit 1
exit 0

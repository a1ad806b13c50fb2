#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/bench-direct.sh: qdb-bench --direct (requests straight to a 1-node
# hive, without the client core) still checks every reply.  Two transient
# nodes on 127.0.0.94 (ports 29600-29699), one with a hive key.  Exit 0
# pass, 77 skip, 1 fail.
#   1. put then get of 2,000 keys: no error, no miss, exit 0; the same over
#      TLS-PSK with --key-file
#   2. gets of 5,000 keys of which 2,000 were written: exactly 3,000 misses
#      (each reply matched to its request)
#   3. a value the bench did not write (update with qdbsh): counted as a wrong
#      value, exit 1
#   4. no key against the keyed node, and nobody listening: every request
#      an error, exit 1, within the time limit
# Every process started here is killed on exit; every wait is bounded.
QDBD=${QDBD:-transport-real/qdbd}
QDBSH=${QDBSH:-client/qdbsh}
QDB_BENCH=${QDB_BENCH:-bench/qdb-bench}
for b in "$QDBD" "$QDB_BENCH"; do
    [ -x "$b" ] || { echo "SKIP: $b is not built"; exit 77; }
done
TIMEOUT=
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout -k 2 30"
H=127.0.0.94
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-test.XXXXXX") || exit 99
pids=
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
trap 'exit 99' INT TERM HUP
failed=0
fail() { echo "FAIL: $*"; failed=1; }

(umask 077 && "$QDBD" --gen-key >"$tmp/key") || exit 99
# start NAME PORT ARGS...: a transient node on $H:PORT, its pid in $pid
start() {
    name=$1 port=$2
    shift 2
    "$QDBD" -a "$H:$port" --transient "$@" >"$tmp/$name.log" 2>&1 &
    pid=$!
    pids="$pids $pid"
}
# up PORT PID ARGS...: until a put through the node succeeds (at most 30 s);
# false when the node exited (its port taken by another program)
up() {
    port=$1 upid=$2
    shift 2
    i=0
    until bench "$port" -c 1 -n 1 -t put "$@" && [ $rc -eq 0 ]; do
        kill -0 "$upid" 2>/dev/null || return 1
        i=$((i + 1))
        [ $i -lt 150 ] || { echo "FAIL: the node on $port never answered: $(cat "$tmp/err")"; exit 1; }
        sleep 0.2
    done
}

# bench PORT ARGS...: qdb-bench --direct --csv, its CSV in $tmp/out, exit in rc
bench() {
    port=$1
    shift
    $TIMEOUT "$QDB_BENCH" -h $H -p "$port" --direct --csv --time-limit 10 "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
# field TEST N: column N (1 test, 2 rps, ... 9 errors, 10 misses) of TEST's line
field() { awk -F'"' -v t="$1" -v n="$2" '$2 == t { print $(2 * n) }' "$tmp/out"; }

# the plain node on P, the keyed one on K; another port when one was taken
tries=0
while :; do
    P=$((29600 + ($$ + tries * 7) % 50 * 2))
    K=$((P + 1))
    start plain $P
    npid=$pid
    start keyed $K --hive-key-file="$tmp/key"
    kpid=$pid
    up $P $npid && up $K $kpid --key-file="$tmp/key" && break
    tries=$((tries + 1))
    [ $tries -lt 3 ] || { echo "FAIL: no node started: $(cat "$tmp/plain.log" "$tmp/keyed.log")"; exit 1; }
    kill $npid $kpid 2>/dev/null
done

# 1. every reply checked, nothing wrong
for port in $P $K; do
    kf=
    [ "$port" -eq "$K" ] && kf=--key-file=$tmp/key
    bench "$port" -c 5 -P 4 -n 2000 -r 2000 --sequential -t put,get $kf
    [ $rc -eq 0 ] || fail "put,get on $port: exit $rc: $(cat "$tmp/err")"
    for t in PUT GET; do
        [ "$(field $t 9)" = 0 ] || fail "$t on $port: $(field $t 9) errors"
    done
    [ "$(field GET 10)" = 0 ] || fail "GET on $port: $(field GET 10) misses"
done

# 2. misses are told from hits, reply by reply
bench $P -c 5 -P 4 -n 5000 -r 5000 --sequential -t get
[ $rc -eq 0 ] || fail "get of 5000: exit $rc: $(cat "$tmp/err")"
[ "$(field GET 10)" = 3000 ] || fail "get of 5000 with 2000 written: $(field GET 10) misses"

# 3. a value the bench did not write
if [ -x "$QDBSH" ]; then
    $TIMEOUT "$QDBSH" -d "$H:$P" update key:7 "not ours" >"$tmp/sh" 2>&1 || fail "qdbsh put failed: $(cat "$tmp/sh")"
    bench $P -c 1 -n 8 -r 8 --sequential -t get
    [ $rc -eq 1 ] || fail "a foreign value: exit $rc"
    grep -q "1 GETs returned a value not written" "$tmp/err" || fail "a foreign value: $(cat "$tmp/err")"
fi

# 4. no answer: every request an error
bench $K -c 2 -n 50 -t put
[ $rc -eq 1 ] && [ "$(field PUT 9)" = 50 ] || fail "no key: exit $rc, $(field PUT 9) errors"
bench $((P + 100)) -c 2 -n 50 -t put
[ $rc -eq 1 ] && [ "$(field PUT 9)" = 50 ] || fail "nobody listening: exit $rc, $(field PUT 9) errors"

[ $failed -eq 0 ] && echo "PASS: qdb-bench --direct checks every reply"
exit $failed

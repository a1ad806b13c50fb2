#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/slow-node.sh: a slow node is not a dead one (client/core.h, 4.).
# One qdbd --transient on 127.0.0.61 with ID 1; one qdbsh in line mode
# writes and reads 24 entries, one pair every 0.15 s, and qdbd is stopped
# (SIGSTOP) for 4 s in the middle, then continued.  The client's timeouts
# have adapted to loopback round trips (200 ms, the floor), so the FIND
# that locates the next alias times out while qdbd is stopped.  It used to
# take each silence as the node's death and end the operation with
# "unstable hive" after four of them (~3 s); now every command must
# succeed, the one caught in the stop only later.  (The aliases come in
# decreasing SHA-3 order: with the node at ID 1, what the client learns
# from a served alias, (ID - 1, 1], never covers the next one, so each
# needs its FIND.)  Then qdbd is killed: a refused
# connection still fails a command at once, not at the 60-s timeout.
# Bounded (about 10 s), cleaned up (tests/hivelib.sh).  Exit 0 pass, 77
# skip (qdbd or qdbsh not built), 1 fail.
. "${srcdir:-.}/tests/hivelib.sh"
failc() { echo "-- qdbsh's errors:"; head -n 20 "$tmp/err"; fail "$@"; }

# node 61 (127.0.0.61, an address no other test uses) on a free port
PORT=$(( 20000 + ($$ * 17) % 40000 ))
for try in 1 2 3 4 5 6; do
    start_node 61 --id=1 --transient
    wait_started 61 && break
    rc=$?
    [ $rc -eq 69 ] && [ $try -lt 6 ] || { cat "$tmp/n61.err"; fail "qdbd did not start (exit $rc)"; }
    PORT=$(( 20000 + (PORT + 997) % 40000 ))
done
ADDR=127.0.0.61:$PORT
wait_until 10 qsh 2 -d "$ADDR" -t 1000 update probe x || fail "qdbd does not answer"

# one client session: a pair of commands every 0.15 s (3.6 s of them)
KEYS="k189 k57 k107 k160 k10 k142 k118 k98 k11 k174 k105 k115 k195 k0 k198 k109 k75 k130 k7
k46 k49 k91 k175 k166"
for k in $KEYS; do
    echo "put $k v$k"
    echo "get $k"
    sleep 0.15
done | qsh 60 -d "$ADDR" >"$tmp/out" 2>"$tmp/err" &
cpid=$!
pids="$pids $cpid"
sleep 1
kill -STOP "$pid61" || fail "could not stop qdbd"
sleep 4
kill -CONT "$pid61" || fail "could not continue qdbd"
wait "$cpid"
rc=$?
grep -i "unstable" "$tmp/err" && failc "a slow node was reported as an unstable hive"
[ $rc -eq 0 ] || failc "qdbsh exited $rc"
[ "$(grep -c '^vk[0-9]*$' "$tmp/out")" -eq 24 ] || failc "$(grep -c '^vk' "$tmp/out") of 24 reads answered"
for k in $KEYS; do
    grep -qx "v$k" "$tmp/out" || failc "get $k did not print v$k"
done

# a node that is gone (connection refused) fails a command at once
kill -9 "$pid61"; wait "$pid61" 2>/dev/null
t=$(now_ms)
qsh 30 -d "$ADDR" get k1 >/dev/null 2>"$tmp/err" && fail "get from a dead node succeeded"
[ $(( $(now_ms) - t )) -lt 10000 ] || fail "a refused connection took $(( $(now_ms) - t )) ms to fail"
echo "PASS: 48 commands through a 4-s stop of qdbd; a dead node refused at once"
exit 0

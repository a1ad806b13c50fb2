#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/suspicion.sh: the failure detector on real processes (node/watch.c,
# "Suspicion").  Three qdbd --transient on 127.0.0.71-73 (addresses no other
# test uses) with fixed IDs, so the ring is 71 -> 72 -> 73 -> 71:
#   1. SIGSTOP node 73 for 0.5 s -- shorter than the three timeouts and the
#      1.25-s window a strike needs (QDB_SUSPECT_WINDOW of qdbd's 1-s RPC
#      timeout): node 72 keeps it as successor, node 71 as predecessor;
#   2. SIGSTOP node 72 for 8 s -- a silent host: node 71 takes node 73 as
#      successor within 5 s of the stop (its watch's PINGs time out three
#      times on the loopback RTO floor, 0.2 + 0.4 + 0.8 s).  Node 72, not
#      73: the answers node 73 gave late after its stop raised the round
#      trip its neighbours measure, and so their timeouts, for a while;
#   3. SIGCONT: node 72 is back in the ring within 15 s.
# Bounded (about 20 s), cleaned up (tests/hivelib.sh).  Exit 0 pass, 77
# skip (qdbd not built, no loopback aliases), 1 fail.
QDBSH_OPTIONAL=yes
. "${srcdir:-.}/tests/hivelib.sh"

ID71=$(printf '2%.0s' $(seq 64))
ID72=$(printf '5%.0s' $(seq 64))
ID73=$(printf 'a%.0s' $(seq 64))
PORT=$(( 20000 + ($$ * 31) % 40000 ))
ring3_start 71 72 73
whole() { ring3_whole 71 72 73; }
wait_until 20 whole || fail "no ring 71 -> 72 -> 73 within 20 s"
sleep 2 # quiet rounds: only the watch looks now
echo "ring 71 -> 72 -> 73 ($(elapsed))"

# ring lines of node I stamped at or after T (ms) that match PATTERN
logged_since() {
    grep "ring: .*$2" "$tmp/n$1.log" | while read -r _when _rest; do
        _ms=$(date -d "$_when" +%s%3N) || continue
        [ "$_ms" -ge "$3" ] && echo "$_ms"
    done
}

# ---- 1. a short stop is no death ---------------------------------------------
T_STOP=$(now_ms)
kill -STOP "$pid73" || fail "could not stop node 73"
sleep 0.5
kill -CONT "$pid73"
sleep 3
[ -z "$(logged_since 72 "successor 127.0.0.71:$PORT," "$T_STOP")" ] ||
    fail "node 73 stopped for 0.5 s was struck out of node 72's successors"
[ -z "$(logged_since 71 "predecessor none" "$T_STOP")" ] ||
    fail "node 73 stopped for 0.5 s was cleared as node 71's predecessor"
whole || fail "the ring changed after a 0.5-s stop"
echo "SIGSTOP node 73 for 0.5 s: still in the ring ($(elapsed))"

# ---- 2. a long stop is: struck out within 5 s --------------------------------
T_STOP=$(now_ms)
kill -STOP "$pid72" || fail "could not stop node 72"
struck() { [ "$(succ_of 71)" = "127.0.0.73:$PORT" ]; }
wait_until 7 struck || { kill -CONT "$pid72"; fail "node 72 stopped: not struck out within 7 s"; }
t=$(logged_since 71 "successor 127.0.0.73:$PORT," "$T_STOP" | head -n 1)
dt=$((t - T_STOP))
[ $dt -lt 5000 ] || { kill -CONT "$pid72"; fail "node 72 stopped: struck out after $dt ms (> 5 s)"; }
echo "SIGSTOP node 72: node 71 took node 73 as successor $dt ms after the stop ($(elapsed))"
sleep $(( (8000 - ($(now_ms) - T_STOP)) / 1000 ))
kill -CONT "$pid72"

# ---- 3. back: re-admitted ------------------------------------------------------
wait_until 15 whole || fail "node 72 continued: not back in the ring within 15 s"
echo "SIGCONT node 72: back in the ring ($(elapsed))"
echo "PASS ($(elapsed))"
exit 0

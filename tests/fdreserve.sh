#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/fdreserve.sh: the descriptor reserve (qdbd(8), LIMITS, "Sessions and
# descriptors").  A node keeps 256 descriptors out of --sessions' reach for
# Berkeley DB and its peers; this shows that a node whose every session is
# taken by idle clients still does its part of the ring and of the store.
#
# Four Berkeley DB nodes on 127.0.0.81-84 (no other test uses them), in ring
# order A (.81, ID 55..), B (.82, aa..), C (.83, ff..), D (.84, 10..):
#   1. A, B and C; B under `ulimit -n 600`, so its --sessions is lowered to
#      600 - 256 = 344 (the warning is checked); 10 entries of B (IDs in
#      ]A;B]) put through A
#   2. 650 idle clients connect to B: it keeps 344 of them less the
#      connections its peers opened, and turns the others away (logged)
#   3. with every session of B taken, its peer work, seen in the nodes' own
#      "ring:" lines (qdbsh's hive_status would need a session on B):
#      - D joins between C and A: the ring A, B, C, D settles around B
#      - kill -9 C, B's successor: B repairs the ring to A, B, D (it
#        connects to D, and D's connections to B come from the reserve)
#   4. the flooder frees 2 sessions (the other clients stay): 10 more entries
#      of B put through A reach B and are stored while B's descriptor table
#      holds the flood; all 20 read back
#   5. kill -9 B and the flooder, restart B on its root: its 20 entries are
#      read back through A (they were in its Berkeley DB log), and its log
#      never says "storage error", "checkpoint failed" or EMFILE
# A node whose join lookup walks through B (one joining between B and C) is
# not B's neighbour yet: B turns it away like a client until a session frees,
# reserve or not -- the reserve serves the ring B already knows.
# With the reserve patched out (QDBD_FD_RESERVE 8: --sessions 592), the flood
# takes every descriptor of B: step 2 fails (B keeps fewer clients than its
# sessions: accept() fails with EMFILE), and so does step 5's log check
# (connections shed for want of a descriptor).
# Exit 0 pass, 77 skip (no qdbd, qdbsh or python3, no 127.0.0.81-84),
# 1 fail.  About 30 s; every wait has a deadline, everything is killed and
# removed by the exit trap (tests/hivelib.sh).
. "${srcdir:-.}/tests/hivelib.sh"
[ -n "$HAVE_SH" ] || exit 77
need python3 "no python3 for the flooder"

FD_LIMIT=600
FLOOD=$((FD_LIMIT + 50)) # more than the descriptors: a flood of any size
SESSIONS=$((FD_LIMIT - 256))
IDA=$(printf '5%.0s' $(seq 64))
IDB=$(printf 'a%.0s' $(seq 64))
IDC=$(printf 'f%.0s' $(seq 64))
IDD=1$(printf '0%.0s' $(seq 63))
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.81", 0)); print(s.getsockname()[1])' 2>/dev/null) ||
    { echo "SKIP: 127.0.0.81 is not usable here"; exit 77; }
for i in 82 83 84; do
    python3 -c "import socket; socket.socket().bind(('127.0.0.$i', $PORT))" 2>/dev/null ||
        { echo "SKIP: 127.0.0.$i:$PORT is not usable here"; exit 77; }
done

# node I ARGS...: qdbd on 127.0.0.I with its root and log ($tmp/nI.log)
node() {
    _i=$1
    shift
    "$QDBD" --config=/dev/null -a "127.0.0.$_i:$PORT" -r "$tmp/root$_i" -l "$tmp/n$_i.log" \
        --log-level=info "$@" 2>>"$tmp/n$_i.err" &
    eval "pid$_i=\$!"
    pids="$pids $!"
}
# B under the low descriptor limit (soft and hard: qdbd cannot raise it)
node_b() {
    (ulimit -n $FD_LIMIT && exec "$QDBD" --config=/dev/null -a "127.0.0.82:$PORT" \
        -r "$tmp/root82" -l "$tmp/n82.log" --log-level=info "$@" 2>>"$tmp/n82.err") &
    pid82=$!
    pids="$pids $!"
}
up() { grep -q "qdbd .*: node" "$tmp/n$1.log" 2>/dev/null; }
wait_up() { wait_until 10 up "$1" || fail "node 127.0.0.$1 did not start"; }
# stable_ring N: the walk from A finds N nodes, every one stable
stable_ring() {
    _out=$(qsh 10 --raw --daemon="127.0.0.81:$PORT" hive_status 2>/dev/null) || return 1
    echo "$_out" | grep -q "\"nodes\":$1," && ! echo "$_out" | grep -q '"stable":false'
}

# last_ring I: node I's last "ring:" log line
last_ring() { grep "ring: " "$tmp/n$1.log" | tail -n 1; }
# cycle I J...: each node's last ring line is stable and links it to the next
# one, whose predecessor it is (the last to the first)
cycle() {
    _prev=
    for _i in "$@" "$1"; do
        if [ -n "$_prev" ]; then
            last_ring "$_prev" | grep -q "successor 127.0.0.$_i:$PORT, stable" || return 1
            last_ring "$_i" | grep -q "predecessor 127.0.0.$_prev:$PORT," || return 1
        fi
        _prev=$_i
    done
}

# aliases N: N aliases whose ID (SHA3-256) lies in ]A;B], one a line
aliases() {
    python3 - "$1" "$IDA" "$IDB" <<'EOF'
import hashlib, sys
n, lo, hi = int(sys.argv[1]), *(int(x, 16) for x in sys.argv[2:])
i = 0
while n:
    alias = "fdr-%d" % i
    if lo < int(hashlib.sha3_256(alias.encode()).hexdigest(), 16) <= hi:
        print(alias)
        n -= 1
    i += 1
EOF
}
# put_all FILE NODE: put every alias of FILE (value v-ALIAS) through NODE
put_all() {
    sed 's/.*/put & v-&/' "$1" | qsh 30 --timeout=5000 --daemon="127.0.0.$2:$PORT" \
        >"$tmp/put.out" 2>&1 || fail "puts through 127.0.0.$2: $(grep -v '^$' "$tmp/put.out" | head -n 3)"
}
# get_all FILE NODE: every alias of FILE reads back v-ALIAS through NODE
get_all() {
    sed 's/.*/get &/' "$1" | qsh 30 --timeout=5000 --daemon="127.0.0.$2:$PORT" \
        >"$tmp/got" 2>"$tmp/get.err"
    sed 's/.*/v-&/' "$1" | cmp -s - "$tmp/got"
}

# ---- 1. A, B ($FD_LIMIT descriptors) and C; 20 entries of B -------------------------
node 81 --id="$IDA"
wait_up 81
node_b --id="$IDB" --peer="127.0.0.81:$PORT"
node 83 --id="$IDC" --peer="127.0.0.81:$PORT"
wait_up 82
wait_up 83
wait_until 20 stable_ring 3 || fail "the hive of 3 did not settle"
grep -q "sessions=4096 lowered to $SESSIONS" "$tmp/n82.log" ||
    fail "B's --sessions was not lowered to $SESSIONS under ulimit -n $FD_LIMIT"
aliases 20 >"$tmp/db"
head -n 10 "$tmp/db" >"$tmp/db1"
tail -n 10 "$tmp/db" >"$tmp/db2"
put_all "$tmp/db1" 81
echo "fdreserve: A, B (sessions $SESSIONS) and C stable, 10 entries of B put ($(elapsed))"

# ---- 2. idle clients take every session of B ------------------------------------
python3 "${srcdir:-.}/tests/fdreserve_flood.py" "127.0.0.82:$PORT" $FLOOD 2 "$tmp/flood" &
flood=$!
pids="$pids $flood"
flood_counted() { [ -s "$tmp/flood" ]; }
wait_until 40 flood_counted || fail "the flooder did not finish connecting"
kept=$(head -n 1 "$tmp/flood")
# its sessions less the connections its peers opened to it (A's, C's)
[ "$kept" -le "$SESSIONS" ] && [ "$kept" -ge $((SESSIONS - 4)) ] ||
    fail "B kept $kept idle clients, not its $SESSIONS sessions less its peers'"
grep -q "the most --sessions allows: refusing one" "$tmp/n82.log" ||
    fail "B did not log the clients it turned away"
echo "fdreserve: B holds $kept idle clients (every session but its peers') and turns more away ($(elapsed))"

# ---- 3. B's peer work, every session taken -------------------------------------
node 84 --id="$IDD" --peer="127.0.0.81:$PORT"
wait_up 84
wait_until 20 cycle 81 82 83 84 || fail "no stable ring A, B, C, D while B's sessions were full"
echo "fdreserve: D joined, ring A, B, C, D stable ($(elapsed))"
kill -9 "$pid83"
wait_until 20 cycle 81 82 84 || fail "B did not repair the ring after C's kill"
echo "fdreserve: C killed, B repaired the ring to A, B, D ($(elapsed))"

# ---- 4. two sessions freed: puts of B's entries through A -----------------------
kill -USR1 "$flood"
freed() { grep -q "^freed" "$tmp/flood"; }
wait_until 5 freed || fail "the flooder did not free 2 sessions"
put_all "$tmp/db2" 81
get_all "$tmp/db" 81 || fail "B's entries read back wrong: $(head -n 3 "$tmp/get.err")"
echo "fdreserve: 10 more entries of B put and read through A, $((kept - 2)) idle clients still on B ($(elapsed))"

# ---- 5. B's store survives a kill -9 --------------------------------------------
kill -9 "$pid82" "$flood"
wait "$pid82" "$flood" 2>/dev/null
node 82 --peer="127.0.0.81:$PORT"
wait_up 82
wait_until 20 stable_ring 3 || fail "B did not come back into the ring"
wait_until 10 get_all "$tmp/db" 81 ||
    fail "after B's restart, its entries are not all back: $(head -n 3 "$tmp/get.err")"
if grep -E "storage error|checkpoint failed|Too many open files|shedding" "$tmp/n82.log"; then
    fail "B's log shows a storage or descriptor error"
fi
echo "fdreserve: B restarted on its root, its 20 entries back, no storage error ($(elapsed))"
exit 0

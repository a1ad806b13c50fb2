#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/replication.sh: replication on real processes.  Five qdbd on
# 127.0.0.1-5 (IDs in that ring order), the first with --replication=3, the
# others adopting it at join; a sixth asking for 2 is refused (exit 78).
#   1. 300 entries through node 1
#   2. kill -9 nodes 3 and 4 (adjacent): all 300 readable within 5 s through
#      each survivor
#   3. remove 20 while they are down; restart them on their old roots: the
#      20 stay removed, the 280 others are still there
#   4. node 6 joins: the copies that are no longer on a replica are dropped,
#      the records on the six nodes add up to 3 x 300 within 60 s
#   5. kill -9 node 2 and lose its root: node 1's arc, which wraps past
#      zero, back on three of the five live nodes within 20 s; node 2 back
#      on an empty root
#   6. remove_all through node 2: nothing left through any node; kill -9
#      nodes 2 and 3: their replicas, now owners, have nothing left either
#   7. nodes 2 and 3 back, 300 new entries; node 4 leaves (SIGTERM), and at
#      once kill -9 nodes 5 and 6: all of them readable through 1, 2 and 3
# Exit 0 pass, 77 skip (no qdbd/qdbsh, no loopback aliases, no free port),
# 1 fail, 99 hard error.  The hive comes from tests/hivelib.sh.

N=300
GONE=20

# node 1's --max-content-size also bounds its repair batches (section 5)
node_args() { [ "$1" -eq 1 ] && echo "--replication=3 --enable-purge-all --max-content-size=1K"; }
. "${srcdir:-.}/tests/hivelib.sh"
hive_start_replicated 3 5
# ...and node_config of a node that joined shows the K it adopted
cf=$(qsh 20 --daemon="127.0.0.2:$PORT" --raw node_config) || fail "node_config of node 2"
echo "$cf" | grep -q '"replication_factor":3,' ||
    fail "node_config of node 2 does not show replication_factor 3: $cf"
# a node asking for another value is refused, with the reason
$TIMEOUT 20 "$QDBD" -a "127.0.0.6:$PORT" --transient --peer="127.0.0.1:$PORT" --replication=2 \
    -l "$tmp/x6.log" 2>"$tmp/x6.err"
rc=$?
[ $rc -eq 78 ] || fail "a node with --replication=2 exited $rc, not 78"
grep -q "replication=3" "$tmp/x6.err" || fail "the refusal does not say what to do: $(cat "$tmp/x6.err")"
echo "hive of 5 with replication 3; a node asking for 2 refused ($(elapsed))"
put_entries "$N"

# ---- kill -9 two adjacent nodes ---------------------------------------------
kill9 3 4
t=$(now_ms)
for via in 1 2 5; do
    wait_until 5 all_read $via || fail "with nodes 3 and 4 dead, not all $N readable through node $via"
done
echo "kill -9 nodes 3 and 4: all $N readable through 1, 2 and 5 after $(( $(now_ms) - t )) ms"
[ $(( $(now_ms) - t )) -le 5000 ] || fail "took more than 5 s"

# ---- remove 20 while they are down, then restart them on their roots ----------
i=1
while [ $i -le $GONE ]; do echo "remove key$i"; i=$((i + 1)); done >"$tmp/removes"
qn 2 <"$tmp/removes" 2>"$tmp/rm.err" || fail "removing $GONE: $(head -n 3 "$tmp/rm.err")"
start_node 3 --peer="127.0.0.1:$PORT"
start_node 4 --peer="127.0.0.1:$PORT"
rejoined() { [ "$(grep -c "hand-over complete" "$tmp/n$1.log")" -ge 2 ]; }
wait_until 15 rejoined 3 && wait_until 15 rejoined 4 || fail "nodes 3 and 4 did not rejoin"
sed -n "$((GONE + 1)),\$p" "$tmp/gets" >"$tmp/gets.kept"
sed -n "$((GONE + 1)),\$p" "$tmp/expect" >"$tmp/expect.kept"
head -n $GONE "$tmp/gets" >"$tmp/gets.gone"
for via in 1 2 3 4 5; do
    qn $via <"$tmp/gets.gone" >"$tmp/got" 2>"$tmp/err"
    back=$(grep -c . "$tmp/got")
    [ "$back" -eq 0 ] || fail "through node $via, $back removed entries came back"
    [ "$(grep -c "alias not found" "$tmp/err")" -eq $GONE ] ||
        fail "through node $via: $(sort -u "$tmp/err" | head -n 3)"
    qn $via <"$tmp/gets.kept" >"$tmp/got" 2>"$tmp/err"
    cmp -s "$tmp/got" "$tmp/expect.kept" || fail "through node $via, the others read back wrong"
done
echo "nodes 3 and 4 back on their roots: the $GONE removed stay removed," \
    "the $((N - GONE)) others readable through every node"

# ---- a join leaves no stray copies --------------------------------------------
# Node 6 (ID 66..) joins between 5 and 1: node 1 no longer replicates node
# 4's range, nor node 2 node 5's.  Their copies are offered back to the
# owner by digest and dropped (node/stray.h): once done, the records
# (entries and tombstones) on the six nodes add up to 3 x N, no more.
ID6=$(printf '6%.0s' $(seq 64))
start_node 6 --id="$ID6" --peer="127.0.0.1:$PORT"
hive_wait_stable 6
records_on() {
    qn "$1" --raw node_status 2>/dev/null | grep -o '"entries":[0-9]*' | cut -d: -f2
}
records_total() { # NODE...: their records add up to 3 x N
    _sum=0
    _each=
    for _i in "$@"; do
        _c=$(records_on $_i)
        [ -n "$_c" ] || return 1
        _sum=$((_sum + _c))
        _each="$_each $_c"
    done
    echo "$_sum (node by node:$_each)" >"$tmp/records"
    [ "$_sum" -eq $((3 * N)) ]
}
wait_until 60 records_total 1 2 3 4 5 6 ||
    fail "after node 6 joined, the nodes hold $(cat "$tmp/records") records, not $((3 * N))"
for via in 1 6; do
    qn $via <"$tmp/gets.kept" >"$tmp/got" 2>"$tmp/err"
    cmp -s "$tmp/got" "$tmp/expect.kept" || fail "after node 6 joined, through node $via, reads differ"
done
echo "node 6 joined: $((3 * N)) records on the six nodes, 3 x $N: no stray copies ($(elapsed))"

# ---- an arc that wraps past zero back to K copies ------------------------------
# Node 1 (ID 11..) owns (66.., 11..], across zero: most of its records lie
# before zero.  Node 2, its first replica, is killed and its root lost:
# node 4 becomes node 1's second replica, and node 1's repair copies it the
# arc in batches of about a dozen records (its --max-content-size=1K).  A
# batch that filled before zero used to take a record past zero as well,
# and the next one began there: the rest of the arc before zero waited for
# anti-entropy, one batch a minute (issue 8).
kill -9 "$pid2"
wait "$pid2" 2>/dev/null
rm -rf "$tmp/root2"
t=$(now_ms)
wait_until 20 records_total 1 3 4 5 6 ||
    fail "node 2 lost: the five others hold $(cat "$tmp/records") records, not $((3 * N))"
echo "node 2 killed, its root lost: $((3 * N)) records on the five others after" \
    "$(( $(now_ms) - t )) ms ($(cat "$tmp/records"))"
# (node 4's copies of node 1's arc are stray again once node 2 is back:
# they go at node 4's next walk, up to QDB_ANTI_ENTROPY_US later, stray.h)
start_node 2 --id="$ID2" --peer="127.0.0.1:$PORT"
hive_wait_stable 6

# ---- remove_all reaches the replicas too ------------------------------------
# Every owner tombstones its range and copies the tombstones to its replicas:
# with two owners then killed, their replicas, now owners, have nothing live.
qn 2 remove_all 2>"$tmp/err" || fail "remove_all: $(cat "$tmp/err")"
none_left() {
    qn "$1" <"$tmp/gets" >"$tmp/got" 2>"$tmp/err"
    [ ! -s "$tmp/got" ] && [ "$(grep -c "alias not found" "$tmp/err")" -eq $N ]
}
for via in 1 2 3 4 5; do
    none_left $via || fail "after remove_all, through node $via: $(grep -c . "$tmp/got") read," \
        "$(sort -u "$tmp/err" | head -n 3)"
done
kill -9 "$pid2" "$pid3"
wait "$pid2" 2>/dev/null
wait "$pid3" 2>/dev/null
for via in 1 4 5; do
    wait_until 10 none_left $via || fail "remove_all, nodes 2 and 3 killed, through node $via:" \
        "$(grep -c . "$tmp/got") read, $(sort -u "$tmp/err" | head -n 3)"
done
echo "remove_all: none of the $N left through any node, nor on the replicas of" \
    "nodes 2 and 3 once they were killed"

# ---- a graceful leave leaves K copies -----------------------------------------
# Nodes 2 and 3 come back: six nodes, 1 -> 2 -> .. -> 6.  Node 4 leaves
# (SIGTERM): node 5 takes its range and copies each batch on to its
# replicas, 6 and 1, before it acknowledges it.  Killing nodes 5 and 6 the
# moment node 4 has exited (K - 1 = 2 failures) leaves 1, 2 and 3 with
# every entry.  (Before, node 4's range was on nodes 5 and 6 only until
# node 5's repair reached node 1.)
start_node 2 --peer="127.0.0.1:$PORT"
start_node 3 --peer="127.0.0.1:$PORT"
hive_wait_stable 6
sed 's/key/left/' "$tmp/puts" >"$tmp/puts.left"
sed 's/key/left/' "$tmp/gets" >"$tmp/gets.left"
left_puts_ok() { qn 1 <"$tmp/puts.left" >/dev/null 2>"$tmp/puts.err"; }
if ! wait_until 20 left_puts_ok && grep -v "already exists" "$tmp/puts.err" | grep -q .; then
    fail "putting $N entries on six nodes: $(head -n 3 "$tmp/puts.err")"
fi
left_read() { qn "$1" <"$tmp/gets.left" >"$tmp/got$1" 2>"$tmp/err$1" && cmp -s "$tmp/got$1" "$tmp/expect"; }
wait_until 10 left_read 1 || fail "$N entries not read back on six nodes"
kill -TERM "$pid4"
wait_exit "$pid4" 20
[ $exit_rc -eq 0 ] || fail "node 4 exited $exit_rc after SIGTERM"
kill -9 "$pid5" "$pid6"
wait "$pid5" 2>/dev/null
wait "$pid6" 2>/dev/null
for via in 1 2 3; do
    wait_until 15 left_read $via ||
        fail "node 4 left, nodes 5 and 6 killed: not all $N readable through node $via" \
            "($(grep -c . "$tmp/got$via") read; $(sort "$tmp/err$via" | uniq -c | head -n 3))"
done
echo "node 4 left, nodes 5 and 6 killed at once: all $N readable through 1, 2 and 3"
echo "PASS ($(elapsed))"
exit 0

#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/forget.sh: a node gone for good, on real processes (K = 1).  Four
# qdbd on 127.0.0.1-4 (IDs in that ring order), the default --replication=1.
#   1. 100 entries through node 1
#   2. kill -9 node 3: its entries answer "entry unavailable" through node 1
#      (the others still read back)
#   3. forget_node of a live node (2) is refused
#   4. qdbsh forget_node ID3 through node 1: node 3's entries answer "alias
#      not found" through every survivor, and can be written again
# Exit 0 pass, 77 skip (no qdbd/qdbsh, no loopback aliases, no free port),
# 1 fail, 99 hard error.  The hive comes from tests/hivelib.sh.

N=100
. "${srcdir:-.}/tests/hivelib.sh"
# IDs 22.., 44.., cc.., ee..: the ring is 1 -> 2 -> 3 -> 4, node 3 owning half
set -- 2 4 c e
for i in 1 2 3 4; do eval "ID$i=\$(printf '$1%.0s' \$(seq 64))"; shift; done
hive_start 4
hive_wait_stable 4
put_entries "$N"

# ---- kill -9 node 3 ---------------------------------------------------------
kill -9 "$pid3"
wait "$pid3" 2>/dev/null
# settled: every get answers, each with its value or "unavailable"
gets_settled() {
    qn "$1" <"$tmp/gets" >"$tmp/got" 2>"$tmp/err"
    lost=$(grep -c "entry unavailable" "$tmp/err")
    [ "$lost" -gt 0 ] && [ $(( lost + $(grep -c . "$tmp/got") )) -eq $N ]
}
wait_until 20 gets_settled 1 || fail "node 3's entries do not answer unavailable: $(sort -u "$tmp/err" | head -n 3)"
echo "kill -9 node 3: $lost of $N entries unavailable, the others read ($(elapsed))"
# which: the gets that failed
i=1
: >"$tmp/gets.lost"
while [ $i -le $N ]; do
    grep -qx "value-$i" "$tmp/got" || echo "get key$i" >>"$tmp/gets.lost"
    i=$((i + 1))
done
[ "$(grep -c . "$tmp/gets.lost")" -eq "$lost" ] || fail "could not tell which entries were lost"

# ---- forget_node ----------------------------------------------------------------
out=$(qn 1 forget_node "$ID2" 2>&1) && fail "forgetting live node 2 succeeded: $out"
echo "$out" | grep -q "refused" || fail "forgetting live node 2: $out"
qn 1 forget_node "not-an-id" 2>"$tmp/err" && fail "forget_node accepted a malformed ID"
grep -q "not a node ID" "$tmp/err" || fail "malformed ID: $(cat "$tmp/err")"
forgotten() { qn 1 forget_node "$ID3" >/dev/null 2>"$tmp/fg.err"; }
wait_until 20 forgotten || fail "forget_node $ID3: $(cat "$tmp/fg.err")"
all_not_found() {
    qn "$1" <"$tmp/gets.lost" >/dev/null 2>"$tmp/err"
    [ "$(grep -c "alias not found" "$tmp/err")" -eq "$lost" ]
}
for via in 1 2 4; do
    wait_until 10 all_not_found $via ||
        fail "after forget_node, through node $via: $(sort -u "$tmp/err" | head -n 3)"
done
echo "forget_node: the $lost answer not found through nodes 1, 2 and 4 ($(elapsed))"
k=$(head -n 1 "$tmp/gets.lost" | cut -d' ' -f2)
qn 2 put "$k" again 2>"$tmp/err" || fail "put $k after forget_node: $(cat "$tmp/err")"
[ "$(qn 4 get "$k")" = "again" ] || fail "$k not read back after forget_node"
echo "PASS ($(elapsed))"
exit 0

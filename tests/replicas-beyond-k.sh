#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/replicas-beyond-k.sh: more than K - 1 holders fail, on real
# processes (K = 2).  Five qdbd on 127.0.0.1-5 (IDs in that ring order), the
# first with --replication=2.
#   1. 200 entries through node 1, read back
#   2. kill -9 nodes 3 and 4 (adjacent): node 5 takes (2, 4] over; the
#      entries of (2, 3] had both copies on 3 and 4.  Through nodes 1, 2 and
#      5 every get answers its value or "entry unavailable" -- never "alias
#      not found" (what qdbd(8) and issue 8 promise: an entry whose every
#      copy is on failed nodes is unavailable, as with K = 1)
#   3. restart node 3 on its old root: all 200 read back through 1, 2, 3, 5
# Exit 0 pass, 77 skip (no qdbd/qdbsh, no loopback aliases, no free port),
# 1 fail, 99 hard error.  The hive comes from tests/hivelib.sh.

N=200
node_args() { [ "$1" -eq 1 ] && echo "--replication=2"; }
. "${srcdir:-.}/tests/hivelib.sh"
hive_start_replicated 2 5
put_entries "$N"

# ---- kill -9 nodes 3 and 4 --------------------------------------------------------
kill9 3 4
# settled: every get answers, each with its value or "unavailable", some
# unavailable (node 3's arc), none "not found"
gets_settled() {
    qn "$1" <"$tmp/gets" >"$tmp/got" 2>"$tmp/err"
    lost=$(grep -c "entry unavailable" "$tmp/err")
    [ "$lost" -gt 0 ] && [ $(( lost + $(grep -c . "$tmp/got") )) -eq $N ]
}
for via in 1 2 5; do
    wait_until 20 gets_settled $via ||
        fail "through node $via, with nodes 3 and 4 dead: $(sort -u "$tmp/err" | head -n 3)"
    grep -q "alias not found" "$tmp/err" && fail "through node $via: an entry answered not found"
    grep -vxFf "$tmp/expect" "$tmp/got" | grep -q . && fail "through node $via: a value never written"
    echo "through node $via: $lost of $N unavailable, the others read ($(elapsed))"
done

# ---- node 3 back on its root ----------------------------------------------------
start_node 3 --peer="127.0.0.1:$PORT"
for via in 1 2 3 5; do
    wait_until 20 all_read $via || fail "node 3 back: not all $N readable through node $via"
done
echo "node 3 back on its root: all $N readable through 1, 2, 3 and 5"
echo "PASS ($(elapsed))"
exit 0

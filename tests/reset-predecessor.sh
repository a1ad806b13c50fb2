#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/reset-predecessor.sh: a connection to a live predecessor that
# breaks is not its death (qdb_inbound.reset, node/watch.c "Lease").  Five
# qdbd --transient --replication=3 on 127.0.0.84-88 (addresses no other
# test uses) with fixed IDs, so the ring is 84 -> 85 -> 86 -> 87 -> 88 and
# node 85 owns k2 (its ID starts 18928419); 86's writes go to 86, 87, 88.
# Three times: `ss -K` destroys every connection to node 85 (86 and 84
# see theirs reset; 85 lives and keeps its lease from 86), k2 is updated
# through node 86, then read through node 85 at once.  Before, the loop
# reported the reset as a refused connection, and 84 and 86 dropped 85 at
# once ("successor ... failed" in 84's log; 86 took 84 as predecessor, and
# served 85's range while 85, in lease, did too, until 85 notified it
# again some 20 ms later -- too short for qdbsh to hit, but the logs show
# it every round).  Now neither may drop 85, and a read must never give
# the old value.
# Bounded (about 30 s), cleaned up (tests/hivelib.sh).  Exit 0 pass, 77
# skip (qdbd or qdbsh not built, no loopback aliases, not root or no
# `ss -K`), 1 fail.
node_args() { echo --log-level=debug; } # "predecessor is now" lines
. "${srcdir:-.}/tests/hivelib.sh"

need ss "no ss (iproute2) to reset connections"
[ "$(id -u)" = 0 ] || { echo "SKIP: ss -K needs root"; exit 77; }
ID84=$(printf '1%.0s' $(seq 64))
ID85=$(printf '2%.0s' $(seq 64))
ID86=$(printf '3%.0s' $(seq 64))
ID87=$(printf '4%.0s' $(seq 64))
ID88=$(printf '5%.0s' $(seq 64))
PORT=$(( 20000 + ($$ * 41) % 40000 ))
ring3_start 84 85 86 --replication=3
for i in 87 88; do
    eval "_id=\$ID$i"
    start_node "$i" --id="$_id" --transient --peer="127.0.0.84:$PORT"
    wait_started "$i" || { cat "$tmp/n$i.err"; fail "qdbd $i did not start"; }
done
ring5() {
    for _p in "84 85" "85 86" "86 87" "87 88" "88 84"; do
        set -- $_p
        [ "$(succ_of "$1")" = "127.0.0.$2:$PORT" ] && [ "$(pred_of "$2")" = "127.0.0.$1:$PORT" ] ||
            return 1
    done
}
wait_until 30 ring5 || fail "no ring 84 -> 85 -> 86 -> 87 -> 88 within 30 s"
qn() { _n=$1; shift; qsh 20 --daemon="127.0.0.$_n:$PORT" "$@"; }
put_ok() { qn 85 update k2 v1 >/dev/null 2>&1; }
wait_until 10 put_ok || fail "update k2 v1 through node 85"
echo "ring 84 -> ... -> 88, k2 = v1 ($(elapsed))"

# what the logs say from here on (the ring has formed)
from84=$(($(wc -l <"$tmp/n84.log") + 1)) from86=$(($(wc -l <"$tmp/n86.log") + 1))
to85() { ss -Htn state established dst "127.0.0.85:$PORT" | awk '{print $3}' | sort; }
for round in 1 2 3; do
    old=v$round new=v$((round + 1))
    some85() { [ -n "$(to85)" ]; }
    wait_until 5 some85 || fail "round $round: no connection to node 85 to reset"
    before=$(to85)
    ss -K dst "127.0.0.85" dport = ":$PORT" >/dev/null 2>&1
    gone=no
    for c in $before; do
        to85 | grep -qx "$c" || gone=yes
    done
    [ $gone = yes ] || { echo "SKIP: ss -K does not destroy sockets here"; exit 77; }
    qn 86 update k2 "$new" >/dev/null 2>&1 || fail "round $round: update k2 $new through node 86"
    for i in 1 2 3 4 5; do
        got=$(qn 85 get k2 2>/dev/null)
        [ "$got" = "$old" ] &&
            fail "round $round: node 85 served $old after node 86 acknowledged $new (two owners)"
    done
    echo "round $round: connections to node 85 reset, $new acknowledged, never $old ($(elapsed))"
    wait_until 15 ring5 || fail "round $round: the ring was not whole again within 15 s"
done
tail -n "+$from84" "$tmp/n84.log" | grep "successor 127.0.0.85:$PORT failed" &&
    fail "node 84 took the reset connections to node 85, alive, for its death"
tail -n "+$from86" "$tmp/n86.log" | grep "predecessor is now 127.0.0.84:$PORT" &&
    fail "node 86 dropped node 85, alive, after a reset connection (two owners)"
echo "PASS ($(elapsed))"
exit 0

#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/two-owners.sh: a stopped owner is taken over, and once back it does
# not serve its old copies (node/watch.c, "Lease").  Three qdbd --transient
# --replication=3 on 127.0.0.74-76 (addresses no other test uses) with
# fixed IDs, so the ring is 74 -> 75 -> 76 -> 74 and node 75 owns k12
# (its ID starts 2a9f5af2):
#   1. put k12 v1, then SIGSTOP node 75: node 76 strikes it out and takes
#      node 74 as predecessor, and so k12 over;
#   2. update k12 v2 through node 74: node 76 acknowledges it;
#   3. SIGCONT node 75: it is alive, its predecessor still node 74, and
#      node 76 takes it back.  A read through node 75 must never give v1:
#      before the lease, node 75 served the copy it held (v1) until its next
#      anti-entropy comparison, a minute later.
# Bounded (about 30 s), cleaned up (tests/hivelib.sh).  Exit 0 pass, 77
# skip (qdbd or qdbsh not built, no loopback aliases), 1 fail.
. "${srcdir:-.}/tests/hivelib.sh"

ID74=$(printf '2%.0s' $(seq 64))
ID75=$(printf '5%.0s' $(seq 64))
ID76=$(printf 'a%.0s' $(seq 64))
PORT=$(( 20000 + ($$ * 37) % 40000 ))
ring3_start 74 75 76 --replication=3
whole() { ring3_whole 74 75 76; }
wait_until 20 whole || fail "no ring 74 -> 75 -> 76 within 20 s"
qn() { _n=$1; shift; qsh 20 --daemon="127.0.0.$_n:$PORT" "$@"; }
put_ok() { qn 74 update k12 v1 >/dev/null 2>&1; }
wait_until 10 put_ok || fail "update k12 v1 through node 74"
echo "ring 74 -> 75 -> 76, k12 = v1 ($(elapsed))"

# ---- 1. node 75 stopped: node 76 takes its range over --------------------------
kill -STOP "$pid75" || fail "could not stop node 75"
took() { [ "$(pred_of 76)" = "127.0.0.74:$PORT" ]; }
wait_until 10 took || { kill -CONT "$pid75"; fail "node 75 stopped: node 76 did not take node 74 as predecessor within 10 s"; }
echo "SIGSTOP node 75: node 76 took its range over ($(elapsed))"

# ---- 2. the update is acknowledged by node 76 ----------------------------------
upd_ok() { qn 74 update k12 v2 >/dev/null 2>&1; }
wait_until 15 upd_ok || { kill -CONT "$pid75"; fail "update k12 v2 through node 74 with node 75 stopped"; }
echo "update k12 v2 acknowledged ($(elapsed))"

# ---- 3. node 75 back: never v1 -------------------------------------------------
kill -CONT "$pid75"
wait_until 15 whole || fail "node 75 continued: the ring was not whole again within 15 s"
reads=0
for i in $(seq 40); do
    got=$(qn 75 get k12 2>/dev/null)
    [ "$got" = "v1" ] && fail "node 75, back, served the old copy of k12 (v1; v2 was acknowledged)"
    [ "$got" = "v2" ] && reads=$((reads + 1))
    [ $reads -ge 3 ] && break
    sleep 0.1
done
[ $reads -ge 3 ] || fail "k12 not read back through node 75 within 40 tries"
echo "SIGCONT node 75: k12 read as v2 through it ($(elapsed))"
echo "PASS ($(elapsed))"
exit 0

#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/hostile.sh: issue 9's attacks on a real qdbd (127.0.0.1), made by
# tests/hostile.py from a rogue host (127.0.0.41), each of which must fail
# while the node keeps serving.  Exit 0 pass, 77 skip, 1 fail.
#
#   notify     a NOTIFY (joining) from a plain listener that acknowledges
#              every HANDOVER: no entry is handed over or deleted
#   handover   a stranger's HANDOVER is not acknowledged (nothing planted)
#   stabilize  a STABILIZE on a client's session gets no topology
#   session    a request without HELLO on a reused source port: NO_SESSION,
#              never another client's at-most-once reply
#   remove_all, stop_node: "operation disabled in this hive"
#   a second qdbd with the node's ID: refused, exits with a clear message
. "${srcdir:-.}/tests/hivelib.sh"
need python3 "python3 forges the frames"
ROGUE=127.0.0.41
FORGE="python3 ${srcdir:-.}/tests/hostile.py"

hive_start 1
A1=127.0.0.1:$PORT
sh1() { qsh 15 --daemon="$A1" "$@"; }
N=30
entry_files "$N"
sh1 <"$tmp/puts" >/dev/null || fail "putting $N entries"
serves() {
    sh1 <"$tmp/gets" >"$tmp/got" 2>&1 || fail "gets after the $1 attack: $(tail -3 "$tmp/got")"
    [ "$(grep -c '^value-' "$tmp/got")" -eq $N ] || fail "entries lost after the $1 attack"
    alive "$pid1" || fail "the node died in the $1 attack"
}
python3 -c "import socket; s=socket.socket(); s.bind(('$ROGUE', 0))" 2>/dev/null ||
    { echo "SKIP: $ROGUE is not usable here"; exit 77; }

for a in notify handover stabilize session; do
    $TIMEOUT 20 $FORGE "$A1" "$ID1" "$ROGUE" $a || fail "the $a attack succeeded"
    serves $a
    echo "$a: resisted, $N entries served ($(elapsed))"
done
grep -q "admission: .*NOTIFY refused\|admission: .*does not name us" "$tmp/n1.log" ||
    fail "no admission refusal logged for the NOTIFY"
grep -q "admission: $ROGUE:[0-9]* did not answer as a node: its HANDOVER refused" "$tmp/n1.log" ||
    fail "the HANDOVER refusal not logged"
grep -q "refused STABILIZE from $ROGUE" "$tmp/n1.log" || fail "the class refusal not logged"

out=$(sh1 remove_all 2>&1) && fail "remove_all succeeded: $out"
echo "$out" | grep -q "operation disabled in this hive" || fail "remove_all said: $out"
out=$(sh1 stop_node "$A1" 2>&1) && fail "stop_node succeeded: $out"
echo "$out" | grep -q "operation disabled in this hive" || fail "stop_node said: $out"
serves "dangerous-command"
echo "remove_all, stop_node: operation disabled ($(elapsed))"

start_node 2 --id="$ID1" --peer="$A1"
wait_exit "$pid2" 20
[ $exit_rc -ne 0 ] || fail "a second node with ID $ID1 exited 0"
grep -q "already has ID" "$tmp/n2.err" "$tmp/n2.log" || fail "no clear refusal: $(cat "$tmp/n2.err")"
serves "id-collision"
echo "a second node with the same ID: refused, exit $exit_rc ($(elapsed))"
echo "PASS ($(elapsed))"
exit 0

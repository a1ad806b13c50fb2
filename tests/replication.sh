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
# Exit 0 pass, 77 skip (no qdbd/qdbsh, no loopback aliases, no free port),
# 1 fail, 99 hard error.  Every process started here is killed on exit.

QDBD=${QDBD:-transport-real/qdbd}
QDBSH=${QDBSH:-client/qdbsh}
N=300
GONE=20

for b in "$QDBD" "$QDBSH"; do
    [ -x "$b" ] || { echo "SKIP: $b is not built"; exit 77; }
done
TIMEOUT=
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout -k 2"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-repl.XXXXXX") || exit 99
pids=
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP

now_ms() { date +%s%3N; }
T0=$(now_ms)
fail() {
    echo "FAIL: $*"
    for f in "$tmp"/n*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 8 "$f"; }; done
    exit 1
}
# retry SECONDS COMMAND...: until COMMAND succeeds (every 100 ms), or false
retry() {
    _end=$(( $(now_ms) + $1 * 1000 ))
    shift
    until "$@"; do
        [ "$(now_ms)" -ge "$_end" ] && return 1
        sleep 0.1
    done
}
qsh() { _n=$1; shift; $TIMEOUT 20 "$QDBSH" --daemon="127.0.0.$_n:$PORT" "$@"; }
# node I's ID: I repeated 64 times, so ring order is 1..5
id_of() { printf "$1%.0s" $(seq 64); }
start() {
    _i=$1
    shift
    "$QDBD" -a "127.0.0.$_i:$PORT" -r "$tmp/root$_i" -l "$tmp/n$_i.log" "$@" 2>>"$tmp/n$_i.err" &
    eval "pid$_i=$!"
    pids="$pids $!"
}
logged() { grep -q "$2" "$tmp/n$1.log" 2>/dev/null; }
settings_logged() { logged "$1" "hive settings: replication 3"; }

PORT=${HIVE_PORT:-$(( 20000 + ($$ + 7919) % 20000 ))}
start 1 --id="$(id_of 1)" --replication=3
retry 5 logged 1 "hive settings" || {
    grep -q "Address already in use" "$tmp/n1.err" && { echo "SKIP: port $PORT busy"; exit 77; }
    fail "node 1 did not start"
}
for i in 2 3 4 5; do start $i --id="$(id_of $i)" --peer="127.0.0.1:$PORT"; done
sleep 0.5
grep -q "Cannot assign requested address" "$tmp"/n*.err 2>/dev/null &&
    { echo "SKIP: loopback aliases 127.0.0.2-5 are not usable here"; exit 77; }
for i in 2 3 4 5; do
    retry 10 settings_logged $i || fail "node $i did not adopt replication 3"
done
# a node asking for another value is refused, with the reason
$TIMEOUT 20 "$QDBD" -a "127.0.0.6:$PORT" --transient --peer="127.0.0.1:$PORT" --replication=2 \
    -l "$tmp/n6.log" 2>"$tmp/n6.err"
rc=$?
[ $rc -eq 78 ] || fail "a node with --replication=2 exited $rc, not 78"
grep -q "replication=3" "$tmp/n6.err" || fail "the refusal does not say what to do: $(cat "$tmp/n6.err")"
echo "hive of 5 with replication 3; a node asking for 2 refused ($(( $(now_ms) - T0 )) ms)"

i=1
while [ $i -le $N ]; do echo "put key$i value-$i"; i=$((i + 1)); done >"$tmp/puts"
i=1
while [ $i -le $N ]; do echo "get key$i"; i=$((i + 1)); done >"$tmp/gets"
i=1
while [ $i -le $N ]; do echo "value-$i"; i=$((i + 1)); done >"$tmp/expect"
puts_ok() { qsh 1 <"$tmp/puts" >/dev/null 2>"$tmp/puts.err"; }
# the ring may still be settling: a put refused as unstable is retried whole
# (a put that went through answers "already exists" the second time)
if ! retry 20 puts_ok && grep -v "already exists" "$tmp/puts.err" | grep -q .; then
    fail "putting $N entries: $(head -n 3 "$tmp/puts.err")"
fi
all_read() { qsh "$1" <"$tmp/gets" >"$tmp/got$1" 2>/dev/null && cmp -s "$tmp/got$1" "$tmp/expect"; }
retry 10 all_read 1 || fail "$N entries not read back"
echo "$N entries put and read back"

# ---- kill -9 two adjacent nodes ---------------------------------------------
kill -9 "$pid3" "$pid4"
wait "$pid3" 2>/dev/null
wait "$pid4" 2>/dev/null
t=$(now_ms)
for via in 1 2 5; do
    retry 5 all_read $via || fail "with nodes 3 and 4 dead, not all $N readable through node $via"
done
echo "kill -9 nodes 3 and 4: all $N readable through 1, 2 and 5 after $(( $(now_ms) - t )) ms"
[ $(( $(now_ms) - t )) -le 5000 ] || fail "took more than 5 s"

# ---- remove 20 while they are down, then restart them on their roots ----------
i=1
while [ $i -le $GONE ]; do echo "remove key$i"; i=$((i + 1)); done >"$tmp/removes"
qsh 2 <"$tmp/removes" 2>"$tmp/rm.err" || fail "removing $GONE: $(head -n 3 "$tmp/rm.err")"
start 3 --peer="127.0.0.1:$PORT"
start 4 --peer="127.0.0.1:$PORT"
rejoined() { [ "$(grep -c "hand-over complete" "$tmp/n$1.log")" -ge 2 ]; }
retry 15 rejoined 3 && retry 15 rejoined 4 || fail "nodes 3 and 4 did not rejoin"
sed -n "$((GONE + 1)),\$p" "$tmp/gets" >"$tmp/gets.kept"
sed -n "$((GONE + 1)),\$p" "$tmp/expect" >"$tmp/expect.kept"
head -n $GONE "$tmp/gets" >"$tmp/gets.gone"
for via in 1 2 3 4 5; do
    qsh $via <"$tmp/gets.gone" >"$tmp/got" 2>"$tmp/err"
    back=$(grep -c . "$tmp/got")
    [ "$back" -eq 0 ] || fail "through node $via, $back removed entries came back"
    [ "$(grep -c "alias not found" "$tmp/err")" -eq $GONE ] ||
        fail "through node $via: $(sort -u "$tmp/err" | head -n 3)"
    qsh $via <"$tmp/gets.kept" >"$tmp/got" 2>"$tmp/err"
    cmp -s "$tmp/got" "$tmp/expect.kept" || fail "through node $via, the others read back wrong"
done
echo "nodes 3 and 4 back on their roots: the $GONE removed stay removed," \
    "the $((N - GONE)) others readable through every node"
echo "PASS ($(( $(now_ms) - T0 )) ms)"
exit 0

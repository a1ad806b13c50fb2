#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/hive.sh: a real hive of three qdbd processes on 127.0.0.1-3, driven
# through qdbsh.  Run by make check from the build directory; exit 0 pass,
# 77 skip (no qdbd, no loopback aliases, no free port), 1 fail, 99 hard error.
#
#   1. start the hive: qdbd on 127.0.0.1 alone, 127.0.0.2 and .3 join it;
#      wait for every node to log a stable ring that is one cycle of three
#   2. the tutorial through node 2 and node 3; time to the first put
#   3. 200 entries, all read back
#   4. kill -9 node 3: the others repair the ring and keep serving what they
#      own; gets of node 3's entries fail with an error, within a bound
#   5. restart node 3 on the same root (no --id: it takes its ID back from
#      the root): every acknowledged entry is readable again
#   6. SIGTERM node 2: it hands its entries to its successor and exits 0;
#      all 200 are still readable through node 1
#   7. a fresh hive of five on 127.0.0.1-5; kill -9 node 4 and at once get
#      100 keys through the others: each answers (its value, or unavailable
#      for node 4's entries) in under 2 s -- lookups route around the dead
#   8. once the four settle, kill -9 node 1, with no client traffic: within
#      5 s (the log lines' own time stamps) node 2, its predecessor, has
#      node 3 as successor and node 3 has node 2 as predecessor -- the
#      neighbours watch each other between rounds (node/watch.c)
# Without qdbsh (not built yet) steps 2-5 are skipped and 6 checks the exit.
#
# Every wait polls against a deadline; every process started here is killed
# by the exit trap, and the temporary directory removed (tests/hivelib.sh).
# QDBD, QDBSH and HIVE_PORT may be set from the environment.

N=200
QDBSH_OPTIONAL=yes
. "${srcdir:-.}/tests/hivelib.sh"

# qn SECONDS NODE ARGS...: qdbsh against node NODE, killed after SECONDS.
qn() {
    _t=$1
    _n=$2
    shift 2
    qsh "$_t" --daemon="127.0.0.$_n:$PORT" "$@"
}

# ---- 1. the hive -------------------------------------------------------------
hive_start 3

# stable I: node I's last neighbourhood line (ring_line, tests/hivelib.sh)
# says stable.
stable() { ring_line "$1" | grep -q ", stable,"; }
# ring_is NODES...: the named nodes form one stable cycle (each one's
# successor is another one of them, all different, and predecessors agree).
ring_is() {
    _seen=
    for _i in "$@"; do
        stable "$_i" || return 1
        _s=$(succ_of "$_i")
        case " $_seen " in *" $_s "*) return 1 ;; esac
        _ok=
        for _j in "$@"; do
            if [ "$_s" = "127.0.0.$_j:$PORT" ] && [ "$_j" != "$_i" ]; then
                [ "$(pred_of "$_j")" = "127.0.0.$_i:$PORT" ] || return 1
                _ok=yes
            fi
        done
        [ -n "$_ok" ] || return 1
        _seen="$_seen $_s"
    done
    return 0
}

if [ -n "$HAVE_SH" ]; then
    # How soon the hive serves: the first acknowledged write through node 2,
    # timed from the last node's start.  update, so a retry cannot collide.
    probe() { qn 5 2 update probe x >/dev/null 2>&1; }
    wait_until 10 probe || fail "no put through node 2 within 10 s"
    echo "first put through node 2: $(( $(now_ms) - T_LAST )) ms after the last node started"
fi
wait_until 10 ring_is 1 2 3 || fail "no stable 3-node ring within 10 s"
echo "ring stable: $(( $(now_ms) - T_LAST )) ms after the last node started"

if [ -n "$HAVE_SH" ]; then
    # ---- 2. the tutorial ---------------------------------------------------------
    out=$(printf 'put entry thisismyentry\nget entry\n' | qn 15 2) ||
        fail "tutorial through node 2 failed: $out"
    [ "$out" = "thisismyentry" ] || fail "node 2 printed '$out', not thisismyentry"
    out=$(qn 15 3 get entry) || fail "get through node 3 failed"
    [ "$out" = "thisismyentry" ] || fail "node 3 printed '$out', not thisismyentry"
    echo "tutorial: ok ($(elapsed))"

    # ---- 3. 200 entries ----------------------------------------------------------
    entry_files "$N"
    qn 30 2 <"$tmp/puts" >/dev/null 2>"$tmp/puts.err" ||
        fail "putting $N entries: $(head -n 3 "$tmp/puts.err")"
    qn 30 1 <"$tmp/gets" >"$tmp/got" 2>"$tmp/gets.err" ||
        fail "reading $N entries: $(head -n 3 "$tmp/gets.err")"
    cmp -s "$tmp/got" "$tmp/expect" || fail "$N entries read back wrong"
    echo "$N entries: put and read back ($(elapsed))"

    # ---- 4. kill -9 node 3 -------------------------------------------------------
    kill -USR1 "$pid3"
    has_stats() { grep -q "stats: " "$tmp/n3.log"; }
    wait_until 5 has_stats || fail "node 3 did not log its stats"
    owned3=$(grep "stats: " "$tmp/n3.log" | tail -n 1 | sed 's/.*stats: \([0-9]*\) entries.*/\1/')
    kill -9 "$pid3"
    wait "$pid3" 2>/dev/null
    wait_until 10 ring_is 1 2 || fail "nodes 1 and 2 did not repair the ring within 10 s"
    echo "kill -9 node 3 (it held $owned3 entries): ring of 2 repaired ($(elapsed))"
    t=$(now_ms)
    qn 40 2 <"$tmp/gets" >"$tmp/got" 2>"$tmp/gets.err"
    rc=$?
    dt=$(( $(now_ms) - t ))
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && fail "gets with node 3 dead hung (> 40 s)"
    served=$(grep -c -x 'value-[0-9]*' "$tmp/got")
    errors=$(grep -c '^error: ' "$tmp/gets.err")
    # Each get printed the right value or an error line, never a wrong value.
    grep -v -x -f "$tmp/expect" "$tmp/got" | grep -q . && fail "a get returned a value never put"
    [ $((served + errors)) -eq $N ] ||
        fail "$served values + $errors errors != $N gets"
    [ "$served" -ge $((N - owned3)) ] ||
        fail "only $served of the $((N - owned3)) entries nodes 1-2 own were served"
    echo "with node 3 dead: $served served, $errors errors ($(sort -u "$tmp/gets.err" |
        sed 's/^error: get key[0-9]*: //' | sort -u | tr '\n' ';')) in $dt ms"

    # ---- 5. restart node 3 on its root ------------------------------------------
    start_node 3 --peer="127.0.0.1:$PORT"
    wait_started 3 || fail "node 3 did not restart"
    grep "qdbd .*: node" "$tmp/n3.log" | tail -n 1 | grep -q "node $ID3 " ||
        fail "node 3 did not take its ID back from its root"
    wait_until 10 ring_is 1 2 3 || fail "node 3 did not rejoin within 10 s"
    qn 30 2 <"$tmp/gets" >"$tmp/got" 2>"$tmp/gets.err" ||
        fail "after the restart: $(head -n 3 "$tmp/gets.err")"
    cmp -s "$tmp/got" "$tmp/expect" || fail "after the restart, entries read back wrong"
    echo "node 3 restarted on its root: all $N entries readable ($(elapsed))"
fi

# ---- 6. SIGTERM node 2 ---------------------------------------------------------
kill -TERM "$pid2"
wait_exit "$pid2" 15
[ $exit_rc -eq 0 ] || fail "node 2 exited $exit_rc after SIGTERM"
grep -q "left the hive" "$tmp/n2.log" || fail "node 2 did not log its departure"
wait_until 10 ring_is 1 3 || fail "nodes 1 and 3 did not close the ring within 10 s"
echo "SIGTERM node 2: left, exit 0, ring of 2 ($(elapsed))"
if [ -n "$HAVE_SH" ]; then
    qn 30 1 <"$tmp/gets" >"$tmp/got" 2>"$tmp/gets.err" ||
        fail "after node 2 left: $(head -n 3 "$tmp/gets.err")"
    cmp -s "$tmp/got" "$tmp/expect" || fail "after node 2 left, entries read back wrong"
    echo "all $N entries readable after node 2 left ($(elapsed))"

    # ---- 7. five nodes, kill -9 one, lookups at once ------------------------------
    # Right after the kill, before any repair: every get through the four
    # others answers within 2 s -- the value, or "unavailable" for an entry
    # the dead node held -- because lookups route around the dead node.
    for p in $pids; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    pids=
    rm -rf "$tmp"/root* "$tmp"/n*.log
    start_node 1 --id="$ID1"
    wait_started 1 || fail "five nodes: node 1 did not start"
    start_node 2 --id="$(printf '3%.0s' $(seq 64))" --peer="127.0.0.1:$PORT"
    start_node 3 --id="$(printf '7%.0s' $(seq 64))" --peer="127.0.0.1:$PORT"
    start_node 4 --id="$ID2" --peer="127.0.0.1:$PORT"
    start_node 5 --id="$ID3" --peer="127.0.0.1:$PORT"
    for i in 2 3 4 5; do wait_started $i || fail "five nodes: node $i did not start (loopback .$i?)"; done
    wait_until 20 ring_is 1 2 3 4 5 || fail "no stable 5-node ring within 20 s"
    qn 30 2 <"$tmp/puts" >/dev/null 2>"$tmp/puts.err" ||
        fail "five nodes: putting $N entries: $(head -n 3 "$tmp/puts.err")"
    kill -9 "$pid4"
    wait "$pid4" 2>/dev/null
    slow=0 unavailable=0 i=1
    while [ $i -le 100 ]; do
        via=$(( (i % 4) + 1 )); [ $via -eq 4 ] && via=5
        t=$(now_ms)
        out=$(qn 10 $via get "key$i" 2>&1)
        dt=$(( $(now_ms) - t ))
        [ $dt -lt 2000 ] || fail "five nodes: get key$i through node $via took $dt ms"
        case "$out" in
        "value-$i") ;;
        *unavailable*) unavailable=$((unavailable + 1)) ;;
        *) fail "five nodes, node 4 killed: get key$i through node $via: $out" ;;
        esac
        [ $dt -gt $slow ] && slow=$dt
        i=$((i + 1))
    done
    echo "five nodes, kill -9 node 4: 100 gets at once through the others, slowest $slow ms," \
        "$unavailable unavailable (node 4's) ($(elapsed))"

    # ---- 8. a kill with no traffic: the ring repaired within 5 s -------------
    # The ring order is now 2, 1, 3, 5 (IDs 33.., 55.., 77.., ff..).
    wait_until 20 ring_is 1 2 3 5 || fail "four nodes: no stable ring within 20 s"
    T_KILL=$(now_ms)
    kill -9 "$pid1"
    wait "$pid1" 2>/dev/null
    # logged_since I PATTERN: the time (ms) of node I's first "ring:" line
    # matching PATTERN stamped at or after the kill; nothing if none.
    logged_since() {
        grep "ring: .*$2" "$tmp/n$1.log" | while read -r _when _rest; do
            _ms=$(date -d "$_when" +%s%3N) || continue
            if [ "$_ms" -ge "$T_KILL" ]; then echo "$_ms"; break; fi
        done
    }
    repaired() {
        [ "$(succ_of 2)" = "127.0.0.3:$PORT" ] && [ "$(pred_of 3)" = "127.0.0.2:$PORT" ]
    }
    wait_until 10 repaired || fail "kill -9 node 1: nodes 2 and 3 did not close the ring in 10 s"
    t2=$(logged_since 2 "successor 127.0.0.3:$PORT,")
    t3=$(logged_since 3 "predecessor 127.0.0.2:$PORT,")
    [ -n "$t2" ] && [ -n "$t3" ] || fail "kill -9 node 1: no ring line after the kill"
    [ "$t3" -gt "$t2" ] && t2=$t3
    dt=$((t2 - T_KILL))
    [ $dt -lt 5000 ] || fail "kill -9 node 1: the ring was repaired $dt ms after the kill (> 5 s)"
    echo "kill -9 node 1, no traffic: node 2 -> node 3 and back $dt ms after the kill ($(elapsed))"
fi
echo "PASS ($(elapsed))"
exit 0

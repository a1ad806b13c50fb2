#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/admin.sh: qdbsh's administration commands against a real hive of
# three qdbd on 127.0.0.1-3 (IDs 55.., aa.., ff..: the ring is 1 -> 2 -> 3).
# Node 1 creates the hive with --enable-stop (nodes 2 and 3 adopt it), node 3
# runs with --tombstone-grace=3600.  Exit 0 pass, 77 skip, 1 fail.
#
#   ping (connected node, by address, a dead address), node_status,
#   node_config, node_topology (compact with --raw, indented on a terminal),
#   hive_status (arcs, entries; a broken walk is flagged), --daemon lists,
#   host names and IPv6, stop_node obeyed (enabled hive-wide), and the terminal
#   niceties (tab completion, Ctrl-C, history) through tmux when present.
# The JSON is checked with python3's json module.

node_args() {
    case $1 in 1) echo "--enable-stop" ;; 3) echo "--tombstone-grace=3600" ;; esac
}
. "${srcdir:-.}/tests/hivelib.sh"
need python3 "python3 is needed to read the JSON"

hive_start 3
hive_wait_stable 3
A1=127.0.0.1:$PORT A2=127.0.0.2:$PORT A3=127.0.0.3:$PORT
sh1() { qsh 15 --daemon="$A1" "$@"; }

# check JSON PYTHON-EXPRESSION: the expression over j (the parsed JSON) holds.
check() {
    python3 -c 'import json, sys
j = json.loads(sys.argv[1])
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" || fail "not true: $2 in $1"
}

N=30
entry_files "$N"
sh1 <"$tmp/puts" >/dev/null || fail "putting $N entries"

# ---- ping ---------------------------------------------------------------------
out=$(sh1 ping) || fail "ping: $out"
echo "$out" | grep -q "^pong from the node in [0-9.]* ms$" || fail "ping printed '$out'"
out=$(sh1 ping "$A3") || fail "ping $A3: $out"
echo "$out" | grep -q "^pong from $A3 in" || fail "ping $A3 printed '$out'"
sh1 ping 127.0.0.1:1 >/dev/null 2>"$tmp/err" && fail "ping of a dead address succeeded"
grep -q "connection refused" "$tmp/err" || fail "ping of a dead address: $(cat "$tmp/err")"
echo "ping: ok"

# ---- node_status, node_config, node_topology ------------------------------------
st=$(sh1 --raw node_status "$A2") || fail "node_status $A2"
[ "$(echo "$st" | wc -l)" -eq 1 ] || fail "--raw JSON is not one line"
check "$st" "j['address'] == '$A2' and j['id'] == '$ID2' and j['state'] == 'active'"
check "$st" "j['stable'] is True and j['predecessor']['address'] == '$A1'"
check "$st" "j['successors'][0]['address'] == '$A3' and j['successors'][1]['address'] == '$A1'"
check "$st" "j['uptime_ms'] > 0 and j['entries'] >= 0 and j['bytes_exact'] is True"
check "$st" "j['hive']['stop_enabled'] is True and 'lookups' in j['counters']"
# The connected node without ADDR, and the counters of the puts it served.
st1=$(sh1 --raw node_status) || fail "node_status"
check "$st1" "j['address'] == '$A1' and j['hive']['purge_all_enabled'] is False"
total=0
for a in "$A1" "$A2" "$A3"; do
    e=$(sh1 --raw node_status "$a" | python3 -c 'import json,sys; j=json.load(sys.stdin)
r=j["counters"]["by_request"].get("put", {}).get("ok", 0)
assert r == j["entries"], (r, j["entries"]); print(j["entries"])') ||
        fail "node $a: puts answered ok != entries held"
    total=$((total + e))
done
[ $total -eq $N ] || fail "the nodes hold $total entries, not $N"

cf=$(sh1 --raw node_config "$A3") || fail "node_config $A3"
check "$cf" "j['address'] == '$A3' and j['config']['successor_list_length'] == 8"
check "$cf" "j['config']['rpc_timeout_ms'] == 1000 and j['hive']['replication_factor'] == 1"
check "$cf" "j['hive']['tombstone_grace_s'] == 3600"
check "$(sh1 --raw node_config "$A1")" "j['hive']['tombstone_grace_s'] == 86400"
check "$cf" "'successors' not in j and 'counters' not in j"
tp=$(sh1 --raw node_topology "$A1") || fail "node_topology $A1"
check "$tp" "j['predecessor']['address'] == '$A3' and j['successors'][0]['address'] == '$A2'"
check "$tp" "len(j['fingers']) >= 1 and 'counters' not in j and 'config' not in j"
# On a terminal (script(1) gives one), the JSON is indented.
if command -v script >/dev/null 2>&1; then
    script -qec "$QDBSH --daemon=$A1 node_config" /dev/null >"$tmp/tty" </dev/null ||
        fail "node_config on a terminal"
    grep -q '^  "config": {' "$tmp/tty" || fail "JSON on a terminal is not indented: $(head -c 200 "$tmp/tty")"
    grep -q '^    "successor_list_length": 8,' "$tmp/tty" || fail "nested JSON not indented"
fi
echo "node_status, node_config, node_topology: ok"

# ---- hive_status ------------------------------------------------------------------
hs=$(sh1 --raw hive_status "$A2") || fail "hive_status: $hs"
check "$hs" "j['complete'] and not j['broken'] and j['nodes'] == 3 and j['problems'] == []"
check "$hs" "[n['address'] for n in j['ring']] == ['$A2', '$A3', '$A1']"
check "$hs" "j['entries'] == $N and sum(n['entries'] for n in j['ring']) == $N"
check "$hs" "abs(sum(n['arc'] for n in j['ring']) - 1) < 0.001"
# IDs 55.., aa.., ff..: node 1's arc (ff.., 55..] is a third of the ring.
check "$hs" "abs(j['ring'][2]['arc'] - 1/3) < 0.001"
# A walk that cannot start is a broken ring: exit 1, the problem listed.
out=$(sh1 --raw hive_status 127.0.0.1:1 2>"$tmp/err") && fail "hive_status from a dead node succeeded"
check "$out" "j['broken'] and j['problems'][0]['problem'] == 'unreachable'"
grep -q "the ring is broken" "$tmp/err" || fail "hive_status did not say the ring is broken"
echo "hive_status: ok"

# ---- --daemon: lists, host names, IPv6 ----------------------------------------------
out=$(qsh 15 --daemon="127.0.0.1:1,$A2" ping 2>"$tmp/err") || fail "--daemon list: $(cat "$tmp/err")"
grep -q "cannot connect to 127.0.0.1:1" "$tmp/err" || fail "the dead first address was not reported"
out=$(qsh 15 --raw --daemon="127.0.0.1:1, $A3" node_status 2>/dev/null) || fail "--daemon list, node_status"
check "$out" "j['address'] == '$A3'"
if getent hosts localhost >/dev/null 2>&1; then
    out=$(qsh 15 --raw --daemon="localhost:$PORT" node_status) || fail "--daemon=localhost"
    check "$out" "j['address'] == '$A1'"
fi
qsh 15 --daemon="[::1]:$PORT" ping >/dev/null 2>"$tmp/err" && fail "an IPv6 daemon was accepted"
grep -q "IPv6 addresses are not supported" "$tmp/err" || fail "IPv6: $(cat "$tmp/err")"
echo "--daemon lists, host names, IPv6 refusal: ok"

# ---- terminal: completion, Ctrl-C, history --------------------------------------------
if command -v tmux >/dev/null 2>&1; then
    sock="$tmp/tmux.sock"
    trap 'tmux -S "$sock" kill-server 2>/dev/null; cleanup' EXIT
    tm() { tmux -S "$sock" "$@"; }
    case $QDBSH in /*) qdbsh_abs=$QDBSH ;; *) qdbsh_abs=$PWD/$QDBSH ;; esac
    screen_has() { tm capture-pane -p -t "$1" | grep -q -- "$2"; }
    mkdir -p "$tmp/home"
    # shell SESSION: qdbsh on a terminal of its own, HOME in $tmp.
    shell() {
        tm new-session -d -s "$1" -x 120 -y 40 "HOME=$tmp/home $qdbsh_abs --daemon=$A1; sleep 30" ||
            fail "tmux"
        wait_until 5 screen_has "$1" "qdbsh:ok >" || fail "no prompt in tmux"
    }
    shell s1
    tm send-keys -t s1 "node_top" Tab
    wait_until 5 screen_has s1 "qdbsh:ok > node_topology" || fail "Tab did not complete node_topology"
    tm send-keys -t s1 C-c
    sleep 0.3
    tm send-keys -t s1 "pin" Tab Enter
    wait_until 5 screen_has s1 "pong from the node" || fail "Ctrl-C, then ping: $(tm capture-pane -p -t s1)"
    screen_has s1 "node_topologyping" && fail "Ctrl-C did not clear the line"
    wait_until 5 screen_has s1 "qdbsh:ok >$" || fail "no prompt after a command"
    tm send-keys -t s1 "exit" Enter
    saved() { grep -q "^ping" "$tmp/home/.qdbsh_history"; }
    wait_until 5 saved || fail "the history was not saved"
    shell s2
    tm send-keys -t s2 Up Up
    wait_until 5 screen_has s2 "qdbsh:ok > ping" || fail "the history of the earlier run is missing"
    tm send-keys -t s2 C-u "exit" Enter
    tm kill-server 2>/dev/null
    echo "terminal: completion, Ctrl-C, history: ok"
else
    echo "NOTE: tmux is absent: completion, Ctrl-C and history not checked"
fi

# ---- stop_node ------------------------------------------------------------------------
out=$(sh1 stop_node "$A2") || fail "stop_node $A2: $out"
wait_exit "$pid2" 15
[ $exit_rc -eq 0 ] || fail "node 2 exited $exit_rc after stop_node"
grep -q "leaving the hive on request" "$tmp/n2.log" || fail "node 2 did not log the stop"
hive_wait_stable 2
hs=$(sh1 --raw hive_status) || fail "hive_status after the stop"
check "$hs" "j['nodes'] == 2 and j['entries'] == $N"
sh1 <"$tmp/gets" >"$tmp/got" || fail "gets after node 2 stopped"
[ "$(grep -c '^value-' "$tmp/got")" -eq $N ] || fail "entries lost after node 2 stopped"
echo "stop_node: obeyed by node 2 ($(elapsed))"
echo "PASS ($(elapsed))"
exit 0

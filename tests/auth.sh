#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/auth.sh: the hive key (qdbd --hive-key-file, qdbsh --key-file) on a
# real hive of three qdbd processes on 127.0.0.1-3.  Run by make check from
# the build directory; exit 0 pass, 77 skip, 1 fail, 99 hard error.
#
#   1. --gen-key prints a key qdbd accepts; a key file others can read, a
#      malformed one (exit 78) and a missing one (66) are refused with the
#      reason; a node on a non-loopback address without a key is warned
#      about (--check-config), with one it is not
#   2. a keyed hive of three: the tutorial through qdbsh --key-file, and
#      100 entries written through node 2
#   3. qdbsh without the key, or with another key: "authentication failed",
#      exit 1, and nothing of the topology (no address, no ID) on stdout;
#      the node logs the refusal
#   4. a raw TCP client replays a valid STATUS frame (captured from qdbsh):
#      a keyless node answers it, the keyed node answers nothing but a TLS
#      alert
#   5. rogue nodes with --id = (node 2's ID - 1), joining through node 2,
#      without the key and with another key: refused and logged on both
#      sides, the walk still finds three nodes, and no entry moved (every
#      node's count is the same, all 100 entries readable)
#
# Every wait polls against a deadline; every process started here is killed
# by the exit trap, and the temporary directory removed (tests/hivelib.sh).

. "${srcdir:-.}/tests/hivelib.sh"
need python3 "python3 is needed to read node_status and to play the raw client"

KEY=$tmp/hive.key
OTHER=$tmp/other.key
node_args() { echo "--hive-key-file=$KEY"; }
# qdbsh with the key: hivelib's waits (hive_is_stable) use it too
qsh() {
    _t=$1
    shift
    $TIMEOUT "$_t" "$QDBSH" --key-file="$KEY" "$@"
}
# nokey SECONDS ARGS...: qdbsh as a stranger
nokey() {
    _t=$1
    shift
    $TIMEOUT "$_t" "$QDBSH" "$@"
}

# ---- 1. the key file ---------------------------------------------------------------
(umask 022 && "$QDBD" --gen-key >"$KEY") || fail "qdbd --gen-key failed"
grep -Eqx '[0-9a-f]{64}' "$KEY" || fail "qdbd --gen-key printed '$(cat "$KEY")'"
case $(stat -c %a "$KEY") in
*[1-7]) fail "--gen-key left its file readable by others ($(stat -c %a "$KEY"))" ;;
esac
"$QDBD" --gen-key >"$OTHER"
cmp -s "$KEY" "$OTHER" && fail "two --gen-key runs printed the same key"

# check_config EXPECTED_RC GREP ARGS...: qdbd --check-config exits so and says so
check_config() {
    _want=$1 _grep=$2
    shift 2
    "$QDBD" --check-config -a 127.0.0.1:2836 "$@" >"$tmp/cc.out" 2>&1
    _rc=$?
    [ "$_rc" -eq "$_want" ] || fail "qdbd --check-config $*: exit $_rc, want $_want: $(cat "$tmp/cc.out")"
    grep -q -- "$_grep" "$tmp/cc.out" || fail "qdbd --check-config $*: no '$_grep' in: $(cat "$tmp/cc.out")"
}
check_config 0 "are valid" --hive-key-file="$KEY"
cp "$KEY" "$tmp/open.key" && chmod 644 "$tmp/open.key"
check_config 78 "others may read" --hive-key-file="$tmp/open.key"
echo "not a key" >"$tmp/bad.key" && chmod 600 "$tmp/bad.key"
check_config 78 "not a hive key" --hive-key-file="$tmp/bad.key"
check_config 66 "No such file" --hive-key-file="$tmp/missing.key"
printf '[qdbd]\nhive-key-file = %s\n' "$tmp/open.key" >"$tmp/q.conf"
check_config 78 "others may read" --config="$tmp/q.conf"
"$QDBD" --check-config -a 10.1.2.3:2836 >"$tmp/cc.out" 2>&1 || fail "check-config 10.1.2.3"
grep -q "without a hive key" "$tmp/cc.out" || fail "no warning for 10.1.2.3 without a key"
"$QDBD" --check-config -a 10.1.2.3:2836 --hive-key-file="$KEY" >"$tmp/cc.out" 2>&1 ||
    fail "check-config 10.1.2.3 with a key"
grep -q "without a hive key" "$tmp/cc.out" && fail "a warning for 10.1.2.3 with a key"
echo "key files: ok ($(elapsed))"

# ---- 2. the keyed hive -------------------------------------------------------------
hive_start 3
hive_wait_stable 3
grep -q "hive key .*TLS 1.3" "$tmp/n2.log" || fail "node 2 does not say it uses the key"
qsh 20 --daemon="127.0.0.2:$PORT" put entry thisismyentry || fail "put through node 2"
[ "$(qsh 20 --daemon="127.0.0.3:$PORT" get entry)" = thisismyentry ] || fail "get through node 3"
entry_files 100
qsh 60 --daemon="127.0.0.2:$PORT" <"$tmp/puts" >/dev/null || fail "100 puts"
echo "tutorial with the key: ok ($(elapsed))"

# ---- 3. qdbsh without the key, or with another -------------------------------------
# refused CMD...: every output of a stranger's qdbsh
refused() {
    _what=$1
    shift
    "$@" >"$tmp/s.out" 2>"$tmp/s.err"
    _rc=$?
    [ "$_rc" -eq 1 ] || fail "$_what: exit $_rc, want 1 ($(cat "$tmp/s.err"))"
    grep -q "authentication failed" "$tmp/s.err" || fail "$_what: said '$(cat "$tmp/s.err")'"
    # (the error names the address it was given, 127.0.0.2, and no other)
    if grep -q "127\.0\.0\.\|[0-9a-f]\{16\}" "$tmp/s.out" ||
        grep -q "127\.0\.0\.[13]\|[0-9a-f]\{16\}" "$tmp/s.err"; then
        fail "$_what: learnt the topology: $(cat "$tmp/s.out" "$tmp/s.err")"
    fi
}
for cmd in "get entry" "put x y" node_topology hive_status node_status; do
    # shellcheck disable=SC2086 # the command's words
    refused "no key: $cmd" nokey 20 --raw --daemon="127.0.0.2:$PORT" $cmd
    # shellcheck disable=SC2086
    refused "other key: $cmd" nokey 20 --raw --key-file="$OTHER" --daemon="127.0.0.2:$PORT" $cmd
done
grep -q "refused a connection from 127.0.0.1:[0-9]* (plaintext" "$tmp/n2.log" ||
    fail "node 2 did not log the plaintext client"
qsh 20 --daemon="127.0.0.2:$PORT" get x 2>&1 | grep -q "alias not found" ||
    fail "a stranger's put x y ran"
echo "strangers refused: ok ($(elapsed))"

# ---- 4. a raw client with a forged (valid) frame -----------------------------------
# A STATUS frame as qdbsh sends it, captured by a listener on 127.0.0.1:PORT+1.
raw_py() {
    python3 - "$@" <<'EOF'
import socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "capture":
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((host, port)); l.listen(1); l.settimeout(10)
    print("listening", flush=True)
    c, _ = l.accept(); c.settimeout(5)
    data = b""
    while len(data) < 2 or len(data) < data[0] + 1:
        b = c.recv(4096)
        if not b:
            break
        data += b
    open(sys.argv[4], "wb").write(data)
else:
    frame = open(sys.argv[4], "rb").read()
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(frame)
    got, end = b"", time.time() + 2
    s.settimeout(0.2)
    while time.time() < end:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not b:
            break
        got += b
    print(got.hex())
EOF
}
CAP=$((PORT + 1))
raw_py capture 127.0.0.1 "$CAP" "$tmp/status.frame" >"$tmp/cap.out" 2>&1 &
cap=$!
pids="$pids $cap"
wait_until 5 grep -q listening "$tmp/cap.out" || fail "the capture listener did not start"
nokey 5 --daemon="127.0.0.1:$CAP" node_status "127.0.0.1:$CAP" >/dev/null 2>&1
wait "$cap"
[ -s "$tmp/status.frame" ] || fail "captured no STATUS frame from qdbsh"
# a keyless node answers it: the frame is valid
"$QDBD" -a "127.0.0.1:$CAP" --transient -l "$tmp/plain.log" &
plain=$!
pids="$pids $plain"
plain_up() { grep -q "created a new ring" "$tmp/plain.log" 2>/dev/null; }
wait_until 10 plain_up || fail "the keyless node did not start"
ans=$(raw_py send 127.0.0.1 "$CAP" "$tmp/status.frame")
echo "$ans" | grep -q "$(printf '127.0.0.1:%s' "$CAP" | od -An -tx1 | tr -d ' \n')" ||
    fail "the keyless node did not answer the forged STATUS with its status: $ans"
kill "$plain"
# the keyed node answers nothing but an alert
ans=$(raw_py send 127.0.0.2 "$PORT" "$tmp/status.frame")
[ -z "$ans" ] || [ "$ans" = 15030300020228 ] || fail "the keyed node answered a raw frame: $ans"
echo "raw forged frame: ok, the keyed node answered '${ans:-nothing}' ($(elapsed))"

# ---- 5. rogue nodes just before node 2 ---------------------------------------------
# entries_of I: node I's entry count
entries_of() {
    qsh 10 --raw --daemon="127.0.0.$1:$PORT" node_status |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'
}
counts() { echo "$(entries_of 1) $(entries_of 2) $(entries_of 3)"; }
before=$(counts)
victim=$(qsh 10 --raw --daemon="127.0.0.2:$PORT" node_status |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
rogue_id=$(python3 -c 'import sys; print("%064x" % ((int(sys.argv[1], 16) - 1) % 2**256))' "$victim")
echo "victim $victim, rogue $rogue_id; entries per node before: $before"
"$QDBD" -a "127.0.0.4:$PORT" --transient --id="$rogue_id" --peer="127.0.0.2:$PORT" \
    -l "$tmp/n4.log" &
pids="$pids $!"
"$QDBD" -a "127.0.0.5:$PORT" --transient --id="$rogue_id" --peer="127.0.0.2:$PORT" \
    --hive-key-file="$OTHER" -l "$tmp/n5.log" &
pids="$pids $!"
rogues_told() {
    [ -f "$tmp/n4.log" ] && [ -f "$tmp/n5.log" ] || return 1
    grep -q "127.0.0.2:$PORT answers in TLS: it requires the hive key" "$tmp/n4.log" &&
        grep -q "TLS handshake with 127.0.0.2:$PORT failed" "$tmp/n5.log"
}
wait_until 10 rogues_told || fail "the rogues were not told why"
# node 2 logs a line per 10 s at most: the keyless rogue's, or the other
# key's, whichever came first (the clients of step 3 may still hold it)
victim_logged() { grep -q "refused a connection from 127.0.0.[45]:" "$tmp/n2.log"; }
wait_until 12 victim_logged || fail "node 2 did not log the rogues"
sleep 3 # several stabilization rounds of the rogues
[ "$(counts)" = "$before" ] || fail "entries moved: $before before, $(counts) after"
qsh 10 --raw --daemon="127.0.0.1:$PORT" hive_status | grep -q '"nodes":3,' ||
    fail "the walk does not find exactly three nodes"
qsh 60 --daemon="127.0.0.3:$PORT" <"$tmp/gets" >"$tmp/got" || fail "gets after the rogues"
cmp -s "$tmp/got" "$tmp/expect" || fail "entries lost after the rogues"
echo "rogue nodes refused, entries per node after: $(counts) ($(elapsed))"
# the refusals are counted (SIGUSR1's stats line)
kill -USR1 "$pid2"
counted() { grep "stats: " "$tmp/n2.log" | grep -Eq "; [1-9][0-9]* refused for the hive key"; }
wait_until 5 counted || fail "node 2 did not count the refusals: $(grep "stats: " "$tmp/n2.log")"
echo "PASS"

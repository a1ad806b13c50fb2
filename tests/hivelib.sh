# SPDX-License-Identifier: BSD-2-Clause
# tests/hivelib.sh: a hive of real qdbd processes on 127.0.0.1..N for the
# integration tests (sourced, not run: tests/hive.sh, admin.sh, http.sh,
# status-page.sh).
#
#   hive_start N        node 1 alone, then 2..N join it; node I listens on
#                       127.0.0.I:$PORT with ID $IDI (fixed, so the ring order
#                       is 1, 2, 3) plus the words `node_args I` prints;
#                       T_LAST is when the last one was started
#   start_node I ARGS   (re)start node I with its root, log and ARGS
#   hive_wait_stable N  until hive_status from node 1 sees N stable nodes
#   qsh SECONDS ARGS    qdbsh, killed after SECONDS
#   wait_exit PID S     until PID exits (fail after S seconds); its status
#                       in exit_rc
#   need CMD WHY        skip (77) without CMD
#
# Every wait polls against a deadline; every process started here is killed
# by the exit trap, and the temporary directory removed.  The test skips
# (77) without qdbd, without qdbsh (unless QDBSH_OPTIONAL is set: then
# HAVE_SH tells), without loopback aliases or a free port.  QDBD, QDBSH and
# HIVE_PORT may be set from the environment.

QDBD=${QDBD:-transport-real/qdbd}
QDBSH=${QDBSH:-client/qdbsh}
if [ ! -x "$QDBD" ]; then
    echo "SKIP: $QDBD is not built"
    exit 77
fi
HAVE_SH=yes
if [ ! -x "$QDBSH" ]; then
    if [ -z "${QDBSH_OPTIONAL:-}" ]; then
        echo "SKIP: $QDBSH is not built"
        exit 77
    fi
    echo "NOTE: $QDBSH is not built; checking qdbd alone"
    HAVE_SH=
fi
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "SKIP: $2"
    exit 77
}
TIMEOUT=
if command -v timeout >/dev/null 2>&1; then
    TIMEOUT="timeout -k 2"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-test.XXXXXX") || exit 99
pids=
cleanup() {
    for p in $pids; do
        kill -9 "$p" 2>/dev/null
    done
    for p in $pids; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP

now_ms() { date +%s%3N; }
T0=$(now_ms)
elapsed() { echo "$(( $(now_ms) - T0 )) ms"; }

fail() {
    echo "FAIL: $*"
    for f in "$tmp"/n*.log; do
        [ -f "$f" ] || continue
        echo "--- last lines of $(basename "$f")"
        tail -n 15 "$f"
    done
    exit 1
}

# wait_until SECONDS COMMAND...: poll COMMAND every 50 ms until it succeeds;
# false once SECONDS have passed.
wait_until() {
    _deadline=$(( $(now_ms) + $1 * 1000 ))
    shift
    until "$@"; do
        [ "$(now_ms)" -ge "$_deadline" ] && return 1
        sleep 0.05
    done
    return 0
}

qsh() {
    _t=$1
    shift
    $TIMEOUT "$_t" "$QDBSH" "$@"
}

ID1=$(printf '5%.0s' $(seq 64))
ID2=$(printf 'a%.0s' $(seq 64))
ID3=$(printf 'f%.0s' $(seq 64))

# The test may define node_args I to add options to node I.
command -v node_args >/dev/null 2>&1 || node_args() { :; }

start_node() {
    _i=$1
    shift
    # shellcheck disable=SC2046 # node_args prints words
    "$QDBD" -a "127.0.0.$_i:$PORT" -r "$tmp/root$_i" -l "$tmp/n$_i.log" --log-level=info \
        "$@" $(node_args "$_i") 2>>"$tmp/n$_i.err" &
    eval "pid$_i=$!"
    pids="$pids $!"
}

# start_member I: node I with its ID, joining through node 1 (but node 1).
start_member() {
    eval "_id=\$ID$1"
    if [ "$1" -eq 1 ]; then
        start_node 1 --id="$_id"
    else
        start_node "$1" --id="$_id" --peer="127.0.0.1:$PORT"
    fi
}

# wait_exit PID SECONDS: until PID exits; its exit status in exit_rc.
wait_exit() {
    _gone() { ! alive "$1"; }
    wait_until "$2" _gone "$1" || fail "process $1 did not exit within $2 s"
    wait "$1"
    exit_rc=$?
}

alive() { kill -0 "$1" 2>/dev/null; }
started() { grep -q "qdbd .*: node" "$tmp/n$1.log" 2>/dev/null; }
started_or_dead() { started "$1" || ! alive "$2"; }

# wait_started I: 0 when node I runs; otherwise its exit code (69: an
# address is unusable).
wait_started() {
    eval "_p=\$pid$1"
    wait_until 10 started_or_dead "$1" "$_p" || return 99
    started "$1" && alive "$_p" && return 0
    wait "$_p"
    return $?
}

hive_start() {
    _n=$1
    _try=0
    PORT=${HIVE_PORT:-$(( 20000 + $$ % 20000 ))}
    while :; do
        _try=$((_try + 1))
        rm -rf "$tmp"/n*.log "$tmp"/n*.err "$tmp"/root*
        pids=
        _rc=0
        for _i in $(seq "$_n"); do
            start_member "$_i"
            [ "$_i" -eq 1 ] && { wait_started 1 || { _rc=$?; break; }; }
        done
        T_LAST=$(now_ms)
        if [ $_rc -eq 0 ]; then
            for _i in $(seq 2 "$_n"); do
                wait_started "$_i" || { _rc=$?; break; }
            done
            [ $_rc -eq 0 ] && break
        fi
        for _p in $pids; do kill -9 "$_p" 2>/dev/null; wait "$_p" 2>/dev/null; done
        if [ $_rc -ne 69 ]; then
            cat "$tmp"/n*.err
            fail "qdbd did not start (exit $_rc)"
        fi
        if grep -q "Cannot assign requested address" "$tmp"/n*.err; then
            echo "SKIP: loopback aliases 127.0.0.2-$_n are not usable here"
            exit 77
        fi
        if [ $_try -ge 8 ]; then
            echo "SKIP: no free port found"
            exit 77
        fi
        PORT=$(( 20000 + (PORT + 997) % 40000 ))
    done
    echo "hive: $_n nodes on 127.0.0.1-$_n:$PORT ($(elapsed))"
}

# The walk from node 1 finds N nodes, the ring whole and every node stable.
hive_is_stable() {
    _out=$(qsh 10 --raw --daemon="127.0.0.1:$PORT" hive_status 2>/dev/null) || return 1
    echo "$_out" | grep -q "\"nodes\":$1," || return 1
    ! echo "$_out" | grep -q '"stable":false'
}

hive_wait_stable() {
    wait_until 20 hive_is_stable "$1" || fail "the hive of $1 did not settle"
    echo "hive: stable ($(elapsed))"
}

# entry_files N: $tmp/puts (put keyI value-I), $tmp/gets (get keyI) and
# $tmp/expect (value-I), for I = 1..N: a qdbsh script and what it must print.
entry_files() {
    _i=1
    while [ $_i -le "$1" ]; do
        echo "put key$_i value-$_i" >&3
        echo "get key$_i" >&4
        echo "value-$_i" >&5
        _i=$((_i + 1))
    done 3>"$tmp/puts" 4>"$tmp/gets" 5>"$tmp/expect"
}

# hive_start_replicated K N: N nodes with IDs 11.., 22.., .. (the ring is
# 1 -> 2 -> .. -> N; N at most 9), stable, nodes 2..N having logged the
# hive's replication K, adopted at join (node_args gives node 1 its K).
hive_start_replicated() {
    _k=$1
    for _i in $(seq "$2"); do eval "ID$_i=\$(printf '$_i%.0s' \$(seq 64))"; done
    hive_start "$2"
    hive_wait_stable "$2"
    _settings_logged() { grep -q "hive settings: replication $_k" "$tmp/n$1.log"; }
    for _i in $(seq 2 "$2"); do
        wait_until 10 _settings_logged $_i || fail "node $_i did not adopt replication $_k"
    done
}

# qn I ARGS: qdbsh through node I
qn() { _n=$1; shift; qsh 20 --daemon="127.0.0.$_n:$PORT" "$@"; }

# put_entries N: entry_files N, then its puts through node 1 -- retried
# whole while the ring settles (a put that went through answers "already
# exists" the second time), then read back through node 1.  all_read I:
# every entry reads back through node I.
put_entries() {
    entry_files "$1"
    _puts_ok() { qn 1 <"$tmp/puts" >/dev/null 2>"$tmp/puts.err"; }
    if ! wait_until 20 _puts_ok && grep -v "already exists" "$tmp/puts.err" | grep -q .; then
        fail "putting $1 entries: $(head -n 3 "$tmp/puts.err")"
    fi
    wait_until 10 all_read 1 || fail "$1 entries not read back"
    echo "$1 entries put and read back"
}
all_read() { qn "$1" <"$tmp/gets" >"$tmp/got$1" 2>/dev/null && cmp -s "$tmp/got$1" "$tmp/expect"; }

# kill9 I...: kill -9 nodes I..., and reap them
kill9() {
    for _i in "$@"; do eval "kill -9 \$pid$_i; wait \$pid$_i 2>/dev/null"; done
}

# ring3_start A B C [ARGS...]: a ring of three qdbd --transient on 127.0.0.A,
# .B and .C with the IDs $IDA, $IDB and $IDC (the caller's), B and C joining
# through A, ARGS given to A; PORT (the caller's first choice) moves on while
# busy.  Skips (77) when 127.0.0.A is not usable.  ring3_whole A B C: each
# one's last "ring:" log line names the next as successor and the one before
# as predecessor.
ring3_start() {
    _a=$1 _b=$2 _c=$3
    shift 3
    for _try in 1 2 3 4 5 6; do
        rm -rf "$tmp"/n*.log "$tmp"/n*.err "$tmp"/root*
        eval "_id=\$ID$_a"
        start_node "$_a" --id="$_id" --transient "$@"
        wait_started "$_a" && break
        _rc=$?
        [ $_rc -eq 69 ] && [ $_try -lt 6 ] || { cat "$tmp/n$_a.err"; fail "qdbd did not start (exit $_rc)"; }
        grep -q "Cannot assign requested address" "$tmp/n$_a.err" &&
            { echo "SKIP: loopback alias 127.0.0.$_a is not usable here"; exit 77; }
        PORT=$(( 20000 + (PORT + 997) % 40000 ))
    done
    for _i in "$_b" "$_c"; do
        eval "_id=\$ID$_i"
        start_node "$_i" --id="$_id" --transient --peer="127.0.0.$_a:$PORT"
        wait_started "$_i" || { cat "$tmp/n$_i.err"; fail "qdbd $_i did not start"; }
    done
}
ring_line() { grep "ring: " "$tmp/n$1.log" | tail -n 1; }
succ_of() { ring_line "$1" | sed -n 's/.*successor \([0-9.:]*\),.*/\1/p'; }
pred_of() { ring_line "$1" | sed -n 's/.*predecessor \([0-9.:]*\),.*/\1/p'; }
ring3_whole() {
    [ "$(succ_of "$1")" = "127.0.0.$2:$PORT" ] && [ "$(succ_of "$2")" = "127.0.0.$3:$PORT" ] &&
        [ "$(succ_of "$3")" = "127.0.0.$1:$PORT" ] && [ "$(pred_of "$1")" = "127.0.0.$3:$PORT" ] &&
        [ "$(pred_of "$2")" = "127.0.0.$1:$PORT" ] && [ "$(pred_of "$3")" = "127.0.0.$2:$PORT" ]
}

#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# make bench: qdb (1-node and 3-node hives) against redis, the same load on both,
# then the simulator's scale line.  Everything on 127.0.0.x; every process this
# script starts is killed on exit; every wait is bounded.
#
# Environment (make bench sets the first five):
#   QDBD QDB_BENCH QDBSIM EVENTQ_BENCH   the built binaries
#   REDIS_SERVER            redis-server, or empty to skip redis
#   SRCDIR                  the source tree (for scenarios/bench10k.scn)
#   RESULTS                 where to write the table (bench/results.txt)
#   BENCH_PORT              first of the ports used (default 28360: qdb 1-node,
#                           +10 the 3-node hive, +20 redis, +30 the 1-node hive
#                           with a hive key, +40 the 3-node hive with K = 3,
#                           +50 the many-clients node (bench/many.sh), +60 the
#                           1-node hive on Berkeley DB)
#   BENCH_REQUESTS BENCH_CONNS BENCH_SIZE BENCH_KEYSPACE BENCH_TIME_LIMIT
#                           the load (100000, 50, 1024, 100000, 15 s per test)
#   BENCH_REPEAT            runs per cell; the table shows the median (3)
#   BENCH_SYNC_REQUESTS     requests per test on Berkeley DB with --sync (10000)
#   MANY_CONNS              the many-clients counts ("1000 5000 15000"; empty: none)
#   QDBD_ARGS               extra qdbd options
set -u

QDBD=${QDBD:-transport-real/qdbd}
QDB_BENCH=${QDB_BENCH:-bench/qdb-bench}
QDBSIM=${QDBSIM:-sim/qdbsim}
QDB_BATCH_BENCH=${QDB_BATCH_BENCH:-bench/qdb-batch-bench}
REDIS_SERVER=${REDIS_SERVER-}
SRCDIR=${SRCDIR:-.}
RESULTS=${RESULTS:-bench/results.txt}
PORT=${BENCH_PORT:-28360}
N=${BENCH_REQUESTS:-100000}
C=${BENCH_CONNS:-50}
D=${BENCH_SIZE:-1024}
R=${BENCH_KEYSPACE:-100000}
TL=${BENCH_TIME_LIMIT:-15}
REPEAT=${BENCH_REPEAT:-3}
QDBD_ARGS=${QDBD_ARGS-}

P1=$PORT
P3=$((PORT + 10))
PR=$((PORT + 20))
PA=$((PORT + 30))
PK=$((PORT + 40))
PM=$((PORT + 50))
PB=$((PORT + 60))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-bench.XXXXXX") || exit 99
pids=""

cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null
    done
    # bounded: SIGKILL whatever is still there after 3 s
    i=0
    for p in $pids; do
        while kill -0 "$p" 2>/dev/null && [ $i -lt 30 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    pids=""
}
trap 'cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "bench: $*" >&2
    exit 1
}

for b in "$QDBD" "$QDB_BENCH"; do
    [ -x "$b" ] || die "$b not built"
done
have_timeout=false
command -v timeout >/dev/null 2>&1 && have_timeout=true
# bounded CMD...: run with a hard limit of $1 seconds when timeout(1) exists
bounded() {
    lim=$1
    shift
    if $have_timeout; then timeout -k 5 "$lim" "$@"; else "$@"; fi
}

# start_qdbd NAME ADDR [PEER [EXTRA]]: one transient node in the background
start_qdbd() {
    name=$1 addr=$2 peer=${3-} extra=${4-}
    if [ -n "$extra" ]; then
        # shellcheck disable=SC2086
        "$QDBD" -a "$addr" --transient $extra $QDBD_ARGS >"$tmp/$name.log" 2>&1 &
    elif [ -n "$peer" ]; then
        # shellcheck disable=SC2086
        "$QDBD" -a "$addr" --transient --peer "$peer" $QDBD_ARGS >"$tmp/$name.log" 2>&1 &
    else
        # shellcheck disable=SC2086
        "$QDBD" -a "$addr" --transient $QDBD_ARGS >"$tmp/$name.log" 2>&1 &
    fi
    pids="$pids $!"
}

# wait_put HOST PORT SECONDS [EXTRA]: until a burst of puts through HOST all
# succeed (keys spread over the whole ring, so every owner must answer)
wait_put() {
    end=$(($(date +%s) + $3))
    while [ "$(date +%s)" -lt "$end" ]; do
        # shellcheck disable=SC2086
        if bounded 10 "$QDB_BENCH" -h "$1" -p "$2" -c 4 -n 200 -d 16 -r 200 --sequential \
            -t put --time-limit 3 --quiet ${4-} >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# median FILE TEST: the median rps of TEST's lines in a CSV file (of repeats)
median() {
    awk -F'"' -v t="$2" '$2 == t { print $4 }' "$1" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# qdb_load LABEL HOST PORT PIPELINE [EXTRA]: write "PUT_rps GET_rps note"
# (medians over $REPEAT runs) to $tmp/LABEL; a run that errs or hits the time
# limit ends the repeats, so a slow hive costs one run, not three.  EXTRA:
# more qdb-bench options (the key file; --direct for a 1-node hive, whose
# client needs no routing: the load generator then spends about what
# redis-benchmark does per request, and leaves the CPU to the server).
qdb_load() {
    out=$tmp/$1.csv
    : >"$out"
    note=""
    k=0
    while [ $k -lt "$REPEAT" ]; do
        k=$((k + 1))
        # shellcheck disable=SC2086
        bounded $((TL * 2 + 30)) "$QDB_BENCH" -h "$2" -p "$3" -c "$C" -n "$N" -d "$D" -r "$R" \
            -P "$4" -t put,get --seed "$k" --time-limit "$TL" --csv ${5-} >>"$out" \
            2>"$tmp/$1.err"
        rc=$?
        errs=$(awk -F'"' '$2 == "PUT" || $2 == "GET" { e += $18 } END { print e + 0 }' "$out")
        [ "$errs" -gt 0 ] && note="errors=$errs"
        grep -q "time limit" "$tmp/$1.err" && note="$note time-limited"
        [ $rc -ne 0 ] && [ -z "$note" ] && note="exit=$rc"
        [ -s "$tmp/$1.err" ] && sed 's/^/  qdb-bench: /' "$tmp/$1.err" | head -5 >&2
        [ -n "$note" ] && break
    done
    put=$(median "$out" PUT)
    get=$(median "$out" GET)
    echo "${put:--} ${get:--} ${note:--}" >"$tmp/$1"
}

redis_load() {
    out=$tmp/$1.csv
    : >"$out"
    extra=""
    [ "$2" -gt 1 ] && extra="-P $2"
    k=0
    while [ $k -lt "$REPEAT" ]; do
        k=$((k + 1))
        # shellcheck disable=SC2086
        bounded 120 redis-benchmark -h 127.0.0.1 -p "$PR" -t set,get -c "$C" -n "$N" -d "$D" \
            -r "$R" $extra --csv >>"$out" 2>"$tmp/$1.err"
    done
    put=$(median "$out" SET)
    get=$(median "$out" GET)
    echo "${put:--} ${get:--} -" >"$tmp/$1"
}

cpus=$(nproc 2>/dev/null || echo "?")
echo "== qdb bench: $C connections, $N requests per test, $D-byte values, keyspace $R," \
    "$cpus CPUs shared by servers and load"

# ---- qdb, 1 node -------------------------------------------------------------
echo "-- qdb 1-node hive on 127.0.0.1:$P1"
start_qdbd n1 "127.0.0.1:$P1"
if wait_put 127.0.0.1 "$P1" 15; then
    # connections opened before the timing, as for the keyed hive below
    qdb_load q1p1 127.0.0.1 "$P1" 1 "--direct --open-first"
    qdb_load q1p16 127.0.0.1 "$P1" 16 "--direct --open-first"
else
    echo "bench: the 1-node hive did not answer within 15 s; its log:" >&2
    tail -20 "$tmp/n1.log" >&2
fi
cleanup

# ---- qdb, 1 node on Berkeley DB: what persistence costs, without and with --sync --------
echo "-- qdb 1-node hive on Berkeley DB on 127.0.0.1:$PB, then with --sync"
for mode in nosync sync; do
    rm -rf "$tmp/bdb"
    if [ $mode = sync ]; then
        "$QDBD" -a "127.0.0.1:$PB" --root "$tmp/bdb" --sync >"$tmp/b$mode.log" 2>&1 &
    else
        "$QDBD" -a "127.0.0.1:$PB" --root "$tmp/bdb" >"$tmp/b$mode.log" 2>&1 &
    fi
    pids="$pids $!"
    if wait_put 127.0.0.1 "$PB" 15; then
        # every acknowledged write flushed: fewer requests, or it takes minutes
        [ $mode = sync ] && N=${BENCH_SYNC_REQUESTS:-10000}
        qdb_load "q1b${mode}p1" 127.0.0.1 "$PB" 1 --direct
        N=${BENCH_REQUESTS:-100000}
    else
        echo "bench: qdbd on Berkeley DB ($mode) did not answer within 15 s; its log:" >&2
        tail -20 "$tmp/b$mode.log" >&2
    fi
    cleanup
done

# ---- qdb, 1 node with a hive key (TLS 1.3-PSK) -----------------------------------
echo "-- qdb 1-node hive with a hive key on 127.0.0.1:$PA"
(umask 077 && "$QDBD" --gen-key >"$tmp/hive.key") || die "qdbd --gen-key failed"
start_qdbd na "127.0.0.1:$PA" "" "--hive-key-file=$tmp/hive.key"
if wait_put 127.0.0.1 "$PA" 15 "--key-file=$tmp/hive.key"; then
    # --open-first: the 50 TLS handshakes (about 0.35 ms of CPU each, both
    # sides) happen before the timing, not inside the PUT test
    qdb_load q1ap1 127.0.0.1 "$PA" 1 "--direct --open-first --key-file=$tmp/hive.key"
    qdb_load q1ap16 127.0.0.1 "$PA" 16 "--direct --open-first --key-file=$tmp/hive.key"
else
    echo "bench: the keyed 1-node hive did not answer within 15 s; its log:" >&2
    tail -20 "$tmp/na.log" >&2
fi
cleanup

# ---- qdb, 3 nodes ------------------------------------------------------------
echo "-- qdb 3-node hive on 127.0.0.1-3:$P3"
start_qdbd h1 "127.0.0.1:$P3"
sleep 0.3
start_qdbd h2 "127.0.0.2:$P3" "127.0.0.1:$P3"
start_qdbd h3 "127.0.0.3:$P3" "127.0.0.1:$P3"
if wait_put 127.0.0.2 "$P3" 45; then
    # load through node 2, as a client that knows one node
    qdb_load q3p1 127.0.0.2 "$P3" 1
    qdb_load q3p16 127.0.0.2 "$P3" 16
    # 1,000-operation batches against single calls, through libqdb
    if [ -x "$QDB_BATCH_BENCH" ]; then
        bounded 120 "$QDB_BATCH_BENCH" "127.0.0.2:$P3" 10000 1000 "$D" >"$tmp/batch" 2>&1 ||
            echo "bench: qdb-batch-bench failed: $(cat "$tmp/batch")" >&2
    fi
else
    echo "bench: puts through node 2 of the 3-node hive kept failing for 45 s; logs:" >&2
    for n in h1 h2 h3; do tail -5 "$tmp/$n.log" | sed "s/^/  $n: /" >&2; done
fi
cleanup

# ---- qdb, 3 nodes keeping K = 3 copies: what the copies cost writes -------------
echo "-- qdb 3-node hive with --replication=3 on 127.0.0.1-3:$PK"
start_qdbd k1 "127.0.0.1:$PK" "" "--replication=3"
sleep 0.3
start_qdbd k2 "127.0.0.2:$PK" "" "--peer 127.0.0.1:$PK --replication=3"
start_qdbd k3 "127.0.0.3:$PK" "" "--peer 127.0.0.1:$PK --replication=3"
if wait_put 127.0.0.2 "$PK" 45; then
    qdb_load q3kp1 127.0.0.2 "$PK" 1
    qdb_load q3kp16 127.0.0.2 "$PK" 16
else
    echo "bench: puts through node 2 of the K = 3 hive kept failing for 45 s; logs:" >&2
    for n in k1 k2 k3; do tail -5 "$tmp/$n.log" | sed "s/^/  $n: /" >&2; done
fi
cleanup

# ---- redis -------------------------------------------------------------------
# redis-cli ships with redis-benchmark (redis-tools); without it, trust the log
redis_up() {
    if command -v redis-cli >/dev/null 2>&1; then
        redis-cli -h 127.0.0.1 -p "$PR" ping 2>/dev/null | grep -q PONG
    else
        grep -q "Ready to accept" "$tmp/redis.log" 2>/dev/null
    fi
}
if [ -n "$REDIS_SERVER" ] && [ -x "$REDIS_SERVER" ] && command -v redis-benchmark >/dev/null 2>&1; then
    echo "-- redis on 127.0.0.1:$PR"
    "$REDIS_SERVER" --port "$PR" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --logfile "$tmp/redis.log" --dir "$tmp" >/dev/null 2>&1 &
    pids="$pids $!"
    up=false
    i=0
    while [ $i -lt 50 ]; do
        if redis_up; then
            up=true
            break
        fi
        sleep 0.1
        i=$((i + 1))
    done
    if $up; then
        redis_load rp1 1
        redis_load rp16 16
    else
        echo "bench: redis-server did not start" >&2
    fi
    cleanup
else
    echo "-- redis-server or redis-benchmark not installed: no comparison"
fi

# ---- the table ---------------------------------------------------------------
get() { [ -f "$tmp/$1" ] && cat "$tmp/$1" || echo "- - not-run"; }
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'
}
{
    echo "qdb vs redis: $C connections, $N requests, $D-byte values, keyspace $R;" \
        "median ops/s of $REPEAT runs; $cpus CPUs shared by server(s) and load generator;" \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf "%-7s %-7s %4s %12s %12s %10s %10s  %s\n" system hive P "PUT ops/s" "GET ops/s" \
        "PUT/redis" "GET/redis" note
    for p in 1 16; do
        # shellcheck disable=SC2046 # three fields, split on purpose
        set -- $(get "rp$p")
        rput=$1 rget=$2
        for h in 1 3; do
            # shellcheck disable=SC2046
            set -- $(get "q${h}p$p")
            printf "%-7s %-7s %4s %12s %12s %10s %10s  %s\n" qdb "$h-node" "$p" "$1" "$2" \
                "$(ratio "$1" "$rput")" "$(ratio "$2" "$rget")" "$3"
        done
        printf "%-7s %-7s %4s %12s %12s %10s %10s  %s\n" redis 1-node "$p" "$rput" "$rget" "" "" ""
    done
    for p in 1 16; do
        # shellcheck disable=SC2046 # three fields, split on purpose
        set -- $(get "q1p$p")
        pput=$1 pget=$2
        # shellcheck disable=SC2046
        set -- $(get "q1ap$p")
        echo "auth: qdb 1-node P=$p with a hive key (TLS 1.3-PSK): PUT $1 GET $2 ops/s," \
            "against plaintext PUT $(ratio "$1" "$pput")x GET $(ratio "$2" "$pget")x" \
            "(target 0.8x)$([ "$3" != - ] && echo " [$3]")"
    done
    for p in 1 16; do
        # shellcheck disable=SC2046 # three fields, split on purpose
        set -- $(get "q3p$p")
        kput=$1 kget=$2
        # shellcheck disable=SC2046
        set -- $(get "q3kp$p")
        echo "replication: qdb 3-node P=$p with K = 3: PUT $1 GET $2 ops/s," \
            "against K = 1 PUT $(ratio "$1" "$kput")x GET $(ratio "$2" "$kget")x$([ "$3" != - ] && echo " [$3]")"
    done
    # shellcheck disable=SC2046 # three fields, split on purpose
    set -- $(get q1p1)
    tput=$1 tget=$2
    # shellcheck disable=SC2046
    set -- $(get q1bnosyncp1)
    bput=$1 bget=$2 bnote=$3
    # shellcheck disable=SC2046
    set -- $(get q1bsyncp1)
    echo "storage: qdb 1-node P=1 on Berkeley DB: PUT $bput GET $bget ops/s" \
        "($(ratio "$bput" "$tput")x $(ratio "$bget" "$tget")x of --transient)$([ "$bnote" != - ] && echo " [$bnote]");" \
        "with --sync ($((${BENCH_SYNC_REQUESTS:-10000})) requests): PUT $1 GET $2 ops/s$([ "$3" != - ] && echo " [$3]")"
    if [ -s "$tmp/batch" ]; then
        # shellcheck disable=SC2046 # "single R batch R ratio X", split on purpose
        set -- $(cat "$tmp/batch")
        echo "libqdb on the 3-node hive, 10,000 $D-byte updates: single calls $2 ops/s," \
            "1,000-operation batches $4 ops/s: batches ${6}x faster"
    fi
} >"$tmp/table"

# ---- many clients: latency with thousands of connections held open ---------------
MANY_CONNS=${MANY_CONNS-1000 5000 15000}
if [ -n "$MANY_CONNS" ]; then
    echo "-- qdb 1-node hive with many clients ($MANY_CONNS) on 127.0.0.1:$PM"
    echo >>"$tmp/table"
    QDBD=$QDBD QDB_BENCH=$QDB_BENCH BENCH_PORT=$PM MANY_CONNS=$MANY_CONNS BENCH_SIZE=$D \
        bounded 600 sh "$SRCDIR/bench/many.sh" >>"$tmp/table" 2>&1
fi

# ---- the simulator ---------------------------------------------------------------
# bench/sim.sh: each scale scenario, then the bare event queue with the same
# number of pending events, and the fraction of its rate qdbsim reaches
if [ -x "$QDBSIM" ]; then
    echo "-- simulator: scenarios/bench10k.scn, scenarios/warm10k.scn"
    echo >>"$tmp/table"
    QDBSIM=$QDBSIM EVENTQ_BENCH=${EVENTQ_BENCH:-bench/eventq-bench} SRCDIR=$SRCDIR \
        sh "$SRCDIR/bench/sim.sh" >>"$tmp/table" 2>&1
else
    echo "-- no qdbsim: no simulator scale lines"
fi

# the raw lines, latencies included
{
    echo
    echo "raw: label test rps avg min p50 p95 p99 max (ms) [errors misses]"
    for f in q1p1 q1p16 q1bnosyncp1 q1bsyncp1 q1ap1 q1ap16 q3p1 q3p16 q3kp1 q3kp16 rp1 rp16; do
        [ -s "$tmp/$f.csv" ] && grep -v '^"test"' "$tmp/$f.csv" | sed "s/^/$f: /"
    done
} >"$tmp/raw"

mkdir -p "$(dirname "$RESULTS")"
cat "$tmp/table" "$tmp/raw" >"$RESULTS"
echo
cat "$tmp/table"
echo "(written to $RESULTS)"

#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/cpu.sh: server CPU per 100,000 requests, qdbd against redis-server.
#
#   bench/cpu.sh [ROUNDS] NAME=QDBD[:key] [NAME=QDBD[:key] ...]
#
# Throughput on a shared 2-core machine swings with whatever else runs (redis
# alone went from 474k to 725k PUT/s at P = 16 between runs); the CPU time a
# server spends per request moves much less.  Each qdbd given (--transient, so
# several builds can be compared in one run) and one redis-server (no
# persistence) are started side by side on loopback and loaded in turn, the
# same load as make bench: 50 connections, 100,000 requests, 1,024-byte values,
# keys in [0, 100,000), qdb-bench --direct against redis-benchmark, at P = 16
# and P = 1, PUT (SET) then GET, ROUNDS times (default 5) interleaved.  The CPU
# is the on-CPU time of all the server's threads (/proc/PID/task/*/schedstat,
# in ns) across one test.  Prints the median and every value in ms per
# 100,000 requests, and the load average.  NAME=QDBD:key runs that qdbd with
# a hive key (TLS 1.3-PSK, a key made for the run) and qdb-bench with it.
# The rows NAME/bench give qdb-bench's own CPU (user + system) in the same
# tests: with TLS the load generator pays as much again, on the same CPUs.
#
# Environment: QDB_BENCH (default bench/qdb-bench), REDIS_SERVER (default
# redis-server from PATH; empty: qdbd only), CPU_PORT (first port, default
# 28570: one per qdbd, redis at +20).  Every process started is killed on exit.
set -u
ROUNDS=5
case ${1-} in [0-9]*) ROUNDS=$1; shift ;; esac
[ $# -ge 1 ] || { echo "usage: $0 [ROUNDS] NAME=QDBD..." >&2; exit 2; }
QB=${QDB_BENCH:-bench/qdb-bench}
REDIS=${REDIS_SERVER-$(command -v redis-server)}
PORT=${CPU_PORT:-28570}
N=100000 C=50 D=1024 R=100000
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-cpu.XXXXXX") || exit 99
names=() pids=() ports=()
trap 'kill ${pids[*]} 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

cpu_ns() {
    local t=0 a b
    for f in /proc/"$1"/task/*/schedstat; do
        read -r a b <"$f" && t=$((t + a))
    done
    echo $t
}

# run NAME PID COMMAND...: one test, its server CPU in ms per 100,000 requests
# (and, for qdb-bench, the load generator's as NAME/bench)
run() {
    local name=$1 pid=$2 a b
    shift 2
    a=$(cpu_ns "$pid")
    times >"$tmp/t0" # this shell's, not a subshell's: its children's CPU
    "$@" >/dev/null 2>&1 || echo "$name: load generator failed" >&2
    times >"$tmp/t1"
    b=$(cpu_ns "$pid")
    echo "$name $P $t $(((b - a) * 100000 / N / 1000000))" >>"$tmp/out"
    [ "$1" = "$QB" ] && echo "$name/bench $P $t $((($(child_ms t1) - $(child_ms t0)) * 100000 / N))" \
        >>"$tmp/out"
}

# the children's user + system time in a saved "times" output, in ms
child_ms() {
    awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m");
        t += a[1] * 60000 + a[2] * 1000 } printf "%d\n", t }' "$tmp/$1"
}

keys=()
for spec in "$@"; do
    bin=${spec#*=} key=()
    if [ "${bin%:key}" != "$bin" ]; then
        bin=${bin%:key}
        [ -s "$tmp/hive.key" ] || (umask 077 && "$bin" --gen-key >"$tmp/hive.key") || exit 99
        key=("--hive-key-file=$tmp/hive.key")
    fi
    "$bin" -a "127.0.0.1:$PORT" --transient -l "$tmp/${spec%%=*}.log" "${key[@]}" &
    pids+=($!) names+=("${spec%%=*}") ports+=("$PORT") keys+=("${key[*]/#--hive-key-file/--key-file}")
    PORT=$((PORT + 1))
done
rport=$((${CPU_PORT:-28570} + 20))
if [ -n "$REDIS" ]; then
    "$REDIS" --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --logfile "$tmp/redis.log" --dir "$tmp" >/dev/null 2>&1 &
    pids+=($!) names+=(redis)
fi
sleep 1
# written first, as make bench does: the GETs then find most keys
for i in "${!ports[@]}"; do
    # shellcheck disable=SC2086 # empty or one word
    "$QB" -p "${ports[$i]}" -h 127.0.0.1 -c $C -n $N -d $D -r $R -P 16 -t put --direct \
        ${keys[$i]} --quiet >/dev/null 2>&1
done
[ -n "$REDIS" ] && redis-benchmark -p "$rport" -c $C -n $N -d $D -r $R -P 16 -t set -q >/dev/null
for k in $(seq "$ROUNDS"); do
    for P in 16 1; do
        for t in put get; do
            for i in "${!ports[@]}"; do
                # shellcheck disable=SC2086 # empty or one word
                run "${names[$i]}" "${pids[$i]}" "$QB" -p "${ports[$i]}" -h 127.0.0.1 -c $C \
                    -n $N -d $D -r $R -P $P -t $t --direct ${keys[$i]} --seed "$k" --quiet
            done
            [ -n "$REDIS" ] || continue
            rt=$t
            [ $t = put ] && rt="set"
            run redis "${pids[${#pids[@]}-1]}" redis-benchmark -p "$rport" -c $C -n $N -d $D \
                -r $R -P $P -t $rt -q
        done
    done
done
echo "server CPU, ms per 100,000 requests (median, then each of $ROUNDS rounds):"
sort -k2,2nr -k3,3r -k1,1 -s "$tmp/out" | awk '
    { k = "P=" $2 " " $3 " " $1; if (!(k in v)) order[n++] = k; v[k] = v[k] " " $4 }
    END {
        for (i = 0; i < n; i++) {
            m = split(substr(v[order[i]], 2), a, " ")
            for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++)
                if (a[y] < a[x]) { s = a[x]; a[x] = a[y]; a[y] = s }
            med = m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
            printf "%-22s %6s  [%s ]\n", order[i], med, v[order[i]]
        }
    }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

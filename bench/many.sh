#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# make bench, many clients: put and get latency (p50, p99) on one transient
# qdbd with 1,000, 5,000 and 15,000 connections held open.  Each connection
# is one client session (qdb-bench -c) with one request in flight (a closed
# loop: the next request leaves when the answer comes), opened before the
# timing starts (--open-first).  Prints a table on stdout; every process it
# starts is killed on exit, every wait is bounded (about a minute in all).
#
# Environment: QDBD QDB_BENCH (the built binaries); BENCH_PORT (default
# 28410); MANY_CONNS (default "1000 5000 15000"); BENCH_SIZE (1024);
# MANY_TIME_LIMIT (15 s per phase).
#
# Descriptors: the soft limit is raised to the hard one here, and qdbd gets
# --sessions above the largest count.  Every connection comes from 127.0.0.1
# to one port: 15,000 ephemeral ports fit Linux's default range (28,232), and
# the next count's connections reuse the ones left in TIME_WAIT (loopback,
# tcp_tw_reuse = 2 by default).  A count the limits cannot hold is skipped,
# and said so.
set -u

QDBD=${QDBD:-transport-real/qdbd}
QDB_BENCH=${QDB_BENCH:-bench/qdb-bench}
PORT=${BENCH_PORT:-28410}
COUNTS=${MANY_CONNS:-1000 5000 15000}
D=${BENCH_SIZE:-1024}
TL=${MANY_TIME_LIMIT:-15}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-many.XXXXXX") || exit 99
pid=""
# qdbd runs under timeout(1) (bounded below): SIGTERM here, SIGKILL from
# timeout at the latest
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    pid=""
}
trap 'cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bounded() {
    lim=$1
    shift
    if command -v timeout >/dev/null 2>&1; then timeout -k 5 "$lim" "$@"; else "$@"; fi
}

hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null
max=0
for c in $COUNTS; do [ "$c" -gt "$max" ] && max=$c; done
n_counts=$(echo $COUNTS | wc -w)
limit=$((n_counts * (TL * 3 + 60) + 60))
# not through bounded(): in the background, a function is a subshell, and
# $! would be the subshell's, not qdbd's (or timeout's, which passes SIGTERM on)
if command -v timeout >/dev/null 2>&1; then
    timeout -k 5 "$limit" "$QDBD" -a "127.0.0.1:$PORT" --transient --sessions=$((max + 100)) \
        >"$tmp/qdbd.log" 2>&1 &
else
    "$QDBD" -a "127.0.0.1:$PORT" --transient --sessions=$((max + 100)) >"$tmp/qdbd.log" 2>&1 &
fi
pid=$!
up=false
i=0
while [ $i -lt 50 ]; do
    if bounded 10 "$QDB_BENCH" -h 127.0.0.1 -p "$PORT" -c 2 -n 20 -d 16 -r 20 -t put \
        --time-limit 3 --quiet >/dev/null 2>&1; then
        up=true
        break
    fi
    sleep 0.2
    i=$((i + 1))
done
if ! $up; then
    echo "many: qdbd did not answer; its log:" >&2
    tail -5 "$tmp/qdbd.log" >&2
    exit 1
fi

echo "many clients: one transient qdbd, $D-byte values, one request in flight per connection;" \
    "descriptor limit $hard; load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
printf "%-12s %10s %10s %10s %10s %10s %10s  %s\n" connections "PUT ops/s" "PUT p50" "PUT p99" \
    "GET ops/s" "GET p50" "GET p99" "note (ms)"
for c in $COUNTS; do
    # the bench holds c connections, qdbd c sessions: each needs a descriptor
    if [ $((c + 64)) -gt "$hard" ]; then
        printf "%-12s %s\n" "$c" "skipped: the descriptor limit is $hard"
        continue
    fi
    n=$((c * 4))
    [ $n -lt 20000 ] && n=20000
    bounded $((TL * 3 + 60)) "$QDB_BENCH" -h 127.0.0.1 -p "$PORT" -c "$c" -n "$n" -d "$D" \
        -r 100000 -t put,get --open-first --time-limit "$TL" --csv >"$tmp/$c.csv" 2>"$tmp/$c.err"
    rc=$?
    awk -F'"' -v c="$c" -v rc="$rc" -v err="$(head -c 200 "$tmp/$c.err" | tr '\n' ' ')" '
        $2 == "PUT" { pr = $4; p50 = $10; p99 = $14; e += $18 }
        $2 == "GET" { gr = $4; g50 = $10; g99 = $14; e += $18 }
        END {
            note = ""
            if (e > 0) note = "errors=" e
            if (rc != 0) note = note " exit=" rc " " err
            printf "%-12s %10.0f %10s %10s %10.0f %10s %10s  %s\n", c, pr, p50, p99, gr, g50, g99, note
        }' "$tmp/$c.csv"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"

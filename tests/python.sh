#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/python.sh: the Python package (python/qdb) against a real hive of
# three qdbd --transient on 127.0.0.1 (three ports; node 2 and 3 join node
# 1), through pytest.  Exit 0 pass, 1 fail, 77 skip only when no python3 with
# pytest is found (Debian: python3-pytest) or qdbd is not built, 99 hard
# error.  PYTHON may name the interpreter.
QDBD=${QDBD:-transport-real/qdbd}
srcdir=${srcdir:-.}
[ -x "$QDBD" ] || { echo "SKIP: $QDBD is not built"; exit 77; }
py=
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import pytest' 2>/dev/null; then
        py=$p
        break
    fi
done
[ -n "$py" ] || { echo "SKIP: no python3 with pytest (apt-get install python3-pytest)"; exit 77; }
lib=$(pwd)/client/.libs/libqdb.so.0
[ -f "$lib" ] || { echo "FAIL: $lib is not built"; exit 99; }
# A sanitizer build's libqdb needs the ASan runtime loaded before python
# (which is not instrumented, and whose own allocations are not our leaks).
asan=$(ldd "$lib" 2>/dev/null | sed -n 's/.*libasan[^ ]* => \([^ ]*\) .*/\1/p')
if [ -n "$asan" ]; then
    export LD_PRELOAD="$asan${LD_PRELOAD:+ $LD_PRELOAD}"
    export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-python.XXXXXX") || exit 99
pids=
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP

# up PORT: the node answers a FIND (qdbsh-free: python through libqdb)
up() {
    QDB_LIBRARY=$lib PYTHONPATH="$srcdir/python" "$py" -c \
        "import qdb, sys; qdb.Cluster('127.0.0.1:$1', timeout=1).close()" 2>/dev/null
}
PORT=$(( 21000 + ($$ * 13) % 30000 ))
for try in 1 2 3 4 5; do
    pids=
    "$QDBD" -a "127.0.0.1:$PORT" --transient -l "$tmp/n1.log" 2>>"$tmp/err" &
    pids="$!"
    "$QDBD" -a "127.0.0.1:$((PORT + 1))" --transient --peer "127.0.0.1:$PORT" \
        -l "$tmp/n2.log" 2>>"$tmp/err" &
    pids="$pids $!"
    "$QDBD" -a "127.0.0.1:$((PORT + 2))" --transient --peer "127.0.0.1:$PORT" \
        -l "$tmp/n3.log" 2>>"$tmp/err" &
    pids="$pids $!"
    n=100
    while [ $n -gt 0 ] && ! { up "$PORT" && up $((PORT + 1)) && up $((PORT + 2)); }; do
        sleep 0.1; n=$((n - 1))
    done
    [ $n -gt 0 ] && break
    cleanup; mkdir -p "$tmp"
    PORT=$(( 21000 + (PORT + 997) % 30000 ))
done
[ $n -gt 0 ] || { echo "FAIL: no hive of three started"; cat "$tmp/err"; exit 1; }
# let the ring settle (joins, hand-over) so nothing answers "unstable"
sleep 3

QDB_LIBRARY=$lib PYTHONPATH="$srcdir/python" QDB_URI="127.0.0.1:$((PORT + 1))" \
    QDB_ERROR_H="$srcdir/node/error.h" \
    "$py" -m pytest -q -p no:cacheprovider "$srcdir/python/tests"
rc=$?
[ $rc -eq 0 ] || { for i in 1 2 3; do echo "-- node $i"; tail -5 "$tmp/n$i.log"; done; }
exit $rc

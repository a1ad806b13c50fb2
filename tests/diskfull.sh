#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/diskfull.sh: qdbd when its disk fills (storage/bdb.h, "Disk full" and
# "Depot size").  One qdbd on 127.0.0.7.  Exit 0 pass, 77 skip, 1 fail.
#
#   1. --max-depot-size=96K on an ordinary directory (needs nothing special):
#      puts of 1 KiB values until "depot full"; the depot stays under its
#      limit, the 75% warning is logged once, node_status shows it; removes
#      and a shrinking update run at the limit; once entries are removed,
#      puts succeed again.
#   2. a real full disk (ENOSPC): a 40 MiB tmpfs mounted in a private mount
#      namespace (unshare -m as root, else unshare -rm in a user namespace;
#      neither possible: that part says SKIP).  A filler file takes 8 MiB;
#      puts of 4 KiB values until "disk full"; qdbd is alive (no SIGBUS),
#      the entries written before read back, removes succeed (of three
#      512 KiB values too); then the filler is deleted and the time until a
#      put succeeds again is measured ("recovered in N ms", bounded by 5 s);
#      filled again, half the entries removed, measured again; SIGTERM ends
#      qdbd with status 0.
QDBD=${QDBD:-transport-real/qdbd}
QDBSH=${QDBSH:-client/qdbsh}
[ -x "$QDBD" ] && [ -x "$QDBSH" ] || { echo "SKIP: qdbd or qdbsh is not built"; exit 77; }
case $QDBD in /*) ;; *) QDBD=$(pwd)/$QDBD ;; esac
case $QDBSH in /*) ;; *) QDBSH=$(pwd)/$QDBSH ;; esac

# Part 2 needs a file system it can fill: a tmpfs in a mount namespace of its
# own, which vanishes with the test.  The whole script runs again inside it.
if [ -z "$QDB_DISKFULL_NS" ]; then
    export QDB_DISKFULL_NS=none QDBD QDBSH
    for how in "-m" "-rm"; do
        if unshare $how sh -c 'mount -t tmpfs -o size=1m none /tmp' 2>/dev/null; then
            QDB_DISKFULL_NS=$how exec unshare $how sh "$0" "$@"
        fi
    done
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-diskfull.XXXXXX") || exit 99
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    wait 2>/dev/null
    mountpoint -q "$tmp/mnt" 2>/dev/null && umount "$tmp/mnt"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP
fail() {
    echo "FAIL: $*"
    echo "-- qdbd's log (last 30 lines):"; tail -n 30 "$tmp/qdbd.log" 2>/dev/null
    exit 1
}
PORT=$(( 22000 + ($$ * 11) % 30000 ))
ADDR=127.0.0.7:$PORT
qsh() { timeout 30 "$QDBSH" -t 10000 --daemon="$ADDR" "$@"; }
bulk() { timeout 120 "$QDBSH" -t 10000 --daemon="$ADDR"; } # commands on stdin
now_ms() { date +%s%3N; }

# start ROOT OPTIONS...: qdbd on ROOT, waits until it answers (on the next
# port when its port is taken, a few times)
start() {
    _root=$1; shift
    _try=0
    while :; do
        : >"$tmp/qdbd.log"
        "$QDBD" -a "$ADDR" -r "$_root" -l "$tmp/qdbd.log" "$@" 2>"$tmp/qdbd.err" &
        pid=$!
        _n=100
        until qsh ping >/dev/null 2>&1; do
            kill -0 "$pid" 2>/dev/null || break
            _n=$(( _n - 1 )); [ $_n -gt 0 ] || fail "qdbd does not answer"
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && return 0
        _try=$(( _try + 1 ))
        grep -q "cannot listen" "$tmp/qdbd.err" && [ $_try -lt 5 ] ||
            fail "qdbd exited at start: $(cat "$tmp/qdbd.err")"
        PORT=$(( PORT + 997 )); ADDR=127.0.0.7:$PORT
    done
}
# stop: SIGTERM, and qdbd must exit 0 (a signal would give 128 + N)
stop() {
    kill -TERM "$pid"
    wait "$pid"; _rc=$?
    pid=
    [ $_rc -eq 0 ] || fail "qdbd exited $_rc"
}
# puts FILE PREFIX FIRST LAST BYTES: put lines for PREFIX<i>, each value
# BYTES pseudo-random hex digits (the same for all: each is compressed
# alone, to about 55%)
puts() {
    awk -v p="$2" -v a="$3" -v b="$4" -v n="$5" 'BEGIN { srand(7); v = "";
        while (length(v) < n) v = v sprintf("%08x", int(rand() * 4294967296));
        v = substr(v, 1, n); for (i = a; i <= b; i++) print "put " p i " " v }' >"$1"
}
# depot FIELD: node_status's depot.FIELD
depot() {
    qsh --raw node_status | sed -n "s/.*\"depot\":{[^}]*\"$1\":\([a-z0-9]*\).*/\1/p"
}

# ---- 1. --max-depot-size -------------------------------------------------------------
start "$tmp/d1" --max-depot-size=96K --depot-warning=75 --disk-reserve=0
puts "$tmp/p1" a 1 200 1000
bulk <"$tmp/p1" >"$tmp/out1" 2>&1
ok=$(grep -c . "$tmp/p1"); bad=$(grep -c "depot full" "$tmp/out1")
ok=$(( ok - bad ))
echo "depot: $ok puts of 1 KiB accepted under --max-depot-size=96K, $bad refused with 'depot full'"
[ $bad -gt 0 ] && [ $ok -ge 80 ] || fail "$ok puts accepted under 96 KiB, $bad refused"
[ $(( ok + bad )) -eq 200 ] || fail "other errors: $(grep -v 'depot full' "$tmp/out1" | head -3)"
# the values are hex, stored zstd-compressed (about 600 bytes each): the
# depot is full to within two of them
bytes=$(depot bytes)
echo "depot: node_status says $bytes bytes stored of 98304"
[ -n "$bytes" ] && [ "$bytes" -le 98304 ] && [ "$bytes" -ge $(( 98304 - 1200 )) ] ||
    fail "depot.bytes is '$bytes': over the limit, or far under it"
[ "$(depot warning)" = true ] || fail "node_status does not show the warning"
[ "$(grep -c '75% or more of its limit' "$tmp/qdbd.log")" -eq 1 ] ||
    fail "the warning was not logged exactly once"
qsh get a1 >/dev/null || fail "a1 is not readable at the limit"
qsh update a2 small >/dev/null || fail "a shrinking update was refused at the limit"
for i in 3 4 5 6 7 8 9 10 11 12; do
    qsh remove a$i >/dev/null || fail "remove a$i at the limit"
done
qsh put b1 "$(head -c 1000 "$tmp/p1" | tail -c 900)" >/dev/null || fail "no put after removes"
[ "$(depot warning)" = true ] || fail "warning gone while above 75%"
stop

# ---- 2. a full file system -------------------------------------------------------------
if [ "$QDB_DISKFULL_NS" = none ] || [ -z "$QDB_DISKFULL_NS" ]; then
    echo "SKIP (part 2): cannot mount a tmpfs here (no unshare -m, no user namespaces)"
    exit 0
fi
mkdir "$tmp/mnt"
mount -t tmpfs -o size=40m qdb-diskfull "$tmp/mnt" || fail "mount tmpfs"
head -c 8388608 /dev/zero >"$tmp/mnt/filler" || fail "filler"
start "$tmp/mnt/r" --disk-reserve=4M
echo "disk: a 40 MiB tmpfs, 8 MiB of it taken by a filler file, --disk-reserve=4M"
# fill FIRST: puts k<FIRST>.. until the disk is full; sets stored and last
# (the last key of the unbroken run of accepted puts)
fill() {
    puts "$tmp/p2" k "$1" $(( $1 + 11999 )) 4000
    _t0=$(now_ms)
    bulk <"$tmp/p2" >"$tmp/out2" 2>&1
    _t1=$(now_ms)
    _full=$(grep -c "disk full" "$tmp/out2")
    _other=$(grep -v "disk full" "$tmp/out2" | grep -c .)
    stored=$(( 12000 - _full - _other ))
    last=$(sed -n '1s/^error: put k\([0-9]*\):.*/\1/p' "$tmp/out2")
    last=$(( last - 1 )) # k<FIRST>..k<last> are stored
    echo "disk: $stored puts of 4 KiB stored in $(( _t1 - _t0 )) ms, then $_full refused with 'disk full'"
    [ $_full -gt 0 ] || fail "the disk never filled"
    [ $_other -eq 0 ] || fail "other errors: $(grep -v 'disk full' "$tmp/out2" | head -3)"
    kill -0 "$pid" 2>/dev/null || fail "qdbd died when the disk filled"
    [ "$(depot disk_full)" = true ] || fail "node_status does not say disk_full"
}
# removes FIRST LAST: every one must succeed
removes() {
    seq "$1" "$2" | sed 's/^/remove k/' | bulk >"$tmp/out3" 2>&1 ||
        fail "removes on the full disk: $(head -3 "$tmp/out3")"
    echo "disk: $(( $2 - $1 + 1 )) removes on the full disk succeeded"
}
# recovered WHAT: puts again within 5 s; prints the time
recovered() {
    _t0=$(now_ms)
    until qsh put "again$1" "$(sed -n 1p "$tmp/p2" | cut -d' ' -f3)" >/dev/null 2>&1; do
        [ $(( $(now_ms) - _t0 )) -lt 5000 ] || fail "puts still refused 5 s after $1"
        sleep 0.01
    done
    echo "disk: recovered in $(( $(now_ms) - _t0 )) ms after $1 (first put accepted)"
    [ "$(depot disk_full)" = false ] || fail "node_status still says disk_full"
}

# three large values first (512 KiB of hex each): a remove logs the value it
# drops, and it is these removes that failed once the disk was full
awk 'BEGIN { srand(11); while (length(v) < 524288) v = v sprintf("%08x", int(rand() * 4294967296));
    printf "%s", v }' >"$tmp/big"
for i in 1 2 3; do
    qsh put big$i <"$tmp/big" >/dev/null || fail "put big$i"
done
fill 1
grep -q "disk full" "$tmp/qdbd.log" || fail "qdbd did not log the full disk"
for i in 1 2 3 $(( last / 2 )) $last; do
    qsh get k$i >/dev/null || fail "k$i is not readable on the full disk"
done
for i in 1 2 3; do
    qsh remove big$i >/dev/null || fail "remove big$i (512 KiB) on the full disk"
done
echo "disk: 3 removes of 512 KiB values on the full disk succeeded"
removes 1 200
rm "$tmp/mnt/filler"
recovered "8 MiB was freed outside"
grep -q "room again" "$tmp/qdbd.log" || fail "the recovery was not logged"
fill 20001
removes 20001 $(( (20001 + last) / 2 ))
recovered "half the entries were removed"
kill -0 "$pid" 2>/dev/null || fail "qdbd died"
stop
exit 0

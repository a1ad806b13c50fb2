#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/qdbsh-api.sh: qdbsh's commands beyond the tutorial -- expiry,
# get_remove, remove_if, metadata, prefixes -- against one qdbd --transient,
# in one-shot and in line mode, with the errors a bad argument gives; and
# 'help' lists every command.  Exit 0 pass, 77 skip (qdbd or qdbsh not
# built, no free port), 1 fail.
QDBD=${QDBD:-transport-real/qdbd}
QDBSH=${QDBSH:-client/qdbsh}
[ -x "$QDBD" ] && [ -x "$QDBSH" ] || { echo "SKIP: qdbd or qdbsh is not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-api.XXXXXX") || exit 99
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP
fail() {
    echo "FAIL: $*"
    echo "-- qdbd's log:"; tail -n 20 "$tmp/qdbd.log" 2>/dev/null
    exit 1
}

# start qdbd on a port that is free (a few tries)
PORT=$(( 20000 + ($$ * 7) % 40000 ))
for try in 1 2 3 4 5; do
    "$QDBD" -a "127.0.0.1:$PORT" --transient -l "$tmp/qdbd.log" 2>"$tmp/qdbd.err" &
    pid=$!
    n=100
    while [ $n -gt 0 ] && kill -0 "$pid" 2>/dev/null &&
        ! "$QDBSH" -d "127.0.0.1:$PORT" -t 1000 update probe x 2>/dev/null; do
        sleep 0.1; n=$((n - 1))
    done
    kill -0 "$pid" 2>/dev/null && [ $n -gt 0 ] && break
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
    PORT=$(( 20000 + (PORT + 997) % 40000 ))
done
[ -n "$pid" ] || { echo "SKIP: no free port for qdbd"; exit 77; }
q() { "$QDBSH" -d "127.0.0.1:$PORT" -t 5000 "$@"; }

# help lists every command the shell accepts
for c in put get update get_update cas remove remove_all put_expiring update_expiring \
    get_remove remove_if metadata expires_at expires_from_now get_expiry prefix_get \
    prefix_count; do
    q help | grep -q "^  $c " || fail "help does not list $c"
done

# get_remove, remove_if
q put gr "take me" || fail "put gr"
[ "$(q get_remove gr)" = "take me" ] || fail "get_remove printed the wrong content"
q get gr 2>/dev/null && fail "gr still there after get_remove"
q put ri v1 || fail "put ri"
q remove_if ri v2 2>"$tmp/err" && fail "remove_if with the wrong content succeeded"
grep -q "content does not match\|unmatched\|compar" "$tmp/err" || fail "remove_if: $(cat "$tmp/err")"
q remove_if ri v1 || fail "remove_if with the right content failed"

# metadata and expiry
q put md hello || fail "put md"
out=$(q metadata md) || fail "metadata md"
echo "$out" | grep -q "^size  *5$" || fail "metadata: $out"
echo "$out" | grep -q "^version  *[1-9][0-9]*$" || fail "metadata: $out"
echo "$out" | grep -q "^expires  *never" || fail "metadata: $out"
q expires_at md 4102444800 || fail "expires_at"
[ "$(q get_expiry md)" = 4102444800 ] || fail "get_expiry after expires_at"
q metadata md | grep -q "^expires  *2100-01-01T00:00:00Z" || fail "metadata expiry: $(q metadata md)"
q expires_at md 0 && [ "$(q get_expiry md)" = 0 ] || fail "expires_at 0"
q put_expiring gone 1 "in 1970" || fail "put_expiring in the past"
q get gone 2>/dev/null && fail "an entry expired in 1970 is readable"
q update_expiring soon 4102444800 later || fail "update_expiring"
[ "$(q get soon)" = later ] || fail "update_expiring content"

# bad arguments: refused before anything is sent
for bad in "expires_at md -1" "expires_at md 253402300800" "expires_at md soon" \
    "expires_from_now md -5" "prefix_get p 1000001" "prefix_get p x" "put_expiring a -1 x"; do
    # shellcheck disable=SC2086
    q $bad 2>/dev/null && fail "'$bad' succeeded"
done
q get_remove "" 2>"$tmp/err" && fail "an empty alias was accepted"
grep -q "alias" "$tmp/err" || fail "empty alias: $(cat "$tmp/err")"

# prefixes, in line mode
printf 'update pf/b x\nupdate pf/a x\nupdate pf/c x\nupdate other x\n' | q || fail "updates"
[ "$(printf 'prefix_get pf/ 3\n' | q)" = "$(printf 'pf/a\npf/b\npf/c')" ] ||
    fail "prefix_get: $(printf 'prefix_get pf/ 3\n' | q 2>&1)"
q prefix_get pf/ 2 2>"$tmp/err" && fail "prefix_get over max succeeded"
grep -q "too many" "$tmp/err" || fail "prefix_get over max: $(cat "$tmp/err")"
[ "$(q prefix_count pf/)" = 3 ] || fail "prefix_count"
echo "qdbsh api commands: ok"

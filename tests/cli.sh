#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/cli.sh: what every program's command line promises (qdbd, qdbsh,
# qdbsim, qdb-bench).  Exit 0 pass, 1 fail.
#   - -V and --version print "NAME VERSION" and exit 0
#   - under a UTF-8 locale --help reads "[OPTION…]": the program called
#     setlocale, so GLib knows the terminal's charset
#   - qdbsim --seed abc says what is wrong with --seed (not "--set:1:6")
#   - a scenario qdbsim refuses (unknown parameter, bad ID, with either
#     storage) gets one line on stderr, the message: the half-built world is
#     unwound quietly (no GLib-CRITICAL)
#   - the tutorial's acknowledged scripted put counts as an acknowledged write
#   - qdbd has no -d: it is qdbsh's --daemon; qdbd spells out --daemonize
#   - the man pages share one header: .TH NAME SECTION "Month Year"
#     "qdb VERSION" "qdb manual", VERSION being the programs' own
QDBD=${QDBD:-transport-real/qdbd}
QDBSH=${QDBSH:-client/qdbsh}
QDBSIM=${QDBSIM:-sim/qdbsim}
QDB_BENCH=${QDB_BENCH:-bench/qdb-bench}
failed=0
fail() { echo "FAIL: $*"; failed=1; }
utf8=$(locale -a 2>/dev/null | grep -i -m1 '^c\.utf-\{0,1\}8$')
for prog in "$QDBD" "$QDBSH" "$QDBSIM" "$QDB_BENCH"; do
    name=$(basename "$prog")
    [ -x "$prog" ] || { fail "$prog is not built"; continue; }
    for v in -V --version; do
        out=$("$prog" $v 2>&1) || fail "$name $v exited $?"
        echo "$out" | grep -q "^$name.* [0-9][0-9.]*" || fail "$name $v printed '$out'"
    done
    if [ -n "$utf8" ]; then
        LC_ALL=$utf8 "$prog" --help 2>&1 | grep -q 'OPTION…' ||
            fail "$name --help under $utf8 does not show [OPTION…] (no setlocale?)"
    fi
done
[ -n "$utf8" ] || echo "NOTE: no C.UTF-8 locale; --help's charset not checked"

msg=$("$QDBSIM" "${srcdir:-.}/scenarios/tutorial.scn" --seed abc 2>&1)
rc=$?
[ $rc -eq 2 ] || fail "qdbsim --seed abc exited $rc, not 2"
echo "$msg" | grep -q "^qdbsim: --seed 'abc': want a whole number" ||
    fail "qdbsim --seed abc said: $msg"

tutorial="${srcdir:-.}/scenarios/tutorial.scn"
# refused "--set ...": exactly one line on stderr, this message; exit 2
refused() {
    want=$1; shift
    err=$("$QDBSIM" "$tutorial" "$@" 2>&1 >/dev/null)
    rc=$?
    [ $rc -eq 2 ] || fail "qdbsim $* exited $rc, not 2"
    [ "$err" = "$want" ] || fail "qdbsim $* wrote to stderr: $err"
}
refused "qdbsim: --set:1:1: unknown parameter 'nodez'" --set nodez=4
refused "qdbsim: --set:1:1: unknown parameter 'nodez'" --set storage=bdb --set nodez=4
refused "qdbsim: --set:1:6: bad ID 'zz' (1 to 64 hex digits, or #decimal)" --set id.1=zz
refused "qdbsim: --set:1:7: nodes must be 1 to 4,000,000" --set nodes=0

out=$("$QDBSIM" "$tutorial" 2>/dev/null)
echo "$out" | grep -Eq '^requests +2 \(1 writes acknowledged\)$' ||
    fail "qdbsim tutorial: acknowledged put not counted: $(echo "$out" | grep '^requests')"
scn=$(mktemp)
{ cat "$tutorial"; echo "at end expect acked_writes == 1"; } >"$scn"
"$QDBSIM" "$scn" >/dev/null 2>&1 || fail "qdbsim tutorial + expect acked_writes == 1 failed"
rm -f "$scn"

msg=$("$QDBD" -d 2>&1)
rc=$?
[ $rc -eq 64 ] || fail "qdbd -d exited $rc, not 64"
echo "$msg" | grep -q "Unknown option -d" || fail "qdbd -d said: $msg"
"$QDBD" --help | grep -q -- '--daemonize' || fail "qdbd --help lacks --daemonize"
"$QDBSH" --help | grep -q -- '-d, --daemon' || fail "qdbsh --help lacks -d, --daemon"

version=$("$QDBD" --version | sed -n 's/^qdbd //p')
for page in "${srcdir:-.}"/doc/*.[18]; do
    name=$(basename "$page" | sed 's/\.[18]$//' | tr a-z A-Z)
    section=${page##*.}
    grep -Eq "^\.TH $name $section \"[A-Z][a-z]+ [0-9]{4}\" \"qdb $version\" \"qdb manual\"\$" "$page" ||
        fail "$page: header is not '.TH $name $section \"Month Year\" \"qdb $version\" \"qdb manual\"'"
done
grep -q '^\.BR qdbsim (1),' "${srcdir:-.}/doc/qdbd.8" || fail "qdbd(8) SEE ALSO lacks qdbsim(1)"

[ $failed -eq 0 ] && echo "cli: -V, setlocale, --seed, refused scenarios, acked writes, -d, man headers: ok"
exit $failed

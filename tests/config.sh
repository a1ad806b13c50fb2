#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/config.sh: qdbd's configuration file.  Exit 0 pass, 77 skip, 1 fail.
#   1. --gen-config prints every option of --help, commented, in [qdbd]; the
#      file it prints is valid as it stands and with every key uncommented
#   2. every error in a file names the file and the line, and exits 78
#      (EX_CONFIG); the same bad value on the command line exits 64
#   3. the command line wins over the file
# Nothing listens: --check-config stops after validation.
QDBD=${QDBD:-transport-real/qdbd}
[ -x "$QDBD" ] || { echo "SKIP: $QDBD is not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qdb-config.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# 1. the generated file
"$QDBD" --gen-config > "$tmp/gen.conf" || fail "--gen-config exited $?"
grep -qx '\[qdbd\]' "$tmp/gen.conf" || fail "--gen-config: no [qdbd] group"
for opt in $("$QDBD" --help | sed -n 's/^  \(-., \)\{0,1\}--\([a-z-]*\).*/\2/p'); do
    case $opt in help | config | gen-config | gen-key | check-config | version) continue ;; esac
    grep -q "^#$opt =" "$tmp/gen.conf" || fail "--gen-config lacks --$opt"
done
grep -qx '#address = 127.0.0.1:2836' "$tmp/gen.conf" || fail "--gen-config: address default"
"$QDBD" --config="$tmp/gen.conf" --check-config > /dev/null || fail "generated file rejected"
sed 's/^#\([a-z-]* =\)/\1/' "$tmp/gen.conf" > "$tmp/all.conf"
grep -q '^log-level = info$' "$tmp/all.conf" || fail "uncommenting did not work"
out=$("$QDBD" --config="$tmp/all.conf" --check-config) || fail "uncommented file rejected: $out"

# 2. errors: "FILE:LINE:" and exit 78
# expect_error CODE LINE PATTERN ARGS...: qdbd ARGS must exit CODE with a
# message naming bad.conf:LINE (LINE "-": no file) and matching PATTERN.
expect_error() {
    code=$1 line=$2 pat=$3; shift 3
    msg=$("$QDBD" --check-config "$@" 2>&1 >/dev/null)
    rc=$?
    [ $rc -eq "$code" ] || fail "$* exited $rc, not $code ($msg)"
    if [ "$line" != - ]; then
        echo "$msg" | grep -q "^qdbd: $tmp/bad.conf:$line: " || fail "$*: no file:line in '$msg'"
    fi
    echo "$msg" | grep -q -- "$pat" || fail "$*: '$msg' does not say '$pat'"
}
bad() { printf '%b' "$1" > "$tmp/bad.conf"; }
# one bad file a line: LINE|what the message must say|the file (printf %b)
while IFS='|' read -r line pat text; do
    bad "$text"
    expect_error 78 "$line" "$pat" --config="$tmp/bad.conf"
done <<'CASES'
4|log-level: 'loud'|[qdbd]\naddress = 127.0.0.9:2836\n\nlog-level = loud\n
3|not a boolean|# a comment\n[qdbd]\nsync = yes please\n
2|unknown key 'adress'|[qdbd]\nadress = 127.0.0.1\n
3|unknown group \[server\]|[qdbd]\nroot = x\n[server]\n
2|not a 'key = value' line|[qdbd]\nthis line is not a key\n
1|before the \[qdbd\] group|root = x\n[qdbd]\n
3|peer: '10.0.0'|[qdbd]\n\npeer = 127.0.0.1:2836;10.0.0\n
2|address: '0.0.0.0'|[qdbd]\naddress = 0.0.0.0\n
2|id: 'xyz'|[qdbd]\nid = xyz\n
3|exclude each other|[qdbd]\ntransient = true\nsync = true\n
3|tombstone-grace: '1d': want whole seconds|[qdbd]\nroot = x\ntombstone-grace = 1d\n
2|max-depot-size: '5X': want bytes|[qdbd]\nmax-depot-size = 5X\n
2|depot-warning: '101': want a percentage|[qdbd]\ndepot-warning = 101\n
2|transient: --max-depot-size limits a store on disk|[qdbd]\ntransient = true\nmax-depot-size = 1G\n
CASES
expect_error 64 - "bad --log-level: 'loud'" --log-level=loud
expect_error 64 - "bad --tombstone-grace: '0': want whole seconds" --tombstone-grace=0
expect_error 64 - "bad --dead-node-grace: '1h': want whole seconds" --dead-node-grace=1h
expect_error 64 - "bad --repair-rate: '0': want records a second" --repair-rate=0
expect_error 64 - "bad --disk-reserve: '-1': want bytes" --disk-reserve=-1
expect_error 64 - "bad --max-depot-size: '17179869184T': want bytes" --max-depot-size=17179869184T
expect_error 64 - "bad --max-depot-size: --max-depot-size limits a store on disk" \
    --transient --max-depot-size=1M
expect_error 66 - "cannot read $tmp/missing.conf" --config="$tmp/missing.conf"
expect_error 64 - "Unknown option -d" -d

# 3. the command line wins over the file (the file's bad value is never read)
bad '[qdbd]\nlog-level = loud\n'
"$QDBD" --config="$tmp/bad.conf" --log-level=debug --check-config > /dev/null ||
    fail "--log-level did not override the file"

[ $failed -eq 0 ] && echo "config: --gen-config, file:line errors with exit 78, precedence: ok"
exit $failed

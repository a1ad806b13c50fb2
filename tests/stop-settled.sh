#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# stop = settled (make graphs' scenarios): a run ends early once nothing left
# could change what the oracle measures, and it measures the same as the
# whole run -- the stabilization times after one failure, the path lengths
# of a batch of lookups -- in less virtual time.
set -u
srcdir=${srcdir:-.}
qdbsim=${QDBSIM:-sim/qdbsim}
field() { echo "$1" | sed -n "s/.*\"$2\": \([-0-9.]*\).*/\1/p"; }
fail=0
check() { # scenario nodes fields...
    local name=$1 scn=$srcdir/scenarios/$1.scn n=$2 f a b
    shift 2
    a=$("$qdbsim" --json "$scn" --set nodes="$n" --set stop=end 2>/dev/null)
    b=$("$qdbsim" --json "$scn" --set nodes="$n" --set stop=settled 2>/dev/null)
    local va vb
    va=$(field "$a" virtual_s); vb=$(field "$b" virtual_s)
    if [ -z "$vb" ] || ! awk -v a="$va" -v b="$vb" 'BEGIN { exit !(b < a) }'; then
        echo "FAIL: $name: stop=settled ran $vb virtual s, the whole run $va"; fail=1; return
    fi
    for f in "$@"; do
        if [ -z "$(field "$b" "$f")" ] || [ "$(field "$a" "$f")" != "$(field "$b" "$f")" ]; then
            echo "FAIL: $name: $f is $(field "$b" "$f") with stop=settled, $(field "$a" "$f") without"
            fail=1
        fi
    done
    echo "PASS: $name (N = $n) settled at $vb of $va virtual s with the same $*"
}
check graph-failure 64 ring_stable_s full_stable_s
check graph-lookups 64 lookups hops_mean hops_p99 lookup_failures
# a run still settling at its end is not cut short
b=$("$qdbsim" --json "$srcdir/scenarios/graph-bootstrap.scn" --set nodes=64 --set end=3s 2>/dev/null)
if [ "$(field "$b" virtual_s)" != "3.000" ] || [ "$(field "$b" full_stable_s)" != "-1.000" ]; then
    echo "FAIL: graph-bootstrap ending unsettled at 3 s: $b"; fail=1
else
    echo "PASS: a bootstrap not settled by its end runs to it"
fi
exit $fail

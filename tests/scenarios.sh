#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Runs every scenario of scenarios/ through qdbsim (make check):
#  - its expectations must hold (qdbsim exits 0);
#  - run twice with its seed, the trace hashes must be equal;
#  - run with another seed, the hash must differ.
# The hashes go to scenario-hashes.txt in the build folder, so two builds
# (plain and sanitized) can be compared: ./dev.sh test does.
# Scenarios whose first line says "# check: skip" are left to make bench.
set -u
srcdir=${srcdir:-.}
qdbsim=${QDBSIM:-sim/qdbsim}
out=scenario-hashes.txt
: > "$out"
fail=0
hash_of() { sed -n 's/.*"trace_hash": "\([0-9a-f]*\)".*/\1/p'; }
for scn in "$srcdir"/scenarios/*.scn; do
    name=$(basename "$scn" .scn)
    head -n 1 "$scn" | grep -q '^# check: skip' && continue
    a=$(timeout 600 "$qdbsim" --json "$scn" 2>"$name.err")
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL: $name: qdbsim exited $rc"; cat "$name.err"; fail=1; continue
    fi
    b=$(timeout 600 "$qdbsim" --json "$scn" 2>/dev/null)
    seed=$(echo "$a" | sed -n 's/.*"seed": \([0-9]*\).*/\1/p')
    c=$(timeout 600 "$qdbsim" --json "$scn" --seed $((seed + 1)) 2>/dev/null)
    ha=$(echo "$a" | hash_of); hb=$(echo "$b" | hash_of); hc=$(echo "$c" | hash_of)
    if [ -z "$ha" ] || [ "$ha" != "$hb" ]; then
        echo "FAIL: $name: same seed, different trace hashes ($ha, $hb)"; fail=1
    elif [ "$ha" = "$hc" ]; then
        echo "FAIL: $name: seeds $seed and $((seed + 1)) gave the same hash $ha"; fail=1
    else
        echo "PASS: $name seed $seed hash $ha (seed $((seed + 1)): $hc)"
    fi
    echo "$name $seed $ha" >> "$out"
    rm -f "$name.err"
done
exit $fail

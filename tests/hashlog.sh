#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Divergence hunting: qdbsim --hash-log writes a hash per event; a second run
# with --check-hash-log must agree event for event, and a run that differs
# (another seed) must stop at the first divergent event and show both sides.
set -u
srcdir=${srcdir:-.}
qdbsim=${QDBSIM:-sim/qdbsim}
scn_dir=$srcdir/scenarios
scn=$scn_dir/tutorial.scn
log=hashlog.$$.txt
trap 'rm -f "$log" hashlog.$$.err' EXIT
"$qdbsim" -q "$scn" --hash-log "$log" >/dev/null || { echo "FAIL: writing the hash log"; exit 1; }
[ "$(wc -l < "$log")" -gt 100 ] || { echo "FAIL: the hash log is too short"; exit 1; }
"$qdbsim" -q "$scn" --check-hash-log "$log" >/dev/null 2>hashlog.$$.err
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: the same run diverged (exit $rc)"; cat hashlog.$$.err; exit 1; }
"$qdbsim" -q "$scn" --seed 43 --check-hash-log "$log" >/dev/null 2>hashlog.$$.err
rc=$?
if [ $rc -ne 3 ] || ! grep -q "divergence" hashlog.$$.err; then
    echo "FAIL: another seed did not report a divergence (exit $rc)"; cat hashlog.$$.err; exit 1
fi
echo "PASS: $(wc -l < "$log") events logged; same run agrees; another seed stops at:"
head -n 4 hashlog.$$.err
# The store is a seam: the real Berkeley DB store and the memory store must
# give the very same run.
bdb=$scn_dir/bdb-small.scn
a=$("$qdbsim" --json "$bdb" 2>/dev/null | sed -n 's/.*"trace_hash": "\([0-9a-f]*\)".*/\1/p')
b=$("$qdbsim" --json "$bdb" --set storage=memory 2>/dev/null | sed -n 's/.*"trace_hash": "\([0-9a-f]*\)".*/\1/p')
if [ -z "$a" ] || [ "$a" != "$b" ]; then
    echo "FAIL: bdb-small: Berkeley DB gave hash '$a', the memory store '$b'"; exit 1
fi
echo "PASS: bdb-small gives hash $a with Berkeley DB and with the memory store"

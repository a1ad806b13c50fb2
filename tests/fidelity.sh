#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Fidelity to Chord (SIGCOMM 2001 / ToN 2003, Fig. 10): with N = 2^k nodes on
# a stable ring and random keys, the mean lookup path length must be within
# 10% of 1/2 log2 N.  make check runs k = 3..10; make bench goes to k = 14
# (KMAX=14).
set -u
srcdir=${srcdir:-.}
qdbsim=${QDBSIM:-sim/qdbsim}
kmin=${KMIN:-3}
kmax=${KMAX:-10}
fail=0
printf '%8s %10s %10s %8s\n' nodes hops_mean "1/2log2N" error
for k in $(seq "$kmin" "$kmax"); do
    n=$((1 << k))
    # A small world's mean depends on where its few IDs fall: average over
    # several seeds (ID layouts), 8 at N = 8 down to 1 from N = 256.
    seeds=$(( 256 / n )); [ "$seeds" -lt 1 ] && seeds=1; [ "$seeds" -gt 8 ] && seeds=8
    sum=0
    for s in $(seq 1 "$seeds"); do
        json=$(timeout 1200 "$qdbsim" --json "$srcdir/scenarios/lookups.scn" --set nodes=$n --seed $s 2>/dev/null)
        h=$(echo "$json" | sed -n 's/.*"hops_mean": \([0-9.]*\).*/\1/p')
        if [ -z "$h" ]; then echo "FAIL: N=$n seed $s: qdbsim failed"; fail=1; h=0; fi
        sum=$(awk -v a="$sum" -v b="$h" 'BEGIN { print a + b }')
    done
    hops=$(awk -v a="$sum" -v m="$seeds" 'BEGIN { printf "%.3f", a / m }')
    if ! awk -v h="$hops" -v k="$k" -v n="$n" 'BEGIN {
            want = k / 2; err = (h - want) / want;
            printf "%8d %10.3f %10.3f %7.1f%%\n", n, h, want, 100 * err;
            exit (err < -0.10 || err > 0.10) }'; then
        echo "FAIL: N=$n: mean path length $hops is not within 10% of $(awk -v k=$k 'BEGIN{print k/2}')"
        fail=1
    fi
done
exit $fail

#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# A short seed sweep (make check): crash-under-load with random crashes,
# restarts, partitions, loss, duplication and reordering drawn from each
# seed, then the same faults on top of replicas-k3.scn (K = 3, two adjacent
# nodes crashing with their storage lost).  A failing seed prints the exact
# qdbsim command that replays it.
# The long sweeps are: qdbsim scenarios/crash-under-load.scn --sweep 200
#                      qdbsim scenarios/replicas-k3.scn --sweep 1000
set -u
srcdir=${srcdir:-.}
"${QDBSIM:-sim/qdbsim}" "$srcdir/scenarios/crash-under-load.scn" --sweep "${SWEEP:-4}" --set nodes=24 || exit 1
exec "${QDBSIM:-sim/qdbsim}" "$srcdir/scenarios/replicas-k3.scn" --sweep "${SWEEP:-4}"

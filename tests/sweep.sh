#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# A short seed sweep (make check): crash-under-load with random crashes,
# restarts, partitions, loss, duplication and reordering drawn from each
# seed.  A failing seed prints the exact qdbsim command that replays it.
# The long sweep is: qdbsim scenarios/crash-under-load.scn --sweep 200
set -u
srcdir=${srcdir:-.}
exec "${QDBSIM:-sim/qdbsim}" "$srcdir/scenarios/crash-under-load.scn" --sweep "${SWEEP:-4}" --set nodes=24

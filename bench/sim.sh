#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The simulator's speed (make bench, make bench-sim): for each scale scenario,
# qdbsim's events/s, then a bare event queue (bench/eventq-bench: the same
# heap, no simulator around it) holding as many pending events as qdbsim's
# queue held on average, and the fraction of the bare rate qdbsim reached;
# then the real-time factor (virtual seconds per wall second).  Both rates
# are measured in the same run, on the same machine load.
#
# Environment: QDBSIM, EVENTQ_BENCH (the binaries), SRCDIR (for scenarios/),
# SIM_SCENARIOS (default: bench10k warm10k), SIM_TIME_LIMIT (s, default 600).
set -u
QDBSIM=${QDBSIM:-sim/qdbsim}
EVENTQ_BENCH=${EVENTQ_BENCH:-bench/eventq-bench}
SRCDIR=${SRCDIR:-.}
limit=${SIM_TIME_LIMIT:-600}
[ -x "$QDBSIM" ] || { echo "bench/sim.sh: no $QDBSIM" >&2; exit 1; }
[ -x "$EVENTQ_BENCH" ] || { echo "bench/sim.sh: no $EVENTQ_BENCH" >&2; exit 1; }
bounded() {
    if command -v timeout >/dev/null 2>&1; then timeout -k 5 "$@"; else shift; "$@"; fi
}
rc=0
for name in ${SIM_SCENARIOS:-bench10k warm10k}; do
    scn=$SRCDIR/scenarios/$name.scn
    [ -f "$scn" ] || { echo "simulator: no $scn"; continue; }
    j=$(bounded "$limit" "$QDBSIM" "$scn" --json 2>/dev/null | tail -1)
    field() { echo "$j" | sed -n "s/.*\"$1\": *\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
    eps=$(field events_per_s)
    if [ -z "$eps" ]; then
        echo "simulator: $name: no result"
        rc=1
        continue
    fi
    pending=$(field pending_mean)
    [ "${pending:-0}" -gt 0 ] 2>/dev/null || pending=1
    q=$("$EVENTQ_BENCH" "$pending" | sed -n 's/.*: \([0-9]*\) events\/s$/\1/p')
    printf "simulator: %s, %s nodes: %s events in %s s wall (%s virtual s, %sx real time), %s bytes/node\n" \
        "$name" "$(field nodes)" "$(field events)" "$(field wall_s)" "$(field virtual_s)" \
        "$(awk -v v="$(field virtual_s)" -v w="$(field wall_s)" 'BEGIN { printf "%.1f", (w > 0 ? v / w : 0) }')" \
        "$(field bytes_per_node)"
    awk -v e="$eps" -v q="${q:-0}" -v p="$pending" 'BEGIN {
        printf "  events/s: qdbsim %d, bare event queue (%d pending) %d: qdbsim at %.1f%% of the queue\n",
            e, p, q, (q > 0 ? 100 * e / q : 0) }'
done
exit $rc

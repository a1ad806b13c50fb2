#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make graphs: run qdbsim over the graph scenarios and draw them with gnuplot.
#
#   QDBSIM=sim/qdbsim SRCDIR=. GNUPLOT=gnuplot sim/graphs/graphs.sh
#
# Settings (environment): NMIN (8) and NMAX (4096): the world sizes, powers of
# two; SEEDS (5): runs per point; BIGSEEDS (2): runs per point above N =
# 16384, where one run costs minutes; JOBS (the number of CPUs): runs at once;
# OUT (graphs): where data, PNG and SVG files go; REUSE=1: keep the results of
# runs already in OUT/raw (to resume a long run).  See doc/graphs.md.
#
# On a terminal one line shows progress (done/total, elapsed, estimate left);
# when stdout is not a terminal the script prints only what it wrote.
set -u
qdbsim=${QDBSIM:-sim/qdbsim}
srcdir=${SRCDIR:-.}
gnuplot=${GNUPLOT:-gnuplot}
nmin=${NMIN:-8}
nmax=${NMAX:-4096}
seeds=${SEEDS:-5}
bigseeds=${BIGSEEDS:-2}
jobs=${JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
out=${OUT:-graphs}
reuse=${REUSE:-0}
scn="$srcdir/scenarios"
here="$srcdir/sim/graphs"

die() { echo "graphs: $*" >&2; exit 1; }
[ -x "$qdbsim" ] || die "no qdbsim at $qdbsim (build it first: make sim/qdbsim)"
command -v "$gnuplot" >/dev/null 2>&1 || die "gnuplot not found (install gnuplot-nox, then configure again)"
for f in graph-bootstrap graph-join graph-failure graph-lookups graph-crash-fraction graph-churn \
    graph-replicas-lost graph-rereplicate; do
    [ -f "$scn/$f.scn" ] || die "missing $scn/$f.scn"
done
mkdir -p "$out/raw" "$out/tmp"
raw="$out/raw"

# ---- the list of runs: "weight name scenario seed args..." -----------------
sizes=()
n=$nmin
while [ "$n" -le "$nmax" ]; do sizes+=("$n"); n=$((n * 2)); done
[ ${#sizes[@]} -gt 0 ] || die "no sizes between NMIN=$nmin and NMAX=$nmax"
fractions="0 0.05 0.1 0.15 0.2 0.25 0.3 0.35 0.4 0.45 0.5"
rates="0.02 0.05 0.1 0.2 0.5 1 2 5"

joblist="$out/tmp/jobs"
: > "$joblist"
# Seeds at world size N: above 16384 one run costs minutes (a 65,536-node
# bootstrap about ten), and the spread between seeds shrinks as N grows.
seeds_at() { if [ "$1" -gt 16384 ] && [ "$bigseeds" -lt "$seeds" ]; then echo "$bigseeds"; else echo "$seeds"; fi; }
# Weights: CPU seconds per run measured at N = 16384, times N / 16384 (the
# graph scenarios stop once settled, so a run's virtual length is its
# stabilization time; the cost per node grows a little with N, cache misses)
for n in "${sizes[@]}"; do
    for s in $(seq 1 "$(seeds_at "$n")"); do
        echo "$((n * 3)) bootstrap-$n-$s $scn/graph-bootstrap.scn $s --set nodes=$n" >> "$joblist"
        echo "$((n * 2)) join-$n-$s $scn/graph-join.scn $s --set nodes=$n" >> "$joblist"
        echo "$((n * 2)) failure-$n-$s $scn/graph-failure.scn $s --set nodes=$n" >> "$joblist"
        echo "$((n * 1)) lookups-$n-$s $scn/graph-lookups.scn $s --set nodes=$n" >> "$joblist"
    done
done
for f in $fractions; do
    sed "s/fraction=0\.1 /fraction=$f /" "$scn/graph-crash-fraction.scn" > "$out/tmp/crash-$f.scn"
    for s in $(seq 1 "$seeds"); do
        echo "400 crash-$f-$s $out/tmp/crash-$f.scn $s" >> "$joblist"
    done
done
for k in 1 2 3 4; do
    for f in $fractions; do
        sed -e "s/fraction=0\.1 /fraction=$f /" -e "s/^replication = 1$/replication = $k/" \
            "$scn/graph-replicas-lost.scn" > "$out/tmp/lost-$k-$f.scn"
        for s in $(seq 1 "$seeds"); do
            echo "300 lost-$k-$f-$s $out/tmp/lost-$k-$f.scn $s" >> "$joblist"
        done
    done
done
# time back to K copies after one crash: entries per node (keyspace / 16
# nodes), written at keys/4 puts a second for 12 s (3 puts a key)
per_node="100 300 1000 3000"
for k in 2 3; do
    for e in $per_node; do
        sed -e "s/^replication = 3$/replication = $k/" -e "s/keys=1600 /keys=$((e * 16)) /" \
            -e "s|puts=400/s|puts=$((e * 4))/s|" "$scn/graph-rereplicate.scn" > "$out/tmp/rerep-$k-$e.scn"
        for s in $(seq 1 "$seeds"); do
            echo "$((e / 5 + 10)) rerep-$k-$e-$s $out/tmp/rerep-$k-$e.scn $s" >> "$joblist"
        done
    done
done
for r in $rates; do
    sed "s|churn rate=0\.5/s|churn rate=$r/s|" "$scn/graph-churn.scn" > "$out/tmp/churn-$r.scn"
    for s in $(seq 1 "$seeds"); do
        echo "500 churn-$r-$s $out/tmp/churn-$r.scn $s" >> "$joblist"
    done
done
# (no line may end in a blank: xargs -L would join it to the next one)
# biggest first: the pool of workers stays busy to the end
sort -k1,1nr -o "$joblist" "$joblist"

# ---- run them ----------------------------------------------------------------
# One run: its JSON on the first line of raw/NAME.json, qdbsim's messages
# (FAILED lines included) in raw/NAME.err.  An expectation that fails is not
# an error here: the graph scenarios use one to print lookup_failures.
run_one() {
    local weight=$1 name=$2 file=$3 seed=$4
    shift 4
    if [ "$reuse" = 1 ] && grep -q '"trace_hash"' "$raw/$name.json" 2>/dev/null; then
        echo "$weight" >> "$out/tmp/done"
        return 0
    fi
    "$qdbsim" --json "$file" --seed "$seed" "$@" > "$raw/$name.json.part" 2> "$raw/$name.err"
    mv "$raw/$name.json.part" "$raw/$name.json"
    echo "$weight" >> "$out/tmp/done"
}
export -f run_one
export qdbsim raw out reuse

total=$(wc -l < "$joblist")
total_w=$(awk '{ s += $1 } END { print s }' "$joblist")
: > "$out/tmp/done"
start=$(date +%s)
tty=0
[ -t 1 ] && tty=1

progress() {
    local done done_w now el left
    done=$(wc -l < "$out/tmp/done")
    done_w=$(awk '{ s += $1 } END { print s + 0 }' "$out/tmp/done")
    now=$(date +%s)
    el=$((now - start))
    if [ "$done_w" -gt 0 ]; then
        left=$(awk -v e="$el" -v d="$done_w" -v t="$total_w" 'BEGIN { printf "%d", e * (t - d) / d }')
        left=$(printf '%d:%02d' $((left / 60)) $((left % 60)))
    else
        left="?"
    fi
    printf '\rgraphs: %d/%d runs, %d:%02d elapsed, about %s left   ' \
        "$done" "$total" $((el / 60)) $((el % 60)) "$left"
}

xargs -P "$jobs" -L 1 bash -c 'run_one "$@"' _ < "$joblist" &
xpid=$!
if [ "$tty" = 1 ]; then
    while kill -0 "$xpid" 2>/dev/null; do
        progress
        sleep 1
    done
fi
wait "$xpid"
rc=$?
[ "$tty" = 1 ] && { progress; echo; }
[ "$rc" -eq 0 ] || die "some runs failed (xargs status $rc): see $raw/*.err"

# ---- data files ---------------------------------------------------------------
field() { sed -n "s/.*\"$1\": \([-0-9.]*\).*/\1/p" "$2"; }
lookup_failures() { field lookup_failures "$raw/$1.json"; }

# mean, min, max over the seeds of one value; a negative value (never
# stable before the end) is counted apart and left out
stats() { # name-prefix field
    local pfx=$1 f=$2 s v vals="" bad=0
    for s in $(seq 1 "$seeds"); do
        [ -f "$raw/$pfx-$s.json" ] || continue # fewer seeds at the largest N
        v=$(field "$f" "$raw/$pfx-$s.json")
        [ -z "$v" ] && continue
        case $v in -*) bad=$((bad + 1)); continue ;; esac
        vals="$vals $v"
    done
    echo "$vals" | awk -v bad="$bad" '{
        if (NF == 0) { printf "NaN NaN NaN %d", bad; exit }
        mn = $1; mx = $1; s = 0
        for (i = 1; i <= NF; i++) { s += $i; if ($i < mn) mn = $i; if ($i > mx) mx = $i }
        printf "%.3f %.3f %.3f %d", s / NF, mn, mx, bad }'
}

dat="$out/stabilization.dat"
{
    echo "# stabilization time (virtual s) against N; $seeds seeds each ($bigseeds above 16384): mean min max unstable-runs"
    echo "# N  boot_ring(mean min max bad)  boot_full(...)  join_ring(...)  join_full(...)  fail_ring(...)  fail_full(...)"
    for n in "${sizes[@]}"; do
        echo "$n $(stats bootstrap-$n ring_stable_s) $(stats bootstrap-$n full_stable_s)" \
             "$(stats join-$n ring_stable_s) $(stats join-$n full_stable_s)" \
             "$(stats failure-$n ring_stable_s) $(stats failure-$n full_stable_s)"
    done
} > "$dat"

dat="$out/hops.dat"
{
    echo "# lookup path length against N ($seeds seeds, $bigseeds above 16384, x 2000 lookups): N hops_mean hops_p1 hops_p99 half_log2_N"
    for n in "${sizes[@]}"; do
        m=$(stats lookups-$n hops_mean); p1=$(stats lookups-$n hops_p1); p99=$(stats lookups-$n hops_p99)
        echo "$n ${m%% *} ${p1%% *} ${p99%% *} $(awk -v n="$n" 'BEGIN { printf "%.3f", log(n) / log(2) / 2 }')"
    done
} > "$dat"

# fraction of lookups (mean over seeds, with min and max) that failed, timed
# out, or were answered wrongly; then the dead contacts per lookup
lookup_stats() { # name-prefix
    local s vf="" vt="" vw="" vd=""
    for s in $(seq 1 "$seeds"); do
        [ -f "$raw/$1-$s.json" ] || continue
        local n f t w d
        n=$(field lookups "$raw/$1-$s.json"); t=$(field lookup_timeouts "$raw/$1-$s.json")
        w=$(field lookup_wrong "$raw/$1-$s.json"); d=$(field lookup_dead_contacts_mean "$raw/$1-$s.json")
        f=$(lookup_failures "$1-$s")
        [ -n "$n" ] && [ "$n" -gt 0 ] || continue
        vf="$vf $(awk -v a="$f" -v b="$n" 'BEGIN { print a / b }')"
        vt="$vt $(awk -v a="$t" -v b="$n" 'BEGIN { print a / b }')"
        vw="$vw $(awk -v a="${w:-0}" -v b="$n" 'BEGIN { print a / b }')"
        vd="$vd ${d:-0}"
    done
    for v in "$vf" "$vt" "$vw" "$vd"; do
        echo "$v" | awk '{ if (NF == 0) { printf "NaN NaN NaN "; exit }
            mn = $1; mx = $1; s = 0
            for (i = 1; i <= NF; i++) { s += $i; if ($i < mn) mn = $i; if ($i > mx) mx = $i }
            printf "%.4f %.4f %.4f ", s / NF, mn, mx }'
    done
}
{
    echo "# lookups right after a fraction F of 256 nodes crashed, maintenance frozen:"
    echo "# F failed(mean min max) timed_out(...) wrong(...) dead_contacts_per_lookup(...)"
    for f in $fractions; do echo "$f $(lookup_stats crash-$f)"; done
} > "$out/lookups-failures.dat"
{
    echo "# lookups under churn (256-node world): rate(events/s) failed(mean min max) timed_out(...) wrong(...) dead_contacts(...)"
    for r in $rates; do echo "$r $(lookup_stats churn-$r)"; done
} > "$out/lookups-churn.dat"

# entries lost (share of the 2,000 keys) when a fraction F of 256 nodes
# fail at once with their storage, for K = 1..4 copies
lost_share() { # name-prefix
    local s v vals=""
    for s in $(seq 1 "$seeds"); do
        v=$(field lost_last_copy "$raw/$1-$s.json")
        [ -n "$v" ] && vals="$vals $(awk -v a="$v" 'BEGIN { print a / 2000 }')"
    done
    echo "$vals" | awk '{ if (NF == 0) { printf "NaN NaN NaN "; exit }
        mn = $1; mx = $1; s = 0
        for (i = 1; i <= NF; i++) { s += $i; if ($i < mn) mn = $i; if ($i > mx) mx = $i }
        printf "%.5f %.5f %.5f ", s / NF, mn, mx }'
}
{
    echo "# entries lost (share of 2000 keys) when a fraction F of 256 nodes fail at once, storage lost"
    echo "# F  K=1(mean min max)  K=2(...)  K=3(...)  K=4(...)"
    for f in $fractions; do
        echo "$f $(lost_share lost-1-$f)$(lost_share lost-2-$f)$(lost_share lost-3-$f)$(lost_share lost-4-$f)"
    done
} > "$out/replicas-lost.dat"

{
    echo "# virtual s from one crash (storage lost) until every entry has K live copies again,"
    echo "# 16 nodes; $seeds seeds each: entries_per_node  K=2(mean min max never)  K=3(...)"
    for e in $per_node; do
        echo "$e $(stats rerep-2-$e rereplicated_s) $(stats rerep-3-$e rereplicated_s)"
    done
} > "$out/rereplicate.dat"

# ---- plots -----------------------------------------------------------------------
# pngcairo when gnuplot has it (gnuplot-nox does on Debian 12), else png
if "$gnuplot" -e 'set terminal' 2>&1 | grep -q pngcairo; then
    pngterm="pngcairo size 960,600 font 'sans,11'"
else
    pngterm="png size 960,600"
fi
for g in stabilization hops lookups replicas rereplicate; do
    for fmt in png svg; do
        if [ "$fmt" = png ]; then term=$pngterm; else term="svg size 960,600 dynamic font 'sans,11'"; fi
        "$gnuplot" -e "set terminal $term" -e "outdir='$out'" -e "ext='$fmt'" "$here/$g.gp" \
            || die "gnuplot failed on $here/$g.gp"
    done
done
rm -rf "$out/tmp"
echo "graphs: wrote $(cd "$out" && ls *.png *.svg *.dat | tr '\n' ' ')in $out/"

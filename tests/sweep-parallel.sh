#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Sweeps split every way give the same results (make check): seeds 1..16 of
# the tutorial with random faults (some pass, some fail: both are results;
# tests/sweep.sh sweeps crash-under-load), run
#   - in one worker process (-j 1) and in two (-j 2);
#   - as four shards through GNU parallel (doc/sweeps.md's recipe);
#   - as a 3-task Slurm array (doc/sweep.sbatch run with the variables Slurm
#     sets) and as a 5-pod Kubernetes Indexed Job (doc/sweep-job.yaml's
#     command run for each index, when python3-yaml can read it);
# each merged summary must equal the whole sweep's, byte for byte (its
# results_hash covers every result line).  Then --merge must refuse a seed
# given twice (alike or conflicting) and report the seeds of a missing
# shard, and a result's replay command must reproduce its trace hash.
# The tutorial is the scenario because it is quick (16 seeds in well under
# a second, and under the -O0 sanitizer build too).
set -u
srcdir=${srcdir:-.}
qdbsim=${QDBSIM:-sim/qdbsim}
case $qdbsim in /*) ;; *) qdbsim=$PWD/$qdbsim ;; esac
scn=$srcdir/scenarios/tutorial.scn
seeds=1..16
sets=(--set succlist=3)
args=(--seeds $seeds "${sets[@]}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
t0=$(date +%s)
# same_summary NAME FILE...: the merge of FILEs is the whole sweep's summary
same_summary() {
    local name=$1; shift
    "$qdbsim" --merge "$@" > "$tmp/$name.summary" 2>&1
    cmp -s "$tmp/j1.summary" "$tmp/$name.summary" ||
        { diff "$tmp/j1.summary" "$tmp/$name.summary"; fail "$name: the merged results differ from the whole sweep"; }
}

# the whole sweep in one process at a time: result lines (exit 0 or 1: a
# failing seed is a result like any other here; 2 is a bad command line)
"$qdbsim" "$scn" "${args[@]}" -j 1 --json > "$tmp/j1.jsonl"
[ $? -le 1 ] || fail "the sweep at -j 1 did not run"
[ "$(wc -l < "$tmp/j1.jsonl")" -eq 16 ] || fail "-j 1: want 16 result lines, got: $(cat "$tmp/j1.jsonl")"
for s in $(seq 16); do
    sed -n "${s}p" "$tmp/j1.jsonl" | grep -Eq "\"seed\": $s, \"verdict\": \"(pass|fail|error)\"" ||
        fail "-j 1: line $s is not seed $s with a verdict: $(sed -n "${s}p" "$tmp/j1.jsonl")"
done
"$qdbsim" --merge "$tmp/j1.jsonl" > "$tmp/j1.summary"
grep -q '^seeds           1\.\.16: 16 results, none missing$' "$tmp/j1.summary" ||
    fail "the summary does not count 16 seeds: $(cat "$tmp/j1.summary")"

# two at once, printing the summary itself: the same as the merge of -j 1
"$qdbsim" "$scn" "${args[@]}" -j 2 > "$tmp/j2.summary" 2> "$tmp/j2.err"
[ $? -le 1 ] || fail "the sweep at -j 2: $(cat "$tmp/j2.err")"
cmp -s "$tmp/j1.summary" "$tmp/j2.summary" ||
    { diff "$tmp/j1.summary" "$tmp/j2.summary"; fail "-j 2 differs from -j 1"; }
[ "$(grep -c "seed" "$tmp/j2.err")" -eq 16 ] || fail "-j 2 did not show 16 verdicts: $(cat "$tmp/j2.err")"

# four shards through GNU parallel, two at a time
if command -v parallel > /dev/null && parallel --version 2> /dev/null | grep -q 'GNU parallel'; then
    # (parallel's status counts the shards that had a failing seed)
    parallel --will-cite --tmpdir "$tmp" -j 2 -q "$qdbsim" "$scn" "${args[@]}" --shard {}/4 -j 1 \
        --json ::: 1 2 3 4 > "$tmp/all-shards.jsonl"
    parallel_ran=yes
else
    echo "GNU parallel is not installed (Debian package parallel): shards run one by one"
    for k in 1 2 3 4; do
        "$qdbsim" "$scn" "${args[@]}" --shard $k/4 -j 1 --json
    done > "$tmp/all-shards.jsonl"
    parallel_ran=no
fi
for k in 1 2 3 4; do
    grep -E "\"seed\": ($k|$((k + 4))|$((k + 8))|$((k + 12)))," "$tmp/all-shards.jsonl" > "$tmp/shard$k.jsonl"
done
[ "$(cat "$tmp"/shard?.jsonl | wc -l)" -eq 16 ] && [ "$(wc -l < "$tmp/all-shards.jsonl")" -eq 16 ] ||
    fail "shard K/4 of 1..16 should run seeds K, K+4, K+8, K+12: $(cut -c1-120 "$tmp/all-shards.jsonl")"
same_summary parallel "$tmp/all-shards.jsonl"
same_summary shards "$tmp/shard3.jsonl" "$tmp/shard1.jsonl" "$tmp/shard4.jsonl" "$tmp/shard2.jsonl"

# wait_all WHAT PID...: every PID exited 0 or 1 (a failing seed)
wait_all() {
    local what=$1 pid; shift
    for pid in "$@"; do
        wait "$pid" || [ $? -eq 1 ] || fail "$what"
    done
}

# the Slurm recipe: an array numbered 0..2 (the shard is the place in it),
# its tasks at once as Slurm would run them
pids=()
for id in 0 1 2; do
    SLURM_ARRAY_TASK_ID=$id SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_COUNT=3 SLURM_CPUS_PER_TASK=1 \
        QDBSIM=$qdbsim SCENARIO=$scn SEEDS=$seeds SWEEP_ARGS="${sets[*]}" RESULTS=$tmp/slurm \
        bash "$srcdir/doc/sweep.sbatch" &
    pids+=($!)
done
wait_all "a task of doc/sweep.sbatch failed" "${pids[@]}"
same_summary slurm "$tmp"/slurm/shard-*.jsonl

# the Kubernetes recipe: the Job's command, once per completion index
k8s=no
if python3 -c 'import yaml' 2> /dev/null; then
    python3 - "$srcdir/doc/sweep-job.yaml" > "$tmp/job.sh" << 'EOF' || fail "doc/sweep-job.yaml: $(cat "$tmp/job.sh")"
import sys, yaml
job = yaml.safe_load(open(sys.argv[1]))
spec = job["spec"]
c = spec["template"]["spec"]["containers"][0]
env = {e["name"]: e["value"] for e in c["env"]}
assert job["kind"] == "Job" and spec["completionMode"] == "Indexed", "not an Indexed Job"
assert spec["completions"] == int(env["SHARDS"]), "completions is not SHARDS"
assert c["command"] == ["/bin/sh", "-c"] and len(c["args"]) == 1, "not a shell command"
print(c["args"][0])
EOF
    mkdir "$tmp/bin" "$tmp/k8s" && ln -s "$qdbsim" "$tmp/bin/qdbsim"
    pids=()
    for i in 0 1 2 3 4; do
        PATH=$tmp/bin:$PATH JOB_COMPLETION_INDEX=$i SHARDS=5 SCENARIO=$scn SEEDS=$seeds \
            SWEEP_ARGS="${sets[*]}" /bin/sh "$tmp/job.sh" > "$tmp/k8s/pod$i.log" &
        pids+=($!)
    done
    wait_all "a pod of doc/sweep-job.yaml failed" "${pids[@]}"
    same_summary k8s "$tmp"/k8s/pod*.log
    k8s=yes
fi

# --merge refuses a seed twice, alike or not, and reports missing seeds
out=$("$qdbsim" --merge "$tmp/j1.jsonl" "$tmp/shard2.jsonl" 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "seed 2 has two equal results: .*j1.jsonl:2 and .*shard2.jsonl:1" ||
    fail "--merge accepted seed 2 twice: $out"
sed '1s/"trace_hash": "[0-9a-f]/"trace_hash": "g/' "$tmp/shard1.jsonl" > "$tmp/conflict.jsonl"
out=$("$qdbsim" --merge "$tmp/j1.jsonl" "$tmp/conflict.jsonl" 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "seed 1 has two conflicting results" ||
    fail "--merge accepted two different results for seed 1: $out"
out=$("$qdbsim" --merge "$tmp/shard1.jsonl" "$tmp/shard2.jsonl" "$tmp/shard4.jsonl" 2>&1)
rc=$? want=4
cat "$tmp/shard1.jsonl" "$tmp/shard2.jsonl" "$tmp/shard4.jsonl" | grep -qv '"verdict": "pass"' && want=1
[ $rc -eq $want ] || fail "--merge with shard 3 missing exited $rc, want $want"
echo "$out" | grep -q '^seeds           1\.\.16: 12 results, 4 missing: 3, 7, 11, 15$' ||
    fail "--merge did not report seeds 3, 7, 11 and 15 missing: $out"
# only passing seeds, one of them left out: missing and nothing failed is 4
grep '"verdict": "pass"' "$tmp/j1.jsonl" | sed 1d > "$tmp/passes.jsonl"
if [ -s "$tmp/passes.jsonl" ]; then
    out=$("$qdbsim" --merge "$tmp/passes.jsonl" 2>&1)
    rc=$? n=$(wc -l < "$tmp/passes.jsonl")
    [ $rc -eq 4 ] && echo "$out" | grep -q "^seeds           1\.\.16: $n results, $((16 - n)) missing: " ||
        fail "--merge of passing seeds with others missing exited $rc: $out"
fi
out=$("$qdbsim" --merge "$tmp/j1.jsonl" "$tmp/j1.summary" 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "j1.summary:1: not a result line" ||
    fail "--merge read a summary as results: $out"
"$qdbsim" "$scn" --seeds $seeds --set succlist=2 -j 1 --shard 1/16 --json > "$tmp/other.jsonl"
out=$("$qdbsim" --merge "$tmp/j1.jsonl" "$tmp/other.jsonl" 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "other.jsonl:1 is from another sweep" ||
    fail "--merge mixed two sweeps: $out"

# a result's replay command gives its trace hash
line=$(grep -m1 '"trace_hash"' "$tmp/j1.jsonl")
seed=$(echo "$line" | sed 's/.*"seed": \([0-9]*\),.*/\1/')
replay=$(echo "$line" | sed 's/.*"replay": "qdbsim [^ ]*\(.*\)"}$/\1/')
want=$(echo "$line" | sed 's/.*"trace_hash": "\([0-9a-f]*\)".*/\1/')
got=$(eval "\"\$qdbsim\" \"\$scn\" $replay --json" 2> /dev/null | sed 's/.*"trace_hash": "\([0-9a-f]*\)".*/\1/')
[ "$got" = "$want" ] || fail "seed $seed's replay ($replay) gave trace hash $got, its result $want"

echo "sweeps agree: -j 1, -j 2, 4 shards (GNU parallel: $parallel_ran), Slurm array, Indexed Job" \
    "($k8s); merge refusals; replay; $(grep -c '"verdict": "pass"' "$tmp/j1.jsonl")/16 seeds passed;" \
    "$(($(date +%s) - t0)) s"
[ $parallel_ran = yes ] || exit 77

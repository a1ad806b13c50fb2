/* SPDX-License-Identifier: BSD-2-Clause */
/* Seed sweeps: many seeds of one scenario, each with random faults drawn
 * from its seed, run in worker processes, one JSON line of result per seed,
 * and the merge of result files from any number of machines into a summary.
 *
 * What a seed gets.  Seed s runs the scenario with --set seed=s, then the
 * sweep's own --set options, then random_faults=true and loss, dup and
 * reorder drawn from a GRand seeded with (guint32)(s * 2654435761): the same
 * seed gives the same run wherever and however it is run.
 *
 * Which seeds.  --seeds A..B (or --sweep K, the same as --seeds 1..K) names
 * the range; --shard K/N (1 <= K <= N) keeps the seeds s of the range with
 * (s - A) mod N == K - 1: shard 1/4 of 1..10 is 1, 5, 9, shard 2/4 is 2, 6,
 * 10, and the N shards together are the range, each seed once.
 *
 * Determinism.  Every seed runs single-threaded in a process of its own
 * (fork, no exec), so a seed that crashes is a result ("crash"), not the end
 * of the sweep.  -j N bounds the processes at once; it changes only the
 * wall time.  Results are printed in seed order whatever order the workers
 * finish in, and a result line holds nothing that depends on the machine,
 * the wall clock, -j or the shard: the lines of a sharded sweep, merged,
 * equal the lines of the whole sweep run at once, byte for byte, and so do
 * the summaries.
 *
 * A result line (one JSON object, keys in this order):
 *   scenario  the scenario as typed on the command line
 *   sets      the sweep's --set options, in order
 *   seeds     "A..B", the range the sweep was asked for (not the shard)
 *   seed, verdict ("pass", "fail": an expectation or invariant failed,
 *   "error": the run could not go on, "crash": the process died),
 *   trace_hash and metrics (absent for a crash; a metric that was not
 *   reached, such as ring_stable_s, is null), failures (the messages),
 *   replay    the qdbsim command that replays this seed alone.
 *
 * The summary (printed by a sweep without --json, and by --merge): the
 * sweep, the seeds with any that are missing, passed and failed counts, the
 * first failures with their replay commands, each metric's mean, minimum and
 * maximum, and results_hash: the first 16 hex digits of the SHA-256 of the
 * result lines in seed order.
 */
#ifndef QDB_SIM_SWEEP_H
#define QDB_SIM_SWEEP_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit statuses of a sweep and of a merge: every seed passed; one failed;
 * a bad command line or result file; a merge found seeds missing (and no
 * failure among the others). */
enum { SIM_SWEEP_PASSED = 0, SIM_SWEEP_FAILED = 1, SIM_SWEEP_BAD = 2, SIM_SWEEP_MISSING = 4 };

/* The command that replays one run: "qdbsim SCENARIO [--seed N] [--set
 * 'k=v' ...]" with each --set quoted for a POSIX shell.  g_free it. */
char *sim_replay_command(const char *scenario, const char *seed, char *const *sets);

typedef struct sim_sweep_args {
    const char *scenario;  /* as typed: it goes into results and replay commands */
    const char *path;      /* the file to read (the scenario found) */
    char **sets;           /* --set options, NULL-terminated, or NULL */
    int sweep_k;           /* --sweep K, or 0 */
    const char *seeds;     /* --seeds A..B (or a single seed), or NULL */
    const char *shard;     /* --shard K/N, or NULL */
    int jobs;              /* -j N; 0: one per processor */
    bool json;             /* print the result lines instead of the summary */
} sim_sweep_args;

/* Runs the sweep; an exit status above.  Prints results on standard output
 * and, without json, each seed's verdict on standard error as it comes. */
int sim_sweep_run(const sim_sweep_args *a);

/* qdbsim --merge FILE...: reads result lines ("-" is standard input) and
 * prints their summary; an exit status above.  Refuses (SIM_SWEEP_BAD, with
 * the file and line of each side) a line that is not a result, results of
 * another scenario or other --set options, and two lines for one seed, alike
 * or not.  The expected seeds are the union of the lines' ranges. */
int sim_sweep_merge(char *const *files, int n);

#endif

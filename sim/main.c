/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbsim: run a scenario in the deterministic simulator and print what the
 * oracle measured.
 *
 *   qdbsim SCENARIO [--seed N] [--set key=value ...] [--json]
 *          [--hash-log FILE | --check-hash-log FILE] [--quiet]
 *
 *   qdbsim SCENARIO --sweep K | --seeds A..B [--shard K/N] [-j N] [--set ...] [--json]
 *          runs seeds 1..K (or A..B, or shard K of N of them), each with
 *          random faults drawn from its seed (random_faults=true, and
 *          loss/dup/reorder drawn too), in N processes, and prints one JSON
 *          line per seed or a summary with the exact command that replays
 *          every failing seed;
 *   qdbsim --merge FILE...
 *          prints the summary of the JSON lines of sweeps (sim/sweep.h).
 *
 * Exit status: 0 when every expectation held, 1 when one failed, 2 on a bad
 * scenario or command line, 3 when --check-hash-log found a divergence.
 * Wall-clock time is read here only to report wall_s and progress; it never
 * reaches the simulation.
 */
#define G_LOG_DOMAIN "qdbsim"

#include "config.h"

#include <glib.h>
#include <limits.h>
#include <locale.h>
#if defined(__GLIBC__) && defined(__linux__)
#include <malloc.h>
#include <sys/mman.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sweep.h"
#include "world.h"

/* Resident memory in bytes, for the bytes-per-node report only: it never
 * reaches the simulation or the trace. */
static size_t resident_bytes(void)
{
    size_t pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%zu %zu", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void report(sim_world *w, bool json, size_t rss0)
{
    const sim_client_stats *m = sim_model_stats(w->model);
    char hash[17];
    qdb_simnet_trace_hex(w->net, hash);
    double ring_s, full_s, rerep_s;
    sim_oracle_metric(&w->oracle, "ring_stable_s", &ring_s);
    sim_oracle_metric(&w->oracle, "full_stable_s", &full_s);
    sim_oracle_metric(&w->oracle, "rereplicated_s", &rerep_s);
    size_t rss = resident_bytes();
    double per_node = rss > rss0 ? (double)(rss - rss0) / w->p.nodes : 0;
    double vs = (double)qdb_simnet_now(w->net) / 1e6;
    double eps = w->wall_s > 0 ? (double)w->events / w->wall_s : 0;
    double pending = w->pending_samples ? (double)w->pending_sum / w->pending_samples : 0;
    uint64_t lost = sim_oracle_lost_entries(&w->oracle, NULL);
    double dead_mean;
    sim_oracle_metric(&w->oracle, "lookup_dead_contacts_mean", &dead_mean);
    /* hops_hist: element h counts the lookups that took h hops */
    GArray *counts = g_array_new(FALSE, TRUE, sizeof(uint64_t));
    for (guint i = 0; i < m->hops->len; i++) {
        guint h = g_array_index(m->hops, guint, i);
        if (h >= counts->len)
            g_array_set_size(counts, h + 1);
        g_array_index(counts, uint64_t, h)++;
    }
    GString *hist = g_string_new(NULL);
    for (guint h = 0; h < counts->len; h++)
        g_string_append_printf(hist, "%s%" G_GUINT64_FORMAT, h ? ", " : "",
                               g_array_index(counts, uint64_t, h));
    g_array_free(counts, TRUE);
    if (json) {
        printf("{\"scenario\": \"%s\", \"seed\": %" G_GUINT64_FORMAT ", \"nodes\": %u, "
               "\"virtual_s\": %.3f, \"events\": %" G_GUINT64_FORMAT ", \"wall_s\": %.3f, "
               "\"events_per_s\": %.0f, \"bytes_per_node\": %.0f, \"ring_stable_s\": %.3f, "
               "\"full_stable_s\": %.3f, \"hops_mean\": %.3f, \"hops_p1\": %.0f, "
               "\"hops_p99\": %.0f, \"lookups\": %" G_GUINT64_FORMAT ", "
               "\"lookup_failures\": %" G_GUINT64_FORMAT ", "
               "\"lookup_timeouts\": %" G_GUINT64_FORMAT ", "
               "\"lookup_wrong\": %" G_GUINT64_FORMAT ", \"lookup_dead_contacts_mean\": %.3f, "
               "\"hops_hist\": [%s], "
               "\"wrong_node_retries\": %" G_GUINT64_FORMAT ", \"requests\": %" G_GUINT64_FORMAT
               ", \"failed_requests\": %" G_GUINT64_FORMAT ", \"lost_entries\": %" G_GUINT64_FORMAT
               ", \"lost_last_copy\": %" G_GUINT64_FORMAT ", \"rereplicated_s\": %.3f"
               ", \"expectations_failed\": %u, \"pending_mean\": %.0f, \"trace_hash\": \"%s\"}\n",
               w->p.name, w->p.seed, w->p.nodes, vs, w->events, w->wall_s, eps, per_node, ring_s,
               full_s, sim_oracle_hops_mean(&w->oracle), sim_oracle_hops_percentile(&w->oracle, 1),
               sim_oracle_hops_percentile(&w->oracle, 99), m->lookups, m->lookup_failures, m->lookup_timeouts,
               m->lookup_wrong, dead_mean, hist->str, m->wrong_node_retries, m->requests, m->failed_requests, lost,
               m->lost_last_copy, rerep_s, w->failures->len, pending, hash);
        g_string_free(hist, TRUE);
        return;
    }
    printf("scenario            %s (seed %" G_GUINT64_FORMAT ")\n", w->p.name, w->p.seed);
    printf("nodes               %u\n", w->p.nodes);
    printf("virtual_s           %.3f\n", vs);
    printf("events              %" G_GUINT64_FORMAT "\n", w->events);
    printf("wall_s              %.3f\n", w->wall_s);
    printf("events_per_s        %.0f\n", eps);
    printf("bytes_per_node      %.0f\n", per_node);
    printf("ring_stable_s       %.3f%s\n", ring_s, ring_s < 0 ? " (not stable)" : "");
    printf("full_stable_s       %.3f%s\n", full_s, full_s < 0 ? " (not stable)" : "");
    printf("hops_mean           %.3f   (1/2 log2 N = %.3f)\n", sim_oracle_hops_mean(&w->oracle),
           0.5 * log2((double)w->p.nodes));
    printf("hops_p1 / p99       %.0f / %.0f   over %" G_GUINT64_FORMAT " lookups\n",
           sim_oracle_hops_percentile(&w->oracle, 1), sim_oracle_hops_percentile(&w->oracle, 99), m->lookups);
    printf("lookup_timeouts     %" G_GUINT64_FORMAT "\n", m->lookup_timeouts);
    printf("lookup_failures     %" G_GUINT64_FORMAT " (wrong answers %" G_GUINT64_FORMAT ")\n",
           m->lookup_failures, m->lookup_wrong);
    printf("dead contacts       %.3f per lookup\n", dead_mean);
    printf("hops_hist           [%s]\n", hist->str);
    g_string_free(hist, TRUE);
    printf("wrong_node_retries  %" G_GUINT64_FORMAT "\n", m->wrong_node_retries);
    printf("unstable_answers    %" G_GUINT64_FORMAT "\n", m->unstable_answers);
    if (w->p.replication > 1)
        printf("two_owners          %" G_GUINT64_FORMAT " checks\n", w->oracle.two_owners);
    printf("requests            %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " writes acknowledged)\n",
           m->requests, m->acked_writes);
    printf("failed_requests     %" G_GUINT64_FORMAT " (unstable %" G_GUINT64_FORMAT
           ", timeout %" G_GUINT64_FORMAT ")\n",
           m->failed_requests, m->unstable_requests, m->timeout_requests);
    printf("lost_entries        %" G_GUINT64_FORMAT "\n", lost);
    printf("rereplicated_s      %.3f%s\n", rerep_s, rerep_s < 0 ? " (no crash, or not back to K copies)" : "");
    printf("expectations        %u, failed %u\n", w->expectations, w->failures->len);
    printf("trace_hash          %s\n", hash);
}

/* One updating line on a terminal: virtual time done/total, elapsed, and an
 * estimate of the time left at the current pace.  The pace is not steady: a
 * virtual second of joins costs far more than one of a quiet ring, so the
 * average since the start (the first estimator) was 3x off once the joins
 * ended (bench10k: 21 s left announced, 7 s true).  The pace here is a moving
 * average with a memory of about 5 s of wall time: right within seconds of
 * a change of phase, though it cannot foresee one. */
#define PROGRESS_MEMORY_S 5.0
typedef struct progress {
    gint64 t0, last_t; /* wall clock, µs */
    double last_v;     /* virtual seconds at last_t */
    double pace;       /* virtual seconds per wall second; 0: not measured yet */
    bool shown;
} progress;

static void show_progress(sim_world *w, void *arg)
{
    progress *p = arg;
    gint64 now = g_get_monotonic_time(); /* report only */
    double v = (double)qdb_simnet_now(w->net) / 1e6, end = (double)w->p.end / 1e6;
    double dt = (double)(now - p->last_t) / 1e6, el = (double)(now - p->t0) / 1e6;
    if (dt < 0.25)
        return;
    double inst = (v - p->last_v) / dt;
    p->pace = p->pace > 0 ? p->pace + (1 - exp(-dt / PROGRESS_MEMORY_S)) * (inst - p->pace) : inst;
    p->last_t = now;
    p->last_v = v;
    if (el < 1)
        return;
    fprintf(stderr, "\r%s: %.0f/%.0f virtual s (%3.0f%%), %.0f s elapsed, ~%.0f s left   ",
            w->p.name, v, end, 100 * v / end, el, p->pace > 0 ? (end - v) / p->pace : 0);
    p->shown = true;
}

/* The scenario file named on the command line: the path as given, else the
 * same relative path under the installed data directory, or its scenarios/
 * folder, so that qdbsim(1)'s examples ("qdbsim scenarios/tutorial.scn")
 * work from any directory after make install.  This only chooses which
 * file is read. */
static char *scenario_path(const char *arg)
{
    if (!g_path_is_absolute(arg) && !g_file_test(arg, G_FILE_TEST_EXISTS)) {
        char *under[] = {g_build_filename(QDB_PKGDATADIR, arg, NULL),
                         g_build_filename(QDB_PKGDATADIR, "scenarios", arg, NULL)};
        int found = g_file_test(under[0], G_FILE_TEST_IS_REGULAR)   ? 0
                    : g_file_test(under[1], G_FILE_TEST_IS_REGULAR) ? 1
                                                                    : -1;
        if (found >= 0) {
            g_free(under[1 - found]);
            return under[found];
        }
        g_free(under[0]);
        g_free(under[1]);
    }
    return g_strdup(arg); /* errors name what was typed */
}

/* The scenario at path with --seed and --set applied, and its world (*scp
 * gets the scenario, which must outlive the world).  NULL after printing
 * why, with nothing left behind. */
static sim_world *open_world(const char *path, const char *seed, char **sets,
                             qdb_scenario **scp)
{
    qdb_scn_err err = {0};
    const char *what = ""; /* --seed is named: its "--set:1:6" would puzzle */
    qdb_scenario *sc = qdb_scenario_parse_file(path, &err);
    bool ok = sc != NULL;
    if (ok && seed) {
        char *s = g_strdup_printf("seed=%s", seed);
        ok = qdb_scenario_set(sc, s, &err);
        what = ok ? "" : "--seed: ";
        g_free(s);
    }
    for (gchar **s = sets; ok && s && *s; s++)
        ok = qdb_scenario_set(sc, *s, &err);
    sim_world *w = ok ? sim_world_new(sc, &err) : NULL;
    if (!w) {
        fprintf(stderr, "qdbsim: %s%s\n", what, err.msg);
        qdb_scenario_free(sc);
        return NULL;
    }
    *scp = sc;
    return w;
}

/* Node log lines (scenario parameter log, qdbd's levels) stamped with the
 * virtual time instead of GLib's wall clock, so that a replay's log is the
 * same bytes every time and lines line up with the scenario's "at" times.
 * Debug lines are dropped unless G_MESSAGES_DEBUG names them, as GLib's
 * default writer does (report only: the log never feeds the run). */
static const qdb_simnet *log_net; /* the world's net while it runs, else NULL */

static GLogWriterOutput sim_log_writer(GLogLevelFlags lv, const GLogField *fields, gsize n,
                                       gpointer arg)
{
    (void)arg;
    const char *domain = NULL, *msg = NULL;
    for (gsize i = 0; i < n; i++) {
        if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
            domain = fields[i].value;
        else if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
            msg = fields[i].value;
    }
    if (g_log_writer_default_would_drop(lv, domain))
        return G_LOG_WRITER_HANDLED;
    const char *level = (lv & G_LOG_LEVEL_ERROR)      ? "ERROR"
                        : (lv & G_LOG_LEVEL_CRITICAL) ? "CRITICAL"
                        : (lv & G_LOG_LEVEL_WARNING)  ? "WARNING"
                        : (lv & G_LOG_LEVEL_MESSAGE)  ? "MESSAGE"
                        : (lv & G_LOG_LEVEL_INFO)     ? "INFO"
                                                      : "DEBUG";
    if (log_net)
        fprintf(stderr, "[%11.6f] ", (double)qdb_simnet_now(log_net) / 1e6);
    fprintf(stderr, "%s-%s: %s\n", domain ? domain : "qdbsim", level, msg ? msg : "");
    return G_LOG_WRITER_HANDLED;
}

/* Transparent huge pages for the heap, where the system gives them only on
 * request (THP "madvise", Debian's default).  At 10,000 nodes every event
 * touches a node, an endpoint and a record scattered over ~150 MB: with
 * 4-KiB pages nearly each of those misses also missed the TLB (perf: a
 * quarter of qdbsim's time; warm10k took 23% less user CPU with 2-MiB
 * pages).  The heap is made to reserve HEAP_RESERVE of untouched address
 * space at its first growth (M_TOP_PAD; large blocks stay in it too) and
 * that range is marked for huge pages before anything is written there.
 * Addresses never reach the simulation, so neither does this; a world
 * larger than the reserve just gets 4-KiB pages beyond it.  glibc only
 * (other allocators, ASan's and valgrind's, leave the program break where
 * it was, and this does nothing). */
#define HEAP_RESERVE ((size_t)1 << 30)
#define HUGE_PAGE ((uintptr_t)2 << 20)

static void heap_huge_pages(void)
{
#if defined(__GLIBC__) && defined(__linux__) && defined(MADV_HUGEPAGE)
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, (int)HEAP_RESERVE);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    char *lo = sbrk(0);
    void *volatile grow = malloc(8 << 20); /* more than the heap's top holds */
    free(grow);
    char *hi = sbrk(0);
    uintptr_t from = ((uintptr_t)lo + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    if (lo != (char *)-1 && (uintptr_t)hi > from)
        madvise((void *)from, (uintptr_t)hi - from, MADV_HUGEPAGE);
#endif
}

int main(int argc, char **argv)
{
    heap_huge_pages();
    /* As in qdbd's main: the charset, not the numbers.  Nothing the locale
     * sets reaches the simulation: the scenario parser reads numbers with
     * g_ascii_strtod and classifies characters with g_ascii_*. */
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    gchar **sets = NULL, *seed = NULL, *hash_log = NULL, *check_log = NULL;
    gboolean json = FALSE, quiet = FALSE, version = FALSE;
    gint sweep_k = 0, jobs = 0;
    gchar *seeds = NULL, *shard = NULL;
    gboolean merge = FALSE;
    gchar *series = NULL;
    GOptionEntry entries[] = {
        {"seed", 0, 0, G_OPTION_ARG_STRING, &seed, "Override the scenario's seed", "N"},
        {"set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, "Override a scenario parameter", "KEY=VALUE"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the results as one JSON object", NULL},
        {"hash-log", 0, 0, G_OPTION_ARG_FILENAME, &hash_log, "Write a hash per event to FILE", "FILE"},
        {"check-hash-log", 0, 0, G_OPTION_ARG_FILENAME, &check_log,
         "Check each event against FILE; stop at the first divergence", "FILE"},
        {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Print only the results", NULL},
        {"series", 0, 0, G_OPTION_ARG_FILENAME, &series,
         "Write the ring's convergence over time to FILE (virtual_s, live, successors right, "
         "predecessors right, ring right, fingers right)", "FILE"},
        {"sweep", 0, 0, G_OPTION_ARG_INT, &sweep_k,
         "Run seeds 1..K with random faults; print the replay command of each failure", "K"},
        {"seeds", 0, 0, G_OPTION_ARG_STRING, &seeds, "Sweep seeds A to B (as --sweep does 1..K)",
         "A..B"},
        {"shard", 0, 0, G_OPTION_ARG_STRING, &shard,
         "Run only shard K of N of the sweep's seeds: those with (seed - A) mod N = K - 1", "K/N"},
        {"jobs", 'j', 0, G_OPTION_ARG_INT, &jobs,
         "Run the sweep's seeds in N processes at once (default: one per processor)", "N"},
        {"merge", 0, 0, G_OPTION_ARG_NONE, &merge,
         "Merge the result lines of sweeps (--json) in FILE... into one summary", NULL},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
        {NULL}};
    GError *gerr = NULL; /* GLib's boundary: turned into err at once */
    qdb_scn_err err = {0};
    GOptionContext *ctx = g_option_context_new("SCENARIO - run a qdb hive in the simulator");
    g_option_context_add_main_entries(ctx, entries, NULL);
    bool parsed = g_option_context_parse(ctx, &argc, &argv, &gerr);
    g_option_context_free(ctx);
    if (!parsed) {
        g_strlcpy(err.msg, gerr->message, sizeof err.msg);
        g_error_free(gerr);
    } else if (merge ? argc < 2 : argc != 2) {
        g_strlcpy(err.msg, merge ? "--merge: give the files of result lines"
                                 : "give exactly one scenario file", sizeof err.msg);
    }
    guint64 seed_value;
    if (parsed && (version || (seed && !g_ascii_string_to_unsigned(seed, 10, 0, G_MAXUINT64,
                                                                  &seed_value, NULL)))) {
        if (version)
            printf("qdbsim %s\n", PACKAGE_VERSION);
        else /* checked here: the scenario parser would blame "--set:1:6" */
            fprintf(stderr, "qdbsim: --seed '%s': want a whole number from 0 to %" G_GUINT64_FORMAT
                    "\n", seed, G_MAXUINT64);
        g_strfreev(sets);
        g_free(seed);
        g_free(hash_log);
        g_free(check_log);
        g_free(series);
        g_free(seeds);
        g_free(shard);
        return version ? 0 : 2;
    }
    if (!parsed || err.msg[0]) {
        fprintf(stderr, "qdbsim: %s\n", err.msg);
        fprintf(stderr, "usage: qdbsim SCENARIO [--seed N] [--set key=value ...] [--json]\n"
                        "       qdbsim SCENARIO --sweep K | --seeds A..B [--shard K/N] [-j N] "
                        "[--set key=value ...] [--json]\n"
                        "       qdbsim --merge FILE...\n");
        return 2;
    }
    if (merge) {
        g_strfreev(sets);
        g_free(seed);
        return sim_sweep_merge(argv + 1, argc - 1);
    }
    char *scn_path = scenario_path(argv[1]);
    if (sweep_k > 0 || seeds || shard || jobs) {
        sim_sweep_args sa = {.scenario = argv[1], .path = scn_path, .sets = sets,
                             .sweep_k = sweep_k, .seeds = seeds, .shard = shard, .jobs = jobs,
                             .json = json};
        int rc = sim_sweep_run(&sa);
        g_strfreev(sets);
        g_free(scn_path);
        g_free(seeds);
        g_free(shard);
        return rc;
    }
    qdb_scenario *sc = NULL;
    size_t rss0 = resident_bytes();
    sim_world *w = open_world(scn_path, seed, sets, &sc);
    g_free(scn_path);
    int rc = 2;
    FILE *logf = NULL;
    if (!w)
        goto out_opts;
    w->quiet = quiet || json;
    w->replay = sim_replay_command(argv[1], seed, sets);
    log_net = w->net;
    g_log_set_writer_func(sim_log_writer, NULL, NULL);
    if (series) {
        w->oracle.series = fopen(series, "w");
        if (!w->oracle.series) {
            fprintf(stderr, "qdbsim: cannot write %s\n", series);
            goto out_world;
        }
        fprintf(w->oracle.series, "# virtual_s live successors_right predecessors_right ring_right fingers_right\n");
    }
    progress prog = {.t0 = g_get_monotonic_time()}; /* report only */
    prog.last_t = prog.t0;
    if (isatty(STDERR_FILENO) && !json) {
        w->progress = show_progress;
        w->progress_arg = &prog;
    }
    if (hash_log || check_log) {
        logf = fopen(hash_log ? hash_log : check_log, hash_log ? "w" : "r");
        if (!logf) {
            fprintf(stderr, "qdbsim: cannot open %s\n", hash_log ? hash_log : check_log);
            goto out_world;
        }
        if (hash_log)
            qdb_simnet_hash_log_write(w->net, logf);
        else
            qdb_simnet_hash_log_check(w->net, logf);
    }
    gint64 t0 = g_get_monotonic_time(); /* wall time, only to report wall_s */
    bool ok = sim_world_run(w, &err);
    w->wall_s = (double)(g_get_monotonic_time() - t0) / 1e6; /* report only */
    if (prog.shown)
        fprintf(stderr, "\r%*s\r", 100, "");
    qdb_simnet_stats st;
    qdb_simnet_get_stats(w->net, &st);
    w->events = st.events;
    rc = 0;
    if (!ok) {
        fprintf(stderr, "qdbsim: %s\n", err.msg);
        rc = 2;
    } else {
        char *div = qdb_simnet_diverged(w->net);
        if (div) {
            fprintf(stderr, "qdbsim: divergence from %s:\n%s\n", check_log, div);
            g_free(div);
            rc = 3;
        }
        report(w, json, rss0);
        for (guint i = 0; i < w->failures->len; i++)
            fprintf(stderr, "FAILED: %s\n", (char *)w->failures->pdata[i]);
        if (rc == 0 && w->failures->len)
            rc = 1;
    }
out_world:
    log_net = NULL;
    if (logf)
        fclose(logf);
    if (w->oracle.series)
        fclose(w->oracle.series);
    sim_world_free(w);
    qdb_scenario_free(sc);
out_opts:
    g_free(series);
    g_free(seeds);
    g_free(shard);
    g_strfreev(sets);
    g_free(seed);
    g_free(hash_log);
    g_free(check_log);
    return rc;
}

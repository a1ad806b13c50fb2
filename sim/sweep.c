/* SPDX-License-Identifier: BSD-2-Clause */
/* Seed sweeps and their merge (the contract is in sweep.h).
 *
 *   - the seeds: --sweep K, --seeds A..B, --shard K/N
 *   - one seed: its drawn faults, its run, its result line
 *   - the workers: one forked process per seed, at most -j at once
 *   - reading result lines: a small JSON reader for the lines we write
 *   - the summary, shared by the sweep and --merge
 *
 * The processor count, process ids and which worker ends first are read
 * here only to schedule workers; none of them reaches a run or a result
 * line (results are kept until every seed before them is shown).
 */
#define G_LOG_DOMAIN "qdbsim"

#include "config.h"

#include "sweep.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "world.h"

#define FIRST_FAILURES 10  /* failures the summary shows with their replay command */
#define MISSING_LISTED 20  /* runs of missing seeds the summary lists */
#define MAX_SEEDS G_MAXUINT32
#define MAX_DEPTH 8        /* nesting of a result line: object, metrics, arrays */

char *sim_replay_command(const char *scenario, const char *seed, char *const *sets)
{
    GString *s = g_string_new("qdbsim ");
    g_string_append(s, scenario);
    if (seed)
        g_string_append_printf(s, " --seed %s", seed);
    for (char *const *x = sets; x && *x; x++) {
        char *q = g_shell_quote(*x);
        g_string_append_printf(s, " --set %s", q);
        g_free(q);
    }
    return g_string_free(s, FALSE);
}

/* ---- the seeds --------------------------------------------------------------------- */

typedef struct seed_range {
    uint64_t lo, hi;
} seed_range;

/* "A..B" or "N"; at most MAX_SEEDS seeds. */
static bool parse_range(const char *text, seed_range *r, GString *why)
{
    const char *dots = strstr(text, "..");
    char *a = dots ? g_strndup(text, (gsize)(dots - text)) : g_strdup(text);
    const char *b = dots ? dots + 2 : text;
    bool ok = g_ascii_string_to_unsigned(a, 10, 0, G_MAXUINT64, &r->lo, NULL) &&
              g_ascii_string_to_unsigned(b, 10, 0, G_MAXUINT64, &r->hi, NULL) && r->lo <= r->hi;
    g_free(a);
    if (!ok)
        g_string_printf(why, "'%s': want A..B, whole numbers with A <= B", text);
    else if (r->hi - r->lo >= MAX_SEEDS)
        g_string_printf(why, "'%s': more than %u seeds", text, MAX_SEEDS);
    return why->len == 0;
}

typedef struct sweep {
    const sim_sweep_args *a;
    seed_range range;
    guint64 shard, shards;
    GArray *seeds;          /* uint64_t: the seeds this process runs, ascending */
    char *range_text;       /* "A..B" */
    unsigned jobs;
} sweep;

static bool sweep_setup(sweep *s, const sim_sweep_args *a, GString *why)
{
    s->a = a;
    s->shard = s->shards = 1;
    if (a->sweep_k > 0 && a->seeds)
        g_string_assign(why, "give --sweep K or --seeds A..B, not both");
    else if (a->sweep_k > 0)
        s->range = (seed_range){1, (uint64_t)a->sweep_k};
    else if (!a->seeds)
        g_string_assign(why, "--shard and -j need --sweep K or --seeds A..B");
    else if (!parse_range(a->seeds, &s->range, why))
        g_string_prepend(why, "--seeds ");
    if (!why->len && a->shard) {
        char **kn = g_strsplit(a->shard, "/", 3);
        if (g_strv_length(kn) != 2 ||
            !g_ascii_string_to_unsigned(kn[1], 10, 1, MAX_SEEDS, &s->shards, NULL) ||
            !g_ascii_string_to_unsigned(kn[0], 10, 1, s->shards, &s->shard, NULL))
            g_string_printf(why, "--shard '%s': want K/N with 1 <= K <= N", a->shard);
        g_strfreev(kn);
    }
    if (a->jobs < 0)
        g_string_printf(why, "-j %d: want 1 or more (0: one per processor)", a->jobs);
    if (why->len)
        return false;
    s->range_text = g_strdup_printf("%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT, s->range.lo,
                                    s->range.hi);
    s->seeds = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    /* (a shard past the range's end has no seed; no sum may pass 2^64) */
    for (uint64_t x = s->range.lo + (s->shard - 1);
         s->shard - 1 <= s->range.hi - s->range.lo; x += s->shards) {
        g_array_append_val(s->seeds, x);
        if (s->range.hi - x < s->shards)
            break; /* the next one is past the range */
    }
    /* scheduling only: the processor count never reaches a run */
    s->jobs = a->jobs > 0 ? (unsigned)a->jobs : (unsigned)MAX(1, g_get_num_processors());
    s->jobs = MAX(1, MIN(s->jobs, s->seeds->len));
    return true;
}

/* ---- one seed ---------------------------------------------------------------------- */

static void json_string(GString *o, const char *s)
{
    g_string_append_c(o, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            g_string_append_printf(o, "\\%c", c);
        else if (c == '\n')
            g_string_append(o, "\\n");
        else if (c < 0x20)
            g_string_append_printf(o, "\\u%04x", c);
        else
            g_string_append_c(o, (char)c);
    }
    g_string_append_c(o, '"');
}

static void json_strings(GString *o, char *const *v, guint n)
{
    g_string_append_c(o, '[');
    for (guint i = 0; i < n; i++) {
        if (i)
            g_string_append(o, ", ");
        json_string(o, v[i]);
    }
    g_string_append_c(o, ']');
}

/* The --set options seed s runs with: the sweep's, then its drawn faults
 * (the seed's own "seed=s" goes first, apart).  Free with g_strfreev. */
static char **seed_sets(const sweep *s, uint64_t seed)
{
    GRand *r = g_rand_new_with_seed((guint32)(seed * 2654435761u));
    GPtrArray *all = g_ptr_array_new();
    for (char **x = s->a->sets; x && *x; x++)
        g_ptr_array_add(all, g_strdup(*x));
    g_ptr_array_add(all, g_strdup("random_faults=true"));
    g_ptr_array_add(all, g_strdup_printf("loss=%.3f", g_rand_double_range(r, 0, 0.05)));
    g_ptr_array_add(all, g_strdup_printf("dup=%.3f", g_rand_double_range(r, 0, 0.02)));
    g_ptr_array_add(all, g_strdup_printf("reorder=%.3f", g_rand_double_range(r, 0, 0.05)));
    g_ptr_array_add(all, NULL);
    g_rand_free(r);
    return (char **)g_ptr_array_free(all, FALSE);
}

/* A result line with the given middle part (verdict, trace hash, metrics)
 * and failures; the replay command is computed here. */
static char *result_line(const sweep *s, uint64_t seed, const char *middle, char *const *failures,
                         guint n_failures)
{
    char **sets = seed_sets(s, seed);
    char seedtext[24];
    g_snprintf(seedtext, sizeof seedtext, "%" G_GUINT64_FORMAT, seed);
    char *cmd = sim_replay_command(s->a->scenario, seedtext, sets);
    g_strfreev(sets);
    GString *o = g_string_new("{\"scenario\": ");
    json_string(o, s->a->scenario);
    g_string_append(o, ", \"sets\": ");
    char **base = s->a->sets;
    json_strings(o, base, base ? g_strv_length(base) : 0);
    g_string_append_printf(o, ", \"seeds\": \"%s\", \"seed\": %s, %s, \"failures\": ",
                           s->range_text, seedtext, middle);
    json_strings(o, failures, n_failures);
    g_string_append(o, ", \"replay\": ");
    json_string(o, cmd);
    g_string_append(o, "}\n");
    g_free(cmd);
    return g_string_free(o, FALSE);
}

/* The deterministic measures of a finished run (none of report()'s wall
 * time, rate or memory).  Unreached times (negative) are null. */
static void append_metrics(GString *o, sim_world *w)
{
    const sim_client_stats *m = sim_model_stats(w->model);
    qdb_simnet_stats st;
    qdb_simnet_get_stats(w->net, &st);
    double ring_s, full_s, dead;
    sim_oracle_metric(&w->oracle, "ring_stable_s", &ring_s);
    sim_oracle_metric(&w->oracle, "full_stable_s", &full_s);
    sim_oracle_metric(&w->oracle, "lookup_dead_contacts_mean", &dead);
    const struct {
        const char *key;
        double v;
        bool count;
    } t[] = {
        {"nodes", w->p.nodes, true},
        {"virtual_s", (double)qdb_simnet_now(w->net) / 1e6, false},
        {"events", (double)st.events, true},
        {"ring_stable_s", ring_s, false},
        {"full_stable_s", full_s, false},
        {"hops_mean", sim_oracle_hops_mean(&w->oracle), false},
        {"hops_p99", sim_oracle_hops_percentile(&w->oracle, 99), true},
        {"lookups", (double)m->lookups, true},
        {"lookup_failures", (double)m->lookup_failures, true},
        {"lookup_timeouts", (double)m->lookup_timeouts, true},
        {"lookup_wrong", (double)m->lookup_wrong, true},
        {"lookup_dead_contacts_mean", dead, false},
        {"wrong_node_retries", (double)m->wrong_node_retries, true},
        {"unstable_answers", (double)m->unstable_answers, true},
        {"requests", (double)m->requests, true},
        {"acked_writes", (double)m->acked_writes, true},
        {"failed_requests", (double)m->failed_requests, true},
        {"lost_entries", (double)sim_oracle_lost_entries(&w->oracle, NULL), true},
        {"two_owners", (double)w->oracle.two_owners, true},
        {"expectations", w->expectations, true},
        {"expectations_failed", w->failures->len, true},
    };
    g_string_append(o, "\"metrics\": {");
    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        g_string_append_printf(o, "%s\"%s\": ", i ? ", " : "", t[i].key);
        if (t[i].v < 0)
            g_string_append(o, "null");
        else
            g_string_append_printf(o, t[i].count ? "%.0f" : "%.3f", t[i].v);
    }
    g_string_append_c(o, '}');
}

/* Runs seed `seed` in this process; its result line. */
static char *run_seed(const sweep *s, uint64_t seed)
{
    char **sets = seed_sets(s, seed);
    qdb_scn_err err = {0};
    qdb_scenario *sc = qdb_scenario_parse_file(s->a->path, &err);
    char *seedset = g_strdup_printf("seed=%" G_GUINT64_FORMAT, seed);
    bool ok = sc && qdb_scenario_set(sc, seedset, &err);
    g_free(seedset);
    for (char **x = sets; ok && *x; x++)
        ok = qdb_scenario_set(sc, *x, &err);
    sim_world *w = ok ? sim_world_new(sc, &err) : NULL;
    GString *middle = g_string_new("\"verdict\": \"error\"");
    GPtrArray *failures = g_ptr_array_new();
    if (w) {
        w->quiet = true;
        char seedtext[24];
        g_snprintf(seedtext, sizeof seedtext, "%" G_GUINT64_FORMAT, seed);
        w->replay = sim_replay_command(s->a->scenario, seedtext, sets);
        if (sim_world_run(w, &err)) {
            char hash[17];
            qdb_simnet_trace_hex(w->net, hash);
            g_string_printf(middle, "\"verdict\": \"%s\", \"trace_hash\": \"%s\", ",
                            w->failures->len ? "fail" : "pass", hash);
            append_metrics(middle, w);
        }
        for (guint i = 0; i < w->failures->len; i++)
            g_ptr_array_add(failures, w->failures->pdata[i]);
    }
    if (err.code != QDB_SCN_OK)
        g_ptr_array_add(failures, err.msg);
    char *line = result_line(s, seed, middle->str, (char **)failures->pdata, failures->len);
    g_ptr_array_free(failures, TRUE);
    g_string_free(middle, TRUE);
    if (w)
        sim_world_free(w);
    qdb_scenario_free(sc);
    g_strfreev(sets);
    return line;
}

/* ---- reading result lines ------------------------------------------------------------ */

/* A JSON value: enough of JSON for the lines we write (objects, arrays,
 * strings, numbers, true, false, null), kept as parsed.  A number keeps its
 * text too: a seed may exceed 2^53. */
typedef struct jv {
    char kind;       /* 'o' object, 'a' array, 's' string, 'n' number, 'b' true/false, 'z' null */
    char *str;       /* 's': the string; 'n': the number's text */
    double num;      /* 'n' */
    char *key;       /* a member of an object: its name */
    GPtrArray *items; /* 'o', 'a': jv* */
} jv;

static void jv_free(gpointer p)
{
    jv *v = p;
    if (!v)
        return;
    g_free(v->str);
    g_free(v->key);
    if (v->items)
        g_ptr_array_free(v->items, TRUE);
    g_free(v);
}

typedef struct reader {
    const char *p;
    const char *why; /* the first error */
} reader;

static void skip_space(reader *r)
{
    while (*r->p == ' ' || *r->p == '\t')
        r->p++;
}

static char *read_string(reader *r)
{
    if (*r->p != '"') {
        r->why = "a string expected";
        return NULL;
    }
    GString *o = g_string_new(NULL);
    for (r->p++; *r->p != '"'; r->p++) {
        unsigned c = (unsigned char)*r->p;
        if (c < 0x20) {
            r->why = c ? "a control character in a string" : "a string without its end";
            return g_string_free(o, TRUE), NULL;
        }
        if (c != '\\') {
            g_string_append_c(o, (char)c);
            continue;
        }
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *esc = *++r->p ? strchr(from, *r->p) : NULL;
        if (esc) {
            g_string_append_c(o, to[esc - from]);
        } else if (*r->p == 'u' && g_ascii_isxdigit(r->p[1]) && g_ascii_isxdigit(r->p[2]) &&
                   g_ascii_isxdigit(r->p[3]) && g_ascii_isxdigit(r->p[4])) {
            char hex[5] = {r->p[1], r->p[2], r->p[3], r->p[4], 0};
            gunichar u = (gunichar)g_ascii_strtoull(hex, NULL, 16);
            g_string_append_unichar(o, u);
            r->p += 4;
        } else {
            r->why = "a bad escape in a string";
            return g_string_free(o, TRUE), NULL;
        }
    }
    r->p++;
    return g_string_free(o, FALSE);
}

static jv *read_value(reader *r, int depth)
{
    skip_space(r);
    jv *v = g_new0(jv, 1);
    char open = *r->p;
    if (open == '{' || open == '[') {
        v->kind = open == '{' ? 'o' : 'a';
        v->items = g_ptr_array_new_with_free_func(jv_free);
        char close = open == '{' ? '}' : ']';
        r->p++;
        skip_space(r);
        if (depth >= MAX_DEPTH)
            r->why = "nested too deep";
        else if (*r->p == close)
            r->p++;
        else
            for (;;) {
                char *key = NULL;
                if (open == '{') {
                    key = read_string(r);
                    skip_space(r);
                    if (key && *r->p != ':')
                        r->why = "':' expected";
                    r->p += r->why ? 0 : 1;
                }
                jv *item = r->why ? NULL : read_value(r, depth + 1);
                if (!item) {
                    g_free(key);
                    break;
                }
                item->key = key;
                g_ptr_array_add(v->items, item);
                skip_space(r);
                if (*r->p == ',') {
                    r->p++;
                    skip_space(r);
                    continue;
                }
                if (*r->p != close)
                    r->why = open == '{' ? "',' or '}' expected" : "',' or ']' expected";
                r->p += r->why ? 0 : 1;
                break;
            }
    } else if (open == '"') {
        v->kind = 's';
        v->str = read_string(r);
    } else if (open == '-' || g_ascii_isdigit(open)) {
        char *end;
        v->kind = 'n';
        v->num = g_ascii_strtod(r->p, &end);
        v->str = g_strndup(r->p, (gsize)(end - r->p));
        if (end == r->p)
            r->why = "a number expected";
        r->p = end;
    } else if (g_str_has_prefix(r->p, "true") || g_str_has_prefix(r->p, "false")) {
        v->kind = 'b';
        r->p += open == 't' ? 4 : 5;
    } else if (g_str_has_prefix(r->p, "null")) {
        v->kind = 'z';
        r->p += 4;
    } else {
        r->why = "a value expected";
    }
    if (r->why) {
        jv_free(v);
        return NULL;
    }
    return v;
}

static const jv *member(const jv *o, const char *key, char kind)
{
    for (guint i = 0; o->items && i < o->items->len; i++) {
        const jv *m = o->items->pdata[i];
        if (strcmp(m->key, key) == 0)
            return m->kind == kind ? m : NULL;
    }
    return NULL;
}

/* One result line, checked. */
typedef struct result {
    char *where;       /* "FILE:LINE" */
    char *text;        /* the line, without its end */
    jv *v;
    uint64_t seed;
    seed_range range;
    const char *verdict;
    char *sweep;       /* what must be equal in every line: scenario and --set options */
} result;

static void result_free(gpointer p)
{
    result *x = p;
    g_free(x->where);
    g_free(x->text);
    jv_free(x->v);
    g_free(x->sweep);
    g_free(x);
}

static result *result_read(const char *text, const char *where, GString *why)
{
    reader r = {.p = text};
    jv *v = read_value(&r, 0);
    if (v) {
        skip_space(&r);
        if (*r.p)
            r.why = "text after the object";
    }
    result *x = g_new0(result, 1);
    x->where = g_strdup(where);
    x->text = g_strdup(text);
    x->v = v;
    const jv *scn = NULL, *sets = NULL, *seeds = NULL, *seed = NULL, *verdict = NULL;
    if (!r.why && v->kind == 'o') {
        scn = member(v, "scenario", 's');
        sets = member(v, "sets", 'a');
        seeds = member(v, "seeds", 's');
        seed = member(v, "seed", 'n');
        verdict = member(v, "verdict", 's');
    }
    GString *bad = g_string_new(NULL);
    if (r.why)
        g_string_printf(why, "%s: not a result line (%s at column %ld)", where, r.why,
                        (long)(r.p - text) + 1);
    else if (!scn || !sets || !seeds || !seed || !verdict || !member(v, "replay", 's'))
        g_string_printf(why, "%s: not a result line (scenario, sets, seeds, seed, verdict "
                        "and replay wanted)", where);
    else if (!parse_range(seeds->str, &x->range, bad))
        g_string_printf(why, "%s: seeds %s", where, bad->str);
    else if (!g_ascii_string_to_unsigned(seed->str, 10, x->range.lo, x->range.hi, &x->seed, NULL))
        g_string_printf(why, "%s: seed %s is not in its range %s", where, seed->str, seeds->str);
    else if (strcmp(verdict->str, "pass") && strcmp(verdict->str, "fail") &&
             strcmp(verdict->str, "error") && strcmp(verdict->str, "crash"))
        g_string_printf(why, "%s: unknown verdict '%s'", where, verdict->str);
    g_string_free(bad, TRUE);
    if (why->len) {
        result_free(x);
        return NULL;
    }
    x->verdict = verdict->str;
    GString *id = g_string_new(scn->str);
    for (guint i = 0; i < sets->items->len; i++) {
        const jv *e = sets->items->pdata[i];
        g_string_append_printf(id, " --set %s", e->kind == 's' ? e->str : "?");
    }
    x->sweep = g_string_free(id, FALSE);
    return x;
}

static gint result_cmp(gconstpointer a, gconstpointer b)
{
    const result *x = *(result *const *)a, *y = *(result *const *)b;
    return x->seed < y->seed ? -1 : x->seed > y->seed ? 1 : strcmp(x->where, y->where);
}

/* ---- the summary ----------------------------------------------------------------------- */

static void append_seeds(GString *o, uint64_t lo, uint64_t hi)
{
    g_string_append_printf(o, "%" G_GUINT64_FORMAT, lo);
    if (hi > lo)
        g_string_append_printf(o, "..%" G_GUINT64_FORMAT, hi);
}

static gint range_cmp(gconstpointer a, gconstpointer b)
{
    const seed_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The ranges of the results, sorted and joined where they touch or overlap
 * (one per result first: a merge holds far fewer lines than memory). */
static GArray *union_of_ranges(GPtrArray *results)
{
    GArray *u = g_array_new(FALSE, FALSE, sizeof(seed_range));
    for (guint i = 0; i < results->len; i++)
        g_array_append_val(u, ((result *)results->pdata[i])->range);
    g_array_sort(u, range_cmp);
    guint k = 0;
    for (guint i = 1; i < u->len; i++) {
        seed_range *last = &g_array_index(u, seed_range, k), *r = &g_array_index(u, seed_range, i);
        if (r->lo <= last->hi || r->lo - 1 == last->hi)
            last->hi = MAX(last->hi, r->hi);
        else
            g_array_index(u, seed_range, ++k) = *r;
    }
    if (u->len)
        g_array_set_size(u, k + 1);
    return u;
}

/* Appends the seeds of the ranges that no result has; their count. */
static uint64_t missing_seeds(GPtrArray *results, GArray *ranges, GString *list)
{
    uint64_t missing = 0;
    unsigned runs = 0;
    guint r = 0;
    for (guint i = 0; i < ranges->len; i++) {
        seed_range g = g_array_index(ranges, seed_range, i);
        uint64_t cur = g.lo;
        bool more = true;
        while (more) {
            uint64_t gap_lo = cur, gap_hi;
            bool gap;
            if (r < results->len && ((result *)results->pdata[r])->seed <= g.hi) {
                uint64_t have = ((result *)results->pdata[r++])->seed;
                gap = have > cur;
                gap_hi = have - 1;
                more = have < g.hi; /* (have + 1 would wrap at 2^64) */
                cur = more ? have + 1 : cur;
            } else {
                gap = true;
                gap_hi = g.hi;
                more = false;
            }
            if (!gap)
                continue;
            missing += gap_hi - gap_lo + 1;
            if (runs++ < MISSING_LISTED) {
                g_string_append(list, runs > 1 ? ", " : "");
                append_seeds(list, gap_lo, gap_hi);
            } else if (runs == MISSING_LISTED + 1) {
                g_string_append(list, ", ...");
            }
        }
    }
    return missing;
}

typedef struct aggregate {
    const char *key;
    double sum, min, max;
    guint n;
} aggregate;

static void append_number(GString *o, double v)
{
    g_string_append_printf(o, v == (double)(int64_t)v ? " %12.0f" : " %12.3f", v);
}

/* The summary of results (sorted by seed, no two for one seed).  ranges:
 * the seeds expected, for the missing ones; NULL: no check (a shard). */
static int summarize(GPtrArray *results, GArray *ranges, const char *shard_note, GString *o)
{
    const result *first = results->len ? results->pdata[0] : NULL;
    g_string_append_printf(o, "sweep           %s\n", first ? first->sweep : "(no results)");
    g_string_append(o, "seeds           ");
    uint64_t missing = 0;
    if (ranges) {
        for (guint i = 0; i < ranges->len; i++) {
            g_string_append(o, i ? ", " : "");
            append_seeds(o, g_array_index(ranges, seed_range, i).lo,
                         g_array_index(ranges, seed_range, i).hi);
        }
        GString *list = g_string_new(NULL);
        missing = missing_seeds(results, ranges, list);
        g_string_append_printf(o, ": %u results, ", results->len);
        if (missing)
            g_string_append_printf(o, "%" G_GUINT64_FORMAT " missing: %s\n", missing, list->str);
        else
            g_string_append(o, "none missing\n");
        g_string_free(list, TRUE);
    } else {
        g_string_append_printf(o, "%s: %u results\n", shard_note, results->len);
    }
    guint counts[4] = {0};
    const char *verdicts[4] = {"pass", "fail", "error", "crash"};
    GString *fails = g_string_new(NULL);
    GArray *agg = g_array_new(FALSE, TRUE, sizeof(aggregate));
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    for (guint i = 0; i < results->len; i++) {
        const result *x = results->pdata[i];
        g_checksum_update(sum, (const guchar *)x->text, (gssize)strlen(x->text));
        g_checksum_update(sum, (const guchar *)"\n", 1);
        guint k = 0;
        while (k < 3 && strcmp(x->verdict, verdicts[k]))
            k++;
        if (k > 0 && counts[1] + counts[2] + counts[3] < FIRST_FAILURES) {
            const jv *f = member(x->v, "failures", 'a');
            const jv *msg = f && f->items->len ? f->items->pdata[0] : NULL;
            g_string_append_printf(fails, "  seed %" G_GUINT64_FORMAT " %s: %s\n    %s\n", x->seed,
                                   x->verdict, msg && msg->kind == 's' ? msg->str : "(no message)",
                                   member(x->v, "replay", 's')->str);
        }
        counts[k]++;
        const jv *m = member(x->v, "metrics", 'o');
        for (guint j = 0; m && j < m->items->len; j++) {
            const jv *e = m->items->pdata[j];
            guint a = 0;
            while (a < agg->len && strcmp(g_array_index(agg, aggregate, a).key, e->key))
                a++;
            if (a == agg->len)
                g_array_append_val(agg, ((aggregate){.key = e->key}));
            aggregate *g = &g_array_index(agg, aggregate, a);
            if (e->kind != 'n')
                continue; /* null: not reached in that run */
            g->min = g->n ? MIN(g->min, e->num) : e->num;
            g->max = g->n ? MAX(g->max, e->num) : e->num;
            g->sum += e->num;
            g->n++;
        }
    }
    guint failed = results->len - counts[0];
    g_string_append_printf(o, "passed          %u\nfailed          %u", counts[0], failed);
    if (failed)
        g_string_append_printf(o, " (%u fail, %u error, %u crash)\nfirst failures\n%s", counts[1],
                               counts[2], counts[3], fails->str);
    else
        g_string_append_c(o, '\n');
    if (agg->len)
        g_string_append(o, "metric                             mean          min          max  seeds\n");
    for (guint a = 0; a < agg->len; a++) {
        const aggregate *g = &g_array_index(agg, aggregate, a);
        g_string_append_printf(o, "  %-26s", g->key);
        if (g->n) {
            append_number(o, g->sum / g->n);
            append_number(o, g->min);
            append_number(o, g->max);
        } else {
            g_string_append_printf(o, " %12s %12s %12s", "-", "-", "-");
        }
        g_string_append_printf(o, " %6u\n", g->n);
    }
    g_string_append_printf(o, "results_hash    %.16s (SHA-256 of the %u result lines in seed order)\n",
                           g_checksum_get_string(sum), results->len);
    g_checksum_free(sum);
    g_array_free(agg, TRUE);
    g_string_free(fails, TRUE);
    return failed ? SIM_SWEEP_FAILED : missing ? SIM_SWEEP_MISSING : SIM_SWEEP_PASSED;
}

/* ---- the workers ------------------------------------------------------------------------ */

typedef struct worker {
    pid_t pid;   /* 0: idle */
    int fd;      /* the read end of its pipe */
    guint idx;   /* into s->seeds */
    GString *out;
} worker;

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(SIM_SWEEP_BAD); /* the parent saw no result: a "crash" line */
        p += k;
        n -= (size_t)k;
    }
}

/* Seed idx in a child process; when fork fails, here (slower, as safe). */
static void worker_start(const sweep *s, worker *wk, guint idx, char **lines)
{
    uint64_t seed = g_array_index(s->seeds, uint64_t, idx);
    int p[2];
    pid_t pid = -1;
    fflush(NULL); /* nothing buffered twice */
    if (pipe(p) == 0 && (pid = fork()) < 0) {
        close(p[0]);
        close(p[1]);
    }
    if (pid < 0) {
        lines[idx] = run_seed(s, seed);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        char *line = run_seed(s, seed);
        write_all(p[1], line, strlen(line));
        g_free(line);
        _exit(0); /* the parent's atexit handlers and stdio are not ours */
    }
    close(p[1]);
    *wk = (worker){.pid = pid, .fd = p[0], .idx = idx, .out = g_string_new(NULL)};
}

/* The child of wk closed its pipe: its result, or a crash line. */
static void worker_finish(const sweep *s, worker *wk, char **lines)
{
    int status = 0;
    close(wk->fd);
    while (waitpid(wk->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && wk->out->len &&
        wk->out->str[wk->out->len - 1] == '\n') {
        lines[wk->idx] = g_string_free(wk->out, FALSE);
    } else {
        char *why = WIFSIGNALED(status)
                        ? g_strdup_printf("killed by signal %d (%s)", WTERMSIG(status),
                                          g_strsignal(WTERMSIG(status)))
                        : g_strdup_printf("exited with status %d before its result",
                                          WEXITSTATUS(status));
        lines[wk->idx] = result_line(s, g_array_index(s->seeds, uint64_t, wk->idx),
                                     "\"verdict\": \"crash\"", &why, 1);
        g_free(why);
        g_string_free(wk->out, TRUE);
    }
    *wk = (worker){0};
}

/* Shows line idx as it comes, in seed order: the line itself (json), or
 * its verdict on standard error; keeps the result for the summary. */
static bool emit(const sweep *s, const char *line, GPtrArray *results, GString *why)
{
    if (s->a->json) {
        fputs(line, stdout);
        fflush(stdout);
    }
    char *text = g_strchomp(g_strdup(line));
    char *where = g_strdup_printf("seed %" G_GUINT64_FORMAT,
                                  g_array_index(s->seeds, uint64_t, results->len));
    result *x = result_read(text, where, why);
    g_free(where);
    g_free(text);
    if (!x)
        return false;
    g_ptr_array_add(results, x);
    if (!s->a->json) {
        const jv *f = member(x->v, "failures", 'a');
        const jv *msg = f && f->items->len ? f->items->pdata[0] : NULL;
        fprintf(stderr, "%-5s seed %" G_GUINT64_FORMAT "%s%s\n", x->verdict, x->seed,
                msg && msg->kind == 's' ? ": " : "", msg && msg->kind == 's' ? msg->str : "");
    }
    return true;
}

/* Every seed of s, at most s->jobs at once; the results in seed order. */
static bool run_all(const sweep *s, GPtrArray *results, GString *why)
{
    guint n = s->seeds->len, next = 0, shown = 0;
    char **lines = g_new0(char *, n);
    worker *ws = g_new0(worker, s->jobs);
    struct pollfd *pf = g_new(struct pollfd, s->jobs);
    guint *who = g_new(guint, s->jobs);
    bool ok = true;
    while (shown < n) {
        for (guint k = 0; k < s->jobs && next < n; k++)
            if (!ws[k].pid)
                worker_start(s, &ws[k], next++, lines);
        nfds_t m = 0;
        for (guint k = 0; k < s->jobs; k++)
            if (ws[k].pid) {
                pf[m] = (struct pollfd){.fd = ws[k].fd, .events = POLLIN};
                who[m++] = k;
            }
        if (m && poll(pf, m, -1) < 0 && errno != EINTR)
            g_error("poll: %s", g_strerror(errno)); /* cannot happen with valid fds */
        for (nfds_t i = 0; m && i < m; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            worker *wk = &ws[who[i]];
            char buf[4096];
            ssize_t got = read(wk->fd, buf, sizeof buf);
            if (got > 0) {
                g_string_append_len(wk->out, buf, got);
            } else if (got == 0 || errno != EINTR) {
                worker_finish(s, wk, lines);
            }
        }
        for (; shown < n && lines[shown] && ok; shown++)
            ok = emit(s, lines[shown], results, why);
        if (!ok)
            break;
    }
    for (guint k = 0; k < s->jobs; k++)
        if (ws[k].pid) { /* only after a bad line (a bug): let the others end */
            kill(ws[k].pid, SIGTERM);
            worker_finish(s, &ws[k], lines);
        }
    for (guint i = 0; i < n; i++)
        g_free(lines[i]);
    g_free(lines);
    g_free(ws);
    g_free(pf);
    g_free(who);
    return ok;
}

int sim_sweep_run(const sim_sweep_args *a)
{
    sweep s = {0};
    GString *why = g_string_new(NULL);
    GPtrArray *results = g_ptr_array_new_with_free_func(result_free);
    int rc = SIM_SWEEP_BAD;
    if (!sweep_setup(&s, a, why))
        goto out;
    /* a scenario or --set that cannot work fails every seed: say it once */
    qdb_scn_err err = {0};
    qdb_scenario *sc = qdb_scenario_parse_file(a->path, &err);
    for (char **x = a->sets; sc && x && *x && err.code == QDB_SCN_OK; x++)
        qdb_scenario_set(sc, *x, &err);
    sim_world *w = err.code == QDB_SCN_OK ? sim_world_new(sc, &err) : NULL; /* (none started) */
    if (w)
        sim_world_free(w);
    qdb_scenario_free(sc);
    if (err.code != QDB_SCN_OK) {
        g_string_assign(why, err.msg);
        goto out;
    }
    if (!run_all(&s, results, why))
        goto out;
    GString *o = g_string_new(NULL);
    GArray *ranges = NULL;
    char *note = g_strdup_printf("%s, shard %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT,
                                 s.range_text, s.shard, s.shards);
    if (s.shards == 1) {
        ranges = g_array_new(FALSE, FALSE, sizeof(seed_range));
        g_array_append_val(ranges, s.range);
    }
    rc = summarize(results, ranges, note, o);
    if (!a->json)
        fputs(o->str, stdout);
    g_free(note);
    if (ranges)
        g_array_free(ranges, TRUE);
    g_string_free(o, TRUE);
out:
    if (why->len)
        fprintf(stderr, "qdbsim: %s\n", why->str);
    g_string_free(why, TRUE);
    g_ptr_array_free(results, TRUE);
    if (s.seeds)
        g_array_free(s.seeds, TRUE);
    g_free(s.range_text);
    return rc;
}

/* ---- --merge ------------------------------------------------------------------------------ */

static bool read_file(const char *name, GPtrArray *results, GString *why)
{
    char *data = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    bool ok;
    if (strcmp(name, "-") == 0) {
        GIOChannel *in = g_io_channel_unix_new(STDIN_FILENO);
        g_io_channel_set_encoding(in, NULL, NULL);
        ok = g_io_channel_read_to_end(in, &data, &len, &gerr) == G_IO_STATUS_NORMAL;
        g_io_channel_unref(in);
    } else {
        ok = g_file_get_contents(name, &data, &len, &gerr);
    }
    if (!ok) {
        g_string_printf(why, "%s", gerr ? gerr->message : name);
        g_clear_error(&gerr);
        g_free(data);
        return false;
    }
    if (strlen(data) != len)
        g_string_printf(why, "%s: a NUL byte: not a file of result lines", name);
    char **lines = g_strsplit(data, "\n", -1);
    g_free(data);
    for (guint i = 0; !why->len && lines[i]; i++) {
        g_strchomp(lines[i]); /* a \r too, or trailing blanks */
        if (!*lines[i])
            continue;
        char *where = g_strdup_printf("%s:%u", strcmp(name, "-") ? name : "(stdin)", i + 1);
        result *x = result_read(lines[i], where, why);
        g_free(where);
        if (x)
            g_ptr_array_add(results, x);
    }
    g_strfreev(lines);
    return why->len == 0;
}

int sim_sweep_merge(char *const *files, int n)
{
    GPtrArray *results = g_ptr_array_new_with_free_func(result_free);
    GString *why = g_string_new(NULL);
    int rc = SIM_SWEEP_BAD;
    for (int i = 0; i < n && !why->len; i++)
        read_file(files[i], results, why);
    if (!why->len && !results->len)
        g_string_assign(why, "no result lines in the files given");
    for (guint i = 1; !why->len && i < results->len; i++) {
        const result *a = results->pdata[0], *b = results->pdata[i];
        if (strcmp(a->sweep, b->sweep))
            g_string_printf(why, "%s is from another sweep than %s:\n  %s\n  %s", b->where,
                            a->where, b->sweep, a->sweep);
    }
    if (!why->len) {
        g_ptr_array_sort(results, result_cmp);
        for (guint i = 1; !why->len && i < results->len; i++) {
            const result *a = results->pdata[i - 1], *b = results->pdata[i];
            if (a->seed == b->seed)
                g_string_printf(why, "seed %" G_GUINT64_FORMAT " has %s results: %s and %s",
                                a->seed, strcmp(a->text, b->text) ? "two conflicting" : "two equal",
                                a->where, b->where);
        }
    }
    if (!why->len) {
        GArray *ranges = union_of_ranges(results);
        GString *o = g_string_new(NULL);
        rc = summarize(results, ranges, NULL, o);
        fputs(o->str, stdout);
        g_string_free(o, TRUE);
        g_array_free(ranges, TRUE);
    }
    if (why->len)
        fprintf(stderr, "qdbsim: --merge: %s\n", why->str);
    g_string_free(why, TRUE);
    g_ptr_array_free(results, TRUE);
    return rc;
}

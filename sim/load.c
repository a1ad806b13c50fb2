/* SPDX-License-Identifier: BSD-2-Clause */
/* Load generators: workload, lookups, churn, random faults.
 *
 * Each keeps its state in memory the world owns (sim_world_alloc), so a run
 * that stops with a step still queued leaks nothing.  The order of draws from
 * the world's generator is part of the trace: keep it when changing code.
 */
#define G_LOG_DOMAIN "qdbsim"

#include <math.h>
#include <string.h>

#include "codec.h"
#include "load.h"

/* The gap to the next arrival of a Poisson process of `rate` per second:
 * exponential, drawn from the world's generator, at least 1 us. */
static qdb_time_us poisson_gap(sim_world *w, double rate)
{
    double u = g_rand_double(w->rng);
    qdb_time_us gap = (qdb_time_us)(-log(1.0 - u) * 1e6 / rate);
    return MAX(gap, 1);
}

/* ---- workload ------------------------------------------------------------------ */

typedef struct workload {
    sim_world *w;
    sim_workload spec;
} workload;

static void workload_step(void *arg)
{
    workload *wl = arg;
    sim_world *w = wl->w;
    const sim_workload *s = &wl->spec;
    qdb_time_us now = qdb_simnet_now(w->net);
    if (now >= s->until || w->workload_clients->len == 0) {
        w->loads_running--;
        return;
    }
    qdb_client_core *c = w->workload_clients->pdata[g_rand_int_range(
        w->rng, 0, (gint32)w->workload_clients->len)];
    bool write = g_rand_double(w->rng) * (s->puts + s->gets) < s->puts;
    char alias[32];
    g_snprintf(alias, sizeof alias, "w%" G_GUINT64_FORMAT,
               (uint64_t)g_rand_double_range(w->rng, 0, (double)s->keys));
    sim_key *k = sim_model_key(w->model, alias);
    if (write && !k->writes_inflight) {
        /* One write per key at a time, so versions are applied in order and
         * "the latest acknowledged version" is well defined. */
        sim_op *op = sim_op_new(SIM_OP_WRITE);
        op->key = k;
        op->version = ++k->writes_issued;
        k->writes_inflight = true;
        size_t len;
        char *v = sim_model_value(alias, op->version, s->value_size, &len);
        if (!sim_submit(w, c, QDB_MSG_UPDATE, alias, (const uint8_t *)v, len, op))
            k->writes_inflight = false;
        g_free(v);
    } else {
        sim_op *op = sim_op_new(SIM_OP_READ);
        op->key = k;
        op->min_version = k->removed ? 0 : k->acked_version;
        op->min_whole = k->removed ? 0 : k->acked_whole;
        sim_submit(w, c, QDB_MSG_GET, alias, NULL, 0, op);
    }
    /* Poisson arrivals at the total rate. */
    qdb_simnet_at(w->net, now + poisson_gap(w, s->puts + s->gets), workload_step, wl);
}

void sim_workload_start(sim_world *w, const sim_workload *spec, uint64_t clients)
{
    workload *wl = sim_world_alloc(w, sizeof(workload));
    wl->w = w;
    wl->spec = *spec;
    sim_add_clients(w, w->workload_clients, clients);
    w->loads_running++;
    workload_step(wl);
}

/* ---- lookups ----------------------------------------------------------------------- */

typedef struct lookup_batch {
    sim_world *w;
    uint64_t left;
    double rate;
} lookup_batch;

static void lookup_step(void *arg)
{
    lookup_batch *b = arg;
    sim_world *w = b->w;
    int start = b->left && w->lookup_pool->len ? sim_random_live_node(w, -1) : -1;
    if (start < 0) {
        w->loads_running--; /* the batch is over */
        return;
    }
    b->left--;
    qdb_client_core *c = w->lookup_pool->pdata[0];
    sim_op *op = sim_op_new(SIM_OP_LOOKUP);
    for (unsigned i = 0; i < QDB_ID_BYTES; i += 4) {
        uint32_t r = g_rand_int(w->rng);
        memcpy(op->target.b + i, &r, 4);
    }
    /* each from a random live node, as in the Chord paper; a lookup that
     * cannot start is not counted */
    sim_model_lookup(w->model, c, qdb_fixture_peer(w->fx, (unsigned)start)->addr, op);
    qdb_simnet_at(w->net, qdb_simnet_now(w->net) + (qdb_time_us)(1e6 / b->rate), lookup_step, b);
}

void sim_lookups_start(sim_world *w, uint64_t count, double rate)
{
    lookup_batch *b = sim_world_alloc(w, sizeof(lookup_batch));
    *b = (lookup_batch){.w = w, .left = count, .rate = rate};
    /* One client; each lookup starts at a random live node. */
    g_ptr_array_set_size(w->lookup_pool, 0);
    sim_add_clients(w, w->lookup_pool, 1);
    w->loads_running++;
    lookup_step(b);
}

/* ---- churn ----------------------------------------------------------------------------- */

typedef struct churn {
    sim_world *w;
    double rate, leave;
    qdb_time_us until;
    unsigned min; /* no departure leaves fewer live nodes than this */
} churn;

static void churn_step(void *arg)
{
    churn *c = arg;
    sim_world *w = c->w;
    qdb_time_us now = qdb_simnet_now(w->net);
    if (now >= c->until) {
        w->loads_running--;
        return;
    }
    int down = sim_random_down_node(w);
    guint live = qdb_fixture_ring(w->fx)->len;
    /* Without the floor the live count is a random walk: in an hour at
     * 0.2/s it wanders down to one node, and the crash of the last but one
     * leaves the survivor with no live successor, which no Chord can avoid
     * (Zave's proofs assume at least r + 1 members).  At the floor, a join. */
    bool join = down >= 0 && (g_rand_boolean(w->rng) || live <= c->min);
    if (join) {
        sim_join(w, (unsigned)down, -1);
    } else {
        int victim = sim_random_live_node(w, -1);
        if (victim >= 0 && live > 1 && live > c->min)
            sim_depart(w, (unsigned)victim, g_rand_double(w->rng) < c->leave);
    }
    qdb_simnet_at(w->net, now + poisson_gap(w, c->rate), churn_step, c);
}

void sim_churn_start(sim_world *w, double rate, double leave, qdb_time_us until, unsigned min)
{
    churn *c = sim_world_alloc(w, sizeof(churn));
    *c = (churn){.w = w, .rate = rate, .leave = leave, .until = until, .min = min};
    w->loads_running++;
    churn_step(c);
}

/* ---- random faults ---------------------------------------------------------------------- */

static void heal_cb(void *arg)
{
    sim_world *w = arg;
    qdb_fixture_heal(w->fx);
}

/* --sweep's random faults: between 0 and fault_until, a fault every 5 to
 * 20 virtual seconds, drawn from the seed -- a crash (storage kept or lost),
 * a restart of a crashed node, or a partition healed 2 to 10 s later.
 * After fault_until the world is left alone to settle. */
static void random_fault(void *arg)
{
    sim_world *w = arg;
    qdb_time_us now = qdb_simnet_now(w->net);
    if (now >= w->p.fault_until) {
        heal_cb(w);
        w->loads_running--;
        return;
    }
    double r = g_rand_double(w->rng);
    const GArray *ring = qdb_fixture_ring(w->fx);
    if (r < 0.4 && ring->len > 2) {
        int v = sim_random_live_node(w, -1);
        if (v >= 0)
            sim_crash(w, (unsigned)v, g_rand_double(w->rng) < 0.8, w->p.crash_host);
    } else if (r < 0.7) {
        int d = sim_random_down_node(w);
        if (d >= 0 && qdb_fixture_started(w->fx, (unsigned)d))
            sim_join(w, (unsigned)d, -1);
    } else if (ring->len > 3) {
        /* split the live nodes in two by ID order for 2 to 10 s */
        guint half = ring->len / 2;
        for (guint k = 0; k < ring->len; k++)
            qdb_fixture_set_group(w->fx, g_array_index(ring, unsigned, k), k < half ? 1 : 2);
        sim_model_set_split(w->model, true); /* from now, not from the next check */
        qdb_time_us heal_at = now + (qdb_time_us)g_rand_int_range(w->rng, 2, 11) * QDB_US_PER_S;
        qdb_simnet_at(w->net, heal_at, heal_cb, w);
    }
    qdb_time_us gap = (qdb_time_us)g_rand_int_range(w->rng, 5, 21) * QDB_US_PER_S;
    qdb_simnet_at(w->net, now + gap, random_fault, w);
}

void sim_random_faults_start(sim_world *w, qdb_time_us at)
{
    w->loads_running++;
    qdb_simnet_at(w->net, at, random_fault, w);
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* The simulated world: a scenario run on a fixture.
 *
 * Sections
 *   parameters
 *   storage = bdb
 *   nodes and clients, with the oracle told of membership changes
 *   the world
 *   the run
 *
 * The verbs live in verbs.c, the load generators in load.c, what clients
 * were told in model.c, the checks in oracle.c, nodes and the network in
 * fixture.c.  The world never reads the wall clock or real randomness: time
 * is the network's virtual clock, and every choice comes from the fixture's
 * generator, seeded from the scenario.  Tables keyed by hash are only looked
 * up, never iterated; walks go over arrays in creation order.
 */
#define G_LOG_DOMAIN "qdbsim"

#include <glib/gstdio.h>
#include <stdarg.h>
#include <string.h>

#include "codec.h"
#include "defaults.h"
#include "load.h"
#include "storage/bdb.h"
#include "world.h"

/* ---- parameters ------------------------------------------------------------ */

static const qdb_scn_token *param(sim_world *w, const char *key)
{
    return qdb_scenario_param(w->sc, key);
}

static bool param_uint(sim_world *w, const char *key, uint64_t def, uint64_t *out, qdb_scn_err *err)
{
    const qdb_scn_token *t = param(w, key);
    *out = def;
    return !t || qdb_scn_tok_uint(t, out, err);
}

static bool param_duration(sim_world *w, const char *key, qdb_time_us def, qdb_time_us *out,
                           qdb_scn_err *err)
{
    const qdb_scn_token *t = param(w, key);
    *out = def;
    return !t || qdb_scn_tok_duration(t, out, err);
}

static bool param_fraction(sim_world *w, const char *key, double *out, qdb_scn_err *err)
{
    const qdb_scn_token *t = param(w, key);
    *out = 0;
    return !t || qdb_scn_tok_fraction(t, out, err);
}

bool sim_tok_either(const qdb_scn_token *t, const char *first, const char *second, bool *second_,
                    qdb_scn_err *err)
{
    const char *const choices[] = {first, second, NULL};
    int c;
    if (!qdb_scn_tok_choice(t, choices, &c, err))
        return false;
    *second_ = c == 1;
    return true;
}

static bool param_either(sim_world *w, const char *key, const char *first, const char *second,
                         bool *second_, qdb_scn_err *err)
{
    const qdb_scn_token *t = param(w, key);
    return !t || sim_tok_either(t, first, second, second_, err);
}

static bool read_params(sim_world *w, qdb_simnet_config *nc, qdb_scn_err *err)
{
    sim_params *p = &w->p;
    uint64_t v;
    const qdb_scn_token *t = param(w, "name");
    p->name = g_strdup(t ? t->text : qdb_scenario_source(w->sc));
    if (!param_uint(w, "seed", 1, &p->seed, err))
        return false;
    if (!param_uint(w, "nodes", 3, &v, err))
        return false;
    if (v < 1 || v > 4000000)
        return qdb_scn_error(err, &param(w, "nodes")->pos, "nodes must be 1 to 4,000,000");
    p->nodes = (unsigned)v;
    if (!param_duration(w, "end", 60 * QDB_US_PER_S, &p->end, err))
        return false;
    t = param(w, "address_base");
    if (!qdb_addr_parse(&p->address_base, t ? t->text : "10.0.0.1:2836"))
        return qdb_scn_error(err, &t->pos, "bad address '%s' (a.b.c.d or a.b.c.d:port)", t->text);
    if (!param_uint(w, "succlist", QDB_DEFAULT_SUCCLIST, &v, err))
        return false;
    if (v < 1 || v > QDB_SUCCLIST_MAX)
        return qdb_scn_error(err, &param(w, "succlist")->pos, "succlist must be 1 to %d",
                             QDB_SUCCLIST_MAX);
    p->succlist = (unsigned)v;
    if (!param_uint(w, "replication", QDB_DEFAULT_REPLICATION, &v, err))
        return false;
    if (v < 1 || v > QDB_REPLICATION_MAX || v > p->succlist + 1)
        return qdb_scn_error(err, &param(w, "replication")->pos,
                             "replication must be 1 to %d, and at most succlist + 1",
                             QDB_REPLICATION_MAX);
    p->replication = (unsigned)v;
    if (!param_duration(w, "stabilize_fast", QDB_DEFAULT_STABILIZE_FAST_US, &p->stabilize_fast,
                        err) ||
        !param_duration(w, "stabilize_slow", QDB_DEFAULT_STABILIZE_SLOW_US, &p->stabilize_slow,
                        err) ||
        !param_duration(w, "rpc_timeout", QDB_DEFAULT_RPC_TIMEOUT_US, &p->rpc_timeout, err) ||
        !param_duration(w, "client_timeout", QDB_DEFAULT_CLIENT_TIMEOUT_US, &p->client_timeout,
                        err) ||
        !param_duration(w, "check_period",
                        p->nodes > 1000 ? QDB_US_PER_S : 100 * QDB_US_PER_MS, &p->check_period, err))
        return false;
    if (p->stabilize_fast == 0 || p->stabilize_fast > p->stabilize_slow)
        return qdb_scn_error(err, &param(w, "stabilize_fast")->pos,
                             "stabilize_fast must be positive and at most stabilize_slow");
    if (p->check_period == 0)
        return qdb_scn_error(err, &param(w, "check_period")->pos, "check_period must be positive");
    if (!param_uint(w, "log", 0, &v, err))
        return false;
    p->log_level = (int)MIN(v, 5);
    if (!param_either(w, "storage", "memory", "bdb", &p->storage_bdb, err))
        return false;

    qdb_simnet_config_defaults(nc);
    nc->seed = p->seed;
    if (!param_duration(w, "latency_mean", nc->latency_mean, &nc->latency_mean, err) ||
        !param_duration(w, "latency_min", nc->latency_min, &nc->latency_min, err) ||
        !param_duration(w, "jitter", nc->jitter, &nc->jitter, err) ||
        !param_duration(w, "reorder_window", nc->reorder_window, &nc->reorder_window, err) ||
        !param_fraction(w, "loss", &nc->loss, err) || !param_fraction(w, "dup", &nc->dup, err) ||
        !param_fraction(w, "reorder", &nc->reorder, err))
        return false;
    p->reorder_window = nc->reorder_window;

    t = param(w, "random_faults");
    if (t && !qdb_scn_tok_bool(t, &p->random_faults, err))
        return false;
    if (!param_duration(w, "fault_until", p->end / 2, &p->fault_until, err))
        return false;
    if (!param_either(w, "stop", "end", "settled", &p->stop_settled, err))
        return false;
    return param_either(w, "crash", "process", "host", &p->crash_host, err);
}

static bool check_unused(sim_world *w, qdb_scn_err *err)
{
    GPtrArray *unused = qdb_scenario_unused_params(w->sc);
    bool ok = true;
    if (unused->len) {
        const qdb_scn_token *u = unused->pdata[0];
        ok = qdb_scn_error(err, &u->key_pos, "unknown parameter '%s'", u->key);
    }
    g_ptr_array_unref(unused);
    return ok;
}

/* ---- storage = bdb ------------------------------------------------------------
 * One Berkeley DB environment per node under a temporary folder that lives as
 * long as the world.  A crash with storage kept leaves the store open (as the
 * disk survives a process crash); with storage lost its folder goes. */

static char *node_bdb_dir(sim_world *w, unsigned i)
{
    char name[32];
    g_snprintf(name, sizeof name, "node-%u", i);
    return g_build_filename(w->bdb_root, name, NULL);
}

static qdb_storage *bdb_open(void *arg, unsigned i, char *err)
{
    sim_world *w = arg;
    if (!w->bdb_root) {
        GError *e = NULL;
        w->bdb_root = g_dir_make_tmp("qdbsim-XXXXXX", &e); /* a folder name only: no behaviour */
        if (!w->bdb_root) {
            qdb_error_set(err, QDB_E_STORAGE, "storage=bdb: %s", e->message);
            g_error_free(e);
            return NULL;
        }
    }
    char *dir = node_bdb_dir(w, i);
    qdb_bdb_options opt = qdb_bdb_options_defaults();
    opt.cache_bytes = 256 * 1024; /* small worlds, many environments */
    qdb_storage *st = qdb_storage_bdb_open(dir, &opt, err);
    g_free(dir);
    return st;
}

/* rm -r: GLib has no recursive delete outside GIO. */
static void remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    if (d) {
        const char *name;
        while ((name = g_dir_read_name(d)) != NULL) {
            char *child = g_build_filename(path, name, NULL);
            remove_tree(child);
            g_free(child);
        }
        g_dir_close(d);
    }
    g_remove(path);
}

/* A store lost with its node: what it held is gone, so the model excuses
 * those entries -- with K = 1 all of them.  With replicas only those whose
 * last copy this was (no other store holds their acknowledged state): an
 * entry with a copy left must be served, and losing it is a violation.
 * The scripted scenarios crash fewer than K holders between repairs, so
 * they excuse nothing (lost_last_copy stays 0); --sweep's random crashes
 * may take all K copies before repair catches up, the loss replication
 * cannot prevent. */
static void store_lose(void *arg, unsigned i, qdb_storage *st)
{
    sim_world *w = arg;
    if (w->p.replication <= 1) {
        sim_model_excuse_store(w->model, st);
    } else {
        GPtrArray *others = g_ptr_array_new();
        for (unsigned j = 0; j < qdb_fixture_n_nodes(w->fx); j++) {
            qdb_storage *o = j == i ? NULL : qdb_fixture_storage_of(w->fx, j);
            if (o)
                g_ptr_array_add(others, o);
        }
        sim_model_excuse_last_copies(w->model, st, (qdb_storage *const *)others->pdata,
                                     others->len);
        g_ptr_array_free(others, TRUE);
    }
    st->destroy(st);
    if (w->bdb_root) {
        char *dir = node_bdb_dir(w, i);
        remove_tree(dir);
        g_free(dir);
    }
}

/* ---- nodes and clients -------------------------------------------------------- */

bool sim_boot(sim_world *w, unsigned i, const qdb_addr *peers, size_t n_peers)
{
    qdb_simnet_set_host_down(w->net, qdb_fixture_peer(w->fx, i)->addr, false); /* back up */
    if (!qdb_fixture_start(w->fx, i, peers, n_peers)) {
        g_warning("node %u: %s", i, qdb_fixture_errmsg(w->fx));
        return false;
    }
    qdb_node_pause_maintenance(qdb_fixture_node(w->fx, i), w->maintenance_off);
    sim_oracle_membership_changed(&w->oracle);
    return true;
}

void sim_warm(sim_world *w, unsigned lo, unsigned hi)
{
    if (qdb_fixture_start_warm(w->fx, lo, hi) == 0)
        return;
    for (unsigned i = lo; i <= hi; i++)
        if (qdb_fixture_up(w->fx, i))
            qdb_node_pause_maintenance(qdb_fixture_node(w->fx, i), w->maintenance_off);
    sim_oracle_membership_changed(&w->oracle);
}

void sim_crash(sim_world *w, unsigned i, bool keep_storage, bool host)
{
    if (!qdb_fixture_up(w->fx, i))
        return;
    if (host)
        qdb_simnet_set_host_down(w->net, qdb_fixture_peer(w->fx, i)->addr, true);
    qdb_fixture_crash(w->fx, i, keep_storage);
    sim_oracle_membership_changed(&w->oracle);
    sim_oracle_crashed(&w->oracle);
}

void sim_depart(sim_world *w, unsigned i, bool graceful)
{
    if (graceful)
        qdb_fixture_leave(w->fx, i);
    else
        sim_crash(w, i, true, w->p.crash_host);
}

static bool joining(sim_world *w, unsigned i)
{
    return qdb_node_is_joining(qdb_fixture_node(w->fx, i));
}

int sim_random_live_node(sim_world *w, int except)
{
    const GArray *ring = qdb_fixture_ring(w->fx);
    guint n = ring->len;
    if (n == 0 || (n == 1 && (int)g_array_index(ring, unsigned, 0) == except))
        return -1;
    for (;;) {
        unsigned i = g_array_index(ring, unsigned, g_rand_int_range(w->rng, 0, (gint32)n));
        if ((int)i != except && !joining(w, i))
            return (int)i;
        /* a joining node is a poor entry point: pick again, but never loop
         * forever when all are joining */
        bool any = false;
        for (guint k = 0; k < n && !any; k++) {
            unsigned j = g_array_index(ring, unsigned, k);
            any = (int)j != except && !joining(w, j);
        }
        if (!any)
            return (int)i == except ? -1 : (int)i;
    }
}

int sim_random_down_node(sim_world *w)
{
    unsigned down = w->p.nodes - qdb_fixture_ring(w->fx)->len;
    if (down == 0)
        return -1;
    unsigned k = (unsigned)g_rand_int_range(w->rng, 0, (gint32)down);
    for (unsigned i = 0; i < w->p.nodes; i++)
        if (!qdb_fixture_up(w->fx, i) && k-- == 0)
            return (int)i;
    return -1;
}

void sim_join(sim_world *w, unsigned i, int via)
{
    if (qdb_fixture_up(w->fx, i))
        return;
    if (via >= 0 && qdb_fixture_up(w->fx, (unsigned)via)) {
        sim_boot(w, i, &qdb_fixture_peer(w->fx, (unsigned)via)->addr, 1);
        return;
    }
    /* Through random live nodes: up to three, as an operator gives qdbd
     * several --peer, so a join survives its first peer leaving. */
    qdb_addr peers[3];
    size_t k = 0;
    for (int tries = 0; tries < 8 && k < 3; tries++) {
        int v = sim_random_live_node(w, (int)i);
        if (v < 0)
            break;
        qdb_addr a = qdb_fixture_peer(w->fx, (unsigned)v)->addr;
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            dup |= qdb_addr_eq(peers[j], a);
        if (!dup)
            peers[k++] = a;
    }
    sim_boot(w, i, k ? peers : NULL, k); /* nobody to join: start a ring */
}

static qdb_client_core *client_new(sim_world *w, unsigned via)
{
    qdb_client_config cfg;
    qdb_client_config_defaults(&cfg);
    cfg.bootstrap = qdb_fixture_peer(w->fx, via)->addr;
    cfg.timeout = w->p.client_timeout;
    cfg.rpc_timeout = w->p.rpc_timeout;
    return qdb_fixture_client(w->fx, qdb_fixture_add_client(w->fx, &cfg));
}

qdb_client_core *sim_client_via(sim_world *w, unsigned via)
{
    qdb_client_core *c = g_hash_table_lookup(w->via_clients, GUINT_TO_POINTER(via + 1));
    if (!c) {
        c = client_new(w, via);
        g_hash_table_insert(w->via_clients, GUINT_TO_POINTER(via + 1), c);
    }
    return c;
}

void sim_add_clients(sim_world *w, GPtrArray *to, uint64_t k)
{
    for (uint64_t i = 0; i < k; i++) {
        int via = sim_random_live_node(w, -1);
        if (via < 0)
            break;
        g_ptr_array_add(to, client_new(w, (unsigned)via));
    }
}

bool sim_submit(sim_world *w, qdb_client_core *c, int type, const char *alias,
                const uint8_t *content, size_t len, sim_op *op)
{
    const qdb_scn_event *ev = op->tag; /* op is freed on failure */
    int rc = sim_model_submit(w->model, c, type, alias, content, len, op);
    if (rc != QDB_OK)
        sim_world_fail(w, ev ? &ev->pos : NULL, "cannot submit: %s", qdb_strerror(rc));
    return rc == QDB_OK;
}

/* ---- the world ------------------------------------------------------------------ */

void *sim_world_alloc(sim_world *w, size_t size)
{
    void *p = g_malloc0(size);
    g_ptr_array_add(w->owned, p);
    return p;
}

void sim_world_fail(sim_world *w, const qdb_scn_pos *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *line = pos ? g_strdup_printf("%s:%d:%d: at %.3fs: %s", pos->file, pos->line, pos->col,
                                       (double)qdb_simnet_now(w->net) / 1e6, msg)
                     : g_strdup_printf("%s: at %.3fs: %s", qdb_scenario_source(w->sc),
                                       (double)qdb_simnet_now(w->net) / 1e6, msg);
    g_free(msg);
    g_ptr_array_add(w->failures, line);
}

/* Is owner the first live successor of target right now? */
static bool lookup_right(void *arg, const qdb_id *target, const qdb_peer *owner)
{
    sim_world *w = arg;
    int i = qdb_fixture_owner(w->fx, target);
    return i >= 0 && qdb_addr_eq(qdb_fixture_peer(w->fx, (unsigned)i)->addr, owner->addr);
}

static bool beyond_k(void *arg, const sim_key *key, uint64_t version)
{
    sim_world *w = arg;
    return sim_oracle_beyond_k(&w->oracle, key, version);
}

static void bad_read(void *arg, const char *alias)
{
    sim_world_fail(arg, NULL, "read of %s returned a value never written", alias);
}

/* Node IDs: drawn from the generator in index order, or placed by hand
 * (id.I = HEX: Zave's counterexamples need them). */
static bool add_nodes(sim_world *w, qdb_scn_err *err)
{
    qdb_peer *peers = g_new0(qdb_peer, w->p.nodes);
    bool ok = true;
    for (unsigned i = 0; i < w->p.nodes; i++) {
        peers[i].addr = (qdb_addr){.ip = w->p.address_base.ip + i, .port = w->p.address_base.port};
        for (unsigned b = 0; b < QDB_ID_BYTES; b += 4) {
            /* Draw first: without optimisation GLib's byte-order macros
             * evaluate their argument four times (it drew four numbers in
             * the -O0 build and one at -O2, and the trace hashes differed). */
            uint32_t r = g_rand_int(w->rng);
            r = GUINT32_TO_BE(r);
            memcpy(peers[i].id.b + b, &r, 4);
        }
    }
    /* Looked up for every node, so only the ones given are marked used. */
    for (unsigned i = 0; ok && i < w->p.nodes && qdb_scenario_n_params(w->sc) > 0; i++) {
        char key[32];
        g_snprintf(key, sizeof key, "id.%u", i);
        const qdb_scn_token *t = qdb_scenario_param(w->sc, key);
        if (!t)
            continue;
        ok = qdb_id_parse(&peers[i].id, t->text);
        if (!ok)
            qdb_scn_error(err, &t->pos, "bad ID '%s' (1 to 64 hex digits, or #decimal)", t->text);
        for (unsigned j = 0; ok && j < w->p.nodes; j++)
            if (j != i && qdb_id_eq(&peers[j].id, &peers[i].id))
                ok = qdb_scn_error(err, &t->pos, "nodes %u and %u have the same ID", i, j);
    }
    qdb_node_config cfg = {
        .succlist_len = w->p.succlist,
        .stabilize_fast = w->p.stabilize_fast,
        .stabilize_slow = w->p.stabilize_slow,
        .rpc_timeout = w->p.rpc_timeout,
        .log_level = w->p.log_level,
        .replication = w->p.replication,
    };
    for (unsigned i = 0; ok && i < w->p.nodes; i++)
        qdb_fixture_add_node(w->fx, &peers[i], &cfg);
    g_free(peers);
    return ok;
}

/* The world is built in steps -- parameters, tables, the fixture with the
 * model, the nodes -- and undone by one helper per step: a failing
 * constructor unwinds from the last step that succeeded (so a half-built
 * world is never handed to sim_world_free), and sim_world_free undoes them
 * all. */

static void free_fixture(sim_world *w)
{
    qdb_fixture_free(w->fx);  /* client callbacks never fire now */
    sim_model_free(w->model); /* so the operations they held go here */
    if (w->bdb_root) {        /* the stores are closed with their nodes */
        remove_tree(w->bdb_root);
        g_free(w->bdb_root);
    }
}

static void free_tables(sim_world *w)
{
    g_hash_table_destroy(w->via_clients);
    g_ptr_array_free(w->lookup_pool, TRUE);
    g_ptr_array_free(w->workload_clients, TRUE);
    g_ptr_array_free(w->failures, TRUE);
    g_ptr_array_free(w->owned, TRUE);
}

static void free_params(sim_world *w)
{
    g_free(w->p.name);
    g_free(w->replay);
    g_free(w);
}

sim_world *sim_world_new(qdb_scenario *sc, qdb_scn_err *err)
{
    sim_world *w = g_new0(sim_world, 1);
    w->sc = sc;
    w->out = stderr;
    qdb_simnet_config nc;
    if (!read_params(w, &nc, err))
        goto fail_alloc;
    w->via_clients = g_hash_table_new(g_direct_hash, g_direct_equal);
    w->lookup_pool = g_ptr_array_new();
    w->workload_clients = g_ptr_array_new();
    w->failures = g_ptr_array_new_with_free_func(g_free);
    w->owned = g_ptr_array_new_with_free_func(g_free);

    qdb_fixture_storage storage = {.open = w->p.storage_bdb ? bdb_open : NULL,
                                   .lose = store_lose, .arg = w};
    w->fx = qdb_fixture_new(&nc, &storage);
    w->net = qdb_fixture_net(w->fx);
    w->rng = qdb_fixture_rng(w->fx);
    sim_model_hooks hooks = {.scripted = sim_verb_result, .bad_read = bad_read,
                             .lookup_right = lookup_right, .beyond_k = beyond_k, .arg = w};
    w->model = sim_model_new(w->net, &hooks);
    sim_oracle_init(&w->oracle, w->fx, w->model, w->p.succlist);
    sim_oracle_set_copies(&w->oracle, w->p.replication);
    /* After the nodes: their id.I parameters count as used. */
    if (!add_nodes(w, err) || !check_unused(w, err))
        goto fail_fixture; /* the nodes, if any, are the fixture's */
    return w;

fail_fixture:
    free_fixture(w);
    free_tables(w);
fail_alloc:
    free_params(w);
    return NULL;
}

void sim_world_free(sim_world *w)
{
    if (!w)
        return;
    free_fixture(w);
    free_tables(w);
    free_params(w);
}

/* ---- the run ------------------------------------------------------------------ */

typedef struct event_call {
    sim_world *w;
    const qdb_scn_event *ev;
    qdb_scn_err *err;
    bool *ok;
} event_call;

static void fire_event(void *arg)
{
    event_call *c = arg;
    c->w->timed_left--;
    if (*c->ok && !sim_verb_run(c->w, c->ev, c->err))
        *c->ok = false;
}

/* stop = settled: nothing left that could change what the oracle measured --
 * every timed event has run, no lookups, workload or churn is still
 * scheduling work, no client operation is in flight, and the ring and every
 * finger are right.  With no fault left to come, a right ring stays right, so
 * ring_stable_s and full_stable_s are those of the whole run (only the
 * events, virtual_s and the trace hash of the shorter run differ). */
static bool settled(sim_world *w)
{
    return w->p.stop_settled && w->timed_left == 0 && w->loads_running == 0 &&
           sim_model_pending(w->model) == 0 && w->oracle.full_ok;
}

static void check_now(sim_world *w)
{
    GString *why = g_string_new(NULL);
    if (!sim_oracle_check(&w->oracle, why)) {
        w->expectations_failed++;
        sim_world_fail(w, NULL, "safety violated: %s; replay: %s", why->str,
                       w->replay ? w->replay : "(qdbsim with the same scenario and seed)");
    }
    g_string_free(why, TRUE);
}

static void periodic_check(void *arg)
{
    sim_world *w = arg;
    /* Nodes that finished leaving go down now. */
    if (qdb_fixture_reap(w->fx))
        sim_oracle_membership_changed(&w->oracle);
    check_now(w);
    if (settled(w)) {
        w->settled = true;
        return;
    }
    qdb_time_us next = qdb_simnet_now(w->net) + w->p.check_period;
    if (next <= w->p.end)
        qdb_simnet_at(w->net, next, periodic_check, w);
}

/* Let client operations in flight finish (bounded by the client timeout). */
static void drain(sim_world *w)
{
    qdb_time_us limit = qdb_simnet_now(w->net) + w->p.client_timeout + QDB_US_PER_S;
    while (sim_model_pending(w->model) > 0 && qdb_simnet_now(w->net) < limit) {
        qdb_time_us t = qdb_simnet_next_time(w->net);
        if (t == UINT64_MAX || t > limit)
            break;
        qdb_simnet_step(w->net);
    }
}

bool sim_world_run(sim_world *w, qdb_scn_err *err)
{
    bool ok = true;
    GPtrArray *events = qdb_scenario_events_sorted(w->sc);
    guint first_end = events->len;
    for (guint i = 0; i < events->len; i++) {
        const qdb_scn_event *ev = events->pdata[i];
        if (ev->at_end) {
            first_end = i;
            break;
        }
        if (ev->at > w->p.end) {
            g_ptr_array_unref(events);
            return qdb_scn_error(err, &ev->at_pos, "event after the end of the run (end = %.3fs)",
                                 (double)w->p.end / 1e6);
        }
        event_call *c = sim_world_alloc(w, sizeof(event_call));
        *c = (event_call){.w = w, .ev = ev, .err = err, .ok = &ok};
        qdb_simnet_at(w->net, ev->at, fire_event, c);
        w->timed_left++;
    }
    qdb_simnet_at(w->net, 0, periodic_check, w);
    if (w->p.random_faults)
        sim_random_faults_start(w, 10 * QDB_US_PER_S);
    for (uint64_t steps = 1; ok; steps++) {
        qdb_time_us t = qdb_simnet_next_time(w->net);
        if (t == UINT64_MAX || t > w->p.end || w->settled)
            break;
        if (!qdb_simnet_step(w->net))
            break; /* a hash-log divergence stops the run */
        if (w->progress && (steps & 0xffff) == 0)
            w->progress(w, w->progress_arg);
        if ((steps & 0x3ff) == 0) {
            qdb_simnet_stats st;
            qdb_simnet_get_stats(w->net, &st);
            w->pending_sum += st.queued;
            w->pending_samples++;
        }
    }
    char *div = qdb_simnet_diverged(w->net);
    if (ok && !div) {
        if (!w->settled)
            qdb_simnet_run_until(w->net, w->p.end);
        check_now(w);
        drain(w);
        for (guint i = first_end; i < events->len && ok; i++) {
            ok = sim_verb_run(w, events->pdata[i], err);
            drain(w);
        }
    }
    g_free(div);
    g_ptr_array_unref(events);
    return ok;
}

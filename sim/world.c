/* The simulated world: parameters, node life cycle, clients, and the verbs
 * of a scenario.
 *
 * Sections
 *   parameters
 *   nodes: start, join, crash, restart, leave
 *   clients and the data model
 *   verbs
 *   the run
 *
 * The world never reads the wall clock or real randomness: time is the
 * network's virtual clock, and every choice comes from w->rng, seeded from
 * the scenario.  Tables keyed by hash are only looked up, never iterated;
 * walks go over arrays in creation order.
 */
#define G_LOG_DOMAIN "qdbsim"

#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "codec.h"
#include "record.h"
#include "storage/bdb.h"
#include "storage/memory.h"
#include "world.h"

#define SIM_CLIENT_BASE 0x64400000u /* 100.64.0.0: clients live apart from nodes */
#define SIM_CLIENT_PORT 40000

/* ---- parameters ------------------------------------------------------------ */

static const qdb_scn_token *param(sim_world *w, const char *key)
{
    return qdb_scenario_param(w->sc, key);
}

static bool param_uint(sim_world *w, const char *key, uint64_t def, uint64_t *out, GError **err)
{
    const qdb_scn_token *t = param(w, key);
    *out = def;
    return !t || qdb_scn_tok_uint(t, out, err);
}

static bool param_duration(sim_world *w, const char *key, qdb_time_us def, qdb_time_us *out,
                           GError **err)
{
    const qdb_scn_token *t = param(w, key);
    *out = def;
    return !t || qdb_scn_tok_duration(t, out, err);
}

static bool param_fraction(sim_world *w, const char *key, double *out, GError **err)
{
    const qdb_scn_token *t = param(w, key);
    *out = 0;
    return !t || qdb_scn_tok_fraction(t, out, err);
}

static bool read_params(sim_world *w, qdb_simnet_config *nc, GError **err)
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
    if (!param_uint(w, "succlist", 8, &v, err))
        return false;
    if (v < 1 || v > QDB_SUCCLIST_MAX)
        return qdb_scn_error(err, &param(w, "succlist")->pos, "succlist must be 1 to %d",
                             QDB_SUCCLIST_MAX);
    p->succlist = (unsigned)v;
    if (!param_duration(w, "stabilize_fast", QDB_US_PER_S, &p->stabilize_fast, err) ||
        !param_duration(w, "stabilize_slow", 30 * QDB_US_PER_S, &p->stabilize_slow, err) ||
        !param_duration(w, "rpc_timeout", 2 * QDB_US_PER_S, &p->rpc_timeout, err) ||
        !param_duration(w, "client_timeout", 60 * QDB_US_PER_S, &p->client_timeout, err) ||
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
    t = param(w, "storage");
    if (t) {
        static const char *const choices[] = {"memory", "bdb", NULL};
        int c;
        if (!qdb_scn_tok_choice(t, choices, &c, err))
            return false;
        p->storage_bdb = c == 1;
    }

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
    return true;
}

static bool check_unused(sim_world *w, GError **err)
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

/* ---- nodes ------------------------------------------------------------------- */

bool sim_node_up(const sim_node *sn)
{
    return sn->node != NULL;
}

static uint64_t rng_u64(GRand *r)
{
    return (uint64_t)g_rand_int(r) << 32 | g_rand_int(r);
}

static int random_live_node(sim_world *w, int except)
{
    oracle_rebuild_ring(w);
    guint n = w->ring->len;
    if (n == 0 || (n == 1 && (int)g_array_index(w->ring, unsigned, 0) == except))
        return -1;
    for (;;) {
        unsigned i = g_array_index(w->ring, unsigned, g_rand_int_range(w->rng, 0, (gint32)n));
        if ((int)i != except && w->nodes[i].node && !qdb_node_is_joining(w->nodes[i].node))
            return (int)i;
        /* a joining node is a poor entry point: pick again, but never loop
         * forever when all are joining */
        bool any = false;
        for (guint k = 0; k < n && !any; k++) {
            unsigned j = g_array_index(w->ring, unsigned, k);
            any = (int)j != except && !qdb_node_is_joining(w->nodes[j].node);
        }
        if (!any)
            return (int)i == except ? -1 : (int)i;
    }
}

/* storage = bdb: one Berkeley DB environment per node under a temporary
 * folder that lives as long as the world.  A crash with storage kept leaves
 * the store open (as the disk survives a process crash); with storage lost
 * its folder goes. */
static char *node_bdb_dir(sim_world *w, const sim_node *sn)
{
    char name[32];
    g_snprintf(name, sizeof name, "node-%u", sn->index);
    return g_build_filename(w->bdb_root, name, NULL);
}

static qdb_storage *node_storage(sim_world *w, sim_node *sn)
{
    if (!w->p.storage_bdb)
        return qdb_storage_memory_new();
    if (!w->bdb_root) {
        GError *e = NULL;
        w->bdb_root = g_dir_make_tmp("qdbsim-XXXXXX", &e); /* a folder name only: no behaviour */
        if (!w->bdb_root) {
            g_warning("storage=bdb: %s", e->message);
            g_error_free(e);
            return NULL;
        }
    }
    char *dir = node_bdb_dir(w, sn);
    char err[QDB_ERRMSG_SIZE];
    qdb_bdb_options opt = qdb_bdb_options_defaults();
    opt.cache_bytes = 256 * 1024; /* small worlds, many environments */
    qdb_storage *st = qdb_storage_bdb_open(dir, &opt, err);
    if (!st)
        g_warning("node %u: %s", sn->index, err);
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

/* Bring a node up: a fresh endpoint and node object; its storage is kept
 * from before when it crashed with storage=keep. */
static bool node_boot(sim_world *w, sim_node *sn, const qdb_addr *peers, size_t n_peers)
{
    sn->ep = qdb_simnet_attach(w->net, sn->peer.addr, NULL, NULL, rng_u64(w->rng));
    if (!sn->ep)
        return false;
    if (!sn->storage)
        sn->storage = node_storage(w, sn);
    if (!sn->storage) {
        qdb_simnet_detach(w->net, sn->ep);
        sn->ep = NULL;
        return false;
    }
    qdb_node_config cfg = {
        .self = sn->peer,
        .succlist_len = w->p.succlist,
        .stabilize_fast = w->p.stabilize_fast,
        .stabilize_slow = w->p.stabilize_slow,
        .rpc_timeout = w->p.rpc_timeout,
        .log_level = w->p.log_level,
    };
    char err[QDB_ERRMSG_SIZE];
    sn->node = qdb_node_new(&cfg, qdb_sim_endpoint_clock(sn->ep), qdb_sim_endpoint_transport(sn->ep),
                            qdb_sim_endpoint_random(sn->ep), sn->storage, err);
    if (!sn->node) {
        g_warning("node %u: %s", sn->index, err);
        qdb_simnet_detach(w->net, sn->ep);
        sn->ep = NULL;
        return false;
    }
    qdb_sim_endpoint_bind(sn->ep, &qdb_node_inbound, sn->node);
    sn->started = true;
    sn->leaving = false;
    qdb_node_start(sn->node, peers, n_peers);
    oracle_membership_changed(w);
    return true;
}

static void node_down(sim_world *w, sim_node *sn)
{
    qdb_node_free(sn->node);
    sn->node = NULL;
    qdb_simnet_detach(w->net, sn->ep);
    sn->ep = NULL;
    oracle_membership_changed(w);
}

static int excuse_key(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    sim_world *w = arg;
    char *alias = g_strndup((const char *)k + QDB_ID_BYTES, kl - QDB_ID_BYTES);
    sim_key *key = g_hash_table_lookup(w->model, alias);
    if (key)
        key->excused = true;
    g_free(alias);
    return 0;
}

static void node_crash(sim_world *w, sim_node *sn, bool keep_storage)
{
    if (!sim_node_up(sn))
        return;
    node_down(w, sn);
    if (!keep_storage) {
        /* What it held is gone with it: the oracle excuses those entries. */
        sn->storage->iterate(sn->storage, NULL, 0, NULL, 0, excuse_key, w);
        sn->storage->destroy(sn->storage);
        sn->storage = NULL;
        if (w->bdb_root) {
            char *dir = node_bdb_dir(w, sn);
            remove_tree(dir);
            g_free(dir);
        }
    }
}

/* ---- clients and the data model ----------------------------------------- */

static sim_client *client_new(sim_world *w, unsigned via)
{
    sim_client *c = g_new0(sim_client, 1);
    c->w = w;
    c->index = w->clients->len;
    c->addr = (qdb_addr){.ip = SIM_CLIENT_BASE + c->index + 1, .port = SIM_CLIENT_PORT};
    c->ep = qdb_simnet_attach(w->net, c->addr, NULL, NULL, rng_u64(w->rng));
    g_assert(c->ep);
    qdb_client_config cfg;
    qdb_client_config_defaults(&cfg);
    cfg.bootstrap = w->nodes[via].peer.addr;
    cfg.timeout = w->p.client_timeout;
    cfg.rpc_timeout = w->p.rpc_timeout;
    char err[QDB_ERRMSG_SIZE];
    c->core = qdb_client_core_new(&cfg, qdb_sim_endpoint_clock(c->ep),
                                  qdb_sim_endpoint_transport(c->ep),
                                  qdb_sim_endpoint_random(c->ep), err);
    g_assert(c->core);
    qdb_sim_endpoint_bind(c->ep, &qdb_client_core_inbound, c->core);
    g_ptr_array_add(w->clients, c);
    return c;
}

static void client_free(gpointer p)
{
    sim_client *c = p;
    qdb_client_core_free(c->core);
    g_free(c);
}

static sim_client *client_via(sim_world *w, unsigned via)
{
    sim_client *c = g_hash_table_lookup(w->via_clients, GUINT_TO_POINTER(via + 1));
    if (!c) {
        c = client_new(w, via);
        g_hash_table_insert(w->via_clients, GUINT_TO_POINTER(via + 1), c);
    }
    return c;
}

sim_key *model_key(sim_world *w, const char *alias)
{
    sim_key *k = g_hash_table_lookup(w->model, alias);
    if (!k) {
        k = g_new0(sim_key, 1);
        k->alias = g_strdup(alias);
        g_hash_table_insert(w->model, k->alias, k);
        g_ptr_array_add(w->model_keys, k);
    }
    return k;
}

char *model_value(const char *alias, uint64_t version, size_t size, size_t *len)
{
    char *head = g_strdup_printf("%s#%" G_GUINT64_FORMAT, alias, version);
    size_t hl = strlen(head);
    size_t n = MAX(size, hl);
    char *v = g_malloc(n + 1);
    memcpy(v, head, hl);
    memset(v + hl, '.', n - hl);
    v[n] = 0;
    g_free(head);
    *len = n;
    return v;
}

bool model_parse_value(const uint8_t *v, size_t len, const char *alias, uint64_t *version)
{
    size_t al = strlen(alias);
    if (len < al + 2 || memcmp(v, alias, al) != 0 || v[al] != '#')
        return false;
    uint64_t ver = 0;
    size_t i = al + 1;
    if (i >= len || v[i] < '0' || v[i] > '9')
        return false;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++)
        ver = ver * 10 + (uint64_t)(v[i] - '0');
    for (; i < len; i++)
        if (v[i] != '.')
            return false;
    *version = ver;
    return true;
}

/* One client operation the world is waiting for. */
typedef enum op_kind { OP_SCRIPTED, OP_WORKLOAD_WRITE, OP_WORKLOAD_READ, OP_LOOKUP } op_kind;

typedef struct sim_op {
    sim_world *w;
    op_kind kind;
    const qdb_scn_event *ev; /* scripted: for expectations */
    char *expect;            /* scripted get: content expected; NULL: none */
    int expect_status;       /* scripted: QDB_OK unless expect= says otherwise */
    sim_key *key;            /* workload */
    uint64_t version;        /* workload write: the version written */
    uint64_t min_version;    /* workload read: acknowledged when it was issued */
    qdb_id target;           /* lookup */
} sim_op;

static void op_free(sim_op *op)
{
    g_free(op->expect);
    g_free(op);
}

static void op_free_cb(gpointer p)
{
    op_free(p);
}

static void trace_result(sim_world *w, const qdb_client_result *r)
{
    uint8_t head[16];
    uint64_t id = GUINT64_TO_BE(r->op_id);
    memcpy(head, &id, 8);
    uint32_t st = GUINT32_TO_BE((uint32_t)r->status);
    memcpy(head + 8, &st, 4);
    uint32_t len = GUINT32_TO_BE((uint32_t)r->content_len);
    memcpy(head + 12, &len, 4);
    qdb_simnet_trace_add(w->net, head, sizeof head);
    if (r->content_len)
        qdb_simnet_trace_add(w->net, r->content, r->content_len);
}

static bool status_is_answer(int s)
{
    return s == QDB_OK || s == QDB_E_ALIAS_NOT_FOUND || s == QDB_E_ALIAS_ALREADY_EXISTS ||
           s == QDB_E_UNMATCHED_CONTENT;
}

static void op_done(void *arg, const qdb_client_result *r)
{
    sim_op *op = arg;
    sim_world *w = op->w;
    w->pending_ops--;
    g_hash_table_steal(w->pending, op); /* op_free below, not the table */
    trace_result(w, r);
    if (op->kind == OP_LOOKUP) {
        w->m.lookups++;
        if (r->status == QDB_OK) {
            guint h = r->hops;
            g_array_append_val(w->m.hops, h);
        } else if (r->status == QDB_E_TIMEOUT) {
            w->m.lookup_timeouts++;
        } else {
            w->m.lookup_failures++;
        }
        op_free(op);
        return;
    }
    w->m.requests++;
    w->m.wrong_node_retries += r->wrong_node;
    w->m.unstable_answers += r->unstable;
    if (!status_is_answer(r->status))
        w->m.failed_requests++;
    switch (op->kind) {
    case OP_WORKLOAD_WRITE:
        op->key->writes_inflight = false;
        if (r->status == QDB_OK) {
            w->m.acked_writes++;
            if (op->version > op->key->acked_version)
                op->key->acked_version = op->version;
            op->key->removed = false;
        }
        break;
    case OP_WORKLOAD_READ:
        if (r->status == QDB_OK) {
            uint64_t ver;
            if (!model_parse_value(r->content, r->content_len, op->key->alias, &ver) ||
                ver == 0 || ver > op->key->writes_issued) {
                w->m.bad_reads++;
                sim_world_fail(w, NULL, "read of %s returned a value never written", op->key->alias);
            } else if (ver < op->min_version && !op->key->excused) {
                w->m.stale_reads++;
            }
        } else if (r->status == QDB_E_ALIAS_NOT_FOUND && op->min_version && !op->key->excused) {
            w->m.missing_reads++;
        }
        break;
    case OP_SCRIPTED:
        if (op->expect && r->status == QDB_OK &&
            (r->content_len != strlen(op->expect) ||
             memcmp(r->content, op->expect, r->content_len) != 0)) {
            sim_world_fail(w, &op->ev->pos, "%s: got '%.*s', expected '%s'", op->ev->verb,
                           (int)MIN(r->content_len, 200), (const char *)r->content, op->expect);
        } else if (r->status != op->expect_status) {
            sim_world_fail(w, &op->ev->pos, "%s: %s (expected %s)", op->ev->verb,
                           qdb_strerror(r->status), qdb_strerror(op->expect_status));
        } else if (!w->quiet && r->status == QDB_OK && r->content) {
            fprintf(w->out, "%s: %s -> %.*s\n", qdb_scenario_source(w->sc), op->ev->verb,
                    (int)MIN(r->content_len, 200), (const char *)r->content);
        }
        break;
    default:
        break;
    }
    op_free(op);
}

static bool submit(sim_world *w, sim_client *c, int type, const char *alias, const uint8_t *content,
                   size_t len, sim_op *op)
{
    int rc = qdb_client_core_submit(c->core, type, (const uint8_t *)alias, strlen(alias), content,
                                    len, NULL, 0, op_done, op, NULL);
    if (rc != QDB_OK) {
        sim_world_fail(w, op->ev ? &op->ev->pos : NULL, "cannot submit: %s", qdb_strerror(rc));
        op_free(op);
        return false;
    }
    w->pending_ops++;
    g_hash_table_add(w->pending, op);
    return true;
}

/* ---- verbs ------------------------------------------------------------------ */

typedef struct verb_ctx {
    sim_world *w;
    const qdb_scn_event *ev;
    /* for verbs spread over time (join at a rate) */
    uint64_t next, hi;
    int via;
} verb_ctx;

/* A range of node indices: "A..B", "A", or "A..last" (up to the last node,
 * so one scenario serves every world size). */
static bool node_range(sim_world *w, const qdb_scn_token *t, uint64_t *lo, uint64_t *hi, GError **err)
{
    if (g_str_has_suffix(t->text, "..last") && !t->quoted) {
        qdb_scn_token head = *t;
        head.text = g_strndup(t->text, strlen(t->text) - strlen("..last"));
        bool ok = qdb_scn_tok_uint(&head, lo, err);
        g_free(head.text);
        if (!ok)
            return false;
        *hi = w->p.nodes - 1;
        if (*lo > *hi)
            return qdb_scn_error(err, &t->pos, "range starts after the last node (%u)", w->p.nodes - 1);
        return true;
    }
    if (!qdb_scn_tok_range(t, lo, hi, err))
        return false;
    if (*hi >= w->p.nodes)
        return qdb_scn_error(err, &t->pos, "node %" G_GUINT64_FORMAT " does not exist (nodes = %u)",
                             *hi, w->p.nodes);
    return true;
}

static bool via_node(sim_world *w, const qdb_scn_event *ev, int *via, GError **err)
{
    const qdb_scn_token *t = qdb_scn_event_kv(ev, "via");
    if (!t || strcmp(t->text, "random") == 0) {
        *via = random_live_node(w, -1);
        if (*via < 0)
            return qdb_scn_error(err, &ev->pos, "%s: no live node to go through", ev->verb);
        return true;
    }
    uint64_t lo, hi;
    if (!node_range(w, t, &lo, &hi, err))
        return false;
    *via = (int)lo;
    return true;
}

static void join_one(sim_world *w, unsigned i, int via)
{
    sim_node *sn = &w->nodes[i];
    if (sim_node_up(sn))
        return;
    if (via >= 0 && sim_node_up(&w->nodes[via])) {
        node_boot(w, sn, &w->nodes[via].peer.addr, 1);
        return;
    }
    /* Through random live nodes: up to three, as an operator gives qdbd
     * several --peer, so a join survives its first peer leaving. */
    qdb_addr peers[3];
    size_t k = 0;
    for (int tries = 0; tries < 8 && k < 3; tries++) {
        int v = random_live_node(w, (int)i);
        if (v < 0)
            break;
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            dup |= qdb_addr_eq(peers[j], w->nodes[v].peer.addr);
        if (!dup)
            peers[k++] = w->nodes[v].peer.addr;
    }
    node_boot(w, sn, k ? peers : NULL, k); /* nobody to join: start a ring */
}

static void join_next(void *arg)
{
    verb_ctx *c = arg;
    join_one(c->w, (unsigned)c->next, c->via);
    c->next++;
    if (c->next > c->hi)
        return;
    /* rate is stored in the event; recompute the interval */
    double rate = 0;
    qdb_scn_tok_rate(qdb_scn_event_kv(c->ev, "rate"), &rate, NULL);
    qdb_time_us gap = (qdb_time_us)llround(1e6 / rate);
    qdb_simnet_at(c->w->net, qdb_simnet_now(c->w->net) + MAX(gap, 1), join_next, c);
}

static unsigned workload_pick_client(sim_world *w)
{
    return (unsigned)g_rand_int_range(w->rng, 0, (gint32)w->workload_clients->len);
}

/* The gap to the next arrival of a Poisson process of `rate` per second:
 * exponential, drawn from the world's generator, at least 1 us. */
static qdb_time_us poisson_gap(sim_world *w, double rate)
{
    double u = g_rand_double(w->rng);
    qdb_time_us gap = (qdb_time_us)(-log(1.0 - u) * 1e6 / rate);
    return MAX(gap, 1);
}

typedef struct workload {
    sim_world *w;
    double puts, gets;
    uint64_t keys;
    uint64_t value_size;
    qdb_time_us until;
} workload;

static void workload_step(void *arg)
{
    workload *wl = arg;
    sim_world *w = wl->w;
    qdb_time_us now = qdb_simnet_now(w->net);
    if (now >= wl->until || w->workload_clients->len == 0)
        return;
    sim_client *c = w->workload_clients->pdata[workload_pick_client(w)];
    bool write = g_rand_double(w->rng) * (wl->puts + wl->gets) < wl->puts;
    char alias[32];
    g_snprintf(alias, sizeof alias, "w%" G_GUINT64_FORMAT,
               (uint64_t)g_rand_double_range(w->rng, 0, (double)wl->keys));
    sim_key *k = model_key(w, alias);
    sim_op *op = g_new0(sim_op, 1);
    op->w = w;
    op->key = k;
    if (write && !k->writes_inflight) {
        /* One write per key at a time, so versions are applied in order and
         * "the latest acknowledged version" is well defined. */
        op->kind = OP_WORKLOAD_WRITE;
        op->version = ++k->writes_issued;
        k->writes_inflight = true;
        size_t len;
        char *v = model_value(alias, op->version, wl->value_size, &len);
        if (!submit(w, c, QDB_MSG_UPDATE, alias, (const uint8_t *)v, len, op))
            k->writes_inflight = false;
        g_free(v);
    } else {
        op->kind = OP_WORKLOAD_READ;
        op->min_version = k->removed ? 0 : k->acked_version;
        submit(w, c, QDB_MSG_GET, alias, NULL, 0, op);
    }
    /* Poisson arrivals at the total rate. */
    qdb_simnet_at(w->net, now + poisson_gap(w, wl->puts + wl->gets), workload_step, wl);
}

typedef struct lookup_batch {
    sim_world *w;
    uint64_t left;
    double rate;
} lookup_batch;

static void lookup_step(void *arg)
{
    lookup_batch *b = arg;
    sim_world *w = b->w;
    if (b->left == 0 || w->lookup_pool->len == 0)
        return;
    b->left--;
    sim_client *c = w->lookup_pool->pdata[g_rand_int_range(w->rng, 0, (gint32)w->lookup_pool->len)];
    sim_op *op = g_new0(sim_op, 1);
    op->w = w;
    op->kind = OP_LOOKUP;
    for (unsigned i = 0; i < QDB_ID_BYTES; i += 4) {
        uint32_t r = g_rand_int(w->rng);
        memcpy(op->target.b + i, &r, 4);
    }
    if (qdb_client_core_lookup(c->core, &op->target, 0, op_done, op, NULL) == QDB_OK) {
        w->pending_ops++;
        g_hash_table_add(w->pending, op);
    } else
        op_free(op);
    qdb_simnet_at(w->net, qdb_simnet_now(w->net) + (qdb_time_us)(1e6 / b->rate), lookup_step, b);
}

/* Churn: joins and departures as a Poisson process.  Each event is a join
 * of a random down node (when there is one, with probability 1/2) or the
 * departure of a random live node: a graceful leave with probability
 * `leave`, else a crash with storage kept. */
typedef struct churn {
    sim_world *w;
    double rate, leave;
    qdb_time_us until;
} churn;

static int random_down_node(sim_world *w)
{
    oracle_rebuild_ring(w);
    unsigned down = w->p.nodes - w->ring->len;
    if (down == 0)
        return -1;
    unsigned k = (unsigned)g_rand_int_range(w->rng, 0, (gint32)down);
    for (unsigned i = 0; i < w->p.nodes; i++)
        if (!sim_node_up(&w->nodes[i]) && k-- == 0)
            return (int)i;
    return -1;
}

static void node_depart(sim_world *w, int i, bool graceful)
{
    sim_node *sn = &w->nodes[i];
    if (graceful) {
        sn->leaving = true;
        qdb_node_leave(sn->node);
    } else {
        node_crash(w, sn, true);
    }
}

static void churn_step(void *arg)
{
    churn *c = arg;
    sim_world *w = c->w;
    qdb_time_us now = qdb_simnet_now(w->net);
    if (now >= c->until)
        return;
    int down = random_down_node(w);
    if (down >= 0 && g_rand_boolean(w->rng)) {
        join_one(w, (unsigned)down, -1);
    } else {
        int victim = random_live_node(w, -1);
        oracle_rebuild_ring(w);
        if (victim >= 0 && w->ring->len > 1)
            node_depart(w, victim, g_rand_double(w->rng) < c->leave);
    }
    qdb_simnet_at(w->net, now + poisson_gap(w, c->rate), churn_step, c);
}

static void heal_cb(void *arg)
{
    sim_world *w = arg;
    qdb_simnet_heal_all(w->net);
    w->partitioned = false;
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
        return;
    }
    double r = g_rand_double(w->rng);
    oracle_rebuild_ring(w);
    if (r < 0.4 && w->ring->len > 2) {
        int v = random_live_node(w, -1);
        if (v >= 0)
            node_crash(w, &w->nodes[v], g_rand_double(w->rng) < 0.8);
    } else if (r < 0.7) {
        int d = random_down_node(w);
        if (d >= 0 && w->nodes[d].started)
            join_one(w, (unsigned)d, -1);
    } else if (w->ring->len > 3) {
        /* split the live nodes in two by ID order for 2 to 10 s */
        guint half = w->ring->len / 2;
        for (guint k = 0; k < w->ring->len; k++)
            qdb_simnet_set_group(w->net, w->nodes[g_array_index(w->ring, unsigned, k)].peer.addr,
                                 k < half ? 1 : 2);
        w->partitioned = true;
        qdb_time_us heal_at = now + (qdb_time_us)g_rand_int_range(w->rng, 2, 11) * QDB_US_PER_S;
        qdb_simnet_at(w->net, heal_at, heal_cb, w);
    }
    qdb_time_us gap = (qdb_time_us)g_rand_int_range(w->rng, 5, 21) * QDB_US_PER_S;
    qdb_simnet_at(w->net, now + gap, random_fault, w);
}

/* k new clients, each bootstrapped at a random live node. */
static void add_clients(sim_world *w, GPtrArray *to, uint64_t k)
{
    for (uint64_t i = 0; i < k; i++) {
        int via = random_live_node(w, -1);
        if (via < 0)
            break;
        g_ptr_array_add(to, client_new(w, (unsigned)via));
    }
}

static bool parse_op_expect(sim_world *w, const qdb_scn_event *ev, sim_op *op, bool is_get,
                            GError **err)
{
    const qdb_scn_token *t = qdb_scn_event_kv(ev, "expect");
    op->expect_status = QDB_OK;
    if (!t)
        return true;
    if (!t->quoted && strcmp(t->text, "not_found") == 0)
        op->expect_status = QDB_E_ALIAS_NOT_FOUND;
    else if (!t->quoted && strcmp(t->text, "already_exists") == 0)
        op->expect_status = QDB_E_ALIAS_ALREADY_EXISTS;
    else if (!t->quoted && strcmp(t->text, "ok") == 0)
        op->expect_status = QDB_OK;
    else if (is_get)
        op->expect = g_strdup(t->text);
    else
        return qdb_scn_error(err, &t->pos, "expect: ok, not_found or already_exists");
    return true;
}

static const char *const k_none[] = {NULL};

/* Runs one event now; false and *err on a semantic error in it. */
static bool run_event(sim_world *w, const qdb_scn_event *ev, GError **err)
{
    const char *v = ev->verb;
    qdb_scn_token *a0 = qdb_scn_event_arg(ev, 0);
    uint64_t lo = 0, hi = 0;

    if (strcmp(v, "start") == 0) {
        if (!qdb_scn_event_check(ev, 1, 1, k_none, err) || !node_range(w, a0, &lo, &hi, err))
            return false;
        for (uint64_t i = lo; i <= hi; i++)
            if (!sim_node_up(&w->nodes[i]))
                node_boot(w, &w->nodes[i], NULL, 0);
        return true;
    }
    if (strcmp(v, "join") == 0 || strcmp(v, "restart") == 0) {
        static const char *const keys[] = {"via", "rate", NULL};
        if (!qdb_scn_event_check(ev, 1, 1, keys, err) || !node_range(w, a0, &lo, &hi, err))
            return false;
        int via = -1;
        const qdb_scn_token *vt = qdb_scn_event_kv(ev, "via");
        if (vt && strcmp(vt->text, "random") != 0 && !via_node(w, ev, &via, err))
            return false;
        const qdb_scn_token *rt = qdb_scn_event_kv(ev, "rate");
        double rate = 0;
        if (rt && (!qdb_scn_tok_rate(rt, &rate, err)))
            return false;
        if (rt && rate <= 0)
            return qdb_scn_error(err, &rt->pos, "rate must be positive");
        if (!rt) {
            for (uint64_t i = lo; i <= hi; i++)
                join_one(w, (unsigned)i, via);
            return true;
        }
        verb_ctx *c = sim_world_alloc(w, sizeof(verb_ctx));
        *c = (verb_ctx){.w = w, .ev = ev, .next = lo, .hi = hi, .via = via};
        join_next(c);
        return true;
    }
    if (strcmp(v, "crash") == 0) {
        static const char *const keys[] = {"fraction", "storage", NULL};
        if (!qdb_scn_event_check(ev, 0, 1, keys, err))
            return false;
        bool keep = true;
        const qdb_scn_token *st = qdb_scn_event_kv(ev, "storage");
        if (st) {
            static const char *const ch[] = {"keep", "lose", NULL};
            int c;
            if (!qdb_scn_tok_choice(st, ch, &c, err))
                return false;
            keep = c == 0;
        }
        const qdb_scn_token *ft = qdb_scn_event_kv(ev, "fraction");
        if (a0 && ft)
            return qdb_scn_error(err, &ft->pos, "crash: give nodes or fraction=, not both");
        if (ft) {
            double f;
            if (!qdb_scn_tok_fraction(ft, &f, err))
                return false;
            oracle_rebuild_ring(w);
            GArray *live = g_array_copy(w->ring);
            unsigned k = (unsigned)llround(f * live->len);
            /* a seeded partial Fisher-Yates: the first k of a random order */
            for (unsigned i = 0; i < k; i++) {
                unsigned j = i + (unsigned)g_rand_int_range(w->rng, 0, (gint32)(live->len - i));
                unsigned t = g_array_index(live, unsigned, i);
                g_array_index(live, unsigned, i) = g_array_index(live, unsigned, j);
                g_array_index(live, unsigned, j) = t;
                node_crash(w, &w->nodes[g_array_index(live, unsigned, i)], keep);
            }
            g_array_free(live, TRUE);
            return true;
        }
        if (!a0)
            return qdb_scn_error(err, &ev->end_pos, "crash: which nodes? (a range or fraction=F)");
        if (!node_range(w, a0, &lo, &hi, err))
            return false;
        for (uint64_t i = lo; i <= hi; i++)
            node_crash(w, &w->nodes[i], keep);
        return true;
    }
    if (strcmp(v, "leave") == 0) {
        if (!qdb_scn_event_check(ev, 1, 1, k_none, err) || !node_range(w, a0, &lo, &hi, err))
            return false;
        for (uint64_t i = lo; i <= hi; i++) {
            sim_node *sn = &w->nodes[i];
            if (sim_node_up(sn)) {
                sn->leaving = true;
                qdb_node_leave(sn->node);
            }
        }
        return true;
    }
    if (strcmp(v, "partition") == 0) {
        if (!qdb_scn_event_check(ev, 2, -1, k_none, err))
            return false;
        bool oneway = strcmp(a0->text, "oneway") == 0;
        if (oneway) {
            qdb_scn_token *from = qdb_scn_event_arg(ev, 1), *arrow = qdb_scn_event_arg(ev, 2),
                          *to = qdb_scn_event_arg(ev, 3);
            if (!from || !arrow || !to || strcmp(arrow->text, "->") != 0 ||
                qdb_scn_event_n_args(ev) != 4)
                return qdb_scn_error(err, &ev->pos, "usage: partition oneway A..B -> C..D");
            uint64_t flo, fhi, tlo, thi;
            if (!node_range(w, from, &flo, &fhi, err) || !node_range(w, to, &tlo, &thi, err))
                return false;
            for (uint64_t i = flo; i <= fhi; i++)
                for (uint64_t j = tlo; j <= thi; j++)
                    qdb_simnet_block(w->net, w->nodes[i].peer.addr, w->nodes[j].peer.addr);
            w->partitioned = true;
            return true;
        }
        for (unsigned g = 0; g < qdb_scn_event_n_args(ev); g++) {
            if (!node_range(w, qdb_scn_event_arg(ev, g), &lo, &hi, err))
                return false;
            for (uint64_t i = lo; i <= hi; i++)
                qdb_simnet_set_group(w->net, w->nodes[i].peer.addr, (int)g + 1);
        }
        w->partitioned = true;
        return true;
    }
    if (strcmp(v, "heal") == 0) {
        if (!qdb_scn_event_check(ev, 0, 0, k_none, err))
            return false;
        qdb_simnet_heal_all(w->net);
        w->partitioned = false;
        oracle_membership_changed(w);
        return true;
    }
    if (strcmp(v, "set") == 0) {
        static const char *const keys[] = {"loss", "dup", "reorder", NULL};
        if (!qdb_scn_event_check(ev, 0, 0, keys, err))
            return false;
        double p;
        const qdb_scn_token *t;
        if ((t = qdb_scn_event_kv(ev, "loss"))) {
            if (!qdb_scn_tok_fraction(t, &p, err))
                return false;
            qdb_simnet_set_loss(w->net, p);
        }
        if ((t = qdb_scn_event_kv(ev, "dup"))) {
            if (!qdb_scn_tok_fraction(t, &p, err))
                return false;
            qdb_simnet_set_dup(w->net, p);
        }
        if ((t = qdb_scn_event_kv(ev, "reorder"))) {
            if (!qdb_scn_tok_fraction(t, &p, err))
                return false;
            qdb_simnet_set_reorder(w->net, p, w->p.reorder_window);
        }
        return true;
    }
    if (strcmp(v, "slow") == 0 || strcmp(v, "drift") == 0) {
        bool slow = v[0] == 's';
        static const char *const ks[] = {"factor", NULL}, *const kd[] = {"ppm", NULL};
        if (!qdb_scn_event_check(ev, 1, 1, slow ? ks : kd, err) || !node_range(w, a0, &lo, &hi, err))
            return false;
        const qdb_scn_token *t = qdb_scn_event_kv(ev, slow ? "factor" : "ppm");
        double x;
        if (!t)
            return qdb_scn_error(err, &ev->end_pos, "%s: missing %s=", v, slow ? "factor" : "ppm");
        if (!qdb_scn_tok_double(t, &x, err))
            return false;
        if (slow && x < 1)
            return qdb_scn_error(err, &t->pos, "factor must be at least 1");
        for (uint64_t i = lo; i <= hi; i++) {
            if (slow)
                qdb_simnet_set_slow(w->net, w->nodes[i].peer.addr, x);
            else
                qdb_simnet_set_drift(w->net, w->nodes[i].peer.addr, (int32_t)x);
        }
        return true;
    }
    if (strcmp(v, "put") == 0 || strcmp(v, "update") == 0 || strcmp(v, "get") == 0 ||
        strcmp(v, "remove") == 0) {
        static const char *const keys[] = {"via", "expect", NULL};
        bool has_content = v[0] == 'p' || v[0] == 'u';
        if (!qdb_scn_event_check(ev, has_content ? 2 : 1, has_content ? 2 : 1, keys, err))
            return false;
        int via;
        if (!via_node(w, ev, &via, err))
            return false;
        sim_op *op = g_new0(sim_op, 1);
        op->w = w;
        op->kind = OP_SCRIPTED;
        op->ev = ev;
        if (!parse_op_expect(w, ev, op, v[0] == 'g', err)) {
            op_free(op);
            return false;
        }
        int type = v[0] == 'p' ? QDB_MSG_PUT : v[0] == 'u' ? QDB_MSG_UPDATE
                 : v[0] == 'g' ? QDB_MSG_GET : QDB_MSG_REMOVE;
        const qdb_scn_token *content = has_content ? qdb_scn_event_arg(ev, 1) : NULL;
        submit(w, client_via(w, (unsigned)via), type, a0->text,
               content ? (const uint8_t *)content->text : NULL, content ? strlen(content->text) : 0,
               op);
        return true;
    }
    if (strcmp(v, "workload") == 0) {
        static const char *const keys[] = {"clients", "puts", "gets", "keys", "value_size", "until",
                                           NULL};
        if (!qdb_scn_event_check(ev, 0, 0, keys, err))
            return false;
        workload *wl = sim_world_alloc(w, sizeof(workload));
        wl->w = w;
        uint64_t clients = 4;
        wl->keys = 100;
        wl->value_size = 16;
        const qdb_scn_token *t;
        bool ok = true;
        if (ok && (t = qdb_scn_event_kv(ev, "clients")))
            ok = qdb_scn_tok_uint(t, &clients, err);
        if (ok && (t = qdb_scn_event_kv(ev, "puts")))
            ok = qdb_scn_tok_rate(t, &wl->puts, err);
        if (ok && (t = qdb_scn_event_kv(ev, "gets")))
            ok = qdb_scn_tok_rate(t, &wl->gets, err);
        if (ok && (t = qdb_scn_event_kv(ev, "keys")))
            ok = qdb_scn_tok_uint(t, &wl->keys, err);
        if (ok && (t = qdb_scn_event_kv(ev, "value_size")))
            ok = qdb_scn_tok_uint(t, &wl->value_size, err);
        wl->until = w->p.end;
        if (ok && (t = qdb_scn_event_kv(ev, "until")))
            ok = qdb_scn_tok_duration(t, &wl->until, err);
        if (ok && (wl->puts + wl->gets <= 0 || wl->keys == 0 || clients == 0 ||
                   wl->value_size > (1u << 20)))
            ok = qdb_scn_error(err, &ev->pos,
                               "workload: needs puts or gets > 0, keys > 0, clients > 0, "
                               "value_size <= 1 MiB");
        if (!ok)
            return false;
        add_clients(w, w->workload_clients, clients);
        workload_step(wl);
        return true;
    }
    if (strcmp(v, "lookups") == 0) {
        static const char *const keys[] = {"rate", NULL};
        if (!qdb_scn_event_check(ev, 1, 1, keys, err))
            return false;
        lookup_batch *b = sim_world_alloc(w, sizeof(lookup_batch));
        b->w = w;
        b->rate = 1000;
        const qdb_scn_token *t = qdb_scn_event_kv(ev, "rate");
        if (!qdb_scn_tok_uint(a0, &b->left, err) || (t && !qdb_scn_tok_rate(t, &b->rate, err)) ||
            (b->rate <= 0 && !qdb_scn_error(err, &t->pos, "rate must be positive")))
            return false;
        /* A fresh pool of clients at random live nodes: each lookup starts
         * at a random one of them, with the cache off. */
        g_ptr_array_set_size(w->lookup_pool, 0);
        add_clients(w, w->lookup_pool, 64);
        lookup_step(b);
        return true;
    }
    if (strcmp(v, "churn") == 0) {
        static const char *const keys[] = {"rate", "until", "leave", NULL};
        if (!qdb_scn_event_check(ev, 0, 0, keys, err))
            return false;
        churn *c = sim_world_alloc(w, sizeof(churn));
        c->w = w;
        c->leave = 0.5;
        c->until = w->p.end;
        const qdb_scn_token *rt = qdb_scn_event_kv(ev, "rate"), *ut = qdb_scn_event_kv(ev, "until"),
                            *lt = qdb_scn_event_kv(ev, "leave");
        bool ok = rt ? qdb_scn_tok_rate(rt, &c->rate, err)
                     : qdb_scn_error(err, &ev->end_pos, "churn: missing rate=R/s");
        if (ok && ut)
            ok = qdb_scn_tok_duration(ut, &c->until, err);
        if (ok && lt)
            ok = qdb_scn_tok_fraction(lt, &c->leave, err);
        if (ok && c->rate <= 0)
            ok = qdb_scn_error(err, &rt->pos, "rate must be positive");
        if (!ok)
            return false;
        churn_step(c);
        return true;
    }
    if (strcmp(v, "expect") == 0)
        return sim_expect(w, ev, err);
    return qdb_scn_error(err, &ev->pos, "unknown verb '%s'", v);
}

bool sim_expect_readable(sim_world *w, const qdb_scn_event *ev, const char *alias, GError **err)
{
    int via;
    if (!via_node(w, ev, &via, err))
        return false;
    sim_op *op = g_new0(sim_op, 1);
    op->w = w;
    op->kind = OP_SCRIPTED;
    op->ev = ev;
    op->expect_status = QDB_OK;
    return submit(w, client_via(w, (unsigned)via), QDB_MSG_GET, alias, NULL, 0, op);
}

/* ---- the run ------------------------------------------------------------------ */

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

sim_world *sim_world_new(qdb_scenario *sc, GError **err)
{
    sim_world *w = g_new0(sim_world, 1);
    w->sc = sc;
    w->out = stderr;
    qdb_simnet_config nc;
    if (!read_params(w, &nc, err)) {
        g_free(w->p.name);
        g_free(w);
        return NULL;
    }
    w->net = qdb_simnet_new(&nc);
    uint32_t seed[2] = {(uint32_t)(w->p.seed >> 32), (uint32_t)w->p.seed};
    w->rng = g_rand_new_with_seed_array(seed, 2);
    w->nodes = g_new0(sim_node, w->p.nodes);
    for (unsigned i = 0; i < w->p.nodes; i++) {
        sim_node *sn = &w->nodes[i];
        sn->index = i;
        sn->peer.addr = (qdb_addr){.ip = w->p.address_base.ip + i, .port = w->p.address_base.port};
        for (unsigned b = 0; b < QDB_ID_BYTES; b += 4) {
            /* Draw first: without optimisation GLib's byte-order macros
             * evaluate their argument four times (it drew four numbers in
             * the -O0 build and one at -O2, and the trace hashes differed). */
            uint32_t r = g_rand_int(w->rng);
            r = GUINT32_TO_BE(r);
            memcpy(sn->peer.id.b + b, &r, 4);
        }
    }
    /* Hand-placed IDs: id.I = HEX (Zave's counterexamples need them).
     * Looked up for every node, so only the ones given are marked used. */
    for (unsigned i = 0; i < w->p.nodes && qdb_scenario_n_params(sc) > 0; i++) {
        char key[32];
        g_snprintf(key, sizeof key, "id.%u", i);
        const qdb_scn_token *t = qdb_scenario_param(sc, key);
        if (!t)
            continue;
        bool ok = qdb_id_parse(&w->nodes[i].peer.id, t->text);
        if (!ok)
            qdb_scn_error(err, &t->pos, "bad ID '%s' (1 to 64 hex digits, or #decimal)", t->text);
        for (unsigned j = 0; ok && j < w->p.nodes; j++)
            if (j != i && qdb_id_eq(&w->nodes[j].peer.id, &w->nodes[i].peer.id))
                ok = qdb_scn_error(err, &t->pos, "nodes %u and %u have the same ID", i, j);
        if (!ok) {
            sim_world_free(w);
            return NULL;
        }
    }
    if (!check_unused(w, err)) {
        sim_world_free(w);
        return NULL;
    }
    w->clients = g_ptr_array_new_with_free_func(client_free);
    w->via_clients = g_hash_table_new(g_direct_hash, g_direct_equal);
    w->lookup_pool = g_ptr_array_new();
    w->workload_clients = g_ptr_array_new();
    w->model = g_hash_table_new(g_str_hash, g_str_equal);
    w->model_keys = g_ptr_array_new();
    w->ring = g_array_new(FALSE, FALSE, sizeof(unsigned));
    w->ring_dirty = true;
    w->failures = g_ptr_array_new_with_free_func(g_free);
    w->owned = g_ptr_array_new_with_free_func(g_free);
    w->pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, op_free_cb, NULL);
    w->m.hops = g_array_new(FALSE, FALSE, sizeof(guint));
    return w;
}

static void sim_key_free(gpointer p)
{
    sim_key *k = p;
    g_free(k->alias);
    g_free(k);
}

void sim_world_free(sim_world *w)
{
    if (!w)
        return;
    for (unsigned i = 0; i < w->p.nodes; i++) {
        sim_node *sn = &w->nodes[i];
        if (sn->node)
            qdb_node_free(sn->node);
        if (sn->storage)
            sn->storage->destroy(sn->storage);
    }
    g_ptr_array_free(w->clients, TRUE); /* their pending callbacks never fire now */
    g_hash_table_destroy(w->pending);   /* so the operations they held go here */
    qdb_simnet_free(w->net);
    g_hash_table_destroy(w->via_clients);
    g_ptr_array_free(w->lookup_pool, TRUE);
    g_ptr_array_free(w->workload_clients, TRUE);
    g_hash_table_destroy(w->model);
    g_ptr_array_set_free_func(w->model_keys, sim_key_free);
    g_ptr_array_free(w->model_keys, TRUE);
    g_array_free(w->ring, TRUE);
    g_ptr_array_free(w->failures, TRUE);
    g_ptr_array_free(w->owned, TRUE);
    g_array_free(w->m.hops, TRUE);
    g_rand_free(w->rng);
    if (w->bdb_root) {
        remove_tree(w->bdb_root);
        g_free(w->bdb_root);
    }
    g_free(w->nodes);
    g_free(w->p.name);
    g_free(w->replay);
    g_free(w);
}

typedef struct event_call {
    sim_world *w;
    const qdb_scn_event *ev;
    GError **err;
    bool *ok;
} event_call;

static void fire_event(void *arg)
{
    event_call *c = arg;
    if (*c->ok && !run_event(c->w, c->ev, c->err))
        *c->ok = false;
}

static void periodic_check(void *arg)
{
    sim_world *w = arg;
    /* Nodes that finished leaving go down now. */
    for (unsigned i = 0; i < w->p.nodes; i++) {
        sim_node *sn = &w->nodes[i];
        if (sn->leaving && sn->node && qdb_node_left(sn->node))
            node_down(w, sn);
    }
    oracle_check(w);
    qdb_time_us next = qdb_simnet_now(w->net) + w->p.check_period;
    if (next <= w->p.end)
        qdb_simnet_at(w->net, next, periodic_check, w);
}

/* Let client operations in flight finish (bounded by the client timeout). */
static void drain(sim_world *w)
{
    qdb_time_us limit = qdb_simnet_now(w->net) + w->p.client_timeout + QDB_US_PER_S;
    while (w->pending_ops > 0 && qdb_simnet_now(w->net) < limit) {
        qdb_time_us t = qdb_simnet_next_time(w->net);
        if (t == UINT64_MAX || t > limit)
            break;
        qdb_simnet_step(w->net);
    }
}

bool sim_world_run(sim_world *w, GError **err)
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
    }
    qdb_simnet_at(w->net, 0, periodic_check, w);
    if (w->p.random_faults)
        qdb_simnet_at(w->net, 10 * QDB_US_PER_S, random_fault, w);
    for (uint64_t steps = 1; ok; steps++) {
        qdb_time_us t = qdb_simnet_next_time(w->net);
        if (t == UINT64_MAX || t > w->p.end)
            break;
        if (!qdb_simnet_step(w->net))
            break; /* a hash-log divergence stops the run */
        if (w->progress && (steps & 0xffff) == 0)
            w->progress(w, w->progress_arg);
    }
    char *div = qdb_simnet_diverged(w->net);
    if (ok && !div) {
        qdb_simnet_run_until(w->net, w->p.end);
        oracle_check(w);
        drain(w);
        for (guint i = first_end; i < events->len && ok; i++) {
            ok = run_event(w, events->pdata[i], err);
            drain(w);
        }
    }
    g_free(div);
    g_ptr_array_unref(events);
    return ok;
}

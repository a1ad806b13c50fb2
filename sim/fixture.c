/* SPDX-License-Identifier: BSD-2-Clause */
/* The simulator as a library: nodes and clients over the simulated network.
 *
 * Sections
 *   creation
 *   nodes: start, crash, leave
 *   the live ring
 *   partitions
 *   clients
 *   running
 */
#define G_LOG_DOMAIN "qdbfixture"

#include <string.h>

#include "fixture.h"
#include "storage/memory.h"

#define FIXTURE_CLIENT_BASE 0x64400000u /* 100.64.0.0: clients live apart from nodes */
#define FIXTURE_CLIENT_PORT 40000

typedef struct fx_node {
    qdb_peer peer;            /* fixed for the node's life */
    qdb_node_config cfg;
    qdb_node *node;           /* NULL while down */
    qdb_host_endpoint *ep;
    qdb_storage *storage;     /* survives a crash that keeps it */
    bool started, leaving;
} fx_node;

typedef struct fx_client {
    qdb_client_core *core;
    qdb_host_endpoint *ep;
} fx_client;

struct qdb_fixture {
    qdb_host *host;
    qdb_simnet *net;          /* the simulated host's network; NULL on another host */
    GRand *rng;
    qdb_fixture_storage storage;
    GArray *nodes;            /* fx_node, by index */
    GArray *clients;          /* fx_client, by index */
    GHashTable *by_addr;      /* qdb_addr_key -> index + 1: looked up only */
    GArray *ring;             /* unsigned: live nodes in ID order */
    bool ring_dirty;
    bool partitioned;
    char errmsg[QDB_ERRMSG_SIZE];
};

/* ---- creation ------------------------------------------------------------------ */

qdb_fixture *qdb_fixture_new_on(qdb_host *host, uint64_t seed, const qdb_fixture_storage *storage)
{
    g_assert(host->version == 1);
    qdb_fixture *f = g_new0(qdb_fixture, 1);
    f->host = host;
    uint32_t words[2] = {(uint32_t)(seed >> 32), (uint32_t)seed};
    f->rng = g_rand_new_with_seed_array(words, 2);
    if (storage)
        f->storage = *storage;
    f->nodes = g_array_new(FALSE, TRUE, sizeof(fx_node));
    f->clients = g_array_new(FALSE, TRUE, sizeof(fx_client));
    f->by_addr = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    f->ring = g_array_new(FALSE, FALSE, sizeof(unsigned));
    f->ring_dirty = true;
    return f;
}

qdb_fixture *qdb_fixture_new(const qdb_simnet_config *net_cfg, const qdb_fixture_storage *storage)
{
    qdb_simnet_config c;
    if (net_cfg)
        c = *net_cfg;
    else
        qdb_simnet_config_defaults(&c);
    qdb_simnet *net = qdb_simnet_new(&c);
    qdb_fixture *f = qdb_fixture_new_on(qdb_host_sim_new(net), c.seed, storage);
    f->net = net;
    return f;
}

void qdb_fixture_free(qdb_fixture *f)
{
    if (!f)
        return;
    for (guint i = 0; i < f->nodes->len; i++) {
        fx_node *x = &g_array_index(f->nodes, fx_node, i);
        qdb_node_free(x->node);
        if (x->storage)
            x->storage->destroy(x->storage);
    }
    for (guint i = 0; i < f->clients->len; i++)
        qdb_client_core_free(g_array_index(f->clients, fx_client, i).core);
    f->host->destroy(f->host); /* every endpoint with it */
    qdb_simnet_free(f->net);
    g_array_free(f->nodes, TRUE);
    g_array_free(f->clients, TRUE);
    g_hash_table_destroy(f->by_addr);
    g_array_free(f->ring, TRUE);
    g_rand_free(f->rng);
    g_free(f);
}

qdb_host *qdb_fixture_host(qdb_fixture *f)
{
    return f->host;
}

qdb_simnet *qdb_fixture_net(qdb_fixture *f)
{
    return f->net;
}

GRand *qdb_fixture_rng(qdb_fixture *f)
{
    return f->rng;
}

const char *qdb_fixture_errmsg(const qdb_fixture *f)
{
    return f->errmsg;
}

static uint64_t draw_seed(qdb_fixture *f)
{
    return qdb_rand_u64(f->rng);
}

/* ---- nodes --------------------------------------------------------------------- */

static fx_node *node_at(const qdb_fixture *f, unsigned i)
{
    g_assert(i < f->nodes->len);
    return &g_array_index(f->nodes, fx_node, i);
}

unsigned qdb_fixture_add_node(qdb_fixture *f, const qdb_peer *peer, const qdb_node_config *cfg)
{
    fx_node x = {.peer = *peer};
    if (cfg)
        x.cfg = *cfg;
    x.cfg.self = *peer;
    g_array_append_val(f->nodes, x);
    gint64 *key = g_new(gint64, 1);
    *key = (gint64)qdb_addr_key(peer->addr);
    g_hash_table_insert(f->by_addr, key, GUINT_TO_POINTER(f->nodes->len));
    return f->nodes->len - 1;
}

unsigned qdb_fixture_n_nodes(const qdb_fixture *f)
{
    return f->nodes->len;
}

static qdb_storage *open_storage(qdb_fixture *f, unsigned i)
{
    if (!f->storage.open)
        return qdb_storage_memory_new();
    return f->storage.open(f->storage.arg, i, f->errmsg);
}

/* The order below is part of the trace: the endpoint's seed is drawn first,
 * then the store opened, then the node started. */
bool qdb_fixture_start(qdb_fixture *f, unsigned i, const qdb_addr *peers, size_t n_peers)
{
    fx_node *x = node_at(f, i);
    if (x->node)
        return false;
    qdb_host *h = f->host;
    x->ep = h->attach(h, x->peer.addr, true, draw_seed(f));
    if (!x->ep) {
        g_strlcpy(f->errmsg, h->errmsg, sizeof f->errmsg);
        return false;
    }
    if (!x->storage)
        x->storage = open_storage(f, i);
    qdb_host_seams e = h->seams(x->ep);
    if (x->storage)
        x->node = qdb_node_new(&x->cfg, e.clock, e.transport, e.random, x->storage, f->errmsg);
    if (!x->node) {
        h->detach(h, x->ep);
        x->ep = NULL;
        return false;
    }
    h->bind(h, x->ep, &qdb_node_inbound, x->node);
    x->started = true;
    x->leaving = false;
    qdb_node_start(x->node, peers, n_peers);
    f->ring_dirty = true;
    return true;
}

static void node_down(qdb_fixture *f, fx_node *x)
{
    qdb_node_free(x->node);
    x->node = NULL;
    f->host->detach(f->host, x->ep);
    x->ep = NULL;
    f->ring_dirty = true;
}

void qdb_fixture_crash(qdb_fixture *f, unsigned i, bool keep_storage)
{
    fx_node *x = node_at(f, i);
    if (!x->node)
        return;
    node_down(f, x);
    if (keep_storage)
        return;
    if (f->storage.lose)
        f->storage.lose(f->storage.arg, i, x->storage);
    else
        x->storage->destroy(x->storage);
    x->storage = NULL;
}

void qdb_fixture_leave(qdb_fixture *f, unsigned i)
{
    fx_node *x = node_at(f, i);
    g_assert(x->node);
    x->leaving = true;
    qdb_node_leave(x->node);
}

unsigned qdb_fixture_reap(qdb_fixture *f)
{
    unsigned k = 0;
    for (guint i = 0; i < f->nodes->len; i++) {
        fx_node *x = node_at(f, i);
        if (x->leaving && x->node && qdb_node_left(x->node) &&
            qdb_host_pending(f->host, x->ep) == 0) {
            node_down(f, x);
            k++;
        }
    }
    return k;
}

bool qdb_fixture_up(const qdb_fixture *f, unsigned i)
{
    return node_at(f, i)->node != NULL;
}

bool qdb_fixture_started(const qdb_fixture *f, unsigned i)
{
    return node_at(f, i)->started;
}

bool qdb_fixture_leaving(const qdb_fixture *f, unsigned i)
{
    return node_at(f, i)->leaving;
}

const qdb_peer *qdb_fixture_peer(const qdb_fixture *f, unsigned i)
{
    return &node_at(f, i)->peer;
}

int qdb_fixture_index_of(const qdb_fixture *f, qdb_addr addr)
{
    gint64 key = (gint64)qdb_addr_key(addr);
    return (int)GPOINTER_TO_UINT(g_hash_table_lookup(f->by_addr, &key)) - 1;
}

qdb_node *qdb_fixture_node(const qdb_fixture *f, unsigned i)
{
    return node_at(f, i)->node;
}

qdb_host_endpoint *qdb_fixture_endpoint(const qdb_fixture *f, unsigned i)
{
    return node_at(f, i)->ep;
}

qdb_storage *qdb_fixture_storage_of(const qdb_fixture *f, unsigned i)
{
    return node_at(f, i)->storage;
}

/* ---- the live ring --------------------------------------------------------------- */

static gint by_id(gconstpointer a, gconstpointer b, gpointer data)
{
    const qdb_fixture *f = data;
    return qdb_id_cmp(&node_at(f, *(const unsigned *)a)->peer.id,
                      &node_at(f, *(const unsigned *)b)->peer.id);
}

const GArray *qdb_fixture_ring(qdb_fixture *f)
{
    if (!f->ring_dirty)
        return f->ring;
    g_array_set_size(f->ring, 0);
    for (unsigned i = 0; i < f->nodes->len; i++)
        if (node_at(f, i)->node)
            g_array_append_val(f->ring, i);
    g_array_sort_with_data(f->ring, by_id, f); /* IDs are distinct: the order is total */
    f->ring_dirty = false;
    return f->ring;
}

int qdb_fixture_owner(qdb_fixture *f, const qdb_id *id)
{
    const GArray *ring = qdb_fixture_ring(f);
    guint lo = 0, hi = ring->len;
    if (hi == 0)
        return -1;
    while (lo < hi) {
        guint mid = (lo + hi) / 2;
        if (qdb_id_cmp(&node_at(f, g_array_index(ring, unsigned, mid))->peer.id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int)g_array_index(ring, unsigned, lo == ring->len ? 0 : lo);
}

/* ---- partitions --------------------------------------------------------------------- */

/* Partitions are the simulated network's: there is no such thing on
 * another host (a test that needs one runs only on the simulated host). */
static qdb_simnet *partitionable(const qdb_fixture *f)
{
    g_assert(f->net);
    return f->net;
}

void qdb_fixture_set_group(qdb_fixture *f, unsigned i, int group)
{
    qdb_simnet_set_group(partitionable(f), node_at(f, i)->peer.addr, group);
    f->partitioned |= group != 0;
}

void qdb_fixture_block(qdb_fixture *f, unsigned i, unsigned j)
{
    qdb_simnet_block(partitionable(f), node_at(f, i)->peer.addr, node_at(f, j)->peer.addr);
    f->partitioned = true;
}

void qdb_fixture_heal(qdb_fixture *f)
{
    qdb_simnet_heal_all(partitionable(f));
    f->partitioned = false;
}

bool qdb_fixture_partitioned(const qdb_fixture *f)
{
    return f->partitioned;
}

/* ---- clients ------------------------------------------------------------------------- */

unsigned qdb_fixture_add_client(qdb_fixture *f, const qdb_client_config *cfg)
{
    fx_client c;
    unsigned k = f->clients->len;
    qdb_addr addr = {.ip = FIXTURE_CLIENT_BASE + k + 1, .port = FIXTURE_CLIENT_PORT};
    qdb_host *h = f->host;
    c.ep = h->attach(h, addr, false, draw_seed(f));
    if (!c.ep)
        g_error("client %u: %s", k, h->errmsg);
    qdb_client_config def;
    if (!cfg) {
        qdb_client_config_defaults(&def);
        cfg = &def;
    }
    char err[QDB_ERRMSG_SIZE];
    qdb_host_seams e = h->seams(c.ep);
    c.core = qdb_client_core_new(cfg, e.clock, e.transport, e.random, err);
    if (!c.core)
        g_error("client %u: %s", k, err); /* a bad configuration is the caller's bug */
    h->bind(h, c.ep, &qdb_client_core_inbound, c.core);
    g_array_append_val(f->clients, c);
    return k;
}

qdb_client_core *qdb_fixture_client(const qdb_fixture *f, unsigned c)
{
    g_assert(c < f->clients->len);
    return g_array_index(f->clients, fx_client, c).core;
}

qdb_host_endpoint *qdb_fixture_client_endpoint(const qdb_fixture *f, unsigned c)
{
    g_assert(c < f->clients->len);
    return g_array_index(f->clients, fx_client, c).ep;
}

/* ---- running ----------------------------------------------------------------------------- */

qdb_time_us qdb_fixture_now(const qdb_fixture *f)
{
    return f->host->now(f->host);
}

bool qdb_fixture_step(qdb_fixture *f)
{
    return f->host->step(f->host);
}

void qdb_fixture_run_until(qdb_fixture *f, qdb_time_us t)
{
    f->host->run_until(f->host, t);
}

typedef struct until_ctx {
    qdb_fixture *f;
    bool (*done)(qdb_fixture *f, void *arg);
    void *arg;
} until_ctx;

static bool until_done(void *arg)
{
    until_ctx *u = arg;
    return u->done(u->f, u->arg);
}

bool qdb_fixture_step_until(qdb_fixture *f, bool (*done)(qdb_fixture *f, void *arg), void *arg,
                            qdb_time_us limit)
{
    until_ctx u = {f, done, arg};
    return f->host->step_until(f->host, until_done, &u, limit);
}

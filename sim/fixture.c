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

#include "codec.h" /* QDB_SUCCLIST_MAX */
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
    bool in_ring;             /* in the fixture's ring array (see ring_sync) */
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
    GArray *ring;             /* unsigned: live nodes in ID order, once synced */
    GArray *ring_adds;        /* unsigned: started since the last sync */
    bool ring_removed;        /* some node went down since the last sync */
    bool addr_reused;         /* a node was added at an earlier node's address */
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
    f->ring_adds = g_array_new(FALSE, FALSE, sizeof(unsigned));
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
    g_array_free(f->ring_adds, TRUE);
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
    if (!g_hash_table_insert(f->by_addr, key, GUINT_TO_POINTER(f->nodes->len)))
        f->addr_reused = true;
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

/* Everything a start does before the node is told to start.  The order is
 * part of the trace: the endpoint's seed is drawn first, then the store
 * opened, then the node created. */
static bool node_up(qdb_fixture *f, fx_node *x, unsigned i)
{
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
    g_array_append_val(f->ring_adds, i);
    return true;
}

bool qdb_fixture_start(qdb_fixture *f, unsigned i, const qdb_addr *peers, size_t n_peers)
{
    fx_node *x = node_at(f, i);
    if (x->node || !node_up(f, x, i))
        return false;
    qdb_node_start(x->node, peers, n_peers);
    return true;
}

static void node_down(qdb_fixture *f, fx_node *x)
{
    qdb_node_free(x->node);
    x->node = NULL;
    f->host->detach(f->host, x->ep);
    x->ep = NULL;
    f->ring_removed = true;
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

int qdb_fixture_index_near(const qdb_fixture *f, qdb_addr addr, unsigned guess)
{
    if (!f->addr_reused && guess < f->nodes->len && qdb_addr_eq(node_at(f, guess)->peer.addr, addr))
        return (int)guess; /* every address names one node: the table would say so too */
    return qdb_fixture_index_of(f, addr);
}

void qdb_fixture_prefetch(const qdb_fixture *f, unsigned i, int pass)
{
    const fx_node *x = node_at(f, i);
    if (pass == 0) {
        __builtin_prefetch(&x->peer);
        __builtin_prefetch(&x->node);
    } else if (x->node) {
        qdb_node_prefetch_ring(x->node, pass - 1);
    }
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

/* Bring the sorted array up to date with the starts and crashes since the
 * last call.  The array holds a set (distinct IDs, so one order), so how it
 * is brought up to date cannot reach behaviour; it only has to be cheap:
 * the world asks for a random live node at every join, and rebuilding by a
 * full sort each time cost O(N^2 log N) for N joins (a quarter of qdbsim's
 * time at 10,000 nodes).  Now: removals are one filtering pass; a few starts
 * are inserted in place (binary search and a move of the tail); many at
 * once (a whole world starting) are appended and sorted once. */
/* The first position of the (synced) ring whose ID is >= id; len if none. */
static guint ring_lower_bound(const qdb_fixture *f, const qdb_id *id)
{
    guint lo = 0, hi = f->ring->len;
    while (lo < hi) {
        guint mid = (lo + hi) / 2;
        if (qdb_id_cmp(&node_at(f, g_array_index(f->ring, unsigned, mid))->peer.id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void ring_sync(qdb_fixture *f)
{
    if (f->ring_removed) {
        guint k = 0;
        for (guint j = 0; j < f->ring->len; j++) {
            unsigned i = g_array_index(f->ring, unsigned, j);
            fx_node *x = node_at(f, i);
            if (x->node)
                g_array_index(f->ring, unsigned, k++) = i;
            else
                x->in_ring = false;
        }
        g_array_set_size(f->ring, k);
        f->ring_removed = false;
    }
    guint adds = f->ring_adds->len;
    bool bulk = adds > 64;
    for (guint a = 0; a < adds; a++) {
        unsigned i = g_array_index(f->ring_adds, unsigned, a);
        fx_node *x = node_at(f, i);
        if (!x->node || x->in_ring) /* crashed again, or restarted: counted once */
            continue;
        x->in_ring = true;
        if (bulk) {
            g_array_append_val(f->ring, i);
            continue;
        }
        g_array_insert_val(f->ring, ring_lower_bound(f, &x->peer.id), i);
    }
    if (bulk)
        g_array_sort_with_data(f->ring, by_id, f); /* IDs are distinct: the order is total */
    g_array_set_size(f->ring_adds, 0);
}

const GArray *qdb_fixture_ring(qdb_fixture *f)
{
    if (f->ring_removed || f->ring_adds->len)
        ring_sync(f);
    return f->ring;
}

int qdb_fixture_owner(qdb_fixture *f, const qdb_id *id)
{
    const GArray *ring = qdb_fixture_ring(f);
    if (ring->len == 0)
        return -1;
    guint lo = ring_lower_bound(f, id);
    return (int)g_array_index(ring, unsigned, lo == ring->len ? 0 : lo);
}

typedef struct warm_ctx {
    qdb_fixture *f;
    const qdb_peer *self, *succ;
} warm_ctx;

/* Most fingers of a big ring fall before the successor (at 10^6 nodes, 44
 * of the 64 kept): answered without a search. */
static void warm_owner(void *arg, const qdb_id *id, qdb_peer *out, qdb_peer *before)
{
    warm_ctx *c = arg;
    if (qdb_id_in_half(id, &c->self->id, &c->succ->id)) {
        *out = *c->succ;
        *before = *c->self;
        return;
    }
    const GArray *ring = qdb_fixture_ring(c->f);
    guint len = ring->len, lo = ring_lower_bound(c->f, id) % len;
    *out = node_at(c->f, g_array_index(ring, unsigned, lo))->peer;
    *before = node_at(c->f, g_array_index(ring, unsigned, (lo + len - 1) % len))->peer;
}

/* Up first, all of them, so the ring they are placed in holds them all;
 * then each is told its place.  O(k * 64 log N) for the fingers. */
unsigned qdb_fixture_start_warm(qdb_fixture *f, unsigned lo, unsigned hi)
{
    GArray *fresh = g_array_new(FALSE, FALSE, sizeof(unsigned));
    for (unsigned i = lo; i <= hi; i++) {
        fx_node *x = node_at(f, i);
        if (!x->node && node_up(f, x, i))
            g_array_append_val(fresh, i);
    }
    const GArray *ring = qdb_fixture_ring(f);
    guint n = ring->len;
    unsigned k = MIN(QDB_SUCCLIST_MAX, n > 1 ? n - 1 : 1);
    qdb_peer list[QDB_SUCCLIST_MAX];
    for (guint a = 0; a < fresh->len; a++) {
        fx_node *x = node_at(f, g_array_index(fresh, unsigned, a));
        guint pos = ring_lower_bound(f, &x->peer.id);
        for (unsigned j = 0; j < k; j++)
            list[j] = node_at(f, g_array_index(ring, unsigned, (pos + 1 + j) % n))->peer;
        const qdb_peer *pred = &node_at(f, g_array_index(ring, unsigned, (pos + n - 1) % n))->peer;
        warm_ctx c = {.f = f, .self = &x->peer, .succ = &list[0]};
        qdb_node_start_warm(x->node, pred, list, k, warm_owner, &c);
    }
    unsigned started = fresh->len;
    g_array_free(fresh, TRUE);
    return started;
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

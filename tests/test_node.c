/* The node core over the simulated network: ring formation, routing,
 * ownership answers, at-most-once replies, hand-over on join and on leave,
 * failure repair, and Zave's "adopt only a live successor".
 *
 * Node i gets ID (i+1) * 2^252, so ring order is index order and every
 * expected successor is known in advance.  A raw client endpoint speaks the
 * wire protocol directly, so the tests see exactly what a node answers. */
#include <string.h>

#include "codec.h"
#include "node.h"
#include "record.h"
#include "status.h"
#include "storage/memory.h"
#include "testutil.h"
#include "transport-sim/simnet.h"

#define MAXN 16
#define S QDB_US_PER_S

typedef struct hnode {
    qdb_node *node;
    qdb_sim_endpoint *ep;
    qdb_storage *st;
    qdb_peer peer;
} hnode;

typedef struct harness {
    qdb_simnet *net;
    hnode n[MAXN];
    qdb_sim_endpoint *client;
    GPtrArray *replies; /* GBytes frames the raw client received */
    uint32_t seq;
    bool allow_stop; /* the next node started obeys STOP */
} harness;

static void c_recv(void *o, qdb_addr src, const uint8_t *f, size_t len)
{
    g_ptr_array_add(((harness *)o)->replies, g_bytes_new(f, len));
}
static void c_none(void *o, qdb_addr a) {}
static void c_tick(void *o) {}
static const qdb_inbound client_ops = {c_recv, c_none, c_tick};

static harness *h_new(void)
{
    harness *h = g_new0(harness, 1);
    qdb_simnet_config c;
    qdb_simnet_config_defaults(&c);
    c.seed = 5;
    c.latency_mean = 10 * QDB_US_PER_MS;
    h->net = qdb_simnet_new(&c);
    for (int i = 0; i < MAXN; i++) {
        memset(&h->n[i].peer.id, 0, sizeof(qdb_id));
        h->n[i].peer.id.b[0] = (uint8_t)((i + 1) << 4);
        h->n[i].peer.addr = (qdb_addr){.ip = 0x0a000001u + (uint32_t)i, .port = 2836};
    }
    h->replies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    h->client = qdb_simnet_attach(h->net, (qdb_addr){.ip = 0x64400001u, .port = 40000}, &client_ops,
                                  h, 99);
    return h;
}

/* Bring node i up; join through node `via` (or create a ring with via < 0). */
static void h_start(harness *h, int i, int via)
{
    hnode *x = &h->n[i];
    x->ep = qdb_simnet_attach(h->net, x->peer.addr, NULL, NULL, (uint64_t)i + 1);
    if (!x->st)
        x->st = qdb_storage_memory_new();
    qdb_node_config cfg = {.self = x->peer, .succlist_len = 3, .allow_remote_stop = h->allow_stop};
    char err[QDB_ERRMSG_SIZE];
    x->node = qdb_node_new(&cfg, qdb_sim_endpoint_clock(x->ep), qdb_sim_endpoint_transport(x->ep),
                           qdb_sim_endpoint_random(x->ep), x->st, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x->node);
    qdb_sim_endpoint_bind(x->ep, &qdb_node_inbound, x->node);
    qdb_addr peer = via >= 0 ? h->n[via].peer.addr : (qdb_addr){0};
    qdb_node_start(x->node, via >= 0 ? &peer : NULL, via >= 0 ? 1 : 0);
}

static void h_crash(harness *h, int i)
{
    qdb_node_free(h->n[i].node);
    h->n[i].node = NULL;
    qdb_simnet_detach(h->net, h->n[i].ep);
    h->n[i].ep = NULL;
}

static void h_free(harness *h)
{
    for (int i = 0; i < MAXN; i++) {
        qdb_node_free(h->n[i].node);
        if (h->n[i].st)
            h->n[i].st->destroy(h->n[i].st);
    }
    qdb_simnet_free(h->net);
    g_ptr_array_free(h->replies, TRUE);
    g_free(h);
}

static void h_run(harness *h, qdb_time_us until)
{
    qdb_simnet_run_until(h->net, until);
}

/* Are the live nodes in `live` (ascending indices) one correct ring? */
static bool ring_ok(harness *h, const int *live, int k)
{
    for (int j = 0; j < k; j++) {
        qdb_node *n = h->n[live[j]].node;
        const qdb_peer *s = qdb_node_successor(n), *p = qdb_node_predecessor(n);
        if (!s || !p || !qdb_peer_eq(s, &h->n[live[(j + 1) % k]].peer) ||
            !qdb_peer_eq(p, &h->n[live[(j + k - 1) % k]].peer))
            return false;
    }
    return true;
}

/* ---- the raw client ---------------------------------------------------- */

static void send_msg(harness *h, int to, const qdb_msg *m)
{
    GByteArray *b = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(m, b), QDB_OK);
    qdb_transport *t = qdb_sim_endpoint_transport(h->client);
    t->send(t, h->n[to].peer.addr, b->data, b->len);
    g_byte_array_free(b, TRUE);
}

static void hello(harness *h, int to)
{
    qdb_msg m = {.type = QDB_MSG_HELLO, .seq = 7};
    send_msg(h, to, &m);
}

/* Send a request and return the status of its reply (and a copy of the
 * payload in *payload when asked). */
static int request(harness *h, int to, int type, const char *alias, const char *content,
                   GBytes **payload)
{
    qdb_msg m = {.type = type, .seq = ++h->seq, .alias = (const uint8_t *)alias,
                 .alias_len = strlen(alias)};
    if (content) {
        m.content = (const uint8_t *)content;
        m.content_len = strlen(content);
    }
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, to, &m);
    h_run(h, qdb_simnet_now(h->net) + 2 * S);
    for (guint i = 0; i < h->replies->len; i++) {
        gsize len;
        const uint8_t *f = g_bytes_get_data(h->replies->pdata[i], &len);
        qdb_msg r;
        if (qdb_msg_decode(f, len, &r) == QDB_OK && r.type == QDB_MSG_REPLY && r.seq == m.seq) {
            if (payload)
                *payload = g_bytes_new(r.content, r.content_len);
            return r.status;
        }
    }
    return -1;
}

/* Send an operator's message (STATUS, STOP) and return a copy of the frame
 * of type `want` that answers it, or NULL. */
static GBytes *ask(harness *h, int to, qdb_msg *m, int want)
{
    m->rpc = 4242;
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, to, m);
    h_run(h, qdb_simnet_now(h->net) + S);
    for (guint i = 0; i < h->replies->len; i++) {
        gsize len;
        const uint8_t *f = g_bytes_get_data(h->replies->pdata[i], &len);
        qdb_msg r;
        if (qdb_msg_decode(f, len, &r) == QDB_OK && r.type == want && r.rpc == m->rpc)
            return g_bytes_ref(h->replies->pdata[i]);
    }
    return NULL;
}

static int owner_of(harness *h, const char *alias, const int *live, int k)
{
    qdb_id id;
    qdb_id_hash(&id, alias, strlen(alias));
    for (int j = 0; j < k; j++)
        if (qdb_id_cmp(&id, &h->n[live[j]].peer.id) <= 0)
            return live[j];
    return live[0];
}

/* ---- tests ------------------------------------------------------------- */

static void test_one_node(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_run(h, 5 * S);
    qdb_id any;
    qdb_id_hash(&any, "x", 1);
    qdb_peer out;
    CU_ASSERT_EQUAL(qdb_node_route(h->n[0].node, &any, &out), 1);
    CU_ASSERT_TRUE(qdb_peer_eq(&out, &h->n[0].peer));
    CU_ASSERT_TRUE(qdb_node_owns(h->n[0].node, &any));
    CU_ASSERT_TRUE(qdb_node_is_stable(h->n[0].node));
    h_free(h);
}

static void test_ring_forms(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    /* joins in a scrambled order, all through node 0 */
    static const int order[] = {5, 2, 7, 1, 6, 3, 4};
    for (unsigned j = 0; j < G_N_ELEMENTS(order); j++) {
        h_run(h, (j + 1) * S / 2);
        h_start(h, order[j], 0);
    }
    h_run(h, 30 * S);
    int live[] = {0, 1, 2, 3, 4, 5, 6, 7};
    CU_ASSERT_TRUE(ring_ok(h, live, 8));
    for (int i = 0; i < 8; i++) {
        qdb_peer list[4];
        CU_ASSERT_EQUAL(qdb_node_succlist(h->n[i].node, list, 4), 3);
        for (int k = 0; k < 3; k++)
            CU_ASSERT_TRUE(qdb_peer_eq(&list[k], &h->n[(i + 1 + k) % 8].peer));
        CU_ASSERT_TRUE(qdb_node_is_stable(h->n[i].node));
        CU_ASSERT_FALSE(qdb_node_is_joining(h->n[i].node));
        /* every finger is the true successor of its start */
        for (unsigned f = 248; f < 256; f++) {
            qdb_id start;
            qdb_id_add_pow2(&start, &h->n[i].peer.id, f);
            int want = 0;
            for (int k = 0; k < 8; k++) {
                int c = (i + 1 + k) % 8;
                if (!qdb_id_in_open(&h->n[c].peer.id, &h->n[i].peer.id, &start)) { /* at or after start */
                    want = c;
                    break;
                }
            }
            const qdb_peer *got = qdb_node_finger(h->n[i].node, f);
            CU_ASSERT_PTR_NOT_NULL(got);
            if (got)
                CU_ASSERT_TRUE(qdb_peer_eq(got, &h->n[want].peer));
        }
    }
    h_free(h);
}

static void test_requests_and_answers(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_start(h, 4, 0);
    h_start(h, 8, 0);
    h_run(h, 20 * S);
    int live[] = {0, 4, 8};
    CU_ASSERT_TRUE_FATAL(ring_ok(h, live, 3));
    int own = owner_of(h, "entry", live, 3);
    int other = own == 0 ? 4 : 0;

    /* no HELLO yet: the node does not know us and ran nothing */
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_PUT, "entry", "a", NULL), QDB_E_NO_SESSION);
    hello(h, own);
    hello(h, other);
    h_run(h, qdb_simnet_now(h->net) + S);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_PUT, "entry", "thisismyentry", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_PUT, "entry", "again", NULL), QDB_E_ALIAS_ALREADY_EXISTS);
    GBytes *got = NULL;
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_GET, "entry", NULL, &got), QDB_OK);
    CU_ASSERT_TRUE(got && g_bytes_get_size(got) == 13 &&
                   memcmp(g_bytes_get_data(got, NULL), "thisismyentry", 13) == 0);
    if (got)
        g_bytes_unref(got);

    /* a node that is not the owner ran nothing and names the owner */
    GBytes *hint = NULL;
    CU_ASSERT_EQUAL(request(h, other, QDB_MSG_GET, "entry", NULL, &hint), QDB_E_WRONG_NODE);
    qdb_peer p;
    CU_ASSERT_TRUE_FATAL(hint != NULL);
    CU_ASSERT_EQUAL(qdb_peer_decode(g_bytes_get_data(hint, NULL), g_bytes_get_size(hint), &p),
                    QDB_OK);
    g_bytes_unref(hint);
    /* the hint is the owner, or a node closer to it */
    qdb_id id;
    qdb_id_hash(&id, "entry", 5);
    CU_ASSERT_TRUE(qdb_peer_eq(&p, &h->n[own].peer) ||
                   qdb_id_in_open(&p.id, &h->n[other].peer.id, &id));

    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_UPDATE, "entry", "v2", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_REMOVE, "entry", NULL, NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_REMOVE, "entry", NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_GET, "entry", NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    h_free(h);
}

static void test_at_most_once(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_run(h, 3 * S);
    hello(h, 0);
    h_run(h, 4 * S);
    /* the same PUT frame twice: applied once, both copies get the first answer */
    qdb_msg m = {.type = QDB_MSG_PUT, .seq = 77, .alias = (const uint8_t *)"k", .alias_len = 1,
                 .content = (const uint8_t *)"v", .content_len = 1};
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, 0, &m);
    send_msg(h, 0, &m);
    h_run(h, 6 * S);
    int ok = 0;
    for (guint i = 0; i < h->replies->len; i++) {
        gsize len;
        const uint8_t *f = g_bytes_get_data(h->replies->pdata[i], &len);
        qdb_msg r;
        if (qdb_msg_decode(f, len, &r) == QDB_OK && r.seq == 77 && r.status == QDB_OK)
            ok++;
    }
    CU_ASSERT_EQUAL(ok, 2);
    CU_ASSERT_EQUAL(qdb_node_get_stats(h->n[0].node)->duplicates, 1);
    /* version 1: the entry was written once */
    uint8_t key[QDB_KEY_MAX];
    qdb_id id;
    qdb_id_hash(&id, "k", 1);
    size_t kl = qdb_record_key(key, &id, (const uint8_t *)"k", 1);
    uint8_t *v;
    size_t vl;
    CU_ASSERT_EQUAL_FATAL(h->n[0].st->get(h->n[0].st, key, kl, &v, &vl), QDB_OK);
    qdb_record_meta meta;
    const uint8_t *c;
    CU_ASSERT_EQUAL(qdb_record_decode(v, vl, &meta, &c), QDB_OK);
    CU_ASSERT_EQUAL(meta.version, 1);
    g_free(v);
    h_free(h);
}

static int count_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    (*(int *)arg)++;
    return 0;
}

static int stored(hnode *x)
{
    int c = 0;
    x->st->iterate(x->st, NULL, 0, NULL, 0, count_cb, &c);
    return c;
}

/* Puts 100 entries into a one-node hive, then lets nodes join and leave:
 * every entry must end at its owner, once, and stay readable. */
static void test_handover_join_and_leave(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_run(h, 3 * S);
    hello(h, 0);
    h_run(h, 4 * S);
    char alias[16];
    for (int i = 0; i < 100; i++) {
        g_snprintf(alias, sizeof alias, "e%d", i);
        CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, alias, alias, NULL), QDB_OK);
    }
    h_start(h, 3, 0);
    h_start(h, 7, 0);
    h_start(h, 11, 0);
    h_run(h, qdb_simnet_now(h->net) + 30 * S);
    int live[] = {0, 3, 7, 11};
    CU_ASSERT_TRUE_FATAL(ring_ok(h, live, 4));
    CU_ASSERT_EQUAL(stored(&h->n[0]) + stored(&h->n[3]) + stored(&h->n[7]) + stored(&h->n[11]),
                    100);
    for (int j = 0; j < 4; j++)
        hello(h, live[j]);
    h_run(h, qdb_simnet_now(h->net) + S);
    for (int i = 0; i < 100; i++) {
        g_snprintf(alias, sizeof alias, "e%d", i);
        CU_ASSERT_EQUAL(request(h, owner_of(h, alias, live, 4), QDB_MSG_GET, alias, NULL, NULL),
                        QDB_OK);
    }
    /* node 7 leaves gracefully: its entries go to node 11 */
    int had = stored(&h->n[7]);
    CU_ASSERT_TRUE(had > 0);
    qdb_node_leave(h->n[7].node);
    h_run(h, qdb_simnet_now(h->net) + 10 * S);
    CU_ASSERT_TRUE_FATAL(qdb_node_left(h->n[7].node));
    CU_ASSERT_EQUAL(stored(&h->n[7]), 0);
    h_crash(h, 7);
    h_run(h, qdb_simnet_now(h->net) + 20 * S);
    int live3[] = {0, 3, 11};
    CU_ASSERT_TRUE(ring_ok(h, live3, 3));
    CU_ASSERT_EQUAL(stored(&h->n[0]) + stored(&h->n[3]) + stored(&h->n[11]), 100);
    for (int i = 0; i < 100; i++) {
        g_snprintf(alias, sizeof alias, "e%d", i);
        CU_ASSERT_EQUAL(request(h, owner_of(h, alias, live3, 3), QDB_MSG_GET, alias, NULL, NULL),
                        QDB_OK);
    }
    h_free(h);
}

static void test_unstable_while_joining(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_run(h, 3 * S);
    /* node 0's answers never reach node 8, which stays joining */
    qdb_simnet_block(h->net, h->n[0].peer.addr, h->n[8].peer.addr);
    h_start(h, 8, 0);
    hello(h, 8);
    /* node 8 has no range yet and says so */
    qdb_msg m = {.type = QDB_MSG_GET, .seq = 5, .alias = (const uint8_t *)"a", .alias_len = 1};
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, 8, &m);
    h_run(h, qdb_simnet_now(h->net) + QDB_US_PER_MS * 200);
    bool unstable = false;
    for (guint i = 0; i < h->replies->len; i++) {
        gsize len;
        const uint8_t *f = g_bytes_get_data(h->replies->pdata[i], &len);
        qdb_msg r;
        if (qdb_msg_decode(f, len, &r) == QDB_OK && r.seq == 5)
            unstable = r.status == QDB_E_UNSTABLE;
    }
    CU_ASSERT_TRUE(unstable);
    CU_ASSERT_TRUE(qdb_node_is_joining(h->n[8].node));
    /* once the link heals, it joins and serves */
    qdb_simnet_heal_all(h->net);
    h_run(h, qdb_simnet_now(h->net) + 10 * S);
    CU_ASSERT_FALSE(qdb_node_is_joining(h->n[8].node));
    h_free(h);
}

static void test_crash_repair(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    for (int i = 1; i < 6; i++)
        h_start(h, i, 0);
    h_run(h, 30 * S);
    int live[] = {0, 1, 2, 3, 4, 5};
    CU_ASSERT_TRUE_FATAL(ring_ok(h, live, 6));
    h_crash(h, 2);
    h_crash(h, 3); /* two neighbours at once: the successor list (r = 3) bridges them */
    h_run(h, qdb_simnet_now(h->net) + 60 * S);
    int live4[] = {0, 1, 4, 5};
    CU_ASSERT_TRUE(ring_ok(h, live4, 4));
    h_free(h);
}

/* A failed node's entries are "unavailable" at the node that inherits its
 * range -- not "not found" -- and readable again once it comes back. */
static void test_failed_node_entries_unavailable(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_start(h, 4, 0);
    h_start(h, 8, 0);
    h_run(h, 20 * S);
    int live[] = {0, 4, 8};
    CU_ASSERT_TRUE_FATAL(ring_ok(h, live, 3));
    /* an alias node 4 owns */
    char alias[16];
    int k = 0;
    do
        g_snprintf(alias, sizeof alias, "a%d", k++);
    while (owner_of(h, alias, live, 3) != 4);
    hello(h, 4);
    h_run(h, qdb_simnet_now(h->net) + S);
    CU_ASSERT_EQUAL_FATAL(request(h, 4, QDB_MSG_PUT, alias, "kept", NULL), QDB_OK);
    h_crash(h, 4); /* its storage stays in h->n[4].st */
    h_run(h, qdb_simnet_now(h->net) + 30 * S);
    int live2[] = {0, 8};
    CU_ASSERT_TRUE_FATAL(ring_ok(h, live2, 2));
    hello(h, 8);
    h_run(h, qdb_simnet_now(h->net) + S);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_GET, alias, NULL, NULL), QDB_E_UNAVAILABLE);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_PUT, alias, "other", NULL), QDB_E_UNAVAILABLE);
    /* it comes back on its storage and serves the entry again */
    h_start(h, 4, 0);
    h_run(h, qdb_simnet_now(h->net) + 30 * S);
    CU_ASSERT_TRUE_FATAL(ring_ok(h, live, 3));
    hello(h, 4);
    h_run(h, qdb_simnet_now(h->net) + S);
    GBytes *got = NULL;
    CU_ASSERT_EQUAL(request(h, 4, QDB_MSG_GET, alias, NULL, &got), QDB_OK);
    CU_ASSERT_TRUE(got && g_bytes_get_size(got) == 4 &&
                   memcmp(g_bytes_get_data(got, NULL), "kept", 4) == 0);
    if (got)
        g_bytes_unref(got);
    h_free(h);
}

/* Zave: node 0's successor reports a predecessor that is dead; node 0 must
 * not adopt it. */
static void test_dead_candidate_not_adopted(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_start(h, 8, 0);
    h_run(h, 20 * S);
    int live[] = {0, 8};
    CU_ASSERT_TRUE_FATAL(ring_ok(h, live, 2));
    /* node 4 joins (node 8 adopts it as predecessor), then dies at once */
    h_start(h, 4, 0);
    for (int step = 0; step < 400; step++) {
        h_run(h, qdb_simnet_now(h->net) + QDB_US_PER_MS * 5);
        const qdb_peer *p = qdb_node_predecessor(h->n[8].node);
        if (p && qdb_peer_eq(p, &h->n[4].peer))
            break;
    }
    CU_ASSERT_TRUE_FATAL(qdb_peer_eq(qdb_node_predecessor(h->n[8].node), &h->n[4].peer));
    h_crash(h, 4);
    bool adopted_dead = false;
    for (int step = 0; step < 600; step++) {
        h_run(h, qdb_simnet_now(h->net) + QDB_US_PER_MS * 50);
        const qdb_peer *s = qdb_node_successor(h->n[0].node);
        if (s && qdb_peer_eq(s, &h->n[4].peer))
            adopted_dead = true;
    }
    CU_ASSERT_FALSE(adopted_dead);
    CU_ASSERT_TRUE(ring_ok(h, live, 2));
    h_free(h);
}

/* STATUS: the reply's fields and JSON, counters by request, the metrics;
 * STOP: refused by default, obeyed when allowed. */
static void test_status_and_stop(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_start(h, 4, 0);
    h->allow_stop = true;
    h_start(h, 8, 0);
    h_run(h, 20 * S);
    int live[] = {0, 4, 8};
    CU_ASSERT_TRUE_FATAL(ring_ok(h, live, 3));
    int own = owner_of(h, "entry", live, 3);
    hello(h, own);
    h_run(h, qdb_simnet_now(h->net) + S);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_PUT, "entry", "value", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_GET, "nothing", NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_node_requests(h->n[own].node, QDB_MSG_PUT, QDB_OK), 1);
    CU_ASSERT_EQUAL(qdb_node_requests(h->n[own].node, QDB_MSG_GET, QDB_E_ALIAS_NOT_FOUND), 1);
    CU_ASSERT_EQUAL(qdb_node_requests(h->n[own].node, QDB_MSG_GET, QDB_OK), 0);

    qdb_msg m = {.type = QDB_MSG_STATUS, .what = QDB_STATUS_NODE};
    GBytes *f = ask(h, 4, &m, QDB_MSG_STATUS_REPLY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    qdb_msg r;
    CU_ASSERT_EQUAL_FATAL(qdb_msg_decode(g_bytes_get_data(f, NULL), g_bytes_get_size(f), &r), QDB_OK);
    CU_ASSERT_EQUAL(r.flags, QDB_STATUS_F_STABLE | QDB_STATUS_F_PRED | QDB_STATUS_F_SUCC);
    CU_ASSERT_TRUE(qdb_peer_eq(&r.peer, &h->n[4].peer));
    CU_ASSERT_TRUE(qdb_peer_eq(&r.pred, &h->n[0].peer));
    CU_ASSERT_TRUE(qdb_peer_eq(&r.peers[0], &h->n[8].peer));
    CU_ASSERT_EQUAL(r.count, own == 4 ? 1 : 0);
    char *json = g_strndup((const char *)r.content, r.content_len);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "{\"id\":\"5000000000000000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"address\":\"10.0.0.5:2836\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"state\":\"active\",\"stable\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"predecessor\":{\"id\":\"1000000000000000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"successors\":[{\"id\":\"9000000000000000"));
    /* the uptime is virtual time since the start: about 23 s here */
    const char *up = strstr(json, "\"uptime_ms\":");
    CU_ASSERT_PTR_NOT_NULL_FATAL(up);
    uint64_t ms = g_ascii_strtoull(up + strlen("\"uptime_ms\":"), NULL, 10);
    CU_ASSERT_TRUE(ms > 20000 && ms <= qdb_simnet_now(h->net) / QDB_US_PER_MS);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"status_requests\":1,"));
    g_free(json);
    g_bytes_unref(f);

    /* what = topology and config: their parts only */
    m = (qdb_msg){.type = QDB_MSG_STATUS, .what = QDB_STATUS_CONFIG};
    f = ask(h, 0, &m, QDB_MSG_STATUS_REPLY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(qdb_msg_decode(g_bytes_get_data(f, NULL), g_bytes_get_size(f), &r), QDB_OK);
    json = g_strndup((const char *)r.content, r.content_len);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"config\":{\"successor_list_length\":3,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"allow_remote_stop\":false"));
    CU_ASSERT_PTR_NULL(strstr(json, "\"successors\""));
    g_free(json);
    g_bytes_unref(f);

    /* the requests in the JSON and the metrics */
    GString *o = g_string_new("");
    qdb_node_status_json(h->n[own].node, QDB_STATUS_NODE, o);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->str, "\"by_request\":{\"get\":{\"alias_not_found\":1},"
                                          "\"put\":{\"ok\":1}}") ||
                           strstr(o->str, "\"by_request\":{\"put\":{\"ok\":1},"
                                          "\"get\":{\"alias_not_found\":1}}"));
    g_string_truncate(o, 0);
    qdb_node_metrics(h->n[own].node, o);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->str, "\nqdb_requests_total{type=\"put\",result=\"ok\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->str, "\nqdb_entries 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->str, "# TYPE qdb_lookups_total counter\n"));
    g_string_free(o, TRUE);

    /* STOP: node 4 refuses and stays; node 8 obeys and leaves */
    m = (qdb_msg){.type = QDB_MSG_STOP};
    f = ask(h, 4, &m, QDB_MSG_STOP_REPLY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(qdb_msg_decode(g_bytes_get_data(f, NULL), g_bytes_get_size(f), &r), QDB_OK);
    CU_ASSERT_EQUAL(r.status, QDB_E_REFUSED);
    CU_ASSERT_FALSE(qdb_node_leaving(h->n[4].node));
    g_bytes_unref(f);
    f = ask(h, 8, &m, QDB_MSG_STOP_REPLY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(qdb_msg_decode(g_bytes_get_data(f, NULL), g_bytes_get_size(f), &r), QDB_OK);
    CU_ASSERT_EQUAL(r.status, QDB_OK);
    g_bytes_unref(f);
    h_run(h, qdb_simnet_now(h->net) + 10 * S);
    CU_ASSERT_TRUE(qdb_node_left(h->n[8].node));
    int two[] = {0, 4};
    CU_ASSERT_TRUE(ring_ok(h, two, 2));
    h_free(h);
}

int main(void)
{
    CU_TestInfo ring[] = {
        {"one node owns the circle", test_one_node},
        {"eight joins form one ordered ring", test_ring_forms},
        {"two neighbours crash, the ring repairs", test_crash_repair},
        {"a dead candidate is never adopted (Zave)", test_dead_candidate_not_adopted},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo serve[] = {
        {"requests, wrong node, no session", test_requests_and_answers},
        {"a duplicated request runs once", test_at_most_once},
        {"a joining node answers unstable", test_unstable_while_joining},
        {"hand-over on join and on leave loses nothing", test_handover_join_and_leave},
        {"a failed node's entries are unavailable until it returns",
         test_failed_node_entries_unavailable},
        {"STATUS answers, counters, metrics; STOP refused or obeyed", test_status_and_stop},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {.pName = "ring", .pTests = ring},
        {.pName = "requests", .pTests = serve},
        CU_SUITE_INFO_NULL,
    };
    return qdb_test_run(suites);
}

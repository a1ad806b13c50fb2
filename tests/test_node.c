/* SPDX-License-Identifier: BSD-2-Clause */
/* The node core: ring formation, routing, ownership answers, at-most-once
 * replies, hand-over on join and on leave, failure repair, storage failures,
 * and Zave's "adopt only a live successor".
 *
 * One suite, two transports, as libevent runs its regression suite once per
 * backend: tests/local.am builds this file twice.  test_node_sim runs the
 * nodes on the simulated network, test_node_real (TEST_NODE_LOOP) on the
 * real epoll loop over loopback TCP; both through the fixture
 * (sim/fixture.h) and its host (sim/host.h, tests/host_loop.h).  The
 * tests wait for what they check (qdb_fixture_step_until with a predicate
 * and a bound), so one body holds on both: on the simulated network the
 * bound is virtual, on the loop it is real time.
 *
 * Time is counted in the suite's second S: one second on the simulated
 * network; on the loop a tenth of one (0.3 s under valgrind), with
 * the nodes' stabilization and watch periods and RPC timeout scaled to match, so the
 * real run takes a few seconds.  Exact virtual times and partitions exist
 * only on the simulated network: the suites that need them ("... in virtual
 * time", "... across a partition") run only there.
 *
 * Node i gets ID (i+1) * 2^252, so ring order is index order and every
 * expected successor is known in advance.  On the simulated network every
 * link takes exactly L, so where timing is the point the tests assert exact
 * virtual times.  A raw client endpoint speaks the wire protocol directly,
 * so the tests see exactly what a node answers.  A failing test prints its
 * transport, seed and time. */
#include <string.h>

#include "codec.h"
#include "node.h"
#include "record.h"
#include "rto.h"
#include "sim/fixture.h"
#include "status.h"
#include "storage/fault.h"
#include "storage/memory.h"
#include "testutil.h"
#ifdef TEST_NODE_LOOP
#include "host_loop.h"
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define MAXN 16
#define MS QDB_US_PER_MS
/* Every simulated link takes exactly L (no jitter, no exponential part), so
 * the time of every exchange is known: a request and its reply take 2L. */
#define L (10 * MS)
#define SEED 5

/* The transport this program runs on, set once by main. */
static struct {
    const char *name;
    bool simulated;
    qdb_time_us sec; /* the suite's second: what S means */
} B;
#define S (B.sec)

typedef struct harness {
    qdb_fixture *f;
    qdb_host_endpoint *client; /* a raw client that speaks the wire protocol */
    GPtrArray *replies;        /* GBytes frames the raw client received */
    uint32_t seq;
    uint64_t seed;
    unsigned failures_before;
} harness;

static void c_recv(void *o, qdb_addr src, const uint8_t *f, size_t len)
{
    g_ptr_array_add(((harness *)o)->replies, g_bytes_new(f, len));
}
static const qdb_inbound client_ops = {.recv = c_recv};

static const qdb_peer *peer(harness *h, int i)
{
    return qdb_fixture_peer(h->f, (unsigned)i);
}

static qdb_node *node(harness *h, int i)
{
    return qdb_fixture_node(h->f, (unsigned)i);
}

static qdb_storage *store(harness *h, int i)
{
    return qdb_fixture_storage_of(h->f, (unsigned)i);
}

static qdb_fixture *fixture_new(const qdb_fixture_storage *storage, uint64_t seed, char *err)
{
#ifdef TEST_NODE_LOOP
    qdb_host *host = qdb_host_loop_new(MAXN, err);
    return host ? qdb_fixture_new_on(host, seed, storage) : NULL;
#else
    (void)err;
    qdb_simnet_config c;
    qdb_simnet_config_defaults(&c);
    c.seed = seed;
    c.latency_mean = 0;
    c.latency_min = L;
    return qdb_fixture_new(&c, storage);
#endif
}

/* Node i gets ID (i+1) * 2^252 and the host's i-th node address; rounds
 * come without jitter.  period: stabilization rounds every `period` (fast =
 * slow: the period never changes, so round times are known: a node started
 * at s runs rounds at s + k*period); 0: the node defaults (node/defaults.h)
 * on the simulated network, and on the loop the same in the suite's seconds
 * -- rounds from 1 S, RPC timeout 2 S -- except that quiet rounds back off
 * only to 4 S, not 30: the loop waits in real time. */
/* The harnesses made from now on enable REMOVE_ALL and STOP on every node
 * (hive.c: off by default, as quasardb's enable_purge_all / enable_stop). */
static bool enable_dangerous;
/* The resource limits of the nodes in the harnesses made from now on (0:
 * the node defaults). */
static size_t limit_content, limit_dedup;
static unsigned limit_dedup_entries;

static harness *h_new_with(qdb_time_us period, const qdb_fixture_storage *storage)
{
    harness *h = g_new0(harness, 1);
    h->seed = SEED;
    h->failures_before = CU_get_number_of_failures();
    char err[QDB_ERRMSG_SIZE];
    h->f = fixture_new(storage, h->seed, err);
    if (!h->f)
        g_error("%s: %s", B.name, err);
    qdb_host *host = qdb_fixture_host(h->f);
    qdb_node_config cfg = {.succlist_len = 3, .stabilize_fast = period, .stabilize_slow = period,
                           .watch_period = QDB_DEFAULT_WATCH_US * S / QDB_US_PER_S,
                           .finger_cycle = QDB_DEFAULT_FINGER_CYCLE_US * S / QDB_US_PER_S,
                           .no_jitter = true};
    if (!period && !B.simulated)
        cfg = (qdb_node_config){.succlist_len = 3,
                                .stabilize_fast = QDB_DEFAULT_STABILIZE_FAST_US * S / QDB_US_PER_S,
                                .stabilize_slow = 4 * S,
                                .rpc_timeout = QDB_DEFAULT_RPC_TIMEOUT_US * S / QDB_US_PER_S,
                                .watch_period = QDB_DEFAULT_WATCH_US * S / QDB_US_PER_S,
                                .finger_cycle = QDB_DEFAULT_FINGER_CYCLE_US * S / QDB_US_PER_S,
                                .no_jitter = true};
    for (int i = 0; i < MAXN; i++) {
        qdb_peer p = {.addr = host->node_addr(host, (unsigned)i)};
        p.id.b[0] = (uint8_t)((i + 1) << 4);
        cfg.enable_purge_all = cfg.enable_stop = enable_dangerous;
        cfg.max_content = limit_content;
        cfg.dedup_bytes = limit_dedup;
        cfg.dedup_capacity = limit_dedup_entries;
        qdb_fixture_add_node(h->f, &p, &cfg); /* zero fields: the node defaults */
    }
    h->replies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    h->client = host->attach(host, (qdb_addr){.ip = 0x64400101u, .port = 40000}, false, 99);
    g_assert(h->client);
    host->bind(host, h->client, &client_ops, h);
    return h;
}

static harness *h_new(void)
{
    return h_new_with(0, NULL);
}

/* Bring node i up; join through node `via` (or create a ring with via < 0). */
static void h_start(harness *h, int i, int via)
{
    qdb_addr p = via >= 0 ? peer(h, via)->addr : (qdb_addr){0};
    CU_ASSERT_TRUE_FATAL(qdb_fixture_start(h->f, (unsigned)i, via >= 0 ? &p : NULL, via >= 0));
}

/* A crash that keeps the storage (a process crash). */
static void h_crash(harness *h, int i)
{
    qdb_fixture_crash(h->f, (unsigned)i, true);
}

static void h_free(harness *h)
{
    if (CU_get_number_of_failures() != h->failures_before)
        fprintf(stderr, "\n  (%s, seed %" G_GUINT64_FORMAT ", failed at %.6f s)\n", B.name,
                h->seed, (double)qdb_fixture_now(h->f) / 1e6);
    qdb_fixture_free(h->f);
    g_ptr_array_free(h->replies, TRUE);
    g_free(h);
}

static void h_run(harness *h, qdb_time_us until)
{
    qdb_fixture_run_until(h->f, until);
}

static qdb_time_us now(harness *h)
{
    return qdb_fixture_now(h->f);
}

/* Step until done(h->f, arg) holds, for at most `wait` from now. */
static bool h_until(harness *h, bool (*done)(qdb_fixture *f, void *arg), void *arg,
                    qdb_time_us wait)
{
    return qdb_fixture_step_until(h->f, done, arg, now(h) + wait);
}

/* Are the live nodes in `live` (ascending indices) one correct ring? */
static bool ring_ok(qdb_fixture *f, const int *live, int k)
{
    for (int j = 0; j < k; j++) {
        qdb_node *n = qdb_fixture_node(f, (unsigned)live[j]);
        const qdb_peer *s = qdb_node_successor(n), *p = qdb_node_predecessor(n);
        if (!s || !p || !qdb_peer_eq(s, qdb_fixture_peer(f, (unsigned)live[(j + 1) % k])) ||
            !qdb_peer_eq(p, qdb_fixture_peer(f, (unsigned)live[(j + k - 1) % k])))
            return false;
    }
    return true;
}

/* Predicates for qdb_fixture_step_until: node a's predecessor (successor)
 * is node b; node a has joined; nodes a and b form a ring of two; node a
 * is stable; node a has left and has been taken down. */
typedef struct pred_arg {
    int a, b;
} pred_arg;

static bool pred_is(qdb_fixture *f, void *arg)
{
    const pred_arg *x = arg;
    const qdb_peer *p = qdb_node_predecessor(qdb_fixture_node(f, (unsigned)x->a));
    return p && qdb_peer_eq(p, qdb_fixture_peer(f, (unsigned)x->b));
}

static bool succ_is(qdb_fixture *f, void *arg)
{
    const pred_arg *x = arg;
    const qdb_peer *s = qdb_node_successor(qdb_fixture_node(f, (unsigned)x->a));
    return s && qdb_peer_eq(s, qdb_fixture_peer(f, (unsigned)x->b));
}

static bool joined(qdb_fixture *f, void *arg)
{
    return !qdb_node_is_joining(qdb_fixture_node(f, (unsigned)((pred_arg *)arg)->a));
}

static bool ring_right(qdb_fixture *f, void *arg)
{
    const pred_arg *x = arg;
    pred_arg y = {x->b, x->a};
    return succ_is(f, &y) && pred_is(f, &y) && succ_is(f, arg) && pred_is(f, arg);
}

static bool stable(qdb_fixture *f, void *arg)
{
    return qdb_node_is_stable(qdb_fixture_node(f, (unsigned)((pred_arg *)arg)->a));
}

static bool gone(qdb_fixture *f, void *arg)
{
    qdb_fixture_reap(f);
    return !qdb_fixture_up(f, (unsigned)((pred_arg *)arg)->a);
}

/* ---- where entries are ------------------------------------------------- */

static int owner_of(qdb_fixture *f, const char *alias, const int *live, int k)
{
    qdb_id id;
    qdb_id_hash(&id, alias, strlen(alias));
    for (int j = 0; j < k; j++)
        if (qdb_id_cmp(&id, &qdb_fixture_peer(f, (unsigned)live[j])->id) <= 0)
            return live[j];
    return live[0];
}

/* Live entries held by node i (tombstones not counted). */
static int stored_at(qdb_fixture *f, int i)
{
    return (int)qdb_record_count(qdb_fixture_storage_of(f, (unsigned)i), NULL);
}

static int stored(harness *h, int i)
{
    return stored_at(h->f, i);
}

/* A settled hive: the nodes `live` (ascending) form one correct ring, none
 * is joining, and (n > 0) each holds exactly as many of the entries
 * <prefix>0 .. <prefix>(n-1) as it owns -- every entry at its owner, once. */
typedef struct settled_arg {
    const int *live;
    int k;
    bool count;     /* check the entries */
    int want[MAXN]; /* entries node i owns */
} settled_arg;

static settled_arg settled_of(harness *h, const int *live, int k, const char *prefix, int n)
{
    settled_arg a = {.live = live, .k = k, .count = n > 0};
    char alias[16];
    for (int i = 0; i < n; i++) {
        g_snprintf(alias, sizeof alias, "%s%d", prefix, i);
        a.want[owner_of(h->f, alias, live, k)]++;
    }
    return a;
}

static bool settled(qdb_fixture *f, void *arg)
{
    const settled_arg *a = arg;
    if (!ring_ok(f, a->live, a->k))
        return false;
    for (int j = 0; j < a->k; j++)
        if (qdb_node_is_joining(qdb_fixture_node(f, (unsigned)a->live[j])) ||
            (a->count && stored_at(f, a->live[j]) != a->want[a->live[j]]))
            return false;
    return true;
}

/* Wait (at most `wait`) until the hive is settled with entries prefix0..n-1. */
static bool h_settled(harness *h, const int *live, int k, const char *prefix, int n,
                      qdb_time_us wait)
{
    settled_arg a = settled_of(h, live, k, prefix, n);
    return h_until(h, settled, &a, wait);
}

/* ---- the raw client ---------------------------------------------------- */

static void send_msg(harness *h, int to, const qdb_msg *m)
{
    GByteArray *b = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(m, b), QDB_OK);
    qdb_transport *t = qdb_fixture_host(h->f)->seams(h->client).transport;
    t->send(t, peer(h, to)->addr, b->data, b->len);
    g_byte_array_free(b, TRUE);
}

/* How many answers of this type the raw client has to id -- a REPLY's seq,
 * a FIND_REPLY's rpc; the last in *last (valid while h->replies keeps its
 * frame). */
static int replies_for(harness *h, int type, uint64_t id, qdb_msg *last)
{
    int k = 0;
    for (guint i = 0; i < h->replies->len; i++) {
        gsize len;
        const uint8_t *f = g_bytes_get_data(h->replies->pdata[i], &len);
        qdb_msg r;
        if (qdb_msg_decode(f, len, &r) == QDB_OK && r.type == type &&
            (type == QDB_MSG_REPLY ? r.seq : r.rpc) == id) {
            k++;
            if (last)
                *last = r;
        }
    }
    return k;
}

typedef struct reply_arg {
    harness *h;
    int type;
    uint64_t id;
    int n;
} reply_arg;

static bool replied(qdb_fixture *f, void *arg)
{
    const reply_arg *a = arg;
    return replies_for(a->h, a->type, a->id, NULL) >= a->n;
}

/* Wait (at most 5 S) for n answers of this type to id; the last in *last. */
static bool await_replies(harness *h, int type, uint64_t id, int n, qdb_msg *last)
{
    return h_until(h, replied, &(reply_arg){h, type, id, n}, 5 * S) &&
           replies_for(h, type, id, last) >= n;
}

/* Open a session with node `to` and wait for its answer (seq 0). */
static void hello(harness *h, int to)
{
    qdb_msg m = {.type = QDB_MSG_HELLO, .seq = 7};
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, to, &m);
    CU_ASSERT_TRUE(await_replies(h, QDB_MSG_REPLY, 0, 1, NULL));
}

/* Send m with its own seq (a copy of an earlier request, say) and return the
 * status of the answer, -1 for none; its payload in *payload when asked. */
static int resend(harness *h, int to, const qdb_msg *m, GBytes **payload)
{
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, to, m);
    qdb_msg r;
    if (!await_replies(h, QDB_MSG_REPLY, m->seq, 1, &r))
        return -1;
    if (payload)
        *payload = g_bytes_new(r.content, r.content_len);
    return r.status;
}

/* Send m (with a fresh seq) and return the status of its reply, -1 for none
 * (and a copy of the payload in *payload when asked). */
static int exchange(harness *h, int to, qdb_msg *m, GBytes **payload)
{
    m->seq = ++h->seq;
    return resend(h, to, m, payload);
}

/* Send an operator's message (STATUS, STOP) and wait (at most 5 S) for its
 * answer of type `want`, decoded into *r (valid until the next exchange). */
static bool ask(harness *h, int to, qdb_msg *m, int want, qdb_msg *r)
{
    m->rpc = 4242;
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, to, m);
    return await_replies(h, want, m->rpc, 1, r);
}

static int request(harness *h, int to, int type, const char *alias, const char *content,
                   GBytes **payload)
{
    qdb_msg m = {.type = type, .alias = (const uint8_t *)alias, .alias_len = strlen(alias)};
    if (content) {
        m.content = (const uint8_t *)content;
        m.content_len = strlen(content);
    }
    return exchange(h, to, &m, payload);
}

/* GET alias at node `at` answers want (NULL: not found). */
static void check_value(harness *h, int at, const char *alias, const char *want)
{
    GBytes *got = NULL;
    int st = request(h, at, QDB_MSG_GET, alias, NULL, &got);
    if (!want) {
        CU_ASSERT_EQUAL(st, QDB_E_ALIAS_NOT_FOUND);
    } else {
        CU_ASSERT_EQUAL(st, QDB_OK);
        CU_ASSERT_TRUE(got && g_bytes_get_size(got) == strlen(want) &&
                       memcmp(g_bytes_get_data(got, NULL), want, strlen(want)) == 0);
    }
    if (got)
        g_bytes_unref(got);
}

/* Node 0 alone, serving (its own predecessor: it owns the circle), and a
 * session with it. */
static void h_solo(harness *h)
{
    h_start(h, 0, -1);
    CU_ASSERT_TRUE_FATAL(h_until(h, pred_is, &(pred_arg){0, 0}, 5 * S));
    hello(h, 0);
}

/* ---- ring and requests, on both transports ------------------------------ */

static void test_one_node(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    CU_ASSERT_TRUE(h_until(h, stable, &(pred_arg){0, 0}, 20 * S));
    qdb_id any;
    qdb_id_hash(&any, "x", 1);
    qdb_peer out;
    CU_ASSERT_EQUAL(qdb_node_route(node(h, 0), &any, &out), 1);
    CU_ASSERT_TRUE(qdb_peer_eq(&out, peer(h, 0)));
    CU_ASSERT_TRUE(qdb_node_owns(node(h, 0), &any));
    h_free(h);
}

/* Nodes 0..7 settled, with full successor lists (r = 3), every node stable,
 * and every finger the true successor of its start. */
static bool ring_complete(qdb_fixture *f, void *arg)
{
    if (!settled(f, arg))
        return false;
    for (int i = 0; i < 8; i++) {
        qdb_node *n = qdb_fixture_node(f, (unsigned)i);
        const qdb_id *self = &qdb_fixture_peer(f, (unsigned)i)->id;
        qdb_peer list[4];
        if (!qdb_node_is_stable(n) || qdb_node_succlist(n, list, 4) != 3)
            return false;
        for (int k = 0; k < 3; k++)
            if (!qdb_peer_eq(&list[k], qdb_fixture_peer(f, (unsigned)(i + 1 + k) % 8)))
                return false;
        for (unsigned b = 248; b < 256; b++) {
            qdb_id start;
            qdb_id_add_pow2(&start, self, b);
            int want = 0;
            for (int k = 0; k < 8; k++) {
                int c = (i + 1 + k) % 8;
                const qdb_id *cid = &qdb_fixture_peer(f, (unsigned)c)->id;
                if (!qdb_id_in_open(cid, self, &start)) { /* at or after start */
                    want = c;
                    break;
                }
            }
            const qdb_peer *got = qdb_node_finger(n, b);
            if (!got || !qdb_peer_eq(got, qdb_fixture_peer(f, (unsigned)want)))
                return false;
        }
    }
    return true;
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
    static const int live[] = {0, 1, 2, 3, 4, 5, 6, 7};
    settled_arg all = settled_of(h, live, 8, "", 0);
    /* Two fix-fingers cycles and some (cfg.finger_cycle, 30 S): a node whose
     * neighbours did not move looks at its fingers again only a cycle after
     * its last look, which a join elsewhere may have made stale. */
    CU_ASSERT_TRUE(h_until(h, ring_complete, &all, 70 * S));
    h_free(h);
}

static void test_requests_and_answers(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_start(h, 4, 0);
    h_start(h, 8, 0);
    int live[] = {0, 4, 8};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 3, "", 0, 20 * S));
    int own = owner_of(h->f, "entry", live, 3);
    int other = own == 0 ? 4 : 0;

    /* no HELLO yet: the node does not know us and ran nothing */
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_PUT, "entry", "a", NULL), QDB_E_NO_SESSION);
    hello(h, own);
    hello(h, other);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_PUT, "entry", "thisismyentry", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_PUT, "entry", "again", NULL), QDB_E_ALIAS_ALREADY_EXISTS);
    check_value(h, own, "entry", "thisismyentry");

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
    CU_ASSERT_TRUE(qdb_peer_eq(&p, peer(h, own)) ||
                   qdb_id_in_open(&p.id, &peer(h, other)->id, &id));

    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_UPDATE, "entry", "v2", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_REMOVE, "entry", NULL, NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_REMOVE, "entry", NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    check_value(h, own, "entry", NULL);
    h_free(h);
}

static void test_at_most_once(void)
{
    harness *h = h_new();
    h_solo(h);
    /* the same PUT frame twice: applied once, both copies get the first answer */
    qdb_msg m = {.type = QDB_MSG_PUT, .seq = 77, .alias = (const uint8_t *)"k", .alias_len = 1,
                 .content = (const uint8_t *)"v", .content_len = 1};
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, 0, &m);
    send_msg(h, 0, &m);
    CU_ASSERT_TRUE(await_replies(h, QDB_MSG_REPLY, 77, 2, NULL));
    int ok = 0;
    for (guint i = 0; i < h->replies->len; i++) {
        gsize len;
        const uint8_t *f = g_bytes_get_data(h->replies->pdata[i], &len);
        qdb_msg r;
        if (qdb_msg_decode(f, len, &r) == QDB_OK && r.seq == 77 && r.status == QDB_OK)
            ok++;
    }
    CU_ASSERT_EQUAL(ok, 2);
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, 0))->duplicates, 1);
    /* written once: never modified after its creation */
    uint8_t key[QDB_KEY_MAX];
    qdb_id id;
    qdb_id_hash(&id, "k", 1);
    size_t kl = qdb_record_key(key, &id, (const uint8_t *)"k", 1);
    uint8_t *v;
    size_t vl;
    CU_ASSERT_EQUAL_FATAL(store(h, 0)->get(store(h, 0), key, kl, &v, &vl), QDB_OK);
    qdb_record_meta meta;
    const uint8_t *c;
    CU_ASSERT_EQUAL(qdb_record_decode(v, vl, &meta, &c), QDB_OK);
    CU_ASSERT_EQUAL(meta.modified_us, meta.created_us);
    CU_ASSERT_EQUAL(meta.version, (uint64_t)meta.modified_us);
    g_free(v);
    h_free(h);
}

/* The limits of a request on the node: content over max_content is refused,
 * a request the codec refuses is answered (alias too long), and the
 * at-most-once table keeps reply payloads within dedup_bytes -- a copy of a
 * request whose payload went is told "outcome unknown", never run again. */
static void test_request_limits(void)
{
    limit_content = 96;
    limit_dedup = 400; /* payloads of up to 100 bytes kept, 4 of 90 at once */
    harness *h = h_new();
    limit_content = limit_dedup = 0;
    h_solo(h);
    char c96[97], c97[98], c90[91];
    memset(c96, 'a', 96), c96[96] = 0;
    memset(c97, 'b', 97), c97[97] = 0;
    memset(c90, 'c', 90), c90[90] = 0;
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "over", c97, NULL), QDB_E_CONTENT_TOO_LARGE);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "at", c96, NULL), QDB_OK);
    qdb_msg cas = {.type = QDB_MSG_CAS, .alias = (const uint8_t *)"at", .alias_len = 2,
                   .content = (const uint8_t *)"x", .content_len = 1,
                   .comparand = (const uint8_t *)c97, .comparand_len = 97};
    CU_ASSERT_EQUAL(exchange(h, 0, &cas, NULL), QDB_E_CONTENT_TOO_LARGE);
    CU_ASSERT_EQUAL(stored(h, 0), 1);

    /* an alias of 1,025 bytes: no message, but an answer */
    GByteArray *raw = g_byte_array_new();
    uint8_t hdr[16];
    size_t body = 1 + 1 + 2 + QDB_MAX_ALIAS + 1, k = qdb_varint_put(hdr, body);
    hdr[k++] = (QDB_PROTO_VERSION << 5) | QDB_MSG_GET;
    hdr[k++] = 99; /* seq */
    k += qdb_varint_put(hdr + k, QDB_MAX_ALIAS + 1);
    g_byte_array_append(raw, hdr, (guint)k);
    for (size_t i = 0; i < QDB_MAX_ALIAS + 1; i++)
        g_byte_array_append(raw, (const uint8_t *)"l", 1);
    g_ptr_array_set_size(h->replies, 0);
    qdb_transport *t = qdb_fixture_host(h->f)->seams(h->client).transport;
    t->send(t, peer(h, 0)->addr, raw->data, raw->len);
    g_byte_array_free(raw, TRUE);
    qdb_msg r;
    CU_ASSERT_TRUE(await_replies(h, QDB_MSG_REPLY, 99, 1, &r));
    CU_ASSERT_EQUAL(r.status, QDB_E_ALIAS_TOO_LONG);

    /* six GET_UPDATEs answered with 90 bytes each: the table keeps four */
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "g", c90, NULL), QDB_OK);
    qdb_msg gu[6];
    char next[6][2] = {"0", "1", "2", "3", "4", "5"};
    for (int i = 0; i < 6; i++) {
        gu[i] = (qdb_msg){.type = QDB_MSG_GET_UPDATE, .alias = (const uint8_t *)"g",
                          .alias_len = 1, .content = (const uint8_t *)(i < 5 ? c90 : next[i]),
                          .content_len = i < 5 ? 90 : 1};
        CU_ASSERT_EQUAL(exchange(h, 0, &gu[i], NULL), QDB_OK);
    }
    uint64_t dup = qdb_node_get_stats(node(h, 0))->duplicates;
    GBytes *got = NULL;
    CU_ASSERT_EQUAL(resend(h, 0, &gu[0], NULL), QDB_E_OUTCOME_UNKNOWN);
    CU_ASSERT_EQUAL(resend(h, 0, &gu[1], NULL), QDB_E_OUTCOME_UNKNOWN);
    CU_ASSERT_EQUAL(resend(h, 0, &gu[2], &got), QDB_OK); /* still kept */
    CU_ASSERT_TRUE(got && g_bytes_get_size(got) == 90);
    if (got)
        g_bytes_unref(got);
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, 0))->duplicates, dup + 3);
    check_value(h, 0, "g", "5"); /* none ran again */
    h_free(h);
}

/* The at-most-once table holds dedup_capacity replies, oldest out first
 * (a ring of slots, reused past the capacity): a copy of one of the last
 * four is answered from the table, a copy of an older one runs again; a
 * payload kept by an entry that goes is let go with it. */
static void test_dedup_capacity(void)
{
    limit_dedup_entries = 4;
    harness *h = h_new();
    limit_dedup_entries = 0;
    h_solo(h);
    qdb_msg up[10];
    char digit[10][2] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    for (int i = 0; i < 10; i++) { /* the ring wraps twice */
        up[i] = (qdb_msg){.type = i % 2 ? QDB_MSG_GET_UPDATE : QDB_MSG_UPDATE,
                          .alias = (const uint8_t *)"k", .alias_len = 1,
                          .content = (const uint8_t *)digit[i], .content_len = 1};
        CU_ASSERT_EQUAL(exchange(h, 0, &up[i], NULL), QDB_OK);
    }
    uint64_t dup = qdb_node_get_stats(node(h, 0))->duplicates;
    GBytes *got = NULL;
    CU_ASSERT_EQUAL(resend(h, 0, &up[9], &got), QDB_OK); /* kept, with its payload */
    CU_ASSERT_TRUE(got && g_bytes_get_size(got) == 1 &&
                   memcmp(g_bytes_get_data(got, NULL), "8", 1) == 0);
    if (got)
        g_bytes_unref(got);
    CU_ASSERT_EQUAL(resend(h, 0, &up[6], NULL), QDB_OK);
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, 0))->duplicates, dup + 2);
    check_value(h, 0, "k", "9"); /* neither ran again */
    CU_ASSERT_EQUAL(resend(h, 0, &up[5], NULL), QDB_OK); /* gone: runs again */
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, 0))->duplicates, dup + 2);
    check_value(h, 0, "k", "5");
    h_free(h);
}

/* Every entry e0..e99 readable at its owner among `live`. */
static void check_e_entries(harness *h, const int *live, int k)
{
    char alias[16];
    for (int j = 0; j < k; j++)
        hello(h, live[j]);
    for (int i = 0; i < 100; i++) {
        g_snprintf(alias, sizeof alias, "e%d", i);
        check_value(h, owner_of(h->f, alias, live, k), alias, alias);
    }
}

/* Node i's clock seam (wall() is the time stored with entries). */
static qdb_clock *wall_clock(harness *h, int i)
{
    return qdb_fixture_host(h->f)->seams(qdb_fixture_endpoint(h->f, (unsigned)i)).clock;
}

static qdb_meta meta_of(harness *h, int to, const char *alias)
{
    GBytes *got = NULL;
    qdb_meta m = {0};
    CU_ASSERT_EQUAL(request(h, to, QDB_MSG_GET_META, alias, NULL, &got), QDB_OK);
    if (got) {
        CU_ASSERT_EQUAL(qdb_meta_decode(g_bytes_get_data(got, NULL), g_bytes_get_size(got), &m),
                        QDB_OK);
        g_bytes_unref(got);
    }
    return m;
}

static bool payload_is(GBytes *b, const char *want)
{
    bool eq = b && g_bytes_get_size(b) == strlen(want) &&
              memcmp(g_bytes_get_data(b, NULL), want, strlen(want)) == 0;
    if (b)
        g_bytes_unref(b);
    return eq;
}

/* GET_REMOVE, REMOVE_IF, GET_META, EXPIRE on one node, and the arguments the
 * node refuses whatever a client let through. */
static void test_new_requests(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_run(h, 5 * S);
    hello(h, 0);
    h_run(h, now(h) + S);
    qdb_clock *clk = wall_clock(h, 0);
    int64_t t0 = clk->wall(clk);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "e", "one", NULL), QDB_OK);
    qdb_meta m = meta_of(h, 0, "e");
    CU_ASSERT_TRUE(m.version >= (uint64_t)m.modified_us); /* the write's hybrid clock */
    CU_ASSERT_EQUAL(m.size, 3);
    CU_ASSERT_EQUAL(m.expiry_s, 0);
    CU_ASSERT_TRUE(m.created_us >= t0 && m.created_us == m.modified_us);
    h_run(h, now(h) + S);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_UPDATE, "e", "three", NULL), QDB_OK);
    qdb_meta m2 = meta_of(h, 0, "e");
    CU_ASSERT_TRUE(m2.version > m.version);
    CU_ASSERT_EQUAL(m2.size, 5);
    CU_ASSERT_EQUAL(m2.created_us, m.created_us);
    CU_ASSERT_TRUE(m2.modified_us >= m.modified_us + (int64_t)S);

    GBytes *got = NULL;
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_REMOVE_IF, "e", NULL, &got), QDB_E_UNMATCHED_CONTENT);
    CU_ASSERT_TRUE(payload_is(got, "three"));
    qdb_msg rif = {.type = QDB_MSG_REMOVE_IF, .alias = (const uint8_t *)"e", .alias_len = 1,
                   .comparand = (const uint8_t *)"three", .comparand_len = 5};
    CU_ASSERT_EQUAL(exchange(h, 0, &rif, NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_GET, "e", NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(exchange(h, 0, &rif, NULL), QDB_E_ALIAS_NOT_FOUND);

    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "g", "gone", NULL), QDB_OK);
    got = NULL;
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_GET_REMOVE, "g", NULL, &got), QDB_OK);
    CU_ASSERT_TRUE(payload_is(got, "gone"));
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_GET_REMOVE, "g", NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(stored(h, 0), 0);

    /* EXPIRE sets and clears; the content and version move as for a write */
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "x", "keep", NULL), QDB_OK);
    uint64_t put_version = meta_of(h, 0, "x").version;
    qdb_msg ex = {.type = QDB_MSG_EXPIRE, .alias = (const uint8_t *)"x", .alias_len = 1,
                  .expiry = QDB_EXPIRY_MAX};
    CU_ASSERT_EQUAL(exchange(h, 0, &ex, NULL), QDB_OK);
    m = meta_of(h, 0, "x");
    CU_ASSERT_EQUAL(m.expiry_s, QDB_EXPIRY_MAX);
    CU_ASSERT_TRUE(m.version > put_version);
    ex.expiry = 0;
    CU_ASSERT_EQUAL(exchange(h, 0, &ex, NULL), QDB_OK);
    CU_ASSERT_EQUAL(meta_of(h, 0, "x").expiry_s, 0);
    uint64_t cleared_version = meta_of(h, 0, "x").version;
    CU_ASSERT_TRUE(cleared_version > m.version);
    got = NULL;
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_GET, "x", NULL, &got), QDB_OK);
    CU_ASSERT_TRUE(payload_is(got, "keep"));

    /* refused on the node: nothing runs */
    ex.expiry = -1;
    CU_ASSERT_EQUAL(exchange(h, 0, &ex, NULL), QDB_E_INVALID_ARGUMENT);
    ex.expiry = QDB_EXPIRY_MAX + 1;
    CU_ASSERT_EQUAL(exchange(h, 0, &ex, NULL), QDB_E_INVALID_ARGUMENT);
    qdb_msg put = {.type = QDB_MSG_PUT_EX, .alias = (const uint8_t *)"y", .alias_len = 1,
                   .expiry = INT64_MIN};
    CU_ASSERT_EQUAL(exchange(h, 0, &put, NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "", "empty", NULL), QDB_E_ALIAS_EMPTY);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_GET_META, "", NULL, NULL), QDB_E_ALIAS_EMPTY);
    qdb_msg pre = {.type = QDB_MSG_PREFIX, .max = QDB_PREFIX_MAX + 1};
    CU_ASSERT_EQUAL(exchange(h, 0, &pre, NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(stored(h, 0), 1);
    CU_ASSERT_EQUAL(meta_of(h, 0, "x").version, cleared_version);
    h_free(h);
}

/* An expired entry reads as absent at once; the collector then deletes it,
 * QDB_GC_BATCH records a round. */
static void test_expiry_collected(void)
{
    harness *h = h_new_with(S, NULL);
    h_start(h, 0, -1);
    h_run(h, 5 * S);
    hello(h, 0);
    h_run(h, now(h) + S);
    qdb_clock *clk = wall_clock(h, 0);
    /* far enough for every put to be written before at */
    int64_t at = clk->wall(clk) / QDB_US_PER_S + 60;
    char alias[16];
    for (int i = 0; i < 3 * QDB_GC_BATCH; i++) {
        g_snprintf(alias, sizeof alias, "k%d", i);
        qdb_msg put = {.type = i % 2 ? QDB_MSG_PUT_EX : QDB_MSG_PUT,
                       .alias = (const uint8_t *)alias, .alias_len = strlen(alias),
                       .expiry = i % 2 ? at : 0};
        CU_ASSERT_EQUAL(exchange(h, 0, &put, NULL), QDB_OK);
    }
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_GET, "k1", NULL, NULL), QDB_OK);
    /* half a second after: at most one round ran since, visiting (and so
     * deleting) at most QDB_GC_BATCH */
    h_run(h, now(h) + (qdb_time_us)(at * QDB_US_PER_S - clk->wall(clk)) + S / 2);
    CU_ASSERT_TRUE(stored(h, 0) >= 2 * QDB_GC_BATCH);
    /* yet every expired one reads absent, at once */
    for (int i = 1; i < 3 * QDB_GC_BATCH; i += 20) {
        g_snprintf(alias, sizeof alias, "k%d", i);
        CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_GET, alias, NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    }
    h_run(h, now(h) + 5 * S); /* 5 more rounds: 3 are enough to visit all */
    CU_ASSERT_EQUAL(stored(h, 0), 3 * QDB_GC_BATCH / 2);
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, 0))->expired, 3 * QDB_GC_BATCH / 2);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_GET, "k190", NULL, NULL), QDB_OK);
    h_free(h);
}

/* Puts 100 entries into a one-node hive, then lets nodes join and leave:
 * every entry must end at its owner, once, and stay readable. */
static void test_handover_join_and_leave(void)
{
    harness *h = h_new();
    h_solo(h);
    char alias[16];
    for (int i = 0; i < 100; i++) {
        g_snprintf(alias, sizeof alias, "e%d", i);
        CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, alias, alias, NULL), QDB_OK);
    }
    h_start(h, 3, 0);
    h_start(h, 7, 0);
    h_start(h, 11, 0);
    int live[] = {0, 3, 7, 11};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 4, "e", 100, 30 * S));
    check_e_entries(h, live, 4);
    /* node 7 leaves gracefully: its entries go to node 11 */
    CU_ASSERT_TRUE(stored(h, 7) > 0);
    qdb_fixture_leave(h->f, 7);
    CU_ASSERT_TRUE_FATAL(h_until(h, gone, &(pred_arg){7, 7}, 10 * S));
    CU_ASSERT_EQUAL(stored(h, 7), 0);
    int live3[] = {0, 3, 11};
    CU_ASSERT_TRUE(h_settled(h, live3, 3, "e", 100, 20 * S));
    check_e_entries(h, live3, 3);
    h_free(h);
}

static bool holds_six(qdb_fixture *f, void *arg)
{
    (void)arg;
    return stored_at(f, 0) == 6;
}

/* Hand-over frames stay within what a node with the same max_content takes
 * (QDB_FRAME_FOR_CONTENT): 60 KiB entries under a 64 KiB maximum go two a
 * batch (max_content + 64 KiB of records), not all in one. */
static void test_handover_batches_bounded(void)
{
    limit_content = 64 << 10;
    harness *h = h_new();
    limit_content = 0;
    h_solo(h);
    h_start(h, 1, 0);
    int live[] = {0, 1};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 2, "", 0, 30 * S));
    hello(h, 0);
    hello(h, 1);
    char *big = g_malloc(60 << 10 | 1);
    memset(big, 'z', 60 << 10);
    big[60 << 10] = 0;
    char alias[16];
    int put = 0;
    for (int i = 0; put < 6 && i < 2000; i++) { /* six of node 1's */
        g_snprintf(alias, sizeof alias, "b%d", i);
        qdb_id id;
        qdb_id_hash(&id, alias, strlen(alias));
        if (qdb_fixture_owner(h->f, &id) == 1)
            put += request(h, 1, QDB_MSG_PUT, alias, big, NULL) == QDB_OK;
    }
    g_free(big);
    CU_ASSERT_EQUAL_FATAL(put, 6);
    uint64_t before = qdb_node_get_stats(node(h, 1))->handover_batches;
    qdb_fixture_leave(h->f, 1);
    CU_ASSERT_TRUE_FATAL(h_until(h, holds_six, NULL, 10 * S));
    CU_ASSERT_TRUE(qdb_node_get_stats(node(h, 1))->handover_batches - before >= 3);
    h_free(h);
}

static void test_crash_repair(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    for (int i = 1; i < 6; i++)
        h_start(h, i, 0);
    int live[] = {0, 1, 2, 3, 4, 5};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 6, "", 0, 30 * S));
    h_crash(h, 2);
    h_crash(h, 3); /* two neighbours at once: the successor list (r = 3) bridges them */
    int live4[] = {0, 1, 4, 5};
    CU_ASSERT_TRUE(h_settled(h, live4, 4, "", 0, 60 * S));
    h_free(h);
}

/* Nodes 0, 4 and 8 in a settled ring. */
static void h_three(harness *h)
{
    h_start(h, 0, -1);
    h_start(h, 4, 0);
    h_start(h, 8, 0);
    int live[] = {0, 4, 8};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 3, "", 0, 20 * S));
}

/* K = 1: a failed node's entries are "unavailable" to reads at the node that
 * inherits its range -- not "not found" -- while writes, which need no old
 * value, are accepted there; once it comes back, the newer version wins. */
static void test_failed_node_entries_unavailable(void)
{
    harness *h = h_new();
    h_three(h);
    int live[] = {0, 4, 8};
    /* an alias node 4 owns */
    char alias[16];
    int k = 0;
    do
        g_snprintf(alias, sizeof alias, "a%d", k++);
    while (owner_of(h->f, alias, live, 3) != 4);
    hello(h, 4);
    CU_ASSERT_EQUAL_FATAL(request(h, 4, QDB_MSG_PUT, alias, "kept", NULL), QDB_OK);
    h_crash(h, 4); /* its storage stays */
    int live2[] = {0, 8};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live2, 2, "", 0, 30 * S));
    hello(h, 8);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_GET, alias, NULL, NULL), QDB_E_UNAVAILABLE);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_CAS, alias, "x", NULL), QDB_E_UNAVAILABLE);
    /* a write needs no old value: accepted, and newer than the old copy */
    char other[16];
    g_snprintf(other, sizeof other, "%s-2", alias);
    while (owner_of(h->f, other, live, 3) != 4) /* a second alias of node 4's */
        g_snprintf(other, sizeof other, "%s-%d", alias, k++);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_PUT, other, "new", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_UPDATE, alias, "newer", NULL), QDB_OK);
    /* it comes back on its storage: the newer value wins over its copy */
    h_start(h, 4, 0);
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 3, "", 0, 30 * S));
    hello(h, 4);
    check_value(h, 4, alias, "newer");
    check_value(h, 4, other, "new");
    h_free(h);
}

/* ---- across a partition, on the simulated network ------------------------ */

static void test_unstable_while_joining(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_run(h, 3 * S);
    /* node 0's answers never reach node 8, which stays joining */
    qdb_fixture_block(h->f, 0, 8);
    h_start(h, 8, 0);
    hello(h, 8);
    /* node 8 has no range yet and says so */
    qdb_msg m = {.type = QDB_MSG_GET, .seq = 5, .alias = (const uint8_t *)"a", .alias_len = 1};
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, 8, &m);
    h_run(h, now(h) + 200 * MS);
    qdb_msg r;
    CU_ASSERT_TRUE(replies_for(h, QDB_MSG_REPLY, 5, &r) == 1 && r.status == QDB_E_UNSTABLE);
    CU_ASSERT_TRUE(qdb_node_is_joining(node(h, 8)));
    /* once the link heals, it joins and serves */
    qdb_fixture_heal(h->f);
    h_run(h, now(h) + 10 * S);
    CU_ASSERT_FALSE(qdb_node_is_joining(node(h, 8)));
    h_free(h);
}

/* serve_push(): a hand-over whose acknowledgement was lost (the batch
 * arrived: the newcomer does not ask again) is built again from what the
 * sender holds, never repeated.  Node 8 joins nodes 0 and 4 and takes node
 * 0's batch, empty and marked last; the answer is lost.  Node 8 crashes,
 * entries of its range are written at node 0 meanwhile, and it joins again
 * at the same address: the moment its wait ends, every one of them is
 * there.  (The old batch, repeated, ended its wait with none of them: it
 * answered "not found" for them -- or, from old storage, an older value.) */
static void test_handover_lost_ack_rebuilt(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_start(h, 4, 0);
    CU_ASSERT_TRUE_FATAL(h_until(h, ring_right, &(pred_arg){0, 4}, 20 * S));
    h_start(h, 8, 0);
    /* node 0 pushes the batch as it takes node 8 as predecessor: from then,
     * for half a second, node 8's frames to node 0 are lost -- the
     * acknowledgement with them (node 0's call times out) */
    CU_ASSERT_TRUE_FATAL(h_until(h, pred_is, &(pred_arg){0, 8}, 10 * S));
    qdb_fixture_block(h->f, 8, 0);
    CU_ASSERT_TRUE_FATAL(h_until(h, joined, &(pred_arg){8, 8}, 10 * S));
    h_run(h, now(h) + 500 * MS);
    qdb_fixture_heal(h->f);
    int live[] = {0, 4, 8}, live2[] = {0, 4};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 3, "", 0, 20 * S));
    h_crash(h, 8);
    CU_ASSERT_TRUE_FATAL(h_settled(h, live2, 2, "", 0, 30 * S));
    hello(h, 0);
    hello(h, 4);
    int mine = 0;
    char alias[16];
    for (int i = 0; i < 40; i++) {
        g_snprintf(alias, sizeof alias, "h%d", i);
        int at = owner_of(h->f, alias, live2, 2);
        CU_ASSERT_EQUAL_FATAL(request(h, at, QDB_MSG_PUT, alias, alias, NULL), QDB_OK);
        mine += owner_of(h->f, alias, live, 3) == 8;
    }
    CU_ASSERT_TRUE_FATAL(mine > 0);
    h_start(h, 8, 0);
    CU_ASSERT_TRUE_FATAL(h_until(h, joined, &(pred_arg){8, 8}, 30 * S));
    CU_ASSERT_EQUAL(stored(h, 8), mine);
    h_free(h);
}

/* ---- in virtual time, on the simulated network ---------------------------
 * Where timing is the point: exact times, or a property checked after every
 * single event. */

/* Zave: node 0's successor reports a predecessor that is dead; node 0 must
 * not adopt it. */
static void test_dead_candidate_not_adopted(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_start(h, 8, 0);
    h_run(h, 20 * S);
    int live[] = {0, 8};
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, live, 2));
    /* node 4 joins (node 8 adopts it as predecessor), then dies at once.
     * FIND at node 0, its answer (node 8 owns node 4's ID), the confirming
     * STABILIZE to node 8, its reply, then node 4's NOTIFY: five links.
     * (Node 8's admission check of node 4 leaves with its reply to that
     * STABILIZE and comes back with the NOTIFY: it costs no time.) */
    qdb_time_us t0 = now(h);
    h_start(h, 4, 0);
    CU_ASSERT_TRUE_FATAL(qdb_fixture_step_until(h->f, pred_is, &(pred_arg){8, 4}, t0 + 2 * S));
    CU_ASSERT_EQUAL(now(h), t0 + 5 * L);
    h_crash(h, 4);
    /* after every single event for 30 s: node 0 never takes the dead node */
    qdb_time_us until = now(h) + 30 * S;
    CU_ASSERT_FALSE(qdb_fixture_step_until(h->f, succ_is, &(pred_arg){0, 4}, until));
    CU_ASSERT_EQUAL(now(h), until);
    CU_ASSERT_TRUE(ring_ok(h->f, live, 2));
    h_free(h);
}

/* STATUS: the reply's fields and JSON, counters by request, the metrics;
 * STOP: refused by default, obeyed by the node that allows it (node 8). */
static char *ask_json(harness *h, int to, unsigned what, qdb_msg *r)
{
    qdb_msg m = {.type = QDB_MSG_STATUS, .what = what};
    if (!ask(h, to, &m, QDB_MSG_STATUS_REPLY, r))
        return NULL;
    return g_strndup((const char *)r->content, r->content_len);
}

static bool has_left(qdb_fixture *f, void *arg)
{
    return qdb_node_left(qdb_fixture_node(f, (unsigned)((pred_arg *)arg)->a));
}

static void test_status_and_stop(void)
{
    enable_dangerous = true;
    harness *h = h_new();
    enable_dangerous = false;
    qdb_time_us t0 = now(h);
    h_start(h, 0, -1);
    h_start(h, 4, 0);
    h_start(h, 8, 0);
    int live[] = {0, 4, 8};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 3, "", 0, 20 * S));
    CU_ASSERT_TRUE_FATAL(h_until(h, stable, &(pred_arg){4, 4}, 20 * S));
    int own = owner_of(h->f, "entry", live, 3);
    hello(h, own);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_PUT, "entry", "value", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, own, QDB_MSG_GET, "nothing", NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_node_requests(node(h, own), QDB_MSG_PUT, QDB_OK), 1);
    CU_ASSERT_EQUAL(qdb_node_requests(node(h, own), QDB_MSG_GET, QDB_E_ALIAS_NOT_FOUND), 1);
    CU_ASSERT_EQUAL(qdb_node_requests(node(h, own), QDB_MSG_GET, QDB_OK), 0);

    qdb_msg r;
    char *json = ask_json(h, 4, QDB_STATUS_NODE, &r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_EQUAL(r.flags, QDB_STATUS_F_STABLE | QDB_STATUS_F_PRED | QDB_STATUS_F_SUCC);
    CU_ASSERT_TRUE(qdb_peer_eq(&r.peer, peer(h, 4)));
    CU_ASSERT_TRUE(qdb_peer_eq(&r.pred, peer(h, 0)));
    CU_ASSERT_TRUE(qdb_peer_eq(&r.peers[0], peer(h, 8)));
    CU_ASSERT_EQUAL(r.count, own == 4 ? 1 : 0);
    char addr[QDB_ADDR_STRLEN], *want = g_strdup_printf("\"address\":\"%s\"",
                                                        qdb_addr_format(peer(h, 4)->addr, addr));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "{\"id\":\"5000000000000000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"state\":\"active\",\"stable\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"predecessor\":{\"id\":\"1000000000000000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"successors\":[{\"id\":\"9000000000000000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"status_requests\":1,"));
    /* the uptime comes from the node's clock seam: since its start */
    const char *up = strstr(json, "\"uptime_ms\":");
    CU_ASSERT_PTR_NOT_NULL_FATAL(up);
    uint64_t ms = g_ascii_strtoull(up + strlen("\"uptime_ms\":"), NULL, 10);
    CU_ASSERT_TRUE(ms > 0 && ms <= (now(h) - t0) / QDB_US_PER_MS);
    g_free(want);
    g_free(json);

    /* what = config: that part only */
    json = ask_json(h, 0, QDB_STATUS_CONFIG, &r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"config\":{\"successor_list_length\":3,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"replication_factor\":1,\"tombstone_grace_s\":86400,"
                                        "\"purge_all_enabled\":true,\"stop_enabled\":true}"));
    CU_ASSERT_PTR_NULL(strstr(json, "\"successors\""));
    g_free(json);

    /* the requests in the JSON and the metrics */
    GString *o = g_string_new("");
    qdb_node_status_json(node(h, own), QDB_STATUS_NODE, o);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->str, "\"by_request\":{\"put\":{\"ok\":1},"
                                          "\"get\":{\"alias_not_found\":1}}"));
    g_string_truncate(o, 0);
    qdb_node_metrics(node(h, own), o);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->str, "\nqdb_requests_total{type=\"put\",result=\"ok\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->str, "\nqdb_entries 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->str, "# TYPE qdb_lookups_total counter\n"));
    g_string_free(o, TRUE);

    /* STOP, enabled in this hive: node 8 obeys and leaves */
    qdb_msg stop = {.type = QDB_MSG_STOP};
    CU_ASSERT_TRUE_FATAL(ask(h, 8, &stop, QDB_MSG_STOP_REPLY, &r));
    CU_ASSERT_EQUAL(r.status, QDB_OK);
    CU_ASSERT_TRUE(h_until(h, has_left, &(pred_arg){8, 8}, 10 * S));
    int two[] = {0, 4};
    CU_ASSERT_TRUE(h_settled(h, two, 2, "entry", 0, 10 * S));
    h_free(h);
}

/* A join completes (the node has its range and serves) six link latencies
 * after it starts: FIND(own ID) at the peer and its answer, the confirming
 * STABILIZE to the successor and its reply, the NOTIFY that makes the
 * successor adopt it as predecessor, and the successor's hand-over (one
 * batch, marked last) back to it.  The successor's admission check of the
 * newcomer (a STABILIZE to it, answered with a successor list that starts
 * with the successor) leaves with the reply to the confirming STABILIZE and
 * is answered by the time the NOTIFY comes: it adds no time. */
static void test_join_time(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_run(h, 3 * S);
    qdb_time_us t0 = now(h);
    h_start(h, 1, 0);
    CU_ASSERT_TRUE(qdb_node_is_joining(node(h, 1)));
    CU_ASSERT_TRUE_FATAL(qdb_fixture_step_until(h->f, joined, &(pred_arg){1, 0}, t0 + 10 * S));
    CU_ASSERT_EQUAL(now(h), t0 + 6 * L);
    CU_ASSERT_TRUE(qdb_peer_eq(qdb_node_successor(node(h, 1)), peer(h, 0)));
    CU_ASSERT_TRUE(qdb_peer_eq(qdb_node_predecessor(node(h, 0)), peer(h, 1)));
    h_free(h);
}

/* A crashed successor is bypassed at the first round of its predecessor
 * after the crash: that round's STABILIZE finds no endpoint, and the
 * connection is refused one round trip (2L) later -- then the next entry of
 * the successor list takes over.  Rounds come every P exactly (fast = slow). */
static void test_crashed_successor_bypassed(void)
{
    const qdb_time_us P = S;
    harness *h = h_new_with(P, NULL);
    h_start(h, 0, -1);               /* rounds at P, 2P, ... */
    h_run(h, 3 * P / 10);
    h_start(h, 1, 0);                /* rounds at 0.3 s + kP */
    h_run(h, 6 * P / 10);
    h_start(h, 2, 0);                /* rounds at 0.6 s + kP */
    qdb_time_us crash_at = 10 * P + 7 * P / 10; /* between everyone's rounds */
    h_run(h, crash_at);
    int live[] = {0, 1, 2};
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, live, 3));
    h_crash(h, 1);
    CU_ASSERT_TRUE_FATAL(qdb_fixture_step_until(h->f, succ_is, &(pred_arg){0, 2}, crash_at + 5 * P));
    CU_ASSERT_EQUAL(now(h), 11 * P + 2 * L);
    /* Node 0 then asks node 2 (2L), which still names node 1 as its
     * predecessor; node 0 asks node 1 before adopting it (Zave), refused
     * (2L), and notifies node 2 (L).  Node 2 checks node 1 at once, refused
     * (2L), and takes node 0, whose NOTIFY it kept (watch.c): 9L in all. */
    int live2[] = {0, 2};
    CU_ASSERT_TRUE(qdb_fixture_step_until(h->f, ring_right, &(pred_arg){0, 2}, crash_at + 5 * P));
    CU_ASSERT_EQUAL(now(h), 11 * P + 9 * L);
    CU_ASSERT_TRUE(ring_ok(h->f, live2, 2));
    h_free(h);
}

/* ---- the neighbour watch (node/watch.c) ---------------------------------------
 * Rounds every 30 s (fast = slow), so only the watch can notice a crash in
 * time: it looks every second (no jitter), node i started at i * 0.3 s. */
static harness *h_three_watched(qdb_time_us *crash_at)
{
    harness *h = h_new_with(30 * S, NULL);
    h_start(h, 0, -1); /* looks at k s */
    h_run(h, 3 * S / 10);
    h_start(h, 1, 0);  /* at 0.3 s + k s */
    h_run(h, 6 * S / 10);
    h_start(h, 2, 0);  /* at 0.6 s + k s */
    *crash_at = 70 * S + 7 * S / 10; /* rounds long backed off; between looks */
    h_run(h, *crash_at);
    int live[] = {0, 1, 2};
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, live, 3));
    return h;
}

/* A process crash at 70.7 s.  Nodes 0 and 1 take turns on their link (a
 * PING one hears excuses its own next one): node 1's PING at 70.3 s excuses
 * node 0's look at 71 s.  Node 2's look at 71.6 s has not heard from node 1
 * since 70.3 s: its PING is refused, it clears its predecessor.  Node 0's
 * PING at 72 s is refused 2L later and the list takes over: node 0 asks
 * node 2 (2L), which names no predecessor, and notifies it (L).  Ring right
 * at 72 s + 5L, 1.35 s after the crash. */
static void test_watch_process_crash(void)
{
    qdb_time_us crash_at;
    harness *h = h_three_watched(&crash_at);
    h_crash(h, 1);
    CU_ASSERT_TRUE_FATAL(qdb_fixture_step_until(h->f, succ_is, &(pred_arg){0, 2}, crash_at + 5 * S));
    CU_ASSERT_EQUAL(now(h), 72 * S + 2 * L);
    CU_ASSERT_TRUE(qdb_fixture_step_until(h->f, ring_right, &(pred_arg){0, 2}, crash_at + 5 * S));
    CU_ASSERT_EQUAL(now(h), 72 * S + 5 * L);
    h_free(h);
}

/* A host crash (silence), the same looks: PINGs time out three times on
 * node 1's RTO (round trips of exactly 2L: the 200-ms floor), doubled by
 * each timeout, 1.4 s: node 2's from 71.6 s (predecessor cleared at 73 s),
 * node 0's from 72 s (successor dropped at 73.4 s), then node 0 asks node 2
 * and notifies it, 3L.  Ring right 2.73 s after the crash. */
static void test_watch_host_crash(void)
{
    qdb_time_us crash_at;
    harness *h = h_three_watched(&crash_at);
    qdb_simnet_set_host_down(qdb_fixture_net(h->f), peer(h, 1)->addr, true);
    h_crash(h, 1);
    CU_ASSERT_TRUE_FATAL(qdb_fixture_step_until(h->f, succ_is, &(pred_arg){0, 2}, crash_at + 10 * S));
    CU_ASSERT_EQUAL(now(h), 73 * S + 400 * MS);
    CU_ASSERT_TRUE(qdb_fixture_step_until(h->f, ring_right, &(pred_arg){0, 2}, crash_at + 10 * S));
    CU_ASSERT_EQUAL(now(h), 73 * S + 400 * MS + 3 * L);
    h_free(h);
}

/* The watch's cost in a quiet ring of eight: frames sent per node per
 * second, over 60 s with rounds every 30 s. */
static void test_watch_cost(void)
{
    harness *h = h_new_with(30 * S, NULL);
    h_start(h, 0, -1);
    for (int i = 1; i < 8; i++)
        h_start(h, i, 0);
    h_run(h, 120 * S);
    int live[] = {0, 1, 2, 3, 4, 5, 6, 7};
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, live, 8));
    uint64_t before = 0, after = 0;
    for (int i = 0; i < 8; i++)
        before += qdb_node_get_stats(node(h, i))->frames_out;
    h_run(h, 180 * S);
    for (int i = 0; i < 8; i++)
        after += qdb_node_get_stats(node(h, i))->frames_out;
    double per_node_s = (double)(after - before) / 8 / 60;
    printf("(%.2f frames/node/s) ", per_node_s);
    CU_ASSERT_TRUE(per_node_s >= 2.0 && per_node_s <= 2.5);
    h_free(h);
}

/* FINDs answered by the live nodes: every hop of every lookup. */
static uint64_t finds_total(harness *h)
{
    uint64_t t = 0;
    for (int i = 0; i < MAXN; i++)
        if (node(h, i))
            t += qdb_node_get_stats(node(h, i))->finds;
    return t;
}

/* Every finger of every live node of 0..MAXN-1 is the true successor of
 * its start (node i's ID is (i + 1) * 2^252 mod 2^256: the finger at bit
 * b >= 252 starts at node i + 2^(b - 252)'s ID, the lower ones before the
 * successor's).  `only`: that node alone (-1: all). */
static bool fingers_right(harness *h, int only)
{
    for (int i = 0; i < MAXN; i++) {
        if (!node(h, i) || (only >= 0 && i != only))
            continue;
        for (unsigned b = QDB_ID_BITS - 64; b < QDB_ID_BITS; b++) {
            int want = (i + (b < 252 ? 1 : 1 << (b - 252))) % MAXN;
            while (!node(h, want))
                want = (want + 1) % MAXN;
            const qdb_peer *got = qdb_node_finger(node(h, i), b);
            if (!got || !qdb_peer_eq(got, peer(h, want)))
                return false;
        }
    }
    return true;
}

/* Fix-fingers by time, not by rounds (ring.c): with 1-s rounds that never
 * back off, a quiet ring of 16 looks at its fingers once every
 * cfg.finger_cycle -- the fingers at +1..+3 nodes from the successor
 * list (r = 3), those at +4 and +8 by one round trip each, to the node that
 * answered last (the one before the start): 2 FINDs a node a cycle, one or
 * two cycles a node in 60 s.  Four lookups every round, as before, answered
 * about 6 FINDs a node a second.  A crash resets the cycles of the nodes
 * around it (their successor lists moved) at once; the other fingers that
 * named the dead node are right again within a cycle. */
static void test_fingers_by_time(void)
{
    harness *h = h_new_with(S, NULL);
    CU_ASSERT_EQUAL_FATAL(qdb_fixture_start_warm(h->f, 0, MAXN - 1), MAXN);
    h_run(h, 40 * S); /* every first cycle (whole lookups) is over */
    uint64_t before = finds_total(h);
    h_run(h, 100 * S);
    uint64_t finds = finds_total(h) - before;
    printf("(%" G_GUINT64_FORMAT " FINDs in 60 s) ", finds);
    CU_ASSERT_TRUE(finds >= MAXN * 2 && finds <= MAXN * 2 * 2);
    CU_ASSERT_TRUE(fingers_right(h, -1));
    h_crash(h, 4);
    h_run(h, now(h) + 5 * S);
    for (int i = 1; i <= 3; i++)
        CU_ASSERT_TRUE(fingers_right(h, i)); /* their lists moved: looked at now */
    h_run(h, now(h) + 33 * S); /* a cycle (cfg.finger_cycle, 30 s) and its round trips */
    CU_ASSERT_TRUE(fingers_right(h, -1));
    h_free(h);
}

/* ---- storage failures --------------------------------------------------------
 * Every node's store is wrapped in storage/fault.h's injector, through the
 * fixture's storage factory.  For each call of node->storage in serve.c whose
 * failure the node handles: what the client is told, that nothing changed,
 * that the node keeps serving, and that nothing acknowledged is lost. */

static qdb_storage *faulty_open(void *arg, unsigned i, char *err)
{
    return qdb_storage_fault_new(qdb_storage_memory_new());
}

static const qdb_fixture_storage faulty = {.open = faulty_open};

/* The next matching call of node i's store fails (once). */
static void fail_next(harness *h, int i, unsigned ops)
{
    qdb_storage_fault_fail_nth(store(h, i), ops, 1, false);
}

static uint64_t injected(harness *h, int i, qdb_fault_method m)
{
    qdb_fault_stats st;
    qdb_storage_fault_stats(store(h, i), &st);
    return st.injected[m];
}

/* One node on a fault-injecting store, a session, and k = "v1". */
static harness *faulty_one(void)
{
    enable_dangerous = true; /* test_storage_remove_all_fails */
    harness *h = h_new_with(0, &faulty);
    enable_dangerous = false;
    h_solo(h);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "k", "v1", NULL), QDB_OK);
    return h;
}

/* A request of each kind on k (PUT on a new alias); CAS compares with "v1". */
static int kind_request(harness *h, int type)
{
    qdb_msg m = {.type = type, .alias = (const uint8_t *)"k", .alias_len = 1,
                 .content = (const uint8_t *)"v2", .content_len = 2};
    if (type == QDB_MSG_PUT)
        m.alias = (const uint8_t *)"n";
    if (type == QDB_MSG_CAS) {
        m.comparand = (const uint8_t *)"v1";
        m.comparand_len = 2;
    }
    if (type == QDB_MSG_GET || type == QDB_MSG_REMOVE)
        m.content_len = 0;
    return exchange(h, 0, &m, NULL);
}

/* execute(): the read that comes first fails -- every kind of request is told
 * STORAGE and runs nothing. */
static void test_storage_get_fails(void)
{
    harness *h = faulty_one();
    static const int kinds[] = {QDB_MSG_GET, QDB_MSG_PUT, QDB_MSG_UPDATE, QDB_MSG_GET_UPDATE,
                                QDB_MSG_CAS, QDB_MSG_REMOVE};
    for (unsigned i = 0; i < G_N_ELEMENTS(kinds); i++) {
        fail_next(h, 0, QDB_FAULT_GET);
        CU_ASSERT_EQUAL(kind_request(h, kinds[i]), QDB_E_STORAGE);
        CU_ASSERT_EQUAL(injected(h, 0, QDB_FAULT_METHOD_GET), i + 1);
        check_value(h, 0, "k", "v1");
        check_value(h, 0, "n", NULL);
    }
    /* and it serves again: the same requests, asked anew, run */
    CU_ASSERT_EQUAL(kind_request(h, QDB_MSG_PUT), QDB_OK);
    CU_ASSERT_EQUAL(kind_request(h, QDB_MSG_CAS), QDB_OK);
    check_value(h, 0, "k", "v2");
    check_value(h, 0, "n", "v2");
    h_free(h);
}

/* store_record(): the write fails -- PUT, UPDATE, GET_UPDATE and CAS are told
 * STORAGE (GET_UPDATE without the old content) and the old value stays. */
static void test_storage_put_fails(void)
{
    harness *h = faulty_one();
    static const int kinds[] = {QDB_MSG_PUT, QDB_MSG_UPDATE, QDB_MSG_GET_UPDATE, QDB_MSG_CAS};
    for (unsigned i = 0; i < G_N_ELEMENTS(kinds); i++) {
        fail_next(h, 0, QDB_FAULT_PUT);
        GBytes *payload = NULL;
        qdb_msg m = {.type = kinds[i], .alias = (const uint8_t *)(i ? "k" : "n"), .alias_len = 1,
                     .content = (const uint8_t *)"v2", .content_len = 2,
                     .comparand = (const uint8_t *)"v1", .comparand_len = kinds[i] == QDB_MSG_CAS ? 2 : 0};
        CU_ASSERT_EQUAL(exchange(h, 0, &m, &payload), QDB_E_STORAGE);
        CU_ASSERT_TRUE(payload && g_bytes_get_size(payload) == 0);
        if (payload)
            g_bytes_unref(payload);
        CU_ASSERT_EQUAL(injected(h, 0, QDB_FAULT_METHOD_PUT), i + 1);
        check_value(h, 0, "k", "v1");
        check_value(h, 0, "n", NULL);
    }
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_UPDATE, "k", "v3", NULL), QDB_OK);
    check_value(h, 0, "k", "v3");
    h_free(h);
}

/* REMOVE: the delete fails -- told STORAGE, the entry stays. */
static void test_storage_del_fails(void)
{
    harness *h = faulty_one();
    fail_next(h, 0, QDB_FAULT_PUT); /* a removal writes a tombstone */
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_REMOVE, "k", NULL, NULL), QDB_E_STORAGE);
    CU_ASSERT_EQUAL(injected(h, 0, QDB_FAULT_METHOD_PUT), 1);
    check_value(h, 0, "k", "v1");
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_REMOVE, "k", NULL, NULL), QDB_OK);
    check_value(h, 0, "k", NULL);
    h_free(h);
}

/* REMOVE_ALL: the scan of the node's range or a delete fails -- told
 * STORAGE; what was not deleted stays readable, and it works once the store
 * does. */
static void test_storage_remove_all_fails(void)
{
    harness *h = faulty_one();
    char alias[16];
    for (int i = 0; i < 10; i++) {
        g_snprintf(alias, sizeof alias, "r%d", i);
        CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, alias, alias, NULL), QDB_OK);
    }
    qdb_msg all = {.type = QDB_MSG_REMOVE_ALL};
    fail_next(h, 0, QDB_FAULT_ITERATE);
    CU_ASSERT_EQUAL(exchange(h, 0, &all, NULL), QDB_E_STORAGE);
    CU_ASSERT_EQUAL(injected(h, 0, QDB_FAULT_METHOD_ITERATE), 1);
    CU_ASSERT_EQUAL(stored(h, 0), 11);
    int puts = (int)injected(h, 0, QDB_FAULT_METHOD_PUT);
    fail_next(h, 0, QDB_FAULT_PUT); /* its tombstones */
    CU_ASSERT_EQUAL(exchange(h, 0, &all, NULL), QDB_E_STORAGE);
    CU_ASSERT_EQUAL(injected(h, 0, QDB_FAULT_METHOD_PUT), puts + 1);
    CU_ASSERT_EQUAL(stored(h, 0), 11); /* the first tombstone failed: it stopped there */
    for (int i = 0; i < 10; i++) {
        g_snprintf(alias, sizeof alias, "r%d", i);
        check_value(h, 0, alias, alias);
    }
    CU_ASSERT_EQUAL(exchange(h, 0, &all, NULL), QDB_OK);
    CU_ASSERT_EQUAL(stored(h, 0), 0);
    h_free(h);
}

#define HO_N 40

/* Node 0 on a fault-injecting store holds HO_N entries; node 4 (also
 * faulty) is started through it, and takes over about a quarter of them.
 * Returns the time node 4 was started. */
static qdb_time_us handover_setup(harness **hp)
{
    harness *h = *hp = h_new_with(0, &faulty);
    h_solo(h);
    char alias[16];
    for (int i = 0; i < HO_N; i++) {
        g_snprintf(alias, sizeof alias, "h%d", i);
        CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, alias, alias, NULL), QDB_OK);
    }
    qdb_time_us t0 = now(h);
    h_start(h, 4, 0);
    return t0;
}

/* After a hand-over that met a failure: every entry once, at its owner,
 * readable there; the ring of two right. */
static void handover_check(harness *h)
{
    int live[] = {0, 4};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 2, "h", HO_N, 30 * S));
    CU_ASSERT_TRUE(stored(h, 4) > 0);
    hello(h, 4);
    char alias[16];
    for (int i = 0; i < HO_N; i++) {
        g_snprintf(alias, sizeof alias, "h%d", i);
        check_value(h, owner_of(h->f, alias, live, 2), alias, alias);
    }
}

/* serve_on_handover(): the receiver's write fails -- no acknowledgement, so
 * the sender keeps the entries; once its call timed out it builds the batch
 * again, and the receiver must apply it then. */
static void test_storage_handover_put_fails(void)
{
    harness *h;
    qdb_time_us t0 = handover_setup(&h);
    fail_next(h, 4, QDB_FAULT_PUT);
    CU_ASSERT_TRUE_FATAL(qdb_fixture_step_until(h->f, joined, &(pred_arg){4, 0}, t0 + 30 * S));
    CU_ASSERT_EQUAL(injected(h, 4, QDB_FAULT_METHOD_PUT), 1);
    /* In virtual time: the sender's admission check of the newcomer (a
     * STABILIZE round trip) measured its round trip, so the hand-over call
     * times out at its RTO floor (200 ms), well before the newcomer's first
     * round at t0 + 1 s, whose NOTIFY brings the batch again -- its
     * STABILIZE round trip (2L), the NOTIFY (L), the batch (L).  (Before
     * admission the first wait was rpc_timeout, 2 s, and the batch came with
     * the 4 s round.)  (On the loop the clock is real: only the outcome
     * counts.) */
    if (B.simulated)
        CU_ASSERT_EQUAL(now(h), t0 + 1 * S + 4 * L);
    handover_check(h);
    h_free(h);
}

/* serve_push(): the scan of the range to hand over fails -- nothing is sent,
 * in particular no batch marked last, which would end the newcomer's wait
 * while its entries are still at the sender (it would answer "not found"
 * for them).  The newcomer's next NOTIFY brings the push again. */
static void test_storage_handover_scan_fails(void)
{
    harness *h;
    qdb_time_us t0 = handover_setup(&h);
    fail_next(h, 0, QDB_FAULT_ITERATE);
    CU_ASSERT_TRUE_FATAL(qdb_fixture_step_until(h->f, joined, &(pred_arg){4, 0}, t0 + 30 * S));
    CU_ASSERT_EQUAL(injected(h, 0, QDB_FAULT_METHOD_ITERATE), 1);
    /* the moment it has joined, every entry it owns is there */
    int live[] = {0, 4};
    int mine = 0;
    char alias[16];
    for (int i = 0; i < HO_N; i++) {
        g_snprintf(alias, sizeof alias, "h%d", i);
        mine += owner_of(h->f, alias, live, 2) == 4;
    }
    CU_ASSERT_EQUAL(stored(h, 4), mine);
    handover_check(h);
    h_free(h);
}

/* serve_on_handover_ack(): deleting a handed-over record at the sender fails
 * -- a stale copy stays there, outside its range; it is pushed again and
 * deleted then, and the receiver keeps its own (equal or newer) copy. */
static void test_storage_handover_del_fails(void)
{
    harness *h;
    handover_setup(&h);
    fail_next(h, 0, QDB_FAULT_DEL);
    handover_check(h);
    CU_ASSERT_EQUAL(injected(h, 0, QDB_FAULT_METHOD_DEL), 1);
    h_free(h);
}

/* A storage panic (DB_RUNRECOVERY; here the fault wrapper's): the node whose
 * store failed cannot hand its entries over, so it tells its neighbours it
 * leaves without them, at once -- not after the failure detector's strikes
 * -- and stops.  Its successor takes the arc: with K = 1 its entries are
 * "unavailable" there (they may come back with the node), the others stay
 * readable. */
static bool storage_failed_at(qdb_fixture *f, void *arg)
{
    return qdb_node_storage_failed(qdb_fixture_node(f, (unsigned)((pred_arg *)arg)->a));
}

static void test_storage_panic_leaves(void)
{
    harness *h = h_new_with(0, &faulty);
    h_solo(h);
    char alias[16], mine[16] = "", theirs[16] = "";
    for (int i = 0; i < 30; i++) {
        g_snprintf(alias, sizeof alias, "p%d", i);
        CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, alias, alias, NULL), QDB_OK);
    }
    h_start(h, 4, 0);
    h_start(h, 8, 0);
    int live[] = {0, 4, 8}, live2[] = {0, 8};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 3, "p", 30, 30 * S));
    for (int i = 0; i < 30; i++) {
        g_snprintf(alias, sizeof alias, "p%d", i);
        int o = owner_of(h->f, alias, live, 3);
        if (o == 4 && !*mine)
            g_strlcpy(mine, alias, sizeof mine);
        if (o == 8 && !*theirs)
            g_strlcpy(theirs, alias, sizeof theirs);
    }
    CU_ASSERT_TRUE_FATAL(*mine && *theirs);
    hello(h, 4);
    qdb_storage_fault_panic(store(h, 4), QDB_FAULT_ALL, 1);
    qdb_time_us t0 = now(h);
    CU_ASSERT_EQUAL(request(h, 4, QDB_MSG_GET, mine, NULL, NULL), QDB_E_STORAGE);
    CU_ASSERT_TRUE(qdb_node_storage_failed(node(h, 4)));
    CU_ASSERT_TRUE(qdb_node_left(node(h, 4)));
    /* LEAVE reaches both neighbours one latency after the answer: node 8
     * takes node 0 as its predecessor, node 0 takes node 8 as successor */
    qdb_time_us quick = B.simulated ? 4 * L : 2 * S;
    CU_ASSERT_TRUE(h_until(h, pred_is, &(pred_arg){8, 0}, quick));
    CU_ASSERT_TRUE(h_until(h, succ_is, &(pred_arg){0, 8}, quick));
    if (B.simulated)
        CU_ASSERT_TRUE(now(h) - t0 <= 3 * L);
    h_crash(h, 4); /* qdbd exits there; the fixture takes it down */
    CU_ASSERT_TRUE_FATAL(h_settled(h, live2, 2, "", 0, 20 * S));
    hello(h, 8);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_GET, mine, NULL, NULL), QDB_E_UNAVAILABLE);
    check_value(h, 8, theirs, theirs);
    h_free(h);
}

/* Alone, a node whose store fails just stops: nobody to tell. */
static void test_storage_panic_alone(void)
{
    harness *h = faulty_one();
    qdb_storage_fault_panic(store(h, 0), QDB_FAULT_PUT, 1);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "n", "v", NULL), QDB_E_STORAGE);
    CU_ASSERT_TRUE(h_until(h, storage_failed_at, &(pred_arg){0, 0}, S));
    CU_ASSERT_TRUE(qdb_node_left(node(h, 0)));
    /* gone: a request gets no answer at all */
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_GET, "k", NULL, NULL), -1);
    h_free(h);
}

/* ---- routing around failures, adaptive timeouts, paused maintenance -----
 * The next-best-hop test runs on both transports; the others need the
 * simulated network (a silent host, a slow machine, 60 quiet seconds) or no
 * network at all (the RTO arithmetic), and run only there. */

/* Send FIND(target) from the raw client to node `to`, excluding `excl`, and
 * return its answer (type 0 when none came within 5 S). */
static qdb_msg find_via(harness *h, int to, const qdb_id *target, const qdb_addr *excl,
                        unsigned n_excl)
{
    qdb_msg m = {.type = QDB_MSG_FIND, .rpc = ++h->seq, .target = *target, .n_exclude = n_excl};
    if (n_excl)
        memcpy(m.exclude, excl, n_excl * sizeof(qdb_addr));
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, to, &m);
    qdb_msg r;
    if (!await_replies(h, QDB_MSG_FIND_REPLY, m.rpc, 1, &r))
        return (qdb_msg){0};
    return r; /* the peer is copied out; nothing points into the frame */
}

/* Nodes 0..7, their ring complete (fingers too), then maintenance frozen:
 * no more rounds.  The answers to the last round's calls are let in (1 S),
 * so nothing is in flight: the ring is quiet. */
static void h_eight_paused(harness *h)
{
    h_start(h, 0, -1);
    for (int i = 1; i < 8; i++)
        h_start(h, i, 0);
    static const int live[] = {0, 1, 2, 3, 4, 5, 6, 7};
    settled_arg all = settled_of(h, live, 8, "", 0);
    CU_ASSERT_TRUE_FATAL(h_until(h, ring_complete, &all, 70 * S)); /* as in test_ring_forms */
    for (int i = 0; i < 8; i++)
        qdb_node_pause_maintenance(node(h, i), true);
    h_run(h, now(h) + S);
}

/* A FIND's exclusion list: node 2 names the next live successor when the
 * asker found its successor dead, and -- with maintenance frozen -- checks
 * the report itself and repairs its successor list without a round. */
static void test_find_exclusion_repairs(void)
{
    harness *h = h_new();
    h_eight_paused(h);
    qdb_simnet_set_host_down(qdb_fixture_net(h->f), peer(h, 3)->addr, true); /* silence, no reset */
    h_crash(h, 3);
    qdb_id in3 = peer(h, 3)->id; /* owned by node 3 */
    qdb_msg r = find_via(h, 2, &in3, NULL, 0);
    CU_ASSERT_EQUAL(r.type, QDB_MSG_FIND_REPLY);
    CU_ASSERT_EQUAL(r.flags, 1);
    CU_ASSERT_TRUE(qdb_peer_eq(&r.peer, peer(h, 3))); /* it does not know yet */
    qdb_addr dead = peer(h, 3)->addr;
    r = find_via(h, 2, &in3, &dead, 1);
    CU_ASSERT_EQUAL(r.flags, 1);
    CU_ASSERT_TRUE(qdb_peer_eq(&r.peer, peer(h, 4))); /* the next live successor */
    /* the report was checked (three silent probes) and the tables repaired */
    h_run(h, now(h) + 10 * S);
    CU_ASSERT_TRUE(qdb_peer_eq(qdb_node_successor(node(h, 2)), peer(h, 4)));
    r = find_via(h, 2, &in3, NULL, 0);
    CU_ASSERT_TRUE(qdb_peer_eq(&r.peer, peer(h, 4)));
    /* a false report costs nothing: node 5 answers the probe and stays */
    qdb_addr alive = peer(h, 5)->addr;
    qdb_id in5 = peer(h, 5)->id;
    r = find_via(h, 4, &in5, &alive, 1);
    CU_ASSERT_TRUE(qdb_peer_eq(&r.peer, peer(h, 6)));
    h_run(h, now(h) + 10 * S);
    CU_ASSERT_TRUE(qdb_peer_eq(qdb_node_successor(node(h, 4)), peer(h, 5)));
    r = find_via(h, 4, &in5, NULL, 0);
    CU_ASSERT_TRUE(qdb_peer_eq(&r.peer, peer(h, 5)));
    h_free(h);
}

/* done=0 answers never name an excluded node: node 0 routes a far target
 * through its best finger, then the next best when that one is excluded. */
static void test_find_next_best_hop(void)
{
    harness *h = h_new();
    h_eight_paused(h);
    qdb_id far = peer(h, 7)->id; /* finger 255 of node 0 is node 7's... */
    qdb_msg r = find_via(h, 0, &far, NULL, 0);
    CU_ASSERT_EQUAL(r.flags, 0);
    qdb_peer best = r.peer;
    CU_ASSERT_FALSE(qdb_peer_eq(&best, peer(h, 1))); /* a finger, not the successor */
    r = find_via(h, 0, &far, &best.addr, 1);
    CU_ASSERT_EQUAL(r.type, QDB_MSG_FIND_REPLY);
    CU_ASSERT_FALSE(qdb_addr_eq(r.peer.addr, best.addr));
    CU_ASSERT_TRUE(qdb_id_in_open(&r.peer.id, &peer(h, 0)->id, &best.id)); /* next closer */
    h_free(h);
}

/* Paused, a ring does not notice a crash nobody sends to; resumed, it
 * repairs at the fast period. */
static void test_pause_maintenance(void)
{
    harness *h = h_new();
    h_eight_paused(h);
    h_run(h, now(h) + S / 2); /* the watch's PINGs sent before the pause are answered */
    h_crash(h, 3);
    h_run(h, now(h) + 60 * S);
    CU_ASSERT_TRUE(qdb_peer_eq(qdb_node_successor(node(h, 2)), peer(h, 3)));
    for (int i = 0; i < 8; i++)
        if (node(h, i))
            qdb_node_pause_maintenance(node(h, i), false);
    h_run(h, now(h) + 10 * S);
    int live[] = {0, 1, 2, 4, 5, 6, 7};
    CU_ASSERT_TRUE(ring_ok(h->f, live, 7));
    h_free(h);
}

/* A node ten times slower than the RPC timeout allows (round trips of
 * several seconds with rpc_timeout 2 s) stays in the ring: its neighbours'
 * timeouts grow to its measured round trip. */
static void test_slow_peer_kept(void)
{
    harness *h = h_new();
    qdb_simnet_set_slow(qdb_fixture_net(h->f), peer(h, 2)->addr, 150);
    h_start(h, 0, -1);
    h_start(h, 1, 0);
    h_start(h, 2, 0);
    h_run(h, 200 * S);
    int live[] = {0, 1, 2};
    CU_ASSERT_TRUE(ring_ok(h->f, live, 3));
    bool dropped = false;
    for (int k = 0; k < 60; k++) {
        h_run(h, now(h) + S);
        dropped |= !qdb_peer_eq(qdb_node_successor(node(h, 1)), peer(h, 2));
    }
    CU_ASSERT_FALSE(dropped);
    h_free(h);
}

/* rto.h's arithmetic, exactly (RFC 6298 with the SRTT / 2 variance floor). */
static void test_rto_estimator(void)
{
    const qdb_time_us ms = QDB_US_PER_MS;
    qdb_rto t;
    qdb_rto_init(&t, 2, 2 * S, 200 * ms, 60 * S);
    qdb_addr a = {1, 1}, b = {2, 2}, c = {3, 3};
    CU_ASSERT_EQUAL(qdb_rto_timeout(&t, a), 2 * S); /* never measured */
    qdb_rto_sample(&t, a, 100 * ms);                /* srtt 100, rttvar 50 */
    CU_ASSERT_EQUAL(qdb_rto_timeout(&t, a), 300 * ms);
    qdb_rto_sample(&t, a, 1000 * ms); /* rttvar (150 + 900) / 4 = 262.5, srtt 212.5 */
    CU_ASSERT_EQUAL(qdb_rto_timeout(&t, a), 212500 + 4 * 262500);
    qdb_rto_sample(&t, b, 10 * ms); /* the floor */
    CU_ASSERT_EQUAL(qdb_rto_timeout(&t, b), 200 * ms);
    qdb_rto_backoff(&t, b);
    CU_ASSERT_EQUAL(qdb_rto_timeout(&t, b), 400 * ms);
    CU_ASSERT_EQUAL(qdb_rto_expected(&t, b), 200 * ms); /* before the back-off */
    CU_ASSERT_EQUAL(qdb_rto_expected(&t, c), 2 * S);    /* never measured */
    for (int i = 0; i < 20; i++)
        qdb_rto_backoff(&t, b);
    CU_ASSERT_EQUAL(qdb_rto_timeout(&t, b), 60 * S); /* the ceiling */
    qdb_rto_sample(&t, b, 10 * ms);                /* a sample ends the back-off */
    CU_ASSERT_TRUE(qdb_rto_timeout(&t, b) < S);
    qdb_rto_timeout(&t, a);            /* a used last: b is the oldest */
    qdb_rto_sample(&t, c, 500 * ms);   /* full: evicts b */
    CU_ASSERT_EQUAL(qdb_rto_timeout(&t, b), 2 * S);
    CU_ASSERT_EQUAL(qdb_rto_timeout(&t, c), 1500 * ms);
    CU_ASSERT_EQUAL(qdb_rto_memory(&t), 2 * (sizeof(uint64_t) + sizeof(uint32_t) + sizeof(qdb_rto_entry)));
    qdb_rto_free(&t);
}

/* rto.h's evidence of life for the failure detector (node/watch.c): the
 * last answer, kept per peer with its round trip, and gone with it. */
static void test_rto_heard(void)
{
    qdb_rto t;
    qdb_rto_init(&t, 2, 2 * S, 200 * QDB_US_PER_MS, 60 * S);
    qdb_addr a = {1, 1}, b = {2, 2}, c = {3, 3};
    CU_ASSERT_EQUAL(qdb_rto_heard_at(&t, a), 0); /* never */
    qdb_rto_heard(&t, a, 5 * S);
    qdb_rto_sample(&t, b, 100 * QDB_US_PER_MS);
    CU_ASSERT_EQUAL(qdb_rto_heard_at(&t, a), 5 * S);
    CU_ASSERT_EQUAL(qdb_rto_heard_at(&t, b), 0); /* a sample alone is no answer here */
    qdb_rto_heard(&t, a, 7 * S);
    CU_ASSERT_EQUAL(qdb_rto_heard_at(&t, a), 7 * S);
    qdb_rto_backoff(&t, a); /* a timeout forgets no answer */
    CU_ASSERT_EQUAL(qdb_rto_heard_at(&t, a), 7 * S);
    qdb_rto_heard_at(&t, b); /* not a use: b stays the oldest... */
    qdb_rto_timeout(&t, a);
    qdb_rto_sample(&t, c, 100 * QDB_US_PER_MS); /* ...and is evicted */
    CU_ASSERT_EQUAL(qdb_rto_heard_at(&t, a), 7 * S);
    CU_ASSERT_EQUAL(qdb_rto_timeout(&t, b), 2 * S);
    qdb_rto_free(&t);
}

/* Hive-wide settings.  A node with its own configuration, beyond the
 * harness's 16: ID 0x18.., address 10.0.1.k. */
static int h_add_cfg(harness *h, unsigned k, qdb_node_config cfg)
{
    qdb_peer p = {.addr = {.ip = 0x0a000100u + k, .port = 2836}};
    p.id.b[0] = 0x18;
    p.id.b[1] = (uint8_t)k;
    cfg.succlist_len = 3;
    cfg.no_jitter = true;
    return (int)qdb_fixture_add_node(h->f, &p, &cfg);
}

static int h_add(harness *h, unsigned k, unsigned replication)
{
    return h_add_cfg(h, k, (qdb_node_config){.replication = replication});
}

/* An alias node `owner` owns among the live nodes, starting from prefix. */
static void alias_owned_by(harness *h, int owner, const int *live, int k, const char *prefix,
                           char *alias, size_t size)
{
    int i = 0;
    do
        g_snprintf(alias, size, "%s%d", prefix, i++);
    while (owner_of(h->f, alias, live, k) != owner);
}

/* Node 4 crashes with its storage; meanwhile its successor takes an UPDATE
 * of one of its entries and the removal of another.  Node 4 comes back on
 * its old storage: the newer value and the removal win (versions and a
 * tombstone), the old copies do not come back. */
static void test_old_storage_loses(void)
{
    harness *h = h_new();
    h_three(h);
    int live[] = {0, 4, 8};
    char upd[16], rem[16];
    alias_owned_by(h, 4, live, 3, "u", upd, sizeof upd);
    alias_owned_by(h, 4, live, 3, "r", rem, sizeof rem);
    hello(h, 4);
    h_run(h, now(h) + S);
    CU_ASSERT_EQUAL_FATAL(request(h, 4, QDB_MSG_PUT, upd, "old", NULL), QDB_OK);
    CU_ASSERT_EQUAL_FATAL(request(h, 4, QDB_MSG_PUT, rem, "old", NULL), QDB_OK);
    h_crash(h, 4);
    h_run(h, now(h) + 30 * S);
    hello(h, 8);
    h_run(h, now(h) + S);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_UPDATE, upd, "new", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_UPDATE, rem, "new", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_REMOVE, rem, NULL, NULL), QDB_OK);
    check_value(h, 8, rem, NULL);
    uint64_t dead = 0;
    qdb_record_count(store(h, 8), &dead);
    CU_ASSERT_EQUAL(dead, 1);
    h_start(h, 4, 0);
    h_run(h, now(h) + 30 * S);
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, live, 3));
    hello(h, 4);
    h_run(h, now(h) + S);
    check_value(h, 4, upd, "new");
    check_value(h, 4, rem, NULL);
    CU_ASSERT_EQUAL(stored(h, 8), 0); /* both went back to their owner */
    h_free(h);
}

/* A tombstone outlives its grace period by at most a sweep (a quarter of
 * it, or a stabilization round when rounds are longer). */
static void test_tombstone_collected(void)
{
    harness *h = h_new();
    int a = h_add_cfg(h, 1, (qdb_node_config){.tombstone_grace = 20 * S});
    h_start(h, a, -1);
    h_run(h, 2 * S);
    hello(h, a);
    h_run(h, now(h) + S);
    CU_ASSERT_EQUAL(request(h, a, QDB_MSG_PUT, "x", "v", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, a, QDB_MSG_REMOVE, "x", NULL, NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, a, QDB_MSG_REMOVE, "x", NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    uint64_t dead = 0;
    CU_ASSERT_EQUAL(qdb_record_count(store(h, a), &dead), 0);
    CU_ASSERT_EQUAL(dead, 1);
    h_run(h, now(h) + 15 * S);
    qdb_record_count(store(h, a), &dead);
    CU_ASSERT_EQUAL(dead, 1); /* within its grace period */
    h_run(h, now(h) + 60 * S);
    qdb_record_count(store(h, a), &dead);
    CU_ASSERT_EQUAL(dead, 0);
    /* written again after the removal: a new entry */
    CU_ASSERT_EQUAL(request(h, a, QDB_MSG_PUT, "x", "w", NULL), QDB_OK);
    check_value(h, a, "x", "w");
    h_free(h);
}

/* forget_node (K = 1): a failed node's arc answers "unavailable" until an
 * operator declares the node gone, through any node (this FORGET goes to
 * node 0, which passes it to node 8, the arc's new owner); then "not
 * found", and writes work.  Forgetting a live node is refused, whether asked
 * of itself or of a node that routes to it. */
static void test_forget_node(void)
{
    harness *h = h_new();
    h_three(h);
    int live[] = {0, 4, 8};
    char alias[16];
    alias_owned_by(h, 4, live, 3, "f", alias, sizeof alias);
    hello(h, 4);
    CU_ASSERT_EQUAL_FATAL(request(h, 4, QDB_MSG_PUT, alias, "old", NULL), QDB_OK);
    qdb_msg f = {.type = QDB_MSG_FORGET, .target = peer(h, 4)->id}, r;
    CU_ASSERT_TRUE_FATAL(ask(h, 4, &f, QDB_MSG_STOP_REPLY, &r));
    CU_ASSERT_EQUAL(r.status, QDB_E_REFUSED);
    CU_ASSERT_TRUE_FATAL(ask(h, 0, &f, QDB_MSG_STOP_REPLY, &r));
    CU_ASSERT_EQUAL(r.status, QDB_E_REFUSED);
    h_crash(h, 4);
    int live2[] = {0, 8};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live2, 2, "", 0, 30 * S));
    hello(h, 8);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_GET, alias, NULL, NULL), QDB_E_UNAVAILABLE);
    CU_ASSERT_TRUE_FATAL(ask(h, 0, &f, QDB_MSG_STOP_REPLY, &r));
    CU_ASSERT_EQUAL(r.status, QDB_OK);
    h_run(h, now(h) + S); /* node 0 -> node 8 */
    hello(h, 8);
    check_value(h, 8, alias, NULL);
    CU_ASSERT_EQUAL(request(h, 8, QDB_MSG_PUT, alias, "new", NULL), QDB_OK);
    check_value(h, 8, alias, "new");
    /* asked again, of the owner itself: nothing left to forget, still OK */
    CU_ASSERT_TRUE_FATAL(ask(h, 8, &f, QDB_MSG_STOP_REPLY, &r));
    CU_ASSERT_EQUAL(r.status, QDB_OK);
    h_free(h);
}

/* --dead-node-grace: the same without an operator, that long after the
 * arc was inherited, not before. */
static void test_dead_node_grace(void)
{
    harness *h = h_new();
    qdb_node_config cfg = {.dead_node_grace = 60 * S};
    int a = h_add_cfg(h, 1, cfg), b = h_add_cfg(h, 2, cfg), c = h_add_cfg(h, 3, cfg);
    h_start(h, a, -1);
    h_start(h, b, a);
    h_start(h, c, a);
    int live[] = {a, b, c};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 3, "", 0, 30 * S));
    char alias[16];
    alias_owned_by(h, b, live, 3, "g", alias, sizeof alias);
    hello(h, b);
    CU_ASSERT_EQUAL_FATAL(request(h, b, QDB_MSG_PUT, alias, "v", NULL), QDB_OK);
    h_crash(h, b);
    int live2[] = {a, c};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live2, 2, "", 0, 30 * S));
    hello(h, c);
    CU_ASSERT_EQUAL(request(h, c, QDB_MSG_GET, alias, NULL, NULL), QDB_E_UNAVAILABLE);
    h_run(h, now(h) + 20 * S); /* under a minute since the crash */
    CU_ASSERT_EQUAL(request(h, c, QDB_MSG_GET, alias, NULL, NULL), QDB_E_UNAVAILABLE);
    h_run(h, now(h) + 60 * S);
    check_value(h, c, alias, NULL);
    h_free(h);
}

/* ---- admission: forged frames from a stranger -----------------------------
 * A "rogue" endpoint on a host of its own (not a node: it only records what
 * reaches it and, like the plain TCP listener of issue 9, acknowledges every
 * HANDOVER at once).  Each attack must move, plant or reveal nothing, and
 * the node must serve throughout. */

typedef struct rogue {
    harness *h;
    qdb_host_endpoint *ep;
    qdb_addr addr;
    unsigned got[QDB_MSG_TYPE_MAX_ + 1]; /* frames received, by type */
    unsigned notifies;    /* NOTIFYs received, hints not counted */
    unsigned reply_flags; /* the flags of the last STABILIZE_REPLY received */
    /* Playing a node (a test of the ring's own frames, not an attack):
     * answers PING, and STABILIZE as a node whose predecessor and only
     * successor is `next`, with reply_extra among the flags. */
    bool plays_node;
    qdb_peer next;
    unsigned reply_extra;
    bool hold_acks; /* acknowledges no HANDOVER */
} rogue;

static void rogue_send(rogue *r, qdb_addr to, const qdb_msg *m)
{
    GByteArray *b = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(m, b), QDB_OK);
    qdb_transport *t = qdb_fixture_host(r->h->f)->seams(r->ep).transport;
    t->send(t, to, b->data, b->len);
    g_byte_array_free(b, TRUE);
}

static void rogue_recv(void *o, qdb_addr src, const uint8_t *f, size_t len)
{
    rogue *r = o;
    qdb_msg m;
    if (qdb_msg_decode(f, len, &m) != QDB_OK)
        return;
    r->got[m.type]++;
    if (m.type == QDB_MSG_NOTIFY && !(m.flags & QDB_NOTIFY_HINT))
        r->notifies++;
    if (m.type == QDB_MSG_STABILIZE_REPLY)
        r->reply_flags = m.flags;
    qdb_msg a = {.rpc = m.rpc};
    if (m.type == QDB_MSG_HANDOVER && !r->hold_acks) { /* "taken": the victim would delete them */
        a.type = QDB_MSG_HANDOVER_ACK;
        rogue_send(r, src, &a);
    } else if (r->plays_node && m.type == QDB_MSG_PING) {
        a.type = QDB_MSG_PONG;
        rogue_send(r, src, &a);
    } else if (r->plays_node && m.type == QDB_MSG_STABILIZE) {
        a.type = QDB_MSG_STABILIZE_REPLY;
        a.flags = QDB_STABILIZE_HAS_PRED | r->reply_extra;
        a.pred = r->next;
        a.n_peers = 1;
        a.peers[0] = r->next;
        rogue_send(r, src, &a);
    }
}
static const qdb_inbound rogue_ops = {.recv = rogue_recv};

static void rogue_init(rogue *r, harness *h, uint32_t ip)
{
    memset(r, 0, sizeof *r);
    r->h = h;
    r->addr = (qdb_addr){.ip = ip, .port = 2836};
    qdb_host *host = qdb_fixture_host(h->f);
    r->ep = host->attach(host, r->addr, true, 77);
    g_assert(r->ep);
    host->bind(host, r->ep, &rogue_ops, r);
}

/* A peer just before node i on the ring, at addr. */
static qdb_peer before(harness *h, int i, qdb_addr addr)
{
    qdb_peer p = {.id = peer(h, i)->id, .addr = addr};
    int k = 31;
    while (k > 0 && p.id.b[k] == 0) /* borrow */
        p.id.b[k--] = 0xff;
    p.id.b[k]--;
    return p;
}

/* A HANDOVER from r claiming `from`, with one record: alias -> value at a
 * version above any real one (a poisoning write). */
static void rogue_handover(rogue *r, qdb_addr to, const qdb_peer *from, unsigned flags,
                           const char *alias, const char *value)
{
    qdb_id id;
    qdb_id_hash(&id, (const uint8_t *)alias, strlen(alias));
    uint8_t key[QDB_KEY_MAX];
    size_t kl = qdb_record_key(key, &id, (const uint8_t *)alias, strlen(alias));
    qdb_record_meta meta = {.version = UINT64_MAX / 2, .origin = 1, .size = strlen(value)};
    GByteArray *rec = g_byte_array_new();
    qdb_record_encode(&meta, (const uint8_t *)value, rec);
    qdb_handover_builder b;
    qdb_handover_builder_init(&b);
    qdb_handover_builder_add(&b, key, kl, rec->data, rec->len);
    qdb_msg m = {.type = QDB_MSG_HANDOVER, .rpc = 9, .flags = flags, .peer = *from};
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode_handover(&m, &b, out), QDB_OK);
    qdb_transport *t = qdb_fixture_host(r->h->f)->seams(r->ep).transport;
    t->send(t, to, out->data, out->len);
    g_byte_array_free(out, TRUE);
    g_byte_array_free(rec, TRUE);
    qdb_handover_builder_clear(&b);
}

#define ADM_N 20

/* Node 0 alone with ADM_N entries and a session. */
static harness *admission_solo(void)
{
    harness *h = h_new();
    h_solo(h);
    char alias[16];
    for (int i = 0; i < ADM_N; i++) {
        g_snprintf(alias, sizeof alias, "a%d", i);
        CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, alias, alias, NULL), QDB_OK);
    }
    return h;
}

static void admission_serves(harness *h, int at)
{
    char alias[16];
    for (int i = 0; i < ADM_N; i++) {
        g_snprintf(alias, sizeof alias, "a%d", i);
        check_value(h, at, alias, alias);
    }
}

/* Issue 9's two forged frames: a NOTIFY with the joining flag from a rogue
 * listener, which then acknowledges the hand-over.  Before admission node 0
 * took the rogue as predecessor, pushed it its entries and deleted them (and
 * a one-node hive stayed "unstable" for minutes).  Now node 0 asks the rogue
 * who its successor is (one STABILIZE), gets no answer naming it, and
 * believes nothing. */
static void test_forged_notify(void)
{
    harness *h = admission_solo();
    rogue r;
    rogue_init(&r, h, 0x64400201u);
    qdb_msg m = {.type = QDB_MSG_NOTIFY, .flags = QDB_NOTIFY_JOINING,
                 .peer = before(h, 0, r.addr)};
    for (int k = 0; k < 10; k++) /* a flood costs one check at a time */
        rogue_send(&r, peer(h, 0)->addr, &m);
    h_run(h, now(h) + 10 * S);
    CU_ASSERT_EQUAL(r.got[QDB_MSG_HANDOVER], 0);
    CU_ASSERT_EQUAL(r.got[QDB_MSG_STABILIZE], 1);
    CU_ASSERT_TRUE(qdb_peer_eq(qdb_node_predecessor(node(h, 0)), peer(h, 0)));
    CU_ASSERT_TRUE(qdb_node_is_stable(node(h, 0)));
    CU_ASSERT_EQUAL(stored(h, 0), ADM_N);
    CU_ASSERT_TRUE(qdb_node_get_stats(node(h, 0))->admission_refused >= 1);
    admission_serves(h, 0);

    /* a NOTIFY naming another host than the one it comes from: no frame
     * at all goes to the address named (no connecting where a frame says) */
    rogue far;
    rogue_init(&far, h, 0x64400301u);
    m.peer = before(h, 0, far.addr);
    rogue_send(&r, peer(h, 0)->addr, &m);
    h_run(h, now(h) + 5 * S);
    unsigned total = 0;
    for (int t = 0; t <= QDB_MSG_TYPE_MAX_; t++)
        total += far.got[t];
    CU_ASSERT_EQUAL(total, 0);
    admission_serves(h, 0);
    h_free(h);
}

/* A STABILIZE from a at node i; returns the reply's flags. */
static unsigned rogue_stabilize(rogue *a, harness *h, int i, const qdb_peer *self)
{
    qdb_msg st = {.type = QDB_MSG_STABILIZE, .rpc = 50 + a->got[QDB_MSG_STABILIZE_REPLY],
                  .peer = *self};
    unsigned replies = a->got[QDB_MSG_STABILIZE_REPLY];
    rogue_send(a, peer(h, i)->addr, &st);
    h_run(h, now(h) + 1 * S);
    CU_ASSERT_EQUAL(a->got[QDB_MSG_STABILIZE_REPLY], replies + 1);
    return a->reply_flags;
}

/* A NOTIFY the successor names moot is skipped (ring.c, notify_moot): the
 * successor says so only when it would change nothing there -- from its
 * predecessor, and not while it holds entries to push it; and a node told
 * so sends none.  Node 0 and a peer playing the node just before it. */
static void test_notify_moot(void)
{
    harness *h = admission_solo();
    rogue a;
    rogue_init(&a, h, 0x64400501u);
    qdb_peer self = before(h, 0, a.addr);
    a.plays_node = true;
    a.next = *peer(h, 0);
    a.hold_acks = true;
    /* not its predecessor: no */
    CU_ASSERT_FALSE(rogue_stabilize(&a, h, 0, &self) & QDB_STABILIZE_NOTIFIED);
    qdb_msg no = {.type = QDB_MSG_NOTIFY, .peer = self};
    rogue_send(&a, peer(h, 0)->addr, &no);
    h_run(h, now(h) + 2 * S);
    CU_ASSERT_TRUE_FATAL(qdb_peer_eq(qdb_node_predecessor(node(h, 0)), &self));
    CU_ASSERT_TRUE_FATAL(qdb_peer_eq(qdb_node_successor(node(h, 0)), &self));
    /* its predecessor, but the entries of its range are still here (their
     * hand-over unacknowledged): the NOTIFY brings them again */
    CU_ASSERT_TRUE(a.got[QDB_MSG_HANDOVER] >= 1);
    CU_ASSERT_EQUAL(stored(h, 0), ADM_N);
    unsigned f = rogue_stabilize(&a, h, 0, &self);
    CU_ASSERT_TRUE((f & QDB_STABILIZE_HAS_PRED) && !(f & QDB_STABILIZE_NOTIFIED));
    a.hold_acks = false;
    rogue_send(&a, peer(h, 0)->addr, &no);
    h_run(h, now(h) + 2 * S);
    CU_ASSERT_EQUAL(stored(h, 0), 0); /* (node 0 owns a single ID) */
    CU_ASSERT_TRUE(rogue_stabilize(&a, h, 0, &self) & QDB_STABILIZE_NOTIFIED);
    /* node 0 as the asker: its rounds notify the peer (its successor) until
     * the peer's answers call the NOTIFY moot */
    unsigned asked = a.got[QDB_MSG_STABILIZE], notified = a.notifies;
    h_run(h, now(h) + 10 * S);
    CU_ASSERT_TRUE(a.got[QDB_MSG_STABILIZE] > asked);
    CU_ASSERT_TRUE(a.notifies > notified);
    a.reply_extra = QDB_STABILIZE_NOTIFIED;
    asked = a.got[QDB_MSG_STABILIZE];
    notified = a.notifies;
    h_run(h, now(h) + 10 * S);
    CU_ASSERT_TRUE(a.got[QDB_MSG_STABILIZE] > asked);
    CU_ASSERT_EQUAL(a.notifies, notified);
    h_free(h);
}

/* Forged HANDOVERs: from a stranger claiming to be itself, claiming to be
 * node 0's real successor, as replica copies -- nothing planted, nothing
 * overwritten (the records carry a version above any real one). */
static void test_forged_handover(void)
{
    harness *h = h_new();
    h_start(h, 0, -1);
    h_start(h, 4, 0);
    int live[] = {0, 4};
    CU_ASSERT_TRUE_FATAL(h_settled(h, live, 2, "", 0, 20 * S));
    char victim[16];
    alias_owned_by(h, 0, live, 2, "v", victim, sizeof victim);
    hello(h, 0);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, victim, "good", NULL), QDB_OK);
    rogue r;
    rogue_init(&r, h, 0x64400201u);
    qdb_peer self = before(h, 0, r.addr);
    rogue_handover(&r, peer(h, 0)->addr, &self, QDB_HANDOVER_LAST, victim, "evil");
    rogue_handover(&r, peer(h, 0)->addr, &self, 0, "planted", "evil");
    rogue_handover(&r, peer(h, 0)->addr, peer(h, 4), 0, victim, "evil"); /* not its host */
    rogue_handover(&r, peer(h, 0)->addr, &self, QDB_HANDOVER_REPLICA, victim, "evil");
    h_run(h, now(h) + 5 * S);
    CU_ASSERT_EQUAL(r.got[QDB_MSG_HANDOVER_ACK], 0);
    check_value(h, 0, victim, "good");
    int own = owner_of(h->f, "planted", live, 2);
    hello(h, own);
    check_value(h, own, "planted", NULL);
    /* the stranger's three claims cost one check (a STABILIZE it does not
     * answer); the one in node 4's name from another host, none */
    CU_ASSERT_EQUAL(r.got[QDB_MSG_STABILIZE], 1);
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, 0))->admission_refused, 2);
    /* a forged LEAVE in node 4's name, from the rogue's host: ignored */
    qdb_msg leave = {.type = QDB_MSG_LEAVE, .peer = *peer(h, 4), .pred = self, .n_peers = 1};
    leave.peers[0] = self;
    rogue_send(&r, peer(h, 0)->addr, &leave);
    h_run(h, now(h) + 3 * S);
    CU_ASSERT_TRUE(qdb_peer_eq(qdb_node_successor(node(h, 0)), peer(h, 4)));
    CU_ASSERT_TRUE(ring_ok(h->f, live, 2));
    h_free(h);
}

/* A node started with a live node's ID is refused with a clear reason. */
static void test_id_collision_refused(void)
{
    harness *h = admission_solo();
    qdb_peer twin = {.id = peer(h, 0)->id, .addr = {.ip = 0x0a000177u, .port = 2836}};
    qdb_node_config cfg = {.succlist_len = 3, .no_jitter = true};
    int t = (int)qdb_fixture_add_node(h->f, &twin, &cfg);
    h_start(h, t, 0);
    h_run(h, now(h) + 10 * S);
    const char *why = qdb_node_refusal(node(h, t));
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "already has ID"));
    CU_ASSERT_TRUE(qdb_node_left(node(h, t)));
    CU_ASSERT_TRUE(qdb_peer_eq(qdb_node_predecessor(node(h, 0)), peer(h, 0)));
    admission_serves(h, 0);
    h_free(h);
}

/* Sessions end with their connection: a request that reuses a closed
 * connection's address, without HELLO, and the seq of the last client's
 * request, is told NO_SESSION -- not "success" from that client's reply
 * memory -- and runs nothing. */
static void test_session_gone(void)
{
    harness *h = admission_solo();
    qdb_msg m = {.type = QDB_MSG_PUT, .alias = (const uint8_t *)"s1", .alias_len = 2,
                 .content = (const uint8_t *)"v", .content_len = 1};
    CU_ASSERT_EQUAL(exchange(h, 0, &m, NULL), QDB_OK);
    qdb_addr me = {.ip = 0x64400101u, .port = 40000}; /* the raw client's */
    qdb_node_inbound.gone(node(h, 0), me);
    m.alias = (const uint8_t *)"s2";
    h->seq--; /* the same seq again */
    CU_ASSERT_EQUAL(exchange(h, 0, &m, NULL), QDB_E_NO_SESSION);
    hello(h, 0);
    check_value(h, 0, "s2", NULL);
    h_free(h);
}

/* Announce a request for alias to node 0 (qdb_inbound.ahead), as the real
 * loop does with the frames of a pipelined batch; NULL: end the batch. */
static void announce(harness *h, const char *alias)
{
    if (alias == NULL) {
        qdb_node_inbound.ahead(node(h, 0), (qdb_addr){0}, NULL, 0);
        return;
    }
    qdb_msg m = {.type = QDB_MSG_GET, .seq = 999, .alias = (const uint8_t *)alias,
                 .alias_len = strlen(alias)};
    GByteArray *b = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(&m, b), QDB_OK);
    qdb_node_inbound.ahead(node(h, 0), (qdb_addr){0}, b->data, b->len);
    g_byte_array_free(b, TRUE);
}

/* The IDs of aliases announced ahead are used for those aliases only: a
 * request for another alias, an announcement never followed by its request,
 * frames that are no request, and batches beyond the memo's 32 slots change
 * no answer. */
static void test_ahead(void)
{
    harness *h = h_new();
    h_solo(h);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "x", "vx", NULL), QDB_OK);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "y", "vy", NULL), QDB_OK);
    const qdb_node_stats *st = qdb_node_get_stats(node(h, 0));
    uint64_t used = st->ids_ahead;
    uint8_t junk[] = {0, 0, 0, 2, 0xff, 0xff};
    qdb_node_inbound.ahead(node(h, 0), (qdb_addr){0}, junk, sizeof junk);
    announce(h, "x");
    announce(h, NULL);
    check_value(h, 0, "y", "vy"); /* not with x's ID */
    CU_ASSERT_EQUAL(st->ids_ahead, used);
    check_value(h, 0, "x", "vx");
    CU_ASSERT_EQUAL(st->ids_ahead, used + 1);
    char alias[16];
    for (int i = 0; i < 40; i++) {
        g_snprintf(alias, sizeof alias, "k%d", i);
        announce(h, alias);
    }
    announce(h, NULL);
    used = st->ids_ahead;
    for (int i = 0; i < 40; i++) {
        g_snprintf(alias, sizeof alias, "k%d", i);
        CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, alias, alias, NULL), QDB_OK);
    }
    CU_ASSERT_EQUAL(st->ids_ahead, used + 32); /* the rest was hashed when served */
    for (int i = 0; i < 40; i++) {
        g_snprintf(alias, sizeof alias, "k%d", i);
        check_value(h, 0, alias, alias);
    }
    check_value(h, 0, "x", "vx");
    h_free(h);
}

/* Connection classes: a client's session sending node messages gets no
 * answer and moves nothing; a node's connection cannot open a session. */
static void test_classes(void)
{
    harness *h = admission_solo();
    qdb_addr me = {.ip = 0x64400101u, .port = 40000}; /* the raw client's */
    qdb_msg st = {.type = QDB_MSG_STABILIZE, .rpc = 5, .peer = before(h, 0, me)};
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, 0, &st); /* the topology, asked on a client's session */
    qdb_msg no = {.type = QDB_MSG_NOTIFY, .flags = QDB_NOTIFY_JOINING, .peer = st.peer};
    send_msg(h, 0, &no);
    h_run(h, now(h) + 3 * S);
    CU_ASSERT_EQUAL(replies_for(h, QDB_MSG_STABILIZE_REPLY, 5, NULL), 0);
    CU_ASSERT_TRUE(qdb_peer_eq(qdb_node_predecessor(node(h, 0)), peer(h, 0)));
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, 0))->class_refused, 2);
    admission_serves(h, 0);
    /* a rogue that spoke as a node, then says HELLO: refused */
    rogue r;
    rogue_init(&r, h, 0x64400201u);
    qdb_msg hint = {.type = QDB_MSG_NOTIFY, .flags = QDB_NOTIFY_HINT, .peer = before(h, 0, r.addr)};
    rogue_send(&r, peer(h, 0)->addr, &hint);
    qdb_msg hi = {.type = QDB_MSG_HELLO, .seq = 1};
    rogue_send(&r, peer(h, 0)->addr, &hi);
    h_run(h, now(h) + 2 * S);
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, 0))->class_refused, 3);
    CU_ASSERT_EQUAL(r.got[QDB_MSG_REPLY], 1); /* QDB_E_REFUSED */
    h_free(h);
}

/* REMOVE_ALL and STOP are off unless the hive enables them: answered
 * QDB_E_DISABLED, nothing removed, nobody leaves.  A node that asks for them
 * joining a hive without them is refused; one without an opinion adopts the
 * hive's. */
static void test_dangerous_off(void)
{
    harness *h = h_new();
    h_solo(h);
    CU_ASSERT_EQUAL(request(h, 0, QDB_MSG_PUT, "keep", "v", NULL), QDB_OK);
    qdb_msg all = {.type = QDB_MSG_REMOVE_ALL};
    CU_ASSERT_EQUAL(exchange(h, 0, &all, NULL), QDB_E_DISABLED);
    check_value(h, 0, "keep", "v");
    qdb_msg stop = {.type = QDB_MSG_STOP}, r;
    CU_ASSERT_TRUE_FATAL(ask(h, 0, &stop, QDB_MSG_STOP_REPLY, &r));
    CU_ASSERT_EQUAL(r.status, QDB_E_DISABLED);
    CU_ASSERT_FALSE(qdb_node_leaving(node(h, 0)));
    CU_ASSERT_STRING_EQUAL(qdb_strerror(QDB_E_DISABLED), "operation disabled in this hive");
    int asks = h_add_cfg(h, 1, (qdb_node_config){.enable_purge_all = true});
    h_start(h, asks, 0);
    h_run(h, 10 * S);
    const char *why = qdb_node_refusal(node(h, asks));
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "--enable-purge-all"));
    h_free(h);

    /* enabled by the first node: a node without an opinion adopts it */
    harness *e = h_new();
    int first = h_add_cfg(e, 1, (qdb_node_config){.enable_purge_all = true, .enable_stop = true});
    h_start(e, first, -1);
    h_start(e, 0, first);
    h_run(e, 10 * S);
    CU_ASSERT_PTR_NULL(qdb_node_refusal(node(e, 0)));
    GString *o = g_string_new("");
    qdb_node_status_json(node(e, 0), QDB_STATUS_CONFIG, o);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->str, "\"purge_all_enabled\":true,\"stop_enabled\":true}"));
    g_string_free(o, TRUE);
    h_free(e);
}

static void test_hive_settings(void)
{
    harness *h = h_new();
    int a = h_add(h, 1, 3), adopt = h_add(h, 2, 0), other = h_add(h, 3, 2), same = h_add(h, 4, 3);
    int big = h_add(h, 5, QDB_REPLICATION_MAX + 1);
    h_start(h, a, -1);
    CU_ASSERT_EQUAL(qdb_node_replication(node(h, a)), 3);
    h_start(h, adopt, a);
    h_start(h, other, a);
    h_start(h, same, a);
    CU_ASSERT_EQUAL(qdb_node_replication(node(h, adopt)), 0); /* not told yet */
    h_run(h, 20 * S);
    CU_ASSERT_EQUAL(qdb_node_replication(node(h, adopt)), 3);
    CU_ASSERT_PTR_NULL(qdb_node_refusal(node(h, adopt)));
    CU_ASSERT_EQUAL(qdb_node_replication(node(h, same)), 3);
    CU_ASSERT_PTR_NULL(qdb_node_refusal(node(h, same)));
    /* a different explicit value: refused before taking any part of the ring */
    const char *why = qdb_node_refusal(node(h, other));
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "--replication=2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "3 copies"));
    CU_ASSERT_TRUE(qdb_node_left(node(h, other)));
    int live[] = {a, adopt, same};
    CU_ASSERT_TRUE(ring_ok(h->f, live, 3));
    /* out of range: the node is not created */
    qdb_addr pa = peer(h, a)->addr;
    CU_ASSERT_FALSE(qdb_fixture_start(h->f, (unsigned)big, &pa, 1));
    CU_ASSERT_PTR_NOT_NULL(strstr(qdb_fixture_errmsg(h->f), "replication 5"));

    /* A default hive sends no setting: an explicit 1 joins, a 2 is refused. */
    h_start(h, 0, -1);
    h_start(h, 1, 0);
    int one = h_add(h, 6, 1), two = h_add(h, 7, 2);
    h_start(h, one, 0);
    h_start(h, two, 1);
    h_run(h, now(h) + 20 * S);
    CU_ASSERT_EQUAL(qdb_node_replication(node(h, 1)), 1);
    CU_ASSERT_PTR_NULL(qdb_node_refusal(node(h, one)));
    CU_ASSERT_PTR_NOT_NULL(qdb_node_refusal(node(h, two)));
    h_free(h);
}

/* Does node i hold a live copy of alias with this content? */
/* want NULL: a tombstone */
static bool holds_copy(harness *h, int i, const char *alias, const char *want)
{
    qdb_id id;
    qdb_id_hash(&id, alias, strlen(alias));
    uint8_t key[QDB_KEY_MAX];
    size_t kl = qdb_record_key(key, &id, (const uint8_t *)alias, strlen(alias));
    uint8_t *v;
    size_t vl;
    qdb_storage *st = store(h, i);
    if (!st || st->get(st, key, kl, &v, &vl) != QDB_OK)
        return false;
    qdb_record_meta meta;
    const uint8_t *c;
    bool ok = qdb_record_decode(v, vl, &meta, &c) == QDB_OK &&
              (want ? !meta.tombstone && meta.size == strlen(want) &&
                          memcmp(c, want, meta.size) == 0
                    : meta.tombstone);
    g_free(v);
    return ok;
}

/* K copies: a hive of five with replication K (fixed by its first node,
 * adopted by the others); 40 entries, 5 of them removed; every live entry
 * is on its owner and the next K - 1 nodes.  Then K - 1 adjacent nodes
 * crash and lose their storage: every entry is still answered by the new
 * owners, the removed ones stay removed, none is "unavailable"; and repair
 * brings every entry back to min(K, live) copies. */
/* A settled ring of five with replication k, a session with each node:
 * ring5[] = {the node that fixed k, 2, 4, 6, 8}. */
static harness *h_ring5(unsigned k, int ring5[5])
{
    harness *h = h_new();
    int a = h_add_cfg(h, 1, (qdb_node_config){.replication = k, .enable_purge_all = true});
    int r[] = {a, 2, 4, 6, 8};
    memcpy(ring5, r, sizeof r);
    h_start(h, a, -1);
    for (int j = 1; j < 5; j++)
        h_start(h, ring5[j], a);
    h_run(h, 30 * S);
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, ring5, 5));
    for (int j = 0; j < 5; j++) {
        CU_ASSERT_EQUAL(qdb_node_replication(node(h, ring5[j])), k);
        hello(h, ring5[j]);
    }
    h_run(h, now(h) + S);
    return h;
}

static void replicas_survive(unsigned k)
{
    int ring5[5];
    harness *h = h_ring5(k, ring5);
    char alias[16], value[16];
    for (int e = 0; e < 40; e++) {
        g_snprintf(alias, sizeof alias, "e%d", e);
        g_snprintf(value, sizeof value, "v%d", e);
        int own = owner_of(h->f, alias, ring5, 5);
        CU_ASSERT_EQUAL(request(h, own, QDB_MSG_PUT, alias, value, NULL), QDB_OK);
        if (e % 8 == 0)
            CU_ASSERT_EQUAL(request(h, own, QDB_MSG_REMOVE, alias, NULL, NULL), QDB_OK);
    }
    for (int e = 0; e < 40; e++) {
        g_snprintf(alias, sizeof alias, "e%d", e);
        g_snprintf(value, sizeof value, "v%d", e);
        int own = owner_of(h->f, alias, ring5, 5), at = 0;
        while (ring5[at] != own)
            at++;
        for (int j = 0; j < 5; j++) {
            bool replica = (unsigned)((j - at + 5) % 5) < k;
            CU_ASSERT_EQUAL(holds_copy(h, ring5[j], alias, value), replica && e % 8 != 0);
        }
    }
    /* K - 1 adjacent nodes crash, their storage lost */
    for (unsigned j = 0; j < k - 1; j++)
        qdb_fixture_crash(h->f, (unsigned)ring5[2 + j], false);
    int live[5], nl = 0;
    for (int j = 0; j < 5; j++)
        if (j < 2 || j >= 2 + (int)k - 1)
            live[nl++] = ring5[j];
    h_run(h, now(h) + 60 * S);
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, live, nl));
    for (int j = 0; j < nl; j++)
        hello(h, live[j]);
    h_run(h, now(h) + S);
    for (int e = 0; e < 40; e++) {
        g_snprintf(alias, sizeof alias, "e%d", e);
        g_snprintf(value, sizeof value, "v%d", e);
        int own = owner_of(h->f, alias, live, nl);
        check_value(h, own, alias, e % 8 ? value : NULL);
        int copies = 0;
        for (int j = 0; j < nl; j++)
            copies += holds_copy(h, live[j], alias, value);
        CU_ASSERT_EQUAL(copies, e % 8 ? (int)MIN(k, (unsigned)nl) : 0);
    }
    h_free(h);
}

/* K = 2: the copies a joining replica gets are batched within max_content
 * + 64 KiB of records, as hand-over is: six entries of 60 KiB under a 64 KiB
 * maximum take at least three frames, not one. */
static void test_replica_batches_bounded(void)
{
    harness *h = h_new();
    int a = h_add_cfg(h, 1, (qdb_node_config){.replication = 2, .max_content = 64 << 10});
    h_start(h, a, -1);
    CU_ASSERT_TRUE_FATAL(h_until(h, pred_is, &(pred_arg){a, a}, 5 * S));
    hello(h, a);
    char *big = g_malloc((60 << 10) + 1), alias[16];
    memset(big, 'r', 60 << 10);
    big[60 << 10] = 0;
    for (int i = 0; i < 6; i++) {
        g_snprintf(alias, sizeof alias, "r%d", i);
        CU_ASSERT_EQUAL(request(h, a, QDB_MSG_PUT, alias, big, NULL), QDB_OK);
    }
    uint64_t before = qdb_node_get_stats(node(h, a))->handover_batches;
    h_start(h, 4, a);
    h_run(h, now(h) + 20 * S);
    int two[] = {a, 4};
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, two, 2));
    for (int i = 0; i < 6; i++) {
        g_snprintf(alias, sizeof alias, "r%d", i);
        CU_ASSERT_TRUE(holds_copy(h, 4, alias, big));
    }
    g_free(big);
    CU_ASSERT_TRUE(qdb_node_get_stats(node(h, a))->handover_batches - before >= 3);
    h_free(h);
}

/* A settled two-node ring with K = 2: node `*a` (added with replication 2)
 * and node 4, which joined through it; two[] = {*a, 4}. */
static harness *h_pair_k2(int *a, int two[2])
{
    harness *h = h_new();
    *a = h_add_cfg(h, 1, (qdb_node_config){.replication = 2});
    two[0] = *a;
    two[1] = 4;
    h_start(h, *a, -1);
    h_start(h, 4, *a);
    h_run(h, 20 * S);
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, two, 2));
    return h;
}

/* K = 2: the first copy to the replica is lost (the link blocked for a
 * moment): the owner answers only after the copy went again and was
 * applied, and the replica holds the value. */
static void test_replica_copy_resent(void)
{
    int a, two[2];
    harness *h = h_pair_k2(&a, two);
    char alias[16];
    alias_owned_by(h, a, two, 2, "c", alias, sizeof alias);
    hello(h, a);
    h_run(h, now(h) + S);
    qdb_simnet *net = qdb_fixture_net(h->f);
    qdb_simnet_block(net, peer(h, a)->addr, peer(h, 4)->addr);
    qdb_msg m = {.type = QDB_MSG_PUT, .alias = (const uint8_t *)alias, .alias_len = strlen(alias),
                 .content = (const uint8_t *)"v", .content_len = 1, .seq = ++h->seq};
    g_ptr_array_set_size(h->replies, 0);
    send_msg(h, a, &m);
    h_run(h, now(h) + 100 * MS);
    CU_ASSERT_EQUAL(h->replies->len, 0); /* not answered: the replica does not have it */
    CU_ASSERT_FALSE(holds_copy(h, 4, alias, "v"));
    qdb_simnet_unblock(net, peer(h, a)->addr, peer(h, 4)->addr);
    h_run(h, now(h) + 5 * S);
    CU_ASSERT_EQUAL(h->replies->len, 1);
    CU_ASSERT_TRUE(holds_copy(h, 4, alias, "v"));
    h_free(h);
}

/* Repair by digest.  K = 2 on nodes a, 4 and 8: node `a` owns 10,000
 * entries, node 4 (its successor) is its replica.  Node 4 is cut off for
 * 30 s (node 8 replaces it as a's replica) while 10 entries change; when it
 * is back, a's repair compares digests and sends the few records of the
 * differing buckets, not the 10,000 it sent before digests.  Then node 4
 * restarts with its storage lost: every bucket differs, the whole range
 * goes (here through 8's hand-over to the rejoining node, which sends what
 * 8 holds outside its range).  Both costs are printed. */
static uint64_t repair_bytes(harness *h, const int *nodes, int k, uint64_t *records,
                             uint64_t *handed)
{
    uint64_t b = 0;
    *records = *handed = 0;
    for (int j = 0; j < k; j++) {
        const qdb_node_stats *st = qdb_node_get_stats(node(h, nodes[j]));
        b += st->repair_bytes;
        *records += st->repair_sent;
        *handed += st->handover_sent;
    }
    return b;
}

static int add_record_bytes(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    *(uint64_t *)arg += kl + vl + 2; /* and two length varints */
    return 0;
}

/* Update 10 of names at a, with 4 cut off or down; bring it back; the
 * repair bytes and records (and hand-over records) all nodes sent. */
static uint64_t replica_back(harness *h, int a, int three[3], GPtrArray *names, bool crash,
                             int round, uint64_t *records, uint64_t *handed)
{
    int others[] = {a, 8};
    uint64_t r0, h0, b0;
    if (crash) {
        qdb_fixture_crash(h->f, 4, false);
    } else {
        qdb_fixture_set_group(h->f, 4, 1);
        qdb_fixture_set_group(h->f, a, 2);
        qdb_fixture_set_group(h->f, 8, 2);
    }
    h_run(h, now(h) + 30 * S);
    hello(h, a);
    char value[16];
    g_snprintf(value, sizeof value, "new%d", round);
    for (int e = 0; e < 10; e++)
        CU_ASSERT_EQUAL(request(h, a, QDB_MSG_UPDATE, names->pdata[e * 997], value, NULL), QDB_OK);
    if (crash) {
        b0 = repair_bytes(h, others, 2, &r0, &h0); /* node 4 starts from 0 */
        h_start(h, 4, a);
    } else {
        b0 = repair_bytes(h, three, 3, &r0, &h0);
        qdb_fixture_heal(h->f);
    }
    h_run(h, now(h) + 60 * S);
    CU_ASSERT_TRUE(ring_ok(h->f, three, 3));
    uint64_t r1, h1, b1 = repair_bytes(h, three, 3, &r1, &h1);
    *records = r1 - r0;
    *handed = h1 - h0;
    for (int e = 0; e < 10; e++)
        CU_ASSERT_TRUE(holds_copy(h, 4, names->pdata[e * 997], value));
    CU_ASSERT_EQUAL(qdb_record_count(store(h, 4), NULL), 10000);
    return b1 - b0;
}

/* Bytes of hand-over and repair frames the nodes sent. */
static uint64_t moved_bytes(harness *h, const int *nodes, int k)
{
    uint64_t b = 0;
    for (int j = 0; j < k; j++) {
        const qdb_node_stats *st = qdb_node_get_stats(node(h, nodes[j]));
        b += st->handover_bytes + st->repair_bytes;
    }
    return b;
}

/* Node 4 restarts on its old store after missing 10 changes: its
 * successor's hand-over carries what the rejoin digest says differs
 * (stray.h), not the whole share.  Returns the bytes every node sent. */
static uint64_t replica_restarted(harness *h, int a, int three[3], GPtrArray *names)
{
    int others[] = {a, 8};
    qdb_fixture_crash(h->f, 4, true);
    h_run(h, now(h) + 30 * S);
    hello(h, a);
    for (int e = 0; e < 10; e++)
        CU_ASSERT_EQUAL(request(h, a, QDB_MSG_UPDATE, names->pdata[e * 997 + 1], "kept", NULL),
                        QDB_OK);
    uint64_t b0 = moved_bytes(h, others, 2); /* node 4's own count starts from 0 */
    h_start(h, 4, a);
    h_run(h, now(h) + 60 * S);
    CU_ASSERT_TRUE(ring_ok(h->f, three, 3));
    for (int e = 0; e < 10; e++)
        CU_ASSERT_TRUE(holds_copy(h, 4, names->pdata[e * 997 + 1], "kept"));
    CU_ASSERT_EQUAL(qdb_record_count(store(h, 4), NULL), 10000);
    return moved_bytes(h, three, 3) - b0;
}

static void test_repair_by_digest(void)
{
    harness *h = h_new();
    int a = h_add_cfg(h, 1, (qdb_node_config){.replication = 2}), three[] = {a, 4, 8};
    h_start(h, a, -1);
    h_start(h, 4, a);
    h_start(h, 8, a);
    h_run(h, 30 * S);
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, three, 3));
    hello(h, a);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free); /* the 10,000 node a owns */
    for (int i = 0; names->len < 10000; i++) {
        char *alias = g_strdup_printf("d%d", i);
        if (owner_of(h->f, alias, three, 3) != a) {
            g_free(alias);
            continue;
        }
        CU_ASSERT_EQUAL(request(h, a, QDB_MSG_PUT, alias, "v", NULL), QDB_OK);
        g_ptr_array_add(names, alias);
    }
    CU_ASSERT_EQUAL_FATAL(qdb_record_count(store(h, 4), NULL), 10000);
    /* what a full copy of the range weighs: the records, as HANDOVER frames
     * carry them (what repair sent before digests, on every return) */
    uint64_t full = 0;
    store(h, a)->iterate(store(h, a), NULL, 0, NULL, 0, add_record_bytes, &full);
    uint64_t cut_records, cut_handed, lost_records, lost_handed;
    uint64_t cut = replica_back(h, a, three, names, false, 1, &cut_records, &cut_handed);
    uint64_t lost = replica_back(h, a, three, names, true, 2, &lost_records, &lost_handed);
    printf("\n    10 of 10,000 changed while the replica was away (a full copy: %" G_GUINT64_FORMAT
           " bytes): back from a cut, repair sent %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT
           " records (hand-over %" G_GUINT64_FORMAT "); restarted on an empty disk, repair %"
           G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " records, hand-over %" G_GUINT64_FORMAT
           " records ", full, cut, cut_records, cut_handed, lost, lost_records, lost_handed);
    /* a digest bucket (~38 records) per change, sent by the node that took
     * the range over during the cut -- and, for half as many, by node 4:
     * cut off alone, it keeps its last silent peer a second strike-out
     * (ring.c, forget_silent), so it is still no ring of one at the heal
     * and compares its own range with that peer */
    CU_ASSERT_TRUE(cut_records >= 10 && cut_records < 1000 && cut_handed == 0);
    CU_ASSERT_TRUE(cut * 10 < full);
    CU_ASSERT_TRUE(lost_records + lost_handed >= 10000);
    uint64_t kept = replica_restarted(h, a, three, names);
    printf("\n    restarted on its old store after 10 changes: %" G_GUINT64_FORMAT
           " bytes of hand-over and repair (a full copy: %" G_GUINT64_FORMAT ") ", kept, full);
    CU_ASSERT_TRUE(kept * 10 < full);
    g_ptr_array_free(names, TRUE);
    h_free(h);
}

/* Repair of an arc that wraps past zero (issue 8).  K = 2 on nodes with
 * IDs 18 01.., 18 02.. and 18 03..: the first owns (18 03.., 18 01..],
 * most of the circle, across zero.  Its replica crashes with its storage
 * lost, and its repair copies the arc to the third, in batches of 4
 * records.  A batch filled before zero used to take one record after it
 * as well (the storage scan of [0, 18 01..] ran although the callback had
 * stopped the first), and the next batch began there: the records of the
 * arc before zero after the first batch never went, until anti-entropy. */
typedef struct copies_arg {
    harness *h;
    int at;
    GPtrArray *names;
} copies_arg;

static bool holds_all(qdb_fixture *f, void *arg)
{
    copies_arg *c = arg;
    (void)f;
    for (guint i = 0; i < c->names->len; i++)
        if (!holds_copy(c->h, c->at, c->names->pdata[i], "v"))
            return false;
    return true;
}

static void test_repair_wrapping_arc(void)
{
    harness *h = h_new();
    qdb_node_config cfg = {.replication = 2, .handover_batch = 4};
    int three[] = {h_add_cfg(h, 1, cfg), h_add_cfg(h, 2, cfg), h_add_cfg(h, 3, cfg)};
    h_start(h, three[0], -1);
    h_start(h, three[1], three[0]);
    h_start(h, three[2], three[0]);
    h_run(h, 30 * S);
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, three, 3));
    hello(h, three[0]);
    /* 16 entries before zero and 3 after it, all node three[0]'s */
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    int before = 0, after = 0;
    for (int i = 0; before < 16 || after < 3; i++) {
        char *alias = g_strdup_printf("w%d", i);
        qdb_id id;
        qdb_id_hash(&id, alias, strlen(alias));
        bool past_zero = id.b[0] < 0x18;
        if (owner_of(h->f, alias, three, 3) != three[0] || (past_zero ? after >= 3 : before >= 16)) {
            g_free(alias);
            continue;
        }
        CU_ASSERT_EQUAL(request(h, three[0], QDB_MSG_PUT, alias, "v", NULL), QDB_OK);
        g_ptr_array_add(names, alias);
        *(past_zero ? &after : &before) += 1;
    }
    copies_arg c = {h, three[1], names};
    CU_ASSERT_TRUE(holds_all(h->f, &c));
    qdb_fixture_crash(h->f, (unsigned)three[1], false);
    c.at = three[2];
    /* well before anti-entropy (QDB_ANTI_ENTROPY_US) would send more */
    CU_ASSERT_TRUE(h_until(h, holds_all, &c, 20 * S));
    g_ptr_array_free(names, TRUE);
    h_free(h);
}

/* K = 2: what get_remove, remove_if, expire and the expiry collector write
 * reaches the replica as well, removals as tombstones. */
static void test_ext_writes_replicated(void)
{
    int a, two[2];
    harness *h = h_pair_k2(&a, two);
    char gr[16], ri[16], ex[16];
    alias_owned_by(h, a, two, 2, "g", gr, sizeof gr);
    alias_owned_by(h, a, two, 2, "r", ri, sizeof ri);
    alias_owned_by(h, a, two, 2, "e", ex, sizeof ex);
    hello(h, a);
    h_run(h, now(h) + S);
    CU_ASSERT_EQUAL_FATAL(request(h, a, QDB_MSG_PUT, gr, "v", NULL), QDB_OK);
    CU_ASSERT_EQUAL_FATAL(request(h, a, QDB_MSG_PUT, ri, "v", NULL), QDB_OK);
    CU_ASSERT_EQUAL_FATAL(request(h, a, QDB_MSG_PUT, ex, "v", NULL), QDB_OK);
    CU_ASSERT_TRUE(holds_copy(h, 4, gr, "v"));
    CU_ASSERT_EQUAL(request(h, a, QDB_MSG_GET_REMOVE, gr, NULL, NULL), QDB_OK);
    CU_ASSERT_TRUE(holds_copy(h, 4, gr, NULL));
    qdb_msg rif = {.type = QDB_MSG_REMOVE_IF, .alias = (const uint8_t *)ri,
                   .alias_len = strlen(ri), .comparand = (const uint8_t *)"v", .comparand_len = 1};
    CU_ASSERT_EQUAL(exchange(h, a, &rif, NULL), QDB_OK);
    CU_ASSERT_TRUE(holds_copy(h, 4, ri, NULL));
    qdb_clock *clk = wall_clock(h, a);
    int64_t at = clk->wall(clk) / QDB_US_PER_S + 10;
    qdb_msg exp = {.type = QDB_MSG_EXPIRE, .alias = (const uint8_t *)ex, .alias_len = strlen(ex),
                   .expiry = at};
    CU_ASSERT_EQUAL(exchange(h, a, &exp, NULL), QDB_OK);
    qdb_meta m = meta_of(h, a, ex);
    CU_ASSERT_EQUAL(m.expiry_s, at);
    CU_ASSERT_TRUE(holds_copy(h, 4, ex, "v"));
    /* past the expiry, the owner's collector leaves a tombstone, copied */
    h_run(h, now(h) + 30 * S);
    CU_ASSERT_EQUAL(request(h, a, QDB_MSG_GET, ex, NULL, NULL), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_TRUE(holds_copy(h, a, ex, NULL));
    CU_ASSERT_TRUE(holds_copy(h, 4, ex, NULL));
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, a))->expired, 1);
    CU_ASSERT_EQUAL(qdb_node_get_stats(node(h, 4))->expired, 0); /* only the owner collects */
    h_free(h);
}

static void test_replicas_k2(void)
{
    replicas_survive(2);
}

static void test_replicas_k3(void)
{
    replicas_survive(3);
}

/* K = 3: REMOVE_ALL, node by node as the client walks the ring, leaves no
 * live copy anywhere: each owner's tombstones reach its replicas, so no
 * node holds a live record, and a replica restarted on its storage brings
 * nothing back. */
static void test_remove_all_k3(void)
{
    int ring5[5];
    harness *h = h_ring5(3, ring5);
    char alias[16];
    for (int e = 0; e < 40; e++) {
        g_snprintf(alias, sizeof alias, "e%d", e);
        CU_ASSERT_EQUAL(request(h, owner_of(h->f, alias, ring5, 5), QDB_MSG_PUT, alias, "v", NULL),
                        QDB_OK);
    }
    uint64_t live = 0, dead = 0, d;
    for (int j = 0; j < 5; j++)
        live += qdb_record_count(store(h, ring5[j]), NULL);
    CU_ASSERT_EQUAL(live, 40 * 3);
    for (int j = 0; j < 5; j++)
        CU_ASSERT_EQUAL(request(h, ring5[j], QDB_MSG_REMOVE_ALL, "", NULL, NULL), QDB_OK);
    live = 0;
    for (int j = 0; j < 5; j++) {
        live += qdb_record_count(store(h, ring5[j]), &d);
        dead += d;
    }
    CU_ASSERT_EQUAL(live, 0);
    CU_ASSERT_EQUAL(dead, 40 * 3);
    h_crash(h, ring5[2]);
    h_run(h, now(h) + 10 * S);
    h_start(h, ring5[2], ring5[0]);
    h_run(h, now(h) + 30 * S);
    CU_ASSERT_TRUE_FATAL(ring_ok(h->f, ring5, 5));
    hello(h, ring5[2]);
    for (int e = 0; e < 40; e++) {
        g_snprintf(alias, sizeof alias, "e%d", e);
        check_value(h, owner_of(h->f, alias, ring5, 5), alias, NULL);
    }
    for (int j = 0; j < 5; j++)
        CU_ASSERT_EQUAL(qdb_record_count(store(h, ring5[j]), NULL), 0);
    h_free(h);
}


int main(void)
{
#ifdef TEST_NODE_LOOP
    B.name = "the epoll loop over loopback TCP";
    B.sec = (RUNNING_ON_VALGRIND ? 300 : 100) * MS;
    char err[QDB_ERRMSG_SIZE];
    qdb_host *probe = qdb_host_loop_new(MAXN, err);
    if (!probe) {
        printf("SKIP: %s\n", err);
        return 77;
    }
    probe->destroy(probe);
#else
    B.name = "the simulated network";
    B.simulated = true;
    B.sec = QDB_US_PER_S;
#endif
    printf("node suite over %s\n", B.name);
    CU_TestInfo ring[] = {
        {"one node owns the circle", test_one_node},
        {"eight joins form one ordered ring", test_ring_forms},
        {"two neighbours crash, the ring repairs", test_crash_repair},
        {"an excluded hop: the next best finger", test_find_next_best_hop},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo serve[] = {
        {"requests, wrong node, no session", test_requests_and_answers},
        {"a duplicated request runs once", test_at_most_once},
        {"content and alias limits answered; at-most-once bytes bounded", test_request_limits},
        {"at-most-once table: the last dedup_capacity replies", test_dedup_capacity},
        {"get_remove, remove_if, metadata, expire; bad arguments", test_new_requests},
        {"hand-over on join and on leave loses nothing", test_handover_join_and_leave},
        {"hand-over batches bounded in bytes", test_handover_batches_bounded},
        {"a failed node's entries: reads unavailable, writes accepted, the newer kept",
         test_failed_node_entries_unavailable},
        {"STATUS answers, counters, metrics; STOP refused or obeyed", test_status_and_stop},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo storage[] = {
        {"a failed read: every request told STORAGE, nothing run", test_storage_get_fails},
        {"a failed write: told STORAGE, the old value stays", test_storage_put_fails},
        {"a failed tombstone: REMOVE told STORAGE, the entry stays", test_storage_del_fails},
        {"REMOVE_ALL: a failed scan or delete told STORAGE", test_storage_remove_all_fails},
        {"hand-over: a failed write at the receiver, the batch again",
         test_storage_handover_put_fails},
        {"hand-over: a failed scan sends nothing, not an empty last batch",
         test_storage_handover_scan_fails},
        {"hand-over: a failed delete after the ack leaves a copy, cleared later",
         test_storage_handover_del_fails},
        {"a storage panic: the node leaves at once, its arc taken over",
         test_storage_panic_leaves},
        {"a storage panic alone: the node stops", test_storage_panic_alone},
        CU_TEST_INFO_NULL,
    };
    /* simulated network only: exact times, long quiet stretches, and faults
     * the loop cannot make (a silent host, a slow machine, a partition) */
    CU_TestInfo timed[] = {
        {"a dead candidate is never adopted (Zave)", test_dead_candidate_not_adopted},
        {"a join completes after exactly 6 link latencies", test_join_time},
        {"a crashed successor is bypassed one round trip after the next round",
         test_crashed_successor_bypassed},
        {"paused maintenance, resumed", test_pause_maintenance},
        {"the watch: a crashed process, ring right 1.35 s after the crash",
         test_watch_process_crash},
        {"the watch: a silent host, three strikes on its RTO, 2.73 s",
         test_watch_host_crash},
        {"the watch costs about 2 frames per node per second", test_watch_cost},
        {"fix-fingers: one cycle every 30 s, one round trip a finger", test_fingers_by_time},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo faults[] = {
        {"a FIND's exclusion list: next successor, checked, repaired",
         test_find_exclusion_repairs},
        {"a peer slower than rpc_timeout is kept", test_slow_peer_kept},
        {"RTO estimator", test_rto_estimator},
        {"RTO: answers heard", test_rto_heard},
        {"expired entries read absent, then collected", test_expiry_collected},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo replication[] = {
        {"hive settings: adopted at join, a different one refused", test_hive_settings},
        {"a node back with old storage: the newer value and the removal win",
         test_old_storage_loses},
        {"a tombstone is collected after its grace period", test_tombstone_collected},
        {"forget_node: unavailable, then not found; a live node refused", test_forget_node},
        {"--dead-node-grace: unavailable for the grace period, then not found",
         test_dead_node_grace},
        {"K = 2: copies on two nodes; one crash loses nothing", test_replicas_k2},
        {"K = 2: a lost copy goes again before the answer", test_replica_copy_resent},
        {"K = 2: replica copies batched within the frame a node takes",
         test_replica_batches_bounded},
        {"K = 2: get_remove, remove_if, expire and expiry collection replicated",
         test_ext_writes_replicated},
        {"K = 3: copies on three nodes; two adjacent crashes lose nothing", test_replicas_k3},
        {"K = 3: remove_all leaves no live copy on any node", test_remove_all_k3},
        {"repair by digest: 10 of 10,000 changed move a few records, not all",
         test_repair_by_digest},
        {"repair of an arc that wraps past zero: every record, in batches", test_repair_wrapping_arc},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo admission[] = {
        {"remove_all and stop off unless the hive enables them", test_dangerous_off},
        {"a forged NOTIFY (joining) and HANDOVER_ACK move nothing", test_forged_notify},
        {"a NOTIFY the successor calls moot is skipped, only then", test_notify_moot},
        {"forged HANDOVERs and LEAVE plant, overwrite and break nothing", test_forged_handover},
        {"a joiner with a live node's ID is refused", test_id_collision_refused},
        {"a session ends with its connection", test_session_gone},
        {"node messages refused on client sessions, and the reverse", test_classes},
        {"IDs announced ahead serve their aliases only", test_ahead},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo partitioned[] = {
        {"a joining node answers unstable", test_unstable_while_joining},
        {"a hand-over whose ack was lost is built again for the node back",
         test_handover_lost_ack_rebuilt},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {.pName = "ring", .pTests = ring},
        {.pName = "requests", .pTests = serve},
        {.pName = "storage failures", .pTests = storage},
        {.pName = "ring, in virtual time", .pTests = timed},
        {.pName = "ring, simulated faults and adaptive timeouts", .pTests = faults},
        {.pName = "requests, across a partition", .pTests = partitioned},
        {.pName = "versions and replicas, on simulated addresses", .pTests = replication},
        {.pName = "admission and message rules, on simulated addresses", .pTests = admission},
        CU_SUITE_INFO_NULL,
    };
    enum { SHARED_SUITES = 3 };
    if (!B.simulated) {
        printf("not here: the suites after \"%s\" (exact times, silent or slow hosts, "
               "partitions) run on the simulated network only (test_node_sim)\n",
               suites[SHARED_SUITES - 1].pName);
        suites[SHARED_SUITES] = (CU_SuiteInfo)CU_SUITE_INFO_NULL;
    }
    return qdb_test_run(suites);
}

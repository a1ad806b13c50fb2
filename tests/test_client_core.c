/* SPDX-License-Identifier: BSD-2-Clause */
/* CUnit suite for the sans-I/O client core (client/core.h).
 *
 * A fake environment: a manual clock (the test moves time and the armed
 * deadline fires tick, never early), a capturing transport (each frame and its
 * destination, decoded back with qdb_msg_decode) and a GRand-backed random.
 * Fake nodes are scripted by answering the captured frames by hand, or by a
 * small ring responder that routes FINDs over a sorted list of nodes.  The
 * last suite runs the client against real nodes on the simulator's fixture.
 */
#include <CUnit/CUnit.h>
#include <glib.h>
#include <string.h>

#include "client/core.h"
#include "codec.h"
#include "node.h"
#include "record.h"
#include "sim/fixture.h"
#include "tests/testutil.h"

#define S QDB_US_PER_S
#define MS QDB_US_PER_MS

/* ---- fake environment --------------------------------------------------------- */

typedef struct sent_frame {
    qdb_addr dst;
    GByteArray *bytes;
} sent_frame;

typedef struct fake_env {
    qdb_clock clock;
    qdb_transport transport;
    qdb_random random;
    qdb_time_us now;
    qdb_time_us armed;
    bool is_armed;
    GPtrArray *sent; /* sent_frame */
    guint next_read;
    GRand *rand;
    bool fail_send;
} fake_env;

static qdb_time_us fake_now(qdb_clock *c)
{
    return ((fake_env *)c->data)->now;
}

static void fake_arm(qdb_clock *c, qdb_time_us deadline)
{
    fake_env *e = c->data;
    e->armed = deadline;
    e->is_armed = true;
}

static int64_t fake_wall(qdb_clock *c)
{
    return (int64_t)((fake_env *)c->data)->now;
}

static int fake_send(qdb_transport *t, qdb_addr dst, const uint8_t *frame, size_t len)
{
    fake_env *e = t->data;
    if (e->fail_send)
        return QDB_E_CONNECTION_REFUSED;
    sent_frame *f = g_new(sent_frame, 1);
    f->dst = dst;
    f->bytes = g_byte_array_new();
    g_byte_array_append(f->bytes, frame, (guint)len);
    g_ptr_array_add(e->sent, f);
    return QDB_OK;
}

static uint64_t fake_next(qdb_random *r)
{
    fake_env *e = r->data;
    return qdb_rand_u64(e->rand);
}

static void sent_free(gpointer p)
{
    sent_frame *f = p;
    g_byte_array_unref(f->bytes);
    g_free(f);
}

static void env_init(fake_env *e)
{
    memset(e, 0, sizeof *e);
    e->clock = (qdb_clock){ .version = QDB_SEAM_VERSION, .data = e, .now = fake_now,
                            .arm = fake_arm, .wall = fake_wall };
    e->transport = (qdb_transport){ .version = QDB_SEAM_VERSION, .data = e, .send = fake_send };
    e->random = (qdb_random){ .version = QDB_SEAM_VERSION, .data = e, .next = fake_next };
    e->sent = g_ptr_array_new_with_free_func(sent_free);
    e->rand = g_rand_new_with_seed(42);
    e->now = 1000 * S; /* not zero: catch confusions of time and duration */
}

static void env_clear(fake_env *e)
{
    g_ptr_array_unref(e->sent);
    g_rand_free(e->rand);
}

/* Move time to t, firing the armed deadline (at its exact time) on the way. */
static void advance_to(fake_env *e, qdb_client_core *c, qdb_time_us t)
{
    while (e->is_armed && e->armed <= t) {
        if (e->armed > e->now)
            e->now = e->armed;
        e->is_armed = false;
        qdb_client_core_tick(c);
    }
    if (t > e->now)
        e->now = t;
}

static void advance(fake_env *e, qdb_client_core *c, qdb_time_us d)
{
    advance_to(e, c, e->now + d);
}

/* Fire a deadline armed at "now" (deferred completions). */
static void run_due(fake_env *e, qdb_client_core *c)
{
    advance(e, c, 0);
}

static unsigned unread(const fake_env *e)
{
    return e->sent->len - e->next_read;
}

/* The next frame the core sent, decoded; NULL when none. */
static const sent_frame *pop(fake_env *e, qdb_msg *m)
{
    if (e->next_read >= e->sent->len)
        return NULL;
    const sent_frame *f = g_ptr_array_index(e->sent, e->next_read++);
    int rc = qdb_msg_decode(f->bytes->data, f->bytes->len, m);
    CU_ASSERT_EQUAL_FATAL(rc, QDB_OK);
    return f;
}

/* Pop a frame and check its type and destination. */
static const sent_frame *expect(fake_env *e, qdb_msg *m, int type, qdb_addr dst)
{
    const sent_frame *f = pop(e, m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(m->type, type);
    CU_ASSERT_TRUE(qdb_addr_eq(f->dst, dst));
    return f;
}

/* ---- scripted node answers ------------------------------------------------------ */

static void deliver(qdb_client_core *c, qdb_addr src, const qdb_msg *m)
{
    GByteArray *b = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(m, b), QDB_OK);
    qdb_client_core_recv(c, src, b->data, b->len);
    g_byte_array_unref(b);
}

static void answer_find(qdb_client_core *c, qdb_addr src, uint64_t rpc, int done,
                        const qdb_peer *p)
{
    qdb_msg r = { .type = QDB_MSG_FIND_REPLY, .rpc = rpc, .flags = (unsigned)done, .peer = *p };
    deliver(c, src, &r);
}

static void answer(qdb_client_core *c, qdb_addr src, uint64_t seq, int status,
                   const void *payload, size_t len)
{
    qdb_msg r = { .type = QDB_MSG_REPLY, .seq = seq, .status = status, .content = payload,
                  .content_len = len };
    deliver(c, src, &r);
}

static void answer_hello(qdb_client_core *c, qdb_addr src, uint64_t incarnation)
{
    uint8_t b[8];
    qdb_be64_put(b, incarnation);
    answer(c, src, 0, QDB_OK, b, sizeof b);
}

static void answer_wrong_node(qdb_client_core *c, qdb_addr src, uint64_t seq, const qdb_peer *hint)
{
    uint8_t b[QDB_PEER_WIRE];
    qdb_peer_encode(hint, b);
    answer(c, src, seq, QDB_E_WRONG_NODE, b, sizeof b);
}

/* ---- fixtures ------------------------------------------------------------------------ */

static qdb_addr addr_of(unsigned k)
{
    return (qdb_addr){ .ip = 0x0a000000u + k, .port = QDB_DEFAULT_PORT };
}

static qdb_peer peer_at(unsigned k, uint64_t top)
{
    qdb_peer p = { .addr = addr_of(k) };
    qdb_id_from_top64(&p.id, top);
    return p;
}

#define BOOT addr_of(1)

typedef struct result_rec {
    unsigned calls;
    qdb_client_result r;
    GByteArray *content;
} result_rec;

static bool in_api_call; /* set around submit/lookup: done must not fire there */

static void on_done(void *arg, const qdb_client_result *r)
{
    result_rec *rec = arg;
    CU_ASSERT_FALSE(in_api_call);
    rec->calls++;
    rec->r = *r;
    if (rec->content == NULL)
        rec->content = g_byte_array_new();
    g_byte_array_set_size(rec->content, 0);
    if (r->content != NULL)
        g_byte_array_append(rec->content, r->content, (guint)r->content_len);
    rec->r.content = NULL;
}

static void rec_clear(result_rec *rec)
{
    if (rec->content != NULL)
        g_byte_array_unref(rec->content);
    memset(rec, 0, sizeof *rec);
}

static qdb_client_core *core_new(fake_env *e, qdb_client_config *cfg_in)
{
    qdb_client_config cfg;
    if (cfg_in != NULL) {
        cfg = *cfg_in;
    } else {
        qdb_client_config_defaults(&cfg);
        cfg.client_id = 77;
    }
    cfg.bootstrap = BOOT;
    char err[QDB_ERRMSG_SIZE] = "";
    qdb_client_core *c = qdb_client_core_new(&cfg, &e->clock, &e->transport, &e->random, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    return c;
}

static int submit(qdb_client_core *c, int op, const char *alias, const char *content,
                  result_rec *rec, uint64_t *op_id)
{
    in_api_call = true;
    int rc = qdb_client_core_submit(c, op, (const uint8_t *)alias, alias ? strlen(alias) : 0,
                                    (const uint8_t *)content, content ? strlen(content) : 0,
                                    NULL, 0, on_done, rec, op_id);
    in_api_call = false;
    return rc;
}

/* Drive one located request up to the point where the request frame is sent:
 * FIND at the bootstrap answered done=1 owner, HELLO answered (when
 * expect_hello), then the request frame is popped into *req. */
static void locate_and_open(fake_env *e, qdb_client_core *c, const qdb_peer *owner,
                            bool expect_hello, qdb_msg *req)
{
    qdb_msg m;
    expect(e, &m, QDB_MSG_FIND, BOOT);
    answer_find(c, BOOT, m.rpc, 1, owner);
    if (expect_hello) {
        expect(e, &m, QDB_MSG_HELLO, owner->addr);
        answer_hello(c, owner->addr, 5);
    }
    pop(e, req);
    CU_ASSERT_TRUE(qdb_msg_is_request(req->type));
}

/* Submit GET "k" and drive it to its owner o (a new session): its seq. */
static uint64_t get_sent_to(fake_env *e, qdb_client_core *c, result_rec *rec, const qdb_peer *o)
{
    qdb_msg m;
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET, "k", NULL, rec, NULL), QDB_OK);
    locate_and_open(e, c, o, true, &m);
    CU_ASSERT_EQUAL(m.type, QDB_MSG_GET);
    return m.seq;
}

/* The GET seq, whose owner o failed, routed around it: the bootstrap is
 * asked again with o excluded and names o2, which gets a HELLO and then
 * the GET under the same seq. */
static void get_detoured(fake_env *e, qdb_client_core *c, const qdb_peer *o, const qdb_peer *o2,
                         uint64_t seq)
{
    qdb_msg m;
    expect(e, &m, QDB_MSG_FIND, BOOT);
    CU_ASSERT_EQUAL_FATAL(m.n_exclude, 1);
    CU_ASSERT_TRUE(qdb_addr_eq(m.exclude[0], o->addr));
    answer_find(c, BOOT, m.rpc, 1, o2);
    expect(e, &m, QDB_MSG_HELLO, o2->addr);
    answer_hello(c, o2->addr, 1);
    expect(e, &m, QDB_MSG_GET, o2->addr);
    CU_ASSERT_EQUAL(m.seq, seq);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_hello_before_request(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer owner = peer_at(2, 500);
    qdb_msg m;
    uint64_t id = 0;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "k", "v", &rec, &id), QDB_OK);
    CU_ASSERT_EQUAL(id, 1);
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 1);
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    qdb_id want;
    qdb_id_hash(&want, "k", 1);
    CU_ASSERT_TRUE(qdb_id_eq(&m.target, &want));
    answer_find(c, BOOT, m.rpc, 1, &owner);
    expect(&e, &m, QDB_MSG_HELLO, owner.addr);
    CU_ASSERT_EQUAL(m.seq, 77);
    CU_ASSERT_EQUAL(unread(&e), 0); /* nothing before the session is open */
    answer_hello(c, owner.addr, 9);
    expect(&e, &m, QDB_MSG_PUT, owner.addr);
    CU_ASSERT_EQUAL(m.seq, 1);
    CU_ASSERT_EQUAL(m.alias_len, 1);
    CU_ASSERT_EQUAL(m.content_len, 1);
    CU_ASSERT_EQUAL(rec.calls, 0);
    advance(&e, c, 3 * MS);
    answer(c, owner.addr, 1, QDB_OK, NULL, 0);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_EQUAL(rec.r.op, QDB_MSG_PUT);
    CU_ASSERT_EQUAL(rec.r.op_id, 1);
    CU_ASSERT_TRUE(qdb_peer_eq(&rec.r.owner, &owner));
    CU_ASSERT_EQUAL(rec.r.hops, 0);
    CU_ASSERT_EQUAL(rec.r.lookups, 1);
    CU_ASSERT_EQUAL(rec.r.attempts, 1);
    CU_ASSERT_EQUAL(rec.r.latency, 3 * MS);
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 0);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->ok, 1);
    /* a late duplicate is ignored */
    answer(c, owner.addr, 1, QDB_OK, NULL, 0);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->stray_frames, 1);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_client_id_from_random(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_config cfg;
    qdb_client_config_defaults(&cfg);
    qdb_client_core *c = core_new(&e, &cfg);
    CU_ASSERT_NOT_EQUAL(qdb_client_core_client_id(c), 0);
    qdb_client_core_free(c);

    char err[QDB_ERRMSG_SIZE] = "";
    qdb_clock bad = e.clock;
    bad.version = 99;
    CU_ASSERT_PTR_NULL(qdb_client_core_new(&cfg, &bad, &e.transport, &e.random, err));
    CU_ASSERT_NOT_EQUAL(err[0], 0);
    env_clear(&e);
}

static void test_lookup_three_hops(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_id target;
    qdb_id_from_top64(&target, 1000);
    qdb_peer a = peer_at(2, 100), b = peer_at(3, 400), d = peer_at(4, 900), o = peer_at(5, 1100);
    qdb_msg m;

    in_api_call = true;
    CU_ASSERT_EQUAL(qdb_client_core_lookup(c, &target, 0, on_done, &rec, NULL), QDB_OK);
    in_api_call = false;
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    uint64_t rpc1 = m.rpc;
    answer_find(c, BOOT, m.rpc, 0, &a);
    expect(&e, &m, QDB_MSG_FIND, a.addr);
    CU_ASSERT_NOT_EQUAL(m.rpc, rpc1);
    CU_ASSERT_TRUE(qdb_id_eq(&m.target, &target));
    answer_find(c, a.addr, m.rpc, 0, &b);
    expect(&e, &m, QDB_MSG_FIND, b.addr);
    /* an answer from the wrong address, or with a stale rpc, is ignored */
    answer_find(c, a.addr, m.rpc, 1, &o);
    answer_find(c, b.addr, rpc1, 1, &o);
    CU_ASSERT_EQUAL(rec.calls, 0);
    answer_find(c, b.addr, m.rpc, 0, &d);
    expect(&e, &m, QDB_MSG_FIND, d.addr);
    answer_find(c, d.addr, m.rpc, 1, &o);
    /* the owner named is checked alive before the lookup reports it */
    CU_ASSERT_EQUAL(rec.calls, 0);
    expect(&e, &m, QDB_MSG_PING, o.addr);
    qdb_msg pong = { .type = QDB_MSG_PONG, .rpc = m.rpc };
    deliver(c, d.addr, &pong); /* from the wrong node: ignored */
    CU_ASSERT_EQUAL(rec.calls, 0);
    deliver(c, o.addr, &pong);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_EQUAL(rec.r.op, 0);
    CU_ASSERT_EQUAL(rec.r.hops, 3);
    CU_ASSERT_EQUAL(rec.r.lookups, 1);
    CU_ASSERT_TRUE(qdb_peer_eq(&rec.r.owner, &o));
    CU_ASSERT_EQUAL(unread(&e), 0); /* a pure lookup opens no session */
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->hops, 3);

    /* The cache now knows o owns (d, o]: a cached lookup answers at once,
     * but not from inside the call. */
    in_api_call = true;
    CU_ASSERT_EQUAL(qdb_client_core_lookup(c, &target, 1, on_done, &rec, NULL), QDB_OK);
    in_api_call = false;
    CU_ASSERT_EQUAL(rec.calls, 1);
    run_due(&e, c);
    CU_ASSERT_EQUAL(rec.calls, 2);
    CU_ASSERT_EQUAL(rec.r.hops, 0);
    CU_ASSERT_EQUAL(rec.r.lookups, 0);
    CU_ASSERT_TRUE(qdb_peer_eq(&rec.r.owner, &o));
    CU_ASSERT_EQUAL(unread(&e), 0);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_hop_limit(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_config cfg;
    qdb_client_config_defaults(&cfg);
    cfg.client_id = 3;
    cfg.max_hops = 4;
    qdb_client_core *c = core_new(&e, &cfg);
    result_rec rec = { 0 };
    qdb_id target;
    qdb_id_from_top64(&target, 1000);
    qdb_msg m;
    CU_ASSERT_EQUAL(qdb_client_core_lookup(c, &target, 0, on_done, &rec, NULL), QDB_OK);
    const sent_frame *f;
    unsigned k = 2;
    while (rec.calls == 0 && (f = pop(&e, &m)) != NULL) {
        qdb_peer next = peer_at(k, k);
        k++;
        answer_find(c, f->dst, m.rpc, 0, &next);
    }
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_UNSTABLE);
    CU_ASSERT_EQUAL(rec.r.hops, 5);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_cache_hit(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer owner = peer_at(2, 500);
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "k", "v", &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &owner, true, &m);
    answer(c, owner.addr, m.seq, QDB_OK, NULL, 0);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET, "k", NULL, &rec, NULL), QDB_OK);
    expect(&e, &m, QDB_MSG_GET, owner.addr); /* no FIND, no HELLO */
    CU_ASSERT_EQUAL(m.seq, 2);
    answer(c, owner.addr, m.seq, QDB_OK, "v", 1);
    CU_ASSERT_EQUAL(rec.calls, 2);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_EQUAL(rec.r.lookups, 0);
    CU_ASSERT_EQUAL(rec.content->len, 1);
    CU_ASSERT_EQUAL(rec.content->data[0], 'v');
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->cache_hits, 1);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->lookups, 1);

    /* with the cache off, a lookup every time, but the session is kept */
    qdb_client_config cfg;
    qdb_client_config_defaults(&cfg);
    cfg.client_id = 8;
    cfg.use_cache = 0;
    qdb_client_core *c2 = core_new(&e, &cfg);
    CU_ASSERT_EQUAL(submit(c2, QDB_MSG_GET, "k", NULL, &rec, NULL), QDB_OK);
    locate_and_open(&e, c2, &owner, true, &m);
    answer(c2, owner.addr, m.seq, QDB_E_ALIAS_NOT_FOUND, NULL, 0);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(submit(c2, QDB_MSG_GET, "k", NULL, &rec, NULL), QDB_OK);
    locate_and_open(&e, c2, &owner, false, &m);
    CU_ASSERT_EQUAL(m.type, QDB_MSG_GET);
    qdb_client_core_free(c2);

    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_wrong_node_limit(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o[4] = { peer_at(2, 100), peer_at(3, 200), peer_at(4, 300), peer_at(5, 400) };
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "k", "v", &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &o[0], true, &m);
    uint64_t seq = m.seq;
    unsigned puts = 1;
    for (int i = 1; i <= 3; i++) {
        answer_wrong_node(c, o[i - 1].addr, seq, &o[i]);
        if (i == 3)
            break;
        /* the lookup restarts at the hint */
        expect(&e, &m, QDB_MSG_FIND, o[i].addr);
        answer_find(c, o[i].addr, m.rpc, 1, &o[i]);
        expect(&e, &m, QDB_MSG_HELLO, o[i].addr);
        answer_hello(c, o[i].addr, 1);
        expect(&e, &m, QDB_MSG_PUT, o[i].addr);
        CU_ASSERT_EQUAL(m.seq, seq);
        puts++;
    }
    CU_ASSERT_EQUAL(puts, 3);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_WRONG_NODE);
    CU_ASSERT_EQUAL(rec.r.attempts, 3);
    CU_ASSERT_EQUAL(rec.r.wrong_node, 3);
    CU_ASSERT_EQUAL(unread(&e), 0);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->wrong_node, 3);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->failed, 1);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_wrong_node_then_ok(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o1 = peer_at(2, 100), o2 = peer_at(3, 200);
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET_UPDATE, "k", "new", &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &o1, true, &m);
    uint64_t seq = m.seq;
    answer_wrong_node(c, o1.addr, seq, &o2);
    expect(&e, &m, QDB_MSG_FIND, o2.addr);
    answer_find(c, o2.addr, m.rpc, 1, &o2);
    expect(&e, &m, QDB_MSG_HELLO, o2.addr);
    answer_hello(c, o2.addr, 1);
    expect(&e, &m, QDB_MSG_GET_UPDATE, o2.addr);
    CU_ASSERT_EQUAL(m.seq, seq);
    answer(c, o2.addr, seq, QDB_OK, "old", 3);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_EQUAL(rec.r.attempts, 2);
    CU_ASSERT_EQUAL(rec.r.wrong_node, 1);
    CU_ASSERT_EQUAL(rec.r.lookups, 2);
    CU_ASSERT_TRUE(qdb_peer_eq(&rec.r.owner, &o2));
    CU_ASSERT_EQUAL(rec.content->len, 3);
    CU_ASSERT_EQUAL(memcmp(rec.content->data, "old", 3), 0);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_unstable_backoff(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o = peer_at(2, 100);
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "k", "v", &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &o, true, &m);
    uint64_t seq = m.seq;
    answer(c, o.addr, seq, QDB_E_UNSTABLE, NULL, 0);
    advance(&e, c, 100 * MS - 1);
    CU_ASSERT_EQUAL(unread(&e), 0);
    advance(&e, c, 1);
    expect(&e, &m, QDB_MSG_PUT, o.addr); /* after 100 ms, same node, same seq */
    CU_ASSERT_EQUAL(m.seq, seq);
    answer(c, o.addr, seq, QDB_E_UNSTABLE, NULL, 0);
    advance(&e, c, 200 * MS - 1);
    CU_ASSERT_EQUAL(unread(&e), 0);
    advance(&e, c, 1);
    expect(&e, &m, QDB_MSG_PUT, o.addr); /* then 200 ms */
    CU_ASSERT_EQUAL(m.seq, seq);
    answer(c, o.addr, seq, QDB_E_UNSTABLE, NULL, 0);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_UNSTABLE);
    CU_ASSERT_EQUAL(rec.r.attempts, 3);
    CU_ASSERT_EQUAL(rec.r.unstable, 3);
    CU_ASSERT_EQUAL(rec.r.latency, 300 * MS);
    advance(&e, c, 10 * S);
    CU_ASSERT_EQUAL(unread(&e), 0);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_timeout_exact(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o = peer_at(2, 100);
    qdb_msg m;
    qdb_time_us t0 = e.now;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_UPDATE, "k", "v", &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &o, true, &m);
    uint64_t seq = m.seq;
    advance_to(&e, c, t0 + 60 * S - 1);
    CU_ASSERT_EQUAL(rec.calls, 0);
    /* retransmitted with the timeout doubling each time (RFC 6298 back-off:
     * at 2, 6, 14 and 30 s; the next would be at 62 s), always the same seq */
    unsigned n = 0;
    while (pop(&e, &m) != NULL) {
        CU_ASSERT_EQUAL(m.type, QDB_MSG_UPDATE);
        CU_ASSERT_EQUAL(m.seq, seq);
        n++;
    }
    CU_ASSERT_EQUAL(n, 4);
    advance_to(&e, c, t0 + 60 * S);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_TIMEOUT);
    CU_ASSERT_EQUAL(rec.r.latency, 60 * S);
    CU_ASSERT_EQUAL(e.now, t0 + 60 * S);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->timeouts, 1);
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 0);

    /* a lookup that never gets an answer is silence, not an unstable ring:
     * the cached o (its timeout backed off to 32 s), then the bootstrap
     * again and again (200 ms -- its FIND answer was measured --, then
     * doubling: 400 ms ... 12.8 s, and 25.6 s cut short) until the
     * operation's timeout */
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET, "other", NULL, &rec, NULL), QDB_OK);
    advance(&e, c, 60 * S);
    CU_ASSERT_EQUAL(rec.calls, 2);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_TIMEOUT);
    CU_ASSERT_EQUAL(rec.r.latency, 60 * S);
    CU_ASSERT_EQUAL(rec.r.lookups, 9);
    CU_ASSERT_EQUAL(rec.r.dead_contacts, 8);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_retransmit_same_seq(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o = peer_at(2, 100);
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "k", "v", &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &o, true, &m);
    const sent_frame *first = g_ptr_array_index(e.sent, e.next_read - 1);
    advance(&e, c, 2 * S - 1);
    CU_ASSERT_EQUAL(unread(&e), 0);
    advance(&e, c, 1);
    const sent_frame *again = expect(&e, &m, QDB_MSG_PUT, o.addr);
    CU_ASSERT_EQUAL(again->bytes->len, first->bytes->len);
    CU_ASSERT_EQUAL(memcmp(again->bytes->data, first->bytes->data, first->bytes->len), 0);
    answer(c, o.addr, m.seq, QDB_E_ALIAS_ALREADY_EXISTS, NULL, 0);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_ALIAS_ALREADY_EXISTS);
    CU_ASSERT_EQUAL(rec.r.attempts, 1);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->retransmits, 1);

    /* a GET that times out is not retransmitted: it is located again, with
     * the silent owner excluded.  o's timeout has backed off to 4 s (RFC
     * 6298: doubled after the PUT's timeout, no clean sample since). */
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET, "k", NULL, &rec, NULL), QDB_OK);
    expect(&e, &m, QDB_MSG_GET, o.addr);
    advance(&e, c, 4 * S - 1);
    CU_ASSERT_EQUAL(unread(&e), 0);
    advance(&e, c, 1);
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    CU_ASSERT_EQUAL_FATAL(m.n_exclude, 1);
    CU_ASSERT_TRUE(qdb_addr_eq(m.exclude[0], o.addr));
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_no_session_first(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o = peer_at(2, 100);
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_REMOVE, "k", NULL, &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &o, true, &m);
    uint64_t seq = m.seq;
    answer(c, o.addr, seq, QDB_E_NO_SESSION, NULL, 0);
    expect(&e, &m, QDB_MSG_HELLO, o.addr);
    CU_ASSERT_EQUAL(unread(&e), 0);
    answer_hello(c, o.addr, 6); /* a new incarnation */
    expect(&e, &m, QDB_MSG_REMOVE, o.addr);
    CU_ASSERT_EQUAL(m.seq, seq);
    answer(c, o.addr, seq, QDB_OK, NULL, 0);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_EQUAL(rec.r.attempts, 1);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_no_session_retransmitted(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o = peer_at(2, 100);
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "k", "v", &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &o, true, &m);
    uint64_t seq = m.seq;
    advance(&e, c, 2 * S);
    expect(&e, &m, QDB_MSG_PUT, o.addr);
    answer(c, o.addr, seq, QDB_E_NO_SESSION, NULL, 0);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_OUTCOME_UNKNOWN);
    advance(&e, c, 60 * S);
    CU_ASSERT_EQUAL(unread(&e), 0); /* never replayed */

    /* a GET in the same position is simply asked again */
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET, "k", NULL, &rec, NULL), QDB_OK);
    expect(&e, &m, QDB_MSG_FIND, o.addr); /* o is cached, but with no known range */
    answer_find(c, o.addr, m.rpc, 1, &o);
    expect(&e, &m, QDB_MSG_HELLO, o.addr); /* the session was forgotten */
    answer_hello(c, o.addr, 7);
    expect(&e, &m, QDB_MSG_GET, o.addr);
    answer(c, o.addr, m.seq, QDB_E_NO_SESSION, NULL, 0);
    expect(&e, &m, QDB_MSG_HELLO, o.addr);
    answer_hello(c, o.addr, 8);
    expect(&e, &m, QDB_MSG_GET, o.addr);
    answer(c, o.addr, m.seq, QDB_OK, "v", 1);
    CU_ASSERT_EQUAL(rec.calls, 2);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_unreachable_after_put(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o = peer_at(2, 100);
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_CAS, "k", "new", &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &o, true, &m);
    qdb_client_core_unreachable(c, o.addr);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_OUTCOME_UNKNOWN);
    CU_ASSERT_EQUAL(unread(&e), 0);

    /* unreachable before the request went out: located again */
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "k", "v", &rec, NULL), QDB_OK);
    expect(&e, &m, QDB_MSG_FIND, BOOT); /* the cache forgot o */
    answer_find(c, BOOT, m.rpc, 1, &o);
    expect(&e, &m, QDB_MSG_HELLO, o.addr);
    qdb_client_core_unreachable(c, o.addr);
    qdb_peer o2 = peer_at(3, 100);
    /* at once, the last live hop is asked again, told that o is dead */
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    CU_ASSERT_EQUAL_FATAL(m.n_exclude, 1);
    CU_ASSERT_TRUE(qdb_addr_eq(m.exclude[0], o.addr));
    answer_find(c, BOOT, m.rpc, 1, &o2);
    expect(&e, &m, QDB_MSG_HELLO, o2.addr);
    answer_hello(c, o2.addr, 1);
    expect(&e, &m, QDB_MSG_PUT, o2.addr);
    answer(c, o2.addr, m.seq, QDB_OK, NULL, 0);
    CU_ASSERT_EQUAL(rec.calls, 2);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_get_retried_on_unreachable(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o = peer_at(2, 100), o2 = peer_at(3, 100);

    uint64_t seq = get_sent_to(&e, c, &rec, &o);
    qdb_client_core_unreachable(c, o.addr);
    CU_ASSERT_EQUAL(rec.calls, 0);
    get_detoured(&e, c, &o, &o2, seq); /* the hop before o, asked again */
    answer(c, o.addr, seq, QDB_OK, "x", 1); /* from the dead node: ignored */
    CU_ASSERT_EQUAL(rec.calls, 0);
    answer(c, o2.addr, seq, QDB_OK, "v", 1);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_EQUAL(rec.content->data[0], 'v');
    CU_ASSERT_EQUAL(rec.r.lookups, 1); /* one lookup, gone back one hop */
    CU_ASSERT_EQUAL(rec.r.dead_contacts, 1);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_bootstrap_unreachable(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET, "k", NULL, &rec, NULL), QDB_OK);
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    qdb_client_core_unreachable(c, BOOT);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_CONNECTION_REFUSED);

    /* a send that fails at once: reported later, never from submit */
    e.fail_send = true;
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "k", "v", &rec, NULL), QDB_OK);
    CU_ASSERT_EQUAL(rec.calls, 1);
    run_due(&e, c);
    CU_ASSERT_EQUAL(rec.calls, 2);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_CONNECTION_REFUSED);
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 0);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_immediate_errors(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    char *big = g_malloc(QDB_MAX_ALIAS + 2);
    memset(big, 'a', QDB_MAX_ALIAS + 1);
    big[QDB_MAX_ALIAS + 1] = 0;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, big, "v", &rec, NULL), QDB_E_ALIAS_TOO_LONG);
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET, "", NULL, &rec, NULL), QDB_E_ALIAS_EMPTY);
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET, NULL, NULL, &rec, NULL), QDB_E_ALIAS_EMPTY);
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_FIND, "k", NULL, &rec, NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(submit(c, 0, "k", NULL, &rec, NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_client_core_submit(c, QDB_MSG_PUT, (const uint8_t *)"k", 1, NULL, 3, NULL,
                                           0, on_done, &rec, NULL),
                    QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_client_core_lookup(c, NULL, 1, on_done, &rec, NULL),
                    QDB_E_INVALID_ARGUMENT);
    big[QDB_MAX_ALIAS] = 0; /* exactly the limit is fine */
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, big, "v", &rec, NULL), QDB_OK);
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 1);
    CU_ASSERT_EQUAL(unread(&e), 1);
    CU_ASSERT_EQUAL(rec.calls, 0);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->ops, 1);
    g_free(big);
    rec_clear(&rec);
    qdb_client_core_free(c); /* drops the pending op without a callback */
    CU_ASSERT_EQUAL(rec.calls, 0);
    env_clear(&e);
}

static void test_garbage_ignored(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o = peer_at(2, 100);
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "k", "v", &rec, NULL), QDB_OK);
    locate_and_open(&e, c, &o, true, &m);
    uint64_t seq = m.seq;

    const uint8_t junk1[] = { 0x05, 0xff, 0x01, 0x02, 0x03, 0x04 };
    qdb_client_core_recv(c, o.addr, junk1, sizeof junk1);
    qdb_client_core_recv(c, o.addr, junk1, 0);
    qdb_client_core_recv(c, o.addr, NULL, 0);
    uint8_t buf[64];
    unsigned bad = 3;
    for (int i = 0; i < 500; i++) {
        size_t len = (size_t)g_rand_int_range(e.rand, 1, sizeof buf);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)g_rand_int(e.rand);
        qdb_msg probe;
        if (qdb_msg_decode(buf, len, &probe) == QDB_OK)
            continue; /* a valid frame by chance: not garbage */
        qdb_client_core_recv(c, o.addr, buf, len);
        bad++;
    }
    /* a truncated copy of a real reply */
    GByteArray *b = g_byte_array_new();
    qdb_msg r = { .type = QDB_MSG_REPLY, .seq = seq, .status = QDB_OK };
    qdb_msg_encode(&r, b);
    qdb_client_core_recv(c, o.addr, b->data, b->len - 1);
    bad++;
    g_byte_array_unref(b);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->bad_frames, bad);
    /* valid but unexpected: a PING, a reply to an unknown seq, a FIND_REPLY nobody asked for */
    qdb_msg ping = { .type = QDB_MSG_PING, .rpc = 1 };
    deliver(c, o.addr, &ping);
    answer(c, o.addr, 999, QDB_OK, NULL, 0);
    answer_find(c, o.addr, 12345, 1, &o);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->stray_frames, 3);
    CU_ASSERT_EQUAL(rec.calls, 0);
    CU_ASSERT_EQUAL(unread(&e), 0);
    answer(c, o.addr, seq, QDB_OK, NULL, 0);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_pipelined(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec[3] = { { 0 } };
    uint64_t ids[3];
    const char *aliases[3] = { "a", "b", "c" };
    qdb_peer o = peer_at(2, 100);
    qdb_msg m;

    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, aliases[i], aliases[i], &rec[i], &ids[i]), QDB_OK);
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 3);
    uint64_t rpcs[3];
    for (int i = 0; i < 3; i++) {
        expect(&e, &m, QDB_MSG_FIND, BOOT);
        rpcs[i] = m.rpc;
    }
    /* answered out of order; one HELLO serves all three */
    for (int i = 2; i >= 0; i--)
        answer_find(c, BOOT, rpcs[i], 1, &o);
    expect(&e, &m, QDB_MSG_HELLO, o.addr);
    CU_ASSERT_EQUAL(unread(&e), 0);
    answer_hello(c, o.addr, 1);
    uint64_t seqs[3];
    for (int i = 0; i < 3; i++) {
        expect(&e, &m, QDB_MSG_PUT, o.addr);
        CU_ASSERT_EQUAL(m.alias_len, 1);
        int k = m.alias[0] - 'a';
        CU_ASSERT_TRUE(k >= 0 && k < 3);
        seqs[k] = m.seq;
    }
    CU_ASSERT_NOT_EQUAL(seqs[0], seqs[1]);
    CU_ASSERT_NOT_EQUAL(seqs[1], seqs[2]);
    answer(c, o.addr, seqs[1], QDB_OK, NULL, 0);
    CU_ASSERT_EQUAL(rec[1].calls, 1);
    CU_ASSERT_EQUAL(rec[0].calls + rec[2].calls, 0);
    CU_ASSERT_EQUAL(rec[1].r.op_id, ids[1]);
    answer(c, o.addr, seqs[2], QDB_E_ALIAS_ALREADY_EXISTS, NULL, 0);
    CU_ASSERT_EQUAL(rec[2].r.status, QDB_E_ALIAS_ALREADY_EXISTS);
    CU_ASSERT_EQUAL(rec[2].r.op_id, ids[2]);
    /* the first one times out on its own */
    advance(&e, c, 60 * S);
    CU_ASSERT_EQUAL(rec[0].calls, 1);
    CU_ASSERT_EQUAL(rec[0].r.status, QDB_E_TIMEOUT);
    CU_ASSERT_EQUAL(rec[0].r.op_id, ids[0]);
    CU_ASSERT_EQUAL(rec[1].calls + rec[2].calls, 2);
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 0);
    for (int i = 0; i < 3; i++)
        rec_clear(&rec[i]);
    qdb_client_core_free(c);
    env_clear(&e);
}

/* A scripted ring: FIND routed over a sorted node list the way node/ does
 * (done=1 when target is in (self, succ], or in (pred, self]; else done=0
 * and the successor), HELLO and every request answered OK. */
typedef struct fake_ring {
    qdb_peer nodes[8];
    unsigned n;
    GPtrArray *requests; /* sent_frame* borrowed from the env */
} fake_ring;

static int ring_index(const fake_ring *r, qdb_addr a)
{
    for (unsigned i = 0; i < r->n; i++)
        if (qdb_addr_eq(r->nodes[i].addr, a))
            return (int)i;
    return -1;
}

static void ring_pump(fake_env *e, qdb_client_core *c, fake_ring *r)
{
    qdb_msg m;
    const sent_frame *f;
    while ((f = pop(e, &m)) != NULL) {
        int i = ring_index(r, f->dst);
        CU_ASSERT_TRUE_FATAL(i >= 0);
        const qdb_peer *self = &r->nodes[i];
        const qdb_peer *succ = &r->nodes[(i + 1) % r->n];
        const qdb_peer *pred = &r->nodes[(i + r->n - 1) % r->n];
        switch (m.type) {
        case QDB_MSG_FIND:
            if (qdb_id_in_half(&m.target, &pred->id, &self->id))
                answer_find(c, self->addr, m.rpc, 1, self);
            else if (qdb_id_in_half(&m.target, &self->id, &succ->id))
                answer_find(c, self->addr, m.rpc, 1, succ);
            else
                answer_find(c, self->addr, m.rpc, 0, succ);
            break;
        case QDB_MSG_HELLO:
            answer_hello(c, self->addr, 1);
            break;
        default:
            CU_ASSERT_TRUE(qdb_msg_is_request(m.type));
            g_ptr_array_add(r->requests, (gpointer)f);
            answer(c, self->addr, m.seq, QDB_OK, NULL, 0);
            break;
        }
    }
}

static void test_remove_all_walk(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    /* the bootstrap is the middle node */
    fake_ring ring = { .nodes = { peer_at(5, 100), peer_at(1, 200), peer_at(7, 300) }, .n = 3 };
    ring.requests = g_ptr_array_new();

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_REMOVE_ALL, NULL, NULL, &rec, NULL), QDB_OK);
    ring_pump(&e, c, &ring);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_EQUAL(rec.r.op, QDB_MSG_REMOVE_ALL);
    CU_ASSERT_EQUAL(rec.r.attempts, 3);
    CU_ASSERT_EQUAL_FATAL(ring.requests->len, 3);
    uint64_t last_seq = 0;
    for (unsigned i = 0; i < 3; i++) {
        const sent_frame *f = g_ptr_array_index(ring.requests, i);
        qdb_msg m;
        CU_ASSERT_EQUAL(qdb_msg_decode(f->bytes->data, f->bytes->len, &m), QDB_OK);
        CU_ASSERT_EQUAL(m.type, QDB_MSG_REMOVE_ALL);
        CU_ASSERT_TRUE(qdb_addr_eq(f->dst, ring.nodes[i].addr)); /* in ring order from ID 0 */
        CU_ASSERT_TRUE(m.seq > last_seq);                       /* a seq per node */
        last_seq = m.seq;
    }
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 0);

    /* a second walk starts each FIND at a cached node: fewer frames, same three nodes */
    g_ptr_array_set_size(ring.requests, 0);
    guint before = e.sent->len;
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_REMOVE_ALL, NULL, NULL, &rec, NULL), QDB_OK);
    ring_pump(&e, c, &ring);
    CU_ASSERT_EQUAL(rec.calls, 2);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_EQUAL(ring.requests->len, 3);
    CU_ASSERT_TRUE(e.sent->len - before < 3 + 3 + 3);
    g_ptr_array_unref(ring.requests);

    /* normal ops against the same ring, the bootstrap not the owner */
    CU_ASSERT_EQUAL(submit(c, QDB_MSG_PUT, "x", "1", &rec, NULL), QDB_OK);
    ring.requests = g_ptr_array_new();
    ring_pump(&e, c, &ring);
    CU_ASSERT_EQUAL(rec.calls, 3);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    g_ptr_array_unref(ring.requests);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

/* Same calls, same frames: run one script twice and compare every byte. */
static GByteArray *script_trace(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_config cfg;
    qdb_client_config_defaults(&cfg);
    qdb_client_core *c = core_new(&e, &cfg); /* client id from the seeded random */
    result_rec rec = { 0 };
    fake_ring ring = { .nodes = { peer_at(5, 100), peer_at(1, 200), peer_at(7, 300) }, .n = 3 };
    ring.requests = g_ptr_array_new();
    char alias[16];
    for (int i = 0; i < 20; i++) {
        g_snprintf(alias, sizeof alias, "k%d", i);
        submit(c, i % 3 ? QDB_MSG_PUT : QDB_MSG_GET, alias, "v", &rec, NULL);
    }
    ring_pump(&e, c, &ring);
    CU_ASSERT_EQUAL(rec.calls, 20);
    GByteArray *t = g_byte_array_new();
    for (guint i = 0; i < e.sent->len; i++) {
        const sent_frame *f = g_ptr_array_index(e.sent, i);
        g_byte_array_append(t, (const uint8_t *)&f->dst, sizeof f->dst.ip);
        g_byte_array_append(t, f->bytes->data, f->bytes->len);
    }
    g_ptr_array_unref(ring.requests);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
    return t;
}

static void test_deterministic(void)
{
    GByteArray *a = script_trace(), *b = script_trace();
    CU_ASSERT_EQUAL(a->len, b->len);
    CU_ASSERT_EQUAL(memcmp(a->data, b->data, MIN(a->len, b->len)), 0);
    g_byte_array_unref(a);
    g_byte_array_unref(b);
}

/* A closed-loop client submits its next op from the callback. */
static unsigned chain_left;
static qdb_client_core *chain_core;

static void on_chain(void *arg, const qdb_client_result *r)
{
    result_rec *rec = arg;
    on_done(rec, r);
    if (chain_left > 0) {
        chain_left--;
        CU_ASSERT_EQUAL(qdb_client_core_submit(chain_core, QDB_MSG_GET, (const uint8_t *)"k", 1,
                                               NULL, 0, NULL, 0, on_chain, rec, NULL),
                        QDB_OK);
    }
}

static void test_submit_from_callback(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    fake_ring ring = { .nodes = { peer_at(5, 100), peer_at(1, 200), peer_at(7, 300) }, .n = 3 };
    ring.requests = g_ptr_array_new();
    chain_core = c;
    chain_left = 4;
    CU_ASSERT_EQUAL(qdb_client_core_submit(c, QDB_MSG_GET, (const uint8_t *)"k", 1, NULL, 0, NULL,
                                           0, on_chain, &rec, NULL),
                    QDB_OK);
    ring_pump(&e, c, &ring);
    CU_ASSERT_EQUAL(rec.calls, 5);
    CU_ASSERT_EQUAL(ring.requests->len, 5);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->lookups, 1); /* the rest hit the cache */
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 0);
    g_ptr_array_unref(ring.requests);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

/* Routing around dead hops: a hop that times out sends the lookup back to
 * the newest live hop, asked again with every dead node excluded; an owner
 * that is refused, likewise; lookup_at starts where it is told. */
static void test_route_around_dead_hops(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_id target;
    qdb_id_from_top64(&target, 1000);
    qdb_peer start = peer_at(9, 50), a = peer_at(2, 100), b = peer_at(3, 400),
             b2 = peer_at(6, 300), o = peer_at(5, 1100), o2 = peer_at(7, 1200);
    qdb_msg m;

    CU_ASSERT_EQUAL(qdb_client_core_lookup_at(c, &target, start.addr, on_done, &rec, NULL), QDB_OK);
    expect(&e, &m, QDB_MSG_FIND, start.addr); /* not the bootstrap */
    CU_ASSERT_EQUAL(m.n_exclude, 0);
    answer_find(c, start.addr, m.rpc, 0, &a);
    expect(&e, &m, QDB_MSG_FIND, a.addr);
    answer_find(c, a.addr, m.rpc, 0, &b);
    expect(&e, &m, QDB_MSG_FIND, b.addr);
    advance(&e, c, 2 * S); /* b is silent: rpc_timeout (never measured) */
    expect(&e, &m, QDB_MSG_FIND, a.addr); /* back one hop */
    CU_ASSERT_EQUAL_FATAL(m.n_exclude, 1);
    CU_ASSERT_TRUE(qdb_addr_eq(m.exclude[0], b.addr));
    answer_find(c, a.addr, m.rpc, 0, &b2); /* its next best */
    expect(&e, &m, QDB_MSG_FIND, b2.addr);
    CU_ASSERT_EQUAL(m.n_exclude, 1);
    answer_find(c, b2.addr, m.rpc, 1, &o);
    expect(&e, &m, QDB_MSG_PING, o.addr);
    qdb_client_core_unreachable(c, o.addr); /* the owner named is dead */
    expect(&e, &m, QDB_MSG_FIND, b2.addr);
    CU_ASSERT_EQUAL_FATAL(m.n_exclude, 2);
    CU_ASSERT_TRUE(qdb_addr_eq(m.exclude[1], o.addr));
    answer_find(c, b2.addr, m.rpc, 1, &o2);
    expect(&e, &m, QDB_MSG_PING, o2.addr);
    qdb_msg pong = { .type = QDB_MSG_PONG, .rpc = m.rpc };
    deliver(c, o2.addr, &pong);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_TRUE(qdb_peer_eq(&rec.r.owner, &o2));
    CU_ASSERT_EQUAL(rec.r.hops, 3);          /* start->a, a->b, a->b2 */
    CU_ASSERT_EQUAL(rec.r.lookups, 1);
    CU_ASSERT_EQUAL(rec.r.dead_contacts, 2); /* b, o */
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->dead_contacts, 2);
    CU_ASSERT_EQUAL(unread(&e), 0);
    /* the late answer of the silent b measures it: 2 s, so RTO = 2 + 4 = 6 s */
    answer_find(c, b.addr, 3, 0, &b2);
    CU_ASSERT_EQUAL(qdb_client_core_lookup_at(c, &target, b.addr, on_done, &rec, NULL), QDB_OK);
    expect(&e, &m, QDB_MSG_FIND, b.addr);
    advance(&e, c, 4 * S);
    CU_ASSERT_EQUAL(unread(&e), 0); /* still waiting: no longer 2 s */
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

/* One node, slow: every question times out once before its answer comes.
 * Silence is not death: the core asks again (the node itself never in its
 * own exclusion list), takes late answers to FIND and HELLO, and succeeds;
 * four silences used to end the GET with QDB_E_UNSTABLE (lookup_retries). */
static void test_slow_node_waited_for(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer boot = { .addr = BOOT };
    qdb_id_from_top64(&boot.id, 100);
    qdb_msg m;

    CU_ASSERT_EQUAL(submit(c, QDB_MSG_GET, "k", NULL, &rec, NULL), QDB_OK);
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    uint64_t first = m.rpc;
    advance(&e, c, 2 * S); /* silent 1 */
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    CU_ASSERT_EQUAL(m.n_exclude, 0);
    advance(&e, c, 4 * S); /* silent 2: its timeout backed off */
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    CU_ASSERT_EQUAL(m.n_exclude, 0);
    /* the first FIND's answer, 6 s late: still the answer */
    answer_find(c, BOOT, first, 1, &boot);
    expect(&e, &m, QDB_MSG_HELLO, BOOT);
    CU_ASSERT_EQUAL(unread(&e), 0);
    advance(&e, c, 20 * S); /* silent 3: the HELLO, at the measured 6 s x 3 */
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    uint64_t find = m.rpc;
    answer_hello(c, BOOT, 5); /* late: the session is open all the same */
    answer_find(c, BOOT, find, 1, &boot);
    expect(&e, &m, QDB_MSG_GET, BOOT); /* no second HELLO */
    uint64_t seq = m.seq;
    advance(&e, c, 20 * S); /* silent 4: the GET */
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    answer_find(c, BOOT, m.rpc, 1, &boot);
    expect(&e, &m, QDB_MSG_GET, BOOT);
    CU_ASSERT_EQUAL(m.seq, seq);
    CU_ASSERT_EQUAL(rec.calls, 0);
    answer(c, BOOT, seq, QDB_OK, "v", 1);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_EQUAL(rec.content->data[0], 'v');
    CU_ASSERT_EQUAL(rec.r.dead_contacts, 4);
    CU_ASSERT_EQUAL(qdb_client_core_stats(c)->hellos, 1);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

/* A GET routes around its silent owner o, and the detour (o2) says "wrong
 * node, ask o": the core goes back to o (excluded no longer) instead of
 * spending its attempts on the detour, and o's late answer to the first
 * transmission is the result.  A PUT to a silent owner is only ever
 * retransmitted to it (test_timeout_exact): never sent elsewhere. */
static void test_silent_owner_late_answer(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    result_rec rec = { 0 };
    qdb_peer o = peer_at(2, 100), o2 = peer_at(3, 200);
    qdb_msg m;

    uint64_t seq = get_sent_to(&e, c, &rec, &o);
    advance(&e, c, 2 * S); /* o is silent */
    get_detoured(&e, c, &o, &o2, seq);
    answer_wrong_node(c, o2.addr, seq, &o);
    expect(&e, &m, QDB_MSG_GET, o.addr); /* back to o, same seq */
    CU_ASSERT_EQUAL(m.seq, seq);
    CU_ASSERT_EQUAL(rec.calls, 0);
    answer(c, o.addr, seq, QDB_OK, "v", 1);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.r.status, QDB_OK);
    CU_ASSERT_TRUE(qdb_peer_eq(&rec.r.owner, &o));
    CU_ASSERT_EQUAL(rec.r.wrong_node, 1);

    CU_ASSERT_EQUAL(unread(&e), 0);
    qdb_client_core_free(c);

    /* o silent again (a new core); this time its late answer comes while
     * the detour's HELLO is out: it is taken at once */
    c = core_new(&e, NULL);
    seq = get_sent_to(&e, c, &rec, &o);
    advance(&e, c, 2 * S);
    expect(&e, &m, QDB_MSG_FIND, BOOT);
    answer_find(c, BOOT, m.rpc, 1, &o2);
    expect(&e, &m, QDB_MSG_HELLO, o2.addr);
    CU_ASSERT_EQUAL(rec.calls, 1);
    answer(c, o.addr, seq, QDB_E_ALIAS_NOT_FOUND, NULL, 0);
    CU_ASSERT_EQUAL(rec.calls, 2);
    CU_ASSERT_EQUAL(rec.r.status, QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_TRUE(qdb_peer_eq(&rec.r.owner, &o));
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 0);
    rec_clear(&rec);
    qdb_client_core_free(c);
    env_clear(&e);
}

static void test_request_checks(void); /* with the real-node tests, below */

static CU_TestInfo core_tests[] = {
    { "HELLO before the first request", test_hello_before_request },
    { "client id from the random seam", test_client_id_from_random },
    { "lookup over three hops", test_lookup_three_hops },
    { "lookup hop limit", test_hop_limit },
    { "cache hit skips the lookup", test_cache_hit },
    { "WRONG_NODE three times", test_wrong_node_limit },
    { "WRONG_NODE then OK", test_wrong_node_then_ok },
    { "UNSTABLE backs off then fails", test_unstable_backoff },
    { "timeout at exactly config.timeout", test_timeout_exact },
    { "mutation retransmission keeps its seq", test_retransmit_same_seq },
    { "NO_SESSION on first send", test_no_session_first },
    { "NO_SESSION on a retransmission", test_no_session_retransmitted },
    { "unreachable after a PUT", test_unreachable_after_put },
    { "GET retried on unreachable", test_get_retried_on_unreachable },
    { "bootstrap unreachable", test_bootstrap_unreachable },
    { "immediate errors", test_immediate_errors },
    { "garbage frames ignored", test_garbage_ignored },
    { "pipelined ops complete independently", test_pipelined },
    { "REMOVE_ALL walks the ring", test_remove_all_walk },
    { "same script, same frames", test_deterministic },
    { "submit from a done callback", test_submit_from_callback },
    { "lookups route around dead hops", test_route_around_dead_hops },
    { "a slow node is waited for, not dead", test_slow_node_waited_for },
    { "a read takes its silent owner's late answer", test_silent_owner_late_answer },
    { "new requests: argument checks", test_request_checks },
    CU_TEST_INFO_NULL,
};


/* ---- against real nodes ------------------------------------------------------------------
 * Real qdb_node instances (memory storage) and one client core on the
 * simulator's fixture (sim/fixture.h), every link taking exactly L, so the
 * latency of each operation is known: one round trip (2L) per FIND answered,
 * one for the HELLO that opens a session with a new owner, one for the
 * request.  Protocol compatibility, end to end. */

#define W_MAX 4
#define L (5 * MS)
#define W_SEED 11

typedef struct world {
    qdb_fixture *f;
    qdb_client_core *core;
    bool session[W_MAX];       /* the client has met node i as an owner */
    unsigned failures_before;
} world;

static void world_init(world *w, unsigned n)
{
    memset(w, 0, sizeof *w);
    w->failures_before = CU_get_number_of_failures();
    qdb_simnet_config c;
    qdb_simnet_config_defaults(&c);
    c.seed = W_SEED;
    c.latency_mean = 0;
    c.latency_min = L;
    w->f = qdb_fixture_new(&c, NULL);
    const uint64_t tops[W_MAX] = { UINT64_C(0x2000000000000000), UINT64_C(0x9000000000000000),
                                   UINT64_C(0x6000000000000000), UINT64_C(0xd000000000000000) };
    /* the hive enables REMOVE_ALL (off by default): the walk below uses it */
    const qdb_node_config ncfg = { .enable_purge_all = true };
    for (unsigned i = 0; i < n; i++) {
        qdb_peer p = { .addr = addr_of(11 + i) };
        qdb_id_from_top64(&p.id, tops[i]);
        qdb_fixture_add_node(w->f, &p, &ncfg);
    }
    qdb_addr boot = addr_of(11);
    CU_ASSERT_TRUE_FATAL(qdb_fixture_start(w->f, 0, NULL, 0));
    for (unsigned i = 1; i < n; i++) {
        qdb_fixture_run_until(w->f, qdb_fixture_now(w->f) + 5 * S);
        CU_ASSERT_TRUE_FATAL(qdb_fixture_start(w->f, i, &boot, 1));
    }
    qdb_fixture_run_until(w->f, qdb_fixture_now(w->f) + 120 * S); /* let the ring settle */
    qdb_client_config cfg;
    qdb_client_config_defaults(&cfg);
    cfg.bootstrap = boot;
    w->core = qdb_fixture_client(w->f, qdb_fixture_add_client(w->f, &cfg));
}

static void world_free(world *w)
{
    if (CU_get_number_of_failures() != w->failures_before)
        fprintf(stderr, "\n  (simulation seed %d, failed at %.6f s)\n", W_SEED,
                (double)qdb_fixture_now(w->f) / 1e6);
    qdb_fixture_free(w->f);
}

static bool client_idle(qdb_fixture *f, void *core)
{
    return qdb_client_core_pending(core) == 0;
}

/* The node that answered the last operation. */
static int owner_index(world *w, const result_rec *rec)
{
    return qdb_fixture_index_of(w->f, rec->r.owner.addr);
}

/* Submit and run the world until the op completes. */
static int w_op(world *w, int op, const char *alias, const char *content, result_rec *rec)
{
    unsigned before = rec->calls;
    int rc = submit(w->core, op, alias, content, rec, NULL);
    CU_ASSERT_EQUAL_FATAL(rc, QDB_OK);
    qdb_fixture_step_until(w->f, client_idle, w->core, qdb_fixture_now(w->f) + 120 * S);
    CU_ASSERT_EQUAL_FATAL(rec->calls, before + 1);
    return rec->r.status;
}

/* An operation on a stable ring: it completes after exactly the round trips
 * it made (FINDs, a HELLO to an owner met for the first time, the request). */
static int w_op_timed(world *w, int op, const char *alias, const char *content, result_rec *rec)
{
    int st = w_op(w, op, alias, content, rec);
    int o = owner_index(w, rec);
    CU_ASSERT_TRUE_FATAL(o >= 0);
    unsigned trips = (rec->r.lookups ? rec->r.hops + 1 : 0) + (w->session[o] ? 0 : 1) + 1;
    CU_ASSERT_EQUAL(rec->r.lookups, w->session[o] ? rec->r.lookups : 1);
    CU_ASSERT_EQUAL(rec->r.latency, trips * 2 * L);
    w->session[o] = true;
    return st;
}

static void run_real_ring(unsigned n)
{
    world w;
    world_init(&w, n);
    for (unsigned i = 0; i < n; i++)
        CU_ASSERT_TRUE(qdb_node_is_stable(qdb_fixture_node(w.f, i)));
    result_rec rec = { 0 };
    char alias[16], value[16];
    for (int i = 0; i < 30; i++) {
        g_snprintf(alias, sizeof alias, "key-%d", i);
        g_snprintf(value, sizeof value, "value-%d", i);
        CU_ASSERT_EQUAL(w_op_timed(&w, QDB_MSG_PUT, alias, value, &rec), QDB_OK);
        CU_ASSERT_TRUE(qdb_node_owns(qdb_fixture_node(w.f, (unsigned)owner_index(&w, &rec)),
                                     &rec.r.id));
    }
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_PUT, "key-3", "again", &rec), QDB_E_ALIAS_ALREADY_EXISTS);
    for (int i = 0; i < 30; i++) {
        g_snprintf(alias, sizeof alias, "key-%d", i);
        g_snprintf(value, sizeof value, "value-%d", i);
        CU_ASSERT_EQUAL(w_op_timed(&w, QDB_MSG_GET, alias, NULL, &rec), QDB_OK);
        CU_ASSERT_EQUAL(rec.r.lookups, 0); /* the cache knows every owner by now */
        CU_ASSERT_EQUAL(rec.r.latency, 2 * L); /* so one round trip */
        CU_ASSERT_EQUAL(rec.content->len, strlen(value));
        CU_ASSERT_EQUAL(memcmp(rec.content->data, value, rec.content->len), 0);
    }
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_GET_UPDATE, "key-1", "new", &rec), QDB_OK);
    CU_ASSERT_EQUAL(rec.content->len, 7);
    CU_ASSERT_EQUAL(memcmp(rec.content->data, "value-1", 7), 0);
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_GET, "key-1", NULL, &rec), QDB_OK);
    CU_ASSERT_EQUAL(memcmp(rec.content->data, "new", 3), 0);
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_REMOVE, "key-2", NULL, &rec), QDB_OK);
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_GET, "key-2", NULL, &rec), QDB_E_ALIAS_NOT_FOUND);

    uint64_t stored = 0;
    for (unsigned i = 0; i < n; i++)
        stored += qdb_record_count(qdb_fixture_storage_of(w.f, i), NULL);
    CU_ASSERT_EQUAL(stored, 29);
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_REMOVE_ALL, NULL, NULL, &rec), QDB_OK);
    CU_ASSERT_EQUAL(rec.r.attempts, n);
    stored = 0;
    for (unsigned i = 0; i < n; i++)
        stored += qdb_record_count(qdb_fixture_storage_of(w.f, i), NULL);
    CU_ASSERT_EQUAL(stored, 0);
    CU_ASSERT_EQUAL(qdb_client_core_stats(w.core)->bad_frames, 0);

    /* a node dies: operations on its keys still end, never hang */
    qdb_fixture_crash(w.f, n > 1 ? 1 : 0, true); /* with one node: the whole hive */
    for (int i = 0; i < 10; i++) {
        g_snprintf(alias, sizeof alias, "after-%d", i);
        w_op(&w, QDB_MSG_PUT, alias, "v", &rec);
        CU_ASSERT_TRUE(rec.r.attempts <= 3);
    }
    CU_ASSERT_EQUAL(qdb_client_core_pending(w.core), 0);
    if (n > 1) {
        /* once the ring has repaired itself, every key is served again.
         * UPDATE, not PUT: in the arc the dead node owned, whether an alias
         * exists cannot be known while it is down, so a PUT there answers
         * "unavailable". */
        qdb_fixture_run_until(w.f, qdb_fixture_now(w.f) + 120 * S);
        for (int i = 0; i < 10; i++) {
            g_snprintf(alias, sizeof alias, "later-%d", i);
            CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_UPDATE, alias, "v", &rec), QDB_OK);
            CU_ASSERT_NOT_EQUAL(owner_index(&w, &rec), 1);
        }
    }
    rec_clear(&rec);
    world_free(&w);
}

static void test_real_one_node(void)
{
    run_real_ring(1);
}

static void test_real_three_nodes(void)
{
    run_real_ring(3);
}

/* Submit a request and run the world until it completes. */
static int w_request(world *w, const qdb_client_request *req, result_rec *rec)
{
    unsigned before = rec->calls;
    in_api_call = true;
    int rc = qdb_client_core_submit_request(w->core, req, on_done, rec, NULL);
    in_api_call = false;
    CU_ASSERT_EQUAL_FATAL(rc, QDB_OK);
    qdb_fixture_step_until(w->f, client_idle, w->core, qdb_fixture_now(w->f) + 120 * S);
    CU_ASSERT_EQUAL_FATAL(rec->calls, before + 1);
    return rec->r.status;
}

static int w_prefix(world *w, const char *prefix, uint64_t max, unsigned flags, result_rec *rec)
{
    qdb_client_request req = {.op = QDB_MSG_PREFIX, .alias = (const uint8_t *)prefix,
                              .alias_len = strlen(prefix), .max = max, .flags = flags};
    return w_request(w, &req, rec);
}

/* PREFIX over three real nodes and 10,000 entries: every matching alias of
 * the ring, from whichever node owns it, sorted bytewise, bounded by max. */
static void test_real_prefix(void)
{
    world w;
    world_init(&w, 3);
    result_rec rec = {0};
    char alias[32];
    enum { N = 10000, P = N - (N + 2) / 3 }; /* P: the numbers not divisible by 3 */
    for (int i = 0; i < N; i++) {
        /* numbers in a scrambled order (7919 is prime to N) */
        int v = (int)(((int64_t)i * 7919) % N);
        g_snprintf(alias, sizeof alias, v % 3 ? "p/%05d" : "q/%05d", v);
        CU_ASSERT_EQUAL_FATAL(w_op(&w, QDB_MSG_PUT, alias, "v", &rec), QDB_OK);
    }
    /* every node holds some of them: the walk must visit all three */
    for (unsigned i = 0; i < 3; i++)
        CU_ASSERT_TRUE(qdb_fixture_storage_of(w.f, i)->count(qdb_fixture_storage_of(w.f, i)) > 0);
    CU_ASSERT_EQUAL(w_prefix(&w, "p/", P, 0, &rec), QDB_OK);
    const uint8_t *p = rec.content->data;
    size_t len = rec.content->len, at;
    uint64_t n;
    at = (size_t)qdb_varint_get(p, len, &n);
    CU_ASSERT_EQUAL_FATAL(n, P);
    int prev = -1;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t alen;
        at += (size_t)qdb_varint_get(p + at, len - at, &alen);
        CU_ASSERT_EQUAL_FATAL(alen, 7);
        CU_ASSERT_EQUAL(memcmp(p + at, "p/", 2), 0);
        char digits[6] = {0};
        memcpy(digits, p + at + 2, 5);
        int v = atoi(digits);
        CU_ASSERT_TRUE(v > prev && v % 3 != 0); /* sorted, and only p/ aliases */
        prev = v;
        at += (size_t)alen;
    }
    CU_ASSERT_EQUAL(at, len);
    CU_ASSERT_EQUAL(w_prefix(&w, "p/", P - 1, 0, &rec), QDB_E_TOO_MANY);
    CU_ASSERT_EQUAL(w_prefix(&w, "", 0, QDB_PREFIX_COUNT, &rec), QDB_OK);
    CU_ASSERT_EQUAL(qdb_varint_get(rec.content->data, rec.content->len, &n), 2);
    CU_ASSERT_EQUAL(n, N);
    CU_ASSERT_EQUAL(w_prefix(&w, "q/000", 1000, QDB_PREFIX_COUNT, &rec), QDB_OK);
    qdb_varint_get(rec.content->data, rec.content->len, &n);
    CU_ASSERT_EQUAL(n, 34); /* q/00000 .. q/00099, every third */
    CU_ASSERT_EQUAL(w_prefix(&w, "none/", 10, 0, &rec), QDB_OK);
    CU_ASSERT_EQUAL(rec.content->len, 1);
    CU_ASSERT_EQUAL(rec.content->data[0], 0);
    rec_clear(&rec);
    world_free(&w);
}

/* Expiry on the simulator's virtual wall clock: the entry is there one
 * second before, gone one second after, for every operation. */
static void test_real_expiry(void)
{
    world w;
    world_init(&w, 3);
    result_rec rec = {0};
    qdb_clock *clk = qdb_fixture_host(w.f)->seams(qdb_fixture_endpoint(w.f, 0)).clock;
    int64_t at = clk->wall(clk) / QDB_US_PER_S + 10;
    qdb_client_request put = {.op = QDB_MSG_PUT, .alias = (const uint8_t *)"soon",
                              .alias_len = 4, .content = (const uint8_t *)"abc",
                              .content_len = 3, .expiry = at};
    CU_ASSERT_EQUAL(w_request(&w, &put, &rec), QDB_OK);
    qdb_client_request meta = {.op = QDB_MSG_GET_META, .alias = (const uint8_t *)"soon",
                               .alias_len = 4};
    CU_ASSERT_EQUAL(w_request(&w, &meta, &rec), QDB_OK);
    qdb_meta m;
    CU_ASSERT_EQUAL_FATAL(qdb_meta_decode(rec.content->data, rec.content->len, &m), QDB_OK);
    CU_ASSERT_EQUAL(m.expiry_s, at);
    CU_ASSERT_EQUAL(m.size, 3);
    uint64_t first_version = m.version;
    qdb_fixture_run_until(w.f, (at - 1 - INT64_C(1767225600)) * S);
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_GET, "soon", NULL, &rec), QDB_OK);
    qdb_fixture_run_until(w.f, (at + 1 - INT64_C(1767225600)) * S);
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_GET, "soon", NULL, &rec), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(w_request(&w, &meta, &rec), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_REMOVE, "soon", NULL, &rec), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(w_prefix(&w, "soon", 5, QDB_PREFIX_COUNT, &rec), QDB_OK);
    CU_ASSERT_EQUAL(rec.content->data[0], 0);
    /* a PUT creates it anew, without expiry */
    CU_ASSERT_EQUAL(w_op(&w, QDB_MSG_PUT, "soon", "new", &rec), QDB_OK);
    CU_ASSERT_EQUAL(w_request(&w, &meta, &rec), QDB_OK);
    qdb_meta_decode(rec.content->data, rec.content->len, &m);
    CU_ASSERT_EQUAL(m.expiry_s, 0);
    CU_ASSERT_TRUE(m.version > first_version); /* versioned above the expired record */
    rec_clear(&rec);
    world_free(&w);
}

/* What submit_request refuses before sending anything. */
static void test_request_checks(void)
{
    fake_env e;
    env_init(&e);
    qdb_client_core *c = core_new(&e, NULL);
    const uint8_t *a = (const uint8_t *)"a";
    char big[QDB_MAX_ALIAS + 1];
    memset(big, 'x', sizeof big);
    static const struct {
        qdb_client_request r;
        int rc;
    } cases[] = {
        {{.op = QDB_MSG_GET_REMOVE, .alias = (const uint8_t *)"", .alias_len = 0},
         QDB_E_ALIAS_EMPTY},
        {{.op = QDB_MSG_GET_META, .alias = NULL, .alias_len = 1}, QDB_E_INVALID_ARGUMENT},
        {{.op = QDB_MSG_EXPIRE, .alias = (const uint8_t *)"a", .alias_len = 1, .expiry = -1},
         QDB_E_INVALID_ARGUMENT},
        {{.op = QDB_MSG_PUT, .alias = (const uint8_t *)"a", .alias_len = 1,
          .expiry = QDB_EXPIRY_MAX + 1}, QDB_E_INVALID_ARGUMENT},
        {{.op = QDB_MSG_GET, .alias = (const uint8_t *)"a", .alias_len = 1, .expiry = 5},
         QDB_E_INVALID_ARGUMENT},
        {{.op = QDB_MSG_REMOVE_IF, .alias = (const uint8_t *)"a", .alias_len = 1,
          .comparand_len = 3}, QDB_E_INVALID_ARGUMENT},
        {{.op = QDB_MSG_PREFIX, .max = QDB_PREFIX_MAX + 1}, QDB_E_INVALID_ARGUMENT},
        {{.op = QDB_MSG_PREFIX, .flags = 2}, QDB_E_INVALID_ARGUMENT},
        {{.op = QDB_MSG_PUT_EX, .alias = (const uint8_t *)"a", .alias_len = 1},
         QDB_E_INVALID_ARGUMENT},
    };
    for (size_t k = 0; k < G_N_ELEMENTS(cases); k++)
        CU_ASSERT_EQUAL(qdb_client_core_submit_request(c, &cases[k].r, on_done, NULL, NULL),
                        cases[k].rc);
    qdb_client_request r = {.op = QDB_MSG_GET_META, .alias = (const uint8_t *)big,
                            .alias_len = sizeof big};
    CU_ASSERT_EQUAL(qdb_client_core_submit_request(c, &r, on_done, NULL, NULL),
                    QDB_E_ALIAS_TOO_LONG);
    r.alias_len = QDB_MAX_ALIAS;
    r.op = QDB_MSG_PREFIX; /* a prefix may be empty, and as long as an alias */
    CU_ASSERT_EQUAL(qdb_client_core_check_request(&r), QDB_OK);
    r.alias = a;
    r.alias_len = 0;
    CU_ASSERT_EQUAL(qdb_client_core_check_request(&r), QDB_OK);
    CU_ASSERT_EQUAL(qdb_client_core_pending(c), 0);
    CU_ASSERT_EQUAL(e.sent->len, 0);
    qdb_client_core_free(c);
    env_clear(&e);
}

static CU_TestInfo real_tests[] = {
    { "one real node", test_real_one_node },
    { "three real nodes", test_real_three_nodes },
    { "prefix over three real nodes", test_real_prefix },
    { "expiry on virtual wall time", test_real_expiry },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { .pName = "client core", .pTests = core_tests },
    { .pName = "client core + real nodes", .pTests = real_tests },
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return qdb_test_run(suites);
}

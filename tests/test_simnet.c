/* SPDX-License-Identifier: BSD-2-Clause */
/* Tests for transport-sim/: the event queue and the simulated network.
 *
 * Suites: eventq (order, ties, reserved sequences, lazy cancellation, 100k
 * random operations against a sorted reference); timer; network (latency,
 * FIFO, faults, partitions, detach); clock (drift, jumps, slowness);
 * determinism (trace hash, hash log).  Times asserted are exact virtual
 * microseconds.
 *
 * `test_simnet bench [endpoints] [events]` runs a ping-pong micro-benchmark
 * instead and prints events per second (wall clock: the benchmark only).
 */
#include "config.h"

#include <glib.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "testutil.h"
#include "transport-sim/eventq.h"
#include "transport-sim/simnet.h"

/* ======================================================================== */
/* eventq                                                                    */
/* ======================================================================== */

typedef struct cancel_ctx {
    uint32_t gens[64]; /* current generation per object; entries with another are stale */
    unsigned discarded;
} cancel_ctx;

static bool t_stale(const qdb_event *ev, void *arg)
{
    cancel_ctx *c = arg;
    return ev->gen != c->gens[ev->kind];
}

static void t_discard(qdb_event *ev, void *arg)
{
    ((cancel_ctx *)arg)->discarded++;
}

static void test_eventq_order(void)
{
    qdb_eventq *q = qdb_eventq_new(NULL, NULL);
    const qdb_time_us times[] = {50, 10, 40, 30, 20, 60, 0};
    for (unsigned i = 0; i < G_N_ELEMENTS(times); i++)
        qdb_eventq_push(q, times[i], i, 0, NULL);
    CU_ASSERT_EQUAL(qdb_eventq_size(q), 7);
    qdb_event ev;
    qdb_time_us last = 0;
    unsigned n = 0;
    while (qdb_eventq_pop(q, &ev)) {
        CU_ASSERT(ev.time >= last);
        CU_ASSERT_EQUAL(ev.time, times[ev.kind]);
        last = ev.time;
        n++;
    }
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT_PTR_NULL(qdb_eventq_peek(q));
    CU_ASSERT_FALSE(qdb_eventq_pop(q, &ev));
    qdb_eventq_free(q);
}

static void test_eventq_ties(void)
{
    qdb_eventq *q = qdb_eventq_new(NULL, NULL);
    /* Interleave two times; within a time, insertion order must come out. */
    for (uint32_t i = 0; i < 100; i++)
        qdb_eventq_push(q, (i % 2) ? 7 : 3, i, 0, NULL);
    qdb_event ev;
    uint32_t expect_even = 0, expect_odd = 1;
    for (int i = 0; i < 100; i++) {
        CU_ASSERT_TRUE(qdb_eventq_pop(q, &ev));
        if (i < 50) {
            CU_ASSERT_EQUAL(ev.time, 3);
            CU_ASSERT_EQUAL(ev.kind, expect_even);
            expect_even += 2;
        } else {
            CU_ASSERT_EQUAL(ev.time, 7);
            CU_ASSERT_EQUAL(ev.kind, expect_odd);
            expect_odd += 2;
        }
    }
    qdb_eventq_free(q);
}

static void test_eventq_reserved_seq(void)
{
    qdb_eventq *q = qdb_eventq_new(NULL, NULL);
    uint64_t s = qdb_eventq_reserve_seq(q);
    uint64_t s1 = qdb_eventq_push(q, 100, 1, 0, NULL);
    CU_ASSERT(s1 > s);
    /* Pushed after, but with the earlier reservation: it comes first. */
    qdb_event r = {.time = 100, .seq = s, .kind = 2};
    qdb_eventq_push_seq(q, &r);
    qdb_event ev;
    CU_ASSERT_TRUE(qdb_eventq_pop(q, &ev));
    CU_ASSERT_EQUAL(ev.kind, 2);
    CU_ASSERT_EQUAL(ev.seq, s);
    CU_ASSERT_TRUE(qdb_eventq_pop(q, &ev));
    CU_ASSERT_EQUAL(ev.kind, 1);
    qdb_eventq_free(q);
}

static void test_eventq_cancel(void)
{
    cancel_ctx c = {{0}, 0};
    qdb_eventq_ops ops = {.stale = t_stale, .discard = t_discard};
    qdb_eventq *q = qdb_eventq_new(&ops, &c);
    /* Object k has events at times k*10 (gen 0) and k*10+5 (gen 1 after a bump). */
    for (uint32_t k = 0; k < 10; k++)
        qdb_eventq_push(q, k * 10, k, 0, NULL);
    /* Cancel objects 0, 3 and 9 by bumping their generation. */
    c.gens[0] = c.gens[3] = c.gens[9] = 1;
    qdb_eventq_push(q, 35, 3, 1, NULL); /* object 3 rescheduled later */
    CU_ASSERT_EQUAL(qdb_eventq_size(q), 11); /* stale ones still held */
    const qdb_event *top = qdb_eventq_peek(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(top);
    CU_ASSERT_EQUAL(top->time, 10);
    CU_ASSERT_EQUAL(c.discarded, 1); /* object 0's, found at the top */
    const qdb_time_us expect[] = {10, 20, 35, 40, 50, 60, 70, 80};
    qdb_event ev;
    for (unsigned i = 0; i < G_N_ELEMENTS(expect); i++) {
        CU_ASSERT_TRUE(qdb_eventq_pop(q, &ev));
        CU_ASSERT_EQUAL(ev.time, expect[i]);
    }
    CU_ASSERT_FALSE(qdb_eventq_pop(q, &ev));
    CU_ASSERT_EQUAL(c.discarded, 3);
    /* free() discards what is left, live or stale */
    qdb_eventq_push(q, 1, 1, 0, NULL);
    qdb_eventq_push(q, 2, 2, 0, NULL);
    qdb_eventq_free(q);
    CU_ASSERT_EQUAL(c.discarded, 5);
}

static int ref_cmp(const void *a, const void *b)
{
    const qdb_event *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void test_eventq_random_100k(void)
{
    enum { N = 100000 };
    GRand *r = g_rand_new_with_seed(42);
    qdb_eventq *q = qdb_eventq_new(NULL, NULL);
    qdb_event *ref = g_new(qdb_event, N);
    for (uint32_t i = 0; i < N; i++) {
        /* A narrow time range forces many ties. */
        qdb_time_us t = g_rand_int_range(r, 0, 5000);
        ref[i] = (qdb_event){.time = t, .seq = qdb_eventq_push(q, t, i, 0, NULL), .kind = i};
    }
    qsort(ref, N, sizeof *ref, ref_cmp);
    qdb_event ev;
    unsigned bad = 0;
    for (uint32_t i = 0; i < N; i++) {
        if (!qdb_eventq_pop(q, &ev) || ev.time != ref[i].time || ev.seq != ref[i].seq ||
            ev.kind != ref[i].kind)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(qdb_eventq_size(q), 0);
    qdb_eventq_free(q);
    g_free(ref);
    g_rand_free(r);
}

static gint seq_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
    return ref_cmp(a, b);
}

/* Pushes and pops interleaved, with times never before the last pop (as in
 * the simulator), against a GSequence kept sorted. */
static void test_eventq_random_interleaved(void)
{
    GRand *r = g_rand_new_with_seed(7);
    qdb_eventq *q = qdb_eventq_new(NULL, NULL);
    GSequence *ref = g_sequence_new(g_free);
    qdb_time_us now = 0;
    unsigned bad = 0, pops = 0;
    for (int i = 0; i < 100000; i++) {
        if (g_rand_int_range(r, 0, 3) > 0) { /* push twice as often as pop */
            qdb_time_us t = now + g_rand_int_range(r, 0, 100);
            qdb_event *e = g_new(qdb_event, 1);
            *e = (qdb_event){.time = t, .seq = qdb_eventq_push(q, t, 0, 0, NULL)};
            g_sequence_insert_sorted(ref, e, seq_cmp, NULL);
        } else {
            qdb_event ev;
            GSequenceIter *it = g_sequence_get_begin_iter(ref);
            bool have = qdb_eventq_pop(q, &ev);
            if (g_sequence_iter_is_end(it)) {
                bad += have;
                continue;
            }
            qdb_event *e = g_sequence_get(it);
            if (!have || ev.time != e->time || ev.seq != e->seq)
                bad++;
            now = e->time;
            g_sequence_remove(it);
            pops++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(pops > 30000);
    CU_ASSERT_EQUAL(qdb_eventq_size(q), (size_t)g_sequence_get_length(ref));
    qdb_eventq_free(q);
    g_sequence_free(ref);
    g_rand_free(r);
}

/* ======================================================================== */
/* simnet helpers                                                            */
/* ======================================================================== */

enum { REC_RECV = 1, REC_TICK, REC_UNREACH };

typedef struct rec_ev {
    qdb_time_us t;
    int kind;
    qdb_addr peer;
    size_t len;
    uint8_t data[16];
} rec_ev;

typedef struct owner {
    qdb_simnet *net;
    qdb_sim_endpoint *ep;
    GArray *evs; /* rec_ev */
    bool echo;                /* send every frame back to its source */
    qdb_time_us period;       /* re-arm now+period in tick, when non-zero */
    bool detach_in_recv;      /* detach itself from inside recv */
    int send_after_detach;    /* result of send() after that */
    uint64_t pingpong_budget; /* bench: stop echoing at 0 */
} owner;

static void o_recv(void *o_, qdb_addr src, const uint8_t *frame, size_t len)
{
    owner *o = o_;
    rec_ev e = {.t = qdb_simnet_now(o->net), .kind = REC_RECV, .peer = src, .len = len};
    memcpy(e.data, frame, MIN(len, sizeof e.data));
    g_array_append_val(o->evs, e);
    if (o->detach_in_recv) {
        qdb_transport *t = qdb_sim_endpoint_transport(o->ep);
        qdb_simnet_detach(o->net, o->ep);
        o->send_after_detach = t->send(t, src, frame, len);
        qdb_clock *c = qdb_sim_endpoint_clock(o->ep);
        c->arm(c, 1); /* inert, must not crash or schedule */
        o->ep = NULL;
        return;
    }
    if (o->echo) {
        qdb_transport *t = qdb_sim_endpoint_transport(o->ep);
        t->send(t, src, frame, len);
    }
}

static void o_tick(void *o_)
{
    owner *o = o_;
    rec_ev e = {.t = qdb_simnet_now(o->net), .kind = REC_TICK};
    g_array_append_val(o->evs, e);
    if (o->period) {
        qdb_clock *c = qdb_sim_endpoint_clock(o->ep);
        c->arm(c, c->now(c) + o->period);
    }
}

static void o_unreach(void *o_, qdb_addr dst)
{
    owner *o = o_;
    rec_ev e = {.t = qdb_simnet_now(o->net), .kind = REC_UNREACH, .peer = dst};
    g_array_append_val(o->evs, e);
}

static const qdb_inbound o_ops = {.recv = o_recv, .unreachable = o_unreach,
                                           .tick = o_tick};

static qdb_addr A(unsigned n)
{
    return (qdb_addr){.ip = 0x0a000000u + n, .port = 2836};
}

static owner *o_new(qdb_simnet *net, unsigned n)
{
    owner *o = g_new0(owner, 1);
    o->net = net;
    o->evs = g_array_new(FALSE, TRUE, sizeof(rec_ev));
    o->ep = qdb_simnet_attach(net, A(n), &o_ops, o, 1000 + n);
    CU_ASSERT_PTR_NOT_NULL(o->ep);
    return o;
}

static void o_free(owner *o)
{
    g_array_free(o->evs, TRUE);
    g_free(o);
}

static rec_ev *o_ev(owner *o, unsigned i)
{
    return &g_array_index(o->evs, rec_ev, i);
}

static void o_send(owner *o, unsigned to, const char *payload)
{
    qdb_transport *t = qdb_sim_endpoint_transport(o->ep);
    CU_ASSERT_EQUAL(t->send(t, A(to), (const uint8_t *)payload, strlen(payload)), 0);
}

static void o_arm(owner *o, qdb_time_us deadline)
{
    qdb_clock *c = qdb_sim_endpoint_clock(o->ep);
    c->arm(c, deadline);
}

static qdb_time_us o_now(owner *o)
{
    qdb_clock *c = qdb_sim_endpoint_clock(o->ep);
    return c->now(c);
}

/* A world whose links all take exactly `lat` (no exponential part). */
static qdb_simnet *net_fixed(qdb_time_us lat)
{
    qdb_simnet_config cfg;
    qdb_simnet_config_defaults(&cfg);
    cfg.latency_mean = 0;
    cfg.latency_min = lat;
    return qdb_simnet_new(&cfg);
}

/* ======================================================================== */
/* timer                                                                     */
/* ======================================================================== */

static void test_timer_fires_once(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1);
    o_arm(a, 1000);
    CU_ASSERT_EQUAL(a->evs->len, 0); /* never from inside arm() */
    qdb_simnet_run_until(net, 100000);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(a, 0)->kind, REC_TICK);
    CU_ASSERT_EQUAL(o_ev(a, 0)->t, 1000);
    CU_ASSERT_EQUAL(qdb_simnet_now(net), 100000);
    CU_ASSERT_EQUAL(qdb_simnet_next_time(net), QDB_SIMNET_NEVER);
    qdb_simnet_free(net);
    o_free(a);
}

static void test_timer_later_replaces(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1);
    o_arm(a, 1000);
    o_arm(a, 3000);
    o_arm(a, 2000);
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.queued, 1); /* later deadlines push nothing */
    qdb_simnet_run_until(net, 100000);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(a, 0)->t, 2000);
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.ticks, 1);
    CU_ASSERT_EQUAL(st.events, 1);
    qdb_simnet_free(net);
    o_free(a);
}

static void test_timer_earlier_replaces(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1);
    o_arm(a, 3000);
    o_arm(a, 1000);
    qdb_simnet_run_until(net, 100000);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(a, 0)->t, 1000);
    /* disarm */
    o_arm(a, 200000);
    o_arm(a, QDB_SIMNET_NEVER);
    qdb_simnet_run_until(net, 1000000);
    CU_ASSERT_EQUAL(a->evs->len, 1);
    qdb_simnet_free(net);
    o_free(a);
}

static void test_timer_past_and_periodic(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1);
    qdb_simnet_run_until(net, 500);
    o_arm(a, 100); /* already past: fires now, from the queue */
    CU_ASSERT_EQUAL(a->evs->len, 0);
    CU_ASSERT_EQUAL(qdb_simnet_next_time(net), 500);
    qdb_simnet_run_until(net, 500);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(a, 0)->t, 500);
    a->period = 1000;
    o_arm(a, 1500);
    qdb_simnet_run_until(net, 4700);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 5);
    for (unsigned i = 1; i < 5; i++)
        CU_ASSERT_EQUAL(o_ev(a, i)->t, 500 + 1000 * i);
    qdb_simnet_free(net);
    o_free(a);
}

static GString *order_log;

static void ord_recv(void *o, qdb_addr s, const uint8_t *f, size_t l)
{
}

static void ord_tick(void *o)
{
    g_string_append(order_log, (const char *)o);
}

/* Ticks at the same virtual time run in the order of their arm() calls, even
 * when the queue entry was pushed by an older arm. */
static void test_timer_same_time_order(void)
{
    static const qdb_inbound ops = {.recv = ord_recv, .tick = ord_tick};
    qdb_simnet *net = net_fixed(10000);
    qdb_sim_endpoint *x = qdb_simnet_attach(net, A(1), &ops, "x", 1);
    qdb_sim_endpoint *y = qdb_simnet_attach(net, A(2), &ops, "y", 2);
    qdb_clock *cx = qdb_sim_endpoint_clock(x), *cy = qdb_sim_endpoint_clock(y);
    order_log = g_string_new("");
    cx->arm(cx, 5000);
    cy->arm(cy, 5000);
    qdb_simnet_run_until(net, 6000);
    CU_ASSERT_STRING_EQUAL(order_log->str, "xy");
    g_string_truncate(order_log, 0);
    cx->arm(cx, 9000);
    cy->arm(cy, 9000);
    cx->arm(cx, 9000); /* x re-armed last: it goes second */
    qdb_simnet_run_until(net, 10000);
    CU_ASSERT_STRING_EQUAL(order_log->str, "yx");
    g_string_truncate(order_log, 0);
    cx->arm(cx, 12000);
    cy->arm(cy, 15000);
    cx->arm(cx, 15000); /* later than its queued entry: re-queued, still after y */
    qdb_simnet_run_until(net, 20000);
    CU_ASSERT_STRING_EQUAL(order_log->str, "yx");
    g_string_free(order_log, TRUE);
    qdb_simnet_free(net);
}

/* ======================================================================== */
/* network                                                                   */
/* ======================================================================== */

static void test_latency_fixed(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1), *b = o_new(net, 2);
    qdb_simnet_run_until(net, 1234);
    o_send(a, 2, "hello");
    qdb_simnet_run_until(net, 100000);
    CU_ASSERT_EQUAL_FATAL(b->evs->len, 1);
    rec_ev *e = o_ev(b, 0);
    CU_ASSERT_EQUAL(e->kind, REC_RECV);
    CU_ASSERT_EQUAL(e->t, 11234);
    CU_ASSERT_TRUE(qdb_addr_eq(e->peer, A(1)));
    CU_ASSERT_EQUAL(e->len, 5);
    CU_ASSERT_EQUAL(memcmp(e->data, "hello", 5), 0);
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.frames_sent, 1);
    CU_ASSERT_EQUAL(st.frames_delivered, 1);
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
}

/* Default exponential latency: symmetric per link, different across links,
 * the same for every frame on a link (FIFO), and a function of the seed. */
static void test_latency_links(void)
{
    qdb_time_us d[2][3];
    for (int s = 0; s < 2; s++) {
        qdb_simnet_config cfg;
        qdb_simnet_config_defaults(&cfg);
        cfg.seed = 100 + s;
        qdb_simnet *net = qdb_simnet_new(&cfg);
        owner *a = o_new(net, 1), *b = o_new(net, 2), *c = o_new(net, 3);
        o_send(a, 2, "ab");
        o_send(b, 1, "ba");
        o_send(a, 3, "ac");
        qdb_simnet_run_until(net, 100 * QDB_US_PER_S);
        CU_ASSERT_EQUAL_FATAL(b->evs->len, 1);
        CU_ASSERT_EQUAL_FATAL(a->evs->len, 1);
        CU_ASSERT_EQUAL_FATAL(c->evs->len, 1);
        d[s][0] = o_ev(b, 0)->t;
        d[s][1] = o_ev(a, 0)->t;
        d[s][2] = o_ev(c, 0)->t;
        CU_ASSERT_EQUAL(d[s][0], d[s][1]);
        CU_ASSERT_NOT_EQUAL(d[s][0], d[s][2]);
        CU_ASSERT(d[s][0] > 0);
        qdb_simnet_free(net);
        o_free(a);
        o_free(b);
        o_free(c);
    }
    CU_ASSERT_NOT_EQUAL(d[0][0], d[1][0]);
}

/* Link bases follow latency_min + Exp(latency_mean): measured through the
 * refused notices (one round trip each) to 4000 distinct dead addresses. */
static void test_latency_distribution(void)
{
    qdb_simnet_config cfg;
    qdb_simnet_config_defaults(&cfg);
    cfg.seed = 77;
    cfg.latency_min = 1000;
    qdb_simnet *net = qdb_simnet_new(&cfg);
    owner *a = o_new(net, 1);
    enum { N = 4000 };
    for (unsigned i = 0; i < N; i++)
        o_send(a, 100 + i, "x");
    qdb_simnet_run_until(net, 1000 * QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, N);
    double sum = 0;
    unsigned below_mean = 0;
    qdb_time_us lo = QDB_SIMNET_NEVER;
    for (unsigned i = 0; i < N; i++) {
        qdb_time_us one_way = o_ev(a, i)->t / 2;
        CU_ASSERT_EQUAL(o_ev(a, i)->kind, REC_UNREACH);
        sum += one_way - 1000.0;
        below_mean += one_way - 1000 < 50000;
        lo = MIN(lo, one_way);
    }
    double mean = sum / N;
    CU_ASSERT(mean > 47500 && mean < 52500);
    /* P(Exp < mean) = 1 - 1/e = 0.632 */
    CU_ASSERT(below_mean > 0.60 * N && below_mean < 0.66 * N);
    CU_ASSERT(lo >= 1000);
    qdb_simnet_free(net);
    o_free(a);
}

static void test_fifo_and_jitter(void)
{
    qdb_simnet_config cfg;
    qdb_simnet_config_defaults(&cfg);
    cfg.seed = 5;
    qdb_simnet *net = qdb_simnet_new(&cfg);
    owner *a = o_new(net, 1), *b = o_new(net, 2);
    char p[8];
    for (int i = 0; i < 100; i++) {
        snprintf(p, sizeof p, "%d", i);
        o_send(a, 2, p);
        qdb_simnet_run_until(net, qdb_simnet_now(net) + 10); /* sends spread in time */
    }
    qdb_simnet_run_until(net, 100 * QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(b->evs->len, 100);
    qdb_time_us lat = o_ev(b, 0)->t;
    for (int i = 0; i < 100; i++) {
        snprintf(p, sizeof p, "%d", i);
        CU_ASSERT_EQUAL(memcmp(o_ev(b, i)->data, p, strlen(p)), 0);
        CU_ASSERT_EQUAL(o_ev(b, i)->t, lat + 10 * (qdb_time_us)i);
    }
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);

    /* jitter: delivery within [base, base + jitter), not all equal */
    net = NULL;
    qdb_simnet_config_defaults(&cfg);
    cfg.latency_mean = 0;
    cfg.latency_min = 10000;
    cfg.jitter = 5000;
    net = qdb_simnet_new(&cfg);
    a = o_new(net, 1);
    b = o_new(net, 2);
    for (int i = 0; i < 100; i++)
        o_send(a, 2, "j");
    qdb_simnet_run_until(net, QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(b->evs->len, 100);
    bool varied = false;
    for (int i = 0; i < 100; i++) {
        CU_ASSERT(o_ev(b, i)->t >= 10000 && o_ev(b, i)->t < 15000);
        varied |= o_ev(b, i)->t != o_ev(b, 0)->t;
    }
    CU_ASSERT_TRUE(varied);
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
}

static void test_loss_dup_reorder(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1), *b = o_new(net, 2);
    qdb_simnet_set_loss(net, 1.0);
    for (int i = 0; i < 50; i++)
        o_send(a, 2, "x");
    qdb_simnet_run_until(net, QDB_US_PER_S);
    CU_ASSERT_EQUAL(b->evs->len, 0);
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.dropped_loss, 50);
    CU_ASSERT_EQUAL(st.frames_delivered, 0);

    qdb_simnet_set_loss(net, 0);
    qdb_simnet_set_dup(net, 1.0);
    qdb_time_us t0 = qdb_simnet_now(net);
    o_send(a, 2, "d");
    qdb_simnet_run_until(net, 2 * QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(b->evs->len, 2);
    CU_ASSERT_EQUAL(o_ev(b, 0)->t, t0 + 10000);
    CU_ASSERT_EQUAL(o_ev(b, 1)->t, t0 + 20000); /* one more link latency */
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.duplicates, 1);
    CU_ASSERT_EQUAL(st.frames_delivered, 2);

    /* reorder = 1: each frame gets extra delay in [0, window): out of order */
    qdb_simnet_set_dup(net, 0);
    qdb_simnet_set_reorder(net, 1.0, 50000);
    g_array_set_size(b->evs, 0);
    t0 = qdb_simnet_now(net);
    char p[8];
    for (int i = 0; i < 50; i++) {
        snprintf(p, sizeof p, "%02d", i);
        o_send(a, 2, p);
    }
    qdb_simnet_run_until(net, 3 * QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(b->evs->len, 50);
    bool inverted = false;
    for (int i = 0; i < 50; i++) {
        CU_ASSERT(o_ev(b, i)->t >= t0 + 10000 && o_ev(b, i)->t < t0 + 60000);
        if (i && memcmp(o_ev(b, i)->data, o_ev(b, i - 1)->data, 2) < 0)
            inverted = true;
    }
    CU_ASSERT_TRUE(inverted);
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
}

static void test_partitions(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1), *b = o_new(net, 2), *c = o_new(net, 3);
    qdb_simnet_block(net, A(1), A(2));
    qdb_simnet_block(net, A(1), A(2)); /* idempotent */
    CU_ASSERT_TRUE(qdb_simnet_is_blocked(net, A(1), A(2)));
    CU_ASSERT_FALSE(qdb_simnet_is_blocked(net, A(2), A(1)));
    o_send(a, 2, "a->b");
    o_send(b, 1, "b->a");
    o_send(a, 3, "a->c");
    qdb_simnet_run_until(net, QDB_US_PER_S);
    CU_ASSERT_EQUAL(b->evs->len, 0);
    CU_ASSERT_EQUAL(a->evs->len, 1); /* one way only */
    CU_ASSERT_EQUAL(c->evs->len, 1);
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.dropped_partition, 1);
    qdb_simnet_unblock(net, A(1), A(2));
    o_send(a, 2, "a->b");
    qdb_simnet_run_until(net, 2 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(b->evs->len, 1);

    /* groups: 1 | 2 split both ways; group 0 (c) talks to both */
    qdb_simnet_set_group(net, A(1), 1);
    qdb_simnet_set_group(net, A(2), 2);
    CU_ASSERT_TRUE(qdb_simnet_is_blocked(net, A(1), A(2)));
    CU_ASSERT_TRUE(qdb_simnet_is_blocked(net, A(2), A(1)));
    CU_ASSERT_FALSE(qdb_simnet_is_blocked(net, A(3), A(1)));
    g_array_set_size(a->evs, 0);
    g_array_set_size(b->evs, 0);
    g_array_set_size(c->evs, 0);
    o_send(a, 2, "x");
    o_send(b, 1, "x");
    o_send(c, 1, "x");
    o_send(c, 2, "x");
    o_send(a, 3, "x");
    qdb_simnet_run_until(net, 3 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(a->evs->len, 1);
    CU_ASSERT_EQUAL(b->evs->len, 1);
    CU_ASSERT_EQUAL(c->evs->len, 1);
    /* a partitioned sender to a dead address learns nothing */
    qdb_simnet_set_group(net, A(9), 2);
    o_send(a, 9, "x");
    qdb_simnet_run_until(net, 4 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(a->evs->len, 1);

    qdb_simnet_heal_all(net);
    CU_ASSERT_FALSE(qdb_simnet_is_blocked(net, A(1), A(2)));
    o_send(a, 2, "x");
    qdb_simnet_run_until(net, 5 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(b->evs->len, 2);
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
    o_free(c);
}

static void test_unreachable(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1), *b = o_new(net, 2);
    /* never attached: reset after one round trip (default) */
    o_send(a, 7, "x");
    qdb_simnet_run_until(net, QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(a, 0)->kind, REC_UNREACH);
    CU_ASSERT_EQUAL(o_ev(a, 0)->t, 20000);
    CU_ASSERT_TRUE(qdb_addr_eq(o_ev(a, 0)->peer, A(7)));

    /* a frame in flight to b when b is detached is never delivered, not even
     * to the endpoint attached at b's address afterwards */
    qdb_time_us t0 = qdb_simnet_now(net); /* 1 s */
    o_send(a, 2, "lost");
    qdb_simnet_run_until(net, t0 + 5000);
    qdb_simnet_detach(net, b->ep);
    o_send(a, 2, "refused"); /* after detach: unreachable at +20000 */
    qdb_simnet_run_until(net, t0 + 6000);
    owner *b2 = o_new(net, 2);
    CU_ASSERT_PTR_NOT_NULL(b2->ep);
    qdb_simnet_run_until(net, t0 + QDB_US_PER_S);
    CU_ASSERT_EQUAL(b->evs->len, 0);
    CU_ASSERT_EQUAL(b2->evs->len, 0);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 2);
    CU_ASSERT_EQUAL(o_ev(a, 1)->kind, REC_UNREACH);
    CU_ASSERT_EQUAL(o_ev(a, 1)->t, t0 + 5000 + 20000);
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.dropped_dead, 1);
    CU_ASSERT_EQUAL(st.refused, 2);
    CU_ASSERT_EQUAL(st.unreachable, 2);
    /* b2 works */
    o_send(a, 2, "new");
    qdb_simnet_run_until(net, t0 + 2 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(b2->evs->len, 1);
    /* the address is taken again */
    CU_ASSERT_PTR_NULL(qdb_simnet_attach(net, A(2), &o_ops, b, 1));
    CU_ASSERT_PTR_NULL(qdb_simnet_attach(net, (qdb_addr){0, 0}, &o_ops, b, 1));

    /* a sender detached before its notice gets none; its armed timer is gone */
    qdb_simnet_config cfg;
    qdb_simnet_config_defaults(&cfg);
    cfg.latency_mean = 0;
    cfg.latency_min = 10000;
    cfg.refused_delay = 7000;
    qdb_simnet *net2 = qdb_simnet_new(&cfg);
    owner *c = o_new(net2, 3), *d = o_new(net2, 4);
    o_send(c, 9, "x");
    o_send(d, 9, "x");
    o_arm(c, 1000);
    qdb_simnet_detach(net2, c->ep);
    qdb_simnet_run_until(net2, QDB_US_PER_S);
    CU_ASSERT_EQUAL(c->evs->len, 0);
    CU_ASSERT_EQUAL_FATAL(d->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(d, 0)->t, 7000); /* refused_delay as configured */
    qdb_simnet_free(net2);
    o_free(c);
    o_free(d);

    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
    o_free(b2);
}

static void test_detach_in_callback(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1), *b = o_new(net, 2);
    b->detach_in_recv = true;
    o_send(a, 2, "one");
    o_send(a, 2, "two"); /* in flight when b detaches: dropped */
    qdb_simnet_run_until(net, QDB_US_PER_S);
    CU_ASSERT_EQUAL(b->evs->len, 1);
    CU_ASSERT_EQUAL(b->send_after_detach, QDB_E_NOT_CONNECTED);
    CU_ASSERT_PTR_NULL(qdb_simnet_lookup(net, A(2)));
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.dropped_dead, 1);
    CU_ASSERT_EQUAL(st.endpoints, 1);
    CU_ASSERT_EQUAL(st.queued, 0);
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
}

static int cb_order[8], cb_n;
static qdb_time_us cb_time[8];
static qdb_simnet *cb_net;

static void cb_mark(void *arg)
{
    cb_time[cb_n] = qdb_simnet_now(cb_net);
    cb_order[cb_n++] = GPOINTER_TO_INT(arg);
}

static void cb_past(void *arg)
{
    cb_mark(arg);
    qdb_simnet_at(cb_net, 0, cb_mark, GINT_TO_POINTER(9)); /* in the past: runs now */
}

static bool cb_done(void *arg)
{
    return cb_n >= GPOINTER_TO_INT(arg);
}

static void test_world_callbacks(void)
{
    qdb_simnet *net = cb_net = net_fixed(10000);
    cb_n = 0;
    qdb_simnet_at(net, 300, cb_mark, GINT_TO_POINTER(3));
    qdb_simnet_at(net, 100, cb_mark, GINT_TO_POINTER(1));
    qdb_simnet_at(net, 300, cb_past, GINT_TO_POINTER(4));
    qdb_simnet_at(net, 100, cb_mark, GINT_TO_POINTER(2));
    qdb_simnet_at(net, 900, cb_mark, GINT_TO_POINTER(5));
    CU_ASSERT_EQUAL(qdb_simnet_next_time(net), 100);
    CU_ASSERT_TRUE(qdb_simnet_step_until(net, cb_done, GINT_TO_POINTER(5), 1000));
    CU_ASSERT_EQUAL(cb_n, 5);
    const int order[] = {1, 2, 3, 4, 9};
    const qdb_time_us times[] = {100, 100, 300, 300, 300};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(cb_order[i], order[i]);
        CU_ASSERT_EQUAL(cb_time[i], times[i]);
    }
    CU_ASSERT_EQUAL(qdb_simnet_now(net), 300);
    /* the next event (900) is after the limit: false, clock at the limit */
    CU_ASSERT_FALSE(qdb_simnet_step_until(net, cb_done, GINT_TO_POINTER(7), 500));
    CU_ASSERT_EQUAL(qdb_simnet_now(net), 500);
    CU_ASSERT_TRUE(qdb_simnet_step(net));
    CU_ASSERT_EQUAL(qdb_simnet_now(net), 900);
    CU_ASSERT_FALSE(qdb_simnet_step(net));
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.callbacks, 6);
    qdb_simnet_free(net);
}

static void test_random_seam(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1), *b = o_new(net, 2);
    qdb_random *ra = qdb_sim_endpoint_random(a->ep), *rb = qdb_sim_endpoint_random(b->ep);
    CU_ASSERT_EQUAL(ra->version, QDB_SEAM_VERSION);
    CU_ASSERT_PTR_EQUAL(ra->data, a);
    /* a was seeded 1001: the same as a GRand seeded {1001, 0} directly */
    guint32 seed[2] = {1001, 0};
    GRand *g = g_rand_new_with_seed_array(seed, 2);
    for (int i = 0; i < 10; i++) {
        uint64_t hi = g_rand_int(g), lo = g_rand_int(g);
        CU_ASSERT_EQUAL(ra->next(ra), (hi << 32) | lo);
    }
    g_rand_free(g);
    CU_ASSERT_NOT_EQUAL(ra->next(ra), rb->next(rb));
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
}

/* ======================================================================== */
/* clock: drift, jumps, slowness                                            */
/* ======================================================================== */

static void test_drift(void)
{
    qdb_simnet *net = net_fixed(10000);
    qdb_simnet_set_drift(net, A(1), 100000); /* set before attach: +10% */
    owner *a = o_new(net, 1), *b = o_new(net, 2);
    qdb_simnet_run_until(net, 1000000);
    CU_ASSERT_EQUAL(o_now(a), 1100000);
    CU_ASSERT_EQUAL(o_now(b), 1000000);
    qdb_clock *ca = qdb_sim_endpoint_clock(a->ep);
    CU_ASSERT_EQUAL(ca->wall(ca), INT64_C(1767225600000000) + 1100000);
    /* 110 ms local = 100 ms virtual */
    o_arm(a, o_now(a) + 110000);
    qdb_simnet_run_until(net, 2000000);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(a, 0)->t, 1100000);

    /* half speed; the clock stays continuous at the change */
    qdb_time_us before = o_now(a); /* 2,200,000 */
    qdb_simnet_set_drift(net, A(1), -500000);
    CU_ASSERT_EQUAL(o_now(a), before);
    o_arm(a, before + 1000);
    qdb_simnet_run_until(net, 3000000);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 2);
    CU_ASSERT_EQUAL(o_ev(a, 1)->t, 2002000);
    CU_ASSERT_EQUAL(o_now(a), before + 500000);

    /* changing drift re-times the armed wake-up: 10 ms local, then 2x speed */
    qdb_simnet_set_drift(net, A(2), 0);
    o_arm(b, o_now(b) + 10000);
    qdb_simnet_set_drift(net, A(2), 1000000);
    qdb_simnet_run_until(net, 4000000);
    CU_ASSERT_EQUAL_FATAL(b->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(b, 0)->t, 3005000);
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
}

static void test_clock_jump(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1);
    o_arm(a, 10000);
    qdb_simnet_run_until(net, 2000);
    CU_ASSERT_TRUE(qdb_simnet_clock_jump(net, A(1), 5000));
    CU_ASSERT_EQUAL(o_now(a), 7000);
    qdb_simnet_run_until(net, 100000);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(a, 0)->t, 5000);
    /* a jump past the deadline fires at once (at the current time) */
    o_arm(a, o_now(a) + 50000);
    CU_ASSERT_TRUE(qdb_simnet_clock_jump(net, A(1), 60000));
    qdb_simnet_run_until(net, 100000);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 2);
    CU_ASSERT_EQUAL(o_ev(a, 1)->t, 100000);
    CU_ASSERT_FALSE(qdb_simnet_clock_jump(net, A(5), 1));
    qdb_simnet_free(net);
    o_free(a);
}

static void test_slow(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1), *b = o_new(net, 2), *c = o_new(net, 3);
    qdb_simnet_set_slow(net, A(2), 3.0);
    o_send(a, 2, "x"); /* 30 ms */
    o_send(a, 3, "x"); /* 10 ms */
    o_send(b, 3, "x"); /* 30 ms */
    o_arm(b, 1000);    /* waits 3 ms */
    o_arm(c, 1000);
    qdb_simnet_run_until(net, QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(b->evs->len, 2);
    CU_ASSERT_EQUAL(o_ev(b, 0)->kind, REC_TICK);
    CU_ASSERT_EQUAL(o_ev(b, 0)->t, 3000);
    CU_ASSERT_EQUAL(o_ev(b, 1)->t, 30000);
    CU_ASSERT_EQUAL_FATAL(c->evs->len, 3);
    CU_ASSERT_EQUAL(o_ev(c, 0)->t, 1000);
    CU_ASSERT_EQUAL(o_ev(c, 1)->t, QDB_US_PER_S / 100); /* from a */
    CU_ASSERT_EQUAL(o_ev(c, 2)->t, 30000);              /* from b */
    /* both ends slow multiply */
    qdb_simnet_set_slow(net, A(1), 2.0);
    o_send(a, 2, "y");
    qdb_simnet_run_until(net, 2 * QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(b->evs->len, 3);
    CU_ASSERT_EQUAL(o_ev(b, 2)->t, QDB_US_PER_S + 60000);
    /* slowing down while armed re-times the wait from the arm time */
    o_arm(c, qdb_simnet_now(net) + 1000);
    qdb_simnet_set_slow(net, A(3), 4.0);
    qdb_simnet_run_until(net, 3 * QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(c->evs->len, 4);
    CU_ASSERT_EQUAL(o_ev(c, 3)->t, 2 * QDB_US_PER_S + 4000);
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
    o_free(c);
}

/* ======================================================================== */
/* determinism                                                               */
/* ======================================================================== */

typedef struct scen {
    qdb_simnet *net;
    owner *o[7]; /* o[6] at 10.0.0.20 only receives the kick */
    int variant; /* 0 the reference; 1 a different trace_add; 2 a different frame */
    bool tidy;   /* call next_time() between steps */
} scen;

static void scen_add(void *arg)
{
    scen *s = arg;
    qdb_simnet_trace_add(s->net, s->variant == 1 ? "other" : "result", 6);
}

/* A frame on a link nothing else uses, sent with loss off so that it arrives
 * (the loss draw is skipped at p = 0 in every variant alike). */
static void scen_kick(void *arg)
{
    scen *s = arg;
    qdb_simnet_set_loss(s->net, 0);
    o_send(s->o[0], 20, s->variant == 2 ? "KICK" : "kick");
    qdb_simnet_set_loss(s->net, 0.05);
}

static void scen_crash(void *arg)
{
    scen *s = arg;
    qdb_simnet_detach(s->net, s->o[3]->ep);
    s->o[3]->ep = NULL;
}

/* Six endpoints echoing frames under loss, dup, jitter and reordering, with
 * periodic timers, a crash and world callbacks. */
static void scen_start(scen *s, uint64_t seed, int variant, FILE *wlog, FILE *clog)
{
    qdb_simnet_config cfg;
    qdb_simnet_config_defaults(&cfg);
    cfg.seed = seed;
    cfg.jitter = 3000;
    cfg.loss = 0.05;
    cfg.dup = 0.05;
    cfg.reorder = 0.1;
    s->net = qdb_simnet_new(&cfg);
    s->variant = variant;
    qdb_simnet_hash_log_write(s->net, wlog);
    qdb_simnet_hash_log_check(s->net, clog);
    for (unsigned i = 0; i < 6; i++) {
        s->o[i] = o_new(s->net, i + 1);
        s->o[i]->echo = true;
        s->o[i]->period = 100000 + 7000 * i;
        o_arm(s->o[i], 1000 * i);
    }
    s->o[6] = o_new(s->net, 20);
    for (unsigned i = 0; i < 6; i++)
        for (unsigned j = 0; j < 6; j++)
            if (i != j)
                o_send(s->o[i], j + 1, "ping");
    qdb_simnet_at(s->net, 500000, scen_add, s);
    qdb_simnet_at(s->net, 700000, scen_kick, s);
    qdb_simnet_at(s->net, 800000, scen_crash, s);
}

static void scen_run(scen *s, qdb_time_us until)
{
    if (!s->tidy) {
        qdb_simnet_run_until(s->net, until);
        return;
    }
    while (qdb_simnet_next_time(s->net) <= until && qdb_simnet_step(s->net))
        (void)qdb_simnet_next_time(s->net);
}

static void scen_end(scen *s, char hex[17])
{
    if (hex)
        qdb_simnet_trace_hex(s->net, hex);
    qdb_simnet_free(s->net);
    for (unsigned i = 0; i < 7; i++)
        o_free(s->o[i]);
}

static void test_trace_hash(void)
{
    char h[4][17];
    const uint64_t seeds[4] = {1, 1, 2, 1};
    for (int k = 0; k < 4; k++) {
        scen s = {.tidy = k == 3};
        scen_start(&s, seeds[k], 0, NULL, NULL);
        scen_run(&s, 2 * QDB_US_PER_S);
        qdb_simnet_stats st;
        qdb_simnet_get_stats(s.net, &st);
        CU_ASSERT(st.events > 500);
        CU_ASSERT(st.dropped_loss > 0 && st.duplicates > 0);
        scen_end(&s, h[k]);
        CU_ASSERT_EQUAL(strlen(h[k]), 16);
    }
    CU_ASSERT_STRING_EQUAL(h[0], h[1]);     /* same seed, same hash */
    CU_ASSERT_STRING_NOT_EQUAL(h[0], h[2]); /* another seed */
    CU_ASSERT_STRING_EQUAL(h[0], h[3]);     /* next_time() changes nothing */
}

/* The number of the first line of the log matching kind/src/dst at or after
 * time t, 0 when none. */
static uint64_t log_find(FILE *f, qdb_time_us t, const char *kind, const char *src,
                         const char *dst)
{
    char line[256];
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        uint64_t n, time;
        char k[16], s[32], d[32], h[32];
        if (sscanf(line, "%" SCNu64 " %" SCNu64 " %15s %31s %31s %31s", &n, &time, k, s, d, h) != 6)
            continue;
        if (time >= t && !strcmp(k, kind) && !strcmp(s, src) && !strcmp(d, dst))
            return n;
    }
    return 0;
}

static void test_hash_log(void)
{
    FILE *ref = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    scen s = {0};
    char h0[17], h1[17];
    scen_start(&s, 3, 0, ref, NULL);
    scen_run(&s, 2 * QDB_US_PER_S);
    scen_end(&s, h0);
    fflush(ref);

    /* same run, checked: no divergence, same hash */
    rewind(ref);
    scen_start(&s, 3, 0, NULL, ref);
    scen_run(&s, 2 * QDB_US_PER_S);
    char *div = qdb_simnet_diverged(s.net);
    CU_ASSERT_PTR_NULL(div);
    g_free(div);
    CU_ASSERT_EQUAL(qdb_simnet_now(s.net), 2 * QDB_US_PER_S);
    scen_end(&s, h1);
    CU_ASSERT_STRING_EQUAL(h0, h1);

    /* a different trace_add at 0.5 s: stops at that "add" line */
    uint64_t at_add = log_find(ref, 500000, "add", "-", "-");
    CU_ASSERT(at_add > 0);
    rewind(ref);
    scen_start(&s, 3, 1, NULL, ref);
    scen_run(&s, 2 * QDB_US_PER_S);
    div = qdb_simnet_diverged(s.net);
    CU_ASSERT_PTR_NOT_NULL_FATAL(div);
    char want[64];
    snprintf(want, sizeof want, "at item %" PRIu64 "\n", at_add);
    CU_ASSERT_PTR_NOT_NULL(strstr(div, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(div, "expected: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(div, "actual:   "));
    CU_ASSERT_EQUAL(qdb_simnet_now(s.net), 500000);
    CU_ASSERT_FALSE(qdb_simnet_step(s.net));
    g_free(div);
    scen_end(&s, NULL);

    /* a different frame at 0.7 s: stops when it is delivered, before recv */
    uint64_t at_frame = log_find(ref, 700000, "frame", "10.0.0.1:2836", "10.0.0.20:2836");
    CU_ASSERT(at_frame > at_add);
    rewind(ref);
    scen_start(&s, 3, 2, NULL, ref);
    scen_run(&s, 2 * QDB_US_PER_S);
    div = qdb_simnet_diverged(s.net);
    CU_ASSERT_PTR_NOT_NULL_FATAL(div);
    snprintf(want, sizeof want, "at item %" PRIu64 "\n", at_frame);
    CU_ASSERT_PTR_NOT_NULL(strstr(div, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(div, " frame 10.0.0.1:2836 10.0.0.20:2836 "));
    CU_ASSERT(qdb_simnet_now(s.net) > 700000);
    CU_ASSERT_EQUAL(s.o[6]->evs->len, 0); /* the diverging frame was not delivered */
    g_free(div);
    scen_end(&s, NULL);

    /* a log that ends early is a divergence too */
    FILE *shortlog = tmpfile();
    rewind(ref);
    char line[256];
    for (int i = 0; i < 10 && fgets(line, sizeof line, ref); i++)
        fputs(line, shortlog);
    rewind(shortlog);
    scen_start(&s, 3, 0, NULL, shortlog);
    scen_run(&s, 2 * QDB_US_PER_S);
    div = qdb_simnet_diverged(s.net);
    CU_ASSERT_PTR_NOT_NULL(div);
    CU_ASSERT_PTR_NOT_NULL(div ? strstr(div, "at item 11\n  expected: (end of log)") : NULL);
    g_free(div);
    scen_end(&s, NULL);
    fclose(shortlog);
    fclose(ref);
}

static void test_memory_and_stats(void)
{
    qdb_simnet *net = net_fixed(10000);
    size_t m0 = qdb_simnet_memory(net);
    owner *o[100];
    for (unsigned i = 0; i < 100; i++)
        o[i] = o_new(net, i + 1);
    size_t m1 = qdb_simnet_memory(net);
    CU_ASSERT(m1 > m0 + 100 * 400);
    for (unsigned i = 0; i < 100; i++) {
        qdb_random *r = qdb_sim_endpoint_random(o[i]->ep);
        r->next(r);
    }
    CU_ASSERT(qdb_simnet_memory(net) > m1 + 100 * 2000); /* MT state, lazily */
    for (unsigned i = 0; i < 100; i++)
        qdb_simnet_detach(net, o[i]->ep);
    CU_ASSERT(qdb_simnet_memory(net) < m1);
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.endpoints, 0);
    qdb_simnet_free(net);
    for (unsigned i = 0; i < 100; i++)
        o_free(o[i]);
}

/* ======================================================================== */
/* bench                                                                     */
/* ======================================================================== */

static void bench_recv(void *o_, qdb_addr src, const uint8_t *frame, size_t len)
{
    owner *o = o_;
    if (o->pingpong_budget == 0)
        return;
    o->pingpong_budget--;
    qdb_transport *t = qdb_sim_endpoint_transport(o->ep);
    t->send(t, src, frame, len);
}

static void bench_tick(void *o_)
{
    owner *o = o_;
    qdb_clock *c = qdb_sim_endpoint_clock(o->ep);
    c->arm(c, c->now(c) + QDB_US_PER_S);
}

static int bench(unsigned n, uint64_t events)
{
    static const qdb_inbound ops = {.recv = bench_recv, .tick = bench_tick};
    qdb_simnet_config cfg;
    qdb_simnet_config_defaults(&cfg);
    cfg.seed = 1;
    cfg.jitter = 1000;
    qdb_simnet *net = qdb_simnet_new(&cfg);
    owner *o = g_new0(owner, n);
    uint8_t frame[64] = {0};
    for (unsigned i = 0; i < n; i++) {
        o[i].net = net;
        o[i].ep = qdb_simnet_attach(net, A(i + 1), &ops, &o[i], i);
        o[i].pingpong_budget = events; /* the run is bounded by `events` below */
        qdb_clock *c = qdb_sim_endpoint_clock(o[i].ep);
        c->arm(c, i * 1000);
    }
    for (unsigned i = 0; i < n; i++) {
        qdb_transport *t = qdb_sim_endpoint_transport(o[i].ep);
        t->send(t, A((i + 1) % n + 1), frame, sizeof frame);
    }
    gint64 t0 = g_get_monotonic_time();
    uint64_t k = 0;
    while (k < events && qdb_simnet_step(net))
        k++;
    gint64 t1 = g_get_monotonic_time();
    char hex[17];
    qdb_simnet_trace_hex(net, hex);
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    printf("%u endpoints, %" PRIu64 " events (%" PRIu64 " frames, %" PRIu64
           " ticks) in %.3f s: %.0f events/s, virtual %.1f s, memory %zu KiB, trace %s\n",
           n, k, st.frames_delivered, st.ticks, (t1 - t0) / 1e6, k / ((t1 - t0) / 1e6),
           qdb_simnet_now(net) / 1e6, qdb_simnet_memory(net) / 1024, hex);
    qdb_simnet_free(net);
    g_free(o);
    return 0;
}

/* A crashed process is refused after a round trip; a host that is down is
 * silence both ways, with no notice, until it is up again. */
static void test_host_down(void)
{
    qdb_simnet *net = net_fixed(10000);
    owner *a = o_new(net, 1), *b = o_new(net, 2);
    qdb_simnet_set_host_down(net, A(2), true);
    CU_ASSERT_TRUE(qdb_simnet_host_down(net, A(2)));
    CU_ASSERT_FALSE(qdb_simnet_host_down(net, A(1)));
    o_send(a, 2, "to a dead host");
    o_send(b, 1, "from a dead host");
    qdb_simnet_run_until(net, QDB_US_PER_S);
    CU_ASSERT_EQUAL(a->evs->len, 0); /* no delivery, no unreachable notice */
    CU_ASSERT_EQUAL(b->evs->len, 0);
    /* detached there too: still silence, not a reset (process crash vs host) */
    qdb_simnet_detach(net, b->ep);
    o_send(a, 2, "x");
    qdb_simnet_run_until(net, 2 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(a->evs->len, 0);
    qdb_simnet_stats st;
    qdb_simnet_get_stats(net, &st);
    CU_ASSERT_EQUAL(st.dropped_host, 3);
    CU_ASSERT_EQUAL(st.refused, 0);
    /* the host comes back without its process: now refused after a round trip */
    qdb_simnet_heal_all(net);
    CU_ASSERT_TRUE(qdb_simnet_host_down(net, A(2))); /* heal_all does not restart hosts */
    qdb_simnet_set_host_down(net, A(2), false);
    qdb_time_us t0 = qdb_simnet_now(net);
    o_send(a, 2, "y");
    qdb_simnet_run_until(net, 3 * QDB_US_PER_S);
    CU_ASSERT_EQUAL_FATAL(a->evs->len, 1);
    CU_ASSERT_EQUAL(o_ev(a, 0)->kind, REC_UNREACH);
    CU_ASSERT_EQUAL(o_ev(a, 0)->t, t0 + 20000);
    qdb_simnet_free(net);
    o_free(a);
    o_free(b);
}

/* ======================================================================== */

static CU_TestInfo eventq_tests[] = {
    {.pName = "order", .pTestFunc = test_eventq_order},
    {.pName = "ties by sequence", .pTestFunc = test_eventq_ties},
    {.pName = "reserved sequence", .pTestFunc = test_eventq_reserved_seq},
    {.pName = "lazy cancellation", .pTestFunc = test_eventq_cancel},
    {.pName = "100k random vs sorted", .pTestFunc = test_eventq_random_100k},
    {.pName = "100k interleaved vs GSequence", .pTestFunc = test_eventq_random_interleaved},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo timer_tests[] = {
    {.pName = "fires once, exact time", .pTestFunc = test_timer_fires_once},
    {.pName = "later deadline replaces", .pTestFunc = test_timer_later_replaces},
    {.pName = "earlier deadline replaces, disarm", .pTestFunc = test_timer_earlier_replaces},
    {.pName = "past deadline, periodic", .pTestFunc = test_timer_past_and_periodic},
    {.pName = "same-time order follows arm()", .pTestFunc = test_timer_same_time_order},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo net_tests[] = {
    {.pName = "fixed latency", .pTestFunc = test_latency_fixed},
    {.pName = "per-link latency", .pTestFunc = test_latency_links},
    {.pName = "exponential link latency", .pTestFunc = test_latency_distribution},
    {.pName = "FIFO and jitter", .pTestFunc = test_fifo_and_jitter},
    {.pName = "loss, dup, reorder", .pTestFunc = test_loss_dup_reorder},
    {.pName = "partitions", .pTestFunc = test_partitions},
    {.pName = "unreachable and detach", .pTestFunc = test_unreachable},
    {.pName = "detach inside own callback", .pTestFunc = test_detach_in_callback},
    {.pName = "world callbacks", .pTestFunc = test_world_callbacks},
    {.pName = "random seam", .pTestFunc = test_random_seam},
    {.pName = "memory and stats", .pTestFunc = test_memory_and_stats},
    {.pName = "host down is silence", .pTestFunc = test_host_down},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo clock_tests[] = {
    {.pName = "drift", .pTestFunc = test_drift},
    {.pName = "clock jump", .pTestFunc = test_clock_jump},
    {.pName = "slow endpoint", .pTestFunc = test_slow},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo det_tests[] = {
    {.pName = "trace hash", .pTestFunc = test_trace_hash},
    {.pName = "hash log write/check/diverge", .pTestFunc = test_hash_log},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {.pName = "eventq", .pTests = eventq_tests},
    {.pName = "timer", .pTests = timer_tests},
    {.pName = "network", .pTests = net_tests},
    {.pName = "clock", .pTests = clock_tests},
    {.pName = "determinism", .pTests = det_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "bench"))
        return bench(argc > 2 ? (unsigned)atoi(argv[2]) : 1000,
                     argc > 3 ? g_ascii_strtoull(argv[3], NULL, 10) : 1000000);
    return qdb_test_run(suites);
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* The real world's event loop (loop.h): the endpoints it hosts and the env.h
 * seams they are given, over the three rooms that do the work:
 *   poller.h  epoll, the stop eventfd, watched descriptors
 *   timers.h  endpoint deadlines and periodic callbacks (common/heap.h)
 *   conn.h    TCP connections, framing, unreachable notices
 *
 * Sections
 *   structures, the real clocks
 *   the seams: clock, transport, random
 *   endpoints: attach, bind, detach, the graveyard
 *   running: new, free, run_once, run, stop, watch_fd, unwatch_fd, every, stats
 *
 * One turn (run_once): write what was sent since the last turn, wait for
 * I/O or the earliest deadline, dispatch the I/O, fire due timers, deliver
 * unreachable notices, write again, then free what was closed.  Endpoints
 * and connections closed during a turn are freed only at its end, because
 * epoll events for them may still be waiting to be dispatched: an event
 * never points at freed memory.
 *
 * Order: nothing here reaches a frame from hash-table order.  Connections
 * are looked up by key only; notices are delivered in the order they were
 * raised; timers fire in (deadline, arm sequence) order.
 */
#define G_LOG_DOMAIN "qdb-loop"

#include "config.h"

#include "loop.h"

#include <errno.h>
#include <glib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "conn.h"
#include "error.h"
#include "poller.h"
#include "timers.h"

/* ---- structures, the real clocks ------------------------------------------------ */

struct qdb_loop_endpoint {
    qdb_loop *loop;
    loop_peers peers;      /* its connections, and its ops and owner */
    qdb_clock clock;
    qdb_transport transport;
    qdb_random random;
    GRand *rand;
    loop_timer timer;      /* the one deadline of clock->arm() */
    GList link;            /* in loop->endpoints */
};

struct qdb_loop {
    loop_poller poller;
    loop_timers timers;
    loop_net net;
    bool in_run;           /* inside run_once: frees are deferred */
    GQueue endpoints;
    GPtrArray *dead_eps;   /* detached, freed at the end of run_once */
};

/* ---- the seams ------------------------------------------------------------------- */

static qdb_time_us clock_now(qdb_clock *clk)
{
    qdb_loop_endpoint *ep = clk->impl;
    return loop_clock_mono(&ep->loop->poller.clock);
}

static void clock_arm(qdb_clock *clk, qdb_time_us deadline)
{
    qdb_loop_endpoint *ep = clk->impl;
    if (ep->peers.closed)
        return;
    timer_set(&ep->loop->timers, &ep->timer, deadline);
}

static int64_t clock_wall(qdb_clock *clk)
{
    qdb_loop_endpoint *ep = clk->impl;
    return loop_clock_wall(&ep->loop->poller.clock);
}

static int transport_send(qdb_transport *t, qdb_addr dst, const uint8_t *frame, size_t len)
{
    qdb_loop_endpoint *ep = t->impl;
    char a[QDB_ADDR_STRLEN];
    if (ep->peers.closed)
        return qdb_error_set(t->errmsg, QDB_E_NOT_CONNECTED, "endpoint is detached");
    if (dst.ip == 0 || dst.port == 0)
        return qdb_error_set(t->errmsg, QDB_E_INVALID_ARGUMENT, "cannot send to %s",
                             qdb_addr_format(dst, a));
    if (len == 0 || len > QDB_FRAME_MAX + 4)
        return qdb_error_set(t->errmsg, QDB_E_OVERSIZED, "frame of %zu bytes", len);
    int fatal = peers_send(&ep->peers, dst, frame, len);
    if (fatal)
        return qdb_error_set(t->errmsg, QDB_E_CONNECTION_REFUSED, "cannot connect to %s: %s",
                             qdb_addr_format(dst, a), g_strerror(fatal));
    return QDB_OK;
}

static int transport_peer_role(qdb_transport *t, qdb_addr src)
{
    qdb_loop_endpoint *ep = t->impl;
    return peers_role(&ep->peers, src);
}

static uint64_t random_next(qdb_random *r)
{
    qdb_loop_endpoint *ep = r->impl;
    return qdb_rand_u64(ep->rand);
}

static GRand *rand_from_os(void)
{
    guint32 seed[8];
    size_t got = 0;
    for (int tries = 0; got < sizeof(seed) && tries < 16; tries++) {
        ssize_t r = getrandom((uint8_t *)seed + got, sizeof(seed) - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno != EINTR)
            break;
    }
    if (got < sizeof(seed)) { /* no getrandom: time and pid, better than a constant */
        seed[0] ^= (guint32)loop_mono_now();
        seed[1] ^= (guint32)loop_wall_now();
        seed[2] ^= (guint32)getpid();
    }
    return g_rand_new_with_seed_array(seed, G_N_ELEMENTS(seed));
}

/* ---- endpoints ------------------------------------------------------------------- */

static void ep_tick(loop_timers *ts, loop_timer *t, qdb_time_us now)
{
    (void)ts;
    (void)now;
    qdb_loop_endpoint *ep = (qdb_loop_endpoint *)((char *)t - offsetof(qdb_loop_endpoint, timer));
    if (!ep->peers.closed && ep->peers.ops && ep->peers.ops->tick)
        ep->peers.ops->tick(ep->peers.owner);
}

qdb_loop_endpoint *qdb_loop_attach(qdb_loop *loop, const qdb_addr *listen,
                                   const qdb_inbound *ops, void *owner, char *err)
{
    g_return_val_if_fail(ops == NULL || ops->recv, NULL);
    qdb_loop_endpoint *ep = g_new0(qdb_loop_endpoint, 1);
    if (!peers_init(&ep->peers, &loop->net, listen, ops, owner, err)) {
        int e = errno;
        g_free(ep);
        errno = e;
        return NULL;
    }
    ep->loop = loop;
    timer_init(&ep->timer, ep_tick);
    ep->rand = rand_from_os();
    ep->clock = (qdb_clock){.version = QDB_SEAM_VERSION, .data = owner, .impl = ep,
                            .now = clock_now, .arm = clock_arm, .wall = clock_wall};
    ep->transport = (qdb_transport){.version = QDB_SEAM_VERSION, .data = owner, .impl = ep,
                                    .send = transport_send, .peer_role = transport_peer_role};
    ep->random = (qdb_random){.version = QDB_SEAM_VERSION, .data = owner, .impl = ep,
                              .next = random_next};
    ep->link.data = ep;
    g_queue_push_tail_link(&loop->endpoints, &ep->link);
    return ep;
}

void qdb_loop_endpoint_bind(qdb_loop_endpoint *ep, const qdb_inbound *ops, void *owner)
{
    g_return_if_fail(ops == NULL || ops->recv);
    ep->peers.ops = ops;
    ep->peers.owner = owner;
    ep->clock.data = ep->transport.data = ep->random.data = owner;
}

void qdb_loop_endpoint_disconnect_all(qdb_loop_endpoint *ep)
{
    peers_disconnect_all(&ep->peers);
}

static void ep_free(qdb_loop_endpoint *ep)
{
    peers_free(&ep->peers);
    g_rand_free(ep->rand);
    g_free(ep);
}

static void graveyard_empty(qdb_loop *loop)
{
    net_free_closed(&loop->net);
    for (guint i = 0; i < loop->dead_eps->len; i++)
        ep_free(loop->dead_eps->pdata[i]);
    g_ptr_array_set_size(loop->dead_eps, 0);
}

void qdb_loop_detach(qdb_loop *loop, qdb_loop_endpoint *ep)
{
    if (!ep || ep->peers.closed)
        return;
    peers_close(&ep->peers);
    timer_cancel(&loop->timers, &ep->timer);
    g_queue_unlink(&loop->endpoints, &ep->link);
    g_ptr_array_add(loop->dead_eps, ep);
    if (!loop->in_run)
        graveyard_empty(loop);
}

void qdb_loop_endpoint_secure(qdb_loop_endpoint *ep, qdb_tls *tls)
{
    g_return_if_fail(ep->peers.all.length == 0);
    ep->peers.tls = tls;
}

uint64_t qdb_loop_endpoint_auth_failures(const qdb_loop_endpoint *ep)
{
    return ep->peers.auth_failures;
}

qdb_clock *qdb_loop_endpoint_clock(qdb_loop_endpoint *ep)
{
    return &ep->clock;
}

qdb_transport *qdb_loop_endpoint_transport(qdb_loop_endpoint *ep)
{
    return &ep->transport;
}

qdb_random *qdb_loop_endpoint_random(qdb_loop_endpoint *ep)
{
    return &ep->random;
}

size_t qdb_loop_endpoint_pending(const qdb_loop_endpoint *ep)
{
    return peers_pending(&ep->peers);
}

/* ---- running ---------------------------------------------------------------------- */

qdb_loop *qdb_loop_new(char *err)
{
    qdb_loop *loop = g_new0(qdb_loop, 1);
    if (!poller_init(&loop->poller, err)) {
        g_free(loop);
        return NULL;
    }
    timers_init(&loop->timers);
    net_init(&loop->net, &loop->poller);
    g_queue_init(&loop->endpoints);
    loop->dead_eps = g_ptr_array_new();
    return loop;
}

void qdb_loop_free(qdb_loop *loop)
{
    if (!loop)
        return;
    while (loop->endpoints.head) /* bounded: detach unlinks the head */
        qdb_loop_detach(loop, loop->endpoints.head->data);
    graveyard_empty(loop);
    g_ptr_array_free(loop->dead_eps, TRUE);
    net_clear(&loop->net);
    timers_clear(&loop->timers);
    poller_clear(&loop->poller);
    g_free(loop);
}

bool qdb_loop_run_once(qdb_loop *loop, int timeout_ms)
{
    g_return_val_if_fail(!loop->in_run, false);
    loop->in_run = true;
    net_flush(&loop->net); /* frames sent from outside the loop since the last turn */
    int wait = poller_stopping(&loop->poller) || net_busy(&loop->net)
                   ? 0
                   : timers_wait_ms(&loop->timers, loop_mono_now(), timeout_ms);
    loop_clock_hold(&loop->poller.clock, true);
    poller_wait(&loop->poller, wait);
    timers_run(&loop->timers, loop_clock_mono(&loop->poller.clock));
    net_notify(&loop->net);
    net_flush(&loop->net);
    graveyard_empty(loop);
    loop_clock_hold(&loop->poller.clock, false);
    loop->in_run = false;
    return !poller_take_stop(&loop->poller);
}

int qdb_loop_run(qdb_loop *loop)
{
    while (qdb_loop_run_once(loop, -1))
        ;
    return 0;
}

void qdb_loop_stop(qdb_loop *loop)
{
    poller_stop(&loop->poller); /* async-signal-safe: a flag and a write() */
}

bool qdb_loop_watch_fd(qdb_loop *loop, int fd, void (*fn)(void *arg, int fd), void *arg)
{
    return poller_watch(&loop->poller, fd, fn, arg);
}

bool qdb_loop_unwatch_fd(qdb_loop *loop, int fd)
{
    return poller_unwatch(&loop->poller, fd);
}

void qdb_loop_every(qdb_loop *loop, qdb_time_us period_us, void (*fn)(void *arg), void *arg)
{
    timers_every(&loop->timers, loop_mono_now(), period_us, fn, arg);
}

static void on_sweep(void *arg)
{
    net_sweep(arg, loop_mono_now());
}

void qdb_loop_set_limits(qdb_loop *loop, const qdb_loop_limits *lim)
{
    bool first = !loop->net.lim.sessions && !loop->net.lim.idle_timeout &&
                 !loop->net.lim.max_frame && !loop->net.lim.input_memory &&
                 !loop->net.lim.handshake_timeout;
    net_set_limits(&loop->net, lim);
    if (first)
        qdb_loop_every(loop, LOOP_SWEEP_US, on_sweep, &loop->net);
}

void qdb_loop_get_stats(const qdb_loop *loop, qdb_loop_stats *out)
{
    *out = loop->net.stats;
}

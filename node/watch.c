/* SPDX-License-Identifier: BSD-2-Clause */
/* Watching the two neighbours between stabilization rounds.
 *
 * A quiet ring backs its rounds off to stabilize_slow (30 s, drawn in
 * [15 s, 45 s)): a crash met by no lookup was seen only at its
 * predecessor's next round.  Chord's check_predecessor (ToN 2003, Fig. 7)
 * ran once a round too.  Here every node looks at its successor and its
 * predecessor every watch_period (1 s, drawn in [0.5 s, 1.5 s) from the
 * node's generator), and PINGs a neighbour it has not heard from within the
 * period:
 *  - a crashed process is refused one round trip later (a TCP reset, and the
 *    simulator's crash = process): the successor list takes over at once
 *    (ring.c: ring_forget, then stabilize with the next successor, which
 *    is notified), the predecessor is cleared and learned again;
 *  - a silent host costs three timeouts in a row (QDB_NODE_STRIKES), each
 *    the peer's adaptive RTO (rto.h), doubled by each back-off.
 *
 * Cost.  Any frame from a neighbour counts as hearing from it, except a
 * PONG: the answer to our own PING must not excuse the next one, or a node
 * would probe only every other period.  In a quiet ring a node's PING to its
 * successor is also what that successor hears from its predecessor, so each
 * link carries about one PING and one PONG a period: ~2 frames sent per node
 * per second at the default period (plus the predecessor PINGs a jittered
 * period leaves uncovered, ~1 in 8 looks).  Rounds that talk to a neighbour
 * anyway (stabilize) replace its PING.
 *
 * The predecessor's replacement.  When the predecessor P dies, its own
 * predecessor Q finds out (its watch), takes our node as successor and
 * notifies us -- while we may still hold P, which outranks Q, so Chord
 * refuses Q until a later round.  Instead we keep Q's refused NOTIFY (the
 * contender), check P at once, and replay the NOTIFY the moment P is found
 * dead: the ring is whole one check after Q's, not a round later.
 *
 * Suspicion needs time as well as strikes (watch_silent).  Three timeouts
 * in a row are not enough on their own: at 5 % frame loss a round trip
 * fails one time in ten, three in a row one time in a thousand, and a node
 * starts such a series many times a minute (its watch, rounds, probes of
 * peers clients report dead, copies to its replicas) -- in a 24-node hive
 * under loss that struck a live neighbour out a few times a run.  So a
 * peer is struck out only after QDB_NODE_STRIKES timeouts in a row *and*
 * QDB_SUSPECT_WINDOW (defaults.h: 5/4 of rpc_timeout, 2.5 s; qdbd 1.25 s)
 * without evidence that it lives: an answer from it to any of our calls,
 * on time or late (rto.h, qdb_rto_heard) -- or, for our predecessor, any
 * frame it sends us (its STABILIZE, NOTIFY, PING).  Until then the series
 * goes on, one more strike at a time.  Only
 * answers vouch for other peers: that a peer reaches us does not mean it
 * hears us (a one-way partition).  A crashed host is silent anyway: the
 * strikes on it take longer than the window, so the window costs no time
 * there (crash-one-64.scn's silent host: right again in 4.3 s, 5.0 s
 * before, thanks to the refill of ring_forget; crash-one-1024.scn 6.0 s as
 * before).  With the window at 3 s the 64-node one took 5.8 s.
 */
#define G_LOG_DOMAIN "qdb-node"

#include "node_internal.h"

void watch_start(qdb_node *n)
{
    n->watch_at = node_now(n) + ring_jitter(n, n->cfg.watch_period);
}

void watch_heard(qdb_node *n, qdb_addr src, unsigned type)
{
    if (type == QDB_MSG_PONG)
        return; /* see "Cost" above */
    qdb_time_us now = node_now(n);
    const qdb_peer *s = ring_successor(n);
    if (s && qdb_addr_eq(s->addr, src))
        n->heard_succ = (node_heard){src, now};
    if (n->has_pred && qdb_addr_eq(n->pred.addr, src))
        n->heard_pred = (node_heard){src, now};
}

static void ping_pred(qdb_node *n)
{
    if (node_rpc_pending(n, RPC_PING))
        return;
    qdb_msg m = {.type = QDB_MSG_PING};
    node_call(n, n->pred.addr, &m, RPC_PING, 0, 0, &n->pred);
}

/* Should neighbour a get a PING now?  When we have not heard from it within
 * the period -- or when its round trip is not measured: a neighbour that
 * keeps PINGing us is heard, but a check that has to strike on it would then
 * wait the initial rpc_timeout three times over (2 + 4 + 8 s).  (Asking also
 * keeps the neighbours fresh in the RTO table, which evicts the least
 * recently used.) */
static bool due(qdb_node *n, const node_heard *h, qdb_addr a, qdb_time_us since)
{
    return !qdb_addr_eq(a, n->cfg.self.addr) &&
           (!qdb_rto_measured(&n->rto, a) || !(qdb_addr_eq(h->addr, a) && h->at > since));
}

void watch_tick(qdb_node *n)
{
    qdb_time_us now = node_now(n);
    if (now < n->watch_at)
        return;
    n->watch_at = now + ring_jitter(n, n->cfg.watch_period);
    if (n->phase != PHASE_ACTIVE || n->paused)
        return;
    qdb_time_us since = now > n->cfg.watch_period ? now - n->cfg.watch_period : 0;
    const qdb_peer *s = ring_successor(n);
    /* A STABILIZE in flight watches the successor already: its failure
     * drops it the same way. */
    if (s && due(n, &n->heard_succ, s->addr, since) && !node_rpc_pending(n, RPC_WATCH) &&
        !node_rpc_pending(n, RPC_STABILIZE)) {
        qdb_msg m = {.type = QDB_MSG_PING};
        node_call(n, s->addr, &m, RPC_WATCH, 0, 0, s);
    }
    if (n->has_pred && due(n, &n->heard_pred, n->pred.addr, since))
        ping_pred(n);
}

void watch_contender(qdb_node *n, const qdb_peer *c, unsigned flags)
{
    if (!n->has_pred || qdb_addr_eq(n->pred.addr, n->cfg.self.addr))
        return;
    n->contender = *c;
    n->contender_flags = flags;
    n->contender_vs = n->pred.addr;
    n->has_contender = true;
    ping_pred(n); /* (or its strikes are under way already) */
}

void watch_pred_failed(qdb_node *n, qdb_addr pred)
{
    if (!n->has_contender || !qdb_addr_eq(n->contender_vs, pred))
        return;
    n->has_contender = false;
    if (n->has_pred || qdb_addr_eq(n->contender.addr, pred) || n->phase != PHASE_ACTIVE)
        return;
    char a[QDB_ADDR_STRLEN];
    node_log(n, 4, "predecessor failed: taking %s, which notified us",
             qdb_addr_format(n->contender.addr, a));
    qdb_peer c = n->contender;
    ring_notify_admitted(n, &c, n->contender_flags);
}

qdb_time_us watch_suspect_at(qdb_node *n, qdb_addr a, qdb_time_us since)
{
    qdb_time_us last = MAX(qdb_rto_heard_at(&n->rto, a), since);
    if (n->has_pred && qdb_addr_eq(n->pred.addr, a) && qdb_addr_eq(n->heard_pred.addr, a))
        last = MAX(last, n->heard_pred.at);
    if (last == 0)
        return 0; /* nothing ever vouched for it */
    qdb_time_us at = last + QDB_SUSPECT_WINDOW(n->cfg.rpc_timeout);
    return at > node_now(n) ? at : 0;
}

bool watch_silent(qdb_node *n, qdb_addr a)
{
    return watch_suspect_at(n, a, 0) == 0;
}

void watch_pred_alive(qdb_node *n)
{
    n->has_contender = false; /* the predecessor outranks it rightly */
}
